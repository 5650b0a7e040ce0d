//! The sessions of one run, their media sockets and what they measured.
//!
//! One UDP socket per source address carries the media of every session from that address
//! (the relay checks the client's IP and the session id, not the port); one receive task per
//! socket demultiplexes by session id. Everything runs on one `LocalSet`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::wire::{CloseReason, Message, MAX_FRAME_LEN};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::probe::{
    edge_packet, read_edge_packet, read_probe, write_probe, Kind, Probe, EDGE_HEADER_LEN,
};
use crate::report::{LoadReport, TunnelReport};
use crate::session::{open_session, Session};
use crate::stats::{Jitter, Samples, SeqTracker};
use crate::tunnel::{self, TunnelOutcome};
use crate::{LoadError, LoadOptions, Target};

/// Warm-up hellos: one every this long per client...
const HELLO_EVERY: Duration = Duration::from_millis(20);
/// ...until the path answers, or this long.
const WARM_UP_LIMIT: Duration = Duration::from_secs(5);
/// How long after the last probe answers may still come in.
const DRAIN: Duration = Duration::from_millis(500);
/// Extra time tunnels get beyond the media's duration.
const TUNNEL_SLACK: Duration = Duration::from_secs(120);
/// Round-trip and jitter samples kept (decimated beyond, see [`Samples`]).
const SAMPLE_CAP: usize = 1 << 20;
/// First user id of the clients in edge mode.
const UID_BASE: u32 = 1_000_000;

/// One opened session.
struct Client {
    /// The client's index among those asked for (pairs are by index).
    index: u32,
    path: Path,
    /// Edge mode: the partner's slot, when it opened.
    partner: Option<usize>,
    tunnel: Option<TcpStream>,
    keepalive: Duration,
}

/// Where and how one session's media is sent.
#[derive(Clone)]
struct Path {
    socket: Rc<UdpSocket>,
    session_id: u64,
    /// The relay's address and the session's UDP port.
    media: Option<SocketAddr>,
    /// The `peer` of every `MediaData`.
    peer: SocketAddr,
    /// Edge mode: the client's uid.
    uid: Option<u32>,
    payload: usize,
}

impl Path {
    /// Sends `probe` (in edge mode as the application's packet number `edge_seq`).
    async fn send(&self, probe: &Probe, edge_seq: u32) {
        let Some(media) = self.media else { return };
        let frame = media_frame(
            self.session_id,
            self.peer,
            self.uid.map(|u| (u, edge_seq)),
            probe,
            self.payload,
        );
        let _ = self.socket.send_to(&frame, media).await;
    }

    /// Sends a message of the protocol (keepalive, close).
    async fn send_message(&self, msg: &Message) {
        if let (Some(media), Ok(frame)) = (self.media, msg.to_bytes()) {
            let _ = self.socket.send_to(&frame, media).await;
        }
    }
}

/// What one client measured.
#[derive(Debug)]
struct ClientState {
    sent: u64,
    /// Own probes that came back (from the echo, or reflected by the partner).
    returned: SeqTracker,
    /// The partner's probes received (edge mode).
    one_way: SeqTracker,
    jitter: Jitter,
    warm: bool,
    closed: Option<CloseReason>,
    reflections_sent: u32,
}

/// What the receive tasks share.
struct Shared {
    by_session: BTreeMap<u64, usize>,
    states: Vec<ClientState>,
    rtt: Samples,
    jitter: Samples,
    keepalive_acks: u64,
    malformed: u64,
    tunnel_outcomes: Vec<Option<TunnelOutcome>>,
}

/// The sessions of a run (see the module docs).
pub struct Fleet {
    epoch: std::time::Instant,
    target: Target,
    pps: u32,
    payload: usize,
    probes: u32,
    requested: u32,
    clients: Vec<Client>,
    sockets: Vec<Rc<UdpSocket>>,
    failures: Vec<String>,
    failed: u32,
    shared: Rc<RefCell<Shared>>,
    rx_tasks: Vec<JoinHandle<()>>,
    tunnels_bytes: u64,
}

