//! `cloudproxy sweep`: scenarios over many seeds, independent seeds in parallel, optionally
//! with swarm faults; sharded deterministically so a CI matrix can spread a sweep.

use std::io::{self, IsTerminal, Write};
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;

use super::Status;
use cloudproxy_sim::scenario::{catalogue, find, Scenario};
use cloudproxy_sim::world::Fault;

/// Arguments of `cloudproxy sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The seeds, a half-open range `A..B`.
    #[arg(long, default_value = "1..51", value_parser = parse_range)]
    pub seeds: SeedRange,
    /// Run only shard I of N (0-based): the seeds whose value modulo N is I.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Each seed also enables a random subset of fault kinds with random weights.
    #[arg(long)]
    pub swarm: bool,
    /// Each seed runs one scenario of the selection (seed modulo its size) instead of all.
    #[arg(long)]
    pub rotate: bool,
    /// Parallel jobs (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Scenarios to sweep (default: the whole catalogue).
    #[arg(long = "scenario", value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
}

/// A half-open range of seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRange(pub Range<u64>);

/// One shard of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

fn parse_range(text: &str) -> Result<SeedRange, String> {
    let (a, b) = text.split_once("..").ok_or("expected A..B, e.g. 1..1001")?;
    let a = u64::from_str(a.trim()).map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b = u64::from_str(b.trim()).map_err(|e| format!("bad end {b:?}: {e}"))?;
    if a >= b {
        return Err(format!("the range {a}..{b} is empty"));
    }
    Ok(SeedRange(a..b))
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 0/4")?;
    let index = u64::from_str(i.trim()).map_err(|e| format!("bad shard {i:?}: {e}"))?;
    let count = u64::from_str(n.trim()).map_err(|e| format!("bad shard count {n:?}: {e}"))?;
    if count == 0 || index >= count {
        return Err(format!("shard {index}/{count}: need 0 <= I < N"));
    }
    Ok(Shard { index, count })
}

/// What one job produced (plain data: jobs run on other threads).
#[derive(Debug)]
struct JobResult {
    scenario: &'static str,
    seed: u64,
    failed: Vec<(String, String)>,
    faults: Vec<(Duration, Fault)>,
    kinds: String,
    reproduce: String,
    sim: Duration,
    wall: Duration,
}

/// The jobs of a sweep, in a deterministic order.
fn jobs(args: &SweepArgs, selected: &[&'static Scenario]) -> Vec<(u64, &'static Scenario)> {
    let mut out = Vec::new();
    for seed in args.seeds.0.clone() {
        if args.shard.is_some_and(|s| seed % s.count != s.index) {
            continue;
        }
        if args.rotate {
            out.push((seed, selected[(seed % selected.len() as u64) as usize]));
        } else {
            out.extend(selected.iter().map(|s| (seed, *s)));
        }
    }
    out
}

/// Runs the sweep; prints progress on stderr, the summary on `out`.
pub fn run(args: &SweepArgs, out: &mut impl Write) -> io::Result<Status> {
    let mut selected: Vec<&'static Scenario> = Vec::new();
    for name in &args.scenarios {
        match find(name) {
            Some(s) => selected.push(s),
            None => {
                eprintln!("cloudproxy: no scenario named {name:?}; `cloudproxy list` shows them");
                return Ok(Status::Usage);
            }
        }
    }
    if selected.is_empty() {
        selected = catalogue().iter().collect();
    }
    let jobs = jobs(args, &selected);
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    writeln!(
        out,
        "cloudproxy sweep: {} run(s), seeds {}..{}{}{}, {} job(s)",
        jobs.len(),
        args.seeds.0.start,
        args.seeds.0.end,
        args.shard.map_or(String::new(), |s| format!(
            ", shard {}/{}",
            s.index, s.count
        )),
        if args.swarm { ", swarm faults" } else { "" },
        threads
    )?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let terminal = io::stderr().is_terminal();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((seed, scenario)) = jobs.get(i).copied() else {
                    return;
                };
                let result = run_job(scenario, seed, args.swarm);
                if !result.failed.is_empty() {
                    // Say so at once: a long sweep should not hide a failure until the end.
                    eprintln!(
                        "{}FAIL {} seed {}: reproduce: {}",
                        if terminal { "\r" } else { "" },
                        result.scenario,
                        result.seed,
                        result.reproduce
                    );
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                let failed_so_far = {
                    let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                    all.push(result);
                    all.iter()
                        .filter(|r: &&JobResult| !r.failed.is_empty())
                        .count()
                };
                progress(terminal, finished, jobs.len(), failed_so_far);
            });
        }
    });
    if terminal {
        eprintln!();
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| (r.scenario, r.seed));
    summary(&results, &selected, out)?;
    Ok(Status::from(results.iter().all(|r| r.failed.is_empty())))
}

