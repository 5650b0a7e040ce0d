//! The loops that push traffic through a relay. The same client code drives `serve` and the
//! baselines: only how a tunnel or a flow is opened differs (through the access point and
//! `TunnelOpen` with [`cloudproxy_load::session`] for `serve`, a plain connect for the
//! others), and `serve`'s datagrams carry the protocol's `MediaData` header.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cloudproxy_core::wire::Message;
use cloudproxy_load::session::{open_session, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Write size of the transfers.
pub const CHUNK: usize = 64 * 1024;

/// A stream through a relay (or straight to the upstream).
pub struct Tunnel {
    /// The raw byte stream.
    pub stream: TcpStream,
    /// The `serve` session, when it is one.
    pub session: Option<u64>,
}

impl Tunnel {
    /// A plain connection from `bind` to `to` (a baseline relay or the upstream itself).
    pub async fn connect(bind: IpAddr, to: SocketAddr) -> Result<Tunnel, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(bind, 0))
            .map_err(|e| format!("bind {bind}: {e}"))?;
        let stream = socket
            .connect(to)
            .await
            .map_err(|e| format!("connect {to}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Tunnel {
            stream,
            session: None,
        })
    }

    /// A tunnel through `serve`: AP request, ticket, `TunnelOpen` to `destination`.
    pub async fn through_serve(
        ap: SocketAddr,
        bind: IpAddr,
        id: u32,
        destination: SocketAddr,
    ) -> Result<Tunnel, String> {
        let s: Session = open_session(&[ap], bind, "cloudproxy-bench", id, destination)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Tunnel {
            stream: s.tunnel,
            session: Some(s.session_id),
        })
    }
}

/// Sends `len` bytes to the sink (one direction) and waits for its count.
pub async fn sink(t: &mut Tunnel, len: u64, chunk: &[u8]) -> Result<(), String> {
    cloudproxy_load::upstream::sink_transfer(&mut t.stream, len, chunk)
        .await
        .map_err(|e| format!("the tunnel broke: {e}"))
}

/// Sends `len` bytes to the sink at `bytes_per_sec`, in [`CHUNK`] writes on a schedule (a
/// late write is not made up by a burst beyond the schedule), and waits for its count.
pub async fn paced_sink(
    t: &mut Tunnel,
    len: u64,
    bytes_per_sec: f64,
    chunk: &[u8],
) -> Result<(), String> {
    let s = &mut t.stream;
    s.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    while sent < len {
        let due = start + Duration::from_secs_f64(sent as f64 / bytes_per_sec);
        tokio::time::sleep_until(due).await;
        let n = (len - sent).min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..n])
            .await
            .map_err(|e| format!("the tunnel broke after {sent} bytes: {e}"))?;
        sent += n as u64;
    }
    let mut answer = [0u8; 8];
    s.read_exact(&mut answer)
        .await
        .map_err(|e| format!("the tunnel broke before the sink's count: {e}"))?;
    Ok(())
}

/// Writes `len` bytes to the echo while reading `len` bytes back (both directions at once).
pub async fn echo(t: &mut Tunnel, len: u64, chunk: &[u8]) -> Result<(), String> {
    let (mut rd, mut wr) = t.stream.split();
    let writing = async {
        let mut sent = 0u64;
        while sent < len {
            let n = (len - sent).min(chunk.len() as u64) as usize;
            wr.write_all(&chunk[..n])
                .await
                .map_err(|e| format!("write after {sent} bytes: {e}"))?;
            sent += n as u64;
        }
        Ok::<(), String>(())
    };
    let reading = async {
        let mut buf = vec![0u8; CHUNK];
        let mut back = 0u64;
        while back < len {
            match rd.read(&mut buf).await {
                Ok(0) => return Err(format!("the tunnel closed after {back} bytes back")),
                Ok(n) => back += n as u64,
                Err(e) => return Err(format!("read after {back} bytes: {e}")),
            }
        }
        Ok(())
    };
    let (w, r) = tokio::join!(writing, reading);
    r.and(w)
}

