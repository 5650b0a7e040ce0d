//! Tests of the wire protocol: hand-written vectors (the same as in `docs/protocol.md`), every
//! invalid case. The properties over generated messages and arbitrary bytes are in `props`.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use crate::time::UnixTime;

/// Parses hex digits, ignoring whitespace.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// The example ticket of `docs/protocol.md`, 71 bytes.
const TICKET_HEX: &str = "
    01
    00 00 01 8B CF E6 52 60
    11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11
    04 CB 00 71 07
    08 64 65 6D 6F 2D 61 70 70
    4C D1 81 6A E4 E3 B8 AD 1F A5 8E 19 96 5D 2C 3C
    AA B9 F4 64 33 01 BB E8 09 6D F6 80 7E EB D5 CA";

const SESSION: u64 = 0x0123_4567_89AB_CDEF;

fn example_key() -> TicketKey {
    TicketKey::from_bytes([0x4B; 32])
}

fn example_ticket() -> Ticket {
    Ticket::issue(
        &example_key(),
        "demo-app",
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        UnixTime::from_millis(1_700_000_060_000),
        [0x11; 16],
    )
    .unwrap()
}

/// One hand-written frame per message type.
fn vectors() -> Vec<(Message, Vec<u8>)> {
    let t = TICKET_HEX;
    vec![
        (
            Message::ApRequest {
                request_id: 0x0102_0304,
                app_id: "demo-app".into(),
                flags: FLAG_UDP_MEDIA,
                padding_len: 0,
            },
            hex("C1 0D 01 01 00 0E  01 02 03 04  08 64 65 6D 6F 2D 61 70 70  01"),
        ),
        (
            Message::ApResponse {
                request_id: 0x0102_0304,
                ticket: example_ticket(),
                ticket_lifetime_ms: 60_000,
                relays: vec![RelayInfo {
                    addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                    tcp_port: 4000,
                    udp_port: 4500,
                }],
            },
            hex(&format!(
                "C1 0D 01 02 00 59  01 02 03 04  {t}  00 00 EA 60  01  04 C0 00 02 0A 0F A0 11 94"
            )),
        ),
        (
            Message::Error {
                code: ErrorCode::TicketExpired,
                reason: "expired".into(),
            },
            hex("C1 0D 01 03 00 0A  00 04  07 65 78 70 69 72 65 64"),
        ),
        (
            Message::TunnelOpen {
                ticket: example_ticket(),
                destination: SocketAddr::from(([198, 51, 100, 20], 8443)),
            },
            hex(&format!("C1 0D 01 10 00 4E  {t}  04 C6 33 64 14 20 FB")),
        ),
        (
            Message::TunnelAccept {
                session_id: SESSION,
                udp_port: 4500,
                keepalive_interval_ms: 5_000,
                idle_timeout_ms: 30_000,
            },
            hex("C1 0D 01 11 00 12  01 23 45 67 89 AB CD EF  11 94  00 00 13 88  00 00 75 30"),
        ),
        (
            Message::MediaChannelOpen {
                session_id: SESSION,
            },
            hex("C1 0D 01 12 00 08  01 23 45 67 89 AB CD EF"),
        ),
        (
            Message::MediaChannelAccept {
                session_id: SESSION,
            },
            hex("C1 0D 01 13 00 08  01 23 45 67 89 AB CD EF"),
        ),
        (
            Message::MediaData {
                session_id: SESSION,
                peer: SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 4001)),
                payload: b"hi".to_vec(),
            },
            hex("C1 0D 01 20 00 1D  01 23 45 67 89 AB CD EF
                 06 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 01 0F A1  68 69"),
        ),
        (
            Message::Keepalive {
                session_id: SESSION,
                seq: 7,
            },
            hex("C1 0D 01 21 00 0C  01 23 45 67 89 AB CD EF  00 00 00 07"),
        ),
        (
            Message::KeepaliveAck {
                session_id: SESSION,
                seq: 7,
            },
            hex("C1 0D 01 22 00 0C  01 23 45 67 89 AB CD EF  00 00 00 07"),
        ),
        (
            Message::Close {
                session_id: SESSION,
                reason: CloseReason::UpstreamClosed,
            },
            hex("C1 0D 01 30 00 09  01 23 45 67 89 AB CD EF  05"),
        ),
    ]
}

