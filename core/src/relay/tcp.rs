//! The TCP side: client connections (handshakes, tunnels) and upstream connections.

use std::net::SocketAddr;

use super::session::{ConnState, MediaPath, Session, SessionPhase, TimerKey};
use super::{
    frame, ClientConn, Conn, NonceRefusal, Relay, RelayEvent, RelayOutput, SessionEnd, Slot,
    SlotRefusal, Transport, UpstreamConn,
};
use crate::time::Instant;
use crate::wire::{ErrorCode, FrameReader, Message, Ticket};

impl Relay {
    /// A client connected.
    pub(super) fn on_tcp_accepted(&mut self, conn: ClientConn, peer: SocketAddr, now: Instant) {
        if self.conns.contains_key(&conn) {
            self.counters.ignored_inputs += 1;
            return;
        }
        if self.shutting_down {
            self.emit(RelayOutput::TcpSend {
                conn,
                data: frame(&Message::error(
                    ErrorCode::ShuttingDown,
                    "the relay is shutting down",
                )),
            });
            self.emit(RelayOutput::TcpClose { conn });
            self.count_refusal(ErrorCode::ShuttingDown, peer, Transport::Tcp);
            return;
        }
        if let Err(refusal) = self.ledger.acquire(Slot::Pending, peer.ip().to_canonical()) {
            let reason = match refusal {
                SlotRefusal::PerClient => "too many pending handshakes from this address",
                _ => "too many pending handshakes",
            };
            self.emit(RelayOutput::TcpSend {
                conn,
                data: frame(&Message::error(ErrorCode::QuotaExceeded, reason)),
            });
            self.emit(RelayOutput::TcpClose { conn });
            self.count_refusal(ErrorCode::QuotaExceeded, peer, Transport::Tcp);
            return;
        }
        let deadline = now + self.config.handshake_timeout;
        self.timers.insert((deadline, TimerKey::Handshake(conn)));
        self.conns.insert(
            conn,
            Conn {
                peer,
                state: ConnState::AwaitingOpen {
                    reader: FrameReader::new(),
                },
                deadline: Some(deadline),
                held: 0,
            },
        );
        self.pending_handshakes += 1;
        self.counters.tcp_accepted += 1;
    }

    /// Bytes from a client connection.
    pub(super) fn on_tcp_data(&mut self, conn: ClientConn, data: &[u8], now: Instant) {
        enum Kind {
            Awaiting,
            Connecting(u64, usize),
            Tunnel,
            Channel,
        }
        let kind = match self.conns.get(&conn).map(|c| &c.state) {
            None => {
                self.counters.ignored_inputs += 1;
                return;
            }
            Some(ConnState::AwaitingOpen { .. }) => Kind::Awaiting,
            Some(ConnState::Connecting { session_id, early }) => {
                Kind::Connecting(*session_id, early.len())
            }
            Some(ConnState::Tunnel { .. }) => Kind::Tunnel,
            Some(ConnState::MediaChannel { .. }) => Kind::Channel,
        };
        match kind {
            Kind::Awaiting => self.on_handshake_bytes(conn, data, now),
            Kind::Connecting(session_id, held) => {
                if held.saturating_add(data.len()) > self.config.max_buffered_bytes_per_session {
                    self.end_session(session_id, SessionEnd::BufferOverflow);
                } else if let Some(Conn {
                    state: ConnState::Connecting { early, .. },
                    ..
                }) = self.conns.get_mut(&conn)
                {
                    early.extend_from_slice(data);
                }
            }
            // Spliced: the driver moves these bytes; feeding them here breaks the contract.
            Kind::Tunnel => self.counters.ignored_inputs += 1,
            Kind::Channel => self.on_channel_bytes(conn, data, now),
        }
        self.reaccount(conn);
    }

    /// The client closed a connection.
    pub(super) fn on_tcp_closed(&mut self, conn: ClientConn) {
        let Some(closed) = self.remove_conn(conn) else {
            self.counters.ignored_inputs += 1;
            return;
        };
        match closed.state {
            ConnState::AwaitingOpen { .. } => {}
            ConnState::Connecting { session_id, .. } | ConnState::Tunnel { session_id } => {
                self.end_session(session_id, SessionEnd::ClientClosed);
            }
            ConnState::MediaChannel { session_id, .. } => self.detach_channel(session_id, conn),
        }
    }

