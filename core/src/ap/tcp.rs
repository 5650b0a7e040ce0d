//! The access point's TCP side: connection caps, framing, the idle timeout and the request cap.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::{
    client_address, client_network, AccessPoint, ApConn, ApEvent, ApOutcome, ApOutput, ApTransport,
    TcpEnd, TcpRefusal,
};
use crate::time::Instant;
use crate::wire::{DecodeError, FrameReader, Message};

/// Where an accepted connection stands.
///
/// ```text
///  TcpAccepted ── over a cap (total, per address, per network) ──▶ TcpClose at once,
///       │                                                          never stored (TcpRefused)
///       ▼
///  ┌──────────┐   first bytes of a request     ┌───────────┐
///  │ Awaiting │ ─────────────────────────────▶ │ Receiving │
///  │          │ ◀───────────────────────────── │           │
///  └──────────┘   whole request answered,      └───────────┘
///       │         fewer than the cap so far          │
///       │         (the idle deadline restarts)        │
///       │                                             │
///       ├── idle deadline ─────────────────────▶ closed (IdleTimeout)
///       │                       idle deadline ──┴───▶ closed (IncompleteRequest)
///       │
///  from either state:
///       ├── the cap-th request answered ───────▶ closed (RequestCap)       answer, TcpClose
///       ├── a refused request, a broken frame,
///       │   not our magic ─────────────────────▶ closed (Refused)   Error if any, TcpClose
///       └── TcpClosed from the driver ─────────▶ closed (PeerClosed)       no TcpClose echo
/// ```
///
/// "Closed" connections are forgotten at once: every input that still names them is ignored.
/// A connection holds at most one partial frame ([`FrameReader::CAPACITY`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// No byte of the next request has arrived.
    Awaiting,
    /// Part of a request is buffered.
    Receiving,
}

/// One accepted connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The client.
    peer: SocketAddr,
    state: ConnState,
    /// At most one partial frame.
    reader: FrameReader,
    /// Requests answered so far.
    answered: u32,
    /// When the connection is closed unless a request completes first.
    deadline: Instant,
}

impl Conn {
    /// Bytes of a partial request buffered.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.reader.buffered()
    }
}

/// Open connections per client address and per client network.
#[derive(Clone, Debug, Default)]
pub(super) struct ConnCounts {
    per_address: BTreeMap<IpAddr, usize>,
    per_network: BTreeMap<IpAddr, usize>,
}

impl ConnCounts {
    fn add(&mut self, ip: IpAddr) {
        *self
            .per_address
            .entry(client_address(ip).addr())
            .or_default() += 1;
        *self
            .per_network
            .entry(client_network(ip).addr())
            .or_default() += 1;
    }

    fn remove(&mut self, ip: IpAddr) {
        for (map, key) in [
            (&mut self.per_address, client_address(ip).addr()),
            (&mut self.per_network, client_network(ip).addr()),
        ] {
            if let Some(n) = map.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }

    fn of(&self, ip: IpAddr) -> (usize, usize) {
        let a = self.per_address.get(&client_address(ip).addr());
        let n = self.per_network.get(&client_network(ip).addr());
        (a.copied().unwrap_or(0), n.copied().unwrap_or(0))
    }

    /// How many addresses and networks have connections open.
    pub(super) fn tracked(&self) -> (usize, usize) {
        (self.per_address.len(), self.per_network.len())
    }
}

impl AccessPoint {
    /// A connection was accepted: admit it, or close it at once if a cap is reached.
    pub(super) fn on_tcp_accepted(&mut self, conn: ApConn, peer: SocketAddr, now: Instant) {
        if self.conns.contains_key(&conn) {
            self.counters.ignored_inputs += 1;
            return;
        }
        let (from_address, from_network) = self.conn_counts.of(peer.ip());
        let cause = if self.conns.len() >= self.config.max_tcp_connections {
            Some(TcpRefusal::TooManyConnections)
        } else if from_address >= self.config.max_tcp_connections_per_ip {
            Some(TcpRefusal::TooManyFromIp)
        } else if from_network >= self.config.max_tcp_connections_per_prefix {
            Some(TcpRefusal::TooManyFromPrefix)
        } else {
            None
        };
        if let Some(cause) = cause {
            self.counters.tcp_refused(cause);
            self.emit(ApOutput::TcpClose { conn });
            self.event(ApEvent::TcpRefused { conn, peer, cause });
            return;
        }
        self.counters.tcp_accepted += 1;
        self.conn_counts.add(peer.ip());
        let deadline = now + self.config.tcp_idle_timeout;
        self.timers.insert((deadline, conn));
        self.conns.insert(
            conn,
            Conn {
                peer,
                state: ConnState::Awaiting,
                reader: FrameReader::new(),
                answered: 0,
                deadline,
            },
        );
    }

