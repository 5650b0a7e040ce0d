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
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/sim"));
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
