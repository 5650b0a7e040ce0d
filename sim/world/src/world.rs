//! The default world, the seed's: four access points, two relays, an SD-RTN edge, enterprises
//! with their own firewall, resolver, clients and (optionally) SOCKS5 server, all in one
//! deterministic turmoil simulation.
//!
//! ```text
//!   enterprise A (10.1.0.0/24)          the cloud proxy                   SD-RTN
//!   clients 10.1.0.10 ─┐            AP 47.74.211.17, 52.80.192.229,
//!   socks5  10.1.0.2   ├─firewall─▶    52.52.84.170, 47.96.234.219   edge 101.36.1.10
//!   enterprise B (10.2.0.0/24)      relays 120.92.118.34 ──────────▶  (signalling 5000,
//!   clients 10.2.0.10 ─┘                   120.92.18.162               media 5001 udp/5002 tcp)
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::relay::{ApConfig, ApCounters, RelayConfig};
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_core::wire::{RelayInfo, TicketKey, RELAY_TCP_PORT, RELAY_UDP_PORTS};

use crate::dns::{Dns, Resolving};
use crate::fault_schedule::{self, Hosts, Targets};
use crate::faults::{Impaired, ImpairmentCounters, ImpairmentState, Impairments};
use crate::net::{FirewallCounters, Firewalled, SimNet};
use crate::policy::Policy;
use cloudproxy_node::nodes::ap::run_ap;
use cloudproxy_node::nodes::attacker::{run_attacker, AttackReport};
use cloudproxy_node::nodes::client::{run_client, ClientEnv, ClientReport, ClientSpec, Op};
use cloudproxy_node::nodes::edge::{run_edge, EdgeStats};
use cloudproxy_node::nodes::relay::{run_relay, RelayShared};
use cloudproxy_node::nodes::socks::{run_socks5_ranged, Socks5Stats};
use cloudproxy_node::trace::Trace;

/// The access points' addresses, from the seed's whitelist.
pub const AP_IPS: [&str; 4] = [
    "47.74.211.17",
    "52.80.192.229",
    "52.52.84.170",
    "47.96.234.219",
];
/// The relays' addresses, from the seed's whitelist.
pub const RELAY_IPS: [&str; 2] = ["120.92.118.34", "120.92.18.162"];
/// The SD-RTN edge's address (a public address of its own).
pub const EDGE_IP: &str = "101.36.1.10";
/// The SD-RTN block the relays may reach.
pub const SDRTN_BLOCK: &str = "101.36.0.0/16";
/// The default access point's name.
pub const AP_DOMAIN: &str = "ap-proxy.agora.io";

/// Parses an address literal of this module (all are valid).
pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid address literal")
}

/// The edge's endpoints.
pub fn edge_endpoints() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: SocketAddr::new(ip(EDGE_IP), 5000),
        media_udp: SocketAddr::new(ip(EDGE_IP), 5001),
        media_tcp: SocketAddr::new(ip(EDGE_IP), 5002),
    }
}

/// An enterprise SOCKS5 server.
#[derive(Clone, Debug)]
pub struct SocksSpec {
    /// Its address (inside the enterprise).
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// What it accepts.
    pub policy: ServerPolicy,
    /// The ports it binds UDP associations to (dante's `udp.portrange`); `None`: ephemeral.
    pub udp_ports: Option<RangeInclusive<u16>>,
}

/// One enterprise: a host for its clients, a firewall, a resolver, maybe a SOCKS5 server.
#[derive(Clone, Debug)]
pub struct EnterpriseSpec {
    /// Its name.
    pub name: String,
    /// The host all its clients run on.
    pub clients_ip: IpAddr,
    /// Its firewall (and resolver) policy.
    pub policy: Policy,
    /// Its clients.
    pub clients: Vec<ClientSpec>,
    /// Its SOCKS5 server, if any.
    pub socks: Option<SocksSpec>,
}

