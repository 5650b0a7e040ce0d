//! NAT rebinding (docs/protocol.md §2.3): a session follows its client to a new port of the
//! same IP without a new ticket, and refuses the old address afterwards.

use super::*;

fn from_port(port: u16) -> SocketAddr {
    SocketAddr::new(alice().ip(), port)
}

fn media(session_id: u64, payload: &[u8]) -> Message {
    Message::MediaData {
        session_id,
        peer: edge(),
        payload: payload.to_vec(),
    }
}

#[test]
fn a_rebound_port_takes_over_and_the_old_one_is_refused() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    assert_eq!(
        udp_to_upstream(&h.udp(t.udp_port, from_port(40000), &media(t.session_id, b"a"))).len(),
        1
    );
    // The NAT rebinds: the keepalive from the new port is answered there.
    let keepalive = Message::Keepalive {
        session_id: t.session_id,
        seq: 9,
    };
    let outs = h.udp(t.udp_port, from_port(40001), &keepalive);
    assert_eq!(
        udp_to_clients(&outs),
        [(
            t.udp_port,
            from_port(40001),
            Message::KeepaliveAck {
                session_id: t.session_id,
                seq: 9
            }
        )]
    );
    assert_eq!(h.relay.counters().udp_rebinds, 1);
    // The old address is refused from now on: nothing forwarded, nothing answered.
    let outs = h.udp(t.udp_port, from_port(40000), &media(t.session_id, b"old"));
    assert!(outs.is_empty(), "{outs:?}");
    let outs = h.udp(t.udp_port, from_port(40000), &keepalive);
    assert!(outs.is_empty(), "{outs:?}");
    let c = h.relay.counters();
    assert_eq!(c.udp_from_retired_address, 2);
    assert_eq!(c.udp_rebinds, 1, "the refused address did not rebind back");
    // Media from the new address still flows, both ways.
    let outs = h.udp(t.udp_port, from_port(40001), &media(t.session_id, b"new"));
    let up = udp_to_upstream(&outs);
    let [(alloc, _, payload)] = &up[..] else {
        panic!("{outs:?}")
    };
    assert_eq!(payload, b"new");
    let alloc = *alloc;
    let outs = h.input(RelayInput::UdpFromUpstream {
        alloc,
        from: edge(),
        data: b"back",
    });
    assert_eq!(udp_to_clients(&outs)[0].1, from_port(40001));
}

#[test]
fn a_new_ip_address_is_not_a_rebinding() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    h.udp(t.udp_port, from_port(40000), &media(t.session_id, b"a"));
    let elsewhere: SocketAddr = "100.200.9.9:40000".parse().unwrap();
    let outs = h.udp(t.udp_port, elsewhere, &media(t.session_id, b"b"));
    assert!(udp_to_upstream(&outs).is_empty());
    let c = h.relay.counters();
    assert_eq!((c.udp_rebinds, c.refused_unknown_session), (0, 1));
    // Alice's address is unchanged.
    let outs = h.udp(t.udp_port, from_port(40000), &media(t.session_id, b"c"));
    assert_eq!(udp_to_upstream(&outs).len(), 1);
}

#[test]
fn retired_addresses_are_bounded_and_the_oldest_is_forgotten_first() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    // 40000, then five rebinds: 40000..=40004 retired in turn, at most MAX_RETIRED_UDP kept.
    for port in 40000..=40005 {
        let outs = h.udp(t.udp_port, from_port(port), &media(t.session_id, b"x"));
        assert_eq!(udp_to_upstream(&outs).len(), 1, "port {port}");
    }
    assert_eq!(h.relay.counters().udp_rebinds, 5);
    // 40000 was forgotten (the oldest); 40001..=40004 are still refused.
    let limit = crate::relay::rebind::MAX_RETIRED_UDP as u16;
    for port in 40005 - limit..40005 {
        let outs = h.udp(t.udp_port, from_port(port), &media(t.session_id, b"x"));
        assert!(outs.is_empty(), "port {port}");
    }
    let outs = h.udp(t.udp_port, from_port(40000), &media(t.session_id, b"x"));
    assert_eq!(udp_to_upstream(&outs).len(), 1);
    assert_eq!(h.relay.counters().udp_rebinds, 6);
}
