//! Swarm testing: each seed enables a random subset of fault kinds, with random weights, on top
//! of a scenario. The faults start after the clients had a moment to join and all heal by
//! [`HEAL_AT`]; the oracles then require safety throughout and liveness after the heal.

use std::net::IpAddr;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;

use crate::faults::Impairments;
use crate::world::{ip, Fault, WorldSpec, AP_IPS, RELAY_IPS};

/// When the swarm's faults start.
pub const FAULTS_FROM: Duration = Duration::from_secs(1);
/// When every swarm fault has healed.
pub const HEAL_AT: Duration = Duration::from_secs(6);
/// How long after the heal every client must be hearing media again: a dead relay is
/// detected after three missed keepalives (15 s), then the client reconnects with backoff.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(20);

/// The kinds of fault a swarm seed may enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Per-packet UDP loss (uniform or bursty), duplication and jitter.
    UdpImpairments,
    /// An access point crashes and restarts.
    ApCrash,
    /// A relay crashes and restarts.
    RelayCrash,
    /// Every resolver stops answering for a while.
    DnsOutage,
    /// The first enterprise's link to a relay stalls (messages held, then released).
    Stall,
    /// The second enterprise's links to the relays get slow.
    Latency,
}

/// Every kind, in the order seeds draw them.
pub const KINDS: [FaultKind; 6] = [
    FaultKind::UdpImpairments,
    FaultKind::ApCrash,
    FaultKind::RelayCrash,
    FaultKind::DnsOutage,
    FaultKind::Stall,
    FaultKind::Latency,
];

/// Adds the faults of swarm seed `seed` to `spec` (whose own seed stays as it is), sets the
/// heal time, and lengthens the run so that liveness can be judged. Returns the kinds enabled.
pub fn apply(spec: &mut WorldSpec, seed: u64) -> Vec<FaultKind> {
    // Servers the scenario itself crashes are left alone: crashing a server that is already
    // down does nothing, and a fault that does nothing fails the run.
    let down: Vec<IpAddr> = spec
        .faults
        .iter()
        .filter_map(|(_, f)| match f {
            Fault::Crash(host) => Some(*host),
            _ => None,
        })
        .collect();
    let up = |ips: &[&str]| -> Vec<IpAddr> {
        ips.iter()
            .map(|a| ip(a))
            .filter(|a| !down.contains(a))
            .collect()
    };
    let (aps, relays) = (up(&AP_IPS), up(&RELAY_IPS));
    let mut rng = Entropy::from_u64(seed ^ 0x5A_4A_4D);
    let mut pick = |n: u64| rng.next_below(n);
    let mut enabled = Vec::new();
    for kind in KINDS {
        if pick(2) == 0 {
            continue;
        }
        enabled.push(kind);
        let (from, heal) = (FAULTS_FROM, HEAL_AT);
        match kind {
            FaultKind::UdpImpairments => {
                let settings = Impairments {
                    loss_pct: pick(16) as u8,
                    burst: (pick(2) == 0).then(|| (1 + pick(3) as u8, 20 + pick(40) as u8)),
                    dup_pct: pick(6) as u8,
                    jitter_ms: pick(81) as u16,
                };
                spec.faults.push((from, Fault::Impair(settings)));
                spec.faults.push((heal, Fault::Impair(Impairments::NONE)));
            }
            FaultKind::ApCrash => {
                let ap = aps[pick(aps.len() as u64) as usize];
                spec.faults.push((from, Fault::Crash(ap)));
                spec.faults.push((heal, Fault::Restart(ap)));
            }
            FaultKind::RelayCrash => {
                let relay = relays[pick(relays.len() as u64) as usize];
                let at = from + Duration::from_millis(pick(3_000));
                spec.faults.push((at, Fault::Crash(relay)));
                spec.faults.push((heal, Fault::Restart(relay)));
            }
            FaultKind::DnsOutage => {
                spec.faults.push((from, Fault::DnsOutage(true)));
                spec.faults.push((heal, Fault::DnsOutage(false)));
            }
            FaultKind::Stall => {
                if let Some(first) = spec.enterprises.first() {
                    let (host, relay) = (
                        first.clients_ip,
                        ip(RELAY_IPS[pick(RELAY_IPS.len() as u64) as usize]),
                    );
                    let at = from + Duration::from_millis(pick(2_000));
                    spec.faults.push((at, Fault::Hold(host, relay)));
                    spec.faults.push((
                        at + Duration::from_millis(500 + pick(2_500)),
                        Fault::Release(host, relay),
                    ));
                }
            }
            FaultKind::Latency => {
                if let Some(second) = spec.enterprises.get(1) {
                    let slow = Duration::from_millis(50 + pick(150));
                    for relay in RELAY_IPS {
                        spec.faults
                            .push((from, Fault::Latency(second.clients_ip, ip(relay), slow)));
                        spec.faults.push((
                            heal,
                            Fault::Latency(second.clients_ip, ip(relay), Duration::from_millis(10)),
                        ));
                    }
                }
            }
        }
    }
    // The scenario's own faults may heal later than the swarm's (found by the sweep:
    // partition-heal, seed 446, was judged from the swarm's heal time).
    let heal = spec.heal_at.map_or(HEAL_AT, |h| h.max(HEAL_AT));
    spec.heal_at = Some(heal);
    spec.duration = spec
        .duration
        .max(heal + LIVENESS_BOUND + Duration::from_secs(6));
    enabled
}