/// One UDP flow: a socket, where its datagrams go, and the datagram it sends.
pub struct Flow {
    /// The client's socket.
    pub socket: Rc<UdpSocket>,
    /// The relay's (or echo's) address.
    pub to: SocketAddr,
    /// What is sent: a raw payload, or a `MediaData` frame for `serve`.
    pub datagram: Vec<u8>,
    /// `serve`'s session (its tunnel held open), when it is one.
    pub session: Option<Session>,
}

impl Flow {
    /// A raw flow from `bind` to `to` with `payload` bytes per datagram.
    pub async fn raw(bind: IpAddr, to: SocketAddr, payload: usize) -> Result<Flow, String> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Flow {
            socket: Rc::new(socket),
            to,
            datagram: vec![0x5a; payload],
            session: None,
        })
    }

    /// A media flow through `serve` to the UDP echo at `peer`.
    pub async fn through_serve(
        ap: SocketAddr,
        bind: IpAddr,
        id: u32,
        tunnel_to: SocketAddr,
        peer: SocketAddr,
        payload: usize,
    ) -> Result<Flow, String> {
        let session = open_session(&[ap], bind, "cloudproxy-bench", id, tunnel_to)
            .await
            .map_err(|e| e.to_string())?;
        let to = session.media.ok_or("the relay offers no UDP")?;
        let datagram = Message::MediaData {
            session_id: session.session_id,
            peer,
            payload: vec![0x5a; payload],
        }
        .to_bytes()
        .map_err(|e| e.to_string())?;
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Flow {
            socket: Rc::new(socket),
            to,
            datagram,
            session: Some(session),
        })
    }
}

/// How long a closed loop waits for an answer before it refills its window.
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// Closed-loop echo: keeps `window` datagrams outstanding until `count` came back; returns the
/// wall time and how many were presumed lost (refilled after [`LOSS_TIMEOUT`]). Fails after
/// 20 s without progress. Each datagram goes in its own `send_to`.
pub async fn echo_window(flow: &Flow, count: u64, window: u64) -> Result<(Duration, u64), String> {
    echo_loop(flow, count, window, 1, Send::OneByOne).await
}

/// Closed-loop echo in bursts: `burst` datagrams at a time in one segmented send
/// ([`send_burst`]), the next burst once as many came back, `window` outstanding at most,
/// until `count` came back; the wall time and how many were presumed lost (as
/// [`echo_window`]). The receiving relay may take each burst as one message (UDP GRO).
pub async fn echo_bursts(
    flow: &Flow,
    count: u64,
    window: u64,
    burst: u64,
) -> Result<(Duration, u64), String> {
    echo_loop(flow, count, window, burst, Send::Segmented).await
}

/// How a closed loop sends several datagrams at once.
#[derive(Clone, Copy)]
enum Send {
    /// One `send_to` each.
    OneByOne,
    /// As few calls as the socket allows ([`send_burst`]).
    Segmented,
}

/// Sends `n` copies of the flow's datagram the way `how` says.
async fn send_n(flow: &Flow, n: u64, how: Send) {
    match how {
        Send::OneByOne => {
            for _ in 0..n {
                let _ = flow.socket.send_to(&flow.datagram, flow.to).await;
            }
        }
        Send::Segmented => send_burst(flow, n).await,
    }
}

/// Sends `n` copies of the flow's datagram to its destination in as few system calls as the
/// socket allows: runs to one destination go as one segmented send (UDP GSO) where the kernel
/// has it, as a sender of video frames sends each frame's packets.
async fn send_burst(flow: &Flow, n: u64) {
    use cloudproxy_node::net::Udp;
    let burst: Vec<(SocketAddr, &[u8])> = (0..n)
        .map(|_| (flow.to, flow.datagram.as_slice()))
        .collect();
    let mut sent = 0;
    while sent < burst.len() {
        if flow.socket.writable().await.is_err() {
            return;
        }
        match flow.socket.try_send_batch(&burst[sent..]) {
            Ok(k) => sent += k.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // A failed send loses that datagram; the loss timer sends it again.
            Err(_) => sent += 1,
        }
    }
}

