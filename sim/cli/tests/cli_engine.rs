//! The `cloudproxy engine` contract, run as a process: output lines and exit status.

use std::process::{Command, Output};

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn exit_0_when_every_op_returns_0() {
    let out = cloudproxy(&["engine", r#"{"rtc.enable_proxy":true}"#, "join", "leave"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["op"], "join");
    assert_eq!(lines[1]["state"], "joined");
    assert_eq!(
        lines[1]["in_force"]["rtc.proxy_server"],
        serde_json::json!([1, "ap-proxy.agora.io", 0])
    );
}

#[test]
fn exit_1_when_an_op_fails_and_the_rest_still_run() {
    let out = cloudproxy(&[
        "engine",
        "leave",
        r#"{"rtc.enable_proxy":1}"#,
        r#"{"rtc.enable_proxy":true}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let codes: Vec<i64> = lines(&out)
        .iter()
        .map(|l| l["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [-18, -2, 0]);
}

#[test]
fn exit_2_on_usage_errors() {
    assert_eq!(cloudproxy(&["engine"]).status.code(), Some(2));
    assert_eq!(
        cloudproxy(&["engine", "--no-such-flag", "join"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(cloudproxy(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn compat_flag() {
    let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
    let strict = cloudproxy(&["engine", seed]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(lines(&strict)[0]["error"]
        .as_str()
        .unwrap()
        .contains("not escaped"));
    assert_eq!(
        cloudproxy(&["engine", "--compat", seed]).status.code(),
        Some(0)
    );
}

#[test]
fn list_names_every_scenario() {
    let out = cloudproxy(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        cloudproxy_sim::scenario::catalogue().len()
    );
    assert!(text.contains("relay-crash") && text.contains("vpn-blocks-udp"));
}

#[test]
fn run_prints_the_report_and_the_reproduction_line() {
    let out = cloudproxy(&["run", "proxy-default", "--seed", "3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("proxy-default      pass"), "{text}");
    assert!(
        text.contains("cargo run --release -- run proxy-default --seed 3"),
        "{text}"
    );
}

#[test]
fn run_usage_errors_exit_2() {
    assert_eq!(
        cloudproxy(&["run", "no-such-scenario"]).status.code(),
        Some(2)
    );
    assert_eq!(
        cloudproxy(&["run", "--policy", "/nonexistent.toml", "proxy-default"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn run_with_a_policy_that_blocks_everything_fails_with_exit_1() {
    let path =
        std::env::temp_dir().join(format!("cloudproxy-deny-all-{}.toml", std::process::id()));
    std::fs::write(&path, "default = \"drop\"\n").unwrap();
    let out = cloudproxy(&["run", "proxy-default", "--policy", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("check failed: alice joins"), "{text}");
    assert!(text.contains("reproduce:"), "{text}");
}
