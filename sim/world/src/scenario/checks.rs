//! Checks: what a scenario asserts about an outcome, and the safety checks every run gets.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;

use crate::world::{ip, WorldOutcome, WorldSpec, SDRTN_BLOCK};
use cloudproxy_node::nodes::client::ClientReport;

/// One check: a name, a verdict, and the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

impl Check {
    /// A check with a verdict.
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }

    /// A failed check.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check::new(name, false, detail)
    }
}

/// Safety, checked in every run: no relay forwards outside SD-RTN, no media reaches a client
/// outside its channel, no corrupted media, signalling acknowledged in order.
pub fn safety(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let block: cloudproxy_core::relay::Cidr = SDRTN_BLOCK.parse().expect("a valid block");
    let outside: Vec<String> = outcome
        .relays
        .values()
        .flat_map(|r| r.upstream_destinations.iter())
        .filter(|d| !block.contains(d.ip()))
        .map(|d| d.to_string())
        .collect();
    let mut checks = vec![Check::new(
        "safety: no relay forwards outside SD-RTN",
        outside.is_empty(),
        if outside.is_empty() {
            "every upstream destination is in SD-RTN".to_owned()
        } else {
            format!("forwarded to {}", outside.join(", "))
        },
    )];
    let mut wrong_channel = Vec::new();
    let mut corrupt = 0;
    let mut bad_acks = 0;
    for enterprise in &spec.enterprises {
        for client in &enterprise.clients {
            let Some(report) = outcome.clients.get(&client.name) else {
                continue;
            };
            for (uid, stream) in &report.media_from {
                corrupt += stream.corrupt;
                let sender = spec
                    .enterprises
                    .iter()
                    .flat_map(|e| &e.clients)
                    .find(|c| c.uid == *uid);
                if sender.is_none_or(|s| s.channel != client.channel || s.uid == client.uid) {
                    wrong_channel.push(format!("{} got media of uid {uid}", client.name));
                }
            }
            bad_acks += report.signalling_bad_acks;
        }
    }
    checks.push(Check::new(
        "safety: media reaches only members of the sender's channel",
        wrong_channel.is_empty(),
        if wrong_channel.is_empty() {
            "none misdelivered".to_owned()
        } else {
            wrong_channel.join("; ")
        },
    ));
    checks.push(Check::new(
        "safety: no corrupted media",
        corrupt == 0,
        format!("{corrupt} corrupted packets"),
    ));
    checks.push(Check::new(
        "safety: only signalling that was sent is acknowledged",
        bad_acks == 0,
        format!("{bad_acks} bad acks"),
    ));
    let _ = ip;
    checks
}

fn report<'a>(outcome: &'a WorldOutcome, name: &str) -> Option<&'a ClientReport> {
    outcome.clients.get(name)
}

/// The client joined (was connected at some point).
pub fn joined(outcome: &WorldOutcome, name: &str) -> Check {
    let r = report(outcome, name);
    let join = r.and_then(|r| r.join_time);
    Check::new(
        format!("{name} joins"),
        join.is_some(),
        match (join, r) {
            (Some(t), _) => format!("joined in {} ms", t.as_millis()),
            (None, Some(r)) => format!("never connected; last reason: {}", r.last_reason),
            (None, None) => "no such client".to_owned(),
        },
    )
}

/// The client never connected, and its last reason mentions `reason`.
pub fn never_joined(outcome: &WorldOutcome, name: &str, reason: &str) -> Check {
    let r = report(outcome, name);
    let ok = r.is_some_and(|r| {
        r.join_time.is_none()
            && r.last_reason
                .to_lowercase()
                .contains(&reason.to_lowercase())
    });
    Check::new(
        format!("{name} cannot join, reason mentions {reason:?}"),
        ok,
        r.map_or("no such client".to_owned(), |r| {
            format!(
                "join time {:?}; last reason: {}",
                r.join_time, r.last_reason
            )
        }),
    )
}

/// `listener` received media from `talker`, with at most `max_loss` of it lost.
pub fn hears(
    outcome: &WorldOutcome,
    spec: &WorldSpec,
    listener: &str,
    talker: &str,
    min_packets: u64,
) -> Check {
    let uid = spec
        .enterprises
        .iter()
        .flat_map(|e| &e.clients)
        .find(|c| c.name == talker)
        .map(|c| c.uid);
    let got = uid
        .and_then(|uid| report(outcome, listener)?.media_from.get(&uid).cloned())
        .unwrap_or_default();
    Check::new(
        format!("{listener} hears {talker}"),
        got.received >= min_packets,
        format!(
            "{} packets received (at least {min_packets} expected), {} lost",
            got.received, got.lost
        ),
    )
}

