//! The formats on their text, without the tools: snapshots of the compiled rulesets, the
//! rules they must hold, round trips over the seed and generated policies, imports of
//! captured `nft` and `iptables-save` output (`fixtures/`), and the errors of the subset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::render::{policy_toml, render_rules, Format, Target};
use super::*;
use crate::policy::{DnsPolicy, Policy, Proto, Rule, Verdict};

pub(super) fn seed_options() -> CompileOptions {
    CompileOptions::new("seed", Hook::Output)
}

/// Reject, DNS blocked, a CIDR block, a range, an IPv6 block and an everything-rule.
pub(super) fn strict_policy() -> Policy {
    r#"
        default = "reject"
        dns = "blocked"
        [[allow]]
        proto = "tcp"
        to = ["10.0.0.0/8", "2001:db8::/32"]
        ports = ["80", "8000-8080"]
        [[allow]]
        proto = "udp"
        to = ["0.0.0.0/0"]
        ports = ["4500-4650"]
    "#
    .parse()
    .unwrap()
}

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots/sim"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn compiled_rulesets_match_their_snapshots() {
    snapshot(
        "policy_formats_nft_seed",
        &compile_nft(&Policy::seed(), &seed_options()),
    );
    let gateway = CompileOptions::new("strict", Hook::Forward);
    snapshot(
        "policy_formats_nft_strict_forward",
        &compile_nft(&strict_policy(), &gateway),
    );
    snapshot(
        "policy_formats_iptables_seed",
        &compile_iptables(&Policy::seed(), &seed_options()).to_text(),
    );
    snapshot(
        "policy_formats_iptables_strict_forward",
        &compile_iptables(&strict_policy(), &gateway).to_text(),
    );
}

#[test]
fn the_nft_ruleset_holds_the_policy_rule_by_rule() {
    let text = compile_nft(&Policy::seed(), &seed_options());
    for line in [
        "table inet cloudproxy_seed {",
        "\tchain output {",
        "\t\ttype filter hook output priority filter; policy drop;",
        "\t\toif \"lo\" accept comment \"cloudproxy loopback\"",
        "\t\tct state established,related accept comment \"cloudproxy replies\"",
        "\t\tip daddr { 120.92.18.162, 120.92.118.34 } tcp dport 4000 counter accept comment \"cloudproxy rule 1: tcp to 120.92.118.34, 120.92.18.162 ports 4000\"",
        "\t\tip daddr { 120.92.18.162, 120.92.118.34 } udp dport 4500-4650 counter accept comment \"cloudproxy rule 4: udp to 120.92.118.34, 120.92.18.162 ports 4500-4650\"",
        "\t\tcounter drop comment \"cloudproxy default drop\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
    }
    // One accepting rule per allow rule, each counted and named; no DNS rule when public.
    let accepts: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("counter accept"))
        .collect();
    assert_eq!(accepts.len(), 4, "{text}");
    for (i, l) in accepts.iter().enumerate() {
        assert!(
            l.contains(&format!("comment \"cloudproxy rule {}: ", i + 1)),
            "{l}"
        );
    }
    assert!(!text.contains("dport 53"), "{text}");
    assert!(text
        .lines()
        .all(|l| !l.contains("comment") || comment_of(l).len() <= MAX_COMMENT_BYTES));
}

fn comment_of(line: &str) -> &str {
    let start = line.find("comment \"").map_or(0, |i| i + 9);
    &line[start..line.len() - 1]
}

