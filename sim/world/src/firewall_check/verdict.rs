//! The parts of a check's verdict built from its runs: the loss runs and what they say about
//! resilience, the ports chosen at run time, the evidence run, and the honest summary.

use std::net::IpAddr;
use std::time::Duration;

use cloudproxy_core::wire::RELAY_UDP_PORTS;

use super::model::{self, port_count, range_text, Route};
use super::report::{
    CheckReport, EvidenceRun, LossCheck, LossKind, PathOutcome, Resilience, RuntimePort,
};
use super::runs::{media_before, path_seen, RunFacts, RunSpec, JOIN_AT};
use super::{Checker, Media, REFERENCE_DURATION};
use crate::policy::{Policy, Proto};
use crate::world::{edge_endpoints, Fault, RELAY_IPS};

/// The earliest a relay is lost in a loss run (the client has joined and media flows).
const LOSS_AT: Duration = Duration::from_secs(3);
/// How long a loss run goes on after the loss: time to fail over through slow timers (a
/// dropped connect to the other relay costs 5 s, then a backoff and a new access-point round).
const AFTER_LOSS: Duration = Duration::from_secs(12);
/// How long a run with the first access point down goes.
const AP_LOSS_RUN: Duration = Duration::from_secs(16);

/// The loss runs behind `policy`: each relay in use lost mid-call (one run per relay handed
/// first), and the first access point the client reaches down from the start.
pub(super) fn loss_specs(
    checker: &Checker,
    policy: &Policy,
    paths: &[PathOutcome],
) -> Vec<RunSpec> {
    let reach = model::reach(&checker.route, policy);
    if reach.aps.is_empty() {
        return Vec::new();
    }
    let mut specs = Vec::new();
    for path in paths.iter().filter(|p| p.case.relay_first.is_some()) {
        let order = path.case.relay_order().unwrap_or_default();
        let Some(in_use) = order.iter().find(|r| reach.relays.contains(r)) else {
            continue;
        };
        let joined_ms = path.behind.join_ms.max(path.best.join_ms).unwrap_or(0);
        let after_join = JOIN_AT + Duration::from_millis(joined_ms) + Duration::from_secs(2);
        let at = Duration::from_secs(LOSS_AT.max(after_join).as_secs_f64().ceil() as u64);
        let mut spec = checker.spec(policy, &path.case, at + AFTER_LOSS);
        spec.faults = vec![(at, Fault::Crash(*in_use))];
        specs.push(spec);
    }
    if let Some(path) = paths.iter().find(|p| p.case.relay_first.is_some()) {
        let mut spec = checker.spec(policy, &path.case, AP_LOSS_RUN);
        spec.faults = vec![(Duration::ZERO, Fault::Crash(reach.aps[0]))];
        specs.push(spec);
    }
    specs
}

/// What one loss run showed.
pub(super) fn loss_check(spec: &RunSpec, facts: &RunFacts) -> LossCheck {
    let (at, lost) = match spec.faults.first() {
        Some((at, Fault::Crash(host))) => (*at, *host),
        _ => (Duration::ZERO, IpAddr::from([0, 0, 0, 0])),
    };
    let kind = if RELAY_IPS.iter().any(|r| crate::world::ip(r) == lost) {
        LossKind::Relay
    } else {
        LossKind::AccessPoint
    };
    let seen = path_seen(facts);
    let talk_until = spec.duration.saturating_sub(Duration::from_secs(2));
    let flowing = media_before(facts, talk_until, 3);
    let (survived, back_ms) = match kind {
        LossKind::Relay => {
            let joined_before = facts.sdk.join_time.is_some_and(|t| JOIN_AT + t < at);
            let outage = facts
                .sdk
                .outages
                .iter()
                .find(|(start, _)| *start + Duration::from_secs(1) >= at);
            let back_ms = outage.and_then(|(start, back)| {
                back.map(|b| b.saturating_sub(*start).as_millis() as u64)
            });
            let moved = seen.via.is_some_and(|v| v.ip() != lost);
            (
                joined_before && back_ms.is_some() && moved && flowing,
                back_ms,
            )
        }
        LossKind::AccessPoint => (seen.joined && flowing && seen.media != Media::None, None),
    };
    LossCheck {
        kind,
        lost,
        at_ms: at.as_millis() as u64,
        survived,
        via: seen.via,
        media: seen.media,
        back_ms,
        join_ms: seen.join_ms,
    }
}

