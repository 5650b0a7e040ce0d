//! Applying a fault schedule, and saying when a fault did nothing.
//!
//! A scheduled fault that does nothing makes a scenario's claim ("the relay in use was
//! crashed") vacuously true, so the world records, for every fault, either what it did or why
//! it did nothing, and the harness check [`crate::scenario::Check`] "every scheduled fault took
//! effect" fails the run with that reason. A fault does nothing when:
//!
//! - its host is not in the world, or is a host of clients (only servers crash and restart);
//! - it crashes a server that is already down;
//! - it crashes the relay of a client that holds none (not connected, connected directly, or
//!   no such client);
//! - it is due after the run ended.
//!
//! Partitions, repairs, holds, releases, latency, DNS outages, impairments, NAT rebindings and
//! VPNs set a state of the network: they always take effect (setting a state twice leaves it
//! set) when the enterprise they name exists. An address change does nothing when there is no
//! such client, or its driver has stopped listening.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;

use cloudproxy_core::client::{ConnectionState, NetworkChange};
use cloudproxy_node::nodes::client::ClientReport;

use crate::dns::Dns;
use crate::faults::ImpairmentState;
use crate::net::NetSwitch;
use crate::world::Fault;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash(host) => write!(f, "crash {host}"),
            Fault::Restart(host) => write!(f, "restart {host}"),
            Fault::CrashRelayOf(name) => write!(f, "crash the relay {name} uses"),
            Fault::Partition(a, b) => write!(f, "partition {a} <-> {b}"),
            Fault::PartitionOneway(a, b) => write!(f, "partition {a} -> {b}"),
            Fault::Repair(a, b) => write!(f, "repair {a} <-> {b}"),
            Fault::Hold(a, b) => write!(f, "hold {a} <-> {b}"),
            Fault::Release(a, b) => write!(f, "release {a} <-> {b}"),
            Fault::Latency(a, b, d) => write!(f, "latency {a} <-> {b} {} ms", d.as_millis()),
            Fault::DnsOutage(true) => write!(f, "DNS outage starts"),
            Fault::DnsOutage(false) => write!(f, "DNS outage ends"),
            Fault::Impair(i) if i.is_none() => write!(f, "UDP impairments end"),
            Fault::Impair(i) => {
                write!(f, "UDP impairments: loss {}%", i.loss_pct)?;
                if let Some((enter, leave)) = i.burst {
                    write!(f, ", bursts (enter {enter}%, leave {leave}%)")?;
                }
                write!(f, ", dup {}%, jitter {} ms", i.dup_pct, i.jitter_ms)
            }
            Fault::NatRebind(enterprise) => write!(f, "the NAT of {enterprise} rebinds"),
            Fault::VpnBlocksUdp(enterprise, true) => {
                write!(f, "a VPN that blocks UDP comes up in {enterprise}")
            }
            Fault::VpnBlocksUdp(enterprise, false) => {
                write!(f, "the VPN of {enterprise} goes down")
            }
            Fault::AddressChange(name) => write!(f, "the local address of {name} changes"),
        }
    }
}

/// The hosts of one world, as the fault schedule may name them.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    /// Hosts that run servers (access points, relays, the edge, SOCKS5 servers): they crash
    /// and restart.
    pub servers: BTreeSet<IpAddr>,
    /// Hosts that run clients (enterprises, the attacker): they can be partitioned, not
    /// crashed.
    pub clients: BTreeSet<IpAddr>,
}

impl Hosts {
    fn require(&self, host: IpAddr) -> Result<(), String> {
        if self.servers.contains(&host) || self.clients.contains(&host) {
            Ok(())
        } else {
            Err(format!("no host {host} in this world"))
        }
    }

    fn require_server(&self, host: IpAddr) -> Result<(), String> {
        self.require(host)?;
        if self.clients.contains(&host) {
            return Err(format!(
                "{host} runs clients, not a server: only servers crash and restart"
            ));
        }
        Ok(())
    }
}

/// What a fault can act on.
pub(crate) struct Targets<'a> {
    /// The world's hosts.
    pub hosts: &'a Hosts,
    /// Each client's report, by name (the relay it holds).
    pub reports: &'a BTreeMap<String, Rc<RefCell<ClientReport>>>,
    /// The shared resolver.
    pub dns: &'a Dns,
    /// The impairment layer.
    pub impairments: &'a RefCell<ImpairmentState>,
    /// Each enterprise's network-change switch, by name.
    pub switches: &'a BTreeMap<String, Rc<NetSwitch>>,
    /// Where each client's driver hears of address changes, by name.
    pub changes: &'a BTreeMap<String, tokio::sync::mpsc::Sender<NetworkChange>>,
}