impl Fleet {
    /// Opens every session (at most `open_concurrency` at once), joins the pairs' channels in
    /// edge mode, and warms every media path up. Sessions that cannot be opened are counted
    /// (the first reasons kept); none opened is an error.
    pub async fn open(options: &LoadOptions) -> Result<Fleet, LoadError> {
        options.validate()?;
        let opened = open_all(options).await;
        let mut clients = Vec::new();
        let mut failures = Vec::new();
        let mut failed = 0;
        let mut sockets: Vec<Rc<UdpSocket>> = Vec::new();
        let mut socket_of: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (index, result) in opened {
            match result {
                Ok(session) => {
                    let ip = options.source_of(index);
                    let socket = match socket_of.get(&ip) {
                        Some(s) => *s,
                        None => {
                            let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.map_err(|e| {
                                LoadError::Io(format!("cannot bind udp on {ip}: {e}"))
                            })?;
                            sockets.push(Rc::new(s));
                            socket_of.insert(ip, sockets.len() - 1);
                            sockets.len() - 1
                        }
                    };
                    let path = Path {
                        socket: sockets[socket].clone(),
                        session_id: session.session_id,
                        media: session.media,
                        peer: options.target.media_peer(),
                        uid: options.target.paired().then_some(UID_BASE + index),
                        payload: options.payload_bytes,
                    };
                    clients.push(Client {
                        index,
                        path,
                        partner: None,
                        tunnel: Some(session.tunnel),
                        keepalive: session.keepalive,
                    });
                }
                Err(e) => {
                    failed += 1;
                    if failures.len() < 5 {
                        failures.push(format!("client {index}: {e}"));
                    }
                }
            }
        }
        if clients.is_empty() {
            return Err(LoadError::NoSession(
                failures.first().cloned().unwrap_or_default(),
            ));
        }
        let probes = options.probes_per_client();
        let shared = Rc::new(RefCell::new(Shared {
            by_session: clients
                .iter()
                .enumerate()
                .map(|(slot, c)| (c.path.session_id, slot))
                .collect(),
            states: (0..clients.len())
                .map(|_| ClientState {
                    sent: 0,
                    returned: SeqTracker::new(probes),
                    one_way: SeqTracker::new(if options.target.paired() { probes } else { 0 }),
                    jitter: Jitter::default(),
                    warm: false,
                    closed: None,
                    reflections_sent: 0,
                })
                .collect(),
            rtt: Samples::new(SAMPLE_CAP),
            jitter: Samples::new(SAMPLE_CAP),
            keepalive_acks: 0,
            malformed: 0,
            tunnel_outcomes: (0..clients.len()).map(|_| None).collect(),
        }));
        let mut fleet = Fleet {
            sockets,
            epoch: std::time::Instant::now(),
            target: options.target.clone(),
            pps: options.pps,
            payload: options.payload_bytes,
            probes,
            requested: options.clients,
            clients,
            failures,
            failed,
            shared,
            rx_tasks: Vec::new(),
            tunnels_bytes: 0,
        };
        if fleet.target.paired() {
            fleet.join_pairs().await?;
        }
        fleet.start_receivers();
        fleet.warm_up().await;
        Ok(fleet)
    }

    /// Sessions opened.
    pub fn opened(&self) -> usize {
        self.clients.len()
    }

    /// Edge mode: every client joins its pair's channel over its tunnel.
    async fn join_pairs(&mut self) -> Result<(), LoadError> {
        let slot_of: BTreeMap<u32, usize> = self
            .clients
            .iter()
            .enumerate()
            .map(|(slot, c)| (c.index, slot))
            .collect();
        for c in &mut self.clients {
            c.partner = slot_of.get(&(c.index ^ 1)).copied();
        }
        for c in &mut self.clients {
            if let Some(stream) = c.tunnel.as_mut() {
                tunnel::join(stream, &format!("load-{}", c.index / 2), UID_BASE + c.index)
                    .await
                    .map_err(|e| LoadError::Protocol(format!("client {}: join: {e}", c.index)))?;
            }
        }
        Ok(())
    }

