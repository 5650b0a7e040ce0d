//! Answers and refusals, and the no-amplification rule for every kind of answer.

use super::*;
use crate::wire::{Ticket, AP_REQUEST_PADDED_LEN, MAX_RELAYS, RELAY_UDP_PORTS};

#[test]
fn answers_with_shuffled_relays_ports_and_a_ticket() {
    let mut h = Harness::new(ApConfig::new(KEY, relays(4)));
    let mut orders = std::collections::BTreeSet::new();
    let mut nonces = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let Some(Message::ApResponse {
            request_id,
            ticket,
            ticket_lifetime_ms,
            relays: listed,
        }) = h.ask(alice(), &padded("demo-app"))
        else {
            panic!()
        };
        assert_eq!(request_id, 0xABCD);
        assert_eq!(ticket_lifetime_ms, 120_000);
        let unix_now = h.unix_now();
        assert_eq!(ticket.verify(&KEY, unix_now, alice().ip()), Ok(()));
        assert_eq!(ticket.app_id, "demo-app");
        assert_eq!(ticket.expires_at(), unix_now + Duration::from_secs(120));
        let mut addrs: Vec<IpAddr> = listed.iter().map(|r| r.addr).collect();
        orders.insert(addrs.clone());
        addrs.sort();
        assert_eq!(addrs, relays(4).iter().map(|r| r.addr).collect::<Vec<_>>());
        assert!(listed
            .iter()
            .all(|r| RELAY_UDP_PORTS.contains(&r.udp_port) && r.tcp_port == 4000));
        nonces.insert(ticket.nonce);
    }
    assert!(orders.len() > 5, "the order spreads load: {orders:?}");
    assert_eq!(nonces.len(), 20, "a fresh nonce every time");
    assert_eq!(h.ap.counters().answered, 20);
}

#[test]
fn relays_keep_the_configured_order_when_shuffling_is_off() {
    let mut config = ApConfig::new(KEY, relays(4));
    config.shuffle_relays = false;
    let mut h = Harness::new(config);
    let configured: Vec<IpAddr> = relays(4).iter().map(|r| r.addr).collect();
    for _ in 0..10 {
        let Some(Message::ApResponse { relays: listed, .. }) = h.ask(alice(), &padded("demo-app"))
        else {
            panic!()
        };
        let listed: Vec<IpAddr> = listed.iter().map(|r| r.addr).collect();
        assert_eq!(listed, configured);
    }
}