/// The vector of one type.
fn vector(msg_type: MessageType) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|(m, _)| m.message_type() == msg_type)
        .unwrap()
        .1
}

/// Sets the header's body length to the buffer's actual body length.
fn fix_len(mut frame: Vec<u8>) -> Vec<u8> {
    let len = u16::try_from(frame.len() - HEADER_LEN).unwrap();
    frame[4..6].copy_from_slice(&len.to_be_bytes());
    frame
}

/// A frame of `msg_type` with the given body, its length field set.
fn frame(msg_type: MessageType, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xC1, 0x0D, 1, msg_type.to_u8(), 0, 0];
    f.extend_from_slice(body);
    fix_len(f)
}

fn err(bytes: &[u8]) -> DecodeError {
    Message::decode(bytes).unwrap_err()
}

/// Checks the full contract on one valid frame.
fn check_valid_frame(msg: &Message, bytes: &[u8]) {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    assert_eq!(out, bytes, "{msg:?}");
    assert_eq!(msg.encoded_len(), bytes.len());
    assert_eq!(Message::decode(bytes), Ok((msg.clone(), bytes.len())));
    assert_eq!(Message::decode_datagram(bytes), Ok(msg.clone()));
    let range = msg.message_type().body_len_range();
    assert!(range.contains(&(bytes.len() - HEADER_LEN)));
    // A stream with more bytes after the frame: only the frame is consumed.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xC1, 0x0D]);
    assert_eq!(Message::decode(&longer), Ok((msg.clone(), bytes.len())));
    assert_eq!(
        Message::decode_datagram(&longer),
        Err(DecodeError::TrailingBytes { extra: 2 })
    );
    check_prefixes(bytes);
}

/// Every strict prefix of a valid frame is incomplete, with the exact length once the header
/// is there; as a datagram, it is truncated.
fn check_prefixes(bytes: &[u8]) {
    for n in 0..bytes.len() {
        let needed = if n < HEADER_LEN {
            HEADER_LEN
        } else {
            bytes.len()
        };
        assert_eq!(
            Message::decode(&bytes[..n]),
            Err(DecodeError::Incomplete { needed }),
            "prefix {n}"
        );
        assert_eq!(
            Message::decode_datagram(&bytes[..n]),
            Err(DecodeError::Truncated { needed, found: n })
        );
    }
}

#[test]
fn hand_written_vectors() {
    let vectors = vectors();
    let mut types: Vec<MessageType> = vectors.iter().map(|(m, _)| m.message_type()).collect();
    types.sort();
    assert_eq!(types, MessageType::ALL, "one vector per message type");
    for (msg, bytes) in &vectors {
        check_valid_frame(msg, bytes);
    }
    assert_eq!(hex(TICKET_HEX).len(), 71);
}

