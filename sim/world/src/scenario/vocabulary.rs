//! The checks' vocabulary: every check a scenario can ask for by name, as data
//! ([`CheckDef`]), so that a scenario file (see [`super::file`]) chooses its checks from the
//! same words as the catalogue, and both give the same verdicts for the same run.
//!
//! The catalogue's own checks that are more than one call of [`super::checks`] live here too,
//! as functions both use.

use std::net::IpAddr;
use std::time::Duration;

use cloudproxy_core::client::MediaPath;
use cloudproxy_node::nodes::attacker::FORBIDDEN;

use super::checks::*;
use super::vocabulary_beyond as b;
use crate::policy::Proto;
use crate::world::{ip, Fault, WorldOutcome, WorldSpec, AP_IPS};

/// One entry of a scenario's checks: a word of the vocabulary and its arguments. Some expand
/// to several checks (`Call`, `OpenRelayAttack`, `Crowd`, `Liveness`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CheckDef {
    /// The client joined.
    Joined(String),
    /// The client never joined, and its last reason mentions the text.
    NeverJoined(String, String),
    /// The first client heard at least this many packets from the second.
    Hears(String, String, u64),
    /// Every signalling message of the client was acknowledged.
    SignallingAcked(String),
    /// The client's latest connection used this proxy type.
    ProxyType(String, u8),
    /// The client's media path.
    MediaPath(String, MediaPath),
    /// The client reconnected at least once.
    Reconnects(String),
    /// Every outage of the client ended within the bound, and media flowed afterwards.
    RecoversWithin(String, Duration),
    /// The fault "crash the relay NAME uses" took effect.
    RelayInUseCrashed(String),
    /// Liveness after the heal, within the bound (one check per client).
    Liveness(Duration),
    /// Two clients in a call: both join, hear each other (at least this many packets) and
    /// have all their signalling acknowledged (six checks).
    Call(String, String, u64),
    /// The impairment layer lost, duplicated and delayed datagrams.
    ImpairmentsHappened,
    /// Receivers measured loss and duplication.
    ReceiversSawLoss,
    /// Loss, duplication and reordering measured per stream (evidence).
    StreamQuality,
    /// Every enterprise firewall dropped TCP.
    FirewallDropped,
    /// The edge saw no signalling at all.
    EdgeSawNoSignalling,
    /// These access points answered nothing, and another one answered.
    ApsSilent(Vec<IpAddr>),
    /// A SOCKS5 server refused UDP ASSOCIATE.
    SocksRefusedUdp,
    /// The client's setParameters/join/leave codes, in script order.
    Codes(String, Vec<i32>),
    /// The client's configuration in force contains the text.
    ConfigInForce(String, String),
    /// The client received media between the two times (s).
    MediaBetween(String, u64, u64),
    /// The access point answered the enterprise after this time (a fresh ticket).
    FreshTicketAfter(String, Duration),
    /// The open-relay attack suite: every forbidden attempt refused and counted.
    OpenRelayAttack,
    /// This many clients all join, hear their channel, are acknowledged; both relays load.
    Crowd(usize),
    /// **Beyond the seed**: the client joined within the bound.
    JoinedWithin(String, Duration),
    /// **Beyond the seed**: none of these clients holds a proxy connection.
    StayDirect(Vec<String>),
    /// **Beyond the seed**: no access point answered anything.
    NoAccessPointAnswered,
    /// **Beyond the seed**: the client reported one fallback to the cloud proxy, after this
    /// probe time.
    FallsBack(String, Duration),
    /// **Beyond the seed**: the client's relay (or proxy) is on this port.
    RelayPort(String, u16),
    /// **Beyond the seed**: no UDP passed the enterprise's firewall.
    NoUdpLeft(String),
    /// **Beyond the seed**: the enterprise's firewall denied nothing to this protocol and port.
    NothingDeniedTo(String, Proto, u16),
    /// **Beyond the seed**: the enterprise's HTTP proxy opened exactly this many tunnels after
    /// exactly this many challenges.
    HttpProxyTunnels(String, u64, u64),
    /// **Beyond the seed**: the enterprise's NAT rebound, and a late datagram came from an old
    /// mapping.
    NatRebound(String),
    /// **Beyond the seed**: a relay followed a rebinding and refused media from the retired
    /// address.
    RelayFollowedRebinding,
    /// **Beyond the seed**: the client never reconnected.
    NoReconnect(String),
    /// **Beyond the seed**: no access point answered the enterprise after this time.
    NoTicketAfter(String, Duration),
    /// **Beyond the seed**: the client received media in at least this many seconds after the
    /// time.
    MediaAfter(String, Duration, u64),
    /// **Beyond the seed**: a state change of the client gave a reason containing the text.
    ReasonMentions(String, String),
    /// **Beyond the seed**: the client's media path became this within the bound (the second
    /// duration) after the time (the first).
    MediaPathWithin(String, MediaPath, Duration, Duration),
    /// **Beyond the seed**: the enterprise's VPN dropped UDP.
    VpnDroppedUdp(String),
    /// Another check under a name of the scenario's own.
    Named(String, Box<CheckDef>),
}

