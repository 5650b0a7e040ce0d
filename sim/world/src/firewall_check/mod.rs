//! `cloudproxy check-firewall`: will the SDK work behind *this* firewall, over which paths, does
//! the call survive the loss of an access point or a relay, and which allow rules are missing?
//!
//! **Explore, don't sample.** A real client can be handed any of several paths: the access
//! point lists the relays in an order shuffled per answer, each relay picks the UDP media port
//! of a session at run time, a SOCKS5 server picks the UDP relay port of each association, and
//! a firewall export cannot say how the enterprise resolver answers. The check reads from the
//! configuration and the policy alone which paths exist and which flows each needs
//! (`model`), then confirms every one end to end in the simulation, pinning each choice made
//! at run time to its worst case: one run per relay handed first (the access points list the
//! relays in that order), the relays' and the SOCKS5 server's UDP ports pinned to a port the
//! policy does not open when there is one, type 1 with both resolver answers when the policy
//! does not state it. So the verdict is the same for every seed.
//!
//! Each path runs twice: **behind the policy**, and **with no firewall** (the path's resolver
//! kept) to learn its *best path* (joined, media both ways, how fast). A path takes its best
//! path behind the policy when it joins with the same media no more than half a second slower
//! (a blocked candidate costs a client timer, a second or more).
//!
//! **Missing rules.** When some path misses its best path, the candidate rules are every flow
//! of every path, in the vendor's documented whitelist order, minus what the policy opens
//! (`model::best_path_candidates`). They are verified (with all of them added, every path
//! takes its best path) and made minimal (each is dropped in turn, last first, and stays
//! dropped when every path still takes its best path): each rule left is necessary.
//!
//! **Resilience.** With the policy (and the rules for the best path), does the call survive
//! the loss of any one access point or relay? The policy says which are reachable; runs
//! confirm: each relay in use crashed mid-call, the first access point down from the start.
//! When not, the rules that would make it resilient are found, verified and made minimal the
//! same way.
//!
//! **Alternatives.** What no firewall rule can fix is said so, with what to do instead, itself
//! checked behind the same policy: with the proxy off, SD-RTN's addresses exist only in the
//! simulation (never suggested), so the check runs `{"rtc.enable_proxy":true}` too; type 1
//! behind a resolver that refuses external names runs type 2 with the documented access points.
//!
//! Bounded: at most [`MAX_RUNS`] simulation runs per check, alternatives included, reported to
//! a progress callback as they finish.

mod model;
mod report;
mod runs;
mod text;
mod verdict;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use cloudproxy_core::engine::{CloudProxyType, Engine};
use cloudproxy_core::params::{Mode, ProxyServer};
use serde_json::json;

use crate::policy::{DnsPolicy, Policy, Rule};
use crate::world::{AP_IPS, EDGE_IP};

pub use model::{Case, LINUX_EPHEMERAL_PORTS};
pub use report::{
    Alternative, CheckReport, EvidenceRun, LossCheck, LossKind, PathOutcome, Resilience,
    RuntimePort, Verification,
};
pub use runs::Evidence;

use model::Route;
use runs::{path_seen, OverBudget, RunFacts, RunSpec, Runner};

