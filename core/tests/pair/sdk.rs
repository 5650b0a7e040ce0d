//! Beyond the seed, in the pair world: racing fail-over, automatic mode, the HTTP proxy,
//! TCP 443 only, and network changes mid-call. Every join time is simulated time on the
//! world's virtual clock (10 ms per hop).

use std::net::SocketAddr;
use std::time::Duration;

use cloudproxy_core::client::{
    ClientEvent, ConnectionState, MediaPath, StateReason, DEFAULT_DIRECT_PROBE_TIMEOUT,
};
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_core::http_connect::BasicCredentials;

use cloudproxy_testkit::pair::*;
use cloudproxy_testkit::policy::Policy;
use cloudproxy_testkit::seed::{ip, AP_IPS, RELAY_IPS};

use crate::setup::*;

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn seed_world_with_dead(ips: &[&str]) -> World {
    let mut world = seed_world(Policy::seed());
    for host in ips {
        world.blackholed.insert(ip(host));
    }
    world
}

// --- Fail-over that races (RFC 8305) -------------------------------------------------------

#[test]
fn ap_failover_races_and_joins_within_1_5_s() {
    let dead = [AP_IPS[0], AP_IPS[1]];
    // The seed-era client, one address and port after another, 1 s each: about 8 s.
    let mut world = seed_world_with_dead(&dead);
    let sequential = world.add_client(client(Some(cloud_domain()), 6), 11);
    world.run_for(secs(15));
    let slow = join_time(&world, sequential);
    assert!(slow >= secs(8), "{slow:?}");

    // Racing, 250 ms apart: the third attempt (the third address) answers.
    let mut world = seed_world_with_dead(&dead);
    let alice = world.add_client(
        engine_client(&[ENABLE], Some(CloudProxyType::ForceUdp), 6),
        11,
    );
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    let fast = join_time(&world, alice);
    assert!(fast <= ms(1_500), "{fast:?}");
    // The two attempts to the dead hosts were still in flight: cancelled.
    let stats = world.clients[alice].machine.stats();
    assert_eq!(stats.race_attempts_cancelled, 2, "{stats:?}");
    exchange_and_check(&mut world, alice);
}

#[test]
fn a_dead_first_relay_at_join_costs_one_stagger() {
    // The access point shuffles its relays: find the one its first answer lists first.
    let mut probe = seed_world(Policy::seed());
    let c = probe.add_client(client(Some(cloud_domain()), 8), 11);
    probe.run_for(secs(1));
    let first = relay_in_use(&probe, c).ip().to_string();
    let other = RELAY_IPS.iter().find(|r| **r != first).unwrap();
    let dead = [first.as_str()];

    // The seed-era client waits out the 5 s connect timeout on the dead relay.
    let mut world = seed_world_with_dead(&dead);
    let sequential = world.add_client(client(Some(cloud_domain()), 8), 11);
    world.run_for(secs(10));
    assert!(join_time(&world, sequential) >= secs(5));
    assert_eq!(relay_in_use(&world, sequential).ip(), ip(other));

    // Racing: the second relay 250 ms later.
    let mut world = seed_world_with_dead(&dead);
    let alice = world.add_client(
        engine_client(&[ENABLE], Some(CloudProxyType::ForceUdp), 8),
        11,
    );
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    let t = join_time(&world, alice);
    assert!(t <= ms(1_500), "{t:?}");
    assert_eq!(relay_in_use(&world, alice).ip(), ip(other));
    assert_eq!(
        world.clients[alice].machine.stats().race_attempts_cancelled,
        1
    );
    exchange_and_check(&mut world, alice);
}

// --- Automatic mode ------------------------------------------------------------------------

#[test]
fn automatic_mode_on_an_open_network_stays_direct() {
    let mut world = seed_world(Policy::open());
    let alice = world.add_client(engine_client(&[], Some(CloudProxyType::Automatic), 5), 11);
    world.run_for(secs(3));
    let node = &world.clients[alice];
    assert_eq!(node.machine.state(), ConnectionState::Connected);
    assert!(!node
        .events
        .iter()
        .any(|(_, e)| matches!(e, ClientEvent::ProxyConnected { .. })));
    assert_eq!(node.machine.stats().fallbacks_to_proxy, 0);
    assert!(world.ap_events.is_empty(), "no access point was asked");
    assert!(join_time(&world, alice) < ms(100));
    exchange_and_check(&mut world, alice);
}

