//! Properties of the wire codec over generated messages and arbitrary bytes.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::time::UnixTime;

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

pub(super) fn arb_socket_addr() -> impl Strategy<Value = SocketAddr> {
    (arb_ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn arb_app_id() -> impl Strategy<Value = String> {
    "[!-~]{1,64}"
}

fn arb_ticket() -> impl Strategy<Value = Ticket> {
    (
        arb_app_id(),
        arb_ip(),
        any::<u64>(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(app_id, client_ip, expires_at_ms, nonce, mac)| Ticket {
            app_id,
            client_ip,
            expires_at_ms,
            nonce,
            mac,
        })
}

fn arb_relay() -> impl Strategy<Value = RelayInfo> {
    (arb_ip(), any::<u16>(), any::<u16>()).prop_map(|(addr, tcp_port, udp_port)| RelayInfo {
        addr,
        tcp_port,
        udp_port,
    })
}

pub(super) fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), arb_app_id(), 0..=1u8, 0..=246u16).prop_map(
            |(request_id, app_id, flags, padding_len)| Message::ApRequest {
                request_id,
                app_id,
                flags,
                padding_len,
            }
        ),
        (
            any::<u32>(),
            arb_ticket(),
            any::<u32>(),
            prop::collection::vec(arb_relay(), 1..=MAX_RELAYS)
        )
            .prop_map(|(request_id, ticket, ticket_lifetime_ms, relays)| {
                Message::ApResponse {
                    request_id,
                    ticket,
                    ticket_lifetime_ms,
                    relays,
                }
            }),
        (any::<u16>(), any::<String>())
            .prop_map(|(code, reason)| Message::error(ErrorCode::from_u16(code), &reason)),
        (arb_ticket(), arb_socket_addr()).prop_map(|(ticket, destination)| Message::TunnelOpen {
            ticket,
            destination
        }),
        (any::<u64>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
            |(session_id, udp_port, keepalive_interval_ms, idle_timeout_ms)| {
                Message::TunnelAccept {
                    session_id,
                    udp_port,
                    keepalive_interval_ms,
                    idle_timeout_ms,
                }
            }
        ),
        any::<u64>().prop_map(|session_id| Message::MediaChannelOpen { session_id }),
        any::<u64>().prop_map(|session_id| Message::MediaChannelAccept { session_id }),
        (
            any::<u64>(),
            arb_socket_addr(),
            prop::collection::vec(any::<u8>(), 0..=MAX_MEDIA_PAYLOAD)
        )
            .prop_map(|(session_id, peer, payload)| Message::MediaData {
                session_id,
                peer,
                payload
            }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(session_id, seq)| Message::Keepalive { session_id, seq }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(session_id, seq)| Message::KeepaliveAck { session_id, seq }),
        (any::<u64>(), any::<u8>()).prop_map(|(session_id, reason)| Message::Close {
            session_id,
            reason: CloseReason::from_u8(reason)
        }),
    ]
}

/// A byte string near valid frames: a valid frame, cut, extended and with bytes overwritten.
pub(super) fn arb_mangled_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_message(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(msg, edits, cut, tail)| {
            let mut bytes = msg.to_bytes().unwrap();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&tail);
            bytes
        })
}

