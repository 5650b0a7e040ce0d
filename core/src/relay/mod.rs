//! The cloud proxy's relay side of the protocol, as a sans-IO machine.
//!
//! - The access point ("AP/LBS"), which hands out relays and tickets, is its own machine in
//!   [`crate::ap`]; [`AccessPoint`], [`ApConfig`] and [`ApCounters`] are re-exported here for
//!   the paths that named them before.
//! - [`Relay`] (on the relay addresses, TCP [`RELAY_TCP_PORT`](crate::wire::RELAY_TCP_PORT) and
//!   UDP [`RELAY_UDP_PORTS`](crate::wire::RELAY_UDP_PORTS)) opens signalling tunnels to SD-RTN
//!   for clients holding a valid ticket, and relays their media over UDP or over a TCP media
//!   channel. It only ever reaches destinations inside the configured SD-RTN blocks (see
//!   [`destination_allowed`]), bounds every resource, and ends a misbehaving client's own
//!   connection without disturbing anyone else.
//!
//! # Driving a [`Relay`]: the drain contract
//!
//! The relay never blocks, never reads a clock and never touches a socket. The driver owns the
//! sockets and the timer, and runs this loop:
//!
//! ```text
//! relay.handle_input(input, now)     // or relay.handle_timeout(now) when the timer fires
//! while let Some(out) = relay.poll_output() {
//!     perform(out)                   // send, connect, bind, close, or record the event
//! }
//! timer = relay.poll_timeout()       // re-arm: call handle_timeout at (or after) this instant
//! ```
//!
//! 1. After **every** `handle_input` or `handle_timeout`, drain [`Relay::poll_output`] until it
//!    returns `None`, and perform the outputs in the order they come: the order of the bytes of
//!    one connection is the order of its outputs (a [`TunnelAccept`](crate::wire::Message::TunnelAccept)
//!    comes before the first raw byte, an `Error` before its `TcpClose`).
//! 2. Then re-arm the timer from [`Relay::poll_timeout`]; `None` means no timer is needed. An
//!    early or spurious [`Relay::handle_timeout`] call is harmless.
//! 3. Ids: [`ClientConn`]s are chosen by the driver (unique among its open connections);
//!    [`UpstreamConn`]s and [`AllocId`]s are chosen by the relay, announced by
//!    [`RelayOutput::UpstreamConnect`] and [`RelayOutput::UdpBind`].
//! 4. After the relay emits a `TcpClose`, `UpstreamClose`, `UdpRelease` or `TcpHandoff`, it has
//!    forgotten that id; inputs that still arrive for it (races) are ignored and counted in
//!    [`RelayCounters::ignored_inputs`]. When the driver reports a close
//!    ([`RelayInput::TcpClosed`], [`RelayInput::UpstreamClosed`], [`RelayInput::UpstreamFailed`],
//!    [`RelayInput::UdpBindFailed`]) the relay does not echo a close for that same id.
//! 5. **Control plane and data plane.** The relay reads every byte of a connection until its
//!    tunnel is accepted. Then it emits [`RelayOutput::Splice`] (after the `TunnelAccept` and
//!    the client's early bytes): from there on the **driver** moves the tunnel's raw bytes
//!    between the two connections itself (`splice(2)` or a bounded copy), and never feeds them
//!    to the relay ([`RelayInput::TcpData`] and [`RelayInput::UpstreamData`] for a spliced
//!    tunnel are ignored). It reports what moved with [`RelayInput::TunnelActivity`] at least
//!    every `report_interval` while bytes flow (never when nothing moved), and once more
//!    before it reports either side closed; the relay keeps every rule: idle expiry, counters,
//!    shutdown. A tunnel is closed only by the relay (`TcpClose` and `UpstreamClose`) or
//!    because a side closed (the driver reports it after writing what it had read from that
//!    side to the other): a slow reader slows the sender (backpressure), it is never a reason.
//! 6. The relay holds bytes only while a tunnel's upstream connection is being opened (bounded by
//!    [`RelayConfig::max_buffered_bytes_per_session`]) and inside its frame readers (one frame
//!    per connection at most). What it sends on a handshake connection or a media channel is
//!    the driver's to bound: a peer that does not read must not hold memory without bound or
//!    time limit (the driver cuts it and reports [`RelayInput::TcpClosed`]).
//! 7. Every output that can fail has its failure input: `UpstreamConnect` →
//!    [`RelayInput::UpstreamFailed`], `UdpBind` → [`RelayInput::UdpBindFailed`]. A failure ends
//!    that one session, with a reason; the driver never has timeouts of its own (the connect
//!    deadline is the relay's, [`RelayConfig::handshake_timeout`]: it then emits
//!    `UpstreamClose`, and the driver abandons the connect).
//! 8. Shards: with [`RelayConfig::shard`] of more than one, a `MediaChannelOpen` for another
//!    shard's session is handed back as [`RelayOutput::TcpHandoff`]: the driver moves the
//!    connection to that shard's relay and feeds it there as a new connection.
//! 9. **Datagram buffers.** The `data` of every output belongs to the driver. The media path's
//!    [`RelayOutput::UdpToClient`] and [`RelayOutput::UdpToUpstream`] take theirs from the
//!    relay's bounded pool; once such a datagram is sent (or dropped: a full send queue, a
//!    failed send, a released socket) the driver gives the buffer back with
//!    [`Relay::recycle`], and a relay with spare buffers relays a datagram without allocating
//!    (the client's media is decoded in place, [`DatagramView`](crate::wire::DatagramView),
//!    and SD-RTN's is framed into a spare buffer, [`MediaFrame`](crate::wire::MediaFrame)).
//!    Recycling is optional (a driver that never recycles still works; each datagram then
//!    allocates) and takes any `Vec<u8>`: the pool keeps at most [`POOL_MAX_BUFFERS`], of a
//!    capacity in [`POOL_KEPT_CAPACITY`], and drops the rest, so its memory stays bounded.
//!
//! ```
//! use cloudproxy_core::entropy::Entropy;
//! use cloudproxy_core::relay::{
//!     ClientConn, Relay, RelayConfig, RelayEvent, RelayInput, RelayOutput,
//! };
//! use cloudproxy_core::time::{Clocks, Instant, UnixTime};
//!
//! // Both clocks, read by the driver at start-up: tickets are checked in Unix time.
//! let now = Instant::from_millis(1_000);
//! let clocks = Clocks::new(now, UnixTime::from_millis(1_764_547_200_000));
//! let mut relay = Relay::new(RelayConfig::default(), Entropy::from_u64(1), clocks);
//! let peer = "203.0.113.7:50000".parse().unwrap();
//! relay.handle_input(RelayInput::TcpAccepted { conn: ClientConn(1), peer }, now);
//! relay.handle_input(RelayInput::TcpData { conn: ClientConn(1), data: b"GET / HTTP/1.1\r\n" }, now);
//! let mut outputs = Vec::new();
//! while let Some(out) = relay.poll_output() {
//!     outputs.push(out);
//! }
//! // Not our protocol: an Error frame, the close, and an event to trace.
//! assert!(matches!(&outputs[0], RelayOutput::TcpSend { conn: ClientConn(1), .. }));
//! assert_eq!(outputs[1], RelayOutput::TcpClose { conn: ClientConn(1) });
//! assert!(matches!(&outputs[2], RelayOutput::Event(RelayEvent::Refused { .. })));
//! assert_eq!(relay.counters().refused_malformed, 1);
//! assert_eq!(relay.poll_timeout(), None);
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use crate::entropy::Entropy;
use crate::time::{Clocks, Instant, UnixTime};
use crate::wire::{ErrorCode, Message, HEADER_LEN};

