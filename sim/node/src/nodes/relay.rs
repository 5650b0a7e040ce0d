//! The cloud proxy's relay host: drives a [`Relay`] machine over the [`Net`] seam. TCP 4000 for
//! tunnels and media channels, UDP on the configured media ports, one upstream UDP socket per
//! session allocation.
//!
//! [`run_relay`] is the simulation's host (it runs until its host crashes); [`run_relay_with`]
//! is the same loop with what real serving adds ([`RelayHost`]): another TCP port, and a
//! graceful shutdown that closes every session with `ShuttingDown` and flushes the closing
//! messages before returning.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{
    Relay, RelayConfig, RelayCounters, RelayEvent, RelayInput, RelayOutput,
};
use cloudproxy_core::wire::RELAY_TCP_PORT;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::net::{sleep_until, Listener, Net, StreamEvent, StreamPumps, Udp};
use crate::trace::Trace;

/// What a relay host shares with the world (for the report and the oracles).
#[derive(Clone, Debug, Default)]
pub struct RelayShared {
    /// The machine's counters, copied after every step.
    pub counters: RelayCounters,
    /// Every destination the relay connected or sent to upstream (bounded by SD-RTN's size in
    /// a correct relay; the safety oracle checks each is inside SD-RTN).
    pub upstream_destinations: BTreeSet<SocketAddr>,
    /// Sessions open now.
    pub sessions: usize,
    /// Most sessions open at once.
    pub peak_sessions: usize,
    /// Client connections open now (in any state).
    pub connections: usize,
    /// Most client connections open at once.
    pub peak_connections: usize,
    /// Bytes the relay machine holds now (partial frames, early tunnel bytes).
    pub buffered_bytes: usize,
    /// Most bytes the relay machine held at once.
    pub peak_buffered_bytes: usize,
    /// Bytes queued for writing on the host's TCP streams, not yet written.
    pub queued_bytes: usize,
    /// Most bytes queued at once.
    pub peak_queued_bytes: usize,
    /// Streams cut because their write queue exceeded [`RelayHost::max_queued_bytes_per_stream`].
    pub stream_overflows: u64,
    /// Upstream UDP sockets open now.
    pub udp_allocs: usize,
    /// Whether every socket is bound (the host serves).
    pub listening: bool,
}

/// How a relay host serves, beyond the relay's own configuration.
pub struct RelayHost<F> {
    /// The TCP port for tunnels and media channels. Default [`RELAY_TCP_PORT`].
    pub tcp_port: u16,
    /// Resolves when the relay must shut down gracefully. Default: never.
    pub shutdown: F,
    /// How long a shutdown waits for the closing messages to be written. Default 2 s.
    pub flush_timeout: Duration,
    /// Most bytes queued for writing on one TCP stream (a peer that does not read): beyond
    /// it the stream is cut. Default 4 MiB.
    pub max_queued_bytes_per_stream: usize,
}

impl RelayHost<std::future::Pending<()>> {
    /// The simulation's host: port 4000, never shut down.
    pub fn new() -> Self {
        RelayHost::with_shutdown(std::future::pending())
    }
}

impl Default for RelayHost<std::future::Pending<()>> {
    fn default() -> Self {
        RelayHost::new()
    }
}

