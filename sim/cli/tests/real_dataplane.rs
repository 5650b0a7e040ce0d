//! The relay's data plane on real sockets, against a real `cloudproxy serve` on loopback:
//! tunnels are never cut for being fast, a failed UDP bind ends one session only, a UDP
//! flood does not starve new sessions or tunnels, write queues go with their connection, and
//! the workers share their ledger and hand media channels to their owner. Everything is
//! bounded in bytes and time and stops by itself.
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use cloudproxy_core::wire::{DecodeError, ErrorCode, Message, Ticket, FLAG_UDP_MEDIA};
use real_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// The SD-RTN echo and sink of these tests (inside the block's SD-RTN range).
fn echo_addr(b: Block) -> SocketAddr {
    SocketAddr::new(b.ip(3, 2), 7000)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Echoes every TCP connection and UDP datagram at `echo_addr`.
async fn start_echo(b: Block) {
    let listener = TcpListener::bind(echo_addr(b)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let udp = UdpSocket::bind(echo_addr(b)).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..n], from).await;
        }
    });
}

/// A ticket for `client` from the block's access point.
async fn ticket(b: Block, client: IpAddr) -> Ticket {
    let udp = UdpSocket::bind(SocketAddr::new(client, 0)).await.unwrap();
    let request = Message::padded_ap_request(3, "dataplane-test", FLAG_UDP_MEDIA)
        .to_bytes()
        .unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..20 {
        udp.send_to(&request, SocketAddr::new(b.ap(), 8000))
            .await
            .unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await
        {
            if let Ok(Message::ApResponse { ticket, .. }) = Message::decode_datagram(&buf[..n]) {
                return ticket;
            }
        }
    }
    panic!("no ticket from the access point");
}

/// Connects from `client` to the relay's TCP port.
async fn connect(b: Block, client: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(client, 0)).unwrap();
    socket
        .connect(SocketAddr::new(b.relay(1), 4000))
        .await
        .unwrap()
}

/// Reads one whole message (within 5 s).
async fn read_message(stream: &mut TcpStream) -> Result<Message, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match Message::decode(&buf) {
                Ok((message, _)) => return Ok(message),
                Err(DecodeError::Incomplete { .. }) => {}
                Err(e) => return Err(format!("undecodable: {e}")),
            }
            // One byte at a time: nothing after the message is consumed.
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return Err(format!("closed after {} bytes", buf.len())),
                Ok(_) => buf.push(byte[0]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no message within 5 s".into()))
}

/// A tunnel from `client` to the echo: (stream, session id, udp port).
async fn tunnel(b: Block, client: IpAddr) -> Result<(TcpStream, u64, u16), String> {
    let ticket = ticket(b, client).await;
    let mut stream = connect(b, client).await;
    let open = Message::TunnelOpen {
        ticket,
        destination: echo_addr(b),
    };
    stream.write_all(&open.to_bytes().unwrap()).await.unwrap();
    match read_message(&mut stream).await? {
        Message::TunnelAccept {
            session_id,
            udp_port,
            ..
        } => Ok((stream, session_id, udp_port)),
        other => Err(format!("no TunnelAccept: {other:?}")),
    }
}

/// A `serve` of block `b` with one relay and `relay_extra` in its `[relay]` section.
fn serve(b: Block, dir: &TempDir, relay_extra: &str) -> Proc {
    let config = serve_config(b, &[b.ap()], &[b.relay(1)], &[], b.metrics(1), relay_extra);
    start_serve("serve", dir, &config, &random_key())
}

fn relay_metric(b: Block, name: &str) -> u64 {
    metric(
        &scrape(b.metrics(1)),
        name,
        &format!("relay=\"{}\"", b.relay(1)),
    )
}

