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
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The TCP port (tunnels and media channels).
    Tcp,
    /// A UDP media port.
    Udp,
}

/// Why a session ended.
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
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
    /// The session's upstream UDP socket could not be opened
    /// ([`RelayInput::UdpBindFailed`](super::RelayInput::UdpBindFailed): out of descriptors or
    /// ports); the session cannot carry media.
    UdpBindFailed,
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
            | SessionEnd::BufferOverflow
            | SessionEnd::UdpBindFailed => CloseReason::Error,
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
            SessionEnd::BufferOverflow | SessionEnd::UdpBindFailed => {
                Some(ErrorCode::QuotaExceeded)
            }
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
    /// Tunnels handed to the driver to move their bytes ([`RelayOutput::Splice`](super::RelayOutput::Splice)).
    pub tunnels_spliced: u64,
    /// Upstream UDP sockets that could not be opened (each ended its session).
    pub udp_bind_failures: u64,
    /// Media channels replaced by a newer `MediaChannelOpen` of the same session.
    pub media_channels_replaced: u64,
    /// Connections handed to the shard that owns their session
    /// ([`RelayOutput::TcpHandoff`](super::RelayOutput::TcpHandoff)).
    pub handoffs: u64,
}

/// The relay's gauges, kept up to date as it goes (reading them costs nothing, however many
/// sessions are open): [`Relay::gauges`](super::Relay::gauges).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayGauges {
    /// Sessions now, the ones still connecting upstream included.
    pub sessions: usize,
    /// Most sessions at once.
    pub peak_sessions: usize,
    /// Client connections open now, in any state.
    pub connections: usize,
    /// Most client connections at once.
    pub peak_connections: usize,
    /// Bytes the relay holds now: partial frames and early tunnel bytes.
    pub buffered_bytes: usize,
    /// Most bytes held at once.
    pub peak_buffered_bytes: usize,
    /// Connections in their handshake now.
    pub pending_handshakes: usize,
    /// Upstream UDP sockets open (or being opened) now.
    pub udp_allocs: usize,
}

impl RelayCounters {
    /// Adds `other`'s counts to these (the counters of several shards of one relay).
    pub fn merge(&mut self, other: &RelayCounters) {
        let RelayCounters {
            tcp_accepted,
            sessions_opened,
            sessions_closed,
            media_channels_opened,
            tcp_bytes_up,
            tcp_bytes_down,
            udp_packets_up,
            udp_bytes_up,
            udp_packets_down,
            udp_bytes_down,
            keepalives,
            refused_unsupported_version,
            refused_malformed,
            refused_ticket_invalid,
            refused_ticket_expired,
            refused_client_mismatch,
            refused_ticket_replayed,
            refused_destination,
            refused_quota,
            refused_unknown_session,
            refused_upstream_unreachable,
            refused_shutting_down,
            handshake_timeouts,
            idle_timeouts,
            buffer_overflows,
            udp_dropped_from_client,
            udp_dropped_from_upstream,
            udp_error_replies_suppressed,
            ignored_inputs,
            tunnels_spliced,
            udp_bind_failures,
            media_channels_replaced,
            handoffs,
            udp_rebinds,
            udp_from_retired_address,
        } = other;
        self.tcp_accepted += tcp_accepted;
        self.sessions_opened += sessions_opened;
        self.sessions_closed += sessions_closed;
        self.media_channels_opened += media_channels_opened;
        self.tcp_bytes_up += tcp_bytes_up;
        self.tcp_bytes_down += tcp_bytes_down;
        self.udp_packets_up += udp_packets_up;
        self.udp_bytes_up += udp_bytes_up;
        self.udp_packets_down += udp_packets_down;
        self.udp_bytes_down += udp_bytes_down;
        self.keepalives += keepalives;
        self.refused_unsupported_version += refused_unsupported_version;
        self.refused_malformed += refused_malformed;
        self.refused_ticket_invalid += refused_ticket_invalid;
        self.refused_ticket_expired += refused_ticket_expired;
        self.refused_client_mismatch += refused_client_mismatch;
        self.refused_ticket_replayed += refused_ticket_replayed;
        self.refused_destination += refused_destination;
        self.refused_quota += refused_quota;
        self.refused_unknown_session += refused_unknown_session;
        self.refused_upstream_unreachable += refused_upstream_unreachable;
        self.refused_shutting_down += refused_shutting_down;
        self.handshake_timeouts += handshake_timeouts;
        self.idle_timeouts += idle_timeouts;
        self.buffer_overflows += buffer_overflows;
        self.udp_dropped_from_client += udp_dropped_from_client;
        self.udp_dropped_from_upstream += udp_dropped_from_upstream;
        self.udp_error_replies_suppressed += udp_error_replies_suppressed;
        self.ignored_inputs += ignored_inputs;
        self.tunnels_spliced += tunnels_spliced;
        self.udp_bind_failures += udp_bind_failures;
        self.media_channels_replaced += media_channels_replaced;
        self.handoffs += handoffs;
        self.udp_rebinds += udp_rebinds;
        self.udp_from_retired_address += udp_from_retired_address;
    }

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
