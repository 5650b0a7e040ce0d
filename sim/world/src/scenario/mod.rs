//! Scenarios: named, deterministic runs of the world that each prove one thing, with the checks
//! that say whether they did.
//!
//! A run is a pure function of its scenario and its [`RunOptions`] (seed, swarm faults, policy
//! file); [`reproduction`] turns exactly those into the one-line command that runs it again, so
//! every printed reproduction line reproduces its run (same checks, same trace hash).

mod beyond_changes;
mod beyond_join;
mod catalogue;
mod checks;
pub mod file;
mod file_schema;
mod file_schema_beyond;
pub mod file_writer;
pub mod shrink;
#[cfg(test)]
mod tests;
pub mod vocabulary;
mod vocabulary_beyond;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use catalogue::{catalogue, check_defs, find};
pub use checks::{differential, safety as safety_checks, Check};
pub use file::{FileError, ScenarioFile};

use crate::policy::Policy;
use crate::swarm::FaultKind;
use crate::world::{run_world, WorldOutcome, WorldSpec};

/// A named scenario: one of the catalogue, or one read from a file.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Its name, as `cloudproxy run NAME` takes it.
    pub name: &'static str,
    /// What it proves, one line.
    pub proves: &'static str,
    /// Where its world and checks come from.
    pub source: Source,
}

/// Where a scenario's world and checks come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// Written in Rust, in the catalogue.
    Builtin {
        /// The world for a seed.
        build: fn(u64) -> WorldSpec,
        /// The checks of an outcome.
        check: fn(&WorldSpec, &WorldOutcome) -> Vec<Check>,
    },
    /// Read from a scenario file (`--scenario-file`).
    File(&'static ScenarioFile),
}

/// A firewall policy read from a file: the policy, and the path as given (for the
/// reproduction line).
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The policy it holds.
    pub policy: Policy,
}

impl PolicyFile {
    /// Reads and parses the policy at `path`; the error names the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let policy = text
            .parse::<Policy>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PolicyFile {
            path: path.to_path_buf(),
            policy,
        })
    }
}

/// Everything besides the scenario that changes a run. Outputs (`--trace`, `--pcap`,
/// `--json`, `--junit`) are not here: they record a run without changing it.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The seed of the world (and of the swarm faults).
    pub seed: u64,
    /// Add the seed's swarm faults; the run is then judged by the safety and liveness oracles.
    pub swarm: bool,
    /// Put every enterprise behind this policy instead of the scenario's own.
    pub policy: Option<PolicyFile>,
}

impl RunOptions {
    /// Options with `seed` and nothing else.
    pub fn seed(seed: u64) -> Self {
        RunOptions {
            seed,
            ..RunOptions::default()
        }
    }

    /// The command-line arguments that give these options, after the scenario names.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--seed".to_owned(), self.seed.to_string()];
        if self.swarm {
            args.push("--swarm".to_owned());
        }
        if let Some(policy) = &self.policy {
            args.push("--policy".to_owned());
            args.push(policy.path.display().to_string());
        }
        args
    }
}

/// What every reproduction line starts with.
pub const REPRODUCE_PREFIX: &str = "cargo run --release -- run";

/// The one-line command that runs `scenarios` again with `options`, exactly: the only place
/// a reproduction line is built.
pub fn reproduction(scenarios: &[&str], options: &RunOptions) -> String {
    reproduction_with_files(scenarios, &[], options)
}

/// The one-line command that runs the catalogue's `scenarios` and the scenario `files` again
/// with `options`.
pub fn reproduction_with_files(
    scenarios: &[&str],
    files: &[&Path],
    options: &RunOptions,
) -> String {
    let mut line = REPRODUCE_PREFIX.to_owned();
    let files = files
        .iter()
        .flat_map(|f| ["--scenario-file".to_owned(), f.display().to_string()]);
    for word in scenarios
        .iter()
        .map(|s| (*s).to_owned())
        .chain(files)
        .chain(options.args())
    {
        line.push(' ');
        line.push_str(&shell_quote(&word));
    }
    line
}

/// `word` as one POSIX shell word: as it is when it holds only safe characters, else in single
/// quotes.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The result of running one scenario with one set of options.
#[derive(Debug)]
pub struct RunResult {
    /// The scenario's name.
    pub name: &'static str,
    /// The scenario file it was read from (`None`: the catalogue's).
    pub file: Option<PathBuf>,
    /// The seed (the same as `options.seed`).
    pub seed: u64,
    /// The options of the run.
    pub options: RunOptions,
    /// The fault kinds the swarm enabled (empty without `--swarm`).
    pub swarm_kinds: Vec<FaultKind>,
    /// Every check, passed or not.
    pub checks: Vec<Check>,
    /// The world's outcome.
    pub outcome: WorldOutcome,
    /// Wall-clock time of the run (reported only, never compared).
    pub wall: Duration,
}

