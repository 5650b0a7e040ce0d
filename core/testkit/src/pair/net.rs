//! The pair world's network: TCP connections between ends, datagrams between addresses, the
//! firewall in front of the clients, DNS, and the hand-off of each delivery to the machine
//! or model behind its end.

use std::net::{IpAddr, SocketAddr};

use cloudproxy_core::ap::{ApConn, ApInput};
use cloudproxy_core::client::{ClientInput, ConnId};
use cloudproxy_core::relay::{AllocId, ClientConn, RelayInput, UpstreamConn};
use cloudproxy_core::wire::{AP_PORTS, AP_TLS_PORT, RELAY_TCP_PORT, RELAY_TLS_PORT};

use super::World;
use crate::policy::{DnsPolicy, Proto, Verdict};
use crate::seed;

/// One end of a simulated TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum End {
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

/// Something on its way.
#[derive(Debug)]
pub(super) enum Delivery {
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

/// What happened on a TCP end.
pub(super) enum EndEvent {
    Connected,
    Failed,
    Data(Vec<u8>),
    Closed,
}

impl World {
    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, delivery: Delivery) {
        self.seq += 1;
        self.queue
            .insert((self.now + self.latency, self.seq), delivery);
    }

    pub(super) fn resolve(&mut self, client: usize, name: String) {
        self.schedule(Delivery::Resolved { client, name });
    }

    pub(super) fn is_client_ip(&self, addr: IpAddr) -> bool {
        self.clients.iter().any(|c| c.ip == addr) || addr == seed::ip(super::ATTACKER_IP)
    }

