//! `cloudproxy sweep`: scenarios over many seeds, independent seeds in parallel, optionally
//! with swarm faults and a policy of the user's; sharded deterministically so a CI matrix can
//! spread a sweep. Ctrl-C (SIGINT) stops it: the runs that finished are summarised (and
//! written as JSON and JUnit when asked), the runs in flight are abandoned, exit status 130.

use std::io::{self, IsTerminal, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use clap::Args;

use super::junit;
use super::record::RunRecord;
use super::Status;
use cloudproxy_sim::scenario::{RunOptions, Scenario};

/// The most parallel jobs a sweep takes.
pub const MAX_JOBS: u64 = 64;

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
    /// A firewall policy file (TOML) that replaces every enterprise's policy in every run.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Each seed runs one scenario of the selection (seed modulo its size) instead of all.
    #[arg(long)]
    pub rotate: bool,
    /// Parallel jobs, 1 to 64 (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
    pub jobs: Option<u64>,
    /// Scenarios to sweep (default: the whole catalogue).
    #[arg(long = "scenario", value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// Also sweep the scenario written in FILE (TOML, docs/scenarios.md "Scenario files");
    /// repeatable.
    #[arg(long = "scenario-file", value_name = "FILE.toml")]
    pub scenario_files: Vec<PathBuf>,
    /// Print one JSON object per run (schema `cloudproxy-run/1`, docs/scenarios.md) instead of
    /// the summary table, in (scenario, seed) order.
    #[arg(long)]
    pub json: bool,
    /// Also write the runs as JUnit XML to FILE (one test case per scenario and seed).
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// For every failing seed, write a one-file HTML report in DIR (with its trace beside it).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
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

/// What the sweep's main thread hears.
enum Event {
    /// A run finished.
    Done(Box<RunRecord>),
    /// SIGINT arrived.
    Interrupted,
}

/// Sends [`Event::Interrupted`] on the first SIGINT (from a thread of its own: the sweep's
/// threads are plain threads, not a runtime).
fn watch_sigint(tx: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            let _ = tx.send(Event::Interrupted);
        }
    });
}

/// Runs the sweep; prints progress on stderr, the summary on `out`.
pub fn run(args: &SweepArgs, out: &mut impl Write) -> io::Result<Status> {
    let (selected, policy) = match super::run_cmd::select(
        &args.scenarios,
        &args.scenario_files,
        args.policy.as_deref(),
    ) {
        Ok(selection) => selection,
        Err(status) => return Ok(status),
    };
    let jobs = Arc::new(jobs(args, &selected));
    let threads = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    let threads = threads.clamp(1, MAX_JOBS as usize);
    let header = format!(
        "cloudproxy sweep: {} run(s), seeds {}..{}{}{}{}, {} job(s)",
        jobs.len(),
        args.seeds.0.start,
        args.seeds.0.end,
        args.shard.map_or(String::new(), |s| format!(
            ", shard {}/{}",
            s.index, s.count
        )),
        if args.swarm { ", swarm faults" } else { "" },
        policy
            .as_ref()
            .map_or(String::new(), |p| format!(", policy {}", p.path.display())),
        threads
    );
    // With --json, standard output holds the JSON objects only.
    if args.json {
        eprintln!("{header}");
    } else {
        writeln!(out, "{header}")?;
        out.flush()?;
    }
    let (tx, rx) = mpsc::channel();
    watch_sigint(tx.clone());
    let options = RunOptions {
        seed: 0,
        swarm: args.swarm,
        policy,
    };
    let workers = Workers::start(jobs.clone(), threads, &options, args.report_dir.clone(), tx);
    let (mut records, interrupted) = collect(&rx, jobs.len(), &workers.stop);
    records.sort_by_key(|r| (r.scenario, r.options.seed));
    if interrupted {
        let started = workers.next.load(Ordering::Relaxed).min(jobs.len());
        let note = format!(
            "interrupted: {} of {} runs finished, {} in flight abandoned, {} not started",
            records.len(),
            jobs.len(),
            started.saturating_sub(records.len()),
            jobs.len() - started
        );
        eprintln!("cloudproxy sweep: {note}");
        if !args.json {
            writeln!(out, "\n{note}")?;
        }
    }
    if args.json {
        for r in &records {
            writeln!(out, "{}", r.to_json())?;
        }
    } else {
        summary(&records, &selected, out)?;
    }
    if let Some(path) = &args.junit {
        junit::write(path, "cloudproxy sweep", &records)?;
    }
    out.flush()?;
    if interrupted {
        return Ok(Status::Interrupted);
    }
    Ok(Status::from(records.iter().all(RunRecord::passed)))
}

