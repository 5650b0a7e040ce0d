//! The TLS families of the metrics endpoint (**beyond the seed**): each relay's and each
//! access point's handshakes on its TLS port, completed (per relay worker, which shows the
//! handshakes spread over the cores) and failed by reason class, and the relays' moves
//! (TLS connections handed to the worker owning their session, `super::super::handoff`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cloudproxy_node::tls::{HandshakeFailure, TlsCounters, TlsCounts};

use super::{Family, COUNTER};
use crate::serve::workers::ShardTls;

/// Writes the TLS families: `relays` (address, each worker's TLS state) and `aps` (address,
/// counters); nodes without TLS are not listed.
pub(super) fn render(
    out: &mut String,
    relays: &[(String, Vec<Arc<ShardTls>>)],
    aps: &[(String, Arc<TlsCounters>)],
) {
    let name = "cloudproxy_relay_tls_handshakes_total";
    let help = "TLS handshakes completed on a relay's TLS port, by the worker that accepted.";
    let mut f = Family::head(out, name, COUNTER, help);
    for (relay, shards) in relays {
        for (worker, shard) in shards.iter().enumerate() {
            let worker = worker.to_string();
            let completed = shard.handshakes.read().completed;
            f.sample(name, &[("relay", relay), ("worker", &worker)], completed);
        }
    }
    let summed: Vec<(&str, TlsCounts)> = relays
        .iter()
        .map(|(relay, shards)| {
            let mut total = TlsCounts::default();
            for shard in shards {
                total.merge(&shard.handshakes.read());
            }
            (relay.as_str(), total)
        })
        .collect();
    failures(
        out,
        "relay",
        "cloudproxy_relay_tls_handshake_failures_total",
        &summed,
    );
    for (name, help, read) in [
        (
            "cloudproxy_relay_tls_moved_total",
            "TLS connections whose session another worker owns, moved to it.",
            (|s: &ShardTls| s.moved.load(Ordering::Relaxed)) as fn(&ShardTls) -> u64,
        ),
        (
            "cloudproxy_relay_tls_move_dropped_total",
            "TLS connections for another worker dropped instead (its handoff queue full).",
            |s: &ShardTls| s.move_dropped.load(Ordering::Relaxed),
        ),
    ] {
        let mut f = Family::head(out, name, COUNTER, help);
        for (relay, shards) in relays {
            let total = shards.iter().map(|s| read(s)).sum();
            f.sample(name, &[("relay", relay)], total);
        }
    }
    let name = "cloudproxy_ap_tls_handshakes_total";
    let help = "TLS handshakes completed on an access point's TLS port.";
    let mut f = Family::head(out, name, COUNTER, help);
    let aps: Vec<(&str, TlsCounts)> = aps.iter().map(|(ap, c)| (ap.as_str(), c.read())).collect();
    for (ap, counts) in &aps {
        f.sample(name, &[("ap", ap)], counts.completed);
    }
    failures(
        out,
        "ap",
        "cloudproxy_ap_tls_handshake_failures_total",
        &aps,
    );
}

/// A failures family: one sample per node and reason class.
fn failures(out: &mut String, role: &str, name: &str, nodes: &[(&str, TlsCounts)]) {
    let help = format!(
        "TLS handshakes failed on an {}'s TLS port, by reason: bad_certificate (the client \
         refused the certificate), no_alpn (no ALPN cloudproxy/1), other.",
        if role == "ap" {
            "access point"
        } else {
            "relay"
        }
    );
    let mut f = Family::head(out, name, COUNTER, &help);
    for (node, counts) in nodes {
        for class in HandshakeFailure::ALL {
            let labels = [(role, *node), ("reason", class.label())];
            f.sample(name, &labels, counts.failed(class));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::metrics::sample;

    #[test]
    fn renders_handshakes_per_worker_and_failures_per_class() {
        let worker = |completed: u64, bad_certificate: u64| {
            let shard = ShardTls::default();
            for _ in 0..completed {
                shard.handshakes.count_completed();
            }
            for _ in 0..bad_certificate {
                shard
                    .handshakes
                    .count_failed(HandshakeFailure::BadCertificate);
            }
            shard.moved.fetch_add(completed, Ordering::Relaxed);
            shard
                .move_dropped
                .fetch_add(bad_certificate, Ordering::Relaxed);
            Arc::new(shard)
        };
        let ap = Arc::new(TlsCounters::default());
        ap.count_failed(HandshakeFailure::NoAlpn);
        ap.count_completed();
        let mut text = String::new();
        render(
            &mut text,
            &[("127.0.2.1".into(), vec![worker(3, 1), worker(2, 4)])],
            &[("127.0.1.1".into(), ap)],
        );
        let get = |name: &str, labels: &str| sample(&text, name, labels);
        let relay = "cloudproxy_relay_tls_handshakes_total";
        assert_eq!(get(relay, "relay=\"127.0.2.1\",worker=\"0\""), Some(3));
        assert_eq!(get(relay, "relay=\"127.0.2.1\",worker=\"1\""), Some(2));
        let failed = "cloudproxy_relay_tls_handshake_failures_total";
        let bad = "relay=\"127.0.2.1\",reason=\"bad_certificate\"";
        assert_eq!(get(failed, bad), Some(5));
        assert_eq!(get(failed, "relay=\"127.0.2.1\",reason=\"other\""), Some(0));
        let moved = "cloudproxy_relay_tls_moved_total";
        assert_eq!(get(moved, "relay=\"127.0.2.1\""), Some(5));
        let dropped = "cloudproxy_relay_tls_move_dropped_total";
        assert_eq!(get(dropped, "relay=\"127.0.2.1\""), Some(5));
        let ap_failed = "cloudproxy_ap_tls_handshake_failures_total";
        assert_eq!(
            get(ap_failed, "ap=\"127.0.1.1\",reason=\"no_alpn\""),
            Some(1)
        );
        assert_eq!(
            get("cloudproxy_ap_tls_handshakes_total", "ap=\"127.0.1.1\""),
            Some(1)
        );
    }
}
