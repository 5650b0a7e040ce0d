//! The cloud proxy's relay host: drives a [`Relay`] machine over the [`Net`] seam. TCP 4000 for
//! tunnels and media channels, UDP on the configured media ports, one upstream UDP socket per
//! session that sends media.
//!
//! [`run_relay`] is the simulation's host (it runs until its host crashes); [`run_relay_with`]
//! is the same loop with what real serving adds ([`RelayHost`]): another TCP port, a graceful
//! shutdown that closes every session with `ShuttingDown` and flushes the closing messages,
//! and the links of a relay served by several workers (shards).
//!
//! The host is the data plane (see `docs/serving.md`, "The data plane"):
//!
//! - the machine sees every byte until a tunnel is accepted, then hands the tunnel over
//!   ([`RelayOutput::Splice`](cloudproxy_core::relay::RelayOutput::Splice)); the connection's task moves its bytes ([`Net::tunnel`]:
//!   `splice(2)` on Linux, a bounded copy elsewhere and in the simulation) and the loop reports
//!   what moved at most every `activity_report_interval`;
//! - nothing on the data path is unbounded: a connection has one chunk in flight to the
//!   machine, a write queue bounded in bytes and in time, a UDP socket a bounded receive and
//!   send queue (full: dropped and counted), and the loop never waits on a socket;
//! - the loop is fair: bounded batches per source per round (`relay/driver.rs`).

mod conn;
mod driver;
mod inbox;
mod poll;
// One `unsafe` call, with its SAFETY note: staging queued datagrams for one io_uring submit.
#[allow(unsafe_code)]
mod ring;
mod udp;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{Ledger, Relay, RelayConfig, RelayCounters, RelayEvent};
use cloudproxy_core::time::Clocks;
use cloudproxy_core::wire::RELAY_TCP_PORT;
use tokio::sync::mpsc;

use crate::net::{Listener, Net};
use crate::trace::{session_hex, Trace, TraceEvent};
use conn::ConnLimits;
use driver::Driver;
use inbox::{Source, ACCEPT_QUEUE};
use udp::Socket;

/// What a relay host shares with the world (for the report, the oracles and the metrics).
/// Published once per round of the loop: a constant cost, whatever the number of sessions.
#[derive(Clone, Debug, Default)]
pub struct RelayShared {
    /// The machine's counters.
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
    /// Bytes queued for writing on the host's client connections, not yet written (tunnels
    /// hold none: their bytes are in the kernel's pipes or the copy's bounded buffers).
    pub queued_bytes: usize,
    /// Most bytes queued at once.
    pub peak_queued_bytes: usize,
    /// Connections cut because their peer did not read: a write that would exceed
    /// [`RelayHost::max_queued_bytes_per_stream`], or no progress for
    /// [`RelayHost::write_timeout`].
    pub stream_overflows: u64,
    /// Upstream UDP sockets open now.
    pub udp_allocs: usize,
    /// Datagrams dropped because a socket's send queue was full.
    pub udp_send_dropped: u64,
    /// Received messages that held several datagrams the kernel coalesced (UDP GRO).
    pub udp_gro_messages: u64,
    /// Datagrams that came in such messages.
    pub udp_gro_datagrams: u64,
    /// Submits of one round's sends on many sockets in one system call (io_uring, Linux).
    pub udp_ring_submits: u64,
    /// Datagrams those submits sent.
    pub udp_ring_datagrams: u64,
    /// Loops whose io_uring is in use (1 for a worker with one; 0 where it is off, the
    /// kernel refused one, or a submit failed).
    pub udp_ring_loops: usize,
    /// Spare datagram buffers in the machine's pool (sent datagrams' buffers, given back).
    pub udp_spare_buffers: usize,
    /// Datagram buffers the machine allocated because none was spare (stops growing once the
    /// pool is warm: the loop gives every sent or dropped datagram's buffer back).
    pub udp_buffers_allocated: u64,
    /// Tunnels spliced and running now.
    pub tunnels: usize,
    /// Tunnels that ran on the kernel's `splice(2)` (counted when they end).
    pub tunnels_kernel_total: u64,
    /// Connections handed to another shard (their session lives there).
    pub handoffs_out: u64,
    /// Connections taken from another shard.
    pub handoffs_in: u64,
    /// Whether every socket is bound (the host serves).
    pub listening: bool,
}