#[test]
fn vectors_back_to_back_in_a_stream() {
    let vectors = vectors();
    let stream: Vec<u8> = vectors.iter().flat_map(|(_, b)| b.clone()).collect();
    let mut rest = &stream[..];
    for (msg, bytes) in &vectors {
        let (got, used) = Message::decode(rest).unwrap();
        assert_eq!((&got, used), (msg, bytes.len()));
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
}

#[test]
fn type_codes_and_body_bounds() {
    for t in MessageType::ALL {
        assert_eq!(MessageType::from_u8(t.to_u8()), Some(t));
        assert!(*t.body_len_range().end() <= MAX_BODY_LEN);
    }
    let known = MessageType::ALL.map(MessageType::to_u8);
    for code in 0..=255u8 {
        assert_eq!(MessageType::from_u8(code).is_some(), known.contains(&code));
    }
    // The bounds are tight: the smallest and the largest message of each type hit them.
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let ticket = |ip, id: &str| Ticket::issue(&example_key(), id, ip, UnixTime::MAX, [0; 16]);
    let (small_t, big_t) = (
        ticket(v4, "a").unwrap(),
        ticket(v6, &"z".repeat(64)).unwrap(),
    );
    let relay = |addr| RelayInfo {
        addr,
        tcp_port: 1,
        udp_port: 2,
    };
    let (a4, a6) = (SocketAddr::new(v4, 1), SocketAddr::new(v6, 1));
    let extremes = [
        (
            Message::ApRequest {
                request_id: 0,
                app_id: "a".into(),
                flags: 0,
                padding_len: 0,
            },
            Message::ApRequest {
                request_id: 0,
                app_id: "z".repeat(64),
                flags: 1,
                padding_len: 316 - 4 - 65 - 1,
            },
        ),
        (
            Message::ApResponse {
                request_id: 0,
                ticket: small_t.clone(),
                ticket_lifetime_ms: 0,
                relays: vec![relay(v4)],
            },
            Message::ApResponse {
                request_id: 0,
                ticket: big_t.clone(),
                ticket_lifetime_ms: 0,
                relays: vec![relay(v6); MAX_RELAYS],
            },
        ),
        (
            Message::error(ErrorCode::Malformed, ""),
            Message::error(ErrorCode::Malformed, &"r".repeat(MAX_REASON_LEN)),
        ),
        (
            Message::TunnelOpen {
                ticket: small_t,
                destination: a4,
            },
            Message::TunnelOpen {
                ticket: big_t,
                destination: a6,
            },
        ),
        (
            Message::MediaData {
                session_id: 0,
                peer: a4,
                payload: vec![],
            },
            Message::MediaData {
                session_id: 0,
                peer: a6,
                payload: vec![0; MAX_MEDIA_PAYLOAD],
            },
        ),
    ];
    for (min, max) in extremes {
        let range = min.message_type().body_len_range();
        assert_eq!(
            min.to_bytes().unwrap().len() - HEADER_LEN,
            *range.start(),
            "{min:?}"
        );
        assert_eq!(max.to_bytes().unwrap().len() - HEADER_LEN, *range.end());
        check_valid_frame(&max, &max.to_bytes().unwrap());
    }
}

#[test]
fn invalid_headers_are_reported_as_soon_as_present() {
    assert_eq!(err(&[0xC1]), DecodeError::Incomplete { needed: 6 });
    assert_eq!(err(&[0xC1, 0x0E]), DecodeError::BadMagic(0xC10E));
    assert_eq!(err(&[0x16, 0x03, 0x01]), DecodeError::BadMagic(0x1603));
    assert_eq!(err(&[0xC1, 0x0D, 2]), DecodeError::UnsupportedVersion(2));
    assert_eq!(
        err(&[0xC1, 0x0D, 0, 1, 0, 14]),
        DecodeError::UnsupportedVersion(0)
    );
    for code in [0x00, 0x04, 0x0F, 0x14, 0x23, 0x31, 0xFF] {
        assert_eq!(err(&[0xC1, 0x0D, 1, code]), DecodeError::UnknownType(code));
    }
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x20, 0x08]),
        DecodeError::Incomplete { needed: 6 }
    );
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x20, 0x08, 0x01]),
        DecodeError::BodyTooLong { len: 2049 }
    );
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x20, 0xFF, 0xFF]),
        DecodeError::BodyTooLong { len: 0xFFFF }
    );
    // A body length outside the type's bounds is refused from the header alone.
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x21, 0, 11]),
        DecodeError::BodyLength {
            msg_type: MessageType::Keepalive,
            min: 12,
            max: 12,
            found: 11
        }
    );
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x20, 0x07, 0xFF]),
        DecodeError::BodyLength {
            msg_type: MessageType::MediaData,
            min: 15,
            max: 1527,
            found: 2047
        }
    );
    assert_eq!(
        err(&[0xC1, 0x0D, 1, 0x02, 0, 0]),
        DecodeError::BodyLength {
            msg_type: MessageType::ApResponse,
            min: 82,
            max: 316,
            found: 0
        }
    );
    // The version is judged before the type, so that a newer peer gets UnsupportedVersion.
    assert_eq!(
        err(&[0xC1, 0x0D, 2, 0xEE]),
        DecodeError::UnsupportedVersion(2)
    );
    assert_eq!(
        DecodeError::UnsupportedVersion(2).error_code(),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(DecodeError::BadMagic(0).error_code(), ErrorCode::Malformed);
    assert_eq!(
        DecodeError::UnsupportedTicketVersion(2).error_code(),
        ErrorCode::TicketInvalid
    );
    assert!(DecodeError::Incomplete { needed: 6 }.is_incomplete());
}