/// Waits (bounded) until `done` holds; false if it never did.
fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn an_unpaced_tunnel_is_never_cut_and_every_byte_arrives_both_ways() {
    const B: Block = Block(61);
    const BYTES: usize = 64 << 20;
    let dir = TempDir::new("dataplane-tunnel");
    let _serve = serve(B, &dir, "max_queued_bytes_per_stream = 65536\n");
    runtime().block_on(async {
        start_echo(B).await;
        let (stream, _, _) = tunnel(B, B.client(1)).await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let pattern: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8).collect();
        let expect = pattern.clone();
        // The client sends as fast as it can while the echo sends it all back.
        let writer = tokio::spawn(async move {
            w.write_all(&pattern).await.unwrap();
            w
        });
        let mut got = vec![0u8; BYTES];
        tokio::time::timeout(Duration::from_secs(60), r.read_exact(&mut got))
            .await
            .expect("the echo within 60 s")
            .expect("the tunnel was cut");
        assert!(got == expect, "the bytes came back changed");
        drop(writer.await.unwrap());
    });
    assert!(eventually(Duration::from_secs(5), || {
        relay_metric(B, "cloudproxy_relay_sessions") == 0
    }));
    let text = scrape(B.metrics(1));
    let relay = format!("relay=\"{}\"", B.relay(1));
    let bytes = |dir: &str| {
        metric(
            &text,
            "cloudproxy_relay_bytes_total",
            &format!("{relay},path=\"tunnel\",direction=\"{dir}\""),
        )
    };
    assert_eq!(bytes("up"), BYTES as u64, "{text}");
    assert_eq!(bytes("down"), BYTES as u64, "{text}");
    assert_eq!(
        metric(&text, "cloudproxy_relay_stream_overflows_total", &relay),
        0
    );
    if cfg!(target_os = "linux") {
        assert_eq!(
            metric(&text, "cloudproxy_relay_tunnels_kernel_total", &relay),
            1,
            "{text}"
        );
    }
}

