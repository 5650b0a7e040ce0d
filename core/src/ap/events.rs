//! What the access point reports: events to trace and counters.

use std::net::SocketAddr;

use super::ApConn;
use crate::wire::ErrorCode;

/// Something worth tracing, emitted as [`ApOutput::Event`](super::ApOutput::Event) after the
/// outputs it explains.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApEvent {
    /// A request was handled: every datagram, and every message (or broken frame) cut from a
    /// TCP stream.
    Request {
        /// Who asked (the datagram's source, or the connection's peer).
        from: SocketAddr,
        /// Where it came from.
        transport: ApTransport,
        /// What became of it.
        outcome: ApOutcome,
    },
    /// A TCP connection was refused at once (closed without reading from it).
    TcpRefused {
        /// The connection.
        conn: ApConn,
        /// Its peer.
        peer: SocketAddr,
        /// Which cap was reached.
        cause: TcpRefusal,
    },
    /// An accepted TCP connection ended (every accepted connection ends with exactly one).
    TcpClosed {
        /// The connection.
        conn: ApConn,
        /// Its peer.
        peer: SocketAddr,
        /// Why.
        end: TcpEnd,
    },
}

impl ApEvent {
    /// A short name for traces: `ap_request`, `ap_tcp_refused` or `ap_tcp_closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApEvent::Request { .. } => "ap_request",
            ApEvent::TcpRefused { .. } => "ap_tcp_refused",
            ApEvent::TcpClosed { .. } => "ap_tcp_closed",
        }
    }
}

