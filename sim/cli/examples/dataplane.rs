//! A loopback measurement of the relay's data plane against baselines measured in the same run:
//! `cargo run --release -p cloudproxy --example dataplane -- [--workers N] [--rounds R]`.
//!
//! It starts `target/release/cloudproxy serve` as a child process (one access point on
//! 127.143.1.1, one relay on 127.143.2.1, SD-RTN 127.143.3.0/24), a sink and a UDP echo on
//! 127.143.3.1, and interleaves, round after round:
//!
//! - **tcp**: a tunnel through `serve` (ticket, `TunnelOpen`, raw bytes) sending `TCP_BYTES` as
//!   fast as the sender can, against the same bytes through an in-process tokio
//!   `copy_bidirectional` relay (8 KiB buffers) and straight to the sink. Relay CPU comes from
//!   `/proc/<pid>/stat` of the serve child (user + system time).
//! - **udp**: closed-loop echo of 1200-byte payloads, 64 outstanding, through `serve` against a
//!   naive in-process `recv_from`/`send_to` relay.
//!
//! Everything stays on loopback, bounded in bytes and time; it prints one line per case with
//! the ratio to its baseline. A tunnel that is cut is reported as `CUT` (never a small number).
// A measurement: it reads the wall clock (clippy.toml disallows it for the simulation's sake).
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudproxy_core::wire::{Message, Ticket, FLAG_UDP_MEDIA};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

const TCP_BYTES: u64 = 2 << 30;
const UDP_ROUNDS: usize = 20_000;
const WINDOW: usize = 64;
const PAYLOAD: usize = 1200;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Relay process CPU time (user + system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn start_serve(workers: usize) -> Serve {
    let dir = std::env::temp_dir().join(format!("cloudproxy-dataplane-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        "sdrtn = [\"127.143.3.0/24\"]\n[ap]\nlisten = [\"127.143.1.1\"]\nmax_requests_per_ip = 1000000\nmax_requests_per_prefix = 1000000\nmax_tracked_ips = 100000\n[relay]\nlisten = [\"127.143.2.1\"]\nudp_ports = \"4500-4503\"\nmax_sessions_per_client_ip = 10000\n",
    )
    .expect("config");
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("urandom");
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let exe =
        std::env::var("CLOUDPROXY_BIN").unwrap_or_else(|_| "target/release/cloudproxy".into());
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--log-level")
        .arg("warn")
        .env("CLOUDPROXY_TICKET_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if workers > 0 {
        command.arg("--workers").arg(workers.to_string());
    }
    let mut child = command.spawn().expect("start serve");
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        if out.read(&mut byte).unwrap_or(0) == 0 {
            panic!("serve exited: {}", String::from_utf8_lossy(&seen));
        }
        seen.push(byte[0]);
    }
    Serve(child)
}

async fn ticket(client: IpAddr) -> Ticket {
    let udp = UdpSocket::bind(SocketAddr::new(client, 0))
        .await
        .expect("bind");
    let request = Message::padded_ap_request(1, "dataplane", FLAG_UDP_MEDIA);
    let bytes = request.to_bytes().expect("request");
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        let _ = udp.send_to(&bytes, (ip("127.143.1.1"), 8000)).await;
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), udp.recv_from(&mut buf)).await
        {
            if let Ok(Message::ApResponse { ticket, .. }) = Message::decode_datagram(&buf[..n]) {
                return ticket;
            }
        }
    }
    panic!("no ticket from the access point");
}

/// A tunnel through serve to `to`: returns the stream after `TunnelAccept`, and the session.
async fn tunnel(client: IpAddr, to: SocketAddr) -> (TcpStream, u64, u16) {
    let ticket = ticket(client).await;
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(client, 0)).expect("bind");
    let mut stream = socket
        .connect(SocketAddr::new(ip("127.143.2.1"), 4000))
        .await
        .expect("connect relay");
    stream.set_nodelay(true).expect("nodelay");
    let open = Message::TunnelOpen {
        ticket,
        destination: to,
    };
    stream
        .write_all(&open.to_bytes().expect("open"))
        .await
        .expect("write");
    let mut buf = vec![0u8; 6];
    stream.read_exact(&mut buf).await.expect("accept");
    let body = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    buf.resize(6 + body, 0);
    stream.read_exact(&mut buf[6..]).await.expect("accept");
    match Message::decode(&buf) {
        Ok((
            Message::TunnelAccept {
                session_id,
                udp_port,
                ..
            },
            _,
        )) => (stream, session_id, udp_port),
        other => panic!("no TunnelAccept: {other:?}"),
    }
}