    fn start_receivers(&mut self) {
        let reply_to: Rc<Vec<(u64, Option<SocketAddr>, u32)>> = Rc::new(
            self.clients
                .iter()
                .map(|c| (c.path.session_id, c.path.media, UID_BASE + c.index))
                .collect(),
        );
        for socket in &self.sockets {
            let ctx = Receiver {
                socket: socket.clone(),
                shared: self.shared.clone(),
                epoch: self.epoch,
                paired: self.target.paired(),
                peer: self.target.media_peer(),
                payload: self.payload,
                reply_to: reply_to.clone(),
            };
            self.rx_tasks.push(tokio::task::spawn_local(ctx.run()));
        }
    }

    /// Sends hellos until every path answered (or [`WARM_UP_LIMIT`]). In edge mode a client
    /// goes on until its partner heard it too (the edge forwards to a member only once that
    /// member has sent something itself).
    async fn warm_up(&self) {
        let deadline = tokio::time::Instant::now() + WARM_UP_LIMIT;
        while tokio::time::Instant::now() < deadline {
            let mut all = true;
            for (slot, c) in self.clients.iter().enumerate() {
                let done = {
                    let states = &self.shared.borrow().states;
                    states[slot].warm && c.partner.is_none_or(|p| states[p].warm)
                };
                if done {
                    continue;
                }
                all = false;
                let hello = Probe {
                    kind: Kind::Hello,
                    client: slot as u32,
                    seq: 0,
                    sent_us: 0,
                };
                c.path.send(&hello, 0).await;
            }
            if all {
                return;
            }
            tokio::time::sleep(HELLO_EVERY).await;
        }
    }

    /// Sends media for `duration` (keepalives only when the rate is 0) while each tunnel
    /// carries `tunnel_bytes`, then waits for what is still in flight.
    pub async fn run_media(&mut self, duration: Duration, tunnel_bytes: u64) {
        self.tunnels_bytes = tunnel_bytes;
        let mut tunnels = Vec::new();
        if tunnel_bytes > 0 {
            for (slot, c) in self.clients.iter_mut().enumerate() {
                if let Some(stream) = c.tunnel.take() {
                    let paired = self.target.paired();
                    let limit = duration + TUNNEL_SLACK;
                    tunnels.push((
                        slot,
                        tokio::task::spawn_local(async move {
                            tunnel::transfer(stream, tunnel_bytes, paired, limit).await
                        }),
                    ));
                }
            }
        }
        let senders: Vec<_> = self
            .clients
            .iter()
            .enumerate()
            .map(|(slot, c)| {
                let stream = Stream {
                    slot,
                    path: c.path.clone(),
                    keepalive: c.keepalive,
                    pps: self.pps,
                    probes: self.probes,
                    clients: self.clients.len(),
                    epoch: self.epoch,
                    shared: self.shared.clone(),
                };
                tokio::task::spawn_local(stream.run(duration))
            })
            .collect();
        for sender in senders {
            let _ = sender.await;
        }
        tokio::time::sleep(DRAIN).await;
        for (slot, task) in tunnels {
            let (stream, outcome) = match task.await {
                Ok(r) => r,
                Err(_) => continue,
            };
            self.clients[slot].tunnel = stream;
            self.shared.borrow_mut().tunnel_outcomes[slot] = Some(outcome);
        }
    }

