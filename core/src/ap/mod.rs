//! The cloud proxy's access point ("AP/LBS"), as a sans-IO machine: it answers a client's
//! [`ApRequest`](crate::wire::Message::ApRequest) with the relays to use and a signed
//! [`Ticket`](crate::wire::Ticket), on UDP and TCP at the edge addresses' ports
//! [`AP_PORTS`](crate::wire::AP_PORTS).
//!
//! Every rule of the access point lives here, none in its drivers:
//!
//! - **No amplification.** An answer is never larger than the request that earned it: an
//!   `ApRequest` must be padded to [`AP_REQUEST_PADDED_LEN`](crate::wire::AP_REQUEST_PADDED_LEN)
//!   bytes (the largest answer), a shorter one gets `Error(PaddingRequired)` cut to fit in it,
//!   or nothing; every `Error` is cut to fit in its request, or not sent. This holds over TCP
//!   too. Messages without our magic are dropped silently.
//! - **Rate limit per client address and per client network, then silence.** Each window of
//!   [`ApConfig::rate_window`] admits [`ApConfig::max_requests_per_ip`] requests from one
//!   [`client_address`] and [`ApConfig::max_requests_per_prefix`] from one [`client_network`];
//!   the first refused request of a window gets `Error(RateLimited)`, later ones get nothing
//!   until the window ends. The tables are bounded and never evict a window before it ends
//!   (see the rate limiter in `limiter.rs`).
//! - **TCP caps, global and per client.** At most [`ApConfig::max_tcp_connections`] open, of
//!   which [`ApConfig::max_tcp_connections_per_ip`] from one client address and
//!   [`ApConfig::max_tcp_connections_per_prefix`] from one client network; more are closed at
//!   once ([`TcpRefusal`]). A connection must complete a request within
//!   [`ApConfig::tcp_idle_timeout`] of its accept or of its previous answer; it is closed
//!   after [`ApConfig::max_requests_per_tcp_connection`] answers, after any refusal (its
//!   `Error` first, as the protocol says), and on a broken frame. It buffers at most one
//!   frame. The states of a connection and their transitions are drawn in
//!   `docs/protocol.md` §8.2 (and on the private `ConnState` in `tcp.rs`).
//!
//! # Driving an [`AccessPoint`]: the drain contract
//!
//! The access point never blocks, never reads a clock and never touches a socket. The driver
//! owns the UDP sockets, the TCP listeners and one timer, and runs this loop:
//!
//! ```text
//! ap.handle_input(input, now)      // or ap.handle_timeout(now) when the timer fires
//! while let Some(out) = ap.poll_output() {
//!     perform(out)                 // send a datagram, write or close a connection, trace
//! }
//! timer = ap.poll_timeout()        // re-arm: call handle_timeout at (or after) this instant
//! ```
//!
//! 1. After **every** `handle_input` or `handle_timeout`, drain [`AccessPoint::poll_output`]
//!    until it returns `None`, and perform the outputs in order: on one connection, a
//!    `TcpSend` comes before the `TcpClose` that follows it, and the driver closes only after
//!    writing what was queued. Each [`ApOutput::Event`] comes after the outputs it explains.
//! 2. Then re-arm the timer from [`AccessPoint::poll_timeout`] (`None`: no timer needed). An
//!    early or late [`AccessPoint::handle_timeout`] is harmless; after it, `poll_timeout` is
//!    `None` or later than `now`.
//! 3. [`ApConn`] ids are the driver's, unique among its open connections. Report every
//!    accepted connection ([`ApInput::TcpAccepted`]), its bytes ([`ApInput::TcpData`], any
//!    amount: the machine takes them all) and its end ([`ApInput::TcpClosed`]). After the
//!    machine emits [`ApOutput::TcpClose`] it has forgotten the id: inputs that still name it
//!    are ignored and counted in [`ApCounters::ignored_inputs`]; when the driver reports the
//!    close, no `TcpClose` is echoed.
//! 4. Bounds: one input yields at most one answer per request it completes (a datagram: at
//!    most one `UdpSend`; `TcpData`: at most [`ApConfig::max_requests_per_tcp_connection`]
//!    `TcpSend`s over the connection's whole life, then its close; bytes after the close are
//!    discarded), plus one event each. A driver that writes each connection's outputs through
//!    a queue of that many answers can therefore never fill it.
//!
//! ```
//! use cloudproxy_core::ap::{AccessPoint, ApConfig, ApConn, ApInput, ApOutput};
//! use cloudproxy_core::entropy::Entropy;
//! use cloudproxy_core::time::{Clocks, Instant, UnixTime};
//! use cloudproxy_core::wire::{Message, RelayInfo, TicketKey, FLAG_UDP_MEDIA};
//!
//! let relay = RelayInfo { addr: "120.92.118.34".parse().unwrap(), tcp_port: 4000, udp_port: 0 };
//! let key = TicketKey::from_bytes([7; 32]);
//! // Both clocks, read by the driver at start-up: tickets expire in Unix time, timers run on
//! // the monotonic `now`.
//! let now = Instant::from_millis(1_000);
//! let wall = UnixTime::from_millis(1_764_547_200_000);
//! let config = ApConfig::new(key.clone(), vec![relay]);
//! let mut ap = AccessPoint::new(config, Entropy::from_u64(1), Clocks::new(now, wall));
//! let (local, from) = ("47.74.211.17:8000".parse().unwrap(), "203.0.113.7:40000".parse().unwrap());
//!
//! // A padded request over UDP: relays and a ticket bound to the sender.
//! let request = Message::padded_ap_request(9, "demo", FLAG_UDP_MEDIA).to_bytes().unwrap();
//! ap.handle_input(ApInput::Datagram { local, from, data: &request }, now);
//! let Some(ApOutput::UdpSend { to, data, .. }) = ap.poll_output() else { panic!() };
//! assert!(to == from && data.len() <= request.len());
//! let Ok(Message::ApResponse { request_id: 9, ticket, .. }) = Message::decode_datagram(&data)
//! else { panic!("not an answer") };
//! assert_eq!(ticket.verify(&key, wall, from.ip()), Ok(()));
//! assert_eq!(ticket.expires_at(), wall + std::time::Duration::from_secs(120));
//! assert!(matches!(ap.poll_output(), Some(ApOutput::Event(_))));
//! assert_eq!(ap.poll_output(), None);
//!
//! // An unpadded request earns at most an error no larger than itself.
//! let short = Message::ApRequest { request_id: 9, app_id: "demo".into(), flags: 0, padding_len: 0 };
//! let short = short.to_bytes().unwrap();
//! ap.handle_input(ApInput::Datagram { local, from, data: &short }, now);
//! let Some(ApOutput::UdpSend { data, .. }) = ap.poll_output() else { panic!() };
//! assert!(data.len() <= short.len());
//!
//! // Over TCP: the same request, split across deliveries, then the idle timeout.
//! let conn = ApConn(1);
//! ap.handle_input(ApInput::TcpAccepted { conn, peer: from }, now);
//! ap.handle_input(ApInput::TcpData { conn, data: &request[..100] }, now);
//! ap.handle_input(ApInput::TcpData { conn, data: &request[100..] }, now);
//! let outputs: Vec<ApOutput> = std::iter::from_fn(|| ap.poll_output()).collect();
//! assert!(outputs.iter().any(|o| matches!(o, ApOutput::TcpSend { conn: ApConn(1), .. })));
//! let deadline = ap.poll_timeout().unwrap();
//! ap.handle_timeout(deadline);
//! assert_eq!(ap.poll_output(), Some(ApOutput::TcpClose { conn }));
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
use crate::relay::Cidr;
use crate::time::{Clocks, Instant, UnixTime};
use crate::wire::{Message, MAGIC};

