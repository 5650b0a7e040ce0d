//! The canary: a planted bug (the relays skip their destination allow-list, see
//! `RelayConfig::canary_skip_destination_check`) that the safety oracle must catch. Built only
//! with the `canary` feature (`cargo test -p cloudproxy-sim --features canary --test canary`,
//! a step of `cargo xtask test`): no other build has the switch.
//!
//! Each test runs the same world twice, with and without the bug, so that it proves both
//! halves: the oracle fails on the planted bug, and it is the bug it fails on (the same run
//! without it passes every check).
#![cfg(feature = "canary")]

use cloudproxy_sim::scenario::{checks_for, find, Check};
use cloudproxy_sim::world::{run_world, WorldSpec};

const SEED: u64 = 1;
const SAFETY: &str = "safety: no relay forwards outside SD-RTN";

/// The checks of `scenario` at `seed`, with the canary planted or not.
fn checks(scenario: &str, seed: u64, canary: bool) -> (WorldSpec, Vec<Check>) {
    let scenario = find(scenario).unwrap_or_else(|| panic!("no scenario {scenario}"));
    let mut spec = scenario.world(seed);
    spec.canary = canary;
    assert_eq!(spec.canary_planted(), canary);
    let outcome = run_world(&spec);
    let checks = checks_for(scenario, &spec, &outcome);
    (spec, checks)
}

fn safety(checks: &[Check]) -> &Check {
    checks
        .iter()
        .find(|c| c.name == SAFETY)
        .expect("the safety check runs in every calm run")
}

#[test]
fn the_safety_oracle_catches_a_relay_without_its_destination_check() {
    let (_, planted) = checks("open-relay-attack", SEED, true);
    let caught = safety(&planted);
    assert!(!caught.ok, "the canary went unnoticed: {}", caught.detail);
    // The attacker's forbidden destination, named in the failure.
    assert!(caught.detail.contains("10.0.0.1:22"), "{}", caught.detail);
}

#[test]
fn without_the_canary_the_same_world_passes_every_check() {
    let (spec, clean) = checks("open-relay-attack", SEED, false);
    assert!(!spec.canary_planted());
    let failed: Vec<String> = clean
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(failed.is_empty(), "a clean run failed: {failed:#?}");
    assert!(safety(&clean).ok);
}

/// The oracle catches the bug at every seed tried, not at one lucky seed.
#[test]
fn the_canary_is_caught_at_several_seeds() {
    for seed in [2, 3, 5] {
        let (_, planted) = checks("open-relay-attack", seed, true);
        assert!(
            !safety(&planted).ok,
            "seed {seed}: the canary went unnoticed"
        );
        let (_, clean) = checks("open-relay-attack", seed, false);
        assert!(safety(&clean).ok, "seed {seed}: {}", safety(&clean).detail);
    }
}
