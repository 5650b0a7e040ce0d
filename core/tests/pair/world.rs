//! A deterministic in-memory world for the pair tests: SDK clients, the access point, relays,
//! an SD-RTN edge, an enterprise SOCKS5 server, DNS and a firewall, all stepped on one virtual
//! clock to the earliest deadline (quinn's `Pair::drive`, grown to a small network).
//!
//! Every hop takes [`World::latency`]. Deliveries are ordered by (time, sequence number), so a
//! run is a pure function of its set-up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use cloudproxy_core::ap::{AccessPoint, ApConn, ApEvent, ApInput, ApOutput};
use cloudproxy_core::client::{ClientEvent, ClientInput, ClientOutput, ConnId, ProxyClient};
use cloudproxy_core::relay::{AllocId, ClientConn, Relay, RelayInput, RelayOutput, UpstreamConn};
use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameReader, SdRtnEndpoints};
use cloudproxy_core::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, Command, ReplyCode, ServerHandshake,
    ServerPolicy, ServerProgress,
};
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{AP_PORTS, AP_TLS_PORT, RELAY_TCP_PORT, RELAY_TLS_PORT};

mod controls;
mod http_proxy;

pub use http_proxy::HttpProxy;

/// Transport protocol, for firewall rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

/// The enterprise firewall in front of the clients: default deny, stateful for replies.
#[derive(Clone, Debug, Default)]
pub struct Firewall {
    /// `None`: no firewall at all.
    pub rules: Option<Vec<(Proto, IpAddr, RangeInclusive<u16>)>>,
    /// Denied TCP is refused at once (true) or dropped silently (false).
    pub reject: bool,
}

impl Firewall {
    pub fn open() -> Self {
        Firewall::default()
    }

    /// The seed's whitelist.
    pub fn seed() -> Self {
        let mut rules = Vec::new();
        for relay in ["120.92.118.34", "120.92.18.162"] {
            let ip: IpAddr = relay.parse().unwrap();
            rules.push((Proto::Tcp, ip, 4000..=4000));
            rules.push((Proto::Udp, ip, 4500..=4650));
        }
        for ap in AP_IPS {
            let ip: IpAddr = ap.parse().unwrap();
            for port in AP_PORTS {
                rules.push((Proto::Tcp, ip, port..=port));
                rules.push((Proto::Udp, ip, port..=port));
            }
        }
        Firewall {
            rules: Some(rules),
            reject: false,
        }
    }

    /// The seed's whitelist without its UDP rules.
    pub fn seed_tcp_only() -> Self {
        let mut fw = Firewall::seed();
        fw.rules.as_mut().unwrap().retain(|r| r.0 == Proto::Tcp);
        fw
    }

    /// Only TCP to one host, on every port (the enterprise HTTP proxy): no UDP at all.
    pub fn only_tcp(ip: IpAddr) -> Self {
        Firewall {
            rules: Some(vec![(Proto::Tcp, ip, 0..=65535)]),
            reject: true,
        }
    }

    /// A bank's: only TCP 443 to the access points and the relays, silently dropping the rest.
    pub fn tcp_443_only() -> Self {
        let rules = AP_IPS
            .iter()
            .chain(RELAY_IPS.iter())
            .map(|a| (Proto::Tcp, a.parse().unwrap(), 443..=443))
            .collect();
        Firewall {
            rules: Some(rules),
            reject: false,
        }
    }

    /// Only one host may be reached, on every port (the enterprise SOCKS5 server).
    pub fn only(ip: IpAddr) -> Self {
        Firewall {
            rules: Some(vec![
                (Proto::Tcp, ip, 0..=65535),
                (Proto::Udp, ip, 0..=65535),
            ]),
            reject: true,
        }
    }

    fn allows(&self, proto: Proto, to: SocketAddr) -> bool {
        match &self.rules {
            None => true,
            Some(rules) => rules
                .iter()
                .any(|(p, ip, ports)| *p == proto && *ip == to.ip() && ports.contains(&to.port())),
        }
    }
}

