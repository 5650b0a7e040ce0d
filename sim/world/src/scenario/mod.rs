//! Scenarios: named, deterministic runs of the world that each prove one thing, with the checks
//! that say whether they did.

mod catalogue;
mod checks;

use std::time::Duration;

pub use catalogue::{catalogue, find};
pub use checks::{differential, Check};

use crate::world::{run_world, WorldOutcome, WorldSpec};

/// A named scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Its name, as `cloudproxy run NAME` takes it.
    pub name: &'static str,
    /// What it proves, one line.
    pub proves: &'static str,
    /// The world for a seed.
    pub build: fn(u64) -> WorldSpec,
    /// The checks of an outcome.
    pub check: fn(&WorldSpec, &WorldOutcome) -> Vec<Check>,
}

/// The result of running one scenario with one seed.
#[derive(Debug)]
pub struct RunResult {
    /// The scenario's name.
    pub name: &'static str,
    /// The seed.
    pub seed: u64,
    /// Every check, passed or not.
    pub checks: Vec<Check>,
    /// The world's outcome.
    pub outcome: WorldOutcome,
    /// Wall-clock time of the run (reported only, never compared).
    pub wall: Duration,
    /// Whether the swarm's faults were added.
    pub swarm: bool,
}

impl RunResult {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The one-line command that reproduces this run.
    pub fn reproduce(&self) -> String {
        format!(
            "cargo run --release -- run {} --seed {}",
            self.name, self.seed
        )
    }
}

impl Scenario {
    /// Runs the scenario with `seed`.
    pub fn run(&self, seed: u64) -> RunResult {
        let spec = (self.build)(seed);
        // Wall time is for the report only; nothing simulated reads it.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let outcome = run_world(&spec);
        let wall = started.elapsed();
        let mut checks = Vec::new();
        if let Some(error) = &outcome.error {
            checks.push(Check::fail("the simulation ran to the end", error.clone()));
        }
        checks.extend(checks_for(self, &spec, &outcome));
        RunResult {
            name: self.name,
            seed,
            checks,
            outcome,
            wall,
            swarm: false,
        }
    }
}

impl Scenario {
    /// Runs the scenario with seed `seed` and the swarm faults of the same seed; judged by the
    /// safety and liveness oracles only (the scenario's own expectations assume a calm network).
    pub fn run_swarm(&self, seed: u64) -> (RunResult, Vec<crate::swarm::FaultKind>) {
        let mut spec = (self.build)(seed);
        let kinds = crate::swarm::apply(&mut spec, seed);
        // Wall time is for the report only; nothing simulated reads it.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let outcome = run_world(&spec);
        let wall = started.elapsed();
        let mut checks = Vec::new();
        if let Some(error) = &outcome.error {
            checks.push(Check::fail("the simulation ran to the end", error.clone()));
        }
        checks.extend(checks::safety(&spec, &outcome));
        checks.extend(checks::liveness(
            &spec,
            &outcome,
            crate::swarm::LIVENESS_BOUND,
        ));
        (
            RunResult {
                name: self.name,
                seed,
                checks,
                outcome,
                wall,
                swarm: true,
            },
            kinds,
        )
    }
}

/// The safety checks every run gets, then the scenario's own.
pub fn checks_for(scenario: &Scenario, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = checks::safety(spec, outcome);
    checks.extend((scenario.check)(spec, outcome));
    checks
}