#[test]
fn a_failed_udp_bind_ends_that_session_only_and_serve_keeps_serving() {
    const B: Block = Block(62);
    let dir = TempDir::new("dataplane-bind");
    let serve = serve(B, &dir, "");
    let rt = runtime();
    rt.block_on(start_echo(B));
    let media = |session_id: u64| {
        Message::MediaData {
            session_id,
            peer: echo_addr(B),
            payload: b"rtp".to_vec(),
        }
        .to_bytes()
        .unwrap()
    };
    // Two tunnels while descriptors are plenty.
    let (first, second) = rt.block_on(async {
        let a = tunnel(B, B.client(1)).await.unwrap();
        let b = tunnel(B, B.client(2)).await.unwrap();
        (a, b)
    });
    // Now the process may open nothing more: its soft limit at what it has open
    // (counted from outside, so that counting opens nothing in it).
    // The limit bounds descriptor numbers, so it goes at the lowest free number: every
    // number below it is taken, and any new socket fails with EMFILE.
    std::thread::sleep(Duration::from_millis(300));
    let open: std::collections::BTreeSet<u64> =
        std::fs::read_dir(format!("/proc/{}/fd", serve.pid()))
            .expect("the serve process's descriptors")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
    let limit = (0..).find(|n| !open.contains(n)).unwrap();
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", serve.pid()))
        .arg(format!("--nofile={limit}:"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    // The first session's media needs an upstream socket: its bind fails, that session ends.
    rt.block_on(async {
        let udp = UdpSocket::bind(SocketAddr::new(B.client(1), 0))
            .await
            .unwrap();
        let to = SocketAddr::new(B.relay(1), first.2);
        let mut buf = vec![0u8; 2048];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                udp.send_to(&media(first.1), to).await.unwrap();
                if let Ok(Ok((n, _))) =
                    tokio::time::timeout(Duration::from_millis(200), udp.recv_from(&mut buf)).await
                {
                    if let Ok(Message::Close { .. }) = Message::decode_datagram(&buf[..n]) {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the session whose bind failed was not closed"
        );
    });
    assert!(eventually(Duration::from_secs(3), || {
        relay_metric(B, "cloudproxy_relay_udp_bind_failures_total") >= 1
    }));
    // Serve is still up; with the limit raised again, the other session and a new one work.
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", serve.pid()))
        .arg("--nofile=4096:")
        .status()
        .unwrap();
    assert!(status.success());
    rt.block_on(async {
        let (mut second_stream, second_id, second_port) = second;
        second_stream.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        tokio::time::timeout(Duration::from_secs(5), second_stream.read_exact(&mut back))
            .await
            .expect("the other tunnel answers")
            .unwrap();
        assert_eq!(&back, b"still here");
        let udp = UdpSocket::bind(SocketAddr::new(B.client(2), 0))
            .await
            .unwrap();
        udp.send_to(&media(second_id), SocketAddr::new(B.relay(1), second_port))
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
            .await
            .expect("the other session's media is relayed")
            .unwrap();
        assert!(matches!(
            Message::decode_datagram(&buf[..n]),
            Ok(Message::MediaData { .. })
        ));
        let fresh = tunnel(B, B.client(3)).await;
        assert!(fresh.is_ok(), "a new session after the failure: {fresh:?}");
    });
}

#[test]
fn a_udp_flood_does_not_starve_new_sessions_tunnels_or_timers() {
    const B: Block = Block(63);
    const FLOOD: Duration = Duration::from_secs(8);
    let dir = TempDir::new("dataplane-flood");
    let _serve = serve(B, &dir, "");
    let rt = runtime();
    rt.block_on(start_echo(B));
    // The flood: garbage at every media port from one address, as fast as this machine
    // sends, for a bounded time, on its own thread.
    let target = B.relay(1);
    let attacker = B.ip(66, 1);
    let flooding = std::thread::spawn(move || {
        let udp = std::net::UdpSocket::bind(SocketAddr::new(attacker, 0)).unwrap();
        let junk = [0x5Au8; 200];
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed() < FLOOD {
            for port in 4500..=4503 {
                let _ = udp.send_to(&junk, SocketAddr::new(target, port));
                sent += 1;
            }
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile a good client opens a session and makes round trips on its tunnel.
    let started = Instant::now();
    rt.block_on(async {
        let (mut stream, _, _) =
            tokio::time::timeout(Duration::from_secs(5), tunnel(B, B.client(1)))
                .await
                .expect("a session opens within 5 s during the flood")
                .unwrap();
        for i in 0..20u8 {
            stream.write_all(&[i; 100]).await.unwrap();
            let mut back = [0u8; 100];
            tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back))
                .await
                .expect("each round trip within 2 s during the flood")
                .unwrap();
            assert_eq!(back, [i; 100]);
        }
    });
    let during = started.elapsed();
    let sent = flooding.join().unwrap();
    assert!(
        during < FLOOD,
        "the good client's work ended after the flood ({during:?}): it was not tested under load"
    );
    let dropped = metric(
        &scrape(B.metrics(1)),
        "cloudproxy_relay_udp_dropped_total",
        &format!("relay=\"{}\",from=\"client\"", B.relay(1)),
    );
    assert!(
        dropped > 1000,
        "the flood reached the relay: {dropped} of {sent} seen"
    );
    eprintln!("flood: {sent} datagrams sent, {dropped} seen and dropped by the relay; the good client took {during:?}");
}

#[test]
fn a_write_queue_goes_with_its_connection() {
    const B: Block = Block(64);
    let dir = TempDir::new("dataplane-queue");
    let _serve = serve(
        B,
        &dir,
        "max_queued_bytes_per_stream = 65536\nshutdown_grace_ms = 1000\n",
    );
    let rt = runtime();
    rt.block_on(start_echo(B));
    let fds_before = metric(&scrape(B.metrics(1)), "process_open_fds", "");
    rt.block_on(async {
        let (tunnel_stream, session_id, _) = tunnel(B, B.client(1)).await.unwrap();
        // A media channel whose client never reads the answers to its keepalives.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind(SocketAddr::new(B.client(1), 0)).unwrap();
        let mut channel = socket
            .connect(SocketAddr::new(B.relay(1), 4000))
            .await
            .unwrap();
        let open = Message::MediaChannelOpen { session_id };
        channel.write_all(&open.to_bytes().unwrap()).await.unwrap();
        let mut burst = Vec::new();
        for seq in 0..2000 {
            burst.extend_from_slice(&Message::Keepalive { session_id, seq }.to_bytes().unwrap());
        }
        // Up to 50,000 keepalives (900 KB of answers nobody reads), or until the relay cuts us.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            for _ in 0..25 {
                if channel.write_all(&burst).await.is_err() {
                    return;
                }
            }
        })
        .await;
        // The tunnel closes; the channel stays open on our side, still not reading.
        drop(tunnel_stream);
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(channel);
    });
    let relay = format!("relay=\"{}\"", B.relay(1));
    // The relay learns of the channel's close asynchronously: wait (bounded) for it to settle.
    eventually(Duration::from_secs(10), || {
        let text = scrape(B.metrics(1));
        metric(&text, "cloudproxy_relay_connections", &relay) == 0
            && metric(&text, "cloudproxy_relay_sessions", &relay) == 0
    });
    let text = scrape(B.metrics(1));
    assert_eq!(
        metric(&text, "cloudproxy_relay_sessions", &relay),
        0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "cloudproxy_relay_connections", &relay),
        0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "cloudproxy_relay_queued_bytes", &relay),
        0,
        "{text}"
    );
    assert!(
        metric(&text, "cloudproxy_relay_queued_bytes_peak", &relay) <= 65536,
        "{text}"
    );
    let fds = metric(&text, "process_open_fds", "");
    assert!(
        fds <= fds_before + 1,
        "{fds} descriptors open, {fds_before} before"
    );
}