#[test]
fn answers_are_deterministic_for_a_seed() {
    let run = || {
        let mut h = Harness::new(ApConfig::new(KEY, relays(5)));
        (0..5)
            .map(|_| h.udp(alice(), &padded("x")))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn every_datagram_is_one_traced_request() {
    let mut h = Harness::new(config());
    let out = h.udp(alice(), &padded("x"));
    assert!(matches!(out[0], ApOutput::UdpSend { .. }));
    assert_eq!(
        events(&out),
        [ApEvent::Request {
            from: alice(),
            transport: ApTransport::Udp,
            outcome: ApOutcome::Granted
        }]
    );
    assert_eq!(events(&out)[0].kind(), "ap_request");
    let out = h.udp(alice(), b"hello");
    assert_eq!(
        out,
        [ApOutput::Event(ApEvent::Request {
            from: alice(),
            transport: ApTransport::Udp,
            outcome: ApOutcome::NotOurs
        })]
    );
    assert!(!ApOutcome::NotOurs.answered());
}

#[test]
fn at_most_eight_relays_and_empty_port_range() {
    let mut cfg = ApConfig::new(KEY, relays(12));
    #[allow(clippy::reversed_empty_ranges)]
    {
        cfg.udp_ports = 1..=0;
    }
    let mut h = Harness::new(cfg);
    let Some(Message::ApResponse { relays: listed, .. }) = h.ask(alice(), &padded("x")) else {
        panic!()
    };
    assert_eq!(listed.len(), MAX_RELAYS);
    assert!(listed.iter().all(|r| r.udp_port == 0));
}

#[test]
fn unknown_apps_are_refused() {
    let mut cfg = config();
    cfg.allowed_apps = Some(vec!["bank-app".into()]);
    let mut h = Harness::new(cfg);
    assert_eq!(
        error_code(h.ask(alice(), &padded("other-app"))),
        ErrorCode::UnknownApp
    );
    assert!(is_answer(&h.ask(alice(), &padded("bank-app"))));
    assert_eq!(h.ap.counters().refused_unknown_app, 1);
}

#[test]
fn unpadded_requests_get_at_most_an_error_no_larger_than_themselves() {
    let mut h = Harness::new(config());
    for app in ["x", "demo-app", &"z".repeat(64)] {
        let short = unpadded(app);
        assert!(short.len() < AP_REQUEST_PADDED_LEN);
        assert_eq!(
            error_code(h.ask(alice(), &short)),
            ErrorCode::PaddingRequired
        );
    }
    // Padded, but not all the way.
    let mut almost = Message::padded_ap_request(1, "x", 0);
    if let Message::ApRequest { padding_len, .. } = &mut almost {
        *padding_len -= 1;
    }
    let almost = almost.to_bytes().unwrap();
    assert_eq!(almost.len(), AP_REQUEST_PADDED_LEN - 1);
    let Some(Message::Error { code, reason }) = h.ask(alice(), &almost) else {
        panic!()
    };
    assert_eq!(code, ErrorCode::PaddingRequired);
    assert_eq!(reason, "pad the ApRequest to 322 bytes");
    // Every length from the shortest valid request up is refused until the padded length.
    for len in 0..=(AP_REQUEST_PADDED_LEN - 13) {
        let msg = Message::ApRequest {
            request_id: 1,
            app_id: "x".into(),
            flags: 0,
            padding_len: len as u16,
        };
        let bytes = msg.to_bytes().unwrap();
        let reply = h.ask(bob(), &bytes);
        assert_eq!(is_answer(&reply), bytes.len() >= AP_REQUEST_PADDED_LEN);
        h.advance(Duration::from_secs(10));
    }
    assert_eq!(
        h.ap.counters().refused_padding,
        4 + AP_REQUEST_PADDED_LEN as u64 - 13
    );
}

#[test]
fn bad_requests_are_refused_without_amplification() {
    let mut h = Harness::new(config());
    // Not our magic: silence.
    assert_eq!(h.ask(alice(), b"hello"), None);
    assert_eq!(h.ask(alice(), &[]), None);
    // Another version.
    let mut v2 = padded("x");
    v2[2] = 2;
    assert_eq!(
        error_code(h.ask(alice(), &v2)),
        ErrorCode::UnsupportedVersion
    );
    // Truncated, trailing bytes, non-zero padding, or another message type.
    let full = padded("demo-app");
    assert_eq!(
        error_code(h.ask(alice(), &full[..full.len() - 1])),
        ErrorCode::Malformed
    );
    let mut trailing = full.clone();
    trailing.push(0);
    assert_eq!(error_code(h.ask(alice(), &trailing)), ErrorCode::Malformed);
    let mut dirty = full.clone();
    *dirty.last_mut().unwrap() = 1;
    let Some(Message::Error { code, reason }) = h.ask(alice(), &dirty) else {
        panic!()
    };
    assert_eq!(code, ErrorCode::Malformed);
    assert!(reason.contains("padding"), "{reason}");
    let ka = Message::Keepalive {
        session_id: 1,
        seq: 1,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(error_code(h.ask(alice(), &ka)), ErrorCode::Malformed);
    // One too short for any error gets none.
    assert_eq!(h.ask(bob(), &[0xC1, 0x0D, 1, 0x01]), None);
    let c = h.ap.counters();
    assert_eq!(c.dropped, 2);
    assert_eq!(c.refused_unsupported_version, 1);
    assert_eq!(c.refused_malformed, 5);
    assert_eq!(c.error_replies_suppressed, 1);
    assert_eq!(c.answered, 0);
}

#[test]
fn no_relay_means_no_answer() {
    let mut h = Harness::new(ApConfig::new(KEY, Vec::new()));
    assert_eq!(
        error_code(h.ask(alice(), &padded("x"))),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(h.ap.counters().refused_no_relay, 1);
}

#[test]
fn tickets_bind_the_client_address() {
    let mut h = Harness::new(ApConfig::new(KEY, relays(1)));
    let Some(Message::ApResponse { ticket, .. }) = h.ask(alice(), &padded("x")) else {
        panic!()
    };
    let ticket: Ticket = ticket;
    assert_eq!(ticket.client_ip, alice().ip());
    assert!(ticket.verify(&KEY, h.unix_now(), bob().ip()).is_err());
}

/// The access point that gives the largest answers: eight IPv6 relays, so that an IPv6 client
/// with a 64-byte application id gets a 322-byte `ApResponse`.
fn largest_answers(allowed: Option<Vec<String>>, max_requests_per_ip: u32) -> Harness {
    let relays = (1..=8u16)
        .map(|i| RelayInfo {
            addr: IpAddr::from([0x2600, 0x1f00, 0, 0, 0, 0, 0, i]),
            tcp_port: RELAY_TCP_PORT,
            udp_port: 0,
        })
        .collect();
    let mut cfg = ApConfig::new(KEY, relays);
    cfg.allowed_apps = allowed;
    cfg.max_requests_per_ip = max_requests_per_ip;
    Harness::new(cfg)
}

/// Every kind of answer the access point sends, each with the request that earns it.
fn every_answer_kind() -> Vec<(&'static str, Harness, Vec<u8>)> {
    let long = "z".repeat(64);
    let mut v2 = padded(&long);
    v2[2] = 2;
    let ka = Message::Keepalive {
        session_id: 1,
        seq: 1,
    }
    .to_bytes()
    .unwrap();
    vec![
        ("granted", largest_answers(None, 20), padded(&long)),
        (
            "unknown app",
            largest_answers(Some(vec!["a".into()]), 20),
            padded(&long),
        ),
        ("rate limited", largest_answers(None, 0), padded(&long)),
        ("padding", largest_answers(None, 20), unpadded(&long)),
        ("version", largest_answers(None, 20), v2),
        ("malformed", largest_answers(None, 20), ka),
        (
            "no relay",
            Harness::new(ApConfig::new(KEY, Vec::new())),
            padded(&long),
        ),
    ]
}

#[test]
fn no_answer_is_larger_than_its_request_over_udp() {
    let from: SocketAddr = "[2001:db8:1:2:3:4:5:6]:40000".parse().unwrap();
    for (what, mut h, request) in every_answer_kind() {
        let out = h.udp(from, &request);
        let reply = udp_reply(&out, from).unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(
            reply.len() <= request.len(),
            "{what}: {} bytes answer {}",
            reply.len(),
            request.len()
        );
        if what == "granted" {
            assert_eq!(reply.len(), AP_REQUEST_PADDED_LEN, "the largest answer");
        }
    }
}

#[test]
fn no_answer_is_larger_than_its_request_over_tcp() {
    let from: SocketAddr = "[2001:db8:1:2:3:4:5:6]:40000".parse().unwrap();
    for (what, mut h, request) in every_answer_kind() {
        h.accept(1, from);
        let out = h.tcp(1, &request);
        let sent = tcp_sent(&out, 1);
        assert_eq!(sent.len(), 1, "{what}: {out:?}");
        assert!(
            sent[0].len() <= request.len(),
            "{what}: {} bytes answer {}",
            sent[0].len(),
            request.len()
        );
        assert_eq!(tcp_closed(&out, 1), what != "granted", "{what}");
    }
}

#[test]
fn tickets_expire_in_wall_clock_time_beside_the_monotonic_now() {
    let mut h = Harness::new(ApConfig::new(KEY, relays(1)));
    let wall = UnixTime::from_millis(1_764_547_200_000);
    assert!(h.input(ApInput::WallClock(wall)).is_empty());
    let Some(Message::ApResponse { ticket, .. }) = h.ask(alice(), &padded("x")) else {
        panic!()
    };
    // The expiry is on the wall clock, whatever the monotonic `now` (5000 s) says.
    assert_eq!(ticket.expires_at(), wall + Duration::from_secs(120));
    assert_eq!(ticket.verify(&KEY, wall, alice().ip()), Ok(()));
    // The latest reading counts: a later wall clock, a later expiry, on the same `now`.
    let later = wall + Duration::from_secs(30);
    assert!(h.input(ApInput::WallClock(later)).is_empty());
    let Some(Message::ApResponse { ticket, .. }) = h.ask(bob(), &padded("x")) else {
        panic!()
    };
    assert_eq!(ticket.expires_at(), later + Duration::from_secs(120));
}

#[test]
fn tickets_expire_in_the_unix_time_counted_forward_from_the_start_reading() {
    // Built at monotonic 5000 s with the wall clock at 2026-01-01: no fresh reading after.
    let mut h = Harness::new(ApConfig::new(KEY, relays(1)));
    h.now += Duration::from_secs(30);
    let Some(Message::ApResponse { ticket, .. }) = h.ask(alice(), &padded("x")) else {
        panic!()
    };
    let issued = crate::test_support::TEST_UNIX_EPOCH + Duration::from_secs(30);
    assert_eq!(ticket.expires_at(), issued + Duration::from_secs(120));
    // Not `now` (5030 s) read as Unix time, as before the wall clock was a constructor
    // argument: that ticket expired in 1970.
    assert!(ticket.expires_at() > UnixTime::from_millis(5_150_000));
    assert_eq!(ticket.verify(&KEY, issued, alice().ip()), Ok(()));
}