pub const AP_IPS: [&str; 4] = [
    "47.74.211.17",
    "52.80.192.229",
    "52.52.84.170",
    "47.96.234.219",
];
pub const RELAY_IPS: [&str; 2] = ["120.92.118.34", "120.92.18.162"];
pub const EDGE_IP: &str = "101.36.1.10";
pub const SOCKS_IP: &str = "10.1.0.2";
pub const CLIENT_IP_BASE: [u8; 3] = [10, 1, 0];

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn edge_endpoints() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: SocketAddr::new(ip(EDGE_IP), 5000),
        media_udp: SocketAddr::new(ip(EDGE_IP), 5001),
        media_tcp: SocketAddr::new(ip(EDGE_IP), 5002),
    }
}

/// One end of a simulated TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Client(usize, u64),
    RelayIn(usize, u64),
    RelayUp(usize, u64),
    Ap(u64),
    Edge(u64),
    SocksIn(u64),
    SocksUp(u64),
    HttpIn(u64),
    HttpUp(u64),
    Raw(u64),
}

#[derive(Debug)]
enum Delivery {
    Syn {
        from: End,
        from_addr: SocketAddr,
        to: SocketAddr,
    },
    Connected {
        to: End,
    },
    Failed {
        to: End,
    },
    Data {
        to: End,
        data: Vec<u8>,
    },
    Closed {
        to: End,
    },
    Udp {
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
    },
    Resolved {
        client: usize,
        name: String,
    },
}

/// An SDK client node and what it has seen.
pub struct ClientNode {
    pub machine: ProxyClient,
    pub ip: IpAddr,
    pub udp_port: u16,
    pub events: Vec<(Instant, ClientEvent)>,
    pub signalling_received: Vec<u8>,
    pub media_received: usize,
    /// Datagrams the client sent.
    pub udp_sent: usize,
    /// Every TCP destination the client connected to.
    pub tcp_destinations: BTreeSet<SocketAddr>,
    /// The last datagram the client sent to each destination (to replay it).
    pub last_udp_to: BTreeMap<SocketAddr, (SocketAddr, Vec<u8>)>,
}

/// A relay host: the machine plus its sockets.
pub struct RelayNode {
    pub machine: Relay,
    pub ip: IpAddr,
    pub alive: bool,
    alloc_ports: BTreeMap<u64, u16>,
}

#[derive(Default)]
struct EdgeConn {
    media: Option<MediaFrameReader>,
}

#[derive(Default)]
struct SocksConn {
    handshake: Option<ServerHandshake>,
    upstream: Option<u64>,
    udp_port: Option<u16>,
}

/// The world.
pub struct World {
    pub now: Instant,
    pub latency: Duration,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    next_id: u64,
    pub clients: Vec<ClientNode>,
    /// One access point machine behind every AP address and port.
    pub ap: Option<AccessPoint>,
    pub ap_ips: Vec<IpAddr>,
    /// AP addresses that are down (their packets vanish).
    pub dead_ap_ips: BTreeSet<IpAddr>,
    /// What the access point reported, in order.
    pub ap_events: Vec<(Instant, ApEvent)>,
    pub relays: Vec<RelayNode>,
    pub edge: SdRtnEndpoints,
    edge_conns: BTreeMap<u64, EdgeConn>,
    /// Signalling bytes the edge received, all connections together.
    pub edge_signalling_bytes: usize,
    /// Media datagrams the edge received.
    pub edge_media_packets: usize,
    /// Every destination the relays opened or sent to upstream.
    pub upstream_destinations: BTreeSet<SocketAddr>,
    pub socks: Option<(SocketAddr, ServerPolicy)>,
    socks_conns: BTreeMap<u64, SocksConn>,
    socks_udp: BTreeMap<u16, (u64, Option<SocketAddr>)>,
    pub dns: BTreeMap<String, Vec<IpAddr>>,
    pub dns_blocked: bool,
    pub firewall: Firewall,
    flows: BTreeSet<(SocketAddr, SocketAddr)>,
    peers: BTreeMap<End, End>,
    /// Bytes received by raw (attacker) connections, by id.
    pub raw_received: BTreeMap<u64, Vec<u8>>,
    pub raw_closed: BTreeSet<u64>,
    /// Hosts that are down without a trace: their SYNs and datagrams vanish (no refusal), as
    /// turmoil's crashed hosts.
    pub blackholed: BTreeSet<IpAddr>,
    /// The enterprise HTTP proxy (type 3), if any.
    pub http_proxy: Option<HttpProxy>,
}

