//! The pair world: a deterministic in-memory network for tests of the sans-IO machines. SDK
//! clients (bare proxy clients driven by the test, or whole applications with their script),
//! the access point, relays, an SD-RTN edge, an enterprise SOCKS5 server, DNS and a firewall
//! ([`Policy`]), all stepped on one virtual clock to the earliest deadline (quinn's
//! `Pair::drive`, grown to a small network).
//!
//! Every hop takes [`World::latency`]. Deliveries are ordered by (time, sequence number), so a
//! run is a pure function of its set-up; a world that does not settle panics with its pending
//! queue and its clients' timers.
//!
//! ```
//! use std::time::Duration;
//! use cloudproxy_core::client::ConnectionState;
//! use cloudproxy_testkit::pair::{client, cloud_domain, seed_world};
//! use cloudproxy_testkit::policy::Policy;
//!
//! let mut world = seed_world(Policy::seed());
//! let alice = world.add_client(client(Some(cloud_domain()), 1), 11);
//! world.run_for(Duration::from_secs(3));
//! assert_eq!(world.clients[alice].machine.state(), ConnectionState::Connected);
//! ```

mod controls;
mod drain;
mod edge;
mod http_proxy;
mod net;
mod setup;
mod socks;
mod splice;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::ap::{AccessPoint, ApEvent};
use cloudproxy_core::app::{App, AppConfig, AppEvent, AppOutput, ClientReport};
use cloudproxy_core::client::{
    ClientEvent, ClientInput, ClientOutput, ClientStats, ConnectionState, MediaPath, ProxyClient,
};
use cloudproxy_core::relay::Relay;
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_core::time::Instant;

use crate::policy::Policy;
use crate::seed;

pub use edge::EdgeMode;
pub use http_proxy::HttpProxy;
pub use setup::*;

use edge::EdgeState;
use net::{Delivery, End};
use socks::SocksState;

/// The client addresses are `CLIENT_IP_BASE.host`.
pub const CLIENT_IP_BASE: [u8; 3] = [10, 1, 0];
/// The enterprise's SOCKS5 server.
pub const SOCKS_IP: &str = "10.1.0.2";
/// The attacker's address, inside the enterprise (raw connections come from here).
pub const ATTACKER_IP: &str = "10.1.0.250";
/// Most deliveries and timer firings of one [`World::run_until`] before it gives up.
const MAX_STEPS: usize = 2_000_000;

/// The machine of a client node.
#[derive(Debug)]
pub enum Machine {
    /// A bare proxy client: the test sends its signalling and media.
    Client(Box<ProxyClient>),
    /// A whole application: its script, its ticks and its proxy client.
    App(Box<App>),
}

impl Machine {
    /// The proxy client, if there is one (an application has one only in a channel).
    pub fn client(&self) -> Option<&ProxyClient> {
        match self {
            Machine::Client(client) => Some(client.as_ref()),
            Machine::App(app) => app.client(),
        }
    }

    /// The proxy client's state (`Disconnected` for an application out of a channel).
    pub fn state(&self) -> ConnectionState {
        self.client()
            .map_or(ConnectionState::Disconnected, ProxyClient::state)
    }

    /// The proxy client's confirmed media path.
    pub fn media_path(&self) -> MediaPath {
        self.client()
            .map_or(MediaPath::None, ProxyClient::media_path)
    }

    /// The proxy client's counters (all zero for an application out of a channel).
    pub fn stats(&self) -> ClientStats {
        self.client()
            .map_or_else(ClientStats::default, |c| c.stats().clone())
    }

    /// The machine's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Client(client) => client.poll_timeout(),
            Machine::App(app) => app.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::Client(client) => client.handle_timeout(now),
            Machine::App(app) => app.handle_timeout(now),
        }
    }

    /// News from the network (an application refuses commands: a test sending signalling or
    /// media through an application node is a bug of the test).
    fn handle_input(&mut self, input: ClientInput<'_>, now: Instant) {
        match self {
            Machine::Client(client) => client.handle_input(input, now),
            Machine::App(app) => {
                if let Err(e) = app.handle_input(input, now) {
                    panic!("an application node sends its own traffic: {e}");
                }
            }
        }
    }

    /// The next network output or event.
    fn poll_output(&mut self) -> Option<Result<ClientOutput, AppEvent>> {
        match self {
            Machine::Client(client) => client.poll_output().map(Ok),
            Machine::App(app) => app.poll_output().map(AppOutput::into_client),
        }
    }
}

/// An SDK client node and what it has seen.
#[derive(Debug)]
pub struct ClientNode {
    /// Its machine.
    pub machine: Machine,
    /// Its address (behind the enterprise firewall).
    pub ip: IpAddr,
    /// Its one UDP socket's port.
    pub udp_port: u16,
    /// What a bare proxy client reported, in order.
    pub events: Vec<(Instant, ClientEvent)>,
    /// What an application reported, in order.
    pub app_events: Vec<(Instant, AppEvent)>,
    /// An application's report (the fold of `app_events`).
    pub report: ClientReport,
    /// Signalling bytes a bare proxy client received, in order.
    pub signalling_received: Vec<u8>,
    /// Media datagrams a bare proxy client received.
    pub media_received: usize,
    /// Datagrams the client sent.
    pub udp_sent: usize,
    /// Every TCP destination the client connected to.
    pub tcp_destinations: BTreeSet<SocketAddr>,
    /// The last datagram the client sent to each destination, with its source (to replay it).
    pub last_udp_to: BTreeMap<SocketAddr, (SocketAddr, Vec<u8>)>,
}

