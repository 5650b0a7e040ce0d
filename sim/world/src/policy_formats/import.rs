//! What the importers share: the subset of firewall rules a policy can express, and how a
//! chain of them becomes a [`Policy`].
//!
//! Each importer turns the chosen chain (an `output` or `forward` base chain of a `filter`
//! table; unconditional jumps to chains of its own are followed) into rules of its own, in order;
//! `assemble` then reads them as a policy:
//!
//! - `oif lo accept` (loopback) and `ct state established,related accept` (replies) are the
//!   stateful frame every policy has; `ct state invalid drop` changes no new flow, nor does a
//!   gateway's inbound guard (`iifname "wan" drop`: new traffic from the outside is dropped,
//!   as the simulation drops unsolicited inbound datagrams);
//! - an **accept** rule with a protocol, destination addresses and ports (each optional: no
//!   address is every address of the family, no port is 1-65535, no protocol is TCP and UDP)
//!   is an allow rule;
//! - a **drop or reject of port 53** (TCP and UDP, any address) ahead of every allow rule is the
//!   DNS rule (`dns = "blocked"`);
//! - drop, reject or accept rules that match at most a protocol are the **default**, with the
//!   chain's policy for what they leave: TCP and UDP must agree on passing or not; TCP decides
//!   between `drop` and `reject` (UDP vanishes either way in the policy's model);
//! - rules that only count or log change nothing; rules for protocols other than TCP and UDP are
//!   left out with a note;
//! - anything else (a source or interface match, a negation, a deny rule for some
//!   destinations, rate limits, marks, NAT, a conditional jump, a rule that can never be
//!   reached ...) is an [`ImportError::Untranslatable`] naming the rule and what it cannot
//!   translate.

use std::fmt;
use std::ops::RangeInclusive;

use cloudproxy_core::relay::Cidr;

use super::canon::{canonical_rule, merge_blocks, merge_ports};
use super::Hook;
use crate::policy::{DnsPolicy, Policy, Proto, Rule, Verdict};

/// Why a firewall export could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("{file}: {error}")]
    Read {
        /// The file.
        file: String,
        /// What went wrong.
        error: String,
    },
    /// The input is larger than the importers read.
    #[error(
        "{what} is larger than {limit_bytes} bytes, the most a policy or firewall export may be"
    )]
    TooLarge {
        /// The file (or "the input").
        what: String,
        /// The limit.
        limit_bytes: usize,
    },
    /// The nftables input is not the JSON of `nft -j list ruleset`.
    #[error("not the JSON of `nft -j list ruleset`: {0}")]
    NotNftJson(String),
    /// A line of `iptables-save` output is malformed.
    #[error("line {line}: {message}: `{text}`")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong with it.
        message: String,
    },
    /// No chain on the hook asked for (or on either hook) holds a policy.
    #[error("no {wanted} chain with rules or a policy other than accept was found{found}")]
    NoChain {
        /// The hook(s) looked for.
        wanted: String,
        /// The chains seen, for the message.
        found: String,
    },
    /// Several chains could be the policy.
    #[error("{chains} could each be the policy; choose one with --hook output|forward")]
    AmbiguousChain {
        /// The chains.
        chains: String,
    },
    /// A rule (or chain) is outside the subset a policy can express.
    #[error("{at}: {what}")]
    Untranslatable {
        /// Which rule: `line 12 (-A OUTPUT ...)` or `rule 3 (handle 7) of inet filter output`.
        at: String,
        /// What cannot be translated, and why.
        what: String,
    },
}

/// What to import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The hook whose chain is the policy; `None` takes the only one that holds rules.
    pub hook: Option<Hook>,
}

/// Where an imported policy came from, to write rules back into the same chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The hook.
    pub hook: Hook,
    /// nftables: `inet`, `ip` or `ip6`; iptables: `ip` (and `ip6` with an IPv6 section).
    pub family: String,
    /// nftables: the table; iptables: `filter`.
    pub table: String,
    /// The chain the rules were read from (the base chain, or the chain of its own it jumps to).
    pub chain: String,
}

