//! An SDK client: the application (joins a channel, signalling with sequence numbers, media at
//! 50 packets/s of 200-1200 bytes), the SDK engine (setParameters rules) and the proxy client
//! machine, driven over the [`Net`] seam. Many clients share one enterprise host.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::client::{
    ClientConfig, ClientEvent, ClientInput, ClientOutput, ConnId, ConnectionState, MediaPath,
    ProxyClient,
};
use cloudproxy_core::engine::Engine;
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::params::Mode;
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::socks5::Credentials;
use cloudproxy_core::time::Instant;
use serde_json::json;
use tokio::sync::mpsc;

use crate::app::{media_packet, read_media, LineReader, Signal};
use crate::net::{sleep_until, Net, StreamEvent, StreamPumps, Udp};
use crate::trace::Trace;

/// One step of a client's script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `setParameters(text)`.
    Set(String),
    /// `joinChannel`.
    Join,
    /// `leaveChannel`.
    Leave,
}

/// What a client does, when.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Its name in the trace and the report.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// The channel it joins.
    pub channel: String,
    /// The application id it presents to the access point.
    pub app_id: String,
    /// Read setParameters in compatibility mode.
    pub compat: bool,
    /// The script: (time since start, op), in order.
    pub script: Vec<(Duration, Op)>,
    /// Media packets per second once connected.
    pub media_pps: u32,
    /// A signalling message every this long once connected.
    pub signalling_every: Duration,
    /// The seed of its randomness (payload sizes, backoff jitter).
    pub seed: u64,
    /// The proxy client's configuration tweaks (timeouts), applied over the defaults.
    pub tune: fn(&mut ClientConfig),
    /// Stop sending media and signalling this long after the start (a quiet period before
    /// leaving, so that everything sent can be delivered and acknowledged).
    pub talk_until: Option<Duration>,
    /// Username and password for a SOCKS5 server that asks for them (RFC 1929).
    pub socks5_credentials: Option<Credentials>,
}

impl ClientSpec {
    /// A client that runs `params` then joins at `start`.
    pub fn new(name: &str, uid: u32, channel: &str, params: &[&str], start: Duration) -> Self {
        let mut script: Vec<(Duration, Op)> = params
            .iter()
            .map(|p| (start, Op::Set((*p).to_owned())))
            .collect();
        script.push((start, Op::Join));
        ClientSpec {
            name: name.to_owned(),
            uid,
            channel: channel.to_owned(),
            app_id: "cloudproxy-sim".to_owned(),
            compat: false,
            script,
            media_pps: 50,
            signalling_every: Duration::from_secs(1),
            seed: u64::from(uid),
            tune: |_| {},
            talk_until: None,
            socks5_credentials: None,
        }
    }
}

/// Media received from one sender.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Distinct packets received.
    pub received: u64,
    /// Packets missing between the first and the highest sequence number seen.
    pub lost: u64,
    /// Packets received again.
    pub duplicated: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Packets whose checksum did not match.
    pub corrupt: u64,
    seen: BTreeSet<u32>,
    first: Option<u32>,
    highest: Option<u32>,
}

impl StreamStats {
    /// The highest sequence number received.
    pub fn highest(&self) -> Option<u32> {
        self.highest
    }

    fn record(&mut self, seq: u32, intact: bool) {
        if !intact {
            self.corrupt += 1;
            return;
        }
        if !self.seen.insert(seq) {
            self.duplicated += 1;
            return;
        }
        self.received += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.reordered += 1;
        }
        self.first = Some(self.first.map_or(seq, |f| f.min(seq)));
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        let span = u64::from(self.highest.unwrap_or(0) - self.first.unwrap_or(0)) + 1;
        self.lost = span - self.received;
    }
}