/// The sweep's worker threads: each takes the next job until none is left or `stop` is set.
struct Workers {
    /// The index of the next job to start.
    next: Arc<AtomicUsize>,
    /// Set on SIGINT: start nothing more.
    stop: Arc<AtomicBool>,
}

impl Workers {
    /// Starts `threads` workers on `jobs`, each run with `options` and its job's seed; every
    /// finished run is sent on `tx`.
    fn start(
        jobs: Arc<Vec<(u64, &'static Scenario)>>,
        threads: usize,
        options: &RunOptions,
        report_dir: Option<PathBuf>,
        tx: mpsc::Sender<Event>,
    ) -> Self {
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..threads {
            let (jobs, next, stop, tx) = (jobs.clone(), next.clone(), stop.clone(), tx.clone());
            let (options, report_dir) = (options.clone(), report_dir.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((seed, scenario)) = jobs.get(i).copied() else {
                        return;
                    };
                    let options = RunOptions {
                        seed,
                        ..options.clone()
                    };
                    let result = scenario.run_with(&options);
                    if let (Some(dir), false) = (&report_dir, result.passed()) {
                        if let Err(e) = crate::report::write(dir, scenario, &result, None) {
                            eprintln!(
                                "cloudproxy sweep: the report of {} seed {seed}: {e}",
                                scenario.name
                            );
                        }
                    }
                    let record = RunRecord::new(&result);
                    if tx.send(Event::Done(Box::new(record))).is_err() {
                        return;
                    }
                }
            });
        }
        Workers { next, stop }
    }
}

/// Collects the runs as they finish (saying at once when one fails, with progress) until all
/// `total` are in or SIGINT arrives; returns them and whether the sweep was interrupted.
fn collect(rx: &mpsc::Receiver<Event>, total: usize, stop: &AtomicBool) -> (Vec<RunRecord>, bool) {
    let terminal = io::stderr().is_terminal();
    let mut records: Vec<RunRecord> = Vec::with_capacity(total);
    let mut interrupted = false;
    while records.len() < total {
        match rx.recv() {
            Ok(Event::Done(record)) => {
                if !record.passed() {
                    // Say so at once: a long sweep should not hide a failure until the end.
                    eprintln!(
                        "{}FAIL {} seed {}: reproduce: {}",
                        if terminal { "\r" } else { "" },
                        record.scenario,
                        record.options.seed,
                        record.reproduce
                    );
                }
                records.push(*record);
                let failed = records.iter().filter(|r| !r.passed()).count();
                progress(terminal, records.len(), total, failed);
            }
            Ok(Event::Interrupted) => {
                stop.store(true, Ordering::Relaxed);
                interrupted = true;
                break;
            }
            Err(_) => break,
        }
    }
    if terminal {
        eprintln!();
    }
    (records, interrupted)
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
    results: &[RunRecord],
    selected: &[&'static Scenario],
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "\n{:<18} {:>6} {:>6} {:>6} {:>10} {:>9}",
        "scenario", "runs", "pass", "fail", "sim s/run", "wall s"
    )?;
    for scenario in selected {
        let mine: Vec<&RunRecord> = results
            .iter()
            .filter(|r| r.scenario == scenario.name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let failed = mine.iter().filter(|r| !r.passed()).count();
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
    let capped = results.iter().filter(|r| r.trace_dropped > 0).count();
    if capped > 0 {
        writeln!(
            out,
            "\nnote: {capped} run(s) hit the trace cap: their trace hashes cover only the lines kept"
        )?;
    }
    let failures: Vec<&RunRecord> = results.iter().filter(|r| !r.passed()).collect();
    for r in &failures {
        writeln!(out, "\nFAIL {} seed {}", r.scenario, r.options.seed)?;
        for check in r.failed_checks() {
            writeln!(out, "  check failed: {}: {}", check.name, check.detail)?;
        }
        if !r.swarm_kinds.is_empty() {
            writeln!(out, "  swarm fault kinds: {}", r.swarm_kinds.join(", "))?;
        }
        writeln!(out, "  fault schedule: {}", r.schedule().join(", "))?;
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
    use cloudproxy_sim::scenario::catalogue;

    fn args(seeds: Range<u64>, shard: Option<Shard>, rotate: bool) -> SweepArgs {
        SweepArgs {
            seeds: SeedRange(seeds),
            shard,
            swarm: false,
            policy: None,
            rotate,
            jobs: Some(1),
            scenarios: Vec::new(),
            scenario_files: Vec::new(),
            report_dir: None,
            json: false,
            junit: None,
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