/// An imported policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The policy, in [`canonical`](super::canonical) form.
    pub policy: Policy,
    /// Where the allow rules live.
    pub source: Source,
    /// What was left out, and why it changes no TCP or UDP verdict.
    pub notes: Vec<String>,
}

/// The address family a rule or chain is restricted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    fn everything(self) -> Cidr {
        match self {
            Family::V4 => "0.0.0.0/0".parse().expect("valid"),
            Family::V6 => "::/0".parse().expect("valid"),
        }
    }
}

/// A layer-4 protocol a rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum L4 {
    Known(Proto),
    Other(String),
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing: the rule only counts or logs.
    Continue,
    Accept,
    Drop,
    Reject,
    /// Into a chain of the same table, and back.
    Jump(String),
    /// Back to the calling chain.
    Return,
}

/// The connection-tracking states a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ct {
    /// Established and/or related: replies.
    Replies,
    /// Invalid packets.
    Invalid,
}

/// One firewall rule, reduced to what a policy can express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FwRule {
    /// Which rule, for messages.
    pub at: String,
    pub family: Option<Family>,
    pub protos: Option<Vec<L4>>,
    pub daddr: Option<Vec<Cidr>>,
    pub dports: Option<Vec<RangeInclusive<u16>>>,
    pub ct: Option<Ct>,
    pub oif_lo: bool,
    /// The input interface matched (a gateway's inbound guard).
    pub iif: Option<String>,
    pub action: Action,
    pub comment: Option<String>,
}

impl FwRule {
    /// A rule that matches everything and does `action`.
    pub fn new(at: String, action: Action) -> FwRule {
        FwRule {
            at,
            family: None,
            protos: None,
            daddr: None,
            dports: None,
            ct: None,
            oif_lo: false,
            iif: None,
            action,
            comment: None,
        }
    }

    fn untranslatable(&self, what: impl Into<String>) -> ImportError {
        ImportError::Untranslatable {
            at: self.at.clone(),
            what: what.into(),
        }
    }

    fn no_destination(&self) -> bool {
        self.daddr.is_none() && self.dports.is_none()
    }

    fn matches_nothing_else(&self) -> bool {
        self.no_destination() && self.protos.is_none() && self.family.is_none()
    }
}

/// One chain, as the importers hand it to [`assemble_chains`].
pub(crate) struct Chain {
    /// The family it filters (`None`: both, an `inet` table).
    pub family: Option<Family>,
    /// Its rules, jumps already followed.
    pub rules: Vec<FwRule>,
    /// Its policy: `Accept` or `Drop`.
    pub policy: Action,
    /// `family table chain`, for messages.
    pub name: String,
    /// The hook it sits on.
    pub hook: Hook,
}

/// What one chain says.
struct ChainPolicy {
    default: Verdict,
    dns: DnsPolicy,
    rules: Vec<(Option<usize>, Rule)>,
}

