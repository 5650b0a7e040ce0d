//! `cloudproxy check-firewall` in the administrator's formats, run as a process: the missing
//! rules as nft and iptables input, policies imported with `--from-nft` / `--from-iptables`,
//! the errors; and, in network namespaces this test creates, the whole loop an administrator
//! runs: export the firewall, check it, load the printed rules, check again.
//!
//! The loop needs root, `ip`, `nft` and `iptables` (Debian's nftables, iptables, iproute2):
//! without them it fails with the install command, never passes silently.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::policy_formats::{compile_iptables, compile_nft, CompileOptions, Hook};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../world/src/policy_formats/fixtures"
);

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudproxy"))
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn file(name: &str, text: &str) -> String {
    let path = format!(
        "{}/check-firewall-formats-{name}",
        env!("CARGO_TARGET_TMPDIR")
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check-firewall", "--json"];
    all.extend_from_slice(args);
    let out = cloudproxy(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        serde_json::from_str(&stdout).unwrap(),
    )
}

fn tcp_only_toml() -> String {
    let policy = Policy::seed_tcp_only();
    let mut t = String::from("default = \"drop\"\n");
    for r in &policy.rules {
        let to: Vec<String> = r.to.iter().map(|b| format!("\"{}\"", b.addr())).collect();
        let ports: Vec<String> = r
            .ports
            .iter()
            .map(|p| format!("\"{}-{}\"", p.start(), p.end()))
            .collect();
        t.push_str(&format!(
            "[[allow]]\nproto = \"{}\"\nto = [{}]\nports = [{}]\n",
            r.proto,
            to.join(", "),
            ports.join(", ")
        ));
    }
    t
}

#[test]
fn missing_rules_print_as_nft_and_iptables_input() {
    let path = file("tcp-only.toml", &tcp_only_toml());
    let out = cloudproxy(&["check-firewall", &path, "--format", "nft"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "media       tcp on every path (both ways)",
        "Missing for the best path: 1 allow rule(s). Load them with nft -f FILE:\n\n# nft -f input: inserts the rules at the top of the chain inet cloudproxy_check_firewall_formats_tcp_only output\n",
        "insert rule inet cloudproxy_check_firewall_formats_tcp_only output ip daddr { 120.92.18.162, 120.92.118.34 } udp dport 4500-4650 counter accept comment \"cloudproxy suggested rule 1: udp to 120.92.118.34, 120.92.18.162 ports 4500-4650\"\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(!text.contains("[[allow]]"), "{text}");
    let out = cloudproxy(&[
        "check-firewall",
        &path,
        "--format",
        "iptables",
        "--hook",
        "forward",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("*filter\n-I cloudproxy-check_firewall_fo 1 -d 120.92.18.162/32 -p udp -m udp --dport 4500:4650 -m comment --comment \"cloudproxy suggested rule 1:"), "{text}");
    let (code, v) = json(&[&path, "--format", "iptables"]);
    assert_eq!(code, 0);
    assert_eq!(v["missing"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["missing_text"]
            .as_str()
            .unwrap()
            .contains("-p udp -m udp --dport 4500:4650"),
        "{v}"
    );
    // The TOML format is the default report.
    let out = cloudproxy(&["check-firewall", &path, "--format", "toml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[[allow]]\nproto = \"udp\""));
}

#[test]
fn imported_firewalls_are_checked_like_their_toml() {
    let nft = format!("{FIXTURES}/admin-nft.json");
    let nft_text = format!("{FIXTURES}/admin-nft.txt");
    let ipt = format!("{FIXTURES}/admin-iptables.rules");
    let (code, from_nft) = json(&["--from-nft", &nft]);
    assert_eq!(code, 1, "{from_nft}");
    assert_eq!(from_nft["imported"]["from"], "nft");
    assert_eq!(
        from_nft["imported"]["chain"],
        "inet filter output (output hook)"
    );
    assert_eq!(
        from_nft["imported"]["notes"].as_array().unwrap().len(),
        1,
        "the icmp rule"
    );
    let (_, from_text) = json(&["--from-nft", &nft_text]);
    let (_, from_ipt) = json(&["--from-iptables", &ipt]);
    assert_eq!(from_ipt["imported"]["chain"], "ip filter sdk (output hook)");
    // The same allow rules (the iptables one rejects): the same answer.
    for key in ["joined", "media", "missing", "best_media"] {
        assert_eq!(from_nft[key], from_text[key], "{key}");
        assert_eq!(from_nft[key], from_ipt[key], "{key}");
    }
    assert!(!from_nft["missing"].as_array().unwrap().is_empty());
    let out = cloudproxy(&["check-firewall", "--from-iptables", &ipt]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("imported    {ipt} (iptables, chain ip filter sdk (output hook)): default reject, dns public, 3 allow rule(s)\n")), "{text}");
}

#[test]
fn bad_imports_exit_2_and_name_the_file_and_the_rule() {
    let bad = file(
        "bad.rules",
        "*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n",
    );
    let out = cloudproxy(&["check-firewall", "--from-iptables", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{bad}: line 3 (-A OUTPUT -s 10.0.0.0/8 -j ACCEPT): uses `-s`"
        )),
        "{err}"
    );
    for args in [
        vec!["check-firewall", "--from-nft", "/dev/zero"],
        vec!["check-firewall", "--from-iptables", "/dev/zero"],
        vec!["check-firewall", "/dev/zero"],
    ] {
        let out = cloudproxy(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/dev/zero is larger than 4194304 bytes"),
            "{err}"
        );
    }
    let plain = file("iptables-as-nft.txt", "*filter\nCOMMIT\n");
    let err =
        String::from_utf8_lossy(&cloudproxy(&["check-firewall", "--from-nft", &plain]).stderr)
            .into_owned();
    assert!(
        err.contains("line 1: expected `table FAMILY NAME {`"),
        "{err}"
    );
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/seed.toml");
    let both = cloudproxy(&["check-firewall", seed, "--from-nft", &plain]);
    assert_eq!(both.status.code(), Some(2));
    assert_eq!(
        cloudproxy(&["check-firewall", "--format", "pf", seed])
            .status
            .code(),
        Some(2)
    );
}

/// A network namespace of this test, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        for (tool, version) in [
            ("ip", "-V"),
            ("nft", "--version"),
            ("iptables-save", "--version"),
        ] {
            let found = Command::new(tool).arg(version).output();
            assert!(
                found.is_ok_and(|o| o.status.success()),
                "`{tool}` is missing. Install: DEBIAN_FRONTEND=noninteractive apt-get install -y nftables iptables iproute2"
            );
        }
        let name = format!("cp-test-{}-{tag}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot create the namespace {name} (needs root, as CI has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}\n{stdin}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The printed rules from their header comment on.
fn printed_rules(stdout: &[u8], header: &str) -> String {
    let text = String::from_utf8_lossy(stdout);
    text[text
        .find(header)
        .unwrap_or_else(|| panic!("{header} not in {text}"))..]
        .to_owned()
}

#[test]
fn an_admin_exports_checks_loads_the_printed_rules_and_checks_again() {
    let deny_all: Policy = "default = \"drop\"".parse().unwrap();
    let options = CompileOptions::new("corp", Hook::Output);

    let ns = Netns::new("nft-loop");
    ns.ok(&["nft", "-f", "-"], &compile_nft(&deny_all, &options));
    let before = file(
        "loop-before.json",
        &ns.ok(&["nft", "-j", "list", "ruleset"], ""),
    );
    let out = cloudproxy(&["check-firewall", "--from-nft", &before, "--format", "nft"]);
    assert_eq!(out.status.code(), Some(1), "deny-all does not join");
    ns.ok(
        &["nft", "-f", "-"],
        &printed_rules(&out.stdout, "# nft -f input"),
    );
    let after = file(
        "loop-after.json",
        &ns.ok(&["nft", "-j", "list", "ruleset"], ""),
    );
    // The export cannot say how the resolver answers: both answers are explored, and type 2
    // (no name to resolve) is checked for the one that refuses.
    let (code, v) = json(&["--from-nft", &after]);
    assert_eq!((code, v["dns"]["stated"].clone()), (1, false.into()), "{v}");
    assert_eq!(v["paths"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["alternative"]["report"]["nothing_missing"], true, "{v}");
    let (code, v) = json(&["--from-nft", &after, "--dns", "public"]);
    assert_eq!(
        (
            code,
            v["media"].clone(),
            v["missing"].clone(),
            v["nothing_missing"].clone()
        ),
        (0, "udp".into(), Value::Array(vec![]), true.into()),
        "{v}"
    );

    let ns = Netns::new("ipt-loop");
    let rules = compile_iptables(&deny_all, &options);
    ns.ok(&["iptables-restore"], &rules.ipv4);
    let before = file("loop-before.rules", &ns.ok(&["iptables-save"], ""));
    let out = cloudproxy(&[
        "check-firewall",
        "--from-iptables",
        &before,
        "--format",
        "iptables",
    ]);
    assert_eq!(out.status.code(), Some(1));
    ns.ok(
        &["iptables-restore", "--noflush"],
        &printed_rules(&out.stdout, "# iptables-restore --noflush input"),
    );
    let after = file("loop-after.rules", &ns.ok(&["iptables-save"], ""));
    let (code, v) = json(&["--from-iptables", &after, "--dns", "public"]);
    assert_eq!(
        (code, v["media"].clone(), v["missing"].clone()),
        (0, "udp".into(), Value::Array(vec![])),
        "{v}"
    );
}