/// Decodes `bytes` in every way; checks that nothing panics and that whatever decodes
/// re-encodes to exactly the bytes it came from.
fn decode_every_way(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Message::decode(bytes) {
        Ok((msg, used)) => {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(msg.to_bytes().unwrap(), &bytes[..used]);
        }
        Err(DecodeError::Incomplete { needed }) => prop_assert!(needed > bytes.len()),
        Err(_) => {}
    }
    if let Ok(msg) = Message::decode_datagram(bytes) {
        prop_assert_eq!(msg.to_bytes().unwrap(), bytes);
    }
    let mut reader = FrameReader::new();
    let mut rest = bytes;
    loop {
        let n = reader.push(rest);
        rest = &rest[n..];
        prop_assert!(reader.buffered() <= FrameReader::CAPACITY);
        match reader.pop() {
            Ok(Some(_)) => {}
            Ok(None) if rest.is_empty() => break,
            Ok(None) => prop_assert!(n > 0, "stalled with a full buffer"),
            Err(_) => break,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(msg in arb_message()) {
        let bytes = msg.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), msg.encoded_len());
        prop_assert_eq!(Message::decode(&bytes), Ok((msg.clone(), bytes.len())));
        prop_assert_eq!(Message::decode_datagram(&bytes), Ok(msg.clone()));
        let (again, _) = Message::decode(&bytes).unwrap();
        prop_assert_eq!(again.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn strict_prefixes_are_incomplete(msg in arb_message()) {
        let bytes = msg.to_bytes().unwrap();
        for n in 0..bytes.len() {
            let needed = if n < HEADER_LEN { HEADER_LEN } else { bytes.len() };
            prop_assert_eq!(Message::decode(&bytes[..n]), Err(DecodeError::Incomplete { needed }));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        decode_every_way(&bytes)?;
        // The same bytes behind a valid header prefix reach the body parsers.
        for t in MessageType::ALL {
            let mut f = vec![0xC1, 0x0D, 1, t.to_u8(), 0, 0];
            f.extend(bytes.iter().take(*t.body_len_range().end()));
            decode_every_way(&fix_len(f))?;
        }
    }

    #[test]
    fn mangled_frames_never_panic(bytes in arb_mangled_frame()) {
        decode_every_way(&bytes)?;
    }

    #[test]
    fn frame_reader_reassembles_any_chunking(
        msgs in prop::collection::vec(arb_message(), 0..12),
        cuts in prop::collection::vec(1usize..700, 0..40),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.to_bytes().unwrap()).collect();
        let mut reader = FrameReader::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut sizes = cuts.iter().copied().cycle().chain(std::iter::repeat(usize::MAX));
        while !rest.is_empty() {
            let size = sizes.next().unwrap().min(rest.len());
            let mut chunk = &rest[..size];
            rest = &rest[size..];
            while !chunk.is_empty() {
                let n = reader.push(chunk);
                chunk = &chunk[n..];
                prop_assert!(reader.buffered() <= FrameReader::CAPACITY);
                while let Some(m) = reader.pop().unwrap() {
                    got.push(m);
                }
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(reader.buffered(), 0);
        prop_assert!(reader.take_rest().is_empty());
    }

    #[test]
    fn raw_bytes_after_a_tunnel_accept_are_kept(
        raw in prop::collection::vec(any::<u8>(), 0..500),
        cut in 0usize..600,
    ) {
        let accept = vector(MessageType::TunnelAccept);
        let stream = [&accept[..], &raw[..]].concat();
        let (a, b) = stream.split_at(cut.min(stream.len()));
        let mut reader = FrameReader::new();
        prop_assert_eq!(reader.push(a), a.len());
        let mut first = reader.pop().unwrap();
        let taken = if first.is_none() {
            let n = reader.push(b);
            first = reader.pop().unwrap();
            n
        } else {
            0
        };
        prop_assert_eq!(first.map(|m| m.message_type()), Some(MessageType::TunnelAccept));
        let mut rest = reader.take_rest();
        rest.extend_from_slice(&b[taken..]);
        prop_assert_eq!(rest, raw);
    }

    #[test]
    fn issued_tickets_verify_and_survive_the_wire(
        key in any::<[u8; 32]>(),
        ticket in arb_ticket(),
        now in any::<u64>(),
    ) {
        let key = TicketKey::from_bytes(key);
        let expires_at = UnixTime::from_millis(ticket.expires_at_ms);
        let (app_id, ip, nonce) = (&ticket.app_id, ticket.client_ip, ticket.nonce);
        let issued = Ticket::issue(&key, app_id, ip, expires_at, nonce).unwrap();
        let msg = Message::TunnelOpen {
            ticket: issued.clone(),
            destination: SocketAddr::from(([1, 1, 1, 1], 1)),
        };
        let decoded = Message::decode_datagram(&msg.to_bytes().unwrap()).unwrap();
        let Message::TunnelOpen { ticket: back, .. } = decoded else {
            unreachable!()
        };
        let now = UnixTime::from_millis(now);
        let expected = if now.as_millis() >= issued.expires_at_ms {
            Err(TicketError::Expired {
                expired_at_ms: issued.expires_at_ms,
                now_ms: now.as_millis(),
            })
        } else {
            Ok(())
        };
        prop_assert_eq!(back.verify(&key, now, issued.client_ip), expected);
        // A random MAC essentially never verifies.
        prop_assert_eq!(ticket.verify(&key, now, ticket.client_ip), Err(TicketError::BadMac));
    }
}
