//! `cloudproxy list` and `cloudproxy run`: the scenario catalogue on the simulated world.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::junit;
use super::record::RunRecord;
use super::Status;
use cloudproxy_sim::scenario::{
    catalogue, find, reproduction_with_files, PolicyFile, RunOptions, Scenario, ScenarioFile,
};

/// Arguments of `cloudproxy run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Scenarios to run (default: the whole catalogue; `cloudproxy list` names them).
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// Also run the scenario written in FILE (TOML, docs/scenarios.md "Scenario files";
    /// `sim/scenarios/` has the catalogue's); repeatable.
    #[arg(long = "scenario-file", value_name = "FILE.toml")]
    pub scenario_files: Vec<PathBuf>,
    /// The seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A firewall policy file (TOML) that replaces every enterprise's policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Add the swarm faults of the seed (as `cloudproxy sweep --swarm` does); judged by the
    /// safety and liveness oracles.
    #[arg(long)]
    pub swarm: bool,
    /// Write the event trace of every run as JSON lines to FILE.
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Write the simulated traffic as a pcap (tshark, Wireshark) to FILE; with several
    /// scenarios, one file each, named FILE's stem, the scenario and FILE's extension.
    #[arg(long, value_name = "FILE.pcap")]
    pub pcap: Option<PathBuf>,
    /// Timestamps of the pcap start at this date (RFC 3339, e.g. 2026-12-01T09:30:00Z, or
    /// Unix seconds) instead of 1970-01-01. A FILE named *.pcapng is written as pcapng: one
    /// interface per simulated host, comments on dropped and rejected connects.
    #[arg(long, value_name = "DATE", value_parser = cloudproxy_sim::pcap_out::parse_epoch)]
    pub pcap_epoch: Option<u64>,
    /// Print one JSON object per run (schema `cloudproxy-run/1`, docs/scenarios.md) instead of
    /// the report table.
    #[arg(long)]
    pub json: bool,
    /// Also write the runs as JUnit XML to FILE (one test case per scenario and seed).
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// For every failing run, write a one-file HTML report in DIR (with its trace and pcap
    /// beside it).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
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
    let (selected, policy) = match select(
        &args.scenarios,
        &args.scenario_files,
        args.policy.as_deref(),
    ) {
        Ok(selection) => selection,
        Err(status) => return Ok(status),
    };
    let options = RunOptions {
        seed: args.seed,
        swarm: args.swarm,
        policy,
    };
    let mut trace_file = match &args.trace {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    if !args.json {
        writeln!(
            out,
            "cloudproxy: {} scenario(s) on the seed's world, seed {}{}{}",
            selected.len(),
            args.seed,
            if args.swarm { ", swarm faults" } else { "" },
            options
                .policy
                .as_ref()
                .map_or(String::new(), |p| format!(", policy {}", p.path.display()))
        )?;
    }
    let mut records = Vec::new();
    let several = selected.len() > 1;
    for scenario in selected {
        let capture = (args.pcap.is_some() || args.report_dir.is_some())
            .then(cloudproxy_sim::pcap::Capture::default);
        let recording = capture.as_ref().map(cloudproxy_sim::pcap::record_worlds);
        let result = scenario.run_with(&options);
        drop(recording);
        if let (Some(path), Some(capture)) = (&args.pcap, &capture) {
            save_pcap(
                path,
                several.then_some(scenario.name),
                capture,
                args.pcap_epoch,
            )?;
        }
        if let (Some(dir), false) = (&args.report_dir, result.passed()) {
            let files = crate::report::write(dir, scenario, &result, capture.as_ref())?;
            eprintln!("  report {}", files.html.display());
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
        let record = RunRecord::new(&result);
        if args.json {
            writeln!(out, "{}", record.to_json())?;
        }
        records.push(record);
    }
    if !args.json {
        print_report(&records, &options, out)?;
    }
    if let Some(path) = &args.junit {
        junit::write(path, "cloudproxy run", &records)?;
    }
    Ok(Status::from(records.iter().all(RunRecord::passed)))
}

/// The scenarios `run` and `sweep` run: those `names` names, then those written in the files
/// `paths` (the whole catalogue when both are empty), and the policy file `policy` loaded. On
/// an unknown name, a bad file or a bad policy, says why on stderr and gives
/// [`Status::Usage`].
pub fn select(
    names: &[String],
    paths: &[PathBuf],
    policy: Option<&Path>,
) -> Result<(Vec<&'static Scenario>, Option<PolicyFile>), Status> {
    let mut selected: Vec<&'static Scenario> = Vec::new();
    for name in names {
        let Some(s) = find(name) else {
            eprintln!("cloudproxy: no scenario named {name:?}; `cloudproxy list` shows them");
            return Err(Status::Usage);
        };
        selected.push(s);
    }
    match load_scenario_files(paths) {
        Ok(files) => selected.extend(files),
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            return Err(Status::Usage);
        }
    }
    if selected.is_empty() {
        selected = catalogue().iter().collect();
    }
    match policy.map(PolicyFile::load).transpose() {
        Ok(policy) => Ok((selected, policy)),
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            Err(Status::Usage)
        }
    }
}