#[test]
fn shards_hand_media_channels_to_their_owner_and_refuse_replays_across_workers() {
    const B: Block = Block(65);
    let dir = TempDir::new("dataplane-shards");
    let config = serve_config(
        B,
        &[B.ap()],
        &[B.relay(1)],
        &[],
        B.metrics(1),
        "workers = 2\n",
    );
    let _serve = start_serve("serve", &dir, &config, &random_key());
    runtime().block_on(async {
        start_echo(B).await;
        let (_tunnel, session_id, _) = tunnel(B, B.client(1)).await.unwrap();
        // Sixteen channels in turn (each replaces the last): the kernel spreads them over both
        // workers, and every one is accepted by the session's owner.
        let mut channels = Vec::new();
        for seq in 0..16 {
            let mut channel = connect(B, B.client(1)).await;
            let open = Message::MediaChannelOpen { session_id };
            channel.write_all(&open.to_bytes().unwrap()).await.unwrap();
            let ka = Message::Keepalive { session_id, seq };
            channel.write_all(&ka.to_bytes().unwrap()).await.unwrap();
            assert_eq!(
                read_message(&mut channel).await,
                Ok(Message::MediaChannelAccept { session_id })
            );
            assert_eq!(
                read_message(&mut channel).await,
                Ok(Message::KeepaliveAck { session_id, seq })
            );
            channels.push(channel);
        }
        // A ticket opens one tunnel, whichever worker sees it again.
        let mut open_streams = Vec::new();
        for i in 0..8 {
            let client = B.client(10 + i);
            let t = ticket(B, client).await;
            for attempt in 0..2 {
                let mut stream = connect(B, client).await;
                let open = Message::TunnelOpen {
                    ticket: t.clone(),
                    destination: echo_addr(B),
                };
                stream.write_all(&open.to_bytes().unwrap()).await.unwrap();
                let answer = read_message(&mut stream).await.unwrap();
                match attempt {
                    0 => assert!(matches!(answer, Message::TunnelAccept { .. }), "{answer:?}"),
                    _ => assert!(
                        matches!(
                            answer,
                            Message::Error {
                                code: ErrorCode::TicketReplayed,
                                ..
                            }
                        ),
                        "{answer:?}"
                    ),
                }
                open_streams.push(stream);
            }
        }
    });
    let text = scrape(B.metrics(1));
    let relay = format!("relay=\"{}\"", B.relay(1));
    assert_eq!(metric(&text, "cloudproxy_relay_workers", ""), 2);
    let out = metric(
        &text,
        "cloudproxy_relay_handoffs_total",
        &format!("{relay},direction=\"out\""),
    );
    let taken = metric(
        &text,
        "cloudproxy_relay_handoffs_total",
        &format!("{relay},direction=\"in\""),
    );
    assert!(
        out >= 1 && taken == out,
        "handoffs out {out}, in {taken}\n{text}"
    );
    assert_eq!(
        metric(
            &text,
            "cloudproxy_relay_media_channels_replaced_total",
            &relay
        ),
        15
    );
}

