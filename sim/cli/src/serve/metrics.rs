//! The Prometheus text endpoint of `cloudproxy serve`: `GET /metrics` (text format 0.0.4).
//!
//! Every relay and access point of the instance is a label value (`relay="127.0.2.1"`,
//! `ap="127.0.1.1"`). `docs/serving.md` explains each metric. The HTTP side, bounded like
//! everything else (a slot per connection, a read and a write timeout, idle connections shed
//! first), is [`super::endpoint`].

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;

use cloudproxy_core::relay::{ApCounters, RelayConfig, RelayCounters};
use cloudproxy_node::nodes::relay::RelayShared;

use cloudproxy_node::tls::TlsCounters;

use super::endpoint::EndpointCounters;
use super::workers::{merged, Exported, ShardTls};

mod tls;

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
    /// The metrics endpoint's own counters.
    pub endpoint: Rc<EndpointCounters>,
    /// Each relay serving TLS: its address and each worker's TLS state.
    pub relay_tls: Vec<(String, Vec<Arc<ShardTls>>)>,
    /// Each access point serving TLS: its address and handshake counters.
    pub ap_tls: Vec<(String, Arc<TlsCounters>)>,
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

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// Extra labels of one sample (the node's own label comes first, added by the renderer).
type Labels<'a> = &'a [(&'static str, &'static str)];