/// The `setParameters` call used when none is given.
pub const DEFAULT_PARAMS: &str = r#"{"rtc.enable_proxy":true}"#;
/// How long the client behind the policy gets at most (join, then media both ways).
pub const CHECK_DURATION: Duration = Duration::from_secs(30);
/// How long a run behind the policy gets after the client's predicted join (media both ways,
/// a UDP probe that times out, the TCP fallback).
const MEDIA_TIME: Duration = Duration::from_secs(8);
/// How long the runs with no firewall and the verification runs get (the best path joins in
/// milliseconds; a verification run that is slower has failed anyway).
const REFERENCE_DURATION: Duration = Duration::from_secs(6);
/// How much slower than the best path a join may be and still count as the best path.
pub const JOIN_SLACK_MS: u64 = 500;
/// Most simulation runs one check does, its alternatives included.
pub const MAX_RUNS: usize = 200;
/// How deep alternatives go (the proxy off, then on by domain, then by IP list).
const MAX_DEPTH: usize = 2;
/// The enterprise under test: where the SDK client runs.
pub const SDK_IP: &str = "10.1.0.10";
/// The open enterprise of the peer.
const PEER_IP: &str = "10.2.0.10";

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
    /// Whether the policy states how the enterprise resolver answers external names. A policy
    /// imported from a packet filter cannot (its `dns = "public"` only means no rule denies
    /// port 53): then type 1 is explored with both answers.
    pub dns_stated: bool,
    /// The UDP ports the SOCKS5 server (type 0) binds its relay sockets to, when known
    /// (dante's `udp.portrange`); else [`LINUX_EPHEMERAL_PORTS`].
    pub socks_udp_ports: Option<RangeInclusive<u16>>,
    /// Keep the event trace and the pcap of the best path's run ([`CheckReport::evidence`]).
    pub evidence: bool,
    /// **Beyond the seed**: `setCloudProxy(type)` before the `setParameters` calls: force UDP
    /// (the seed's ports) or force TCP (TCP 443 only, to the access points and the relays).
    pub cloud_proxy: Option<CloudProxyType>,
}

impl CheckRequest {
    /// A request for `policy` (its resolver stance stated) with `params` (none: the default).
    pub fn new(policy: Policy, params: Vec<String>, seed: u64) -> Self {
        CheckRequest {
            policy,
            params,
            compat: false,
            seed,
            dns_stated: true,
            socks_udp_ports: None,
            evidence: false,
            cloud_proxy: None,
        }
    }
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A `setParameters` call was rejected by the SDK engine.
    #[error("setParameters {text}: {error}")]
    Params {
        /// The call.
        text: String,
        /// The engine's error.
        error: String,
    },
    /// `setCloudProxy(automatic)` was asked for: it takes two paths, one after the other.
    #[error("--cloud-proxy automatic takes two paths one after the other: check each on its own, without --cloud-proxy (the direct path, which is how automatic starts) and with --cloud-proxy force-udp (its fallback)")]
    AutomaticMode,
    /// The SOCKS5 server's UDP port range is empty or starts at port 0.
    #[error("the SOCKS5 server's UDP ports {start}-{end}: expected a range of ports 1-65535, low to high")]
    SocksUdpPorts {
        /// The first port.
        start: u16,
        /// The last port.
        end: u16,
    },
}

/// How far a check has got: one report per finished simulation run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What the runs of this batch are for.
    pub phase: String,
    /// Runs of the batch finished.
    pub done: usize,
    /// Runs in the batch.
    pub of: usize,
    /// Runs of the check finished or started so far.
    pub runs: usize,
    /// The bound on the check's runs ([`MAX_RUNS`]).
    pub max_runs: usize,
}

/// The media path, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Media {
    /// No media both ways.
    None,
    /// Framed over TCP.
    Tcp,
    /// UDP datagrams.
    Udp,
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

/// What a run of one client showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSeen {
    /// Whether the client connected.
    pub joined: bool,
    /// Time from join to connected.
    pub join_ms: Option<u64>,
    /// How signalling went: `cloud relay ADDR`, `socks5 ADDR`, `direct ADDR` or `none`.
    pub signalling: String,
    /// The relay, SOCKS5 server or edge signalling went through.
    pub via: Option<SocketAddr>,
    /// The media path, when media flowed both ways.
    pub media: Media,
    /// Media packets the client received from the peer.
    pub media_received: u64,
    /// Media packets the peer received from the client.
    pub media_delivered: u64,
    /// The reason of the client's last state change.
    pub reason: String,
}

impl PathSeen {
    /// Whether this run took the best path `best` showed: joined with the same media, at most
    /// [`JOIN_SLACK_MS`] slower.
    pub fn takes(&self, best: &PathSeen) -> bool {
        let in_time = self.join_ms.unwrap_or(u64::MAX)
            <= best.join_ms.unwrap_or(0).saturating_add(JOIN_SLACK_MS);
        best.joined && self.joined && self.media == best.media && in_time
    }
}