/// Whether every loss run survived with `media`.
pub(super) fn all_survive(specs: &[RunSpec], facts: &[RunFacts], media: Media) -> bool {
    !specs.is_empty()
        && specs.len() == facts.len()
        && specs.iter().zip(facts).all(|(s, f)| {
            let check = loss_check(s, f);
            check.survived && check.media == media
        })
}

/// Resilience behind `policy`, from the policy's reach and the loss runs.
pub(super) fn resilience(
    route: &Route,
    policy: &Policy,
    runs: Vec<(RunSpec, RunFacts)>,
) -> Resilience {
    let reach = model::reach(route, policy);
    let checks: Vec<LossCheck> = runs.iter().map(|(s, f)| loss_check(s, f)).collect();
    let relay_checks: Vec<&LossCheck> = checks
        .iter()
        .filter(|c| c.kind == LossKind::Relay)
        .collect();
    let ap_checks: Vec<&LossCheck> = checks
        .iter()
        .filter(|c| c.kind == LossKind::AccessPoint)
        .collect();
    let mut problems = Vec::new();
    match reach.relays.as_slice() {
        [] => problems.push("no relay is reachable".to_owned()),
        [only] => problems.push(format!(
            "only {only} is reachable; losing it drops the call"
        )),
        _ => {}
    }
    if reach.relays.len() >= 2 {
        for check in relay_checks.iter().filter(|c| !c.survived) {
            problems.push(format!(
                "losing {} drops the call (the client did not come back within {} s)",
                check.lost,
                AFTER_LOSS.as_secs()
            ));
        }
    }
    let known = route.known_aps().len();
    match reach.aps.as_slice() {
        [only] if known >= 2 => problems.push(format!(
            "only access point {only} is reachable; losing it, no client can join or rejoin"
        )),
        [only] => problems.push(format!(
            "the client knows one access point, {only}; losing it, no client can join or rejoin"
        )),
        _ => {}
    }
    if reach.aps.len() >= 2 {
        for check in ap_checks.iter().filter(|c| !c.survived) {
            problems.push(format!(
                "with access point {} down the client did not join",
                check.lost
            ));
        }
    }
    let resilient = problems.is_empty() && !relay_checks.is_empty() && !ap_checks.is_empty();
    let text = if resilient {
        let details: Vec<String> = checks.iter().map(LossCheck::text).collect();
        format!(
            "yes: {} access points and {} relays reachable; checked: {}",
            reach.aps.len(),
            reach.relays.len(),
            details.join("; ")
        )
    } else if problems.is_empty() {
        "not checked: no loss run could be made".to_owned()
    } else {
        format!("no, {}", problems.join("; and "))
    };
    Resilience {
        resilient: Some(resilient),
        text,
        aps: reach.aps,
        relays: reach.relays,
        checks,
        after_missing: None,
    }
}

/// What the administrator must know about an HTTP proxy route (type 3).
pub(super) fn http_note(route: &Route, report: &CheckReport) -> String {
    let Route::Http {
        shown,
        proxy,
        simulated,
        credentials,
    } = route
    else {
        return String::new();
    };
    let auth = if credentials.is_some() {
        "with Basic authentication (the simulated proxy asks for the configured credentials)"
    } else {
        "without authentication"
    };
    let mut text = format!(
        "type 3 through the HTTP proxy {shown} {auth}: the clients need TCP to {shown} and nothing else (an HTTP proxy carries no UDP: media goes over TCP); the proxy itself opens CONNECT tunnels to SD-RTN's signalling and TCP media ports (here the simulation's edge {} and {}), so its own egress rules and its allowed CONNECT ports must include them",
        edge_endpoints().signalling,
        edge_endpoints().media_tcp
    );
    match (proxy, simulated) {
        (None, _) => text.push_str(
            "; the check resolves no proxy names: give the proxy's IP address to have the path run",
        ),
        (Some(_), false) => text.push_str(
            "; no HTTP proxy can be simulated there (not an enterprise address): the check cannot say whether it works",
        ),
        (Some(p), true) if report.joined() => {
            text.push_str(&format!("; verified: the client joins through {p}"))
        }
        (Some(p), true) => text.push_str(&format!(
            "; the client does not join through {p} behind this policy"
        )),
    }
    text
}

/// Whether TCP 443 to the access points and the relays suffices (`setCloudProxy(force TCP)`).
pub(super) fn tcp_443_note(route: &Route, policy: &Policy, report: &CheckReport) -> String {
    let reach = model::reach(route, policy);
    let (aps, relays) = (route.known_aps().len(), model::relays().len());
    let verdict = if report.joined() {
        "TCP 443 to them suffices: the client joins with media over TCP 443"
    } else {
        "that does not suffice: the client does not join"
    };
    format!(
        "force TCP: the client uses TCP 443 only, to the access points and the relays (no UDP); this policy opens TCP 443 to {} of {aps} access point(s) and {} of {relays} relay(s); {verdict}",
        reach.aps.len(),
        reach.relays.len()
    )
}

