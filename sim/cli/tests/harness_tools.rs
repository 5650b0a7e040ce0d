//! The harness's power tools from the command line: `run`/`sweep --scenario-file`, `shrink`
//! (a failure hidden among harmless faults shrinks to the one fault it needs, written as a
//! file that fails on its own), and the failure report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../scenarios/{name}.toml"))
        .display()
        .to_string()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudproxy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A call whose resolver goes down at 0 s for good, hidden among seven harmless faults.
const HIDDEN: &str = r#"name = "dns-outage-hidden"
duration_s = 12

[[enterprise]]
name = "bank"
host = "10.1.0.10"

[[enterprise.client]]
name = "alice"
uid = 1
params = ['{"rtc.enable_proxy":true}']

[[enterprise]]
name = "hospital"
host = "10.2.0.10"

[[enterprise.client]]
name = "bob"
uid = 2
params = ['{"rtc.enable_proxy":true}']

[[fault]]
at_s = 0.5
latency = ["bank", "relay1"]
latency_ms = 30

[[fault]]
at_s = 0
dns_outage = true

[[fault]]
at_s = 1
impair = { loss_pct = 1, jitter_ms = 5 }

[[fault]]
at_s = 3
impair = {}

[[fault]]
at_s = 4
hold = ["hospital", "relay2"]

[[fault]]
at_s = 4.5
release = ["hospital", "relay2"]

[[fault]]
at_s = 5
restart = "ap3"

[[fault]]
at_s = 6
latency = ["hospital", "relay1"]
latency_ms = 15

[[check]]
joined = "alice"
"#;

#[test]
fn run_and_sweep_take_scenario_files_and_refuse_bad_ones_with_the_line() {
    let output = cloudproxy(&[
        "run",
        "--scenario-file",
        &shipped("direct-open"),
        "--seed",
        "2",
    ]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("direct-open        pass"), "{out}");
    assert!(
        out.contains(&format!(
            "Reproduce: cargo run --release -- run --scenario-file {} --seed 2",
            shipped("direct-open")
        )),
        "{out}"
    );
    let output = cloudproxy(&[
        "sweep",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--scenario-file",
        &shipped("direct-open"),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("2 run(s)"), "{}", text(&output));
    let dir = temp_dir("bad-scenario");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "duration_s = 10\n\n[[fault]]\nat_s = 1\ncrash = \"apx\"\n",
    )
    .unwrap();
    let output = cloudproxy(&["run", "--scenario-file", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("bad.toml:5: `fault[1].crash`: \"apx\" is not a host"),
        "{}",
        text(&output)
    );
}

#[test]
fn shrink_finds_the_one_fault_a_failure_needs_and_writes_a_file_that_fails_on_its_own() {
    let dir = temp_dir("shrink");
    let file = dir.join("hidden.toml");
    std::fs::write(&file, HIDDEN).unwrap();
    let shrunk = dir.join("shrunk.toml");
    let output = cloudproxy(&[
        "shrink",
        "--scenario-file",
        file.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        shrunk.to_str().unwrap(),
    ]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("shrunk: 8 -> 1 faults"), "{out}");
    assert!(out.contains("0.000 s  DNS outage starts"), "{out}");
    assert!(
        out.contains("still fails: alice joins: never connected"),
        "{out}"
    );
    let line = format!(
        "reproduce: cargo run --release -- run --scenario-file {} --seed 1",
        shrunk.display()
    );
    assert!(out.contains(&line), "{out}");
    // The file fails on its own, the same check.
    let output = cloudproxy(&[
        "run",
        "--scenario-file",
        shrunk.to_str().unwrap(),
        "--seed",
        "1",
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("check failed: alice joins: never connected"),
        "{out}"
    );
    assert!(out.contains("faults: 0.000 s DNS outage starts\n"), "{out}");
    // A passing run has nothing to shrink.
    let output = cloudproxy(&["shrink", "direct-open", "--seed", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("there is no failure to shrink"),
        "{}",
        text(&output)
    );
}