#[test]
fn invalid_bodies_name_what_is_wrong() {
    use MessageType as T;
    let req = |id: &[u8], flags: u8| {
        let mut body = vec![0, 0, 0, 1, u8::try_from(id.len()).unwrap()];
        body.extend_from_slice(id);
        body.push(flags);
        frame(T::ApRequest, &body)
    };
    assert!(Message::decode(&req(b"ok", 0)).is_ok());
    assert_eq!(err(&req(b"has space", 1)), DecodeError::BadAppId);
    assert_eq!(err(&req(b"del\x7F", 1)), DecodeError::BadAppId);
    assert_eq!(
        err(&req("\u{e9}t\u{e9}".as_bytes(), 1)),
        DecodeError::BadAppId
    );
    // An empty app id makes the body too short for its type...
    assert!(matches!(
        err(&req(b"", 1)),
        DecodeError::BodyLength { found: 6, .. }
    ));
    // ... and within bounds, its zero length byte is refused.
    assert_eq!(
        err(&frame(T::ApRequest, &[0, 0, 0, 1, 0, b'a', 1])),
        DecodeError::BadAppId
    );
    assert!(Message::decode(&req(&[b'a'; 64], 1)).is_ok());
    // 65 bytes: refused on the length byte (the body is within bounds: 4 + 1 + 65 = 70).
    assert_eq!(
        err(&frame(
            T::ApRequest,
            &[&[0, 0, 0, 1, 65][..], &[b'a'; 65]].concat()
        )),
        DecodeError::BadAppId
    );
    assert_eq!(err(&req(b"ok", 0x02)), DecodeError::BadFlags(0x02));
    assert_eq!(err(&req(b"ok", 0x81)), DecodeError::BadFlags(0x81));
    // The app id's length byte runs past the body.
    assert_eq!(
        err(&frame(T::ApRequest, &[0, 0, 0, 1, 10, b'a', b'b'])),
        DecodeError::Underrun {
            msg_type: T::ApRequest,
            field: "app_id"
        }
    );
    // Bytes after the flags are padding, and padding is zeros.
    assert!(Message::decode(&frame(T::ApRequest, &[0, 0, 0, 1, 1, b'a', 0, 0])).is_ok());
    assert_eq!(
        err(&frame(T::ApRequest, &[0, 0, 0, 1, 1, b'a', 0, 0, 0, 7])),
        DecodeError::BadPadding { offset: 2 }
    );
    // Padding beyond the padded length makes the body too long for its type.
    assert_eq!(
        err(&frame(
            T::ApRequest,
            &[&[0, 0, 0, 1, 1, b'a', 0][..], &[0; 310]].concat()
        )),
        DecodeError::BodyLength {
            msg_type: T::ApRequest,
            min: 7,
            max: 316,
            found: 317
        }
    );

    // ApResponse: patch the relay count of the vector (header + request id + ticket + lifetime).
    let resp = vector(T::ApResponse);
    let count_at = HEADER_LEN + 4 + 71 + 4;
    let mut none = resp.clone();
    none[count_at] = 0;
    assert_eq!(err(&none), DecodeError::NoRelays);
    let mut nine = resp.clone();
    nine[count_at] = 9;
    assert_eq!(err(&nine), DecodeError::TooManyRelays(9));
    let mut two = resp.clone();
    two[count_at] = 2;
    assert_eq!(
        err(&two),
        DecodeError::Underrun {
            msg_type: T::ApResponse,
            field: "relay.addr"
        }
    );
    let mut fam = resp.clone();
    fam[count_at + 1] = 5;
    assert_eq!(err(&fam), DecodeError::BadAddressFamily(5));
    let mut tv = resp;
    tv[HEADER_LEN + 4] = 2;
    assert_eq!(err(&tv), DecodeError::UnsupportedTicketVersion(2));

    // TunnelOpen: the ticket's address family, the destination's family, a short destination.
    let open = vector(T::TunnelOpen);
    let mut fam = open.clone();
    fam[HEADER_LEN + 25] = 0;
    assert_eq!(err(&fam), DecodeError::BadAddressFamily(0));
    let mut fam = open.clone();
    fam[HEADER_LEN + 71] = 6;
    assert_eq!(
        err(&fam),
        DecodeError::Underrun {
            msg_type: T::TunnelOpen,
            field: "destination"
        }
    );
    let mut id = open.clone();
    id[HEADER_LEN + 32] = b' ';
    assert_eq!(err(&id), DecodeError::BadAppId);
    let short = fix_len(open[..open.len() - 1].to_vec());
    assert_eq!(
        err(&short),
        DecodeError::Underrun {
            msg_type: T::TunnelOpen,
            field: "destination"
        }
    );
    let long = fix_len([&open[..], &[0]].concat());
    assert_eq!(
        err(&long),
        DecodeError::TrailingBody {
            msg_type: T::TunnelOpen,
            extra: 1
        }
    );

    // Error: reason bounds and UTF-8.
    assert_eq!(
        err(&frame(T::Error, &[0, 2, 2, 0xFF, 0xFE])),
        DecodeError::BadUtf8
    );
    assert_eq!(
        err(&frame(T::Error, &[&[0, 2, 201][..], &[b'r'; 200]].concat())),
        DecodeError::ReasonTooLong { len: 201 }
    );
    assert_eq!(
        err(&frame(T::Error, &[0, 2, 5, b'a'])),
        DecodeError::Underrun {
            msg_type: T::Error,
            field: "reason"
        }
    );
    assert_eq!(
        err(&frame(T::Error, &[0, 2, 0, b'a'])),
        DecodeError::TrailingBody {
            msg_type: T::Error,
            extra: 1
        }
    );

    // MediaData: the peer's family and the payload bound.
    let media = |family: u8, payload_len: usize| {
        let mut body = vec![0; 8];
        body.push(family);
        body.extend_from_slice(&[10, 0, 0, 1, 0x0F, 0xA1]);
        body.resize(body.len() + payload_len, 0xAB);
        frame(T::MediaData, &body)
    };
    assert!(Message::decode(&media(4, MAX_MEDIA_PAYLOAD)).is_ok());
    assert_eq!(
        err(&media(4, MAX_MEDIA_PAYLOAD + 1)),
        DecodeError::PayloadTooLong {
            len: MAX_MEDIA_PAYLOAD + 1
        }
    );
    assert_eq!(err(&media(5, 10)), DecodeError::BadAddressFamily(5));
    assert_eq!(
        err(&media(6, 2)),
        DecodeError::Underrun {
            msg_type: T::MediaData,
            field: "peer"
        }
    );
}

