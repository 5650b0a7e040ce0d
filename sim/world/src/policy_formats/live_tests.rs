//! The formats against the real tools, in network namespaces these tests create (and delete,
//! also when they fail): the compiled rulesets load (`nft -c -f`, `nft -f`,
//! `iptables-restore --test`, `iptables-restore`), list back as the same policy, count packets
//! per rule; rule sets an administrator writes with `nft add rule` and `iptables -A` import.
//!
//! They need root, `ip` (iproute2), `nft` (nftables) and `iptables` (Debian's iptables-nft):
//! without them they fail with the reason and the install command, never pass silently.
//!
//! `CLOUDPROXY_WRITE_FIXTURES=1` rewrites `fixtures/` from what the tools print.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::render::{render_rules, Format, Target};
use super::tests::{admin_policy, seed_options, strict_policy};
use super::*;
use crate::policy::{Policy, Proto, Rule};

const INSTALL: &str =
    "DEBIAN_FRONTEND=noninteractive apt-get install -y nftables iptables iproute2";

/// A network namespace of this test process, deleted when dropped.
struct Netns {
    name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    /// A fresh namespace `cp-test-<pid>-<n>`; fails the test when one cannot be made.
    fn new() -> Netns {
        for (tool, version) in [
            ("ip", "-V"),
            ("nft", "--version"),
            ("iptables", "--version"),
            ("iptables-restore", "--version"),
            ("ip6tables-restore", "--version"),
        ] {
            let found = Command::new(tool).arg(version).output();
            assert!(
                found.is_ok_and(|o| o.status.success()),
                "`{tool}` is missing: these tests load the rules into real netfilter. Install: {INSTALL}"
            );
        }
        let name = format!(
            "cp-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "cannot create the network namespace {name} (these tests need root, as CI runs them): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip netns exec");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("wait")
    }

    /// Runs `args` in the namespace; its stdout, or the test fails with its stderr.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "`{}` failed in {}: {}\ninput:\n{}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr),
            stdin.unwrap_or("")
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn sh(&self, script: &str) -> String {
        self.ok(&["bash", "-ec", script], None)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn write_fixture(name: &str, text: &str) {
    if std::env::var_os("CLOUDPROXY_WRITE_FIXTURES").is_some() {
        let path = format!(
            "{}/src/policy_formats/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

fn policies() -> Vec<(&'static str, Policy)> {
    vec![
        ("seed", Policy::seed()),
        ("strict", strict_policy()),
        ("open", Policy::open()),
        ("tcp_only", Policy::seed_tcp_only()),
    ]
}

#[test]
fn compiled_nft_rulesets_load_and_list_back_as_the_same_policy() {
    for (name, policy) in policies() {
        for hook in [Hook::Output, Hook::Forward] {
            let ns = Netns::new();
            let text = compile_nft(&policy, &CompileOptions::new(name, hook));
            ns.ok(&["nft", "-c", "-f", "-"], Some(&text));
            ns.ok(&["nft", "-f", "-"], Some(&text));
            // Loading again replaces the table.
            ns.ok(&["nft", "-f", "-"], Some(&text));
            let json = ns.ok(&["nft", "-j", "list", "ruleset"], None);
            let listed = ns.ok(&["nft", "list", "ruleset"], None);
            let want = canonical(&policy);
            assert_eq!(from_nft(&json).unwrap(), want, "{name} {hook}: {json}");
            assert_eq!(from_nft(&listed).unwrap(), want, "{name} {hook}: {listed}");
            let counters = nft_counters(&json).unwrap();
            let tagged = counters
                .iter()
                .filter(|(c, _)| c.starts_with("cloudproxy rule "))
                .count();
            let expected: usize = policy
                .rules
                .iter()
                .map(|r| {
                    1 + usize::from(
                        r.to.iter().any(|b| b.addr().is_ipv4())
                            && r.to.iter().any(|b| b.addr().is_ipv6()),
                    )
                })
                .sum();
            assert_eq!(
                tagged, expected,
                "one counted rule per allow rule and family: {listed}"
            );
            if (name, hook) == ("seed", Hook::Output) {
                write_fixture("seed-nft.json", &json);
            }
        }
    }
}

#[test]
fn compiled_iptables_rules_restore_and_save_back_as_the_same_policy() {
    for (name, policy) in policies() {
        for hook in [Hook::Output, Hook::Forward] {
            let ns = Netns::new();
            let rules = compile_iptables(&policy, &CompileOptions::new(name, hook));
            ns.ok(&["iptables-restore", "--test"], Some(&rules.ipv4));
            ns.ok(&["ip6tables-restore", "--test"], Some(&rules.ipv6));
            ns.ok(&["iptables-restore"], Some(&rules.ipv4));
            ns.ok(&["ip6tables-restore"], Some(&rules.ipv6));
            let v4 = ns.ok(&["iptables-save"], None);
            let v6 = ns.ok(&["ip6tables-save"], None);
            let both = format!("{v4}{v6}");
            assert_eq!(
                from_iptables(&both).unwrap(),
                canonical(&policy),
                "{name} {hook}:\n{both}"
            );
            // iptables-save prints our lines as we wrote them.
            let ours = |t: &str| {
                t.lines()
                    .filter(|l| l.starts_with("-A "))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            assert_eq!(ours(&v4), ours(&rules.ipv4), "{name} {hook}");
            assert_eq!(ours(&v6), ours(&rules.ipv6), "{name} {hook}");
            if (name, hook) == ("seed", Hook::Output) {
                write_fixture("seed-iptables.rules", &both);
            }
        }
    }
}

#[test]
fn rules_written_by_hand_with_nft_import() {
    let ns = Netns::new();
    ns.sh(
        "nft add table inet filter
         nft add chain inet filter output '{ type filter hook output priority 0; policy drop; }'
         nft add rule inet filter output ct state established,related accept
         nft add rule inet filter output oif lo accept
         nft add rule inet filter output ip protocol icmp accept
         nft add rule inet filter output ip daddr 10.0.0.0/8 tcp dport '{ 1080, 8000-8080 }' accept
         nft add rule inet filter output ip daddr '{ 120.92.118.34, 120.92.18.162 }' udp dport 4500-4650 counter accept
         nft add rule inet filter output ip daddr '{ 47.74.211.17, 52.80.192.229 }' tcp dport 4000 accept",
    );
    let json = ns.ok(&["nft", "-j", "list", "ruleset"], None);
    let text = ns.ok(&["nft", "list", "ruleset"], None);
    let imported = import_nft(&json, &ImportOptions::default()).unwrap();
    assert_eq!(imported.policy, admin_policy("drop"), "{text}");
    assert_eq!(
        (
            imported.source.family.as_str(),
            imported.source.table.as_str(),
            imported.source.chain.as_str()
        ),
        ("inet", "filter", "output")
    );
    assert_eq!(
        imported.notes.len(),
        1,
        "the icmp rule: {:?}",
        imported.notes
    );
    assert_eq!(from_nft(&text).unwrap(), admin_policy("drop"), "{text}");
    write_fixture("admin-nft.json", &json);
    write_fixture("admin-nft.txt", &text);
    // An unsupported rule added by hand: the import names it by its handle.
    ns.sh("nft add rule inet filter output ip saddr 10.1.0.0/16 accept");
    let err = from_nft(&ns.ok(&["nft", "-j", "list", "ruleset"], None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rule 7 of inet filter output (handle ") && err.contains("matches ip saddr"),
        "{err}"
    );
}

#[test]
fn rules_written_by_hand_with_iptables_import() {
    let ns = Netns::new();
    ns.sh(
        "iptables -A OUTPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
         iptables -A OUTPUT -o lo -j ACCEPT
         iptables -A OUTPUT -p tcp -d 10.0.0.0/8 -m multiport --dports 1080,8000:8080 -j ACCEPT
         iptables -A OUTPUT -p udp -d 120.92.118.34,120.92.18.162 --dport 4500:4650 -j ACCEPT
         iptables -N sdk
         iptables -A OUTPUT -j sdk
         iptables -A sdk -p tcp -d 47.74.211.17,52.80.192.229 --dport 4000 -m comment --comment 'signalling to the access points' -j ACCEPT
         iptables -A OUTPUT -p icmp -j ACCEPT
         iptables -A OUTPUT -p tcp -j REJECT --reject-with tcp-reset
         iptables -A OUTPUT -j REJECT",
    );
    let saved = ns.ok(&["iptables-save"], None);
    let imported = import_iptables(&saved, &ImportOptions::default()).unwrap();
    assert_eq!(imported.policy, admin_policy("reject"), "{saved}");
    assert_eq!(imported.source.chain, "sdk");
    write_fixture("admin-iptables.rules", &saved);
    // IPv6 rules, saved by ip6tables-save after the IPv4 ones: one policy.
    ns.sh(
        "ip6tables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
         ip6tables -A OUTPUT -p udp -d 2001:db8::/32 -m udp --dport 4500:4650 -j ACCEPT
         ip6tables -A OUTPUT -p tcp -j REJECT --reject-with tcp-reset
         ip6tables -A OUTPUT -j REJECT --reject-with icmp6-adm-prohibited",
    );
    let both = format!("{saved}{}", ns.ok(&["ip6tables-save"], None));
    let policy = from_iptables(&both).unwrap();
    assert_eq!(policy.rules.len(), 4, "{both}");
    assert_eq!(policy.rules[3].to, ["2001:db8::/32".parse().unwrap()]);
    // A source match written by hand: the error names the line.
    ns.sh("iptables -I OUTPUT 2 -s 10.9.0.0/16 -j ACCEPT");
    let saved = ns.ok(&["iptables-save"], None);
    let err = from_iptables(&saved).unwrap_err().to_string();
    assert!(
        err.contains("(-A OUTPUT -s 10.9.0.0/16 -j ACCEPT): uses `-s`"),
        "{err}"
    );
}

#[test]
fn suggested_rules_load_into_the_chain_they_name() {
    let ns = Netns::new();
    let options = CompileOptions::new("tcp_only", Hook::Output);
    let policy = Policy::seed_tcp_only();
    ns.ok(&["nft", "-f", "-"], Some(&compile_nft(&policy, &options)));
    let missing = Rule {
        proto: Proto::Udp,
        to: vec![
            "120.92.118.34".parse().unwrap(),
            "120.92.18.162".parse().unwrap(),
        ],
        ports: vec![4500..=4650],
    };
    let imported = import_nft(
        &ns.ok(&["nft", "-j", "list", "ruleset"], None),
        &ImportOptions::default(),
    )
    .unwrap();
    let target = Target::imported(&imported.source, Format::Nft);
    ns.ok(
        &["nft", "-f", "-"],
        Some(&render_rules(
            std::slice::from_ref(&missing),
            Format::Nft,
            &target,
        )),
    );
    let after = from_nft(&ns.ok(&["nft", "-j", "list", "ruleset"], None)).unwrap();
    assert!(
        after
            .rules
            .contains(&super::canon::canonical_rule(&missing)),
        "{after:?}"
    );
    assert_eq!(after.rules.len(), policy.rules.len() + 1);

    let ns = Netns::new();
    let rules = compile_iptables(&policy, &options);
    ns.ok(&["iptables-restore"], Some(&rules.ipv4));
    let imported =
        import_iptables(&ns.ok(&["iptables-save"], None), &ImportOptions::default()).unwrap();
    let text = render_rules(
        std::slice::from_ref(&missing),
        Format::Iptables,
        &Target::imported(&imported.source, Format::Iptables),
    );
    ns.ok(&["iptables-restore", "--noflush"], Some(&text));
    let after = from_iptables(&ns.ok(&["iptables-save"], None)).unwrap();
    assert!(
        after
            .rules
            .contains(&super::canon::canonical_rule(&missing)),
        "{after:?}"
    );
}

/// Two namespaces joined by a veth pair in the benchmarking range (198.18.0.0/15, which exists
/// only inside them): the compiled seed-like policy lets one datagram through, drops another,
/// and its counters say so rule by rule.
#[test]
fn the_loaded_ruleset_filters_and_counts_per_rule() {
    let client = Netns::new();
    let server = Netns::new();
    let veth = format!("cpv{}", NEXT.fetch_add(1, Ordering::Relaxed));
    client.sh(&format!(
        "ip link add {veth}a type veth peer name {veth}b
         ip link set {veth}b netns {server}
         ip addr add 198.18.0.1/24 dev {veth}a
         ip link set {veth}a up
         ip link set lo up",
        server = server.name
    ));
    server.sh(&format!(
        "ip addr add 198.18.0.2/24 dev {veth}b && ip link set {veth}b up"
    ));
    let policy: Policy = "default = \"drop\"\n[[allow]]\nproto = \"udp\"\nto = [\"198.18.0.2\"]\nports = [\"4500-4650\"]\n".parse().unwrap();
    client.ok(
        &["nft", "-f", "-"],
        Some(&compile_nft(&policy, &seed_options())),
    );
    // One datagram the rule allows, two it does not (another port; TCP).
    client.sh("echo allowed > /dev/udp/198.18.0.2/4500");
    // On the output hook a local sender learns of the drop at once (EPERM): see the docs.
    let denied = client.run(
        &["bash", "-c", "echo denied > /dev/udp/198.18.0.2/4651"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"),
        "{denied:?}"
    );
    let tcp = client.run(
        &[
            "timeout",
            "5",
            "bash",
            "-c",
            "echo x > /dev/tcp/198.18.0.2/4500",
        ],
        None,
    );
    eprintln!("tcp under drop: {tcp:?}");
    let counters = nft_counters(&client.ok(&["nft", "-j", "list", "ruleset"], None)).unwrap();
    let packets = |prefix: &str| {
        counters
            .iter()
            .find(|(c, _)| c.starts_with(prefix))
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("{prefix} not in {counters:?}"))
    };
    assert_eq!(packets("cloudproxy rule 1:"), 1, "{counters:?}");
    assert!(
        packets("cloudproxy default drop") >= 2,
        "the UDP datagram and the SYN: {counters:?}"
    );
}

/// A gateway's policy with its inbound guard ([`CompileOptions::outside`]) loads into both
/// tools, lists back with the guard as written, and imports as the same policy.
#[test]
fn a_gateway_policy_with_its_inbound_guard_loads_and_lists_back() {
    let options = CompileOptions::new("seed", Hook::Forward)
        .with_outside("wan0")
        .unwrap();
    let ns = Netns::new();
    ns.ok(
        &["nft", "-f", "-"],
        Some(&compile_nft(&Policy::seed(), &options)),
    );
    let json = ns.ok(&["nft", "-j", "list", "ruleset"], None);
    let listed = ns.ok(&["nft", "list", "ruleset"], None);
    assert!(
        listed.contains("iifname \"wan0\" counter packets 0 bytes 0 drop comment \"cloudproxy inbound: only replies enter from wan0\""),
        "{listed}"
    );
    assert_eq!(from_nft(&json).unwrap(), canonical(&Policy::seed()));
    assert_eq!(from_nft(&listed).unwrap(), canonical(&Policy::seed()));
    let ns = Netns::new();
    let rules = compile_iptables(&Policy::seed(), &options);
    ns.ok(&["iptables-restore"], Some(&rules.ipv4));
    let saved = ns.ok(&["iptables-save"], None);
    let guard = rules
        .ipv4
        .lines()
        .find(|l| l.contains("-i wan0"))
        .expect("the guard");
    assert!(saved.lines().any(|l| l == guard), "{guard}\n{saved}");
    assert_eq!(from_iptables(&saved).unwrap(), canonical(&Policy::seed()));
}
