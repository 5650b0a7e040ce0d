//! Decoding and encoding errors.

use thiserror::Error;

use super::{ErrorCode, MessageType};

/// Why bytes are not (yet) a valid message.
///
/// [`DecodeError::Incomplete`] is the only variant that more bytes can cure; it is returned by
/// the stream decoder [`Message::decode`](super::Message::decode) alone. Every other variant
/// is final: a stream that produced one cannot be resynchronised, and the receiver should answer
/// with [`Message::Error`](super::Message::Error) carrying [`DecodeError::error_code`] and
/// close the connection (or drop the datagram).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes so far are a valid beginning; at least `needed` bytes in total are required.
    /// Once a valid header is present, `needed` is exactly the length of the whole message.
    #[error("incomplete message: need at least {needed} bytes")]
    Incomplete {
        /// A lower bound on the total number of bytes needed (from the start of the buffer).
        needed: usize,
    },
    /// A datagram ends before the message it starts: `found` bytes where `needed` are required.
    #[error("truncated datagram: {found} bytes, need at least {needed}")]
    Truncated {
        /// A lower bound on the length the datagram should have had.
        needed: usize,
        /// The datagram's length.
        found: usize,
    },
    /// A datagram holds `extra` bytes after its one message.
    #[error("{extra} trailing bytes after the message in a datagram")]
    TrailingBytes {
        /// How many bytes follow the message.
        extra: usize,
    },
    /// The first two bytes are not [`MAGIC`](super::MAGIC).
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    /// The header's version is not [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION). The receiver
    /// should answer with [`ErrorCode::UnsupportedVersion`].
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The header's type byte names no message.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The header announces a body longer than [`MAX_BODY_LEN`](super::MAX_BODY_LEN).
    #[error("body length {len} exceeds the maximum")]
    BodyTooLong {
        /// The announced body length.
        len: usize,
    },
    /// The header announces a body length outside the bounds of its message type.
    #[error("{msg_type:?} body must be {min}..={max} bytes, header says {found}")]
    BodyLength {
        /// The message type from the header.
        msg_type: MessageType,
        /// The shortest valid body of that type.
        min: usize,
        /// The longest valid body of that type.
        max: usize,
        /// The announced body length.
        found: usize,
    },
    /// The body ends inside a field.
    #[error("{msg_type:?} body ends inside field `{field}`")]
    Underrun {
        /// The message type being decoded.
        msg_type: MessageType,
        /// The field that does not fit.
        field: &'static str,
    },
    /// The body holds bytes after its last field.
    #[error("{extra} unused bytes at the end of a {msg_type:?} body")]
    TrailingBody {
        /// The message type being decoded.
        msg_type: MessageType,
        /// How many bytes are left over.
        extra: usize,
    },
    /// An address family byte other than 4 or 6.
    #[error("bad address family {0}")]
    BadAddressFamily(u8),
    /// An application id that is empty, longer than
    /// [`MAX_APP_ID_LEN`](super::MAX_APP_ID_LEN), or not printable ASCII (`0x21..=0x7E`).
    #[error("bad application id")]
    BadAppId,
    /// Flag bits that are not defined (only [`FLAG_UDP_MEDIA`](super::FLAG_UDP_MEDIA) is).
    #[error("undefined flag bits in {0:#04x}")]
    BadFlags(u8),
    /// An access-point response with no relay.
    #[error("response lists no relay")]
    NoRelays,
    /// An access-point response with more than [`MAX_RELAYS`](super::MAX_RELAYS) relays.
    #[error("response lists {0} relays, more than the maximum")]
    TooManyRelays(u8),
    /// A string that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    BadUtf8,
    /// An error reason longer than [`MAX_REASON_LEN`](super::MAX_REASON_LEN) bytes.
    #[error("error reason of {len} bytes exceeds the maximum")]
    ReasonTooLong {
        /// The reason's length in bytes.
        len: usize,
    },
    /// A media payload longer than [`MAX_MEDIA_PAYLOAD`](super::MAX_MEDIA_PAYLOAD).
    #[error("media payload of {len} bytes exceeds the maximum")]
    PayloadTooLong {
        /// The payload's length in bytes.
        len: usize,
    },
    /// A ticket whose version byte is not [`TICKET_VERSION`](super::ticket::TICKET_VERSION).
    #[error("unsupported ticket version {0}")]
    UnsupportedTicketVersion(u8),
    /// A non-zero byte in the padding of an `ApRequest` (padding bytes must be zero).
    #[error("non-zero padding byte at offset {offset} of the ApRequest padding")]
    BadPadding {
        /// The offset of the first non-zero byte, counted from the start of the padding.
        offset: usize,
    },
}

impl DecodeError {
    /// Whether more bytes may turn this prefix into a valid message.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, DecodeError::Incomplete { .. })
    }

    /// The code to answer with: [`ErrorCode::UnsupportedVersion`] for
    /// [`DecodeError::UnsupportedVersion`], [`ErrorCode::TicketInvalid`] for
    /// [`DecodeError::UnsupportedTicketVersion`], [`ErrorCode::Malformed`] for everything else.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeError::UnsupportedTicketVersion(_) => ErrorCode::TicketInvalid,
            _ => ErrorCode::Malformed,
        }
    }
}

/// Why a message cannot be encoded: one of its values breaks a bound of the protocol.
///
/// [`Message::encode`](super::Message::encode) checks every bound before writing anything, so
/// an encoded message always decodes.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An application id (in a request or a ticket) that is empty, longer than
    /// [`MAX_APP_ID_LEN`](super::MAX_APP_ID_LEN), or not printable ASCII (`0x21..=0x7E`).
    #[error("bad application id")]
    BadAppId,
    /// Request flags with undefined bits set.
    #[error("undefined flag bits in {0:#04x}")]
    BadFlags(u8),
    /// A response without relays.
    #[error("response lists no relay")]
    NoRelays,
    /// A response with more than [`MAX_RELAYS`](super::MAX_RELAYS) relays.
    #[error("response lists {0} relays, more than the maximum")]
    TooManyRelays(usize),
    /// An error reason longer than [`MAX_REASON_LEN`](super::MAX_REASON_LEN) bytes.
    #[error("error reason of {len} bytes exceeds the maximum")]
    ReasonTooLong {
        /// The reason's length in bytes.
        len: usize,
    },
    /// A media payload longer than [`MAX_MEDIA_PAYLOAD`](super::MAX_MEDIA_PAYLOAD).
    #[error("media payload of {len} bytes exceeds the maximum")]
    PayloadTooLong {
        /// The payload's length in bytes.
        len: usize,
    },
    /// An `ApRequest` whose padding would make its body longer than 316 bytes (the padded
    /// length [`AP_REQUEST_PADDED_LEN`](super::AP_REQUEST_PADDED_LEN) minus the header).
    #[error("ApRequest padding of {len} bytes exceeds the {max} bytes left in its body")]
    PaddingTooLong {
        /// The padding asked for.
        len: usize,
        /// The most padding this request's body has room for.
        max: usize,
    },
}
