//! A two-party call, through the real `serve` or straight to the edge: what the call case of
//! the benchmarks measures (`benches/benches/call.rs`).
//!
//! Both parties speak the application's own formats (`cloudproxy_core::app`): signalling lines
//! (`Join`, `Msg`, each answered by the edge's `Ack`) on a TCP stream to the edge's signalling
//! address, media packets (`uid | seq | checksum | body`) to its UDP media address, forwarded
//! by the edge to the other member of the channel. **Through `serve`** the stream is a tunnel
//! (`ApRequest`, ticket, `TunnelOpen` to the edge's signalling address) and every media packet
//! goes to the session's UDP port as `MediaData` (peer: the edge's media address); **direct**
//! the same bytes go to the edge from the same client addresses. The edge is the real one
//! ([`cloudproxy_node::nodes::edge::run_edge`]), on a thread of its own in the benchmark's
//! process, at [`EDGE_IP`] inside the bench `serve`'s SD-RTN block.
//!
//! What is measured:
//!
//! - **signalling round trip**: from writing a `Msg` to reading its `Ack` (closed loop: one
//!   message outstanding per party);
//! - **media transit and jitter**: each media body starts with the sender's send instant
//!   (the application's stamp, [`stamped_payload`]: microseconds since the call's epoch, one
//!   clock for both parties: they run in one process), so the receiver reads each packet's
//!   one-way transit directly; the jitter is RFC 3550 §6.4.1's `J += (|D| − J) / 16`, `D` the
//!   change of transit between consecutive packets, kept in nanoseconds and reported in
//!   microseconds (`jitter_us`, the unit of `cloudproxy call --json`). The send instant is
//!   read just before the send, so the sender's own timer jitter does not enter: what is left
//!   is the path's (relay included). Percentiles and jitter are `cloudproxy_core::app::stats`,
//!   the code `cloudproxy call` and `cloudproxy load` report with.
//!
//! Every wait is bounded ([`STEP_TIMEOUT`]); a call that cannot be set up or whose messages go
//! unanswered is an error naming the step, never a hang.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cloudproxy_core::app::stats::{Jitter, Percentiles};
use cloudproxy_core::app::{
    media_packet, media_sent_us, read_media, stamped_payload, LineReader, Signal,
};
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::wire::{Message, MAX_FRAME_LEN};
use cloudproxy_load::session::open_session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// The edge's address (inside the bench `serve`'s SD-RTN block, 127.90.3.0/24).
pub const EDGE_IP: Ipv4Addr = Ipv4Addr::new(127, 90, 3, 3);
/// The longest any one step (a connect, an ack, the warm-up) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of each media body (the send instant, then padding).
pub const MEDIA_BODY: usize = 1_000;
/// Media packets kept per receiver for the transit percentiles (a call at 50 pps for 60 s
/// sends 3,000).
const MAX_TRANSITS: usize = 100_000;

/// Starts the real SD-RTN edge on [`EDGE_IP`] (ports 5000-5002) on a thread of its own and
/// waits until it accepts connections. It lives as long as the process.
pub fn start_edge() -> SdRtnEndpoints {
    let ip = IpAddr::V4(EDGE_IP);
    let endpoints = SdRtnEndpoints {
        signalling: SocketAddr::new(ip, 5000),
        media_udp: SocketAddr::new(ip, 5001),
        media_tcp: SocketAddr::new(ip, 5002),
    };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the edge");
        let local = tokio::task::LocalSet::new();
        let stats = Rc::new(RefCell::new(Default::default()));
        let net = cloudproxy_node::net::TokioNet::new(ip);
        let result = local.block_on(
            &runtime,
            cloudproxy_node::nodes::edge::run_edge(net, endpoints, stats),
        );
        eprintln!("the bench edge stopped: {result:?}");
    });
    let deadline = Instant::now() + STEP_TIMEOUT;
    while std::net::TcpStream::connect(endpoints.signalling).is_err() {
        assert!(
            Instant::now() < deadline,
            "the edge did not listen on {} within {STEP_TIMEOUT:?}",
            endpoints.signalling
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    endpoints
}

/// How a party reaches the edge.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// Straight to the edge.
    Direct,
    /// Through the `serve` whose access point is this.
    Serve(SocketAddr),
}

/// Where a party's media goes.
#[derive(Clone, Copy, Debug)]
enum MediaPath {
    Direct,
    Relay { session_id: u64, at: SocketAddr },
}

/// A party's signalling stream (to the edge, directly or through a tunnel).
struct Signalling {
    uid: u32,
    stream: TcpStream,
    lines: LineReader,
    next_seq: u64,
}

/// A party's media socket and where its packets go.
struct Media {
    uid: u32,
    socket: Rc<UdpSocket>,
    path: MediaPath,
    edge_media: SocketAddr,
}

/// One party of a call, joined to its channel.
pub struct Party {
    signalling: Signalling,
    media: Media,
}

