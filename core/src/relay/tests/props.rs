//! Property tests: arbitrary interleavings of inputs from several clients (arbitrary bytes and
//! valid frames mixed) never panic, never reach outside the allow-list, never write to a
//! closed connection, never amplify, and keep every bound.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::wire::{CloseReason, FrameReader};

/// What a client sends, on TCP or UDP.
#[derive(Clone, Debug)]
enum Payload {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// A `TunnelOpen` with a ticket for client `ticket_for` (`None`: the sender itself; fresh,
    /// or the last one again), perhaps tampered with, followed by `extra` bytes.
    TunnelOpen {
        ticket_for: Option<usize>,
        dest: usize,
        replay: bool,
        tamper: bool,
        extra: Vec<u8>,
    },
    /// A `MediaChannelOpen` for a known (or made-up) session.
    ChannelOpen { session: usize },
    /// A `MediaData`.
    Media {
        session: usize,
        dest: usize,
        len: usize,
    },
    /// A `Keepalive`.
    Keepalive { session: usize },
    /// A `Close`.
    Close { session: usize },
    /// One of the above, cut short.
    Cut(Box<Payload>, usize),
}

/// A client media message for a session chosen elsewhere.
#[derive(Clone, Debug)]
enum Own {
    Media { dest: usize, len: usize },
    Keepalive,
    Close,
}

fn own() -> impl Strategy<Value = Own> {
    prop_oneof![
        8 => (dest(), 0..1600usize).prop_map(|(dest, len)| Own::Media { dest, len }),
        2 => Just(Own::Keepalive),
        1 => Just(Own::Close),
    ]
}

/// One step of the world.
#[derive(Clone, Debug)]
enum Op {
    Accept {
        conn: u64,
        client: usize,
    },
    /// `Accept` with a fresh id, then `payload` on the new connection.
    Connect {
        client: usize,
        payload: Payload,
    },
    /// `payload` on the `pick`-th open connection.
    Tcp {
        pick: usize,
        payload: Payload,
    },
    TcpClosed {
        pick: usize,
    },
    UpConnected {
        pick: usize,
    },
    UpFailed {
        pick: usize,
    },
    UpData {
        pick: usize,
        data: Vec<u8>,
    },
    UpClosed {
        pick: usize,
    },
    Udp {
        client: usize,
        port: u16,
        payload: Payload,
    },
    /// A media message of session `session`, from its client's address (another source port).
    UdpOwn {
        session: usize,
        port: u16,
        msg: Own,
    },
    /// A media message of session `session` on its media channel (opened first if needed).
    ChannelOwn {
        session: usize,
        msg: Own,
    },
    UdpUp {
        pick: usize,
        from: usize,
        len: usize,
    },
    Advance {
        ms: u64,
    },
}

fn clients() -> Vec<SocketAddr> {
    vec![
        alice(),
        SocketAddr::new(alice().ip(), 50001),
        bob(),
        "[2600::5]:5000".parse().unwrap(),
        "[::ffff:198.18.0.7]:5002".parse().unwrap(),
    ]
}

fn destinations() -> Vec<SocketAddr> {
    let mut d = vec![sig(), edge(), "47.74.0.1:9".parse().unwrap()];
    d.extend(super::tunnel::forbidden_destinations());
    d
}

/// A destination index: mostly SD-RTN, sometimes anything.
fn dest() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..3usize, 1 => 0..19usize]
}

/// A session index: mostly the latest sessions.
fn sess() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..2usize, 1 => 0..8usize]
}

