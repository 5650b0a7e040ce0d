//! What a test does to the world beyond the seed: network changes (NAT rebinding, address
//! changes, a new firewall) and datagrams from anywhere on the enterprise network.

use std::net::{IpAddr, SocketAddr};

use cloudproxy_core::client::{ClientInput, NetworkChange};

use super::net::End;
use super::{World, CLIENT_IP_BASE};
use crate::policy::Policy;

impl World {
    /// Sends a datagram from any address on the enterprise network (an old NAT mapping, an
    /// attacker), through the firewall.
    pub fn raw_udp(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.udp_send(from, to, data);
    }

    /// A new firewall policy (a VPN came up, the administrator changed the rules): it starts
    /// with no state, so replies on earlier flows are judged by the new rules too.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
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
                change: NetworkChange::AddressChanged,
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
