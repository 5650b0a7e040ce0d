//! Carrying out the machines' outputs in the pair world.

use std::net::SocketAddr;

use cloudproxy_core::ap::{AccessPoint, ApInput, ApOutput};
use cloudproxy_core::client::{ClientEvent, ClientOutput};
use cloudproxy_core::relay::RelayOutput;

use super::net::End;
use super::World;

impl World {
    /// Carries out every output of client `c`'s machine.
    pub(super) fn drain_client(&mut self, c: usize) {
        while let Some(out) = self.clients[c].machine.poll_output() {
            let client_ip = self.clients[c].ip;
            let udp = SocketAddr::new(client_ip, self.clients[c].udp_port);
            match out {
                Ok(ClientOutput::Resolve { name }) => self.resolve(c, name),
                Ok(ClientOutput::TcpConnect { conn, to }) => {
                    self.clients[c].tcp_destinations.insert(to);
                    self.connect(End::Client(c, conn.0), client_ip, to)
                }
                Ok(ClientOutput::TcpSend { conn, data }) => {
                    self.tcp_send(End::Client(c, conn.0), data)
                }
                Ok(ClientOutput::TcpClose { conn }) => self.tcp_close(End::Client(c, conn.0)),
                Ok(ClientOutput::UdpSend { to, data }) => {
                    let node = &mut self.clients[c];
                    node.udp_sent += 1;
                    node.last_udp_to.insert(to, (udp, data.clone()));
                    self.udp_send(udp, to, data)
                }
                Ok(ClientOutput::Event(event)) => {
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
                Err(event) => {
                    let node = &mut self.clients[c];
                    node.report.record(&event);
                    node.app_events.push((self.now, event));
                }
            }
        }
    }

    pub(super) fn ap_input(&mut self, input: ApInput<'_>) {
        let now = self.now;
        if let Some(ap) = self.ap.as_mut() {
            ap.handle_input(input, now);
        }
    }

    pub(super) fn drain_ap(&mut self) {
        while let Some(out) = self.ap.as_mut().and_then(AccessPoint::poll_output) {
            match out {
                ApOutput::UdpSend { local, to, data } => self.udp_send(local, to, data),
                ApOutput::TcpSend { conn, data } => self.tcp_send(End::Ap(conn.0), data),
                ApOutput::TcpClose { conn } => self.tcp_close(End::Ap(conn.0)),
                ApOutput::Event(event) => self.ap_events.push((self.now, event)),
            }
        }
    }

    pub(super) fn drain_relay(&mut self, r: usize) {
        while let Some(out) = self.relays[r].machine.poll_output() {
            let relay_ip = self.relays[r].ip;
            match out {
                RelayOutput::TcpSend { conn, data } => self.tcp_send(End::RelayIn(r, conn.0), data),
                RelayOutput::TcpClose { conn } => {
                    self.unsplice(r, conn.0);
                    self.tcp_close(End::RelayIn(r, conn.0))
                }
                RelayOutput::UpstreamConnect { conn, to } => {
                    self.upstream_destinations.insert(to);
                    self.connect(End::RelayUp(r, conn.0), relay_ip, to)
                }
                RelayOutput::UpstreamSend { conn, data } => {
                    self.tcp_send(End::RelayUp(r, conn.0), data)
                }
                RelayOutput::UpstreamClose { conn } => {
                    if let Some(client) = self.relays[r].spliced_up.get(&conn.0).copied() {
                        self.unsplice(r, client);
                    }
                    self.tcp_close(End::RelayUp(r, conn.0))
                }
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
                RelayOutput::Splice {
                    client, upstream, ..
                } => self.splice(r, client.0, upstream.0),
                RelayOutput::TcpHandoff { conn, .. } => {
                    panic!("one shard per relay here: {conn:?} handed off")
                }
                RelayOutput::Event(_) => {}
            }
        }
    }
}
