//! The data-plane contract: splicing, activity reports, bind failures, the pending caps per
//! address, gauges, and shards sharing one ledger.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::wire::CloseReason;

/// One [`LocalLedger`] shared by the shards of these tests, each a handle with its index.
#[derive(Debug)]
struct SharedLedger {
    shard: u16,
    inner: Rc<RefCell<LocalLedger>>,
}

impl Ledger for SharedLedger {
    fn acquire(&mut self, slot: Slot, ip: IpAddr) -> Result<(), SlotRefusal> {
        self.inner.borrow_mut().acquire_for(self.shard, slot, ip)
    }
    fn release(&mut self, slot: Slot, ip: IpAddr) {
        self.inner.borrow_mut().release_for(self.shard, slot, ip)
    }
    fn nonce_used(&mut self, nonce: &Nonce, now: Instant) -> bool {
        self.inner.borrow_mut().nonce_used(nonce, now)
    }
    fn claim_nonce(
        &mut self,
        nonce: Nonce,
        expires_at: Instant,
        now: Instant,
    ) -> Result<(), NonceRefusal> {
        self.inner.borrow_mut().claim_nonce(nonce, expires_at, now)
    }
}

/// Two shards of one relay address sharing a ledger.
fn two_shards(cfg: RelayConfig) -> (Harness, Harness, Rc<RefCell<LocalLedger>>) {
    let ledger = Rc::new(RefCell::new(LocalLedger::new(&cfg)));
    let shard = |index: u16, seed: u64| {
        let mut cfg = cfg.clone();
        cfg.shard = Shard::new(index, 2).unwrap();
        let mut h = Harness::with(cfg.clone());
        h.relay = Relay::with_ledger(
            cfg,
            Entropy::from_u64(seed),
            Box::new(SharedLedger {
                shard: index,
                inner: ledger.clone(),
            }),
            h.start,
        );
        h
    };
    (shard(0, 1), shard(1, 2), ledger)
}

#[test]
fn activity_reports_feed_the_counters_and_the_idle_timer_only_when_bytes_moved() {
    let mut h = Harness::new();
    let t = h.establish(alice(), sig());
    assert_eq!(h.relay.counters().tunnels_spliced, 1);
    h.advance(Duration::from_secs(29));
    assert_eq!(h.activity(t.conn, 5, 0), []);
    h.advance(Duration::from_secs(29));
    assert_eq!(h.relay.session_count(), 1, "the report kept it alive");
    let outs = h.advance(Duration::from_secs(2));
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: t.session_id,
        reason: SessionEnd::IdleTimeout
    }));
    // A report for a tunnel the relay closed is a race: ignored, counted.
    let ignored = h.relay.counters().ignored_inputs;
    assert_eq!(h.activity(t.conn, 1, 1), []);
    assert_eq!(h.relay.counters().ignored_inputs, ignored + 1);
    assert_eq!(h.relay.counters().tcp_bytes_up, 5);
}

#[test]
fn a_failed_udp_bind_ends_that_session_only() {
    let mut h = Harness::new();
    let a = h.establish(alice(), sig());
    let b = h.establish(bob(), sig());
    let outs = h.udp(
        a.udp_port,
        "198.18.0.7:40000".parse().unwrap(),
        &Message::MediaData {
            session_id: a.session_id,
            peer: edge(),
            payload: b"rtp".to_vec(),
        },
    );
    let alloc = outs
        .iter()
        .find_map(|o| match o {
            RelayOutput::UdpBind { alloc } => Some(*alloc),
            _ => None,
        })
        .unwrap();
    let outs = h.input(RelayInput::UdpBindFailed { alloc });
    assert!(events(&outs).contains(&RelayEvent::SessionClosed {
        session_id: a.session_id,
        reason: SessionEnd::UdpBindFailed
    }));
    // Nothing to release: the driver has no socket.
    assert!(!outs.contains(&RelayOutput::UdpRelease { alloc }));
    assert!(closes(&outs, a.conn) && !closes(&outs, b.conn));
    assert_eq!(
        udp_to_clients(&outs),
        [(
            a.udp_port,
            "198.18.0.7:40000".parse().unwrap(),
            Message::Close {
                session_id: a.session_id,
                reason: CloseReason::Error
            }
        )]
    );
    assert_eq!(h.relay.counters().udp_bind_failures, 1);
    assert_eq!(h.relay.session_count(), 1);
    // A late report for it is ignored.
    assert_eq!(h.input(RelayInput::UdpBindFailed { alloc }), []);
}

