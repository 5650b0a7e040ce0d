//! `cloudproxy list` and `cloudproxy run`: the scenario catalogue on the simulated world.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::Status;
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::scenario::{catalogue, find, RunResult, Scenario};

/// Arguments of `cloudproxy run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Scenarios to run (default: the whole catalogue; `cloudproxy list` names them).
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// The seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A firewall policy file (TOML) that replaces every enterprise's policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Add the swarm faults of the seed (as `cloudproxy sweep --swarm` does); judged by the
    /// safety and liveness oracles.
    #[arg(long, conflicts_with = "policy")]
    pub swarm: bool,
    /// Write the event trace of every run as JSON lines to FILE.
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Write the simulated traffic as a pcap (tshark, Wireshark) to FILE; with several
    /// scenarios, one file each, named FILE's stem, the scenario and FILE's extension.
    #[arg(long, value_name = "FILE.pcap")]
    pub pcap: Option<PathBuf>,
}

impl RunArgs {
    /// The whole catalogue with seed 1: the main job.
    pub fn default_catalogue() -> Self {
        RunArgs {
            seed: 1,
            ..RunArgs::default()
        }
    }
}

/// Prints the catalogue.
pub fn list(out: &mut impl Write) -> io::Result<bool> {
    let width = catalogue().iter().map(|s| s.name.len()).max().unwrap_or(0);
    for scenario in catalogue() {
        writeln!(out, "{:width$}  {}", scenario.name, scenario.proves)?;
    }
    Ok(true)
}

/// Runs scenarios and prints the report; returns whether every check passed.
pub fn run(args: &RunArgs, out: &mut impl Write) -> io::Result<Status> {
    let mut selected: Vec<&Scenario> = Vec::new();
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
    let policy = match &args.policy {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| t.parse::<Policy>().map_err(|e| e.to_string()))
        {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("cloudproxy: {}: {e}", path.display());
                return Ok(Status::Usage);
            }
        },
    };
    let mut trace_file = match &args.trace {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    writeln!(
        out,
        "cloudproxy: {} scenario(s) on the seed's world, seed {}",
        selected.len(),
        args.seed
    )?;
    let mut results = Vec::new();
    let several = selected.len() > 1;
    for scenario in selected {
        let capture = args
            .pcap
            .as_ref()
            .map(|_| cloudproxy_sim::pcap::Capture::default());
        let recording = capture.as_ref().map(cloudproxy_sim::pcap::record_worlds);
        let result = match &policy {
            None if args.swarm => scenario.run_swarm(args.seed).0,
            None => scenario.run(args.seed),
            Some(policy) => run_with_policy(scenario, args.seed, policy),
        };
        drop(recording);
        if let (Some(path), Some(capture)) = (&args.pcap, &capture) {
            save_pcap(path, several.then_some(scenario.name), capture)?;
        }
        if let Some(file) = trace_file.as_mut() {
            for line in result.outcome.trace.lines() {
                writeln!(
                    file,
                    "{{\"scenario\":{},{}",
                    serde_json::Value::from(result.name),
                    &line[1..]
                )?;
            }
        }
        eprintln!(
            "  {} {} ({:.1} s)",
            if result.passed() { "pass" } else { "FAIL" },
            result.name,
            result.wall.as_secs_f64()
        );
        results.push(result);
    }
    print_report(&results, out)?;
    Ok(Status::from(results.iter().all(RunResult::passed)))
}

/// Writes a scenario's pcap and says where, with a note when the capture is incomplete.
fn save_pcap(
    path: &Path,
    scenario: Option<&str>,
    capture: &cloudproxy_sim::pcap::Capture,
) -> io::Result<()> {
    let path = match scenario {
        None => path.to_path_buf(),
        Some(name) => {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let ext = path
                .extension()
                .map_or("pcap".into(), |e| e.to_string_lossy());
            path.with_file_name(format!("{stem}.{name}.{ext}"))
        }
    };
    capture
        .save(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let summary = capture.summary();
    eprintln!(
        "  pcap {} ({} packets, {} bytes)",
        path.display(),
        summary.packets,
        summary.bytes
    );
    if let Some(note) = summary.note() {
        eprintln!("  pcap note: {note}");
    }
    Ok(())
}

fn run_with_policy(scenario: &Scenario, seed: u64, policy: &Policy) -> RunResult {
    let mut spec = (scenario.build)(seed);
    for enterprise in &mut spec.enterprises {
        enterprise.policy = policy.clone();
    }
    // Wall time is for the report's `wall s` column only; nothing simulated reads it.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let outcome = cloudproxy_sim::world::run_world(&spec);
    let mut checks = cloudproxy_sim::scenario::checks_for(scenario, &spec, &outcome);
    if let Some(error) = &outcome.error {
        checks.insert(
            0,
            cloudproxy_sim::scenario::Check::fail("the simulation ran to the end", error.clone()),
        );
    }
    RunResult {
        name: scenario.name,
        seed,
        checks,
        outcome,
        wall: started.elapsed(),
        swarm: false,
    }
}

/// The report table, the failures with their reproduction commands, and the trace hashes.
pub fn print_report(results: &[RunResult], out: &mut impl Write) -> io::Result<()> {
    writeln!(out)?;
    let h = [
        "scenario", "verdict", "join ms", "media rx", "lost", "reconn", "sim s", "wall s", "trace",
    ];
    writeln!(
        out,
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8} {:>7}  {}",
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    )?;
    for r in results {
        let joins: Vec<u128> = r
            .outcome
            .clients
            .values()
            .filter_map(|c| c.join_time)
            .map(|t| t.as_millis())
            .collect();
        let join = joins.iter().max().map_or("-".to_owned(), |j| j.to_string());
        let rx: u64 = r.outcome.clients.values().map(|c| c.media_received()).sum();
        let lost: u64 = r.outcome.clients.values().map(|c| c.media_lost()).sum();
        let reconnects: u32 = r.outcome.clients.values().map(|c| c.reconnects).sum();
        writeln!(
            out,
            "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8.1} {:>7.1}  {}",
            r.name,
            if r.passed() { "pass" } else { "FAIL" },
            join,
            rx,
            lost,
            reconnects,
            r.outcome.sim_time.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.outcome.trace.hash(),
        )?;
    }
    let failed: Vec<&RunResult> = results.iter().filter(|r| !r.passed()).collect();
    for r in &failed {
        writeln!(out, "\nFAIL {} (seed {})", r.name, r.seed)?;
        for check in r.checks.iter().filter(|c| !c.ok) {
            writeln!(out, "  check failed: {}: {}", check.name, check.detail)?;
        }
        if !r.outcome.faults_applied.is_empty() {
            writeln!(out, "  faults: {:?}", r.outcome.faults_applied)?;
        }
        writeln!(out, "  reproduce: {}", r.reproduce())?;
    }
    let seeds: Vec<u64> = results.iter().map(|r| r.seed).collect();
    let names: Vec<&str> = results.iter().map(|r| r.name).collect();
    writeln!(
        out,
        "\n{} passed, {} failed. Reproduce: cargo run --release -- run {} --seed {}{}",
        results.len() - failed.len(),
        failed.len(),
        names.join(" "),
        seeds.first().copied().unwrap_or(1),
        if results.iter().any(|r| r.swarm) {
            " --swarm"
        } else {
            ""
        }
    )?;
    Ok(())
}