/// Runs the check.
pub fn check_firewall(request: &CheckRequest) -> Result<CheckReport, CheckError> {
    check_firewall_with(request, &|_| {})
}

/// Runs the check, reporting each finished simulation run to `progress`.
pub fn check_firewall_with(
    request: &CheckRequest,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<CheckReport, CheckError> {
    if let Some(ports) = &request.socks_udp_ports {
        if *ports.start() == 0 || ports.start() > ports.end() {
            return Err(CheckError::SocksUdpPorts {
                start: *ports.start(),
                end: *ports.end(),
            });
        }
    }
    let params: Vec<String> = if request.params.is_empty() {
        vec![DEFAULT_PARAMS.to_owned()]
    } else {
        request.params.clone()
    };
    let runner = Runner::new(request.seed, request.compat, progress);
    Ok(Checker::new(request, &runner, params, 0)?.check())
}

/// One check (of the request's parameters, or of an alternative).
struct Checker<'a> {
    request: &'a CheckRequest,
    runner: &'a Runner<'a>,
    params: Vec<String>,
    route: Route,
    depth: usize,
    notes: RefCell<Vec<String>>,
}

impl<'a> Checker<'a> {
    fn new(
        request: &'a CheckRequest,
        runner: &'a Runner<'a>,
        params: Vec<String>,
        depth: usize,
    ) -> Result<Self, CheckError> {
        let server = proxy_server_with(&params, request.compat, request.cloud_proxy)?;
        let mut route = Route::new(
            server.as_ref(),
            runs::socks_simulated,
            request.socks_udp_ports.clone(),
        )?;
        if request.cloud_proxy == Some(CloudProxyType::ForceTcp) {
            route = route.force_tcp();
        }
        Ok(Checker {
            request,
            runner,
            params,
            route,
            depth,
            notes: RefCell::new(Vec::new()),
        })
    }

    fn policy(&self) -> &Policy {
        &self.request.policy
    }

    /// A run of `case` behind `policy`.
    fn spec(&self, policy: &Policy, case: &Case, duration: Duration) -> RunSpec {
        RunSpec {
            params: self.params.clone(),
            route: self.route.clone(),
            policy: policy.clone(),
            case: case.clone(),
            pins: model::pins(&self.route, policy),
            duration,
            faults: Vec::new(),
            evidence: false,
        }
    }

    /// Runs a batch; past the bound, notes it and gives `None`.
    fn run(&self, phase: &str, specs: &[RunSpec]) -> Option<Vec<RunFacts>> {
        match self.runner.run_all(phase, specs) {
            Ok(facts) => Some(facts),
            Err(OverBudget) => {
                self.note(format!(
                    "stopped before {phase}: the check's bound of {MAX_RUNS} simulation runs was reached"
                ));
                None
            }
        }
    }

    /// Adds a note to the report.
    fn note(&self, note: String) {
        self.notes.borrow_mut().push(note);
    }

    fn check(self) -> CheckReport {
        let start = self.runner.runs();
        let cases = model::cases(&self.route, self.policy(), self.request.dns_stated);
        let facts = self.explore(&cases);
        let both_dns = !self.request.dns_stated;
        let mut paths = Vec::new();
        let mut denied = std::collections::BTreeSet::new();
        for (case, pair) in cases.iter().zip(facts.chunks(2)) {
            let (behind, best) = (path_seen(&pair[0]), path_seen(&pair[1]));
            denied.extend(pair[0].denied.iter().copied());
            for run in pair {
                if let Some(error) = &run.error {
                    self.note(format!("a run ended early: {error}"));
                }
            }
            paths.push(PathOutcome {
                label: case.label(self.route.resolves(), both_dns),
                case: case.clone(),
                takes_best: behind.takes(&best),
                behind,
                best,
            });
        }
        let mut report = CheckReport::new(self.request.seed, self.params.clone(), &self.route);
        report.dns_stated = self.request.dns_stated || !self.route.resolves();
        report.paths = paths;
        report.denied = denied.into_iter().collect();
        self.missing_for_best_path(&mut report);
        self.resilience(&mut report);
        report.runtime_ports = verdict::runtime_ports(&self.route, self.policy(), &report);
        self.route_notes(&report);
        self.alternative(&mut report);
        if self.depth == 0 && self.request.evidence {
            report.evidence = verdict::evidence(&self, &report);
        }
        report.notes.extend(self.notes.take());
        report.runs = self.runner.runs() - start;
        verdict::summarize(&mut report);
        report
    }

