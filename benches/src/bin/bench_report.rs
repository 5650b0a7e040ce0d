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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cloudproxy_benches::results::{
    compare, measure, meets_goal, read_criterion, read_results, regressions, results_dir,
    retry_targets, target_dir, worse, Figures, Measured, RatioDef, Reference, Verdict, RATIOS,
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
fn read_run(path: &Path) -> Option<Reference> {
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
    let reference = read_reference(&args.reference);
    let ratios = print_table(&args, &figures, reference.as_ref());
    let run = Reference {
        commit: sh("git", &["rev-parse", "--short", "HEAD"]),
        machine: machine(),
        date: sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        command: args.command.clone(),
        ratios,
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
        if let Err(code) = write_reference(path, &run, &args.worst_of) {
            return code;
        }
    }
    if args.compare {
        return gate(&args, &figures, reference.as_ref());
    }
    ExitCode::SUCCESS
}

/// The reference at `path` (none when it is absent or not a reference), said on the first
/// line of the report.
fn read_reference(path: &Path) -> Option<Reference> {
    let reference: Option<Reference> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(r) = &reference {
        println!(
            "reference: {} ({}, {}, {})",
            path.display(),
            r.commit,
            r.machine,
            r.date
        );
    } else {
        println!("reference: none at {}", path.display());
    }
    reference
}

/// Prints every ratio beside its goal, its reference and its verdict, then what was not
/// measured or failed; returns the ratios measured.
fn print_table(
    args: &Args,
    figures: &Figures,
    reference: Option<&Reference>,
) -> BTreeMap<String, Measured> {
    println!(
        "\n{:<34} {:>9} {:>12} {:>10}  verdict",
        "ratio", "now", "goal", "reference"
    );
    let mut notes = Vec::new();
    let mut now = BTreeMap::new();
    for def in RATIOS {
        let m = measure(def, figures);
        let reference_m = reference.and_then(|r| r.ratios.get(def.id));
        let verdict = compare(def, &m, reference_m, args.tolerance);
        if let Measured::Failed(why) | Measured::Missing(why) = &m {
            notes.push(format!("{}: {why}", def.id));
        }
        println!(
            "{:<34} {:>9} {:>12} {:>10}  {}",
            def.id,
            show(&m),
            goal_text(def, &m),
            reference_m.map_or("-".into(), show),
            verdict_text(def, &verdict, &m, reference_m, args.goals_only)
        );
        now.insert(def.id.to_owned(), m);
    }
    if !notes.is_empty() {
        println!("\nnot measured or failed:");
        for n in &notes {
            println!("  {n}");
        }
    }
    now
}

/// The goal column: the bound and, when measured, whether it is met; empty without a goal.
fn goal_text(def: &RatioDef, m: &Measured) -> String {
    let bound = if def.higher_is_better { ">=" } else { "<=" };
    match (def.goal, m) {
        (Some(g), Measured::Value(v)) => format!(
            "{bound}{g} {}",
            if meets_goal(def, *v) == Some(true) {
                "met"
            } else {
                "NOT"
            }
        ),
        (Some(g), _) => format!("{bound}{g}"),
        (None, _) => String::new(),
    }
}

/// The verdict column: a regression says whether it gates (`--goals-only` gates only the
/// gated ratios), and a case failing in the reference too says so.
fn verdict_text(
    def: &RatioDef,
    verdict: &Verdict,
    m: &Measured,
    reference_m: Option<&Measured>,
    goals_only: bool,
) -> String {
    match verdict {
        Verdict::Ok => "ok".to_owned(),
        Verdict::Regressed(_) if goals_only && !def.gated() => "worse (not gated)".to_owned(),
        Verdict::Regressed(_) => "REGRESSED".to_owned(),
        Verdict::NoReference => match (m, reference_m) {
            (Measured::Failed(_), Some(Measured::Failed(_))) => {
                "still failing (as in the reference)".into()
            }
            _ => String::new(),
        },
    }
}

/// `run` as a reference, each ratio the worse of it and the same ratio of every `worst_of`
/// run (`Err`, its path, when one is not a run).
fn worst_of_runs<'a>(run: &Reference, worst_of: &'a [PathBuf]) -> Result<Reference, &'a Path> {
    let mut reference = run.clone();
    for path in worst_of {
        let other = read_run(path).ok_or(path.as_path())?;
        for def in RATIOS {
            if let (Some(mine), Some(theirs)) =
                (reference.ratios.get(def.id), other.ratios.get(def.id))
            {
                let w = worse(def, mine, theirs);
                reference.ratios.insert(def.id.to_owned(), w);
            }
        }
        reference.command = format!("{}; the worse of it and {}", reference.command, other.date);
    }
    Ok(reference)
}