/// Takes one sample of a family: its extra labels and its value.
type Sample<'a> = &'a mut dyn FnMut(Labels<'_>, u64);

/// How a family reads one node (a relay's shared state, an access point's counters).
enum Get<T: 'static> {
    /// One sample.
    One(fn(&T) -> u64),
    /// Several samples, each with labels of its own, in order.
    Many(fn(&T, Sample<'_>)),
}

/// One metric family with a sample (or several) per node: name, kind, help and getter.
struct Metric<T: 'static> {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    get: Get<T>,
}

/// The relays' families, in the order they are rendered (see `docs/serving.md`).
const RELAY_METRICS: &[Metric<RelayShared>] = &[
    Metric {
        name: "cloudproxy_relay_up",
        kind: GAUGE,
        help: "1 while the relay's sockets are bound and it serves.",
        get: Get::One(|r| u64::from(r.listening)),
    },
    Metric {
        name: "cloudproxy_relay_sessions",
        kind: GAUGE,
        help: "Sessions open now (tunnels still connecting upstream included).",
        get: Get::One(|r| n(r.sessions)),
    },
    Metric {
        name: "cloudproxy_relay_sessions_peak",
        kind: GAUGE,
        help: "Most sessions open at once since start.",
        get: Get::One(|r| n(r.peak_sessions)),
    },
    Metric {
        name: "cloudproxy_relay_connections",
        kind: GAUGE,
        help: "Client TCP connections open now, in any state.",
        get: Get::One(|r| n(r.connections)),
    },
    Metric {
        name: "cloudproxy_relay_connections_peak",
        kind: GAUGE,
        help: "Most client TCP connections open at once since start.",
        get: Get::One(|r| n(r.peak_connections)),
    },
    Metric {
        name: "cloudproxy_relay_buffered_bytes",
        kind: GAUGE,
        help: "Bytes the relay holds itself: partial frames and early tunnel bytes.",
        get: Get::One(|r| n(r.buffered_bytes)),
    },
    Metric {
        name: "cloudproxy_relay_buffered_bytes_peak",
        kind: GAUGE,
        help: "Most bytes the relay held at once since start.",
        get: Get::One(|r| n(r.peak_buffered_bytes)),
    },
    Metric {
        name: "cloudproxy_relay_queued_bytes",
        kind: GAUGE,
        help: "Bytes queued for writing on TCP connections (client and upstream).",
        get: Get::One(|r| n(r.queued_bytes)),
    },
    Metric {
        name: "cloudproxy_relay_queued_bytes_peak",
        kind: GAUGE,
        help: "Most bytes queued for writing at once since start.",
        get: Get::One(|r| n(r.peak_queued_bytes)),
    },
    Metric {
        name: "cloudproxy_relay_udp_allocations",
        kind: GAUGE,
        help: "Upstream UDP sockets open now (one per session sending media).",
        get: Get::One(|r| n(r.udp_allocs)),
    },
    Metric {
        name: "cloudproxy_relay_tcp_accepted_total",
        kind: COUNTER,
        help: "Client TCP connections accepted.",
        get: Get::One(|r| r.counters.tcp_accepted),
    },
    Metric {
        name: "cloudproxy_relay_sessions_opened_total",
        kind: COUNTER,
        help: "Sessions opened (TunnelAccept sent).",
        get: Get::One(|r| r.counters.sessions_opened),
    },
    Metric {
        name: "cloudproxy_relay_sessions_closed_total",
        kind: COUNTER,
        help: "Opened sessions that ended.",
        get: Get::One(|r| r.counters.sessions_closed),
    },
    Metric {
        name: "cloudproxy_relay_media_channels_opened_total",
        kind: COUNTER,
        help: "TCP media channels attached to a session (media over TCP).",
        get: Get::One(|r| r.counters.media_channels_opened),
    },
    Metric {
        name: "cloudproxy_relay_bytes_total",
        kind: COUNTER,
        help: "Bytes relayed: path=tunnel (signalling) or media (payloads), direction=up (client to SD-RTN) or down.",
        get: Get::Many(|r, sample| {
            let c = &r.counters;
            sample(&[("path", "tunnel"), ("direction", "up")], c.tcp_bytes_up);
            sample(&[("path", "tunnel"), ("direction", "down")], c.tcp_bytes_down);
            sample(&[("path", "media"), ("direction", "up")], c.udp_bytes_up);
            sample(&[("path", "media"), ("direction", "down")], c.udp_bytes_down);
        }),
    },
    Metric {
        name: "cloudproxy_relay_media_packets_total",
        kind: COUNTER,
        help: "Media datagrams relayed (over UDP or a media channel), by direction.",
        get: Get::Many(|r, sample| {
            sample(&[("direction", "up")], r.counters.udp_packets_up);
            sample(&[("direction", "down")], r.counters.udp_packets_down);
        }),
    },
    Metric {
        name: "cloudproxy_relay_keepalives_total",
        kind: COUNTER,
        help: "Keepalives answered.",
        get: Get::One(|r| r.counters.keepalives),
    },
    Metric {
        name: "cloudproxy_relay_refusals_total",
        kind: COUNTER,
        help: "Requests refused, by cause (the ErrorCode the client is told).",
        get: Get::Many(|r, sample| {
            for (cause, v) in relay_refusals(&r.counters) {
                sample(&[("cause", cause)], v);
            }
        }),
    },
    Metric {
        name: "cloudproxy_relay_handshake_timeouts_total",
        kind: COUNTER,
        help: "Connections closed for not sending their first message in time.",
        get: Get::One(|r| r.counters.handshake_timeouts),
    },
    Metric {
        name: "cloudproxy_relay_idle_timeouts_total",
        kind: COUNTER,
        help: "Sessions closed for idleness.",
        get: Get::One(|r| r.counters.idle_timeouts),
    },
    Metric {
        name: "cloudproxy_relay_buffer_overflows_total",
        kind: COUNTER,
        help: "Sessions closed for sending too much before their upstream connected.",
        get: Get::One(|r| r.counters.buffer_overflows),
    },
    Metric {
        name: "cloudproxy_relay_stream_overflows_total",
        kind: COUNTER,
        help: "TCP connections cut because their peer did not read (write queue over its bound).",
        get: Get::One(|r| r.stream_overflows),
    },
    Metric {
        name: "cloudproxy_relay_tunnels",
        kind: GAUGE,
        help: "Tunnels spliced and running now (their bytes move without the relay machine).",
        get: Get::One(|r| n(r.tunnels)),
    },
    Metric {
        name: "cloudproxy_relay_tunnels_kernel_total",
        kind: COUNTER,
        help: "Tunnels that ran on the kernel's splice(2) (the others on the bounded copy), counted as they end.",
        get: Get::One(|r| r.tunnels_kernel_total),
    },
    Metric {
        name: "cloudproxy_relay_udp_send_dropped_total",
        kind: COUNTER,
        help: "Datagrams dropped because a socket's send queue was full (the relay never waits on a send).",
        get: Get::One(|r| r.udp_send_dropped),
    },
    Metric {
        name: "cloudproxy_relay_udp_bind_failures_total",
        kind: COUNTER,
        help: "Upstream UDP sockets that could not be opened (each ended its own session).",
        get: Get::One(|r| r.counters.udp_bind_failures),
    },
    Metric {
        name: "cloudproxy_relay_media_channels_replaced_total",
        kind: COUNTER,
        help: "Media channels replaced by a newer MediaChannelOpen of the same session.",
        get: Get::One(|r| r.counters.media_channels_replaced),
    },
    Metric {
        name: "cloudproxy_relay_udp_rebinds_total",
        kind: COUNTER,
        help: "Sessions whose client UDP port changed (a NAT rebinding, same IP): media follows the new port.",
        get: Get::One(|r| r.counters.udp_rebinds),
    },
    Metric {
        name: "cloudproxy_relay_udp_from_retired_address_total",
        kind: COUNTER,
        help: "Datagrams from a session's retired client address (before a rebinding), refused so the path never flaps back.",
        get: Get::One(|r| r.counters.udp_from_retired_address),
    },
    Metric {
        name: "cloudproxy_relay_handoffs_total",
        kind: COUNTER,
        help: "Media channels that landed on another worker than their session's, by direction (out: given away, in: taken over).",
        get: Get::Many(|r, sample| {
            sample(&[("direction", "out")], r.handoffs_out);
            sample(&[("direction", "in")], r.handoffs_in);
        }),
    },
    Metric {
        name: "cloudproxy_relay_udp_dropped_total",
        kind: COUNTER,
        help: "Datagrams dropped, by origin (client: unknown session, stranger, malformed; upstream: outside SD-RTN, no path).",
        get: Get::Many(|r, sample| {
            sample(&[("from", "client")], r.counters.udp_dropped_from_client);
            sample(&[("from", "upstream")], r.counters.udp_dropped_from_upstream);
        }),
    },
    Metric {
        name: "cloudproxy_relay_udp_gro_datagrams_total",
        kind: COUNTER,
        help: "Datagrams the kernel handed over coalesced with others from their source (UDP GRO: one receive for many), and the messages that held them.",
        get: Get::Many(|r, sample| {
            sample(&[("unit", "datagrams")], r.udp_gro_datagrams);
            sample(&[("unit", "messages")], r.udp_gro_messages);
        }),
    },
    Metric {
        name: "cloudproxy_relay_udp_ring_sends_total",
        kind: COUNTER,
        help: "Datagrams sent on many sockets in one system call (io_uring, Linux), and the submits that sent them.",
        get: Get::Many(|r, sample| {
            sample(&[("unit", "datagrams")], r.udp_ring_datagrams);
            sample(&[("unit", "submits")], r.udp_ring_submits);
        }),
    },
    Metric {
        name: "cloudproxy_relay_udp_ring_workers",
        kind: GAUGE,
        help: "Relay workers sending through io_uring (0: [relay] io_uring = false, or the kernel refused it).",
        get: Get::One(|r| r.udp_ring_loops as u64),
    },
    Metric {
        name: "cloudproxy_relay_udp_buffers_spare",
        kind: GAUGE,
        help: "Datagram buffers in the relay machines' pools, given back by the loop after a send (bounded per worker).",
        get: Get::One(|r| r.udp_spare_buffers as u64),
    },
    Metric {
        name: "cloudproxy_relay_udp_buffers_allocated_total",
        kind: COUNTER,
        help: "Datagram buffers allocated because none was spare (stops growing once the pools are warm).",
        get: Get::One(|r| r.udp_buffers_allocated),
    },
    Metric {
        name: "cloudproxy_relay_udp_error_replies_suppressed_total",
        kind: COUNTER,
        help: "Error datagrams not sent (rate limit, no amplification).",
        get: Get::One(|r| r.counters.udp_error_replies_suppressed),
    },
];

/// The access points' families, in the order they are rendered.
const AP_METRICS: &[Metric<ApCounters>] = &[
    Metric {
        name: "cloudproxy_ap_requests_total",
        kind: COUNTER,
        help: "Messages with our protocol's magic received by the access point (UDP and TCP).",
        get: Get::One(|c| c.requests),
    },
    Metric {
        name: "cloudproxy_ap_answered_total",
        kind: COUNTER,
        help: "Requests answered with relays and a ticket.",
        get: Get::One(|c| c.answered),
    },
    Metric {
        name: "cloudproxy_ap_dropped_total",
        kind: COUNTER,
        help: "Messages without our magic, dropped unanswered.",
        get: Get::One(|c| c.dropped),
    },
    Metric {
        name: "cloudproxy_ap_refusals_total",
        kind: COUNTER,
        help: "Requests refused, by cause.",
        get: Get::Many(|c, sample| {
            for (cause, v) in ap_refusals(c) {
                sample(&[("cause", cause)], v);
            }
        }),
    },
    Metric {
        name: "cloudproxy_ap_error_replies_suppressed_total",
        kind: COUNTER,
        help: "Refusals not answered because the answer would be larger than the request.",
        get: Get::One(|c| c.error_replies_suppressed),
    },
    Metric {
        name: "cloudproxy_ap_rate_limit_silenced_total",
        kind: COUNTER,
        help: "Rate-limited requests not answered: the client was told RateLimited in this window.",
        get: Get::One(|c| c.rate_limit_silenced),
    },
    Metric {
        name: "cloudproxy_ap_tcp_accepted_total",
        kind: COUNTER,
        help: "TCP connections accepted by the access point.",
        get: Get::One(|c| c.tcp_accepted),
    },
    Metric {
        name: "cloudproxy_ap_tcp_refused_total",
        kind: COUNTER,
        help: "TCP connections closed at once, by the cap reached.",
        get: Get::Many(|c, sample| {
            sample(&[("cause", "total")], c.tcp_refused_total);
            sample(&[("cause", "per_ip")], c.tcp_refused_per_ip);
            sample(&[("cause", "per_prefix")], c.tcp_refused_per_prefix);
        }),
    },
];

/// Writes one family: its head, then the samples of every node, labelled `node_label`.
fn family<T>(
    out: &mut String,
    metric: &Metric<T>,
    node_label: &'static str,
    nodes: &[(String, T)],
) {
    let name = metric.name;
    let mut f = Family::head(out, name, metric.kind, metric.help);
    for (node, state) in nodes {
        match metric.get {
            Get::One(value) => f.sample(name, &[(node_label, node)], value(state)),
            Get::Many(samples) => samples(state, &mut |labels, value| {
                let mut all = vec![(node_label, node.as_str())];
                all.extend_from_slice(labels);
                f.sample(name, &all, value);
            }),
        }
    }
}

/// The relays' configured bounds, by name.
fn relay_limits(out: &mut String, limits: &RelayConfig, max_queued_bytes_per_stream: usize) {
    let name = "cloudproxy_relay_limit";
    let help = "The configured bounds of every relay, by name.";
    let mut f = Family::head(out, name, GAUGE, help);
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
            n(max_queued_bytes_per_stream),
        ),
        ("max_used_nonces", n(limits.max_used_nonces)),
    ] {
        f.sample(name, &[("limit", limit)], v);
    }
}