    /// How long the run of `case` behind `policy` lasts: the predicted join plus the time media
    /// takes, at most [`CHECK_DURATION`].
    fn behind_duration(&self, policy: &Policy, case: &Case) -> Duration {
        match model::predicted_join(&self.route, policy, case) {
            Some(join) => (join + MEDIA_TIME).min(CHECK_DURATION),
            None => CHECK_DURATION,
        }
    }

    /// Each case behind the policy and with no firewall, as pairs; a run behind the policy
    /// that was cut short of [`CHECK_DURATION`] and did not get media both ways is run again
    /// at full length (the prediction only saves time, never decides).
    fn explore(&self, cases: &[Case]) -> Vec<RunFacts> {
        let mut specs = Vec::new();
        for case in cases {
            let duration = self.behind_duration(self.policy(), case);
            specs.push(self.spec(self.policy(), case, duration));
            specs.push(self.spec(&Policy::open(), case, REFERENCE_DURATION));
        }
        let phase = format!("exploring {} path(s)", cases.len());
        let Some(mut facts) = self.run(&phase, &specs) else {
            return Vec::new();
        };
        let again: Vec<usize> = (0..cases.len())
            .filter(|i| {
                specs[2 * i].duration < CHECK_DURATION
                    && path_seen(&facts[2 * i]).media == Media::None
            })
            .collect();
        if again.is_empty() {
            return facts;
        }
        let longer: Vec<RunSpec> = again
            .iter()
            .map(|i| self.spec(self.policy(), &cases[*i], CHECK_DURATION))
            .collect();
        if let Some(rerun) = self.run("running slow paths at full length", &longer) {
            for (i, f) in again.into_iter().zip(rerun) {
                facts[2 * i] = f;
            }
        }
        facts
    }

    /// The rules the best path misses on some path, verified and minimal.
    fn missing_for_best_path(&self, report: &mut CheckReport) {
        let with_best: Vec<PathOutcome> = report
            .paths
            .iter()
            .filter(|p| p.best.joined)
            .cloned()
            .collect();
        if with_best.iter().all(|p| p.takes_best) {
            return;
        }
        let candidates = model::best_path_candidates(&self.route, self.policy());
        if candidates.is_empty() {
            return;
        }
        let trial = |rules: &[Rule]| {
            let policy = model::with_rules(self.policy(), rules);
            with_best
                .iter()
                .map(|p| self.spec(&policy, &p.case, REFERENCE_DURATION))
                .collect::<Vec<_>>()
        };
        let judge = |_: &[RunSpec], facts: &[RunFacts]| {
            with_best
                .iter()
                .zip(facts)
                .all(|(p, f)| path_seen(f).takes(&p.best))
        };
        let (rules, verification) =
            self.verify_minimal("the rules for the best path", candidates, &trial, &judge);
        report.missing = rules;
        report.missing_verified = verification;
    }