#[test]
fn datagrams_hold_exactly_one_message() {
    let bytes = vector(MessageType::Keepalive);
    assert_eq!(
        Message::decode_datagram(&bytes[..10]),
        Err(DecodeError::Truncated {
            needed: 18,
            found: 10
        })
    );
    assert_eq!(
        Message::decode_datagram(&[0xC1, 0x0D, 1]),
        Err(DecodeError::Truncated {
            needed: 6,
            found: 3
        })
    );
    assert_eq!(
        Message::decode_datagram(&[]),
        Err(DecodeError::Truncated {
            needed: 6,
            found: 0
        })
    );
    assert_eq!(
        Message::decode_datagram(&[0xAB, 0xCD]),
        Err(DecodeError::BadMagic(0xABCD))
    );
    let two = [&bytes[..], &bytes[..]].concat();
    assert_eq!(
        Message::decode_datagram(&two),
        Err(DecodeError::TrailingBytes { extra: 18 })
    );
}

#[test]
fn encoding_refuses_broken_bounds_and_writes_nothing() {
    let ticket = example_ticket();
    let relay = RelayInfo {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tcp_port: 1,
        udp_port: 2,
    };
    let mut bad_ticket = ticket.clone();
    bad_ticket.app_id = "a".repeat(65);
    let cases = [
        (
            Message::ApRequest {
                request_id: 1,
                app_id: String::new(),
                flags: 0,
                padding_len: 0,
            },
            EncodeError::BadAppId,
        ),
        (
            Message::ApRequest {
                request_id: 1,
                app_id: "a b".into(),
                flags: 0,
                padding_len: 0,
            },
            EncodeError::BadAppId,
        ),
        (
            Message::ApRequest {
                request_id: 1,
                app_id: "ab".into(),
                flags: 3,
                padding_len: 0,
            },
            EncodeError::BadFlags(3),
        ),
        (
            Message::ApRequest {
                request_id: 1,
                app_id: "ab".into(),
                flags: 1,
                padding_len: 309,
            },
            EncodeError::PaddingTooLong { len: 309, max: 308 },
        ),
        (
            Message::ApResponse {
                request_id: 1,
                ticket: ticket.clone(),
                ticket_lifetime_ms: 1,
                relays: vec![],
            },
            EncodeError::NoRelays,
        ),
        (
            Message::ApResponse {
                request_id: 1,
                ticket: ticket.clone(),
                ticket_lifetime_ms: 1,
                relays: vec![relay; 9],
            },
            EncodeError::TooManyRelays(9),
        ),
        (
            Message::TunnelOpen {
                ticket: bad_ticket,
                destination: SocketAddr::from(([1, 2, 3, 4], 5)),
            },
            EncodeError::BadAppId,
        ),
        (
            Message::Error {
                code: ErrorCode::Malformed,
                reason: "x".repeat(201),
            },
            EncodeError::ReasonTooLong { len: 201 },
        ),
        (
            Message::MediaData {
                session_id: 1,
                peer: SocketAddr::from(([1, 2, 3, 4], 5)),
                payload: vec![0; MAX_MEDIA_PAYLOAD + 1],
            },
            EncodeError::PayloadTooLong {
                len: MAX_MEDIA_PAYLOAD + 1,
            },
        ),
    ];
    for (msg, expected) in cases {
        let mut out = vec![0x55];
        assert_eq!(msg.encode(&mut out), Err(expected.clone()), "{msg:?}");
        assert_eq!(out, [0x55]);
        assert_eq!(msg.validate(), Err(expected.clone()));
        assert_eq!(msg.to_bytes(), Err(expected));
    }
}