/// A sink: counts bytes per connection and answers with the count (8 bytes) at EOF.
async fn sink(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        total += n as u64;
                        if total >= TCP_BYTES {
                            let _ = s.write_all(&total.to_be_bytes()).await;
                        }
                    }
                }
            }
        });
    }
}

/// Sends TCP_BYTES on `stream` as fast as possible; Some(Gbit/s) or None when cut.
async fn blast(mut stream: TcpStream) -> Option<f64> {
    let chunk = vec![0x5Au8; 256 * 1024];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < TCP_BYTES {
        let n = (TCP_BYTES - sent).min(chunk.len() as u64) as usize;
        if stream.write_all(&chunk[..n]).await.is_err() {
            return None;
        }
        sent += n as u64;
    }
    let mut ack = [0u8; 8];
    match tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut ack)).await {
        Ok(Ok(_)) if u64::from_be_bytes(ack) >= TCP_BYTES => {}
        _ => return None,
    }
    Some(TCP_BYTES as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9)
}

/// The tokio baseline: copy_bidirectional with 8 KiB buffers (its default).
async fn copy_relay(listener: TcpListener, to: SocketAddr) {
    loop {
        let Ok((mut a, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            if let Ok(mut b) = TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
        });
    }
}

/// The splice baseline: accept, connect, and nothing but `splice(2)` both ways (the node
/// crate's pump without the relay's control plane), on its own thread.
fn splice_relay(at: SocketAddr, to: SocketAddr) {
    use cloudproxy_node::net::{Net, TokioNet, TunnelLink};
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tokio::task::LocalSet::new().block_on(&rt, async move {
            let listener = TcpListener::bind(at).await.expect("splice relay");
            while let Ok((a, _)) = listener.accept().await {
                tokio::task::spawn_local(async move {
                    if let Ok(b) = TcpStream::connect(to).await {
                        let link = TunnelLink::new(Duration::from_secs(1), || {});
                        TokioNet::any().tunnel(a, b, link).await;
                    }
                });
            }
        });
    });
}

/// A UDP echo.
async fn echo(socket: UdpSocket) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let _ = socket.send_to(&buf[..n], from).await;
    }
}

/// The naive UDP relay baseline: one socket facing the client, one facing the echo.
async fn naive_udp_relay(front: UdpSocket, to: SocketAddr) {
    let back = UdpSocket::bind("127.143.2.9:0").await.expect("bind");
    let mut client = None;
    let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
    loop {
        tokio::select! {
            Ok((n, from)) = front.recv_from(&mut a) => {
                client = Some(from);
                let _ = back.send_to(&a[..n], to).await;
            }
            Ok((n, _)) = back.recv_from(&mut b) => {
                if let Some(c) = client {
                    let _ = front.send_to(&b[..n], c).await;
                }
            }
        }
    }
}

