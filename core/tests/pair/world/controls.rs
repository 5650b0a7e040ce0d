//! What a test does to the world: the application's calls, crashes, attackers, and (beyond the
//! seed) network changes: NAT rebinding, address changes, a new firewall.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::client::ClientInput;

use super::{ip, End, Firewall, World, CLIENT_IP_BASE};

impl World {
    // --- Scenario controls ------------------------------------------------------------------

    /// The app sends signalling bytes.
    pub fn send_signalling(&mut self, c: usize, data: &[u8]) {
        let now = self.now;
        self.clients[c]
            .machine
            .handle_input(ClientInput::SendSignalling { data }, now);
        self.drain_client(c);
    }

    /// The app sends one media datagram.
    pub fn send_media(&mut self, c: usize, payload: &[u8]) {
        let now = self.now;
        self.clients[c]
            .machine
            .handle_input(ClientInput::SendMedia { payload }, now);
        self.drain_client(c);
    }

    /// Sends `count` media datagrams, one every 20 ms (50 packets/s).
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

    /// An attacker on the enterprise network opens a raw TCP connection and writes `bytes`.
    pub fn raw_connect(&mut self, to: SocketAddr) -> u64 {
        let id = self.id();
        self.connect(End::Raw(id), ip("10.1.0.250"), to);
        id
    }

    /// Writes bytes on a raw connection.
    pub fn raw_send(&mut self, id: u64, data: Vec<u8>) {
        self.tcp_send(End::Raw(id), data);
    }

    /// Sends a datagram from any address on the enterprise network (an old NAT mapping, an
    /// attacker), through the firewall.
    pub fn raw_udp(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.udp_send(from, to, data);
    }

    /// A new firewall policy (a VPN came up, the administrator changed the rules): it starts
    /// with no state, so replies on earlier flows are judged by the new rules too.
    pub fn set_firewall(&mut self, firewall: Firewall) {
        self.firewall = firewall;
        self.flows.clear();
    }

    /// The client's NAT rebinds: its UDP traffic comes from a new port from now on. The client
    /// is not told (a NAT is invisible).
    pub fn rebind_client_port(&mut self, c: usize) -> (SocketAddr, SocketAddr) {
        let node = &mut self.clients[c];
        let old = SocketAddr::new(node.ip, node.udp_port);
        node.udp_port += 1_000;
        (old, SocketAddr::new(node.ip, node.udp_port))
    }

    /// The client moves to another address on the enterprise network (Wi-Fi to cellular, a
    /// VPN): its connections from the old address die, and its driver reports the change.
    pub fn change_client_ip(&mut self, c: usize, host: u8) {
        self.clients[c].ip = IpAddr::from([
            CLIENT_IP_BASE[0],
            CLIENT_IP_BASE[1],
            CLIENT_IP_BASE[2],
            host,
        ]);
        let ends: Vec<End> = self
            .peers
            .keys()
            .copied()
            .filter(|e| matches!(e, End::Client(i, _) if *i == c))
            .collect();
        let now = self.now;
        self.clients[c].machine.handle_input(
            ClientInput::NetworkChanged {
                change: cloudproxy_core::client::NetworkChange::AddressChanged,
            },
            now,
        );
        // Whatever the client did not close itself is reset by the move.
        for end in ends {
            self.tcp_close(end);
        }
        self.drain_client(c);
    }
}
