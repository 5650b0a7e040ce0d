//! The rate limiter: per client address and per client network, silence after the first
//! refusal, bounded tables that no attacker can use to reset a victim's window.

use super::*;

fn limited(per_ip: u32, per_prefix: u32) -> Harness {
    let mut cfg = config();
    cfg.max_requests_per_ip = per_ip;
    cfg.max_requests_per_prefix = per_prefix;
    Harness::new(cfg)
}

fn at(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40_000)
}

#[test]
fn per_address_then_silence_until_the_window_ends() {
    let mut h = limited(3, 100);
    for _ in 0..3 {
        assert!(is_answer(&h.ask(alice(), &padded("x"))));
    }
    assert_eq!(
        error_code(h.ask(alice(), &padded("x"))),
        ErrorCode::RateLimited
    );
    // Told once: silence now, from any port, and in IPv4-mapped form too.
    assert_eq!(h.ask(alice(), &padded("x")), None);
    let mapped = SocketAddr::new(alice().ip().to_canonical(), 1);
    let mapped = match mapped.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), 1),
        _ => unreachable!(),
    };
    let out = h.udp(mapped, &padded("x"));
    assert_eq!(
        out,
        [ApOutput::Event(ApEvent::Request {
            from: mapped,
            transport: ApTransport::Udp,
            outcome: ApOutcome::Refused {
                refusal: ApRefusal::RateLimited,
                answered: false
            }
        })]
    );
    // Others are not affected.
    assert!(is_answer(&h.ask(bob(), &padded("x"))));
    // Still silent just before the window ends; the next window is fresh.
    h.advance(Duration::from_millis(9_999));
    assert_eq!(h.ask(alice(), &padded("x")), None);
    h.advance(Duration::from_millis(1));
    for _ in 0..3 {
        assert!(is_answer(&h.ask(alice(), &padded("x"))));
    }
    assert_eq!(
        error_code(h.ask(alice(), &padded("x"))),
        ErrorCode::RateLimited,
        "a new window's first refusal is answered again"
    );
    let c = h.ap.counters();
    assert_eq!((c.refused_rate_limited, c.rate_limit_silenced), (5, 3));
}

#[test]
fn per_slash_24_the_addresses_of_one_network_share_a_budget() {
    let mut h = limited(20, 10);
    for d in 1..=10 {
        assert!(is_answer(
            &h.ask(at(&format!("198.51.100.{d}")), &padded("x"))
        ));
    }
    assert_eq!(
        error_code(h.ask(at("198.51.100.11"), &padded("x"))),
        ErrorCode::RateLimited
    );
    // The network was told: every other address of it gets silence.
    for d in 12..=60 {
        assert_eq!(h.ask(at(&format!("198.51.100.{d}")), &padded("x")), None);
    }
    assert_eq!(h.ask(at("198.51.100.1"), &padded("x")), None);
    // The next /24 is another network.
    assert!(is_answer(&h.ask(at("198.51.101.1"), &padded("x"))));
    assert_eq!(h.ap.counters().answered, 11);
    assert_eq!(h.ap.counters().rate_limit_silenced, 50);
}

#[test]
fn ipv6_a_slash_64_is_one_address_and_a_slash_56_one_network() {
    let mut h = limited(2, 5);
    // Two addresses of one /64: one client.
    assert!(is_answer(&h.ask(at("2001:db8:0:1::1"), &padded("x"))));
    assert!(is_answer(&h.ask(at("2001:db8:0:1::2"), &padded("x"))));
    assert_eq!(
        error_code(h.ask(at("2001:db8:0:1:ffff::3"), &padded("x"))),
        ErrorCode::RateLimited
    );
    // Other /64s of the same /56 share its budget of 5 (2 spent).
    assert!(is_answer(&h.ask(at("2001:db8:0:2::1"), &padded("x"))));
    assert!(is_answer(&h.ask(at("2001:db8:0:3::1"), &padded("x"))));
    assert!(is_answer(&h.ask(at("2001:db8:0:ff::1"), &padded("x"))));
    assert_eq!(
        error_code(h.ask(at("2001:db8:0:4::1"), &padded("x"))),
        ErrorCode::RateLimited
    );
    // 2001:db8:0:100::/56 is another network.
    assert!(is_answer(&h.ask(at("2001:db8:0:100::1"), &padded("x"))));
}

#[test]
fn a_full_table_never_resets_a_victims_window() {
    let mut cfg = config();
    cfg.max_requests_per_ip = 3;
    cfg.max_requests_per_prefix = 30;
    cfg.max_tracked_ips = 4;
    cfg.max_tracked_prefixes = 4;
    let mut h = Harness::new(cfg);
    // The victim spends two of its three requests.
    assert!(is_answer(&h.ask(alice(), &padded("x"))));
    assert!(is_answer(&h.ask(alice(), &padded("x"))));
    // An attacker sprays requests from 200 addresses in 200 networks, within the window.
    for i in 0..200u32 {
        let ip = IpAddr::from([203, (i / 200) as u8, (i % 200) as u8, 9]);
        h.udp(SocketAddr::new(ip, 1), &padded("x"));
        let (addresses, networks) = h.ap.tracked_clients();
        assert!(
            addresses <= 4 && networks <= 4,
            "tables grew past their bounds"
        );
    }
    assert!(h.ap.counters().rate_limit_overflow > 0);
    // The attacker's spray was served from one shared overflow budget, not 200.
    assert!(h.ap.counters().answered <= 2 + 3 * 3 + 30);
    // The victim's window was not forgotten: one request left, then refused.
    assert!(is_answer(&h.ask(alice(), &padded("x"))));
    assert_eq!(
        error_code(h.ask(alice(), &padded("x"))),
        ErrorCode::RateLimited
    );
    // Once every window ends, the tables are empty and nothing is pending.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ap.tracked_clients(), (0, 0));
    assert_eq!(h.ap.poll_timeout(), None);
    assert!(is_answer(&h.ask(alice(), &padded("x"))));
}

#[test]
fn rate_limits_count_requests_over_tcp_too() {
    let mut h = limited(2, 100);
    assert!(is_answer(&h.ask(alice(), &padded("x"))));
    h.accept(1, alice());
    let mut two = padded("x");
    two.extend(padded("x"));
    let out = h.tcp(1, &two);
    let sent = tcp_sent(&out, 1);
    assert_eq!(sent.len(), 2, "one answer, then RateLimited");
    assert!(matches!(
        Message::decode_datagram(&sent[1]),
        Ok(Message::Error {
            code: ErrorCode::RateLimited,
            ..
        })
    ));
    assert!(tcp_closed(&out, 1));
    // Told: a new connection's request is closed in silence.
    h.accept(2, alice());
    let out = h.tcp(2, &padded("x"));
    assert!(tcp_sent(&out, 2).is_empty());
    assert!(tcp_closed(&out, 2));
}
