//! The words of the checks' vocabulary for the scenarios beyond the seed (issue 18): join
//! times, automatic mode's fallback, TCP 443, the enterprise HTTP proxy, and the network
//! changes. Each is the predicate its built-in scenario once wrote as a closure of its own,
//! now one function that the catalogue and a scenario file both call (so both give the same
//! verdict), and each can fail: it names what it saw.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;

use super::checks::{trace_events, Check};
use crate::policy::Proto;
use crate::world::{WorldOutcome, WorldSpec};

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(names: &[String]) -> String {
    match names {
        [] => "(nobody)".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The client joined (from its join call to connected) within `bound`.
pub fn joined_within(outcome: &WorldOutcome, name: &str, bound: Duration) -> Check {
    let t = outcome.clients.get(name).and_then(|r| r.join_time);
    Check::new(
        format!("{name} joins within {} ms", ms(bound)),
        t.is_some_and(|t| t <= bound),
        format!("join time {:?} ms", t.map(ms)),
    )
}

/// None of `names` holds a proxy connection: they stayed direct. A client that does not
/// exist fails it.
pub fn stay_direct(outcome: &WorldOutcome, names: &[String]) -> Check {
    let mut seen = Vec::new();
    for name in names {
        match outcome.clients.get(name) {
            None => seen.push(format!("{name}: no such client")),
            Some(r) => {
                if let Some(p) = r.proxy {
                    seen.push(format!("{name}: {p:?}"));
                }
            }
        }
    }
    Check::new(
        format!("{} stay direct: no proxy connection", and_list(names)),
        seen.is_empty(),
        format!("{seen:?}"),
    )
}

/// No access point answered anything, from anyone.
pub fn no_access_point_answered(outcome: &WorldOutcome) -> Check {
    let asked: u64 = outcome.aps.values().map(|c| c.answered).sum();
    Check::new(
        "no access point was asked",
        asked == 0,
        format!("{asked} answers"),
    )
}

/// The client reported exactly one fallback from the direct path to the cloud proxy, and its
/// reason states the probe time `probe`.
pub fn falls_back(outcome: &WorldOutcome, name: &str, probe: Duration) -> Check {
    let fallbacks: Vec<String> = trace_events(outcome, "state")
        .into_iter()
        .filter(|(_, v)| v["node"] == name)
        .filter_map(|(_, v)| {
            let reason = v["reason"].as_str()?;
            reason
                .contains("falling back to the cloud proxy")
                .then(|| reason.to_owned())
        })
        .collect();
    let probe_ms = ms(probe);
    Check::new(
        format!("{name}'s fallback to the cloud proxy is reported with its reason and the probe time ({probe_ms} ms)"),
        fallbacks.len() == 1 && fallbacks[0].contains(&format!("after {probe_ms} ms")),
        format!("{fallbacks:?}"),
    )
}

/// The client's relay (or proxy) is on `port`.
pub fn relay_port(outcome: &WorldOutcome, name: &str, port: u16) -> Check {
    let got = outcome
        .clients
        .get(name)
        .and_then(|r| r.proxy)
        .map(|(_, r)| r.port());
    Check::new(
        format!("{name}'s relay is on port {port}"),
        got == Some(port),
        format!("relay port {got:?}"),
    )
}

/// No UDP datagram passed the enterprise's firewall outwards.
pub fn no_udp_left(outcome: &WorldOutcome, enterprise: &str) -> Check {
    let passed = outcome.firewalls.get(enterprise).map(|f| f.udp_pass);
    Check::new(
        format!("no UDP left the {enterprise}"),
        passed == Some(0),
        match passed {
            Some(n) => format!("{n} datagrams passed"),
            None => format!("no firewall counters for {enterprise}"),
        },
    )
}

/// The enterprise's firewall denied nothing to `proto` port `port`.
pub fn nothing_denied_to(
    outcome: &WorldOutcome,
    enterprise: &str,
    proto: Proto,
    port: u16,
) -> Check {
    let word = if proto == Proto::Tcp { "TCP" } else { "UDP" };
    let denied = outcome.firewalls.get(enterprise).map(|f| {
        f.denied
            .iter()
            .filter(|(p, to)| *p == proto && to.port() == port)
            .count()
    });
    Check::new(
        format!("the {enterprise}'s firewall denied nothing to {word} {port}"),
        denied == Some(0),
        match denied {
            Some(n) => format!("{n} {word} {port} destinations denied"),
            None => format!("no firewall counters for {enterprise}"),
        },
    )
}

/// The enterprise's HTTP proxy opened exactly `tunnels` tunnels and sent exactly `challenges`
/// 407 challenges.
pub fn http_proxy_tunnels(
    outcome: &WorldOutcome,
    enterprise: &str,
    tunnels: u64,
    challenges: u64,
) -> Check {
    let stats = outcome.http_proxies.get(enterprise);
    Check::new(
        format!("the HTTP proxy opened {tunnels} tunnels (signalling, media) after {challenges} challenges"),
        stats.is_some_and(|s| s.tunnels == tunnels && s.challenges == challenges),
        match stats {
            Some(s) => format!("{s:?}"),
            None => format!("{enterprise} has no HTTP proxy"),
        },
    )
}

/// The enterprise's NAT rebound its UDP sockets, and a late datagram came from an old mapping.
pub fn nat_rebound(outcome: &WorldOutcome, enterprise: &str) -> Check {
    let changes = outcome.network_changes.get(enterprise);
    Check::new(
        format!("the NAT of {enterprise} moved its UDP sockets and a late datagram came from an old port"),
        changes.is_some_and(|c| c.rebinds >= 1 && c.late_from_old_mapping >= 1),
        format!("{changes:?}"),
    )
}

/// A relay followed a rebinding to the new port on the same session, and refused media from
/// the retired address.
pub fn relay_followed_rebinding(outcome: &WorldOutcome) -> Check {
    let (rebinds, retired) = outcome.relays.values().fold((0, 0), |(a, b), r| {
        (
            a + r.counters.udp_rebinds,
            b + r.counters.udp_from_retired_address,
        )
    });
    Check::new(
        "the relay followed the new port and refused media from the old address",
        rebinds >= 1 && retired >= 1,
        format!("{rebinds} rebinds, {retired} datagrams from a retired address refused"),
    )
}

/// The client never reconnected (it kept its session). A client that does not exist fails it.
pub fn no_reconnect(outcome: &WorldOutcome, name: &str) -> Check {
    let reconnects = outcome.clients.get(name).map(|r| r.reconnects);
    Check::new(
        format!("{name} kept the session: no reconnect"),
        reconnects == Some(0),
        match reconnects {
            Some(n) => format!("{n} reconnects"),
            None => "no such client".to_owned(),
        },
    )
}

/// Access-point answers to the enterprise's host after `after`, from the trace.
fn ap_answers_to(
    spec: &WorldSpec,
    outcome: &WorldOutcome,
    enterprise: &str,
    after: Duration,
) -> Option<(String, usize)> {
    let host = spec
        .enterprises
        .iter()
        .find(|e| e.name == enterprise)?
        .clients_ip;
    let prefix = format!("{host}:");
    let after = after.as_micros() as u64;
    let n = trace_events(outcome, "ap_request")
        .into_iter()
        .filter(|(t, v)| {
            *t >= after
                && v["answered"] == true
                && v["from"].as_str().is_some_and(|f| f.starts_with(&prefix))
        })
        .count();
    Some((host.to_string(), n))
}

/// No access point answered the enterprise after `after`: nobody there fetched a new ticket.
pub fn no_ticket_after(
    spec: &WorldSpec,
    outcome: &WorldOutcome,
    enterprise: &str,
    after: Duration,
) -> Check {
    let answers = ap_answers_to(spec, outcome, enterprise, after);
    Check::new(
        format!(
            "no new ticket was fetched by the {enterprise} after {:.3} s",
            after.as_secs_f64()
        ),
        answers.as_ref().is_some_and(|(_, n)| *n == 0),
        match answers {
            Some((host, n)) => format!("{n} access-point answers to {host}"),
            None => format!("no enterprise {enterprise}"),
        },
    )
}

/// The client received media in at least `seconds` distinct seconds after `after` (counted
/// from the whole second after it).
pub fn media_after(outcome: &WorldOutcome, name: &str, after: Duration, seconds: u64) -> Check {
    let heard: Vec<u64> = outcome.clients.get(name).map_or(Vec::new(), |r| {
        r.media_per_second
            .range(after.as_secs() + 1..)
            .map(|(s, _)| *s)
            .collect()
    });
    Check::new(
        format!(
            "{name} hears media in at least {seconds} seconds after {} s",
            after.as_secs()
        ),
        heard.len() as u64 >= seconds,
        format!("media in seconds {heard:?}"),
    )
}

/// A state change of the client gave a reason that contains `text`.
pub fn reason_mentions(outcome: &WorldOutcome, name: &str, text: &str) -> Check {
    let reasons: Vec<String> = trace_events(outcome, "state")
        .into_iter()
        .filter(|(_, v)| v["node"] == name)
        .filter_map(|(_, v)| v["reason"].as_str().map(str::to_owned))
        .filter(|r| r.contains(text))
        .collect();
    Check::new(
        format!("a state change of {name} says {text:?}"),
        !reasons.is_empty(),
        format!("{reasons:?}"),
    )
}

/// The client's media path became `path` within `bound` after `after`.
pub fn media_path_within(
    outcome: &WorldOutcome,
    name: &str,
    path: MediaPath,
    after: Duration,
    bound: Duration,
) -> Check {
    let from = after.as_micros() as u64;
    let word = format!("{path:?}");
    let moved = trace_events(outcome, "media_path")
        .into_iter()
        .find(|(t, v)| *t >= from && v["path"] == word.as_str() && v["node"] == name)
        .map(|(t, _)| Duration::from_micros(t) - after);
    Check::new(
        format!(
            "{name}'s media moves to {word} within {} ms of {:.3} s",
            ms(bound),
            after.as_secs_f64()
        ),
        moved.is_some_and(|d| d <= bound),
        format!("after {:?} ms", moved.map(ms)),
    )
}

/// The enterprise's VPN dropped UDP datagrams.
pub fn vpn_dropped_udp(outcome: &WorldOutcome, enterprise: &str) -> Check {
    let dropped = outcome
        .network_changes
        .get(enterprise)
        .map_or(0, |c| c.udp_dropped_by_vpn);
    Check::new(
        format!("the VPN of {enterprise} dropped UDP"),
        dropped > 0,
        format!("{dropped} datagrams dropped"),
    )
}
