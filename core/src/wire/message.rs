//! The messages, their header, and their body codecs.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use super::codec::{self, Reader};
use super::ticket::{MAX_TICKET_LEN, MIN_TICKET_LEN};
use super::{
    CloseReason, DecodeError, EncodeError, ErrorCode, Ticket, AP_REQUEST_PADDED_LEN,
    FLAG_UDP_MEDIA, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_MEDIA_PAYLOAD, MAX_REASON_LEN, MAX_RELAYS,
    PROTOCOL_VERSION,
};

/// Shortest and longest encoded IP address (family byte included).
const IP_LEN: RangeInclusive<usize> = 5..=17;
/// The longest `ApResponse` body: the longest ticket and [`MAX_RELAYS`] IPv6 relays.
pub(super) const AP_RESPONSE_MAX_BODY_LEN: usize =
    4 + MAX_TICKET_LEN + 4 + 1 + MAX_RELAYS * (*IP_LEN.end() + 4);
/// The fixed fields of an `ApRequest` body around its application id: request id, the id's
/// length byte, flags.
const AP_REQUEST_FIXED_LEN: usize = 4 + 1 + 1;
/// Shortest and longest encoded socket address.
const SOCKET_ADDR_LEN: RangeInclusive<usize> = 7..=19;

/// The type byte of a message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// `0x01`: client → access point.
    ApRequest,
    /// `0x02`: access point → client.
    ApResponse,
    /// `0x03`: any direction.
    Error,
    /// `0x10`: client → relay, first message on a TCP connection to the relay.
    TunnelOpen,
    /// `0x11`: relay → client, last framed message of a tunnel connection.
    TunnelAccept,
    /// `0x12`: client → relay, first message on a TCP media channel.
    MediaChannelOpen,
    /// `0x13`: relay → client.
    MediaChannelAccept,
    /// `0x20`: both ways, over UDP or a media channel.
    MediaData,
    /// `0x21`: client → relay.
    Keepalive,
    /// `0x22`: relay → client.
    KeepaliveAck,
    /// `0x30`: both ways.
    Close,
}

impl MessageType {
    /// Every message type, in type-code order.
    pub const ALL: [MessageType; 11] = [
        MessageType::ApRequest,
        MessageType::ApResponse,
        MessageType::Error,
        MessageType::TunnelOpen,
        MessageType::TunnelAccept,
        MessageType::MediaChannelOpen,
        MessageType::MediaChannelAccept,
        MessageType::MediaData,
        MessageType::Keepalive,
        MessageType::KeepaliveAck,
        MessageType::Close,
    ];

    /// The type for a type byte, if it names one.
    pub const fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => MessageType::ApRequest,
            0x02 => MessageType::ApResponse,
            0x03 => MessageType::Error,
            0x10 => MessageType::TunnelOpen,
            0x11 => MessageType::TunnelAccept,
            0x12 => MessageType::MediaChannelOpen,
            0x13 => MessageType::MediaChannelAccept,
            0x20 => MessageType::MediaData,
            0x21 => MessageType::Keepalive,
            0x22 => MessageType::KeepaliveAck,
            0x30 => MessageType::Close,
            _ => return None,
        })
    }

    /// The type byte.
    pub const fn to_u8(self) -> u8 {
        match self {
            MessageType::ApRequest => 0x01,
            MessageType::ApResponse => 0x02,
            MessageType::Error => 0x03,
            MessageType::TunnelOpen => 0x10,
            MessageType::TunnelAccept => 0x11,
            MessageType::MediaChannelOpen => 0x12,
            MessageType::MediaChannelAccept => 0x13,
            MessageType::MediaData => 0x20,
            MessageType::Keepalive => 0x21,
            MessageType::KeepaliveAck => 0x22,
            MessageType::Close => 0x30,
        }
    }

    /// The body lengths a message of this type can have. A header announcing any other length
    /// is rejected with [`DecodeError::BodyLength`] before the body is read.
    pub const fn body_len_range(self) -> RangeInclusive<usize> {
        let (min, max) = match self {
            // request_id, app_id str8, flags, then zero padding up to the padded length
            MessageType::ApRequest => (4 + 2 + 1, AP_RESPONSE_MAX_BODY_LEN),
            // request_id, ticket, lifetime, relay count, 1..=8 relays of 9 or 21 bytes
            MessageType::ApResponse => (
                4 + MIN_TICKET_LEN + 4 + 1 + (*IP_LEN.start() + 4),
                AP_RESPONSE_MAX_BODY_LEN,
            ),
            // code, reason str8
            MessageType::Error => (2 + 1, 2 + 1 + MAX_REASON_LEN),
            // ticket, destination
            MessageType::TunnelOpen => (
                MIN_TICKET_LEN + *SOCKET_ADDR_LEN.start(),
                MAX_TICKET_LEN + *SOCKET_ADDR_LEN.end(),
            ),
            // session_id, udp_port, keepalive_interval_ms, idle_timeout_ms
            MessageType::TunnelAccept => (18, 18),
            MessageType::MediaChannelOpen | MessageType::MediaChannelAccept => (8, 8),
            // session_id, peer, payload
            MessageType::MediaData => (
                8 + *SOCKET_ADDR_LEN.start(),
                8 + *SOCKET_ADDR_LEN.end() + MAX_MEDIA_PAYLOAD,
            ),
            MessageType::Keepalive | MessageType::KeepaliveAck => (12, 12),
            MessageType::Close => (9, 9),
        };
        min..=max
    }
}