/// The scenarios of `paths`, read and checked (the error names the file, line and field).
pub fn load_scenario_files(paths: &[PathBuf]) -> Result<Vec<&'static Scenario>, String> {
    paths
        .iter()
        .map(|p| {
            ScenarioFile::load(p)
                .map(Scenario::from_file)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Writes a scenario's pcap and says where, with a note when the capture is incomplete.
fn save_pcap(
    path: &Path,
    scenario: Option<&str>,
    capture: &cloudproxy_sim::pcap::Capture,
    epoch_us: Option<u64>,
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
    use cloudproxy_sim::pcap_out::{save, Format};
    save(capture, &path, Format::of(&path), epoch_us.unwrap_or(0))
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

/// The report table, the failures with their reproduction commands, and the trace hashes.
pub fn print_report(
    records: &[RunRecord],
    options: &RunOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(out)?;
    let h = [
        "scenario", "verdict", "join ms", "media rx", "lost", "reconn", "sim s", "wall s", "trace",
    ];
    writeln!(
        out,
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8} {:>7}  {}",
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    )?;
    for r in records {
        let join = r.join_ms_max().map_or("-".to_owned(), |j| j.to_string());
        writeln!(
            out,
            "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8.1} {:>7.1}  {}{}",
            r.scenario,
            if r.passed() { "pass" } else { "FAIL" },
            join,
            r.media_received(),
            r.media_lost(),
            r.reconnects(),
            r.sim.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.trace_hash,
            if r.trace_dropped > 0 { " (capped)" } else { "" },
        )?;
    }
    for r in records {
        if let Some(note) = r.trace_note() {
            writeln!(out, "\nnote: {}: {note}", r.scenario)?;
        }
    }
    let failed: Vec<&RunRecord> = records.iter().filter(|r| !r.passed()).collect();
    for r in &failed {
        writeln!(out, "\nFAIL {} (seed {})", r.scenario, r.options.seed)?;
        for check in r.failed_checks() {
            writeln!(out, "  check failed: {}: {}", check.name, check.detail)?;
        }
        if !r.swarm_kinds.is_empty() {
            writeln!(out, "  swarm fault kinds: {}", r.swarm_kinds.join(", "))?;
        }
        if !r.faults.is_empty() {
            writeln!(out, "  faults: {}", r.schedule().join(", "))?;
        }
        writeln!(out, "  reproduce: {}", r.reproduce)?;
    }
    let names: Vec<&str> = records
        .iter()
        .filter(|r| r.file.is_none())
        .map(|r| r.scenario)
        .collect();
    let files: Vec<&Path> = records.iter().filter_map(|r| r.file.as_deref()).collect();
    writeln!(
        out,
        "\n{} passed, {} failed. Reproduce: {}",
        records.len() - failed.len(),
        failed.len(),
        reproduction_with_files(&names, &files, options)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_is_the_names_then_the_files_or_the_catalogue_and_bad_input_is_usage() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (all, policy) = select(&[], &[], None).unwrap();
        assert_eq!(all.len(), catalogue().len());
        assert!(policy.is_none());
        let (two, _) = select(&names(&["socks5", "crowd"]), &[], None).unwrap();
        let two: Vec<&str> = two.iter().map(|s| s.name).collect();
        assert_eq!(two, ["socks5", "crowd"]);
        assert_eq!(
            select(&names(&["socks5", "no-such"]), &[], None).err(),
            Some(Status::Usage)
        );
        let missing = PathBuf::from("/nonexistent/scenario.toml");
        assert_eq!(
            select(&[], std::slice::from_ref(&missing), None).err(),
            Some(Status::Usage)
        );
        assert_eq!(
            select(&[], &[], Some(Path::new("/nonexistent/policy.toml"))).err(),
            Some(Status::Usage)
        );
    }

    #[test]
    fn the_report_says_when_a_trace_hit_its_cap() {
        let mut record = RunRecord::new(&find("direct-open").unwrap().run(1));
        let mut text = Vec::new();
        print_report(
            std::slice::from_ref(&record),
            &RunOptions::seed(1),
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains("hit its cap"), "{text}");
        record.trace_dropped = 12;
        let mut text = Vec::new();
        print_report(&[record], &RunOptions::seed(1), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(" (capped)"), "{text}");
        assert!(
            text.contains(
                "the trace hit its cap of 1000000 lines: 12 later lines were counted, not kept"
            ),
            "{text}"
        );
    }
}
