//! Oracles that can fail: each check that was once vacuously true (it passed when what it
//! speaks of never happened) is fed a whole run where it must fail, and says why.

use std::time::Duration;

use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::scenario::{checks_for, find, swarm_checks, Check, PolicyFile, RunOptions};
use cloudproxy_sim::world::{ip, run_world, Fault, WorldSpec};

/// Runs scenario `name` (seed 1) with `change` applied to its world; returns its checks.
fn checks_of(name: &str, change: impl FnOnce(&mut WorldSpec)) -> Vec<Check> {
    let scenario = find(name).unwrap();
    let mut spec = scenario.world(1);
    change(&mut spec);
    let outcome = run_world(&spec);
    checks_for(scenario, &spec, &outcome)
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} among {checks:#?}"))
}

fn must_fail(checks: &[Check], name: &str, detail: &str) {
    let c = check(checks, name);
    assert!(!c.ok, "{name:?} passed: {}", c.detail);
    assert!(
        c.detail.contains(detail),
        "{name:?} fails, but its detail does not say {detail:?}: {}",
        c.detail
    );
}

#[test]
fn crashing_the_relay_of_a_client_that_holds_none_fails_the_run_with_the_reason() {
    // At 0 s alice has not joined yet: there is no relay in use to crash.
    let checks = checks_of("relay-crash", |spec| {
        spec.faults = vec![(Duration::ZERO, Fault::CrashRelayOf("alice".into()))];
    });
    must_fail(
        &checks,
        "every scheduled fault took effect",
        "crash the relay alice uses: alice holds no relay",
    );
    must_fail(
        &checks,
        "the relay alice was using was crashed",
        "did nothing: alice holds no relay",
    );
    // And the scenario's own claim of a recovery has nothing to stand on.
    assert!(!check(&checks, "alice reconnects").ok);
}

#[test]
fn faults_on_hosts_that_are_not_servers_or_due_after_the_end_fail_and_never_panic() {
    let checks = checks_of("proxy-default", |spec| {
        spec.faults = vec![
            (Duration::from_secs(1), Fault::Crash(ip("198.51.100.7"))),
            (Duration::from_secs(1), Fault::Crash(ip("10.1.0.10"))),
            (Duration::from_secs(2), Fault::CrashRelayOf("nobody".into())),
            (Duration::from_secs(3), Fault::Crash(ip("47.74.211.17"))),
            (Duration::from_secs(4), Fault::Crash(ip("47.74.211.17"))),
            (Duration::from_secs(500), Fault::DnsOutage(true)),
        ];
    });
    let name = "every scheduled fault took effect";
    for why in [
        "crash 198.51.100.7: no host 198.51.100.7 in this world",
        "crash 10.1.0.10: 10.1.0.10 runs clients, not a server",
        "no client named \"nobody\"",
        "at 4.000 s, crash 47.74.211.17: 47.74.211.17 is already down",
        "DNS outage starts: due at 500.000 s, after the run ended",
    ] {
        must_fail(&checks, name, why);
    }
    assert!(
        !check(&checks, name).detail.contains("at 3.000 s"),
        "the first crash of a running AP took effect"
    );
}

#[test]
fn ticket_expiry_without_a_reconnect_does_not_count_the_first_tickets_as_fresh_ones() {
    // The first AP answers (two per client) used to satisfy "answered >= 3".
    let checks = checks_of("ticket-expiry", |spec| spec.faults.clear());
    must_fail(
        &checks,
        "the reconnect fetched a fresh ticket from the access point",
        "0 access point answers to 10.1.0.10 after 15 s",
    );
}

#[test]
fn ap_failover_with_every_access_point_alive_is_not_a_failover() {
    // Without the crashes the client's first access point answers: nothing failed over, though
    // the call itself works (the old checks all passed).
    let checks = checks_of("ap-failover", |spec| spec.faults.clear());
    assert!(check(&checks, "alice joins").ok);
    must_fail(
        &checks,
        "the dead access points answered nothing and a live one answered",
        "answers per access point: [",
    );
}

#[test]
fn lossy_media_without_its_impairments_fails_its_evidence_checks() {
    let checks = checks_of("lossy-media", |spec| spec.faults.clear());
    must_fail(&checks, "the impairments really happened", "lost: 0");
    // The links' own latency spread reorders a few packets of any call: reordering alone
    // used to pass this check without a single impairment.
    must_fail(
        &checks,
        "receivers saw the loss and the duplication",
        "0 lost, 0 duplicated",
    );
}

#[test]
fn swarm_liveness_fails_when_nobody_joined() {
    // Behind a policy that drops everything nobody joins; the old liveness oracle judged only
    // clients that had joined, so it judged nobody and the swarm run passed.
    let scenario = find("proxy-default").unwrap();
    let options = RunOptions {
        seed: 3,
        swarm: true,
        policy: Some(PolicyFile {
            path: "deny.toml".into(),
            policy: "default = \"drop\"\n".parse::<Policy>().unwrap(),
        }),
    };
    let result = scenario.run_with(&options);
    must_fail(
        &result.checks,
        "liveness: alice hears media again within 20 s of the heal",
        "never joined, so nothing recovered",
    );
    assert!(!result.passed());
    assert_eq!(
        result.reproduce(),
        "cargo run --release -- run proxy-default --seed 3 --swarm --policy deny.toml"
    );
    // The same outcome through the public swarm checks gives the same verdicts.
    let (spec, _) = scenario.spec(&options);
    assert_eq!(swarm_checks(&spec, &result.outcome), result.checks);
}

#[test]
fn swarm_liveness_requires_clients_meant_to_stay_out_to_stay_out() {
    // direct-blocked's clients are meant never to join: under an open policy they do.
    let scenario = find("direct-blocked").unwrap();
    let options = RunOptions {
        seed: 15,
        swarm: true,
        policy: Some(PolicyFile {
            path: "open.toml".into(),
            policy: Policy::open(),
        }),
    };
    let result = scenario.run_with(&options);
    must_fail(
        &result.checks,
        "liveness: alice stays out, as the scenario means",
        "joined in",
    );
}
