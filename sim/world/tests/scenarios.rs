//! Every scenario of the catalogue, as a deterministic test with a fixed seed, its event
//! summary pinned by an insta snapshot (counts and key events, not Debug dumps), and the
//! determinism self-check.

use std::fmt::Write as _;

use cloudproxy_sim::scenario::{find, RunResult};

const SEED: u64 = 1;

fn run(name: &str) -> RunResult {
    let scenario = find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let result = scenario.run(SEED);
    if !result.passed() {
        let failed: Vec<String> = result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("  {}: {}", c.name, c.detail))
            .collect();
        panic!(
            "{name} failed:\n{}\nreproduce: {}",
            failed.join("\n"),
            result.reproduce()
        );
    }
    result
}

/// What a scenario did, in a form that changes only when behaviour does.
fn summary(result: &RunResult) -> String {
    let mut out = String::new();
    writeln!(out, "scenario {} seed {}", result.name, result.seed).unwrap();
    for check in &result.checks {
        writeln!(
            out,
            "check {}: {}",
            if check.ok { "ok" } else { "FAILED" },
            check.name
        )
        .unwrap();
    }
    for (name, c) in &result.outcome.clients {
        let codes: Vec<String> = c
            .codes
            .iter()
            .map(|(op, code)| format!("{op}={code}"))
            .collect();
        writeln!(
            out,
            "client {name}: codes [{}] joined={} proxy_type={:?} media_path={:?} reconnects={} outages={} signalling {}/{} acked media_received>0={}",
            codes.join(" "),
            c.join_time.is_some(),
            c.proxy.map(|(t, _)| t),
            c.media_path,
            c.reconnects,
            c.outages.len(),
            c.signalling_acked.len(),
            c.signalling_sent,
            c.media_received() > 0,
        )
        .unwrap();
    }
    for (ip, r) in &result.outcome.relays {
        writeln!(
            out,
            "relay {ip}: sessions opened={} closed={} upstream destinations={}",
            r.counters.sessions_opened,
            r.counters.sessions_closed,
            r.upstream_destinations.len()
        )
        .unwrap();
    }
    for (name, f) in &result.outcome.firewalls {
        writeln!(
            out,
            "firewall {name}: tcp pass/drop/reject={}/{}/{} udp denied>0={}",
            f.tcp_pass,
            f.tcp_drop,
            f.tcp_reject,
            f.udp_deny > 0
        )
        .unwrap();
    }
    writeln!(out, "faults {:?}", result.outcome.faults_applied).unwrap();
    out
}

fn check_and_snapshot(name: &str) {
    let result = run(name);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots/sim"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("scenario_{name}"), summary(&result)));
}

#[test]
fn direct_blocked() {
    check_and_snapshot("direct-blocked");
}

#[test]
fn direct_open() {
    check_and_snapshot("direct-open");
}

#[test]
fn proxy_default() {
    check_and_snapshot("proxy-default");
}

#[test]
fn proxy_ip_list() {
    check_and_snapshot("proxy-ip-list");
}

#[test]
fn ap_failover() {
    check_and_snapshot("ap-failover");
}

#[test]
fn relay_crash() {
    check_and_snapshot("relay-crash");
}

#[test]
fn udp_blocked() {
    check_and_snapshot("udp-blocked");
}

#[test]
fn socks5() {
    check_and_snapshot("socks5");
}

#[test]
fn socks5_no_udp() {
    check_and_snapshot("socks5-no-udp");
}

#[test]
fn in_channel_change() {
    check_and_snapshot("in-channel-change");
}

#[test]
fn same_seed_same_trace_and_different_seed_different_trace() {
    let scenario = find("proxy-default").unwrap();
    let a = scenario.run(7).outcome.trace;
    let b = scenario.run(7).outcome.trace;
    assert!(a.len() > 10);
    assert_eq!(
        a.lines(),
        b.lines(),
        "the same seed must give the same trace, byte for byte"
    );
    let c = scenario.run(8).outcome.trace;
    assert_ne!(
        a.hash(),
        c.hash(),
        "a different seed must give a different trace"
    );
}

#[test]
fn lossy_media() {
    check_and_snapshot("lossy-media");
}

#[test]
fn partition_heal() {
    check_and_snapshot("partition-heal");
}

#[test]
fn open_relay_attack() {
    check_and_snapshot("open-relay-attack");
}

#[test]
fn ticket_expiry() {
    check_and_snapshot("ticket-expiry");
}

#[test]
fn crowd() {
    check_and_snapshot("crowd");
}

/// The canary: a relay that forgets to check destinations (a planted bug behind a test-only
/// switch) must be caught by the safety oracle.
#[test]
fn canary_relay_without_destination_check_is_caught_by_the_safety_oracle() {
    let scenario = find("open-relay-attack").unwrap();
    let mut spec = (scenario.build)(SEED);
    spec.canary = true;
    let outcome = cloudproxy_sim::world::run_world(&spec);
    let checks = cloudproxy_sim::scenario::checks_for(scenario, &spec, &outcome);
    let safety = checks
        .iter()
        .find(|c| c.name == "safety: no relay forwards outside SD-RTN")
        .expect("the safety check runs");
    assert!(!safety.ok, "the canary went unnoticed: {}", safety.detail);
    assert!(safety.detail.contains("10.0.0.1:22"), "{}", safety.detail);
}

/// Differential: the same call, direct on an open network and through the cloud proxy behind
/// the seed firewall, delivers the same application messages.
#[test]
fn differential_direct_and_proxied_deliver_the_same_messages() {
    let direct_spec = (find("direct-open").unwrap().build)(SEED);
    let proxied_spec = (find("proxy-default").unwrap().build)(SEED);
    assert_eq!(direct_spec.duration, proxied_spec.duration);
    let direct = cloudproxy_sim::world::run_world(&direct_spec);
    let proxied = cloudproxy_sim::world::run_world(&proxied_spec);
    let checks = cloudproxy_sim::scenario::differential(&direct_spec, &direct, &proxied);
    assert!(!checks.is_empty());
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
