//! `--params-file FILE` (`-` for standard input) on `engine`, `check-firewall` and `call`: one
//! setParameters text per file, before the command line's own texts, bounded at 64 KiB (the
//! most a setParameters text may hold); a bad file is a usage error naming it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");
const SEED_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/seed.toml");
const IP_LIST: &str = r#"{"rtc.proxy_server":[2,"[\"47.74.211.17\",\"52.80.192.229\"]",0]}"#;

fn cloudproxy(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cloudproxy");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn file(name: &str, text: &str) -> String {
    let path = format!("{}/params-{name}", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, text).unwrap();
    path
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn engine_runs_file_and_stdin_texts_first_then_the_ops() {
    let enable = file("enable.json", "{\"rtc.enable_proxy\":true}\n");
    let out = cloudproxy(
        &[
            "engine",
            "--params-file",
            &enable,
            "--params-file",
            "-",
            "join",
        ],
        Some(IP_LIST),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["set", "set", "join"]);
    assert_eq!(
        lines[2]["in_force"]["rtc.proxy_server"][0], 2,
        "{}",
        lines[2]
    );
    // Files alone are enough: no OP needed.
    let out = cloudproxy(&["engine", "--params-file", &enable], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(self::lines(&out).len(), 1);
}

#[test]
fn bad_files_are_usage_errors_naming_the_file_and_the_bound() {
    let big = file("big.json", &" ".repeat(64 * 1024 + 1));
    let empty = file("empty.json", "");
    for (args, says) in [
        (
            vec!["engine", "--params-file", big.as_str()],
            "longer than 65536 bytes",
        ),
        (vec!["engine", "--params-file", empty.as_str()], "empty"),
        (
            vec!["engine", "--params-file", "/nonexistent.json"],
            "/nonexistent.json",
        ),
        (
            vec!["check-firewall", SEED_POLICY, "--params-file", big.as_str()],
            "longer than 65536 bytes",
        ),
        (
            vec!["call", "--for", "1", "--params-file", big.as_str()],
            "longer than 65536 bytes",
        ),
    ] {
        let out = cloudproxy(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--params-file"), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} ran anyway");
    }
    assert!(
        String::from_utf8_lossy(&cloudproxy(&["engine", "--params-file", &big], None).stderr)
            .contains(&big)
    );
}

#[test]
fn check_firewall_reads_its_texts_from_a_file_or_stdin_before_the_params() {
    const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;
    let enable = file("enable-check.json", ENABLE);
    for (source, stdin) in [(enable.as_str(), None), ("-", Some(ENABLE))] {
        let out = cloudproxy(
            &[
                "check-firewall",
                SEED_POLICY,
                "--params-file",
                source,
                "--params",
                IP_LIST,
                "--json",
            ],
            stdin,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report = &lines(&out)[0];
        assert_eq!(report["joined"], true, "{report}");
        assert_eq!(
            report["params"],
            serde_json::json!([ENABLE, IP_LIST]),
            "{report}"
        );
    }
}

#[test]
fn call_checks_its_file_texts_before_opening_any_socket() {
    let bad = file("bad-type.json", r#"{"rtc.proxy_server":[3,"x",0]}"#);
    let out = cloudproxy(&["call", "--for", "1", "--params-file", &bad], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rtc.proxy_server"));
}
