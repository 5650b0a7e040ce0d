//! The answer of a check as data ([`CheckReport`]), and its two renderings: the report for a
//! person (the suggested rules in the format asked for, last, ready to paste or load) and one
//! JSON object.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use serde_json::{json, Value};

use super::model::{block_text, range_text, Case, Route};
use super::runs::Evidence;
use super::{Media, PathSeen};
use crate::policy::{Proto, Rule};
use crate::policy_formats::render::{render_rules, rule_toml, Format, Target};

/// One path explored: what the client was handed, and what it got.
#[derive(Clone, Debug)]
pub struct PathOutcome {
    /// What the run pinned.
    pub case: Case,
    /// `relay 120.92.118.34 handed first`, ...
    pub label: String,
    /// Behind the policy.
    pub behind: PathSeen,
    /// With no firewall (the case's resolver kept): the best path.
    pub best: PathSeen,
    /// Whether the client took the best path behind the policy.
    pub takes_best: bool,
}

/// What was lost in a loss run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// A relay, mid-call.
    Relay,
    /// An access point, from the start.
    AccessPoint,
}

/// What one loss run showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossCheck {
    /// A relay or an access point.
    pub kind: LossKind,
    /// Its address.
    pub lost: IpAddr,
    /// When it was lost (since the start of the run).
    pub at_ms: u64,
    /// Whether the call went on (relay) or the client joined all the same (access point).
    pub survived: bool,
    /// Where signalling went at the end.
    pub via: Option<SocketAddr>,
    /// The media path at the end.
    pub media: Media,
    /// How long the call was down (relay).
    pub back_ms: Option<u64>,
    /// When the client joined.
    pub join_ms: Option<u64>,
}

impl LossCheck {
    /// `losing relay 120.92.118.34 mid-call, the call came back in 412 ms via ...`.
    pub fn text(&self) -> String {
        let via = self
            .via
            .map_or_else(|| "nothing".to_owned(), |v| v.to_string());
        match (self.kind, self.survived) {
            (LossKind::Relay, true) => format!(
                "losing relay {} mid-call, the call came back in {} ms via {via} ({} media)",
                self.lost,
                self.back_ms.unwrap_or(0),
                self.media.as_str()
            ),
            (LossKind::Relay, false) => {
                format!("losing relay {} mid-call dropped the call", self.lost)
            }
            (LossKind::AccessPoint, true) => format!(
                "with access point {} down, the client joined in {} ms ({} media)",
                self.lost,
                self.join_ms.unwrap_or(0),
                self.media.as_str()
            ),
            (LossKind::AccessPoint, false) => {
                format!(
                    "with access point {} down, the client did not join",
                    self.lost
                )
            }
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "lost": self.lost.to_string(),
            "kind": match self.kind { LossKind::Relay => "relay", LossKind::AccessPoint => "access_point" },
            "at_ms": self.at_ms,
            "survived": self.survived,
            "via": self.via.map(|v| v.to_string()),
            "media": self.media.as_str(),
            "back_ms": self.back_ms,
        })
    }
}

/// Does the call survive the loss of any one access point or relay?
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resilience {
    /// `Some(true)` when it does, `Some(false)` when not, `None` when it does not apply or was
    /// not checked.
    pub resilient: Option<bool>,
    /// The line for the report: `no, only 120.92.118.34 is reachable; losing it drops the call`.
    pub text: String,
    /// The access points the policy lets the client reach.
    pub aps: Vec<IpAddr>,
    /// The relays whose signalling port the policy opens.
    pub relays: Vec<IpAddr>,
    /// The loss runs.
    pub checks: Vec<LossCheck>,
    /// With the rules for the best path added: resilient or not (`None` when none are added).
    pub after_missing: Option<bool>,
}

/// How suggested rules were checked by more runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    /// With all of them added, the runs passed.
    pub verified: bool,
    /// Each was dropped in turn and is necessary.
    pub minimal: bool,
    /// Runs it took.
    pub runs: usize,
}

impl Verification {
    fn to_json(self) -> Value {
        json!({"verified": self.verified, "minimal": self.minimal, "runs": self.runs})
    }
}

