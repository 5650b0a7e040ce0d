//! Opening the signalling path: a tunnel through a relay (types 1 and 2), a SOCKS5 CONNECT
//! (type 0), or a plain TCP connection to the edge (proxy off).

use std::net::SocketAddr;
use std::time::Duration;

use crate::socks5::{Address, ClientHandshake, ClientProgress, Command, Credentials};
use crate::time::Instant;
use crate::wire::{ErrorCode, FrameReader, Message};

use super::ap::ApGrant;
use super::config::{ClientConfig, DEFAULT_KEEPALIVE_INTERVAL, MIN_KEEPALIVE_INTERVAL};
use super::io::{read_frames, Io};
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

/// Opening a tunnel through one of the relays of an [`ApGrant`], trying them in turn.
#[derive(Debug)]
pub(super) struct TunnelOpening {
    grant: ApGrant,
    destination: SocketAddr,
    /// Relay indexes, in the order to try them.
    order: Vec<usize>,
    /// How many of `order` have been tried.
    tried: usize,
    /// The relay being tried, its connection and stream.
    relay_tcp: SocketAddr,
    conn: Option<ConnId>,
    reader: FrameReader,
    deadline: Instant,
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
                .position(|r| SocketAddr::new(r.addr, r.tcp_port) == a)
        });
        let start = match lost {
            Some(p) => (p + 1) % n.max(1),
            None => first % n.max(1),
        };
        let order: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        let mut opening = TunnelOpening {
            grant,
            destination: config.sdrtn.signalling,
            order,
            tried: 0,
            relay_tcp: config.sdrtn.signalling,
            conn: None,
            reader: FrameReader::new(),
            deadline: now,
            last_failure: StateReason::RelayUnreachable,
        };
        match opening.next_relay(config, io, now) {
            OpenStep::Failed(reason) => Err(reason),
            _ => Ok(opening),
        }
    }

    /// When the relay being tried runs out of time.
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
    pub(super) fn on_timeout(
        &mut self,
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> OpenStep {
        if self.deadline <= now {
            self.last_failure = StateReason::RelayUnreachable;
            self.next_relay(config, io, now)
        } else {
            OpenStep::Pending
        }
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
        if self.conn != Some(conn) {
            return None;
        }
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
                self.conn = None;
                self.last_failure = StateReason::RelayUnreachable;
                self.next_relay(config, io, now)
            }
            TcpEvent::Data(mut data) => {
                let mut msgs = Vec::new();
                let decoded = read_frames(&mut self.reader, &mut data, |_| true, &mut msgs);
                match (msgs.pop(), decoded) {
                    (Some(msg), _) => self.on_message(msg, data, config, io, now),
                    (None, Ok(())) => OpenStep::Pending,
                    (None, Err(e)) => {
                        self.last_failure = StateReason::ProtocolViolation(format!(
                            "relay {}: {e}",
                            self.relay_tcp
                        ));
                        self.next_relay(config, io, now)
                    }
                }
            }
        })
    }

    /// Acts on the relay's first message; `rest` is the input not pushed into the reader.
    fn on_message(
        &mut self,
        msg: Message,
        rest: &[u8],
        config: &ClientConfig,
        io: &mut Io,
        now: Instant,
    ) -> OpenStep {
        match msg {
            Message::TunnelAccept {
                session_id,
                udp_port,
                keepalive_interval_ms,
                ..
            } => {
                let Some(conn) = self.conn.take() else {
                    return OpenStep::Pending;
                };
                let mut early = self.reader.take_rest();
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
                OpenStep::Open(Established {
                    route: Route::Cloud {
                        relay_tcp: self.relay_tcp,
                        relay_udp: (udp_port != 0)
                            .then(|| SocketAddr::new(self.relay_tcp.ip(), udp_port)),
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
                self.next_relay(config, io, now)
            }
            other => {
                self.last_failure = StateReason::ProtocolViolation(format!(
                    "relay {} answered TunnelOpen with {:?}",
                    self.relay_tcp,
                    other.message_type()
                ));
                self.next_relay(config, io, now)
            }
        }
    }

    /// Closes the current relay's connection and tries the next relay, or fails.
    fn next_relay(&mut self, config: &ClientConfig, io: &mut Io, now: Instant) -> OpenStep {
        self.close(io);
        if now >= self.grant.expires_at {
            return OpenStep::Failed(StateReason::TunnelRefused(ErrorCode::TicketExpired));
        }
        let Some(relay) = self
            .order
            .get(self.tried)
            .and_then(|i| self.grant.relays.get(*i))
        else {
            return OpenStep::Failed(self.last_failure.clone());
        };
        self.tried += 1;
        self.relay_tcp = SocketAddr::new(relay.addr, relay.tcp_port);
        io.note_tried(format!("relay {}", self.relay_tcp));
        self.conn = Some(io.connect(self.relay_tcp));
        self.reader = FrameReader::new();
        self.deadline = now + ClientConfig::timer(config.connect_timeout);
        OpenStep::Pending
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
    /// Connects to the edge.
    pub(super) fn start(config: &ClientConfig, io: &mut Io, now: Instant) -> DirectOpening {
        io.note_tried(format!("edge {}", config.sdrtn.signalling));
        DirectOpening {
            conn: Some(io.connect(config.sdrtn.signalling)),
            deadline: now + ClientConfig::timer(config.connect_timeout),
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
