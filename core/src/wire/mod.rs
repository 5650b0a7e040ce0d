//! Our versioned binary cloud-proxy protocol: the messages between the SDK, the access point
//! (AP) and the relays. `docs/protocol.md` is the full specification; this module is its
//! executable form.
//!
//! Every message is a 6-byte header followed by a body:
//!
//! | offset | size | field      | value                          |
//! |--------|------|------------|--------------------------------|
//! | 0      | 2    | `magic`    | [`MAGIC`] = `0xC10D`           |
//! | 2      | 1    | `version`  | [`PROTOCOL_VERSION`] = 1       |
//! | 3      | 1    | `type`     | [`MessageType`]                |
//! | 4      | 2    | `body_len` | `0..=`[`MAX_BODY_LEN`]         |
//!
//! All integers are big-endian. A UDP datagram holds exactly one message; a TCP stream holds
//! messages back to back (until a tunnel switches it to raw bytes, see [`FrameReader`]).
//!
//! Parsing follows smoltcp's discipline: the header and the body length are checked once against
//! the message type's bounds, then the fields are read with checked accessors. Nothing in this
//! module can panic on any input; invalid input yields a [`DecodeError`] naming what was wrong.
//! Encoding validates every bound first, so that nothing encodable is undecodable, and
//! `encode(decode(x)) == x` holds for every valid frame `x`.
//!
//! ```
//! use cloudproxy_core::wire::{CloseReason, Message};
//!
//! let msg = Message::Close { session_id: 7, reason: CloseReason::IdleTimeout };
//! let mut frame = Vec::new();
//! msg.encode(&mut frame).unwrap();
//! assert_eq!(frame, [0xC1, 0x0D, 1, 0x30, 0, 9, 0, 0, 0, 0, 0, 0, 0, 7, 1]);
//! assert_eq!(Message::decode(&frame), Ok((msg.clone(), frame.len())));
//! assert_eq!(Message::decode_datagram(&frame), Ok(msg));
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::ops::RangeInclusive;

mod codec;
mod codes;
mod error;
mod frame_reader;
mod media;
mod message;
pub mod ticket;

#[cfg(test)]
mod tests;

pub use codes::{CloseReason, ErrorCode};
pub use error::{DecodeError, EncodeError};
pub use frame_reader::FrameReader;
pub use media::{DatagramView, MediaFrame, MAX_MEDIA_FRAME_LEN};
pub use message::{Message, MessageType, RelayInfo};
pub use ticket::{Ticket, TicketError, TicketKey};

/// The first two bytes of every message.
pub const MAGIC: u16 = 0xC10D;
/// The protocol version this module speaks, carried in byte 2 of every header.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of the common header: magic, version, type, body length.
pub const HEADER_LEN: usize = 6;
/// Largest body length a header may announce.
pub const MAX_BODY_LEN: usize = 2048;
/// Largest whole message: header plus the largest body.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_BODY_LEN;
/// Largest media payload one [`Message::MediaData`] carries (an Ethernet MTU).
pub const MAX_MEDIA_PAYLOAD: usize = 1500;
/// Longest application id, in bytes (ids are printable ASCII `0x21..=0x7E`, at least 1 byte).
pub const MAX_APP_ID_LEN: usize = 64;
/// Longest [`Message::Error`] reason, in bytes of UTF-8.
pub const MAX_REASON_LEN: usize = 200;
/// Most relays one [`Message::ApResponse`] lists (at least one).
pub const MAX_RELAYS: usize = 8;
/// [`Message::ApRequest`] flag: the client wants UDP media. All other flag bits must be zero.
pub const FLAG_UDP_MEDIA: u8 = 0x01;
/// The length every [`Message::ApRequest`] is padded to (header included): the largest answer
/// an access point can send, an [`ApResponse`](Message::ApResponse) with the longest ticket and
/// [`MAX_RELAYS`] IPv6 relays, 322 bytes. An access point answers only requests at least this
/// long, so that no answer is larger than the request that earned it (QUIC's rule for
/// Initial packets, RFC 9000 §14.1). [`Message::padded_ap_request`] builds such a request.
pub const AP_REQUEST_PADDED_LEN: usize = HEADER_LEN + message::AP_RESPONSE_MAX_BODY_LEN;

/// The access point's ("edge node") ports, in the order a client tries them, each on TCP and UDP.
pub const AP_PORTS: [u16; 4] = [1080, 8000, 25000, 9700];
/// The relay's TCP port: signalling tunnels and TCP media channels.
pub const RELAY_TCP_PORT: u16 = 4000;
/// The range the relay's per-session UDP media ports are taken from.
pub const RELAY_UDP_PORTS: RangeInclusive<u16> = 4500..=4650;
/// **Beyond the seed** (Agora's force-TCP "TLS 443", Zoom's TCP 443): the access point's TCP
/// port for clients that may only reach TCP 443. It carries exactly the protocol of
/// [`AP_PORTS`] over TCP (one framed `ApRequest`, one answer), inside TLS once the drivers add
/// it (docs/protocol.md §12). No UDP on it.
pub const AP_TLS_PORT: u16 = 443;
/// **Beyond the seed**: the relay's TCP port for clients that may only reach TCP 443: tunnels
/// and media channels exactly as on [`RELAY_TCP_PORT`], inside TLS once the drivers add it.
pub const RELAY_TLS_PORT: u16 = 443;