/// One relay in an access point's answer: where to open tunnels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelayInfo {
    /// The relay's address.
    pub addr: IpAddr,
    /// Its TCP port for tunnels and media channels (normally
    /// [`RELAY_TCP_PORT`](super::RELAY_TCP_PORT)).
    pub tcp_port: u16,
    /// A UDP port to try to reach it (normally in [`RELAY_UDP_PORTS`](super::RELAY_UDP_PORTS));
    /// 0 when the relay offers no UDP. The port of a session is the one in `TunnelAccept`.
    pub udp_port: u16,
}

/// A message of the cloud-proxy protocol. See `docs/protocol.md` for who sends what, when.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// `0x01`, client → access point: asks for relays and a ticket.
    ///
    /// An access point answers only requests padded to at least
    /// [`AP_REQUEST_PADDED_LEN`] bytes (see [`Message::padded_ap_request`]); a shorter one is
    /// refused with [`ErrorCode::PaddingRequired`] (cut to fit in the request) or not at all.
    ApRequest {
        /// Chosen by the client, echoed in the answer (retransmissions reuse it).
        request_id: u32,
        /// The application id: 1..=64 bytes of printable ASCII `0x21..=0x7E`.
        app_id: String,
        /// Bit 0 ([`FLAG_UDP_MEDIA`]): the client wants UDP media. Other bits must be zero.
        flags: u8,
        /// How many zero bytes follow `flags` to the end of the body (0 in a request from
        /// before the padding rule; the whole body stays within 316 bytes).
        padding_len: u16,
    },
    /// `0x02`, access point → client: the relays to use and the ticket to present.
    ApResponse {
        /// The request's id.
        request_id: u32,
        /// The ticket, opaque to the client.
        ticket: Ticket,
        /// How long the ticket is valid from now, for the client's own clock.
        ticket_lifetime_ms: u32,
        /// 1..=8 relays, in order of preference.
        relays: Vec<RelayInfo>,
    },
    /// `0x03`, any direction: a request failed. The sender then closes a TCP connection.
    Error {
        /// What failed.
        code: ErrorCode,
        /// Human-readable detail: UTF-8, at most 200 bytes (may be empty).
        reason: String,
    },
    /// `0x10`, client → relay (TCP): open a signalling tunnel to `destination` in SD-RTN.
    TunnelOpen {
        /// The ticket from the access point.
        ticket: Ticket,
        /// The SD-RTN signalling server to connect to.
        destination: SocketAddr,
    },
    /// `0x11`, relay → client (TCP): the tunnel is open. From the next byte on, the connection
    /// carries raw signalling bytes both ways, unframed.
    TunnelAccept {
        /// The session's id: random, 64 bits, also the credential of its media paths.
        session_id: u64,
        /// The relay's UDP port for this session's media; 0 when no UDP is offered.
        udp_port: u16,
        /// How often the client sends [`Message::Keepalive`] on an otherwise idle media path.
        keepalive_interval_ms: u32,
        /// After this long without hearing from the client, the relay closes the session.
        idle_timeout_ms: u32,
    },
    /// `0x12`, client → relay (a second TCP connection): carry this session's media over TCP.
    MediaChannelOpen {
        /// The session from [`Message::TunnelAccept`].
        session_id: u64,
    },
    /// `0x13`, relay → client: the media channel is open; it carries framed media messages.
    MediaChannelAccept {
        /// The session's id.
        session_id: u64,
    },
    /// `0x20`, both ways: one media datagram.
    MediaData {
        /// The session's id.
        session_id: u64,
        /// Client → relay: the SD-RTN destination. Relay → client: the SD-RTN source.
        peer: SocketAddr,
        /// The datagram, 0..=1500 bytes: the rest of the body.
        payload: Vec<u8>,
    },
    /// `0x21`, client → relay: keeps the session (and NAT bindings) alive.
    Keepalive {
        /// The session's id.
        session_id: u64,
        /// Sequence number, echoed in the acknowledgement.
        seq: u32,
    },
    /// `0x22`, relay → client: answers a keepalive.
    KeepaliveAck {
        /// The session's id.
        session_id: u64,
        /// The keepalive's sequence number.
        seq: u32,
    },
    /// `0x30`, both ways: the session is over.
    Close {
        /// The session's id.
        session_id: u64,
        /// Why.
        reason: CloseReason,
    },
}

