//! Racing (RFC 8305, beyond the seed): access-point candidates and relays tried staggered and
//! in parallel, the first answer winning, the losers closed and their late answers counted.

use super::*;
use crate::client::config::RaceConfig;

fn racing(proxy: Option<ProxyServer>, stagger_ms: u64, max_in_flight: usize) -> ClientConfig {
    ClientConfig {
        race: Some(RaceConfig {
            stagger: ms(stagger_ms),
            max_in_flight,
        }),
        ..config(proxy)
    }
}

#[test]
fn access_points_race_staggered_and_the_first_answer_wins() {
    let mut h = Harness::new(racing(ip_list(&["10.1.0.1", "10.1.0.2"], 8000), 250, 4));
    let (a, b) = (addr("10.1.0.1:8000"), addr("10.1.0.2:8000"));
    let req = request_id(&h.take_udp(a));
    let ca = h.take_connect(a);
    h.assert_quiet();
    // The next attempt starts one stagger later, while the first is still in flight.
    assert_eq!(h.fire_next_timer(), ms(250));
    assert_eq!(request_id(&h.take_udp(b)), req, "one id per round");
    let cb = h.take_connect(b);
    h.assert_quiet();
    assert!(!h.has_close(ca));

    // B answers first (over UDP): A's attempt, still in flight, is cancelled.
    h.udp_data(b, &ap_answer(req, &[relay("10.2.0.1", 4600)]));
    h.take_close(cb);
    h.take_close(ca);
    h.take_connect(addr("10.2.0.1:4000"));
    h.assert_quiet();
    assert_eq!(h.client.stats().race_attempts_cancelled, 1);

    // A's late answers, on UDP and on its closed connection, are ignored and counted.
    let ignored = h.client.stats().ignored_inputs;
    h.udp_data(a, &ap_answer(req, &[relay("10.2.0.9", 4600)]));
    h.connected(ca);
    h.tcp_data(ca, &ap_answer(req, &[relay("10.2.0.9", 4600)]));
    h.assert_quiet();
    let stats = h.client.stats();
    assert_eq!(stats.race_late_answers, 3);
    assert_eq!(stats.ignored_inputs, ignored + 3);
    // The winner's own connection is not a loser: nothing late about it.
    h.tcp_data(cb, b"x");
    assert_eq!(h.client.stats().race_late_answers, 3);
}

#[test]
fn a_refused_attempt_starts_the_next_at_once() {
    let mut h = Harness::new(racing(
        ip_list(&["10.1.0.1", "10.1.0.2", "10.1.0.3"], 8000),
        250,
        4,
    ));
    h.take_udp(addr("10.1.0.1:8000"));
    let c1 = h.take_connect(addr("10.1.0.1:8000"));
    h.advance(ms(40));
    h.input(ClientInput::TcpFailed {
        conn: c1,
        reason: "refused",
    });
    // No stagger to wait: the next candidate is asked at 40 ms, and the one after at 290 ms.
    h.take_udp(addr("10.1.0.2:8000"));
    h.take_connect(addr("10.1.0.2:8000"));
    h.assert_quiet();
    assert_eq!(h.fire_next_timer(), ms(250));
    h.take_udp(addr("10.1.0.3:8000"));
    h.take_connect(addr("10.1.0.3:8000"));
    h.assert_quiet();
}

#[test]
fn racing_order_changes_address_and_port_and_reaches_the_third_host_at_500_ms() {
    let aps = [
        "47.74.211.17",
        "52.80.192.229",
        "52.52.84.170",
        "47.96.234.219",
    ];
    let mut h = Harness::new(racing(ip_list(&aps, 0), 250, 4));
    let mut started = Vec::new();
    for _ in 0..3 {
        let to = h.take("an AP datagram", |o| match o {
            ClientOutput::UdpSend { to, .. } => Some(*to),
            _ => None,
        });
        h.take_connect(to);
        started.push((h.now, to));
        h.assert_quiet();
        h.fire_next_timer();
    }
    let t0 = started[0].0;
    let got: Vec<(u64, String)> = started
        .iter()
        .map(|(t, a)| {
            (
                t.saturating_duration_since(t0).as_millis() as u64,
                a.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "47.74.211.17:1080".to_owned()),
            (250, "52.80.192.229:8000".to_owned()),
            (500, "52.52.84.170:25000".to_owned()),
        ]
    );
}

#[test]
fn attempts_in_flight_are_bounded() {
    let ips = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"];
    let mut h = Harness::new(racing(ip_list(&ips, 8000), 100, 2));
    h.take_udp(addr("10.1.0.1:8000"));
    h.take_connect(addr("10.1.0.1:8000"));
    assert_eq!(h.fire_next_timer(), ms(100));
    h.take_udp(addr("10.1.0.2:8000"));
    h.take_connect(addr("10.1.0.2:8000"));
    // Two in flight: the third waits until one ends (the first times out at 1 s).
    assert_eq!(h.fire_next_timer(), ms(900));
    h.take_close(ConnId(1));
    h.take_udp(addr("10.1.0.3:8000"));
    h.take_connect(addr("10.1.0.3:8000"));
    h.assert_quiet();
}

