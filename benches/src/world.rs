//! The benchmarks' loopback world, `127.90.0.0/16` (and `127.91.0.0/16` for a second
//! `serve`):
//!
//! | what | address |
//! |---|---|
//! | upstream servers (TCP echo 7007, sink 7009, UDP echo 7007) | 127.90.3.2, inside SD-RTN 127.90.3.0/24 |
//! | `serve`: access point / relay (tcp 4000, udp 4500-4503) | 127.90.1.1 / 127.90.2.1 |
//! | a second `serve` | 127.91.1.1 / 127.91.2.1 |
//! | baseline relays | 127.90.5.x, port 6001 (to the sink) or 6002 (to the echo) |
//! | clients | 127.90.10.1 and up |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cloudproxy_load::upstream::{UpstreamAddrs, UpstreamThread};

use crate::procs::RelayProc;

/// The upstream servers' address.
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(127, 90, 3, 2);
/// The clients' first address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 90, 10, 1);

/// The baselines a relay case is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// tokio `copy_bidirectional_with_sizes`, 8 KiB.
    Copy8k,
    /// The same, 64 KiB.
    Copy64k,
    /// `splice(2)` through a pipe.
    Splice,
    /// tokio `recv_from`/`send_to`.
    UdpNaive,
    /// `recvmmsg`/`sendmmsg`.
    UdpMmsg,
}

impl Baseline {
    /// `bench_relay`'s mode, and the name in reports.
    pub fn mode(self) -> &'static str {
        match self {
            Baseline::Copy8k => "tcp-copy-8k",
            Baseline::Copy64k => "tcp-copy-64k",
            Baseline::Splice => "tcp-splice",
            Baseline::UdpNaive => "udp-naive",
            Baseline::UdpMmsg => "udp-mmsg",
        }
    }

    fn ip(self) -> Ipv4Addr {
        let last = match self {
            Baseline::Copy8k => 1,
            Baseline::Copy64k => 2,
            Baseline::Splice => 3,
            Baseline::UdpNaive => 4,
            Baseline::UdpMmsg => 5,
        };
        Ipv4Addr::new(127, 90, 5, last)
    }
}

/// The upstream servers at [`UPSTREAM_IP`], on a thread of their own.
pub fn upstream() -> UpstreamThread {
    UpstreamThread::start(UpstreamAddrs::on(IpAddr::V4(UPSTREAM_IP)))
        .unwrap_or_else(|e| panic!("upstream servers: {e}"))
}

/// Starts baseline `b` relaying to `upstream`; `port` tells the listening port apart.
pub fn start_baseline(
    bin: &str,
    b: Baseline,
    port: u16,
    upstream: SocketAddr,
) -> (RelayProc, SocketAddr) {
    let listen = SocketAddr::new(IpAddr::V4(b.ip()), port);
    let args = vec![
        b.mode().to_owned(),
        "--listen".into(),
        listen.to_string(),
        "--upstream".into(),
        upstream.to_string(),
    ];
    (RelayProc::start(bin, b.mode(), &args, &[]), listen)
}

/// A `serve` instance in a child process.
pub struct Serve {
    /// The process.
    pub proc: RelayProc,
    /// Its access point (UDP and TCP 1080).
    pub ap: SocketAddr,
    /// Its relay's TCP address.
    pub relay: SocketAddr,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `bench_relay serve` on `127.<second>.1.1` (AP) and `127.<second>.2.1` (relay), with
/// the SD-RTN block of the upstream servers and bounds wide enough for the benchmarks: no
/// idle expiry within a run, 20 000 sessions, no rate limit that a benchmark would hit.
/// `max_queued` is the relay's `max_queued_bytes_per_stream` (the default's 4 MiB unless
/// given). One relay worker, as every baseline relay runs on one thread: the ratios compare
/// implementations, not thread counts ([`start_serve_workers`] for more).
pub fn start_serve(bin: &str, second: u8, max_queued: Option<usize>) -> Serve {
    start_serve_workers(bin, second, max_queued, 1)
}

/// [`start_serve`] with `workers` relay workers (`[relay] workers`, one shard each).
pub fn start_serve_workers(
    bin: &str,
    second: u8,
    max_queued: Option<usize>,
    workers: u16,
) -> Serve {
    start_serve_config(bin, second, max_queued, workers, true)
}

/// [`start_serve`] with `[relay] io_uring = false`: each round's sends go one `sendmmsg(2)`
/// per socket (the relay before its io_uring submits, for the ratio of the two).
pub fn start_serve_sendmmsg(bin: &str, second: u8) -> Serve {
    start_serve_config(bin, second, None, 1, false)
}

fn start_serve_config(
    bin: &str,
    second: u8,
    max_queued: Option<usize>,
    workers: u16,
    io_uring: bool,
) -> Serve {
    let dir =
        std::env::temp_dir().join(format!("cloudproxy-bench-{}-{second}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let queued = max_queued.map_or(String::new(), |q| {
        format!("max_queued_bytes_per_stream = {q}\n")
    });
    let config = format!(
        "sdrtn = [\"127.90.3.0/24\"]\n\n[ap]\nlisten = [\"127.{second}.1.1\"]\nports = [1080]\nmax_requests_per_ip = 100000\nmax_tracked_ips = 100000\nmax_requests_per_prefix = 1000000\nmax_tracked_prefixes = 100000\nticket_lifetime_ms = 3600000\n\n[relay]\nlisten = [\"127.{second}.2.1\"]\nudp_ports = \"4500-4503\"\nidle_timeout_ms = 3600000\nmax_sessions_total = 20000\nmax_sessions_per_client_ip = 20000\nmax_pending_handshakes = 4096\nworkers = {workers}\nio_uring = {io_uring}\n{queued}"
    );
    let path = dir.join("serve.toml");
    crate::procs::write_file(&path, &config);
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .expect("/dev/urandom");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let args = vec![
        "serve".to_owned(),
        "--config".into(),
        path.display().to_string(),
    ];
    let proc = RelayProc::start(bin, "serve", &args, &[("CLOUDPROXY_TICKET_KEY", &hex)]);
    Serve {
        proc,
        ap: SocketAddr::from(([127, second, 1, 1], 1080)),
        relay: SocketAddr::from(([127, second, 2, 1], 4000)),
        _dir: TempDir(dir),
    }
}

/// Client `i`'s source address ([`CLIENT_IP`] + i / 16).
pub fn client_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(CLIENT_IP) + i / 16))
}
