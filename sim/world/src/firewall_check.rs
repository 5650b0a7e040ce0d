//! `cloudproxy check-firewall`: will the SDK work behind *this* firewall, and if not (or not at
//! its best), which allow rules are missing?
//!
//! Two runs of the default world, side by side on two threads, each with one SDK client (the
//! given `setParameters` calls, then join) and a peer in an open enterprise, so that media is
//! verified both ways:
//!
//! 1. **behind the policy**: joined or not, the signalling path, the media path, the time to
//!    join, and what the firewall denied;
//! 2. **with no firewall** (the policy's resolver kept): the flows the client's *best* path
//!    uses, learned from a capture of what the client sent.
//!
//! The candidate rules are the best path's flows, widened to the vendor's documented whitelist
//! ([`Policy::seed`]) where a documented rule covers them (the client may use any relay and any
//! port of the range next time: a rule for the one flow seen would break on fail-over), minus
//! what the policy already allows, grouped into rules an administrator can paste. Flows no
//! documented rule covers (a SOCKS5 server, SD-RTN directly with the proxy off) are listed
//! exactly.
//!
//! The candidates are then verified and made minimal, by more runs: with all of them added the
//! client must take the best path (joined, the same media, no more than a second slower);
//! then each is dropped in turn, last first, and stays dropped when the best path still holds
//! without it (the client asks the access point over UDP and TCP at once, so one of the two
//! suffices). What is left is each necessary, and together sufficient.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use cloudproxy_core::client::{ConnectionState, MediaPath};
use cloudproxy_core::engine::Engine;
use cloudproxy_core::params::{Mode, ProxyServer};
use cloudproxy_core::relay::Cidr;
use cloudproxy_core::socks5::ServerPolicy;
use serde_json::{json, Value};

use crate::pcap::Capture;
use crate::policy::{Policy, Proto, Rule, Verdict};
use crate::world::{
    edge_endpoints, ip, run_world, SocksSpec, WorldSpec, AP_IPS, EDGE_IP, RELAY_IPS,
};
use cloudproxy_node::nodes::client::{ClientReport, ClientSpec};

/// The `setParameters` call used when none is given.
pub const DEFAULT_PARAMS: &str = r#"{"rtc.enable_proxy":true}"#;
/// How long the client behind the policy gets (join, then media both ways).
pub const CHECK_DURATION: Duration = Duration::from_secs(30);
/// How long the reference run (no firewall) and the verification runs get to show the best
/// path.
const REFERENCE_DURATION: Duration = Duration::from_secs(10);
/// How much slower than the best path a join may be and still count as the best path.
const JOIN_SLACK_MS: u64 = 1_000;
/// The enterprise under test: where the SDK client runs.
pub const SDK_IP: &str = "10.1.0.10";
/// The open enterprise of the peer.
const PEER_IP: &str = "10.2.0.10";
const SDK_UID: u32 = 1;
const PEER_UID: u32 = 2;

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckRequest {
    /// The enterprise's firewall policy.
    pub policy: Policy,
    /// The SDK's `setParameters` calls, in order, before joining.
    pub params: Vec<String>,
    /// Read them in compatibility mode.
    pub compat: bool,
    /// The simulation's seed.
    pub seed: u64,
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A `setParameters` call was rejected by the SDK engine.
    #[error("setParameters {text}: {error}")]
    Params {
        /// The call.
        text: String,
        /// The engine's error.
        error: String,
    },
}

/// The media path, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// UDP datagrams.
    Udp,
    /// Framed over TCP.
    Tcp,
    /// No media both ways.
    None,
}

impl Media {
    /// `"udp"`, `"tcp"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Udp => "udp",
            Media::Tcp => "tcp",
            Media::None => "none",
        }
    }
}

/// One allow rule the policy lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRule {
    /// Its protocol.
    pub proto: Proto,
    /// Destinations: addresses, or CIDR blocks.
    pub to: Vec<String>,
    /// Ports: `"4000"` or ranges `"4500-4650"`.
    pub ports: Vec<String>,
}

impl From<&Rule> for MissingRule {
    fn from(rule: &Rule) -> Self {
        MissingRule {
            proto: rule.proto,
            to: rule.to.iter().map(block_text).collect(),
            ports: rule.ports.iter().map(range_text).collect(),
        }
    }
}