/// A fault, at a time. A fault schedule is data: it is printed with every failure (its
/// `Display` form, e.g. "crash the relay alice uses"). A fault that does nothing when it is
/// due (see [`crate::fault_schedule`]) fails the run with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A host crashes (every connection to it is lost).
    Crash(IpAddr),
    /// A crashed host restarts with fresh state.
    Restart(IpAddr),
    /// The relay the named client is using crashes.
    CrashRelayOf(String),
    /// Two hosts can no longer reach each other (TCP connects are refused, packets vanish).
    Partition(IpAddr, IpAddr),
    /// Packets from the first host to the second vanish; the other way still works.
    PartitionOneway(IpAddr, IpAddr),
    /// A partition (either kind) between two hosts ends.
    Repair(IpAddr, IpAddr),
    /// Messages between two hosts are held (a stall), to be delivered on release.
    Hold(IpAddr, IpAddr),
    /// Held messages between two hosts are delivered.
    Release(IpAddr, IpAddr),
    /// The latency of the link between two hosts becomes this (both ways).
    Latency(IpAddr, IpAddr, Duration),
    /// Every enterprise resolver stops answering (`true`) or answers again (`false`).
    DnsOutage(bool),
    /// Every UDP datagram from now on is impaired so (`Impairments::NONE` heals).
    Impair(Impairments),
}

/// Everything that defines one run.
#[derive(Clone, Debug)]
pub struct WorldSpec {
    /// The seed of everything random.
    pub seed: u64,
    /// The enterprises.
    pub enterprises: Vec<EnterpriseSpec>,
    /// Scheduled faults.
    pub faults: Vec<(Duration, Fault)>,
    /// When every client leaves (and stops sending 2 s before).
    pub duration: Duration,
    /// The access points' ticket lifetime.
    pub ticket_lifetime: Duration,
    /// Plant the canary bug: relays skip the destination check.
    pub canary: bool,
    /// Record every packet as a pcap (`cloudproxy run --pcap`); none by default.
    pub capture: Option<crate::pcap::Capture>,
    /// When the last fault heals: the liveness oracle requires every client to be connected
    /// and hearing media again within the scenario's bound after it.
    pub heal_at: Option<Duration>,
    /// Put an attacker ([`ATTACKER_IP`]) behind the first enterprise's firewall.
    pub attacker: bool,
    /// Clients meant never to join (the scenario's point, e.g. a blocked path): the liveness
    /// oracle requires them to stay out and every other client to be back after the heal.
    pub never_join: Vec<String>,
    /// The order every access point lists the relays in, instead of one shuffled per answer
    /// (`check-firewall` explores each order in turn). Relays left out are listed after, in
    /// [`RELAY_IPS`] order; addresses that are not relays are ignored.
    pub relay_order: Option<Vec<IpAddr>>,
    /// Per relay, the UDP media ports it listens on and hands out instead of
    /// [`RELAY_UDP_PORTS`] (`check-firewall` pins the port a session gets).
    pub relay_udp_ports: BTreeMap<IpAddr, RangeInclusive<u16>>,
}

/// The attacker's address, inside the first enterprise.
pub const ATTACKER_IP: &str = "10.1.0.66";

impl WorldSpec {
    /// The seed's world with no enterprise yet.
    pub fn new(seed: u64, duration: Duration) -> Self {
        WorldSpec {
            seed,
            enterprises: Vec::new(),
            faults: Vec::new(),
            duration,
            ticket_lifetime: Duration::from_secs(120),
            canary: false,
            capture: None,
            heal_at: None,
            attacker: false,
            never_join: Vec::new(),
            relay_order: None,
            relay_udp_ports: BTreeMap::new(),
        }
    }

