//! Failing over: AP addresses and ports, relays, DNS, backoff and giving up.

use super::*;
use crate::client::backoff;

#[test]
fn type2_asks_the_ip_list_without_dns() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1", "10.1.0.2"], 0)));
    // No Resolve: the first attempt is already out.
    let first = addr("10.1.0.1:1080");
    h.take_udp(first);
    h.take_connect(first);
    h.assert_quiet();
}

#[test]
fn ap_fails_over_across_ports_then_addresses() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1", "10.1.0.2"], 0)));
    let order = [
        "10.1.0.1:1080",
        "10.1.0.1:8000",
        "10.1.0.1:25000",
        "10.1.0.1:9700",
        "10.1.0.2:1080",
    ]
    .map(addr);

    // 1080: connected, but nothing comes back within the attempt timeout.
    let req = request_id(&h.take_udp(order[0]));
    let c0 = h.take_connect(order[0]);
    h.connected(c0);
    h.take_sent(c0);
    assert_eq!(h.fire_next_timer(), DEFAULT_AP_ATTEMPT_TIMEOUT);
    h.take_close(c0);
    // 8000: TCP refused: the next attempt starts at once.
    assert_eq!(request_id(&h.take_udp(order[1])), req, "one id per round");
    let c1 = h.take_connect(order[1]);
    h.input(ClientInput::TcpFailed {
        conn: c1,
        reason: "refused",
    });
    h.take_udp(order[2]);
    let c2 = h.take_connect(order[2]);
    assert!(!h.has_close(c1), "a refused connection is not closed again");
    // 25000: the AP answers garbage on TCP: next.
    h.connected(c2);
    h.take_sent(c2);
    h.tcp_data(c2, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    h.take_close(c2);
    h.take_udp(order[3]);
    let c3 = h.take_connect(order[3]);
    // 9700: times out too; then the second address.
    h.fire_next_timer();
    h.take_close(c3);
    h.take_udp(order[4]);
    let c4 = h.take_connect(order[4]);
    h.assert_quiet();

    // Stale and foreign answers are ignored: another request id, a source never asked.
    let relays = [relay("10.2.0.1", 4600)];
    let ignored = h.client.stats().ignored_inputs;
    h.udp_data(order[4], &ap_answer(req.wrapping_add(1), &relays));
    h.udp_data(addr("10.9.9.9:1080"), &ap_answer(req, &relays));
    h.udp_data(order[4], b"\xC1\x0D garbage");
    h.assert_quiet();
    assert_eq!(h.client.stats().ignored_inputs, ignored + 3);

    // The answer comes over TCP, framed, in pieces.
    h.connected(c4);
    assert_eq!(request_id(&h.take_sent(c4)), req);
    let answer = ap_answer(req, &relays);
    h.tcp_data(c4, &answer[..10]);
    h.assert_quiet();
    h.tcp_data(c4, &answer[10..]);
    h.take_close(c4);
    h.take_connect(addr("10.2.0.1:4000"));
    h.assert_quiet();
    assert_eq!(h.client.state(), ConnectionState::Connecting);
}

#[test]
fn a_late_udp_answer_from_an_earlier_attempt_still_wins() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1", "10.1.0.2"], 8000)));
    let (a, b) = (addr("10.1.0.1:8000"), addr("10.1.0.2:8000"));
    let req = request_id(&h.take_udp(a));
    let ca = h.take_connect(a);
    h.fire_next_timer();
    h.take_close(ca);
    h.take_udp(b);
    let cb = h.take_connect(b);
    h.udp_data(a, &ap_answer(req, &[relay("10.2.0.1", 4600)]));
    h.take_close(cb);
    h.take_connect(addr("10.2.0.1:4000"));
    h.assert_quiet();
}

#[test]
fn an_unanswered_round_backs_off_and_starts_over() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let ap = addr("10.1.0.1:8000");
    let req = request_id(&h.take_udp(ap));
    let conn = h.take_connect(ap);
    h.input(ClientInput::TcpFailed {
        conn,
        reason: "refused",
    });
    // The last attempt waits out its timer (a UDP answer could still come).
    h.assert_quiet();
    assert_eq!(h.fire_next_timer(), DEFAULT_AP_ATTEMPT_TIMEOUT);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::ApUnreachable
    );
    let waited = h.fire_next_timer();
    let (lo, hi) = backoff::bounds(DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, 50, 0);
    assert!(lo <= waited && waited <= hi, "{waited:?}");
    assert_ne!(request_id(&h.take_udp(ap)), req);
    h.take_connect(ap);
    h.assert_quiet();
}

