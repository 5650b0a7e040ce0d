//! The proxy client: the SDK's side of the cloud proxy, as a sans-IO state machine.
//!
//! A [`ProxyClient`] gets the SDK's traffic to an SD-RTN edge through whatever the
//! [`ClientConfig`] says: straight to the edge (proxy off), through an enterprise SOCKS5 server
//! (type 0), or through the cloud proxy found by DNS (type 1) or by IP list (type 2). It
//! resolves, asks the access point, opens a tunnel through a relay, fails over between
//! addresses, ports and relays, falls back from UDP to TCP media, keeps the relay alive, and
//! reconnects with jittered exponential backoff, reporting what it does as [`ClientEvent`]s.
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
mod io;
mod media;
mod media_wire;
mod types;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use crate::entropy::Entropy;
use crate::params::ProxyServer;
use crate::time::Instant;

pub use config::{
    ClientConfig, DEFAULT_AP_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_JITTER_PERCENT, DEFAULT_BACKOFF_MAX, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_GIVE_UP_AFTER, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_MISSES,
    DEFAULT_MAX_PENDING_SIGNALLING, DEFAULT_RESOLVE_TIMEOUT, DEFAULT_UDP_PROBE_TIMEOUT,
};
pub use types::{
    ClientEvent, ClientInput, ClientOutput, ClientStats, ConnId, ConnectionState, MediaPath,
    StateReason,
};

