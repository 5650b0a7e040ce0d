//! Scenarios beyond the seed (issue 18), network changes mid-call: a NAT rebinding, a client
//! address change, and a VPN that blocks UDP. Each states its recovery bound.
//! `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;
use cloudproxy_core::engine::CloudProxyType;

use super::beyond_join::client;
use super::checks::*;
use super::{Scenario, Source};
use crate::policy::Policy;
use crate::world::{Fault, WorldOutcome, WorldSpec};

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;

/// When the network changes, in every scenario of this module.
pub const CHANGE_AT: Duration = Duration::from_secs(6);
/// An address change is back within this: an access-point round and a tunnel, no backoff.
pub const ADDRESS_CHANGE_BOUND: Duration = Duration::from_secs(1);
/// Media moves to TCP within this after a VPN blocks UDP: two keepalive intervals (the
/// relay's 5 s), the UDP probe (2 s), a round trip.
pub const VPN_BOUND: Duration = Duration::from_millis(12_100);

/// The scenarios of this module, in catalogue order.
pub static SCENARIOS: [Scenario; 3] = [
    Scenario { name: "nat-rebinding", proves: "the bank's NAT rebinds mid-call: the relay follows the new port on the same session (no reconnect, no new ticket) and refuses the old one", source: Source::Builtin { build: nat_rebinding, check: check_nat_rebinding } },
    Scenario { name: "address-change", proves: "a client's address changes mid-call: it fetches a new ticket and is back within 1 s", source: Source::Builtin { build: address_change, check: check_address_change } },
    Scenario { name: "vpn-blocks-udp", proves: "a VPN that blocks UDP comes up mid-call: media moves to TCP without a reconnect within the bound", source: Source::Builtin { build: vpn_blocks_udp, check: check_vpn_blocks_udp } },
];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Alice (bank) and Bob (hospital), both behind the seed's firewall, `cloud` set on both;
/// `fault` at [`CHANGE_AT`].
fn changing(
    seed: u64,
    cloud: Option<CloudProxyType>,
    fault: Fault,
    duration: Duration,
) -> WorldSpec {
    let mut spec = WorldSpec::new(seed, duration);
    let a = spec.enterprise("bank", "10.1.0.10", Policy::seed());
    spec.enterprises[a]
        .clients
        .push(client("alice", 1, &[ENABLE], cloud));
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
    spec.enterprises[b]
        .clients
        .push(client("bob", 2, &[ENABLE], cloud));
    spec.faults.push((CHANGE_AT, fault));
    spec
}

fn call(spec: &WorldSpec, outcome: &WorldOutcome, min_packets: u64) -> Vec<Check> {
    vec![
        joined(outcome, "alice"),
        joined(outcome, "bob"),
        hears(outcome, spec, "alice", "bob", min_packets),
        hears(outcome, spec, "bob", "alice", min_packets),
        signalling_all_acked(outcome, "alice"),
        signalling_all_acked(outcome, "bob"),
    ]
}

/// Bob hears alice in most seconds after the change (media goes on).
fn media_goes_on(outcome: &WorldOutcome, from: Duration) -> Check {
    let seconds: Vec<u64> = outcome.clients.get("bob").map_or(Vec::new(), |r| {
        r.media_per_second
            .range(from.as_secs() + 1..)
            .map(|(s, _)| *s)
            .collect()
    });
    Check::new(
        format!("bob hears media after {} s", from.as_secs()),
        seconds.len() >= 3,
        format!("media in seconds {seconds:?}"),
    )
}

/// Access-point answers to the bank after `after`.
fn ap_answers_to_bank(spec: &WorldSpec, outcome: &WorldOutcome, after: Duration) -> usize {
    let bank = format!("{}:", spec.enterprises[0].clients_ip);
    let after = after.as_micros() as u64;
    trace_events(outcome, "ap_request")
        .into_iter()
        .filter(|(t, v)| {
            *t >= after
                && v["answered"] == true
                && v["from"].as_str().is_some_and(|f| f.starts_with(&bank))
        })
        .count()
}

// --- NAT rebinding -------------------------------------------------------------------------

fn nat_rebinding(seed: u64) -> WorldSpec {
    changing(seed, None, Fault::NatRebind("bank".into()), secs(14))
}