#[test]
fn reject_resets_tcp_and_drops_udp_as_the_simulation_does() {
    let text = compile_nft(
        &strict_policy(),
        &CompileOptions::new("strict", Hook::Forward),
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} not in {text}"))
    };
    // The DNS rule comes before the allow rules, and denies as the default does.
    let dns_tcp = at("tcp dport 53 counter reject with tcp reset");
    let dns_udp = at("udp dport 53 counter drop");
    let first_rule = at("ip daddr 10.0.0.0/8 tcp dport { 80, 8000-8080 }");
    assert!(dns_tcp < first_rule && dns_udp < first_rule);
    at("ip6 daddr 2001:db8::/32 tcp dport { 80, 8000-8080 } counter accept comment \"cloudproxy rule 1:");
    at("meta nfproto ipv4 udp dport 4500-4650 counter accept comment \"cloudproxy rule 2:");
    let tcp = at("meta l4proto tcp counter reject with tcp reset");
    let udp = at("meta l4proto udp counter drop");
    let other = at("counter reject with icmpx type admin-prohibited");
    assert!(first_rule < tcp && tcp < udp && udp < other);
    // A gateway forwards: no loopback rule, the forward hook.
    assert!(!text.contains("oif \"lo\""));
    assert!(text.contains("type filter hook forward priority filter; policy drop;"));
    // iptables says the same.
    let ipt = compile_iptables(
        &strict_policy(),
        &CompileOptions::new("strict", Hook::Forward),
    );
    assert!(ipt.ipv4.contains("-A FORWARD -j cloudproxy-strict\n"));
    assert!(ipt.ipv4.contains("-A cloudproxy-strict -p tcp -m comment --comment \"cloudproxy default reject: tcp is reset\" -j REJECT --reject-with tcp-reset\n"));
    assert!(ipt.ipv4.contains("-A cloudproxy-strict -p udp -m comment --comment \"cloudproxy default reject: udp vanishes\" -j DROP\n"));
    assert!(ipt
        .ipv4
        .contains("-j REJECT --reject-with icmp-admin-prohibited\n"));
    assert!(ipt
        .ipv6
        .contains("-j REJECT --reject-with icmp6-adm-prohibited\n"));
    assert!(ipt.ipv6.contains("-A cloudproxy-strict -d 2001:db8::/32 -p tcp -m multiport --dports 80,8000:8080 -m comment --comment \"cloudproxy rule 1: tcp to 10.0.0.0/8, 2001:db8::/32 ports 80, 8000-8080\" -j ACCEPT\n"));
    assert!(!ipt.ipv6.contains("10.0.0.0/8 -p"), "{}", ipt.ipv6);
}

#[test]
fn the_seed_and_the_strict_policy_round_trip_through_every_format() {
    for policy in [
        Policy::seed(),
        strict_policy(),
        Policy::open(),
        Policy::only_host("10.1.0.5".parse().unwrap()),
    ] {
        let want = canonical(&policy);
        for hook in [Hook::Output, Hook::Forward] {
            let options = CompileOptions::new("p", hook);
            let nft = compile_nft(&policy, &options);
            assert_eq!(from_nft(&nft).unwrap(), want, "{nft}");
            let ipt = compile_iptables(&policy, &options).to_text();
            assert_eq!(from_iptables(&ipt).unwrap(), want, "{ipt}");
            let imported = import_nft(&nft, &ImportOptions::default()).unwrap();
            assert_eq!(imported.source.chain, hook.as_str());
            assert_eq!(imported.source.hook, hook);
        }
        let toml: Policy = policy_toml(&policy).parse().unwrap();
        assert_eq!(toml, policy);
    }
}

#[test]
fn canonical_policies_decide_every_flow_as_the_originals() {
    let seed = Policy::seed();
    let canon = canonical(&seed);
    assert_ne!(canon, seed, "the seed lists its ports out of order");
    for ip in ["120.92.118.34", "120.92.18.162", "47.74.211.17", "8.8.8.8"] {
        for port in [53, 1080, 4000, 4500, 4650, 4651, 8000, 9700, 25000] {
            for proto in [Proto::Tcp, Proto::Udp] {
                let dst = SocketAddr::new(ip.parse().unwrap(), port);
                assert_eq!(seed.verdict(proto, dst), canon.verdict(proto, dst));
            }
        }
    }
}

fn arb_block() -> impl Strategy<Value = cloudproxy_core::relay::Cidr> {
    prop_oneof![
        6 => (any::<u32>(), 8u8..=32).prop_map(|(a, len)| cloudproxy_core::relay::Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap()),
        2 => (any::<u128>(), 16u8..=128).prop_map(|(a, len)| cloudproxy_core::relay::Cidr::new(IpAddr::V6(Ipv6Addr::from(a)), len).unwrap()),
        1 => Just("0.0.0.0/0".parse().unwrap()),
        1 => Just("::/0".parse().unwrap()),
    ]
}