/// Applies `fault` now; `Ok` says what it did, `Err` why it did nothing.
pub(crate) fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: &Fault,
    targets: &Targets<'_>,
) -> Result<String, String> {
    let hosts = targets.hosts;
    match fault {
        Fault::Crash(host) => crash(sim, hosts, *host),
        Fault::Restart(host) => {
            hosts.require_server(*host)?;
            let was = if sim.is_host_running(*host) {
                "running"
            } else {
                "down"
            };
            sim.bounce(*host);
            Ok(format!("restarted {host} (it was {was})"))
        }
        Fault::CrashRelayOf(name) => {
            let relay = relay_of(targets.reports, name)?;
            crash(sim, hosts, relay)
                .map(|_| format!("crashed {relay}, the relay {name} was using"))
                .map_err(|why| format!("the relay {name} was using, {why}"))
        }
        Fault::Partition(a, b)
        | Fault::PartitionOneway(a, b)
        | Fault::Repair(a, b)
        | Fault::Hold(a, b)
        | Fault::Release(a, b)
        | Fault::Latency(a, b, _) => {
            hosts.require(*a)?;
            hosts.require(*b)?;
            match fault {
                Fault::Partition(..) => sim.partition(*a, *b),
                Fault::PartitionOneway(..) => sim.partition_oneway(*a, *b),
                Fault::Repair(..) => sim.repair(*a, *b),
                Fault::Hold(..) => sim.hold(*a, *b),
                Fault::Release(..) => sim.release(*a, *b),
                Fault::Latency(_, _, d) => sim.set_link_latency(*a, *b, *d),
                _ => unreachable!("matched above"),
            }
            Ok("set".to_owned())
        }
        Fault::DnsOutage(on) => {
            targets.dns.set_outage(*on);
            Ok("set".to_owned())
        }
        Fault::Impair(settings) => {
            targets.impairments.borrow_mut().settings = *settings;
            Ok("set".to_owned())
        }
        Fault::NatRebind(enterprise) => {
            switch_of(targets, enterprise)?.rebind_nat();
            Ok(format!(
                "every UDP socket of {enterprise} moves to a new port"
            ))
        }
        Fault::VpnBlocksUdp(enterprise, blocked) => {
            switch_of(targets, enterprise)?.set_udp_blocked(*blocked);
            Ok("set".to_owned())
        }
        Fault::AddressChange(name) => {
            let tx = targets
                .changes
                .get(name)
                .ok_or_else(|| format!("no client named {name:?}"))?;
            tx.try_send(NetworkChange::AddressChanged)
                .map_err(|e| format!("{name}'s driver did not take the change: {e}"))?;
            Ok(format!("{name}'s driver is told"))
        }
    }
}

fn switch_of<'a>(targets: &'a Targets<'_>, enterprise: &str) -> Result<&'a NetSwitch, String> {
    targets
        .switches
        .get(enterprise)
        .map(|s| &**s)
        .ok_or_else(|| format!("no enterprise named {enterprise:?}"))
}

fn crash(sim: &mut turmoil::Sim<'_>, hosts: &Hosts, host: IpAddr) -> Result<String, String> {
    hosts.require_server(host)?;
    if !sim.is_host_running(host) {
        return Err(format!("{host} is already down"));
    }
    sim.crash(host);
    Ok(format!("crashed {host}"))
}

/// The relay (or SOCKS5 server) client `name` is connected through now.
fn relay_of(
    reports: &BTreeMap<String, Rc<RefCell<ClientReport>>>,
    name: &str,
) -> Result<IpAddr, String> {
    let report = reports
        .get(name)
        .ok_or_else(|| format!("no client named {name:?}"))?
        .borrow();
    match (report.state, report.proxy) {
        (Some(ConnectionState::Connected), Some((_, relay))) => Ok(relay.ip()),
        (Some(ConnectionState::Connected), None) => {
            Err(format!("{name} is connected directly, through no relay"))
        }
        (state, _) => Err(format!(
            "{name} holds no relay: it is {}",
            state.map_or("not started".to_owned(), |s| format!("{s:?}"))
        )),
    }
}