/// A relay host: the machine plus its sockets.
#[derive(Debug)]
pub struct RelayNode {
    /// The machine.
    pub machine: Relay,
    /// Its address.
    pub ip: IpAddr,
    /// Whether it is up (a crashed relay's packets vanish).
    pub alive: bool,
    alloc_ports: BTreeMap<u64, u16>,
    /// Spliced tunnels: client connection → upstream connection, and back (see `splice`).
    spliced: BTreeMap<u64, u64>,
    spliced_up: BTreeMap<u64, u64>,
}

/// The world.
#[derive(Debug)]
pub struct World {
    /// The virtual clock.
    pub now: Instant,
    /// The time every hop takes.
    pub latency: Duration,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    next_id: u64,
    /// The SDK clients, by index.
    pub clients: Vec<ClientNode>,
    /// One access point machine behind every AP address and port.
    pub ap: Option<AccessPoint>,
    /// The AP addresses.
    pub ap_ips: Vec<IpAddr>,
    /// AP addresses that are down (their packets vanish).
    pub dead_ap_ips: BTreeSet<IpAddr>,
    /// What the access point reported, in order.
    pub ap_events: Vec<(Instant, ApEvent)>,
    /// The relays, on the seed's relay addresses.
    pub relays: Vec<RelayNode>,
    /// The SD-RTN edge's addresses.
    pub edge: SdRtnEndpoints,
    /// How the edge answers.
    pub edge_mode: EdgeMode,
    edge_state: EdgeState,
    /// Signalling bytes the edge received, all connections together.
    pub edge_signalling_bytes: usize,
    /// Media datagrams the edge received.
    pub edge_media_packets: usize,
    /// Every destination the relays opened or sent to upstream.
    pub upstream_destinations: BTreeSet<SocketAddr>,
    /// The enterprise SOCKS5 server, if any, and what it accepts.
    pub socks: Option<(SocketAddr, ServerPolicy)>,
    socks_state: SocksState,
    /// Names the resolver knows.
    pub dns: BTreeMap<String, Vec<IpAddr>>,
    /// The enterprise firewall and resolver stance in front of the clients.
    pub policy: Policy,
    flows: BTreeSet<(SocketAddr, SocketAddr)>,
    peers: BTreeMap<End, End>,
    /// Bytes received by raw (attacker) connections, by id.
    pub raw_received: BTreeMap<u64, Vec<u8>>,
    /// Raw connections that were closed or refused.
    pub raw_closed: BTreeSet<u64>,
    /// Hosts that are down without a trace: their SYNs and datagrams vanish (no refusal), as
    /// turmoil's crashed hosts.
    pub blackholed: BTreeSet<IpAddr>,
    /// The enterprise HTTP proxy (type 3), if any.
    pub http_proxy: Option<HttpProxy>,
}

