//! `cloudproxy check-firewall`, run as a process: the answer over every path explored, the
//! missing rules, resilience, the exit status, the JSON schema, the evidence files, and that
//! the rules it prints, pasted into the policy, make the best path work.

use std::process::{Command, Output};

use serde_json::{json, Value};

const SEED_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/seed.toml");

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn tmp(name: &str) -> String {
    format!("{}/check-firewall-{name}", env!("CARGO_TARGET_TMPDIR"))
}

/// Writes a policy file for a test; returns its path.
fn policy_file(name: &str, text: &str) -> String {
    let path = tmp(&format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The seed whitelist, with only the blocks that `keep` keeps, lines filtered by `edit`.
fn seed_edited(keep: impl Fn(&str) -> bool, edit: impl Fn(&str) -> String) -> String {
    let seed = std::fs::read_to_string(SEED_POLICY).unwrap();
    let mut blocks = seed.split("[[allow]]");
    let mut text = blocks.next().unwrap().to_owned();
    for block in blocks.filter(|b| keep(b)) {
        text.push_str("[[allow]]");
        text.push_str(&block.lines().map(&edit).collect::<Vec<_>>().join("\n"));
        text.push('\n');
    }
    text
}

/// The seed whitelist without its UDP rules.
fn tcp_only() -> String {
    seed_edited(|b| b.contains("proto = \"tcp\""), str::to_owned)
}

/// The seed whitelist with the second relay taken out.
fn one_relay() -> String {
    seed_edited(
        |_| true,
        |line| {
            line.replace(
                r#"to = ["120.92.118.34", "120.92.18.162"]"#,
                r#"to = ["120.92.118.34"]"#,
            )
        },
    )
}

/// The keys of the JSON answer, as docs/scenarios.md documents them.
const KEYS: [&str; 27] = [
    "joined",
    "media",
    "join_ms",
    "missing",
    "missing_reason",
    "nothing_missing",
    "summary",
    "best_path",
    "best_media",
    "best_signalling",
    "signalling",
    "reason",
    "resilient",
    "resilience",
    "resilience_missing",
    "verified",
    "paths",
    "runtime_ports",
    "dns",
    "denied",
    "notes",
    "alternative",
    "evidence",
    "route",
    "runs",
    "seed",
    "params",
];

/// Runs `check-firewall --json`; returns the exit code and the one JSON object printed.
fn check_json(policy: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check-firewall", policy, "--json"];
    args.extend_from_slice(extra);
    let out = cloudproxy(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    let value: Value = serde_json::from_str(&stdout).expect("one JSON object");
    for key in KEYS {
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
    // Never `"missing":[]` beside `"joined":false` without saying why.
    if value["joined"] == false && value["missing"] == json!([]) {
        assert!(value["missing_reason"].is_string(), "{value}");
    }
    assert_eq!(
        value["nothing_missing"] == true,
        value["summary"]
            .as_str()
            .unwrap()
            .starts_with("Nothing is missing"),
        "{value}"
    );
    (out.status.code().unwrap(), value)
}

fn relays_udp_rule() -> Value {
    json!({"proto": "udp", "to": ["120.92.118.34", "120.92.18.162"], "ports": ["4500-4650"]})
}

#[test]
fn the_seed_policy_joins_on_every_path_with_udp_media_is_resilient_and_misses_nothing() {
    let (code, v) = check_json(SEED_POLICY, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["joined"].clone(), v["media"].clone()),
        (json!(true), json!("udp"))
    );
    assert!(v["join_ms"].as_u64().unwrap() < 1000, "{v}");
    assert_eq!(v["missing"], json!([]));
    assert_eq!(v["resilient"], true, "{v}");
    assert_eq!(v["nothing_missing"], true, "{v}");
    assert_eq!(v["missing_reason"], Value::Null);
    assert_eq!(
        v["paths"].as_array().unwrap().len(),
        2,
        "each relay handed first"
    );
    assert!(
        v["signalling"]
            .as_str()
            .unwrap()
            .starts_with("cloud relay 120.92."),
        "{v}"
    );
    let out = cloudproxy(&["check-firewall", SEED_POLICY]);
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "joined      yes, on every path explored (2), in ",
        "resilient   yes: 4 access points and 2 relays reachable; checked: losing relay 120.92.118.34 mid-call, the call came back in ",
        "\nNothing is missing: the best path works on every path explored, and the call survives the loss of any one access point or relay.\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(
        !text.contains("verified"),
        "no verification note when nothing was suggested:\n{text}"
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
    assert_eq!(v["verified"]["best_path"]["verified"], true, "{v}");
    assert_eq!(v["verified"]["best_path"]["minimal"], true, "{v}");
    let out = cloudproxy(&["check-firewall", &path]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "joined      yes, on every path explored (2), in ",
        "media       tcp on every path (both ways)",
        "Missing for the best path: 1 allow rule(s). Add them to the policy:\n\n# suggested rule 1: for the best path\n[[allow]]\nproto = \"udp\"\nto = [\"120.92.118.34\", \"120.92.18.162\"]\nports = [\"4500-4650\"]\n",
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
    assert_eq!(v["resilience"]["after_missing"], true, "{v}");
    // Paste the human report's blocks into the policy: the SDK then takes its best path.
    let out = cloudproxy(&["check-firewall", &path]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks = &text[text.find("[[allow]]").expect("[[allow]] blocks")..];
    let fixed = policy_file("deny-all-fixed", &format!("{deny_all}{blocks}"));
    let (code, v) = check_json(&fixed, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (
            v["media"].clone(),
            v["missing"].clone(),
            v["nothing_missing"].clone()
        ),
        (json!("udp"), json!([]), json!(true)),
        "{v}"
    );
}

#[test]
fn one_relay_is_not_resilient_on_any_seed() {
    let path = policy_file("one-relay", &one_relay());
    for seed in ["1", "2", "3"] {
        let (code, v) = check_json(&path, &["--seed", seed]);
        assert_eq!(code, 0, "it joins, slowly when handed the other relay: {v}");
        assert_eq!(v["resilient"], false, "seed {seed}: {v}");
        assert_eq!(v["nothing_missing"], false, "seed {seed}: {v}");
        assert_eq!(v["best_path"], false, "seed {seed}: {v}");
        assert_eq!(
            v["missing"].as_array().unwrap().len(),
            2,
            "seed {seed}: {v}"
        );
    }
    let text =
        String::from_utf8_lossy(&cloudproxy(&["check-firewall", &path, "--seed", "2"]).stdout)
            .into_owned();
    assert!(
        text.contains("resilient   no, only 120.92.118.34 is reachable; losing it drops the call"),
        "{text}"
    );
}

#[test]
fn dns_blocked_with_type_1_is_never_nothing_missing_and_points_to_type_2() {
    let path = policy_file(
        "dns-blocked",
        &std::fs::read_to_string(SEED_POLICY)
            .unwrap()
            .replace("dns = \"public\"", "dns = \"blocked\""),
    );
    let (code, v) = check_json(&path, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        (v["joined"].clone(), v["missing"].clone()),
        (json!(false), json!([]))
    );
    assert!(
        v["missing_reason"]
            .as_str()
            .unwrap()
            .contains("no allow rule can help"),
        "{v}"
    );
    let alt = &v["alternative"];
    assert!(
        alt["params"][0]
            .as_str()
            .unwrap()
            .contains("\"rtc.proxy_server\":[2,"),
        "{v}"
    );
    assert_eq!(alt["report"]["joined"], true, "{v}");
    assert_eq!(alt["report"]["nothing_missing"], true, "{v}");
    let text = String::from_utf8_lossy(&cloudproxy(&["check-firewall", &path]).stdout).into_owned();
    assert!(!text.contains("Nothing is missing"), "{text}");
    assert!(
        text.contains("\ninstead     type 2, setParameters "),
        "{text}"
    );
}

#[test]
fn proxy_off_suggests_no_simulation_address_and_checks_the_proxy_on() {
    let (code, v) = check_json(SEED_POLICY, &["--params", r#"{"rtc.enable_proxy":false}"#]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["missing"], json!([]));
    assert!(
        v["missing_reason"].as_str().unwrap().contains("SD-RTN"),
        "{v}"
    );
    let rules = format!(
        "{}{}{}",
        v["missing"], v["resilience_missing"], v["alternative"]["report"]["missing"]
    );
    assert!(!rules.contains("101.36.1.10"), "{rules}");
    assert_eq!(
        v["alternative"]["params"],
        json!([r#"{"rtc.enable_proxy":true}"#])
    );
    assert_eq!(v["alternative"]["report"]["joined"], true, "{v}");
    let text = String::from_utf8_lossy(
        &cloudproxy(&[
            "check-firewall",
            SEED_POLICY,
            "--params",
            r#"{"rtc.enable_proxy":false}"#,
        ])
        .stdout,
    )
    .into_owned();
    assert!(
        text.contains("instead     the proxy on, setParameters {\"rtc.enable_proxy\":true} (the cloud proxy by domain, the default): joins behind this policy (udp media); resilient; nothing is missing"),
        "{text}"
    );
    assert!(!text.contains("[[allow]]"), "{text}");
}

#[test]
fn trace_and_pcap_write_the_evidence_of_the_best_path() {
    let path = policy_file("tcp-only-evidence", &tcp_only());
    let (trace, pcap) = (tmp("evidence.jsonl"), tmp("evidence.pcap"));
    let out = cloudproxy(&[
        "check-firewall",
        &path,
        "--trace",
        &trace,
        "--pcap",
        &pcap,
        "--progress",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("check-firewall: run 1/200 (exploring 2 path(s): 1 of 4)\n"),
        "progress on stderr: {err}"
    );
    assert!(
        err.contains(&format!("  trace {trace} ("))
            && err.contains("with the 1 rule(s) for the best path added"),
        "{err}"
    );
    let lines = std::fs::read_to_string(&trace).unwrap();
    for line in lines.lines() {
        serde_json::from_str::<Value>(line).expect("one JSON object per line");
    }
    assert!(
        lines.contains("\"path\":\"Udp\""),
        "the best path's udp media"
    );
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a classic little-endian pcap"
    );
    assert!(bytes.len() > 10_000);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nevidence    the best path: behind the policy with the 1 rule(s) for the best path added"), "{text}");
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

    for (flag, value, expected) in [
        (
            "--socks-udp-ports",
            "40099-40000",
            "expected a port range like 40000-40099",
        ),
        (
            "--socks-udp-ports",
            "0-10",
            "expected a port range like 40000-40099",
        ),
        ("--dns", "maybe", "expected public or blocked"),
    ] {
        let out = cloudproxy(&["check-firewall", SEED_POLICY, flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
    let out = cloudproxy(&[
        "check-firewall",
        SEED_POLICY,
        "--trace",
        "/no/such/dir/t.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir/t.jsonl"));

    assert_eq!(cloudproxy(&["check-firewall"]).status.code(), Some(2));
}
