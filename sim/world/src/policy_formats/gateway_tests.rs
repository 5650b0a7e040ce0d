//! A gateway's compiled policy ([`CompileOptions::outside`]): the inbound guard is where it
//! must be, only where the simulation drops unsolicited traffic, reads back as the same policy,
//! and every compiled comment names its part of the policy ([`rule_part`]).

use super::tests::strict_policy;
use super::*;
use crate::policy::{Policy, Verdict};

fn gateway(name: &str) -> CompileOptions {
    CompileOptions::new(name, Hook::Forward)
        .with_outside("cpnl-wan")
        .unwrap()
}

fn rules_of(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.contains("comment") || l.starts_with("-A cloudproxy"))
        .collect()
}

#[test]
fn the_inbound_guard_follows_the_replies_rule_on_a_gateway() {
    let nft = compile_nft(&Policy::seed(), &gateway("seed"));
    let rules = rules_of(&nft);
    assert!(
        rules[0].starts_with("ct state established,related accept"),
        "{nft}"
    );
    assert_eq!(
        rules[1],
        "iifname \"cpnl-wan\" counter drop comment \"cloudproxy inbound: only replies enter from cpnl-wan\"",
        "{nft}"
    );
    assert!(rules[2].contains("cloudproxy rule 1:"), "{nft}");
    let ipt = compile_iptables(&Policy::seed(), &gateway("seed"));
    for text in [&ipt.ipv4, &ipt.ipv6] {
        let rules = rules_of(text);
        assert!(rules[0].contains("--ctstate RELATED,ESTABLISHED"), "{text}");
        assert_eq!(
            rules[1],
            "-A cloudproxy-seed -i cpnl-wan -m comment --comment \"cloudproxy inbound: only replies enter from cpnl-wan\" -j DROP",
            "{text}"
        );
    }
    // Ahead of the DNS rule too: nothing from outside is new.
    let strict = compile_nft(&strict_policy(), &gateway("strict"));
    let at = |needle: &str| strict.find(needle).unwrap();
    assert!(
        at("cloudproxy inbound") < at("cloudproxy dns blocked"),
        "{strict}"
    );
}

#[test]
fn no_guard_where_the_simulation_lets_strangers_in_or_sees_no_inbound() {
    // default = "pass": the simulation passes unsolicited datagrams.
    let open = compile_nft(&Policy::open(), &gateway("open"));
    assert!(!open.contains("iifname"), "{open}");
    // The output chain never sees inbound traffic.
    let mut host = gateway("seed");
    host.hook = Hook::Output;
    assert!(!compile_nft(&Policy::seed(), &host).contains("iifname"));
    assert!(!compile_iptables(&Policy::seed(), &host)
        .ipv4
        .contains("-i cpnl-wan"));
    // No interface named: as before.
    let plain = compile_nft(&Policy::seed(), &CompileOptions::new("seed", Hook::Forward));
    assert!(!plain.contains("iifname"));
}

#[test]
fn a_gateway_policy_reads_back_as_the_same_policy() {
    let mut reject = Policy::seed();
    reject.default = Verdict::Reject;
    for (name, policy) in [
        ("seed", Policy::seed()),
        ("reject", reject),
        ("strict", strict_policy()),
    ] {
        let options = gateway(name);
        assert_eq!(
            from_nft(&compile_nft(&policy, &options)).unwrap(),
            canonical(&policy),
            "{name}"
        );
        let ipt = compile_iptables(&policy, &options);
        assert_eq!(
            from_iptables(&format!("{}{}", ipt.ipv4, ipt.ipv6)).unwrap(),
            canonical(&policy),
            "{name}"
        );
    }
}

#[test]
fn an_input_interface_with_more_is_an_error_naming_the_rule() {
    let text = "table inet filter {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tiifname \"eth0\" ip daddr 10.0.0.1 accept\n\t}\n}\n";
    let err = from_nft(text).unwrap_err().to_string();
    assert!(
        err.contains("line 4 (iifname \"eth0\" ip daddr 10.0.0.1 accept): matches the input interface eth0 and more"),
        "{err}"
    );
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth0 -j ACCEPT\nCOMMIT\n";
    let err = from_iptables(text).unwrap_err().to_string();
    assert!(
        err.contains("matches the input interface eth0 and more"),
        "{err}"
    );
    for bad in ["", "a b", "x\"y", "sixteen-letters!"] {
        assert!(
            CompileOptions::new("x", Hook::Forward)
                .with_outside(bad)
                .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn every_compiled_comment_names_its_part_of_the_policy() {
    let mut reject = strict_policy();
    reject.default = Verdict::Reject;
    let text = compile_nft(&reject, &gateway("strict"));
    let mut parts = Vec::new();
    for line in text.lines().filter(|l| l.contains("comment \"")) {
        let comment = line
            .split("comment \"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        parts.push(rule_part(comment).unwrap_or_else(|| panic!("{comment}")));
    }
    assert_eq!(
        parts,
        [
            RulePart::Frame,
            RulePart::Inbound,
            RulePart::DnsBlocked,
            RulePart::DnsBlocked,
            RulePart::Allow(0),
            RulePart::Allow(0),
            RulePart::Allow(1),
            RulePart::Default,
            RulePart::Default,
            RulePart::Default,
        ]
    );
    assert_eq!(
        rule_part("cloudproxy suggested rule 2: udp to 1.1.1.1 ports 9"),
        Some(RulePart::Suggested(1))
    );
    assert_eq!(rule_part("accept ssh"), None);
}