mod answer;
mod config;
mod events;
mod limiter;
mod tcp;

#[cfg(test)]
mod tests;

pub use config::ApConfig;
pub use events::{ApCounters, ApEvent, ApOutcome, ApRefusal, ApTransport, TcpEnd, TcpRefusal};

use limiter::RateLimiter;
use tcp::{Conn, ConnCounts};

/// Prefix length of an IPv4 [`client_address`]: the address itself.
pub const CLIENT_ADDRESS_PREFIX_V4: u8 = 32;
/// Prefix length of an IPv6 [`client_address`]: the `/64`, the smallest block one host can be
/// assumed not to share with strangers, and one it may roam at will (SLAAC and privacy
/// addresses), so that per-`/128` limits would limit nothing.
pub const CLIENT_ADDRESS_PREFIX_V6: u8 = 64;
/// Prefix length of an IPv4 [`client_network`]: the `/24`.
pub const CLIENT_NETWORK_PREFIX_V4: u8 = 24;
/// Prefix length of an IPv6 [`client_network`]: the `/56`, the block commonly delegated to
/// one customer site (RFC 6177, RIPE-690): like an IPv4 `/24`, it holds 256 client
/// addresses (`/64`s).
pub const CLIENT_NETWORK_PREFIX_V6: u8 = 56;