use ap::{ApQuery, ApStep};
use connect::{DirectOpening, Established, OpenStep, Route, SocksOpening, TunnelOpening};
use io::Io;
use media::{Media, MediaStep};

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
///          ┌──────────────┬───────────┴───────────┬───────────────────┐
///        type 1         type 2                 type 0             proxy off
///          ▼              │                       │                   │
///     Resolving ─addrs─►  ▼                       ▼                   ▼
///                    QueryingAp             OpeningSocks        OpeningDirect
///                         │ ApResponse            │ CONNECT ok        │ TCP up
///                         ▼                       │                   │
///                    OpeningTunnel                │                   │
///                         │ TunnelAccept          │                   │
///                         ▼                       ▼                   ▼
///                     Connected ◄─────────────────┴───────────────────┘
///                         │ relay lost: conn closed, Error/Close, keepalives unanswered
///                         ▼
///   any opening phase ──retriable failure──► Backoff ──timer──► the first phase again
///                                                              (new AP round, next relay)
///   Backoff or an opening phase ──give-up bound, or a fatal failure──► Failed
///   any phase ──Leave──► Left
/// ```
///
/// Public states: the opening phases are `Connecting` until the first failure and
/// `Reconnecting` after it; `Backoff` is `Reconnecting`; `Connected` is `Connected`; `Failed`
/// is `Failed`; `Left` is `Disconnected`. So the public transitions are
/// `Connecting → Connected | Reconnecting | Failed | Disconnected`,
/// `Connected → Reconnecting | Disconnected`, `Reconnecting → Connected | Failed |
/// Disconnected` and `Failed → Disconnected`.
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
    /// Proxy off: TCP to the edge.
    OpeningDirect(DirectOpening),
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
            ClientInput::TcpData { conn, data } => self.on_tcp(conn, TcpEvent::Data(data)),
            ClientInput::TcpClosed { conn } => self.on_tcp(conn, TcpEvent::Closed),
            ClientInput::UdpData { from, data } => self.on_udp(from, data),
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
            Phase::OpeningTunnel(opening) => Some(opening.deadline()),
            Phase::OpeningSocks(opening) => Some(opening.deadline()),
            Phase::OpeningDirect(opening) => Some(opening.deadline()),
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

    // ----- state and attempts -----

    /// Changes the public state, reporting it when it really changes.
    fn set_state(&mut self, state: ConnectionState, reason: StateReason) {
        if self.state != state {
            self.state = state;
            self.io
                .event(ClientEvent::ConnectionStateChanged { state, reason });
        }
    }

    /// Starts an attempt from the top, as the configuration says.
    fn start_attempt(&mut self) {
        let now = self.now;
        let phase = match &self.config.proxy {
            None => Phase::OpeningDirect(DirectOpening::start(&self.config, &mut self.io, now)),
            Some(ProxyServer::Socks5(server)) => Phase::OpeningSocks(SocksOpening::start(
                *server,
                self.config.socks5_credentials.clone(),
                self.config.sdrtn.signalling,
                &self.config,
                &mut self.io,
                now,
            )),
            Some(ProxyServer::CloudDomain { domain, .. }) => {
                self.io.note_tried(format!("DNS {domain}"));
                self.io.resolve(domain.clone());
                Phase::Resolving {
                    name: domain.clone(),
                    deadline: now + ClientConfig::timer(self.config.resolve_timeout),
                }
            }
            Some(ProxyServer::CloudIpList { ips, port }) => {
                let (ips, port) = (ips.clone(), *port);
                return self.query_ap(&ips, port);
            }
        };
        self.phase = phase;
    }

    /// Starts a round of questions to the access point.
    fn query_ap(&mut self, ips: &[IpAddr], port: u16) {
        match ApQuery::start(
            ips,
            port,
            self.retry.preferred_ap,
            &self.config,
            &mut self.entropy,
            &mut self.io,
            self.now,
        ) {
            Ok(query) => self.phase = Phase::QueryingAp(query),
            Err(reason) => self.attempt_failed(reason),
        }
    }

    /// Closes whatever the current phase holds open and leaves it.
    fn close_phase(&mut self) {
        let io = &mut self.io;
        match &mut self.phase {
            Phase::QueryingAp(query) => query.close(io),
            Phase::OpeningTunnel(opening) => opening.close(io),
            Phase::OpeningSocks(opening) => opening.close(io),
            Phase::OpeningDirect(opening) => opening.close(io),
            Phase::Connected(session) => {
                if let Some(conn) = session.signalling.take() {
                    io.close(conn);
                }
                session.media.close(io);
            }
            Phase::Resolving { .. } | Phase::Backoff { .. } | Phase::Failed | Phase::Left => {}
        }
        self.phase = Phase::Failed;
    }

    /// An attempt failed: back off and try again, or give up.
    fn attempt_failed(&mut self, reason: StateReason) {
        self.close_phase();
        self.retry.last_reason = Some(reason.clone());
        if reason.is_fatal() {
            return self.fail(reason);
        }
        self.retry.failures = self.retry.failures.saturating_add(1);
        if let Some(max) = self.config.max_reconnect_attempts {
            if self.retry.failures > max {
                let text = self.give_up_text();
                return self.fail(StateReason::GaveUp(text));
            }
        }
        self.back_off(reason);
    }

    /// Waits before the next attempt, in state `Reconnecting`.
    fn back_off(&mut self, reason: StateReason) {
        let delay = backoff::delay(
            self.config.backoff_initial,
            self.config.backoff_max,
            self.config.backoff_jitter_percent,
            self.retry.failures.saturating_sub(1),
            &mut self.entropy,
        );
        self.phase = Phase::Backoff {
            until: self.now + delay,
        };
        self.set_state(ConnectionState::Reconnecting, reason);
    }

    /// The connected session is lost: reconnect, avoiding this relay.
    fn connection_lost(&mut self, reason: StateReason) {
        if let Phase::Connected(Session {
            route: Route::Cloud { relay_tcp, .. },
            ..
        }) = &self.phase
        {
            self.retry.avoid_relay = Some(*relay_tcp);
            self.retry.relay_rotation = self.retry.relay_rotation.wrapping_add(1);
        }
        self.close_phase();
        self.retry.failures = 1;
        self.retry.since = self.now;
        self.retry.give_up_at = Some(self.now + ClientConfig::timer(self.config.give_up_after));
        self.retry.last_reason = Some(reason.clone());
        self.io.tried.clear();
        self.back_off(reason);
    }

    /// Gives up: state `Failed`, nothing open, no timers.
    fn fail(&mut self, reason: StateReason) {
        self.close_phase();
        self.phase = Phase::Failed;
        self.drop_pending_signalling();
        self.set_state(ConnectionState::Failed, reason);
    }

    /// The human text of a give-up: how long, how many attempts, through what, what broke.
    fn give_up_text(&self) -> String {
        let how = match &self.config.proxy {
            None => "direct to SD-RTN".to_owned(),
            Some(server) => format!("proxy {server}"),
        };
        let last = self
            .retry
            .last_reason
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        format!(
            "no connection for {:.1}s after {} failed attempts via {how}; last error: {last}; \
             tried: {}",
            self.now
                .saturating_duration_since(self.retry.since)
                .as_secs_f64(),
            self.retry.failures,
            if self.io.tried.is_empty() {
                "nothing".to_owned()
            } else {
                self.io.tried.join(", ")
            }
        )
    }

    /// The application left.
    fn leave(&mut self) {
        if matches!(self.phase, Phase::Left) {
            return;
        }
        self.close_phase();
        self.phase = Phase::Left;
        self.drop_pending_signalling();
        self.set_state(ConnectionState::Disconnected, StateReason::Left);
    }

    /// Counts queued signalling as dropped and forgets it.
    fn drop_pending_signalling(&mut self) {
        let dropped = self.pending_signalling.len() as u64;
        self.io.stats.signalling_dropped_bytes = self
            .io
            .stats
            .signalling_dropped_bytes
            .saturating_add(dropped);
        self.pending_signalling = Vec::new();
    }

    /// A signalling path is open: report it, flush the queue, start media.
    fn connected(&mut self, established: Established) {
        let Established {
            route,
            signalling,
            early,
        } = established;
        let now = self.now;
        let was = self.state;
        self.retry.failures = 0;
        self.retry.give_up_at = None;
        self.retry.last_reason = None;
        self.io.tried.clear();
        let stats = &mut self.io.stats;
        stats.connections = stats.connections.saturating_add(1);
        if was == ConnectionState::Reconnecting {
            stats.reconnects = stats.reconnects.saturating_add(1);
        }
        if stats.join_time.is_none() {
            stats.join_time = Some(now.saturating_duration_since(self.started_at));
        }
        self.set_state(ConnectionState::Connected, StateReason::Joined);
        let relay = match &route {
            Route::Cloud { relay_tcp, .. } => Some(*relay_tcp),
            Route::Socks { server } => Some(*server),
            Route::Direct => None,
        };
        if let (Some(relay), Some(proxy_type)) = (relay, self.config.proxy_type()) {
            self.io.event(ClientEvent::ProxyConnected {
                proxy_type,
                relay,
                elapsed: now.saturating_duration_since(self.started_at),
            });
        }
        self.deliver_signalling(early);
        let pending = std::mem::take(&mut self.pending_signalling);
        self.send_on(signalling, pending);
        let media = Media::start(&route, &self.config, &mut self.io, now);
        self.phase = Phase::Connected(Session {
            route,
            signalling: Some(signalling),
            media,
        });
    }

    // ----- application commands -----

    fn send_signalling(&mut self, data: &[u8]) {
        match &self.phase {
            _ if data.is_empty() => {}
            Phase::Connected(Session {
                signalling: Some(conn),
                ..
            }) => {
                let conn = *conn;
                self.send_on(conn, data.to_vec());
            }
            Phase::Failed | Phase::Left => self.drop_signalling(data.len()),
            _ => {
                let room = self
                    .config
                    .max_pending_signalling
                    .saturating_sub(self.pending_signalling.len());
                if data.len() <= room {
                    self.pending_signalling.extend_from_slice(data);
                } else {
                    self.drop_signalling(data.len());
                }
            }
        }
    }

    fn drop_signalling(&mut self, len: usize) {
        let stats = &mut self.io.stats;
        stats.signalling_dropped_bytes = stats.signalling_dropped_bytes.saturating_add(len as u64);
    }

    /// Writes signalling bytes on the signalling connection.
    fn send_on(&mut self, conn: ConnId, data: Vec<u8>) {
        let stats = &mut self.io.stats;
        stats.signalling_sent_bytes = stats
            .signalling_sent_bytes
            .saturating_add(data.len() as u64);
        self.io.send(conn, data);
    }

    /// Hands SD-RTN's signalling bytes to the application.
    fn deliver_signalling(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let stats = &mut self.io.stats;
        stats.signalling_received_bytes = stats
            .signalling_received_bytes
            .saturating_add(data.len() as u64);
        self.io.event(ClientEvent::SignallingReceived(data));
    }

    fn send_media(&mut self, payload: &[u8]) {
        match &mut self.phase {
            Phase::Connected(session) => {
                session
                    .media
                    .send(payload, &self.config, &mut self.io, self.now)
            }
            _ => self.io.media_dropped(),
        }
    }

    // ----- network inputs -----

    fn on_resolved(&mut self, name: &str, result: Result<&[IpAddr], &str>) {
        let Phase::Resolving { name: asked, .. } = &self.phase else {
            return self.io.ignored();
        };
        if !same_name(asked, name) {
            return self.io.ignored();
        }
        let asked = asked.clone();
        let port = match &self.config.proxy {
            Some(ProxyServer::CloudDomain { port, .. }) => *port,
            _ => 0,
        };
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                let mut unique: Vec<IpAddr> = Vec::new();
                for ip in addrs {
                    if unique.len() < MAX_RESOLVED && !unique.contains(ip) {
                        unique.push(*ip);
                    }
                }
                self.query_ap(&unique, port);
            }
            Ok(_) => self.attempt_failed(StateReason::DnsFailed(format!("{asked}: no address"))),
            Err(reason) => {
                self.attempt_failed(StateReason::DnsFailed(format!("{asked}: {reason}")))
            }
        }
    }

    fn on_tcp(&mut self, conn: ConnId, event: TcpEvent<'_>) {
        let now = self.now;
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::QueryingAp(query) => match query.on_tcp(conn, event, config, io, now) {
                Some(step) => self.on_ap_step(step),
                None => self.io.ignored(),
            },
            Phase::OpeningTunnel(opening) => match opening.on_tcp(conn, event, config, io, now) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored(),
            },
            Phase::OpeningSocks(opening) => match opening.on_tcp(conn, event, io) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored(),
            },
            Phase::OpeningDirect(opening) => match opening.on_tcp(conn, event) {
                Some(step) => self.on_open_step(step),
                None => self.io.ignored(),
            },
            Phase::Connected(session) if session.signalling == Some(conn) => match event {
                TcpEvent::Data(data) => self.deliver_signalling(data.to_vec()),
                TcpEvent::Failed | TcpEvent::Closed => {
                    // Already closed by the peer: do not close it again.
                    session.signalling = None;
                    let reason = match session.route {
                        Route::Direct => StateReason::ConnectionLost,
                        _ => StateReason::RelayLost,
                    };
                    self.connection_lost(reason);
                }
                TcpEvent::Connected => self.io.ignored(),
            },
            Phase::Connected(session) => {
                match session
                    .media
                    .on_tcp(conn, event, config, io, &mut self.entropy, now)
                {
                    Some(step) => self.on_media_step(step),
                    None => self.io.ignored(),
                }
            }
            _ => self.io.ignored(),
        }
    }

    fn on_udp(&mut self, from: SocketAddr, data: &[u8]) {
        let now = self.now;
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::QueryingAp(query) => match query.on_udp(from, data, config, io, now) {
                Some(step) => self.on_ap_step(step),
                None => self.io.ignored(),
            },
            Phase::Connected(session) => match session.media.on_udp(from, data, io) {
                Some(step) => self.on_media_step(step),
                None => self.io.ignored(),
            },
            _ => self.io.ignored(),
        }
    }

    fn on_ap_step(&mut self, step: ApStep) {
        match step {
            ApStep::Pending => {}
            ApStep::Failed(reason) => self.attempt_failed(reason),
            ApStep::Granted(grant) => {
                self.retry.preferred_ap = Some(grant.answered_by);
                let first = self.retry.relay_rotation;
                let avoid = self.retry.avoid_relay;
                match TunnelOpening::start(
                    grant,
                    first,
                    avoid,
                    &self.config,
                    &mut self.io,
                    self.now,
                ) {
                    Ok(opening) => self.phase = Phase::OpeningTunnel(opening),
                    Err(reason) => self.attempt_failed(reason),
                }
            }
        }
    }

    fn on_open_step(&mut self, step: OpenStep) {
        match step {
            OpenStep::Pending => {}
            OpenStep::Open(established) => self.connected(established),
            OpenStep::Failed(reason) => self.attempt_failed(reason),
        }
    }

    fn on_media_step(&mut self, step: MediaStep) {
        match step {
            MediaStep::Ok => {}
            MediaStep::Lost(reason) => self.connection_lost(reason),
        }
    }

    // ----- timers -----

    /// Fires timers until none is due at `self.now`.
    fn fire_due_timers(&mut self) {
        for _ in 0..MAX_TIMER_ROUNDS {
            match self.poll_timeout() {
                Some(deadline) if deadline <= self.now => self.fire_one(),
                _ => return,
            }
        }
    }

    /// Fires the due timers of the current phase (the give-up bound first).
    fn fire_one(&mut self) {
        let now = self.now;
        let give_up_due = !matches!(
            self.phase,
            Phase::Connected(_) | Phase::Failed | Phase::Left
        ) && self.retry.give_up_at.is_some_and(|t| t <= now);
        if give_up_due {
            let text = self.give_up_text();
            return self.fail(StateReason::GaveUp(text));
        }
        let (config, io) = (&self.config, &mut self.io);
        match &mut self.phase {
            Phase::Resolving { name, deadline } if *deadline <= now => {
                let reason = StateReason::DnsFailed(format!("{name}: no answer from the resolver"));
                self.attempt_failed(reason);
            }
            Phase::QueryingAp(query) => {
                let step = query.on_timeout(config, io, now);
                self.on_ap_step(step);
            }
            Phase::OpeningTunnel(opening) => {
                let step = opening.on_timeout(config, io, now);
                self.on_open_step(step);
            }
            Phase::OpeningSocks(opening) => {
                let step = opening.on_timeout(io, now);
                self.on_open_step(step);
            }
            Phase::OpeningDirect(opening) => {
                let step = opening.on_timeout(io, now);
                self.on_open_step(step);
            }
            Phase::Connected(session) => {
                let step = session.media.on_timeout(config, io, &mut self.entropy, now);
                self.on_media_step(step);
            }
            Phase::Backoff { until } if *until <= now => {
                self.io.stats.reconnect_attempts =
                    self.io.stats.reconnect_attempts.saturating_add(1);
                self.start_attempt();
            }
            _ => {}
        }
    }
}

/// Whether a resolver's answer is for the name asked (ASCII case and a trailing dot aside).
fn same_name(asked: &str, answered: &str) -> bool {
    asked
        .trim_end_matches('.')
        .eq_ignore_ascii_case(answered.trim_end_matches('.'))
}