/// The policy of one or two chains (an IPv4 and an IPv6 one: they must agree on the default
/// and the DNS rule); rules that a comment names as parts of one allow rule are merged.
pub(crate) fn assemble_chains(
    chains: &[Chain],
    notes: &mut Vec<String>,
) -> Result<Policy, ImportError> {
    let mut first: Option<(&str, Verdict, DnsPolicy)> = None;
    let mut tagged: Vec<(Option<usize>, Rule)> = Vec::new();
    let families: Vec<Option<Family>> = chains.iter().map(|c| c.family).collect();
    if let [Some(only)] = families.as_slice() {
        notes.push(format!(
            "{}: only {only} is filtered by this chain; the policy applies its default to the other family too",
            chains[0].name
        ));
    }
    for chain in chains {
        let read = assemble(chain, notes)?;
        let replies = chain.rules.iter().any(|r| r.ct == Some(Ct::Replies));
        if chain.hook == Hook::Forward && !replies && read.default != Verdict::Pass {
            notes.push(format!(
                "{}: no `ct state established,related accept`: this gateway drops the replies of every allowed flow, while the policy (and the simulation) lets them pass",
                chain.name
            ));
        }
        match first {
            None => first = Some((&chain.name, read.default, read.dns)),
            Some((name, default, dns)) if (default, dns) != (read.default, read.dns) => {
                return Err(ImportError::Untranslatable {
                    at: chain.name.clone(),
                    what: format!(
                        "its default ({:?}, dns {:?}) differs from that of {name} ({default:?}, dns {dns:?}): a policy has one for both address families",
                        read.default, read.dns
                    ),
                })
            }
            Some(_) => {}
        }
        tagged.extend(read.rules);
    }
    let (_, default, dns) = first.ok_or_else(|| ImportError::NoChain {
        wanted: "output or forward".to_owned(),
        found: String::new(),
    })?;
    Ok(Policy {
        default,
        dns,
        rules: merge_tagged(tagged),
    })
}

/// Parts of one allow rule (the same comment tag and protocol) become one rule again: parts
/// to the same destinations join their ports (iptables' `multiport` groups), then parts with
/// the same ports join their destinations (one `-d` per line; an IPv4 and an IPv6 statement).
/// Both unions decide every flow as the parts did; rules without a tag keep their place.
fn merge_tagged(mut tagged: Vec<(Option<usize>, Rule)>) -> Vec<Rule> {
    if tagged.iter().all(|(tag, _)| tag.is_some()) {
        // Every rule names its allow rule: their order (the IPv6 file comes after the IPv4 one).
        tagged.sort_by_key(|(tag, _)| *tag);
    }
    let tagged: Vec<(Option<usize>, Rule)> = tagged
        .into_iter()
        .map(|(t, r)| (t, canonical_rule(&r)))
        .collect();
    let same_to = |a: &Rule, b: &Rule| a.to == b.to;
    let same_ports = |a: &Rule, b: &Rule| a.ports == b.ports;
    let joined = join_parts(tagged, same_to, |into, part| {
        into.ports.extend(part.ports);
        into.ports = merge_ports(&into.ports);
    });
    let joined = join_parts(joined, same_ports, |into, part| {
        into.to.extend(part.to);
        into.to = merge_blocks(&into.to);
    });
    joined.into_iter().map(|(_, r)| r).collect()
}

/// Joins each tagged rule into the first earlier one with its tag and protocol for which
/// `fits` holds.
fn join_parts(
    tagged: Vec<(Option<usize>, Rule)>,
    fits: impl Fn(&Rule, &Rule) -> bool,
    join: impl Fn(&mut Rule, Rule),
) -> Vec<(Option<usize>, Rule)> {
    let mut out: Vec<(Option<usize>, Rule)> = Vec::new();
    for (tag, rule) in tagged {
        let place = tag.and_then(|t| {
            out.iter()
                .position(|(o, r)| *o == Some(t) && r.proto == rule.proto && fits(r, &rule))
        });
        match place {
            Some(i) => join(&mut out[i].1, rule),
            None => out.push((tag, rule)),
        }
    }
    out
}

/// How far [`assemble`] has read.
#[derive(Default)]
struct Tail {
    tcp: Option<(Verdict, String)>,
    udp: Option<(Verdict, String)>,
    /// A rule that matches every packet and decides: nothing after it is reached.
    end: Option<String>,
}

impl Tail {
    fn slot(&mut self, proto: Proto) -> &mut Option<(Verdict, String)> {
        match proto {
            Proto::Tcp => &mut self.tcp,
            Proto::Udp => &mut self.udp,
        }
    }
}