    /// What was measured so far. `opened_in` is how long opening took.
    pub fn report(&self, opened_in: Duration) -> LoadReport {
        let shared = self.shared.borrow();
        let mut r = LoadReport {
            target: match &self.target {
                Target::Echo(a) => format!("echo udp {} tcp {}", a.udp_echo, a.tcp_echo),
                Target::Edge { signalling, media } => {
                    format!("edge signalling {signalling} media {media} (clients in pairs)")
                }
            },
            clients_requested: self.requested,
            sessions_opened: self.clients.len() as u32,
            sessions_failed: self.failed,
            failures: self.failures.clone(),
            open_ms: opened_in.as_millis() as u64,
            pps: self.pps,
            payload_bytes: self.payload,
            probes_per_client: if self.pps == 0 { 0 } else { self.probes },
            rtt_samples: shared.rtt.count(),
            rtt_us: shared.rtt.summary(),
            jitter_us: shared.jitter.summary(),
            keepalive_acks: shared.keepalive_acks,
            malformed: shared.malformed,
            ..LoadReport::default()
        };
        for s in &shared.states {
            r.sent += s.sent;
            r.returned += s.returned.received;
            r.lost += s.returned.lost(s.sent);
            r.duplicated += s.returned.duplicated;
            r.reordered += s.returned.reordered;
            r.one_way_received += s.one_way.received;
            if !s.warm {
                r.paths_silent += 1;
            }
            if let Some(reason) = s.closed {
                *r.closed_by_relay.entry(reason.to_string()).or_default() += 1;
            }
        }
        if self.tunnels_bytes > 0 {
            r.tunnels = Some(TunnelReport::from_outcomes(
                self.tunnels_bytes,
                &shared.tunnel_outcomes,
                &shared.states.iter().map(|s| s.closed).collect::<Vec<_>>(),
            ));
        }
        r
    }

    /// Closes every session (`Close` on its media path, then the tunnel) and stops the
    /// receivers.
    pub async fn close(self) {
        for c in &self.clients {
            c.path
                .send_message(&Message::Close {
                    session_id: c.path.session_id,
                    reason: CloseReason::Normal,
                })
                .await;
        }
        drop(self.clients);
        for task in self.rx_tasks {
            task.abort();
        }
    }
}

/// Opens every session with bounded concurrency; results by client index.
async fn open_all(options: &LoadOptions) -> Vec<(u32, Result<Session, LoadError>)> {
    let mut results = Vec::with_capacity(options.clients as usize);
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0u32;
    loop {
        while next < options.clients && running.len() < options.open_concurrency {
            let (aps, app, dest) = (
                options.aps.clone(),
                options.app_id.clone(),
                options.target.tunnel_destination(),
            );
            let bind = options.source_of(next);
            let index = next;
            running.spawn_local(async move {
                (index, open_session(&aps, bind, &app, index + 1, dest).await)
            });
            next += 1;
        }
        match running.join_next().await {
            Some(Ok(r)) => results.push(r),
            Some(Err(_)) => {}
            None => break,
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results
}

/// One client's media stream: probes at the fleet's rate, or keepalives at the relay's
/// interval when the rate is 0.
struct Stream {
    slot: usize,
    path: Path,
    keepalive: Duration,
    pps: u32,
    probes: u32,
    clients: usize,
    epoch: std::time::Instant,
    shared: Rc<RefCell<Shared>>,
}

impl Stream {
    async fn run(self, duration: Duration) {
        let start = tokio::time::Instant::now();
        if self.pps == 0 {
            let every = self.keepalive.max(Duration::from_millis(100));
            let mut seq = 0u32;
            while start.elapsed() + every < duration {
                tokio::time::sleep(every).await;
                seq += 1;
                let keepalive = Message::Keepalive {
                    session_id: self.path.session_id,
                    seq,
                };
                self.path.send_message(&keepalive).await;
            }
            tokio::time::sleep_until(start + duration).await;
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.pps));
        // Spread the clients' first probes over one interval.
        let mut next = start + interval.mul_f64(self.slot as f64 / self.clients as f64);
        for seq in 0..self.probes {
            tokio::time::sleep_until(next).await;
            let probe = Probe {
                kind: Kind::Probe,
                client: self.slot as u32,
                seq,
                sent_us: self.epoch.elapsed().as_micros() as u64,
            };
            self.path.send(&probe, seq).await;
            self.shared.borrow_mut().states[self.slot].sent += 1;
            next += interval;
        }
    }
}

/// A `MediaData` frame carrying `probe` padded so that the payload is `payload` bytes; in
/// edge mode wrapped as the application's media packet of `(uid, seq)`.
fn media_frame(
    session_id: u64,
    peer: SocketAddr,
    edge: Option<(u32, u32)>,
    probe: &Probe,
    payload: usize,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload);
    match edge {
        Some((uid, seq)) => {
            let mut inner = Vec::with_capacity(payload);
            write_probe(probe, payload - EDGE_HEADER_LEN, &mut inner);
            edge_packet(uid, seq, &inner, &mut body);
        }
        None => write_probe(probe, payload, &mut body),
    }
    Message::MediaData {
        session_id,
        peer,
        payload: body,
    }
    .to_bytes()
    .unwrap_or_default()
}

