//! Every printed reproduction line reproduces its run: the line of a policy run, of a swarm
//! run and of a sweep's failures is run again as printed, and gives the same trace hash and the
//! same verdict. And the sweep's own contract: `--jobs` outside 1..=64 is a usage error naming
//! the range, `--swarm` goes with `--policy`, and Ctrl-C prints the partial summary.
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");
const PREFIX: &str = "cargo run --release -- ";

fn cloudproxy(args: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The JSON objects a `--json` run printed, one per line.
fn objects(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Splits a POSIX shell command line made of plain words and single-quoted ones (what the
/// reproduction lines hold).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut in_word) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {line}");
    if in_word {
        words.push(word);
    }
    words
}

/// Runs a printed reproduction line (the binary in place of `cargo run --release --`), with
/// `--json`; returns its one object.
fn rerun(line: &str) -> Value {
    let rest = line
        .strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("a reproduction line starts with {PREFIX:?}: {line}"));
    let mut args = shell_words(rest);
    args.push("--json".into());
    let out = cloudproxy(&args);
    let mut runs = objects(&out);
    assert_eq!(runs.len(), 1, "{line}: {runs:?}");
    runs.remove(0)
}

/// The original run and its reproduction agree on everything the seed decides.
fn assert_reproduces(original: &Value) {
    let line = original["reproduce"].as_str().expect("a reproduction line");
    let again = rerun(line);
    for key in [
        "scenario", "seed", "swarm", "policy", "passed", "checks", "faults",
    ] {
        assert_eq!(again[key], original[key], "{key} differs after {line}");
    }
    assert_eq!(
        again["trace"]["hash"], original["trace"]["hash"],
        "{line} gives another trace"
    );
}

fn temp_file(name: &str, text: &str) -> String {
    let path = format!("{}/reproduce-{name}", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The seed whitelist without its UDP rules: media must take the TCP tunnel.
fn tcp_only_policy() -> String {
    let seed = include_str!("../../policies/seed.toml");
    let mut blocks = seed.split("[[allow]]");
    let mut text = blocks.next().unwrap().to_owned();
    for block in blocks.filter(|b| b.contains("proto = \"tcp\"")) {
        text.push_str("[[allow]]");
        text.push_str(block);
    }
    temp_file("tcp-only.toml", &text)
}

fn one_run(args: &[&str]) -> Value {
    let out = cloudproxy(&strings(args));
    let mut runs = objects(&out);
    assert_eq!(
        runs.len(),
        1,
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    runs.remove(0)
}

#[test]
fn a_policy_runs_line_carries_the_policy_and_reproduces_it() {
    let policy = tcp_only_policy();
    let with = one_run(&[
        "run",
        "proxy-default",
        "--seed",
        "2",
        "--policy",
        &policy,
        "--json",
    ]);
    let line = with["reproduce"].as_str().unwrap();
    assert!(line.ends_with(&format!("--policy {policy}")), "{line}");
    assert_reproduces(&with);
    // The policy changes the run: the line without it (the old one) would not reproduce it.
    let without = one_run(&["run", "proxy-default", "--seed", "2", "--json"]);
    assert_ne!(with["trace"]["hash"], without["trace"]["hash"]);
}

#[test]
fn a_swarm_runs_line_carries_the_swarm_and_reproduces_it() {
    let swarm = one_run(&["run", "relay-crash", "--seed", "5", "--swarm", "--json"]);
    assert!(swarm["reproduce"].as_str().unwrap().contains(" --swarm"));
    assert!(!swarm["swarm_kinds"].as_array().unwrap().is_empty());
    assert_reproduces(&swarm);
    let calm = one_run(&["run", "relay-crash", "--seed", "5", "--json"]);
    assert_ne!(swarm["trace"]["hash"], calm["trace"]["hash"]);
}

#[test]
fn a_sweeps_failures_reproduce_swarm_and_policy_together() {
    // Behind a policy that drops everything nobody joins: under swarm faults, liveness fails.
    let deny = temp_file("deny.toml", "default = \"drop\"\n");
    let out = cloudproxy(&strings(&[
        "sweep",
        "--seeds",
        "1..3",
        "--scenario",
        "proxy-default",
        "--swarm",
        "--policy",
        &deny,
        "--jobs",
        "2",
        "--json",
    ]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = objects(&out);
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run["passed"], false, "{run}");
        let line = run["reproduce"].as_str().unwrap();
        assert!(line.contains(" --swarm --policy "), "{line}");
        assert_reproduces(run);
    }
    // The failures are also printed at once on stderr, with the same lines.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for run in &runs {
        assert!(
            stderr.contains(run["reproduce"].as_str().unwrap()),
            "{stderr}"
        );
    }
}

#[test]
fn sweep_jobs_outside_the_range_is_a_usage_error_naming_it() {
    for jobs in ["0", "65"] {
        let out = cloudproxy(&strings(&["sweep", "--jobs", jobs, "--seeds", "1..2"]));
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("1..=64"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing ran");
    }
}

#[test]
fn ctrl_c_on_a_sweep_prints_the_partial_summary() {
    let mut child = Command::new(BIN)
        .args([
            "sweep",
            "--seeds",
            "1..41",
            "--scenario",
            "proxy-default",
            "--jobs",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a sweep");
    let mut stderr = child.stderr.take().unwrap();
    // Wait for the first progress line (every 10%: 4 runs of 40), then interrupt.
    let reader = std::thread::spawn(move || {
        let (mut seen, mut buf) = (String::new(), [0u8; 256]);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !seen.contains("sweep: 4/40 runs") && Instant::now() < deadline {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        (seen, stderr)
    });
    let (seen, mut stderr) = reader.join().unwrap();
    assert!(seen.contains("sweep: 4/40 runs"), "no progress: {seen}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sweep did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}\n{seen}{rest}");
    assert!(stdout.contains("interrupted: "), "{stdout}");
    assert!(stdout.contains("of 40 runs finished"), "{stdout}");
    // The summary table of what finished: proxy-default with at least the 4 runs seen.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("proxy-default "))
        .unwrap_or_else(|| panic!("no summary row: {stdout}"));
    let runs: usize = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((4..40).contains(&runs), "{row}");
    assert!(
        stdout.contains(&format!("{runs} passed, 0 failed")),
        "{stdout}"
    );
}