/// A port the client is handed at run time, that the policy does not open whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimePort {
    /// The protocol.
    pub proto: Proto,
    /// The destination.
    pub to: IpAddr,
    /// The range the port is chosen from.
    pub ports: RangeInclusive<u16>,
    /// The part of it the policy opens.
    pub open: Vec<RangeInclusive<u16>>,
    /// What the administrator must know (which server setting controls it).
    pub text: String,
}

/// Other parameters to use, checked behind the same policy.
#[derive(Clone, Debug)]
pub struct Alternative {
    /// What they are, in short: `the proxy on`, `type 2`.
    pub short: String,
    /// Why: `the proxy on`, `type 2, ...`.
    pub why: String,
    /// The `setParameters` calls.
    pub params: Vec<String>,
    /// Their check.
    pub report: CheckReport,
}

/// The evidence of the best path: what ran, and its trace and pcap.
#[derive(Clone, Debug)]
pub struct EvidenceRun {
    /// Which run it is.
    pub description: String,
    /// Its trace and capture.
    pub evidence: Evidence,
}

/// A suggested rule and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggested {
    /// The rule.
    pub rule: Rule,
    /// `for the best path`, `for resilience`, `for setParameters {...}`.
    pub purpose: String,
}

/// The answer.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// The seed.
    pub seed: u64,
    /// The calls checked.
    pub params: Vec<String>,
    /// `direct`, `socks5`, `cloud-domain` or `cloud-ip-list`.
    pub route: String,
    /// Whether the resolver's answer was stated (or does not matter).
    pub dns_stated: bool,
    /// Every path explored.
    pub paths: Vec<PathOutcome>,
    /// What the policy's firewall denied (protocol, destination) on any path, sorted.
    pub denied: Vec<(Proto, SocketAddr)>,
    /// The allow rules the best path needs on some path and the policy lacks.
    pub missing: Vec<Rule>,
    /// How they were checked.
    pub missing_verified: Option<Verification>,
    /// Resilience behind the policy as it is.
    pub resilience: Resilience,
    /// The allow rules that would make it resilient (beyond `missing`).
    pub resilience_missing: Vec<Rule>,
    /// How they were checked.
    pub resilience_verified: Option<Verification>,
    /// Ports chosen at run time that the policy does not open whole.
    pub runtime_ports: Vec<RuntimePort>,
    /// Remarks for the administrator.
    pub notes: Vec<String>,
    /// What to use instead, when no rule can fix these parameters.
    pub alternative: Option<Box<Alternative>>,
    /// Simulation runs of the whole check.
    pub runs: usize,
    /// The last line: nothing is missing, what is, or why nothing can be suggested.
    pub summary: String,
    /// Whether nothing is missing: the best path on every path, and resilient where it applies.
    pub nothing_missing: bool,
    /// When `missing` is empty but something is wrong: why no rule is suggested.
    pub missing_reason: Option<String>,
    /// The best path's run, when asked for.
    pub evidence: Option<EvidenceRun>,
}

impl CheckReport {
    pub(super) fn new(seed: u64, params: Vec<String>, route: &Route) -> Self {
        CheckReport {
            seed,
            params: params.iter().map(|p| redact_params(p)).collect(),
            route: match route {
                Route::Direct => "direct",
                Route::Socks { .. } => "socks5",
                Route::Http { .. } => "http-proxy",
                Route::Cloud {
                    domain: Some(_),
                    tcp_443: true,
                    ..
                } => "cloud-domain-tcp443",
                Route::Cloud {
                    domain: None,
                    tcp_443: true,
                    ..
                } => "cloud-ip-list-tcp443",
                Route::Cloud {
                    domain: Some(_), ..
                } => "cloud-domain",
                Route::Cloud { domain: None, .. } => "cloud-ip-list",
            }
            .to_owned(),
            ..CheckReport::default()
        }
    }

