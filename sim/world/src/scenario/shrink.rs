//! Shrinking a failure: delta debugging (ddmin, Zeller and Hildebrandt 2002) over a failing
//! run's fault schedule, replaying subsets of it, to a smallest schedule (one from which no
//! single fault can be removed) that still fails the same check; then, for every UDP
//! impairment left, the same over its parts (loss, bursts, duplication, jitter). The result is
//! a world that can be written as a scenario file ([`super::file_writer`]) and fails on its
//! own.
//!
//! Every replay is a whole deterministic run of the world with the same seed, so a subset
//! fails or passes the same way every time; results are cached by subset.

use std::collections::BTreeMap;

use super::vocabulary::CheckDef;
use super::{checks_for, swarm_checks, Check, RunOptions, Scenario};
use crate::faults::Impairments;
use crate::swarm::LIVENESS_BOUND;
use crate::world::{run_world, Fault, WorldOutcome, WorldSpec};
use std::time::Duration;

/// The most replays one shrink makes (each is a whole run).
pub const MAX_REPLAYS: usize = 500;

/// Why a run could not be shrunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShrinkError {
    /// The run passes: there is no failure to shrink.
    #[error("the run passes every check: there is no failure to shrink")]
    Passes,
    /// The check asked for did not fail in the run.
    #[error("the check {0:?} did not fail in this run; the failed checks are: {1}")]
    NoSuchFailure(String, String),
}

/// What a shrink found.
#[derive(Debug)]
pub struct Shrunk {
    /// The check that failed before and still fails.
    pub check: String,
    /// What it saw in the smallest world.
    pub detail: String,
    /// The schedule before.
    pub before: Vec<(Duration, Fault)>,
    /// The world with the smallest schedule.
    pub spec: WorldSpec,
    /// Impairment parts removed, in words.
    pub simplified: Vec<String>,
    /// How many replays it took.
    pub replays: usize,
    /// Whether it stopped at [`MAX_REPLAYS`] before it was done.
    pub capped: bool,
}

impl Shrunk {
    /// The smallest schedule.
    pub fn after(&self) -> &[(Duration, Fault)] {
        &self.spec.faults
    }
}

/// The checks of an outcome of a world.
pub type ChecksFn<'a> = Box<dyn Fn(&WorldSpec, &WorldOutcome) -> Vec<Check> + 'a>;

/// How a world is judged: the checks of a run of a scenario with options.
pub struct Judge<'a> {
    /// Judges an outcome of a world.
    pub checks: ChecksFn<'a>,
}

impl<'a> Judge<'a> {
    /// The judge of `scenario` run with `options`: the swarm oracles with `--swarm`, else the
    /// scenario's own checks (with the harness and safety checks).
    pub fn of(scenario: &'a Scenario, options: &RunOptions) -> Judge<'a> {
        if options.swarm {
            Judge {
                checks: Box::new(swarm_checks),
            }
        } else {
            Judge {
                checks: Box::new(move |spec, outcome| checks_for(scenario, spec, outcome)),
            }
        }
    }

    /// The checks of a file written from a run of `scenario` with `options` (the harness and
    /// safety checks come with every file run): liveness for a swarm run, else the scenario's
    /// own words, when they are data (a file's, or a catalogue scenario's twin in
    /// `sim/scenarios/`).
    pub fn file_checks(scenario: &Scenario, options: &RunOptions) -> Vec<CheckDef> {
        if options.swarm {
            return vec![CheckDef::Liveness(LIVENESS_BOUND)];
        }
        match scenario.file() {
            Some(file) => file.check_defs.clone(),
            None => super::file::catalogue_file(scenario.name)
                .map(|f| f.check_defs)
                .unwrap_or_default(),
        }
    }
}

/// Shrinks the schedule of `spec` (a failing world) to a smallest one that still fails the
/// check `target` (default: the first that failed), judged by `judge`.
pub fn shrink(
    spec: &WorldSpec,
    judge: &Judge<'_>,
    target: Option<&str>,
) -> Result<Shrunk, ShrinkError> {
    let first = (judge.checks)(spec, &run_world(spec));
    let failed: Vec<&Check> = first.iter().filter(|c| !c.ok).collect();
    if failed.is_empty() {
        return Err(ShrinkError::Passes);
    }
    let check = match target {
        None => failed[0].name.clone(),
        Some(name) => failed
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.name.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
                ShrinkError::NoSuchFailure(name.to_owned(), names.join("; "))
            })?,
    };
    let mut replay = Replay {
        base: spec,
        judge,
        check: &check,
        cache: BTreeMap::new(),
        runs: 1,
    };
    let all: Vec<usize> = (0..spec.faults.len()).collect();
    let kept = ddmin(all, &mut |subset| replay.fails_with(subset));
    let mut smallest = replay.world(&kept);
    let simplified = simplify_impairments(&mut smallest, &mut replay);
    let (replays, capped) = (replay.runs, replay.runs >= MAX_REPLAYS);
    let detail = (judge.checks)(&smallest, &run_world(&smallest))
        .into_iter()
        .find(|c| c.name == check && !c.ok)
        .map_or_else(String::new, |c| c.detail);
    Ok(Shrunk {
        check,
        detail,
        before: spec.faults.clone(),
        spec: smallest,
        simplified,
        replays,
        capped,
    })
}