    /// Bytes on a connection still awaiting its first message.
    fn on_handshake_bytes(&mut self, conn: ClientConn, data: &[u8], now: Instant) {
        let mut rest = data;
        loop {
            let Some(Conn {
                state: ConnState::AwaitingOpen { reader },
                peer,
                ..
            }) = self.conns.get_mut(&conn)
            else {
                return;
            };
            let peer = *peer;
            let taken = reader.push(rest);
            rest = rest.get(taken..).unwrap_or_default();
            match reader.pop() {
                Ok(None) if rest.is_empty() => return,
                Ok(None) if taken == 0 => {
                    // Unreachable: a full reader always pops a message or an error.
                    self.refuse(conn, ErrorCode::Malformed, "first message too long");
                    return;
                }
                Ok(None) => {}
                Ok(Some(Message::TunnelOpen {
                    ticket,
                    destination,
                })) => {
                    let mut early = reader.take_rest();
                    early.extend_from_slice(rest);
                    self.open_tunnel(conn, peer, &ticket, destination, early, now);
                    return;
                }
                Ok(Some(Message::MediaChannelOpen { session_id })) => {
                    let reader = std::mem::take(reader);
                    if !self.config.shard.owns_session(session_id) {
                        // What the reader holds and what is left of this input go along.
                        let mut reader = reader;
                        let mut held = reader.take_rest();
                        held.extend_from_slice(rest);
                        self.hand_off_bytes(conn, session_id, held);
                        return;
                    }
                    if self.open_media_channel(conn, peer, session_id, reader, now) {
                        self.on_channel_bytes(conn, rest, now);
                    }
                    return;
                }
                Ok(Some(other)) => {
                    let reason = format!(
                        "expected TunnelOpen or MediaChannelOpen first, got {:?}",
                        other.message_type()
                    );
                    self.refuse(conn, ErrorCode::Malformed, &reason);
                    return;
                }
                Err(err) => {
                    self.refuse(conn, err.error_code(), &err.to_string());
                    return;
                }
            }
        }
    }