/// A client that sends a burst in one segmented send (GSO, as a modern stack sends a video
/// frame's packets) reaches the relay's media port as one coalesced message (UDP GRO); the
/// relay cuts it into its datagrams and relays each, in order, and counts them.
#[test]
fn a_coalesced_burst_is_relayed_datagram_by_datagram() {
    use cloudproxy_node::net::Udp;
    const B: Block = Block(66);
    const BURST: u8 = 8;
    let dir = TempDir::new("dataplane-gro");
    let _serve = serve(B, &dir, "");
    let rt = runtime();
    rt.block_on(start_echo(B));
    rt.block_on(async {
        let (_stream, session_id, udp_port) = tunnel(B, B.client(1)).await.unwrap();
        let udp = UdpSocket::bind(SocketAddr::new(B.client(1), 0))
            .await
            .unwrap();
        let to = SocketAddr::new(B.relay(1), udp_port);
        let payloads: Vec<Vec<u8>> = (0..BURST).map(|i| vec![i; 1000]).collect();
        let frames: Vec<Vec<u8>> = payloads
            .iter()
            .map(|payload| {
                Message::MediaData {
                    session_id,
                    peer: echo_addr(B),
                    payload: payload.clone(),
                }
                .to_bytes()
                .unwrap()
            })
            .collect();
        let batch: Vec<(SocketAddr, &[u8])> = frames.iter().map(|f| (to, f.as_slice())).collect();
        udp.writable().await.unwrap();
        assert_eq!(
            udp.try_send_batch(&batch).unwrap(),
            usize::from(BURST),
            "one segmented send"
        );
        let mut echoed = Vec::new();
        let mut buf = vec![0u8; 4096];
        while echoed.len() < payloads.len() {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
                .await
                .expect("every datagram of the burst comes back within 5 s")
                .unwrap();
            match Message::decode_datagram(&buf[..n]) {
                Ok(Message::MediaData { payload, .. }) => echoed.push(payload),
                other => panic!("not media: {other:?}"),
            }
        }
        assert_eq!(echoed, payloads, "each datagram relayed whole, in order");
    });
    let coalesced = metric(
        &scrape(B.metrics(1)),
        "cloudproxy_relay_udp_gro_datagrams_total",
        &format!("relay=\"{}\",unit=\"datagrams\"", B.relay(1)),
    );
    assert!(
        coalesced >= u64::from(BURST),
        "the burst reached the relay coalesced: {coalesced} datagrams counted"
    );
}

/// The next echoed datagram on `udp` (within 5 s): its session and first payload byte.
async fn echo_of(udp: &UdpSocket) -> (u64, u8) {
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
        .await
        .expect("an echo within 5 s")
        .unwrap();
    match Message::decode_datagram(&buf[..n]) {
        Ok(Message::MediaData {
            session_id,
            payload,
            ..
        }) => (session_id, payload.first().copied().unwrap_or(0)),
        other => panic!("not media: {other:?}"),
    }
}

