//! SIGTERM under load, on real sockets (loopback only): while two calls talk through the relay
//! (tunnels and media active) and every attack of `attack_support` runs (a UDP media flood,
//! slowloris on the relay, the access point and the metrics endpoint, an access-point request
//! flood from one `/24`), `serve` receives SIGTERM: it closes every session with
//! `ShuttingDown`, leaves none open, prints `stopped` and exits 0.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod attack_support;
mod real_support;

use std::time::Duration;

use attack_support::*;
use real_support::*;

const B: Block = Block(82);

#[test]
fn sigterm_under_load_closes_every_session_and_exits_0() {
    let dir = TempDir::new("shutdown-load");
    let key = random_key();
    let _edge = start_edge(B, &dir);
    let mut serve = start_serve("serve", &dir, &config(B), &key);
    let relay = format!("relay=\"{}\"", B.relay(1));

    let attacks = Attacks::start(targets(B));
    wait_for_attacks(B);
    // Long calls: they are still talking when the signal comes.
    let mut alice = start_call(B, &dir, "alice", 1, 10.0, &[ENABLE], &[]);
    let mut bob = start_call(B, &dir, "bob", 2, 10.0, &[ENABLE], &[]);
    let before = wait_for_metrics(B, "two sessions relaying media", |t| {
        metric(t, "cloudproxy_relay_sessions", &relay) == 2
            && metric(
                t,
                "cloudproxy_relay_media_packets_total",
                &format!("{relay},direction=\"down\""),
            ) >= 100
    });
    assert_eq!(metric(&before, "cloudproxy_shutting_down", ""), 0);

    let status = serve.terminate(Duration::from_secs(15));
    let seen = attacks.stop();
    let log = serve.stderr();
    assert!(status.success(), "serve exited {status}\n{log}");
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert!(log.contains("\"reason\":\"ShuttingDown\""), "{log}");
    assert!(log.contains("sessions_left=0"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(
        serve.stdout().last().map(String::as_str),
        Some("cloudproxy serve: stopped")
    );

    // Both calls had joined and lost their relay with it (ending disconnected, exit 1).
    for call in [&mut alice, &mut bob] {
        let report = finish_call(call, Duration::from_secs(60));
        assert!(report.joined(), "{report:#?}");
        assert!(report.received() > 0, "{report:#?}");
        assert_eq!(report.json["verdict"], "ended disconnected", "{report:#?}");
    }
    eprintln!("shutdown under load: attacks {seen:?}");
}
