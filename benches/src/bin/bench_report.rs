//! `bench_report`: every ratio of the last benchmark run beside its goal (issue 12) and its
//! committed reference, and the comparison that gates on it.
//!
//! ```text
//! bench_report [--reference FILE] [--compare] [--tolerance 0.10] [--goals-only]
//!              [--run-out FILE] [--write-reference FILE --command TEXT] [--retry-out FILE]
//!              [--criterion-dir DIR] [--results-dir DIR] [--worst-of RUN.json]...
//! ```
//!
//! Reads criterion's files (`target/criterion`) and ours (`target/bench-results`). With
//! `--compare`, exits 1 when a ratio is worse than the reference by more than the tolerance
//! (or failed, or was not measured, where the reference has a value); a case that failed in
//! the reference too is reported, not counted. `--goals-only` gates only the ratios that have a
//! goal (issue 12's) and the memory figures: the context ratios and the micro-benchmarks are
//! still printed and compared, but do not fail the run (on a shared machine the connection-setup
//! and nanosecond-scale ones move by far more than any tolerance between two runs). `--run-out` writes this run (ratios and
//! figures, commit, machine, date) as JSON: the artifact the history plot reads.
//! `--write-reference` writes the ratios as the new reference. `--retry-out` writes the
//! benchmark targets whose ratios regressed, one a line (empty when none did): what
//! `cargo xtask bench-gate` runs once more before it fails. `--criterion-dir` and
//! `--results-dir` read the figures from elsewhere than `target/` (the gate's tests).
//! `--worst-of` (with `--write-reference`) takes each ratio of the reference as the worse of
//! this run and the given runs (`--run-out` files): the low end of the machine's noise.
//!
//! Exit status: 0, or 1 when `--compare` found a regression, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use cloudproxy_benches::results::{
    compare, measure, meets_goal, read_criterion, read_results, regressions, results_dir,
    retry_targets, target_dir, worse, Figures, Measured, Reference, Verdict, RATIOS,
};

struct Args {
    reference: PathBuf,
    compare: bool,
    goals_only: bool,
    tolerance: f64,
    run_out: Option<PathBuf>,
    write_reference: Option<PathBuf>,
    command: String,
    retry_out: Option<PathBuf>,
    criterion_dir: PathBuf,
    results_dir: PathBuf,
    worst_of: Vec<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        reference: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/reference.json")),
        compare: false,
        goals_only: false,
        tolerance: 0.10,
        run_out: None,
        write_reference: None,
        command: "benches/quick".into(),
        retry_out: None,
        criterion_dir: target_dir().join("criterion"),
        results_dir: results_dir(),
        worst_of: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--reference" => a.reference = value("--reference")?.into(),
            "--compare" => a.compare = true,
            "--goals-only" => a.goals_only = true,
            "--tolerance" => {
                let v = value("--tolerance")?;
                a.tolerance = v
                    .parse::<f64>()
                    .ok()
                    .filter(|t| (0.0..1.0).contains(t))
                    .ok_or(format!(
                        "--tolerance {v}: expected a fraction in [0, 1), e.g. 0.10"
                    ))?;
            }
            "--run-out" => a.run_out = Some(value("--run-out")?.into()),
            "--write-reference" => a.write_reference = Some(value("--write-reference")?.into()),
            "--command" => a.command = value("--command")?,
            "--retry-out" => a.retry_out = Some(value("--retry-out")?.into()),
            "--criterion-dir" => a.criterion_dir = value("--criterion-dir")?.into(),
            "--results-dir" => a.results_dir = value("--results-dir")?.into(),
            "--worst-of" => a.worst_of.push(value("--worst-of")?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}, Linux {}", sh("uname", &["-r"]))
}

/// A run written by `--run-out` (`{"run": ...}`), or a reference.
fn read_run(path: &std::path::Path) -> Option<Reference> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let run = value.get("run").cloned().unwrap_or(value);
    serde_json::from_value(run).ok()
}