impl CheckDef {
    /// The checks this entry asks for, judged on `outcome`.
    pub fn eval(&self, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
        use CheckDef as D;
        let one = |c: Check| vec![c];
        match self {
            D::Joined(n) => one(joined(outcome, n)),
            D::NeverJoined(n, why) => one(never_joined(outcome, n, why)),
            D::Hears(l, t, min) => one(hears(outcome, spec, l, t, *min)),
            D::SignallingAcked(n) => one(signalling_all_acked(outcome, n)),
            D::ProxyType(n, t) => one(proxy_type(outcome, n, *t)),
            D::MediaPath(n, p) => one(media_path(outcome, n, *p)),
            D::Reconnects(n) => one(reconnected(outcome, n)),
            D::RecoversWithin(n, bound) => one(outages_within(outcome, n, *bound)),
            D::RelayInUseCrashed(n) => one(relay_in_use_crashed(outcome, n)),
            D::Liveness(bound) => liveness(spec, outcome, *bound),
            D::Call(a, b, min) => call(spec, outcome, a, b, *min),
            D::ImpairmentsHappened => one(impairments_happened(outcome)),
            D::ReceiversSawLoss => one(receivers_saw_loss(outcome)),
            D::StreamQuality => one(stream_quality(outcome)),
            D::FirewallDropped => one(firewall_dropped(outcome)),
            D::EdgeSawNoSignalling => one(edge_saw_no_signalling(outcome)),
            D::ApsSilent(aps) => one(aps_silent(outcome, aps)),
            D::SocksRefusedUdp => one(socks_refused_udp(outcome)),
            D::Codes(n, codes) => one(codes_are(spec, outcome, n, codes)),
            D::ConfigInForce(n, text) => one(config_in_force(outcome, n, text)),
            D::MediaBetween(n, from, until) => one(media_between(outcome, n, *from, *until)),
            D::FreshTicketAfter(e, after) => one(fresh_ticket_after(spec, outcome, e, *after)),
            D::OpenRelayAttack => open_relay_attack(outcome),
            D::Crowd(total) => crowd(outcome, *total),
            D::JoinedWithin(n, bound) => one(b::joined_within(outcome, n, *bound)),
            D::StayDirect(names) => one(b::stay_direct(outcome, names)),
            D::NoAccessPointAnswered => one(b::no_access_point_answered(outcome)),
            D::FallsBack(n, probe) => one(b::falls_back(outcome, n, *probe)),
            D::RelayPort(n, port) => one(b::relay_port(outcome, n, *port)),
            D::NoUdpLeft(e) => one(b::no_udp_left(outcome, e)),
            D::NothingDeniedTo(e, proto, port) => {
                one(b::nothing_denied_to(outcome, e, *proto, *port))
            }
            D::HttpProxyTunnels(e, t, c) => one(b::http_proxy_tunnels(outcome, e, *t, *c)),
            D::NatRebound(e) => one(b::nat_rebound(outcome, e)),
            D::RelayFollowedRebinding => one(b::relay_followed_rebinding(outcome)),
            D::NoReconnect(n) => one(b::no_reconnect(outcome, n)),
            D::NoTicketAfter(e, after) => one(b::no_ticket_after(spec, outcome, e, *after)),
            D::MediaAfter(n, after, s) => one(b::media_after(outcome, n, *after, *s)),
            D::ReasonMentions(n, text) => one(b::reason_mentions(outcome, n, text)),
            D::MediaPathWithin(n, path, after, bound) => {
                one(b::media_path_within(outcome, n, *path, *after, *bound))
            }
            D::VpnDroppedUdp(e) => one(b::vpn_dropped_udp(outcome, e)),
            D::Named(name, inner) => inner
                .eval(spec, outcome)
                .into_iter()
                .map(|c| Check {
                    name: name.clone(),
                    ..c
                })
                .collect(),
        }
    }
}

