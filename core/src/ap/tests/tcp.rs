//! The TCP side: caps (global, per address, per network), the idle timeout, the request cap,
//! framing across deliveries, bad frames, and the driver's close.

use super::*;
use crate::wire::{FrameReader, AP_REQUEST_PADDED_LEN};

fn tcp_config(total: usize, per_ip: usize, per_prefix: usize) -> ApConfig {
    let mut cfg = config();
    cfg.max_tcp_connections = total;
    cfg.max_tcp_connections_per_ip = per_ip;
    cfg.max_tcp_connections_per_prefix = per_prefix;
    cfg.max_requests_per_ip = 1_000;
    cfg.max_requests_per_prefix = 1_000;
    cfg
}

fn peer(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn refused(out: &[ApOutput], conn: u64) -> Option<TcpRefusal> {
    assert!(tcp_closed(out, conn), "{out:?}");
    events(out).into_iter().find_map(|e| match e {
        ApEvent::TcpRefused { conn: c, cause, .. } if c.0 == conn => Some(cause),
        _ => None,
    })
}

fn ended(out: &[ApOutput], conn: u64) -> Option<TcpEnd> {
    events(out).into_iter().find_map(|e| match e {
        ApEvent::TcpClosed { conn: c, end, .. } if c.0 == conn => Some(end),
        _ => None,
    })
}

#[test]
fn the_global_cap_refuses_at_once_and_frees_on_close() {
    let mut h = Harness::new(tcp_config(3, 8, 64));
    for (i, ip) in ["198.51.100.1", "203.0.113.1", "192.0.2.1"]
        .iter()
        .enumerate()
    {
        assert!(h.accept(i as u64 + 1, peer(ip, 1)).is_empty());
    }
    let out = h.accept(4, peer("100.64.0.1", 1));
    assert_eq!(refused(&out, 4), Some(TcpRefusal::TooManyConnections));
    assert_eq!(out[0], ApOutput::TcpClose { conn: ApConn(4) });
    assert_eq!(h.ap.tcp_connection_count(), 3);
    // The refused id was never stored: its inputs are ignored.
    assert!(h.tcp(4, &padded("x")).is_empty());
    h.closed(2);
    assert!(h.accept(5, peer("100.64.0.1", 1)).is_empty());
    let c = h.ap.counters();
    assert_eq!(
        (c.tcp_accepted, c.tcp_refused_total, c.ignored_inputs),
        (4, 1, 1)
    );
}

#[test]
fn one_address_never_takes_every_slot() {
    let mut h = Harness::new(tcp_config(16, 4, 64));
    let attacker = "198.51.100.66";
    let mut accepted = 0;
    for conn in 1..=100 {
        let out = h.accept(conn, peer(attacker, conn as u16));
        match refused_or_none(&out, conn) {
            None => accepted += 1,
            Some(cause) => assert_eq!(cause, TcpRefusal::TooManyFromIp),
        }
    }
    assert_eq!(accepted, 4);
    // Its IPv4-mapped form is the same address.
    let mapped = SocketAddr::new("::ffff:198.51.100.66".parse().unwrap(), 1);
    assert_eq!(
        refused(&h.accept(200, mapped), 200),
        Some(TcpRefusal::TooManyFromIp)
    );
    // A good client still gets in, and is answered.
    assert!(h.accept(300, alice()).is_empty());
    let out = h.tcp(300, &padded("x"));
    assert_eq!(tcp_sent(&out, 300).len(), 1);
    assert_eq!(h.ap.counters().tcp_refused_per_ip, 97);
    assert_eq!(h.ap.tcp_clients(), (2, 2));
}

fn refused_or_none(out: &[ApOutput], conn: u64) -> Option<TcpRefusal> {
    if out.is_empty() {
        None
    } else {
        refused(out, conn)
    }
}

#[test]
fn one_network_never_takes_every_slot() {
    let mut h = Harness::new(tcp_config(16, 2, 5));
    let mut accepted = 0;
    for d in 1..=50u64 {
        let out = h.accept(d, peer(&format!("198.51.100.{d}"), 1));
        match refused_or_none(&out, d) {
            None => accepted += 1,
            Some(cause) => assert_eq!(cause, TcpRefusal::TooManyFromPrefix),
        }
    }
    assert_eq!(accepted, 5);
    // IPv6: the /56 is the network.
    for (i, ip) in ["2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1"]
        .iter()
        .enumerate()
    {
        assert!(h.accept(100 + i as u64, peer(ip, 1)).is_empty());
    }
    for (i, ip) in ["2001:db8:0:4::1", "2001:db8:0:5::1"].iter().enumerate() {
        assert!(h.accept(110 + i as u64, peer(ip, 1)).is_empty());
    }
    assert_eq!(
        refused(&h.accept(120, peer("2001:db8:0:ff::1", 1)), 120),
        Some(TcpRefusal::TooManyFromPrefix)
    );
    assert!(h.accept(121, peer("2001:db8:0:100::1", 1)).is_empty());
    assert!(h.accept(122, alice()).is_empty());
    assert_eq!(h.ap.counters().tcp_refused_per_prefix, 46);
}

#[test]
fn a_silent_connection_is_closed_at_the_idle_timeout() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    assert_eq!(h.ap.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    assert!(h.advance(Duration::from_millis(9_999)).is_empty());
    let out = h.advance(Duration::from_millis(1));
    assert_eq!(out[0], ApOutput::TcpClose { conn: ApConn(1) });
    assert_eq!(ended(&out, 1), Some(TcpEnd::IdleTimeout));
    assert_eq!(h.ap.tcp_connection_count(), 0);
    assert_eq!(h.ap.poll_timeout(), None);
    assert_eq!(h.ap.counters().tcp_idle_timeouts, 1);
}

#[test]
fn trickling_a_request_does_not_extend_the_deadline() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    let request = padded("x");
    for byte in request.iter().take(9) {
        assert!(h.tcp(1, std::slice::from_ref(byte)).is_empty());
        assert!(h.advance(Duration::from_secs(1)).is_empty());
    }
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(ended(&out, 1), Some(TcpEnd::IncompleteRequest));
    assert_eq!(h.ap.counters().tcp_incomplete_requests, 1);
}