#[test]
fn relay_death_reconnects_to_the_next_relay_with_growing_backoff() {
    let mut cfg = config(ip_list(&["10.1.0.1", "10.1.0.2"], 8000));
    cfg.give_up_after = Duration::from_secs(600);
    let mut h = Harness::new(cfg);
    let ap = addr("10.1.0.1:8000");
    let relays = [
        relay("10.2.0.1", 4600),
        relay("10.2.0.2", 4600),
        relay("10.2.0.3", 4600),
    ];
    let c = open_cloud(&mut h, ap, &relays, 4600);
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    h.udp_data(
        relay_udp,
        &encode(&Message::KeepaliveAck {
            session_id: c.session_id,
            seq: 1,
        }),
    );
    h.take_path(MediaPath::Udp);

    // The relay resets the tunnel.
    h.input(ClientInput::TcpClosed { conn: c.tunnel });
    assert!(!h.has_close(c.tunnel));
    h.take_path(MediaPath::None);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::RelayLost
    );
    h.assert_quiet();
    // Stale input about the dead tunnel is ignored.
    h.tcp_data(c.tunnel, b"late bytes");
    h.input(ClientInput::TcpClosed { conn: c.tunnel });
    h.assert_quiet();

    // Backoff, then the AP that answered last is asked first; it names the same relays, and
    // the client prefers the one after the relay it lost. That relay refuses TCP, and so does
    // the next: the round fails, and the backoff grows.
    let mut waits = Vec::new();
    for round in 0..4u32 {
        let waited = h.fire_next_timer();
        let (lo, hi) = backoff::bounds(DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, 50, round);
        assert!(lo <= waited && waited <= hi, "round {round}: {waited:?}");
        waits.push(waited);
        let req = request_id(&h.take_udp(ap));
        let ap_conn = h.take_connect(ap);
        h.udp_data(ap, &ap_answer(req, &relays));
        h.take_close(ap_conn);
        let next = h.take_connect(addr("10.2.0.2:4000"));
        h.input(ClientInput::TcpFailed {
            conn: next,
            reason: "refused",
        });
        let after = h.take_connect(addr("10.2.0.3:4000"));
        h.input(ClientInput::TcpFailed {
            conn: after,
            reason: "refused",
        });
        let last = h.take_connect(addr("10.2.0.1:4000"));
        h.input(ClientInput::TcpFailed {
            conn: last,
            reason: "refused",
        });
        h.assert_quiet();
    }
    assert!(waits[3] > waits[0], "{waits:?}");
    // Nominal delays 250, 500, 1000, 2000 ms: jitter of ±50% cannot hide a factor of 8.
    assert!(waits[3] >= ms(1_000));

    // This time the next relay accepts: connected again, counted as a reconnect.
    h.fire_next_timer();
    let req = request_id(&h.take_udp(ap));
    h.take_connect(ap);
    h.udp_data(ap, &ap_answer(req, &relays));
    let c2 = accept_tunnel(&mut h, ap, &relays[1], 4600);
    assert_eq!(c2.relay_tcp, addr("10.2.0.2:4000"));
    assert_eq!(h.client.stats().reconnects, 1);
    assert_eq!(h.client.stats().connections, 2);
}

#[test]
fn silent_keepalives_mean_a_dead_relay() {
    let mut h = Harness::new(config(ip_list(&["10.1.0.1"], 8000)));
    let c = open_cloud(
        &mut h,
        addr("10.1.0.1:8000"),
        &[relay("10.2.0.1", 4600)],
        4600,
    );
    let relay_udp = addr("10.2.0.1:4600");
    h.take_udp(relay_udp);
    h.udp_data(
        relay_udp,
        &encode(&Message::KeepaliveAck {
            session_id: c.session_id,
            seq: 1,
        }),
    );
    h.take_path(MediaPath::Udp);
    // Keepalives every second (the relay's interval); the relay falls silent.
    let mut sent = 0;
    let mut elapsed = Duration::ZERO;
    while h.client.state() == ConnectionState::Connected {
        elapsed += h.fire_next_timer();
        while h
            .out
            .iter()
            .any(|o| matches!(o, ClientOutput::UdpSend { to, .. } if *to == relay_udp))
        {
            h.take_udp(relay_udp);
            sent += 1;
        }
    }
    // Sent at 1, 2 and 3 s, none answered: at 4 s the relay is declared dead.
    assert_eq!(sent, DEFAULT_KEEPALIVE_MISSES);
    assert_eq!(elapsed, ms(4_000));
    h.take_close(c.tunnel);
    h.take_path(MediaPath::None);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::RelayLost
    );
    h.assert_quiet();
}