fn payload() -> impl Strategy<Value = Payload> {
    let leaf = prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Payload::Raw),
        4 => (proptest::option::weighted(0.2, 0..5usize), dest(), proptest::bool::weighted(0.2),
              proptest::bool::weighted(0.1), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(ticket_for, dest, replay, tamper, extra)| Payload::TunnelOpen {
                ticket_for, dest, replay, tamper, extra
            }),
        2 => sess().prop_map(|session| Payload::ChannelOpen { session }),
        3 => (sess(), dest(), 0..1600usize)
            .prop_map(|(session, dest, len)| Payload::Media { session, dest, len }),
        1 => sess().prop_map(|session| Payload::Keepalive { session }),
        1 => sess().prop_map(|session| Payload::Close { session }),
    ];
    (leaf, proptest::option::weighted(0.1, 0..80usize)).prop_map(|(p, cut)| match cut {
        Some(n) => Payload::Cut(Box::new(p), n),
        None => p,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u64, 0..5usize).prop_map(|(conn, client)| Op::Accept { conn, client }),
        6 => (0..8usize, payload()).prop_map(|(pick, payload)| Op::Tcp { pick, payload }),
        6 => (0..5usize, payload()).prop_map(|(client, payload)| Op::Connect { client, payload }),
        1 => (0..8usize).prop_map(|pick| Op::TcpClosed { pick }),
        6 => (0..8usize).prop_map(|pick| Op::UpConnected { pick }),
        1 => (0..8usize).prop_map(|pick| Op::UpFailed { pick }),
        2 => (0..8usize, proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(pick, data)| Op::UpData { pick, data }),
        1 => (0..8usize).prop_map(|pick| Op::UpClosed { pick }),
        5 => (0..5usize, prop_oneof![Just(4500u16), Just(4650u16), any::<u16>()], payload())
            .prop_map(|(client, port, payload)| Op::Udp { client, port, payload }),
        5 => (sess(), prop_oneof![Just(4500u16), Just(4650u16)], own())
            .prop_map(|(session, port, msg)| Op::UdpOwn { session, port, msg }),
        2 => (sess(), own()).prop_map(|(session, msg)| Op::ChannelOwn { session, msg }),
        3 => (0..8usize, dest(), 0..1600usize)
            .prop_map(|(pick, from, len)| Op::UdpUp { pick, from, len }),
        2 => prop_oneof![3 => 0..500u64, 1 => 0..8_000u64].prop_map(|ms| Op::Advance { ms }),
    ]
}

/// The encoding of an [`Own`] message for `session_id`.
fn own_bytes(session_id: u64, msg: &Own) -> Vec<u8> {
    match msg {
        Own::Media { dest, len } => Message::MediaData {
            session_id,
            peer: destinations()[*dest],
            payload: vec![0xA5; (*len).min(crate::wire::MAX_MEDIA_PAYLOAD)],
        },
        Own::Keepalive => Message::Keepalive { session_id, seq: 1 },
        Own::Close => Message::Close {
            session_id,
            reason: CloseReason::Normal,
        },
    }
    .to_bytes()
    .unwrap()
}

/// The driver's view of the world, checking every output against it.
struct World {
    h: Harness,
    /// Open client connections (accepted, not closed by either side).
    open_conns: BTreeSet<ClientConn>,
    /// The next fresh connection id.
    next_conn: u64,
    /// The media channel of each session, once opened.
    channels: std::collections::BTreeMap<u64, ClientConn>,
    /// The peer of every connection ever accepted.
    peers: std::collections::BTreeMap<ClientConn, SocketAddr>,
    /// Upstream connections announced and not closed.
    upstreams: Vec<UpstreamConn>,
    /// Upstream connections reported connected.
    connected: BTreeSet<UpstreamConn>,
    /// Upstream sockets bound and not released.
    allocs: Vec<AllocId>,
    /// Session ids seen in `TunnelAccept`s, with their client's address.
    sessions: Vec<(u64, SocketAddr)>,
    /// Client UDP addresses that sent us something.
    udp_sources: BTreeSet<SocketAddr>,
    /// The last ticket issued.
    last_ticket: Option<Ticket>,
    /// Every output, for the determinism check.
    log: Vec<RelayOutput>,
}

impl World {
    fn new() -> World {
        World::with_canary(false)
    }

    fn with_canary(canary: bool) -> World {
        let mut cfg = config();
        cfg.canary_skip_destination_check = canary;
        cfg.max_sessions_total = 4;
        cfg.max_sessions_per_client_ip = 2;
        cfg.max_pending_handshakes = 6;
        cfg.max_buffered_bytes_per_session = 256;
        cfg.max_used_nonces = 6;
        cfg.handshake_timeout = Duration::from_secs(2);
        cfg.idle_timeout = Duration::from_secs(5);
        cfg.max_udp_error_replies_per_sec = 5;
        World {
            h: Harness::with(cfg),
            open_conns: BTreeSet::new(),
            peers: std::collections::BTreeMap::new(),
            next_conn: 100,
            channels: std::collections::BTreeMap::new(),
            upstreams: Vec::new(),
            connected: BTreeSet::new(),
            allocs: Vec::new(),
            sessions: Vec::new(),
            udp_sources: BTreeSet::new(),
            last_ticket: None,
            log: Vec::new(),
        }
    }

