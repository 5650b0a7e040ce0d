//! Scenarios beyond the seed (issue 18), network changes mid-call: a NAT rebinding, a client
//! address change, and a VPN that blocks UDP. Each states its recovery bound.
//! `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::MediaPath;
use cloudproxy_core::engine::CloudProxyType;

use super::beyond_join::client;
use super::catalogue::checks_of;
use super::checks::Check;
use super::vocabulary::CheckDef;
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

/// The checks of `name` (a scenario of this module), as words of the vocabulary: the same
/// list its file twin in `sim/scenarios/` holds.
pub(super) fn check_defs(name: &str) -> Option<Vec<CheckDef>> {
    use CheckDef as D;
    let (alice, bob, bank) = ("alice".to_owned(), "bob".to_owned(), "bank".to_owned());
    let call = D::Call(alice.clone(), bob.clone(), 300);
    // Bob hears alice in most seconds after the change (media goes on).
    let goes_on = |from: Duration| D::MediaAfter(bob.clone(), from, 3);
    Some(match name {
        "nat-rebinding" => vec![
            call,
            D::NatRebound(bank.clone()),
            D::RelayFollowedRebinding,
            D::NoReconnect(alice.clone()),
            D::NoTicketAfter(bank, CHANGE_AT),
            D::MediaPath(alice, MediaPath::Udp),
            goes_on(CHANGE_AT),
        ],
        "address-change" => vec![
            call,
            D::Reconnects(alice.clone()),
            D::RecoversWithin(alice.clone(), ADDRESS_CHANGE_BOUND),
            D::ReasonMentions(alice, "the local address changed".into()),
            D::FreshTicketAfter(bank, CHANGE_AT),
            goes_on(CHANGE_AT),
        ],
        "vpn-blocks-udp" => vec![
            call,
            D::MediaPath(alice.clone(), MediaPath::Tcp),
            D::MediaPath(bob.clone(), MediaPath::Udp),
            D::MediaPathWithin(alice.clone(), MediaPath::Tcp, CHANGE_AT, VPN_BOUND),
            D::NoReconnect(alice),
            D::VpnDroppedUdp(bank),
            goes_on(CHANGE_AT + VPN_BOUND),
        ],
        _ => return None,
    })
}

// --- NAT rebinding -------------------------------------------------------------------------

fn nat_rebinding(seed: u64) -> WorldSpec {
    changing(seed, None, Fault::NatRebind("bank".into()), secs(14))
}

// --- Address change ------------------------------------------------------------------------

fn address_change(seed: u64) -> WorldSpec {
    changing(seed, None, Fault::AddressChange("alice".into()), secs(14))
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

fn check_nat_rebinding(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("nat-rebinding", spec, outcome)
}

fn check_address_change(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("address-change", spec, outcome)
}

fn check_vpn_blocks_udp(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("vpn-blocks-udp", spec, outcome)
}
