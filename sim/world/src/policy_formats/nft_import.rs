//! A policy from the JSON of `nft -j list ruleset`.
//!
//! The policy is the `filter` base chain on the `output` hook (or `forward`; with both holding
//! rules, [`ImportOptions::hook`] chooses): one `inet` chain, or an `ip` and an `ip6` chain.
//! Unconditional jumps to regular chains of the same table are followed. Each rule is read
//! as [`super::import`] says, expression by expression; an expression outside the subset is an
//! error naming the rule's place in its chain and its handle.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use cloudproxy_core::relay::Cidr;
use serde_json::Value;

use super::canon::address_range;
use super::import::{
    assemble_chains, Action, Chain, Ct, Family, FwRule, ImportError, ImportOptions, Imported,
    Source, L4,
};
use super::{canonical, check_size, Hook};
use crate::policy::{Policy, Proto};

/// How deep jumps to other chains are followed.
const MAX_JUMP_DEPTH: usize = 8;

/// The policy in `nft -j list ruleset` output (see the module docs).
pub fn from_nft(text: &str) -> Result<Policy, ImportError> {
    import_nft(text, &ImportOptions::default()).map(|i| i.policy)
}

/// The policy in `nft -j list ruleset` output, where it came from, and notes.
pub fn import_nft(text: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    check_size(text)?;
    let parsed;
    let items: &[Value] = if text.trim_start().starts_with('{') {
        parsed = serde_json::from_str::<Value>(text)
            .map_err(|e| ImportError::NotNftJson(e.to_string()))?;
        parsed
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| ImportError::NotNftJson("no top-level \"nftables\" list".to_owned()))?
    } else {
        if text.contains("managed by iptables-nft") {
            return Err(ImportError::Untranslatable {
                at: "the ruleset".to_owned(),
                what: "has tables managed by iptables-nft, whose text listing leaves iptables matches out: import the `iptables-save` output with --from-iptables (or `nft -j list ruleset`)".to_owned(),
            });
        }
        parsed = Value::Array(super::nft_text::to_json(text)?);
        parsed.as_array().map(Vec::as_slice).unwrap_or(&[])
    };
    let ruleset = Ruleset::read(items)?;
    let (hook, bases) = ruleset.choose(options.hook)?;
    let mut notes = Vec::new();
    let mut chains = Vec::new();
    let mut holder = bases[0].clone();
    for base in &bases {
        let (rules, deepest) = ruleset.flatten(base, 0)?;
        holder = deepest;
        let meta = &ruleset.chains[base];
        chains.push(Chain {
            family: match base.0.as_str() {
                "ip" => Some(Family::V4),
                "ip6" => Some(Family::V6),
                _ => None,
            },
            rules,
            policy: meta.policy.clone(),
            name: chain_name(base),
            hook,
        });
    }
    let policy = assemble_chains(&chains, &mut notes)?;
    Ok(Imported {
        policy: canonical(&policy),
        source: Source {
            hook,
            family: holder.0.clone(),
            table: holder.1.clone(),
            chain: holder.2.clone(),
        },
        notes,
    })
}

/// `(family, table, chain)`.
type ChainKey = (String, String, String);

fn chain_name(key: &ChainKey) -> String {
    format!("{} {} {}", key.0, key.1, key.2)
}

struct ChainMeta {
    hook: Option<String>,
    kind: Option<String>,
    policy: Action,
}

struct Ruleset<'a> {
    chains: BTreeMap<ChainKey, ChainMeta>,
    rules: BTreeMap<ChainKey, Vec<&'a Value>>,
}

