//! Pair tests: the client, application, access point and relay machines stepped against each
//! other on a virtual clock, through the AP, the relays, an SD-RTN edge, DNS, a SOCKS5 server
//! and a firewall (the testkit's pair world, `cloudproxy_testkit::pair`). Each test states
//! what it proves; the applications' tests are in `apps.rs`.

mod apps;
mod sdk;
mod setup;

use std::time::Duration;

use cloudproxy_core::client::{ConnectionState, MediaPath};
use cloudproxy_core::wire::{ErrorCode, Message};
use cloudproxy_testkit::pair::*;
use cloudproxy_testkit::policy::Policy;
use cloudproxy_testkit::seed::{edge_endpoints, ip, AP_IPS, EDGE_IP};

use setup::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn type1_by_domain_end_to_end_behind_the_seed_firewall() {
    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(client(Some(cloud_domain()), 1), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Udp);
    exchange_and_check(&mut world, alice);
}

#[test]
fn type2_by_ip_list_works_when_dns_is_blocked() {
    let mut world = seed_world(Policy::dns_blocked());
    let by_domain = world.add_client(client(Some(cloud_domain()), 1), 11);
    let by_list = world.add_client(client(Some(cloud_ip_list()), 2), 12);
    world.run_for(secs(5));
    assert_ne!(
        world.clients[by_domain].machine.state(),
        ConnectionState::Connected
    );
    assert!(state_reasons(&world, by_domain)
        .iter()
        .any(|r| r.contains("DNS") || r.contains("dns")));
    assert_connected(&world, by_list, 2);
    exchange_and_check(&mut world, by_list);
}

#[test]
fn type0_socks5_is_the_only_host_allowed_out() {
    let mut world = seed_world(Policy::only_host(ip(SOCKS_IP)));
    world.socks = Some((socks_addr(), socks_policy(true)));
    let alice = world.add_client(client(Some(socks5()), 3), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 0);
    // The SOCKS5 path has no keepalives of ours: UDP proves itself with the first media.
    exchange_and_check(&mut world, alice);
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Udp);
}

#[test]
fn type0_socks5_refusing_udp_associate_falls_back_to_tcp_media() {
    let mut world = seed_world(Policy::only_host(ip(SOCKS_IP)));
    world.socks = Some((socks_addr(), socks_policy(false)));
    let alice = world.add_client(client(Some(socks5()), 4), 11);
    world.run_for(secs(6));
    assert_connected(&world, alice, 0);
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Tcp);
    exchange_and_check(&mut world, alice);
}

#[test]
fn proxy_off_works_on_an_open_network_and_fails_behind_the_firewall() {
    let mut open = seed_world(Policy::open());
    let direct = open.add_client(client(None, 5), 11);
    open.run_for(secs(3));
    assert_eq!(
        open.clients[direct].machine.state(),
        ConnectionState::Connected
    );
    exchange_and_check(&mut open, direct);

    let mut closed = seed_world(Policy::seed());
    let blocked = closed.add_client(client(None, 5), 11);
    closed.run_for(secs(60));
    assert_ne!(
        closed.clients[blocked].machine.state(),
        ConnectionState::Connected
    );
    assert_eq!(closed.edge_signalling_bytes, 0);
}

#[test]
fn ap_failover_across_addresses_and_ports() {
    let mut world = seed_world(Policy::seed());
    world.dead_ap_ips.insert(ip(AP_IPS[0]));
    world.dead_ap_ips.insert(ip(AP_IPS[1]));
    let alice = world.add_client(client(Some(cloud_domain()), 6), 11);
    world.run_for(secs(40));
    assert_connected(&world, alice, 1);
    exchange_and_check(&mut world, alice);
}

#[test]
fn udp_blocked_media_falls_back_to_the_tcp_channel() {
    let mut world = seed_world(Policy::udp_blocked());
    let alice = world.add_client(client(Some(cloud_domain()), 7), 11);
    world.run_for(secs(10));
    assert_connected(&world, alice, 1);
    assert_eq!(world.clients[alice].machine.media_path(), MediaPath::Tcp);
    exchange_and_check(&mut world, alice);
}