impl MissingRule {
    /// `{"proto":"udp","to":[...],"ports":[...]}`.
    pub fn to_json(&self) -> Value {
        json!({"proto": self.proto.to_string(), "to": self.to, "ports": self.ports})
    }

    /// The rule as a policy file's `[[allow]]` block.
    pub fn to_toml(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[[allow]]\nproto = \"{}\"\nto = [{}]\nports = [{}]\n",
            self.proto,
            list(&self.to),
            list(&self.ports)
        )
    }
}

/// What a run of one client showed.
#[derive(Clone, Debug)]
pub struct PathSeen {
    /// Whether the client connected.
    pub joined: bool,
    /// Time from join to connected.
    pub join_ms: Option<u64>,
    /// How signalling went: `cloud relay ADDR`, `socks5 ADDR`, `direct ADDR` or `none`.
    pub signalling: String,
    /// The media path, when media flowed both ways.
    pub media: Media,
    /// Media packets the client received from the peer.
    pub media_received: u64,
    /// Media packets the peer received from the client.
    pub media_delivered: u64,
    /// The reason of the client's last state change.
    pub reason: String,
}

/// The answer.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The seed.
    pub seed: u64,
    /// The calls checked.
    pub params: Vec<String>,
    /// Behind the policy.
    pub behind: PathSeen,
    /// With no firewall: the best path.
    pub best: PathSeen,
    /// What the policy's firewall denied (protocol, destination), in order.
    pub denied: Vec<(Proto, SocketAddr)>,
    /// The allow rules the best path needs and the policy lacks.
    pub missing: Vec<MissingRule>,
    /// Remarks for the administrator.
    pub notes: Vec<String>,
}

/// What a run leaves behind, in a form that crosses threads.
struct RunFacts {
    sdk: ClientReport,
    peer_from_sdk: u64,
    denied: BTreeSet<(Proto, SocketAddr)>,
    flows: BTreeSet<(Proto, SocketAddr)>,
    error: Option<String>,
}

/// Runs the check.
pub fn check_firewall(request: &CheckRequest) -> Result<CheckReport, CheckError> {
    let params: Vec<String> = if request.params.is_empty() {
        vec![DEFAULT_PARAMS.to_owned()]
    } else {
        request.params.clone()
    };
    let server = proxy_server(&params, request.compat)?;
    let socks = match &server {
        Some(ProxyServer::Socks5(addr)) => socks_host(*addr),
        _ => None,
    };
    // Behind the policy on this thread; the best path and the rules on another.
    let (behind, (reference, missing, mut notes)) = std::thread::scope(|scope| {
        let learning = scope.spawn(|| learn(request, &params, socks.clone()));
        let behind = run(
            request,
            &params,
            socks.clone(),
            request.policy.clone(),
            CHECK_DURATION,
            false,
        );
        (
            behind,
            learning.join().expect("the learning runs do not panic"),
        )
    });
    if let Some(error) = &behind.error {
        notes.push(format!("the run behind the policy ended early: {error}"));
    }
    let best = path_seen(&reference);
    if !best.joined {
        notes.push(format!(
            "even with no firewall these parameters do not join ({}); fix them first",
            best.reason
        ));
    }
    if request.policy.dns == crate::policy::DnsPolicy::Blocked
        && matches!(server, Some(ProxyServer::CloudDomain { .. }))
    {
        notes.push(
            "the enterprise resolver refuses external names: type 1 (by domain) cannot work; use type 2, rtc.proxy_server [2, \"[\\\"ip1\\\",\\\"ip2\\\"]\", 0]".to_owned(),
        );
    }
    if let (Some(ProxyServer::Socks5(addr)), None) = (&server, &socks) {
        notes.push(format!(
            "no SOCKS5 server can be simulated at {addr} (not an enterprise address)"
        ));
    }
    Ok(CheckReport {
        seed: request.seed,
        params,
        behind: path_seen(&behind),
        best,
        denied: behind.denied.iter().copied().collect(),
        missing: missing.iter().map(MissingRule::from).collect(),
        notes,
    })
}