/// The client address `ip` counts as for the per-address limits: the IPv4 address (an
/// IPv4-mapped IPv6 address counts as its IPv4 form), or the IPv6 `/64` it lies in.
///
/// ```
/// use cloudproxy_core::ap::client_address;
///
/// assert_eq!(client_address("::ffff:198.51.100.7".parse().unwrap()).to_string(), "198.51.100.7/32");
/// assert_eq!(client_address("2001:db8:1:2:3:4:5:6".parse().unwrap()).to_string(), "2001:db8:1:2::/64");
/// ```
pub fn client_address(ip: IpAddr) -> Cidr {
    block(ip, CLIENT_ADDRESS_PREFIX_V4, CLIENT_ADDRESS_PREFIX_V6)
}

/// The client network `ip` counts as for the per-prefix limits: its IPv4 `/24` or IPv6 `/56`.
///
/// ```
/// use cloudproxy_core::ap::client_network;
///
/// assert_eq!(client_network("198.51.100.7".parse().unwrap()).to_string(), "198.51.100.0/24");
/// assert_eq!(client_network("2001:db8:1:2ff::1".parse().unwrap()).to_string(), "2001:db8:1:200::/56");
/// ```
pub fn client_network(ip: IpAddr) -> Cidr {
    block(ip, CLIENT_NETWORK_PREFIX_V4, CLIENT_NETWORK_PREFIX_V6)
}

/// The block of `ip` (canonical form) with the prefix length of its family.
fn block(ip: IpAddr, v4: u8, v6: u8) -> Cidr {
    let ip = ip.to_canonical();
    let len = if ip.is_ipv4() { v4 } else { v6 };
    Cidr::new(ip, len).unwrap_or_else(|_| Cidr::host(ip))
}

/// A TCP connection accepted on one of the access point's ports, named by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApConn(pub u64);

/// Something that happened on one of the access point's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApInput<'a> {
    /// A datagram arrived on a UDP port.
    Datagram {
        /// The socket it arrived on (the answer leaves from it).
        local: SocketAddr,
        /// The sender.
        from: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// A client connected to a TCP port.
    TcpAccepted {
        /// The id the driver gives the connection.
        conn: ApConn,
        /// The client's address.
        peer: SocketAddr,
    },
    /// Bytes arrived on a connection.
    TcpData {
        /// The connection.
        conn: ApConn,
        /// The bytes, any amount (the access point takes all of them).
        data: &'a [u8],
    },
    /// The client closed its connection (or it broke).
    TcpClosed {
        /// The connection.
        conn: ApConn,
    },
    /// A fresh reading of the wall clock at this input's `now`: the time tickets are issued
    /// against (their expiry is Unix time plus the ticket lifetime). It replaces the reading
    /// the access point was built with (see [`Clocks`]); between readings Unix time advances
    /// with `now`. A driver that follows the system's wall clock (steps included) gives one
    /// before every input that may carry a request (a `Datagram`, `TcpData`).
    WallClock(UnixTime),
}

/// Something the driver must do, or an event to record. See the module docs for the order.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApOutput {
    /// Send a datagram.
    UdpSend {
        /// The socket to send from: the one the request arrived on.
        local: SocketAddr,
        /// The client.
        to: SocketAddr,
        /// The datagram, never larger than the request it answers.
        data: Vec<u8>,
    },
    /// Write bytes on a connection.
    TcpSend {
        /// The connection.
        conn: ApConn,
        /// The bytes: one answer, never larger than the request it answers.
        data: Vec<u8>,
    },
    /// Close a connection, after writing what was queued on it.
    TcpClose {
        /// The connection.
        conn: ApConn,
    },
    /// Something to trace.
    Event(ApEvent),
}

/// The access point. See the [module docs](self) for its rules and the drain contract.
#[derive(Debug)]
pub struct AccessPoint {
    /// The configuration, fixed at construction.
    config: ApConfig,
    /// Ticket nonces, relay order, port choice.
    entropy: Entropy,
    /// Requests per client address and network.
    limiter: RateLimiter,
    /// Open TCP connections.
    conns: BTreeMap<ApConn, Conn>,
    /// Open connections per client address and network.
    conn_counts: ConnCounts,
    /// Each open connection's deadline.
    timers: BTreeSet<(Instant, ApConn)>,
    /// Outputs not yet polled.
    out: VecDeque<ApOutput>,
    /// Counters.
    counters: ApCounters,
    /// The latest reading of both clocks: the constructor's, or the latest
    /// [`ApInput::WallClock`].
    clocks: Clocks,
}

