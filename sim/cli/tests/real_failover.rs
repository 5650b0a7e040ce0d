//! A relay killed mid-call on real sockets: the access points run in one `serve` instance and
//! each relay in its own; the relay instance carrying the call is killed (SIGKILL, by process
//! id) and the clients fail over to the other relay, where media flows again.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::time::{Duration, Instant};

use real_support::*;

const SECS: f64 = 12.0;

#[test]
fn a_relay_killed_mid_call_the_clients_fail_over_to_the_other_relay() {
    let b = Block(41);
    let dir = TempDir::new("failover");
    let key = random_key();
    let relays = [b.relay(1), b.relay(2)];
    let _edge = start_edge(b, &dir);
    let _aps = start_serve(
        "aps",
        &dir,
        &serve_config(b, &[b.ap()], &[], &relays, b.metrics(1), ""),
        &key,
    );
    let mut relay_procs = [
        start_serve(
            "relay1",
            &dir,
            &serve_config(b, &[], &relays[..1], &relays, b.metrics(2), ""),
            &key,
        ),
        start_serve(
            "relay2",
            &dir,
            &serve_config(b, &[], &relays[1..], &relays, b.metrics(3), ""),
            &key,
        ),
    ];
    let metrics = [b.metrics(2), b.metrics(3)];
    let sessions = |i: usize| {
        metric(
            &scrape(metrics[i]),
            "cloudproxy_relay_sessions",
            &format!("relay=\"{}\"", relays[i]),
        )
    };

    let started = Instant::now();
    let mut alice = start_call(b, &dir, "alice", 1, SECS, &[ENABLE], &[]);
    let mut bob = start_call(b, &dir, "bob", 2, SECS, &[ENABLE], &[]);

    // Both in the call, and talking for a while.
    let deadline = Instant::now() + Duration::from_secs(8);
    while sessions(0) + sessions(1) < 2 {
        assert!(
            Instant::now() < deadline,
            "the calls did not reach the relays"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    let victim = if sessions(0) > 0 { 0 } else { 1 };
    let survivor = 1 - victim;
    let on_victim = sessions(victim);
    let killed_at = started.elapsed();
    relay_procs[victim].kill();

    let alice = finish_call(&mut alice, Duration::from_secs(30));
    let bob = finish_call(&mut bob, Duration::from_secs(30));
    let survivor_addr = format!("{}:4000", relays[survivor]);
    let resumed_from = killed_at.as_secs() + 4;
    for (report, other) in [(&alice, 2), (&bob, 1)] {
        assert!(report.status.success() && report.joined(), "{report:#?}");
        assert_eq!(report.relay(), survivor_addr, "{report:#?}");
        for outage in report.json["outages_ms"].as_array().unwrap() {
            let (lost, back) = (outage[0].as_u64().unwrap(), outage[1].as_u64());
            let back = back.unwrap_or_else(|| panic!("an outage never ended: {report:#?}"));
            assert!(
                back - lost <= 8_000,
                "outage of {} ms: {report:#?}",
                back - lost
            );
        }
        // Media flows again after the fail-over: the other's packets keep arriving.
        let after: u64 = (resumed_from..SECS as u64)
            .map(|s| report.media_in_second(s))
            .sum();
        assert!(
            after >= 50,
            "only {after} packets from second {resumed_from} on (relay killed at {killed_at:?}): {report:#?}"
        );
        assert!(report.received_from(other) > 0);
    }
    let reconnects = alice.reconnects() + bob.reconnects();
    assert!(
        reconnects >= on_victim,
        "{on_victim} client(s) were on the killed relay, {reconnects} reconnect(s)"
    );
    let text = scrape(metrics[survivor]);
    let opened = metric(
        &text,
        "cloudproxy_relay_sessions_opened_total",
        &format!("relay=\"{}\"", relays[survivor]),
    );
    assert!(opened >= 2, "{text}");
}
