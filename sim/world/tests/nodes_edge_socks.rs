//! The SD-RTN edge and the enterprise SOCKS5 server in a turmoil world: membership, media
//! forwarding over UDP and TCP, CONNECT tunnels, UDP ASSOCIATE relaying, refusals and garbage.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::app::{media_packet, read_media, LineReader, Signal};
use cloudproxy_core::sdrtn::{encode_media_frame, MediaFrameReader, SdRtnEndpoints};
use cloudproxy_core::socks5::{
    decode_udp_datagram, encode_udp_datagram, Address, ClientHandshake, ClientProgress, Command,
    ReplyCode, ServerPolicy, Socks5Error,
};
use cloudproxy_node::nodes::edge::{run_edge, EdgeStats};
use cloudproxy_node::nodes::socks::{run_socks5, Socks5Stats};
use cloudproxy_sim::net::SimNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpStream, UdpSocket};

const EDGE_IP: &str = "101.36.1.10";
const SOCKS_IP: &str = "10.1.0.2";
const SOCKS_PORT: u16 = 1080;
/// Media packets each sender sends in the measured phase.
const N: u32 = 20;

fn endpoints() -> SdRtnEndpoints {
    SdRtnEndpoints {
        signalling: format!("{EDGE_IP}:8000").parse().unwrap(),
        media_udp: format!("{EDGE_IP}:4500").parse().unwrap(),
        media_tcp: format!("{EDGE_IP}:9700").parse().unwrap(),
    }
}

fn socks_addr() -> SocketAddr {
    format!("{SOCKS_IP}:{SOCKS_PORT}").parse().unwrap()
}

fn world<'a>() -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(1)
        .tcp_capacity(4096)
        .simulation_duration(Duration::from_secs(30))
        .build()
}

fn add_edge(sim: &mut turmoil::Sim<'_>, stats: &Rc<RefCell<EdgeStats>>) {
    let stats = stats.clone();
    sim.host(EDGE_IP, move || {
        let stats = stats.clone();
        async move {
            run_edge(SimNet, endpoints(), stats).await?;
            Ok(())
        }
    });
}

fn add_socks(sim: &mut turmoil::Sim<'_>, policy: ServerPolicy, stats: &Rc<RefCell<Socks5Stats>>) {
    let stats = stats.clone();
    sim.host(SOCKS_IP, move || {
        let stats = stats.clone();
        let policy = policy.clone();
        async move {
            let own_ip: IpAddr = SOCKS_IP.parse()?;
            run_socks5(SimNet, SimNet, own_ip, SOCKS_PORT, policy, stats).await?;
            Ok(())
        }
    });
}

/// Long enough for anything in flight to land (turmoil's latency is at most 100 ms).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Waits until the shared phase reaches `n`.
async fn phase_at_least(phase: &Cell<u32>, n: u32) {
    while phase.get() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A signalling connection as a client sees it.
struct Sig {
    stream: TcpStream,
    lines: LineReader,
    pending: std::collections::VecDeque<Signal>,
}

impl Sig {
    async fn connect(to: SocketAddr) -> std::io::Result<Sig> {
        Ok(Sig::over(TcpStream::connect(to).await?, &[]))
    }

    /// Signalling over an established stream (a tunnel), with bytes already read from it.
    fn over(stream: TcpStream, already: &[u8]) -> Sig {
        let mut lines = LineReader::default();
        let pending = lines.push(already).unwrap().into();
        Sig {
            stream,
            lines,
            pending,
        }
    }

    async fn send(&mut self, signal: &Signal) -> std::io::Result<()> {
        self.stream.write_all(&signal.to_line()).await
    }

    async fn recv(&mut self) -> Signal {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(signal) = self.pending.pop_front() {
                return signal;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(n > 0, "signalling connection closed");
            self.pending.extend(self.lines.push(&buf[..n]).unwrap());
        }
    }

    async fn join(&mut self, ch: &str, uid: u32, seq: u64) {
        self.send(&Signal::Join {
            ch: ch.into(),
            uid,
            seq,
        })
        .await
        .unwrap();
        assert_eq!(self.recv().await, Signal::Ack { seq });
    }

    async fn msg(&mut self, seq: u64, body: &str) {
        self.send(&Signal::Msg {
            seq,
            body: body.into(),
        })
        .await
        .unwrap();
        assert_eq!(self.recv().await, Signal::Ack { seq });
    }
}

/// Receives UDP datagrams until none arrives for `quiet`.
async fn drain_udp(udp: &UdpSocket, quiet: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((n, from))) = tokio::time::timeout(quiet, udp.recv_from(&mut buf)).await {
        got.push((buf[..n].to_vec(), from));
    }
    got
}