impl AccessPoint {
    /// An access point with `config`, drawing its random choices from `entropy`, issuing
    /// tickets in the Unix time that `clocks` anchors to the driver's timeline.
    pub fn new(config: ApConfig, entropy: Entropy, clocks: Clocks) -> Self {
        let limiter = RateLimiter::new(
            config.max_requests_per_ip,
            config.max_requests_per_prefix,
            config.rate_window,
            config.max_tracked_ips,
            config.max_tracked_prefixes,
        );
        AccessPoint {
            config,
            entropy,
            limiter,
            conns: BTreeMap::new(),
            conn_counts: ConnCounts::default(),
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            counters: ApCounters::default(),
            clocks,
        }
    }

    /// Unix time at `now`, from the latest reading of both clocks.
    fn unix_now(&self, now: Instant) -> UnixTime {
        self.clocks.unix_at(now)
    }

    /// Feeds one input. Drain [`AccessPoint::poll_output`] afterwards.
    pub fn handle_input(&mut self, input: ApInput<'_>, now: Instant) {
        match input {
            ApInput::Datagram { local, from, data } => self.on_datagram(local, from, data, now),
            ApInput::TcpAccepted { conn, peer } => self.on_tcp_accepted(conn, peer, now),
            ApInput::TcpData { conn, data } => self.on_tcp_data(conn, data, now),
            ApInput::TcpClosed { conn } => self.on_tcp_closed(conn),
            ApInput::WallClock(unix_now) => self.clocks = Clocks::new(now, unix_now),
        }
    }

    /// The next output, `None` when there is nothing left to do.
    pub fn poll_output(&mut self) -> Option<ApOutput> {
        self.out.pop_front()
    }

    /// When [`AccessPoint::handle_timeout`] should next be called: the earliest connection
    /// deadline, or the end of the oldest rate-limit window (when its memory is freed);
    /// `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = self.timers.first().map(|(at, _)| *at);
        conn.into_iter().chain(self.limiter.next_end()).min()
    }

    /// Closes every connection whose deadline is at or before `now` and forgets every
    /// rate-limit window that ended. Drain [`AccessPoint::poll_output`] afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_connections(now);
        self.limiter.purge(now);
    }

    /// The counters.
    pub fn counters(&self) -> &ApCounters {
        &self.counters
    }

    /// The configuration.
    pub fn config(&self) -> &ApConfig {
        &self.config
    }

    /// How many TCP connections are open.
    pub fn tcp_connection_count(&self) -> usize {
        self.conns.len()
    }

    /// How many bytes the access point holds for partial TCP requests (at most one frame per
    /// connection).
    pub fn buffered_bytes(&self) -> usize {
        self.conns.values().map(Conn::buffered_bytes).sum()
    }

    /// How many client addresses and networks the rate limiter tracks (at most
    /// [`ApConfig::max_tracked_ips`] and [`ApConfig::max_tracked_prefixes`]).
    pub fn tracked_clients(&self) -> (usize, usize) {
        self.limiter.tracked()
    }

    /// How many client addresses and networks have TCP connections open.
    pub fn tcp_clients(&self) -> (usize, usize) {
        self.conn_counts.tracked()
    }

    /// One datagram: dropped without our magic, judged otherwise.
    fn on_datagram(&mut self, local: SocketAddr, from: SocketAddr, data: &[u8], now: Instant) {
        let outcome = if data.get(..2) == Some(&MAGIC.to_be_bytes()[..]) {
            let (reply, outcome) =
                self.judge(now, from, Message::decode_datagram(data), data.len());
            if let Some(data) = reply {
                self.emit(ApOutput::UdpSend {
                    local,
                    to: from,
                    data,
                });
            }
            outcome
        } else {
            self.counters.dropped += 1;
            ApOutcome::NotOurs
        };
        self.event(ApEvent::Request {
            from,
            transport: ApTransport::Udp,
            outcome,
        });
    }

    /// Queues an output.
    fn emit(&mut self, output: ApOutput) {
        self.out.push_back(output);
    }

    /// Queues an event.
    fn event(&mut self, event: ApEvent) {
        self.out.push_back(ApOutput::Event(event));
    }
}