/// Gives a connection to shard `shard` of the same relay: the stream, the client's address,
/// and the bytes read from it so far.
pub type HandoffOut<S> = Box<dyn Fn(u16, S, SocketAddr, Vec<u8>)>;

/// Connections handed to this shard: the stream, the client's address, the bytes read so far.
pub type HandoffIn<S> = mpsc::Receiver<(S, SocketAddr, Vec<u8>)>;

/// How a relay host serves, beyond the relay's own configuration.
pub struct RelayHost<F, S> {
    /// The TCP port for tunnels and media channels. Default [`RELAY_TCP_PORT`].
    pub tcp_port: u16,
    /// More TCP ports serving exactly the same (**beyond the seed**: the simulated relays add
    /// [`RELAY_TLS_PORT`](cloudproxy_core::wire::RELAY_TLS_PORT), 443, for clients that may
    /// only reach TCP 443). Default none.
    pub also_tcp_ports: Vec<u16>,
    /// Resolves when the relay must shut down gracefully. Default: never.
    pub shutdown: F,
    /// How long a shutdown waits for the closing messages to be written, and how long a
    /// closed connection may take to write what was queued. Default 2 s.
    pub flush_timeout: Duration,
    /// Most bytes queued for writing on one client connection (a peer that does not read):
    /// beyond it the connection is cut. Default 4 MiB.
    pub max_queued_bytes_per_stream: usize,
    /// Longest a connection's write queue may go without progress before it is cut.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// Shares nonces and bounds with the other shards; `None`: a relay alone.
    pub ledger: Option<Box<dyn Ledger>>,
    /// Where connections of other shards go; `None`: one shard.
    pub handoff_out: Option<HandoffOut<S>>,
    /// Connections handed to this shard by the others.
    pub handoff_in: Option<HandoffIn<S>>,
}

impl<S> RelayHost<std::future::Pending<()>, S> {
    /// The simulation's host: port 4000, never shut down, one shard.
    pub fn new() -> Self {
        RelayHost::with_shutdown(std::future::pending())
    }
}

impl<S> Default for RelayHost<std::future::Pending<()>, S> {
    fn default() -> Self {
        RelayHost::new()
    }
}

impl<F: Future<Output = ()>, S> RelayHost<F, S> {
    /// The defaults, shutting down when `shutdown` resolves.
    pub fn with_shutdown(shutdown: F) -> Self {
        RelayHost {
            tcp_port: RELAY_TCP_PORT,
            also_tcp_ports: Vec::new(),
            shutdown,
            flush_timeout: Duration::from_secs(2),
            max_queued_bytes_per_stream: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            ledger: None,
            handoff_out: None,
            handoff_in: None,
        }
    }
}

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
/// [`Relay::shutdown`]). Only a socket of the host itself that cannot be bound at start is an
/// error; anything that fails later ends the one session it belongs to.
pub async fn run_relay_with<N: Net, F: Future<Output = ()>>(
    net: N,
    name: String,
    config: RelayConfig,
    entropy: Entropy,
    shared: Rc<RefCell<RelayShared>>,
    trace: Trace,
    mut host: RelayHost<F, N::Stream>,
) -> io::Result<()> {
    // Both clocks, each from its own source: tickets are checked in Unix time.
    let clocks = Clocks::new(net.now(), net.unix_now());
    let relay = match host.ledger.take() {
        Some(ledger) => Relay::with_ledger(config, entropy, ledger, clocks),
        None => Relay::new(config, entropy, clocks),
    };
    let limits = ConnLimits {
        max_queued: host.max_queued_bytes_per_stream,
        write_timeout: host.write_timeout,
        linger: host.flush_timeout,
    };
    let mut driver = Driver::new(
        net,
        name,
        relay,
        trace,
        shared,
        limits,
        host.handoff_out.take(),
    );
    let ports: Vec<u16> = std::iter::once(host.tcp_port)
        .chain(host.also_tcp_ports.iter().copied())
        .collect();
    let tasks = open_sockets(&mut driver, &ports, host.handoff_in.take()).await?;
    driver.shared.borrow_mut().listening = true;
    driver.serve(host.shutdown).await;
    shut_down(&mut driver, tasks, host.flush_timeout).await;
    Ok(())
}