fn step<T>(
    what: &str,
    r: Result<Result<T, String>, tokio::time::error::Elapsed>,
) -> Result<T, String> {
    match r {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: nothing within {STEP_TIMEOUT:?}")),
    }
}

impl Party {
    /// Connects `uid` from `bind` to the edge (directly or through `serve`) and joins
    /// `channel`.
    pub async fn open(
        via: Via,
        bind: IpAddr,
        uid: u32,
        channel: &str,
        edge: SdRtnEndpoints,
    ) -> Result<Party, String> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0))
            .await
            .map_err(|e| format!("udp bind on {bind}: {e}"))?;
        let (stream, path) = match via {
            Via::Direct => {
                let connect = async {
                    let s = TcpSocket::new_v4().map_err(|e| e.to_string())?;
                    s.bind(SocketAddr::new(bind, 0))
                        .map_err(|e| e.to_string())?;
                    s.connect(edge.signalling).await.map_err(|e| e.to_string())
                };
                let stream = step(
                    "connect to the edge",
                    tokio::time::timeout(STEP_TIMEOUT, connect).await,
                )?;
                (stream, MediaPath::Direct)
            }
            Via::Serve(ap) => {
                let session = open_session(&[ap], bind, "bench-call", uid, edge.signalling)
                    .await
                    .map_err(|e| format!("a session through serve: {e}"))?;
                let at = session.media.ok_or("serve offered no UDP media port")?;
                let path = MediaPath::Relay {
                    session_id: session.session_id,
                    at,
                };
                (session.tunnel, path)
            }
        };
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut signalling = Signalling {
            uid,
            stream,
            lines: LineReader::default(),
            next_seq: 1,
        };
        let join = Signal::Join {
            ch: channel.to_owned(),
            uid,
            seq: signalling.take_seq(),
        };
        signalling.round_trip(join).await?;
        let media = Media {
            uid,
            socket: Rc::new(socket),
            path,
            edge_media: edge.media_udp,
        };
        Ok(Party { signalling, media })
    }

    /// Sends one signalling message and waits for its ack: the round trip.
    pub async fn signal(&mut self) -> Result<Duration, String> {
        self.signalling.message().await
    }
}

impl Signalling {
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    async fn message(&mut self) -> Result<Duration, String> {
        let msg = Signal::Msg {
            seq: self.take_seq(),
            body: "m".repeat(100),
        };
        self.round_trip(msg).await
    }

    async fn round_trip(&mut self, signal: Signal) -> Result<Duration, String> {
        let seq = match &signal {
            Signal::Join { seq, .. } | Signal::Msg { seq, .. } | Signal::Ack { seq } => *seq,
        };
        let start = Instant::now();
        let wait = async {
            self.stream
                .write_all(&signal.to_line())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut buf = [0u8; 4096];
            loop {
                let n = self
                    .stream
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("the stream closed".to_owned());
                }
                let signals = self.lines.push(&buf[..n]).map_err(|e| e.to_string())?;
                if signals.contains(&Signal::Ack { seq }) {
                    return Ok(start.elapsed());
                }
            }
        };
        let what = format!("uid {} message {seq}: its ack", self.uid);
        step(&what, tokio::time::timeout(STEP_TIMEOUT, wait).await)
    }

    /// Round trips, one every `every`, until `end`; microseconds each.
    async fn until(&mut self, end: Instant, every: Duration) -> Result<Vec<u32>, String> {
        let mut rtts = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < end {
            tick.tick().await;
            let rtt = self.message().await?.as_micros();
            rtts.push(u32::try_from(rtt).unwrap_or(u32::MAX));
        }
        Ok(rtts)
    }
}

impl Media {
    /// Sends media packet `seq`, its body stamped with the microseconds since `epoch`.
    async fn send(&self, seq: u32, epoch: Instant) {
        let sent_us = epoch.elapsed().as_micros() as u64;
        let packet = media_packet(self.uid, seq, &stamped_payload(sent_us, MEDIA_BODY, 0));
        let (datagram, to) = match self.path {
            MediaPath::Direct => (packet, self.edge_media),
            MediaPath::Relay { session_id, at } => (
                Message::MediaData {
                    session_id,
                    peer: self.edge_media,
                    payload: packet,
                }
                .to_bytes()
                .unwrap_or_default(),
                at,
            ),
        };
        let _ = self.socket.send_to(&datagram, to).await;
    }
}

/// What one receiver saw.
#[derive(Clone, Debug, Default)]
struct Received {
    packets: u64,
    /// RFC 3550 jitter of the transit times, in nanoseconds.
    jitter: Jitter,
    transits_us: Vec<u32>,
}

/// What a call measured, both parties together.
#[derive(Clone, Debug, Default)]
pub struct CallStats {
    /// Media packets sent (both parties).
    pub media_sent: u64,
    /// Media packets received (both parties).
    pub media_received: u64,
    /// RFC 3550 jitter at the end of the call, the mean of the two directions, microseconds
    /// (kept in nanoseconds while it runs, so the estimate's `/ 16` loses nothing).
    pub jitter_us: f64,
    /// One-way media transit, median and 99th percentile, microseconds.
    pub transit_us: (u64, u64),
    /// Signalling round trips, median and 99th percentile, microseconds.
    pub rtt_us: (u64, u64),
    /// Signalling round trips measured.
    pub round_trips: u64,
}