impl<F: Future<Output = ()>> RelayHost<F> {
    /// The defaults, shutting down when `shutdown` resolves.
    pub fn with_shutdown(shutdown: F) -> Self {
        RelayHost {
            tcp_port: RELAY_TCP_PORT,
            shutdown,
            flush_timeout: Duration::from_secs(2),
            max_queued_bytes_per_stream: 4 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Client(u64),
    Up(u64),
}

enum Event<S> {
    Accepted(u64, SocketAddr, S),
    UdpClient {
        port: u16,
        from: SocketAddr,
        data: Vec<u8>,
    },
    UdpUp {
        alloc: u64,
        from: SocketAddr,
        data: Vec<u8>,
    },
}

const MAX_DATAGRAM: usize = 65_536;
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Events (accepted connections, datagrams) waiting for the relay loop: a flood waits in the
/// kernel's socket buffers (and is dropped there), not in the host's memory.
const EVENT_QUEUE: usize = 1024;

/// Runs the relay host until it crashes.
pub async fn run_relay<N: Net>(
    net: N,
    name: String,
    config: RelayConfig,
    entropy: Entropy,
    shared: Rc<RefCell<RelayShared>>,
    trace: Trace,
) -> io::Result<()> {
    run_relay_with(net, name, config, entropy, shared, trace, RelayHost::new()).await
}

/// Runs the relay host as `host` says: until `host.shutdown` resolves (then gracefully, see
/// [`Relay::shutdown`]), or until a socket fails.
pub async fn run_relay_with<N: Net, F: Future<Output = ()>>(
    net: N,
    name: String,
    config: RelayConfig,
    entropy: Entropy,
    shared: Rc<RefCell<RelayShared>>,
    trace: Trace,
    host: RelayHost<F>,
) -> io::Result<()> {
    let udp_ports = config.udp_ports.clone();
    let mut relay = Relay::new(config, entropy);
    let (tx, mut rx) = mpsc::channel::<Event<N::Stream>>(EVENT_QUEUE);
    let (stream_tx, mut stream_rx) = mpsc::unbounded_channel::<(Key, StreamEvent)>();
    let mut pumps = StreamPumps::new(stream_tx).with_queue_limit(host.max_queued_bytes_per_stream);
    let shutdown = host.shutdown;
    tokio::pin!(shutdown);

    let listener = net
        .listen(SocketAddr::from(([0, 0, 0, 0], host.tcp_port)))
        .await?;
    let accept_tx = tx.clone();
    let accepting = tokio::task::spawn_local(async move {
        let mut next = 0u64;
        while let Ok((stream, peer)) = listener.accept().await {
            next += 1;
            if accept_tx
                .send(Event::Accepted(next, peer, stream))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut readers = vec![accepting];

    let mut media: BTreeMap<u16, Rc<N::Udp>> = BTreeMap::new();
    for port in udp_ports {
        let socket = Rc::new(net.bind_udp(SocketAddr::from(([0, 0, 0, 0], port))).await?);
        let reader = socket.clone();
        let tx = tx.clone();
        readers.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                if tx
                    .send(Event::UdpClient {
                        port,
                        from,
                        data: buf[..n].to_vec(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }));
        media.insert(port, socket);
    }
    let mut allocs: BTreeMap<u64, (Rc<N::Udp>, JoinHandle<()>)> = BTreeMap::new();
    shared.borrow_mut().listening = true;

    loop {
        let deadline = relay.poll_timeout();
        let mut stopping = false;
        tokio::select! {
            biased;
            () = &mut shutdown, if !relay.is_shutting_down() => {
                relay.shutdown(net.now());
                stopping = true;
            }
            Some(event) = rx.recv() => {
                let now = net.now();
                match event {
                    Event::Accepted(id, peer, stream) => {
                        pumps.adopt(Key::Client(id), stream);
                        relay.handle_input(RelayInput::TcpAccepted { conn: cloudproxy_core::relay::ClientConn(id), peer }, now);
                    }
                    Event::UdpClient { port, from, data } => {
                        relay.handle_input(RelayInput::UdpFromClient { local_port: port, from, data: &data }, now);
                    }
                    Event::UdpUp { alloc, from, data } => {
                        relay.handle_input(RelayInput::UdpFromUpstream { alloc: cloudproxy_core::relay::AllocId(alloc), from, data: &data }, now);
                    }
                }
            }
            Some((key, event)) = stream_rx.recv() => {
                let now = net.now();
                use cloudproxy_core::relay::{ClientConn, UpstreamConn};
                let closed = matches!(event, StreamEvent::Closed | StreamEvent::Failed(_));
                match (key, &event) {
                    (Key::Client(id), StreamEvent::Data(data)) => relay.handle_input(RelayInput::TcpData { conn: ClientConn(id), data }, now),
                    (Key::Client(id), StreamEvent::Closed) => relay.handle_input(RelayInput::TcpClosed { conn: ClientConn(id) }, now),
                    (Key::Up(id), StreamEvent::Connected) => relay.handle_input(RelayInput::UpstreamConnected { conn: UpstreamConn(id) }, now),
                    (Key::Up(id), StreamEvent::Failed(_)) => relay.handle_input(RelayInput::UpstreamFailed { conn: UpstreamConn(id) }, now),
                    (Key::Up(id), StreamEvent::Data(data)) => relay.handle_input(RelayInput::UpstreamData { conn: UpstreamConn(id), data }, now),
                    (Key::Up(id), StreamEvent::Closed) => relay.handle_input(RelayInput::UpstreamClosed { conn: UpstreamConn(id) }, now),
                    _ => {}
                }
                if closed {
                    pumps.forget(key);
                }
            }
            () = sleep_until(&net, deadline) => {
                relay.handle_timeout(net.now());
            }
        }
        while let Some(output) = relay.poll_output() {
            match output {
                RelayOutput::TcpSend { conn, data } => pumps.send(Key::Client(conn.0), data),
                RelayOutput::TcpClose { conn } => pumps.close(Key::Client(conn.0)),
                RelayOutput::UpstreamConnect { conn, to } => {
                    note_upstream(&shared, to);
                    pumps.connect(&net, Key::Up(conn.0), to, UPSTREAM_CONNECT_TIMEOUT);
                }
                RelayOutput::UpstreamSend { conn, data } => pumps.send(Key::Up(conn.0), data),
                RelayOutput::UpstreamClose { conn } => pumps.close(Key::Up(conn.0)),
                RelayOutput::UdpToClient {
                    local_port,
                    to,
                    data,
                } => {
                    if let Some(socket) = media.get(&local_port) {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
                RelayOutput::UdpBind { alloc } => {
                    let socket = Rc::new(net.bind_udp(SocketAddr::from(([0, 0, 0, 0], 0))).await?);
                    let reader = socket.clone();
                    let tx = tx.clone();
                    let id = alloc.0;
                    let task = tokio::task::spawn_local(async move {
                        let mut buf = vec![0u8; MAX_DATAGRAM];
                        while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                            if tx
                                .send(Event::UdpUp {
                                    alloc: id,
                                    from,
                                    data: buf[..n].to_vec(),
                                })
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                    allocs.insert(id, (socket, task));
                }
                RelayOutput::UdpToUpstream { alloc, to, data } => {
                    note_upstream(&shared, to);
                    if let Some((socket, _)) = allocs.get(&alloc.0) {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
                RelayOutput::UdpRelease { alloc } => {
                    if let Some((_, task)) = allocs.remove(&alloc.0) {
                        task.abort();
                    }
                }
                RelayOutput::Event(event) => trace_event(&trace, &net, &name, &event),
            }
        }
        {
            let mut s = shared.borrow_mut();
            s.counters = relay.counters().clone();
            s.sessions = relay.session_count();
            s.peak_sessions = s.peak_sessions.max(s.sessions);
            s.connections = relay.connection_count();
            s.peak_connections = s.peak_connections.max(s.connections);
            s.buffered_bytes = relay.buffered_bytes();
            s.peak_buffered_bytes = s.peak_buffered_bytes.max(s.buffered_bytes);
            s.queued_bytes = pumps.queued_bytes();
            s.peak_queued_bytes = s.peak_queued_bytes.max(s.queued_bytes);
            s.stream_overflows = pumps.overflows();
            s.udp_allocs = allocs.len();
        }
        if stopping {
            break;
        }
    }

    // Shutting down: the closing messages are queued (UDP ones already sent). Stop taking
    // new input, let the streams flush, then end every task of this host.
    for reader in &readers {
        reader.abort();
    }
    for (_, (_, task)) in std::mem::take(&mut allocs) {
        task.abort();
    }
    pumps.close_all();
    drop(pumps);
    let _ = tokio::time::timeout(host.flush_timeout, async {
        // Every stream task holds a sender: the channel ends once all have finished.
        while stream_rx.recv().await.is_some() {}
    })
    .await;
    shared.borrow_mut().listening = false;
    Ok(())
}

fn note_upstream(shared: &Rc<RefCell<RelayShared>>, to: SocketAddr) {
    let mut s = shared.borrow_mut();
    if s.upstream_destinations.len() < 4096 {
        s.upstream_destinations.insert(to);
    }
}

fn trace_event<N: Net>(trace: &Trace, net: &N, name: &str, event: &RelayEvent) {
    let (kind, fields) = match event {
        RelayEvent::SessionOpened {
            session_id,
            client,
            destination,
            udp_port,
        } => (
            "session_opened",
            json!({"session": format!("{session_id:016x}"), "client": client.to_string(), "destination": destination.to_string(), "udp_port": udp_port}),
        ),
        RelayEvent::SessionClosed { session_id, reason } => (
            "session_closed",
            json!({"session": format!("{session_id:016x}"), "reason": format!("{reason:?}")}),
        ),
        RelayEvent::MediaChannelOpened {
            session_id, peer, ..
        } => (
            "media_channel_opened",
            json!({"session": format!("{session_id:016x}"), "peer": peer.to_string()}),
        ),
        RelayEvent::Refused {
            code,
            peer,
            transport,
        } => (
            "refused",
            json!({"code": code.to_string(), "peer": peer.to_string(), "transport": format!("{transport:?}")}),
        ),
        RelayEvent::HandshakeTimedOut { peer } => {
            ("handshake_timed_out", json!({"peer": peer.to_string()}))
        }
        other => ("event", json!({"detail": format!("{other:?}")})),
    };
    trace.record(net.now(), name, kind, fields);
}
