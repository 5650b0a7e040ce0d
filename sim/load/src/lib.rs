//! # cloudproxy-load
//!
//! The load generator behind `cloudproxy load` and the relay benchmarks (`benches/`). It
//! speaks the real protocol over real tokio sockets (`docs/protocol.md`): for each of N
//! clients an `ApRequest` to an access point, a ticket, a tunnel (`TunnelOpen` →
//! `TunnelAccept`), then `MediaData` datagrams to the relay's UDP port at P packets/s with
//! B-byte payloads for S seconds, and optionally X bytes through the tunnel. It measures what
//! was sent and received, loss, duplicates, reordering, round-trip time and jitter
//! ([`stats`] defines each).
//!
//! Something upstream must answer. Two targets:
//!
//! - [`Target::Echo`]: the small servers of [`upstream`] (UDP echo, TCP echo, TCP sink), bound
//!   on an address inside the relay's SD-RTN range. Every probe comes back from the echo; the
//!   tunnel bytes come back from the TCP echo.
//! - [`Target::Edge`]: a real SD-RTN edge (`cloudproxy edge`). The edge forwards media only
//!   between the members of a channel, so clients go in **pairs** (client 2k and 2k+1 join
//!   channel `load-k` over their tunnels): each sends its own probes and reflects every probe
//!   of its partner back, so each measures the round trip client → relay → edge → relay →
//!   partner → relay → edge → relay → client (twice the relay's path of the echo target, and
//!   twice the traffic: P probes and P reflections per second per client). Tunnel bytes go as
//!   signalling messages, each acknowledged by the edge.
//!
//! Everything is bounded in count and time: see [`LoadOptions::validate`] for every limit.
//! [`run`] is the whole thing on a runtime of its own; [`Fleet`] gives the phases to callers
//! that measure something in between (the benchmarks).

#![warn(missing_docs)]
// A measuring tool on real sockets: round-trip times and pacing are wall-clock readings
// (clippy.toml disallows the system clocks for the simulation's sake).
#![allow(clippy::disallowed_methods)]

pub mod args;
mod fleet;
pub mod probe;
pub mod report;
pub mod session;
pub mod stats;
pub mod tunnel;
pub mod upstream;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use fleet::Fleet;
pub use report::{LoadReport, TunnelReport};
use upstream::UpstreamAddrs;

/// Most clients (sessions) one run opens.
pub const MAX_CLIENTS: u32 = 20_000;
/// Most packets per second per client.
pub const MAX_PPS: u32 = 10_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(3_600);
/// Most probes one run may send in total (clients × pps × seconds): bounds the bitmaps that
/// track them (one bit each).
pub const MAX_TOTAL_PACKETS: u64 = 200_000_000;
/// Most tunnel bytes per client.
pub const MAX_TUNNEL_BYTES: u64 = 1 << 40;
/// Smallest media payload: a probe header, plus the edge's media header in edge mode.
pub const MIN_PAYLOAD: usize = 32;
/// Largest media payload ([`cloudproxy_core::wire::MAX_MEDIA_PAYLOAD`]).
pub const MAX_PAYLOAD: usize = cloudproxy_core::wire::MAX_MEDIA_PAYLOAD;

/// What answers the load, upstream of the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The [`upstream`] servers.
    Echo(UpstreamAddrs),
    /// A real SD-RTN edge: signalling (TCP) and media (UDP) addresses.
    Edge {
        /// Its signalling address (tunnels go there).
        signalling: SocketAddr,
        /// Its UDP media address.
        media: SocketAddr,
    },
}

impl Target {
    /// Where tunnels go.
    pub fn tunnel_destination(&self) -> SocketAddr {
        match self {
            Target::Echo(a) => a.tcp_echo,
            Target::Edge { signalling, .. } => *signalling,
        }
    }

    /// Where media goes (the `peer` of every `MediaData`).
    pub fn media_peer(&self) -> SocketAddr {
        match self {
            Target::Echo(a) => a.udp_echo,
            Target::Edge { media, .. } => *media,
        }
    }

    /// Whether clients go in pairs (edge mode).
    pub fn paired(&self) -> bool {
        matches!(self, Target::Edge { .. })
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The access points, tried in order.
    pub aps: Vec<SocketAddr>,
    /// The application id presented to them.
    pub app_id: String,
    /// What answers upstream.
    pub target: Target,
    /// Sessions to open.
    pub clients: u32,
    /// Media packets per second per client (0: idle sessions, kept alive by keepalives).
    pub pps: u32,
    /// Media payload size, bytes.
    pub payload_bytes: usize,
    /// How long media is sent.
    pub duration: Duration,
    /// Bytes each client sends through its tunnel (0: none).
    pub tunnel_bytes: u64,
    /// The first client's source address; client i uses `bind + i / sessions_per_ip`.
    pub bind: Ipv4Addr,
    /// Sessions per source address (an access point rate-limits requests per address: 20
    /// per 10 s by default).
    pub sessions_per_ip: u32,
    /// Sessions being opened at once.
    pub open_concurrency: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            aps: vec![SocketAddr::from(([127, 0, 1, 1], 1080))],
            app_id: "cloudproxy-load".into(),
            target: Target::Edge {
                signalling: SocketAddr::from(([127, 0, 3, 1], 5000)),
                media: SocketAddr::from(([127, 0, 3, 1], 5001)),
            },
            clients: 2,
            pps: 50,
            payload_bytes: 200,
            duration: Duration::from_secs(5),
            tunnel_bytes: 0,
            bind: Ipv4Addr::new(127, 0, 20, 1),
            sessions_per_ip: 16,
            open_concurrency: 64,
        }
    }
}