/// The closed loop of [`echo_window`] and [`echo_bursts`]: `burst` at a time, `window`
/// outstanding at most, what is outstanding sent again after [`LOSS_TIMEOUT`] without an
/// answer, a failure after 100 such timeouts in a row.
async fn echo_loop(
    flow: &Flow,
    count: u64,
    window: u64,
    burst: u64,
    how: Send,
) -> Result<(Duration, u64), String> {
    let start = Instant::now();
    let burst = burst.clamp(1, window.max(1));
    let mut buf = vec![0u8; 4096];
    let (mut sent, mut back, mut lost) = (0u64, 0u64, 0u64);
    let mut stalls = 0;
    while sent < window.min(count) {
        let n = burst.min(count - sent);
        send_n(flow, n, how).await;
        sent += n;
    }
    while back < count {
        match tokio::time::timeout(LOSS_TIMEOUT, flow.socket.recv_from(&mut buf)).await {
            Ok(Ok(_)) => {
                back += 1;
                stalls = 0;
                let room = window.saturating_sub(sent - back);
                if room >= burst && sent < count {
                    let n = burst.min(count - sent);
                    send_n(flow, n, how).await;
                    sent += n;
                }
            }
            Ok(Err(_)) => {}
            Err(_) => {
                stalls += 1;
                if stalls > 100 {
                    return Err(format!("no answer for 20 s ({back} of {count} back)"));
                }
                // What is outstanding is presumed lost: send it again.
                let outstanding = sent - back;
                lost += outstanding;
                send_n(flow, outstanding, how).await;
            }
        }
    }
    Ok((start.elapsed(), lost))
}

/// Closed-loop echo on every flow at once: each keeps `window` datagrams outstanding until its
/// share of `count` came back (at least one each); returns the wall time of the slowest.
pub async fn echo_flows(flows: &[Flow], count: u64, window: u64) -> Result<Duration, String> {
    let start = Instant::now();
    let per_flow = count.div_ceil(flows.len().max(1) as u64).max(1);
    let tasks: Vec<_> = flows
        .iter()
        .map(|f| {
            let flow = Flow {
                socket: f.socket.clone(),
                to: f.to,
                datagram: f.datagram.clone(),
                session: None,
            };
            tokio::task::spawn_local(async move { echo_window(&flow, per_flow, window).await })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}

/// Open-loop flows: each sends `pps` datagrams a second for `duration` (first sends spread
/// over one interval); returns (sent, received) over every flow, counting answers until
/// 300 ms after the last send.
pub async fn run_flows(flows: &[Flow], pps: u32, duration: Duration) -> (u64, u64) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(pps.max(1)));
    let per_flow = (f64::from(pps) * duration.as_secs_f64()).round() as u64;
    let received = Rc::new(std::cell::Cell::new(0u64));
    let mut readers = Vec::new();
    for f in flows {
        let (socket, received) = (f.socket.clone(), received.clone());
        readers.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 4096];
            while socket.recv_from(&mut buf).await.is_ok() {
                received.set(received.get() + 1);
            }
        }));
    }
    let start = tokio::time::Instant::now();
    let mut senders = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        let (socket, to, datagram) = (f.socket.clone(), f.to, f.datagram.clone());
        let offset = interval.mul_f64(i as f64 / flows.len().max(1) as f64);
        senders.push(tokio::task::spawn_local(async move {
            for k in 0..per_flow {
                tokio::time::sleep_until(start + offset + interval * k as u32).await;
                let _ = socket.send_to(&datagram, to).await;
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for r in readers {
        r.abort();
    }
    (per_flow * flows.len() as u64, received.get())
}

/// A current-thread runtime and a `LocalSet` for the client side of a benchmark.
pub struct Client {
    /// The runtime.
    pub runtime: tokio::runtime::Runtime,
    /// The set every task runs in.
    pub local: tokio::task::LocalSet,
}

impl Client {
    /// A new one.
    pub fn new() -> Self {
        Client {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            local: tokio::task::LocalSet::new(),
        }
    }

    /// Runs `f` to completion.
    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.local.block_on(&self.runtime, f)
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}
