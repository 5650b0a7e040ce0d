//! Hostile input on real sockets, while a good call goes on through the same relay.
//!
//! One `serve` instance (one access point, one relay with small bounds), an edge, and two
//! `call` clients talking for the whole test. Meanwhile attackers on their own loopback
//! addresses send, in phases: garbage, another protocol version, truncated frames, forged,
//! foreign, replayed and misdirected tickets, a hundred slow clients that never finish their
//! handshake, a flood of access-point requests and a flood of UDP datagrams at the relay.
//! Each gets its documented error or is dropped, and counted (checked in the metrics); the
//! good call goes on without a reconnect; the relay's sessions, connections, held and queued
//! bytes stay under the configured bounds, and everything the attackers opened is gone
//! afterwards.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::wire::{
    DecodeError, ErrorCode, FrameReader, Message, Ticket, TicketKey, FLAG_UDP_MEDIA,
};
use cloudproxy_node::net::{Net, TokioNet};
use real_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const B: Block = Block(51);
const SECS: f64 = 10.0;
const PENDING: u64 = 64;
const PER_SESSION: u64 = 16_384;
const SLOW_CLIENTS: usize = 100;
const AP_FLOOD: usize = 300;
const UDP_FLOOD: usize = 20_000;

fn attacker(n: u8) -> TokioNet {
    TokioNet::new(B.ip(66 + n, 1))
}

fn relay_tcp() -> SocketAddr {
    SocketAddr::new(B.relay(1), 4000)
}

fn edge_signalling() -> SocketAddr {
    SocketAddr::new(B.edge(), 5000)
}

