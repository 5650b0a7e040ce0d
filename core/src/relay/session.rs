//! Per-connection and per-session state, timers, and the one way a session ends.

use std::net::{IpAddr, SocketAddr};

use super::{
    frame, AllocId, ClientConn, Relay, RelayEvent, RelayOutput, SessionEnd, Slot, UpstreamConn,
};
use crate::time::Instant;
use crate::wire::{FrameReader, Message};

/// The state of one client TCP connection. A closed connection is removed from the relay's map.
///
/// ```text
///   TcpAccepted
///        |
///        v
/// +--------------+  TunnelOpen accepted   +------------+  UpstreamConnected   +--------+
/// | AwaitingOpen |----------------------->| Connecting |--------------------->| Tunnel |
/// +--------------+  (UpstreamConnect out) +------------+  (TunnelAccept and   +--------+
///    |  |     |                              |             Splice out: the      |
///    |  |     | MediaChannelOpen accepted    |             bytes are the        | either side
///    |  |     | (MediaChannelAccept out)     |             driver's)            | closed, idle,
///    |  |     v                              | UpstreamFailed, connect          | Close on media
///    |  |  +--------------+                  | timeout, client closed,          |
///    |  |  | MediaChannel |------------------|-buffer overflow ----------------+
///    |  |  +--------------+  bad frame,      |
///    |  |      client closed, session end,   |
///    |  |      replaced by a newer channel   |
///    |  +-- MediaChannelOpen of another shard: TcpHandoff out (forgotten, not closed)
///    | bad first message, refusal,           |
///    | handshake timeout, client closed      |
///    v                                       v
///  Closed (removed; TcpClose out unless the client closed it)
/// ```
#[derive(Debug)]
pub(super) enum ConnState {
    /// Accepted; waiting for `TunnelOpen` or `MediaChannelOpen`.
    AwaitingOpen {
        /// Reassembles the first message.
        reader: FrameReader,
    },
    /// `TunnelOpen` accepted; the upstream connection is being established.
    Connecting {
        /// The session.
        session_id: u64,
        /// Bytes the client sent after `TunnelOpen`, forwarded in order once connected.
        early: Vec<u8>,
    },
    /// The tunnel is open and spliced: the driver moves its raw bytes both ways.
    Tunnel {
        /// The session.
        session_id: u64,
    },
    /// A media channel: framed media messages both ways.
    MediaChannel {
        /// The session.
        session_id: u64,
        /// Reassembles the client's frames.
        reader: FrameReader,
    },
}

/// One client TCP connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The client's address.
    pub(super) peer: SocketAddr,
    /// Where the connection is in its life.
    pub(super) state: ConnState,
    /// The handshake deadline, while `AwaitingOpen`.
    pub(super) deadline: Option<Instant>,
    /// Bytes of this connection counted in the relay's `buffered_total`.
    pub(super) held: usize,
}

impl Conn {
    /// Whether the connection counts as a pending handshake.
    pub(super) fn is_pending(&self) -> bool {
        matches!(
            self.state,
            ConnState::AwaitingOpen { .. } | ConnState::Connecting { .. }
        )
    }

    /// Bytes held for this connection.
    pub(super) fn buffered_bytes(&self) -> usize {
        match &self.state {
            ConnState::AwaitingOpen { reader } | ConnState::MediaChannel { reader, .. } => {
                reader.buffered()
            }
            ConnState::Connecting { early, .. } => early.len(),
            ConnState::Tunnel { .. } => 0,
        }
    }
}

/// The life of a session.
///
/// ```text
///  TunnelOpen accepted --> Connecting --UpstreamConnected--> Open --any end--> (removed)
///                              |                                   SessionClosed event
///                              +--UpstreamFailed / timeout / client gone--> (removed)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SessionPhase {
    /// Waiting for the upstream connection.
    Connecting,
    /// `TunnelAccept` sent; media accepted.
    Open,
}

/// Where the relay sends a session's media and control messages toward the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MediaPath {
    /// UDP, from `local_port` to `addr`.
    Udp {
        /// The relay's port.
        local_port: u16,
        /// The client's latest UDP address.
        addr: SocketAddr,
    },
    /// The session's TCP media channel.
    Channel(ClientConn),
}

/// One session: a signalling tunnel and its media.
#[derive(Debug)]
pub(super) struct Session {
    /// The client's IP, canonical form (IPv4-mapped IPv6 as IPv4).
    pub(super) client_ip: IpAddr,
    /// The tunnel connection's peer.
    pub(super) client: SocketAddr,
    /// The SD-RTN signalling server.
    pub(super) destination: SocketAddr,
    /// The tunnel connection.
    pub(super) control: ClientConn,
    /// The upstream connection.
    pub(super) upstream: UpstreamConn,
    /// The UDP port announced in `TunnelAccept`.
    pub(super) udp_port: u16,
    /// Connecting or open.
    pub(super) phase: SessionPhase,
    /// The TCP media channel, when attached.
    pub(super) channel: Option<ClientConn>,
    /// The latest UDP path a valid packet came from.
    pub(super) udp: Option<MediaPath>,
    /// UDP addresses the session rebound away from: refused from now on (`rebind.rs`).
    pub(super) retired_udp: Vec<SocketAddr>,
    /// Where media toward the client goes: the path the client used last.
    pub(super) media_path: Option<MediaPath>,
    /// The upstream UDP socket, once media was sent.
    pub(super) alloc: Option<AllocId>,
    /// The last time anything crossed the session.
    pub(super) last_activity: Instant,
    /// The session's entry in the timer set: the connect deadline while connecting, the next
    /// idle check once open.
    pub(super) timer: Instant,
}

