//! A policy as an nftables ruleset: `nft -f` loads it, in a table of its own.
//!
//! ```text
//! table inet cloudproxy_seed {
//!     chain output {
//!         type filter hook output priority filter; policy drop;
//!         oif "lo" accept comment "cloudproxy loopback"
//!         ct state established,related accept comment "cloudproxy replies"
//!         ip daddr { 120.92.18.162, 120.92.118.34 } tcp dport 4000 counter accept comment "cloudproxy rule 1: ..."
//!         ...
//!         counter drop comment "cloudproxy default drop"
//!     }
//! }
//! ```
//!
//! The chain's policy is the default's (`drop` for drop and reject, `accept` for pass), and a
//! last counting rule applies the default explicitly, so that what the default decided is
//! counted too. The table is deleted first (`add table` then `delete table`), so loading the
//! file again replaces it rather than adding a second copy of every rule.

use std::fmt::Write as _;

use cloudproxy_core::relay::Cidr;

use super::canon::{block_text, canonical_rule, is_everything, range_text};
use super::{inbound_comment, rule_comment, CompileOptions, Hook};
use crate::policy::{DnsPolicy, Policy, Proto, Rule, Verdict};

/// The ruleset text for `nft -f`: the table `inet cloudproxy_<name>` with one base chain on
/// the hook `options` names (see the module docs).
pub fn compile_nft(policy: &Policy, options: &CompileOptions) -> String {
    let table = options.nft_table();
    let hook = options.hook;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# cloudproxy firewall policy {:?} for nftables ({} chain).",
        options.name,
        hook.as_str()
    );
    let _ = writeln!(
        t,
        "# Load: nft -f FILE (replaces the table inet {table}); remove: nft delete table inet {table}"
    );
    let _ = writeln!(t, "add table inet {table}");
    let _ = writeln!(t, "delete table inet {table}\n");
    let _ = writeln!(t, "table inet {table} {{");
    let _ = writeln!(t, "\tchain {hook} {{");
    let chain_policy = match policy.default {
        Verdict::Pass => "accept",
        Verdict::Drop | Verdict::Reject => "drop",
    };
    let _ = writeln!(
        t,
        "\t\ttype filter hook {hook} priority filter; policy {chain_policy};"
    );
    for line in rule_lines(policy, options) {
        let _ = writeln!(t, "\t\t{line}");
    }
    let _ = writeln!(t, "\t}}");
    let _ = writeln!(t, "}}");
    t
}

/// The chain's rules, one statement each.
pub(crate) fn rule_lines(policy: &Policy, options: &CompileOptions) -> Vec<String> {
    let mut lines = Vec::new();
    if options.hook == Hook::Output {
        lines.push("oif \"lo\" accept comment \"cloudproxy loopback\"".to_owned());
    }
    lines.push("ct state established,related accept comment \"cloudproxy replies\"".to_owned());
    if let Some(outside) = options.inbound_guard(policy.default) {
        lines.push(format!(
            "iifname {outside:?} counter drop comment \"{}\"",
            inbound_comment(outside)
        ));
    }
    if policy.dns == DnsPolicy::Blocked {
        for proto in [Proto::Tcp, Proto::Udp] {
            lines.push(format!(
                "{proto} dport 53 counter {} comment \"cloudproxy dns blocked: only the enterprise resolver ({proto})\"",
                deny(policy.default, proto)
            ));
        }
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        lines.extend(allow_lines(rule, &rule_comment(i, rule)));
    }
    lines.extend(default_lines(policy.default));
    lines
}

/// One allow rule: a statement per address family it names.
pub(crate) fn allow_lines(rule: &Rule, comment: &str) -> Vec<String> {
    let rule = canonical_rule(rule);
    let (v4, v6): (Vec<Cidr>, Vec<Cidr>) = rule.to.iter().partition(|b| b.addr().is_ipv4());
    let ports = set(&rule.ports.iter().map(range_text).collect::<Vec<_>>());
    [("ip", "ipv4", v4), ("ip6", "ipv6", v6)]
        .into_iter()
        .filter(|(_, _, blocks)| !blocks.is_empty())
        .map(|(ip, nfproto, blocks)| {
            let to = if blocks.iter().any(is_everything) {
                format!("meta nfproto {nfproto}")
            } else {
                format!(
                    "{ip} daddr {}",
                    set(&blocks.iter().map(block_text).collect::<Vec<_>>())
                )
            };
            format!(
                "{to} {} dport {ports} counter accept comment \"{comment}\"",
                rule.proto
            )
        })
        .collect()
}

/// `x`, or `{ x, y }`.
fn set(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

/// The statement that denies `proto` as `default` says (the simulation's reject: TCP is reset,
/// UDP vanishes).
fn deny(default: Verdict, proto: Proto) -> &'static str {
    match (default, proto) {
        (Verdict::Reject, Proto::Tcp) => "reject with tcp reset",
        _ => "drop",
    }
}

/// The default, applied explicitly and counted.
fn default_lines(default: Verdict) -> Vec<String> {
    match default {
        Verdict::Pass => vec!["counter accept comment \"cloudproxy default pass\"".to_owned()],
        Verdict::Drop => vec!["counter drop comment \"cloudproxy default drop\"".to_owned()],
        Verdict::Reject => vec![
            "meta l4proto tcp counter reject with tcp reset comment \"cloudproxy default reject: tcp is reset\"".to_owned(),
            "meta l4proto udp counter drop comment \"cloudproxy default reject: udp vanishes\"".to_owned(),
            "counter reject with icmpx type admin-prohibited comment \"cloudproxy default reject: other protocols\"".to_owned(),
        ],
    }
}