    /// The `i`-th latest session seen (a made-up one when none was).
    fn session(&self, i: usize) -> (u64, SocketAddr) {
        if self.sessions.is_empty() {
            (i as u64, alice())
        } else {
            self.sessions[self.sessions.len() - 1 - i % self.sessions.len()]
        }
    }

    fn bytes(&mut self, payload: &Payload, sender: SocketAddr) -> Vec<u8> {
        let dests = destinations();
        match payload {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::TunnelOpen {
                ticket_for,
                dest,
                replay,
                tamper,
                extra,
            } => {
                let mut ticket = match (&self.last_ticket, replay) {
                    (Some(t), true) => t.clone(),
                    _ => self
                        .h
                        .ticket(ticket_for.map_or(sender.ip(), |i| clients()[i].ip())),
                };
                self.last_ticket = Some(ticket.clone());
                if *tamper {
                    ticket.nonce[15] ^= 0x80;
                }
                let mut out = Message::TunnelOpen {
                    ticket,
                    destination: dests[*dest],
                }
                .to_bytes()
                .unwrap();
                out.extend_from_slice(extra);
                out
            }
            Payload::ChannelOpen { session } => Message::MediaChannelOpen {
                session_id: self.session(*session).0,
            }
            .to_bytes()
            .unwrap(),
            Payload::Media { session, dest, len } => Message::MediaData {
                session_id: self.session(*session).0,
                peer: dests[*dest],
                payload: vec![0x5A; (*len).min(crate::wire::MAX_MEDIA_PAYLOAD)],
            }
            .to_bytes()
            .unwrap(),
            Payload::Keepalive { session } => Message::Keepalive {
                session_id: self.session(*session).0,
                seq: 9,
            }
            .to_bytes()
            .unwrap(),
            Payload::Close { session } => Message::Close {
                session_id: self.session(*session).0,
                reason: CloseReason::Normal,
            }
            .to_bytes()
            .unwrap(),
            Payload::Cut(inner, n) => {
                let mut bytes = self.bytes(inner, sender);
                bytes.truncate(*n);
                bytes
            }
        }
    }

    /// The `pick`-th open connection (a made-up id when none is open).
    fn pick_conn(&self, pick: usize) -> ClientConn {
        if self.open_conns.is_empty() {
            ClientConn(pick as u64)
        } else {
            *self
                .open_conns
                .iter()
                .nth(pick % self.open_conns.len())
                .unwrap()
        }
    }