/// The run with no firewall, then the candidate rules, verified and made minimal.
fn learn(
    request: &CheckRequest,
    params: &[String],
    socks: Option<SocksSpec>,
) -> (RunFacts, Vec<Rule>, Vec<String>) {
    let mut open = Policy::open();
    open.dns = request.policy.dns;
    let reference = run(
        request,
        params,
        socks.clone(),
        open,
        REFERENCE_DURATION,
        true,
    );
    let mut notes = Vec::new();
    if let Some(error) = &reference.error {
        notes.push(format!("the run with no firewall ended early: {error}"));
    }
    let best = path_seen(&reference);
    let mut kept = missing_rules(&reference.flows, &request.policy);
    if kept.is_empty() || !best.joined {
        return (reference, kept, notes);
    }
    let works = |rules: &[Rule]| {
        let mut policy = request.policy.clone();
        policy.rules.extend(rules.iter().cloned());
        let seen = path_seen(&run(
            request,
            params,
            socks.clone(),
            policy,
            REFERENCE_DURATION,
            false,
        ));
        let in_time = seen.join_ms.unwrap_or(u64::MAX)
            <= best.join_ms.unwrap_or(0).saturating_add(JOIN_SLACK_MS);
        (seen.joined && seen.media == best.media && in_time).then_some(seen)
    };
    let Some(mut verified) = works(&kept) else {
        notes.push(
            "the rules below could not be verified: with them added the client still does not take the best path".to_owned(),
        );
        return (reference, kept, notes);
    };
    for i in (0..kept.len()).rev() {
        let mut fewer = kept.clone();
        fewer.remove(i);
        if let Some(seen) = works(&fewer) {
            kept = fewer;
            verified = seen;
        }
    }
    notes.push(format!(
        "verified: with the missing rules added the client joins in {} ms with {} media; each rule is necessary",
        verified.join_ms.unwrap_or(0),
        verified.media.as_str()
    ));
    (reference, kept, notes)
}

/// The proxy server the engine takes at join, checking every call.
fn proxy_server(params: &[String], compat: bool) -> Result<Option<ProxyServer>, CheckError> {
    let mut engine = Engine::new(if compat { Mode::Compat } else { Mode::Strict });
    for text in params {
        engine
            .set_parameters(text)
            .map_err(|e| CheckError::Params {
                text: text.clone(),
                error: e.to_string(),
            })?;
    }
    Ok(engine
        .join()
        .ok()
        .and_then(|config| config.active_server().cloned()))
}

/// A SOCKS5 server for type 0, when its address can be a host of the enterprise.
fn socks_host(addr: SocketAddr) -> Option<SocksSpec> {
    let taken: Vec<IpAddr> = AP_IPS
        .iter()
        .chain(RELAY_IPS.iter())
        .chain([EDGE_IP, SDK_IP, PEER_IP].iter())
        .map(|a| ip(a))
        .collect();
    let usable = !taken.contains(&addr.ip())
        && !addr.ip().is_loopback()
        && !addr.ip().is_unspecified()
        && !addr.ip().is_multicast()
        && addr.is_ipv4();
    usable.then(|| SocksSpec {
        ip: addr.ip(),
        port: addr.port(),
        policy: ServerPolicy::default(),
    })
}

fn run(
    request: &CheckRequest,
    params: &[String],
    socks: Option<SocksSpec>,
    policy: Policy,
    duration: Duration,
    learn_flows: bool,
) -> RunFacts {
    let mut spec = WorldSpec::new(request.seed, duration);
    let calls: Vec<&str> = params.iter().map(String::as_str).collect();
    let start = Duration::from_millis(100);
    let a = spec.enterprise("enterprise", SDK_IP, policy);
    let mut sdk = ClientSpec::new("sdk", SDK_UID, "check", &calls, start);
    sdk.compat = request.compat;
    spec.enterprises[a].clients.push(sdk);
    spec.enterprises[a].socks = socks;
    let b = spec.enterprise("open", PEER_IP, Policy::open());
    spec.enterprises[b]
        .clients
        .push(ClientSpec::new("peer", PEER_UID, "check", &[], start));
    let capture = learn_flows.then(Capture::flows_only);
    spec.capture = capture.clone();
    let outcome = run_world(&spec);
    let sdk_ip = ip(SDK_IP);
    let flows = capture
        .map(|c| {
            c.flows()
                .into_iter()
                .filter(|f| f.from == sdk_ip)
                .map(|f| (f.proto, f.to))
                .collect()
        })
        .unwrap_or_default();
    RunFacts {
        sdk: outcome.clients.get("sdk").cloned().unwrap_or_default(),
        peer_from_sdk: outcome
            .clients
            .get("peer")
            .and_then(|p| p.media_from.get(&SDK_UID))
            .map_or(0, |s| s.received),
        denied: outcome
            .firewalls
            .get("enterprise")
            .map(|f| f.denied.clone())
            .unwrap_or_default(),
        flows,
        error: outcome.error.clone(),
    }
}