/// What a client did and saw, for the report and the oracles.
#[derive(Clone, Debug, Default)]
pub struct ClientReport {
    /// setParameters / join / leave return codes, in script order.
    pub codes: Vec<(String, i32)>,
    /// The proxy client's state now.
    pub state: Option<ConnectionState>,
    /// The reason of the latest state change.
    pub last_reason: String,
    /// Time from the first join to the first connection.
    pub join_time: Option<Duration>,
    /// The proxy type and relay (or SOCKS5 server) of the latest connection.
    pub proxy: Option<(u8, SocketAddr)>,
    /// The media path now.
    pub media_path: Option<MediaPath>,
    /// Times the client went from connected to reconnecting.
    pub reconnects: u32,
    /// Media packets sent.
    pub media_sent: u64,
    /// Media received, per sender uid.
    pub media_from: BTreeMap<u32, StreamStats>,
    /// Signalling messages sent (join included).
    pub signalling_sent: u64,
    /// Signalling messages the edge acknowledged.
    pub signalling_acked: BTreeSet<u64>,
    /// Acks of messages never sent, or lines that were not signalling messages.
    pub signalling_bad_acks: u64,
    /// Instants (since start) at which media arrived, first and last.
    pub media_window: Option<(Duration, Duration)>,
    /// Media packets received per second of simulated time since start.
    pub media_per_second: BTreeMap<u64, u64>,
    /// Outages: when the connection was lost and when it came back (since start).
    pub outages: Vec<(Duration, Option<Duration>)>,
    /// Whether the script finished.
    pub done: bool,
    /// The config in force at the latest join, canonical.
    pub config_in_force: Option<String>,
}

impl ClientReport {
    /// Media packets received, all senders.
    pub fn media_received(&self) -> u64 {
        self.media_from.values().map(|s| s.received).sum()
    }

    /// Media packets lost, all senders.
    pub fn media_lost(&self) -> u64 {
        self.media_from.values().map(|s| s.lost).sum()
    }
}

enum Event {
    Udp(SocketAddr, Vec<u8>),
    Resolved(String, Result<Vec<IpAddr>, String>),
}