/// Resilience where it is not checked: off the cloud route, or when nothing joins.
pub(super) fn resilience_not_checked(route: &Route, report: &CheckReport) -> Resilience {
    let text = match route {
        Route::Socks { server, .. } => format!(
            "does not apply: one SOCKS5 server ({server}) carries every call; the enterprise's own redundancy for it is not modelled"
        ),
        Route::Http { shown, .. } => format!(
            "does not apply: one HTTP proxy ({shown}) carries every call; the enterprise's own redundancy for it is not modelled"
        ),
        Route::Direct => "not checked with the proxy off".to_owned(),
        Route::Cloud { .. } if !report.paths.iter().any(|p| p.behind.joined) => {
            "not checked as it is: the client does not join behind this policy".to_owned()
        }
        Route::Cloud { .. } => "not checked".to_owned(),
    };
    Resilience {
        resilient: None,
        text,
        ..Resilience::default()
    }
}

/// The ports chosen at run time that the policy does not open whole.
pub(super) fn runtime_ports(
    route: &Route,
    policy: &Policy,
    report: &CheckReport,
) -> Vec<RuntimePort> {
    let reach = model::reach(route, policy);
    let mut ports = Vec::new();
    if report.paths.iter().any(|p| p.case.relay_first.is_some()) {
        let total = port_count(&[RELAY_UDP_PORTS]);
        for relay in model::relays() {
            let Some(open) = reach.relay_udp.get(&relay) else {
                continue;
            };
            let n = port_count(open);
            if n == 0 || n == total {
                continue;
            }
            let list: Vec<String> = open.iter().map(range_text).collect();
            ports.push(RuntimePort {
                proto: Proto::Udp,
                to: relay,
                ports: RELAY_UDP_PORTS,
                open: open.clone(),
                text: format!(
                    "the relay {relay} picks the UDP media port of each session at run time from {}; this policy opens {} ({n} of {total}): a session handed another port falls back to tcp media",
                    range_text(&RELAY_UDP_PORTS),
                    list.join(", ")
                ),
            });
        }
    }
    if let (
        Route::Socks {
            server,
            simulated: true,
            udp_ports,
            udp_ports_stated,
        },
        Some((_, open)),
    ) = (route, &reach.socks)
    {
        ports.push(RuntimePort {
            proto: Proto::Udp,
            to: server.ip(),
            ports: udp_ports.clone(),
            open: open.clone(),
            text: socks_port_text(*server, udp_ports, *udp_ports_stated, open),
        });
    }
    ports
}

/// What the administrator must know about the SOCKS5 server's UDP relay ports.
fn socks_port_text(
    server: std::net::SocketAddr,
    range: &std::ops::RangeInclusive<u16>,
    stated: bool,
    open: &[std::ops::RangeInclusive<u16>],
) -> String {
    let (n, total) = (port_count(open), port_count(std::slice::from_ref(range)));
    let opened = match n {
        0 => "this policy opens none of it".to_owned(),
        n if n == total => "this policy opens all of it".to_owned(),
        n => format!(
            "this policy opens {} ({n} of {total}): an association handed another port falls back to tcp media",
            open.iter().map(range_text).collect::<Vec<_>>().join(", ")
        ),
    };
    let source = if stated {
        format!(
            "{} (as given: the server's udp.portrange)",
            range_text(range)
        )
    } else {
        format!(
            "{}: dante without `udp.portrange` binds an ephemeral port (Linux: net.ipv4.ip_local_port_range, {} by default); set `udp.portrange: 40000-40099` in the `socks pass` rule that allows `udpassociate` in danted.conf to narrow it, then open that range and check it with --socks-udp-ports 40000-40099",
            range_text(range),
            range_text(&model::LINUX_EPHEMERAL_PORTS)
        )
    };
    format!(
        "the SOCKS5 server {server} picks the UDP port of each UDP association at run time (dante picks one per association), from {source}; {opened}. microsocks relays no UDP (it refuses UDP ASSOCIATE): media then goes over tcp through {server}, and no UDP rule is needed"
    )
}

