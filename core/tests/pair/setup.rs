//! The checks the pair tests share; the world and its builders are the testkit's
//! (`cloudproxy_testkit::pair`).

use std::net::SocketAddr;
use std::time::Duration;

use cloudproxy_core::client::{ClientEvent, ConnectionState};
use cloudproxy_testkit::pair::World;

/// The client's join time (from its start to its first connection).
pub fn join_time(world: &World, c: usize) -> Duration {
    world.clients[c]
        .machine
        .stats()
        .join_time
        .unwrap_or_else(|| panic!("client {c} never joined: {:#?}", state_reasons(world, c)))
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
