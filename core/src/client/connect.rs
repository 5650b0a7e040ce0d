//! Opening the signalling path: a tunnel through a relay (types 1 and 2), a SOCKS5 CONNECT
//! (type 0), or a plain TCP connection to the edge (proxy off, and the first step of automatic
//! mode). The HTTP proxy (type 3) has its own module, `http`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::socks5::{Address, ClientHandshake, ClientProgress, Command, Credentials};
use crate::time::Instant;
use crate::wire::{ErrorCode, FrameReader, Message, RelayInfo, RELAY_TLS_PORT};

use super::ap::ApGrant;
use super::config::{
    ClientConfig, CloudTransport, DEFAULT_KEEPALIVE_INTERVAL, MIN_KEEPALIVE_INTERVAL,
};
use super::io::{read_frames, Io};
use super::race::Stagger;
use super::types::{ConnId, StateReason};
use super::TcpEvent;

/// How the signalling stream reaches SD-RTN, once it is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Through a cloud-proxy relay.
    Cloud {
        /// The relay's TCP address (tunnels and media channels).
        relay_tcp: SocketAddr,
        /// The relay's UDP media address for this session, if it offers one.
        relay_udp: Option<SocketAddr>,
        /// The session from `TunnelAccept`.
        session_id: u64,
        /// The keepalive interval in force.
        keepalive_interval: Duration,
    },
    /// Through an enterprise SOCKS5 server.
    Socks {
        /// The server.
        server: SocketAddr,
    },
    /// Through an enterprise HTTP proxy (type 3, beyond the seed): `CONNECT` tunnels, TCP only.
    Http {
        /// The proxy's address (resolved).
        proxy: SocketAddr,
    },
    /// Straight to the edge.
    Direct,
}

/// An open signalling path.
#[derive(Debug)]
pub(super) struct Established {
    /// How it goes.
    pub(super) route: Route,
    /// The connection that now carries raw signalling bytes.
    pub(super) signalling: ConnId,
    /// Signalling bytes that arrived with the end of the handshake.
    pub(super) early: Vec<u8>,
}

/// What an opening phase did with an input or a timer.
#[derive(Debug)]
pub(super) enum OpenStep {
    /// Still opening.
    Pending,
    /// Open.
    Open(Established),
    /// This attempt failed (its connection is closed already).
    Failed(StateReason),
}

/// Whether a relay's refusal means the ticket is spent or bad: ask the AP for a new one.
fn needs_new_ticket(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::TicketInvalid
            | ErrorCode::TicketExpired
            | ErrorCode::TicketReplayed
            | ErrorCode::ClientMismatch
    )
}

/// One relay being tried.
#[derive(Debug)]
struct TunnelAttempt {
    relay_tcp: SocketAddr,
    relay_udp: Option<SocketAddr>,
    /// The connection, until it fails, closes or is closed.
    conn: Option<ConnId>,
    reader: FrameReader,
    deadline: Instant,
}

/// Opening a tunnel through one of the relays of an [`ApGrant`]: one at a time in turn, or
/// racing them (**beyond the seed**, [`ClientConfig::race`]): the first `TunnelAccept` wins
/// and the others are closed.
#[derive(Debug)]
pub(super) struct TunnelOpening {
    grant: ApGrant,
    destination: SocketAddr,
    /// Relay indexes, in the order to try them.
    order: Vec<usize>,
    stagger: Stagger,
    /// The attempts in flight.
    attempts: Vec<TunnelAttempt>,
    /// Why the last relay failed.
    last_failure: StateReason,
}