/// What a timer entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    /// A connection's handshake deadline.
    Handshake(ClientConn),
    /// A session's connect deadline or idle check.
    Session(u64),
}

impl Relay {
    /// Removes a connection, keeping the pending count, the held bytes and the timers in
    /// step. Emits nothing.
    pub(super) fn remove_conn(&mut self, conn: ClientConn) -> Option<Conn> {
        let removed = self.conns.remove(&conn)?;
        if removed.is_pending() {
            self.pending_handshakes = self.pending_handshakes.saturating_sub(1);
            self.ledger
                .release(Slot::Pending, removed.peer.ip().to_canonical());
        }
        self.buffered_total = self.buffered_total.saturating_sub(removed.held);
        if let Some(at) = removed.deadline {
            self.timers.remove(&(at, TimerKey::Handshake(conn)));
        }
        Some(removed)
    }

    /// A connection leaves its handshake (its pending slot is given back); its state has been
    /// changed by the caller to one that is not pending.
    pub(super) fn leave_pending(&mut self, peer: SocketAddr) {
        self.pending_handshakes = self.pending_handshakes.saturating_sub(1);
        self.ledger.release(Slot::Pending, peer.ip().to_canonical());
    }

    /// Brings `buffered_total` in step with what `conn` holds now.
    pub(super) fn reaccount(&mut self, conn: ClientConn) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let now = c.buffered_bytes();
            self.buffered_total = self.buffered_total.saturating_sub(c.held) + now;
            c.held = now;
        }
    }

    /// Moves a session's timer entry to `at`.
    pub(super) fn rearm_session(&mut self, session_id: u64, at: Instant) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            self.timers
                .remove(&(session.timer, TimerKey::Session(session_id)));
            session.timer = at;
            self.timers.insert((at, TimerKey::Session(session_id)));
        }
    }

    /// Records traffic on a session.
    pub(super) fn touch(&mut self, session_id: u64, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.last_activity = session.last_activity.max(now);
        }
    }

    /// Ends a session: closes whatever of it is still open (tunnel connection, media channel,
    /// upstream connection, upstream UDP socket), tells the client on its media paths, and
    /// forgets it. Sides the driver already reported closed must be removed by the caller
    /// first, so that no close is echoed for them.
    pub(super) fn end_session(&mut self, session_id: u64, end: SessionEnd) {
        let Some(session) = self.sessions.remove(&session_id) else {
            return;
        };
        self.timers
            .remove(&(session.timer, TimerKey::Session(session_id)));
        if let Some(count) = self.sessions_per_ip.get_mut(&session.client_ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.sessions_per_ip.remove(&session.client_ip);
            }
        }
        self.ledger.release(Slot::Session, session.client_ip);
        let close = frame(&Message::Close {
            session_id,
            reason: end.close_reason(),
        });
        if let Some(channel) = session.channel {
            if self.remove_conn(channel).is_some() {
                self.emit(RelayOutput::TcpSend {
                    conn: channel,
                    data: close.clone(),
                });
                self.emit(RelayOutput::TcpClose { conn: channel });
            }
        }
        if let Some(MediaPath::Udp { local_port, addr }) = session.udp {
            self.emit(RelayOutput::UdpToClient {
                local_port,
                to: addr,
                data: close,
            });
        }
        if self.remove_conn(session.control).is_some() {
            if session.phase == SessionPhase::Connecting {
                if let Some(code) = end.error_code() {
                    let reason = format!("tunnel to {}: {end:?}", session.destination);
                    self.emit(RelayOutput::TcpSend {
                        conn: session.control,
                        data: frame(&Message::error(code, &reason)),
                    });
                }
            }
            self.emit(RelayOutput::TcpClose {
                conn: session.control,
            });
        }
        if self.upstreams.remove(&session.upstream).is_some() {
            self.emit(RelayOutput::UpstreamClose {
                conn: session.upstream,
            });
        }
        if let Some(alloc) = session.alloc {
            self.allocs.remove(&alloc);
            self.emit(RelayOutput::UdpRelease { alloc });
        }
        match end {
            SessionEnd::IdleTimeout => self.counters.idle_timeouts += 1,
            SessionEnd::BufferOverflow => self.counters.buffer_overflows += 1,
            SessionEnd::UdpBindFailed => self.counters.udp_bind_failures += 1,
            _ => {}
        }
        match session.phase {
            SessionPhase::Open => {
                self.counters.sessions_closed += 1;
                self.event(RelayEvent::SessionClosed {
                    session_id,
                    reason: end,
                });
            }
            SessionPhase::Connecting => {
                if let Some(code) = end.error_code() {
                    self.counters.refused(code);
                    self.event(RelayEvent::Refused {
                        code,
                        peer: session.client,
                        transport: super::Transport::Tcp,
                    });
                }
            }
        }
    }

    /// Fires one timer entry (already removed from the set).
    pub(super) fn on_timer(&mut self, key: TimerKey, now: Instant) {
        match key {
            TimerKey::Handshake(conn) => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.deadline = None;
                if !matches!(c.state, ConnState::AwaitingOpen { .. }) {
                    return;
                }
                if let Some(closed) = self.remove_conn(conn) {
                    self.counters.handshake_timeouts += 1;
                    self.emit(RelayOutput::TcpClose { conn });
                    self.event(RelayEvent::HandshakeTimedOut { peer: closed.peer });
                }
            }
            TimerKey::Session(session_id) => {
                let Some(session) = self.sessions.get(&session_id) else {
                    return;
                };
                match session.phase {
                    SessionPhase::Connecting => {
                        self.end_session(session_id, SessionEnd::ConnectTimeout);
                    }
                    SessionPhase::Open => {
                        let idle_at = session.last_activity + self.config.idle_timeout;
                        if idle_at <= now {
                            self.end_session(session_id, SessionEnd::IdleTimeout);
                        } else {
                            // The entry was popped: put a fresh one at the real deadline.
                            self.timers.insert((idle_at, TimerKey::Session(session_id)));
                            if let Some(s) = self.sessions.get_mut(&session_id) {
                                s.timer = idle_at;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Checks the bookkeeping against a recount (tests only).
    #[cfg(test)]
    #[allow(clippy::expect_used)]
    pub(super) fn check_invariants(&self) {
        let pending = self.conns.values().filter(|c| c.is_pending()).count();
        assert_eq!(pending, self.pending_handshakes, "pending handshakes");
        let held: usize = self.conns.values().map(Conn::buffered_bytes).sum();
        assert_eq!(held, self.buffered_total, "buffered bytes");
        assert!(self.conns.values().all(|c| c.held == c.buffered_bytes()));
        assert!(self.sessions.len() <= self.config.max_sessions_total);
        let mut per_ip = std::collections::BTreeMap::new();
        for (id, s) in &self.sessions {
            *per_ip.entry(s.client_ip).or_insert(0usize) += 1;
            assert_eq!(self.upstreams.get(&s.upstream), Some(id));
            assert!(self.timers.contains(&(s.timer, TimerKey::Session(*id))));
            if let Some(alloc) = s.alloc {
                assert_eq!(self.allocs.get(&alloc), Some(id));
            }
            let control = self.conns.get(&s.control).map(|c| &c.state);
            match s.phase {
                SessionPhase::Connecting => assert!(matches!(
                    control,
                    Some(ConnState::Connecting { session_id, .. }) if session_id == id
                )),
                SessionPhase::Open => assert!(matches!(
                    control,
                    Some(ConnState::Tunnel { session_id }) if session_id == id
                )),
            }
            if let Some(ch) = s.channel {
                assert!(matches!(
                    self.conns.get(&ch).map(|c| &c.state),
                    Some(ConnState::MediaChannel { session_id, .. }) if session_id == id
                ));
            }
        }
        assert_eq!(per_ip, self.sessions_per_ip, "sessions per ip");
        assert!(per_ip
            .values()
            .all(|n| *n <= self.config.max_sessions_per_client_ip));
        assert_eq!(self.upstreams.len(), self.sessions.len());
        assert_eq!(
            self.allocs.len(),
            self.sessions.values().filter(|s| s.alloc.is_some()).count()
        );
        for (id, c) in &self.conns {
            match &c.state {
                ConnState::AwaitingOpen { .. } => {
                    let at = c.deadline.expect("awaiting connections have a deadline");
                    assert!(self.timers.contains(&(at, TimerKey::Handshake(*id))));
                }
                ConnState::Connecting { session_id, early } => {
                    assert!(early.len() <= self.config.max_buffered_bytes_per_session);
                    assert_eq!(self.sessions.get(session_id).map(|s| s.control), Some(*id));
                }
                ConnState::Tunnel { session_id } => {
                    assert_eq!(self.sessions.get(session_id).map(|s| s.control), Some(*id));
                }
                ConnState::MediaChannel { session_id, .. } => {
                    assert_eq!(
                        self.sessions.get(session_id).and_then(|s| s.channel),
                        Some(*id)
                    );
                }
            }
            assert!(
                c.buffered_bytes()
                    <= FrameReader::CAPACITY.max(self.config.max_buffered_bytes_per_session)
            );
        }
        assert_eq!(
            self.timers.len(),
            self.sessions.len() + self.conns.values().filter(|c| c.deadline.is_some()).count()
        );
    }
}
