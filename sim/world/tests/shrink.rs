//! Shrinking: a failure planted under a large swarm schedule (the canary) is shrunk to the
//! two faults it needs, and the smallest world, written as a scenario file, still fails.

use std::path::Path;
use std::time::Duration;

use cloudproxy_sim::faults::Impairments;
use cloudproxy_sim::scenario::file_writer::to_toml;
use cloudproxy_sim::scenario::shrink::{shrink, Judge};
use cloudproxy_sim::scenario::vocabulary::CheckDef;
use cloudproxy_sim::scenario::{find, safety_checks, Check, RunOptions, ScenarioFile};
use cloudproxy_sim::swarm::FaultKind;
use cloudproxy_sim::world::{ip, run_world, Fault, WorldOutcome, WorldSpec, RELAY_IPS};

/// The canary: a planted bug that shows only when a DNS outage and a relay crash both took
/// effect in one run (read from what the world really applied).
fn canary(outcome: &WorldOutcome) -> Check {
    let applied = |f: fn(&Fault) -> bool| outcome.faults_applied.iter().any(|(_, x)| f(x));
    let dns = applied(|f| matches!(f, Fault::DnsOutage(true)));
    let relay = applied(|f| matches!(f, Fault::Crash(h) if RELAY_IPS.iter().any(|r| ip(r) == *h)));
    Check::new(
        "canary: never a DNS outage and a relay crash in one run",
        !(dns && relay),
        format!("DNS outage applied: {dns}; relay crash applied: {relay}"),
    )
}

fn planted(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = safety_checks(spec, outcome);
    checks.push(canary(outcome));
    checks
}

/// A swarm seed that enables the DNS outage, the relay crash and at least four kinds.
fn seed_with_many_kinds() -> u64 {
    let scenario = find("proxy-default").unwrap();
    (1..200)
        .find(|seed| {
            let options = RunOptions {
                swarm: true,
                ..RunOptions::seed(*seed)
            };
            let (_, kinds) = scenario.spec(&options);
            kinds.len() >= 4
                && kinds.contains(&FaultKind::DnsOutage)
                && kinds.contains(&FaultKind::RelayCrash)
        })
        .expect("a swarm seed with many kinds")
}

#[test]
fn the_canary_under_a_large_swarm_schedule_shrinks_to_the_two_faults_it_needs() {
    let seed = seed_with_many_kinds();
    let options = RunOptions {
        swarm: true,
        ..RunOptions::seed(seed)
    };
    let (mut spec, _) = find("proxy-default").unwrap().spec(&options);
    // A larger schedule still: waves of harmless impairments, and a short run (the canary
    // needs no liveness).
    for i in 0..6u64 {
        let at = Duration::from_millis(500 + 700 * i);
        let settings = Impairments {
            loss_pct: 1 + i as u8,
            burst: None,
            dup_pct: 1,
            jitter_ms: 5,
        };
        spec.faults.push((at, Fault::Impair(settings)));
    }
    spec.duration = Duration::from_secs(10);
    let before = spec.faults.len();
    assert!(before >= 12, "a large schedule: {before} faults");
    let judge = Judge {
        checks: Box::new(planted),
    };
    let shrunk = shrink(&spec, &judge, None).unwrap();
    assert_eq!(
        shrunk.check,
        "canary: never a DNS outage and a relay crash in one run"
    );
    let after = shrunk.after();
    eprintln!(
        "canary, swarm seed {seed}: {before} -> {} faults in {} replays",
        after.len(),
        shrunk.replays
    );
    assert!(
        after.len() <= 2,
        "shrunk to {} faults: {after:?}",
        after.len()
    );
    assert!(
        after.iter().any(|(_, f)| *f == Fault::DnsOutage(true)),
        "{after:?}"
    );
    assert!(
        after.iter().any(|(_, f)| matches!(f, Fault::Crash(_))),
        "{after:?}"
    );
    assert!(
        !shrunk.capped && shrunk.replays > 1,
        "{} replays",
        shrunk.replays
    );
    // The smallest world, written as a file and read back, still fails, on its own.
    let text = to_toml(
        &shrunk.spec,
        "canary",
        "planted",
        &[CheckDef::Liveness(Duration::from_secs(1))],
    )
    .unwrap();
    let file = ScenarioFile::parse(&text, Path::new("canary.toml")).unwrap();
    let world = file.world(seed);
    assert_eq!(format!("{world:?}"), format!("{:?}", shrunk.spec));
    let outcome = run_world(&world);
    let check = canary(&outcome);
    assert!(
        !check.ok,
        "the shrunk world no longer fails: {}",
        check.detail
    );
}

#[test]
fn a_passing_run_has_nothing_to_shrink_and_an_unfailed_check_is_named() {
    let scenario = find("direct-open").unwrap();
    let options = RunOptions::seed(1);
    let (spec, _) = scenario.spec(&options);
    let judge = Judge::of(scenario, &options);
    let e = shrink(&spec, &judge, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the run passes every check: there is no failure to shrink"
    );
    let mut spec = spec;
    spec.faults.push((Duration::ZERO, Fault::DnsOutage(true)));
    let judge = Judge {
        checks: Box::new(planted),
    };
    // DNS alone does not trip the canary: nothing fails.
    assert!(shrink(&spec, &judge, None).is_err());
}