/// The instance's own families: shutting down, and the process's memory and descriptors.
fn process(out: &mut String, shutting_down: bool) {
    let name = "cloudproxy_shutting_down";
    let mut f = Family::head(out, name, GAUGE, "1 once a graceful shutdown has started.");
    f.sample(name, &[], u64::from(shutting_down));
    if let Some(rss) = resident_bytes() {
        let name = "process_resident_memory_bytes";
        let mut f = Family::head(out, name, GAUGE, "Resident memory size in bytes.");
        f.sample(name, &[], rss);
    }
    if let Some(fds) = open_fds() {
        let name = "process_open_fds";
        let mut f = Family::head(out, name, GAUGE, "Number of open file descriptors.");
        f.sample(name, &[], fds);
    }
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
    for metric in RELAY_METRICS {
        family(&mut out, metric, "relay", &relays);
    }
    let name = "cloudproxy_relay_workers";
    let help = "Worker threads serving the relays (each runs one shard of every relay).";
    Family::head(&mut out, name, GAUGE, help).sample(name, &[], u64::from(sources.workers));
    if let Some(limits) = &sources.relay_limits {
        relay_limits(&mut out, limits, sources.max_queued_bytes_per_stream);
    }
    for metric in AP_METRICS {
        family(&mut out, metric, "ap", &aps);
    }
    tls::render(&mut out, &sources.relay_tls, &sources.ap_tls);
    process(&mut out, sources.shutting_down.get());
    endpoint(&mut out, &sources.endpoint);
    out
}

