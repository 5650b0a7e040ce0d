//! `Relay::shutdown`: every session and connection ends with `ShuttingDown`, new ones are
//! refused, and the relay is left holding nothing.

use super::*;
use crate::wire::CloseReason;

#[test]
fn shutdown_closes_every_session_with_a_reason_and_refuses_new_connections() {
    let mut h = Harness::new();
    // An open session with a UDP media path.
    let open = h.establish(alice(), sig());
    let alice_udp = SocketAddr::new(alice().ip(), 40000);
    h.udp(
        open.udp_port,
        alice_udp,
        &Message::Keepalive {
            session_id: open.session_id,
            seq: 1,
        },
    );
    // A tunnel still connecting upstream, and a connection that sent nothing yet.
    let (connecting, outs) = h.open(bob(), sig());
    let (connecting_upstream, _) = upstream_connect(&outs).unwrap();
    let (idle, _) = h.accept("203.0.113.9:1234".parse().unwrap());
    assert_eq!(h.relay.connection_count(), 3);

    h.relay.shutdown(h.now);
    let outs = h.drain();
    assert!(h.relay.is_shutting_down());

    // The open session: Close(ShuttingDown) on its media path, tunnel and upstream closed.
    assert!(udp_to_clients(&outs).contains(&(
        open.udp_port,
        alice_udp,
        Message::Close {
            session_id: open.session_id,
            reason: CloseReason::ShuttingDown
        }
    )));
    assert!(closes(&outs, open.conn));
    assert!(outs.contains(&RelayOutput::UpstreamClose {
        conn: open.upstream
    }));
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: open.session_id,
        reason: SessionEnd::ShuttingDown
    }));
    // The connecting tunnel and the idle connection are told why.
    assert_eq!(refusal(&outs, connecting), Some(ErrorCode::ShuttingDown));
    assert!(outs.contains(&RelayOutput::UpstreamClose {
        conn: connecting_upstream
    }));
    assert_eq!(refusal(&outs, idle), Some(ErrorCode::ShuttingDown));

    assert_eq!(h.relay.session_count(), 0);
    assert_eq!(h.relay.connection_count(), 0);
    assert_eq!(h.relay.buffered_bytes(), 0);
    assert_eq!(h.relay.poll_timeout(), None);
    assert_eq!(h.relay.counters().sessions_closed, 1);
    assert_eq!(h.relay.counters().refused_shutting_down, 2);

    // New connections are refused at once; late inputs are ignored.
    let (late, outs) = h.accept(alice());
    assert_eq!(refusal(&outs, late), Some(ErrorCode::ShuttingDown));
    assert_eq!(h.relay.counters().refused_shutting_down, 3);
    assert_eq!(h.relay.connection_count(), 0);
    assert!(h.tcp(open.conn, b"late").is_empty());

    // Calling it again changes nothing.
    h.relay.shutdown(h.now);
    assert!(h.drain().is_empty());
}

#[test]
fn shutdown_of_an_idle_relay_emits_nothing() {
    let mut h = Harness::new();
    h.relay.shutdown(h.now);
    assert!(h.drain().is_empty());
    assert_eq!(h.relay.poll_timeout(), None);
}