impl<'a> Ruleset<'a> {
    fn read(items: &'a [Value]) -> Result<Ruleset<'a>, ImportError> {
        let mut chains = BTreeMap::new();
        let mut rules: BTreeMap<ChainKey, Vec<&Value>> = BTreeMap::new();
        for item in items {
            if let Some(c) = item.get("chain") {
                let key = key(c, "name")?;
                let policy = match c.get("policy").and_then(Value::as_str) {
                    Some("drop") => Action::Drop,
                    _ => Action::Accept,
                };
                let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
                chains.insert(
                    key,
                    ChainMeta {
                        hook: text("hook"),
                        kind: text("type"),
                        policy,
                    },
                );
            } else if let Some(r) = item.get("rule") {
                rules.entry(key(r, "chain")?).or_default().push(r);
            }
        }
        Ok(Ruleset { chains, rules })
    }

    /// The base chains of the policy's hook.
    fn choose(&self, wanted: Option<Hook>) -> Result<(Hook, Vec<ChainKey>), ImportError> {
        let mut by_hook: BTreeMap<Hook, Vec<ChainKey>> = BTreeMap::new();
        let mut seen = Vec::new();
        for (key, meta) in &self.chains {
            let Some(hook) = meta.hook.as_deref() else {
                continue;
            };
            seen.push(format!("{} (hook {hook})", chain_name(key)));
            let hook = match hook {
                "output" => Hook::Output,
                "forward" => Hook::Forward,
                _ => continue,
            };
            let family_ok = matches!(key.0.as_str(), "inet" | "ip" | "ip6");
            let empty =
                meta.policy == Action::Accept && self.rules.get(key).is_none_or(|r| r.is_empty());
            if family_ok && meta.kind.as_deref() == Some("filter") && !empty {
                by_hook.entry(hook).or_default().push(key.clone());
            }
        }
        let found = if seen.is_empty() {
            " (the ruleset has no base chain)".to_owned()
        } else {
            format!(" (base chains: {})", seen.join(", "))
        };
        let (hook, bases) = match wanted {
            Some(h) => match by_hook.remove(&h) {
                Some(b) => (h, b),
                None => {
                    return Err(ImportError::NoChain {
                        wanted: format!("filter {h}"),
                        found,
                    })
                }
            },
            None if by_hook.len() > 1 => {
                let chains: Vec<String> = by_hook.values().flatten().map(chain_name).collect();
                return Err(ImportError::AmbiguousChain {
                    chains: chains.join(" and "),
                });
            }
            None => match by_hook.pop_first() {
                Some(found) => found,
                None => {
                    return Err(ImportError::NoChain {
                        wanted: "filter output or forward".to_owned(),
                        found,
                    })
                }
            },
        };
        let families: Vec<&str> = bases.iter().map(|k| k.0.as_str()).collect();
        let clash = families.len() > 2
            || (families.len() == 2 && (families.contains(&"inet") || families[0] == families[1]));
        if clash {
            let names: Vec<String> = bases.iter().map(chain_name).collect();
            return Err(ImportError::Untranslatable {
                at: names.join(", "),
                what: format!(
                    "several chains filter the same packets on the {hook} hook (each must accept them): the importer reads one chain per address family"
                ),
            });
        }
        Ok((hook, bases))
    }

    /// The rules of `chain`, jumps followed; and the deepest chain they came from.
    fn flatten(
        &self,
        chain: &ChainKey,
        depth: usize,
    ) -> Result<(Vec<FwRule>, ChainKey), ImportError> {
        let mut out = Vec::new();
        let mut deepest = chain.clone();
        let rules = self.rules.get(chain).map(Vec::as_slice).unwrap_or(&[]);
        for (i, rule) in rules.iter().enumerate() {
            let handle = rule.get("handle").and_then(Value::as_u64);
            let line = rule.get("line").and_then(Value::as_u64);
            let text = rule.get("text").and_then(Value::as_str).unwrap_or("");
            let at = match (handle, line) {
                (_, Some(n)) => format!("line {n} ({text})"),
                (Some(h), None) => format!("rule {} of {} (handle {h})", i + 1, chain_name(chain)),
                (None, None) => format!("rule {} of {}", i + 1, chain_name(chain)),
            };
            let fw = convert(rule, at)?;
            let Action::Jump(target) = &fw.action else {
                out.push(fw);
                continue;
            };
            let only_jump = fw.protos.is_none()
                && fw.family.is_none()
                && fw.daddr.is_none()
                && fw.dports.is_none()
                && fw.ct.is_none()
                && !fw.oif_lo
                && fw.iif.is_none();
            let to: ChainKey = (chain.0.clone(), chain.1.clone(), target.clone());
            if !only_jump {
                // A conditional jump: assemble names it.
                out.push(fw);
                continue;
            }
            if !self.chains.contains_key(&to) || depth >= MAX_JUMP_DEPTH {
                return Err(untranslatable(
                    &fw,
                    format!("jumps to chain {target}, which is not in this table or is more than {MAX_JUMP_DEPTH} jumps deep"),
                ));
            }
            let (mut inner, inner_deepest) = self.flatten(&to, depth + 1)?;
            if let Some(pos) = inner.iter().position(|r| r.action == Action::Return) {
                if inner[pos].protos.is_none()
                    && inner[pos].daddr.is_none()
                    && pos + 1 == inner.len()
                {
                    inner.pop();
                }
            }
            deepest = inner_deepest;
            out.extend(inner);
        }
        Ok((out, deepest))
    }
}

fn key(object: &Value, chain_field: &str) -> Result<ChainKey, ImportError> {
    let text = |k: &str| {
        object
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ImportError::NotNftJson(format!("a chain or rule without \"{k}\": {object}"))
            })
    };
    Ok((text("family")?, text("table")?, text(chain_field)?))
}

