//! The access point's answers and refusals.

use super::*;
use crate::wire::{Ticket, FLAG_UDP_MEDIA, MAX_RELAYS, RELAY_UDP_PORTS};

fn relays(n: u8) -> Vec<RelayInfo> {
    (1..=n)
        .map(|i| relay_info(&format!("120.92.118.{i}")))
        .collect()
}

fn ap(config: ApConfig) -> AccessPoint {
    AccessPoint::new(config, Entropy::from_u64(42))
}

fn request(app_id: &str) -> Vec<u8> {
    Message::ApRequest {
        request_id: 0xABCD,
        app_id: app_id.into(),
        flags: FLAG_UDP_MEDIA,
    }
    .to_bytes()
    .unwrap()
}

fn now() -> Instant {
    Instant::from_millis(5_000_000)
}

fn answer(ap: &mut AccessPoint, from: SocketAddr, bytes: &[u8]) -> Option<Message> {
    ap.handle_message(now(), from, bytes)
        .map(|reply| Message::decode_datagram(&reply).unwrap())
}

fn error_code(msg: Option<Message>) -> Option<ErrorCode> {
    match msg {
        Some(Message::Error { code, .. }) => Some(code),
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn answers_with_shuffled_relays_ports_and_a_ticket() {
    let mut ap = ap(ApConfig::new(KEY, relays(4)));
    let mut orders = std::collections::BTreeSet::new();
    let mut nonces = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let Some(Message::ApResponse {
            request_id,
            ticket,
            ticket_lifetime_ms,
            relays: listed,
        }) = answer(&mut ap, alice(), &request("demo-app"))
        else {
            panic!()
        };
        assert_eq!(request_id, 0xABCD);
        assert_eq!(ticket_lifetime_ms, 120_000);
        assert_eq!(ticket.verify(&KEY, now(), alice().ip()), Ok(()));
        assert_eq!(ticket.app_id, "demo-app");
        assert_eq!(ticket.expires_at(), now() + Duration::from_secs(120));
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
    assert_eq!(ap.counters().answered, 20);
}

#[test]
fn relays_keep_the_configured_order_when_shuffling_is_off() {
    let mut config = ApConfig::new(KEY, relays(4));
    config.shuffle_relays = false;
    let mut ap = ap(config);
    let configured: Vec<IpAddr> = relays(4).iter().map(|r| r.addr).collect();
    for _ in 0..10 {
        let Some(Message::ApResponse { relays: listed, .. }) =
            answer(&mut ap, alice(), &request("demo-app"))
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
        let mut ap = ap(ApConfig::new(KEY, relays(5)));
        (0..5)
            .map(|_| ap.handle_message(now(), alice(), &request("x")).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn at_most_eight_relays_and_empty_port_range() {
    let mut cfg = ApConfig::new(KEY, relays(12));
    #[allow(clippy::reversed_empty_ranges)]
    {
        cfg.udp_ports = 1..=0;
    }
    let mut ap = ap(cfg);
    let Some(Message::ApResponse { relays: listed, .. }) = answer(&mut ap, alice(), &request("x"))
    else {
        panic!()
    };
    assert_eq!(listed.len(), MAX_RELAYS);
    assert!(listed.iter().all(|r| r.udp_port == 0));
}

#[test]
fn unknown_apps_are_refused() {
    let mut cfg = ApConfig::new(KEY, relays(2));
    cfg.allowed_apps = Some(vec!["bank-app".into()]);
    let mut ap = ap(cfg);
    assert_eq!(
        error_code(answer(&mut ap, alice(), &request("other-app"))),
        Some(ErrorCode::UnknownApp)
    );
    assert!(matches!(
        answer(&mut ap, alice(), &request("bank-app")),
        Some(Message::ApResponse { .. })
    ));
    assert_eq!(ap.counters().refused_unknown_app, 1);
}

#[test]
fn requests_are_rate_limited_per_address() {
    let mut cfg = ApConfig::new(KEY, relays(2));
    cfg.max_requests_per_ip = 3;
    let mut ap = ap(cfg);
    for _ in 0..3 {
        assert!(matches!(
            answer(&mut ap, alice(), &request("x")),
            Some(Message::ApResponse { .. })
        ));
    }
    assert_eq!(
        error_code(answer(&mut ap, alice(), &request("x"))),
        Some(ErrorCode::RateLimited)
    );
    // The same address on another port, or as IPv4-mapped IPv6, is the same client.
    let mapped = SocketAddr::new(
        match alice().ip() {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            v6 => v6,
        },
        1,
    );
    assert_eq!(
        error_code(answer(&mut ap, mapped, &request("x"))),
        Some(ErrorCode::RateLimited)
    );
    // Others are not affected; the next window is fresh.
    assert!(matches!(
        answer(&mut ap, bob(), &request("x")),
        Some(Message::ApResponse { .. })
    ));
    let later = now() + Duration::from_secs(10);
    assert!(ap.handle_message(later, alice(), &request("x")).is_some());
    assert_eq!(ap.counters().refused_rate_limited, 2);
}

#[test]
fn bad_requests_are_refused_without_amplification() {
    let mut ap = ap(ApConfig::new(KEY, relays(2)));
    // Not our magic: silence.
    assert_eq!(ap.handle_message(now(), alice(), b"hello"), None);
    assert_eq!(ap.handle_message(now(), alice(), &[]), None);
    // Another version.
    let mut v2 = request("x");
    v2[2] = 2;
    assert_eq!(
        error_code(answer(&mut ap, alice(), &v2)),
        Some(ErrorCode::UnsupportedVersion)
    );
    // Truncated, trailing bytes, or another message type.
    let full = request("demo-app");
    assert_eq!(
        error_code(answer(&mut ap, alice(), &full[..full.len() - 1])),
        Some(ErrorCode::Malformed)
    );
    let mut trailing = full.clone();
    trailing.push(0);
    assert_eq!(
        error_code(answer(&mut ap, alice(), &trailing)),
        Some(ErrorCode::Malformed)
    );
    let ka = Message::Keepalive {
        session_id: 1,
        seq: 1,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        error_code(answer(&mut ap, alice(), &ka)),
        Some(ErrorCode::Malformed)
    );
    // Every error fits in its request; one too short for any error gets none.
    for req in [&v2[..], &full[..full.len() - 1], &trailing, &ka] {
        assert!(ap.handle_message(now(), bob(), req).unwrap().len() <= req.len());
    }
    assert_eq!(
        ap.handle_message(now(), bob(), &[0xC1, 0x0D, 1, 0x01]),
        None
    );
    let c = ap.counters();
    assert_eq!(c.dropped, 2);
    assert_eq!(c.refused_unsupported_version, 2);
    assert_eq!(c.refused_malformed, 7);
    assert_eq!(c.error_replies_suppressed, 1);
    assert_eq!(c.answered, 0);
}

#[test]
fn no_relay_means_no_answer() {
    let mut ap = ap(ApConfig::new(KEY, Vec::new()));
    assert_eq!(
        error_code(answer(&mut ap, alice(), &request("x"))),
        Some(ErrorCode::QuotaExceeded)
    );
    assert_eq!(ap.counters().refused_no_relay, 1);
}

#[test]
fn tickets_bind_the_client_address() {
    let mut ap = ap(ApConfig::new(KEY, relays(1)));
    let Some(Message::ApResponse { ticket, .. }) = answer(&mut ap, alice(), &request("x")) else {
        panic!()
    };
    let ticket: Ticket = ticket;
    assert_eq!(ticket.client_ip, alice().ip());
    assert!(ticket.verify(&KEY, now(), bob().ip()).is_err());
}
