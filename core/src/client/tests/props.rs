//! Property tests: arbitrary input sequences (hostile bytes, valid protocol replies, stale ids,
//! timers at arbitrary times) never panic and keep the client's promises.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::socks5::{encode_udp_datagram, Address};
use crate::wire::{CloseReason, ErrorCode};

/// The session id the fake relay hands out.
const SESSION: u64 = 99;

/// A well-formed message a server could send.
#[derive(Clone, Debug)]
enum Reply {
    ApAnswer,
    TunnelAccept {
        udp: bool,
        trailing: Vec<u8>,
    },
    MediaChannelAccept,
    MediaData(Vec<u8>),
    KeepaliveAck,
    Close,
    Error(u16),
    /// SOCKS5 method selection and a successful reply (BND 0.0.0.0:5000).
    SocksOk,
    /// SOCKS5 method selection and reply 7.
    Socks7,
    /// A media frame of the edge's TCP framing.
    EdgeFrame(Vec<u8>),
    /// A SOCKS5 UDP datagram from the edge.
    SocksUdp(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u32),
    Connected(u8),
    Failed(u8),
    Closed(u8),
    Data(u8, Vec<u8>),
    Reply(u8, Reply),
    Udp(u8, Vec<u8>),
    UdpReply(u8, Reply),
    Resolved(bool),
    ResolveFailed,
    Signal(Vec<u8>),
    Media(Vec<u8>),
    Leave,
    /// Play the server at the other end of a connection: accept it, or send the reply its
    /// protocol expects next.
    Serve(u8),
    /// Play the server behind a UDP destination: send what it would answer.
    ServeUdp(u8),
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        3 => Just(Reply::ApAnswer),
        3 => (any::<bool>(), bytes(8)).prop_map(|(udp, trailing)| Reply::TunnelAccept { udp, trailing }),
        2 => Just(Reply::MediaChannelAccept),
        2 => bytes(40).prop_map(Reply::MediaData),
        2 => Just(Reply::KeepaliveAck),
        1 => Just(Reply::Close),
        1 => (1u16..15).prop_map(Reply::Error),
        2 => Just(Reply::SocksOk),
        1 => Just(Reply::Socks7),
        1 => bytes(40).prop_map(Reply::EdgeFrame),
        1 => bytes(40).prop_map(Reply::SocksUdp),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..300).prop_map(Op::Advance),
        1 => (0u32..6_000).prop_map(Op::Advance),
        3 => any::<u8>().prop_map(Op::Connected),
        1 => any::<u8>().prop_map(Op::Failed),
        1 => any::<u8>().prop_map(Op::Closed),
        2 => (any::<u8>(), bytes(64)).prop_map(|(c, b)| Op::Data(c, b)),
        5 => (any::<u8>(), reply()).prop_map(|(c, r)| Op::Reply(c, r)),
        2 => (any::<u8>(), bytes(64)).prop_map(|(c, b)| Op::Udp(c, b)),
        4 => (any::<u8>(), reply()).prop_map(|(c, r)| Op::UdpReply(c, r)),
        2 => any::<bool>().prop_map(Op::Resolved),
        1 => Just(Op::ResolveFailed),
        2 => bytes(32).prop_map(Op::Signal),
        2 => proptest::collection::vec(any::<u8>(), 0..1600).prop_map(Op::Media),
        1 => Just(Op::Leave),
        8 => any::<u8>().prop_map(Op::Serve),
        4 => any::<u8>().prop_map(Op::ServeUdp),
    ]
}

fn proxy() -> impl Strategy<Value = Option<ProxyServer>> {
    prop_oneof![
        Just(None),
        Just(Some(ProxyServer::Socks5(addr("10.3.0.1:1080")))),
        Just(Some(ProxyServer::default_cloud())),
        Just(ip_list(&["10.1.0.1", "10.1.0.2"], 0)),
        Just(ip_list(&["10.1.0.1"], 8000)),
    ]
}

/// An index into a list of `len` items, biased to the most recent ones (where the action is);
/// `len` itself (out of range) stands for an id or address the client never used.
fn pick(sel: u8, len: usize) -> usize {
    let sel = usize::from(sel);
    match sel {
        0..=127 => len.saturating_sub(1),
        128..=191 => len.saturating_sub(2),
        _ => sel % (len + 1),
    }
}

fn allowed(from: ConnectionState, to: ConnectionState) -> bool {
    use ConnectionState::*;
    matches!(
        (from, to),
        (Connecting, Connected | Reconnecting | Failed | Disconnected)
            | (Connected, Reconnecting | Disconnected)
            | (Reconnecting, Connected | Failed | Disconnected)
            | (Failed, Disconnected)
    )
}