#[test]
fn an_unanswered_race_fails_when_the_last_attempt_runs_out() {
    let mut h = Harness::new(racing(ip_list(&["10.1.0.1", "10.1.0.2"], 8000), 250, 4));
    let start = h.now;
    for _ in 0..2 {
        for o in std::mem::take(&mut h.out) {
            if let ClientOutput::TcpConnect { conn, .. } = o {
                h.input(ClientInput::TcpFailed {
                    conn,
                    reason: "refused",
                });
            }
        }
    }
    // Both refused at once; the round still waits out the last attempt for a UDP answer.
    assert!(h.out.is_empty());
    assert_eq!(h.fire_next_timer(), DEFAULT_AP_ATTEMPT_TIMEOUT);
    assert_eq!(
        h.now.saturating_duration_since(start),
        DEFAULT_AP_ATTEMPT_TIMEOUT
    );
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::ApUnreachable
    );
}

#[test]
fn relays_race_and_the_first_tunnel_accept_wins() {
    let mut h = Harness::new(racing(ip_list(&["10.1.0.1"], 8000), 250, 4));
    let ap = addr("10.1.0.1:8000");
    let req = request_id(&h.take_udp(ap));
    let ap_conn = h.take_connect(ap);
    let relays = [relay("10.2.0.1", 4600), relay("10.2.0.2", 4600)];
    h.udp_data(ap, &ap_answer(req, &relays));
    h.take_close(ap_conn);
    // The first relay is silent (its host is down): the second is tried 250 ms later, not
    // after the 5 s connect timeout.
    let dead = h.take_connect(addr("10.2.0.1:4000"));
    h.assert_quiet();
    assert_eq!(h.fire_next_timer(), ms(250));
    let c = accept_tunnel(&mut h, ap, &relays[1], 4600);
    assert_eq!(c.relay_tcp, addr("10.2.0.2:4000"));
    h.take_close(dead);
    assert_eq!(h.client.stats().race_attempts_cancelled, 1);
    // The dead relay's late bytes are ignored and counted.
    h.tcp_data(dead, &tunnel_accept(9, 4600, 1_000));
    assert_eq!(h.client.stats().race_late_answers, 1);
    assert_eq!(h.client.state(), ConnectionState::Connected);
}

#[test]
fn a_relay_refusing_with_a_ticket_error_ends_the_race() {
    let mut h = Harness::new(racing(ip_list(&["10.1.0.1"], 8000), 250, 4));
    let ap = addr("10.1.0.1:8000");
    let req = request_id(&h.take_udp(ap));
    let ap_conn = h.take_connect(ap);
    let relays = [relay("10.2.0.1", 4600), relay("10.2.0.2", 4600)];
    h.udp_data(ap, &ap_answer(req, &relays));
    h.take_close(ap_conn);
    let first = h.take_connect(addr("10.2.0.1:4000"));
    h.fire_next_timer();
    let second = h.take_connect(addr("10.2.0.2:4000"));
    h.connected(second);
    h.take_sent(second);
    let refusal = encode(&Message::Error {
        code: crate::wire::ErrorCode::TicketExpired,
        reason: String::new(),
    });
    h.tcp_data(second, &refusal);
    // Both closed; a new ticket is needed.
    h.take_close(second);
    h.take_close(first);
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::TunnelRefused(crate::wire::ErrorCode::TicketExpired)
    );
}

#[test]
fn the_same_race_runs_the_same_way_every_time() {
    let run = || {
        let ips = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];
        let mut h = Harness::new(racing(ip_list(&ips, 0), 250, 3));
        let mut log = Vec::new();
        for _ in 0..12 {
            log.extend(std::mem::take(&mut h.out));
            h.fire_next_timer();
        }
        format!("{log:?}")
    };
    assert_eq!(run(), run());
}

#[test]
fn without_racing_a_refusal_of_the_last_attempt_ends_the_round_at_once() {
    let refusal = encode(&Message::Error {
        code: crate::wire::ErrorCode::RateLimited,
        reason: String::new(),
    });
    let mut h = Harness::new(config(ip_list(&["10.1.0.1", "10.1.0.2"], 8000)));
    let (a, b) = (addr("10.1.0.1:8000"), addr("10.1.0.2:8000"));
    h.take_udp(a);
    let ca = h.take_connect(a);
    h.input(ClientInput::TcpFailed {
        conn: ca,
        reason: "refused",
    });
    h.take_udp(b);
    h.take_connect(b);
    // The first attempt's UDP could still answer, but it no longer holds the round: the last
    // attempt's refusal ends it now, as the seed-era client did.
    h.udp_data(b, &refusal);
    h.take_close(ConnId(2));
    assert_eq!(
        h.take_state(ConnectionState::Reconnecting),
        StateReason::ApRefused(crate::wire::ErrorCode::RateLimited)
    );
}

#[test]
fn racing_an_earlier_attempt_still_holds_the_round_after_a_refusal() {
    let refusal = encode(&Message::Error {
        code: crate::wire::ErrorCode::RateLimited,
        reason: String::new(),
    });
    let mut h = Harness::new(racing(ip_list(&["10.1.0.1", "10.1.0.2"], 8000), 250, 4));
    let (a, b) = (addr("10.1.0.1:8000"), addr("10.1.0.2:8000"));
    let req = request_id(&h.take_udp(a));
    let ca = h.take_connect(a);
    h.input(ClientInput::TcpFailed {
        conn: ca,
        reason: "refused",
    });
    h.take_udp(b);
    h.take_connect(b);
    h.udp_data(b, &refusal);
    h.take_close(ConnId(2));
    h.assert_quiet();
    // A's UDP answer, within its time, still wins.
    h.advance(ms(500));
    h.udp_data(a, &ap_answer(req, &[relay("10.2.0.1", 4600)]));
    h.take_connect(addr("10.2.0.1:4000"));
    h.assert_quiet();
}
