//! Media: UDP from clients and from SD-RTN, and TCP media channels.

use std::net::SocketAddr;
use std::time::Duration;

use super::session::{ConnState, MediaPath, SessionPhase};
use super::{
    bounded_error, frame, AllocId, ClientConn, Conn, Relay, RelayOutput, SessionEnd, Transport,
};
use crate::time::Instant;
use crate::wire::{DatagramView, ErrorCode, MediaFrame, Message, MAX_MEDIA_PAYLOAD};

impl Relay {
    /// A datagram from a client on one of the relay's UDP ports.
    pub(super) fn on_udp_from_client(
        &mut self,
        local_port: u16,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        if !self.config.udp_ports.contains(&local_port) {
            // Not one of our ports: a confused driver; never answer from it.
            self.counters.ignored_inputs += 1;
            self.counters.udp_dropped_from_client += 1;
            return;
        }
        // Decoded in place: a media payload is not copied until it goes into a pooled buffer.
        let msg = match DatagramView::decode(data) {
            Ok(
                msg @ (DatagramView::Media(_)
                | DatagramView::Other(Message::Keepalive { .. } | Message::Close { .. })),
            ) => msg,
            // Not ours, undecodable, or not a client media message: no answer, since the
            // sender is unauthenticated (and the source address may be forged).
            Ok(_) | Err(_) => {
                self.counters.udp_dropped_from_client += 1;
                self.counters.refused(ErrorCode::Malformed);
                return;
            }
        };
        let session_id = msg.session_id().unwrap_or(0);
        let authentic = self.sessions.get(&session_id).is_some_and(|s| {
            s.phase == SessionPhase::Open && s.client_ip == from.ip().to_canonical()
        });
        if !authentic {
            // Wrong source or unknown id alike: the answer must not reveal which. Only a client
            // of this relay (an address with a session here) is answered, never a stranger.
            self.counters.udp_dropped_from_client += 1;
            self.count_refusal(ErrorCode::UnknownSession, from, Transport::Udp);
            if self.sessions_per_ip.contains_key(&from.ip().to_canonical()) {
                self.udp_error_reply(local_port, from, ErrorCode::UnknownSession, data.len(), now);
            } else {
                self.counters.udp_error_replies_suppressed += 1;
            }
            return;
        }
        if !self.accept_udp_source(session_id, from) {
            return;
        }
        let path = MediaPath::Udp {
            local_port,
            addr: from,
        };
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.udp = Some(path);
            session.media_path = Some(path);
        }
        self.touch(session_id, now);
        self.on_client_media(session_id, path, msg, data.len(), now);
    }

    /// Bytes on a media channel: pops and handles every whole frame.
    pub(super) fn on_channel_bytes(&mut self, conn: ClientConn, data: &[u8], now: Instant) {
        let mut rest = data;
        loop {
            loop {
                let Some(Conn {
                    state: ConnState::MediaChannel { session_id, reader },
                    ..
                }) = self.conns.get_mut(&conn)
                else {
                    return;
                };
                let session_id = *session_id;
                match reader.pop() {
                    Ok(Some(msg)) => self.on_channel_message(conn, session_id, msg, now),
                    Ok(None) => break,
                    Err(err) => {
                        self.refuse(conn, err.error_code(), &err.to_string());
                        return;
                    }
                }
            }
            if rest.is_empty() {
                return;
            }
            let Some(Conn {
                state: ConnState::MediaChannel { reader, .. },
                ..
            }) = self.conns.get_mut(&conn)
            else {
                return;
            };
            let taken = reader.push(rest);
            if taken == 0 {
                // Unreachable: a full reader always pops a message or an error.
                self.refuse(conn, ErrorCode::Malformed, "frame too long");
                return;
            }
            rest = rest.get(taken..).unwrap_or_default();
        }
    }

    /// One framed message on a media channel.
    fn on_channel_message(
        &mut self,
        conn: ClientConn,
        session_id: u64,
        msg: Message,
        now: Instant,
    ) {
        match &msg {
            Message::MediaData { .. } | Message::Keepalive { .. } | Message::Close { .. } => {}
            other => {
                let reason = format!(
                    "{:?} is not expected on a media channel",
                    other.message_type()
                );
                self.refuse(conn, ErrorCode::Malformed, &reason);
                return;
            }
        }
        if msg.session_id() != Some(session_id) {
            self.refuse(
                conn,
                ErrorCode::UnknownSession,
                "not this channel's session",
            );
            return;
        }
        let path = MediaPath::Channel(conn);
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.media_path = Some(path);
        }
        self.touch(session_id, now);
        let len = msg.encoded_len();
        let view = match &msg {
            Message::MediaData {
                session_id,
                peer,
                payload,
            } => DatagramView::Media(MediaFrame {
                session_id: *session_id,
                peer: *peer,
                payload,
            }),
            other => DatagramView::Other(other.clone()),
        };
        self.on_client_media(session_id, path, view, len, now);
    }

    /// An authenticated media message from the client of `session_id`, which came on `path`.
    fn on_client_media(
        &mut self,
        session_id: u64,
        path: MediaPath,
        msg: DatagramView<'_>,
        request_len: usize,
        now: Instant,
    ) {
        match msg {
            DatagramView::Media(MediaFrame { peer, payload, .. }) => {
                if !self.destination_ok(peer) {
                    let from = self.path_peer(path);
                    self.count_refusal(ErrorCode::DestinationRefused, from, transport_of(path));
                    if let MediaPath::Udp { local_port, addr } = path {
                        self.counters.udp_dropped_from_client += 1;
                        self.udp_error_reply(
                            local_port,
                            addr,
                            ErrorCode::DestinationRefused,
                            request_len,
                            now,
                        );
                    }
                    return;
                }
                let alloc = self.alloc_for(session_id);
                self.counters.udp_packets_up += 1;
                self.counters.udp_bytes_up += payload.len() as u64;
                let mut data = self.pool.take();
                data.extend_from_slice(payload);
                self.emit(RelayOutput::UdpToUpstream {
                    alloc,
                    to: peer,
                    data,
                });
            }
            DatagramView::Other(Message::Keepalive { seq, .. }) => {
                self.counters.keepalives += 1;
                self.send_on_path(path, &Message::KeepaliveAck { session_id, seq });
            }
            DatagramView::Other(Message::Close { .. }) => {
                self.end_session(session_id, SessionEnd::ClientSentClose)
            }
            DatagramView::Other(_) => {}
        }
    }

    /// The session's upstream UDP socket, bound on first use.
    fn alloc_for(&mut self, session_id: u64) -> AllocId {
        if let Some(alloc) = self.sessions.get(&session_id).and_then(|s| s.alloc) {
            return alloc;
        }
        let alloc = AllocId(self.next_alloc);
        self.next_alloc += 1;
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.alloc = Some(alloc);
        }
        self.allocs.insert(alloc, session_id);
        self.emit(RelayOutput::UdpBind { alloc });
        alloc
    }

    /// The session's upstream UDP socket could not be opened: the session ends.
    pub(super) fn on_udp_bind_failed(&mut self, alloc: AllocId) {
        let Some(session_id) = self.allocs.remove(&alloc) else {
            self.counters.ignored_inputs += 1;
            return;
        };
        // The driver has no socket to release: forget it before ending the session.
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.alloc = None;
        }
        self.end_session(session_id, SessionEnd::UdpBindFailed);
    }

    /// A datagram from SD-RTN on a session's upstream socket.
    pub(super) fn on_udp_from_upstream(
        &mut self,
        alloc: AllocId,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let Some(&session_id) = self.allocs.get(&alloc) else {
            self.counters.ignored_inputs += 1;
            self.counters.udp_dropped_from_upstream += 1;
            return;
        };
        let path = self.sessions.get(&session_id).and_then(|s| s.media_path);
        let Some(path) = path else {
            self.counters.udp_dropped_from_upstream += 1;
            return;
        };
        if !self.destination_ok(from) || data.len() > MAX_MEDIA_PAYLOAD {
            self.counters.udp_dropped_from_upstream += 1;
            return;
        }
        self.touch(session_id, now);
        self.counters.udp_packets_down += 1;
        self.counters.udp_bytes_down += data.len() as u64;
        let frame = MediaFrame {
            session_id,
            peer: from,
            payload: data,
        };
        // Framed straight into a pooled buffer (a media channel's gets its own vector).
        let mut buf = match path {
            MediaPath::Udp { .. } => self.pool.take(),
            MediaPath::Channel(_) => Vec::new(),
        };
        // The payload's length was checked above: encoding cannot fail.
        if frame.encode_into(&mut buf).is_ok() {
            self.emit_on_path(path, buf);
        }
    }

    /// Sends a message to the client on `path` (a UDP datagram in a pooled buffer).
    fn send_on_path(&mut self, path: MediaPath, msg: &Message) {
        let data = match path {
            MediaPath::Udp { .. } => {
                let mut buf = self.pool.take();
                match msg.encode(&mut buf) {
                    Ok(()) => buf,
                    Err(_) => Vec::new(),
                }
            }
            MediaPath::Channel(_) => frame(msg),
        };
        self.emit_on_path(path, data);
    }

    /// Emits `data` (one encoded message) to the client on `path`.
    fn emit_on_path(&mut self, path: MediaPath, data: Vec<u8>) {
        match path {
            MediaPath::Udp { local_port, addr } => self.emit(RelayOutput::UdpToClient {
                local_port,
                to: addr,
                data,
            }),
            MediaPath::Channel(conn) => self.emit(RelayOutput::TcpSend { conn, data }),
        }
    }

    /// The client's address on `path`.
    fn path_peer(&self, path: MediaPath) -> SocketAddr {
        match path {
            MediaPath::Udp { addr, .. } => addr,
            MediaPath::Channel(conn) => self
                .conns
                .get(&conn)
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer),
        }
    }

    /// Answers a refused datagram with an `Error`, within the per-second budget and never
    /// larger than the datagram it answers.
    fn udp_error_reply(
        &mut self,
        local_port: u16,
        to: SocketAddr,
        code: ErrorCode,
        request_len: usize,
        now: Instant,
    ) {
        if now >= self.udp_error_window + Duration::from_secs(1) || now < self.udp_error_window {
            self.udp_error_window = now;
            self.udp_errors_in_window = 0;
        }
        let reply = (self.udp_errors_in_window < self.config.max_udp_error_replies_per_sec)
            .then(|| bounded_error(code, &code.to_string(), request_len))
            .flatten();
        match reply {
            Some(data) => {
                self.udp_errors_in_window += 1;
                self.emit(RelayOutput::UdpToClient {
                    local_port,
                    to,
                    data,
                });
            }
            None => self.counters.udp_error_replies_suppressed += 1,
        }
    }
}

/// The transport a media path runs over.
fn transport_of(path: MediaPath) -> Transport {
    match path {
        MediaPath::Udp { .. } => Transport::Udp,
        MediaPath::Channel(_) => Transport::Tcp,
    }
}