/// The median and 99th percentile of `v` (nearest rank), zero for none.
fn p50_p99(v: &[u32]) -> (u64, u64) {
    Percentiles::of(v).map_or((0, 0), |p| (u64::from(p.p50), u64::from(p.p99)))
}

/// Reads `media`'s socket into `into` until aborted.
fn receive(
    media: &Media,
    epoch: Instant,
    into: Rc<RefCell<Received>>,
) -> tokio::task::JoinHandle<()> {
    let socket = media.socket.clone();
    let relayed = matches!(media.path, MediaPath::Relay { .. });
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            let now_us = epoch.elapsed().as_micros() as u64;
            let packet = if relayed {
                match Message::decode_datagram(&buf[..n]) {
                    Ok(Message::MediaData { payload, .. }) => payload,
                    _ => continue,
                }
            } else {
                buf[..n].to_vec()
            };
            let Some(header) = read_media(&packet).filter(|h| h.intact) else {
                continue;
            };
            let Some(sent_us) = media_sent_us(&packet) else {
                continue;
            };
            let mut r = into.borrow_mut();
            r.packets += 1;
            if header.seq == 0 {
                // A warm-up packet: it only tells the edge where the sender listens.
                continue;
            }
            let transit_us = now_us.saturating_sub(sent_us);
            r.jitter
                .record(i64::try_from(transit_us.saturating_mul(1_000)).unwrap_or(i64::MAX));
            if r.transits_us.len() < MAX_TRANSITS {
                r.transits_us
                    .push(u32::try_from(transit_us).unwrap_or(u32::MAX));
            }
        }
    })
}

/// Both parties send warm-up packets (seq 0) until each has heard the other: the edge forwards
/// to a member only once that member has sent media itself.
async fn warm_up(
    a: &Media,
    b: &Media,
    epoch: Instant,
    heard: &[Rc<RefCell<Received>>; 2],
) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while heard.iter().any(|r| r.borrow().packets == 0) {
        if Instant::now() > deadline {
            return Err(format!(
                "the parties did not hear each other within {STEP_TIMEOUT:?}"
            ));
        }
        a.send(0, epoch).await;
        b.send(0, epoch).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A call of `duration`: both parties send media at `pps`, and each sends one signalling
/// message every `signal_every` and waits for its ack (closed loop). Must run inside a
/// `LocalSet`.
pub async fn call(
    a: &mut Party,
    b: &mut Party,
    duration: Duration,
    pps: u32,
    signal_every: Duration,
) -> Result<CallStats, String> {
    let epoch = Instant::now();
    let heard = [
        Rc::new(RefCell::new(Received::default())),
        Rc::new(RefCell::new(Received::default())),
    ];
    let tasks = [
        receive(&a.media, epoch, heard[1].clone()),
        receive(&b.media, epoch, heard[0].clone()),
    ];
    let result = async {
        warm_up(&a.media, &b.media, epoch, &heard).await?;
        for r in &heard {
            *r.borrow_mut() = Received::default();
        }
        let end = Instant::now() + duration;
        let media = async {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / pps.max(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut seq, mut sent) = (1u32, 0u64);
            while Instant::now() < end {
                tick.tick().await;
                a.media.send(seq, epoch).await;
                b.media.send(seq, epoch).await;
                (seq, sent) = (seq + 1, sent + 2);
            }
            sent
        };
        let (sent, ra, rb) = tokio::join!(
            media,
            a.signalling.until(end, signal_every),
            b.signalling.until(end, signal_every)
        );
        // What is still in flight lands.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut rtts = ra?;
        rtts.extend(rb?);
        Ok::<_, String>((sent, rtts))
    }
    .await;
    for t in &tasks {
        t.abort();
    }
    let (media_sent, rtts) = result?;
    let (mut transits, mut jitter_us, mut received) = (Vec::new(), 0.0, 0);
    for r in &heard {
        let r = r.borrow();
        transits.extend_from_slice(&r.transits_us);
        jitter_us += f64::from(r.jitter.estimate()) / 1_000.0 / 2.0;
        received += r.packets;
    }
    Ok(CallStats {
        media_sent,
        media_received: received,
        jitter_us,
        transit_us: p50_p99(&transits),
        rtt_us: p50_p99(&rtts),
        round_trips: rtts.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_and_p99_are_core_nearest_rank_and_zero_for_none() {
        // 1..=100 in any order: rank 50 and rank 99.
        let v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(p50_p99(&v), (50, 99));
        assert_eq!(p50_p99(&[]), (0, 0));
        assert_eq!(p50_p99(&[7]), (7, 7));
    }
}