/// `--write-reference`: writes `run` (taken the worse of it and the `--worst-of` runs) to
/// `path`; a `--worst-of` file that is not a run is a usage error (exit 2), nothing written.
fn write_reference(path: &Path, run: &Reference, worst_of: &[PathBuf]) -> Result<(), ExitCode> {
    let reference = worst_of_runs(run, worst_of).map_err(|bad| {
        eprintln!("bench_report: --worst-of {}: not a run", bad.display());
        ExitCode::from(2)
    })?;
    cloudproxy_benches::procs::write_file(
        path,
        &(serde_json::to_string_pretty(&reference).unwrap_or_default() + "\n"),
    );
    println!("reference written: {}", path.display());
    Ok(())
}

/// `--compare`: the regressions against the reference (and `--retry-out`'s targets); exit 1
/// when there is one.
fn gate(args: &Args, figures: &Figures, reference: Option<&Reference>) -> ExitCode {
    let regressions = regressions(figures, reference, args.tolerance, args.goals_only);
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
        return ExitCode::SUCCESS;
    }
    println!(
        "\ncompare: {} ratio(s) worse than the reference by more than {:.0}%:",
        regressions.len(),
        args.tolerance * 100.0
    );
    for (id, why) in &regressions {
        println!("  {id}: {why}");
    }
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudproxy_benches::results::Quotient;

    fn def(id: &'static str, goal: Option<f64>) -> RatioDef {
        RatioDef {
            id,
            what: "a test ratio",
            quotient: Quotient::NotYet("a test"),
            higher_is_better: false,
            goal,
        }
    }

    #[test]
    fn the_goal_column_gives_the_bound_and_whether_it_is_met() {
        let d = def("params.domain", Some(2.0));
        assert_eq!(goal_text(&d, &Measured::Value(1.5)), "<=2 met");
        assert_eq!(goal_text(&d, &Measured::Value(2.5)), "<=2 NOT");
        assert_eq!(goal_text(&d, &Measured::Missing("x".into())), "<=2");
        assert_eq!(
            goal_text(&def("call.jitter", None), &Measured::Value(9.0)),
            ""
        );
    }

    #[test]
    fn the_verdict_column_says_whether_a_regression_gates_and_what_still_fails() {
        let worse = Verdict::Regressed("3 against 2".into());
        let v = Measured::Value(3.0);
        let gated = def("params.domain", Some(2.0));
        let context = def("call.jitter", None);
        assert_eq!(verdict_text(&gated, &worse, &v, None, true), "REGRESSED");
        assert_eq!(verdict_text(&context, &worse, &v, None, false), "REGRESSED");
        assert_eq!(
            verdict_text(&context, &worse, &v, None, true),
            "worse (not gated)"
        );
        assert_eq!(verdict_text(&context, &Verdict::Ok, &v, None, true), "ok");
        let failed = Measured::Failed("boom".into());
        assert_eq!(
            verdict_text(&gated, &Verdict::NoReference, &failed, Some(&failed), true),
            "still failing (as in the reference)"
        );
        assert_eq!(
            verdict_text(&gated, &Verdict::NoReference, &failed, None, true),
            ""
        );
    }

    #[test]
    fn a_reference_from_several_runs_takes_each_ratio_at_its_worse_and_refuses_a_non_run() {
        let dir = std::env::temp_dir().join(format!("bench_report_worst_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, id) = (RATIOS[0], RATIOS[0].id.to_owned());
        let run = |v: f64, date: &str| Reference {
            date: date.into(),
            command: "benches/quick".into(),
            ratios: [(id.clone(), Measured::Value(v))].into(),
            ..Reference::default()
        };
        let other = dir.join("other.json");
        std::fs::write(
            &other,
            serde_json::json!({"run": run(5.0, "then")}).to_string(),
        )
        .unwrap();
        let got = worst_of_runs(&run(4.0, "now"), std::slice::from_ref(&other)).unwrap();
        let expected = if first.higher_is_better { 4.0 } else { 5.0 };
        assert_eq!(got.ratios[&id], Measured::Value(expected));
        assert_eq!(got.command, "benches/quick; the worse of it and then");
        let junk = dir.join("junk.json");
        std::fs::write(&junk, "not json").unwrap();
        assert_eq!(
            worst_of_runs(&run(4.0, "now"), std::slice::from_ref(&junk)).err(),
            Some(junk.as_path())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
