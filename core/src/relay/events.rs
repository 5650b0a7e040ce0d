//! What the relay reports: events to trace and counters.

use std::net::SocketAddr;

use super::ClientConn;
use crate::wire::{CloseReason, ErrorCode};

/// Something worth tracing, emitted as [`RelayOutput::Event`](super::RelayOutput::Event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A tunnel was accepted: the upstream connection is established and `TunnelAccept` sent.
    SessionOpened {
        /// The session's id.
        session_id: u64,
        /// The client's address (of its tunnel connection).
        client: SocketAddr,
        /// The SD-RTN signalling server the tunnel reaches.
        destination: SocketAddr,
        /// The UDP port announced for media (0: none).
        udp_port: u16,
    },
    /// An opened session ended (every `SessionOpened` is followed by exactly one of these).
    SessionClosed {
        /// The session's id.
        session_id: u64,
        /// Why.
        reason: SessionEnd,
    },
    /// A TCP media channel was attached to a session.
    MediaChannelOpened {
        /// The session's id.
        session_id: u64,
        /// The channel's connection.
        conn: ClientConn,
        /// The client's address on that connection.
        peer: SocketAddr,
    },
    /// A request was refused, on TCP with an `Error` reply, on UDP by dropping the datagram
    /// (and perhaps a rate-limited `Error` datagram).
    Refused {
        /// Why, as the code the client is (or would be) told.
        code: ErrorCode,
        /// Who asked.
        peer: SocketAddr,
        /// Where the request came from.
        transport: Transport,
    },
    /// A connection sent no first message within the handshake timeout and was closed.
    HandshakeTimedOut {
        /// The client's address.
        peer: SocketAddr,
    },
}

/// Which of the relay's listeners a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The TCP port (tunnels and media channels).
    Tcp,
    /// A UDP media port.
    Udp,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The client closed its tunnel connection.
    ClientClosed,
    /// The client sent `Close` on a media path.
    ClientSentClose,
    /// SD-RTN closed the tunnel's upstream connection.
    UpstreamClosed,
    /// The upstream connection could not be established (the session never opened).
    UpstreamUnreachable,
    /// The upstream connection was not established within the handshake timeout (the session
    /// never opened).
    ConnectTimeout,
    /// Nothing crossed the session, either way, for the idle timeout.
    IdleTimeout,
    /// The client sent more than the relay buffers while the upstream connection was opening.
    BufferOverflow,
    /// The relay is shutting down ([`Relay::shutdown`](super::Relay::shutdown)).
    ShuttingDown,
}

impl SessionEnd {
    /// The reason given in the `Close` message sent on the session's media paths.
    pub fn close_reason(self) -> CloseReason {
        match self {
            SessionEnd::ClientClosed | SessionEnd::ClientSentClose => CloseReason::Normal,
            SessionEnd::UpstreamClosed => CloseReason::UpstreamClosed,
            SessionEnd::IdleTimeout => CloseReason::IdleTimeout,
            SessionEnd::ShuttingDown => CloseReason::ShuttingDown,
            SessionEnd::UpstreamUnreachable
            | SessionEnd::ConnectTimeout
            | SessionEnd::BufferOverflow => CloseReason::Error,
        }
    }

    /// The code of the `Error` sent to a client whose tunnel ends before it was accepted
    /// (`None`: the client is gone and told nothing).
    pub fn error_code(self) -> Option<ErrorCode> {
        match self {
            SessionEnd::ClientClosed | SessionEnd::ClientSentClose => None,
            SessionEnd::UpstreamClosed
            | SessionEnd::UpstreamUnreachable
            | SessionEnd::ConnectTimeout
            | SessionEnd::IdleTimeout => Some(ErrorCode::UpstreamUnreachable),
            SessionEnd::BufferOverflow => Some(ErrorCode::QuotaExceeded),
            SessionEnd::ShuttingDown => Some(ErrorCode::ShuttingDown),
        }
    }
}