#[test]
fn automatic_mode_behind_the_seed_firewall_falls_back_within_the_probe_plus_the_proxy_join() {
    // The proxy's own join time in this world.
    let mut world = seed_world(Policy::seed());
    let forced = world.add_client(engine_client(&[], Some(CloudProxyType::ForceUdp), 5), 11);
    world.run_for(secs(3));
    let proxy_join = join_time(&world, forced);

    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(engine_client(&[], Some(CloudProxyType::Automatic), 5), 11);
    world.run_for(secs(5));
    assert_connected(&world, alice, 1);
    let node = &world.clients[alice];
    // The fallback is reported with its reason and the probe time as a field.
    let probe = node
        .events
        .iter()
        .find_map(|(_, e)| match e {
            ClientEvent::ConnectionStateChanged {
                state: ConnectionState::Connecting,
                reason: StateReason::FallbackToProxy { after, cause },
            } => {
                assert_eq!(**cause, StateReason::DirectUnreachable);
                Some(*after)
            }
            _ => None,
        })
        .expect("a fallback to the proxy");
    assert_eq!(probe, DEFAULT_DIRECT_PROBE_TIMEOUT);
    let join = join_time(&world, alice);
    assert!(
        join <= probe + proxy_join,
        "{join:?} > {probe:?} + {proxy_join:?}"
    );
    let elapsed = node
        .events
        .iter()
        .find_map(|(_, e)| match e {
            ClientEvent::ProxyConnected { elapsed, .. } => Some(*elapsed),
            _ => None,
        })
        .unwrap();
    assert_eq!(elapsed, join);
    assert_eq!(node.machine.stats().fallbacks_to_proxy, 1);
    exchange_and_check(&mut world, alice);
}

// --- The HTTP proxy (type 3) ---------------------------------------------------------------

const PROXY_IP: &str = "10.1.0.8";

fn proxy_world(credentials: Option<BasicCredentials>) -> World {
    let mut world = seed_world(Policy::only_tcp_to(ip(PROXY_IP)));
    world.http_proxy = Some(HttpProxy::new(
        SocketAddr::new(ip(PROXY_IP), 3128),
        credentials,
    ));
    world.dns.insert("proxy.corp".into(), vec![ip(PROXY_IP)]);
    world
}

#[test]
fn an_http_proxy_carries_signalling_and_tcp_media_and_no_udp() {
    let mut world = proxy_world(None);
    let text = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"10.1.0.8",3128]}"#;
    let alice = world.add_client(engine_client(&[text], None, 3), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 3);
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Tcp);
    exchange_and_check(&mut world, alice);
    assert_eq!(
        world.clients[alice].udp_sent, 0,
        "no UDP through an HTTP proxy"
    );
    let proxy = world.http_proxy.as_ref().unwrap();
    assert_eq!(
        (proxy.tunnels, proxy.challenges),
        (2, 0),
        "signalling and media"
    );
}

#[test]
fn an_http_proxy_with_basic_authentication() {
    let user = BasicCredentials::new("alice", "s3cret").unwrap();
    // With the credentials: each tunnel answers one 407.
    let mut world = proxy_world(Some(user.clone()));
    let text =
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","s3cret"]}"#;
    let alice = world.add_client(engine_client(&[text], None, 3), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 3);
    exchange_and_check(&mut world, alice);
    let proxy = world.http_proxy.as_ref().unwrap();
    assert_eq!((proxy.tunnels, proxy.challenges), (2, 2));

    // Without: a clear error, and no retry (retrying cannot help).
    let mut world = proxy_world(Some(user));
    let text = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128]}"#;
    let bob = world.add_client(engine_client(&[text], None, 4), 12);
    world.run_for(secs(20));
    assert_eq!(world.clients[bob].machine.state(), ConnectionState::Failed);
    let reasons = state_reasons(&world, bob);
    assert!(
        reasons
            .last()
            .is_some_and(|r| r.contains("requires authentication")
                && r.contains("configure the proxy's user name and password")),
        "{reasons:#?}"
    );
    assert_eq!(world.http_proxy.as_ref().unwrap().requests, 1);
}

// --- TCP 443 only ------------------------------------------------------------------------------

#[test]
fn force_tcp_joins_behind_a_firewall_that_opens_only_tcp_443() {
    let mut world = seed_world(Policy::tcp_443_only());
    let bank = world.add_client(engine_client(&[], Some(CloudProxyType::ForceTcp), 7), 11);
    let seed_client = world.add_client(client(Some(cloud_domain()), 8), 12);
    world.run_for(secs(5));
    assert_connected(&world, bank, 1);
    assert_eq!(world.clients[bank].machine.media_path(), MediaPath::Tcp);
    exchange_and_check(&mut world, bank);
    let node = &world.clients[bank];
    assert_eq!(node.udp_sent, 0);
    assert!(
        node.tcp_destinations.iter().all(|d| d.port() == 443),
        "{:?}",
        node.tcp_destinations
    );
    // The seed's client cannot get through this firewall.
    assert_ne!(
        world.clients[seed_client].machine.state(),
        ConnectionState::Connected
    );
}