/// Closed-loop echo with WINDOW outstanding; datagrams per second. `wrap` frames each payload.
async fn udp_echo_rate(
    socket: &UdpSocket,
    to: SocketAddr,
    wrap: &(dyn Fn(&[u8]) -> Vec<u8> + Sync),
    rounds: usize,
) -> Option<f64> {
    let payload = vec![0xA5u8; PAYLOAD];
    let datagram = wrap(&payload);
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    for _ in 0..WINDOW {
        socket.send_to(&datagram, to).await.ok()?;
    }
    let mut received = 0;
    while received < rounds {
        match tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await {
            Ok(Ok(_)) => {
                received += 1;
                socket.send_to(&datagram, to).await.ok()?;
            }
            // A lost datagram: put another in flight.
            _ => {
                for _ in 0..WINDOW / 4 {
                    socket.send_to(&datagram, to).await.ok()?;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            return None;
        }
    }
    Some(rounds as f64 / started.elapsed().as_secs_f64())
}

/// Flows at once in the many-flows case.
const FLOWS: usize = 16;
/// Round trips per flow in the many-flows case.
const MANY_ROUNDS: usize = 4_000;

/// `n` sessions from `client`, each with its socket, relay port and framing.
async fn many_flows(
    client: IpAddr,
    echo: SocketAddr,
    n: usize,
) -> Vec<(
    UdpSocket,
    SocketAddr,
    Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>,
)> {
    let mut flows = Vec::new();
    for _ in 0..n {
        let sink = SocketAddr::new(ip("127.143.3.1"), 5600);
        let (stream, session_id, port) = tunnel(client, sink).await;
        // Keep the tunnel open for the life of the process.
        std::mem::forget(stream);
        let socket = UdpSocket::bind(SocketAddr::new(client, 0))
            .await
            .expect("bind");
        let wrap = move |p: &[u8]| {
            Message::MediaData {
                session_id,
                peer: echo,
                payload: p.to_vec(),
            }
            .to_bytes()
            .expect("media")
        };
        flows.push((
            socket,
            SocketAddr::new(ip("127.143.2.1"), port),
            Box::new(wrap) as Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>,
        ));
    }
    flows
}

/// Resident memory (bytes) and open descriptors of a process.
fn rss_and_fds(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    (kb * 1024, fds)
}

/// Opens `n` idle sessions, each a tunnel that sent one media datagram (so it holds an
/// upstream UDP socket too); prints the relay's memory and descriptors per session.
async fn idle_sessions(pid: u32, n: usize, echo: SocketAddr) -> Vec<(TcpStream, UdpSocket)> {
    let (rss0, fds0) = rss_and_fds(pid);
    let sink = SocketAddr::new(ip("127.143.3.1"), 5600);
    let mut held = Vec::new();
    for i in 0..n {
        let client = ip(&format!("127.143.{}.{}", 20 + i / 250, 1 + i % 250));
        let (stream, session_id, port) = tunnel(client, sink).await;
        let udp = UdpSocket::bind(SocketAddr::new(client, 0))
            .await
            .expect("bind");
        let media = Message::MediaData {
            session_id,
            peer: echo,
            payload: vec![1; 100],
        };
        let _ = udp
            .send_to(
                &media.to_bytes().expect("media"),
                SocketAddr::new(ip("127.143.2.1"), port),
            )
            .await;
        held.push((stream, udp));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, fds1) = rss_and_fds(pid);
    println!(
        "idle: {n} sessions (tunnel + media socket each): relay RSS {:.1} KiB and {:.1} descriptors per session",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0 / n as f64,
        (fds1.saturating_sub(fds0)) as f64 / n as f64
    );
    held
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (workers, rounds) = (arg("--workers", 0), arg("--rounds", 3));
    let idle = arg("--idle", 0);
    let serve = start_serve(workers);
    let pid = serve.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let sink_addr = SocketAddr::new(ip("127.143.3.1"), 5600);
        tokio::spawn(sink(TcpListener::bind(sink_addr).await.expect("sink")));
        let copy_addr = SocketAddr::new(ip("127.143.2.8"), 4000);
        tokio::spawn(copy_relay(TcpListener::bind(copy_addr).await.expect("copy"), sink_addr));
        let splice_addr = SocketAddr::new(ip("127.143.2.7"), 4000);
        splice_relay(splice_addr, sink_addr);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let echo_addr = SocketAddr::new(ip("127.143.3.1"), 6000);
        tokio::spawn(echo(UdpSocket::bind(echo_addr).await.expect("echo")));
        let naive_addr = SocketAddr::new(ip("127.143.2.8"), 4500);
        tokio::spawn(naive_udp_relay(
            UdpSocket::bind(naive_addr).await.expect("naive"),
            echo_addr,
        ));
        let mut _held = Vec::new();
        for round in 1..=rounds {
            if round == rounds && idle > 0 {
                _held = idle_sessions(pid, idle, echo_addr).await;
            }
            let client = ip(&format!("127.143.10.{round}"));
            let direct = blast(TcpStream::connect(sink_addr).await.expect("sink")).await;
            let copy = blast(TcpStream::connect(copy_addr).await.expect("copy")).await;
            let spliced = blast(TcpStream::connect(splice_addr).await.expect("splice")).await;
            let (stream, _, _) = tunnel(client, sink_addr).await;
            let cpu0 = cpu_seconds(pid);
            let started = Instant::now();
            let relayed = blast(stream).await;
            let wall = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds(pid) - cpu0;
            let fmt = |v: Option<f64>| v.map_or("CUT".to_owned(), |g| format!("{g:.2}"));
            let ratio = match (relayed, copy, spliced) {
                (Some(r), Some(c), Some(s)) => format!("{:.2}x of copy8k, {:.2}x of splice", r / c, r / s),
                _ => "-".into(),
            };
            let gb_per_cpu = relayed.map_or("-".into(), |_| {
                format!("{:.2}", TCP_BYTES as f64 / 1e9 / cpu.max(1e-3))
            });
            println!(
                "round {round} tcp up Gbit/s: direct {} copy8k {} splice {} serve {} ({ratio}); serve GB per relay CPU-s {gb_per_cpu} (cpu {cpu:.2} s over {wall:.2} s)",
                fmt(direct),
                fmt(copy),
                fmt(spliced),
                fmt(relayed),
            );

            let udp = UdpSocket::bind(SocketAddr::new(client, 0)).await.expect("bind");
            let naive = udp_echo_rate(&udp, naive_addr, &|p| p.to_vec(), UDP_ROUNDS).await;
            let (_keep, session_id, port) = tunnel(client, sink_addr).await;
            let relay_udp = SocketAddr::new(ip("127.143.2.1"), port);
            let wrap = move |p: &[u8]| {
                Message::MediaData {
                    session_id,
                    peer: echo_addr,
                    payload: p.to_vec(),
                }
                .to_bytes()
                .expect("media")
            };
            let cpu0 = cpu_seconds(pid);
            let served = udp_echo_rate(&udp, relay_udp, &wrap, UDP_ROUNDS).await;
            let cpu = cpu_seconds(pid) - cpu0;
            let ratio = match (served, naive) {
                (Some(s), Some(n)) => format!("{:.2}x", s / n),
                _ => "-".into(),
            };
            let per = served.map_or("-".into(), |_| {
                format!("{:.1}", cpu * 1e6 / UDP_ROUNDS as f64 / 2.0)
            });
            let flows = many_flows(client, echo_addr, FLOWS).await;
            let cpu0 = cpu_seconds(pid);
            let started = Instant::now();
            let total: usize = {
                let mut tasks = Vec::new();
                for (socket, to, wrap) in flows {
                    tasks.push(tokio::spawn(async move {
                        let wrap = move |p: &[u8]| wrap(p);
                        udp_echo_rate(&socket, to, &wrap, MANY_ROUNDS)
                            .await
                            .map_or(0, |_| MANY_ROUNDS)
                    }));
                }
                let mut total = 0;
                for t in tasks {
                    total += t.await.unwrap_or(0);
                }
                total
            };
            let many_rate = total as f64 / started.elapsed().as_secs_f64();
            let many_cpu = (cpu_seconds(pid) - cpu0) * 1e6 / (2 * total.max(1)) as f64;
            println!(
                "round {round} udp {FLOWS} flows dgram/s: serve {many_rate:.0}; relay CPU us per datagram {many_cpu:.1}"
            );
            println!(
                "round {round} udp echo dgram/s: naive {} serve {} ({ratio} of naive); serve relay CPU us per datagram {per}",
                naive.map_or("LOST".into(), |v| format!("{v:.0}")),
                served.map_or("LOST".into(), |v| format!("{v:.0}")),
            );
        }
    });
    drop(serve);
}
