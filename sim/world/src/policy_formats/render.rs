//! Allow rules to add, written for the administrator's firewall: policy TOML blocks, `nft -f`
//! input that inserts them into a chain, or `iptables-restore --noflush` input that does.
//!
//! Inserted rules go to the top of the chain, ahead of whatever drops or rejects: an accept
//! rule changes nothing else there (accept rules commute, and the DNS rule only denies).

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use cloudproxy_core::relay::Cidr;

use super::canon::{block_text, range_text};
use super::iptables::{allow_lines as iptables_lines, Ipt};
use super::nft::allow_lines as nft_lines;
use super::{cut, CompileOptions, Hook, Source, MAX_COMMENT_BYTES, SUGGESTED_TAG};
use crate::policy::{Policy, Proto, Rule};

/// A firewall format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The policy file's `[[allow]]` blocks.
    #[default]
    Toml,
    /// nftables (`nft -f` input).
    Nft,
    /// `iptables-restore` input (and `ip6tables-restore` for IPv6 destinations).
    Iptables,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "toml" => Ok(Format::Toml),
            "nft" => Ok(Format::Nft),
            "iptables" => Ok(Format::Iptables),
            other => Err(format!("`{other}`: expected toml, nft or iptables")),
        }
    }
}

/// The chain rules are added to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// nftables family: `inet`, `ip` or `ip6`.
    pub family: String,
    /// nftables table (iptables: `filter`).
    pub nft_table: String,
    /// The chain in nftables.
    pub nft_chain: String,
    /// The chain in iptables.
    pub iptables_chain: String,
}

impl Target {
    /// The chains [`compile_nft`](super::compile_nft) and
    /// [`compile_iptables`](super::compile_iptables) make for `options`.
    pub fn compiled(options: &CompileOptions) -> Target {
        Target {
            family: "inet".to_owned(),
            nft_table: options.nft_table(),
            nft_chain: options.hook.as_str().to_owned(),
            iptables_chain: options.iptables_chain(),
        }
    }

    /// The chain a policy imported from `from` ([`Format::Nft`] or [`Format::Iptables`]) was
    /// read from; in the other tool, the hook's own chain (iptables' `OUTPUT`) or our table.
    pub fn imported(source: &Source, from: Format) -> Target {
        let ours = Target::for_hook("imported", source.hook);
        match from {
            Format::Iptables => Target {
                iptables_chain: source.chain.clone(),
                ..ours
            },
            _ => Target {
                family: source.family.clone(),
                nft_table: source.table.clone(),
                nft_chain: source.chain.clone(),
                iptables_chain: source.hook.iptables_chain().to_owned(),
            },
        }
    }

    /// The chain for `hook` when nothing else is known: our compiled one.
    pub fn for_hook(name: &str, hook: Hook) -> Target {
        Target::compiled(&CompileOptions::new(name, hook))
    }
}

/// `rules` in `format`, ready to paste (TOML) or load (`nft -f`, `iptables-restore --noflush`).
pub fn render_rules(rules: &[Rule], format: Format, target: &Target) -> String {
    match format {
        Format::Toml => rules.iter().map(rule_toml).collect::<Vec<_>>().join("\n"),
        Format::Nft => render_nft(rules, target),
        Format::Iptables => render_iptables(rules, target),
    }
}

fn suggested_comment(index: usize, rule: &Rule) -> String {
    let to: Vec<String> = rule.to.iter().map(block_text).collect();
    let ports: Vec<String> = rule.ports.iter().map(range_text).collect();
    cut(
        format!(
            "{SUGGESTED_TAG}{}: {} to {} ports {}",
            index + 1,
            rule.proto,
            to.join(", "),
            ports.join(", ")
        ),
        MAX_COMMENT_BYTES,
    )
}

fn render_nft(rules: &[Rule], target: &Target) -> String {
    let chain = format!(
        "{} {} {}",
        target.family, target.nft_table, target.nft_chain
    );
    let mut t = format!("# nft -f input: inserts the rules at the top of the chain {chain}\n");
    for (i, rule) in rules.iter().enumerate() {
        for line in nft_lines(rule, &suggested_comment(i, rule)) {
            if family_fits(&target.family, &line) {
                let _ = writeln!(t, "insert rule {chain} {line}");
            }
        }
    }
    t
}

/// An `ip` table cannot hold `ip6` matches, nor an `ip6` table `ip` ones.
fn family_fits(family: &str, line: &str) -> bool {
    let v6 = line.starts_with("ip6 ") || line.starts_with("meta nfproto ipv6");
    match family {
        "ip" => !v6,
        "ip6" => v6,
        _ => true,
    }
}

fn render_iptables(rules: &[Rule], target: &Target) -> String {
    let mut t = String::new();
    for (family, tool) in [(Ipt::V4, "iptables"), (Ipt::V6, "ip6tables")] {
        let lines: Vec<String> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, rule)| iptables_lines(rule, &suggested_comment(i, rule), family))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(
            t,
            "# {tool}-restore --noflush input: inserts the rules at the top of the filter chain {}",
            target.iptables_chain
        );
        let _ = writeln!(t, "*filter");
        for (i, line) in lines.iter().enumerate() {
            let _ = writeln!(t, "-I {} {} {line}", target.iptables_chain, i + 1);
        }
        let _ = writeln!(t, "COMMIT");
    }
    t
}

/// One rule as a policy file's `[[allow]]` block.
pub fn rule_toml(rule: &Rule) -> String {
    let quoted = |items: Vec<String>| {
        items
            .into_iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[[allow]]\nproto = \"{}\"\nto = [{}]\nports = [{}]\n",
        rule.proto,
        quoted(rule.to.iter().map(block_text).collect()),
        quoted(rule.ports.iter().map(range_text).collect())
    )
}

/// A whole policy as the TOML file [`Policy`]'s parser reads.
pub fn policy_toml(policy: &Policy) -> String {
    let word = |v: crate::policy::Verdict| match v {
        crate::policy::Verdict::Pass => "pass",
        crate::policy::Verdict::Drop => "drop",
        crate::policy::Verdict::Reject => "reject",
    };
    let dns = match policy.dns {
        crate::policy::DnsPolicy::Public => "public",
        crate::policy::DnsPolicy::Blocked => "blocked",
    };
    let mut t = format!("default = \"{}\"\ndns = \"{dns}\"\n", word(policy.default));
    for rule in &policy.rules {
        t.push('\n');
        t.push_str(&rule_toml(rule));
    }
    t
}

/// A rule from the strings of a report (`"10.0.0.0/8"`, `"4500-4650"`); `None` when one is
/// not an address, block, port or range.
pub fn rule_from_text(proto: Proto, to: &[String], ports: &[String]) -> Option<Rule> {
    let to: Vec<Cidr> = to.iter().map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let ports: Vec<RangeInclusive<u16>> = ports
        .iter()
        .map(|p| {
            let (lo, hi) = match p.split_once('-') {
                Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
                None => {
                    let one = p.trim().parse().ok()?;
                    (one, one)
                }
            };
            (1 <= lo && lo <= hi).then_some(lo..=hi)
        })
        .collect::<Option<_>>()?;
    (!to.is_empty() && !ports.is_empty()).then_some(Rule { proto, to, ports })
}
