//! Building blocks of the pair tests: the seed's world, clients, checks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, ClientEvent, ConnectionState, ProxyClient};
use cloudproxy_core::engine::{CloudProxyType, Engine};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::params::ProxyServer;
use cloudproxy_core::relay::{AccessPoint, ApConfig, Cidr, Relay, RelayConfig};
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_core::time::Instant;
use cloudproxy_core::wire::{RelayInfo, Ticket, TicketKey, RELAY_TCP_PORT, RELAY_UDP_PORTS};

use crate::world::*;

pub const APP_ID: &str = "pair-test-app";

pub fn key() -> TicketKey {
    TicketKey::from_bytes([7; 32])
}

pub fn relay_config(max_per_ip: usize) -> RelayConfig {
    RelayConfig {
        key: key(),
        sdrtn: vec![Cidr::new(ip("101.36.0.0"), 16).unwrap()],
        max_sessions_per_client_ip: max_per_ip,
        ..RelayConfig::default()
    }
}

pub fn ap_config(ticket_lifetime: Duration) -> ApConfig {
    ApConfig {
        key: key(),
        relays: RELAY_IPS
            .iter()
            .map(|a| RelayInfo {
                addr: ip(a),
                tcp_port: RELAY_TCP_PORT,
                udp_port: *RELAY_UDP_PORTS.start(),
            })
            .collect(),
        ticket_lifetime,
        ..ApConfig::default()
    }
}

fn build(firewall: Firewall, lifetime: Duration, max_per_ip: usize) -> World {
    let ap = AccessPoint::new(ap_config(lifetime), Entropy::from_u64(100));
    let relays = (0..2)
        .map(|i| Relay::new(relay_config(max_per_ip), Entropy::from_u64(200 + i)))
        .collect();
    World::new(Some(ap), relays, firewall)
}

/// The seed's world: four APs, two relays, one SD-RTN edge, `ap-proxy.agora.io` in DNS.
pub fn seed_world(firewall: Firewall) -> World {
    build(firewall, Duration::from_secs(3600), 16)
}

/// The seed's world with a given ticket lifetime.
pub fn seed_world_with(firewall: Firewall, lifetime: Duration) -> World {
    build(firewall, lifetime, 16)
}

/// The seed's world with a per-client-address session quota.
pub fn seed_world_quota(firewall: Firewall, max_per_ip: usize) -> World {
    build(firewall, Duration::from_secs(3600), max_per_ip)
}

pub fn cloud_domain() -> ProxyServer {
    ProxyServer::default_cloud()
}

pub fn cloud_ip_list() -> ProxyServer {
    ProxyServer::CloudIpList {
        ips: AP_IPS.iter().map(|a| ip(a)).collect(),
        port: 0,
    }
}

pub fn socks_addr() -> SocketAddr {
    SocketAddr::new(ip(SOCKS_IP), 1080)
}

pub fn socks5() -> ProxyServer {
    ProxyServer::Socks5(socks_addr())
}

pub fn socks_policy(udp: bool) -> ServerPolicy {
    ServerPolicy {
        udp_associate: udp,
        ..ServerPolicy::default()
    }
}

pub fn client(proxy: Option<ProxyServer>, seed: u64) -> ProxyClient {
    let config = ClientConfig::new(proxy, APP_ID, edge_endpoints());
    ProxyClient::new(config, Entropy::from_u64(seed), Instant::from_millis(1_000))
}

/// A client configured as the engine takes it at join: `setParameters` texts, then
/// `setCloudProxy(cloud)` when given (beyond the seed).
pub fn engine_client(params: &[&str], cloud: Option<CloudProxyType>, seed: u64) -> ProxyClient {
    let mut engine = Engine::default();
    for text in params {
        engine.set_parameters(text).unwrap();
    }
    if let Some(kind) = cloud {
        engine.set_cloud_proxy(kind).unwrap();
    }
    let taken = engine.join().unwrap().clone();
    let config = ClientConfig::for_join(
        &taken,
        engine.cloud_proxy_in_force(),
        APP_ID,
        edge_endpoints(),
    );
    client_with(config, seed)
}

/// A client with a hand-made configuration, started at the world's start.
pub fn client_with(config: ClientConfig, seed: u64) -> ProxyClient {
    ProxyClient::new(config, Entropy::from_u64(seed), Instant::from_millis(1_000))
}

/// The client's join time (from its start to its first connection).
pub fn join_time(world: &World, c: usize) -> Duration {
    world.clients[c]
        .machine
        .stats()
        .join_time
        .unwrap_or_else(|| panic!("client {c} never joined: {:#?}", state_reasons(world, c)))
}

/// A ticket signed with the world's key, as an AP would issue it.
pub fn ticket_for(client_ip: IpAddr, expires_at: Instant, nonce: u8) -> Ticket {
    Ticket::issue(&key(), APP_ID, client_ip, expires_at, [nonce; 16]).unwrap()
}

/// The reasons of every state change the client reported, as text.
pub fn state_reasons(world: &World, c: usize) -> Vec<String> {
    world.clients[c]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::ConnectionStateChanged { state, reason } => {
                Some(format!("{state:?}: {reason}"))
            }
            _ => None,
        })
        .collect()
}

/// The relay (or SOCKS5 server) of the client's latest ProxyConnected event.
pub fn relay_in_use(world: &World, c: usize) -> SocketAddr {
    world.clients[c]
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            ClientEvent::ProxyConnected { relay, .. } => Some(*relay),
            _ => None,
        })
        .expect("a ProxyConnected event")
}

pub fn assert_connected(world: &World, c: usize, proxy_type: u8) {
    let node = &world.clients[c];
    assert_eq!(
        node.machine.state(),
        ConnectionState::Connected,
        "client {c} is not connected: {:#?}",
        state_reasons(world, c)
    );
    let connected = node.events.iter().find_map(|(_, e)| match e {
        ClientEvent::ProxyConnected {
            proxy_type,
            elapsed,
            ..
        } => Some((*proxy_type, *elapsed)),
        _ => None,
    });
    let (kind, elapsed) = connected.expect("a ProxyConnected event");
    assert_eq!(kind, proxy_type);
    assert!(elapsed > Duration::ZERO);
}

/// Signalling both ways (the edge echoes) and 50 media packets both ways, none lost.
pub fn exchange_and_check(world: &mut World, c: usize) {
    let before_sig = world.clients[c].signalling_received.len();
    let message = format!("signalling from client {c} at {}", world.now);
    world.send_signalling(c, message.as_bytes());
    let before_media = world.clients[c].media_received;
    world.talk(c, 50);
    world.run_for(Duration::from_millis(500));
    let got = &world.clients[c].signalling_received[before_sig..];
    assert_eq!(
        got,
        message.as_bytes(),
        "signalling echoed intact and in order"
    );
    let media = world.clients[c].media_received - before_media;
    assert_eq!(media, 50, "every media packet came back");
}
