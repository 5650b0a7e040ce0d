//! The cloud proxy's access point (AP/LBS) host: a thin driver of the sans-IO
//! [`AccessPoint`] on UDP and TCP at each of the seed's edge-node ports (1080, 8000, 25000,
//! 9700), or the ports given to [`run_ap_on`].
//!
//! Every rule (padding, rate limits, connection caps, the idle timeout, the request cap,
//! framing) is the machine's; this file only moves bytes: datagrams become
//! [`ApInput::Datagram`], accepted connections [`ApInput::TcpAccepted`], reads
//! [`ApInput::TcpData`], a peer's close or a failed write [`ApInput::TcpClosed`]; the outputs
//! are sent, written or closed in order, and one timer follows [`AccessPoint::poll_timeout`].
//!
//! Memory is bounded by the machine's limits. Inputs reach the loop through one channel of
//! [`EVENT_QUEUE`] events (a flood waits in the kernel's socket buffers, and is dropped
//! there). Each connection's writes go through a queue of at most
//! [`ApConfig::max_requests_per_tcp_connection`] answers (capped at [`MAX_WRITE_QUEUE`]), the
//! most the machine ever sends on one connection, each at most 322 bytes; every write must
//! finish within [`ApConfig::tcp_idle_timeout`], or the connection is dropped and reported
//! closed. So a client that never reads holds at most one connection slot, one read buffer
//! and its few answers, until its write times out; with every slot taken, about
//! `max_tcp_connections × (4 KiB + 16 × 322 B)`, some 9 MiB at the defaults.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::ap::{AccessPoint, ApConfig, ApConn, ApCounters, ApEvent, ApInput, ApOutput};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::Clocks;
use cloudproxy_core::wire::AP_PORTS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::net::{sleep_until, Listener, Net, Udp};
use crate::trace::{Trace, TraceEvent};

/// Events (datagrams, accepted connections, reads, closes) waiting for the loop.
pub const EVENT_QUEUE: usize = 1024;
/// Most answers queued for writing on one connection.
pub const MAX_WRITE_QUEUE: usize = 64;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 4096;
/// Read size on connections.
const READ_CHUNK: usize = 4096;

/// What the socket tasks tell the loop.
enum Event<S> {
    Datagram {
        local: SocketAddr,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Accepted(S, SocketAddr),
    Data(u64, Vec<u8>),
    /// The peer closed, the connection broke, or a write failed or timed out.
    Closed(u64),
}

/// Runs an access point host until it crashes. `counters` receives the machine's counters.
pub async fn run_ap<N: Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
) -> io::Result<()> {
    run_ap_on(net, name, config, entropy, counters, trace, &AP_PORTS).await
}

/// Runs an access point host on `ports` (UDP and TCP each) until it crashes; fails when a
/// socket cannot be bound.
pub async fn run_ap_on<N: Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
    ports: &[u16],
) -> io::Result<()> {
    run_ap_on_with(net, name, config, entropy, counters, trace, ports, &[]).await
}

