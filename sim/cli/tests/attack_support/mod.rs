//! Attackers for the load tests (`real_fairness.rs`, `real_shutdown_load.rs`), each on its own
//! loopback address of the test's block, all on one thread of their own
//! ([`Attacks::start`]): a UDP media flood at the relay's media ports, slowloris connections
//! to the relay, to the access point's TCP port and to the metrics endpoint, and an access
//! point request flood from 50 addresses of one `/24`, and (when [`Targets::queue_hogs`] asks)
//! write-queue hogs: sessions whose media channel sends keepalives and never reads the
//! answers, then closes its tunnel and keeps the channel open (issue 13's first finding).
//! Every loop is bounded in count and in time and stops by itself; [`Attacks::stop`] ends them
//! early and returns what each saw.
#![allow(dead_code)]
// clippy.toml disallows the system's clocks; the attackers bound their loops on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::wire::{DecodeError, Message, Ticket, FLAG_UDP_MEDIA};
use cloudproxy_node::net::{Net, TokioNet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::real_support::{metric, scrape, Block};

/// The most any attack runs, whatever happens.
pub const MAX_ATTACK: Duration = Duration::from_secs(60);
/// UDP flood: datagrams at most, and per burst (one burst every millisecond at most).
pub const UDP_FLOOD_MAX: u64 = 2_000_000;
const UDP_BURST: u64 = 64;
/// Slowloris connections held at once, per target.
pub const SLOWLORIS: usize = 48;
/// Connections a slowloris target is opened at most (reopening those closed).
const SLOWLORIS_OPENS: u64 = 5_000;
/// Access-point flood: source addresses (one /24), requests per address at most.
pub const AP_FLOOD_ADDRS: u8 = 50;
pub const AP_FLOOD_PER_ADDR: u64 = 1_000;
/// Write-queue hogs: rounds per hog address at most (a ticket, a tunnel and a channel each),
/// keepalives written per round at most (about 18 bytes each, answered with as many).
pub const HOG_ROUNDS: u64 = 4;
pub const HOG_KEEPALIVES: u64 = 50_000;

/// The relay's pending-handshake bounds in the tests' config: in total, per client address.
pub const PENDING: u64 = 64;
pub const PENDING_PER_IP: u64 = 12;
/// The access point's per-address and per-network request budgets (one window: the tests are
/// far shorter than it), and TCP slots per address.
pub const PER_IP: u64 = 20;
pub const PER_PREFIX: u64 = 200;
pub const AP_TCP_PER_IP: u64 = 4;

/// A `serve` config for block `b`: one access point, one relay, metrics, the bounds above,
/// short handshake and access-point idle timeouts (2 s) so that slowloris slots turn over.
pub fn config(b: Block) -> String {
    config_with(b, "", "", "")
}

/// [`config`] with more keys: `top` at the top level, `ap` in `[ap]`, `relay` in `[relay]`
/// (each a few TOML lines, each ending with a newline).
pub fn config_with(b: Block, top: &str, ap: &str, relay: &str) -> String {
    format!(
        "sdrtn = [\"{sdrtn}\"]\nmetrics = \"{metrics}\"\n{top}\n[ap]\nlisten = [\"{ap_ip}\"]\nrate_window_ms = 600000\nmax_requests_per_ip = {PER_IP}\nmax_requests_per_prefix = {PER_PREFIX}\nmax_tcp_connections_per_ip = {AP_TCP_PER_IP}\ntcp_idle_timeout_ms = 2000\n{ap}\n[relay]\nlisten = [\"{relay_ip}\"]\nudp_ports = \"4500-4503\"\nhandshake_timeout_ms = 2000\nmax_pending_handshakes = {PENDING}\nmax_pending_handshakes_per_client_ip = {PENDING_PER_IP}\n{relay}",
        sdrtn = b.sdrtn(),
        metrics = b.metrics(1),
        ap_ip = b.ap(),
        relay_ip = b.relay(1),
    )
}

/// The targets of [`config`]'s instance.
pub fn targets(b: Block) -> Targets {
    Targets {
        block: b,
        relay_tcp: SocketAddr::new(b.relay(1), 4000),
        relay_udp_ports: (4500, 4503),
        ap_tcp: SocketAddr::new(b.ap(), 1080),
        ap_udp: SocketAddr::new(b.ap(), 8000),
        metrics: b.metrics(1),
        tunnel_to: SocketAddr::new(b.edge(), 5000),
        queue_hogs: 0,
    }
}

/// Waits (bounded: 20 s) until `ready` holds of a scrape of `b`'s metrics; returns it.
pub fn wait_for_metrics(b: Block, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(b.metrics(1));
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never happened\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every attack is seen in full swing by the metrics: quota refusals at the
/// relay, per-address TCP refusals and rate limiting at the access point, flood datagrams
/// dropped, metrics connections shed.
pub fn wait_for_attacks(b: Block) -> String {
    let relay = format!("relay=\"{}\"", b.relay(1));
    let ap = format!("ap=\"{}\"", b.ap());
    wait_for_metrics(b, "the attacks", |t| {
        let m = |name: &str, labels: &str| metric(t, name, labels);
        m(
            "cloudproxy_relay_refusals_total",
            &format!("{relay},cause=\"quota\""),
        ) > 0
            && m(
                "cloudproxy_ap_tcp_refused_total",
                &format!("{ap},cause=\"per_ip\""),
            ) > 0
            && m(
                "cloudproxy_ap_refusals_total",
                &format!("{ap},cause=\"rate_limited\""),
            ) > 0
            && m(
                "cloudproxy_relay_udp_dropped_total",
                &format!("{relay},from=\"client\""),
            ) > 1_000
            && m("cloudproxy_metrics_shed_total", "") > 0
    })
}

/// What the attacks saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// UDP flood datagrams sent.
    pub udp_sent: AtomicU64,
    /// Slowloris connections opened (relay, access point, metrics).
    pub relay_opens: AtomicU64,
    pub ap_opens: AtomicU64,
    pub metrics_opens: AtomicU64,
    /// Slowloris connections the server closed (or answered and closed).
    pub relay_closed: AtomicU64,
    pub ap_closed: AtomicU64,
    pub metrics_closed: AtomicU64,
    /// Access-point flood: requests sent, tickets and other answers received.
    pub ap_requests: AtomicU64,
    pub ap_tickets: AtomicU64,
    pub ap_other_answers: AtomicU64,
    /// The most tickets any one flood address got.
    pub ap_tickets_one_addr_max: AtomicU64,
    /// Write-queue hogs: media channels opened on a session, keepalive bytes written on them,
    /// channels the relay cut (closed or reset under the hog), rounds that failed before
    /// their channel opened.
    pub hog_channels: AtomicU64,
    pub hog_bytes_written: AtomicU64,
    pub hog_cut: AtomicU64,
    pub hog_failed: AtomicU64,
}

/// The running attacks.
pub struct Attacks {
    stop: Arc<AtomicBool>,
    pub seen: Arc<Seen>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Where the attacks aim.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    pub block: Block,
    pub relay_tcp: SocketAddr,
    pub relay_udp_ports: (u16, u16),
    pub ap_tcp: SocketAddr,
    pub ap_udp: SocketAddr,
    pub metrics: SocketAddr,
    /// Where the hogs' tunnels go (inside the SD-RTN block: the edge's signalling port).
    pub tunnel_to: SocketAddr,
    /// Write-queue hog addresses (0: none), each running [`HOG_ROUNDS`] rounds at most.
    pub queue_hogs: u8,
}

impl Attacks {
    /// Starts every attack: the UDP flood on a thread of its own (as fast as a burst per
    /// millisecond allows), the others on one single-threaded runtime.
    pub fn start(t: Targets) -> Attacks {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let mut threads = Vec::new();
        let (s, n) = (stop.clone(), seen.clone());
        threads.push(std::thread::spawn(move || udp_flood(t, &s, &n)));
        let (s, n) = (stop.clone(), seen.clone());
        threads.push(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, tcp_and_ap_attacks(t, s, n));
        }));
        Attacks {
            stop,
            seen,
            threads,
        }
    }

    /// Stops every attack and waits for them (each ends within a second of the flag).
    pub fn stop(mut self) -> Arc<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().expect("an attack panicked");
        }
        self.seen.clone()
    }
}

