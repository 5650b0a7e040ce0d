//! `cloudproxy call`: one SDK client on real sockets. It runs the simulation's client
//! ([`run_client`]: the engine's setParameters rules, the proxy client machine, signalling and
//! 50 media packets/s) over [`TokioNet`] from its own address, joins, talks for the given
//! time, leaves, and reports like a simulated run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::app::stats::Percentiles;
use cloudproxy_core::client::ConnectionState;
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::socks5::Credentials;
use serde_json::{json, Value};

use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_node::net::TokioNet;
use cloudproxy_node::nodes::client::{run_client, ClientEnv, ClientReport, ClientSpec, Op};
use cloudproxy_node::tls::Tls;
use cloudproxy_node::trace::Trace;

use super::logging;

/// Everything a call needs.
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// The setParameters texts applied before joining, in order.
    pub params: Vec<String>,
    /// Read them in compatibility mode.
    pub compat: bool,
    /// The SD-RTN edge.
    pub edge: SdRtnEndpoints,
    /// How long from the join to the leave.
    pub duration: Duration,
    /// The client's name in logs and the report.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its channel.
    pub channel: String,
    /// The application id presented to the access point.
    pub app_id: String,
    /// The client's own address (its source for every connection and datagram).
    pub bind: IpAddr,
    /// Names the client resolves itself (`--dns`); every other name goes to `resolver`, or
    /// to the system's resolver.
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
    /// The DNS resolver asked instead of the system's (`--resolver`).
    pub resolver: Option<std::net::SocketAddr>,
    /// SOCKS5 username and password.
    pub socks5_credentials: Option<Credentials>,
    /// Media packets per second.
    pub pps: u32,
    /// The seed of the client's own randomness (payload sizes, backoff jitter).
    pub seed: u64,
    /// Proxy client tweaks applied over the defaults.
    pub tune: fn(&mut cloudproxy_core::client::ClientConfig),
    /// `setCloudProxy(type)` before joining (**beyond the seed**), if any.
    pub cloud_proxy: Option<CloudProxyType>,
    /// TLS to port 443 (**beyond the seed**): what the client trusts (`--tls-ca`).
    pub tls: Tls,
}

/// What a call did.
#[derive(Clone, Debug)]
pub struct CallResult {
    /// The client's report.
    pub report: ClientReport,
    /// Wall time of the call.
    pub wall: Duration,
}

/// The most media packets per second `cloudproxy call --pps` takes: what the client sustains
/// on loopback in release mode, with margin (measured on 2 shared cores: 4,941-4,963 sent per
/// second at 5,000 asked, 9,525-9,804 at 10,000, 13,196-17,540 at 15,000-20,000; see
/// docs/serving.md).
pub const MAX_PPS: u32 = 5_000;

/// How a call went, as its exit status reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It joined, was connected at the end, and received media (exit 0).
    Ok,
    /// It never connected (exit 1).
    NeverJoined,
    /// It joined, then lost its connection and was not connected when the call ended (exit 1).
    EndedDisconnected,
    /// It joined and stayed connected, but no media reached it (exit 1).
    NoMedia,
}

impl Verdict {
    /// The verdict's name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NeverJoined => "never joined",
            Verdict::EndedDisconnected => "ended disconnected",
            Verdict::NoMedia => "no media",
        }
    }

    /// One sentence saying what went wrong with `name`'s call in `channel`.
    pub fn explain(self, name: &str, channel: &str, result: &CallResult) -> String {
        let r = &result.report;
        match self {
            Verdict::Ok => format!("{name} joined and received media"),
            Verdict::NeverJoined => format!("{name} never joined: {}", r.last_reason),
            Verdict::EndedDisconnected => format!(
                "{name} joined but ended disconnected ({}: {})",
                r.state.map_or("no state".to_owned(), |s| format!("{s:?}")),
                r.last_reason
            ),
            Verdict::NoMedia => format!(
                "{name} joined but received no media (is anyone else talking in channel {channel:?}?)"
            ),
        }
    }
}

impl CallResult {
    /// Whether the client ever connected.
    pub fn joined(&self) -> bool {
        self.report.join_time.is_some()
    }