/// Binds the listener and the media ports of the relay's shard, and starts the acceptor (and
/// the receiver of other shards' connections).
async fn open_sockets<N: Net>(
    driver: &mut Driver<N>,
    tcp_ports: &[u16],
    handoff_in: Option<HandoffIn<N::Stream>>,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut listeners = Vec::new();
    for &port in tcp_ports {
        let at = SocketAddr::from(([0, 0, 0, 0], port));
        listeners.push(driver.net.listen(at).await?);
    }
    let config = driver.relay.config().clone();
    let start = *config.udp_ports.start();
    for port in config.udp_ports.clone() {
        if !config.shard.owns_port(start, port) {
            continue;
        }
        let udp = driver
            .net
            .bind_udp(SocketAddr::from(([0, 0, 0, 0], port)))
            .await?;
        let mut socket = Socket::pending();
        socket.start(Rc::new(udp), Source::Media(port), &driver.inbox);
        driver.media.insert(port, socket);
    }
    let mut tasks = Vec::new();
    for listener in listeners {
        let inbox = driver.inbox.clone();
        tasks.push(tokio::task::spawn_local(async move {
            loop {
                while inbox.accepted.borrow().len() >= ACCEPT_QUEUE {
                    inbox.accept_room.notified().await;
                }
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                inbox.post(|i| {
                    i.accepted
                        .borrow_mut()
                        .push_back((stream, peer, Vec::new()))
                });
            }
        }));
    }
    if let Some(mut incoming) = handoff_in {
        let inbox = driver.inbox.clone();
        tasks.push(tokio::task::spawn_local(async move {
            while let Some(item) = incoming.recv().await {
                while inbox.accepted.borrow().len() >= ACCEPT_QUEUE {
                    inbox.accept_room.notified().await;
                }
                inbox.post(|i| i.accepted.borrow_mut().push_back(item));
            }
        }));
    }
    Ok(tasks)
}

/// The graceful end: every session closed with a reason, the closing messages flushed (for
/// at most `flush_timeout`), then every task of the host ended.
async fn shut_down<N: Net>(
    driver: &mut Driver<N>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    flush_timeout: Duration,
) {
    for task in &tasks {
        task.abort();
    }
    driver.begin_shutdown();
    let _ = tokio::time::timeout(flush_timeout, async {
        while !driver.flushed() {
            // Tunnel ends and the like still come in: let the machine hear them.
            driver.round();
            driver.publish();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    driver.abort_all();
    let mut s = driver.shared.borrow_mut();
    s.listening = false;
}

fn note_upstream(shared: &Rc<RefCell<RelayShared>>, to: SocketAddr) {
    let mut s = shared.borrow_mut();
    if s.upstream_destinations.len() < 4096 {
        s.upstream_destinations.insert(to);
    }
}

fn trace_event<N: Net>(trace: &Trace, net: &N, name: &str, event: &RelayEvent) {
    let line = match event {
        RelayEvent::SessionOpened {
            session_id,
            client,
            destination,
            udp_port,
        } => TraceEvent::SessionOpened {
            session: session_hex(*session_id),
            client: *client,
            destination: *destination,
            udp_port: *udp_port,
        },
        RelayEvent::SessionClosed { session_id, reason } => TraceEvent::SessionClosed {
            session: session_hex(*session_id),
            reason: *reason,
        },
        RelayEvent::MediaChannelOpened {
            session_id, peer, ..
        } => TraceEvent::MediaChannelOpened {
            session: session_hex(*session_id),
            peer: *peer,
        },
        RelayEvent::Refused {
            code,
            peer,
            transport,
        } => TraceEvent::Refused {
            code: code.to_string(),
            peer: *peer,
            transport: *transport,
        },
        RelayEvent::HandshakeTimedOut { peer } => TraceEvent::HandshakeTimedOut { peer: *peer },
        // A kind the core adds later is traced once `TraceEvent` names it (the trace stays
        // typed: no `Debug` text in its place).
        _ => return,
    };
    trace.record(net.now(), name, &line);
}