/// Why a run could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// An option is out of its bounds; the message names it and the bound.
    #[error("{0}")]
    Usage(String),
    /// A socket operation failed.
    #[error("{0}")]
    Io(String),
    /// Nobody answered (no access point, no relay).
    #[error("{0}")]
    Unreachable(String),
    /// The proxy refused (the message has its error code and reason).
    #[error("{0}")]
    Refused(String),
    /// The proxy answered something the protocol does not allow there.
    #[error("{0}")]
    Protocol(String),
    /// No session could be opened; the message has the first reason.
    #[error("no session opened: {0}")]
    NoSession(String),
}

impl LoadOptions {
    /// Checks every bound; the error names the option (as the command line spells it).
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::Usage(m));
        if self.aps.is_empty() {
            return bad("no access point to ask: give --params with the proxy's addresses".into());
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return bad(format!(
                "--clients {}: expected 1..={MAX_CLIENTS}",
                self.clients
            ));
        }
        if self.target.paired() && self.clients % 2 == 1 {
            return bad(format!(
                "--clients {}: against an edge, clients go in pairs (the edge forwards media between the members of a channel): give an even number, or --echo",
                self.clients
            ));
        }
        if self.pps > MAX_PPS {
            return bad(format!("--pps {}: expected 0..={MAX_PPS}", self.pps));
        }
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&self.payload_bytes) {
            return bad(format!(
                "--payload {}: expected {MIN_PAYLOAD}..={MAX_PAYLOAD} bytes",
                self.payload_bytes
            ));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return bad(format!(
                "--for {:?}: expected more than 0 and at most {} s",
                self.duration,
                MAX_DURATION.as_secs()
            ));
        }
        let total = u64::from(self.clients)
            * u64::from(self.pps)
            * self.duration.as_secs_f64().ceil() as u64;
        if total > MAX_TOTAL_PACKETS {
            return bad(format!(
                "--clients × --pps × --for = {total} probes: at most {MAX_TOTAL_PACKETS} per run"
            ));
        }
        if self.tunnel_bytes > MAX_TUNNEL_BYTES {
            return bad(format!(
                "--tunnel-bytes {}: at most {MAX_TUNNEL_BYTES}",
                self.tunnel_bytes
            ));
        }
        if self.sessions_per_ip == 0 {
            return bad("--sessions-per-ip 0: expected at least 1".into());
        }
        if self.open_concurrency == 0 || self.open_concurrency > 4096 {
            return bad(format!(
                "--open-concurrency {}: expected 1..=4096",
                self.open_concurrency
            ));
        }
        let last =
            u32::from(self.bind) as u64 + u64::from((self.clients - 1) / self.sessions_per_ip);
        if !self.bind.is_loopback()
            || last > u64::from(u32::from(Ipv4Addr::new(127, 255, 255, 254)))
        {
            return bad(format!(
                "--bind {}: the source addresses of {} clients at {} per address must stay inside 127.0.0.0/8 (load goes to loopback only)",
                self.bind, self.clients, self.sessions_per_ip
            ));
        }
        Ok(())
    }

    /// Client `i`'s source address.
    pub fn source_of(&self, i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(
            u32::from(self.bind) + i / self.sessions_per_ip.max(1),
        ))
    }

    /// Probes each client sends.
    pub fn probes_per_client(&self) -> u32 {
        let n = f64::from(self.pps) * self.duration.as_secs_f64();
        n.ceil().min(f64::from(u32::MAX - 1)) as u32
    }
}

/// Runs the load on a current-thread runtime of its own (blocking the caller) and reports.
pub fn run(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    options.validate()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadError::Io(format!("cannot start a runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run_async(options))
}

/// Runs the load; must run inside a `LocalSet`.
pub async fn run_async(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    options.validate()?;
    let started = std::time::Instant::now();
    let mut fleet = Fleet::open(options).await?;
    let opened_in = started.elapsed();
    fleet
        .run_media(options.duration, options.tunnel_bytes)
        .await;
    let report = fleet.report(opened_in);
    fleet.close().await;
    Ok(report)
}

/// The default media payload for `cloudproxy load` (SD-RTN media packets are small).
pub const DEFAULT_PAYLOAD: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_option() {
        let ok = LoadOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let err = |f: &dyn Fn(&mut LoadOptions)| {
            let mut o = LoadOptions::default();
            f(&mut o);
            o.validate().unwrap_err().to_string()
        };
        assert!(err(&|o| o.clients = 0).starts_with("--clients 0"));
        assert!(err(&|o| o.clients = 3).contains("pairs"));
        assert!(err(&|o| o.pps = MAX_PPS + 1).starts_with("--pps"));
        assert!(err(&|o| o.payload_bytes = 10).starts_with("--payload 10"));
        assert!(err(&|o| o.payload_bytes = 1501).starts_with("--payload 1501"));
        assert!(err(&|o| o.duration = Duration::ZERO).starts_with("--for"));
        assert!(err(&|o| o.bind = Ipv4Addr::new(10, 0, 0, 1)).contains("loopback only"));
        assert!(err(&|o| {
            o.clients = 20_000;
            o.pps = 10_000;
            o.duration = Duration::from_secs(3_600);
        })
        .contains("probes"));
    }

    #[test]
    fn clients_share_source_addresses() {
        let o = LoadOptions {
            sessions_per_ip: 16,
            ..LoadOptions::default()
        };
        assert_eq!(o.source_of(0), IpAddr::from([127, 0, 20, 1]));
        assert_eq!(o.source_of(15), IpAddr::from([127, 0, 20, 1]));
        assert_eq!(o.source_of(16), IpAddr::from([127, 0, 20, 2]));
        let p = LoadOptions {
            pps: 50,
            duration: Duration::from_millis(1_500),
            ..LoadOptions::default()
        };
        assert_eq!(p.probes_per_client(), 75);
    }
}
