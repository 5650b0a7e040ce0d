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
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::client::NetworkChange;
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_core::relay::{ApConfig, ApCounters, RelayConfig};
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{TicketKey, AP_PORTS, AP_TLS_PORT, RELAY_TCP_PORT, RELAY_TLS_PORT};
use cloudproxy_testkit::seed;

use crate::dns::{Dns, Resolving};
use crate::fault_schedule::{self, Hosts, Targets};
use crate::faults::{Impaired, ImpairmentCounters, ImpairmentState, Impairments};
use crate::net::{
    Captured, ChangeCounters, Changing, FirewallCounters, Firewalled, NetSwitch, SimNet,
};
use crate::pcap::Tap;
use crate::policy::Policy;
use crate::tls::WorldTls;
use cloudproxy_node::nodes::ap::run_ap_on_with;
use cloudproxy_node::nodes::attacker::{run_attacker, AttackReport};
use cloudproxy_node::nodes::client::{
    run_client_watching, ClientEnv, ClientReport, ClientSpec, Op,
};
use cloudproxy_node::nodes::edge::{run_edge, EdgeStats};
use cloudproxy_node::nodes::http_proxy::{run_http_proxy, HttpProxyStats};
use cloudproxy_node::nodes::relay::{run_relay_with, RelayHost, RelayShared};
use cloudproxy_node::nodes::socks::{run_socks5_ranged, Socks5Stats};
use cloudproxy_node::tls::TlsNet;
use cloudproxy_node::trace::{Trace, TraceEvent};

pub use cloudproxy_testkit::seed::{
    edge_endpoints, ip, AP_DOMAIN, AP_IPS, EDGE_IP, RELAY_IPS, SDRTN_BLOCK,
};

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