    /// How the call went.
    pub fn verdict(&self) -> Verdict {
        if !self.joined() {
            Verdict::NeverJoined
        } else if self.report.state != Some(ConnectionState::Connected) {
            Verdict::EndedDisconnected
        } else if self.report.media_received() == 0 {
            Verdict::NoMedia
        } else {
            Verdict::Ok
        }
    }
}

/// The CA bundle trusted without `--tls-ca` (Debian's, `ca-certificates`).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client's TLS to port 443: trusting `ca_file`, else the system's bundle
/// ([`SYSTEM_CA_FILE`]) when there is one, else nothing (every TLS connection is then refused
/// as from an unknown issuer: never plain). The error names the file.
pub fn client_tls(ca_file: Option<&std::path::Path>) -> Result<Tls, String> {
    use cloudproxy_node::tls::{self, pem};
    let system = std::path::Path::new(SYSTEM_CA_FILE);
    let roots = match ca_file {
        Some(path) => pem::load_roots(path).map_err(|e| format!("--tls-ca {e}"))?,
        None if system.exists() => pem::load_roots(system).map_err(|e| e.to_string())?,
        None => cloudproxy_node::tls::RootCertStore::empty(),
    };
    let config = tls::client_config(roots, tls::real_provider(), tls::real_time())
        .map_err(|e| e.to_string())?;
    let log = |text: &str| tracing::warn!("{text}");
    Ok(Tls::client(config).reporting_to(std::sync::Arc::new(log)))
}

/// Extra time after the leave for the client to finish.
const SLACK: Duration = Duration::from_secs(10);

/// Runs a call on a runtime of its own (blocking the calling thread).
pub fn run(options: &CallOptions) -> std::io::Result<CallResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run_async(options))
}

/// Runs a call; must run inside a `LocalSet`.
pub async fn run_async(options: &CallOptions) -> std::io::Result<CallResult> {
    let mut spec = ClientSpec::new(
        &options.name,
        options.uid,
        &options.channel,
        &options
            .params
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        Duration::ZERO,
    );
    spec.app_id.clone_from(&options.app_id);
    spec.compat = options.compat;
    spec.media_pps = options.pps.max(1);
    spec.seed = options.seed;
    spec.tune = options.tune;
    spec.socks5_credentials
        .clone_from(&options.socks5_credentials);
    if let Some(cloud) = options.cloud_proxy {
        // Before the join, after the setParameters calls (as the scenarios do).
        let join = spec.script.len().saturating_sub(1);
        spec.script
            .insert(join, (Duration::ZERO, Op::SetCloudProxy(cloud)));
    }
    spec.script.push((options.duration, Op::Leave));
    // A quiet second before leaving, so that what was sent can land.
    let quiet = Duration::from_secs(1).min(options.duration / 4);
    spec.talk_until = Some(options.duration.saturating_sub(quiet));
    let env = ClientEnv {
        sdrtn: options.edge,
        trace: Trace::tap(logging::trace_line),
    };
    let report = Rc::new(RefCell::new(ClientReport::default()));
    // Wall time is for the report's `wall s` column only; the call runs on `net`'s clock.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut net = TokioNet::new(options.bind).with_hosts(options.hosts.clone());
    if let Some(resolver) = options.resolver {
        net = net.with_resolver(resolver);
    }
    let net = options.tls.clone().wrap(net);
    let outcome = tokio::time::timeout(
        options.duration + SLACK,
        run_client(net, spec, env, report.clone()),
    )
    .await;
    if let Ok(Err(e)) = outcome {
        return Err(e);
    }
    let report = report.borrow().clone();
    Ok(CallResult {
        report,
        wall: started.elapsed(),
    })
}

/// The report's header, as the simulation's (`client` in place of `scenario`, the path in
/// place of the trace hash).
pub fn header() -> String {
    format!(
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8} {:>7}  {}",
        "client", "verdict", "join ms", "media rx", "lost", "reconn", "call s", "wall s", "path"
    )
}