/// Two clients in a call: both join, hear each other, and all their signalling is
/// acknowledged.
pub fn call(spec: &WorldSpec, outcome: &WorldOutcome, a: &str, b: &str, min: u64) -> Vec<Check> {
    vec![
        joined(outcome, a),
        joined(outcome, b),
        hears(outcome, spec, a, b, min),
        hears(outcome, spec, b, a, min),
        signalling_all_acked(outcome, a),
        signalling_all_acked(outcome, b),
    ]
}

/// The fault "crash the relay NAME uses" took effect (it does nothing when NAME holds no
/// relay at that moment).
pub fn relay_in_use_crashed(outcome: &WorldOutcome, name: &str) -> Check {
    let fault = Fault::CrashRelayOf(name.into());
    let applied = outcome.faults_applied.iter().find(|(_, f)| *f == fault);
    let idle = outcome
        .faults_without_effect
        .iter()
        .find(|(_, f, _)| *f == fault);
    Check::new(
        format!("the relay {name} was using was crashed"),
        applied.is_some(),
        match (applied, idle) {
            (Some((at, _)), _) => format!("at {:.3} s", at.as_secs_f64()),
            (None, Some((at, _, why))) => {
                format!("at {:.3} s it did nothing: {why}", at.as_secs_f64())
            }
            (None, None) => "no such fault was scheduled".to_owned(),
        },
    )
}

/// Every enterprise firewall dropped TCP (the direct attempts).
pub fn firewall_dropped(outcome: &WorldOutcome) -> Check {
    Check::new(
        "the firewall dropped the direct attempts",
        !outcome.firewalls.is_empty() && outcome.firewalls.values().all(|f| f.tcp_drop > 0),
        format!(
            "{:?}",
            outcome
                .firewalls
                .values()
                .map(|f| f.tcp_drop)
                .collect::<Vec<_>>()
        ),
    )
}

/// The edge saw no signalling.
pub fn edge_saw_no_signalling(outcome: &WorldOutcome) -> Check {
    Check::new(
        "the edge saw no signalling",
        outcome.edge.signalling_messages == 0,
        format!("{} messages", outcome.edge.signalling_messages),
    )
}

/// The access points `silent` answered nothing and another one answered.
pub fn aps_silent(outcome: &WorldOutcome, silent: &[IpAddr]) -> Check {
    // In the seed's order of the access points, as the catalogue always printed them.
    let answers: Vec<u64> = AP_IPS
        .iter()
        .map(|a| outcome.aps.get(&ip(a)).map_or(0, |c| c.answered))
        .collect();
    let quiet = silent
        .iter()
        .all(|ap| outcome.aps.get(ap).is_none_or(|c| c.answered == 0));
    let others = outcome
        .aps
        .iter()
        .filter(|(ap, _)| !silent.contains(ap))
        .map(|(_, c)| c.answered)
        .sum::<u64>();
    Check::new(
        "the dead access points answered nothing and a live one answered",
        quiet && others > 0,
        format!("answers per access point: {answers:?}"),
    )
}

/// A SOCKS5 server refused UDP ASSOCIATE.
pub fn socks_refused_udp(outcome: &WorldOutcome) -> Check {
    let refused = outcome.socks.values().map(|s| s.udp_refused).sum::<u64>();
    Check::new(
        "the SOCKS5 server refused UDP ASSOCIATE",
        refused > 0,
        format!("{refused} refusals"),
    )
}

