//! The proxy client: the SDK's side of the cloud proxy, as a sans-IO state machine.
//!
//! A [`ProxyClient`] gets the SDK's traffic to an SD-RTN edge through whatever the
//! [`ClientConfig`] says: straight to the edge (proxy off), through an enterprise SOCKS5 server
//! (type 0), or through the cloud proxy found by DNS (type 1) or by IP list (type 2). It
//! resolves, asks the access point, opens a tunnel through a relay, fails over between
//! addresses, ports and relays, falls back from UDP to TCP media, keeps the relay alive, and
//! reconnects with jittered exponential backoff, reporting what it does as [`ClientEvent`]s.
//!
//! **Beyond the seed**, each opt-in (the defaults are the seed's behaviour):
//!
//! - an enterprise HTTP proxy (type 3, [`ProxyServer::HttpConnect`]): signalling and TCP media
//!   through `CONNECT` tunnels, one handshake per tunnel, a `407` answered with Basic
//!   credentials, no UDP at all;
//! - racing (RFC 8305, [`ClientConfig::race`]): access-point candidates and relays tried
//!   staggered and in parallel, the first answer winning;
//! - automatic mode ([`ClientConfig::fallback_proxy`]): direct first, the cloud proxy when no
//!   direct connection comes within [`ClientConfig::direct_probe_timeout`];
//! - TCP 443 only ([`CloudTransport::Tcp443Only`]), the force-TCP mode;
//! - network changes ([`ClientInput::NetworkChanged`]) and the mid-call fallback from UDP to TCP
//!   media ([`ClientConfig::udp_loss_fallback`]).
//!
//! [`ClientConfig::for_join`] builds the configuration from what the engine took at join.
//!
//! # Drain contract
//!
//! The client never does IO and never reads a clock. The driver owns the sockets, the resolver
//! and the timer, and runs this loop:
//!
//! 1. Right after [`ProxyClient::new`], and after **every** call to
//!    [`handle_input`](ProxyClient::handle_input) or
//!    [`handle_timeout`](ProxyClient::handle_timeout), call
//!    [`poll_output`](ProxyClient::poll_output) until it returns `None`, and carry out every
//!    [`ClientOutput`] in the order given (events go to the application). Outputs are never
//!    dropped or merged; the queue only grows with what the calls produce.
//! 2. Then read [`poll_timeout`](ProxyClient::poll_timeout) and call `handle_timeout` once the
//!    clock reaches it (a late call is fine; an early one does nothing). `None` means no timer
//!    is pending.
//! 3. Report everything that happens with `handle_input`: answers to `Resolve` and
//!    `TcpConnect`, bytes and closes on connections, datagrams on the one UDP socket, and the
//!    application's commands.
//!
//! `now` must not go backwards; an earlier `now` is treated as the latest seen. Both
//! `handle_input` and `handle_timeout` first fire every timer due at `now`, so after either
//! returns, `poll_timeout` is `None` or later than `now`. Inputs about connections the client
//! has closed (or never opened), answers to questions it no longer asks and malformed bytes
//! are ignored (and counted in [`ClientStats::ignored_inputs`]); nothing panics on any input.
//!
//! ```
//! use cloudproxy_core::client::{ClientConfig, ClientOutput, ConnectionState, ProxyClient};
//! use cloudproxy_core::entropy::Entropy;
//! use cloudproxy_core::params::ProxyServer;
//! use cloudproxy_core::sdrtn::SdRtnEndpoints;
//! use cloudproxy_core::time::Instant;
//!
//! let sdrtn = SdRtnEndpoints {
//!     signalling: "203.0.113.10:8443".parse().unwrap(),
//!     media_udp: "203.0.113.10:4700".parse().unwrap(),
//!     media_tcp: "203.0.113.10:4701".parse().unwrap(),
//! };
//! let config = ClientConfig::new(Some(ProxyServer::default_cloud()), "my-app", sdrtn);
//! let mut client = ProxyClient::new(config, Entropy::from_u64(1), Instant::EPOCH);
//! assert_eq!(client.state(), ConnectionState::Connecting);
//! let outputs: Vec<ClientOutput> = std::iter::from_fn(|| client.poll_output()).collect();
//! assert!(outputs.contains(&ClientOutput::Resolve { name: "ap-proxy.agora.io".into() }));
//! ```

mod ap;
mod backoff;
mod config;
mod connect;
mod dispatch;
mod http;
mod io;
mod lifecycle;
mod media;
mod media_wire;
mod race;
mod types;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use crate::entropy::Entropy;
#[cfg(doc)]
use crate::params::ProxyServer;
use crate::time::Instant;