/// [`run_ap_on`], also listening on `tcp_only_ports` over TCP alone (**beyond the seed**: 443,
/// where no UDP is offered, docs/protocol.md §12).
#[allow(clippy::too_many_arguments)]
pub async fn run_ap_on_with<N: Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
    ports: &[u16],
    tcp_only_ports: &[u16],
) -> io::Result<()> {
    let write_queue = usize::try_from(config.max_requests_per_tcp_connection)
        .unwrap_or(MAX_WRITE_QUEUE)
        .clamp(1, MAX_WRITE_QUEUE);
    let write_timeout = config.tcp_idle_timeout;
    // Both clocks, each from its own source: tickets are issued in Unix time.
    let clocks = Clocks::new(net.now(), net.unix_now());
    let mut ap = AccessPoint::new(config, entropy, clocks);
    let (tx, mut rx) = mpsc::channel::<Event<N::Stream>>(EVENT_QUEUE);
    let mut sockets: BTreeMap<u16, Rc<N::Udp>> = BTreeMap::new();
    let mut readers = Vec::new();
    for &port in ports {
        let at = SocketAddr::from(([0, 0, 0, 0], port));
        let udp = Rc::new(net.bind_udp(at).await?);
        let listener = net.listen(at).await?;
        let local = udp.local_addr().unwrap_or(at);
        readers.push(tokio::task::spawn_local(read_datagrams(
            udp.clone(),
            local,
            tx.clone(),
        )));
        readers.push(tokio::task::spawn_local(accept(listener, tx.clone())));
        sockets.insert(port, udp);
    }
    for &port in tcp_only_ports {
        let listener = net.listen(SocketAddr::from(([0, 0, 0, 0], port))).await?;
        readers.push(tokio::task::spawn_local(accept(listener, tx.clone())));
    }
    let mut writers: BTreeMap<u64, mpsc::Sender<Vec<u8>>> = BTreeMap::new();
    let mut next_conn = 0u64;
    loop {
        let deadline = ap.poll_timeout();
        tokio::select! {
            biased;
            () = sleep_until(&net, deadline) => ap.handle_timeout(net.now()),
            Some(event) = rx.recv() => {
                let now = net.now();
                // Tickets expire on the wall clock, read beside the monotonic `now`.
                ap.handle_input(ApInput::WallClock(net.unix_now()), now);
                match event {
                    Event::Datagram { local, from, data } => {
                        ap.handle_input(ApInput::Datagram { local, from, data: &data }, now);
                    }
                    Event::Accepted(stream, peer) => {
                        next_conn += 1;
                        let (writes, queue) = mpsc::channel(write_queue);
                        writers.insert(next_conn, writes);
                        let conn = serve_conn(stream, next_conn, tx.clone(), queue, write_timeout);
                        tokio::task::spawn_local(conn);
                        ap.handle_input(ApInput::TcpAccepted { conn: ApConn(next_conn), peer }, now);
                    }
                    Event::Data(id, data) => {
                        ap.handle_input(ApInput::TcpData { conn: ApConn(id), data: &data }, now);
                    }
                    Event::Closed(id) => {
                        writers.remove(&id);
                        ap.handle_input(ApInput::TcpClosed { conn: ApConn(id) }, now);
                    }
                }
            }
        }
        while let Some(output) = ap.poll_output() {
            match output {
                ApOutput::UdpSend { local, to, data } => {
                    if let Some(socket) = sockets.get(&local.port()) {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
                ApOutput::TcpSend { conn, data } => {
                    let full = writers
                        .get(&conn.0)
                        .is_some_and(|w| w.try_send(data).is_err());
                    if full {
                        // Cannot happen within the machine's bounds; drop the connection
                        // rather than queue more.
                        writers.remove(&conn.0);
                        ap.handle_input(ApInput::TcpClosed { conn }, net.now());
                    }
                }
                // Dropping the queue's sender: the connection's task writes what is queued,
                // then shuts the stream down.
                ApOutput::TcpClose { conn } => drop(writers.remove(&conn.0)),
                ApOutput::Event(event) => trace_event(&trace, &net, &name, &event),
            }
        }
        *counters.borrow_mut() = ap.counters().clone();
    }
}

/// Reads datagrams from `udp` into the loop.
async fn read_datagrams<U: Udp, S>(udp: Rc<U>, local: SocketAddr, tx: mpsc::Sender<Event<S>>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok((n, from)) = udp.recv_from(&mut buf).await {
        let data = buf.get(..n).unwrap_or_default().to_vec();
        if tx
            .send(Event::Datagram { local, from, data })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Hands accepted connections to the loop.
async fn accept<L: Listener>(listener: L, tx: mpsc::Sender<Event<L::Stream>>) {
    while let Ok((stream, peer)) = listener.accept().await {
        if tx.send(Event::Accepted(stream, peer)).await.is_err() {
            return;
        }
    }
}

/// One connection: its reads go to the loop, its queued answers to the stream. Ends when the
/// loop drops the queue (after writing what was queued), or when the stream breaks or a
/// write does not finish within `write_timeout` (reported to the loop as a close).
async fn serve_conn<S, T>(
    mut stream: S,
    id: u64,
    tx: mpsc::Sender<Event<T>>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    write_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_CHUNK];
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            write = queue.recv() => match write {
                Some(data) => {
                    let written = tokio::time::timeout(write_timeout, stream.write_all(&data)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        if reading {
                            let _ = tx.send(Event::Closed(id)).await;
                        }
                        return;
                    }
                }
                None => {
                    let _ = tokio::time::timeout(write_timeout, stream.shutdown()).await;
                    return;
                }
            },
            read = stream.read(&mut buf), if reading => match read {
                Ok(n) if n > 0 => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    if tx.send(Event::Data(id, data)).await.is_err() {
                        return;
                    }
                }
                // The peer is gone: report it, then keep writing what the loop queued until
                // it drops the queue.
                _ => {
                    reading = false;
                    if tx.send(Event::Closed(id)).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Records an event in the trace: every request as `ap_request` (as before this driver was
/// a thin one), refused and ended connections under their own kinds.
fn trace_event<N: Net>(trace: &Trace, net: &N, name: &str, event: &ApEvent) {
    let line = match event {
        ApEvent::Request {
            from,
            transport,
            outcome,
        } => TraceEvent::ApRequest {
            from: *from,
            transport: *transport,
            answered: outcome.answered(),
        },
        ApEvent::TcpRefused { peer, cause, .. } => TraceEvent::ApTcpRefused {
            peer: *peer,
            cause: *cause,
        },
        // Connections end all the time (every client closes its own); only the machine's
        // counters keep them, so that traces stay as they were.
        ApEvent::TcpClosed { .. } => return,
        // A kind the core adds later is traced once `TraceEvent` names it (the trace stays
        // typed: no `Debug` text in its place).
        _ => return,
    };
    trace.record(net.now(), name, &line);
}