impl World {
    pub fn new(ap: Option<AccessPoint>, relays: Vec<Relay>, firewall: Firewall) -> Self {
        let relays = relays
            .into_iter()
            .zip(RELAY_IPS)
            .map(|(machine, ip_text)| RelayNode {
                machine,
                ip: ip(ip_text),
                alive: true,
                alloc_ports: BTreeMap::new(),
            })
            .collect();
        let mut dns = BTreeMap::new();
        dns.insert(
            "ap-proxy.agora.io".to_owned(),
            AP_IPS.iter().map(|a| ip(a)).collect(),
        );
        World {
            now: Instant::from_millis(1_000),
            latency: Duration::from_millis(10),
            queue: BTreeMap::new(),
            seq: 0,
            next_id: 1,
            clients: Vec::new(),
            ap,
            ap_ips: AP_IPS.iter().map(|a| ip(a)).collect(),
            dead_ap_ips: BTreeSet::new(),
            ap_events: Vec::new(),
            relays,
            edge: edge_endpoints(),
            edge_conns: BTreeMap::new(),
            edge_signalling_bytes: 0,
            edge_media_packets: 0,
            upstream_destinations: BTreeSet::new(),
            socks: None,
            socks_conns: BTreeMap::new(),
            socks_udp: BTreeMap::new(),
            dns,
            dns_blocked: false,
            firewall,
            flows: BTreeSet::new(),
            peers: BTreeMap::new(),
            raw_received: BTreeMap::new(),
            raw_closed: BTreeSet::new(),
            blackholed: BTreeSet::new(),
            http_proxy: None,
        }
    }

    /// Adds a client on the enterprise network; returns its index.
    pub fn add_client(&mut self, machine: ProxyClient, host: u8) -> usize {
        self.clients.push(ClientNode {
            machine,
            ip: IpAddr::from([
                CLIENT_IP_BASE[0],
                CLIENT_IP_BASE[1],
                CLIENT_IP_BASE[2],
                host,
            ]),
            udp_port: 40_000 + self.clients.len() as u16,
            events: Vec::new(),
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

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, delay: Duration, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), delivery);
    }

    fn send(&mut self, delivery: Delivery) {
        self.schedule(self.latency, delivery);
    }

    fn is_client_ip(&self, addr: IpAddr) -> bool {
        self.clients.iter().any(|c| c.ip == addr) || addr == ip("10.1.0.250")
    }

    // --- Stepping ---------------------------------------------------------------------------