/// The client's op codes are `expected`, in script order (the leave the world appends
/// included). Named after the ops and the codes expected.
pub fn codes_are(spec: &WorldSpec, outcome: &WorldOutcome, name: &str, expected: &[i32]) -> Check {
    use cloudproxy_node::nodes::client::Op;
    let client = spec
        .enterprises
        .iter()
        .flat_map(|e| &e.clients)
        .find(|c| c.name == name);
    let mut ops: Vec<&str> = client
        .map(|c| {
            c.script
                .iter()
                .map(|(_, op)| match op {
                    Op::Set(_) => "set",
                    Op::Join => "join",
                    Op::Leave => "leave",
                    Op::SetCloudProxy(_) => "set_cloud_proxy",
                })
                .collect()
        })
        .unwrap_or_default();
    if ops.last() != Some(&"leave") {
        ops.push("leave");
    }
    let words: Vec<String> = ops
        .iter()
        .zip(expected.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(op, code)| code.map_or(format!("{op} ?"), |c| format!("{op} {c}")))
        .collect();
    let codes: Vec<i32> = outcome
        .clients
        .get(name)
        .map(|r| r.codes.iter().map(|(_, c)| *c).collect())
        .unwrap_or_default();
    Check::new(
        format!("codes: {}", words.join(", ")),
        codes == expected,
        format!("{codes:?}"),
    )
}

/// The client's configuration in force contains `text`.
pub fn config_in_force(outcome: &WorldOutcome, name: &str, text: &str) -> Check {
    let in_force = outcome
        .clients
        .get(name)
        .and_then(|r| r.config_in_force.clone())
        .unwrap_or_default();
    Check::new(
        "the new config is in force after re-joining",
        in_force.contains(text),
        cloudproxy_core::params::redact_text(&in_force),
    )
}

/// The impairments really happened.
pub fn impairments_happened(outcome: &WorldOutcome) -> Check {
    Check::new(
        "the impairments really happened",
        outcome.impairments.lost > 0
            && outcome.impairments.duplicated > 0
            && outcome.impairments.delayed > 0,
        format!("{:?}", outcome.impairments),
    )
}

/// Receivers saw loss and duplication. (Not reordering: the simulated links' own latency
/// spread reorders a few packets of every call, impaired or not.)
pub fn receivers_saw_loss(outcome: &WorldOutcome) -> Check {
    let (lost, duplicated) = outcome
        .clients
        .values()
        .flat_map(|r| r.media_from.values())
        .fold((0, 0), |(l, d), s| (l + s.lost, d + s.duplicated));
    Check::new(
        "receivers saw the loss and the duplication",
        lost > 0 && duplicated > 0,
        format!("{lost} lost, {duplicated} duplicated over every stream"),
    )
}

/// The client received media in some second of `from_s..until_s`.
pub fn media_between(outcome: &WorldOutcome, name: &str, from_s: u64, until_s: u64) -> Check {
    let ok = outcome
        .clients
        .get(name)
        .is_some_and(|r| r.media_per_second.range(from_s..until_s).next().is_some());
    Check::new(
        format!("{name} receives media between {from_s} s and {until_s} s"),
        ok,
        format!("media between {from_s} s and {until_s} s"),
    )
}

/// An access point answered the enterprise `enterprise` after `after`: a reconnect then asked
/// for a fresh ticket.
pub fn fresh_ticket_after(
    spec: &WorldSpec,
    outcome: &WorldOutcome,
    enterprise: &str,
    after: Duration,
) -> Check {
    let host = spec
        .enterprises
        .iter()
        .find(|e| e.name == enterprise)
        .map_or_else(
            || format!("(no enterprise {enterprise})"),
            |e| e.clients_ip.to_string(),
        );
    let from = after.as_micros() as u64;
    let answers = trace_events(outcome, "ap_request")
        .into_iter()
        .filter(|(t, v)| {
            *t >= from
                && v["answered"] == true
                && v["from"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(&format!("{host}:")))
        })
        .count();
    Check::new(
        "the reconnect fetched a fresh ticket from the access point",
        answers > 0,
        format!(
            "{answers} access point answers to {host} after {} s (tickets last {} s)",
            after.as_secs(),
            spec.ticket_lifetime.as_secs()
        ),
    )
}