/// One chain's rules read as a policy (see the module docs).
fn assemble(chain: &Chain, notes: &mut Vec<String>) -> Result<ChainPolicy, ImportError> {
    let mut tail = Tail::default();
    let mut rules: Vec<(Option<usize>, Rule)> = Vec::new();
    let mut dns = [false, false];
    for r in &chain.rules {
        if r.action == Action::Continue {
            continue;
        }
        if let Some(end) = &tail.end {
            return Err(r.untranslatable(format!(
                "is never reached: {end} already decides every packet"
            )));
        }
        if frame_rule(r)? {
            continue;
        }
        let protos = known_protos(r, notes);
        if protos.is_empty() {
            continue;
        }
        let verdict = match r.action {
            Action::Accept => Verdict::Pass,
            Action::Drop => Verdict::Drop,
            Action::Reject => Verdict::Reject,
            Action::Continue => continue,
            Action::Jump(ref to) => {
                return Err(r.untranslatable(format!(
                    "jumps to chain {to} only for some packets: only a jump that matches everything can be followed"
                )))
            }
            Action::Return => {
                return Err(r.untranslatable(
                    "returns early for some packets: the importer follows straight chains only",
                ))
            }
        };
        let live: Vec<Proto> = protos
            .iter()
            .copied()
            .filter(|&p| tail.slot(p).is_none())
            .collect();
        let tail_rule = r.no_destination() && (verdict != Verdict::Pass || r.protos.is_none());
        if tail_rule {
            if r.family.is_some() {
                return Err(r.untranslatable(
                    "decides by address family alone: a policy has one default for IPv4 and IPv6",
                ));
            }
            for &proto in &live {
                *tail.slot(proto) = Some((verdict, r.at.clone()));
            }
            if r.protos.is_none() {
                tail.end = Some(r.at.clone());
            }
            continue;
        }
        if live.is_empty() {
            let by = tail
                .slot(protos[0])
                .clone()
                .map(|(_, by)| by)
                .unwrap_or_default();
            return Err(r.untranslatable(format!(
                "is never reached: {by} already decides every {} packet",
                protos[0]
            )));
        }
        let protos = live;
        if r.no_destination() {
            // `meta l4proto udp accept`: an allow rule to everything.
            for &proto in &protos {
                rules.push((None, allow(r, proto, chain.family)));
            }
            continue;
        }
        if verdict == Verdict::Pass {
            let tag = r.comment.as_deref().and_then(super::rule_index);
            for &proto in &protos {
                rules.push((tag, allow(r, proto, chain.family)));
            }
            continue;
        }
        if r.daddr.is_none() && r.dports.as_deref() == Some(&[53..=53]) && rules.is_empty() {
            for &proto in &protos {
                dns[proto as usize] = true;
            }
            continue;
        }
        return Err(r.untranslatable(deny_reason(r, !rules.is_empty())));
    }
    let (default, dns) = chain_defaults(chain, &tail, dns)?;
    Ok(ChainPolicy {
        default,
        dns,
        rules,
    })
}

/// A chain's default verdict (its tail rules', else its policy's) and DNS stance (what its
/// port-53 denials say), each one for TCP and UDP or an error saying why not.
fn chain_defaults(
    chain: &Chain,
    tail: &Tail,
    dns: [bool; 2],
) -> Result<(Verdict, DnsPolicy), ImportError> {
    let dns = match dns {
        [true, true] => DnsPolicy::Blocked,
        [false, false] => DnsPolicy::Public,
        [tcp, _] => {
            return Err(ImportError::Untranslatable {
                at: chain.name.clone(),
                what: format!(
                    "denies DNS (port 53) over {} only: the policy's dns = \"blocked\" denies it over TCP and UDP",
                    if tcp { "TCP" } else { "UDP" }
                ),
            })
        }
    };
    let fallback = match chain.policy {
        Action::Accept => Verdict::Pass,
        _ => Verdict::Drop,
    };
    let tcp = tail.tcp.as_ref().map_or(fallback, |(v, _)| *v);
    let udp = tail.udp.as_ref().map_or(fallback, |(v, _)| *v);
    let default = match (tcp, udp) {
        (Verdict::Pass, Verdict::Pass) => Verdict::Pass,
        (Verdict::Pass, _) | (_, Verdict::Pass) => {
            return Err(ImportError::Untranslatable {
                at: chain.name.clone(),
                what: format!(
                    "by default passes {} but denies {}: a policy has one default for TCP and UDP",
                    if tcp == Verdict::Pass { "TCP" } else { "UDP" },
                    if tcp == Verdict::Pass { "UDP" } else { "TCP" }
                ),
            })
        }
        (tcp, _) => tcp,
    };
    Ok((default, dns))
}