/// One rule object, expression by expression.
fn convert(rule: &Value, at: String) -> Result<FwRule, ImportError> {
    let mut fw = FwRule::new(at, Action::Continue);
    fw.comment = rule
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let exprs = rule
        .get("expr")
        .and_then(Value::as_array)
        .ok_or_else(|| ImportError::NotNftJson(format!("{}: no \"expr\" list", fw.at)))?;
    for expr in exprs {
        let Some((name, body)) = expr.as_object().and_then(|o| o.iter().next()) else {
            return Err(untranslatable(
                &fw,
                format!("expression {expr} is not an object"),
            ));
        };
        match name.as_str() {
            "match" => read_match(&mut fw, body)?,
            "counter" | "log" => {}
            "accept" => fw.action = Action::Accept,
            "drop" => fw.action = Action::Drop,
            "reject" => fw.action = Action::Reject,
            "return" => fw.action = Action::Return,
            "jump" => {
                let target = body.get("target").and_then(Value::as_str).unwrap_or("?");
                fw.action = Action::Jump(target.to_owned());
            }
            "xt" => {
                return Err(untranslatable(
                    &fw,
                    "uses an iptables extension (the rule was written by iptables-nft): import the `iptables-save` output with --from-iptables instead",
                ))
            }
            other => {
                return Err(untranslatable(
                    &fw,
                    format!("uses `{other}` ({expr}), which a policy cannot express"),
                ))
            }
        }
    }
    Ok(fw)
}

fn untranslatable(fw: &FwRule, what: impl Into<String>) -> ImportError {
    ImportError::Untranslatable {
        at: fw.at.clone(),
        what: what.into(),
    }
}

fn read_match(fw: &mut FwRule, body: &Value) -> Result<(), ImportError> {
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    let left = body.get("left").unwrap_or(&Value::Null);
    let right = body.get("right").unwrap_or(&Value::Null);
    if op != "==" && op != "in" {
        return Err(untranslatable(
            fw,
            format!("matches {left} {op} {right}: only positive matches (==) can be expressed"),
        ));
    }
    let at = fw.at.clone();
    let bad = |what: &str| ImportError::Untranslatable {
        at: at.clone(),
        what: format!("matches {what} ({left} {op} {right}), which a policy cannot express"),
    };
    if let Some(p) = left.get("payload") {
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
        let field = p.get("field").and_then(Value::as_str).unwrap_or("");
        match (proto, field) {
            ("ip" | "ip6", "daddr") => {
                let family = if proto == "ip" {
                    Family::V4
                } else {
                    Family::V6
                };
                let blocks = addresses(right).ok_or_else(|| bad("destination addresses"))?;
                if blocks
                    .iter()
                    .any(|b| b.addr().is_ipv4() != (family == Family::V4))
                {
                    return Err(bad("addresses of the other family"));
                }
                set_family(fw, family)?;
                fw.daddr = Some(blocks);
            }
            ("ip", "protocol") | ("ip6", "nexthdr") => set_protos(fw, protocols(right))?,
            ("tcp" | "udp", "dport") => {
                let p = if proto == "tcp" {
                    Proto::Tcp
                } else {
                    Proto::Udp
                };
                set_protos(fw, vec![L4::Known(p)])?;
                fw.dports = Some(ports(right).ok_or_else(|| bad("destination ports"))?);
            }
            ("th", "dport") => {
                fw.dports = Some(ports(right).ok_or_else(|| bad("destination ports"))?)
            }
            _ => return Err(bad(&format!("{proto} {field}"))),
        }
    } else if let Some(key) = left
        .get("meta")
        .and_then(|m| m.get("key"))
        .and_then(Value::as_str)
    {
        match key {
            "l4proto" => set_protos(fw, protocols(right))?,
            "nfproto" => match right.as_str() {
                Some("ipv4") => set_family(fw, Family::V4)?,
                Some("ipv6") => set_family(fw, Family::V6)?,
                _ => return Err(bad("the family")),
            },
            "oif" | "oifname" if right.as_str() == Some("lo") => fw.oif_lo = true,
            "iif" | "iifname" if right.is_string() => {
                fw.iif = right.as_str().map(str::to_owned);
            }
            _ => return Err(bad(&format!("meta {key}"))),
        }
    } else if left
        .get("ct")
        .and_then(|c| c.get("key"))
        .and_then(Value::as_str)
        == Some("state")
    {
        let states = strings(right);
        fw.ct = if !states.is_empty() && states.iter().all(|s| s == "established" || s == "related")
        {
            Some(Ct::Replies)
        } else if states == ["invalid"] {
            Some(Ct::Invalid)
        } else {
            return Err(bad("connection-tracking states"));
        };
    } else {
        return Err(bad("this"));
    }
    Ok(())
}

