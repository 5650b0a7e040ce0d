//! The report of a load run, as a table for people and as JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use cloudproxy_core::wire::CloseReason;
use serde::Serialize;

use crate::stats::Percentiles;
use crate::tunnel::TunnelOutcome;

/// What a run measured. Round-trip times and jitter are in microseconds; jitter is RFC 3550's
/// interarrival jitter computed on the round trip (see [`crate::stats`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    /// What answered upstream.
    pub target: String,
    /// Sessions asked for.
    pub clients_requested: u32,
    /// Sessions opened.
    pub sessions_opened: u32,
    /// Sessions that could not be opened.
    pub sessions_failed: u32,
    /// The first reasons sessions could not be opened.
    pub failures: Vec<String>,
    /// How long opening every session took.
    pub open_ms: u64,
    /// Probes per second per client.
    pub pps: u32,
    /// Media payload size.
    pub payload_bytes: usize,
    /// Probes each client was to send.
    pub probes_per_client: u32,
    /// Probes sent, every client.
    pub sent: u64,
    /// Distinct probes that came back to their sender.
    pub returned: u64,
    /// Probes that never came back.
    pub lost: u64,
    /// Probes that came back more than once (extra copies).
    pub duplicated: u64,
    /// Probes that came back after a later one of the same client.
    pub reordered: u64,
    /// Edge mode: the partners' probes received one way.
    pub one_way_received: u64,
    /// Round trips timed.
    pub rtt_samples: u64,
    /// Round-trip time percentiles, microseconds.
    pub rtt_us: Option<Percentiles>,
    /// RFC 3550 interarrival jitter percentiles (the running estimate at each arrival),
    /// microseconds.
    pub jitter_us: Option<Percentiles>,
    /// Keepalive acknowledgements received (idle sessions).
    pub keepalive_acks: u64,
    /// Datagrams that were not ours, or not intact.
    pub malformed: u64,
    /// Sessions whose media path never answered during the warm-up.
    pub paths_silent: u32,
    /// Sessions the relay closed (a `Close` on their media path), by reason.
    pub closed_by_relay: BTreeMap<String, u64>,
    /// The tunnel transfers, when asked for.
    pub tunnels: Option<TunnelReport>,
}

/// What the tunnel transfers did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TunnelReport {
    /// Bytes each client was to send.
    pub bytes_per_client: u64,
    /// Transfers that completed.
    pub completed: u32,
    /// Transfers that did not (cut, corrupted, or too slow).
    pub failed: u32,
    /// Bytes sent, every tunnel.
    pub sent: u64,
    /// Bytes back (echoed or acknowledged), every tunnel.
    pub back: u64,
    /// The longest transfer, milliseconds.
    pub slowest_ms: u64,
    /// Goodput of all tunnels together (bytes back over the longest transfer), Mbit/s.
    pub mbit_per_s: f64,
    /// The first failures, each with the relay's `Close` reason when one came.
    pub errors: Vec<String>,
}

impl TunnelReport {
    /// Sums the outcomes; `closed[i]` is the `Close` reason the relay sent session i, if any.
    pub(crate) fn from_outcomes(
        bytes_per_client: u64,
        outcomes: &[Option<TunnelOutcome>],
        closed: &[Option<CloseReason>],
    ) -> Self {
        let mut r = TunnelReport {
            bytes_per_client,
            ..TunnelReport::default()
        };
        let mut slowest = Duration::ZERO;
        for (i, o) in outcomes.iter().enumerate() {
            let Some(o) = o else {
                r.failed += 1;
                continue;
            };
            r.sent += o.sent;
            r.back += o.back;
            slowest = slowest.max(o.elapsed);
            match &o.error {
                None => r.completed += 1,
                Some(e) => {
                    r.failed += 1;
                    if r.errors.len() < 5 {
                        let why = match closed.get(i).copied().flatten() {
                            Some(reason) => format!("; the relay's Close said: {reason}"),
                            None => String::new(),
                        };
                        r.errors.push(format!("tunnel {i}: {e}{why}"));
                    }
                }
            }
        }
        r.slowest_ms = slowest.as_millis() as u64;
        if !slowest.is_zero() {
            r.mbit_per_s = r.back as f64 * 8.0 / slowest.as_secs_f64() / 1e6;
        }
        r
    }
}

impl LoadReport {
    /// Whether everything asked for happened: every session opened and answered, no session
    /// closed by the relay, every tunnel transfer complete.
    pub fn ok(&self) -> bool {
        self.sessions_failed == 0
            && self.paths_silent == 0
            && self.closed_by_relay.is_empty()
            && self.tunnels.as_ref().is_none_or(|t| t.failed == 0)
    }