/// The open-relay attack: the attacker got a ticket, every forbidden attempt got the refusal
/// expected, and the relays counted them.
pub fn open_relay_attack(outcome: &WorldOutcome) -> Vec<Check> {
    let attempts = &outcome.attack.attempts;
    let answer = |what: &str| {
        attempts
            .iter()
            .find(|a| a.what == what)
            .map_or("not tried".to_owned(), |a| a.answer.clone())
    };
    let expect = |what: String, expected: &str| {
        let got = answer(&what);
        Check::new(
            format!("attack: {what} -> {expected}"),
            got == expected,
            got,
        )
    };
    let mut checks = vec![Check::new(
        "the attacker got a real ticket from the access point",
        outcome.attack.got_ticket,
        format!("{} attempts", attempts.len()),
    )];
    for dest in FORBIDDEN {
        checks.push(expect(
            format!("tunnel to {dest} with a valid ticket"),
            "destination refused",
        ));
    }
    for (what, expected) in [
        ("tunnel with a forged ticket", "invalid ticket"),
        (
            "tunnel with a ticket whose expiry was extended",
            "invalid ticket",
        ),
        ("tunnel to SD-RTN with the valid ticket", "accepted"),
        ("the same ticket again (replay)", "ticket already used"),
        ("tunnel with an expired ticket", "ticket expired"),
    ] {
        checks.push(expect(what.into(), expected));
    }
    for what in [
        "UDP media to 10.0.0.1:53 on its own session",
        "UDP media to 8.8.8.8:53 on its own session",
        "UDP media on a made-up session",
    ] {
        let got = answer(what);
        checks.push(Check::new(
            format!("attack: {what} -> not relayed"),
            got != "not tried" && !got.starts_with("answered"),
            got,
        ));
    }
    let refused: u64 = outcome
        .relays
        .values()
        .map(|r| {
            r.counters.refused_destination
                + r.counters.refused_ticket_invalid
                + r.counters.refused_ticket_replayed
                + r.counters.refused_ticket_expired
        })
        .sum();
    checks.push(Check::new(
        "the relay counted every refusal",
        refused >= 10,
        format!("{refused} refusals counted"),
    ));
    checks
}

/// A crowd of `expected` clients: all join (with join-time percentiles), every one hears its
/// channel and is acknowledged, and both relays carry load.
pub fn crowd(outcome: &WorldOutcome, expected: usize) -> Vec<Check> {
    let mut joins: Vec<Duration> = outcome
        .clients
        .values()
        .filter_map(|c| c.join_time)
        .collect();
    joins.sort();
    let total = outcome.clients.len();
    let pct = |p: usize| {
        joins
            .get((joins.len() * p / 100).min(joins.len().saturating_sub(1)))
            .map_or(0, |d| d.as_millis())
    };
    let deaf: Vec<&String> = outcome
        .clients
        .iter()
        .filter(|(_, c)| c.media_received() == 0)
        .map(|(n, _)| n)
        .collect();
    let load: Vec<String> = outcome
        .relays
        .iter()
        .map(|(ip, r)| {
            format!(
                "{ip}: {} sessions (peak {})",
                r.counters.sessions_opened, r.peak_sessions
            )
        })
        .collect();
    let unacked: usize = outcome
        .clients
        .values()
        .filter(|c| (c.signalling_acked.len() as u64) < c.signalling_sent)
        .count();
    vec![
        Check::new(
            format!("all {total} clients join"),
            joins.len() == total && total == expected,
            format!(
                "{} joined; join ms p50 {} p90 {} p99 {} max {}",
                joins.len(),
                pct(50),
                pct(90),
                pct(99),
                joins.last().map_or(0, |d| d.as_millis())
            ),
        ),
        Check::new(
            "every client hears its channel",
            deaf.is_empty(),
            format!("{} deaf: {deaf:?}", deaf.len()),
        ),
        Check::new(
            "every client's signalling is acknowledged",
            unacked == 0,
            format!("{unacked} clients with unacknowledged messages"),
        ),
        Check::new(
            "both relays carry load",
            outcome
                .relays
                .values()
                .all(|r| r.counters.sessions_opened > 0),
            load.join("; "),
        ),
    ]
}