fn run_job(scenario: &'static Scenario, seed: u64, swarm: bool) -> JobResult {
    let (result, kinds) = if swarm {
        scenario.run_swarm(seed)
    } else {
        (scenario.run(seed), Vec::new())
    };
    JobResult {
        scenario: scenario.name,
        seed,
        failed: result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| (c.name.clone(), c.detail.clone()))
            .collect(),
        faults: result.outcome.faults_applied.clone(),
        kinds: format!("{kinds:?}"),
        reproduce: result.reproduce(),
        sim: result.outcome.sim_time,
        wall: result.wall,
    }
}

fn progress(terminal: bool, done: usize, total: usize, failed: usize) {
    if terminal {
        const WIDTH: usize = 40;
        let filled = WIDTH * done / total.max(1);
        eprint!(
            "\r[{}{}] {done}/{total} runs, {failed} failed",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled)
        );
    } else if done == total || done % (total / 10).max(1) == 0 {
        eprintln!("sweep: {done}/{total} runs, {failed} failed");
    }
}

fn summary(
    results: &[JobResult],
    selected: &[&'static Scenario],
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "\n{:<18} {:>6} {:>6} {:>6} {:>10} {:>9}",
        "scenario", "runs", "pass", "fail", "sim s/run", "wall s"
    )?;
    for scenario in selected {
        let mine: Vec<&JobResult> = results
            .iter()
            .filter(|r| r.scenario == scenario.name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let failed = mine.iter().filter(|r| !r.failed.is_empty()).count();
        let sim: f64 = mine.iter().map(|r| r.sim.as_secs_f64()).sum::<f64>() / mine.len() as f64;
        let wall: f64 = mine.iter().map(|r| r.wall.as_secs_f64()).sum();
        writeln!(
            out,
            "{:<18} {:>6} {:>6} {:>6} {:>10.1} {:>9.1}",
            scenario.name,
            mine.len(),
            mine.len() - failed,
            failed,
            sim,
            wall
        )?;
    }
    let failures: Vec<&JobResult> = results.iter().filter(|r| !r.failed.is_empty()).collect();
    for r in &failures {
        writeln!(out, "\nFAIL {} seed {}", r.scenario, r.seed)?;
        for (name, detail) in &r.failed {
            writeln!(out, "  check failed: {name}: {detail}")?;
        }
        writeln!(out, "  swarm fault kinds: {}", r.kinds)?;
        writeln!(out, "  fault schedule: {:?}", r.faults)?;
        writeln!(out, "  reproduce: {}", r.reproduce)?;
    }
    writeln!(
        out,
        "\n{} passed, {} failed",
        results.len() - failures.len(),
        failures.len()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seeds: Range<u64>, shard: Option<Shard>, rotate: bool) -> SweepArgs {
        SweepArgs {
            seeds: SeedRange(seeds),
            shard,
            swarm: false,
            rotate,
            jobs: Some(1),
            scenarios: Vec::new(),
        }
    }

    #[test]
    fn shards_split_the_seeds_exactly() {
        let all: Vec<&'static Scenario> = catalogue().iter().collect();
        let whole = jobs(&args(1..101, None, true), &all);
        let mut parts: Vec<(u64, &str)> = (0..4)
            .flat_map(|i| {
                jobs(
                    &args(1..101, Some(Shard { index: i, count: 4 }), true),
                    &all,
                )
            })
            .map(|(seed, s)| (seed, s.name))
            .collect();
        parts.sort();
        let whole: Vec<(u64, &str)> = whole.into_iter().map(|(seed, s)| (seed, s.name)).collect();
        assert_eq!(parts, whole);
    }

    #[test]
    fn rotate_covers_the_catalogue() {
        let all: Vec<&'static Scenario> = catalogue().iter().collect();
        let jobs = jobs(&args(0..all.len() as u64, None, true), &all);
        let mut names: Vec<&str> = jobs.iter().map(|(_, s)| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn bad_ranges_and_shards_are_usage_errors() {
        assert!(parse_range("5..5").is_err());
        assert!(parse_range("x..5").is_err());
        assert!(parse_range("1-5").is_err());
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("0/0").is_err());
        assert_eq!(parse_shard("1/3"), Ok(Shard { index: 1, count: 3 }));
    }
}