pub use config::{
    ClientConfig, CloudTransport, RaceConfig, DEFAULT_AP_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_JITTER_PERCENT, DEFAULT_BACKOFF_MAX, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DIRECT_PROBE_TIMEOUT, DEFAULT_GIVE_UP_AFTER, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_MISSES, DEFAULT_MAX_PENDING_SIGNALLING, DEFAULT_RACE_MAX_IN_FLIGHT,
    DEFAULT_RACE_STAGGER, DEFAULT_RESOLVE_TIMEOUT, DEFAULT_UDP_PROBE_TIMEOUT,
};
pub use types::{
    ClientEvent, ClientInput, ClientOutput, ClientStats, ConnId, ConnectionState, MediaPath,
    NetworkChange, StateReason, MAX_TLS_REASON_BYTES,
};

use ap::ApQuery;
use connect::{DirectOpening, Route, SocksOpening, TunnelOpening};
use http::HttpOpening;
use io::Io;
use media::Media;

/// Most distinct resolved addresses one access-point round uses.
const MAX_RESOLVED: usize = 64;
/// Bound on timer firings per call, against any bug that would keep a deadline in the past.
const MAX_TIMER_ROUNDS: usize = 10_000;

/// An event on a TCP connection, as the parts of the client see it.
#[derive(Clone, Copy, Debug)]
enum TcpEvent<'a> {
    Connected,
    Failed,
    Closed,
    Data(&'a [u8]),
}

/// What the client is doing (the public [`ConnectionState`] is derived from it).
///
/// ```text
///                                   new()
///          ┌──────────────┬───────────┴───────────┬──────────────┬───────────────────┐
///        type 1         type 2                 type 0         type 3          proxy off
///          ▼              │                       │              │            (automatic:
///     Resolving ─addrs─►  ▼                       ▼              ▼             direct first)
///          ▲         QueryingAp             OpeningSocks    OpeningHttp      OpeningDirect
///          │              │ ApResponse            │ CONNECT ok   │ 2xx            │ TCP up
///          │              ▼                       │ (resolve,    │                │
///          │         OpeningTunnel                │  407 round)  │                │
///          │              │ TunnelAccept          │              │                │
///          │              ▼                       ▼              ▼                ▼
///          │          Connected ◄─────────────────┴──────────────┴────────────────┘
///          │              │ relay lost: conn closed, Error/Close, keepalives unanswered
///          │              ▼
///   any opening phase ──retriable failure──► Backoff ──timer──► the first phase again
///          │                                                   (new AP round, next relay)
///          └── automatic mode: OpeningDirect fails or times out (direct_probe_timeout) ──►
///              the cloud proxy's first phase at once (FallbackToProxy), for the rest of the call
///   Backoff or an opening phase ──give-up bound, or a fatal failure──► Failed
///   any phase but Failed and Left ──NetworkChanged(AddressChanged)──► the first phase at once
///   any phase ──Leave──► Left
/// ```
///
/// Public states: the opening phases are `Connecting` until the first failure and
/// `Reconnecting` after it; `Backoff` is `Reconnecting`; `Connected` is `Connected`; `Failed`
/// is `Failed`; `Left` is `Disconnected`. So the public transitions are
/// `Connecting → Connected | Reconnecting | Failed | Disconnected`,
/// `Connected → Reconnecting | Disconnected`, `Reconnecting → Connected | Failed |
/// Disconnected` and `Failed → Disconnected`; plus, in automatic mode, one report of the state
/// the client is already in (`Connecting` or `Reconnecting`) with the reason
/// `FallbackToProxy`.
#[derive(Debug)]
enum Phase {
    /// Type 1: waiting for the resolver.
    Resolving { name: String, deadline: Instant },
    /// Types 1 and 2: asking the access point.
    QueryingAp(ApQuery),
    /// Types 1 and 2: opening a tunnel through a relay.
    OpeningTunnel(TunnelOpening),
    /// Type 0: SOCKS5 CONNECT to the edge.
    OpeningSocks(SocksOpening),
    /// Proxy off (and automatic mode's first step): TCP to the edge.
    OpeningDirect(DirectOpening),
    /// Type 3: a `CONNECT` tunnel through the HTTP proxy to the edge.
    OpeningHttp(HttpOpening),
    /// Signalling flows; media is set up alongside.
    Connected(Session),
    /// Waiting before the next attempt.
    Backoff { until: Instant },
    /// Gave up.
    Failed,
    /// The application left.
    Left,
}

/// A connected session.
#[derive(Debug)]
struct Session {
    route: Route,
    /// The signalling connection; `None` once the peer closed it.
    signalling: Option<ConnId>,
    media: Media,
}

