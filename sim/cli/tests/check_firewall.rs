//! `cloudproxy check-firewall`, run as a process: the answer, the missing rules, the exit
//! status, and that the rules it prints, pasted into the policy, make the best path work.

use std::process::{Command, Output};

use serde_json::{json, Value};

const SEED_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/seed.toml");

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        .args(args)
        .output()
        .expect("run cloudproxy")
}

/// Writes a policy file for a test; returns its path.
fn policy_file(name: &str, text: &str) -> String {
    let path = format!("{}/check-firewall-{name}.toml", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The seed whitelist without its UDP rules.
fn tcp_only() -> String {
    let seed = std::fs::read_to_string(SEED_POLICY).unwrap();
    let mut blocks = seed.split("[[allow]]");
    let mut text = blocks.next().unwrap().to_owned();
    for block in blocks.filter(|b| b.contains("proto = \"tcp\"")) {
        text.push_str("[[allow]]");
        text.push_str(block);
    }
    text
}

/// Runs `check-firewall --json`; returns the exit code and the one JSON object printed.
fn check_json(policy: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check-firewall", policy, "--json"];
    args.extend_from_slice(extra);
    let out = cloudproxy(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    let value: Value = serde_json::from_str(&stdout).expect("one JSON object");
    for key in ["joined", "media", "join_ms", "missing"] {
        assert!(value.get(key).is_some(), "{key} missing from {value}");
    }
    assert!(value["joined"].is_boolean());
    assert!(["udp", "tcp", "none"].contains(&value["media"].as_str().unwrap()));
    assert_eq!(
        value["join_ms"].is_u64(),
        value["joined"] == true,
        "{value}"
    );
    for rule in value["missing"].as_array().expect("missing is a list") {
        let keys: Vec<&String> = rule.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ports", "proto", "to"], "{rule}");
    }
    (out.status.code().unwrap(), value)
}

fn relays_udp_rule() -> Value {
    json!({"proto": "udp", "to": ["120.92.118.34", "120.92.18.162"], "ports": ["4500-4650"]})
}

#[test]
fn the_seed_policy_joins_with_udp_media_and_misses_nothing() {
    let (code, v) = check_json(SEED_POLICY, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["joined"], true);
    assert_eq!(v["media"], "udp");
    assert!(v["join_ms"].as_u64().unwrap() < 1000, "{v}");
    assert_eq!(v["missing"], json!([]));
    assert!(
        v["signalling"]
            .as_str()
            .unwrap()
            .starts_with("cloud relay 120.92."),
        "{v}"
    );
}

#[test]
fn a_tcp_only_policy_joins_over_tcp_and_misses_the_udp_media_rule() {
    let path = policy_file("tcp-only", &tcp_only());
    let (code, v) = check_json(&path, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["joined"].clone(), v["media"].clone()),
        (json!(true), json!("tcp"))
    );
    // Minimal: the access point answers over TCP as well, so only the relays' UDP is missing.
    assert_eq!(v["missing"], json!([relays_udp_rule()]), "{v}");
    assert_eq!(v["best_media"], "udp");
    // The report for a person says the same, with a block to paste.
    let out = cloudproxy(&["check-firewall", &path]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "joined      yes, in ",
        "media       tcp (both ways",
        "[[allow]]\nproto = \"udp\"\nto = [\"120.92.118.34\", \"120.92.18.162\"]\nports = [\"4500-4650\"]\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn a_deny_all_policy_does_not_join_and_the_printed_rules_fix_it() {
    let deny_all = "default = \"drop\"\n";
    let path = policy_file("deny-all", deny_all);
    let (code, v) = check_json(&path, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["joined"], false);
    assert_eq!(v["media"], "none");
    assert_eq!(v["join_ms"], Value::Null);
    assert_eq!(v["signalling"], "none");
    let missing = v["missing"].as_array().unwrap();
    assert!(missing.contains(&relays_udp_rule()), "{v}");
    assert!(
        missing.contains(
            &json!({"proto": "tcp", "to": ["120.92.118.34", "120.92.18.162"], "ports": ["4000"]})
        ),
        "{v}"
    );
    assert!(
        missing.iter().any(|r| r["to"][0] == "47.74.211.17"),
        "an access-point rule: {v}"
    );
    assert!(!v["denied"].as_array().unwrap().is_empty());
    // Paste the human report's blocks into the policy: the SDK then takes its best path.
    let out = cloudproxy(&["check-firewall", &path]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks = &text[text.find("[[allow]]").expect("[[allow]] blocks")..];
    let fixed = policy_file("deny-all-fixed", &format!("{deny_all}{blocks}"));
    let (code, v) = check_json(&fixed, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["media"].clone(), v["missing"].clone()),
        (json!("udp"), json!([]))
    );
}

#[test]
fn proxy_off_needs_the_edge_itself() {
    let (code, v) = check_json(SEED_POLICY, &["--params", r#"{"rtc.enable_proxy":false}"#]);
    assert_eq!(code, 1, "{v}");
    let missing = v["missing"].as_array().unwrap();
    assert!(
        missing.contains(&json!({"proto": "tcp", "to": ["101.36.1.10"], "ports": ["5000"]})),
        "{v}"
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let missing_file = format!("{}/no-such-policy.toml", env!("CARGO_TARGET_TMPDIR"));
    let out = cloudproxy(&["check-firewall", &missing_file, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-policy.toml"));

    let bad = policy_file("bad", "default = \"maybe\"\n");
    let out = cloudproxy(&["check-firewall", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("check-firewall-bad.toml") && err.contains("unknown variant"),
        "{err}"
    );

    let bad_rule = policy_file(
        "bad-rule",
        "default = \"drop\"\n[[allow]]\nproto = \"udp\"\nto = [\"120.92.118\"]\nports = [\"4500-4650\"]\n",
    );
    let err =
        String::from_utf8_lossy(&cloudproxy(&["check-firewall", &bad_rule]).stderr).into_owned();
    assert!(
        err.contains("`to` entry \"120.92.118\" is not an IP address or CIDR block"),
        "{err}"
    );

    let out = cloudproxy(&[
        "check-firewall",
        SEED_POLICY,
        "--params",
        r#"{"rtc.enable_proxy":1}"#,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rtc.enable_proxy"));

    assert_eq!(cloudproxy(&["check-firewall"]).status.code(), Some(2));
}