fn check_nat_rebinding(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome, 300);
    let (rebinds, retired) = outcome.relays.values().fold((0, 0), |(a, b), r| {
        (
            a + r.counters.udp_rebinds,
            b + r.counters.udp_from_retired_address,
        )
    });
    let changes = outcome
        .network_changes
        .get("bank")
        .cloned()
        .unwrap_or_default();
    checks.push(Check::new(
        "the bank's NAT moved alice's socket and one late datagram came from the old port",
        changes.rebinds >= 1 && changes.late_from_old_mapping >= 1,
        format!("{changes:?}"),
    ));
    checks.push(Check::new(
        "the relay followed the new port and refused the old one",
        rebinds >= 1 && retired >= 1,
        format!("{rebinds} rebinds, {retired} datagrams from a retired address refused"),
    ));
    let reconnects = outcome
        .clients
        .get("alice")
        .map_or(u32::MAX, |r| r.reconnects);
    checks.push(Check::new(
        "alice kept her session: no reconnect",
        reconnects == 0,
        format!("{reconnects} reconnects"),
    ));
    let answers = ap_answers_to_bank(spec, outcome, CHANGE_AT);
    checks.push(Check::new(
        "no new ticket was fetched",
        answers == 0,
        format!("{answers} access-point answers to the bank after the change"),
    ));
    checks.push(media_path(outcome, "alice", MediaPath::Udp));
    checks.push(media_goes_on(outcome, CHANGE_AT));
    checks
}

// --- Address change ------------------------------------------------------------------------

fn address_change(seed: u64) -> WorldSpec {
    changing(seed, None, Fault::AddressChange("alice".into()), secs(14))
}

fn check_address_change(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome, 300);
    checks.push(reconnected(outcome, "alice"));
    checks.push(outages_within(outcome, "alice", ADDRESS_CHANGE_BOUND));
    let reasons: Vec<String> = trace_events(outcome, "state")
        .into_iter()
        .filter_map(|(_, v)| v["reason"].as_str().map(str::to_owned))
        .filter(|r| r.contains("the local address changed"))
        .collect();
    checks.push(Check::new(
        "the reconnect says the local address changed",
        !reasons.is_empty(),
        format!("{reasons:?}"),
    ));
    let answers = ap_answers_to_bank(spec, outcome, CHANGE_AT);
    checks.push(Check::new(
        "alice fetched a new ticket",
        answers >= 1,
        format!("{answers} access-point answers to the bank after the change"),
    ));
    checks.push(media_goes_on(outcome, CHANGE_AT));
    checks
}

// --- A VPN that blocks UDP -----------------------------------------------------------------

fn vpn_blocks_udp(seed: u64) -> WorldSpec {
    let forced = Some(CloudProxyType::ForceUdp);
    changing(
        seed,
        forced,
        Fault::VpnBlocksUdp("bank".into(), true),
        secs(30),
    )
}

fn check_vpn_blocks_udp(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome, 300);
    checks.push(media_path(outcome, "alice", MediaPath::Tcp));
    checks.push(media_path(outcome, "bob", MediaPath::Udp));
    let after = CHANGE_AT.as_micros() as u64;
    let moved = trace_events(outcome, "media_path")
        .into_iter()
        .find(|(t, v)| *t >= after && v["path"] == "Tcp" && v["node"] == "alice")
        .map(|(t, _)| Duration::from_micros(t) - CHANGE_AT);
    checks.push(Check::new(
        format!(
            "alice's media moves to TCP within {} ms of the VPN",
            VPN_BOUND.as_millis()
        ),
        moved.is_some_and(|d| d <= VPN_BOUND),
        format!("after {:?} ms", moved.map(|d| d.as_millis())),
    ));
    let reconnects = outcome
        .clients
        .get("alice")
        .map_or(u32::MAX, |r| r.reconnects);
    checks.push(Check::new(
        "alice kept her session: no reconnect",
        reconnects == 0,
        format!("{reconnects} reconnects"),
    ));
    let dropped = outcome
        .network_changes
        .get("bank")
        .map_or(0, |c| c.udp_dropped_by_vpn);
    checks.push(Check::new(
        "the VPN dropped UDP",
        dropped > 0,
        format!("{dropped} datagrams dropped"),
    ));
    checks.push(media_goes_on(outcome, CHANGE_AT + VPN_BOUND));
    checks
}