fn arb_ports() -> impl Strategy<Value = std::ops::RangeInclusive<u16>> {
    prop_oneof![
        (1u16..=65535).prop_map(|p| p..=p),
        (1u16..=65535, 0u16..2000).prop_map(|(p, w)| p..=p.saturating_add(w)),
    ]
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    let rule = (
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)],
        proptest::collection::vec(arb_block(), 1..5),
        proptest::collection::vec(arb_ports(), 1..20),
    )
        .prop_map(|(proto, to, ports)| Rule { proto, to, ports });
    (
        prop_oneof![
            Just(Verdict::Drop),
            Just(Verdict::Reject),
            Just(Verdict::Pass)
        ],
        prop_oneof![Just(DnsPolicy::Public), Just(DnsPolicy::Blocked)],
        proptest::collection::vec(rule, 0..6),
    )
        .prop_map(|(default, dns, rules)| Policy {
            default,
            dns,
            rules,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_policies_round_trip(policy in arb_policy(), forward in any::<bool>()) {
        let hook = if forward { Hook::Forward } else { Hook::Output };
        let options = CompileOptions::new("gen", hook);
        let want = canonical(&policy);
        prop_assert_eq!(&from_nft(&compile_nft(&policy, &options)).unwrap(), &want);
        prop_assert_eq!(&from_iptables(&compile_iptables(&policy, &options).to_text()).unwrap(), &want);
        prop_assert_eq!(&canonical(&want), &want, "canonical is a fixed point");
    }

    #[test]
    fn canonical_form_keeps_every_verdict(policy in arb_policy(), probes in proptest::collection::vec((any::<bool>(), any::<u32>(), any::<u16>()), 50)) {
        let canon = canonical(&policy);
        for (tcp, ip, port) in probes {
            let proto = if tcp { Proto::Tcp } else { Proto::Udp };
            // Probe inside the policy's own blocks too, where the verdicts are interesting.
            let inside = policy.rules.first().map(|r| r.to[0].addr()).filter(|a| a.is_ipv4());
            for addr in [IpAddr::V4(Ipv4Addr::from(ip)), inside.unwrap_or(IpAddr::V4(Ipv4Addr::from(ip)))] {
                let dst = SocketAddr::new(addr, port);
                prop_assert_eq!(policy.verdict(proto, dst), canon.verdict(proto, dst));
            }
        }
    }
}

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/src/policy_formats/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the admin's hand-written rule sets in `fixtures/` (and the live tests) say.
pub(super) fn admin_policy(default: &str) -> Policy {
    format!(
        r#"
        default = "{default}"
        [[allow]]
        proto = "tcp"
        to = ["10.0.0.0/8"]
        ports = ["1080", "8000-8080"]
        [[allow]]
        proto = "udp"
        to = ["120.92.118.34", "120.92.18.162"]
        ports = ["4500-4650"]
        [[allow]]
        proto = "tcp"
        to = ["47.74.211.17", "52.80.192.229"]
        ports = ["4000"]
        "#
    )
    .parse()
    .map(|p: Policy| canonical(&p))
    .unwrap()
}

#[test]
fn captured_exports_of_the_real_tools_import() {
    // Written with `nft add rule` / `iptables -A` by hand in a namespace, saved with the tools
    // (see live_tests.rs, which writes them again and compares).
    assert_eq!(
        from_nft(&fixture("admin-nft.json")).unwrap(),
        admin_policy("drop")
    );
    assert_eq!(
        from_nft(&fixture("admin-nft.txt")).unwrap(),
        admin_policy("drop")
    );
    assert_eq!(
        from_iptables(&fixture("admin-iptables.rules")).unwrap(),
        admin_policy("reject")
    );
    // The compiled seed as nft listed it back after loading it.
    assert_eq!(
        from_nft(&fixture("seed-nft.json")).unwrap(),
        canonical(&Policy::seed())
    );
    assert_eq!(
        from_iptables(&fixture("seed-iptables.rules")).unwrap(),
        canonical(&Policy::seed())
    );
}

fn nft_error(rules: &str) -> String {
    let text = format!("table inet filter {{\n\tchain output {{\n\t\ttype filter hook output priority filter; policy drop;\n{rules}\n\t}}\n}}\n");
    from_nft(&text).unwrap_err().to_string()
}

fn ipt_error(rules: &str) -> String {
    let text = format!("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n{rules}\nCOMMIT\n");
    from_iptables(&text).unwrap_err().to_string()
}

#[test]
fn rules_outside_the_subset_are_errors_naming_the_rule() {
    let cases = [
        (nft_error("\t\tip saddr 10.0.0.1 accept"), "line 4 (ip saddr 10.0.0.1 accept): matches ip saddr"),
        (nft_error("\t\tip daddr != 10.0.0.1 accept"), "only positive matches"),
        (nft_error("\t\tip daddr 10.0.0.1 drop\n\t\tip daddr 10.0.0.0/8 accept"), "line 4 (ip daddr 10.0.0.1 drop): denies some destinations only"),
        (nft_error("\t\tlimit rate 10/second accept"), "line 4: `limit` cannot be read"),
        (nft_error("\t\toifname \"eth0\" accept"), "matches meta oifname"),
        (from_nft("table inet f {\n\tchain o {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tmeta l4proto udp drop\n\t}\n}").unwrap_err().to_string(), "inet f o: by default passes TCP but denies UDP"),
        (nft_error("\t\tdrop\n\t\ttcp dport 80 accept"), "is never reached: line 4 (drop) already decides every packet"),
        (nft_error("\t\tip daddr 1.2.3.4 accept\n\t\tudp dport 53 drop\n\t\ttcp dport 53 drop"), "the DNS rule must come before every allow rule"),
        (nft_error("\t\tudp dport 53 drop"), "denies DNS (port 53) over UDP only"),
        (nft_error("\t\tip daddr 1.2.3.4 jump other"), "jumps to chain other"),
        (ipt_error("-A OUTPUT -s 10.0.0.1/32 -j ACCEPT"), "line 5 (-A OUTPUT -s 10.0.0.1/32 -j ACCEPT): uses `-s`"),
        (ipt_error("-A OUTPUT -p tcp -m owner --uid-owner 0 -j ACCEPT"), "uses the `owner` match"),
        (ipt_error("-A OUTPUT ! -d 10.0.0.1/32 -j ACCEPT"), "negates a match"),
        (ipt_error("-A OUTPUT -o eth0 -j ACCEPT"), "matches the output interface eth0"),
        (ipt_error("-A OUTPUT -d 10.0.0.1/32 -j REJECT"), "line 5 (-A OUTPUT -d 10.0.0.1/32 -j REJECT): denies some destinations only"),
        (ipt_error("-A OUTPUT -j MARK --set-mark 1"), "jumps to the MARK target"),
        (ipt_error("-A OUTPUT -j nowhere"), "jumps to nowhere, which is not a chain"),
        (ipt_error("-A OUTPUT -m state --state NEW -j ACCEPT"), "connection states NEW"),
        (ipt_error("bogus"), "line 5: expected `-A CHAIN"),
        (from_nft("{\"nftables\": 3}").unwrap_err().to_string(), "no top-level \"nftables\" list"),
        (from_nft("{").unwrap_err().to_string(), "not the JSON of `nft -j list ruleset`"),
        (from_nft("table inet filter {\n\tset s { type ipv4_addr; }\n}").unwrap_err().to_string(), "line 2: a table's `set` cannot be read"),
        (from_nft("").unwrap_err().to_string(), "no filter output or forward chain"),
    ];
    for (err, expected) in cases {
        assert!(err.contains(expected), "{expected:?} not in: {err}");
    }
}

#[test]
fn the_stateful_frame_and_other_protocols_change_no_verdict() {
    let text = "table ip filter {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tct state invalid drop\n\t\tct state { established, related } accept\n\t\toifname \"lo\" accept\n\t\tip protocol icmp accept\n\t\tlog prefix \"out \" counter\n\t\tip daddr 10.0.0.0/8 tcp dport 443 accept\n\t\treject\n\t}\n}\n";
    let imported = import_nft(text, &ImportOptions::default()).unwrap();
    let policy = imported.policy;
    assert_eq!(policy.default, Verdict::Reject);
    assert_eq!(policy.rules.len(), 1);
    assert_eq!(
        policy.rules[0].to,
        ["10.0.0.0/8".parse().unwrap()],
        "an ip table: IPv4 only"
    );
    assert_eq!(
        imported.notes,
        [
            "ip filter output: only ipv4 is filtered by this chain; the policy applies its default to the other family too",
            "line 7 (ip protocol icmp accept): left out for icmp: the policy decides TCP and UDP only",
        ]
    );
    // A gateway that forgets the replies is told so.
    let forward = "table inet f {\n\tchain fwd {\n\t\ttype filter hook forward priority 0; policy drop;\n\t\tip daddr 10.0.0.1 tcp dport 443 accept\n\t}\n}\n";
    let notes = import_nft(forward, &ImportOptions::default())
        .unwrap()
        .notes;
    assert!(
        notes[0].contains("inet f fwd: no `ct state established,related accept`"),
        "{notes:?}"
    );
    // A rule with no port opens them all, with no protocol both; `meta l4proto udp accept` is
    // an allow rule to everything.
    let policy = from_iptables("*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -d 1.2.3.4/32 -j ACCEPT\n-A OUTPUT -p udp -j ACCEPT\nCOMMIT\n").unwrap();
    let texts: Vec<String> = policy.rules.iter().map(super::render::rule_toml).collect();
    assert_eq!(
        texts,
        [
            "[[allow]]\nproto = \"tcp\"\nto = [\"1.2.3.4\"]\nports = [\"1-65535\"]\n",
            "[[allow]]\nproto = \"udp\"\nto = [\"1.2.3.4\"]\nports = [\"1-65535\"]\n",
            "[[allow]]\nproto = \"udp\"\nto = [\"0.0.0.0/0\"]\nports = [\"1-65535\"]\n",
        ]
    );
}

#[test]
fn both_hooks_in_use_need_a_choice() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -p tcp -d 1.1.1.1/32 --dport 1 -j ACCEPT\nCOMMIT\n";
    let err = from_iptables(text).unwrap_err().to_string();
    assert!(err.contains("choose one with --hook"), "{err}");
    let forward = import_iptables(
        text,
        &ImportOptions {
            hook: Some(Hook::Forward),
        },
    )
    .unwrap();
    assert!(forward.policy.rules.is_empty());
    let output = import_iptables(
        text,
        &ImportOptions {
            hook: Some(Hook::Output),
        },
    )
    .unwrap();
    assert_eq!(output.policy.rules.len(), 1);
    assert_eq!(output.source.chain, "OUTPUT");
}