fn path_seen(facts: &RunFacts) -> PathSeen {
    let sdk = &facts.sdk;
    let joined = sdk.join_time.is_some();
    let received = sdk.media_from.get(&PEER_UID).map_or(0, |s| s.received);
    let both_ways = received > 0 && facts.peer_from_sdk > 0;
    let media = match (joined && both_ways, sdk.media_path) {
        (true, Some(MediaPath::Udp)) => Media::Udp,
        (true, Some(MediaPath::Tcp)) => Media::Tcp,
        _ => Media::None,
    };
    let signalling = match (joined, sdk.proxy) {
        (false, _) => "none".to_owned(),
        (true, Some((0, addr))) => format!("socks5 {addr}"),
        (true, Some((_, addr))) => format!("cloud relay {addr}"),
        (true, None) => format!("direct {}", edge_endpoints().signalling),
    };
    let mut reason = sdk.last_reason.clone();
    if reason.is_empty() && sdk.state != Some(ConnectionState::Connected) {
        reason = "never tried to connect".to_owned();
    }
    PathSeen {
        joined,
        join_ms: sdk.join_time.map(|t| t.as_millis() as u64),
        signalling,
        media,
        media_received: received,
        media_delivered: facts.peer_from_sdk,
        reason,
    }
}

/// The rules `policy` lacks for the flows of `needed` (see the module's documentation).
pub fn missing_rules(needed: &BTreeSet<(Proto, SocketAddr)>, policy: &Policy) -> Vec<Rule> {
    if policy.default == Verdict::Pass {
        return Vec::new();
    }
    let documented = Policy::seed();
    let mut rules_needed = BTreeSet::new();
    let mut exact: BTreeMap<Proto, BTreeMap<IpAddr, BTreeSet<u16>>> = BTreeMap::new();
    for &(proto, dst) in needed {
        match documented.rules.iter().position(|r| r.matches(proto, dst)) {
            Some(i) => {
                rules_needed.insert(i);
            }
            None if policy.verdict(proto, dst) != Verdict::Pass => {
                exact
                    .entry(proto)
                    .or_default()
                    .entry(dst.ip())
                    .or_default()
                    .insert(dst.port());
            }
            None => {}
        }
    }
    let mut missing = Vec::new();
    for i in rules_needed {
        let rule = &documented.rules[i];
        // Destinations with the same gaps share one rule, in the documented order.
        let mut groups: Vec<(Vec<RangeInclusive<u16>>, Vec<Cidr>)> = Vec::new();
        for block in &rule.to {
            let gaps = uncovered(policy, rule.proto, block, &rule.ports);
            if gaps.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == gaps) {
                Some((_, to)) => to.push(*block),
                None => groups.push((gaps, vec![*block])),
            }
        }
        missing.extend(groups.into_iter().map(|(ports, to)| Rule {
            proto: rule.proto,
            to,
            ports,
        }));
    }
    for (proto, by_ip) in exact {
        let mut groups: Vec<(Vec<RangeInclusive<u16>>, Vec<Cidr>)> = Vec::new();
        for (addr, ports) in by_ip {
            let ports = collapse(&ports);
            match groups.iter_mut().find(|(p, _)| *p == ports) {
                Some((_, to)) => to.push(Cidr::host(addr)),
                None => groups.push((ports, vec![Cidr::host(addr)])),
            }
        }
        missing.extend(
            groups
                .into_iter()
                .map(|(ports, to)| Rule { proto, to, ports }),
        );
    }
    missing
}