/// The test's view of the world, and the invariants it checks.
struct World {
    client: ProxyClient,
    now: Instant,
    state: ConnectionState,
    path: MediaPath,
    /// Every connection the client opened, in order, with its destination.
    conns: Vec<ConnId>,
    targets: Vec<SocketAddr>,
    /// Connections the test reported connected.
    connected: BTreeSet<ConnId>,
    /// The first bytes the client sent on each connection.
    first_sent: Vec<(ConnId, Vec<u8>)>,
    /// Connections closed by either side.
    closed: BTreeSet<ConnId>,
    /// Every UDP destination the client used, in order of first use.
    udp_peers: Vec<SocketAddr>,
    request_id: u32,
    resolving: Option<String>,
    /// Whether the first state change (to `Connecting`) was seen.
    started: bool,
    left: bool,
}

impl World {
    fn new(proxy: Option<ProxyServer>, seed: u64) -> Self {
        let now = Instant::from_millis(5_000);
        let mut w = World {
            client: ProxyClient::new(config(proxy), Entropy::from_u64(seed), now),
            now,
            state: ConnectionState::Disconnected,
            path: MediaPath::None,
            conns: Vec::new(),
            targets: Vec::new(),
            connected: BTreeSet::new(),
            first_sent: Vec::new(),
            closed: BTreeSet::new(),
            udp_peers: Vec::new(),
            request_id: 0,
            resolving: None,
            started: false,
            left: false,
        };
        w.drain(false);
        w
    }

    fn conn(&self, sel: u8) -> ConnId {
        let i = pick(sel, self.conns.len());
        self.conns.get(i).copied().unwrap_or(ConnId(u64::MAX))
    }

    fn peer(&self, sel: u8) -> SocketAddr {
        let i = pick(sel, self.udp_peers.len());
        self.udp_peers
            .get(i)
            .copied()
            .unwrap_or_else(|| addr("192.0.2.99:7"))
    }

    /// Drains the outputs, checking every promise.
    fn drain(&mut self, after_leave: bool) {
        while let Some(out) = self.client.poll_output() {
            assert!(!after_leave, "output after Leave: {out:?}");
            match out {
                ClientOutput::Resolve { name } => self.resolving = Some(name),
                ClientOutput::TcpConnect { conn, to } => {
                    assert!(!self.conns.contains(&conn), "{conn} reused");
                    self.conns.push(conn);
                    self.targets.push(to);
                }
                ClientOutput::TcpSend { conn, data } => {
                    assert!(self.conns.contains(&conn), "send on unknown {conn}");
                    assert!(!self.closed.contains(&conn), "send on closed {conn}");
                    assert!(!data.is_empty());
                    if !self.first_sent.iter().any(|(c, _)| *c == conn) {
                        self.first_sent.push((conn, data));
                    }
                }
                ClientOutput::TcpClose { conn } => {
                    assert!(self.conns.contains(&conn), "close of unknown {conn}");
                    assert!(self.closed.insert(conn), "{conn} closed twice");
                }
                ClientOutput::UdpSend { to, data } => {
                    assert!(data.len() <= 2_100, "datagram of {} bytes", data.len());
                    if let Ok(Message::ApRequest { request_id, .. }) =
                        Message::decode_datagram(&data)
                    {
                        self.request_id = request_id;
                    }
                    if !self.udp_peers.contains(&to) {
                        self.udp_peers.push(to);
                    }
                }
                ClientOutput::Event(ClientEvent::ConnectionStateChanged { state, .. }) => {
                    let first = !self.started && state == ConnectionState::Connecting;
                    assert!(
                        first || allowed(self.state, state),
                        "{} -> {state}",
                        self.state
                    );
                    self.started = true;
                    self.state = state;
                }
                ClientOutput::Event(ClientEvent::MediaPathChanged(path)) => {
                    assert_ne!(path, self.path);
                    self.path = path;
                }
                ClientOutput::Event(_) => {}
            }
        }
        assert_eq!(self.client.state(), self.state);
        assert_eq!(self.client.media_path(), self.path);
        if self.state != ConnectionState::Connected {
            assert_eq!(self.path, MediaPath::None);
        }
        if let Some(t) = self.client.poll_timeout() {
            assert!(t > self.now, "timer {t} not after now {}", self.now);
            assert!(
                !matches!(
                    self.state,
                    ConnectionState::Failed | ConnectionState::Disconnected
                ),
                "timer in state {}",
                self.state
            );
        }
    }