impl Message {
    /// Decodes the message at the start of `buf`, a stream: returns it with the number of bytes
    /// it took, which may be fewer than `buf.len()`.
    ///
    /// [`DecodeError::Incomplete`] means `buf` is a valid prefix and at least `needed` bytes are
    /// required; once the header is there, `needed` is the whole message's length. Invalid
    /// header bytes are reported as soon as they are present: a bad magic after 2 bytes, a bad
    /// version after 3, an unknown type after 4, a bad body length after 6.
    pub fn decode(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
        let (msg_type, body_len) = decode_header(buf)?;
        let total = HEADER_LEN + body_len;
        let body = buf
            .get(HEADER_LEN..total)
            .ok_or(DecodeError::Incomplete { needed: total })?;
        let msg = decode_body(msg_type, body)?;
        Ok((msg, total))
    }

    /// Decodes a datagram, which must hold exactly one whole message: a short datagram is
    /// [`DecodeError::Truncated`], extra bytes are [`DecodeError::TrailingBytes`].
    pub fn decode_datagram(buf: &[u8]) -> Result<Message, DecodeError> {
        match Message::decode(buf) {
            Ok((msg, used)) if used == buf.len() => Ok(msg),
            Ok((_, used)) => Err(DecodeError::TrailingBytes {
                extra: buf.len().saturating_sub(used),
            }),
            Err(DecodeError::Incomplete { needed }) => Err(DecodeError::Truncated {
                needed,
                found: buf.len(),
            }),
            Err(err) => Err(err),
        }
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::ApRequest { .. } => MessageType::ApRequest,
            Message::ApResponse { .. } => MessageType::ApResponse,
            Message::Error { .. } => MessageType::Error,
            Message::TunnelOpen { .. } => MessageType::TunnelOpen,
            Message::TunnelAccept { .. } => MessageType::TunnelAccept,
            Message::MediaChannelOpen { .. } => MessageType::MediaChannelOpen,
            Message::MediaChannelAccept { .. } => MessageType::MediaChannelAccept,
            Message::MediaData { .. } => MessageType::MediaData,
            Message::Keepalive { .. } => MessageType::Keepalive,
            Message::KeepaliveAck { .. } => MessageType::KeepaliveAck,
            Message::Close { .. } => MessageType::Close,
        }
    }

    /// The session the message belongs to, for the messages that name one.
    pub fn session_id(&self) -> Option<u64> {
        match self {
            Message::TunnelAccept { session_id, .. }
            | Message::MediaChannelOpen { session_id }
            | Message::MediaChannelAccept { session_id }
            | Message::MediaData { session_id, .. }
            | Message::Keepalive { session_id, .. }
            | Message::KeepaliveAck { session_id, .. }
            | Message::Close { session_id, .. } => Some(*session_id),
            Message::ApRequest { .. }
            | Message::ApResponse { .. }
            | Message::Error { .. }
            | Message::TunnelOpen { .. } => None,
        }
    }

    /// An [`Message::Error`] whose reason is `reason` cut, at a character boundary, to at most
    /// [`MAX_REASON_LEN`] bytes, so that it always encodes.
    pub fn error(code: ErrorCode, reason: &str) -> Message {
        let mut end = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Message::Error {
            code,
            reason: reason.get(..end).unwrap_or_default().to_owned(),
        }
    }

    /// An [`Message::ApRequest`] padded to exactly [`AP_REQUEST_PADDED_LEN`] bytes, the length
    /// an access point answers.
    ///
    /// ```
    /// use cloudproxy_core::wire::{Message, AP_REQUEST_PADDED_LEN, FLAG_UDP_MEDIA};
    ///
    /// let request = Message::padded_ap_request(9, "demo-app", FLAG_UDP_MEDIA);
    /// let bytes = request.to_bytes().unwrap();
    /// assert_eq!(bytes.len(), AP_REQUEST_PADDED_LEN);
    /// assert_eq!(Message::decode_datagram(&bytes), Ok(request));
    /// ```
    pub fn padded_ap_request(request_id: u32, app_id: &str, flags: u8) -> Message {
        let unpadded = HEADER_LEN + AP_REQUEST_FIXED_LEN + app_id.len();
        let padding = AP_REQUEST_PADDED_LEN.saturating_sub(unpadded);
        Message::ApRequest {
            request_id,
            app_id: app_id.to_owned(),
            flags,
            padding_len: u16::try_from(padding).unwrap_or(0),
        }
    }

    /// Checks every bound of the protocol that [`Message::encode`] relies on.
    pub fn validate(&self) -> Result<(), EncodeError> {
        match self {
            Message::ApRequest {
                app_id,
                flags,
                padding_len,
                ..
            } => {
                if !codec::is_valid_app_id(app_id) {
                    return Err(EncodeError::BadAppId);
                }
                if flags & !FLAG_UDP_MEDIA != 0 {
                    return Err(EncodeError::BadFlags(*flags));
                }
                let max = AP_RESPONSE_MAX_BODY_LEN - AP_REQUEST_FIXED_LEN - app_id.len();
                if usize::from(*padding_len) > max {
                    return Err(EncodeError::PaddingTooLong {
                        len: usize::from(*padding_len),
                        max,
                    });
                }
            }
            Message::ApResponse { ticket, relays, .. } => {
                ticket.validate()?;
                if relays.is_empty() {
                    return Err(EncodeError::NoRelays);
                }
                if relays.len() > MAX_RELAYS {
                    return Err(EncodeError::TooManyRelays(relays.len()));
                }
            }
            Message::Error { reason, .. } => {
                if reason.len() > MAX_REASON_LEN {
                    return Err(EncodeError::ReasonTooLong { len: reason.len() });
                }
            }
            Message::TunnelOpen { ticket, .. } => ticket.validate()?,
            Message::MediaData { payload, .. } => {
                if payload.len() > MAX_MEDIA_PAYLOAD {
                    return Err(EncodeError::PayloadTooLong { len: payload.len() });
                }
            }
            Message::TunnelAccept { .. }
            | Message::MediaChannelOpen { .. }
            | Message::MediaChannelAccept { .. }
            | Message::Keepalive { .. }
            | Message::KeepaliveAck { .. }
            | Message::Close { .. } => {}
        }
        Ok(())
    }

    /// Length of the encoded message, header included (meaningful when
    /// [`Message::validate`] passes).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    /// Appends the encoded message to `out`. Checks every bound first
    /// ([`Message::validate`]); on error nothing is written.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate()?;
        let body_len = self.body_len();
        // Every validated message's body is within MAX_BODY_LEN (the largest is a MediaData of
        // 1527 bytes); the fallback below is never taken.
        let len_field = u16::try_from(body_len.min(MAX_BODY_LEN)).unwrap_or(u16::MAX);
        out.reserve(HEADER_LEN + body_len);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.push(PROTOCOL_VERSION);
        out.push(self.message_type().to_u8());
        out.extend_from_slice(&len_field.to_be_bytes());
        self.put_body(out);
        Ok(())
    }

    /// The encoded message in a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Length of the body alone.
    fn body_len(&self) -> usize {
        match self {
            Message::ApRequest {
                app_id,
                padding_len,
                ..
            } => AP_REQUEST_FIXED_LEN + app_id.len() + usize::from(*padding_len),
            Message::ApResponse { ticket, relays, .. } => {
                4 + ticket.encoded_len()
                    + 4
                    + 1
                    + relays
                        .iter()
                        .map(|r| codec::ip_len(&r.addr) + 4)
                        .sum::<usize>()
            }
            Message::Error { reason, .. } => 2 + 1 + reason.len(),
            Message::TunnelOpen {
                ticket,
                destination,
            } => ticket.encoded_len() + codec::socket_addr_len(destination),
            Message::TunnelAccept { .. } => 18,
            Message::MediaChannelOpen { .. } | Message::MediaChannelAccept { .. } => 8,
            Message::MediaData { peer, payload, .. } => {
                8 + codec::socket_addr_len(peer) + payload.len()
            }
            Message::Keepalive { .. } | Message::KeepaliveAck { .. } => 12,
            Message::Close { .. } => 9,
        }
    }

    /// Writes the body of a validated message.
    fn put_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::ApRequest {
                request_id,
                app_id,
                flags,
                padding_len,
            } => {
                out.extend_from_slice(&request_id.to_be_bytes());
                codec::put_str8(out, app_id.as_bytes());
                out.push(*flags);
                out.resize(out.len() + usize::from(*padding_len), 0);
            }
            Message::ApResponse {
                request_id,
                ticket,
                ticket_lifetime_ms,
                relays,
            } => {
                out.extend_from_slice(&request_id.to_be_bytes());
                // Validated by `validate`: encoding cannot fail here.
                let _ = ticket.encode(out);
                out.extend_from_slice(&ticket_lifetime_ms.to_be_bytes());
                out.push(u8::try_from(relays.len()).unwrap_or(u8::MAX));
                for relay in relays {
                    codec::put_ip(out, &relay.addr);
                    out.extend_from_slice(&relay.tcp_port.to_be_bytes());
                    out.extend_from_slice(&relay.udp_port.to_be_bytes());
                }
            }
            Message::Error { code, reason } => {
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                codec::put_str8(out, reason.as_bytes());
            }
            Message::TunnelOpen {
                ticket,
                destination,
            } => {
                let _ = ticket.encode(out);
                codec::put_socket_addr(out, destination);
            }
            Message::TunnelAccept {
                session_id,
                udp_port,
                keepalive_interval_ms,
                idle_timeout_ms,
            } => {
                out.extend_from_slice(&session_id.to_be_bytes());
                out.extend_from_slice(&udp_port.to_be_bytes());
                out.extend_from_slice(&keepalive_interval_ms.to_be_bytes());
                out.extend_from_slice(&idle_timeout_ms.to_be_bytes());
            }
            Message::MediaChannelOpen { session_id }
            | Message::MediaChannelAccept { session_id } => {
                out.extend_from_slice(&session_id.to_be_bytes());
            }
            Message::MediaData {
                session_id,
                peer,
                payload,
            } => {
                out.extend_from_slice(&session_id.to_be_bytes());
                codec::put_socket_addr(out, peer);
                out.extend_from_slice(payload);
            }
            Message::Keepalive { session_id, seq } | Message::KeepaliveAck { session_id, seq } => {
                out.extend_from_slice(&session_id.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Message::Close { session_id, reason } => {
                out.extend_from_slice(&session_id.to_be_bytes());
                out.push(reason.to_u8());
            }
        }
    }
}