fn set_family(fw: &mut FwRule, family: Family) -> Result<(), ImportError> {
    match fw.family {
        Some(f) if f != family => Err(untranslatable(
            fw,
            "matches both IPv4 and IPv6: it never matches",
        )),
        _ => {
            fw.family = Some(family);
            Ok(())
        }
    }
}

/// Narrows the protocols (`tcp dport` after `meta l4proto tcp` keeps TCP).
fn set_protos(fw: &mut FwRule, protos: Vec<L4>) -> Result<(), ImportError> {
    let narrowed = match fw.protos.take() {
        None => protos,
        Some(old) => old.into_iter().filter(|p| protos.contains(p)).collect(),
    };
    if narrowed.is_empty() {
        return Err(untranslatable(
            fw,
            "matches two different protocols: it never matches",
        ));
    }
    fw.protos = Some(narrowed);
    Ok(())
}

/// The elements of a set, or the one value.
fn elements(v: &Value) -> Vec<&Value> {
    match v.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => match v.as_array() {
            Some(items) => items.iter().collect(),
            None => vec![v],
        },
    }
}

fn strings(v: &Value) -> Vec<String> {
    elements(v)
        .into_iter()
        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
        .collect()
}

fn protocols(v: &Value) -> Vec<L4> {
    elements(v)
        .into_iter()
        .map(|e| match (e.as_str(), e.as_u64()) {
            (Some("tcp"), _) | (_, Some(6)) => L4::Known(Proto::Tcp),
            (Some("udp"), _) | (_, Some(17)) => L4::Known(Proto::Udp),
            (Some(other), _) => L4::Other(other.to_owned()),
            _ => L4::Other(e.to_string()),
        })
        .collect()
}

fn port(v: &Value) -> Option<u16> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .and_then(|p| u16::try_from(p).ok())
}

fn ports(v: &Value) -> Option<Vec<RangeInclusive<u16>>> {
    let mut out = Vec::new();
    for e in elements(v) {
        let (lo, hi) = match e.get("range").and_then(Value::as_array) {
            Some(r) if r.len() == 2 => (port(&r[0])?, port(&r[1])?),
            Some(_) => return None,
            None => {
                let p = port(e)?;
                (p, p)
            }
        };
        // Port 0 is no destination: a range from 0 means from 1.
        let lo = lo.max(1);
        if lo > hi {
            return None;
        }
        out.push(lo..=hi);
    }
    (!out.is_empty()).then_some(out)
}

fn addresses(v: &Value) -> Option<Vec<Cidr>> {
    let mut out = Vec::new();
    for e in elements(v) {
        if let Some(p) = e.get("prefix") {
            let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            out.push(Cidr::new(addr, len).ok()?);
        } else if let Some(r) = e.get("range").and_then(Value::as_array) {
            let ip = |i: usize| r.get(i)?.as_str()?.parse::<IpAddr>().ok();
            out.extend(address_range(ip(0)?, ip(1)?)?);
        } else {
            out.push(e.as_str()?.parse::<Cidr>().ok()?);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The packet counts of the commented rules in `nft -j list ruleset` output, in order:
/// `(comment, packets)`; the compiled rules' comments name the allow rule (`cloudproxy rule N:
/// ...`) or the default, to compare with the simulation's verdicts.
pub fn nft_counters(text: &str) -> Result<Vec<(String, u64)>, ImportError> {
    check_size(text)?;
    let root: Value =
        serde_json::from_str(text).map_err(|e| ImportError::NotNftJson(e.to_string()))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| ImportError::NotNftJson("no top-level \"nftables\" list".to_owned()))?;
    let mut out = Vec::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let Some(comment) = rule.get("comment").and_then(Value::as_str) else {
            continue;
        };
        let packets = rule
            .get("expr")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|e| e.get("counter")?.get("packets")?.as_u64());
        if let Some(packets) = packets {
            out.push((comment.to_owned(), packets));
        }
    }
    Ok(out)
}