/// The run whose trace and pcap are the evidence of the best path: behind the policy with the
/// verified rules for the best path (when there are), on the first path that has a best path.
pub(super) fn evidence(checker: &Checker, report: &CheckReport) -> Option<EvidenceRun> {
    let path = report
        .paths
        .iter()
        .find(|p| p.best.joined)
        .or(report.paths.first())?;
    let verified = report.missing_verified.as_ref().is_some_and(|v| v.verified);
    let (policy, duration, with) = if verified && !report.missing.is_empty() {
        (
            model::with_rules(checker.policy(), &report.missing),
            REFERENCE_DURATION,
            format!(
                " with the {} rule(s) for the best path added",
                report.missing.len()
            ),
        )
    } else {
        let policy = checker.policy().clone();
        let duration = checker.behind_duration(&policy, &path.case);
        (policy, duration, String::new())
    };
    let mut spec = checker.spec(&policy, &path.case, duration);
    spec.evidence = true;
    let mut facts = checker.run("recording the evidence", &[spec])?;
    let facts = facts.pop()?;
    let seen = path_seen(&facts);
    let what = if path.best.joined {
        "the best path"
    } else {
        "the path (there is no best path: nothing joins even with no firewall)"
    };
    let description = format!(
        "{what}: behind the policy{with}, {}, seed {}, {} s; {} (trace hash {})",
        path.label,
        report.seed,
        duration.as_secs(),
        match seen.join_ms {
            Some(ms) => format!(
                "joined in {ms} ms via {}, {} media",
                seen.signalling,
                seen.media.as_str()
            ),
            None => format!("not joined: {}", seen.reason),
        },
        facts.trace_hash
    );
    Some(EvidenceRun {
        description,
        evidence: facts.evidence?,
    })
}

/// Sets the summary sentence and, when no rule is suggested although something is wrong, why.
pub(super) fn summarize(report: &mut CheckReport) {
    let no_best: Vec<&PathOutcome> = report.paths.iter().filter(|p| !p.best.joined).collect();
    let misses: Vec<&PathOutcome> = report
        .paths
        .iter()
        .filter(|p| p.best.joined && !p.takes_best)
        .collect();
    let mut reasons = Vec::new();
    if !no_best.is_empty() && no_best.len() == report.paths.len() {
        reasons.push(format!(
            "no path: even with no firewall these parameters do not join ({}); no allow rule can help",
            no_best[0].best.reason
        ));
    } else {
        for path in &no_best {
            reasons.push(format!(
                "no path when {}: even with no firewall the client does not join ({}); no allow rule can help",
                path.label, path.best.reason
            ));
        }
    }
    if !misses.is_empty() && report.missing.is_empty() {
        reasons.push(format!(
            "the best path is not taken on {} of {} path(s) and no allow rule can be suggested for it{}",
            misses.len(),
            report.paths.len(),
            direct_reason(report)
        ));
    }
    let r = &report.resilience;
    let not_after =
        r.after_missing == Some(false) || (r.resilient == Some(false) && r.after_missing.is_none());
    if not_after && report.resilience_missing.is_empty() {
        reasons.push(format!(
            "the call does not survive the loss of any one access point or relay ({}), and no allow rule can be suggested for it",
            report.resilience.text
        ));
    }
    if let Some(alt) = report.alternative.as_ref().filter(|_| !reasons.is_empty()) {
        reasons.push(format!("instead, {}", alt.text()));
    }
    let nothing = reasons.is_empty() && report.suggested_count() == 0 && report.joined();
    report.nothing_missing = nothing;
    report.summary = if nothing {
        format!(
            "Nothing is missing: {}.",
            match report.resilience.resilient {
                Some(true) => "the best path works on every path explored, and the call survives the loss of any one access point or relay",
                _ => "the best path works on every path explored",
            }
        )
    } else if report.suggested_count() > 0 {
        report.missing_header()
    } else {
        let mut text = reasons.join("; ");
        if let Some(first) = text.get(..1) {
            text = format!("{}{}.", first.to_uppercase(), &text[1..]);
        }
        text
    };
    report.missing_reason = match (report.missing.is_empty() && !nothing, reasons.is_empty()) {
        (false, _) => None,
        (true, false) => Some(reasons.join("; ")),
        (true, true) => Some(
            "the best path needs no more rules; the rules suggested are for resilience or for the alternative parameters".to_owned(),
        ),
    };
}

/// Why no rule is suggested for a route that takes no rule.
fn direct_reason(report: &CheckReport) -> &'static str {
    if report.route == "direct" {
        ": with the proxy off, SD-RTN's addresses are not published for an allow list"
    } else {
        ""
    }
}