/// Sessions on one media port, each warmed with one round trip (so that its upstream socket
/// is bound), then one segmented burst of two datagrams per session: the relay reads the
/// burst in one message and sends on every session's upstream socket in the same round.
/// Returns (datagrams echoed in order per session, the ring's datagrams counter, the workers
/// sending through io_uring).
fn burst_over_many_sessions(b: Block, relay_extra: &str, tag: &str) -> (bool, u64, u64) {
    use cloudproxy_node::net::Udp;
    let dir = TempDir::new(tag);
    let _serve = serve(b, &dir, relay_extra);
    let rt = runtime();
    rt.block_on(start_echo(b));
    let in_order = rt.block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..6 {
            sessions.push(tunnel(b, b.client(1)).await.unwrap());
        }
        // Six sessions on four ports: one port has at least two.
        let port = (4500..=4503)
            .max_by_key(|p| sessions.iter().filter(|s| s.2 == *p).count())
            .unwrap();
        let ids: Vec<u64> = sessions
            .iter()
            .filter(|s| s.2 == port)
            .map(|s| s.1)
            .collect();
        assert!(ids.len() >= 2, "two sessions share a media port");
        let udp = UdpSocket::bind(SocketAddr::new(b.client(1), 0))
            .await
            .unwrap();
        let to = SocketAddr::new(b.relay(1), port);
        let frame = |id: u64, n: u8| {
            Message::MediaData {
                session_id: id,
                peer: echo_addr(b),
                payload: vec![n; 600],
            }
            .to_bytes()
            .unwrap()
        };
        for &id in &ids {
            udp.send_to(&frame(id, 0), to).await.unwrap();
            assert_eq!(echo_of(&udp).await, (id, 0), "the warm-up round trip");
        }
        let frames: Vec<Vec<u8>> = ids
            .iter()
            .flat_map(|&id| [frame(id, 1), frame(id, 2)])
            .collect();
        let batch: Vec<(SocketAddr, &[u8])> = frames.iter().map(|f| (to, f.as_slice())).collect();
        udp.writable().await.unwrap();
        assert_eq!(udp.try_send_batch(&batch).unwrap(), frames.len());
        let mut got: Vec<(u64, u8)> = Vec::new();
        while got.len() < frames.len() {
            got.push(echo_of(&udp).await);
        }
        ids.iter().all(|id| {
            let mine: Vec<u8> = got.iter().filter(|g| g.0 == *id).map(|g| g.1).collect();
            mine == [1, 2]
        })
    });
    let ring = metric(
        &scrape(b.metrics(1)),
        "cloudproxy_relay_udp_ring_sends_total",
        &format!("relay=\"{}\",unit=\"datagrams\"", b.relay(1)),
    );
    (
        in_order,
        ring,
        relay_metric(b, "cloudproxy_relay_udp_ring_workers"),
    )
}

#[test]
fn a_rounds_sends_on_many_sockets_go_in_one_submit() {
    let (in_order, ring, workers) = burst_over_many_sessions(Block(67), "", "dataplane-ring");
    assert!(in_order, "every session's datagrams echoed, in order");
    match cloudproxy_node::net::uring::SendRing::new() {
        Ok(_) => {
            assert!(workers >= 1, "the workers send through io_uring: {workers}");
            assert!(
                ring >= 2,
                "the burst's upstream sends went through the ring: {ring} datagrams counted"
            );
        }
        // A kernel that refuses io_uring (too old, disabled, a seccomp filter): serve fell
        // back to one sendmmsg per socket, and relayed the same.
        Err(e) => {
            eprintln!("io_uring refused on this machine ({e}): the fallback was tested");
            assert_eq!(
                (ring, workers),
                (0, 0),
                "no ring, nothing counted through it"
            );
        }
    }
}

#[test]
fn io_uring_off_sends_one_socket_at_a_time_and_relays_the_same() {
    let (in_order, ring, workers) =
        burst_over_many_sessions(Block(68), "io_uring = false", "dataplane-noring");
    assert!(in_order, "every session's datagrams echoed, in order");
    assert_eq!((ring, workers), (0, 0), "nothing went through the ring");
}