/// The ports of `want` that no rule of `policy` opens for `proto` to all of `block`.
fn uncovered(
    policy: &Policy,
    proto: Proto,
    block: &Cidr,
    want: &[RangeInclusive<u16>],
) -> Vec<RangeInclusive<u16>> {
    let open: Vec<&RangeInclusive<u16>> = policy
        .rules
        .iter()
        .filter(|r| r.proto == proto && r.to.iter().any(|c| c.contains_block(block)))
        .flat_map(|r| r.ports.iter())
        .collect();
    let mut gaps = Vec::new();
    for w in want {
        let mut pieces = vec![(u32::from(*w.start()), u32::from(*w.end()))];
        for o in &open {
            let (os, oe) = (u32::from(*o.start()), u32::from(*o.end()));
            pieces = pieces
                .into_iter()
                .flat_map(|(s, e)| {
                    let mut left = Vec::new();
                    if s < os {
                        left.push((s, e.min(os - 1)));
                    }
                    if e > oe {
                        left.push((s.max(oe + 1), e));
                    }
                    if e < os || s > oe {
                        left = vec![(s, e)];
                    }
                    left
                })
                .collect();
        }
        gaps.extend(pieces.into_iter().map(|(s, e)| (s as u16)..=(e as u16)));
    }
    gaps
}

/// Ports as ranges of consecutive ports.
fn collapse(ports: &BTreeSet<u16>) -> Vec<RangeInclusive<u16>> {
    let mut ranges: Vec<RangeInclusive<u16>> = Vec::new();
    for &p in ports {
        match ranges.last_mut() {
            Some(r) if u32::from(*r.end()) + 1 == u32::from(p) => *r = *r.start()..=p,
            _ => ranges.push(p..=p),
        }
    }
    ranges
}

fn range_text(r: &RangeInclusive<u16>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("{}-{}", r.start(), r.end())
    }
}

fn block_text(block: &Cidr) -> String {
    if *block == Cidr::host(block.addr()) {
        block.addr().to_string()
    } else {
        block.to_string()
    }
}

impl CheckReport {
    /// Whether the client joined behind the policy.
    pub fn joined(&self) -> bool {
        self.behind.joined
    }

    /// The JSON answer: `joined`, `media`, `join_ms` (null when not joined), `missing`, and
    /// more (`signalling`, `best_media`, `denied`, `notes`, `seed`, `params`).
    pub fn to_json(&self) -> Value {
        json!({
            "joined": self.behind.joined,
            "media": self.behind.media.as_str(),
            "join_ms": self.behind.join_ms,
            "missing": self.missing.iter().map(MissingRule::to_json).collect::<Vec<_>>(),
            "signalling": self.behind.signalling,
            "reason": self.behind.reason,
            "best_media": self.best.media.as_str(),
            "best_signalling": self.best.signalling,
            "denied": self.denied.iter().map(|(p, a)| format!("{p} {a}")).collect::<Vec<_>>(),
            "notes": self.notes,
            "seed": self.seed,
            "params": self.params,
        })
    }