/// Every signalling message the client sent was acknowledged by the edge.
pub fn signalling_all_acked(outcome: &WorldOutcome, name: &str) -> Check {
    let r = report(outcome, name);
    let (sent, acked) = r.map_or((0, 0), |r| {
        (r.signalling_sent, r.signalling_acked.len() as u64)
    });
    Check::new(
        format!("{name}: every signalling message acknowledged"),
        sent > 0 && acked >= sent,
        format!("{acked} of {sent} acknowledged"),
    )
}

/// The client's latest connection used `proxy_type`.
pub fn proxy_type(outcome: &WorldOutcome, name: &str, expected: u8) -> Check {
    let got = report(outcome, name).and_then(|r| r.proxy).map(|(t, _)| t);
    Check::new(
        format!("{name} went through proxy type {expected}"),
        got == Some(expected),
        format!("proxy type {got:?}"),
    )
}

/// The client's media path.
pub fn media_path(outcome: &WorldOutcome, name: &str, expected: MediaPath) -> Check {
    let got = report(outcome, name).and_then(|r| r.media_path);
    Check::new(
        format!("{name} media over {expected:?}"),
        got == Some(expected),
        format!("media path {got:?}"),
    )
}

/// The client reconnected at least once.
pub fn reconnected(outcome: &WorldOutcome, name: &str) -> Check {
    let n = report(outcome, name).map_or(0, |r| r.reconnects);
    Check::new(
        format!("{name} reconnects"),
        n >= 1,
        format!("{n} reconnects"),
    )
}

/// Every outage of the client ended within `bound`, and media flowed again afterwards.
pub fn outages_within(outcome: &WorldOutcome, name: &str, bound: Duration) -> Check {
    let Some(r) = report(outcome, name) else {
        return Check::fail(format!("{name} recovers"), "no such client");
    };
    let worst = r
        .outages
        .iter()
        .map(|(lost, back)| back.map(|b| b.saturating_sub(*lost)))
        .max()
        .flatten();
    let all_back = r.outages.iter().all(|(_, back)| back.is_some());
    let media_after = r
        .outages
        .last()
        .and_then(|(_, back)| *back)
        .is_some_and(|back| {
            r.media_per_second
                .range(back.as_secs() + 1..)
                .next()
                .is_some()
        });
    Check::new(
        format!(
            "{name}: back within {} s and media flows again",
            bound.as_secs()
        ),
        !r.outages.is_empty() && all_back && worst.is_some_and(|w| w <= bound) && media_after,
        format!(
            "outages {:?}; media after the last: {media_after}",
            r.outages
        ),
    )
}

/// Every fault of the schedule took effect when it was due (see
/// [`crate::fault_schedule`]): a fault that did nothing makes the scenario's claim about it
/// vacuous, so the run fails with the reason.
pub fn faults_took_effect(outcome: &WorldOutcome) -> Check {
    let idle: Vec<String> = outcome
        .faults_without_effect
        .iter()
        .map(|(at, fault, why)| format!("at {:.3} s, {fault}: {why}", at.as_secs_f64()))
        .collect();
    Check::new(
        "every scheduled fault took effect",
        idle.is_empty(),
        if idle.is_empty() {
            format!("{} faults applied", outcome.faults_applied.len())
        } else {
            format!("did nothing: {}", idle.join("; "))
        },
    )
}