    /// Checks a `TunnelOpen` in the documented order and, when everything passes, starts the
    /// upstream connection.
    fn open_tunnel(
        &mut self,
        conn: ClientConn,
        peer: SocketAddr,
        ticket: &Ticket,
        destination: SocketAddr,
        early: Vec<u8>,
        now: Instant,
    ) {
        let unix_now = self.unix_now(now);
        if let Err(err) = ticket.verify(&self.config.key, unix_now, peer.ip()) {
            self.refuse(conn, err.error_code(), &err.to_string());
            return;
        }
        if self.ledger.nonce_used(&ticket.nonce, now) {
            self.refuse(conn, ErrorCode::TicketReplayed, "ticket already used");
            return;
        }
        if !self.destination_ok(destination) {
            let reason = format!("{destination} is not an SD-RTN destination");
            self.refuse(conn, ErrorCode::DestinationRefused, &reason);
            return;
        }
        if early.len() > self.config.max_buffered_bytes_per_session {
            let reason = "too many bytes before the tunnel opened";
            self.refuse(conn, ErrorCode::QuotaExceeded, reason);
            return;
        }
        let client_ip = peer.ip().to_canonical();
        if let Err(refusal) = self.ledger.acquire(Slot::Session, client_ip) {
            let reason = match refusal {
                SlotRefusal::PerClient => "too many sessions from this address",
                _ => "relay is full",
            };
            self.refuse(conn, ErrorCode::QuotaExceeded, reason);
            return;
        }
        // The nonce is remembered until the ticket expires, on the monotonic timeline: as
        // long from `now` as the ticket has left on the wall clock.
        let remember_until = now + ticket.expires_at().saturating_duration_since(unix_now);
        match self.ledger.claim_nonce(ticket.nonce, remember_until, now) {
            Ok(()) => {}
            Err(refusal) => {
                self.ledger.release(Slot::Session, client_ip);
                let (code, reason) = match refusal {
                    // Another shard took it a moment ago.
                    NonceRefusal::Replayed => (ErrorCode::TicketReplayed, "ticket already used"),
                    _ => (ErrorCode::QuotaExceeded, "replay cache is full"),
                };
                self.refuse(conn, code, reason);
                return;
            }
        }
        let session_id = self.fresh_session_id();
        let upstream = UpstreamConn(self.next_upstream);
        self.next_upstream += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(at) = c.deadline.take() {
                self.timers.remove(&(at, TimerKey::Handshake(conn)));
            }
            // Still a pending handshake: the count does not change.
            c.state = ConnState::Connecting { session_id, early };
        }
        let timer = now + self.config.handshake_timeout;
        self.timers.insert((timer, TimerKey::Session(session_id)));
        let udp_port = self.udp_port_for(session_id);
        self.sessions.insert(
            session_id,
            Session {
                client_ip,
                client: peer,
                destination,
                control: conn,
                upstream,
                udp_port,
                phase: SessionPhase::Connecting,
                channel: None,
                udp: None,
                retired_udp: Vec::new(),
                media_path: None,
                alloc: None,
                last_activity: now,
                timer,
            },
        );
        *self.sessions_per_ip.entry(client_ip).or_insert(0) += 1;
        self.upstreams.insert(upstream, session_id);
        self.emit(RelayOutput::UpstreamConnect {
            conn: upstream,
            to: destination,
        });
    }

    /// Checks a `MediaChannelOpen` and attaches the channel; false when refused (the connection
    /// is then closed).
    fn open_media_channel(
        &mut self,
        conn: ClientConn,
        peer: SocketAddr,
        session_id: u64,
        reader: FrameReader,
        now: Instant,
    ) -> bool {
        let authentic = self.sessions.get(&session_id).is_some_and(|s| {
            s.phase == SessionPhase::Open && s.client_ip == peer.ip().to_canonical()
        });
        if !authentic {
            self.refuse(
                conn,
                ErrorCode::UnknownSession,
                "no such session for this client",
            );
            return false;
        }
        // A newer channel replaces the older one (its client may not know it died).
        let old = self.sessions.get(&session_id).and_then(|s| s.channel);
        if let Some(old) = old {
            if self.remove_conn(old).is_some() {
                self.emit(RelayOutput::TcpClose { conn: old });
            }
            self.detach_channel(session_id, old);
            self.counters.media_channels_replaced += 1;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if let Some(at) = c.deadline.take() {
            self.timers.remove(&(at, TimerKey::Handshake(conn)));
        }
        c.state = ConnState::MediaChannel { session_id, reader };
        self.leave_pending(peer);
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.channel = Some(conn);
            session.media_path = Some(MediaPath::Channel(conn));
        }
        self.touch(session_id, now);
        self.counters.media_channels_opened += 1;
        self.emit(RelayOutput::TcpSend {
            conn,
            data: frame(&Message::MediaChannelAccept { session_id }),
        });
        self.event(RelayEvent::MediaChannelOpened {
            session_id,
            conn,
            peer,
        });
        true
    }

    /// Hands a connection whose `MediaChannelOpen` names another shard's session to that shard:
    /// the bytes read so far (the message, re-encoded exactly, and what followed it) go with
    /// it, and this relay forgets it without closing it.
    fn hand_off_bytes(&mut self, conn: ClientConn, session_id: u64, held: Vec<u8>) {
        if self.remove_conn(conn).is_none() {
            return;
        }
        let mut data = frame(&Message::MediaChannelOpen { session_id });
        data.extend_from_slice(&held);
        self.counters.handoffs += 1;
        self.emit(RelayOutput::TcpHandoff {
            conn,
            shard: self.config.shard.of_session(session_id),
            data,
        });
    }

    /// Detaches a media channel that is gone; media falls back to UDP when the client used it.
    pub(super) fn detach_channel(&mut self, session_id: u64, conn: ClientConn) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            if session.channel == Some(conn) {
                session.channel = None;
            }
            if session.media_path == Some(MediaPath::Channel(conn)) {
                session.media_path = session.udp;
            }
        }
    }

    /// Refuses a connection: `Error` frame, close, count, event.
    pub(super) fn refuse(&mut self, conn: ClientConn, code: ErrorCode, reason: &str) {
        let Some(closed) = self.remove_conn(conn) else {
            return;
        };
        if let ConnState::MediaChannel { session_id, .. } = closed.state {
            self.detach_channel(session_id, conn);
        }
        self.emit(RelayOutput::TcpSend {
            conn,
            data: frame(&Message::error(code, reason)),
        });
        self.emit(RelayOutput::TcpClose { conn });
        self.count_refusal(code, closed.peer, Transport::Tcp);
    }

    /// Counts a refusal and reports it.
    pub(super) fn count_refusal(
        &mut self,
        code: ErrorCode,
        peer: SocketAddr,
        transport: Transport,
    ) {
        self.counters.refused(code);
        self.event(RelayEvent::Refused {
            code,
            peer,
            transport,
        });
    }

    /// A random session id of this relay's shard: nonzero and not in use.
    fn fresh_session_id(&mut self) -> u64 {
        let shard = self.config.shard;
        let count = u64::from(shard.count.max(1));
        loop {
            let drawn = self.entropy.next_u64();
            let id = drawn - drawn % count + u64::from(shard.index);
            if id != 0 && shard.owns_session(id) && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// The UDP port announced to a session: spread by session id over the ports of the
    /// configured range that belong to this relay's shard (0 when it has none).
    fn udp_port_for(&self, session_id: u64) -> u16 {
        let (start, end) = (*self.config.udp_ports.start(), *self.config.udp_ports.end());
        let shard = self.config.shard;
        let count = u32::from(shard.count.max(1));
        if start > end || u32::from(shard.index) > u32::from(end - start) {
            return 0;
        }
        // Ports start + index, start + index + count, ... up to end.
        let mine = (u32::from(end - start) - u32::from(shard.index)) / count + 1;
        let k = u32::try_from((session_id / u64::from(count)) % u64::from(mine)).unwrap_or(0);
        let offset = u32::from(shard.index) + k * count;
        u16::try_from(u32::from(start) + offset).unwrap_or(0)
    }

    /// The upstream connection is established: accept the tunnel and flush the early bytes.
    pub(super) fn on_upstream_connected(&mut self, conn: UpstreamConn, now: Instant) {
        let Some(&session_id) = self.upstreams.get(&conn) else {
            self.counters.ignored_inputs += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if session.phase != SessionPhase::Connecting {
            self.counters.ignored_inputs += 1;
            return;
        }
        session.phase = SessionPhase::Open;
        session.last_activity = now;
        let control = session.control;
        let (client, destination, udp_port) =
            (session.client, session.destination, session.udp_port);
        let early = match self.conns.get_mut(&control) {
            Some(c) => match std::mem::replace(&mut c.state, ConnState::Tunnel { session_id }) {
                ConnState::Connecting { early, .. } => early,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        self.leave_pending(client);
        self.reaccount(control);
        self.rearm_session(session_id, now + self.config.idle_timeout);
        let accept = Message::TunnelAccept {
            session_id,
            udp_port,
            keepalive_interval_ms: millis_u32(self.config.keepalive_interval),
            idle_timeout_ms: millis_u32(self.config.idle_timeout),
        };
        self.emit(RelayOutput::TcpSend {
            conn: control,
            data: frame(&accept),
        });
        if !early.is_empty() {
            self.counters.tcp_bytes_up += early.len() as u64;
            self.emit(RelayOutput::UpstreamSend { conn, data: early });
        }
        self.counters.tunnels_spliced += 1;
        self.emit(RelayOutput::Splice {
            session_id,
            client: control,
            upstream: conn,
            report_interval: self.config.activity_report_interval,
        });
        self.counters.sessions_opened += 1;
        self.event(RelayEvent::SessionOpened {
            session_id,
            client,
            destination,
            udp_port,
        });
    }

    /// The upstream connection failed to open, or closed. Before the tunnel was accepted
    /// either means the destination is unreachable.
    pub(super) fn on_upstream_gone(&mut self, conn: UpstreamConn) {
        let Some(session_id) = self.upstreams.remove(&conn) else {
            self.counters.ignored_inputs += 1;
            return;
        };
        let connecting = self
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.phase == SessionPhase::Connecting);
        let end = if connecting {
            SessionEnd::UpstreamUnreachable
        } else {
            SessionEnd::UpstreamClosed
        };
        self.end_session(session_id, end);
    }

    /// Bytes from SD-RTN on an upstream connection: the tunnel is spliced once the connection
    /// is up, so these break the driver contract and are ignored.
    pub(super) fn on_upstream_data(&mut self, conn: UpstreamConn, data: &[u8], now: Instant) {
        let _ = (conn, data, now);
        self.counters.ignored_inputs += 1;
    }

    /// What a spliced tunnel moved: counters, and the idle timer when anything did.
    pub(super) fn on_tunnel_activity(
        &mut self,
        client: ClientConn,
        bytes_up: u64,
        bytes_down: u64,
        now: Instant,
    ) {
        let Some(ConnState::Tunnel { session_id }) = self.conns.get(&client).map(|c| &c.state)
        else {
            self.counters.ignored_inputs += 1;
            return;
        };
        let session_id = *session_id;
        self.counters.tcp_bytes_up += bytes_up;
        self.counters.tcp_bytes_down += bytes_down;
        if bytes_up > 0 || bytes_down > 0 {
            self.touch(session_id, now);
        }
    }
}

/// A duration in whole milliseconds, saturating at `u32::MAX`.
fn millis_u32(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