    /// Verifies `candidates` (every trial run passes `judge` with all of them added) and makes
    /// them minimal (each dropped in turn, last first, while the runs still pass).
    fn verify_minimal(
        &self,
        what: &str,
        candidates: Vec<Rule>,
        trial: &dyn Fn(&[Rule]) -> Vec<RunSpec>,
        judge: &dyn Fn(&[RunSpec], &[RunFacts]) -> bool,
    ) -> (Vec<Rule>, Option<Verification>) {
        let before = self.runner.runs();
        let phase = format!("verifying {what} ({} candidate(s))", candidates.len());
        let specs = trial(&candidates);
        let Some(facts) = self.run(&phase, &specs) else {
            return (candidates, None);
        };
        if !judge(&specs, &facts) {
            let verification = Verification {
                verified: false,
                minimal: false,
                runs: self.runner.runs() - before,
            };
            return (candidates, Some(verification));
        }
        let mut kept = candidates;
        let mut minimal = true;
        for i in (0..kept.len()).rev() {
            let mut fewer = kept.clone();
            fewer.remove(i);
            let phase = format!("making {what} minimal (without rule {})", i + 1);
            let specs = trial(&fewer);
            match self.run(&phase, &specs) {
                Some(facts) if judge(&specs, &facts) => kept = fewer,
                Some(_) => {}
                None => {
                    minimal = false;
                    break;
                }
            }
        }
        let verification = Verification {
            verified: true,
            minimal,
            runs: self.runner.runs() - before,
        };
        (kept, Some(verification))
    }

    /// Resilience behind the policy as it is, with the rules for the best path added, and the
    /// rules that would make it resilient.
    fn resilience(&self, report: &mut CheckReport) {
        let joined = report.paths.iter().any(|p| p.behind.joined);
        report.resilience = verdict::resilience_not_checked(&self.route, report);
        if !matches!(self.route, Route::Cloud { .. }) {
            return;
        }
        let policy = self.request.policy.clone();
        if joined {
            let Some(as_is) = self.losses(&policy, &report.paths) else {
                return;
            };
            report.resilience = verdict::resilience(&self.route, &policy, as_is);
        }
        let fixed = match &report.missing_verified {
            Some(v) if v.verified && !report.missing.is_empty() => {
                model::with_rules(&policy, &report.missing)
            }
            _ if joined => policy.clone(),
            _ => return,
        };
        let resilient_after = if fixed == policy {
            report.resilience.resilient == Some(true)
        } else {
            let Some(after) = self.losses(&fixed, &report.paths) else {
                return;
            };
            let after = verdict::resilience(&self.route, &fixed, after);
            report.resilience.after_missing = Some(after.resilient == Some(true));
            after.resilient == Some(true)
        };
        if resilient_after {
            return;
        }
        let candidates = model::resilience_candidates(&self.route, &fixed);
        if candidates.is_empty() {
            return;
        }
        let best_media = report
            .paths
            .iter()
            .filter(|p| p.best.joined)
            .map(|p| p.best.media)
            .max()
            .unwrap_or(Media::None);
        let paths = report.paths.clone();
        let trial = |rules: &[Rule]| {
            let policy = model::with_rules(&fixed, rules);
            verdict::loss_specs(self, &policy, &paths)
        };
        let judge =
            |specs: &[RunSpec], facts: &[RunFacts]| verdict::all_survive(specs, facts, best_media);
        let (rules, verification) =
            self.verify_minimal("the rules for resilience", candidates, &trial, &judge);
        report.resilience_missing = rules;
        report.resilience_verified = verification;
    }

    /// The loss runs behind `policy`: their specs and what they showed.
    fn losses(&self, policy: &Policy, paths: &[PathOutcome]) -> Option<Vec<(RunSpec, RunFacts)>> {
        let specs = verdict::loss_specs(self, policy, paths);
        let facts = self.run("losing a relay or an access point", &specs)?;
        Some(specs.into_iter().zip(facts).collect())
    }