    /// Whether the client joined behind the policy on every path explored.
    pub fn joined(&self) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(|p| p.behind.joined)
    }

    /// The worst media path over the paths.
    pub fn media(&self) -> Media {
        self.paths
            .iter()
            .map(|p| p.behind.media)
            .min()
            .unwrap_or(Media::None)
    }

    /// The slowest join, when every path joined.
    pub fn join_ms(&self) -> Option<u64> {
        self.joined()
            .then(|| self.paths.iter().filter_map(|p| p.behind.join_ms).max())
            .flatten()
    }

    /// Every suggested rule, in order, each once: for the best path, for resilience, then the
    /// alternative's.
    pub fn suggestions(&self) -> Vec<Suggested> {
        let mut all: Vec<Suggested> = Vec::new();
        let mut push = |rule: &Rule, purpose: String| {
            if !all.iter().any(|s| s.rule == *rule) {
                all.push(Suggested {
                    rule: rule.clone(),
                    purpose,
                });
            }
        };
        for rule in &self.missing {
            push(rule, "for the best path".to_owned());
        }
        for rule in &self.resilience_missing {
            push(rule, "for resilience".to_owned());
        }
        if let Some(alt) = &self.alternative {
            for s in alt.report.suggestions() {
                let purpose = format!("with {} instead, {}", alt.short, s.purpose);
                push(&s.rule, purpose);
            }
        }
        all
    }

    /// How many rules are suggested, all purposes.
    pub fn suggested_count(&self) -> usize {
        self.suggestions().len()
    }

    /// `Missing for the best path: 2 allow rule(s); for resilience: 1 more.`
    pub fn missing_header(&self) -> String {
        let mut parts: Vec<(String, usize)> = Vec::new();
        for s in self.suggestions() {
            match parts.iter_mut().find(|(p, _)| *p == s.purpose) {
                Some((_, n)) => *n += 1,
                None => parts.push((s.purpose, 1)),
            }
        }
        let mut text = String::new();
        for (i, (purpose, n)) in parts.iter().enumerate() {
            if i == 0 {
                let _ = write!(text, "Missing {purpose}: {n} allow rule(s)");
            } else {
                let _ = write!(text, "; {purpose}: {n} more");
            }
        }
        text.push('.');
        text
    }

    /// The suggested rules in `format`, ready to paste (TOML, each with a comment saying what
    /// it is for) or to load (`nft -f`, `iptables-restore --noflush`) into `target`.
    pub fn rules_text(&self, format: Format, target: &Target) -> String {
        let suggestions = self.suggestions();
        match format {
            Format::Toml => suggestions
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        "# suggested rule {}: {}\n{}",
                        i + 1,
                        s.purpose,
                        rule_toml(&s.rule)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => {
                let rules: Vec<Rule> = suggestions.into_iter().map(|s| s.rule).collect();
                render_rules(&rules, format, target)
            }
        }
    }

    pub(super) fn signalling(&self) -> String {
        distinct(
            self.paths
                .iter()
                .filter(|p| p.behind.joined)
                .map(|p| p.behind.signalling.clone()),
        )
        .unwrap_or_else(|| "none".to_owned())
    }

    fn best_signalling(&self) -> String {
        distinct(
            self.paths
                .iter()
                .filter(|p| p.best.joined)
                .map(|p| p.best.signalling.clone()),
        )
        .unwrap_or_else(|| "none".to_owned())
    }

    fn best_media(&self) -> Media {
        self.paths
            .iter()
            .filter(|p| p.best.joined)
            .map(|p| p.best.media)
            .max()
            .unwrap_or(Media::None)
    }

    /// Whether every path that has a best path takes it (and one has).
    pub fn best_path_taken(&self) -> bool {
        self.paths.iter().any(|p| p.best.joined)
            && self
                .paths
                .iter()
                .filter(|p| p.best.joined)
                .all(|p| p.takes_best)
    }

    fn reason(&self) -> String {
        self.paths
            .iter()
            .find(|p| !p.behind.joined)
            .or(self.paths.first())
            .map_or_else(String::new, |p| p.behind.reason.clone())
    }

    /// The JSON answer (the schema is in docs/scenarios.md).
    pub fn to_json(&self) -> Value {
        json!({
            "joined": self.joined(),
            "media": self.media().as_str(),
            "join_ms": self.join_ms(),
            "missing": self.missing.iter().map(rule_json).collect::<Vec<_>>(),
            "missing_reason": self.missing_reason,
            "nothing_missing": self.nothing_missing,
            "summary": self.summary,
            "best_path": self.best_path_taken(),
            "best_media": self.best_media().as_str(),
            "best_signalling": self.best_signalling(),
            "signalling": self.signalling(),
            "reason": self.reason(),
            "resilient": self.resilience.resilient,
            "resilience": {
                "text": self.resilience.text,
                "access_points": self.resilience.aps.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "relays": self.resilience.relays.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "checks": self.resilience.checks.iter().map(LossCheck::to_json).collect::<Vec<_>>(),
                "after_missing": self.resilience.after_missing,
            },
            "resilience_missing": self.resilience_missing.iter().map(rule_json).collect::<Vec<_>>(),
            "verified": {
                "best_path": self.missing_verified.map(Verification::to_json),
                "resilience": self.resilience_verified.map(Verification::to_json),
            },
            "paths": self.paths.iter().map(path_json).collect::<Vec<_>>(),
            "runtime_ports": self.runtime_ports.iter().map(|r| json!({
                "proto": r.proto.to_string(),
                "to": r.to.to_string(),
                "ports": range_text(&r.ports),
                "open": r.open.iter().map(range_text).collect::<Vec<_>>(),
                "text": r.text,
            })).collect::<Vec<_>>(),
            "dns": {"stated": self.dns_stated},
            "denied": self.denied.iter().map(|(p, a)| format!("{p} {a}")).collect::<Vec<_>>(),
            "notes": self.notes,
            "alternative": self.alternative.as_ref().map(|a| json!({
                "why": a.why,
                "params": a.params,
                "report": a.report.to_json(),
            })),
            "evidence": self.evidence.as_ref().map(|e| e.description.clone()),
            "route": self.route,
            "runs": self.runs,
            "seed": self.seed,
            "params": self.params,
        })
    }
}