/// The metrics endpoint's own families.
fn endpoint(out: &mut String, c: &EndpointCounters) {
    let name = "cloudproxy_metrics_connections";
    let help = "Connections to the metrics endpoint open now.";
    Family::head(out, name, GAUGE, help).sample(name, &[], c.open.get());
    for (name, help, value) in [
        (
            "cloudproxy_metrics_accepted_total",
            "Connections the metrics endpoint accepted.",
            &c.accepted,
        ),
        (
            "cloudproxy_metrics_answered_total",
            "Requests the metrics endpoint answered.",
            &c.answered,
        ),
        (
            "cloudproxy_metrics_shed_total",
            "Connections still sending their request, closed to make room for a newer one.",
            &c.shed,
        ),
        (
            "cloudproxy_metrics_refused_total",
            "Connections closed unanswered: every slot was busy answering.",
            &c.refused,
        ),
        (
            "cloudproxy_metrics_timeouts_total",
            "Connections closed for not sending their request, or not reading the answer, in time.",
            &c.timeouts,
        ),
        (
            "cloudproxy_metrics_too_large_total",
            "Requests longer than the bound (answered 431).",
            &c.too_large,
        ),
    ] {
        Family::head(out, name, COUNTER, help).sample(name, &[], value.get());
    }
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
            endpoint: Rc::default(),
            relay_tls: Vec::new(),
            ap_tls: Vec::new(),
        };
        sources.endpoint.shed.set(3);
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
        assert_eq!(sample(&text, "cloudproxy_metrics_shed_total", ""), Some(3));
        // Every sample line belongs to a family announced by HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }
}
