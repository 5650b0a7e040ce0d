//! The oracles fed outcomes where they must fail (built by hand: the scenario tests in
//! `sim/world/tests/oracles.rs` feed them whole runs), and the reproduction line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cloudproxy_core::client::ConnectionState;
use cloudproxy_node::nodes::client::{ClientReport, StreamStats};

use super::checks::{faults_took_effect, liveness, safety};
use super::*;
use crate::world::Fault;

fn spec() -> WorldSpec {
    find("proxy-default").expect("in the catalogue").world(1)
}

/// A client that joined, heard `media` packets a second from uid `from` all along, and was
/// never cut off.
fn healthy(from: u32, media: u64) -> ClientReport {
    let mut r = ClientReport::default();
    r.join_time = Some(Duration::from_millis(30));
    r.state = Some(ConnectionState::Connected);
    r.media_from.insert(from, StreamStats::default());
    r.media_per_second = (0..60).map(|s| (s, media)).collect();
    r
}

/// An outcome where alice and bob joined and hear each other.
fn calm() -> WorldOutcome {
    let mut outcome = WorldOutcome::default();
    outcome.clients.insert("alice".into(), healthy(2, 50));
    outcome.clients.insert("bob".into(), healthy(1, 50));
    outcome
}

fn failed<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"))
}

#[test]
fn safety_passes_a_calm_outcome() {
    let checks = safety(&spec(), &calm());
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
}

#[test]
fn safety_fails_media_outside_the_channel_corruption_bad_acks_and_forwards_outside_sdrtn() {
    let spec = spec();
    let mut outcome = calm();
    let alice = outcome.clients.get_mut("alice").unwrap();
    // Media from a uid of no client of the channel, a corrupted packet, an ack never sent.
    alice.media_from.insert(99, StreamStats::default());
    alice.media_from.get_mut(&2).unwrap().corrupt = 1;
    alice.signalling_bad_acks = 1;
    let mut relay = cloudproxy_node::nodes::relay::RelayShared::default();
    relay
        .upstream_destinations
        .insert(SocketAddr::from(([10, 0, 0, 1], 22)));
    outcome
        .relays
        .insert(crate::world::ip("120.92.118.34"), relay);
    let checks = safety(&spec, &outcome);
    let names = [
        "safety: no relay forwards outside SD-RTN",
        "safety: media reaches only members of the sender's channel",
        "safety: no corrupted media",
        "safety: only signalling that was sent is acknowledged",
    ];
    for name in names {
        assert!(!failed(&checks, name).ok, "{name} passed: {checks:#?}");
    }
    assert!(failed(&checks, names[0]).detail.contains("10.0.0.1:22"));
    assert!(failed(&checks, names[1]).detail.contains("uid 99"));
}

#[test]
fn a_fault_that_did_nothing_fails_with_its_reason() {
    let mut outcome = calm();
    assert!(faults_took_effect(&outcome).ok);
    outcome.faults_without_effect.push((
        Duration::from_secs(8),
        Fault::CrashRelayOf("alice".into()),
        "alice holds no relay: it is Reconnecting".into(),
    ));
    let check = faults_took_effect(&outcome);
    assert!(!check.ok);
    assert_eq!(
        check.detail,
        "did nothing: at 8.000 s, crash the relay alice uses: alice holds no relay: it is Reconnecting"
    );
}

#[test]
fn liveness_fails_a_client_that_never_joined_and_one_meant_to_stay_out_that_joined() {
    let mut spec = spec();
    spec.heal_at = Some(Duration::from_secs(6));
    spec.duration = Duration::from_secs(40);
    let bound = Duration::from_secs(20);
    assert!(liveness(&spec, &calm(), bound).iter().all(|c| c.ok));

    // Nobody joined: the old oracle judged nobody and passed; now each client fails.
    let mut nobody = WorldOutcome::default();
    nobody
        .clients
        .insert("alice".into(), ClientReport::default());
    let checks = liveness(&spec, &nobody, bound);
    assert_eq!(checks.len(), 2, "{checks:#?}");
    assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
    assert!(checks[0].detail.contains("never joined"), "{checks:#?}");

    // A client meant never to join must stay out.
    spec.never_join = vec!["bob".into()];
    let checks = liveness(&spec, &calm(), bound);
    let bob = failed(&checks, "liveness: bob stays out, as the scenario means");
    assert!(!bob.ok && bob.detail.contains("joined in 30 ms"), "{bob:?}");

    // Media that stopped before the heal's bound, and an outage that never ended.
    spec.never_join.clear();
    let mut stopped = calm();
    let alice = stopped.clients.get_mut("alice").unwrap();
    alice.media_per_second.retain(|s, _| *s < 10);
    stopped.clients.get_mut("bob").unwrap().outages = vec![(Duration::from_secs(3), None)];
    let checks = liveness(&spec, &stopped, bound);
    assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
}

#[test]
fn liveness_cannot_be_judged_without_a_heal_time_or_time_after_it() {
    let mut spec = spec();
    let bound = Duration::from_secs(20);
    assert!(!liveness(&spec, &calm(), bound)[0].ok);
    // Heal at 6 s + 20 s bound = 26 s, but the clients stop talking at 10 s.
    spec.heal_at = Some(Duration::from_secs(6));
    let checks = liveness(&spec, &calm(), bound);
    assert_eq!(checks.len(), 1);
    assert!(!checks[0].ok && checks[0].detail.contains("before liveness can be judged"));
}

#[test]
fn differential_fails_when_one_world_lost_media_or_acknowledged_other_signalling() {
    let spec = spec();
    let mut a = calm();
    for r in a.clients.values_mut() {
        r.media_sent = 0;
        r.signalling_acked = [1, 2].into();
    }
    let b = calm();
    let checks = differential(&spec, &a, &b);
    assert!(!checks.is_empty());
    // Nothing sent: "delivered whole" cannot hold; acks differ between the worlds.
    assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
}

#[test]
fn the_reproduction_line_carries_every_option_and_quotes_what_the_shell_would_split() {
    let plain = RunOptions::seed(7);
    assert_eq!(
        reproduction(&["relay-crash"], &plain),
        "cargo run --release -- run relay-crash --seed 7"
    );
    let all = RunOptions {
        seed: 446,
        swarm: true,
        policy: Some(PolicyFile {
            path: PathBuf::from("/tmp/my policy's.toml"),
            policy: crate::policy::Policy::seed(),
        }),
    };
    assert_eq!(
        reproduction(&["partition-heal", "crowd"], &all),
        r"cargo run --release -- run partition-heal crowd --seed 446 --swarm --policy '/tmp/my policy'\''s.toml'"
    );
    assert_eq!(shell_quote(""), "''");
    assert_eq!(
        shell_quote("sim/policies/seed.toml"),
        "sim/policies/seed.toml"
    );
}