#[test]
fn one_address_cannot_hold_every_pending_handshake() {
    let mut cfg = config();
    cfg.max_pending_handshakes = 8;
    cfg.max_pending_handshakes_per_client_ip = 3;
    let mut h = Harness::with(cfg);
    let mallory: SocketAddr = "100.200.9.9:666".parse().unwrap();
    for port in 0..3 {
        let (_, outs) = h.accept(SocketAddr::new(mallory.ip(), 1000 + port));
        assert_eq!(outs, []);
    }
    let (c, outs) = h.accept(SocketAddr::new(mallory.ip(), 2000));
    assert_eq!(refusal(&outs, c), Some(ErrorCode::QuotaExceeded));
    let reason = messages(&tcp_sent(&outs, c))
        .into_iter()
        .find_map(|m| match m {
            Message::Error { reason, .. } => Some(reason),
            _ => None,
        })
        .unwrap();
    assert_eq!(reason, "too many pending handshakes from this address");
    // Everyone else still gets in, and alice's tunnel opens.
    let t = h.establish(alice(), sig());
    assert_ne!(t.session_id, 0);
    assert_eq!(h.relay.gauges().pending_handshakes, 3);
    // The slots come back as the handshakes time out.
    h.advance(Duration::from_secs(11));
    assert_eq!(h.relay.gauges().pending_handshakes, 0);
    let (_, outs) = h.accept(mallory);
    assert_eq!(outs, []);
}

#[test]
fn gauges_are_kept_as_the_relay_goes_with_their_peaks() {
    let mut h = Harness::new();
    let (c, _) = h.accept(alice());
    h.tcp(c, &[0xC1, 0x0D, 1]);
    let g = h.relay.gauges();
    assert_eq!(
        (g.connections, g.buffered_bytes, g.pending_handshakes),
        (1, 3, 1)
    );
    h.input(RelayInput::TcpClosed { conn: c });
    let t = h.establish(bob(), sig());
    let g = h.relay.gauges();
    assert_eq!((g.sessions, g.connections, g.buffered_bytes), (1, 1, 0));
    assert_eq!((g.peak_connections, g.peak_buffered_bytes), (1, 3));
    h.input(RelayInput::TcpClosed { conn: t.conn });
    let g = h.relay.gauges();
    assert_eq!((g.sessions, g.peak_sessions), (0, 1));
}

#[test]
fn shards_draw_their_own_session_ids_and_ports_and_refuse_replays_of_each_other() {
    let (mut a, mut b, ledger) = two_shards(config());
    let ta = a.establish(alice(), sig());
    assert_eq!(ta.session_id % 2, 0);
    assert_eq!((ta.udp_port - 4500) % 2, 0);
    // Both harnesses number their nonces from 1: shard 1's first ticket is a replay of
    // shard 0's already.
    let first = b.ticket(alice().ip());
    let (c, outs) = b.open_with(alice(), first, sig());
    assert_eq!(refusal(&outs, c), Some(ErrorCode::TicketReplayed));
    let ticket = b.ticket(bob().ip());
    let (conn, outs) = b.open_with(bob(), ticket.clone(), sig());
    let (up, _) = upstream_connect(&outs).unwrap();
    let outs = b.input(RelayInput::UpstreamConnected { conn: up });
    let Some(Message::TunnelAccept {
        session_id,
        udp_port,
        ..
    }) = messages(&tcp_sent(&outs, conn)).first().cloned()
    else {
        panic!("no accept: {outs:?}")
    };
    assert_eq!(session_id % 2, 1);
    assert_eq!((udp_port - 4500) % 2, 1);
    let (c, outs) = a.open_with(bob(), ticket, sig());
    assert_eq!(refusal(&outs, c), Some(ErrorCode::TicketReplayed));
    assert_eq!(ledger.borrow().held(Slot::Session), 2);
    // One shard fails: its slots come back, the other's stay.
    ledger.borrow_mut().release_shard(1);
    assert_eq!(ledger.borrow().held(Slot::Session), 1);
}

#[test]
fn a_media_channel_that_lands_on_another_shard_is_handed_to_its_owner() {
    let (mut a, mut b, _) = two_shards(config());
    let t = b.establish(alice(), sig());
    // Alice's media channel lands on shard 0, with a keepalive right behind the open.
    let (ch, _) = a.accept(alice());
    let mut bytes = Message::MediaChannelOpen {
        session_id: t.session_id,
    }
    .to_bytes()
    .unwrap();
    let ka = Message::Keepalive {
        session_id: t.session_id,
        seq: 9,
    };
    bytes.extend_from_slice(&ka.to_bytes().unwrap());
    let outs = a.tcp(ch, &bytes[..bytes.len() - 3]);
    assert_eq!(
        outs,
        [RelayOutput::TcpHandoff {
            conn: ch,
            shard: 1,
            data: bytes[..bytes.len() - 3].to_vec()
        }]
    );
    assert_eq!(a.relay.connection_count(), 0);
    assert_eq!(a.relay.gauges().pending_handshakes, 0);
    assert_eq!(a.relay.counters().handoffs, 1);
    // The owner takes it as a new connection, fed what was read, then the rest.
    let (ch_b, _) = b.accept(alice());
    let outs = b.tcp(ch_b, &bytes[..bytes.len() - 3]);
    assert_eq!(
        messages(&tcp_sent(&outs, ch_b)),
        [Message::MediaChannelAccept {
            session_id: t.session_id
        }]
    );
    let outs = b.tcp(ch_b, &bytes[bytes.len() - 3..]);
    assert_eq!(
        messages(&tcp_sent(&outs, ch_b)),
        [Message::KeepaliveAck {
            session_id: t.session_id,
            seq: 9
        }]
    );
}