/// An enterprise HTTP proxy (**beyond the seed**, proxy type 3).
#[derive(Clone, Debug)]
pub struct HttpProxySpec {
    /// Its address (inside the enterprise).
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// Its name in the enterprise resolver, if any (`proxy.corp`).
    pub name: Option<String>,
    /// `Some`: every `CONNECT` needs these Basic credentials.
    pub credentials: Option<BasicCredentials>,
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
    /// Its HTTP proxy, if any (**beyond the seed**).
    pub http_proxy: Option<HttpProxySpec>,
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
    /// **Beyond the seed**: the named enterprise's NAT rebinds: its UDP sockets send from new
    /// source ports, the clients not told ([`crate::net::NetSwitch`]).
    NatRebind(String),
    /// **Beyond the seed**: a VPN comes up in the named enterprise (`true`) that blocks UDP,
    /// or goes down (`false`).
    VpnBlocksUdp(String, bool),
    /// **Beyond the seed**: the named client's local address changes (Wi-Fi to cellular); its
    /// driver reports it (turmoil keeps the host's IP: a new UDP port, every connection closed
    /// by the client).
    AddressChange(String),
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
    /// Plant the canary bug: relays skip the destination check (only with the `canary`
    /// feature; see [`WorldSpec::canary_planted`]).
    #[cfg(feature = "canary")]
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
    /// [`RELAY_UDP_PORTS`](cloudproxy_core::wire::RELAY_UDP_PORTS) (`check-firewall` pins the
    /// port a session gets).
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
            #[cfg(feature = "canary")]
            canary: false,
            capture: None,
            heal_at: None,
            attacker: false,
            never_join: Vec::new(),
            relay_order: None,
            relay_udp_ports: BTreeMap::new(),
        }
    }

    /// Whether the canary bug is planted in this world's relays (never without the `canary`
    /// feature).
    pub fn canary_planted(&self) -> bool {
        #[cfg(feature = "canary")]
        let planted = self.canary;
        #[cfg(not(feature = "canary"))]
        let planted = false;
        planted
    }

    /// Adds an enterprise; returns its index.
    pub fn enterprise(&mut self, name: &str, clients_ip: &str, policy: Policy) -> usize {
        self.enterprises.push(EnterpriseSpec {
            name: name.to_owned(),
            clients_ip: ip(clients_ip),
            policy,
            clients: Vec::new(),
            socks: None,
            http_proxy: None,
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
    /// Each HTTP proxy's statistics, by enterprise name (**beyond the seed**).
    pub http_proxies: BTreeMap<String, HttpProxyStats>,
    /// Each enterprise's network changes (NAT rebindings, the VPN), by name.
    pub network_changes: BTreeMap<String, ChangeCounters>,
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
    let config = RelayConfig::new(ticket_key(spec.seed), vec![seed::sdrtn_block()]);
    #[cfg(feature = "canary")]
    let config = RelayConfig {
        canary_skip_destination_check: spec.canary,
        ..config
    };
    config
}

/// The access points' configuration in this world.
pub fn ap_config(spec: &WorldSpec) -> ApConfig {
    // The relays in the order asked for (those left out after, in the seed's order).
    let mut relays = seed::relays();
    if let Some(order) = &spec.relay_order {
        relays.sort_by_key(|r| {
            order
                .iter()
                .position(|a| *a == r.addr)
                .unwrap_or(usize::MAX)
        });
    }
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

/// An access point on the seed's ports and on TCP 443 (**beyond the seed**: the force-TCP
/// path, TLS there and no UDP; the host's network is a [`TlsNet`] serving TLS on 443).
async fn run_ap_443<N: cloudproxy_node::net::Net>(
    net: N,
    name: String,
    config: ApConfig,
    entropy: Entropy,
    counters: Rc<RefCell<ApCounters>>,
    trace: Trace,
) -> std::io::Result<()> {
    let tcp_only = [AP_TLS_PORT];
    run_ap_on_with(
        net, name, config, entropy, counters, trace, &AP_PORTS, &tcp_only,
    )
    .await
}

/// A relay on the seed's TCP port and on TCP 443, TLS there (**beyond the seed**).
async fn run_relay_443<N: cloudproxy_node::net::Net>(
    net: N,
    name: String,
    config: RelayConfig,
    entropy: Entropy,
    shared: Rc<RefCell<RelayShared>>,
    trace: Trace,
) -> std::io::Result<()> {
    let mut host = RelayHost::new();
    host.also_tcp_ports = vec![RELAY_TLS_PORT];
    run_relay_with(net, name, config, entropy, shared, trace, host).await
}

/// Extra simulated time after the clients' scripts, for the last packets to land.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the world to the end of every client's script.
pub fn run_world(spec: &WorldSpec) -> WorldOutcome {
    let mut world = Build::new(spec);
    let aps = world.host_aps();
    let relays = world.host_relays();
    let edge = world.host_edge();
    let mut enterprises = Enterprises::default();
    for enterprise in &spec.enterprises {
        world.host_enterprise(enterprise, &mut enterprises);
    }
    let attack = world.host_attacker();
    world.partition_unrelated();
    let mut outcome = WorldOutcome {
        trace: world.trace.clone(),
        ..WorldOutcome::default()
    };
    world.run(&enterprises, &mut outcome);
    world.tap.finish(); // what happens while the world is torn down is not traffic
    outcome.sim_time = world.sim.elapsed();
    outcome.impairments = world.impairments.borrow().counters.clone();
    outcome.attack = attack.borrow().clone();
    outcome.clients = unshare(enterprises.reports);
    outcome.relays = unshare(relays);
    outcome.aps = unshare(aps);
    outcome.edge = edge.borrow().clone();
    outcome.firewalls = unshare(enterprises.firewalls);
    outcome.socks = unshare(enterprises.socks);
    outcome.http_proxies = unshare(enterprises.http_proxies);
    outcome.network_changes = enterprises
        .switches
        .iter()
        .map(|(name, switch)| (name.clone(), switch.counters()))
        .collect();
    outcome
}

/// The values behind shared cells, once the world has stopped.
fn unshare<K: Ord, V: Clone>(shared: BTreeMap<K, Rc<RefCell<V>>>) -> BTreeMap<K, V> {
    shared
        .into_iter()
        .map(|(k, v)| (k, v.borrow().clone()))
        .collect()
}

/// What the enterprises' hosts share with the run, by name.
#[derive(Default)]
struct Enterprises {
    reports: BTreeMap<String, Rc<RefCell<ClientReport>>>,
    firewalls: BTreeMap<String, Rc<RefCell<FirewallCounters>>>,
    socks: BTreeMap<String, Rc<RefCell<Socks5Stats>>>,
    http_proxies: BTreeMap<String, Rc<RefCell<HttpProxyStats>>>,
    /// Each enterprise's network-change switch.
    switches: BTreeMap<String, Rc<NetSwitch>>,
    /// Where each client's driver hears of address changes.
    changes: BTreeMap<String, tokio::sync::mpsc::Sender<NetworkChange>>,
}

/// A world being built, then run: the simulation and what every host shares.
struct Build<'a> {
    spec: &'a WorldSpec,
    sim: turmoil::Sim<'static>,
    trace: Trace,
    impairments: Rc<RefCell<ImpairmentState>>,
    /// The impaired network of the hosts outside the enterprises.
    net: Impaired<SimNet>,
    /// Every host's network is wrapped, outermost, in the capture (a pass-through without one).
    tap: Tap,
    dns: Rc<Dns>,
    /// The TLS of the 443 listeners and of the clients that reach them.
    tls: WorldTls,
}

impl<'a> Build<'a> {
    fn new(spec: &'a WorldSpec) -> Self {
        let sim = turmoil::Builder::new()
            .rng_seed(spec.seed)
            .simulation_duration(spec.duration + DRAIN + Duration::from_secs(60))
            .min_message_latency(Duration::from_millis(2))
            .max_message_latency(Duration::from_millis(20))
            .tcp_capacity(1 << 16)
            .udp_capacity(1024)
            .build();
        let impairments = ImpairmentState::new(spec.seed ^ 0x001A_550F_FA17);
        let net = Impaired::new(SimNet, impairments.clone());
        let tap = Tap::start(spec.capture.as_ref());
        let mut dns = Dns::default();
        dns.insert(AP_DOMAIN, seed::ap_ips());
        for proxy in spec
            .enterprises
            .iter()
            .filter_map(|e| e.http_proxy.as_ref())
        {
            if let Some(name) = &proxy.name {
                dns.insert(name, vec![proxy.ip]);
            }
        }
        // Made from the seed alone, from constant inputs: it cannot fail.
        let tls = WorldTls::new(spec.seed).expect("the world's test CA and TLS configurations");
        Build {
            spec,
            sim,
            trace: Trace::default(),
            impairments,
            net,
            tap,
            dns: Rc::new(dns),
            tls,
        }
    }

    /// The access points, one host each.
    fn host_aps(&mut self) -> BTreeMap<IpAddr, Rc<RefCell<ApCounters>>> {
        let config = ap_config(self.spec);
        self.host_cloud(seed::ap_ips(), "ap", 100, |_| config.clone(), run_ap_443)
    }

    /// The relays, one host each.
    fn host_relays(&mut self) -> BTreeMap<IpAddr, Rc<RefCell<RelayShared>>> {
        let config = relay_config(self.spec);
        let ports = self.spec.relay_udp_ports.clone();
        let config_of = move |address: IpAddr| {
            let mut config = config.clone();
            if let Some(ports) = ports.get(&address) {
                config.udp_ports = ports.clone();
            }
            config
        };
        self.host_cloud(seed::relay_ips(), "relay", 200, config_of, run_relay_443)
    }

    /// One host of the cloud proxy at each address, named `{prefix}{n}` from 1, running `run`
    /// with its `config_of(address)`, the seed's entropy (`seed + salt + index`, fresh at every restart) and a
    /// shared state of its own; returns the shared states by address.
    fn host_cloud<C, S, F, Fut>(
        &mut self,
        addresses: Vec<IpAddr>,
        prefix: &str,
        salt: u64,
        config_of: impl Fn(IpAddr) -> C,
        run: F,
    ) -> BTreeMap<IpAddr, Rc<RefCell<S>>>
    where
        C: Clone + 'static,
        S: Default + 'static,
        F: Fn(TlsNet<Captured<SimNet>>, String, C, Entropy, Rc<RefCell<S>>, Trace) -> Fut
            + Copy
            + 'static,
        Fut: Future<Output = std::io::Result<()>> + 'static,
    {
        let mut states = BTreeMap::new();
        for (i, address) in addresses.into_iter().enumerate() {
            let state = Rc::new(RefCell::new(S::default()));
            states.insert(address, state.clone());
            let (config, trace, seed) = (config_of(address), self.trace.clone(), self.spec.seed);
            let name = format!("{prefix}{}", i + 1);
            // TLS above the capture: the pcap shows what crosses the network.
            let host_net = self
                .tls
                .server(address)
                .wrap(self.tap.wrap(SimNet, address));
            self.sim.host(address, move || {
                let entropy = Entropy::from_u64(seed.wrapping_add(salt + i as u64));
                let (config, state) = (config.clone(), state.clone());
                let (net, name, trace) = (host_net.clone(), name.clone(), trace.clone());
                async move {
                    run(net, name, config, entropy, state, trace).await?;
                    Ok(())
                }
            });
        }
        states
    }

    /// The SD-RTN edge.
    fn host_edge(&mut self) -> Rc<RefCell<EdgeStats>> {
        let edge = Rc::new(RefCell::new(EdgeStats::default()));
        let (stats, net) = (edge.clone(), self.tap.wrap(self.net.clone(), ip(EDGE_IP)));
        self.sim.host(ip(EDGE_IP), move || {
            let (stats, net) = (stats.clone(), net.clone());
            async move {
                run_edge(net, edge_endpoints(), stats).await?;
                Ok(())
            }
        });
        edge
    }

    /// One enterprise: its SOCKS5 server, if any, and its clients on one host behind its
    /// firewall and resolver.
    fn host_enterprise(&mut self, enterprise: &EnterpriseSpec, shared: &mut Enterprises) {
        let counters = Rc::new(RefCell::new(FirewallCounters::default()));
        shared
            .firewalls
            .insert(enterprise.name.clone(), counters.clone());
        // The enterprise resolver sits behind the firewall: the resolver answers (or refuses)
        // as the policy's DNS rule says, so the firewall itself never sees DNS traffic.
        let resolving = Resolving::new(self.net.clone(), self.dns.clone(), enterprise.policy.dns);
        let net = Firewalled::new(resolving, Rc::new(enterprise.policy.clone()), counters);
        let switch = Rc::new(NetSwitch::default());
        shared
            .switches
            .insert(enterprise.name.clone(), switch.clone());
        let net = Changing::new(net, switch);
        let net = self.tap.wrap(net, enterprise.clients_ip);
        let net = self.tls.client.clone().wrap(net);
        if let Some(socks) = &enterprise.socks {
            let stats = self.host_socks(socks);
            shared.socks.insert(enterprise.name.clone(), stats);
        }
        if let Some(proxy) = &enterprise.http_proxy {
            let stats = self.host_http_proxy(proxy);
            shared.http_proxies.insert(enterprise.name.clone(), stats);
        }
        let env = ClientEnv {
            sdrtn: edge_endpoints(),
            trace: self.trace.clone(),
        };
        let mut tasks = Vec::new();
        for client in &enterprise.clients {
            let report = Rc::new(RefCell::new(ClientReport::default()));
            shared.reports.insert(client.name.clone(), report.clone());
            let mut client = client.clone();
            if client.script.last().map(|(_, op)| op) != Some(&Op::Leave) {
                client.script.push((self.spec.duration, Op::Leave));
            }
            client.talk_until = Some(self.spec.duration.saturating_sub(Duration::from_secs(2)));
            let (tx, changes) = tokio::sync::mpsc::channel(4);
            shared.changes.insert(client.name.clone(), tx);
            tasks.push((client, report, changes));
        }
        self.sim.client(enterprise.clients_ip, async move {
            let handles: Vec<_> = tasks
                .into_iter()
                .map(|(client, report, changes)| {
                    let (net, env) = (net.clone(), env.clone());
                    tokio::task::spawn_local(run_client_watching(net, client, env, report, changes))
                })
                .collect();
            for handle in handles {
                handle.await??;
            }
            Ok(())
        });
    }

    /// An enterprise's SOCKS5 server, on a host of its own.
    fn host_socks(&mut self, socks: &SocksSpec) -> Rc<RefCell<Socks5Stats>> {
        let stats = Rc::new(RefCell::new(Socks5Stats::default()));
        let shared = stats.clone();
        let inner = Impaired::new(SimNet, self.impairments.clone());
        let (socks, inner) = (socks.clone(), self.tap.wrap(inner, socks.ip));
        self.sim.host(socks.ip, move || {
            let (socks, stats, inner) = (socks.clone(), shared.clone(), inner.clone());
            async move {
                let (ip, port, policy) = (socks.ip, socks.port, socks.policy);
                let udp_ports = socks.udp_ports;
                run_socks5_ranged(inner.clone(), inner, ip, port, policy, udp_ports, stats).await?;
                Ok(())
            }
        });
        stats
    }

    /// An enterprise's HTTP proxy, on a host of its own. Like the SOCKS5 server it is the
    /// host the firewall lets out: the enterprise's policy is what its clients see.
    fn host_http_proxy(&mut self, proxy: &HttpProxySpec) -> Rc<RefCell<HttpProxyStats>> {
        let stats = Rc::new(RefCell::new(HttpProxyStats::default()));
        let shared = stats.clone();
        let inner = Impaired::new(SimNet, self.impairments.clone());
        let net = self.tap.wrap(inner, proxy.ip);
        let proxy = proxy.clone();
        self.sim.host(proxy.ip, move || {
            let (net, stats) = (net.clone(), shared.clone());
            let (port, credentials) = (proxy.port, proxy.credentials.clone());
            async move {
                run_http_proxy(net.clone(), net, port, credentials, stats).await?;
                Ok(())
            }
        });
        stats
    }

    /// The attacker behind the first enterprise's firewall, when the spec asks for one.
    fn host_attacker(&mut self) -> Rc<RefCell<AttackReport>> {
        let attack = Rc::new(RefCell::new(AttackReport::default()));
        let (true, Some(first)) = (self.spec.attacker, self.spec.enterprises.first()) else {
            return attack;
        };
        let policy = Rc::new(first.policy.clone());
        let net = Firewalled::new(self.net.clone(), policy, Rc::default());
        let net = self.tap.wrap(net, ip(ATTACKER_IP));
        let report = attack.clone();
        let wait = self.spec.ticket_lifetime + Duration::from_secs(1);
        self.sim.client(ip(ATTACKER_IP), async move {
            // Let the legitimate clients settle first.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let ap = SocketAddr::new(ip(AP_IPS[0]), AP_PORTS[0]);
            let relay = SocketAddr::new(ip(RELAY_IPS[0]), RELAY_TCP_PORT);
            run_attacker(net, ap, relay, edge_endpoints().signalling, wait, report).await?;
            Ok(())
        });
        attack
    }

    /// Hosts that never talk to each other are partitioned too, so that nothing but the
    /// firewall's rules and these partitions decides what can reach what.
    fn partition_unrelated(&mut self) {
        let enterprises: Vec<IpAddr> = self.spec.enterprises.iter().map(|e| e.clients_ip).collect();
        let cloud: Vec<IpAddr> = seed::ap_ips()
            .into_iter()
            .chain(seed::relay_ips())
            .collect();
        for group in [&enterprises, &cloud] {
            for (i, a) in group.iter().enumerate() {
                for b in &group[i + 1..] {
                    self.sim.partition(*a, *b);
                }
            }
        }
        for ap in seed::ap_ips() {
            self.sim.partition(ap, ip(EDGE_IP));
        }
    }

    /// Steps the simulation to its end, applying the faults when due. A fault that does
    /// nothing when due, or is due after the end, is recorded with the reason.
    fn run(&mut self, enterprises: &Enterprises, outcome: &mut WorldOutcome) {
        let hosts = self.fault_hosts();
        let mut faults: Vec<(Duration, Fault)> = self.spec.faults.clone();
        faults.sort_by_key(|(at, _)| *at);
        let mut faults = faults.into_iter().peekable();
        loop {
            while let Some((at, fault)) = faults.next_if(|(at, _)| *at <= self.sim.elapsed()) {
                let targets = Targets {
                    hosts: &hosts,
                    reports: &enterprises.reports,
                    dns: &self.dns,
                    impairments: &self.impairments,
                    switches: &enterprises.switches,
                    changes: &enterprises.changes,
                };
                let effect = fault_schedule::apply(&mut self.sim, &fault, &targets);
                let now = Instant::from_micros(self.sim.elapsed().as_micros() as u64);
                let (applied, what) = match &effect {
                    Ok(what) => (true, what),
                    Err(why) => (false, why),
                };
                let line = TraceEvent::Fault {
                    fault: fault.to_string(),
                    applied,
                    effect: what.to_string(),
                };
                self.trace.record(now, "world", &line);
                match effect {
                    Ok(_) => outcome.faults_applied.push((at, fault)),
                    Err(why) => outcome.faults_without_effect.push((at, fault, why)),
                }
            }
            match self.sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    outcome.error = Some(e.to_string());
                    break;
                }
            }
        }
        let end = self.sim.elapsed();
        for (at, fault) in faults {
            let why = format!(
                "due at {:.3} s, after the run ended at {:.3} s",
                at.as_secs_f64(),
                end.as_secs_f64()
            );
            outcome.faults_without_effect.push((at, fault, why));
        }
    }

    /// The hosts a fault may name: the servers (access points, relays, the edge, the SOCKS5
    /// servers) and the clients' hosts (the attacker's included).
    fn fault_hosts(&self) -> Hosts {
        let mut hosts = Hosts::default();
        hosts
            .servers
            .extend(seed::ap_ips().into_iter().chain(seed::relay_ips()));
        hosts.servers.insert(ip(EDGE_IP));
        for enterprise in &self.spec.enterprises {
            hosts.clients.insert(enterprise.clients_ip);
            hosts
                .servers
                .extend(enterprise.socks.as_ref().map(|s| s.ip));
            hosts
                .servers
                .extend(enterprise.http_proxy.as_ref().map(|p| p.ip));
        }
        if self.spec.attacker && !self.spec.enterprises.is_empty() {
            hosts.clients.insert(ip(ATTACKER_IP));
        }
        hosts
    }
}