/// One report row.
pub fn row(name: &str, result: &CallResult, duration: Duration) -> String {
    let r = &result.report;
    let join = r
        .join_time
        .map_or("-".to_owned(), |t| t.as_millis().to_string());
    let path = match (r.proxy, r.media_path) {
        (Some((kind, relay)), Some(media)) => format!("type {kind} via {relay}, media {media:?}"),
        (Some((kind, relay)), None) => format!("type {kind} via {relay}"),
        (None, Some(media)) => format!("direct, media {media:?}"),
        (None, None) => format!("never joined: {}", r.last_reason),
    };
    format!(
        "{:<18} {:<7} {:>8} {:>10} {:>6} {:>7} {:>8.1} {:>7.1}  {}",
        name,
        if result.verdict() == Verdict::Ok {
            "ok"
        } else {
            "FAIL"
        },
        join,
        r.media_received(),
        r.media_lost(),
        r.reconnects,
        duration.as_secs_f64(),
        result.wall.as_secs_f64(),
        path
    )
}

/// The timing lines printed under the row: signalling round-trip time and RFC 3550 media
/// jitter percentiles, the same lines from the same code as `cloudproxy load`'s
/// ([`cloudproxy_core::app::stats::Percentiles`]).
pub fn timing(result: &CallResult) -> String {
    let r = &result.report;
    let line = |name: &str, p: Option<Percentiles>| match p {
        Some(p) => format!("{name:<9} {p}"),
        None => format!("{name:<9} -"),
    };
    format!(
        "{}   ({} round trips, signalling message to its ack)\n{}   (RFC 3550 interarrival, media, {} packets)",
        line("rtt", r.rtt_us.summary()),
        r.rtt_us.count(),
        line("jitter", r.jitter_us.summary()),
        r.jitter_us.count(),
    )
}

/// The whole report as one JSON object (for scripts and tests).
pub fn to_json(options: &CallOptions, result: &CallResult) -> Value {
    let r = &result.report;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let media_from: serde_json::Map<String, Value> = r
        .media_from
        .iter()
        .map(|(uid, s)| {
            (
                uid.to_string(),
                json!({"received": s.received, "lost": s.lost, "duplicated": s.duplicated, "reordered": s.reordered, "corrupt": s.corrupt, "jitter_us": s.jitter_us()}),
            )
        })
        .collect();
    json!({
        "name": options.name,
        "uid": options.uid,
        "channel": options.channel,
        "joined": result.joined(),
        "verdict": result.verdict().as_str(),
        "pps": options.pps,
        "join_ms": r.join_time.map(ms),
        "proxy_type": r.proxy.map(|(t, _)| t),
        "relay": r.proxy.map(|(_, a)| a.to_string()),
        "media_path": r.media_path.map(|p| format!("{p:?}")),
        "state": r.state.map(|s| format!("{s:?}")),
        "last_reason": r.last_reason,
        "codes": r.codes.iter().map(|(op, code)| json!([op, code])).collect::<Vec<_>>(),
        "media_sent": r.media_sent,
        "media_received": r.media_received(),
        "media_lost": r.media_lost(),
        "media_from": media_from,
        "media_window_ms": r.media_window.map(|(a, b)| [ms(a), ms(b)]),
        "media_per_second": r.media_per_second,
        "reconnects": r.reconnects,
        "outages_ms": r.outages.iter().map(|(a, b)| json!([ms(*a), b.map(ms)])).collect::<Vec<_>>(),
        "signalling_sent": r.signalling_sent,
        "signalling_acked": r.signalling_acked.len(),
        "signalling_bad_acks": r.signalling_bad_acks,
        "rtt_samples": r.rtt_us.count(),
        "rtt_us": r.rtt_us.summary(),
        "jitter_samples": r.jitter_us.count(),
        "jitter_us": r.jitter_us.summary(),
        "wall_ms": ms(result.wall),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_lines_print_the_percentiles_or_a_dash() {
        let mut report = ClientReport::default();
        for us in [900, 1_000, 1_100, 25_000] {
            report.rtt_us.push(us);
        }
        let result = CallResult {
            report,
            wall: Duration::from_secs(1),
        };
        let text = timing(&result);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "rtt       p50 1000 us  p90 25.0 ms  p99 25.0 ms  max 25.0 ms   (4 round trips, signalling message to its ack)",
                "jitter    -   (RFC 3550 interarrival, media, 0 packets)",
            ]
        );
    }
}