/// Receives framed media until none arrives for `quiet`.
async fn drain_frames(stream: &mut TcpStream, quiet: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut framing = MediaFrameReader::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        framing.push_all(&buf[..n], &mut got).unwrap();
    }
    got
}

/// The (uid, seq) of intact media packets, in arrival order.
fn heard(packets: impl IntoIterator<Item = Vec<u8>>) -> Vec<(u32, u32)> {
    packets
        .into_iter()
        .map(|p| {
            let h = read_media(&p).expect("a media header");
            assert!(h.intact, "packet {h:?} arrived corrupt");
            (h.uid, h.seq)
        })
        .collect()
}

fn sorted(mut v: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    v.sort_unstable();
    v
}

fn seqs_of(uid: u32, seqs: std::ops::RangeInclusive<u32>) -> Vec<(u32, u32)> {
    seqs.map(|s| (uid, s)).collect()
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_media_frame(packet, &mut out).unwrap();
    out
}

/// Runs a SOCKS5 client handshake on a new connection to the server. `early` is sent right
/// behind the request, before the reply (early data the server must pass on).
async fn socks5(
    command: Command,
    target: Address,
    early: &[u8],
) -> (TcpStream, Result<Vec<u8>, Socks5Error>, Option<Address>) {
    let mut stream = TcpStream::connect(socks_addr()).await.unwrap();
    let mut client = ClientHandshake::new(None, command, target);
    let mut sent = 0;
    let mut buf = [0u8; 1024];
    loop {
        if let Some(mut out) = client.poll_transmit() {
            sent += 1;
            if sent == 2 {
                out.extend_from_slice(early);
            }
            stream.write_all(&out).await.unwrap();
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed during the handshake");
        match client.handle_bytes(&buf[..n]) {
            Ok(ClientProgress::Pending) => {}
            Ok(ClientProgress::Done { reply, leftover }) => {
                return (stream, Ok(leftover), Some(reply.bound));
            }
            Ok(other) => panic!("unexpected progress {other:?}"),
            Err(e) => return (stream, Err(e), None),
        }
    }
}

/// Signalling to the edge through a SOCKS5 CONNECT tunnel; the join rides as early data.
async fn tunnelled_join(ch: &str, uid: u32) -> Sig {
    let join = Signal::Join {
        ch: ch.into(),
        uid,
        seq: 1,
    }
    .to_line();
    let (stream, result, _) =
        socks5(Command::Connect, Address::Ip(endpoints().signalling), &join).await;
    let mut sig = Sig::over(stream, &result.expect("CONNECT succeeds"));
    assert_eq!(sig.recv().await, Signal::Ack { seq: 1 });
    sig
}

/// Reads until the peer closes; panics if it sends anything or stays open for 15 s.
async fn expect_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await;
    match read.expect("closed within 15 s") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected a close, got {:?}", &buf[..n]),
    }
}