#[test]
fn each_answer_restarts_the_idle_deadline() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    for _ in 0..3 {
        h.advance(Duration::from_secs(9));
        assert_eq!(tcp_sent(&h.tcp(1, &padded("x")), 1).len(), 1);
    }
    assert_eq!(h.ap.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    assert_eq!(h.ap.tcp_connection_count(), 1);
}

#[test]
fn the_request_cap_closes_after_its_last_answer() {
    let mut h = Harness::new(tcp_config(16, 8, 64));
    h.accept(1, alice());
    let pipelined: Vec<u8> = (0..20).flat_map(|_| padded("x")).collect();
    let out = h.tcp(1, &pipelined);
    let sent = tcp_sent(&out, 1);
    assert_eq!(sent.len(), 16);
    assert!(sent.iter().all(|a| a.len() <= AP_REQUEST_PADDED_LEN));
    // The close comes after the last answer.
    let close = out
        .iter()
        .position(|o| *o == ApOutput::TcpClose { conn: ApConn(1) })
        .unwrap();
    let last_send = out
        .iter()
        .rposition(|o| matches!(o, ApOutput::TcpSend { .. }))
        .unwrap();
    assert!(last_send < close);
    assert_eq!(ended(&out, 1), Some(TcpEnd::RequestCap));
    assert!(h.tcp(1, &padded("x")).is_empty(), "forgotten");
    let c = h.ap.counters();
    assert_eq!(
        (c.answered, c.tcp_request_caps, c.ignored_inputs),
        (16, 1, 1)
    );
}