/// Reads until a whole message arrived (or the peer closed / 3 s passed).
async fn read_message(stream: &mut TcpStream) -> Result<Message, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match Message::decode(&buf) {
                Ok((message, _)) => return Ok(message),
                Err(DecodeError::Incomplete { .. }) => {}
                Err(e) => return Err(format!("undecodable answer: {e}")),
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(format!("closed after {} bytes", buf.len())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 3 s".into()))
}

/// The `Error` code the relay answers, after which it must close the connection.
async fn refusal(stream: &mut TcpStream) -> Result<ErrorCode, String> {
    let code = match read_message(stream).await? {
        Message::Error { code, .. } => code,
        other => return Err(format!("expected an Error, got {other:?}")),
    };
    if !closed(stream, Duration::from_secs(3)).await {
        return Err(format!("not closed after Error({code:?})"));
    }
    Ok(code)
}

/// Whether the peer closes within `timeout` (data before the close is ignored).
async fn closed(stream: &mut TcpStream, timeout: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(timeout, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Opens a connection from `net` and sends `bytes`.
async fn send_raw(net: &TokioNet, bytes: &[u8]) -> TcpStream {
    let mut stream = net
        .connect(relay_tcp())
        .await
        .expect("connect to the relay");
    stream.write_all(bytes).await.expect("write");
    stream
}

/// A ticket from the access point, for `net`'s address.
async fn real_ticket(net: &TokioNet) -> Ticket {
    let udp = net.bind_udp("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let request = Message::padded_ap_request(7, "hostile-test", FLAG_UDP_MEDIA)
        .to_bytes()
        .unwrap();
    udp.send_to(&request, SocketAddr::new(B.ap(), 8000))
        .await
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), udp.recv_from(&mut buf))
        .await
        .expect("the access point answers")
        .unwrap();
    match Message::decode_datagram(&buf[..n]) {
        Ok(Message::ApResponse { ticket, .. }) => ticket,
        other => panic!("expected an ApResponse, got {other:?}"),
    }
}

fn tunnel_open(ticket: &Ticket, destination: SocketAddr) -> Vec<u8> {
    Message::TunnelOpen {
        ticket: ticket.clone(),
        destination,
    }
    .to_bytes()
    .unwrap()
}

/// Phase 1: malformed and forged handshakes, each answered with its error and closed.
async fn bad_handshakes() {
    let net = attacker(0);
    // Garbage: not our protocol at all.
    for i in 0..20u8 {
        let junk: Vec<u8> = (0..64u8)
            .map(|j| j.wrapping_mul(31).wrapping_add(i))
            .collect();
        let mut s = send_raw(&net, &junk).await;
        assert_eq!(
            refusal(&mut s).await,
            Ok(ErrorCode::Malformed),
            "garbage {i}"
        );
    }
    let mut s = send_raw(&net, b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n").await;
    assert_eq!(refusal(&mut s).await, Ok(ErrorCode::Malformed), "http");
    // Another protocol version.
    let mut s = send_raw(&net, &[0xC1, 0x0D, 0x02, 0x10, 0x00, 0x10, 1, 2, 3]).await;
    assert_eq!(refusal(&mut s).await, Ok(ErrorCode::UnsupportedVersion));
    // A header announcing a body far too long for its type.
    let mut s = send_raw(&net, &[0xC1, 0x0D, 0x01, 0x10, 0x07, 0xFF]).await;
    assert_eq!(refusal(&mut s).await, Ok(ErrorCode::Malformed));

    // Tickets. A genuine one for this address:
    let ticket = real_ticket(&net).await;
    let frame = tunnel_open(&ticket, edge_signalling());
    // Truncated: half a TunnelOpen, then silence: closed at the handshake timeout (1 s).
    let mut s = send_raw(&net, &frame[..frame.len() / 2]).await;
    assert!(
        closed(&mut s, Duration::from_secs(3)).await,
        "truncated frame kept open"
    );
    // Tampered MAC (the ticket's last byte, right before the destination).
    let mut tampered = frame.clone();
    let mac_end = 6 + ticket.encoded_len() - 1;
    tampered[mac_end] ^= 0x01;
    let mut s = send_raw(&net, &tampered).await;
    assert_eq!(
        refusal(&mut s).await,
        Ok(ErrorCode::TicketInvalid),
        "tampered"
    );
    // Signed with another key.
    let mut entropy = Entropy::from_u64(666);
    let other_key = TicketKey::generate(&mut entropy);
    let now = cloudproxy_node::net::wall_clock();
    let forged = Ticket::issue(
        &other_key,
        "hostile-test",
        net.local_ip(),
        now + Duration::from_secs(60),
        [9; 16],
    )
    .unwrap();
    let mut s = send_raw(&net, &tunnel_open(&forged, edge_signalling())).await;
    assert_eq!(
        refusal(&mut s).await,
        Ok(ErrorCode::TicketInvalid),
        "forged"
    );
    // (Expired tickets need the key or a long wait: the core's tests cover them.)
    // A genuine ticket presented from another address:
    let thief = attacker(1);
    let mut s = thief.connect(relay_tcp()).await.unwrap();
    s.write_all(&frame).await.unwrap();
    assert_eq!(
        refusal(&mut s).await,
        Ok(ErrorCode::ClientMismatch),
        "stolen"
    );
    // The genuine ticket toward somewhere outside SD-RTN (an open-relay attempt).
    let outside = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 22);
    let mut s = send_raw(&net, &tunnel_open(&ticket, outside)).await;
    assert_eq!(
        refusal(&mut s).await,
        Ok(ErrorCode::DestinationRefused),
        "outside"
    );
    // The genuine ticket, used properly: accepted (refusals did not burn it)...
    let mut accepted = send_raw(&net, &frame).await;
    match read_message(&mut accepted).await {
        Ok(Message::TunnelAccept { .. }) => {}
        other => panic!("the genuine ticket was not accepted: {other:?}"),
    }
    // ... and then replayed.
    let mut s = send_raw(&net, &frame).await;
    assert_eq!(
        refusal(&mut s).await,
        Ok(ErrorCode::TicketReplayed),
        "replayed"
    );
    drop(accepted);
}

/// Phase 2: slow clients. Each sends one byte of a header and nothing more. At most
/// `PENDING` wait in their handshake (refused beyond with QuotaExceeded); all are closed by
/// the handshake timeout.
async fn slow_clients() -> (usize, usize) {
    let net = attacker(2);
    let mut streams = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let mut s = net.connect(relay_tcp()).await.expect("connect");
        s.write_all(&[0xC1]).await.unwrap();
        streams.push(s);
    }
    let (mut quota, mut timed_out) = (0, 0);
    let results = futures_join_all(streams.into_iter().map(|mut s| async move {
        match read_message(&mut s).await {
            Ok(Message::Error {
                code: ErrorCode::QuotaExceeded,
                ..
            }) => 1,
            Err(e) if e.starts_with("closed after 0 bytes") => 2,
            other => panic!("slow client: {other:?}"),
        }
    }))
    .await;
    for r in results {
        if r == 1 {
            quota += 1;
        } else {
            timed_out += 1;
        }
    }
    (quota, timed_out)
}

/// Awaits every future (a tiny `join_all` on a `LocalSet`).
async fn futures_join_all<F: std::future::Future<Output = T> + 'static, T: 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::task::spawn_local).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Phase 3: a flood of access-point requests from one address; returns the answers seen
/// (tickets, `RateLimited`). Then an unpadded request from another address, which must earn
/// no more than an error of its own size.
async fn ap_flood() -> (usize, usize) {
    let net = attacker(3);
    let udp = net.bind_udp("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let to = SocketAddr::new(B.ap(), 1080);
    let (mut answers, mut limited) = (0, 0);
    let mut buf = vec![0u8; 2048];
    let mut count = |buf: &[u8]| match Message::decode_datagram(buf) {
        Ok(Message::ApResponse { .. }) => answers += 1,
        Ok(Message::Error {
            code: ErrorCode::RateLimited,
            ..
        }) => limited += 1,
        other => panic!("unexpected answer to the flood: {other:?}"),
    };
    for i in 0..AP_FLOOD {
        let request = Message::padded_ap_request(i as u32, "flood", FLAG_UDP_MEDIA)
            .to_bytes()
            .unwrap();
        assert!(request.len() >= 322);
        udp.send_to(&request, to).await.unwrap();
        // Read what is there already, so that our own receive buffer does not overflow.
        while let Ok((n, _)) = udp.try_recv_from(&mut buf) {
            count(&buf[..n]);
        }
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await
    {
        assert!(n <= 322, "a {n}-byte answer to a 322-byte request");
        count(&buf[..n]);
    }
    // Unpadded (the form from before the padding rule): an error no larger than the request.
    let other = attacker(5);
    let udp = other.bind_udp("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let short = Message::ApRequest {
        request_id: 1,
        app_id: "short".into(),
        flags: FLAG_UDP_MEDIA,
        padding_len: 0,
    }
    .to_bytes()
    .unwrap();
    udp.send_to(&short, to).await.unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), udp.recv_from(&mut buf))
        .await
        .expect("an answer to the unpadded request")
        .unwrap();
    assert!(
        n <= short.len(),
        "{n} bytes answer a {}-byte request",
        short.len()
    );
    assert!(matches!(
        Message::decode_datagram(&buf[..n]),
        Ok(Message::Error {
            code: ErrorCode::PaddingRequired,
            ..
        })
    ));
    (answers, limited)
}

/// What came back to the UDP flooder.
struct Reflected {
    /// Datagrams received.
    count: usize,
    /// The largest one.
    largest: usize,
    /// How long the flood took.
    took: Duration,
}

/// Phase 4: a UDP flood at the relay's media ports: garbage and media for sessions that do
/// not exist (at least 64 bytes each).
async fn udp_flood() -> Reflected {
    let started = Instant::now();
    let net = attacker(4);
    let udp = net.bind_udp("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let mut entropy = Entropy::from_u64(4);
    for i in 0..UDP_FLOOD {
        let port = 4500 + (i % 4) as u16;
        let datagram = if i % 2 == 0 {
            let mut junk = vec![0u8; 64 + i % 200];
            entropy.fill(&mut junk);
            junk
        } else {
            Message::MediaData {
                session_id: entropy.next_u64(),
                peer: SocketAddr::new(B.edge(), 5001),
                payload: vec![0xAB; 200],
            }
            .to_bytes()
            .unwrap()
        };
        let _ = udp
            .send_to(&datagram, SocketAddr::new(B.relay(1), port))
            .await;
        if i % 1000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    let took = started.elapsed();
    let (mut count, mut largest) = (0, 0);
    let mut buf = vec![0u8; 2048];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(300), udp.recv_from(&mut buf)).await
    {
        count += 1;
        largest = largest.max(n);
        assert!(
            matches!(
                Message::decode_datagram(&buf[..n]),
                Ok(Message::Error {
                    code: ErrorCode::UnknownSession,
                    ..
                })
            ),
            "the relay answered the flood with something else"
        );
    }
    Reflected {
        count,
        largest,
        took,
    }
}

#[test]
fn hostile_input_is_refused_counted_and_bounded_while_a_good_call_goes_on() {
    let dir = TempDir::new("hostile");
    let key = random_key();
    let _edge = start_edge(B, &dir);
    let extra = format!(
        "handshake_timeout_ms = 1000\nmax_pending_handshakes = {PENDING}\nmax_sessions_per_client_ip = 4\nmax_buffered_bytes_per_session = {PER_SESSION}\nmax_queued_bytes_per_stream = 1048576\n"
    );
    let config = serve_config(B, &[B.ap()], &[B.relay(1)], &[], B.metrics(1), &extra);
    let _serve = start_serve("serve", &dir, &config, &key);
    let relay = format!("relay=\"{}\"", B.relay(1));
    let ap = format!("ap=\"{}\"", B.ap());

    let started = Instant::now();
    let mut alice = start_call(B, &dir, "alice", 1, SECS, &[ENABLE], &[]);
    let mut bob = start_call(B, &dir, "bob", 2, SECS, &[ENABLE], &[]);
    let deadline = Instant::now() + Duration::from_secs(8);
    while metric(&scrape(B.metrics(1)), "cloudproxy_relay_sessions", &relay) < 2 {
        assert!(Instant::now() < deadline, "the good calls did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = scrape(B.metrics(1));
    let good_connections = metric(&before, "cloudproxy_relay_connections", &relay);
    let fds_before = metric(&before, "process_open_fds", "");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let ((quota, timed_out), (answers, limited), reflected) = local.block_on(&runtime, async {
        bad_handshakes().await;
        let slow = slow_clients().await;
        let ap = ap_flood().await;
        let reflected = udp_flood().await;
        (slow, ap, reflected)
    });
    let attacks_took = started.elapsed();

    // Every slow client was refused or timed out; the pending bound held.
    assert_eq!(quota + timed_out, SLOW_CLIENTS);
    assert!(
        timed_out as u64 <= PENDING,
        "{timed_out} waited in their handshake"
    );
    assert!(quota >= SLOW_CLIENTS - PENDING as usize, "{quota} refused");
    // The access point answered its rate limit's worth, said RateLimited once, then nothing.
    assert_eq!(answers, 20, "{answers} answers to the flood");
    assert_eq!(limited, 1, "{limited} RateLimited answers");
    // The UDP flood: unknown sessions are answered `UnknownSession` within the relay's
    // budget (50 per second), each answer smaller than the datagram it answers: no
    // amplification, a bounded reflection.
    let budget = 50 * (reflected.took.as_secs() as usize + 2);
    assert!(
        reflected.count <= budget,
        "{} answers to the UDP flood",
        reflected.count
    );
    assert!(
        reflected.largest <= 64,
        "an answer of {} bytes",
        reflected.largest
    );

    // Let the last handshakes time out, then read the counters.
    std::thread::sleep(Duration::from_millis(1500));
    let text = scrape(B.metrics(1));
    let m = |name: &str, labels: &str| metric(&text, name, labels);
    let refused = |cause: &str| {
        m(
            "cloudproxy_relay_refusals_total",
            &format!("{relay},cause=\"{cause}\""),
        )
    };
    assert!(refused("malformed") >= 22, "{text}");
    assert_eq!(refused("unsupported_version"), 1, "{text}");
    assert_eq!(refused("ticket_invalid"), 2, "{text}");
    assert_eq!(refused("client_mismatch"), 1, "{text}");
    assert_eq!(refused("destination"), 1, "{text}");
    assert_eq!(refused("ticket_replayed"), 1, "{text}");
    assert!(refused("quota") >= quota as u64, "{text}");
    assert!(
        m("cloudproxy_relay_handshake_timeouts_total", &relay) > timed_out as u64,
        "{text}"
    );
    let rate_limited = m(
        "cloudproxy_ap_refusals_total",
        &format!("{ap},cause=\"rate_limited\""),
    );
    assert!(rate_limited >= (AP_FLOOD * 3 / 4) as u64, "{text}");
    assert_eq!(
        m("cloudproxy_ap_rate_limit_silenced_total", &ap),
        rate_limited - 1,
        "{text}"
    );
    assert_eq!(
        m(
            "cloudproxy_ap_refusals_total",
            &format!("{ap},cause=\"padding_required\"")
        ),
        1,
        "{text}"
    );
    assert!(
        m(
            "cloudproxy_relay_udp_error_replies_suppressed_total",
            &relay
        ) > 0,
        "{text}"
    );
    let dropped = m(
        "cloudproxy_relay_udp_dropped_total",
        &format!("{relay},from=\"client\""),
    );
    assert!(
        dropped >= 2_000,
        "only {dropped} flood datagrams seen and dropped\n{text}"
    );

    // Bounded: sessions, connections, held and queued bytes, memory.
    assert!(m("cloudproxy_relay_sessions_peak", &relay) <= 3, "{text}");
    let connections_peak = m("cloudproxy_relay_connections_peak", &relay);
    assert!(
        connections_peak <= PENDING + good_connections + 2,
        "{connections_peak} connections at once\n{text}"
    );
    let held_peak = m("cloudproxy_relay_buffered_bytes_peak", &relay);
    let frame = FrameReader::CAPACITY as u64;
    assert!(
        held_peak <= PENDING * frame + 3 * PER_SESSION,
        "{held_peak} bytes held\n{text}"
    );
    assert!(
        m("cloudproxy_relay_queued_bytes_peak", &relay) <= 1 << 20,
        "{text}"
    );
    let rss = m("process_resident_memory_bytes", "");
    assert!(rss > 0 && rss < 128 << 20, "resident memory {rss}\n{text}");
    // Everything the attackers opened is gone.
    assert_eq!(
        m("cloudproxy_relay_connections", &relay),
        good_connections,
        "{text}"
    );
    assert_eq!(m("cloudproxy_relay_sessions", &relay), 2, "{text}");
    assert_eq!(m("cloudproxy_relay_buffered_bytes", &relay), 0, "{text}");
    eprintln!(
        "hostile: slow clients {quota} refused + {timed_out} timed out; ap flood {answers} answered, {limited} rate limited; udp flood {dropped} dropped, {} answered in {:?}; peaks: {connections_peak} connections, {held_peak} bytes held; rss {rss}",
        reflected.count, reflected.took
    );
    let fds = m("process_open_fds", "");
    assert!(
        fds <= fds_before + 4,
        "{fds} descriptors open, {fds_before} before\n{text}"
    );

    // The good call went on, undisturbed.
    let alice = finish_call(&mut alice, Duration::from_secs(30));
    let bob = finish_call(&mut bob, Duration::from_secs(30));
    for (report, other) in [(&alice, 2), (&bob, 1)] {
        assert!(report.status.success() && report.joined(), "{report:#?}");
        assert_eq!(report.reconnects(), 0, "{report:#?}");
        assert_eq!(report.media_path(), "Udp", "{report:#?}");
        let heard = report.received_from(other);
        assert!(
            heard >= 250,
            "heard {heard} packets (attacks took {attacks_took:?}): {report:#?}"
        );
        assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
    }
}
