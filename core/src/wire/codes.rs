//! The numeric codes carried in [`Message::Error`](super::Message::Error) and
//! [`Message::Close`](super::Message::Close).

use std::fmt;

/// Why a request failed: the `code` of an [`Error`](super::Message::Error) message, a `u16`.
///
/// Unknown codes decode to [`ErrorCode::Other`] and encode back unchanged, so a peer running a
/// newer version can add codes without breaking older ones. `Other` holding a known code (say
/// `Other(3)`) encodes as that code and decodes as the named variant; [`ErrorCode::from_u16`]
/// never produces such a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 1: the header's version is not one the receiver speaks.
    UnsupportedVersion,
    /// 2: the message could not be decoded, or was not expected at this point.
    Malformed,
    /// 3: the ticket's MAC does not verify (forged, damaged, or another key).
    TicketInvalid,
    /// 4: the ticket's expiry has passed.
    TicketExpired,
    /// 5: the ticket's nonce has already opened a tunnel on this relay.
    TicketReplayed,
    /// 6: the ticket was issued to another client address.
    ClientMismatch,
    /// 7: the relay does not forward to that destination (not part of SD-RTN).
    DestinationRefused,
    /// 8: a session, bandwidth or port quota is exhausted.
    QuotaExceeded,
    /// 9: the relay could not reach the destination.
    UpstreamUnreachable,
    /// 10: no session has that id (or it belongs to another client).
    UnknownSession,
    /// 11: the server is shutting down and accepts nothing new.
    ShuttingDown,
    /// 12: the access point does not know that application id.
    UnknownApp,
    /// 13: too many requests from this client; retry later.
    RateLimited,
    /// 14: an access-point request shorter than
    /// [`AP_REQUEST_PADDED_LEN`](super::AP_REQUEST_PADDED_LEN): pad it (see
    /// [`Message::padded_ap_request`](super::Message::padded_ap_request)).
    PaddingRequired,
    /// Any other code, kept as is.
    Other(u16),
}

impl ErrorCode {
    /// The code for a `u16` on the wire.
    pub const fn from_u16(code: u16) -> Self {
        match code {
            1 => ErrorCode::UnsupportedVersion,
            2 => ErrorCode::Malformed,
            3 => ErrorCode::TicketInvalid,
            4 => ErrorCode::TicketExpired,
            5 => ErrorCode::TicketReplayed,
            6 => ErrorCode::ClientMismatch,
            7 => ErrorCode::DestinationRefused,
            8 => ErrorCode::QuotaExceeded,
            9 => ErrorCode::UpstreamUnreachable,
            10 => ErrorCode::UnknownSession,
            11 => ErrorCode::ShuttingDown,
            12 => ErrorCode::UnknownApp,
            13 => ErrorCode::RateLimited,
            14 => ErrorCode::PaddingRequired,
            other => ErrorCode::Other(other),
        }
    }

    /// The `u16` written on the wire.
    pub const fn to_u16(self) -> u16 {
        match self {
            ErrorCode::UnsupportedVersion => 1,
            ErrorCode::Malformed => 2,
            ErrorCode::TicketInvalid => 3,
            ErrorCode::TicketExpired => 4,
            ErrorCode::TicketReplayed => 5,
            ErrorCode::ClientMismatch => 6,
            ErrorCode::DestinationRefused => 7,
            ErrorCode::QuotaExceeded => 8,
            ErrorCode::UpstreamUnreachable => 9,
            ErrorCode::UnknownSession => 10,
            ErrorCode::ShuttingDown => 11,
            ErrorCode::UnknownApp => 12,
            ErrorCode::RateLimited => 13,
            ErrorCode::PaddingRequired => 14,
            ErrorCode::Other(code) => code,
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(code: u16) -> Self {
        ErrorCode::from_u16(code)
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> Self {
        code.to_u16()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::Malformed => "malformed message",
            ErrorCode::TicketInvalid => "invalid ticket",
            ErrorCode::TicketExpired => "ticket expired",
            ErrorCode::TicketReplayed => "ticket already used",
            ErrorCode::ClientMismatch => "ticket issued to another client",
            ErrorCode::DestinationRefused => "destination refused",
            ErrorCode::QuotaExceeded => "quota exceeded",
            ErrorCode::UpstreamUnreachable => "upstream unreachable",
            ErrorCode::UnknownSession => "unknown session",
            ErrorCode::ShuttingDown => "shutting down",
            ErrorCode::UnknownApp => "unknown application id",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::PaddingRequired => "request not padded",
            ErrorCode::Other(code) => return write!(f, "error code {code}"),
        };
        f.write_str(text)
    }
}

/// Why a session ended: the `reason` of a [`Close`](super::Message::Close) message, a `u8`.
///
/// Unknown reasons decode to [`CloseReason::Other`] and encode back unchanged (with the same
/// caveat as [`ErrorCode::Other`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// 0: the sender is done with the session.
    Normal,
    /// 1: nothing was heard from the peer for the idle timeout.
    IdleTimeout,
    /// 2: the relay ends sessions whose ticket has expired.
    TicketExpired,
    /// 3: the sender is shutting down.
    ShuttingDown,
    /// 4: an error ended the session.
    Error,
    /// 5: the SD-RTN side of the tunnel closed.
    UpstreamClosed,
    /// Any other reason, kept as is.
    Other(u8),
}

impl CloseReason {
    /// The reason for a `u8` on the wire.
    pub const fn from_u8(reason: u8) -> Self {
        match reason {
            0 => CloseReason::Normal,
            1 => CloseReason::IdleTimeout,
            2 => CloseReason::TicketExpired,
            3 => CloseReason::ShuttingDown,
            4 => CloseReason::Error,
            5 => CloseReason::UpstreamClosed,
            other => CloseReason::Other(other),
        }
    }

    /// The `u8` written on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            CloseReason::Normal => 0,
            CloseReason::IdleTimeout => 1,
            CloseReason::TicketExpired => 2,
            CloseReason::ShuttingDown => 3,
            CloseReason::Error => 4,
            CloseReason::UpstreamClosed => 5,
            CloseReason::Other(reason) => reason,
        }
    }
}

impl From<u8> for CloseReason {
    fn from(reason: u8) -> Self {
        CloseReason::from_u8(reason)
    }
}

impl From<CloseReason> for u8 {
    fn from(reason: CloseReason) -> Self {
        reason.to_u8()
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            CloseReason::Normal => "normal close",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::TicketExpired => "ticket expired",
            CloseReason::ShuttingDown => "shutting down",
            CloseReason::Error => "error",
            CloseReason::UpstreamClosed => "upstream closed",
            CloseReason::Other(reason) => return write!(f, "close reason {reason}"),
        };
        f.write_str(text)
    }
}
