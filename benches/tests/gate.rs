//! The CI gate's exit status, end to end: `bench_report --compare` on planted criterion files
//! and a planted reference exits 0 on a run like the reference, 1 on a planted regression
//! (naming the benchmark target to run again in `--retry-out`), 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cp-gate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes criterion's two files for `group/function` with median `ns`.
fn criterion_figure(dir: &Path, group: &str, function: &str, ns: f64) {
    let new = dir.join(group).join(function).join("new");
    std::fs::create_dir_all(&new).unwrap();
    let id = format!(r#"{{"group_id":"{group}","function_id":"{function}"}}"#);
    std::fs::write(new.join("benchmark.json"), id).unwrap();
    let est = format!(r#"{{"median":{{"point_estimate":{ns}}}}}"#);
    std::fs::write(new.join("estimates.json"), est).unwrap();
}

/// Runs bench_report on a run whose serve echo takes `serve_ns` per round trip (the naive
/// relay 1 000 ns), against a reference that measured serve / naive = 1.0.
fn gate(name: &str, serve_ns: f64, extra: &[&str]) -> (i32, String, String) {
    let dir = scratch(name);
    let criterion = dir.join("criterion");
    criterion_figure(&criterion, "udp_echo_1200B_w64", "naive", 1_000.0);
    criterion_figure(&criterion, "udp_echo_1200B_w64", "serve", serve_ns);
    let results = dir.join("bench-results");
    std::fs::create_dir_all(&results).unwrap();
    let reference = dir.join("reference.json");
    std::fs::write(
        &reference,
        r#"{"commit":"test","machine":"test","date":"test","command":"test",
            "ratios":{"udp_echo.serve_vs_naive":{"Value":1.0},
                      "tcp_one_way.serve_vs_copy8k":{"Failed":"cut in the reference"}}}"#,
    )
    .unwrap();
    let retry = dir.join("retry.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_bench_report"))
        .args(["--compare", "--goals-only", "--tolerance", "0.35"])
        .arg("--reference")
        .arg(&reference)
        .arg("--criterion-dir")
        .arg(&criterion)
        .arg("--results-dir")
        .arg(&results)
        .arg("--retry-out")
        .arg(&retry)
        .args(extra)
        .output()
        .expect("bench_report runs");
    let retried = std::fs::read_to_string(&retry).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        retried,
    )
}

#[test]
fn a_run_like_the_reference_passes() {
    let (code, stdout, retry) = gate("same", 1_000.0, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("compare: no ratio worse"), "{stdout}");
    assert_eq!(retry, "");
}

#[test]
fn noise_within_the_tolerance_passes() {
    // 25% slower: within 35%.
    let (code, stdout, _) = gate("noise", 1_250.0, &[]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn a_planted_regression_fails_and_names_its_target() {
    // Half the round trips per second.
    let (code, stdout, retry) = gate("regressed", 2_000.0, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("udp_echo.serve_vs_naive"), "{stdout}");
    assert!(stdout.contains("REGRESSED"), "{stdout}");
    assert_eq!(retry, "relay_udp\n");
}

#[test]
fn a_usage_error_is_exit_2() {
    let (code, _, _) = gate("usage", 1_000.0, &["--tolerance", "7"]);
    assert_eq!(code, 2);
}