#[test]
fn gives_up_after_the_time_bound_and_says_what_was_tried() {
    let mut cfg = config(ip_list(&["10.1.0.1"], 8000));
    cfg.give_up_after = Duration::from_secs(10);
    let mut h = Harness::new(cfg);
    let start = h.now;
    let ap = addr("10.1.0.1:8000");
    while h.client.state() != ConnectionState::Failed {
        h.fire_next_timer();
        for o in std::mem::take(&mut h.out) {
            if let ClientOutput::TcpConnect { conn, .. } = o {
                h.input(ClientInput::TcpFailed {
                    conn,
                    reason: "refused",
                });
            }
        }
    }
    assert_eq!(
        h.now.saturating_duration_since(start),
        Duration::from_secs(10)
    );
    let StateReason::GaveUp(text) = h.take_state(ConnectionState::Failed) else {
        panic!()
    };
    assert!(text.contains(&format!("AP {ap}")), "{text}");
    assert!(text.contains("no access point answered"), "{text}");
    assert!(text.contains("10.0s"), "{text}");
    assert_eq!(h.client.poll_timeout(), None);
    // Failed is final until Leave.
    h.input(ClientInput::SendMedia { payload: b"x" });
    h.input(ClientInput::Leave);
    assert_eq!(
        h.take_state(ConnectionState::Disconnected),
        StateReason::Left
    );
}

#[test]
fn gives_up_after_the_attempt_bound() {
    let mut cfg = config(None);
    cfg.max_reconnect_attempts = Some(2);
    let mut h = Harness::new(cfg);
    for attempt in 0..3 {
        if attempt > 0 {
            h.fire_next_timer();
        }
        let conn = h.take_connect(sdrtn().signalling);
        h.input(ClientInput::TcpFailed {
            conn,
            reason: "unreachable",
        });
    }
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::DirectUnreachable
    );
    let StateReason::GaveUp(text) = h.take_state(ConnectionState::Failed) else {
        panic!()
    };
    assert!(text.contains("3 failed attempts"), "{text}");
    assert!(text.contains("edge 198.51.100.1:8443"), "{text}");
    assert_eq!(h.client.stats().reconnect_attempts, 2);
    h.assert_quiet();
}

#[test]
fn dns_failure_is_reported_and_retried() {
    let mut h = Harness::new(config(Some(ProxyServer::CloudDomain {
        domain: "ap.example".into(),
        port: 0,
    })));
    assert_eq!(h.take_resolve(), "ap.example");
    // An answer for another name is not ours.
    h.input(ClientInput::Resolved {
        name: "other.example",
        addrs: &[ip("10.0.0.1")],
    });
    h.assert_quiet();
    h.input(ClientInput::ResolveFailed {
        name: "ap.example",
        reason: "SERVFAIL",
    });
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::DnsFailed("ap.example: SERVFAIL".into())
    );
    h.fire_next_timer();
    assert_eq!(h.take_resolve(), "ap.example");
    // NXDOMAIN (an empty answer) fails the same way; the state stays Reconnecting.
    h.input(ClientInput::Resolved {
        name: "ap.example",
        addrs: &[],
    });
    h.assert_quiet();
    assert_eq!(h.client.state(), ConnectionState::Reconnecting);
    // A resolver that never answers times out.
    h.fire_next_timer();
    h.take_resolve();
    assert_eq!(h.fire_next_timer(), DEFAULT_RESOLVE_TIMEOUT);
    h.assert_quiet();
    let text = StateReason::DnsFailed("x".into()).to_string();
    assert_eq!(text, "DNS failed: x");
}

#[test]
fn duplicate_resolved_addresses_are_asked_once() {
    let mut h = Harness::new(config(Some(ProxyServer::CloudDomain {
        domain: "ap.example".into(),
        port: 9700,
    })));
    h.take_resolve();
    h.input(ClientInput::Resolved {
        name: "ap.example",
        addrs: &[ip("10.0.0.1"), ip("10.0.0.1"), ip("10.0.0.2")],
    });
    h.take_udp(addr("10.0.0.1:9700"));
    let c = h.take_connect(addr("10.0.0.1:9700"));
    h.input(ClientInput::TcpFailed {
        conn: c,
        reason: "",
    });
    h.take_udp(addr("10.0.0.2:9700"));
    h.take_connect(addr("10.0.0.2:9700"));
    h.assert_quiet();
}