/// Loopback, connection-tracking and inbound-guard rules: `Ok(true)` when `r` is one (and
/// nothing more).
fn frame_rule(r: &FwRule) -> Result<bool, ImportError> {
    if let Some(iif) = &r.iif {
        if !matches!(r.action, Action::Drop | Action::Reject)
            || !r.matches_nothing_else()
            || r.ct.is_some()
            || r.oif_lo
        {
            return Err(r.untranslatable(format!(
                "matches the input interface {iif} and more: only `iifname \"{iif}\" drop` (a gateway dropping new traffic from the outside: only replies enter) is understood"
            )));
        }
        return Ok(true);
    }
    if r.oif_lo {
        if r.action != Action::Accept || !r.matches_nothing_else() || r.ct.is_some() {
            return Err(r.untranslatable(
                "matches the loopback interface and more: only `oif lo accept` is understood",
            ));
        }
        return Ok(true);
    }
    match r.ct {
        None => Ok(false),
        Some(Ct::Replies) if r.action == Action::Accept && r.matches_nothing_else() => Ok(true),
        Some(Ct::Invalid)
            if matches!(r.action, Action::Drop | Action::Reject) && r.matches_nothing_else() =>
        {
            Ok(true)
        }
        Some(_) => Err(r.untranslatable(
            "matches connection-tracking state: only `ct state established,related accept` (replies) and `ct state invalid drop` are understood",
        )),
    }
}

/// The policy's protocols among those `r` matches; a note for the others.
fn known_protos(r: &FwRule, notes: &mut Vec<String>) -> Vec<Proto> {
    let Some(protos) = &r.protos else {
        return vec![Proto::Tcp, Proto::Udp];
    };
    let mut known = Vec::new();
    let mut other = Vec::new();
    for p in protos {
        match p {
            L4::Known(p) if !known.contains(p) => known.push(*p),
            L4::Known(_) => {}
            L4::Other(name) => other.push(name.clone()),
        }
    }
    if !other.is_empty() {
        notes.push(format!(
            "{}: left out for {}: the policy decides TCP and UDP only",
            r.at,
            other.join(", ")
        ));
    }
    known
}

fn allow(r: &FwRule, proto: Proto, chain_family: Option<Family>) -> Rule {
    let to = match &r.daddr {
        Some(blocks) => blocks.clone(),
        None => match r.family.or(chain_family) {
            Some(f) => vec![f.everything()],
            None => vec![Family::V4.everything(), Family::V6.everything()],
        },
    };
    Rule {
        proto,
        to,
        ports: r.dports.clone().unwrap_or_else(|| vec![1..=65535]),
    }
}

fn deny_reason(r: &FwRule, after_allows: bool) -> String {
    if r.daddr.is_none() && r.dports.as_deref() == Some(&[53..=53]) && after_allows {
        return "denies DNS (port 53) after allow rules: the DNS rule must come before every allow rule".to_owned();
    }
    "denies some destinations only: a policy is allow rules and one default, so a drop or reject for particular addresses or ports cannot be expressed (remove it, or narrow the allow rules instead)".to_owned()
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        })
    }
}