/// The shared context of the clients of one enterprise.
#[derive(Clone)]
pub struct ClientEnv {
    /// The SD-RTN edge the clients talk to.
    pub sdrtn: SdRtnEndpoints,
    /// The trace.
    pub trace: Trace,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most media packets one wake-up sends when it is late (a bound on bursts).
pub const MEDIA_BURST_MAX: u32 = 32;

/// Runs one client's script; returns when it is done or the host stops.
pub async fn run_client<N: Net>(
    net: N,
    spec: ClientSpec,
    env: ClientEnv,
    report: Rc<RefCell<ClientReport>>,
) -> io::Result<()> {
    let start = net.now();
    let mode = if spec.compat {
        Mode::Compat
    } else {
        Mode::Strict
    };
    let mut engine = Engine::new(mode);
    let mut entropy = Entropy::from_u64(spec.seed);
    let udp = Rc::new(net.bind_udp(SocketAddr::from(([0, 0, 0, 0], 0))).await?);
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let (stream_tx, mut stream_rx) = mpsc::unbounded_channel::<(ConnId, StreamEvent)>();
    {
        let reader = udp.clone();
        let tx = tx.clone();
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                if tx.send(Event::Udp(from, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        });
    }
    let mut script = spec.script.clone().into_iter().peekable();
    let mut client: Option<ProxyClient> = None;
    let mut pumps = StreamPumps::new(stream_tx);
    let mut lines = LineReader::default();
    let mut seq_media: u32 = 0;
    let mut seq_signal: u64 = 0;
    // Signalling messages not acknowledged yet: resent after a reconnect, as the SDK does.
    let mut unacked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let talk_until = spec.talk_until.map(|d| start + d);
    // The sequence number of the first channel join, whose acknowledgement starts media.
    // Joins sent and not acknowledged yet: the first acknowledgement of any of them starts
    // media (a join sent on a tunnel that died at once is never acknowledged; the re-join on
    // the next tunnel is). Found by the swarm sweep (crowd, seed 44).
    let mut pending_joins: BTreeSet<u64> = BTreeSet::new();
    let mut next_media: Option<Instant> = None;
    let mut next_signal: Option<Instant> = None;
    let media_gap = Duration::from_micros(1_000_000 / u64::from(spec.media_pps.max(1)));
    let trace = env.trace.clone();
    let record =
        |event: &str, fields: serde_json::Value| trace.record(net.now(), &spec.name, event, fields);

    loop {
        // The next deadline: the machine's timer, the script, media and signalling ticks.
        let script_at = script.peek().map(|(at, _)| start + *at);
        let machine_at = client.as_ref().and_then(ProxyClient::poll_timeout);
        let deadline = [script_at, machine_at, next_media, next_signal]
            .into_iter()
            .flatten()
            .min();
        if deadline.is_none() && client.is_none() {
            break;
        }
        tokio::select! {
            biased;
            Some(event) = rx.recv() => {
                let now = net.now();
                if let Event::Resolved(name, answer) = &event {
                    record("resolve", json!({"name": name, "ok": answer.is_ok()}));
                }
                if let Some(c) = client.as_mut() {
                    match &event {
                        Event::Udp(from, data) => c.handle_input(ClientInput::UdpData { from: *from, data }, now),
                        Event::Resolved(name, Ok(addrs)) => c.handle_input(ClientInput::Resolved { name, addrs }, now),
                        Event::Resolved(name, Err(reason)) => c.handle_input(ClientInput::ResolveFailed { name, reason }, now),
                    }
                }
            }
            Some((conn, event)) = stream_rx.recv() => {
                let now = net.now();
                if matches!(event, StreamEvent::Closed | StreamEvent::Failed(_)) {
                    pumps.forget(conn);
                }
                if let Some(c) = client.as_mut() {
                    match &event {
                        StreamEvent::Connected => c.handle_input(ClientInput::TcpConnected { conn }, now),
                        StreamEvent::Failed(reason) => c.handle_input(ClientInput::TcpFailed { conn, reason }, now),
                        StreamEvent::Data(data) => c.handle_input(ClientInput::TcpData { conn, data }, now),
                        StreamEvent::Closed => c.handle_input(ClientInput::TcpClosed { conn }, now),
                    }
                }
            }
            () = sleep_until(&net, deadline) => {
                let now = net.now();
                if script_at.is_some_and(|at| at <= now) {
                    let (_, op) = script.next().expect("peeked");
                    run_op(&op, &mut engine, &mut client, &spec, &env, &mut entropy, &report, &record, now, &mut pumps);
                    if op == Op::Leave {
                        next_media = None;
                        next_signal = None;
                        pending_joins.clear();
                    }
                }
                if talk_until.is_some_and(|t| t <= now) {
                    next_media = None;
                    next_signal = None;
                }
                if let Some(c) = client.as_mut() {
                    if machine_at.is_some_and(|at| at <= now) {
                        c.handle_timeout(now);
                    }
                    // Paced by the schedule, not by the wake-up: a timer wakes up to a tick
                    // late (1 ms on tokio), and `now + gap` lost that much per packet (on real
                    // sockets 50 pps sent 47, 5000 sent 2240). A late wake-up sends what is due,
                    // at most MEDIA_BURST_MAX; after a longer stall the backlog is skipped.
                    let mut sent_now = 0;
                    while let Some(due) = next_media.filter(|at| *at <= now && sent_now < MEDIA_BURST_MAX) {
                        let size = 200 + entropy.next_below(1001) as usize;
                        let payload = vec![(seq_media % 251) as u8; size - crate::app::MEDIA_HEADER_LEN];
                        c.handle_input(ClientInput::SendMedia { payload: &media_packet(spec.uid, seq_media, &payload) }, now);
                        seq_media += 1;
                        sent_now += 1;
                        report.borrow_mut().media_sent += 1;
                        next_media = Some(due + media_gap);
                    }
                    if next_media.is_some_and(|at| at <= now) {
                        next_media = Some(now + media_gap);
                    }
                    if next_signal.is_some_and(|at| at <= now) {
                        seq_signal += 1;
                        let line = Signal::Msg { seq: seq_signal, body: format!("hello from {}", spec.name) }.to_line();
                        c.handle_input(ClientInput::SendSignalling { data: &line }, now);
                        if unacked.len() < 10_000 {
                            unacked.insert(seq_signal, line);
                        }
                        report.borrow_mut().signalling_sent += 1;
                        next_signal = Some(now + spec.signalling_every);
                    }
                }
            }
        }
        // Drain the machine.
        let now = net.now();
        let Some(c) = client.as_mut() else { continue };
        while let Some(output) = c.poll_output() {
            match output {
                ClientOutput::Resolve { name } => {
                    let (tx, net) = (tx.clone(), net.clone());
                    tokio::task::spawn_local(async move {
                        let answer = net.resolve(&name).await;
                        let _ = tx.send(Event::Resolved(name, answer));
                    });
                }
                ClientOutput::TcpConnect { conn, to } => {
                    pumps.connect(&net, conn, to, CONNECT_TIMEOUT)
                }
                ClientOutput::TcpSend { conn, data } => pumps.send(conn, data),
                ClientOutput::TcpClose { conn } => pumps.close(conn),
                ClientOutput::UdpSend { to, data } => {
                    let _ = udp.send_to(&data, to).await;
                }
                ClientOutput::Event(event) => {
                    let mut r = report.borrow_mut();
                    match event {
                        ClientEvent::ConnectionStateChanged { state, reason } => {
                            record(
                                "state",
                                json!({"state": format!("{state:?}"), "code": state.as_i32(), "reason": reason.to_string()}),
                            );
                            let t = now.saturating_duration_since(start);
                            if r.state == Some(ConnectionState::Connected)
                                && state == ConnectionState::Reconnecting
                            {
                                r.reconnects += 1;
                                r.outages.push((t, None));
                            }
                            if state == ConnectionState::Connected {
                                if let Some(last) = r.outages.last_mut() {
                                    last.1.get_or_insert(t);
                                }
                            }
                            r.state = Some(state);
                            r.last_reason = reason.to_string();
                            if state == ConnectionState::Connected {
                                engine.on_joined();
                                if r.join_time.is_none() {
                                    r.join_time = Some(
                                        now.saturating_duration_since(start + first_join_at(&spec)),
                                    );
                                }
                                // (Re)join the channel on the edge, then talk.
                                seq_signal += 1;
                                let line = Signal::Join {
                                    ch: spec.channel.clone(),
                                    uid: spec.uid,
                                    seq: seq_signal,
                                }
                                .to_line();
                                r.signalling_sent += 1;
                                drop(r);
                                c.handle_input(ClientInput::SendSignalling { data: &line }, now);
                                for line in unacked.values() {
                                    c.handle_input(ClientInput::SendSignalling { data: line }, now);
                                }
                                if talk_until.is_none_or(|t| now < t) {
                                    // Media starts once the edge has acknowledged a join (so
                                    // the channel knows us); after a reconnect it goes on.
                                    if next_media.is_none() {
                                        pending_joins.insert(seq_signal);
                                    }
                                    next_signal.get_or_insert(now + spec.signalling_every);
                                }
                            }
                        }
                        ClientEvent::ProxyConnected {
                            proxy_type,
                            relay,
                            elapsed,
                        } => {
                            record(
                                "proxy_connected",
                                json!({"proxy_type": proxy_type, "relay": relay.to_string(), "elapsed_ms": elapsed.as_millis() as u64}),
                            );
                            r.proxy = Some((proxy_type, relay));
                        }
                        ClientEvent::MediaPathChanged(path) => {
                            record("media_path", json!({"path": format!("{path:?}")}));
                            r.media_path = Some(path);
                        }
                        ClientEvent::SignallingReceived(bytes) => match lines.push(&bytes) {
                            Ok(signals) => {
                                for signal in signals {
                                    if let Signal::Ack { seq } = signal {
                                        // A duplicate ack is expected after a reconnect (the
                                        // unacknowledged messages are resent); an ack of a
                                        // message never sent is not.
                                        if seq > seq_signal {
                                            r.signalling_bad_acks += 1;
                                        }
                                        r.signalling_acked.insert(seq);
                                        unacked.remove(&seq);
                                        if pending_joins.remove(&seq)
                                            && talk_until.is_none_or(|t| now < t)
                                        {
                                            pending_joins.clear();
                                            next_media.get_or_insert(now);
                                        }
                                    }
                                }
                            }
                            Err(e) => {
                                record("signalling_error", json!({"error": e.to_string()}));
                                r.signalling_bad_acks += 1;
                                lines = LineReader::default();
                            }
                        },
                        ClientEvent::MediaReceived { payload, .. } => {
                            if let Some(header) = read_media(&payload) {
                                r.media_from
                                    .entry(header.uid)
                                    .or_default()
                                    .record(header.seq, header.intact);
                                let t = now.saturating_duration_since(start);
                                r.media_window =
                                    Some(r.media_window.map_or((t, t), |(a, _)| (a, t)));
                                *r.media_per_second.entry(t.as_secs()).or_default() += 1;
                            }
                        }
                    }
                }
            }
        }
        report.borrow_mut().state = Some(c.state());
    }
    pumps.close_all();
    report.borrow_mut().done = true;
    Ok(())
}

fn first_join_at(spec: &ClientSpec) -> Duration {
    spec.script
        .iter()
        .find(|(_, op)| *op == Op::Join)
        .map_or(Duration::ZERO, |(at, _)| *at)
}

#[allow(clippy::too_many_arguments)]
fn run_op(
    op: &Op,
    engine: &mut Engine,
    client: &mut Option<ProxyClient>,
    spec: &ClientSpec,
    env: &ClientEnv,
    entropy: &mut Entropy,
    report: &Rc<RefCell<ClientReport>>,
    record: &impl Fn(&str, serde_json::Value),
    now: Instant,
    pumps: &mut StreamPumps<ConnId>,
) {
    let (name, code) = match op {
        Op::Set(text) => {
            let result = engine.set_parameters(text);
            let code = result.as_ref().err().map_or(0, |e| e.code().as_i32());
            record(
                "set_parameters",
                json!({"text": text, "code": code, "error": result.err().map(|e| e.to_string())}),
            );
            ("set", code)
        }
        Op::Join => match engine.join() {
            Ok(config) => {
                let config = config.clone();
                record("join", json!({"code": 0, "config": config.to_json()}));
                let mut client_config = ClientConfig::new(
                    config.active_server().cloned(),
                    spec.app_id.clone(),
                    env.sdrtn,
                );
                client_config
                    .socks5_credentials
                    .clone_from(&spec.socks5_credentials);
                (spec.tune)(&mut client_config);
                *client = Some(ProxyClient::new(client_config, entropy.fork(), now));
                report.borrow_mut().config_in_force = Some(config.canonical());
                ("join", 0)
            }
            Err(e) => {
                record(
                    "join",
                    json!({"code": e.code().as_i32(), "error": e.to_string()}),
                );
                ("join", e.code().as_i32())
            }
        },
        Op::Leave => match engine.leave() {
            Ok(()) => {
                if let Some(mut c) = client.take() {
                    c.handle_input(ClientInput::Leave, now);
                    while c.poll_output().is_some() {}
                }
                pumps.close_all();
                engine.on_left();
                record("leave", json!({"code": 0}));
                ("leave", 0)
            }
            Err(e) => {
                record(
                    "leave",
                    json!({"code": e.code().as_i32(), "error": e.to_string()}),
                );
                ("leave", e.code().as_i32())
            }
        },
    };
    report.borrow_mut().codes.push((name.to_owned(), code));
}