    /// Accepts a fresh connection from `peer`.
    fn connect(&mut self, peer: SocketAddr) -> Result<ClientConn, TestCaseError> {
        let conn = ClientConn(self.next_conn);
        self.next_conn += 1;
        self.open_conns.insert(conn);
        self.peers.insert(conn, peer);
        let outs = self.h.input(RelayInput::TcpAccepted { conn, peer });
        self.check(&outs, usize::MAX)?;
        self.log.extend(outs);
        Ok(conn)
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let pick_up = |v: &Vec<UpstreamConn>, i: usize| {
            if v.is_empty() {
                UpstreamConn(i as u64)
            } else {
                v[i % v.len()]
            }
        };
        let mut request_len = usize::MAX;
        let outs = match op {
            Op::Accept { conn, client } => {
                let conn = ClientConn(*conn);
                let fresh = self.open_conns.insert(conn);
                if fresh {
                    self.peers.insert(conn, clients()[*client]);
                }
                let outs = self.h.input(RelayInput::TcpAccepted {
                    conn,
                    peer: clients()[*client],
                });
                if !fresh {
                    prop_assert!(outs.is_empty(), "a duplicate accept is ignored");
                }
                outs
            }
            Op::Connect { client, payload } => {
                let peer = clients()[*client];
                let conn = self.connect(peer)?;
                let data = self.bytes(payload, peer);
                self.h.tcp(conn, &data)
            }
            Op::Tcp { pick, payload } => {
                let conn = self.pick_conn(*pick);
                let sender = self.peers.get(&conn).copied().unwrap_or(bob());
                let data = self.bytes(payload, sender);
                self.h.tcp(conn, &data)
            }
            Op::TcpClosed { pick } => {
                let conn = self.pick_conn(*pick);
                self.open_conns.remove(&conn);
                self.h.input(RelayInput::TcpClosed { conn })
            }
            Op::UpConnected { pick } => {
                let conn = pick_up(&self.upstreams, *pick);
                if self.upstreams.contains(&conn) {
                    self.connected.insert(conn);
                }
                self.h.input(RelayInput::UpstreamConnected { conn })
            }
            Op::UpFailed { pick } | Op::UpClosed { pick } => {
                let conn = pick_up(&self.upstreams, *pick);
                self.upstreams.retain(|c| *c != conn);
                self.connected.remove(&conn);
                let input = if matches!(op, Op::UpFailed { .. }) {
                    RelayInput::UpstreamFailed { conn }
                } else {
                    RelayInput::UpstreamClosed { conn }
                };
                self.h.input(input)
            }
            Op::UpData { pick, data } => {
                let conn = pick_up(&self.upstreams, *pick);
                if !self.connected.contains(&conn) {
                    return Ok(()); // a driver only reports data on connected sockets
                }
                self.h.input(RelayInput::UpstreamData { conn, data })
            }
            Op::Udp {
                client,
                port,
                payload,
            } => {
                let from = clients()[*client];
                let data = self.bytes(payload, from);
                request_len = data.len();
                self.udp_sources.insert(from);
                self.h.input(RelayInput::UdpFromClient {
                    local_port: *port,
                    from,
                    data: &data,
                })
            }
            Op::UdpOwn { session, port, msg } => {
                let (session_id, client) = self.session(*session);
                let from = SocketAddr::new(client.ip(), 40000);
                let data = own_bytes(session_id, msg);
                request_len = data.len();
                self.udp_sources.insert(from);
                self.h.input(RelayInput::UdpFromClient {
                    local_port: *port,
                    from,
                    data: &data,
                })
            }
            Op::ChannelOwn { session, msg } => {
                let (session_id, client) = self.session(*session);
                let conn = match self.channels.get(&session_id) {
                    Some(conn) if self.open_conns.contains(conn) => *conn,
                    _ => {
                        let conn = self.connect(SocketAddr::new(client.ip(), 50500))?;
                        self.channels.insert(session_id, conn);
                        let open = Message::MediaChannelOpen { session_id }.to_bytes().unwrap();
                        let outs = self.h.tcp(conn, &open);
                        self.check(&outs, usize::MAX)?;
                        self.log.extend(outs);
                        conn
                    }
                };
                self.h.tcp(conn, &own_bytes(session_id, msg))
            }
            Op::UdpUp { pick, from, len } => {
                let alloc = if self.allocs.is_empty() {
                    AllocId(*pick as u64)
                } else {
                    self.allocs[pick % self.allocs.len()]
                };
                self.h.input(RelayInput::UdpFromUpstream {
                    alloc,
                    from: destinations()[*from],
                    data: &vec![1; *len],
                })
            }
            Op::Advance { ms } => self.h.advance(Duration::from_millis(*ms)),
        };
        self.check(&outs, request_len)?;
        self.log.extend(outs);
        Ok(())
    }