mod allow;
mod config;
mod events;
mod ledger;
mod media;
mod pool;
mod rebind;
mod replay;
mod session;
mod tcp;

#[cfg(test)]
mod tests;

#[doc(no_inline)]
pub use crate::ap::{AccessPoint, ApConfig, ApCounters};
pub use allow::{destination_allowed, is_special_purpose, Cidr, CidrError, SPECIAL_PURPOSE_RANGES};
pub use config::{RelayConfig, Shard};
pub use events::{RelayCounters, RelayEvent, RelayGauges, SessionEnd, Transport};
pub use ledger::{Ledger, LocalLedger, Nonce, NonceRefusal, Slot, SlotRefusal};
pub use pool::{POOL_KEPT_CAPACITY, POOL_MAX_BUFFERS};

use pool::BufferPool;
use session::{Conn, Session, TimerKey};

/// A TCP connection accepted on the relay's TCP port, named by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientConn(pub u64);

/// A TCP connection the relay opens to SD-RTN, named by the relay in
/// [`RelayOutput::UpstreamConnect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UpstreamConn(pub u64);

/// An upstream UDP socket (one per session that sends media), named by the relay in
/// [`RelayOutput::UdpBind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocId(pub u64);

/// Something that happened on one of the relay's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayInput<'a> {
    /// A client connected to the relay's TCP port.
    TcpAccepted {
        /// The id the driver gives the connection.
        conn: ClientConn,
        /// The client's address.
        peer: SocketAddr,
    },
    /// Bytes arrived on a client connection.
    TcpData {
        /// The connection.
        conn: ClientConn,
        /// The bytes, any amount (the relay consumes all of them).
        data: &'a [u8],
    },
    /// The client closed its connection (or it broke).
    TcpClosed {
        /// The connection.
        conn: ClientConn,
    },
    /// A connection asked for with [`RelayOutput::UpstreamConnect`] is established.
    UpstreamConnected {
        /// The connection.
        conn: UpstreamConn,
    },
    /// A connection asked for with [`RelayOutput::UpstreamConnect`] could not be established.
    UpstreamFailed {
        /// The connection.
        conn: UpstreamConn,
    },
    /// Bytes arrived from SD-RTN on an upstream connection.
    UpstreamData {
        /// The connection.
        conn: UpstreamConn,
        /// The bytes.
        data: &'a [u8],
    },
    /// SD-RTN closed an upstream connection (or it broke).
    UpstreamClosed {
        /// The connection.
        conn: UpstreamConn,
    },
    /// What a spliced tunnel moved since the last report (see the drain contract, point 5).
    TunnelActivity {
        /// The tunnel's client connection, as in [`RelayOutput::Splice`].
        client: ClientConn,
        /// Bytes written to SD-RTN (client → upstream) since the last report.
        bytes_up: u64,
        /// Bytes written to the client (upstream → client) since the last report.
        bytes_down: u64,
    },
    /// A socket asked for with [`RelayOutput::UdpBind`] could not be opened (out of
    /// descriptors or ports): the relay ends that session.
    UdpBindFailed {
        /// The socket.
        alloc: AllocId,
    },
    /// A datagram arrived from a client on one of the relay's UDP ports.
    UdpFromClient {
        /// The relay's port it arrived on.
        local_port: u16,
        /// The sender.
        from: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// A datagram arrived from SD-RTN on an upstream UDP socket.
    UdpFromUpstream {
        /// The socket it arrived on.
        alloc: AllocId,
        /// The sender.
        from: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// A fresh reading of the wall clock at this input's `now`: the time tickets are checked
    /// against. It replaces the reading the relay was built with (see [`Clocks`]); between
    /// readings Unix time advances with `now`. A driver that follows the system's wall clock
    /// (steps included) gives one before every input that may carry a `TunnelOpen`
    /// (`TcpData`).
    WallClock(UnixTime),
}

/// Something the driver must do, or an event to record. See the module docs for the order.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOutput {
    /// Send bytes to a client connection.
    TcpSend {
        /// The connection.
        conn: ClientConn,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close a client connection (after sending what was queued before).
    TcpClose {
        /// The connection.
        conn: ClientConn,
    },
    /// Open a TCP connection to SD-RTN; answer with [`RelayInput::UpstreamConnected`] or
    /// [`RelayInput::UpstreamFailed`].
    UpstreamConnect {
        /// The id of the new connection.
        conn: UpstreamConn,
        /// Where to connect; always inside the SD-RTN allow-list.
        to: SocketAddr,
    },
    /// Send bytes on an upstream connection.
    UpstreamSend {
        /// The connection.
        conn: UpstreamConn,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close an upstream connection (after sending what was queued before).
    UpstreamClose {
        /// The connection.
        conn: UpstreamConn,
    },
    /// Send a datagram to a client from one of the relay's UDP ports.
    UdpToClient {
        /// The relay's port to send from.
        local_port: u16,
        /// The client's address.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Open an upstream UDP socket (any local port) for a session; answer a failure with
    /// [`RelayInput::UdpBindFailed`] (success needs no answer: datagrams for it may follow at
    /// once, and the driver holds them, bounded, until the socket is open).
    UdpBind {
        /// The id of the new socket.
        alloc: AllocId,
    },
    /// Send a datagram to SD-RTN from an upstream UDP socket.
    UdpToUpstream {
        /// The socket.
        alloc: AllocId,
        /// Where to; always inside the SD-RTN allow-list.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Close an upstream UDP socket.
    UdpRelease {
        /// The socket.
        alloc: AllocId,
    },
    /// The tunnel is established: from now on the driver moves the raw bytes between `client`
    /// and `upstream` itself, after what was sent on them before (the `TunnelAccept`, the
    /// early bytes), and reports them with [`RelayInput::TunnelActivity`] at least every
    /// `report_interval` while they flow. Closes still come from the relay (`TcpClose`,
    /// `UpstreamClose`) or are reported to it.
    Splice {
        /// The session.
        session_id: u64,
        /// The client's tunnel connection.
        client: ClientConn,
        /// The upstream connection.
        upstream: UpstreamConn,
        /// How often, at most, to report activity while bytes flow.
        report_interval: std::time::Duration,
    },
    /// The connection's session belongs to another shard ([`RelayConfig::shard`]): the relay
    /// has forgotten `conn` (no close follows); the driver gives the connection to shard
    /// `shard`, whose relay must be fed [`RelayInput::TcpAccepted`] for it and then `data`
    /// (the bytes it had read, to be read again there) before anything newer.
    TcpHandoff {
        /// The connection.
        conn: ClientConn,
        /// The shard that owns its session.
        shard: u16,
        /// The bytes read from it so far, in order.
        data: Vec<u8>,
    },
    /// Something to trace.
    Event(RelayEvent),
}

/// The relay: signalling tunnels and media relaying between clients and SD-RTN.
///
/// See the [module docs](self) for the drain contract.
#[derive(Debug)]
pub struct Relay {
    /// The configuration, fixed at construction.
    config: RelayConfig,
    /// Session ids.
    entropy: Entropy,
    /// Open client connections.
    conns: BTreeMap<ClientConn, Conn>,
    /// Sessions by id, from the accepted `TunnelOpen` on (connecting ones included).
    sessions: BTreeMap<u64, Session>,
    /// Which session each upstream connection belongs to.
    upstreams: BTreeMap<UpstreamConn, u64>,
    /// Which session each upstream UDP socket belongs to.
    allocs: BTreeMap<AllocId, u64>,
    /// Sessions per client IP (canonical form): who is a client of this relay.
    sessions_per_ip: BTreeMap<IpAddr, usize>,
    /// Connections still in their handshake (awaiting the first message, or connecting).
    pending_handshakes: usize,
    /// Used nonces and the slots of the global and per-address bounds, shared by the shards.
    ledger: Box<dyn Ledger>,
    /// Bytes held in every connection's buffers (the sum of each `Conn::held`).
    buffered_total: usize,
    /// The gauges' peaks.
    peaks: RelayGauges,
    /// Deadlines: every connection awaiting its first message and every session has one entry.
    timers: BTreeSet<(Instant, TimerKey)>,
    /// The next upstream connection id.
    next_upstream: u64,
    /// The next upstream UDP socket id.
    next_alloc: u64,
    /// Outputs not yet polled.
    out: VecDeque<RelayOutput>,
    /// Spare datagram buffers for the media path's UDP outputs (see [`Relay::recycle`]).
    pool: BufferPool,
    /// Counters.
    counters: RelayCounters,
    /// Start of the current one-second window of UDP error replies.
    udp_error_window: Instant,
    /// UDP error replies sent in the current window.
    udp_errors_in_window: u32,
    /// Set by [`Relay::shutdown`]: every new connection is refused with `ShuttingDown`.
    shutting_down: bool,
    /// The latest reading of both clocks: the constructor's, or the latest
    /// [`RelayInput::WallClock`].
    clocks: Clocks,
}

impl Relay {
    /// A relay with `config`, drawing session ids from `entropy`, alone on its address (its
    /// own [`LocalLedger`]), checking tickets in the Unix time that `clocks` anchors to the
    /// driver's timeline.
    pub fn new(config: RelayConfig, entropy: Entropy, clocks: Clocks) -> Self {
        let ledger = Box::new(LocalLedger::new(&config));
        Relay::with_ledger(config, entropy, ledger, clocks)
    }

    /// A relay that shares its used nonces and bounds with the other shards of its address
    /// through `ledger` (see [`Ledger`]); `clocks` as in [`Relay::new`].
    pub fn with_ledger(
        config: RelayConfig,
        entropy: Entropy,
        ledger: Box<dyn Ledger>,
        clocks: Clocks,
    ) -> Self {
        Relay {
            config,
            entropy,
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            allocs: BTreeMap::new(),
            sessions_per_ip: BTreeMap::new(),
            pending_handshakes: 0,
            ledger,
            buffered_total: 0,
            peaks: RelayGauges::default(),
            timers: BTreeSet::new(),
            next_upstream: 1,
            next_alloc: 1,
            out: VecDeque::new(),
            pool: BufferPool::default(),
            counters: RelayCounters::default(),
            udp_error_window: Instant::EPOCH,
            udp_errors_in_window: 0,
            shutting_down: false,
            clocks,
        }
    }

    /// Unix time at `now`, from the latest reading of both clocks.
    fn unix_now(&self, now: Instant) -> UnixTime {
        self.clocks.unix_at(now)
    }

    /// Feeds one input. Drain [`Relay::poll_output`] afterwards.
    pub fn handle_input(&mut self, input: RelayInput<'_>, now: Instant) {
        match input {
            RelayInput::TcpAccepted { conn, peer } => self.on_tcp_accepted(conn, peer, now),
            RelayInput::TcpData { conn, data } => self.on_tcp_data(conn, data, now),
            RelayInput::TcpClosed { conn } => self.on_tcp_closed(conn),
            RelayInput::UpstreamConnected { conn } => self.on_upstream_connected(conn, now),
            RelayInput::UpstreamFailed { conn } => self.on_upstream_gone(conn),
            RelayInput::UpstreamData { conn, data } => self.on_upstream_data(conn, data, now),
            RelayInput::UpstreamClosed { conn } => self.on_upstream_gone(conn),
            RelayInput::TunnelActivity {
                client,
                bytes_up,
                bytes_down,
            } => self.on_tunnel_activity(client, bytes_up, bytes_down, now),
            RelayInput::UdpBindFailed { alloc } => self.on_udp_bind_failed(alloc),
            RelayInput::UdpFromClient {
                local_port,
                from,
                data,
            } => self.on_udp_from_client(local_port, from, data, now),
            RelayInput::UdpFromUpstream { alloc, from, data } => {
                self.on_udp_from_upstream(alloc, from, data, now)
            }
            RelayInput::WallClock(unix_now) => self.clocks = Clocks::new(now, unix_now),
        }
        self.update_peaks();
    }

    /// The next output, `None` when there is nothing left to do.
    pub fn poll_output(&mut self) -> Option<RelayOutput> {
        self.out.pop_front()
    }

    /// When [`Relay::handle_timeout`] should next be called; `None` when no deadline is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fires every deadline at or before `now`: handshake timeouts, upstream connect
    /// timeouts and idle sessions. Drain [`Relay::poll_output`] afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.on_timer(key, now);
        }
        self.update_peaks();
    }

    /// Starts a graceful shutdown: every session ends with
    /// [`SessionEnd::ShuttingDown`] (its media paths are told `Close(ShuttingDown)`, a tunnel
    /// still connecting gets `Error(ShuttingDown)`, every connection of it is closed), every
    /// connection still in its handshake gets `Error(ShuttingDown)` and is closed, and from now
    /// on every new connection is refused the same way. Drain [`Relay::poll_output`]
    /// afterwards; once the driver has flushed those outputs the relay holds nothing and may be
    /// dropped. Calling it again is harmless.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let sessions: Vec<u64> = self.sessions.keys().copied().collect();
        for session_id in sessions {
            self.end_session(session_id, SessionEnd::ShuttingDown);
        }
        let conns: Vec<ClientConn> = self.conns.keys().copied().collect();
        for conn in conns {
            self.refuse(conn, ErrorCode::ShuttingDown, "the relay is shutting down");
        }
        let _ = now;
        self.update_peaks();
    }

    /// Whether [`Relay::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The counters.
    pub fn counters(&self) -> &RelayCounters {
        &self.counters
    }

    /// How many sessions exist, the ones still connecting upstream included.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many client connections are open (in any state).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// How many bytes the relay itself holds: partial frames in its frame readers plus the
    /// bytes a client sent before its tunnel's upstream connection was established. Kept as it
    /// goes: reading it costs nothing.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_total
    }

    /// The gauges, now and at their peaks. Kept as it goes: reading them costs nothing, however
    /// many sessions are open.
    pub fn gauges(&self) -> RelayGauges {
        RelayGauges {
            sessions: self.sessions.len(),
            connections: self.conns.len(),
            buffered_bytes: self.buffered_total,
            pending_handshakes: self.pending_handshakes,
            udp_allocs: self.allocs.len(),
            ..self.peaks
        }
    }

    /// Raises the peaks to the current values (after every input).
    fn update_peaks(&mut self) {
        let p = &mut self.peaks;
        p.peak_sessions = p.peak_sessions.max(self.sessions.len());
        p.peak_connections = p.peak_connections.max(self.conns.len());
        p.peak_buffered_bytes = p.peak_buffered_bytes.max(self.buffered_total);
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Queues an output.
    fn emit(&mut self, output: RelayOutput) {
        self.out.push_back(output);
    }

    /// Queues an event.
    fn event(&mut self, event: RelayEvent) {
        self.out.push_back(RelayOutput::Event(event));
    }

    /// Whether the relay may send to (or accept media from) `addr`.
    fn destination_ok(&self, addr: SocketAddr) -> bool {
        #[cfg(any(test, feature = "canary"))]
        if self.config.canary_skip_destination_check {
            return true;
        }
        destination_allowed(&self.config.sdrtn, addr)
    }
}

/// The encoding of a message built by the relay itself (always valid; an impossible encoding
/// error yields an empty vector rather than a panic).
pub(crate) fn frame(msg: &Message) -> Vec<u8> {
    msg.to_bytes().unwrap_or_default()
}

/// An `Error` message of at most `max_len` bytes, its reason cut to fit; `None` when even an
/// empty reason does not fit. Used to answer unauthenticated datagrams without amplification.
pub(crate) fn bounded_error(code: ErrorCode, reason: &str, max_len: usize) -> Option<Vec<u8>> {
    // Header, code (2 bytes) and the reason's length byte.
    let fixed = HEADER_LEN + 3;
    let room = max_len.checked_sub(fixed)?;
    let mut end = reason.len().min(room);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = frame(&Message::error(code, reason.get(..end).unwrap_or_default()));
    (!bytes.is_empty() && bytes.len() <= max_len).then_some(bytes)
}