/// Checks the header at the start of `buf`, judging each field as soon as its bytes are there,
/// and returns the message type and the body length.
pub(super) fn decode_header(buf: &[u8]) -> Result<(MessageType, usize), DecodeError> {
    let incomplete = DecodeError::Incomplete { needed: HEADER_LEN };
    let Some(&[m0, m1]) = buf.get(..2) else {
        return Err(incomplete);
    };
    let magic = u16::from_be_bytes([m0, m1]);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let Some(&version) = buf.get(2) else {
        return Err(incomplete);
    };
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let Some(&code) = buf.get(3) else {
        return Err(incomplete);
    };
    let msg_type = MessageType::from_u8(code).ok_or(DecodeError::UnknownType(code))?;
    let Some(&[l0, l1]) = buf.get(4..6) else {
        return Err(incomplete);
    };
    let body_len = usize::from(u16::from_be_bytes([l0, l1]));
    if body_len > MAX_BODY_LEN {
        return Err(DecodeError::BodyTooLong { len: body_len });
    }
    let range = msg_type.body_len_range();
    if !range.contains(&body_len) {
        return Err(DecodeError::BodyLength {
            msg_type,
            min: *range.start(),
            max: *range.end(),
            found: body_len,
        });
    }
    Ok((msg_type, body_len))
}