#[test]
fn requests_split_across_deliveries_are_reassembled() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    let request = padded("x");
    // Byte by byte: one answer, after the last byte.
    for (i, byte) in request.iter().enumerate() {
        let out = h.tcp(1, std::slice::from_ref(byte));
        assert_eq!(tcp_sent(&out, 1).len(), usize::from(i + 1 == request.len()));
        assert!(h.ap.buffered_bytes() <= FrameReader::CAPACITY);
    }
    // Two requests cut at odd places.
    let two: Vec<u8> = padded("x").into_iter().chain(padded("y")).collect();
    let mut answers = 0;
    for chunk in [&two[..5], &two[5..400], &two[400..]] {
        answers += tcp_sent(&h.tcp(1, chunk), 1).len();
    }
    assert_eq!(answers, 2);
    assert_eq!(h.ap.buffered_bytes(), 0);
}

#[test]
fn bad_frames_close_with_at_most_an_error_no_larger_than_them() {
    let mut h = Harness::new(config());
    // Not our protocol: closed without a word.
    h.accept(1, alice());
    let out = h.tcp(1, b"GET / HTTP/1.1\r\n");
    assert!(tcp_sent(&out, 1).is_empty());
    assert_eq!(ended(&out, 1), Some(TcpEnd::Refused));
    // Another version: an error that fits in the bytes sent, then the close.
    h.accept(2, alice());
    let mut v2 = padded("x");
    v2[2] = 2;
    let out = h.tcp(2, &v2[..50]);
    let sent = tcp_sent(&out, 2);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].len() <= 50);
    assert!(tcp_closed(&out, 2));
    // A header announcing a body too long: too few bytes for any error.
    h.accept(3, alice());
    let out = h.tcp(3, &[0xC1, 0x0D, 1, 0x01, 0x07, 0xFF]);
    assert!(tcp_sent(&out, 3).is_empty());
    assert!(tcp_closed(&out, 3));
    // Another message: Malformed, then the close.
    h.accept(4, alice());
    let ka = Message::Keepalive {
        session_id: 1,
        seq: 1,
    }
    .to_bytes()
    .unwrap();
    let out = h.tcp(4, &ka);
    let sent = tcp_sent(&out, 4);
    assert!(matches!(
        Message::decode_datagram(&sent[0]),
        Ok(Message::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
    assert!(sent[0].len() <= ka.len() && tcp_closed(&out, 4));
    // An unpadded request: PaddingRequired, no larger than it.
    h.accept(5, alice());
    let short = unpadded("demo-app");
    let out = h.tcp(5, &short);
    let sent = tcp_sent(&out, 5);
    assert!(sent[0].len() <= short.len() && tcp_closed(&out, 5));
    assert_eq!(h.ap.tcp_connection_count(), 0);
    assert_eq!(h.ap.counters().dropped, 1);
}

#[test]
fn a_close_from_the_driver_is_not_echoed() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    h.tcp(1, &padded("x")[..10]);
    let out = h.closed(1);
    assert!(!tcp_closed(&out, 1));
    assert_eq!(ended(&out, 1), Some(TcpEnd::PeerClosed));
    assert!(h.closed(1).is_empty());
    assert!(h.tcp(1, b"late").is_empty());
    assert_eq!(h.ap.counters().ignored_inputs, 2);
    assert_eq!((h.ap.tcp_connection_count(), h.ap.buffered_bytes()), (0, 0));
    assert_eq!(h.ap.tcp_clients(), (0, 0));
    // A reused id of an open connection is a driver's mistake: ignored.
    h.accept(2, alice());
    assert!(h.accept(2, bob()).is_empty());
    assert_eq!(h.ap.counters().ignored_inputs, 3);
    assert_eq!(h.ap.tcp_connection_count(), 1);
}

#[test]
fn a_flood_of_bytes_is_bounded() {
    let mut h = Harness::new(config());
    h.accept(1, alice());
    // Half a frame, then a megabyte of garbage in one delivery: one frame buffered at most,
    // then the broken frame closes the connection.
    let mut header_only = padded("x");
    header_only.truncate(100);
    h.tcp(1, &header_only);
    assert_eq!(h.ap.buffered_bytes(), 100);
    let out = h.tcp(1, &vec![0xEE; 1 << 20]);
    assert!(tcp_closed(&out, 1));
    assert!(out.len() <= 4, "{} outputs", out.len());
    assert_eq!(h.ap.buffered_bytes(), 0);
}