    /// Notes on what the route cannot tell or cannot be fixed by a rule.
    fn route_notes(&self, report: &CheckReport) {
        match &self.route {
            Route::Direct => {
                let flows: Vec<String> = model::direct_flows()
                    .iter()
                    .map(|(p, a)| format!("{p} {a}"))
                    .collect();
                self.note(format!(
                    "with the proxy off the SDK talks to SD-RTN directly; its addresses are not published for an allow list (the simulation's edge {EDGE_IP}, {}, exists only here), so no rule is suggested: enable the cloud proxy",
                    flows.join(", ")
                ));
            }
            Route::Socks {
                server,
                simulated: false,
                ..
            } => self.note(format!(
                "no SOCKS5 server can be simulated at {server} (not an enterprise address): the check cannot say whether a server there works"
            )),
            Route::Cloud { domain, aps, .. } => {
                if let Some(domain) = domain.as_ref().filter(|_| aps.is_empty()) {
                    self.note(format!(
                        "{domain} does not resolve in the simulation (it knows {}): the check cannot say whether it answers",
                        crate::world::AP_DOMAIN
                    ));
                }
                let unknown = self.route.unknown_aps();
                if !unknown.is_empty() {
                    let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
                    self.note(format!(
                        "no access point answers at {} in the simulation (it has the documented ones: {}): the check cannot say whether yours do, and suggests no rule for them",
                        list.join(", "),
                        AP_IPS.join(", ")
                    ));
                }
                let known = self.route.known_aps().len();
                if known == 1 && report.paths.iter().any(|p| p.behind.joined) {
                    self.note(
                        "the IP list names one access point: list more of them to survive its loss"
                            .to_owned(),
                    );
                }
            }
            Route::Socks { .. } => {}
            Route::Http { .. } => self.note(verdict::http_note(&self.route, report)),
        }
        if self.route.tcp_443() {
            self.note(verdict::tcp_443_note(&self.route, self.policy(), report));
        }
    }

    /// What to do instead, checked behind the same policy, when no rule can fix the route.
    fn alternative(&self, report: &mut CheckReport) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        let refused = self.route.resolves()
            && report
                .paths
                .iter()
                .any(|p| p.case.dns == DnsPolicy::Blocked && !p.behind.joined);
        let (short, why, params) = match &self.route {
            Route::Direct if !report.joined() => (
                "the proxy on",
                "the cloud proxy by domain, the default".to_owned(),
                vec![DEFAULT_PARAMS.to_owned()],
            ),
            Route::Cloud { .. } if refused => (
                "type 2",
                "the cloud proxy by IP list: no name to resolve".to_owned(),
                vec![type2_params()],
            ),
            _ => return,
        };
        let Ok(checker) = Checker::new(self.request, self.runner, params.clone(), self.depth + 1)
        else {
            return;
        };
        report.alternative = Some(Box::new(Alternative {
            short: short.to_owned(),
            why,
            params,
            report: checker.check(),
        }));
    }
}

/// `{"rtc.enable_proxy":true,"rtc.proxy_server":[2,"[\"47.74.211.17\",...]",0]}`: type 2 with
/// the documented access points.
pub fn type2_params() -> String {
    let list = serde_json::to_string(&AP_IPS).expect("strings serialize");
    json!({"rtc.enable_proxy": true, "rtc.proxy_server": [2, list, 0]}).to_string()
}

/// The proxy server the engine takes at join, checking every call.
#[cfg(test)]
fn proxy_server(params: &[String], compat: bool) -> Result<Option<ProxyServer>, CheckError> {
    proxy_server_with(params, compat, None)
}

/// The proxy server the engine takes at join after `setCloudProxy(cloud)` (when given) and
/// the `setParameters` calls, checking every call.
fn proxy_server_with(
    params: &[String],
    compat: bool,
    cloud: Option<CloudProxyType>,
) -> Result<Option<ProxyServer>, CheckError> {
    let mut engine = Engine::new(if compat { Mode::Compat } else { Mode::Strict });
    match cloud {
        Some(CloudProxyType::Automatic) => return Err(CheckError::AutomaticMode),
        Some(cloud) => engine
            .set_cloud_proxy(cloud)
            .map_err(|e| CheckError::Params {
                text: format!("setCloudProxy({cloud})"),
                error: e.to_string(),
            })?,
        None => {}
    }
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