    /// Lost probes as a percentage of those sent.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.sent as f64
        }
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("loss_percent".into(), self.loss_percent().into());
            map.insert("ok".into(), self.ok().into());
        }
        v
    }

    /// The report as a table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "cloudproxy load: target {}", self.target);
        let _ = writeln!(
            out,
            "sessions  {}/{} opened in {} ms{}",
            self.sessions_opened,
            self.clients_requested,
            self.open_ms,
            if self.paths_silent > 0 {
                format!(", {} media path(s) never answered", self.paths_silent)
            } else {
                String::new()
            }
        );
        for f in &self.failures {
            let _ = writeln!(out, "          failed: {f}");
        }
        if self.pps > 0 {
            let _ = writeln!(
                out,
                "media     {} pps x {} B per client: sent {}, returned {}, lost {} ({:.2}%), duplicated {}, reordered {}{}",
                self.pps,
                self.payload_bytes,
                self.sent,
                self.returned,
                self.lost,
                self.loss_percent(),
                self.duplicated,
                self.reordered,
                if self.one_way_received > 0 {
                    format!(", one way {}", self.one_way_received)
                } else {
                    String::new()
                }
            );
        } else {
            let _ = writeln!(
                out,
                "media     idle sessions: {} keepalive acks",
                self.keepalive_acks
            );
        }
        // The percentile line `cloudproxy call` prints too (core's `Percentiles` display).
        let line = |name: &str, p: &Option<Percentiles>| match p {
            Some(p) => format!("{name:<9} {p}"),
            None => format!("{name:<9} -"),
        };
        let _ = writeln!(
            out,
            "{}   ({} samples)",
            line("rtt", &self.rtt_us),
            self.rtt_samples
        );
        let _ = writeln!(
            out,
            "{}   (RFC 3550 interarrival, on the round trip)",
            line("jitter", &self.jitter_us)
        );
        if let Some(t) = &self.tunnels {
            let _ = writeln!(
                out,
                "tunnels   {} x {} B: {} completed, {} failed; {:.1} Mbit/s together (slowest {} ms)",
                t.completed + t.failed,
                t.bytes_per_client,
                t.completed,
                t.failed,
                t.mbit_per_s,
                t.slowest_ms
            );
            for e in &t.errors {
                let _ = writeln!(out, "          FAILED {e}");
            }
        }
        if !self.closed_by_relay.is_empty() {
            let reasons: Vec<String> = self
                .closed_by_relay
                .iter()
                .map(|(r, n)| format!("{n} x {r}"))
                .collect();
            let _ = writeln!(out, "closed    by the relay: {}", reasons.join(", "));
        }
        if self.malformed > 0 {
            let _ = writeln!(out, "malformed {} datagram(s)", self.malformed);
        }
        let _ = write!(out, "verdict   {}", if self.ok() { "ok" } else { "FAILED" });
        out
    }
}

/// Microseconds, printed in the unit that reads best.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_tunnel_fails_the_report_with_the_relays_reason() {
        let outcomes = [
            Some(TunnelOutcome {
                sent: 100,
                back: 100,
                elapsed: Duration::from_millis(10),
                error: None,
            }),
            Some(TunnelOutcome {
                sent: 50,
                back: 10,
                elapsed: Duration::from_millis(30),
                error: Some(
                    "after 50 of 100 bytes sent, 10 back: the relay closed the tunnel".into(),
                ),
            }),
        ];
        let t =
            TunnelReport::from_outcomes(100, &outcomes, &[None, Some(CloseReason::UpstreamClosed)]);
        assert_eq!((t.completed, t.failed, t.back), (1, 1, 110));
        assert!(t.errors[0].contains("upstream closed"), "{:?}", t.errors);
        let report = LoadReport {
            tunnels: Some(t),
            ..LoadReport::default()
        };
        assert!(!report.ok());
        assert!(report.to_table().contains("FAILED tunnel 1"));
        assert_eq!(report.to_json()["ok"], false);
    }

    #[test]
    fn loss_is_a_share_of_what_was_sent() {
        let r = LoadReport {
            sent: 200,
            lost: 3,
            ..LoadReport::default()
        };
        assert!((r.loss_percent() - 1.5).abs() < 1e-9);
        assert!(r.ok());
        assert_eq!(LoadReport::default().loss_percent(), 0.0);
    }
}