impl RunResult {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// The one-line command that reproduces this run.
    pub fn reproduce(&self) -> String {
        match &self.file {
            None => reproduction(&[self.name], &self.options),
            Some(path) => reproduction_with_files(&[], &[path.as_path()], &self.options),
        }
    }
}

impl Scenario {
    /// A scenario of the catalogue.
    pub const fn builtin(
        name: &'static str,
        proves: &'static str,
        build: fn(u64) -> WorldSpec,
        check: fn(&WorldSpec, &WorldOutcome) -> Vec<Check>,
    ) -> Self {
        Scenario {
            name,
            proves,
            source: Source::Builtin { build, check },
        }
    }

    /// The scenario of a file, kept for the rest of the process (a command reads a few).
    pub fn from_file(file: ScenarioFile) -> &'static Scenario {
        let file: &'static ScenarioFile = Box::leak(Box::new(file));
        Box::leak(Box::new(Scenario {
            name: file.name,
            proves: file.proves,
            source: Source::File(file),
        }))
    }

    /// Its world for `seed`, as written (no options applied).
    pub fn world(&self, seed: u64) -> WorldSpec {
        match self.source {
            Source::Builtin { build, .. } => build(seed),
            Source::File(file) => file.world(seed),
        }
    }

    /// Its own checks of an outcome (besides the harness's and the safety checks).
    pub fn own_checks(&self, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
        match self.source {
            Source::Builtin { check, .. } => check(spec, outcome),
            Source::File(file) => file.checks(spec, outcome),
        }
    }

    /// The file it was read from, if any.
    pub fn file(&self) -> Option<&'static ScenarioFile> {
        match self.source {
            Source::Builtin { .. } => None,
            Source::File(file) => Some(file),
        }
    }

    /// Runs the scenario with `seed` on a calm network, judged by its own checks.
    pub fn run(&self, seed: u64) -> RunResult {
        self.run_with(&RunOptions::seed(seed))
    }

    /// Runs the scenario with seed `seed` and the swarm faults of the same seed; judged by the
    /// safety and liveness oracles only (the scenario's own expectations assume a calm network).
    pub fn run_swarm(&self, seed: u64) -> RunResult {
        self.run_with(&RunOptions {
            seed,
            swarm: true,
            policy: None,
        })
    }

    /// The world of this scenario with `options` applied (policy, then swarm faults), and the
    /// swarm's fault kinds.
    pub fn spec(&self, options: &RunOptions) -> (WorldSpec, Vec<FaultKind>) {
        let mut spec = self.world(options.seed);
        if let Some(policy) = &options.policy {
            for enterprise in &mut spec.enterprises {
                enterprise.policy = policy.policy.clone();
            }
        }
        let kinds = if options.swarm {
            crate::swarm::apply(&mut spec, options.seed)
        } else {
            Vec::new()
        };
        (spec, kinds)
    }

    /// Runs the scenario with `options`.
    pub fn run_with(&self, options: &RunOptions) -> RunResult {
        let (spec, swarm_kinds) = self.spec(options);
        // Wall time is for the report only; nothing simulated reads it.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let outcome = run_world(&spec);
        let wall = started.elapsed();
        let checks = if options.swarm {
            swarm_checks(&spec, &outcome)
        } else {
            checks_for(self, &spec, &outcome)
        };
        RunResult {
            name: self.name,
            file: self.file().map(|f| f.path.clone()),
            seed: options.seed,
            options: options.clone(),
            swarm_kinds,
            checks,
            outcome,
            wall,
        }
    }
}

/// The checks of the harness itself, first in every run: the simulation ran to the end, and
/// every scheduled fault took effect.
pub fn harness_checks(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(error) = &outcome.error {
        checks.push(Check::fail("the simulation ran to the end", error.clone()));
    }
    if !spec.faults.is_empty() {
        checks.push(checks::faults_took_effect(outcome));
    }
    checks
}

/// The checks of a calm run: the harness's, the safety checks every run gets, then the
/// scenario's own.
pub fn checks_for(scenario: &Scenario, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = harness_checks(spec, outcome);
    checks.extend(checks::safety(spec, outcome));
    checks.extend(scenario.own_checks(spec, outcome));
    checks
}

/// The checks of a swarm run: the harness's, safety, and liveness after the swarm's heal.
pub fn swarm_checks(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = harness_checks(spec, outcome);
    checks.extend(checks::safety(spec, outcome));
    checks.extend(checks::liveness(
        spec,
        outcome,
        crate::swarm::LIVENESS_BOUND,
    ));
    checks
}