impl Drop for Attacks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Whether an attack must end: asked to, or past [`MAX_ATTACK`].
fn over(stop: &AtomicBool, started: Instant) -> bool {
    stop.load(Ordering::SeqCst) || started.elapsed() > MAX_ATTACK
}

/// Garbage and media for sessions that do not exist, at the relay's media ports.
fn udp_flood(t: Targets, stop: &AtomicBool, seen: &Seen) {
    let started = Instant::now();
    let socket = std::net::UdpSocket::bind((t.block.ip(66, 1), 0)).expect("bind the flooder");
    socket.set_nonblocking(true).unwrap();
    let mut entropy = Entropy::from_u64(66);
    let (lo, hi) = t.relay_udp_ports;
    let span = u64::from(hi - lo) + 1;
    let mut sent = 0u64;
    let mut sink = [0u8; 2048];
    while sent < UDP_FLOOD_MAX && !over(stop, started) {
        for _ in 0..UDP_BURST {
            let port = lo + (sent % span) as u16;
            let datagram = if sent % 2 == 0 {
                let mut junk = vec![0u8; 64 + (sent % 200) as usize];
                entropy.fill(&mut junk);
                junk
            } else {
                Message::MediaData {
                    session_id: entropy.next_u64(),
                    peer: SocketAddr::new(t.block.edge(), 5001),
                    payload: vec![0xAB; 200],
                }
                .to_bytes()
                .unwrap()
            };
            // A full send buffer drops the datagram: the flood is as fast as it goes.
            let _ = socket.send_to(&datagram, (t.block.relay(1), port));
            sent += 1;
        }
        seen.udp_sent.store(sent, Ordering::Relaxed);
        while socket.recv_from(&mut sink).is_ok() {}
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The TCP slowloris attacks and the access-point flood, concurrently.
async fn tcp_and_ap_attacks(t: Targets, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let mut tasks = Vec::new();
    // Relay: one byte of a header, then nothing.
    let relay = (t.block.ip(67, 1), t.relay_tcp, &[0xC1u8][..]);
    // Access point TCP: nothing at all.
    let ap = (t.block.ip(68, 1), t.ap_tcp, &[][..]);
    // Metrics: half a request line.
    let metrics = (t.block.ip(69, 1), t.metrics, &b"GET /metr"[..]);
    for (kind, (ip, to, first)) in [relay, ap, metrics].into_iter().enumerate() {
        for _ in 0..SLOWLORIS {
            let (stop, seen) = (stop.clone(), seen.clone());
            tasks.push(tokio::task::spawn_local(async move {
                slowloris(kind, ip, to, first, &stop, &seen).await;
            }));
        }
    }
    for i in 1..=AP_FLOOD_ADDRS {
        let (stop, seen) = (stop.clone(), seen.clone());
        tasks.push(tokio::task::spawn_local(async move {
            ap_flood_from(t.block.ip(77, i), t.ap_udp, i, &stop, &seen).await;
        }));
    }
    for i in 1..=t.queue_hogs {
        let (stop, seen) = (stop.clone(), seen.clone());
        tasks.push(tokio::task::spawn_local(async move {
            queue_hog(t, t.block.ip(70, i), &stop, &seen).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn counters(kind: usize, seen: &Seen) -> (&AtomicU64, &AtomicU64) {
    match kind {
        0 => (&seen.relay_opens, &seen.relay_closed),
        1 => (&seen.ap_opens, &seen.ap_closed),
        _ => (&seen.metrics_opens, &seen.metrics_closed),
    }
}

/// One slowloris slot: connects from `ip`, sends `first`, holds the connection until the
/// server closes it, then opens another; until stopped or the target's open budget is spent.
async fn slowloris(
    kind: usize,
    ip: IpAddr,
    to: SocketAddr,
    first: &[u8],
    stop: &AtomicBool,
    seen: &Seen,
) {
    let started = Instant::now();
    let net = TokioNet::new(ip);
    let (opens, closed) = counters(kind, seen);
    let mut buf = [0u8; 512];
    while !over(stop, started) && opens.fetch_add(1, Ordering::Relaxed) < SLOWLORIS_OPENS {
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(2), net.connect(to)).await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.write_all(first).await;
        // Hold it; look at the flag every 200 ms.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Ok(_)) => {}
                Err(_) if over(stop, started) => return,
                Err(_) => {}
            }
        }
        // Do not spin on a target that refuses at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Padded access-point requests from one address of the flood's /24, every 20 ms, counting
/// the answers.
async fn ap_flood_from(ip: IpAddr, to: SocketAddr, i: u8, stop: &AtomicBool, seen: &Seen) {
    let started = Instant::now();
    let udp = TokioNet::new(ip)
        .bind_udp("0.0.0.0:0".parse().unwrap())
        .await
        .expect("bind a flood address");
    let tickets = Rc::new(Cell::new(0u64));
    let mut buf = vec![0u8; 2048];
    for n in 0..AP_FLOOD_PER_ADDR {
        if over(stop, started) {
            break;
        }
        let request =
            Message::padded_ap_request(u32::from(i) << 16 | n as u32, "flood", FLAG_UDP_MEDIA)
                .to_bytes()
                .unwrap();
        let _ = udp.send_to(&request, to).await;
        seen.ap_requests.fetch_add(1, Ordering::Relaxed);
        while let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_millis(20), udp.recv_from(&mut buf)).await
        {
            match Message::decode_datagram(&buf[..len]) {
                Ok(Message::ApResponse { .. }) => {
                    tickets.set(tickets.get() + 1);
                    seen.ap_tickets.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    seen.ap_other_answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    seen.ap_tickets_one_addr_max
        .fetch_max(tickets.get(), Ordering::Relaxed);
}

/// One write-queue hog address: up to [`HOG_ROUNDS`] rounds of [`hog_round`], a second apart.
async fn queue_hog(t: Targets, ip: IpAddr, stop: &AtomicBool, seen: &Seen) {
    let started = Instant::now();
    for round in 0..HOG_ROUNDS {
        if over(stop, started) {
            return;
        }
        if let Err(e) = hog_round(t, ip, round, stop, started, seen).await {
            seen.hog_failed.fetch_add(1, Ordering::Relaxed);
            if round == 0 {
                eprintln!("queue hog {ip}: {e}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A ticket, a tunnel to [`Targets::tunnel_to`], a media channel on its session with a small
/// receive buffer; keepalives written on the channel without ever reading an answer (up to
/// [`HOG_KEEPALIVES`], or until the relay cuts it); then the tunnel closes and the channel is
/// held open, still unread, until the relay closes it or the attacks stop.
async fn hog_round(
    t: Targets,
    ip: IpAddr,
    round: u64,
    stop: &AtomicBool,
    started: Instant,
    seen: &Seen,
) -> Result<(), String> {
    let ticket = hog_ticket(t, ip, round).await?;
    let mut tunnel = connect_from(ip, t.relay_tcp, None).await?;
    let open = Message::TunnelOpen {
        ticket,
        destination: t.tunnel_to,
    };
    write(&mut tunnel, &open).await?;
    let session_id = match read_message(&mut tunnel).await? {
        Message::TunnelAccept { session_id, .. } => session_id,
        other => return Err(format!("no TunnelAccept: {other:?}")),
    };
    let mut channel = connect_from(ip, t.relay_tcp, Some(4096)).await?;
    write(&mut channel, &Message::MediaChannelOpen { session_id }).await?;
    seen.hog_channels.fetch_add(1, Ordering::Relaxed);
    let mut burst = Vec::new();
    for seq in 0..1_000 {
        burst.extend_from_slice(&Message::Keepalive { session_id, seq }.to_bytes().unwrap());
    }
    let mut cut = false;
    for _ in 0..HOG_KEEPALIVES / 1_000 {
        if over(stop, started) {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(2), channel.write_all(&burst)).await {
            Ok(Ok(())) => {
                seen.hog_bytes_written
                    .fetch_add(burst.len() as u64, Ordering::Relaxed);
            }
            Ok(Err(_)) => {
                cut = true;
                break;
            }
            // Nothing moves: the relay holds its queue for us; stop writing, keep holding.
            Err(_) => break,
        }
    }
    drop(tunnel);
    // Hold the channel, unread, until the relay closes it (seen as a failed write) or the end.
    while !cut && !over(stop, started) {
        let probe = Message::Keepalive {
            session_id,
            seq: u32::MAX,
        }
        .to_bytes()
        .unwrap();
        match tokio::time::timeout(Duration::from_millis(200), channel.write_all(&probe)).await {
            Ok(Err(_)) => cut = true,
            Ok(Ok(())) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(_) => {}
        }
    }
    if cut {
        seen.hog_cut.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// A ticket for `ip` from the access point (over UDP, a few tries).
async fn hog_ticket(t: Targets, ip: IpAddr, round: u64) -> Result<Ticket, String> {
    let udp = TokioNet::new(ip)
        .bind_udp("0.0.0.0:0".parse().unwrap())
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let request = Message::padded_ap_request(0x7000_0000 | round as u32, "hog", FLAG_UDP_MEDIA)
        .to_bytes()
        .unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..10 {
        let _ = udp.send_to(&request, t.ap_udp).await;
        if let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await
        {
            if let Ok(Message::ApResponse { ticket, .. }) = Message::decode_datagram(&buf[..len]) {
                return Ok(ticket);
            }
        }
    }
    Err("no ticket from the access point".into())
}

/// Connects from `ip` to `to`, with a receive buffer of `recv_buffer` bytes if given.
async fn connect_from(
    ip: IpAddr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(size) = recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| e.to_string())?;
    }
    socket
        .bind(SocketAddr::new(ip, 0))
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .map_err(|_| format!("connect to {to}: timed out"))?
        .map_err(|e| format!("connect to {to}: {e}"))
}

async fn write(stream: &mut TcpStream, message: &Message) -> Result<(), String> {
    stream
        .write_all(&message.to_bytes().unwrap())
        .await
        .map_err(|e| e.to_string())
}

/// Reads one whole message (within 5 s), a byte at a time: nothing after it is consumed.
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
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return Err(format!("closed after {} bytes", buf.len())),
                Ok(_) => buf.push(byte[0]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no message within 5 s".into()))
}