    fn check(&mut self, outs: &[RelayOutput], request_len: usize) -> Result<(), TestCaseError> {
        let sdrtn = sdrtn();
        for out in outs {
            match out {
                RelayOutput::UpstreamConnect { conn, to } => {
                    prop_assert!(destination_allowed(&sdrtn, *to), "connect to {to}");
                    self.upstreams.push(*conn);
                }
                RelayOutput::UdpToUpstream { alloc, to, data } => {
                    prop_assert!(destination_allowed(&sdrtn, *to), "media to {to}");
                    prop_assert!(self.allocs.contains(alloc), "unbound {alloc:?}");
                    prop_assert!(data.len() <= crate::wire::MAX_MEDIA_PAYLOAD);
                }
                RelayOutput::UdpBind { alloc } => {
                    prop_assert!(!self.allocs.contains(alloc));
                    self.allocs.push(*alloc);
                }
                RelayOutput::UdpRelease { alloc } => {
                    prop_assert!(self.allocs.contains(alloc));
                    self.allocs.retain(|a| a != alloc);
                }
                RelayOutput::TcpSend { conn, data } => {
                    prop_assert!(self.open_conns.contains(conn), "send on closed {conn:?}");
                    if let Ok((Message::TunnelAccept { session_id, .. }, _)) = Message::decode(data)
                    {
                        let peer = self.peers.get(conn).copied().unwrap_or(alice());
                        self.sessions.push((session_id, peer));
                    }
                }
                RelayOutput::TcpClose { conn } => {
                    // Refused-at-accept connections were never open in the relay's view but
                    // are in ours; either way this closes them.
                    prop_assert!(self.open_conns.remove(conn), "double close of {conn:?}");
                }
                RelayOutput::UpstreamSend { conn, .. } => {
                    prop_assert!(self.connected.contains(conn), "send before connect");
                }
                RelayOutput::UpstreamClose { conn } => {
                    prop_assert!(self.upstreams.contains(conn), "close of unknown {conn:?}");
                    self.upstreams.retain(|c| c != conn);
                    self.connected.remove(conn);
                }
                RelayOutput::UdpToClient { to, data, .. } => {
                    prop_assert!(
                        self.udp_sources.contains(to),
                        "unsolicited datagram to {to}"
                    );
                    if let Ok(Message::Error { .. }) = Message::decode_datagram(data) {
                        prop_assert!(data.len() <= request_len, "amplification");
                    }
                }
                RelayOutput::Splice {
                    client, upstream, ..
                } => {
                    prop_assert!(
                        self.open_conns.contains(client),
                        "splice of closed {client:?}"
                    );
                    prop_assert!(self.connected.contains(upstream), "splice before connect");
                }
                RelayOutput::TcpHandoff { conn, .. } => {
                    // One shard only here: nothing is ever handed off.
                    prop_assert!(false, "handoff of {conn:?} with one shard");
                }
                RelayOutput::Event(_) => {}
            }
        }
        let relay = &self.h.relay;
        prop_assert!(relay.session_count() <= 4);
        prop_assert!(relay.connection_count() <= self.open_conns.len());
        prop_assert!(
            relay.buffered_bytes() <= relay.connection_count() * FrameReader::CAPACITY.max(256)
        );
        prop_assert!(self.allocs.len() <= relay.session_count());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_keep_every_safety_rule(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op)?;
        }
        // Closing everything leaves nothing behind.
        while !world.open_conns.is_empty() {
            world.step(&Op::TcpClosed { pick: 0 })?;
        }
        prop_assert_eq!(world.h.relay.session_count(), 0);
        prop_assert_eq!(world.h.relay.connection_count(), 0);
        prop_assert_eq!(world.h.relay.buffered_bytes(), 0);
        prop_assert!(world.allocs.is_empty());
        prop_assert!(world.upstreams.is_empty());
        prop_assert_eq!(world.h.relay.poll_timeout(), None);
        let c = world.h.relay.counters();
        prop_assert_eq!(c.sessions_opened, c.sessions_closed);
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs(ops in proptest::collection::vec(op(), 1..40)) {
        let run = |ops: &[Op]| {
            let mut world = World::new();
            for op in ops {
                let _ = world.step(op);
            }
            (world.log, world.h.relay.counters().clone())
        };
        prop_assert_eq!(run(&ops), run(&ops));
    }
}

/// The canary: with the allow-list switched off, the same property must fail (the oracle
/// catches a relay that reaches outside SD-RTN), and the opened sessions prove the
/// generator reaches the media paths.
#[test]
fn the_safety_property_catches_the_canary() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut caught = 0;
    let mut opened = 0;
    let mut relayed = 0;
    for _ in 0..64 {
        let ops = proptest::collection::vec(op(), 1..80)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut world = World::with_canary(true);
        if ops.iter().any(|op| world.step(op).is_err()) {
            caught += 1;
        }
        opened += world.h.relay.counters().sessions_opened;
        relayed += world.h.relay.counters().udp_packets_up;
    }
    assert!(
        caught >= 10,
        "the oracle caught the canary in {caught} of 64 runs"
    );
    assert!(
        opened >= 10 && relayed >= 10,
        "coverage: {opened} sessions, {relayed} packets"
    );
}