/// Liveness: once the faults healed (`spec.heal_at`), every client is connected and hearing
/// media again within `bound`; a client that never joined fails it (nothing recovered),
/// unless the scenario means it never to join (`spec.never_join`), and then it must have
/// stayed out.
pub fn liveness(spec: &WorldSpec, outcome: &WorldOutcome, bound: Duration) -> Vec<Check> {
    let Some(heal) = spec.heal_at else {
        return vec![Check::fail("liveness", "the scenario states no heal time")];
    };
    let from = (heal + bound).as_secs();
    let talk_until = spec
        .duration
        .saturating_sub(Duration::from_secs(2))
        .as_secs();
    if from >= talk_until {
        return vec![Check::fail(
            "liveness",
            format!(
                "the clients stop talking at {talk_until} s, before liveness can be judged ({from} s)"
            ),
        )];
    }
    let clients: Vec<_> = spec.enterprises.iter().flat_map(|e| &e.clients).collect();
    if clients.is_empty() {
        return vec![Check::fail("liveness", "the world has no client to judge")];
    }
    clients
        .into_iter()
        .map(|client| {
            let r = outcome.clients.get(&client.name);
            let joined = r.and_then(|r| r.join_time);
            if spec.never_join.contains(&client.name) {
                return Check::new(
                    format!("liveness: {} stays out, as the scenario means", client.name),
                    joined.is_none(),
                    match joined {
                        None => "never joined".to_owned(),
                        Some(t) => format!("joined in {} ms", t.as_millis()),
                    },
                );
            }
            let name = format!(
                "liveness: {} hears media again within {} s of the heal",
                client.name,
                bound.as_secs()
            );
            let Some(r) = r.filter(|_| joined.is_some()) else {
                return Check::fail(
                    name,
                    format!(
                        "never joined, so nothing recovered; last reason: {}",
                        r.map_or("no report", |r| r.last_reason.as_str())
                    ),
                );
            };
            let media = r
                .media_per_second
                .range(from..talk_until)
                .map(|(_, n)| n)
                .sum::<u64>();
            let stuck = r.outages.iter().any(|(_, back)| back.is_none());
            Check::new(
                name,
                media > 0 && !stuck,
                format!(
                    "{media} packets between {from} s and {talk_until} s; outages {:?}",
                    r.outages
                ),
            )
        })
        .collect()
}

/// The key events of one kind in the trace: (t_us, the event's JSON object).
pub fn trace_events(outcome: &WorldOutcome, event: &str) -> Vec<(u64, serde_json::Value)> {
    outcome
        .trace
        .lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("event").and_then(|e| e.as_str()) == Some(event))
        .filter_map(|v| Some((v.get("t_us")?.as_u64()?, v)))
        .collect()
}

/// Loss, duplication and reordering measured on every stream, as evidence.
pub fn stream_quality(outcome: &WorldOutcome) -> Check {
    let mut lines = Vec::new();
    for (name, r) in &outcome.clients {
        for (uid, s) in &r.media_from {
            lines.push(format!(
                "{name}<-uid{uid}: rx {} lost {} dup {} reordered {}",
                s.received, s.lost, s.duplicated, s.reordered
            ));
        }
    }
    Check::new(
        "per-stream loss, duplication and reordering measured",
        !lines.is_empty(),
        lines.join("; "),
    )
}

/// Differential: the same clients in two worlds (say direct and proxied) deliver the same
/// application messages: the same signalling acknowledged, and in each world every media
/// packet a client sent reached its peers.
pub fn differential(spec: &WorldSpec, a: &WorldOutcome, b: &WorldOutcome) -> Vec<Check> {
    let mut checks = Vec::new();
    for client in spec.enterprises.iter().flat_map(|e| &e.clients) {
        let (ra, rb) = (a.clients.get(&client.name), b.clients.get(&client.name));
        let acked =
            |r: Option<&ClientReport>| r.map(|r| r.signalling_acked.clone()).unwrap_or_default();
        checks.push(Check::new(
            format!(
                "differential: {} has the same signalling acknowledged",
                client.name
            ),
            !acked(ra).is_empty() && acked(ra) == acked(rb),
            format!("{:?} vs {:?}", acked(ra), acked(rb)),
        ));
        for (label, world) in [("first", a), ("second", b)] {
            // From the first packet a peer received on, every packet through the last one
            // sent arrived once, intact, with no gap.
            let sent = world.clients.get(&client.name).map_or(0, |r| r.media_sent);
            let streams: Vec<String> = world
                .clients
                .iter()
                .filter(|(name, _)| **name != client.name)
                .filter_map(|(name, r)| r.media_from.get(&client.uid).map(|s| (name, s)))
                .filter(|(_, s)| {
                    s.lost > 0
                        || s.duplicated > 0
                        || s.corrupt > 0
                        || s.highest().map(u64::from) != sent.checked_sub(1)
                })
                .map(|(name, s)| format!("{name}: {s:?}"))
                .collect();
            checks.push(Check::new(
                format!(
                    "differential: {}'s media delivered whole in the {label} world",
                    client.name
                ),
                sent > 0 && streams.is_empty(),
                format!("sent {sent}; imperfect streams: {streams:?}"),
            ));
        }
    }
    checks
}