    fn encode_reply(&self, reply: &Reply) -> Vec<u8> {
        match reply {
            Reply::ApAnswer => ap_answer(
                self.request_id,
                &[relay("10.2.0.1", 4600), relay("10.2.0.2", 4601)],
            ),
            Reply::TunnelAccept { udp, trailing } => {
                let mut b = tunnel_accept(SESSION, if *udp { 4600 } else { 0 }, 1_000);
                b.extend_from_slice(trailing);
                b
            }
            Reply::MediaChannelAccept => encode(&Message::MediaChannelAccept {
                session_id: SESSION,
            }),
            Reply::MediaData(payload) => encode(&Message::MediaData {
                session_id: SESSION,
                peer: sdrtn().media_udp,
                payload: payload.clone(),
            }),
            Reply::KeepaliveAck => encode(&Message::KeepaliveAck {
                session_id: SESSION,
                seq: 1,
            }),
            Reply::Close => encode(&Message::Close {
                session_id: SESSION,
                reason: CloseReason::Normal,
            }),
            Reply::Error(code) => encode(&Message::error(ErrorCode::from_u16(*code), "no")),
            Reply::SocksOk => vec![5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0x13, 0x88],
            Reply::Socks7 => vec![5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
            Reply::EdgeFrame(payload) => {
                let mut b = Vec::new();
                let _ = crate::sdrtn::encode_media_frame(payload, &mut b);
                b
            }
            Reply::SocksUdp(payload) => {
                let mut b = Vec::new();
                encode_udp_datagram(&Address::Ip(sdrtn().media_udp), payload, &mut b);
                b
            }
        }
    }

    /// What the server at the other end of connection `i` says next.
    fn serve(&self, i: usize, sel: u8) -> Option<Reply> {
        let to = *self.targets.get(i)?;
        let conn = self.conns[i];
        let first = self
            .first_sent
            .iter()
            .find(|(c, _)| *c == conn)
            .map(|(_, d)| d.clone());
        let sd = sdrtn();
        Some(match to.ip().to_string().as_str() {
            "10.1.0.1" | "10.1.0.2" => Reply::ApAnswer,
            "10.2.0.1" | "10.2.0.2" => match first.and_then(|d| Message::decode(&d).ok()) {
                Some((Message::TunnelOpen { .. }, _)) => Reply::TunnelAccept {
                    udp: sel % 3 != 0,
                    trailing: b"sig".to_vec(),
                },
                Some((Message::MediaChannelOpen { .. }, _)) if sel % 2 == 0 => {
                    Reply::MediaChannelAccept
                }
                _ => Reply::MediaData(vec![sel; 3]),
            },
            "10.3.0.1" if sel % 5 == 0 => Reply::Socks7,
            "10.3.0.1" => Reply::SocksOk,
            _ if to == sd.media_tcp => Reply::EdgeFrame(vec![sel; 2]),
            _ => return None,
        })
    }

    /// What the server behind UDP destination `to` answers.
    fn serve_udp(&self, to: SocketAddr, sel: u8) -> Vec<u8> {
        match to.ip().to_string().as_str() {
            "10.1.0.1" | "10.1.0.2" => self.encode_reply(&Reply::ApAnswer),
            "10.2.0.1" | "10.2.0.2" if sel % 2 == 0 => self.encode_reply(&Reply::KeepaliveAck),
            "10.2.0.1" | "10.2.0.2" => self.encode_reply(&Reply::MediaData(vec![sel])),
            "10.3.0.1" => self.encode_reply(&Reply::SocksUdp(vec![sel])),
            _ => vec![sel, 1, 2],
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Serve(sel) => {
                let i = pick(*sel, self.conns.len());
                let Some(&conn) = self.conns.get(i) else {
                    return self.drain(self.left);
                };
                if !self.connected.contains(&conn) {
                    self.connected.insert(conn);
                    self.client
                        .handle_input(ClientInput::TcpConnected { conn }, now);
                } else if let Some(reply) = self.serve(i, *sel) {
                    let data = self.encode_reply(&reply);
                    self.client
                        .handle_input(ClientInput::TcpData { conn, data: &data }, now);
                }
            }
            Op::ServeUdp(sel) => {
                let from = self.peer(*sel);
                let data = self.serve_udp(from, *sel);
                self.client
                    .handle_input(ClientInput::UdpData { from, data: &data }, now);
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.client.handle_timeout(self.now);
            }
            Op::Connected(c) => {
                let conn = self.conn(*c);
                self.connected.insert(conn);
                self.client
                    .handle_input(ClientInput::TcpConnected { conn }, now);
            }
            Op::Failed(c) => {
                let conn = self.conn(*c);
                self.closed.insert(conn);
                self.client
                    .handle_input(ClientInput::TcpFailed { conn, reason: "x" }, now);
            }
            Op::Closed(c) => {
                let conn = self.conn(*c);
                self.closed.insert(conn);
                self.client
                    .handle_input(ClientInput::TcpClosed { conn }, now);
            }
            Op::Data(c, data) => {
                let conn = self.conn(*c);
                self.client
                    .handle_input(ClientInput::TcpData { conn, data }, now);
            }
            Op::Reply(c, reply) => {
                let conn = self.conn(*c);
                let data = self.encode_reply(reply);
                self.client
                    .handle_input(ClientInput::TcpData { conn, data: &data }, now);
            }
            Op::Udp(p, data) => {
                let from = self.peer(*p);
                self.client
                    .handle_input(ClientInput::UdpData { from, data }, now);
            }
            Op::UdpReply(p, reply) => {
                let from = self.peer(*p);
                let data = self.encode_reply(reply);
                self.client
                    .handle_input(ClientInput::UdpData { from, data: &data }, now);
            }
            Op::Resolved(some) => {
                let name = self.resolving.clone().unwrap_or_else(|| "nobody".into());
                let addrs = [ip("10.1.0.1"), ip("10.1.0.2")];
                let addrs: &[IpAddr] = if *some { &addrs } else { &[] };
                self.client
                    .handle_input(ClientInput::Resolved { name: &name, addrs }, now);
            }
            Op::ResolveFailed => {
                let name = self.resolving.clone().unwrap_or_else(|| "nobody".into());
                self.client.handle_input(
                    ClientInput::ResolveFailed {
                        name: &name,
                        reason: "SERVFAIL",
                    },
                    now,
                );
            }
            Op::Signal(data) => self
                .client
                .handle_input(ClientInput::SendSignalling { data }, now),
            Op::Media(payload) => self
                .client
                .handle_input(ClientInput::SendMedia { payload }, now),
            Op::Leave => {
                let was_left = self.left;
                self.client.handle_input(ClientInput::Leave, now);
                self.drain(was_left);
                self.left = true;
                assert_eq!(self.client.state(), ConnectionState::Disconnected);
                assert_eq!(self.client.poll_timeout(), None);
                return;
            }
        }
        self.drain(self.left);
    }
}

// 256 cases by default; set PROPTEST_CASES for a longer run.
proptest! {
    #[test]
    fn arbitrary_inputs_keep_the_promises(
        proxy in proxy(),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut world = World::new(proxy, seed);
        for op in &ops {
            world.apply(op);
        }
        // Leaving always works, and ends everything.
        world.apply(&Op::Leave);
        let opened: BTreeSet<ConnId> = world.conns.iter().copied().collect();
        prop_assert!(world.closed.is_subset(&opened) || world.closed.contains(&ConnId(u64::MAX)));
        for conn in &world.conns {
            prop_assert!(world.closed.contains(conn), "{} left open after Leave", conn);
        }
    }
}

#[test]
fn timers_at_the_end_of_time_do_not_hang_or_panic() {
    let mut world = World::new(ip_list(&["10.1.0.1"], 0), 3);
    world.now = Instant::MAX;
    world.client.handle_timeout(Instant::MAX);
    while world.client.poll_output().is_some() {}
    world
        .client
        .handle_input(ClientInput::SendMedia { payload: b"x" }, Instant::EPOCH);
    while world.client.poll_output().is_some() {}
}

/// The generator is only worth its cases if they get somewhere: with the deterministic runner,
/// every proxy type reaches `Connected`, and both media paths come up.
#[test]
fn generated_sequences_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (
        proxy(),
        any::<u64>(),
        proptest::collection::vec(op(), 0..80),
    );
    let mut connected_types = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for _ in 0..400 {
        let (proxy, seed, ops) = strategy.new_tree(&mut runner).unwrap().current();
        let kind = proxy.as_ref().map(ProxyServer::proxy_type);
        let mut world = World::new(proxy, seed);
        for op in &ops {
            world.apply(op);
            if world.state == ConnectionState::Connected {
                connected_types.insert(kind);
            }
            paths.insert(format!("{:?}", world.path));
        }
    }
    assert_eq!(connected_types.len(), 4, "{connected_types:?}");
    assert!(paths.contains("Udp") && paths.contains("Tcp"), "{paths:?}");
}