#[test]
fn oversized_inputs_are_refused_with_the_file_and_the_limit() {
    let big = " ".repeat(MAX_IMPORT_BYTES + 1);
    assert!(from_nft(&big)
        .unwrap_err()
        .to_string()
        .contains("larger than 4194304 bytes"));
    assert!(from_iptables(&big)
        .unwrap_err()
        .to_string()
        .contains("larger than 4194304 bytes"));
    let err = read_bounded(std::path::Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "/dev/zero is larger than 4194304 bytes, the most a policy or firewall export may be"
    );
    let err = read_bounded(std::path::Path::new("/no/such/fw.json"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/no/such/fw.json: "), "{err}");
}

#[test]
fn suggestions_render_in_each_format() {
    let rules = vec![
        Rule {
            proto: Proto::Udp,
            to: vec![
                "120.92.118.34".parse().unwrap(),
                "120.92.18.162".parse().unwrap(),
            ],
            ports: vec![4500..=4650],
        },
        Rule {
            proto: Proto::Tcp,
            to: vec!["2001:db8::1".parse().unwrap()],
            ports: vec![4000..=4000],
        },
    ];
    let target = Target::for_hook("seed", Hook::Output);
    let nft = render_rules(&rules, Format::Nft, &target);
    snapshot("policy_formats_suggested_nft", &nft);
    assert!(nft.contains("insert rule inet cloudproxy_seed output ip daddr { 120.92.18.162, 120.92.118.34 } udp dport 4500-4650 counter accept comment \"cloudproxy suggested rule 1: udp to 120.92.118.34, 120.92.18.162 ports 4500-4650\"\n"), "{nft}");
    let ipt = render_rules(&rules, Format::Iptables, &target);
    snapshot("policy_formats_suggested_iptables", &ipt);
    assert!(
        ipt.contains(
            "*filter\n-I cloudproxy-seed 1 -d 120.92.18.162/32 -p udp -m udp --dport 4500:4650"
        ),
        "{ipt}"
    );
    assert!(ipt.contains("# ip6tables-restore --noflush input"), "{ipt}");
    let toml = render_rules(&rules, Format::Toml, &target);
    let policy: Policy = format!("default = \"drop\"\n{toml}").parse().unwrap();
    assert_eq!(policy.rules, rules);
    // Into an `ip` table only IPv4 rules fit.
    let ip_only = Target {
        family: "ip".into(),
        nft_table: "filter".into(),
        nft_chain: "OUTPUT".into(),
        iptables_chain: "OUTPUT".into(),
    };
    assert!(!render_rules(&rules, Format::Nft, &ip_only).contains("ip6 daddr"));
}