#[test]
fn error_constructor_cuts_reasons_at_char_boundaries() {
    let long = "\u{e9}".repeat(150); // 300 bytes
    let Message::Error { reason, .. } = Message::error(ErrorCode::Other(99), &long) else {
        panic!()
    };
    assert_eq!(reason.len(), 200);
    let odd = format!("x{long}"); // boundaries at odd offsets
    let msg = Message::error(ErrorCode::Malformed, &odd);
    let Message::Error { reason, .. } = &msg else {
        panic!()
    };
    assert_eq!(reason.len(), 199);
    assert!(msg.to_bytes().is_ok());
}

#[test]
fn codes_round_trip_and_display() {
    let mut texts = std::collections::HashSet::new();
    for code in 0..=20u16 {
        let c = ErrorCode::from_u16(code);
        assert_eq!(c.to_u16(), code);
        assert_eq!(u16::from(c), code);
        assert_eq!(ErrorCode::from(code), c);
        assert_eq!(matches!(c, ErrorCode::Other(_)), !(1..=14).contains(&code));
        assert!(texts.insert(c.to_string()), "{c}");
    }
    assert_eq!(ErrorCode::TicketReplayed.to_string(), "ticket already used");
    assert_eq!(ErrorCode::Other(999).to_string(), "error code 999");
    texts.clear();
    for reason in 0..=255u8 {
        let r = CloseReason::from_u8(reason);
        assert_eq!(r.to_u8(), reason);
        assert_eq!(u8::from(r), reason);
        assert_eq!(CloseReason::from(reason), r);
        assert_eq!(matches!(r, CloseReason::Other(_)), reason > 5);
        assert!(texts.insert(r.to_string()));
    }
    // Unknown codes survive a trip through the wire.
    let msg = Message::Error {
        code: ErrorCode::Other(0xBEEF),
        reason: String::new(),
    };
    assert_eq!(Message::decode_datagram(&msg.to_bytes().unwrap()), Ok(msg));
    let msg = Message::Close {
        session_id: 1,
        reason: CloseReason::Other(200),
    };
    assert_eq!(Message::decode_datagram(&msg.to_bytes().unwrap()), Ok(msg));
}