fn show(m: &Measured) -> String {
    match m {
        Measured::Value(v) => format!("{v:.3}"),
        Measured::Failed(_) => "FAILED".into(),
        Measured::Missing(_) => "-".into(),
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_report: {e}");
            return ExitCode::from(2);
        }
    };
    let mut figures = Figures::new();
    read_criterion(&args.criterion_dir, &mut figures);
    read_results(&args.results_dir, &mut figures);
    let reference: Option<Reference> = std::fs::read_to_string(&args.reference)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(r) = &reference {
        println!(
            "reference: {} ({}, {}, {})",
            args.reference.display(),
            r.commit,
            r.machine,
            r.date
        );
    } else {
        println!("reference: none at {}", args.reference.display());
    }
    println!(
        "\n{:<34} {:>9} {:>12} {:>10}  verdict",
        "ratio", "now", "goal", "reference"
    );
    let mut notes = Vec::new();
    let mut now = std::collections::BTreeMap::new();
    for def in RATIOS {
        let m = measure(def, &figures);
        let reference_m = reference.as_ref().and_then(|r| r.ratios.get(def.id));
        let goal = match (def.goal, &m) {
            (Some(g), Measured::Value(v)) => format!(
                "{}{g} {}",
                if def.higher_is_better { ">=" } else { "<=" },
                if meets_goal(def, *v) == Some(true) {
                    "met"
                } else {
                    "NOT"
                }
            ),
            (Some(g), _) => format!("{}{g}", if def.higher_is_better { ">=" } else { "<=" }),
            (None, _) => String::new(),
        };
        let verdict = compare(def, &m, reference_m, args.tolerance);
        let verdict_text = match &verdict {
            Verdict::Ok => "ok".to_owned(),
            Verdict::Regressed(_) => {
                if args.goals_only && !def.gated() {
                    "worse (not gated)".to_owned()
                } else {
                    "REGRESSED".to_owned()
                }
            }
            Verdict::NoReference => match (&m, reference_m) {
                (Measured::Failed(_), Some(Measured::Failed(_))) => {
                    "still failing (as in the reference)".into()
                }
                _ => String::new(),
            },
        };
        if let Measured::Failed(why) | Measured::Missing(why) = &m {
            notes.push(format!("{}: {why}", def.id));
        }
        println!(
            "{:<34} {:>9} {:>12} {:>10}  {verdict_text}",
            def.id,
            show(&m),
            goal,
            reference_m.map_or("-".into(), show)
        );
        now.insert(def.id.to_owned(), m);
    }
    if !notes.is_empty() {
        println!("\nnot measured or failed:");
        for n in &notes {
            println!("  {n}");
        }
    }
    let run = Reference {
        commit: sh("git", &["rev-parse", "--short", "HEAD"]),
        machine: machine(),
        date: sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        command: args.command.clone(),
        ratios: now,
    };
    if let Some(path) = &args.run_out {
        let value = serde_json::json!({"run": run, "figures": figures});
        cloudproxy_benches::procs::write_file(
            path,
            &serde_json::to_string_pretty(&value).unwrap_or_default(),
        );
        println!("\nthis run: {}", path.display());
    }
    if let Some(path) = &args.write_reference {
        let mut reference = run.clone();
        for other in &args.worst_of {
            let Some(other) = read_run(other) else {
                eprintln!("bench_report: --worst-of {}: not a run", other.display());
                return ExitCode::from(2);
            };
            for def in RATIOS {
                if let (Some(mine), Some(theirs)) =
                    (reference.ratios.get(def.id), other.ratios.get(def.id))
                {
                    let w = worse(def, mine, theirs);
                    reference.ratios.insert(def.id.to_owned(), w);
                }
            }
            reference.command =
                format!("{}; the worse of it and {}", reference.command, other.date);
        }
        cloudproxy_benches::procs::write_file(
            path,
            &(serde_json::to_string_pretty(&reference).unwrap_or_default() + "\n"),
        );
        println!("reference written: {}", path.display());
    }
    if args.compare {
        let regressions = regressions(
            &figures,
            reference.as_ref(),
            args.tolerance,
            args.goals_only,
        );
        if let Some(path) = &args.retry_out {
            let targets = retry_targets(&regressions);
            let text: String = targets.iter().map(|t| format!("{t}\n")).collect();
            cloudproxy_benches::procs::write_file(path, &text);
        }
        if regressions.is_empty() {
            println!(
                "\ncompare: no ratio worse than the reference by more than {:.0}%",
                args.tolerance * 100.0
            );
        } else {
            println!(
                "\ncompare: {} ratio(s) worse than the reference by more than {:.0}%:",
                regressions.len(),
                args.tolerance * 100.0
            );
            for (id, why) in &regressions {
                println!("  {id}: {why}");
            }
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