/// Which of the access point's listeners a request came in on.
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[cfg_attr(feature = "serde-events", serde(rename_all = "lowercase"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApTransport {
    /// A UDP port: one datagram, one request.
    Udp,
    /// A TCP port: framed requests on a connection.
    Tcp,
}

impl ApTransport {
    /// `"udp"` or `"tcp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApTransport::Udp => "udp",
            ApTransport::Tcp => "tcp",
        }
    }
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApOutcome {
    /// Answered with relays and a ticket.
    Granted,
    /// Refused.
    Refused {
        /// Why.
        refusal: ApRefusal,
        /// Whether an `Error` was sent: it is not when even an empty reason would be larger
        /// than the request, nor to a client already told `RateLimited` in this window.
        answered: bool,
    },
    /// Not our protocol (no magic): dropped without a word.
    NotOurs,
}

impl ApOutcome {
    /// Whether anything was sent back.
    pub fn answered(self) -> bool {
        match self {
            ApOutcome::Granted => true,
            ApOutcome::Refused { answered, .. } => answered,
            ApOutcome::NotOurs => false,
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApRefusal {
    /// Over the client address's or network's budget for the window.
    RateLimited,
    /// Another protocol version.
    UnsupportedVersion,
    /// Undecodable, or a message other than an `ApRequest`.
    Malformed,
    /// An `ApRequest` shorter than [`AP_REQUEST_PADDED_LEN`](crate::wire::AP_REQUEST_PADDED_LEN).
    PaddingRequired,
    /// An application id not served here.
    UnknownApp,
    /// No relay is configured.
    NoRelay,
}

impl ApRefusal {
    /// The code the client is (or would be) told.
    pub fn code(self) -> ErrorCode {
        match self {
            ApRefusal::RateLimited => ErrorCode::RateLimited,
            ApRefusal::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            ApRefusal::Malformed => ErrorCode::Malformed,
            ApRefusal::PaddingRequired => ErrorCode::PaddingRequired,
            ApRefusal::UnknownApp => ErrorCode::UnknownApp,
            ApRefusal::NoRelay => ErrorCode::QuotaExceeded,
        }
    }
}

/// Which cap refused a TCP connection.
#[cfg_attr(feature = "serde-events", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpRefusal {
    /// [`ApConfig::max_tcp_connections`](super::ApConfig::max_tcp_connections) are open.
    TooManyConnections,
    /// [`ApConfig::max_tcp_connections_per_ip`](super::ApConfig::max_tcp_connections_per_ip)
    /// are open from the peer's address.
    TooManyFromIp,
    /// [`ApConfig::max_tcp_connections_per_prefix`](super::ApConfig::max_tcp_connections_per_prefix)
    /// are open from the peer's network.
    TooManyFromPrefix,
}

/// Why an accepted TCP connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpEnd {
    /// The peer closed it (or it broke): [`ApInput::TcpClosed`](super::ApInput::TcpClosed).
    PeerClosed,
    /// No request began within the idle timeout.
    IdleTimeout,
    /// A request began but was not complete within the idle timeout (a slow sender).
    IncompleteRequest,
    /// The per-connection request cap was reached; the last answer was sent first.
    RequestCap,
    /// A request was refused (its `Error`, if any, was sent first), or the stream was not our
    /// protocol or broke its framing.
    Refused,
}

/// The access point's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApCounters {
    /// Messages that carried our magic (everything else is dropped unanswered).
    pub requests: u64,
    /// Requests answered with an `ApResponse`.
    pub answered: u64,
    /// Messages without our magic, dropped.
    pub dropped: u64,
    /// Refused: over the per-address or per-network rate limit (answered or silenced).
    pub refused_rate_limited: u64,
    /// Refused: a protocol version other than ours.
    pub refused_unsupported_version: u64,
    /// Refused: undecodable, or not an `ApRequest`.
    pub refused_malformed: u64,
    /// Refused: an `ApRequest` shorter than the padded length.
    pub refused_padding: u64,
    /// Refused: an application id not served here.
    pub refused_unknown_app: u64,
    /// Refused: no relay is configured.
    pub refused_no_relay: u64,
    /// Refusals whose `Error` was not sent because it would have been larger than the request.
    pub error_replies_suppressed: u64,
    /// Rate-limited requests not answered at all: the client was already told `RateLimited`
    /// in this window.
    pub rate_limit_silenced: u64,
    /// Requests judged against a shared overflow window because the rate limiter's table of
    /// addresses or of networks was full.
    pub rate_limit_overflow: u64,
    /// TCP connections accepted (those refused at once excluded).
    pub tcp_accepted: u64,
    /// TCP connections refused: [`ApConfig::max_tcp_connections`](super::ApConfig::max_tcp_connections) open.
    pub tcp_refused_total: u64,
    /// TCP connections refused: the per-address cap.
    pub tcp_refused_per_ip: u64,
    /// TCP connections refused: the per-network cap.
    pub tcp_refused_per_prefix: u64,
    /// TCP connections closed for sending no request within the idle timeout.
    pub tcp_idle_timeouts: u64,
    /// TCP connections closed for not completing a request within the idle timeout.
    pub tcp_incomplete_requests: u64,
    /// TCP connections closed after the per-connection request cap.
    pub tcp_request_caps: u64,
    /// Inputs for connection ids the access point does not know (races with a close), or an
    /// accept reusing an open id (a confused driver).
    pub ignored_inputs: u64,
}

impl ApCounters {
    /// Counts one refusal.
    pub(super) fn refused(&mut self, refusal: ApRefusal) {
        let counter = match refusal {
            ApRefusal::RateLimited => &mut self.refused_rate_limited,
            ApRefusal::UnsupportedVersion => &mut self.refused_unsupported_version,
            ApRefusal::Malformed => &mut self.refused_malformed,
            ApRefusal::PaddingRequired => &mut self.refused_padding,
            ApRefusal::UnknownApp => &mut self.refused_unknown_app,
            ApRefusal::NoRelay => &mut self.refused_no_relay,
        };
        *counter += 1;
    }

    /// Counts one refused connection.
    pub(super) fn tcp_refused(&mut self, cause: TcpRefusal) {
        let counter = match cause {
            TcpRefusal::TooManyConnections => &mut self.tcp_refused_total,
            TcpRefusal::TooManyFromIp => &mut self.tcp_refused_per_ip,
            TcpRefusal::TooManyFromPrefix => &mut self.tcp_refused_per_prefix,
        };
        *counter += 1;
    }
}