#[test]
fn channel_members_hear_each_other_over_udp_and_tcp_and_no_one_else() -> turmoil::Result {
    let mut sim = world();
    let stats = Rc::new(RefCell::new(EdgeStats::default()));
    add_edge(&mut sim, &stats);
    let phase = Rc::new(Cell::new(0u32));
    let ep = endpoints();

    // Alice: channel "room", uid 1, media over UDP.
    let p = phase.clone();
    sim.client("10.1.0.11", async move {
        let mut sig = Sig::connect(ep.signalling).await?;
        sig.join("room", 1, 1).await;
        let udp = UdpSocket::bind("0.0.0.0:5000").await?;
        // Nobody else in the room yet: registers alice's sink, forwarded to no one.
        udp.send_to(&media_packet(1, 0, b"hello"), ep.media_udp)
            .await?;
        settle().await;
        p.set(1);
        phase_at_least(&p, 3).await;
        sig.msg(2, "alice sends").await;
        for seq in 1..=N {
            udp.send_to(&media_packet(1, seq, b"from alice"), ep.media_udp)
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = drain_udp(&udp, Duration::from_secs(2)).await;
        assert!(got.iter().all(|(_, from)| *from == ep.media_udp));
        // Bob's hello (alice had a sink by then) and his N packets; nothing from carol.
        let heard = heard(got.into_iter().map(|(p, _)| p));
        assert_eq!(sorted(heard), seqs_of(2, 0..=N));
        Ok(())
    });

    // Bob: channel "room", uid 2, media over TCP.
    let p = phase.clone();
    sim.client("10.1.0.12", async move {
        phase_at_least(&p, 1).await;
        let mut sig = Sig::connect(ep.signalling).await?;
        sig.join("room", 2, 1).await;
        let mut media = TcpStream::connect(ep.media_tcp).await?;
        media
            .write_all(&framed(&media_packet(2, 0, b"hello")))
            .await?;
        settle().await;
        p.set(2);
        phase_at_least(&p, 3).await;
        for seq in 1..=N {
            media
                .write_all(&framed(&media_packet(2, seq, b"from bob")))
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let heard = heard(drain_frames(&mut media, Duration::from_secs(2)).await);
        // Alice's leg is UDP (turmoil's latency reorders it); the edge's TCP leg is not.
        assert_eq!(sorted(heard), seqs_of(1, 1..=N));
        Ok(())
    });

    // Carol: channel "lobby", uid 3, media over UDP: hears nothing, is heard by no one.
    let p = phase.clone();
    let s = stats.clone();
    sim.client("10.1.0.13", async move {
        phase_at_least(&p, 2).await;
        let mut sig = Sig::connect(ep.signalling).await?;
        sig.join("lobby", 3, 1).await;
        let udp = UdpSocket::bind("0.0.0.0:5000").await?;
        udp.send_to(&media_packet(3, 0, b"hello"), ep.media_udp)
            .await?;
        settle().await;
        let expected: BTreeMap<String, BTreeSet<u32>> = [
            ("lobby".to_string(), BTreeSet::from([3])),
            ("room".to_string(), BTreeSet::from([1, 2])),
        ]
        .into();
        assert_eq!(s.borrow().members, expected);
        p.set(3);
        for seq in 1..=N {
            udp.send_to(&media_packet(3, seq, b"from carol"), ep.media_udp)
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(drain_udp(&udp, Duration::from_secs(2)).await, []);
        Ok(())
    });

    // Mallory: a uid in no channel, a corrupt packet claiming to be alice, a runt.
    let p = phase.clone();
    sim.client("10.1.0.14", async move {
        phase_at_least(&p, 3).await;
        let udp = UdpSocket::bind("0.0.0.0:5000").await?;
        for seq in 1..=3 {
            udp.send_to(&media_packet(9, seq, b"let me in"), ep.media_udp)
                .await?;
        }
        let mut corrupt = media_packet(1, 99, b"spoof");
        corrupt[13] ^= 0x20;
        udp.send_to(&corrupt, ep.media_udp).await?;
        udp.send_to(b"runt", ep.media_udp).await?;
        assert_eq!(drain_udp(&udp, Duration::from_secs(2)).await, []);
        Ok(())
    });

    sim.run()?;
    let stats = stats.borrow();
    assert_eq!(stats.media_in, 3 + 3 * u64::from(N) + 5);
    assert_eq!(stats.media_forwarded, 1 + 2 * u64::from(N));
    assert_eq!(stats.media_dropped_not_joined, 3);
    assert_eq!(stats.media_corrupt, 2);
    assert_eq!(stats.media_dropped_congested, 0);
    assert_eq!(stats.signalling_messages, 4);
    assert_eq!(
        stats.signalling_per_uid,
        BTreeMap::from([(1, 2), (2, 1), (3, 1)])
    );
    assert_eq!(stats.signalling_out_of_order, 0);
    assert_eq!(stats.connections, 4);
    assert_eq!(stats.broken_connections, 0);
    Ok(())
}

#[test]
fn a_rejoin_replaces_the_old_connection_and_a_broken_line_ends_only_its_own() -> turmoil::Result {
    let mut sim = world();
    let stats = Rc::new(RefCell::new(EdgeStats::default()));
    add_edge(&mut sim, &stats);
    let ep = endpoints();
    let s = stats.clone();
    sim.client("10.1.0.11", async move {
        let room = |uids: &[u32]| -> BTreeMap<String, BTreeSet<u32>> {
            if uids.is_empty() {
                BTreeMap::new()
            } else {
                [("room".to_string(), uids.iter().copied().collect())].into()
            }
        };
        let mut first = Sig::connect(ep.signalling).await?;
        first.join("room", 1, 1).await;
        // The reconnect: the same uid from a new connection; the old one then goes away.
        let mut second = Sig::connect(ep.signalling).await?;
        second.join("room", 1, 2).await;
        drop(first);
        settle().await;
        assert_eq!(
            s.borrow().members,
            room(&[1]),
            "the old connection no longer owns uid 1"
        );

        // A repeated seq is acknowledged, and counted.
        second.msg(2, "again").await;
        assert_eq!(s.borrow().signalling_out_of_order, 1);

        // A line that is not a message ends that connection only.
        let mut bad = TcpStream::connect(ep.signalling).await?;
        bad.write_all(b"{\"t\":\"join\",\"ch\":\"room\"}\n").await?;
        expect_closed(&mut bad).await;
        assert_eq!(s.borrow().broken_connections, 1);
        second.msg(3, "still here").await;
        assert_eq!(s.borrow().members, room(&[1]));

        drop(second);
        settle().await;
        assert_eq!(
            s.borrow().members,
            room(&[]),
            "uid 1 left with its connection"
        );
        Ok(())
    });
    sim.run()?;
    let stats = stats.borrow();
    assert_eq!(stats.signalling_messages, 4);
    assert_eq!(stats.signalling_per_uid, BTreeMap::from([(1, 4)]));
    assert_eq!(stats.connections, 3);
    Ok(())
}

#[test]
fn socks5_connect_tunnels_signalling_to_the_edge_and_refuses_what_it_cannot_reach(
) -> turmoil::Result {
    let mut sim = world();
    let edge = Rc::new(RefCell::new(EdgeStats::default()));
    let socks = Rc::new(RefCell::new(Socks5Stats::default()));
    add_edge(&mut sim, &edge);
    add_socks(&mut sim, ServerPolicy::default(), &socks);
    sim.client("10.1.0.11", async move {
        // The join rides as early data behind the request: the server passes it on.
        let mut sig = tunnelled_join("room", 7).await;
        sig.msg(2, "through the enterprise proxy").await;
        sig.msg(3, "and again").await;

        let closed_port: SocketAddr = format!("{EDGE_IP}:1").parse().unwrap();
        let (mut stream, result, _) = socks5(Command::Connect, Address::Ip(closed_port), b"").await;
        assert_eq!(
            result,
            Err(Socks5Error::ServerRefused(ReplyCode::ConnectionRefused))
        );
        expect_closed(&mut stream).await;

        let by_name = Address::domain("edge.sd-rtn.example", 8000).unwrap();
        let (mut stream, result, _) = socks5(Command::Connect, by_name, b"").await;
        assert_eq!(
            result,
            Err(Socks5Error::ServerRefused(
                ReplyCode::AddressTypeNotSupported
            ))
        );
        expect_closed(&mut stream).await;
        Ok(())
    });
    sim.run()?;
    let socks = socks.borrow();
    assert_eq!(socks.connections, 3);
    assert_eq!(socks.connects_ok, 1);
    assert_eq!(socks.connects_failed, 2);
    assert_eq!(socks.handshake_errors, 0);
    let edge = edge.borrow();
    assert_eq!(edge.signalling_messages, 3);
    assert_eq!(edge.signalling_per_uid, BTreeMap::from([(7, 3)]));
    Ok(())
}

#[test]
fn socks5_udp_associate_relays_media_both_ways() -> turmoil::Result {
    let mut sim = world();
    let edge = Rc::new(RefCell::new(EdgeStats::default()));
    let socks = Rc::new(RefCell::new(Socks5Stats::default()));
    add_edge(&mut sim, &edge);
    add_socks(&mut sim, ServerPolicy::default(), &socks);
    let phase = Rc::new(Cell::new(0u32));
    let relay_addr: Rc<Cell<Option<SocketAddr>>> = Rc::new(Cell::new(None));
    let ep = endpoints();
    let socks_ip: IpAddr = SOCKS_IP.parse()?;

    // Alice talks to the edge directly.
    let p = phase.clone();
    sim.client("10.1.0.11", async move {
        let mut sig = Sig::connect(ep.signalling).await?;
        sig.join("room", 1, 1).await;
        let udp = UdpSocket::bind("0.0.0.0:5000").await?;
        udp.send_to(&media_packet(1, 0, b"hello"), ep.media_udp)
            .await?;
        settle().await;
        p.set(1);
        phase_at_least(&p, 2).await;
        for seq in 1..=N {
            udp.send_to(&media_packet(1, seq, b"from alice"), ep.media_udp)
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let heard = heard(
            drain_udp(&udp, Duration::from_secs(2))
                .await
                .into_iter()
                .map(|(p, _)| p),
        );
        assert_eq!(sorted(heard), seqs_of(2, 0..=N));
        Ok(())
    });

    // Bob is behind the enterprise SOCKS5 server: signalling over CONNECT, media over
    // UDP ASSOCIATE.
    let p = phase.clone();
    let relay = relay_addr.clone();
    sim.client("10.1.0.12", async move {
        phase_at_least(&p, 1).await;
        let _sig = tunnelled_join("room", 2).await;
        let (_control, result, bound) =
            socks5(Command::UdpAssociate, Address::unspecified(), b"").await;
        result.expect("UDP ASSOCIATE succeeds");
        let Some(Address::Ip(bound)) = bound else {
            panic!("bound {bound:?}")
        };
        assert_eq!(bound.ip(), socks_ip);
        relay.set(Some(bound));
        let udp = UdpSocket::bind("0.0.0.0:6000").await?;
        let wrap = |packet: &[u8]| {
            let mut out = Vec::new();
            encode_udp_datagram(&Address::Ip(ep.media_udp), packet, &mut out);
            out
        };
        let mut fragment = wrap(&media_packet(2, 77, b"fragment"));
        fragment[2] = 1;
        udp.send_to(&fragment, bound).await?;
        udp.send_to(&wrap(&media_packet(2, 0, b"hello")), bound)
            .await?;
        settle().await;
        p.set(2);
        for seq in 1..=N {
            udp.send_to(&wrap(&media_packet(2, seq, b"from bob")), bound)
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = drain_udp(&udp, Duration::from_secs(2)).await;
        let packets = got.iter().map(|(datagram, from)| {
            assert_eq!(
                *from, bound,
                "relayed datagrams come from the relay's address"
            );
            let (source, payload) = decode_udp_datagram(datagram).unwrap();
            assert_eq!(
                source,
                Address::Ip(ep.media_udp),
                "the header names the sender"
            );
            payload.to_vec()
        });
        assert_eq!(sorted(heard(packets)), seqs_of(1, 1..=N));
        Ok(())
    });

    // A stranger on another IP cannot use bob's association.
    let p = phase.clone();
    sim.client("10.1.0.13", async move {
        phase_at_least(&p, 2).await;
        let bound = relay_addr.get().expect("bob's relay address");
        let udp = UdpSocket::bind("0.0.0.0:6000").await?;
        let mut datagram = Vec::new();
        encode_udp_datagram(
            &Address::Ip(ep.media_udp),
            &media_packet(2, 500, b"x"),
            &mut datagram,
        );
        udp.send_to(&datagram, bound).await?;
        assert_eq!(drain_udp(&udp, Duration::from_secs(2)).await, []);
        Ok(())
    });

    sim.run()?;
    let socks = socks.borrow();
    assert_eq!(socks.connections, 2);
    assert_eq!(socks.connects_ok, 1);
    assert_eq!(socks.udp_associations, 1);
    assert_eq!(socks.datagrams_out, 1 + u64::from(N));
    assert_eq!(socks.datagrams_in, u64::from(N));
    assert_eq!(socks.frag_dropped, 1);
    assert_eq!(socks.datagrams_invalid, 1);
    assert_eq!(socks.datagrams_unroutable, 0);
    let edge = edge.borrow();
    assert_eq!(edge.media_forwarded, 1 + 2 * u64::from(N));
    assert_eq!(edge.media_dropped_not_joined, 0);
    Ok(())
}

#[test]
fn socks5_without_udp_associate_answers_command_not_supported() -> turmoil::Result {
    let mut sim = world();
    let socks = Rc::new(RefCell::new(Socks5Stats::default()));
    let policy = ServerPolicy {
        udp_associate: false,
        ..ServerPolicy::default()
    };
    add_socks(&mut sim, policy, &socks);
    sim.client("10.1.0.11", async move {
        let (mut stream, result, _) =
            socks5(Command::UdpAssociate, Address::unspecified(), b"").await;
        assert_eq!(
            result,
            Err(Socks5Error::ServerRefused(ReplyCode::CommandNotSupported))
        );
        expect_closed(&mut stream).await;
        Ok(())
    });
    sim.run()?;
    let socks = socks.borrow();
    assert_eq!(socks.udp_refused, 1);
    assert_eq!(socks.udp_associations, 0);
    assert_eq!(socks.handshake_errors, 0);
    Ok(())
}

#[test]
fn socks5_garbage_and_silence_end_only_their_own_connections() -> turmoil::Result {
    let mut sim = world();
    let edge = Rc::new(RefCell::new(EdgeStats::default()));
    let socks = Rc::new(RefCell::new(Socks5Stats::default()));
    add_edge(&mut sim, &edge);
    add_socks(&mut sim, ServerPolicy::default(), &socks);
    let phase = Rc::new(Cell::new(0u32));

    let p = phase.clone();
    sim.client("10.1.0.11", async move {
        let mut sig = tunnelled_join("room", 1).await;
        p.set(1);
        phase_at_least(&p, 2).await;
        sig.msg(2, "unaffected").await;
        Ok(())
    });

    let p = phase.clone();
    sim.client("10.1.0.12", async move {
        phase_at_least(&p, 1).await;
        let mut garbage = TcpStream::connect(socks_addr()).await?;
        garbage
            .write_all(b"GET / HTTP/1.1\r\nHost: edge\r\n\r\n")
            .await?;
        expect_closed(&mut garbage).await;
        // A client that never finishes its greeting is closed after the handshake timeout.
        let mut silent = TcpStream::connect(socks_addr()).await?;
        silent.write_all(&[0x05, 0x01]).await?;
        expect_closed(&mut silent).await;
        p.set(2);
        Ok(())
    });

    sim.run()?;
    let socks = socks.borrow();
    assert_eq!(socks.connections, 3);
    assert_eq!(socks.connects_ok, 1);
    assert_eq!(socks.handshake_errors, 2);
    assert_eq!(edge.borrow().signalling_messages, 2);
    Ok(())
}
