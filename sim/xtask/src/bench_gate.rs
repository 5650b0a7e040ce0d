//! `cargo xtask bench-gate`: the benchmark regression gate CI runs after the tests.
//!
//! It runs the quick suite and compares every goal ratio with the committed reference
//! (`benches/quick --compare --goals-only --tolerance 0.35`, see `benches/README.md`, "Noise").
//! A shared 2-core machine is noisy, so the gate is built not to cry wolf:
//!
//! - every gated figure is a **ratio against a baseline measured in the same run** (machine
//!   load hits both sides), never an absolute figure, except the memory ones (which do not
//!   depend on load);
//! - a **tolerance of 35%**, wider than the largest move of a goal ratio seen between two
//!   quick runs on this machine, still far below the changes that matter (a cut tunnel, 2x);
//! - a ratio that regressed has its benchmark target **run once more** (only those targets,
//!   the others' results kept) and is compared again; the gate fails only when it regressed
//!   both times.
//!
//! Exit status: 0 when no gated ratio regressed (at the first or the second try), 1 otherwise.

use std::process::{Command, ExitCode};

use crate::{root, run};

/// The tolerance the gate compares with (a fraction of the reference).
pub const TOLERANCE: &str = "0.35";

/// How one run of the quick suite compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No gated ratio regressed.
    Passed,
    /// These benchmark targets measured a ratio that regressed.
    Regressed(Vec<String>),
    /// The suite could not run or compare (a usage error, a missing tool): why.
    Broken(String),
}

/// The gate's decision: `suite(None)` runs the whole quick suite, `suite(Some(targets))` only
/// those targets again. Passes when the first run passes, or when the targets that regressed
/// pass when run once more.
pub fn decide(mut suite: impl FnMut(Option<&[String]>) -> Outcome) -> Result<(), String> {
    let targets = match suite(None) {
        Outcome::Passed => return Ok(()),
        Outcome::Broken(why) => return Err(why),
        Outcome::Regressed(targets) if targets.is_empty() => {
            return Err("the comparison failed without naming a benchmark to retry".into())
        }
        Outcome::Regressed(targets) => targets,
    };
    println!(
        "\n    regressed: {}; running those once more before failing",
        targets.join(", ")
    );
    match suite(Some(&targets)) {
        Outcome::Passed => {
            println!("    passed on the retry (the first result was noise)");
            Ok(())
        }
        Outcome::Regressed(again) => Err(format!(
            "benchmark ratios regressed twice in a row (targets: {}); see the table above. If the change is intended, take a new reference (benches/README.md)",
            again.join(", ")
        )),
        Outcome::Broken(why) => Err(why),
    }
}

/// Runs `benches/quick` (all targets, or `only`) with the comparison and reads which targets
/// regressed.
fn quick(only: Option<&[String]>) -> Outcome {
    let retry = root().join("target/bench-results/retry.txt");
    let _ = std::fs::remove_file(&retry);
    let mut command = Command::new(root().join("benches/quick"));
    command.current_dir(root()).args([
        "--compare",
        "--goals-only",
        "--tolerance",
        TOLERANCE,
        "--retry-out",
        "target/bench-results/retry.txt",
    ]);
    if let Some(targets) = only {
        command.env("BENCH_ONLY", targets.join(" "));
    }
    match run(&mut command) {
        Ok(()) => Outcome::Passed,
        Err(why) => match std::fs::read_to_string(&retry) {
            // bench_report wrote the file: the comparison ran and found regressions.
            Ok(text) => Outcome::Regressed(text.lines().map(str::to_owned).collect()),
            Err(_) => Outcome::Broken(format!("the quick suite did not compare: {why}")),
        },
    }
}

/// `cargo xtask bench-gate`.
pub fn main() -> ExitCode {
    println!("==> bench gate: benches/quick --compare --goals-only --tolerance {TOLERANCE} (a failing target is retried once)");
    match decide(quick) {
        Ok(()) => {
            println!("\ncargo xtask bench-gate: no goal ratio regressed");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("\ncargo xtask bench-gate: FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A suite that answers from a script and records what it was asked to run.
    fn scripted(answers: Vec<Outcome>) -> (Result<(), String>, Vec<Option<Vec<String>>>) {
        let mut answers = answers.into_iter();
        let mut asked = Vec::new();
        let result = decide(|only| {
            asked.push(only.map(<[String]>::to_vec));
            answers.next().expect("asked more often than scripted")
        });
        (result, asked)
    }

    fn regressed(targets: &[&str]) -> Outcome {
        Outcome::Regressed(targets.iter().map(|t| (*t).to_owned()).collect())
    }

    #[test]
    fn a_clean_run_passes_without_a_retry() {
        let (result, asked) = scripted(vec![Outcome::Passed]);
        assert_eq!(result, Ok(()));
        assert_eq!(asked, vec![None]);
    }

    #[test]
    fn a_regression_that_repeats_fails_the_gate() {
        let (result, asked) = scripted(vec![regressed(&["relay_udp"]), regressed(&["relay_udp"])]);
        let why = result.unwrap_err();
        assert!(why.contains("relay_udp"), "{why}");
        assert_eq!(asked, vec![None, Some(vec!["relay_udp".to_owned()])]);
    }

    #[test]
    fn noise_that_passes_on_the_retry_passes() {
        let (result, asked) = scripted(vec![regressed(&["relay_cpu", "memory"]), Outcome::Passed]);
        assert_eq!(result, Ok(()));
        assert_eq!(
            asked[1],
            Some(vec!["relay_cpu".to_owned(), "memory".to_owned()])
        );
    }

    #[test]
    fn a_broken_suite_fails_at_once() {
        let (result, asked) = scripted(vec![Outcome::Broken("no cargo".into())]);
        assert_eq!(result, Err("no cargo".into()));
        assert_eq!(asked.len(), 1);
        let (result, _) = scripted(vec![regressed(&[])]);
        assert!(result.is_err());
    }
}
