//! The Prometheus text endpoint of `cloudproxy serve`: `GET /metrics` (text format 0.0.4).
//!
//! Every relay and access point of the instance is a label value (`relay="127.0.2.1"`,
//! `ap="127.0.1.1"`). `docs/serving.md` explains each metric. The endpoint is bounded like
//! everything else: [`MAX_CONNECTIONS`] at once, a request of at most [`MAX_REQUEST`] bytes
//! read within [`REQUEST_TIMEOUT`].

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::relay::{ApCounters, RelayConfig, RelayCounters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use cloudproxy_node::nodes::relay::RelayShared;

use super::workers::{merged, Exported};

/// Scrapes served at once; more connections are closed unanswered.
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint reports: the live state of every node of the instance.
#[derive(Clone, Default)]
pub struct Sources {
    /// Each relay: its address and the published state of each of its shards (summed when
    /// scraped).
    pub relays: Vec<(String, Vec<Exported>)>,
    /// Relay worker threads (shards per relay).
    pub workers: u16,
    /// Each access point: its address and counters.
    pub aps: Vec<(String, Rc<RefCell<ApCounters>>)>,
    /// The relays' configured bounds, reported next to the gauges they bound.
    pub relay_limits: Option<RelayConfig>,
    /// The per-connection write-queue bound.
    pub max_queued_bytes_per_stream: usize,
    /// Whether the instance is shutting down.
    pub shutting_down: Rc<Cell<bool>>,
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn head(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A gauge or counter with one sample per relay.
fn per_relay(
    out: &mut String,
    relays: &[(String, RelayShared)],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&RelayShared) -> u64,
) {
    let mut f = Family::head(out, name, kind, help);
    for (ip, r) in relays {
        f.sample(name, &[("relay", ip)], value(r));
    }
}

/// A gauge or counter with one sample per access point.
fn per_ap(
    out: &mut String,
    aps: &[(String, ApCounters)],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&ApCounters) -> u64,
) {
    let mut f = Family::head(out, name, kind, help);
    for (ip, c) in aps {
        f.sample(name, &[("ap", ip)], value(c));
    }
}

fn n(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The refusal causes of a relay, as `cause` label values.
fn relay_refusals(c: &RelayCounters) -> [(&'static str, u64); 11] {
    [
        ("unsupported_version", c.refused_unsupported_version),
        ("malformed", c.refused_malformed),
        ("ticket_invalid", c.refused_ticket_invalid),
        ("ticket_expired", c.refused_ticket_expired),
        ("client_mismatch", c.refused_client_mismatch),
        ("ticket_replayed", c.refused_ticket_replayed),
        ("destination", c.refused_destination),
        ("quota", c.refused_quota),
        ("unknown_session", c.refused_unknown_session),
        ("upstream_unreachable", c.refused_upstream_unreachable),
        ("shutting_down", c.refused_shutting_down),
    ]
}

/// The refusal causes of an access point.
fn ap_refusals(c: &ApCounters) -> [(&'static str, u64); 6] {
    [
        ("rate_limited", c.refused_rate_limited),
        ("unsupported_version", c.refused_unsupported_version),
        ("malformed", c.refused_malformed),
        ("padding_required", c.refused_padding),
        ("unknown_app", c.refused_unknown_app),
        ("no_relay", c.refused_no_relay),
    ]
}

/// Renders every metric of `sources` in the Prometheus text format.
pub fn render(sources: &Sources) -> String {
    let relays: Vec<(String, RelayShared)> = sources
        .relays
        .iter()
        .map(|(ip, shards)| (ip.clone(), merged(shards)))
        .collect();
    let aps: Vec<(String, ApCounters)> = sources
        .aps
        .iter()
        .map(|(ip, c)| (ip.clone(), c.borrow().clone()))
        .collect();
    let mut out = String::new();
    let o = &mut out;

    per_relay(
        o,
        &relays,
        "cloudproxy_relay_up",
        "gauge",
        "1 while the relay's sockets are bound and it serves.",
        |r| u64::from(r.listening),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_sessions",
        "gauge",
        "Sessions open now (tunnels still connecting upstream included).",
        |r| n(r.sessions),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_sessions_peak",
        "gauge",
        "Most sessions open at once since start.",
        |r| n(r.peak_sessions),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_connections",
        "gauge",
        "Client TCP connections open now, in any state.",
        |r| n(r.connections),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_connections_peak",
        "gauge",
        "Most client TCP connections open at once since start.",
        |r| n(r.peak_connections),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_buffered_bytes",
        "gauge",
        "Bytes the relay holds itself: partial frames and early tunnel bytes.",
        |r| n(r.buffered_bytes),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_buffered_bytes_peak",
        "gauge",
        "Most bytes the relay held at once since start.",
        |r| n(r.peak_buffered_bytes),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_queued_bytes",
        "gauge",
        "Bytes queued for writing on TCP connections (client and upstream).",
        |r| n(r.queued_bytes),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_queued_bytes_peak",
        "gauge",
        "Most bytes queued for writing at once since start.",
        |r| n(r.peak_queued_bytes),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_udp_allocations",
        "gauge",
        "Upstream UDP sockets open now (one per session sending media).",
        |r| n(r.udp_allocs),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_tcp_accepted_total",
        "counter",
        "Client TCP connections accepted.",
        |r| r.counters.tcp_accepted,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_sessions_opened_total",
        "counter",
        "Sessions opened (TunnelAccept sent).",
        |r| r.counters.sessions_opened,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_sessions_closed_total",
        "counter",
        "Opened sessions that ended.",
        |r| r.counters.sessions_closed,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_media_channels_opened_total",
        "counter",
        "TCP media channels attached to a session (media over TCP).",
        |r| r.counters.media_channels_opened,
    );
    {
        let name = "cloudproxy_relay_bytes_total";
        let mut f = Family::head(o, name, "counter", "Bytes relayed: path=tunnel (signalling) or media (payloads), direction=up (client to SD-RTN) or down.");
        for (ip, r) in &relays {
            let c = &r.counters;
            for (path, dir, v) in [
                ("tunnel", "up", c.tcp_bytes_up),
                ("tunnel", "down", c.tcp_bytes_down),
                ("media", "up", c.udp_bytes_up),
                ("media", "down", c.udp_bytes_down),
            ] {
                f.sample(
                    name,
                    &[("relay", ip), ("path", path), ("direction", dir)],
                    v,
                );
            }
        }
    }
    {
        let name = "cloudproxy_relay_media_packets_total";
        let mut f = Family::head(
            o,
            name,
            "counter",
            "Media datagrams relayed (over UDP or a media channel), by direction.",
        );
        for (ip, r) in &relays {
            f.sample(
                name,
                &[("relay", ip), ("direction", "up")],
                r.counters.udp_packets_up,
            );
            f.sample(
                name,
                &[("relay", ip), ("direction", "down")],
                r.counters.udp_packets_down,
            );
        }
    }
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_keepalives_total",
        "counter",
        "Keepalives answered.",
        |r| r.counters.keepalives,
    );
    {
        let name = "cloudproxy_relay_refusals_total";
        let mut f = Family::head(
            o,
            name,
            "counter",
            "Requests refused, by cause (the ErrorCode the client is told).",
        );
        for (ip, r) in &relays {
            for (cause, v) in relay_refusals(&r.counters) {
                f.sample(name, &[("relay", ip), ("cause", cause)], v);
            }
        }
    }
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_handshake_timeouts_total",
        "counter",
        "Connections closed for not sending their first message in time.",
        |r| r.counters.handshake_timeouts,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_idle_timeouts_total",
        "counter",
        "Sessions closed for idleness.",
        |r| r.counters.idle_timeouts,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_buffer_overflows_total",
        "counter",
        "Sessions closed for sending too much before their upstream connected.",
        |r| r.counters.buffer_overflows,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_stream_overflows_total",
        "counter",
        "TCP connections cut because their peer did not read (write queue over its bound).",
        |r| r.stream_overflows,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_tunnels",
        "gauge",
        "Tunnels spliced and running now (their bytes move without the relay machine).",
        |r| n(r.tunnels),
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_tunnels_kernel_total",
        "counter",
        "Tunnels that ran on the kernel's splice(2) (the others on the bounded copy), counted as they end.",
        |r| r.tunnels_kernel_total,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_udp_send_dropped_total",
        "counter",
        "Datagrams dropped because a socket's send queue was full (the relay never waits on a send).",
        |r| r.udp_send_dropped,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_udp_bind_failures_total",
        "counter",
        "Upstream UDP sockets that could not be opened (each ended its own session).",
        |r| r.counters.udp_bind_failures,
    );
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_media_channels_replaced_total",
        "counter",
        "Media channels replaced by a newer MediaChannelOpen of the same session.",
        |r| r.counters.media_channels_replaced,
    );
    {
        let name = "cloudproxy_relay_handoffs_total";
        let mut f = Family::head(o, name, "counter", "Media channels that landed on another worker than their session's, by direction (out: given away, in: taken over).");
        for (ip, r) in &relays {
            f.sample(name, &[("relay", ip), ("direction", "out")], r.handoffs_out);
            f.sample(name, &[("relay", ip), ("direction", "in")], r.handoffs_in);
        }
    }
    {
        let name = "cloudproxy_relay_workers";
        let mut f = Family::head(
            o,
            name,
            "gauge",
            "Worker threads serving the relays (each runs one shard of every relay).",
        );
        f.sample(name, &[], u64::from(sources.workers));
    }
    {
        let name = "cloudproxy_relay_udp_dropped_total";
        let mut f = Family::head(o, name, "counter", "Datagrams dropped, by origin (client: unknown session, stranger, malformed; upstream: outside SD-RTN, no path).");
        for (ip, r) in &relays {
            f.sample(
                name,
                &[("relay", ip), ("from", "client")],
                r.counters.udp_dropped_from_client,
            );
            f.sample(
                name,
                &[("relay", ip), ("from", "upstream")],
                r.counters.udp_dropped_from_upstream,
            );
        }
    }
    per_relay(
        o,
        &relays,
        "cloudproxy_relay_udp_error_replies_suppressed_total",
        "counter",
        "Error datagrams not sent (rate limit, no amplification).",
        |r| r.counters.udp_error_replies_suppressed,
    );

    if let Some(limits) = &sources.relay_limits {
        let name = "cloudproxy_relay_limit";
        let mut f = Family::head(
            o,
            name,
            "gauge",
            "The configured bounds of every relay, by name.",
        );
        for (limit, v) in [
            ("max_sessions_total", n(limits.max_sessions_total)),
            (
                "max_sessions_per_client_ip",
                n(limits.max_sessions_per_client_ip),
            ),
            ("max_pending_handshakes", n(limits.max_pending_handshakes)),
            (
                "max_pending_handshakes_per_client_ip",
                n(limits.max_pending_handshakes_per_client_ip),
            ),
            (
                "max_buffered_bytes_per_session",
                n(limits.max_buffered_bytes_per_session),
            ),
            (
                "max_queued_bytes_per_stream",
                n(sources.max_queued_bytes_per_stream),
            ),
            ("max_used_nonces", n(limits.max_used_nonces)),
        ] {
            f.sample(name, &[("limit", limit)], v);
        }
    }

    per_ap(
        o,
        &aps,
        "cloudproxy_ap_requests_total",
        "counter",
        "Messages with our protocol's magic received by the access point (UDP and TCP).",
        |c| c.requests,
    );
    per_ap(
        o,
        &aps,
        "cloudproxy_ap_answered_total",
        "counter",
        "Requests answered with relays and a ticket.",
        |c| c.answered,
    );
    per_ap(
        o,
        &aps,
        "cloudproxy_ap_dropped_total",
        "counter",
        "Messages without our magic, dropped unanswered.",
        |c| c.dropped,
    );
    {
        let name = "cloudproxy_ap_refusals_total";
        let mut f = Family::head(o, name, "counter", "Requests refused, by cause.");
        for (ip, c) in &aps {
            for (cause, v) in ap_refusals(c) {
                f.sample(name, &[("ap", ip), ("cause", cause)], v);
            }
        }
    }
    per_ap(
        o,
        &aps,
        "cloudproxy_ap_error_replies_suppressed_total",
        "counter",
        "Refusals not answered because the answer would be larger than the request.",
        |c| c.error_replies_suppressed,
    );
    per_ap(
        o,
        &aps,
        "cloudproxy_ap_rate_limit_silenced_total",
        "counter",
        "Rate-limited requests not answered: the client was told RateLimited in this window.",
        |c| c.rate_limit_silenced,
    );
    per_ap(
        o,
        &aps,
        "cloudproxy_ap_tcp_accepted_total",
        "counter",
        "TCP connections accepted by the access point.",
        |c| c.tcp_accepted,
    );
    {
        let name = "cloudproxy_ap_tcp_refused_total";
        let help = "TCP connections closed at once, by the cap reached.";
        let mut f = Family::head(o, name, "counter", help);
        for (ip, c) in &aps {
            for (cause, v) in [
                ("total", c.tcp_refused_total),
                ("per_ip", c.tcp_refused_per_ip),
                ("per_prefix", c.tcp_refused_per_prefix),
            ] {
                f.sample(name, &[("ap", ip), ("cause", cause)], v);
            }
        }
    }

    let mut f = Family::head(
        o,
        "cloudproxy_shutting_down",
        "gauge",
        "1 once a graceful shutdown has started.",
    );
    f.sample(
        "cloudproxy_shutting_down",
        &[],
        u64::from(sources.shutting_down.get()),
    );
    if let Some(rss) = resident_bytes() {
        let mut f = Family::head(
            o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        f.sample("process_resident_memory_bytes", &[], rss);
    }
    if let Some(fds) = open_fds() {
        let mut f = Family::head(
            o,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        f.sample("process_open_fds", &[], fds);
    }
    out
}

/// The process's resident memory, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The process's open descriptors, from `/proc/self/fd` (Linux).
fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Sources) -> io::Result<()> {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let (stream, _) = cloudproxy_node::net::Listener::accept(&listener).await?;
        if open.get() >= MAX_CONNECTIONS {
            continue;
        }
        open.set(open.get() + 1);
        let (open, sources) = (open.clone(), sources.clone());
        tokio::task::spawn_local(async move {
            let _ = answer(stream, &sources).await;
            open.set(open.get() - 1);
        });
    }
}

/// Reads one request and answers it.
async fn answer(mut stream: tokio::net::TcpStream, sources: &Sources) -> io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        Ok::<_, io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET", "/metrics" | "/") => {
            super::workers::refresh(sources.relays.iter().flat_map(|(_, s)| s)).await;
            ("200 OK", render(sources))
        }
        ("GET", _) => ("404 Not Found", "not found: try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads one sample's value from a rendered text: `name{labels} value`, where `labels` is
/// the exact label text (empty for none). For tests and scripts.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<u64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let shard = |sessions, tunnels, kernel| {
            let mut s = RelayShared {
                sessions,
                tunnels,
                tunnels_kernel_total: kernel,
                listening: true,
                ..RelayShared::default()
            };
            s.counters.tcp_bytes_up = 1234;
            s.counters.refused_ticket_invalid = 7;
            super::super::workers::slot(s)
        };
        // Two shards of one relay: the endpoint sums them.
        let shared = vec![shard(1, 2, 5), shard(2, 0, 1)];
        let ap = Rc::new(RefCell::new(ApCounters {
            requests: 9,
            refused_rate_limited: 2,
            tcp_refused_per_ip: 4,
            ..ApCounters::default()
        }));
        let sources = Sources {
            relays: vec![("127.0.2.1".into(), shared)],
            aps: vec![("127.0.1.1".into(), ap)],
            relay_limits: Some(RelayConfig::default()),
            max_queued_bytes_per_stream: 100,
            shutting_down: Rc::default(),
            workers: 2,
        };
        let text = render(&sources);
        assert_eq!(
            sample(&text, "cloudproxy_relay_sessions", "relay=\"127.0.2.1\""),
            Some(3)
        );
        assert_eq!(
            sample(&text, "cloudproxy_relay_up", "relay=\"127.0.2.1\""),
            Some(1)
        );
        assert_eq!(
            sample(
                &text,
                "cloudproxy_relay_bytes_total",
                "relay=\"127.0.2.1\",path=\"tunnel\",direction=\"up\""
            ),
            Some(2468)
        );
        assert_eq!(
            sample(&text, "cloudproxy_relay_tunnels", "relay=\"127.0.2.1\""),
            Some(2)
        );
        assert_eq!(
            sample(
                &text,
                "cloudproxy_relay_tunnels_kernel_total",
                "relay=\"127.0.2.1\""
            ),
            Some(6)
        );
        assert_eq!(sample(&text, "cloudproxy_relay_workers", ""), Some(2));
        assert_eq!(
            sample(
                &text,
                "cloudproxy_relay_refusals_total",
                "relay=\"127.0.2.1\",cause=\"ticket_invalid\""
            ),
            Some(14)
        );
        assert_eq!(
            sample(&text, "cloudproxy_ap_requests_total", "ap=\"127.0.1.1\""),
            Some(9)
        );
        assert_eq!(
            sample(
                &text,
                "cloudproxy_ap_refusals_total",
                "ap=\"127.0.1.1\",cause=\"rate_limited\""
            ),
            Some(2)
        );
        assert_eq!(
            sample(
                &text,
                "cloudproxy_ap_tcp_refused_total",
                "ap=\"127.0.1.1\",cause=\"per_ip\""
            ),
            Some(4)
        );
        assert_eq!(
            sample(
                &text,
                "cloudproxy_relay_limit",
                "limit=\"max_queued_bytes_per_stream\""
            ),
            Some(100)
        );
        assert_eq!(sample(&text, "cloudproxy_shutting_down", ""), Some(0));
        // Every sample line belongs to a family announced by HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }
}
