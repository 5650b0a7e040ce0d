//! `cloudproxy shrink`: a failing run's fault schedule (and its UDP impairments) reduced by
//! delta debugging to a smallest one that still fails the same check, written as a scenario
//! file that fails on its own (`cloudproxy_sim::scenario::shrink`).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::Status;
use cloudproxy_sim::scenario::file_writer::to_toml;
use cloudproxy_sim::scenario::shrink::{shrink, Judge, MAX_REPLAYS};
use cloudproxy_sim::scenario::{find, reproduction, PolicyFile, RunOptions, Scenario};

/// Arguments of `cloudproxy shrink`.
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The scenario of the catalogue (or give `--scenario-file`).
    #[arg(value_name = "SCENARIO", required_unless_present = "scenario_file")]
    pub scenario: Option<String>,
    /// The scenario written in FILE instead.
    #[arg(
        long = "scenario-file",
        value_name = "FILE.toml",
        conflicts_with = "scenario"
    )]
    pub scenario_file: Option<PathBuf>,
    /// The seed of the failing run.
    #[arg(long)]
    pub seed: u64,
    /// The failing run had the seed's swarm faults.
    #[arg(long)]
    pub swarm: bool,
    /// The failing run had every enterprise behind this policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The failed check to keep failing (default: the first that failed).
    #[arg(long, value_name = "NAME")]
    pub check: Option<String>,
    /// Where to write the smallest world as a scenario file (default:
    /// `SCENARIO-seed-N-shrunk.toml`).
    #[arg(long, value_name = "FILE.toml")]
    pub out: Option<PathBuf>,
}

/// Shrinks the run; exit 0 when a smallest failing world was written, 1 when the run does not
/// fail (as asked), 2 on a usage error.
pub fn run(args: &ShrinkArgs, out: &mut impl Write) -> io::Result<Status> {
    let scenario: &'static Scenario = match (&args.scenario, &args.scenario_file) {
        (_, Some(path)) => match super::run_cmd::load_scenario_files(std::slice::from_ref(path)) {
            Ok(files) => files[0],
            Err(e) => return usage(&e),
        },
        (Some(name), None) => match find(name) {
            Some(s) => s,
            None => {
                return usage(&format!(
                    "no scenario named {name:?}; `cloudproxy list` shows them"
                ))
            }
        },
        (None, None) => return usage("give a SCENARIO or --scenario-file"),
    };
    let policy = match args.policy.as_deref().map(PolicyFile::load).transpose() {
        Ok(policy) => policy,
        Err(e) => return usage(&e),
    };
    let options = RunOptions {
        seed: args.seed,
        swarm: args.swarm,
        policy,
    };
    let original = match scenario.file() {
        Some(file) => {
            cloudproxy_sim::scenario::reproduction_with_files(&[], &[file.path.as_path()], &options)
        }
        None => reproduction(&[scenario.name], &options),
    };
    let (spec, _) = scenario.spec(&options);
    writeln!(out, "cloudproxy shrink: {original}")?;
    writeln!(
        out,
        "  {} faults in the schedule; replaying subsets (at most {MAX_REPLAYS} runs)",
        spec.faults.len()
    )?;
    out.flush()?;
    let judge = Judge::of(scenario, &options);
    let shrunk = match shrink(&spec, &judge, args.check.as_deref()) {
        Ok(shrunk) => shrunk,
        Err(e) => {
            writeln!(out, "cloudproxy shrink: {e}")?;
            return Ok(Status::Failed);
        }
    };
    writeln!(
        out,
        "shrunk: {} -> {} faults in {} replays{}",
        shrunk.before.len(),
        shrunk.after().len(),
        shrunk.replays,
        if shrunk.capped {
            " (stopped at the replay cap: maybe not minimal)"
        } else {
            ""
        }
    )?;
    for (at, fault) in shrunk.after() {
        writeln!(out, "  {:>8.3} s  {fault}", at.as_secs_f64())?;
    }
    for part in &shrunk.simplified {
        writeln!(out, "  simplified: {part}")?;
    }
    writeln!(out, "still fails: {}: {}", shrunk.check, shrunk.detail)?;
    let name = format!("{}-seed-{}-shrunk", scenario.name, args.seed);
    let proves = format!("shrunk from `{original}`: still fails \"{}\"", shrunk.check);
    let checks = Judge::file_checks(scenario, &options);
    let text = match to_toml(&shrunk.spec, &name, &proves, &checks) {
        Ok(text) => text,
        Err(e) => {
            writeln!(out, "cloudproxy shrink: {e}: no file written")?;
            return Ok(Status::Failed);
        }
    };
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    let header = format!(
        "# Written by `cloudproxy shrink` from `{original}`.\n# It fails \"{}\" on its own:\n#   {}\n",
        shrunk.check,
        cloudproxy_sim::scenario::reproduction_with_files(&[], &[path.as_path()], &RunOptions::seed(args.seed))
    );
    std::fs::write(&path, header + &text)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    writeln!(out, "wrote {}", path.display())?;
    writeln!(
        out,
        "reproduce: {}",
        cloudproxy_sim::scenario::reproduction_with_files(
            &[],
            &[path.as_path()],
            &RunOptions::seed(args.seed)
        )
    )?;
    Ok(Status::Ok)
}

fn usage(message: &str) -> io::Result<Status> {
    eprintln!("cloudproxy: {message}");
    Ok(Status::Usage)
}