    pub(super) fn deliver(&mut self, delivery: Delivery) {
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
            Delivery::Resolved { client, name } => self.resolved(client, &name),
        }
    }

    /// The enterprise resolver answers (it refuses every name when the policy blocks DNS).
    fn resolved(&mut self, client: usize, name: &str) {
        let now = self.now;
        let answer = match self.policy.dns {
            DnsPolicy::Blocked => None,
            DnsPolicy::Public => self.dns.get(name).cloned(),
        };
        let input = match &answer {
            Some(addrs) => ClientInput::Resolved { name, addrs },
            None => ClientInput::ResolveFailed {
                name,
                reason: "the enterprise resolver refused the name",
            },
        };
        self.clients[client].machine.handle_input(input, now);
        self.drain_client(client);
    }

    /// A connection attempt reaches `to`: whoever listens there takes it.
    fn accept(&mut self, from: End, from_addr: SocketAddr, to: SocketAddr) {
        let now = self.now;
        let listener = if self.ap.is_some()
            && self.ap_ips.contains(&to.ip())
            && !self.dead_ap_ips.contains(&to.ip())
            && (AP_PORTS.contains(&to.port()) || to.port() == AP_TLS_PORT)
        {
            let id = self.id();
            let (conn, peer) = (ApConn(id), from_addr);
            self.ap_input(ApInput::TcpAccepted { conn, peer });
            Some(End::Ap(id))
        } else if let Some(r) = self.relays.iter().position(|r| {
            r.ip == to.ip()
                && r.alive
                && (to.port() == RELAY_TCP_PORT || to.port() == RELAY_TLS_PORT)
        }) {
            let id = self.id();
            let input = RelayInput::TcpAccepted {
                conn: ClientConn(id),
                peer: from_addr,
            };
            self.relays[r].machine.handle_input(input, now);
            Some(End::RelayIn(r, id))
        } else if to == self.edge.signalling || to == self.edge.media_tcp {
            let id = self.id();
            self.edge_accept(id, to == self.edge.media_tcp);
            Some(End::Edge(id))
        } else if self.socks.as_ref().is_some_and(|(addr, _)| *addr == to) {
            let id = self.id();
            self.socks_accept(id);
            Some(End::SocksIn(id))
        } else if self.http_proxy.as_ref().is_some_and(|p| p.addr == to) {
            let id = self.id();
            if let Some(proxy) = self.http_proxy.as_mut() {
                proxy.accept(id);
            }
            Some(End::HttpIn(id))
        } else {
            None
        };
        match listener {
            Some(end) => {
                self.peers.insert(from, end);
                self.peers.insert(end, from);
                self.schedule(Delivery::Connected { to: from });
                match end {
                    End::RelayIn(r, _) => self.drain_relay(r),
                    End::Ap(_) => self.drain_ap(),
                    _ => {}
                }
            }
            None => self.schedule(Delivery::Failed { to: from }),
        }
    }

    /// Opens a TCP connection from `from` (an end not yet connected) to `to`, through the
    /// firewall when it starts inside the enterprise.
    pub(super) fn connect(&mut self, from: End, from_ip: IpAddr, to: SocketAddr) {
        if self.blackholed.contains(&to.ip()) {
            return; // the SYN vanishes
        }
        if self.is_client_ip(from_ip) {
            match self.policy.verdict(Proto::Tcp, to) {
                Verdict::Pass => {}
                Verdict::Reject => return self.schedule(Delivery::Failed { to: from }),
                Verdict::Drop => return,
            }
        }
        let from_addr = SocketAddr::new(from_ip, 30_000 + (self.seq % 20_000) as u16);
        self.schedule(Delivery::Syn {
            from,
            from_addr,
            to,
        });
    }

    pub(super) fn tcp_send(&mut self, from: End, data: Vec<u8>) {
        if let Some(peer) = self.peers.get(&from).copied() {
            self.schedule(Delivery::Data { to: peer, data });
        }
    }

    pub(super) fn tcp_close(&mut self, from: End) {
        if let Some(peer) = self.peers.remove(&from) {
            self.peers.remove(&peer);
            self.schedule(Delivery::Closed { to: peer });
        }
    }

    /// Sends a datagram; one from inside the enterprise passes the firewall first and opens a
    /// flow for the replies.
    pub(super) fn udp_send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        if self.blackholed.contains(&to.ip()) {
            return;
        }
        if self.is_client_ip(from.ip()) {
            if self.policy.verdict(Proto::Udp, to) != Verdict::Pass {
                return;
            }
            self.flows.insert((from, to));
        }
        self.schedule(Delivery::Udp { from, to, data });
    }

    fn udp_arrives(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let now = self.now;
        if let Some(c) = self
            .clients
            .iter()
            .position(|c| SocketAddr::new(c.ip, c.udp_port) == to)
        {
            if self.policy.default != Verdict::Pass && !self.flows.contains(&(to, from)) {
                return; // unsolicited: the stateful firewall drops it
            }
            let input = ClientInput::UdpData { from, data: &data };
            self.clients[c].machine.handle_input(input, now);
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
            self.relay_udp(r, from, to, &data);
        } else if to == self.edge.media_udp {
            self.edge_udp(from, data);
        } else if self.socks.as_ref().is_some_and(|(a, _)| a.ip() == to.ip()) {
            self.socks_udp_arrives(to.port(), from, data);
        }
    }

    fn relay_udp(&mut self, r: usize, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let alloc = self.relays[r]
            .alloc_ports
            .iter()
            .find(|(_, p)| **p == to.port())
            .map(|(a, _)| *a);
        let input = match alloc {
            Some(alloc) => RelayInput::UdpFromUpstream {
                alloc: AllocId(alloc),
                from,
                data,
            },
            None => RelayInput::UdpFromClient {
                local_port: to.port(),
                from,
                data,
            },
        };
        let now = self.now;
        self.relays[r].machine.handle_input(input, now);
        self.drain_relay(r);
    }

    /// Hands what happened on a TCP end to whatever holds it.
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
            End::RelayIn(r, _) | End::RelayUp(r, _) if !self.relays[r].alive => {
                self.tcp_close(end);
            }
            End::RelayIn(r, id) if self.is_spliced_client(r, id) => {
                self.on_spliced_client(r, id, event)
            }
            End::RelayUp(r, id) if self.is_spliced_upstream(r, id) => {
                self.on_spliced_upstream(r, id, event)
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
            End::Edge(id) => self.edge_tcp(id, event),
            End::SocksIn(id) => self.socks_in(id, event),
            End::SocksUp(id) => self.socks_up(id, event),
            End::HttpIn(id) => self.http_in(id, event),
            End::HttpUp(id) => self.http_up(id, event),
            End::Raw(id) => match event {
                EndEvent::Data(data) => self.raw_received.entry(id).or_default().extend(data),
                EndEvent::Closed | EndEvent::Failed => {
                    self.raw_closed.insert(id);
                }
                EndEvent::Connected => {}
            },
        }
    }
}