#[test]
fn relay_crash_moves_the_client_to_the_other_relay() {
    let mut world = seed_world(Policy::seed());
    let alice = world.add_client(client(Some(cloud_domain()), 8), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    let first = relay_in_use(&world, alice);
    let r = world
        .relays
        .iter()
        .position(|n| n.ip == first.ip())
        .unwrap();
    world.crash_relay(r);
    world.run_for(secs(20));
    assert_eq!(
        world.clients[alice].machine.state(),
        ConnectionState::Connected
    );
    let second = relay_in_use(&world, alice);
    assert_ne!(
        first.ip(),
        second.ip(),
        "the client must move to the other relay"
    );
    assert!(world.clients[alice]
        .events
        .iter()
        .any(|(_, e)| format!("{e:?}").contains("Reconnecting")));
    exchange_and_check(&mut world, alice);
}

#[test]
fn a_call_outlives_its_ticket() {
    let mut world = seed_world_with(Policy::seed(), Duration::from_secs(5));
    let alice = world.add_client(client(Some(cloud_domain()), 9), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    world.run_for(secs(10)); // the ticket has expired; the session keeps going
    exchange_and_check(&mut world, alice);
    assert_eq!(
        world.clients[alice].machine.state(),
        ConnectionState::Connected
    );
}

#[test]
fn forged_replayed_and_open_relay_tickets_are_refused_and_others_are_unaffected() {
    let mut world = seed_world(Policy::open());
    let alice = world.add_client(client(Some(cloud_domain()), 10), 11);
    world.run_for(secs(3));
    assert_connected(&world, alice, 1);
    let relay = relay_in_use(&world, alice);

    // A ticket issued for the attacker's own address, then tampered with.
    let good = ticket_for(ip(ATTACKER_IP), world.now + secs(60), 1);
    let mut forged = good.clone();
    forged.mac[0] ^= 1;
    let cases = [
        (
            forged,
            edge_endpoints().signalling,
            ErrorCode::TicketInvalid,
        ),
        (
            good.clone(),
            "10.0.0.1:5000".parse().unwrap(),
            ErrorCode::DestinationRefused,
        ),
        (
            good.clone(),
            "127.0.0.1:22".parse().unwrap(),
            ErrorCode::DestinationRefused,
        ),
        (
            ticket_for(ip(ATTACKER_IP), world.now + secs(60), 2),
            edge_endpoints().signalling,
            ErrorCode::Other(0),
        ),
        (
            ticket_for(ip(ATTACKER_IP), world.now + secs(60), 2),
            edge_endpoints().signalling,
            ErrorCode::TicketReplayed,
        ),
        (
            ticket_for(ip("10.9.9.9"), world.now + secs(60), 3),
            edge_endpoints().signalling,
            ErrorCode::ClientMismatch,
        ),
        (
            ticket_for(ip(ATTACKER_IP), world.now, 4),
            edge_endpoints().signalling,
            ErrorCode::TicketExpired,
        ),
    ];
    for (ticket, destination, expected) in cases {
        let raw = world.raw_connect(relay);
        world.run_for(Duration::from_millis(50));
        let open = Message::TunnelOpen {
            ticket,
            destination,
        };
        world.raw_send(raw, open.to_bytes().unwrap());
        world.run_for(Duration::from_millis(200));
        let got = world.raw_received.get(&raw).cloned().unwrap_or_default();
        let (reply, _) = Message::decode(&got).expect("a reply");
        match (expected, reply) {
            (ErrorCode::Other(0), Message::TunnelAccept { .. }) => {}
            (expected, Message::Error { code, .. }) => assert_eq!(code, expected),
            (expected, other) => panic!("expected {expected:?}, got {other:?}"),
        }
    }
    assert!(world
        .upstream_destinations
        .iter()
        .all(|d| d.ip() == ip(EDGE_IP)));
    exchange_and_check(&mut world, alice);
}

#[test]
fn quota_of_sessions_per_client_address() {
    // One session per client address on each of the two relays: three clients behind one NAT
    // address get two sessions between them.
    let mut world = seed_world_quota(Policy::seed(), 1);
    let a = world.add_client(client(Some(cloud_domain()), 20), 11);
    let b = world.add_client(client(Some(cloud_domain()), 21), 11);
    let c = world.add_client(client(Some(cloud_domain()), 22), 11);
    world.run_for(secs(5));
    let connected: Vec<usize> = [a, b, c]
        .into_iter()
        .filter(|&i| world.clients[i].machine.state() == ConnectionState::Connected)
        .collect();
    assert_eq!(
        connected.len(),
        2,
        "the session over the per-address quota is refused"
    );
    assert!(
        world
            .relays
            .iter()
            .map(|r| r.machine.counters().refused_quota)
            .sum::<u64>()
            > 0
    );
    assert!(world.relays.iter().all(|r| r.machine.session_count() <= 1));
    exchange_and_check(&mut world, connected[0]);
}

#[test]
fn gives_up_after_the_bound_with_a_clear_reason() {
    let mut world = seed_world(Policy::seed());
    for ap in AP_IPS {
        world.dead_ap_ips.insert(ip(ap));
    }
    let alice = world.add_client(client(Some(cloud_domain()), 23), 11);
    world.run_for(secs(120));
    assert_eq!(
        world.clients[alice].machine.state(),
        ConnectionState::Failed
    );
    assert!(
        world.clients[alice].machine.poll_timeout().is_none(),
        "no timers after giving up"
    );
    let reasons = state_reasons(&world, alice);
    assert!(!reasons.is_empty());
}

#[test]
fn same_setup_same_run() {
    let run = || {
        let mut world = seed_world(Policy::seed());
        let alice = world.add_client(client(Some(cloud_domain()), 42), 11);
        world.run_for(secs(3));
        exchange_and_check(&mut world, alice);
        format!("{:?}", world.clients[alice].events)
    };
    assert_eq!(run(), run());
}

#[test]
fn the_access_point_machine_serves_tcp_and_sheds_hostile_connections() {
    use cloudproxy_core::ap::{ApEvent, ApOutcome, ApTransport, TcpEnd};
    use cloudproxy_core::wire::AP_REQUEST_PADDED_LEN;

    // A client that only has TCP gets its ticket over an AP connection, padded.
    let mut world = seed_world(Policy::udp_blocked());
    let alice = world.add_client(client(Some(cloud_domain()), 5), 11);
    world.run_for(secs(8));
    assert_connected(&world, alice, 1);
    assert!(world.ap_events.iter().any(|(_, e)| matches!(
        e,
        ApEvent::Request {
            transport: ApTransport::Tcp,
            outcome: ApOutcome::Granted,
            ..
        }
    )));

    // An attacker's unpadded request over TCP: an error no larger than it, then the close.
    let ap = std::net::SocketAddr::new(ip(AP_IPS[0]), 8000);
    let raw = world.raw_connect(ap);
    world.run_for(Duration::from_millis(50));
    let short = Message::ApRequest {
        request_id: 1,
        app_id: APP_ID.into(),
        flags: 0,
        padding_len: 0,
    }
    .to_bytes()
    .unwrap();
    assert!(short.len() < AP_REQUEST_PADDED_LEN);
    world.raw_send(raw, short.clone());
    world.run_for(Duration::from_millis(100));
    let got = world.raw_received.get(&raw).cloned().unwrap_or_default();
    assert!(!got.is_empty() && got.len() <= short.len(), "{got:?}");
    let (reply, _) = Message::decode(&got).unwrap();
    assert!(matches!(
        reply,
        Message::Error {
            code: ErrorCode::PaddingRequired,
            ..
        }
    ));
    assert!(world.raw_closed.contains(&raw));

    // A connection that trickles half a request is closed at the idle timeout.
    let slow = world.raw_connect(ap);
    world.run_for(Duration::from_millis(50));
    let padded = Message::padded_ap_request(2, APP_ID, 0).to_bytes().unwrap();
    for chunk in padded[..100].chunks(10) {
        world.raw_send(slow, chunk.to_vec());
        world.run_for(secs(1));
    }
    world.run_for(secs(1));
    assert!(world.raw_closed.contains(&slow));
    assert!(!world.raw_received.contains_key(&slow));
    assert!(world.ap_events.iter().any(|(_, e)| matches!(
        e,
        ApEvent::TcpClosed {
            end: TcpEnd::IncompleteRequest,
            ..
        }
    )));
    exchange_and_check(&mut world, alice);
}