    /// Bytes arrived: cut them into requests and answer each, until the data is used up or
    /// the connection is closed (the rest is then discarded).
    pub(super) fn on_tcp_data(&mut self, conn: ApConn, mut data: &[u8], now: Instant) {
        if !self.conns.contains_key(&conn) {
            self.counters.ignored_inputs += 1;
            return;
        }
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let taken = c.reader.push(data);
            data = data.get(taken..).unwrap_or_default();
            let peer = c.peer;
            match c.reader.pop() {
                Ok(Some(msg)) => {
                    c.state = ConnState::Awaiting;
                    let len = msg.encoded_len();
                    self.on_tcp_request(conn, peer, Ok(msg), len, now);
                }
                Ok(None) => {
                    c.state = if c.reader.buffered() > 0 {
                        ConnState::Receiving
                    } else {
                        ConnState::Awaiting
                    };
                    // A reader with room took everything; a full one always pops.
                    if data.is_empty() || taken == 0 {
                        return;
                    }
                }
                Err(err) => {
                    let len = c.reader.take_rest().len();
                    self.on_tcp_request(conn, peer, Err(err), len, now);
                    return;
                }
            }
        }
    }

    /// Answers one request cut from connection `conn` (`len` bytes: the frame, or the broken
    /// frame's bytes), then closes the connection unless it was granted below the cap.
    fn on_tcp_request(
        &mut self,
        conn: ApConn,
        peer: SocketAddr,
        decoded: Result<Message, DecodeError>,
        len: usize,
        now: Instant,
    ) {
        let (reply, outcome) = match decoded {
            Err(DecodeError::BadMagic(_)) => {
                self.counters.dropped += 1;
                (None, ApOutcome::NotOurs)
            }
            decoded => self.judge(now, peer, decoded, len),
        };
        if let Some(data) = reply {
            self.emit(ApOutput::TcpSend { conn, data });
        }
        self.event(ApEvent::Request {
            from: peer,
            transport: ApTransport::Tcp,
            outcome,
        });
        if outcome != ApOutcome::Granted {
            self.close(conn, TcpEnd::Refused);
            return;
        }
        let cap = self.config.max_requests_per_tcp_connection.max(1);
        let idle = self.config.tcp_idle_timeout;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.answered = c.answered.saturating_add(1);
        if c.answered >= cap {
            self.counters.tcp_request_caps += 1;
            self.close(conn, TcpEnd::RequestCap);
            return;
        }
        self.timers.remove(&(c.deadline, conn));
        c.deadline = now + idle;
        self.timers.insert((c.deadline, conn));
    }

    /// The driver reports the connection gone.
    pub(super) fn on_tcp_closed(&mut self, conn: ApConn) {
        match self.forget(conn) {
            Some(peer) => self.event(ApEvent::TcpClosed {
                conn,
                peer,
                end: TcpEnd::PeerClosed,
            }),
            None => self.counters.ignored_inputs += 1,
        }
    }

    /// Closes every connection whose deadline is at or before `now`.
    pub(super) fn expire_connections(&mut self, now: Instant) {
        while let Some(&(at, conn)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let end = match self.conns.get(&conn).map(|c| c.state) {
                Some(ConnState::Receiving) => {
                    self.counters.tcp_incomplete_requests += 1;
                    TcpEnd::IncompleteRequest
                }
                Some(ConnState::Awaiting) => {
                    self.counters.tcp_idle_timeouts += 1;
                    TcpEnd::IdleTimeout
                }
                None => continue,
            };
            self.close(conn, end);
        }
    }

    /// Closes `conn` (after what was queued for it) and forgets it.
    fn close(&mut self, conn: ApConn, end: TcpEnd) {
        if let Some(peer) = self.forget(conn) {
            self.emit(ApOutput::TcpClose { conn });
            self.event(ApEvent::TcpClosed { conn, peer, end });
        }
    }

    /// Removes `conn` and everything that refers to it; its peer if it was open.
    fn forget(&mut self, conn: ApConn) -> Option<SocketAddr> {
        let c = self.conns.remove(&conn)?;
        self.timers.remove(&(c.deadline, conn));
        self.conn_counts.remove(c.peer.ip());
        Some(c.peer)
    }
}