/// One media socket's receive loop.
struct Receiver {
    socket: Rc<UdpSocket>,
    shared: Rc<RefCell<Shared>>,
    epoch: std::time::Instant,
    paired: bool,
    peer: SocketAddr,
    payload: usize,
    /// Per slot: session id, media address, uid.
    reply_to: Rc<Vec<(u64, Option<SocketAddr>, u32)>>,
}

impl Receiver {
    async fn run(self) {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        loop {
            let n = match self.socket.recv_from(&mut buf).await {
                Ok((n, _)) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return,
            };
            self.handle(&buf[..n]);
        }
    }

    fn handle(&self, datagram: &[u8]) {
        let mut shared = self.shared.borrow_mut();
        let msg = match Message::decode_datagram(datagram) {
            Ok(m) => m,
            Err(_) => {
                shared.malformed += 1;
                return;
            }
        };
        let Some(slot) = msg
            .session_id()
            .and_then(|s| shared.by_session.get(&s).copied())
        else {
            shared.malformed += 1;
            return;
        };
        match msg {
            Message::MediaData { payload, .. } => {
                let probe = if self.paired {
                    read_edge_packet(&payload).and_then(|(_, body)| read_probe(body))
                } else {
                    read_probe(&payload)
                };
                match probe {
                    Some(p) => self.on_probe(&mut shared, slot, p),
                    None => shared.malformed += 1,
                }
            }
            Message::KeepaliveAck { .. } => {
                shared.keepalive_acks += 1;
                shared.states[slot].warm = true;
            }
            Message::Close { reason, .. } => shared.states[slot].closed = Some(reason),
            _ => shared.malformed += 1,
        }
    }

    fn on_probe(&self, shared: &mut Shared, slot: usize, p: Probe) {
        shared.states[slot].warm = true;
        let own = p.client as usize == slot;
        match p.kind {
            Kind::Hello => {}
            Kind::Probe | Kind::Reflection if own => {
                let rtt = self
                    .epoch
                    .elapsed()
                    .as_micros()
                    .saturating_sub(u128::from(p.sent_us));
                let rtt = u32::try_from(rtt).unwrap_or(u32::MAX);
                let state = &mut shared.states[slot];
                let before = state.returned.received;
                state.returned.record(p.seq);
                // Duplicates are counted, not timed.
                if state.returned.received > before {
                    let jitter = state.jitter.record(rtt);
                    shared.rtt.push(rtt);
                    shared.jitter.push(jitter);
                }
            }
            Kind::Probe => {
                // The partner's probe: count it and reflect it (edge mode).
                let state = &mut shared.states[slot];
                state.one_way.record(p.seq);
                state.reflections_sent += 1;
                let seq = state.reflections_sent;
                let (session_id, media, uid) = self.reply_to[slot];
                if let Some(media) = media {
                    let reflection = Probe {
                        kind: Kind::Reflection,
                        ..p
                    };
                    let frame = media_frame(
                        session_id,
                        self.peer,
                        Some((uid, seq)),
                        &reflection,
                        self.payload,
                    );
                    // Never wait inside the receive loop: a full socket buffer drops it.
                    let _ = self.socket.try_send_to(&frame, media);
                }
            }
            Kind::Reflection => shared.malformed += 1,
        }
    }
}
