//! The media datagram without allocation: a borrowed view of a received datagram and an
//! encoder into a caller's buffer, for the relay's hot path.
//!
//! [`DatagramView::decode`] decodes exactly what [`Message::decode_datagram`] decodes and
//! refuses exactly what it refuses, with the same error; only a
//! [`MediaData`](Message::MediaData) is borrowed ([`DatagramView::Media`], its payload a slice
//! of the datagram), every other message is decoded as usual ([`DatagramView::Other`]).
//! [`MediaFrame::encode_into`] writes the bytes [`Message::to_bytes`] writes for the same
//! `MediaData`, into a vector whose capacity is reused.
//!
//! ```
//! use cloudproxy_core::wire::{DatagramView, MediaFrame, Message};
//!
//! let frame = MediaFrame { session_id: 7, peer: "52.80.192.229:4700".parse().unwrap(), payload: b"rtp" };
//! let mut buf = Vec::with_capacity(64);
//! frame.encode_into(&mut buf).unwrap();
//! assert_eq!(buf, frame.to_message().to_bytes().unwrap());
//! assert_eq!(DatagramView::decode(&buf), Ok(DatagramView::Media(frame)));
//! assert_eq!(Message::decode_datagram(&buf), Ok(frame.to_message()));
//! ```

use std::net::SocketAddr;

use super::codec::{self, Reader};
use super::message::decode_header;
use super::{
    DecodeError, EncodeError, Message, MessageType, HEADER_LEN, MAGIC, MAX_MEDIA_PAYLOAD,
    PROTOCOL_VERSION,
};

/// Largest encoded [`Message::MediaData`]: header, session id, an IPv6 peer, the largest
/// payload (1,533 bytes). Every media datagram the relay sends fits in a buffer this large.
pub const MAX_MEDIA_FRAME_LEN: usize = HEADER_LEN + 8 + 19 + MAX_MEDIA_PAYLOAD;

/// A [`Message::MediaData`] whose payload is borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaFrame<'a> {
    /// The session's id.
    pub session_id: u64,
    /// Client → relay: the SD-RTN destination. Relay → client: the SD-RTN source.
    pub peer: SocketAddr,
    /// The datagram, 0..=[`MAX_MEDIA_PAYLOAD`] bytes.
    pub payload: &'a [u8],
}

impl MediaFrame<'_> {
    /// Length of the encoded frame, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 + codec::socket_addr_len(&self.peer) + self.payload.len()
    }

    /// Replaces the contents of `out` with the encoded frame, byte for byte what
    /// [`Message::encode`] writes for the same `MediaData`. Allocates only when `out` has less
    /// capacity than [`MediaFrame::encoded_len`]. A payload over [`MAX_MEDIA_PAYLOAD`] is
    /// [`EncodeError::PayloadTooLong`], and `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.payload.len() > MAX_MEDIA_PAYLOAD {
            return Err(EncodeError::PayloadTooLong {
                len: self.payload.len(),
            });
        }
        let body_len = self.encoded_len() - HEADER_LEN;
        // At most 8 + 19 + 1500 bytes: always fits the 16-bit length field.
        let len_field = u16::try_from(body_len).unwrap_or(u16::MAX);
        out.clear();
        out.reserve(HEADER_LEN + body_len);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.push(PROTOCOL_VERSION);
        out.push(MessageType::MediaData.to_u8());
        out.extend_from_slice(&len_field.to_be_bytes());
        out.extend_from_slice(&self.session_id.to_be_bytes());
        codec::put_socket_addr(out, &self.peer);
        out.extend_from_slice(self.payload);
        Ok(())
    }

    /// The owned message (copies the payload).
    pub fn to_message(&self) -> Message {
        Message::MediaData {
            session_id: self.session_id,
            peer: self.peer,
            payload: self.payload.to_vec(),
        }
    }
}

/// A decoded datagram: a media frame borrowed from it, or any other message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatagramView<'a> {
    /// A `MediaData`, its payload a slice of the datagram.
    Media(MediaFrame<'a>),
    /// Any other message, decoded as [`Message::decode_datagram`] does.
    Other(Message),
}

impl<'a> DatagramView<'a> {
    /// Decodes a datagram holding exactly one message, as [`Message::decode_datagram`] does
    /// (same result, same error), without copying a media payload.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let truncated = |needed| DecodeError::Truncated {
            needed,
            found: buf.len(),
        };
        let (msg_type, body_len) = match decode_header(buf) {
            Ok(header) => header,
            Err(DecodeError::Incomplete { needed }) => return Err(truncated(needed)),
            Err(err) => return Err(err),
        };
        if msg_type != MessageType::MediaData {
            return Message::decode_datagram(buf).map(DatagramView::Other);
        }
        let total = HEADER_LEN + body_len;
        let body = buf.get(HEADER_LEN..total).ok_or(truncated(total))?;
        let mut r = Reader::new(body, msg_type);
        let (session_id, peer, payload) = read_media_body(&mut r)?;
        r.finish()?;
        if buf.len() != total {
            return Err(DecodeError::TrailingBytes {
                extra: buf.len() - total,
            });
        }
        Ok(DatagramView::Media(MediaFrame {
            session_id,
            peer,
            payload,
        }))
    }

    /// The session the datagram belongs to, for the messages that name one.
    pub fn session_id(&self) -> Option<u64> {
        match self {
            DatagramView::Media(frame) => Some(frame.session_id),
            DatagramView::Other(msg) => msg.session_id(),
        }
    }

    /// The owned message (copies a media payload).
    pub fn to_message(&self) -> Message {
        match self {
            DatagramView::Media(frame) => frame.to_message(),
            DatagramView::Other(msg) => msg.clone(),
        }
    }
}

/// The fields of a `MediaData` body, the payload borrowed: the one decoding of that body,
/// shared by [`Message::decode`] and [`DatagramView::decode`].
pub(super) fn read_media_body<'a>(
    r: &mut Reader<'a>,
) -> Result<(u64, SocketAddr, &'a [u8]), DecodeError> {
    let session_id = r.u64("session_id")?;
    let peer = r.socket_addr("peer")?;
    let payload = r.rest();
    if payload.len() > MAX_MEDIA_PAYLOAD {
        return Err(DecodeError::PayloadTooLong { len: payload.len() });
    }
    Ok((session_id, peer, payload))
}