/// The padded request of `docs/protocol.md` §5: the unpadded vector's fields, then zeros up to
/// 322 bytes; every answer fits in it.
#[test]
fn padded_ap_request_vector() {
    let msg = Message::padded_ap_request(0x0102_0304, "demo-app", FLAG_UDP_MEDIA);
    let mut bytes = hex("C1 0D 01 01 01 3C  01 02 03 04  08 64 65 6D 6F 2D 61 70 70  01");
    bytes.resize(322, 0);
    check_valid_frame(&msg, &bytes);
    assert_eq!(AP_REQUEST_PADDED_LEN, 322);
    assert_eq!(
        AP_REQUEST_PADDED_LEN,
        HEADER_LEN + *MessageType::ApResponse.body_len_range().end(),
        "the padded length is the largest answer"
    );
    assert!(HEADER_LEN + *MessageType::Error.body_len_range().end() <= AP_REQUEST_PADDED_LEN);
    // The same length whatever the application id.
    for app_id in ["a", &"z".repeat(64)] {
        let padded = Message::padded_ap_request(1, app_id, 0).to_bytes().unwrap();
        assert_eq!(padded.len(), AP_REQUEST_PADDED_LEN);
    }
    // The unpadded form of version 1's first publication still decodes, with no padding.
    let Ok(Message::ApRequest { padding_len, .. }) =
        Message::decode_datagram(&vector(MessageType::ApRequest))
    else {
        panic!()
    };
    assert_eq!(padding_len, 0);
}

#[test]
fn constants_and_helpers() {
    assert_eq!(AP_PORTS, [1080, 8000, 25000, 9700]);
    assert_eq!(RELAY_TCP_PORT, 4000);
    assert_eq!((AP_TLS_PORT, RELAY_TLS_PORT), (443, 443));
    assert!(!AP_PORTS.contains(&AP_TLS_PORT) && !RELAY_UDP_PORTS.contains(&RELAY_TLS_PORT));
    assert_eq!(
        (*RELAY_UDP_PORTS.start(), *RELAY_UDP_PORTS.end()),
        (4500, 4650)
    );
    assert_eq!(MAX_FRAME_LEN, 2054);
    assert_eq!(PROTOCOL_VERSION, 1);
    for (msg, _) in vectors() {
        let expects_session = !matches!(
            msg.message_type(),
            MessageType::ApRequest
                | MessageType::ApResponse
                | MessageType::Error
                | MessageType::TunnelOpen
        );
        assert_eq!(msg.session_id(), expects_session.then_some(SESSION));
    }
}

#[test]
fn tickets_inside_messages_verify() {
    let Message::TunnelOpen { ticket, .. } =
        Message::decode_datagram(&vector(MessageType::TunnelOpen)).unwrap()
    else {
        panic!()
    };
    let client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    assert_eq!(
        ticket.verify(
            &example_key(),
            UnixTime::from_millis(1_700_000_000_000),
            client
        ),
        Ok(())
    );
    let mut bytes = vector(MessageType::TunnelOpen);
    bytes[HEADER_LEN + 40] ^= 0x01; // inside the MAC
    let Message::TunnelOpen { ticket, .. } = Message::decode_datagram(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        ticket.verify(&example_key(), UnixTime::EPOCH, client),
        Err(TicketError::BadMac)
    );
}

mod media_view;
mod props;