/// Decodes a whole body of the given type.
fn decode_body(msg_type: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader::new(body, msg_type);
    let msg = match msg_type {
        MessageType::ApRequest => {
            let request_id = r.u32("request_id")?;
            let app_id = r.app_id("app_id")?;
            let flags = r.u8("flags")?;
            if flags & !FLAG_UDP_MEDIA != 0 {
                return Err(DecodeError::BadFlags(flags));
            }
            let padding = r.rest();
            if let Some(offset) = padding.iter().position(|&b| b != 0) {
                return Err(DecodeError::BadPadding { offset });
            }
            Message::ApRequest {
                request_id,
                app_id,
                flags,
                // The body is at most 316 bytes: the padding always fits.
                padding_len: u16::try_from(padding.len()).unwrap_or(u16::MAX),
            }
        }
        MessageType::ApResponse => {
            let request_id = r.u32("request_id")?;
            let ticket = Ticket::read(&mut r)?;
            let ticket_lifetime_ms = r.u32("ticket_lifetime_ms")?;
            let count = r.u8("relay_count")?;
            if count == 0 {
                return Err(DecodeError::NoRelays);
            }
            if usize::from(count) > MAX_RELAYS {
                return Err(DecodeError::TooManyRelays(count));
            }
            let mut relays = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                relays.push(RelayInfo {
                    addr: r.ip("relay.addr")?,
                    tcp_port: r.u16("relay.tcp_port")?,
                    udp_port: r.u16("relay.udp_port")?,
                });
            }
            Message::ApResponse {
                request_id,
                ticket,
                ticket_lifetime_ms,
                relays,
            }
        }
        MessageType::Error => {
            let code = ErrorCode::from_u16(r.u16("code")?);
            let len = usize::from(r.u8("reason")?);
            if len > MAX_REASON_LEN {
                return Err(DecodeError::ReasonTooLong { len });
            }
            let bytes = r.take(len, "reason")?;
            let reason = std::str::from_utf8(bytes)
                .map_err(|_| DecodeError::BadUtf8)?
                .to_owned();
            Message::Error { code, reason }
        }
        MessageType::TunnelOpen => Message::TunnelOpen {
            ticket: Ticket::read(&mut r)?,
            destination: r.socket_addr("destination")?,
        },
        MessageType::TunnelAccept => Message::TunnelAccept {
            session_id: r.u64("session_id")?,
            udp_port: r.u16("udp_port")?,
            keepalive_interval_ms: r.u32("keepalive_interval_ms")?,
            idle_timeout_ms: r.u32("idle_timeout_ms")?,
        },
        MessageType::MediaChannelOpen => Message::MediaChannelOpen {
            session_id: r.u64("session_id")?,
        },
        MessageType::MediaChannelAccept => Message::MediaChannelAccept {
            session_id: r.u64("session_id")?,
        },
        MessageType::MediaData => {
            let (session_id, peer, payload) = super::media::read_media_body(&mut r)?;
            Message::MediaData {
                session_id,
                peer,
                payload: payload.to_vec(),
            }
        }
        MessageType::Keepalive => Message::Keepalive {
            session_id: r.u64("session_id")?,
            seq: r.u32("seq")?,
        },
        MessageType::KeepaliveAck => Message::KeepaliveAck {
            session_id: r.u64("session_id")?,
            seq: r.u32("seq")?,
        },
        MessageType::Close => Message::Close {
            session_id: r.u64("session_id")?,
            reason: CloseReason::from_u8(r.u8("reason")?),
        },
    };
    r.finish()?;
    Ok(msg)
}