impl World {
    /// Unix time at the world's `now` (see [`start_clocks`]).
    pub fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        start_clocks().unix_at(self.now)
    }

    /// The seed's network with these machines behind `policy`: the access point on every AP
    /// address, the relays on the relay addresses (in order), the edge, and the AP's domain in
    /// DNS.
    pub fn new(ap: Option<AccessPoint>, relays: Vec<Relay>, policy: Policy) -> Self {
        let relays = relays
            .into_iter()
            .zip(seed::relay_ips())
            .map(|(machine, ip)| RelayNode {
                machine,
                ip,
                alive: true,
                alloc_ports: BTreeMap::new(),
                spliced: BTreeMap::new(),
                spliced_up: BTreeMap::new(),
            })
            .collect();
        let dns = BTreeMap::from([(seed::AP_DOMAIN.to_owned(), seed::ap_ips())]);
        World {
            now: START,
            latency: Duration::from_millis(10),
            queue: BTreeMap::new(),
            seq: 0,
            next_id: 1,
            clients: Vec::new(),
            ap,
            ap_ips: seed::ap_ips(),
            dead_ap_ips: BTreeSet::new(),
            ap_events: Vec::new(),
            relays,
            edge: seed::edge_endpoints(),
            edge_mode: EdgeMode::Echo,
            edge_state: EdgeState::default(),
            edge_signalling_bytes: 0,
            edge_media_packets: 0,
            upstream_destinations: BTreeSet::new(),
            socks: None,
            socks_state: SocksState::default(),
            dns,
            policy,
            flows: BTreeSet::new(),
            peers: BTreeMap::new(),
            raw_received: BTreeMap::new(),
            raw_closed: BTreeSet::new(),
            blackholed: BTreeSet::new(),
            http_proxy: None,
        }
    }

    /// Adds a bare proxy client on the enterprise network at `CLIENT_IP_BASE.host`; returns
    /// its index.
    pub fn add_client(&mut self, machine: ProxyClient, host: u8) -> usize {
        self.add(Machine::Client(Box::new(machine)), host)
    }

    /// Adds an application on the enterprise network at `CLIENT_IP_BASE.host`, starting its
    /// script now; returns its index. Applications want [`EdgeMode::Channel`].
    pub fn add_app(&mut self, config: AppConfig, host: u8) -> usize {
        let app = App::new(config, self.edge, self.now);
        self.add(Machine::App(Box::new(app)), host)
    }

    fn add(&mut self, machine: Machine, host: u8) -> usize {
        let [a, b, c] = CLIENT_IP_BASE;
        self.clients.push(ClientNode {
            machine,
            ip: IpAddr::from([a, b, c, host]),
            udp_port: 40_000 + self.clients.len() as u16,
            events: Vec::new(),
            app_events: Vec::new(),
            report: ClientReport::default(),
            signalling_received: Vec::new(),
            media_received: 0,
            udp_sent: 0,
            tcp_destinations: BTreeSet::new(),
            last_udp_to: BTreeMap::new(),
        });
        let index = self.clients.len() - 1;
        self.drain_client(index);
        index
    }

    // --- Stepping ---------------------------------------------------------------------------

    /// Runs until `until`, processing deliveries and timers in order.
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            let next_delivery = self.queue.keys().next().map(|k| k.0);
            let next = match (next_delivery, self.next_timer()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => until + Duration::from_micros(1),
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            match self.queue.first_entry() {
                Some(entry) if entry.key().0 <= self.now => {
                    let delivery = entry.remove();
                    self.deliver(delivery);
                }
                _ => self.fire_timers(),
            }
        }
        let pending: Vec<String> = self
            .queue
            .iter()
            .take(5)
            .map(|(k, d)| format!("{k:?} {d:?}"))
            .collect();
        let timers: Vec<String> = self
            .clients
            .iter()
            .map(|c| format!("{:?}", c.machine.poll_timeout()))
            .collect();
        panic!(
            "the world did not settle: too many steps before {until}; now {}, queue {pending:?}, client timers {timers:?}",
            self.now
        );
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn next_timer(&self) -> Option<Instant> {
        let clients = self.clients.iter().filter_map(|c| c.machine.poll_timeout());
        let relays = self
            .relays
            .iter()
            .filter(|r| r.alive)
            .filter_map(|r| r.machine.poll_timeout());
        let ap = self.ap.as_ref().and_then(AccessPoint::poll_timeout);
        clients.chain(relays).chain(ap).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for i in 0..self.clients.len() {
            let machine = &mut self.clients[i].machine;
            if machine.poll_timeout().is_some_and(|t| t <= now) {
                machine.handle_timeout(now);
                self.drain_client(i);
            }
        }
        for r in 0..self.relays.len() {
            let relay = &mut self.relays[r];
            if relay.alive && relay.machine.poll_timeout().is_some_and(|t| t <= now) {
                relay.machine.handle_timeout(now);
                self.drain_relay(r);
            }
        }
        if let Some(ap) = self.ap.as_mut() {
            if ap.poll_timeout().is_some_and(|t| t <= now) {
                ap.handle_timeout(now);
                self.drain_ap();
            }
        }
    }

    // --- Scenario controls ------------------------------------------------------------------

    /// A bare proxy client's application sends signalling bytes.
    pub fn send_signalling(&mut self, c: usize, data: &[u8]) {
        self.command(c, ClientInput::SendSignalling { data });
    }

    /// A bare proxy client's application sends one media datagram.
    pub fn send_media(&mut self, c: usize, payload: &[u8]) {
        self.command(c, ClientInput::SendMedia { payload });
    }

    fn command(&mut self, c: usize, input: ClientInput<'_>) {
        let now = self.now;
        self.clients[c].machine.handle_input(input, now);
        self.drain_client(c);
    }

    /// Sends `count` media datagrams from a bare proxy client, one every 20 ms (50 packets/s).
    pub fn talk(&mut self, c: usize, count: usize) {
        for i in 0..count {
            self.send_media(c, format!("media {i:05}").as_bytes());
            self.run_for(Duration::from_millis(20));
        }
    }

    /// The relay host crashes: every connection to it is reset, its packets vanish.
    pub fn crash_relay(&mut self, r: usize) {
        self.relays[r].alive = false;
        let ends: Vec<End> = self
            .peers
            .keys()
            .copied()
            .filter(|e| matches!(e, End::RelayIn(i, _) | End::RelayUp(i, _) if *i == r))
            .collect();
        for end in ends {
            self.tcp_close(end);
        }
    }

    /// An attacker on the enterprise network ([`ATTACKER_IP`]) opens a raw TCP connection;
    /// returns its id.
    pub fn raw_connect(&mut self, to: SocketAddr) -> u64 {
        let id = self.id();
        self.connect(End::Raw(id), seed::ip(ATTACKER_IP), to);
        id
    }

    /// Writes bytes on a raw connection.
    pub fn raw_send(&mut self, id: u64, data: Vec<u8>) {
        self.tcp_send(End::Raw(id), data);
    }
}