/// Replays of one world with subsets of its schedule.
struct Replay<'a, 'j> {
    base: &'a WorldSpec,
    judge: &'a Judge<'j>,
    check: &'a str,
    cache: BTreeMap<Vec<usize>, bool>,
    runs: usize,
}

impl Replay<'_, '_> {
    fn world(&self, subset: &[usize]) -> WorldSpec {
        WorldSpec {
            faults: subset
                .iter()
                .map(|i| self.base.faults[*i].clone())
                .collect(),
            ..self.base.clone()
        }
    }

    /// Whether `spec` fails the target check (a replay; past the cap, "no").
    fn judge_world(&mut self, spec: &WorldSpec) -> bool {
        if self.runs >= MAX_REPLAYS {
            return false;
        }
        self.runs += 1;
        (self.judge.checks)(spec, &run_world(spec))
            .iter()
            .any(|c| c.name == self.check && !c.ok)
    }

    fn fails_with(&mut self, subset: &[usize]) -> bool {
        if let Some(known) = self.cache.get(subset) {
            return *known;
        }
        let spec = self.world(subset);
        let fails = self.judge_world(&spec);
        self.cache.insert(subset.to_vec(), fails);
        fails
    }
}

/// ddmin: a 1-minimal subset of `items` for which `fails` holds (it holds for `items`).
pub fn ddmin<T: Clone>(items: Vec<T>, fails: &mut impl FnMut(&[T]) -> bool) -> Vec<T> {
    if fails(&[]) {
        return Vec::new();
    }
    let mut current = items;
    let mut n = 2;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        if let Some(chunk) = chunks.iter().find(|c| fails(c)) {
            current = chunk.clone();
            n = 2;
            continue;
        }
        let complements: Vec<Vec<T>> = (0..chunks.len())
            .map(|skip| {
                chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect()
            })
            .collect();
        if chunks.len() > 2 {
            if let Some(rest) = complements.into_iter().find(|c| fails(c)) {
                current = rest;
                n = (n - 1).max(2);
                continue;
            }
        }
        if n >= current.len() {
            break;
        }
        n = (n * 2).min(current.len());
    }
    current
}

/// `items` in `n` chunks of nearly equal size, in order.
fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let (size, extra) = (items.len() / n, items.len() % n);
    let mut out = Vec::new();
    let mut at = 0;
    for i in 0..n {
        let len = size + usize::from(i < extra);
        if len > 0 {
            out.push(items[at..at + len].to_vec());
        }
        at += len;
    }
    out
}

/// Takes apart every impairment left in `spec`: each part (loss, bursts, duplication,
/// jitter) that the failure does not need is removed. Returns what was removed, in words.
fn simplify_impairments(spec: &mut WorldSpec, replay: &mut Replay<'_, '_>) -> Vec<String> {
    type Part = (&'static str, fn(&mut Impairments));
    const PARTS: [Part; 4] = [
        ("loss", |i| i.loss_pct = 0),
        ("bursts", |i| i.burst = None),
        ("duplication", |i| i.dup_pct = 0),
        ("jitter", |i| i.jitter_ms = 0),
    ];
    let mut removed = Vec::new();
    for index in 0..spec.faults.len() {
        for (part, clear) in PARTS {
            let Fault::Impair(settings) = spec.faults[index].1 else {
                continue;
            };
            let mut simpler = settings;
            clear(&mut simpler);
            if simpler == settings || simpler.is_none() {
                continue;
            }
            let mut trial = spec.clone();
            trial.faults[index].1 = Fault::Impair(simpler);
            if replay.judge_world(&trial) {
                *spec = trial;
                removed.push(format!(
                    "fault {} ({:.3} s): no {part}",
                    index + 1,
                    spec.faults[index].0.as_secs_f64()
                ));
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_items_a_failure_needs() {
        let items: Vec<u32> = (0..40).collect();
        let mut tests = 0;
        let kept = ddmin(items, &mut |s: &[u32]| {
            tests += 1;
            s.contains(&7) && s.contains(&31)
        });
        assert_eq!(kept, vec![7, 31]);
        assert!(tests < 100, "{tests} tests");
    }

    #[test]
    fn ddmin_returns_nothing_when_the_failure_needs_nothing_and_one_item_when_it_needs_one() {
        assert!(ddmin(vec![1, 2, 3], &mut |_: &[i32]| true).is_empty());
        assert_eq!(
            ddmin(vec![1, 2, 3, 4, 5], &mut |s: &[i32]| s.contains(&4)),
            vec![4]
        );
    }

    #[test]
    fn split_keeps_every_item_in_order() {
        let chunks = split(&[1, 2, 3, 4, 5, 6, 7], 3);
        assert_eq!(chunks, vec![vec![1, 2, 3], vec![4, 5], vec![6, 7]]);
        assert_eq!(split(&[1, 2], 4), vec![vec![1], vec![2]]);
    }
}