    /// Adds an enterprise; returns its index.
    pub fn enterprise(&mut self, name: &str, clients_ip: &str, policy: Policy) -> usize {
        self.enterprises.push(EnterpriseSpec {
            name: name.to_owned(),
            clients_ip: ip(clients_ip),
            policy,
            clients: Vec::new(),
            socks: None,
        });
        self.enterprises.len() - 1
    }
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct WorldOutcome {
    /// Each client's report, by name.
    pub clients: BTreeMap<String, ClientReport>,
    /// Each relay's shared state, by address.
    pub relays: BTreeMap<IpAddr, RelayShared>,
    /// Each access point's counters, by address.
    pub aps: BTreeMap<IpAddr, ApCounters>,
    /// The edge's statistics.
    pub edge: EdgeStats,
    /// Each enterprise's firewall counters, by name.
    pub firewalls: BTreeMap<String, FirewallCounters>,
    /// Each SOCKS5 server's statistics, by enterprise name.
    pub socks: BTreeMap<String, Socks5Stats>,
    /// The event trace.
    pub trace: Trace,
    /// Simulated time at the end.
    pub sim_time: Duration,
    /// Faults that took effect: (time, fault).
    pub faults_applied: Vec<(Duration, Fault)>,
    /// Faults that did nothing when due, or were due after the run ended: (time, fault, why).
    pub faults_without_effect: Vec<(Duration, Fault, String)>,
    /// Set when turmoil itself failed (a host returned an error, the run overran).
    pub error: Option<String>,
    /// What the UDP impairment layer did.
    pub impairments: ImpairmentCounters,
    /// What the attacker tried and the answers it got.
    pub attack: AttackReport,
}

/// The key shared by the simulated access points and relays (derived from the seed: the
/// simulation has no secrets to keep).
fn ticket_key(seed: u64) -> TicketKey {
    const SALT: u64 = 0x7C1C_4E75_0000_0001;
    TicketKey::generate(&mut Entropy::from_u64(seed ^ SALT))
}

/// The relays' configuration in this world.
pub fn relay_config(spec: &WorldSpec) -> RelayConfig {
    let mut config = RelayConfig::new(
        ticket_key(spec.seed),
        vec![SDRTN_BLOCK.parse().expect("a valid block")],
    );
    config.canary_skip_destination_check = spec.canary;
    config
}

/// The access points' configuration in this world.
pub fn ap_config(spec: &WorldSpec) -> ApConfig {
    let mut order: Vec<IpAddr> = Vec::new();
    let all = RELAY_IPS.iter().map(|a| ip(a));
    for addr in spec.relay_order.iter().flatten().copied().chain(all) {
        if RELAY_IPS.iter().any(|r| ip(r) == addr) && !order.contains(&addr) {
            order.push(addr);
        }
    }
    let relays = order
        .into_iter()
        .map(|addr| RelayInfo {
            addr,
            tcp_port: RELAY_TCP_PORT,
            udp_port: *RELAY_UDP_PORTS.start(),
        })
        .collect();
    let mut config = ApConfig::new(ticket_key(spec.seed), relays);
    config.shuffle_relays = spec.relay_order.is_none();
    config.ticket_lifetime = spec.ticket_lifetime;
    // Whole offices sit behind one address: the simulated clients of an enterprise share one
    // (and its network), so the per-client budgets and caps are an office's here.
    config.max_requests_per_ip = 10_000;
    config.max_requests_per_prefix = 10_000;
    config.max_tcp_connections_per_ip = config.max_tcp_connections;
    config.max_tcp_connections_per_prefix = config.max_tcp_connections;
    config
}

/// Extra simulated time after the clients' scripts, for the last packets to land.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the world to the end of every client's script.
pub fn run_world(spec: &WorldSpec) -> WorldOutcome {
    let mut sim = turmoil::Builder::new()
        .rng_seed(spec.seed)
        .simulation_duration(spec.duration + DRAIN + Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(2))
        .max_message_latency(Duration::from_millis(20))
        .tcp_capacity(1 << 16)
        .udp_capacity(1024)
        .build();
    let trace = Trace::default();
    let impairments = ImpairmentState::new(spec.seed ^ 0x001A_550F_FA17);
    let net = Impaired::new(SimNet, impairments.clone());
    // Every host's network is wrapped, outermost, in the capture (a pass-through without one).
    let tap = crate::pcap::Tap::start(spec.capture.as_ref());
    let mut dns = Dns::default();
    dns.insert(AP_DOMAIN, AP_IPS.iter().map(|a| ip(a)).collect());
    let dns = Rc::new(dns);

    // The cloud proxy: access points and relays.
    let mut aps = BTreeMap::new();
    for (i, address) in AP_IPS.iter().enumerate() {
        let counters = Rc::new(RefCell::new(ApCounters::default()));
        aps.insert(ip(address), counters.clone());
        let (config, trace, seed) = (ap_config(spec), trace.clone(), spec.seed);
        let name = format!("ap{}", i + 1);
        let host_net = tap.wrap(SimNet, ip(address));
        sim.host(ip(address), move || {
            let (config, trace, counters, name) = (
                config.clone(),
                trace.clone(),
                counters.clone(),
                name.clone(),
            );
            let host_net = host_net.clone();
            async move {
                run_ap(
                    host_net,
                    name,
                    config,
                    Entropy::from_u64(seed.wrapping_add(100 + i as u64)),
                    counters,
                    trace,
                )
                .await?;
                Ok(())
            }
        });
    }
    let mut relays = BTreeMap::new();
    for (i, address) in RELAY_IPS.iter().enumerate() {
        let shared = Rc::new(RefCell::new(RelayShared::default()));
        relays.insert(ip(address), shared.clone());
        let mut config = relay_config(spec);
        if let Some(ports) = spec.relay_udp_ports.get(&ip(address)) {
            config.udp_ports = ports.clone();
        }
        let (trace, seed) = (trace.clone(), spec.seed);
        let name = format!("relay{}", i + 1);
        let host_net = tap.wrap(SimNet, ip(address));
        sim.host(ip(address), move || {
            let (config, trace, shared, name) =
                (config.clone(), trace.clone(), shared.clone(), name.clone());
            let host_net = host_net.clone();
            async move {
                run_relay(
                    host_net,
                    name,
                    config,
                    Entropy::from_u64(seed.wrapping_add(200 + i as u64)),
                    shared,
                    trace,
                )
                .await?;
                Ok(())
            }
        });
    }
    let edge = Rc::new(RefCell::new(EdgeStats::default()));
    {
        let (edge, net) = (edge.clone(), tap.wrap(net.clone(), ip(EDGE_IP)));
        sim.host(ip(EDGE_IP), move || {
            let (edge, net) = (edge.clone(), net.clone());
            async move {
                run_edge(net, edge_endpoints(), edge).await?;
                Ok(())
            }
        });
    }

    // The enterprises.
    let mut reports: BTreeMap<String, Rc<RefCell<ClientReport>>> = BTreeMap::new();
    let mut firewalls = BTreeMap::new();
    let mut socks_stats = BTreeMap::new();
    for enterprise in &spec.enterprises {
        let counters = Rc::new(RefCell::new(FirewallCounters::default()));
        firewalls.insert(enterprise.name.clone(), counters.clone());
        // The enterprise resolver sits behind the firewall: the resolver answers (or refuses)
        // as the policy's DNS rule says, so the firewall itself never sees DNS traffic.
        let resolving = Resolving::new(net.clone(), dns.clone(), enterprise.policy.dns);
        let net = Firewalled::new(resolving, Rc::new(enterprise.policy.clone()), counters);
        let net = tap.wrap(net, enterprise.clients_ip);
        if let Some(socks) = &enterprise.socks {
            let stats = Rc::new(RefCell::new(Socks5Stats::default()));
            socks_stats.insert(enterprise.name.clone(), stats.clone());
            let (socks, inner) = (socks.clone(), Impaired::new(SimNet, impairments.clone()));
            let inner = tap.wrap(inner, socks.ip);
            sim.host(socks.ip, move || {
                let (socks, stats, inner) = (socks.clone(), stats.clone(), inner.clone());
                async move {
                    run_socks5_ranged(
                        inner.clone(),
                        inner,
                        socks.ip,
                        socks.port,
                        socks.policy,
                        socks.udp_ports,
                        stats,
                    )
                    .await?;
                    Ok(())
                }
            });
        }
        let env = ClientEnv {
            sdrtn: edge_endpoints(),
            trace: trace.clone(),
        };
        let mut tasks = Vec::new();
        for client in &enterprise.clients {
            let report = Rc::new(RefCell::new(ClientReport::default()));
            reports.insert(client.name.clone(), report.clone());
            let mut client = client.clone();
            if client.script.last().map(|(_, op)| op) != Some(&Op::Leave) {
                client.script.push((spec.duration, Op::Leave));
            }
            client.talk_until = Some(spec.duration.saturating_sub(Duration::from_secs(2)));
            tasks.push((client, report));
        }
        let (net, env) = (net.clone(), env.clone());
        sim.client(enterprise.clients_ip, async move {
            let handles: Vec<_> = tasks
                .into_iter()
                .map(|(client, report)| {
                    tokio::task::spawn_local(run_client(net.clone(), client, env.clone(), report))
                })
                .collect();
            for handle in handles {
                handle.await??;
            }
            Ok(())
        });
    }

    let mut hosts = Hosts::default();
    hosts
        .servers
        .extend(AP_IPS.iter().chain(RELAY_IPS.iter()).map(|a| ip(a)));
    hosts.servers.insert(ip(EDGE_IP));
    for enterprise in &spec.enterprises {
        hosts.clients.insert(enterprise.clients_ip);
        hosts
            .servers
            .extend(enterprise.socks.as_ref().map(|s| s.ip));
    }
    let attack = Rc::new(RefCell::new(AttackReport::default()));
    if let (true, Some(first)) = (spec.attacker, spec.enterprises.first()) {
        hosts.clients.insert(ip(ATTACKER_IP));
        let net = Firewalled::new(net.clone(), Rc::new(first.policy.clone()), Rc::default());
        let net = tap.wrap(net, ip(ATTACKER_IP));
        let (attack, wait) = (
            attack.clone(),
            spec.ticket_lifetime + Duration::from_secs(1),
        );
        sim.client(ip(ATTACKER_IP), async move {
            // Let the legitimate clients settle first.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let ap = SocketAddr::new(ip(AP_IPS[0]), cloudproxy_core::wire::AP_PORTS[0]);
            let relay = SocketAddr::new(ip(RELAY_IPS[0]), RELAY_TCP_PORT);
            run_attacker(net, ap, relay, edge_endpoints().signalling, wait, attack).await?;
            Ok(())
        });
    }

    // Hosts that never talk to each other are partitioned too, so that nothing but the
    // firewall's rules and these partitions decides what can reach what.
    let enterprises: Vec<IpAddr> = spec.enterprises.iter().map(|e| e.clients_ip).collect();
    let cloud: Vec<IpAddr> = AP_IPS
        .iter()
        .chain(RELAY_IPS.iter())
        .map(|a| ip(a))
        .collect();
    for (i, a) in enterprises.iter().enumerate() {
        for b in &enterprises[i + 1..] {
            sim.partition(*a, *b);
        }
    }
    for (i, a) in cloud.iter().enumerate() {
        for b in &cloud[i + 1..] {
            sim.partition(*a, *b);
        }
    }
    for ap in AP_IPS {
        sim.partition(ip(ap), ip(EDGE_IP));
    }

    // Run, applying faults when due.
    let mut faults: Vec<(Duration, Fault)> = spec.faults.clone();
    faults.sort_by_key(|(at, _)| *at);
    let mut faults = faults.into_iter().peekable();
    let mut outcome = WorldOutcome {
        trace: trace.clone(),
        ..WorldOutcome::default()
    };
    loop {
        while let Some((at, _)) = faults.peek() {
            if *at > sim.elapsed() {
                break;
            }
            let (at, fault) = faults.next().expect("peeked");
            let targets = Targets {
                hosts: &hosts,
                reports: &reports,
                dns: &dns,
                impairments: &impairments,
            };
            let effect = fault_schedule::apply(&mut sim, &fault, &targets);
            trace.record(
                cloudproxy_core::time::Instant::from_micros(sim.elapsed().as_micros() as u64),
                "world",
                "fault",
                match &effect {
                    Ok(what) => serde_json::json!({"fault": fault.to_string(), "applied": true, "effect": what}),
                    Err(why) => serde_json::json!({"fault": fault.to_string(), "applied": false, "effect": why}),
                },
            );
            match effect {
                Ok(_) => outcome.faults_applied.push((at, fault)),
                Err(why) => outcome.faults_without_effect.push((at, fault, why)),
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                outcome.error = Some(e.to_string());
                break;
            }
        }
    }
    tap.finish(); // what happens while the world is torn down is not traffic
    outcome.sim_time = sim.elapsed();
    for (at, fault) in faults {
        let why = format!(
            "due at {:.3} s, after the run ended at {:.3} s",
            at.as_secs_f64(),
            outcome.sim_time.as_secs_f64()
        );
        outcome.faults_without_effect.push((at, fault, why));
    }
    outcome.impairments = impairments.borrow().counters.clone();
    outcome.attack = attack.borrow().clone();
    outcome.clients = reports
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect();
    outcome.relays = relays
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect();
    outcome.aps = aps
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect();
    outcome.edge = edge.borrow().clone();
    outcome.firewalls = firewalls
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect();
    outcome.socks = socks_stats
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect();
    outcome
}