    /// Runs until `until`, processing deliveries and timers in order.
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..2_000_000 {
            let next_delivery = self.queue.keys().next().map(|k| k.0);
            let next_timer = self.next_timer();
            let next = match (next_delivery, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => until + Duration::from_micros(1),
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            if next_delivery.is_some_and(|d| d <= self.now) {
                let key = *self.queue.keys().next().unwrap();
                let delivery = self.queue.remove(&key).unwrap();
                self.deliver(delivery);
            } else {
                self.fire_timers();
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
        panic!("the world did not settle: too many steps before {until}; now {}, queue {pending:?}, client timers {timers:?}", self.now);
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
        for i in 0..self.clients.len() {
            if self.clients[i]
                .machine
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                let now = self.now;
                self.clients[i].machine.handle_timeout(now);
                self.drain_client(i);
            }
        }
        for r in 0..self.relays.len() {
            if self.relays[r].alive
                && self.relays[r]
                    .machine
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
            {
                let now = self.now;
                self.relays[r].machine.handle_timeout(now);
                self.drain_relay(r);
            }
        }
        if let Some(ap) = self.ap.as_mut() {
            if ap.poll_timeout().is_some_and(|t| t <= self.now) {
                ap.handle_timeout(self.now);
                self.drain_ap();
            }
        }
    }

    // --- Deliveries -------------------------------------------------------------------------

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Syn {
                from,
                from_addr,
                to,
            } => self.accept(from, from_addr, to),
            Delivery::Connected { to } => self.on_end(to, EndEvent::Connected),
            Delivery::Failed { to } => self.on_end(to, EndEvent::Failed),
            Delivery::Data { to, data } => self.on_end(to, EndEvent::Data(data)),
            Delivery::Closed { to } => {
                self.peers.remove(&to);
                self.on_end(to, EndEvent::Closed)
            }
            Delivery::Udp { from, to, data } => self.udp_arrives(from, to, data),
            Delivery::Resolved { client, name } => {
                let now = self.now;
                let answer = if self.dns_blocked {
                    None
                } else {
                    self.dns.get(&name).cloned()
                };
                let node = &mut self.clients[client];
                match answer {
                    Some(addrs) => node.machine.handle_input(
                        ClientInput::Resolved {
                            name: &name,
                            addrs: &addrs,
                        },
                        now,
                    ),
                    None => node.machine.handle_input(
                        ClientInput::ResolveFailed {
                            name: &name,
                            reason: "the enterprise resolver refused the name",
                        },
                        now,
                    ),
                }
                self.drain_client(client);
            }
        }
    }

    fn accept(&mut self, from: End, from_addr: SocketAddr, to: SocketAddr) {
        let now = self.now;
        let listener = if self.ap.is_some()
            && self.ap_ips.contains(&to.ip())
            && !self.dead_ap_ips.contains(&to.ip())
            && (AP_PORTS.contains(&to.port()) || to.port() == AP_TLS_PORT)
        {
            let id = self.id();
            let conn = ApConn(id);
            let peer = from_addr;
            self.ap_input(ApInput::TcpAccepted { conn, peer });
            Some(End::Ap(id))
        } else if let Some(r) = self.relays.iter().position(|r| {
            r.ip == to.ip()
                && r.alive
                && (to.port() == RELAY_TCP_PORT || to.port() == RELAY_TLS_PORT)
        }) {
            let id = self.id();
            self.relays[r].machine.handle_input(
                RelayInput::TcpAccepted {
                    conn: ClientConn(id),
                    peer: from_addr,
                },
                now,
            );
            Some(End::RelayIn(r, id))
        } else if to == self.edge.signalling || to == self.edge.media_tcp {
            let id = self.id();
            let media = (to == self.edge.media_tcp).then(MediaFrameReader::default);
            self.edge_conns.insert(id, EdgeConn { media });
            Some(End::Edge(id))
        } else if self.socks.as_ref().is_some_and(|(addr, _)| *addr == to) {
            let id = self.id();
            let policy = self.socks.as_ref().unwrap().1.clone();
            self.socks_conns.insert(
                id,
                SocksConn {
                    handshake: Some(ServerHandshake::new(policy)),
                    ..Default::default()
                },
            );
            Some(End::SocksIn(id))
        } else if self.http_proxy.as_ref().is_some_and(|p| p.addr == to) {
            let id = self.id();
            self.http_proxy.as_mut().unwrap().accept(id);
            Some(End::HttpIn(id))
        } else {
            None
        };
        match listener {
            Some(end) => {
                self.peers.insert(from, end);
                self.peers.insert(end, from);
                self.send(Delivery::Connected { to: from });
                match end {
                    End::RelayIn(r, _) => self.drain_relay(r),
                    End::Ap(_) => self.drain_ap(),
                    _ => {}
                }
            }
            None => self.send(Delivery::Failed { to: from }),
        }
    }

    /// Opens a TCP connection from `from` (an end not yet connected) to `to`.
    fn connect(&mut self, from: End, from_ip: IpAddr, to: SocketAddr) {
        if self.blackholed.contains(&to.ip()) {
            return; // the SYN vanishes
        }
        if self.is_client_ip(from_ip) && !self.firewall.allows(Proto::Tcp, to) {
            if self.firewall.reject {
                self.send(Delivery::Failed { to: from });
            }
            return;
        }
        let from_addr = SocketAddr::new(from_ip, 30_000 + (self.seq % 20_000) as u16);
        self.send(Delivery::Syn {
            from,
            from_addr,
            to,
        });
    }

    fn tcp_send(&mut self, from: End, data: Vec<u8>) {
        if let Some(peer) = self.peers.get(&from).copied() {
            self.send(Delivery::Data { to: peer, data });
        }
    }

    fn tcp_close(&mut self, from: End) {
        if let Some(peer) = self.peers.remove(&from) {
            self.peers.remove(&peer);
            self.send(Delivery::Closed { to: peer });
        }
    }

    fn udp_send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        if self.blackholed.contains(&to.ip()) {
            return;
        }
        if self.is_client_ip(from.ip()) {
            if !self.firewall.allows(Proto::Udp, to) {
                return;
            }
            self.flows.insert((from, to));
        }
        self.send(Delivery::Udp { from, to, data });
    }

    fn udp_arrives(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let now = self.now;
        if let Some(c) = self
            .clients
            .iter()
            .position(|c| SocketAddr::new(c.ip, c.udp_port) == to)
        {
            if self.firewall.rules.is_some() && !self.flows.contains(&(to, from)) {
                return; // unsolicited: the stateful firewall drops it
            }
            self.clients[c]
                .machine
                .handle_input(ClientInput::UdpData { from, data: &data }, now);
            self.drain_client(c);
        } else if self.ap.is_some()
            && self.ap_ips.contains(&to.ip())
            && AP_PORTS.contains(&to.port())
        {
            if self.dead_ap_ips.contains(&to.ip()) {
                return;
            }
            let (local, data) = (to, &data);
            self.ap_input(ApInput::Datagram { local, from, data });
            self.drain_ap();
        } else if let Some(r) = self.relays.iter().position(|r| r.ip == to.ip() && r.alive) {
            let alloc = self.relays[r]
                .alloc_ports
                .iter()
                .find(|(_, p)| **p == to.port())
                .map(|(a, _)| *a);
            let input = match alloc {
                Some(alloc) => RelayInput::UdpFromUpstream {
                    alloc: AllocId(alloc),
                    from,
                    data: &data,
                },
                None => RelayInput::UdpFromClient {
                    local_port: to.port(),
                    from,
                    data: &data,
                },
            };
            self.relays[r].machine.handle_input(input, now);
            self.drain_relay(r);
        } else if to == self.edge.media_udp {
            self.edge_media_packets += 1;
            self.udp_send(to, from, data); // the edge answers media: echo
        } else if let Some(port) = self
            .socks
            .as_ref()
            .filter(|(a, _)| a.ip() == to.ip())
            .map(|_| to.port())
        {
            self.socks_udp_arrives(port, from, data);
        }
    }

    fn socks_udp_arrives(&mut self, port: u16, from: SocketAddr, data: Vec<u8>) {
        let Some((_, client)) = self.socks_udp.get(&port).copied() else {
            return;
        };
        let socks_ip = self.socks.as_ref().unwrap().0.ip();
        let local = SocketAddr::new(socks_ip, port);
        if self.is_client_ip(from.ip()) {
            // From the client: strip the header and forward.
            if let Ok((Address::Ip(dst), payload)) = decode_udp_datagram(&data) {
                self.socks_udp.get_mut(&port).unwrap().1 = Some(from);
                self.udp_send(local, dst, payload.to_vec());
            }
        } else if let Some(client) = client {
            let mut out = Vec::new();
            encode_udp_datagram(&Address::Ip(from), &data, &mut out);
            self.udp_send(local, client, out);
        }
    }

    // --- Per-end handling -------------------------------------------------------------------

    fn on_end(&mut self, end: End, event: EndEvent) {
        let now = self.now;
        match end {
            End::Client(c, conn) => {
                let conn = ConnId(conn);
                let input = match &event {
                    EndEvent::Connected => ClientInput::TcpConnected { conn },
                    EndEvent::Failed => ClientInput::TcpFailed {
                        conn,
                        reason: "connection refused",
                    },
                    EndEvent::Data(data) => ClientInput::TcpData { conn, data },
                    EndEvent::Closed => ClientInput::TcpClosed { conn },
                };
                self.clients[c].machine.handle_input(input, now);
                self.drain_client(c);
            }
            End::RelayIn(r, conn) | End::RelayUp(r, conn) if !self.relays[r].alive => {
                let _ = conn;
                self.tcp_close(end);
            }
            End::RelayIn(r, conn) => {
                let conn = ClientConn(conn);
                let input = match &event {
                    EndEvent::Data(data) => RelayInput::TcpData { conn, data },
                    EndEvent::Closed => RelayInput::TcpClosed { conn },
                    _ => return,
                };
                self.relays[r].machine.handle_input(input, now);
                self.drain_relay(r);
            }
            End::RelayUp(r, conn) => {
                let conn = UpstreamConn(conn);
                let input = match &event {
                    EndEvent::Connected => RelayInput::UpstreamConnected { conn },
                    EndEvent::Failed => RelayInput::UpstreamFailed { conn },
                    EndEvent::Data(data) => RelayInput::UpstreamData { conn, data },
                    EndEvent::Closed => RelayInput::UpstreamClosed { conn },
                };
                self.relays[r].machine.handle_input(input, now);
                self.drain_relay(r);
            }
            End::Ap(id) => {
                let conn = ApConn(id);
                match &event {
                    EndEvent::Data(data) => self.ap_input(ApInput::TcpData { conn, data }),
                    EndEvent::Closed => self.ap_input(ApInput::TcpClosed { conn }),
                    _ => return,
                }
                self.drain_ap();
            }
            End::Edge(id) => {
                if let EndEvent::Data(data) = event {
                    let conn = self.edge_conns.get_mut(&id).unwrap();
                    match &mut conn.media {
                        None => {
                            self.edge_signalling_bytes += data.len();
                            self.tcp_send(end, data); // the edge acknowledges by echoing
                        }
                        Some(reader) => {
                            reader.push(&data);
                            let mut echoes = Vec::new();
                            while let Ok(Some(datagram)) = reader.pop() {
                                let mut frame = Vec::new();
                                encode_media_frame(&datagram, &mut frame).unwrap();
                                echoes.push(frame);
                            }
                            self.edge_media_packets += echoes.len();
                            for frame in echoes {
                                self.tcp_send(end, frame);
                            }
                        }
                    }
                }
            }
            End::SocksIn(id) => self.socks_in(id, event),
            End::HttpIn(id) => self.http_in(id, event),
            End::HttpUp(id) => self.http_up(id, event),
            End::SocksUp(id) => {
                let client_end = End::SocksIn(id);
                match event {
                    EndEvent::Connected => {
                        let conn = self.socks_conns.get_mut(&id).unwrap();
                        let reply = conn
                            .handshake
                            .as_mut()
                            .unwrap()
                            .reply(ReplyCode::Succeeded, Address::unspecified())
                            .unwrap();
                        self.tcp_send(client_end, reply);
                    }
                    EndEvent::Failed => {
                        let conn = self.socks_conns.get_mut(&id).unwrap();
                        let reply = conn
                            .handshake
                            .as_mut()
                            .unwrap()
                            .reply(ReplyCode::ConnectionRefused, Address::unspecified())
                            .unwrap();
                        self.tcp_send(client_end, reply);
                        self.tcp_close(client_end);
                    }
                    EndEvent::Data(data) => self.tcp_send(client_end, data),
                    EndEvent::Closed => self.tcp_close(client_end),
                }
            }
            End::Raw(id) => match event {
                EndEvent::Data(data) => self.raw_received.entry(id).or_default().extend(data),
                EndEvent::Closed | EndEvent::Failed => {
                    self.raw_closed.insert(id);
                }
                EndEvent::Connected => {}
            },
        }
    }

    fn socks_in(&mut self, id: u64, event: EndEvent) {
        let end = End::SocksIn(id);
        match event {
            EndEvent::Data(data) => {
                let conn = self.socks_conns.get_mut(&id).unwrap();
                if let Some(up) = conn.upstream {
                    self.tcp_send(End::SocksUp(up), data);
                    return;
                }
                let hs = conn.handshake.as_mut().unwrap();
                let progress = hs.handle_bytes(&data);
                let mut out = Vec::new();
                while let Some(bytes) = hs.poll_transmit() {
                    out.push(bytes);
                }
                for bytes in out {
                    self.tcp_send(end, bytes);
                }
                match progress {
                    Ok(ServerProgress::Request { request, .. }) => {
                        match (request.command, request.dst) {
                            (Command::Connect, Address::Ip(dst)) => {
                                self.socks_conns.get_mut(&id).unwrap().upstream = Some(id);
                                let socks_ip = self.socks.as_ref().unwrap().0.ip();
                                self.connect(End::SocksUp(id), socks_ip, dst);
                            }
                            (Command::UdpAssociate, _) => {
                                let port = 9_000 + (id % 1_000) as u16;
                                self.socks_udp.insert(port, (id, None));
                                self.socks_conns.get_mut(&id).unwrap().udp_port = Some(port);
                                let socks_ip = self.socks.as_ref().unwrap().0.ip();
                                let hs = self
                                    .socks_conns
                                    .get_mut(&id)
                                    .unwrap()
                                    .handshake
                                    .as_mut()
                                    .unwrap();
                                let reply = hs
                                    .reply(
                                        ReplyCode::Succeeded,
                                        Address::Ip(SocketAddr::new(socks_ip, port)),
                                    )
                                    .unwrap();
                                self.tcp_send(end, reply);
                            }
                            _ => self.tcp_close(end),
                        }
                    }
                    Ok(ServerProgress::Pending) => {}
                    Err(_) => self.tcp_close(end),
                }
            }
            EndEvent::Closed => {
                if let Some(conn) = self.socks_conns.remove(&id) {
                    if conn.upstream.is_some() {
                        self.tcp_close(End::SocksUp(id));
                    }
                    if let Some(port) = conn.udp_port {
                        self.socks_udp.remove(&port);
                    }
                }
            }
            _ => {}
        }
    }

    // --- Draining machine outputs -----------------------------------------------------------

    fn drain_client(&mut self, c: usize) {
        while let Some(out) = self.clients[c].machine.poll_output() {
            let client_ip = self.clients[c].ip;
            let udp = SocketAddr::new(client_ip, self.clients[c].udp_port);
            match out {
                ClientOutput::Resolve { name } => self.send(Delivery::Resolved { client: c, name }),
                ClientOutput::TcpConnect { conn, to } => {
                    self.clients[c].tcp_destinations.insert(to);
                    self.connect(End::Client(c, conn.0), client_ip, to)
                }
                ClientOutput::TcpSend { conn, data } => self.tcp_send(End::Client(c, conn.0), data),
                ClientOutput::TcpClose { conn } => self.tcp_close(End::Client(c, conn.0)),
                ClientOutput::UdpSend { to, data } => {
                    let node = &mut self.clients[c];
                    node.udp_sent += 1;
                    node.last_udp_to.insert(to, (udp, data.clone()));
                    self.udp_send(udp, to, data)
                }
                ClientOutput::Event(event) => {
                    let node = &mut self.clients[c];
                    match &event {
                        ClientEvent::SignallingReceived(bytes) => {
                            node.signalling_received.extend(bytes)
                        }
                        ClientEvent::MediaReceived { .. } => node.media_received += 1,
                        _ => {}
                    }
                    node.events.push((self.now, event));
                }
            }
        }
    }

    fn ap_input(&mut self, input: ApInput<'_>) {
        let now = self.now;
        self.ap.as_mut().unwrap().handle_input(input, now);
    }

    fn drain_ap(&mut self) {
        while let Some(out) = self.ap.as_mut().and_then(AccessPoint::poll_output) {
            match out {
                ApOutput::UdpSend { local, to, data } => self.udp_send(local, to, data),
                ApOutput::TcpSend { conn, data } => self.tcp_send(End::Ap(conn.0), data),
                ApOutput::TcpClose { conn } => self.tcp_close(End::Ap(conn.0)),
                ApOutput::Event(event) => self.ap_events.push((self.now, event)),
            }
        }
    }

    fn drain_relay(&mut self, r: usize) {
        while let Some(out) = self.relays[r].machine.poll_output() {
            let relay_ip = self.relays[r].ip;
            match out {
                RelayOutput::TcpSend { conn, data } => self.tcp_send(End::RelayIn(r, conn.0), data),
                RelayOutput::TcpClose { conn } => self.tcp_close(End::RelayIn(r, conn.0)),
                RelayOutput::UpstreamConnect { conn, to } => {
                    self.upstream_destinations.insert(to);
                    self.connect(End::RelayUp(r, conn.0), relay_ip, to)
                }
                RelayOutput::UpstreamSend { conn, data } => {
                    self.tcp_send(End::RelayUp(r, conn.0), data)
                }
                RelayOutput::UpstreamClose { conn } => self.tcp_close(End::RelayUp(r, conn.0)),
                RelayOutput::UdpToClient {
                    local_port,
                    to,
                    data,
                } => self.udp_send(SocketAddr::new(relay_ip, local_port), to, data),
                RelayOutput::UdpBind { alloc } => {
                    let port = 20_000 + (alloc.0 % 10_000) as u16;
                    self.relays[r].alloc_ports.insert(alloc.0, port);
                }
                RelayOutput::UdpToUpstream { alloc, to, data } => {
                    self.upstream_destinations.insert(to);
                    if let Some(port) = self.relays[r].alloc_ports.get(&alloc.0).copied() {
                        self.udp_send(SocketAddr::new(relay_ip, port), to, data);
                    }
                }
                RelayOutput::UdpRelease { alloc } => {
                    self.relays[r].alloc_ports.remove(&alloc.0);
                }
                RelayOutput::Event(_) => {}
            }
        }
    }
}

pub(crate) enum EndEvent {
    Connected,
    Failed,
    Data(Vec<u8>),
    Closed,
}