// --- Network changes mid-call --------------------------------------------------------------

#[test]
fn a_nat_rebinding_keeps_the_session_and_the_old_address_is_refused() {
    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(
        engine_client(&[ENABLE], Some(CloudProxyType::ForceUdp), 9),
        11,
    );
    world.run_for(secs(3));
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Udp);
    let relay_ip = relay_in_use(&world, alice).ip();
    let (old, new) = world.rebind_client_port(alice);
    // Media goes on from the new port, on the same session: no reconnect, no new ticket.
    exchange_and_check(&mut world, alice);
    let r = world.relays.iter().position(|n| n.ip == relay_ip).unwrap();
    assert!(world.relays[r].machine.counters().udp_rebinds >= 1);
    let (to, (from, data)) = world.clients[alice]
        .last_udp_to
        .iter()
        .find(|(to, _)| to.ip() == relay_ip)
        .map(|(to, v)| (*to, v.clone()))
        .unwrap();
    assert_eq!(from, new);
    // The old mapping (reused by the NAT for someone else, or replayed) is refused.
    world.raw_udp(old, to, data);
    world.run_for(ms(100));
    assert_eq!(
        world.relays[r].machine.counters().udp_from_retired_address,
        1
    );
    let stats = world.clients[alice].machine.stats();
    assert_eq!((stats.reconnects, stats.ap_queries), (0, 1));
    assert_eq!(
        world.clients[alice].machine.state(),
        ConnectionState::Connected
    );
}

#[test]
fn an_address_change_fetches_a_new_ticket_and_rejoins_at_once() {
    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(
        engine_client(&[ENABLE], Some(CloudProxyType::ForceUdp), 10),
        11,
    );
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    let changed_at = world.now;
    world.change_client_ip(alice, 21);
    world.run_for(secs(2));
    let node = &world.clients[alice];
    assert_eq!(node.machine.state(), ConnectionState::Connected);
    let back = node
        .events
        .iter()
        .rev()
        .find_map(|(t, e)| match e {
            ClientEvent::ConnectionStateChanged {
                state: ConnectionState::Connected,
                ..
            } => Some(*t),
            _ => None,
        })
        .unwrap();
    // No backoff: an access-point round and a tunnel, some 100 ms.
    let took = back.saturating_duration_since(changed_at);
    assert!(took <= ms(200), "{took:?}");
    assert!(state_reasons(&world, alice)
        .iter()
        .any(|r| r.contains("the local address changed")));
    assert_eq!(node.machine.stats().ap_queries, 2, "a new ticket");
    exchange_and_check(&mut world, alice);
}

#[test]
fn a_vpn_that_blocks_udp_mid_call_moves_media_to_tcp_within_the_bound() {
    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(
        engine_client(&[ENABLE], Some(CloudProxyType::ForceUdp), 11),
        11,
    );
    let seed_era = world.add_client(client(Some(cloud_domain()), 12), 12);
    world.run_for(secs(3));
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Udp);
    assert_eq!(world.clients[seed_era].machine.media_path(), MediaPath::Udp);
    let blocked_at = world.now;
    world.set_policy(Policy::seed_tcp_only());
    world.run_for(secs(30));
    let on_tcp = world.clients[alice]
        .events
        .iter()
        .find_map(|(t, e)| (*e == ClientEvent::MediaPathChanged(MediaPath::Tcp)).then_some(*t))
        .expect("media moved to TCP");
    // Bound: two keepalive intervals (the relay's 5 s), the UDP probe (2 s), a round trip.
    let took = on_tcp.saturating_duration_since(blocked_at);
    assert!(took <= secs(12) + ms(100), "{took:?}");
    let stats = world.clients[alice].machine.stats();
    assert_eq!((stats.udp_loss_fallbacks, stats.reconnects), (1, 0));
    exchange_and_check(&mut world, alice);
    // The seed-era client gets there too, but by losing the relay and reconnecting.
    assert!(world.clients[seed_era].machine.stats().reconnects >= 1);
    assert_eq!(world.clients[seed_era].machine.media_path(), MediaPath::Tcp);
}
