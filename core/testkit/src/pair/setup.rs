//! Building pair worlds on the seed's addresses: the key, the machines' configurations,
//! clients, applications, tickets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudproxy_core::ap::{AccessPoint, ApConfig};
use cloudproxy_core::app::AppConfig;
use cloudproxy_core::client::{ClientConfig, ProxyClient};
use cloudproxy_core::engine::{CloudProxyType, Engine};
use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::params::ProxyServer;
use cloudproxy_core::relay::{Relay, RelayConfig};
use cloudproxy_core::socks5::ServerPolicy;
use cloudproxy_core::time::{Clocks, Instant, UnixTime};
use cloudproxy_core::wire::{Ticket, TicketKey};

use super::{World, SOCKS_IP};
use crate::policy::Policy;
use crate::seed::{self, ip};

/// The application id every client of a pair world presents.
pub const APP_ID: &str = "pair-test-app";

/// The key shared by the pair world's access point and relays.
pub fn key() -> TicketKey {
    TicketKey::from_bytes([7; 32])
}

/// The relays' configuration: the world's key, the seed's SD-RTN block, `max_per_ip`
/// sessions per client address.
pub fn relay_config(max_per_ip: usize) -> RelayConfig {
    RelayConfig {
        key: key(),
        sdrtn: vec![seed::sdrtn_block()],
        max_sessions_per_client_ip: max_per_ip,
        ..RelayConfig::default()
    }
}

/// The access point's configuration: the world's key, the seed's relays.
pub fn ap_config(ticket_lifetime: Duration) -> ApConfig {
    ApConfig {
        key: key(),
        relays: seed::relays(),
        ticket_lifetime,
        ..ApConfig::default()
    }
}

/// Where the pair world's virtual clock starts.
pub const START: Instant = Instant::from_millis(1_000);

/// The wall clock at the pair world's [`START`] (2026-01-01T00:00:00Z): its Unix time is its
/// virtual clock from here, years away from the monotonic `now` its machines are given, so
/// that a machine that read one for the other would fail the world's tests.
pub const UNIX_AT_START: UnixTime = UnixTime::from_millis(1_767_225_600_000);

/// Both of the pair world's clocks at its start: what its access point and relays are built
/// with (it gives them no fresh reading after; they count Unix time forward with `now`).
pub fn start_clocks() -> Clocks {
    Clocks::new(START, UNIX_AT_START)
}

fn build(policy: Policy, lifetime: Duration, max_per_ip: usize) -> World {
    let clocks = start_clocks();
    let ap = AccessPoint::new(ap_config(lifetime), Entropy::from_u64(100), clocks);
    let relays = (0..2)
        .map(|i| Relay::new(relay_config(max_per_ip), Entropy::from_u64(200 + i), clocks))
        .collect();
    World::new(Some(ap), relays, policy)
}

/// The seed's world behind `policy`: four APs, two relays, one SD-RTN edge, the AP's domain
/// in DNS.
pub fn seed_world(policy: Policy) -> World {
    build(policy, Duration::from_secs(3600), 16)
}

/// The seed's world with a given ticket lifetime.
pub fn seed_world_with(policy: Policy, lifetime: Duration) -> World {
    build(policy, lifetime, 16)
}

/// The seed's world with a per-client-address session quota.
pub fn seed_world_quota(policy: Policy, max_per_ip: usize) -> World {
    build(policy, Duration::from_secs(3600), max_per_ip)
}

/// Type 1: the cloud proxy by the default domain.
pub fn cloud_domain() -> ProxyServer {
    ProxyServer::default_cloud()
}

/// Type 2: the cloud proxy by the seed's AP addresses.
pub fn cloud_ip_list() -> ProxyServer {
    ProxyServer::CloudIpList {
        ips: seed::ap_ips(),
        port: 0,
    }
}

/// The enterprise's SOCKS5 server.
pub fn socks_addr() -> SocketAddr {
    SocketAddr::new(ip(SOCKS_IP), 1080)
}

/// Type 0: the enterprise's SOCKS5 server.
pub fn socks5() -> ProxyServer {
    ProxyServer::Socks5(socks_addr())
}

/// A SOCKS5 server that grants UDP ASSOCIATE or not.
pub fn socks_policy(udp: bool) -> ServerPolicy {
    ServerPolicy {
        udp_associate: udp,
        ..ServerPolicy::default()
    }
}

/// A bare proxy client for `proxy` (none: proxy off), started at the world's first instant.
pub fn client(proxy: Option<ProxyServer>, seed: u64) -> ProxyClient {
    let config = ClientConfig::new(proxy, APP_ID, seed::edge_endpoints());
    ProxyClient::new(config, Entropy::from_u64(seed), Instant::from_millis(1_000))
}

/// A client configured as the engine takes it at join: `setParameters` texts, then
/// `setCloudProxy(cloud)` when given (beyond the seed). Panics on a text the engine refuses
/// (a bug of the test).
pub fn engine_client(params: &[&str], cloud: Option<CloudProxyType>, seed: u64) -> ProxyClient {
    let mut engine = Engine::default();
    for text in params {
        if let Err(e) = engine.set_parameters(text) {
            panic!("the test's parameters {text:?} are refused: {e}");
        }
    }
    if let Some(kind) = cloud {
        if let Err(e) = engine.set_cloud_proxy(kind) {
            panic!("setCloudProxy({kind:?}) is refused: {e}");
        }
    }
    let taken = match engine.join() {
        Ok(taken) => taken.clone(),
        Err(e) => panic!("join is refused: {e}"),
    };
    let config = ClientConfig::for_join(
        &taken,
        engine.cloud_proxy_in_force(),
        APP_ID,
        seed::edge_endpoints(),
    );
    client_with(config, seed)
}

/// A client with a hand-made configuration, started at the world's start.
pub fn client_with(config: ClientConfig, seed: u64) -> ProxyClient {
    ProxyClient::new(config, Entropy::from_u64(seed), Instant::from_millis(1_000))
}

/// An application `name` (user `uid`, channel "room") that runs `params` and joins 100 ms
/// after it is added, presenting [`APP_ID`].
pub fn app(name: &str, uid: u32, params: &[&str]) -> AppConfig {
    let mut config = AppConfig::new(name, uid, "room", params, Duration::from_millis(100));
    config.app_id = APP_ID.to_owned();
    config
}

/// A ticket signed with the world's key, as an AP would issue it, expiring at `expires_at` on
/// the world's virtual clock (written in the Unix time of that instant, see
/// [`start_clocks`]).
pub fn ticket_for(client_ip: IpAddr, expires_at: Instant, nonce: u8) -> Ticket {
    let expires_at = start_clocks().unix_at(expires_at);
    Ticket::issue(&key(), APP_ID, client_ip, expires_at, [nonce; 16])
        .unwrap_or_else(|e| panic!("a ticket for {client_ip}: {e}"))
}