/// Retry bookkeeping across attempts.
#[derive(Debug, Default)]
struct Retry {
    /// Consecutive failures since the last connection (a lost connection counts as one).
    failures: u32,
    /// When to give up, while not connected.
    give_up_at: Option<Instant>,
    /// Since when the client has been without a connection.
    since: Instant,
    /// Why the last attempt failed.
    last_reason: Option<StateReason>,
    /// The last failed TLS handshake of this attempt (beyond the seed), bounded.
    tls_failure: Option<String>,
    /// How many relays were lost so far: the next tunnel starts that far down the AP's list.
    relay_rotation: usize,
    /// The relay lost last, avoided when the AP lists another.
    avoid_relay: Option<SocketAddr>,
    /// The access point that answered last, asked first next time.
    preferred_ap: Option<SocketAddr>,
}

/// The SDK's proxy client. See the [module documentation](self) for the drain contract.
#[derive(Debug)]
pub struct ProxyClient {
    config: ClientConfig,
    entropy: Entropy,
    started_at: Instant,
    now: Instant,
    state: ConnectionState,
    phase: Phase,
    io: Io,
    retry: Retry,
    /// Application signalling waiting for a connection (bounded).
    pending_signalling: Vec<u8>,
    /// Automatic mode: the direct attempt failed, the cloud proxy is in use.
    fell_back: bool,
    /// When the latest direct attempt started.
    direct_started: Instant,
}

impl ProxyClient {
    /// A client that starts connecting at once (its first outputs are ready to poll).
    pub fn new(config: ClientConfig, entropy: Entropy, now: Instant) -> Self {
        let mut client = ProxyClient {
            config,
            entropy,
            started_at: now,
            now,
            state: ConnectionState::Disconnected,
            phase: Phase::Backoff { until: now },
            io: Io::default(),
            retry: Retry {
                since: now,
                ..Retry::default()
            },
            pending_signalling: Vec::new(),
            fell_back: false,
            direct_started: now,
        };
        client.retry.give_up_at = Some(now + ClientConfig::timer(client.config.give_up_after));
        client.set_state(ConnectionState::Connecting, StateReason::Joining);
        client.start_attempt();
        client
    }

    /// Handles one input at `now` (timers due at `now` fire first).
    pub fn handle_input(&mut self, input: ClientInput<'_>, now: Instant) {
        self.handle_timeout(now);
        match input {
            ClientInput::Leave => self.leave(),
            ClientInput::SendSignalling { data } => self.send_signalling(data),
            ClientInput::SendMedia { payload } => self.send_media(payload),
            ClientInput::Resolved { name, addrs } => self.on_resolved(name, Ok(addrs)),
            ClientInput::ResolveFailed { name, reason } => self.on_resolved(name, Err(reason)),
            ClientInput::TcpConnected { conn } => self.on_tcp(conn, TcpEvent::Connected),
            ClientInput::TcpFailed { conn, .. } => self.on_tcp(conn, TcpEvent::Failed),
            ClientInput::TlsFailed { conn, reason } => {
                self.retry.tls_failure = Some(types::bounded_reason(reason));
                self.on_tcp(conn, TcpEvent::Failed);
            }
            ClientInput::TcpData { conn, data } => self.on_tcp(conn, TcpEvent::Data(data)),
            ClientInput::TcpClosed { conn } => self.on_tcp(conn, TcpEvent::Closed),
            ClientInput::UdpData { from, data } => self.on_udp(from, data),
            ClientInput::NetworkChanged { change } => self.network_changed(change),
        }
        self.fire_due_timers();
    }

    /// The next output, `None` when the queue is drained.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.io.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Resolving { deadline, .. } => Some(*deadline),
            Phase::QueryingAp(query) => query.deadline(),
            Phase::OpeningTunnel(opening) => opening.deadline(),
            Phase::OpeningSocks(opening) => Some(opening.deadline()),
            Phase::OpeningDirect(opening) => Some(opening.deadline()),
            Phase::OpeningHttp(opening) => opening.deadline(),
            Phase::Connected(session) => session.media.deadline(),
            Phase::Backoff { until } => Some(*until),
            Phase::Failed | Phase::Left => None,
        };
        let give_up = match self.phase {
            Phase::Connected(_) | Phase::Failed | Phase::Left => None,
            _ => self.retry.give_up_at,
        };
        match (phase, give_up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.fire_due_timers();
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The confirmed media path.
    pub fn media_path(&self) -> MediaPath {
        match &self.phase {
            Phase::Connected(session) => session.media.path(),
            _ => MediaPath::None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &ClientStats {
        &self.io.stats
    }

    /// The configuration the client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}

/// Whether a resolver's answer is for the name asked (ASCII case and a trailing dot aside).
pub(super) fn same_name(asked: &str, answered: &str) -> bool {
    asked
        .trim_end_matches('.')
        .eq_ignore_ascii_case(answered.trim_end_matches('.'))
}
