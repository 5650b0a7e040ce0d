//! Checks: what a scenario asserts about an outcome, and the safety checks every run gets.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;

use crate::nodes::client::ClientReport;
use crate::world::{ip, WorldOutcome, WorldSpec, SDRTN_BLOCK};

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