impl Alternative {
    /// `the proxy on, setParameters {...} (...): joins behind this policy ...; nothing is missing`.
    pub fn text(&self) -> String {
        let r = &self.report;
        let joined = if r.joined() {
            format!("joins behind this policy ({} media)", r.media().as_str())
        } else if r.paths.iter().any(|p| p.behind.joined) {
            "joins behind this policy on some paths only".to_owned()
        } else {
            "does not join behind this policy as it is".to_owned()
        };
        let resilient = match r.resilience.resilient {
            Some(true) => "; resilient",
            Some(false) => "; not resilient",
            None => "",
        };
        let rest = if r.nothing_missing {
            "; nothing is missing".to_owned()
        } else if r.suggested_count() > 0 {
            format!("; {} allow rule(s) missing (below)", r.suggested_count())
        } else {
            format!("; {}", r.summary.trim_end_matches('.'))
        };
        format!(
            "{}, setParameters {} ({}): {joined}{resilient}{rest}",
            self.short,
            self.params.join(" "),
            self.why
        )
    }
}

/// `{"proto":"udp","to":[...],"ports":[...]}`.
pub fn rule_json(rule: &Rule) -> Value {
    json!({
        "proto": rule.proto.to_string(),
        "to": rule.to.iter().map(block_text).collect::<Vec<_>>(),
        "ports": rule.ports.iter().map(range_text).collect::<Vec<_>>(),
    })
}

fn path_json(p: &PathOutcome) -> Value {
    let seen = |s: &PathSeen| {
        json!({
            "joined": s.joined,
            "join_ms": s.join_ms,
            "signalling": s.signalling,
            "media": s.media.as_str(),
            "reason": s.reason,
        })
    };
    json!({
        "label": p.label,
        "relay_first": p.case.relay_first.map(|r| r.to_string()),
        "dns": format!("{:?}", p.case.dns).to_lowercase(),
        "behind": seen(&p.behind),
        "best": seen(&p.best),
        "takes_best": p.takes_best,
    })
}

/// The distinct values, in order, joined by ` or `; `None` when there is none.
fn distinct(values: impl Iterator<Item = String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    (!seen.is_empty()).then(|| seen.join(" or "))
}

/// A `setParameters` text with its proxy passwords shown as `"<redacted>"` (core's
/// [`redact_text`](cloudproxy_core::params::redact_text), as every trace and report prints it).
pub(crate) fn redact_params(text: &str) -> String {
    cloudproxy_core::params::redact_text(text)
}