    /// The report for a person, ending with the missing rules as `[[allow]]` blocks.
    pub fn to_text(&self, policy_name: &str) -> String {
        let mut t = String::new();
        let b = &self.behind;
        let _ = writeln!(t, "check-firewall: {policy_name}, seed {}", self.seed);
        for p in &self.params {
            let _ = writeln!(t, "  setParameters {p}");
        }
        let _ = writeln!(t);
        let joined = match b.join_ms {
            Some(ms) => format!("yes, in {ms} ms"),
            None => format!("no, within {} s: {}", CHECK_DURATION.as_secs(), b.reason),
        };
        let _ = writeln!(t, "joined      {joined}");
        let _ = writeln!(t, "signalling  {}", b.signalling);
        let media = match b.media {
            Media::None if b.joined => format!(
                "none (media packets received {}, delivered {})",
                b.media_received, b.media_delivered
            ),
            Media::None => "none".to_owned(),
            m => format!(
                "{} (both ways: {} packets received, {} delivered)",
                m.as_str(),
                b.media_received,
                b.media_delivered
            ),
        };
        let _ = writeln!(t, "media       {media}");
        let best = if self.best.joined {
            format!(
                "{} media, signalling via {} (found with no firewall)",
                self.best.media.as_str(),
                self.best.signalling
            )
        } else {
            "none: nothing works even with no firewall".to_owned()
        };
        let _ = writeln!(t, "best path   {best}");
        let denied = if self.denied.is_empty() {
            "nothing".to_owned()
        } else {
            let shown: Vec<String> = self
                .denied
                .iter()
                .take(6)
                .map(|(p, a)| format!("{p} {a}"))
                .collect();
            let more = self.denied.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            };
            format!("{}{more}", shown.join(", "))
        };
        let _ = writeln!(t, "denied      {denied}");
        for note in &self.notes {
            let _ = writeln!(t, "note        {note}");
        }
        let _ = writeln!(t);
        if self.missing.is_empty() {
            let _ = writeln!(
                t,
                "Nothing is missing: the policy allows everything the best path needs."
            );
        } else {
            let _ = writeln!(
                t,
                "Missing for the best path: {} allow rule(s). Add them to the policy:\n",
                self.missing.len()
            );
            for rule in &self.missing {
                let _ = writeln!(t, "{}", rule.to_toml());
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_missing(rules: Vec<Rule>) -> Vec<MissingRule> {
        rules.iter().map(MissingRule::from).collect()
    }

    fn flows(list: &[(Proto, &str)]) -> BTreeSet<(Proto, SocketAddr)> {
        list.iter().map(|(p, a)| (*p, a.parse().unwrap())).collect()
    }

    #[test]
    fn documented_rules_widen_the_flows_seen_and_subtract_what_is_open() {
        let needed = flows(&[
            (Proto::Tcp, "47.74.211.17:8000"),
            (Proto::Tcp, "120.92.18.162:4000"),
            (Proto::Udp, "120.92.18.162:4500"),
        ]);
        assert!(missing_rules(&needed, &Policy::seed()).is_empty());
        assert!(missing_rules(&needed, &Policy::open()).is_empty());
        let missing = to_missing(missing_rules(&needed, &Policy::seed_tcp_only()));
        assert_eq!(
            missing,
            [MissingRule {
                proto: Proto::Udp,
                to: vec!["120.92.118.34".into(), "120.92.18.162".into()],
                ports: vec!["4500-4650".into()],
            }]
        );
        // Half the range open on one relay: the rest is what is missing.
        let partial: Policy = "default = \"drop\"\n[[allow]]\nproto = \"udp\"\nto = [\"120.92.118.34\"]\nports = [\"4500-4600\"]\n[[allow]]\nproto = \"tcp\"\nto = [\"0.0.0.0/0\"]\nports = [\"1-65535\"]".parse().unwrap();
        let missing = to_missing(missing_rules(&needed, &partial));
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert_eq!(missing[0].to, ["120.92.118.34"]);
        assert_eq!(missing[0].ports, ["4601-4650"]);
        assert_eq!(missing[1].to, ["120.92.18.162"]);
        assert_eq!(missing[1].ports, ["4500-4650"]);
    }

    #[test]
    fn undocumented_flows_are_listed_exactly_and_grouped() {
        let needed = flows(&[
            (Proto::Tcp, "101.36.1.10:5000"),
            (Proto::Udp, "101.36.1.10:5001"),
            (Proto::Udp, "101.36.1.11:5001"),
            (Proto::Udp, "101.36.1.11:5002"),
        ]);
        let deny_all: Policy = "default = \"drop\"".parse().unwrap();
        let missing = to_missing(missing_rules(&needed, &deny_all));
        let text: Vec<String> = missing.iter().map(|m| m.to_json().to_string()).collect();
        assert_eq!(
            text,
            [
                r#"{"ports":["5000"],"proto":"tcp","to":["101.36.1.10"]}"#,
                r#"{"ports":["5001"],"proto":"udp","to":["101.36.1.10"]}"#,
                r#"{"ports":["5001-5002"],"proto":"udp","to":["101.36.1.11"]}"#,
            ]
        );
        // The TOML pastes into a policy.
        let toml = format!(
            "default = \"drop\"\n{}",
            missing.iter().map(MissingRule::to_toml).collect::<String>()
        );
        let fixed: Policy = toml.parse().unwrap();
        assert!(missing_rules(&needed, &fixed).is_empty());
    }
}