impl TunnelOpening {
    /// Starts with the relay after `avoid` (the relay lost last) when the list holds it, else
    /// with the relay at `first` (modulo the list), then tries the others in list order.
    pub(super) fn start(
        grant: ApGrant,
        first: usize,
        avoid: Option<SocketAddr>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Result<TunnelOpening, StateReason> {
        let n = grant.relays.len();
        // Prefer the relay after the one lost last, when the AP lists it again.
        let lost = avoid.and_then(|a| {
            grant
                .relays
                .iter()
                .position(|r| relay_addrs(r, &grant, config).0 == a)
        });
        let start = match lost {
            Some(p) => (p + 1) % n.max(1),
            None => first % n.max(1),
        };
        let order: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        let mut opening = TunnelOpening {
            grant,
            destination: config.sdrtn.signalling,
            stagger: Stagger::new(order.len(), config, now),
            order,
            attempts: Vec::new(),
            last_failure: StateReason::RelayUnreachable,
        };
        match opening.advance(config, io, now) {
            OpenStep::Failed(reason) => Err(reason),
            _ => Ok(opening),
        }
    }

    /// When a timer fires: an attempt's time or the next start.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let attempts = self.attempts.iter().map(|a| a.deadline).min();
        [attempts, self.stagger.next_start()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Closes every connection still open.
    pub(super) fn close(&mut self, io: &mut Io) {
        for attempt in self.attempts.drain(..) {
            if let Some(conn) = attempt.conn {
                io.close(conn);
            }
        }
    }

    /// Handles the timers.
    pub(super) fn on_timeout(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> OpenStep {
        while let Some(i) = self.attempts.iter().position(|a| a.deadline <= now) {
            self.last_failure = StateReason::RelayUnreachable;
            self.end_attempt(i, io, now);
        }
        self.advance(config, io, now)
    }

    /// Handles an event on a connection; `None` when it is not ours.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> Option<OpenStep> {
        let (i, relay_tcp) = self
            .attempts
            .iter()
            .enumerate()
            .find(|(_, a)| a.conn == Some(conn))
            .map(|(i, a)| (i, a.relay_tcp))?;
        Some(match event {
            TcpEvent::Connected => {
                let open = Message::TunnelOpen {
                    ticket: self.grant.ticket.clone(),
                    destination: self.destination,
                };
                io.send_message(conn, &open);
                OpenStep::Pending
            }
            TcpEvent::Failed | TcpEvent::Closed => {
                // Already gone: nothing to close.
                if let Some(attempt) = self.attempts.get_mut(i) {
                    attempt.conn = None;
                }
                self.last_failure = StateReason::RelayUnreachable;
                self.end_attempt(i, io, now);
                self.advance(config, io, now)
            }
            TcpEvent::Data(mut data) => {
                let mut msgs = Vec::new();
                let reader = &mut self.attempts.get_mut(i)?.reader;
                let decoded = read_frames(reader, &mut data, |_| true, &mut msgs);
                match (msgs.pop(), decoded) {
                    (Some(msg), _) => self.on_message(i, msg, data, config, io, now),
                    (None, Ok(())) => OpenStep::Pending,
                    (None, Err(e)) => {
                        self.last_failure =
                            StateReason::ProtocolViolation(format!("relay {relay_tcp}: {e}"));
                        self.end_attempt(i, io, now);
                        self.advance(config, io, now)
                    }
                }
            }
        })
    }

    /// Acts on relay `i`'s first message; `rest` is the input not pushed into the reader.
    fn on_message(
        &mut self,
        i: usize,
        msg: Message,
        rest: &[u8],
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> OpenStep {
        // `i` names a started attempt (the caller found it by its connection).
        let Some(relay_tcp) = self.attempts.get(i).map(|a| a.relay_tcp) else {
            return OpenStep::Pending;
        };
        match msg {
            Message::TunnelAccept {
                session_id,
                udp_port,
                keepalive_interval_ms,
                ..
            } => {
                let mut winner = self.attempts.remove(i);
                let Some(conn) = winner.conn.take() else {
                    return OpenStep::Pending;
                };
                for loser in self.attempts.drain(..) {
                    if let Some(conn) = loser.conn {
                        io.cancel(conn);
                    }
                }
                let mut early = winner.reader.take_rest();
                early.extend_from_slice(rest);
                let relayed = if keepalive_interval_ms == 0 {
                    DEFAULT_KEEPALIVE_INTERVAL
                } else {
                    Duration::from_millis(u64::from(keepalive_interval_ms))
                };
                let keepalive_interval = config
                    .keepalive_interval
                    .unwrap_or(relayed)
                    .max(MIN_KEEPALIVE_INTERVAL);
                let relay_udp = (udp_port != 0)
                    .then_some(winner.relay_udp)
                    .flatten()
                    .map(|a| SocketAddr::new(a.ip(), udp_port));
                OpenStep::Open(Established {
                    route: Route::Cloud {
                        relay_tcp: winner.relay_tcp,
                        relay_udp,
                        session_id,
                        keepalive_interval,
                    },
                    signalling: conn,
                    early,
                })
            }
            Message::Error { code, .. } if needs_new_ticket(code) => {
                self.close(io);
                OpenStep::Failed(StateReason::TunnelRefused(code))
            }
            Message::Error { code, .. } => {
                self.last_failure = StateReason::TunnelRefused(code);
                self.end_attempt(i, io, now);
                self.advance(config, io, now)
            }
            other => {
                self.last_failure = StateReason::ProtocolViolation(format!(
                    "relay {relay_tcp} answered TunnelOpen with {:?}",
                    other.message_type()
                ));
                self.end_attempt(i, io, now);
                self.advance(config, io, now)
            }
        }
    }

    /// Ends attempt `i`, closing its connection if still open.
    fn end_attempt(&mut self, i: usize, io: &mut Io, now: Instant) {
        if i < self.attempts.len() {
            let attempt = self.attempts.remove(i);
            if let Some(conn) = attempt.conn {
                io.close(conn);
            }
            self.stagger.ended(now);
        }
    }

    /// Starts every relay attempt that is due, or fails when none is left.
    fn advance(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) -> OpenStep {
        loop {
            if self.stagger.next_start().is_some_and(|t| t <= now) && now >= self.grant.expires_at {
                self.close(io);
                return OpenStep::Failed(StateReason::TunnelRefused(ErrorCode::TicketExpired));
            }
            let Some(k) = self.stagger.start_due(now) else {
                break;
            };
            let Some(relay) = self
                .order
                .get(k)
                .and_then(|i| self.grant.relays.get(*i))
                .cloned()
            else {
                break;
            };
            let (relay_tcp, relay_udp) = relay_addrs(&relay, &self.grant, config);
            io.note_tried(format!("relay {relay_tcp}"));
            self.attempts.push(TunnelAttempt {
                relay_tcp,
                relay_udp,
                conn: Some(io.connect(relay_tcp)),
                reader: FrameReader::new(),
                deadline: now + ClientConfig::timer(config.connect_timeout),
            });
        }
        if self.stagger.exhausted() {
            return OpenStep::Failed(self.last_failure.clone());
        }
        OpenStep::Pending
    }
}

/// Where to reach `relay`: its TCP address (port 443 when the client may only use TCP 443)
/// and its UDP media address family, if UDP may be used.
fn relay_addrs(
    relay: &RelayInfo,
    grant: &ApGrant,
    config: &ClientConfig,
) -> (SocketAddr, Option<SocketAddr>) {
    let tls = grant.tcp_443 || config.cloud_transport == CloudTransport::Tcp443Only;
    if tls {
        (SocketAddr::new(relay.addr, RELAY_TLS_PORT), None)
    } else {
        (
            SocketAddr::new(relay.addr, relay.tcp_port),
            Some(SocketAddr::new(relay.addr, relay.udp_port)),
        )
    }
}

/// Opening a CONNECT through a SOCKS5 server to the edge's signalling address.
#[derive(Debug)]
pub(super) struct SocksOpening {
    server: SocketAddr,
    conn: Option<ConnId>,
    connected: bool,
    handshake: ClientHandshake,
    deadline: Instant,
}

impl SocksOpening {
    /// Connects to the server.
    pub(super) fn start(
        server: SocketAddr,
        credentials: Option<Credentials>,
        target: SocketAddr,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> SocksOpening {
        io.note_tried(format!("SOCKS5 server {server}"));
        SocksOpening {
            server,
            conn: Some(io.connect(server)),
            connected: false,
            handshake: ClientHandshake::new(credentials, Command::Connect, Address::Ip(target)),
            deadline: now + ClientConfig::timer(config.connect_timeout),
        }
    }

    /// When the handshake runs out of time.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Closes the connection, if open.
    pub(super) fn close(&mut self, io: &mut Io) {
        if let Some(conn) = self.conn.take() {
            io.close(conn);
        }
    }

    /// Handles the timer.
    pub(super) fn on_timeout(&mut self, io: &mut Io, now: Instant) -> OpenStep {
        if self.deadline <= now {
            self.close(io);
            OpenStep::Failed(StateReason::ProxyUnreachable)
        } else {
            OpenStep::Pending
        }
    }

    /// Handles an event on a connection; `None` when it is not ours.
    pub(super) fn on_tcp(
        &mut self,
        conn: ConnId,
        event: TcpEvent<'_>,
        io: &mut Io,
    ) -> Option<OpenStep> {
        if self.conn != Some(conn) {
            return None;
        }
        Some(match event {
            TcpEvent::Connected => {
                self.connected = true;
                if let Some(bytes) = self.handshake.poll_transmit() {
                    io.send(conn, bytes);
                }
                OpenStep::Pending
            }
            TcpEvent::Failed | TcpEvent::Closed => {
                self.conn = None;
                if self.connected {
                    OpenStep::Failed(StateReason::ProtocolViolation(format!(
                        "SOCKS5 server {} closed the connection during the handshake",
                        self.server
                    )))
                } else {
                    OpenStep::Failed(StateReason::ProxyUnreachable)
                }
            }
            TcpEvent::Data(data) => match self.handshake.handle_bytes(data) {
                Ok(ClientProgress::Pending) => {
                    if let Some(bytes) = self.handshake.poll_transmit() {
                        io.send(conn, bytes);
                    }
                    OpenStep::Pending
                }
                Ok(ClientProgress::Done { leftover, .. }) => {
                    self.conn = None;
                    OpenStep::Open(Established {
                        route: Route::Socks {
                            server: self.server,
                        },
                        signalling: conn,
                        early: leftover,
                    })
                }
                Ok(ClientProgress::Bound { .. }) => {
                    self.close(io);
                    OpenStep::Failed(StateReason::ProtocolViolation(
                        "SOCKS5 server sent a BIND reply to CONNECT".to_owned(),
                    ))
                }
                Err(e) => {
                    self.close(io);
                    OpenStep::Failed(StateReason::Socks5Refused(e))
                }
            },
        })
    }
}

/// Opening a plain TCP connection to the edge's signalling address (proxy off).
#[derive(Debug)]
pub(super) struct DirectOpening {
    conn: Option<ConnId>,
    deadline: Instant,
}

impl DirectOpening {
    /// Connects to the edge, giving it `timeout` (the connect timeout, or automatic mode's
    /// probe time).
    pub(super) fn start(
        config: &ClientConfig,
        timeout: Duration,
        io: &mut Io,
        now: Instant,
    ) -> DirectOpening {
        io.note_tried(format!("edge {}", config.sdrtn.signalling));
        DirectOpening {
            conn: Some(io.connect(config.sdrtn.signalling)),
            deadline: now + ClientConfig::timer(timeout),
        }
    }

    /// When the connection attempt runs out of time.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Closes the connection, if open.
    pub(super) fn close(&mut self, io: &mut Io) {
        if let Some(conn) = self.conn.take() {
            io.close(conn);
        }
    }

    /// Handles the timer.
    pub(super) fn on_timeout(&mut self, io: &mut Io, now: Instant) -> OpenStep {
        if self.deadline <= now {
            self.close(io);
            OpenStep::Failed(StateReason::DirectUnreachable)
        } else {
            OpenStep::Pending
        }
    }

    /// Handles an event on a connection; `None` when it is not ours.
    pub(super) fn on_tcp(&mut self, conn: ConnId, event: TcpEvent<'_>) -> Option<OpenStep> {
        if self.conn != Some(conn) {
            return None;
        }
        Some(match event {
            TcpEvent::Connected | TcpEvent::Data(_) => {
                self.conn = None;
                let early = match event {
                    TcpEvent::Data(data) => data.to_vec(),
                    _ => Vec::new(),
                };
                OpenStep::Open(Established {
                    route: Route::Direct,
                    signalling: conn,
                    early,
                })
            }
            TcpEvent::Failed | TcpEvent::Closed => {
                self.conn = None;
                OpenStep::Failed(StateReason::DirectUnreachable)
            }
        })
    }
}