/// The relay's counters. `up` is client → SD-RTN, `down` is SD-RTN → client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Client TCP connections accepted (those refused at once for the handshake quota
    /// excluded).
    pub tcp_accepted: u64,
    /// Sessions opened (`TunnelAccept` sent).
    pub sessions_opened: u64,
    /// Opened sessions that ended.
    pub sessions_closed: u64,
    /// TCP media channels attached to a session.
    pub media_channels_opened: u64,
    /// Tunnel bytes forwarded from clients to SD-RTN.
    pub tcp_bytes_up: u64,
    /// Tunnel bytes forwarded from SD-RTN to clients.
    pub tcp_bytes_down: u64,
    /// Media datagrams sent to SD-RTN (whether they came over UDP or a media channel).
    pub udp_packets_up: u64,
    /// Payload bytes of `udp_packets_up`.
    pub udp_bytes_up: u64,
    /// Media datagrams from SD-RTN forwarded to clients (over UDP or a media channel).
    pub udp_packets_down: u64,
    /// Payload bytes of `udp_packets_down`.
    pub udp_bytes_down: u64,
    /// Keepalives answered.
    pub keepalives: u64,
    /// Refused: a version other than ours.
    pub refused_unsupported_version: u64,
    /// Refused: undecodable, or a message not expected there.
    pub refused_malformed: u64,
    /// Refused: the ticket's MAC does not verify.
    pub refused_ticket_invalid: u64,
    /// Refused: the ticket has expired.
    pub refused_ticket_expired: u64,
    /// Refused: the ticket belongs to another client address.
    pub refused_client_mismatch: u64,
    /// Refused: the ticket's nonce already opened a tunnel.
    pub refused_ticket_replayed: u64,
    /// Refused: a destination (tunnel or media) outside the SD-RTN allow-list.
    pub refused_destination: u64,
    /// Refused: a quota (sessions, handshakes, nonces, media channels, buffers).
    pub refused_quota: u64,
    /// Refused: no such session, or not this client's.
    pub refused_unknown_session: u64,
    /// Refused: the upstream connection failed or timed out.
    pub refused_upstream_unreachable: u64,
    /// Refused (or ended before it was accepted): the relay is shutting down.
    pub refused_shutting_down: u64,
    /// Connections closed for not sending their first message in time.
    pub handshake_timeouts: u64,
    /// Sessions closed for idleness.
    pub idle_timeouts: u64,
    /// Sessions closed for exceeding the buffer bound.
    pub buffer_overflows: u64,
    /// Client datagrams dropped, for any reason (refused ones included).
    pub udp_dropped_from_client: u64,
    /// SD-RTN datagrams dropped: unknown socket, source outside the allow-list, too large,
    /// or no media path to the client yet.
    pub udp_dropped_from_upstream: u64,
    /// `Error` datagrams not sent because of the rate limit or the no-amplification rule.
    pub udp_error_replies_suppressed: u64,
    /// NAT rebindings followed: a session's UDP address moved to another port of the same IP
    /// (docs/protocol.md §2.3).
    pub udp_rebinds: u64,
    /// Client datagrams dropped because they came from a session's retired UDP address
    /// (also counted in `udp_dropped_from_client`).
    pub udp_from_retired_address: u64,
    /// Inputs for ids the relay does not know (races with a close, or a confused driver).
    pub ignored_inputs: u64,
}

impl RelayCounters {
    /// Counts one refusal with `code`.
    pub(super) fn refused(&mut self, code: ErrorCode) {
        let counter = match code {
            ErrorCode::UnsupportedVersion => &mut self.refused_unsupported_version,
            ErrorCode::TicketInvalid => &mut self.refused_ticket_invalid,
            ErrorCode::TicketExpired => &mut self.refused_ticket_expired,
            ErrorCode::ClientMismatch => &mut self.refused_client_mismatch,
            ErrorCode::TicketReplayed => &mut self.refused_ticket_replayed,
            ErrorCode::DestinationRefused => &mut self.refused_destination,
            ErrorCode::QuotaExceeded => &mut self.refused_quota,
            ErrorCode::UnknownSession => &mut self.refused_unknown_session,
            ErrorCode::UpstreamUnreachable => &mut self.refused_upstream_unreachable,
            ErrorCode::ShuttingDown => &mut self.refused_shutting_down,
            _ => &mut self.refused_malformed,
        };
        *counter += 1;
    }
}
