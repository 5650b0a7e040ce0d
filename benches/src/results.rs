//! Results, ratios, goals, and the comparison with the committed reference.
//!
//! Two sources of figures:
//!
//! - **criterion's own files**, `target/criterion/**/new/benchmark.json` (group and function
//!   ids) beside `estimates.json` (the median time per iteration, nanoseconds). We read them
//!   with a small serde reader rather than `critcmp`: critcmp compares one saved baseline with
//!   another *per benchmark*, while our figures are ratios between benchmarks of one run, and a
//!   reader of two small JSON files needs no extra tool on CI;
//! - **our own files**, `target/bench-results/*.json`, a list of [`Figure`]s written by the
//!   benchmarks that measure something other than wall time (relay CPU, memory) and by every
//!   benchmark that saw a case fail (a tunnel cut, with the relay's reason).
//!
//! Every [`RatioDef`] divides two figures of the same run (or reads one absolute figure, the
//! memory ones) and says which way is better and what issue 12 asks for.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One figure of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `group/function` (criterion's ids, or ours).
    pub id: String,
    /// The value (`None` when the case failed).
    pub value: Option<f64>,
    /// Its unit (`ns/iter` for criterion's medians).
    pub unit: String,
    /// Why the case failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Every figure of a run, by id.
pub type Figures = BTreeMap<String, Figure>;

#[derive(Deserialize)]
struct CriterionId {
    group_id: String,
    function_id: Option<String>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

/// Reads every criterion benchmark under `dir` (`target/criterion`): its median, ns/iter.
pub fn read_criterion(dir: &Path, into: &mut Figures) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    read_one(&p, into);
                } else {
                    stack.push(p);
                }
            }
        }
    }
}

fn read_one(new: &Path, into: &mut Figures) {
    let read = |f: &str| std::fs::read_to_string(new.join(f)).ok();
    let (Some(id), Some(est)) = (read("benchmark.json"), read("estimates.json")) else {
        return;
    };
    let (Ok(id), Ok(est)) = (
        serde_json::from_str::<CriterionId>(&id),
        serde_json::from_str::<Estimates>(&est),
    ) else {
        return;
    };
    let id = match id.function_id {
        Some(f) => format!("{}/{f}", id.group_id),
        None => id.group_id,
    };
    into.insert(
        id.clone(),
        Figure {
            id,
            value: Some(est.median.point_estimate),
            unit: "ns/iter".into(),
            failed: None,
        },
    );
}

/// Reads every `*.json` list of figures under `dir` (`target/bench-results`); a failure
/// recorded there replaces a figure of the same id.
pub fn read_results(dir: &Path, into: &mut Figures) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        if let Ok(list) = serde_json::from_str::<Vec<Figure>>(&text) {
            for f in list {
                into.insert(f.id.clone(), f);
            }
        }
    }
}

/// Writes figures to `target/bench-results/<name>.json` (relative to the workspace).
pub fn write_results(name: &str, figures: &[Figure]) {
    let path = results_dir().join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(figures).unwrap_or_default();
    crate::procs::write_file(&path, &text);
}

/// `target/bench-results` of the workspace.
pub fn results_dir() -> std::path::PathBuf {
    target_dir().join("bench-results")
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => d.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// What a ratio divides.
#[derive(Clone, Copy, Debug)]
pub enum Quotient {
    /// `figure(a) / figure(b)`.
    Of(&'static str, &'static str),
    /// `figure(a) / scale` (an absolute figure, e.g. bytes shown in KiB).
    Abs(&'static str, f64),
    /// Not measurable yet; the text says why.
    NotYet(&'static str),
}

/// One line of the report.
#[derive(Clone, Copy, Debug)]
pub struct RatioDef {
    /// Stable id (the reference's key).
    pub id: &'static str,
    /// What it means.
    pub what: &'static str,
    /// How it is computed.
    pub quotient: Quotient,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// Issue 12's goal, if any.
    pub goal: Option<f64>,
}

impl RatioDef {
    /// Whether `--goals-only` gates on it: the ratios with a goal, and the memory figures,
    /// except two workers against one: on a 2-core machine the load generator, the echo and
    /// both workers share the cores, and the ratio measured 0.95, 1.85 and 1.56 in three runs
    /// of the same code (the machine's scheduling, not the relay). It is printed beside its
    /// goal, not gated.
    pub fn gated(&self) -> bool {
        (self.goal.is_some() && !self.id.starts_with("workers.")) || self.id.starts_with("memory.")
    }
}

const fn r(
    id: &'static str,
    what: &'static str,
    quotient: Quotient,
    higher_is_better: bool,
    goal: Option<f64>,
) -> RatioDef {
    RatioDef {
        id,
        what,
        quotient,
        higher_is_better,
        goal,
    }
}

use Quotient::{Abs, NotYet, Of};

/// Every ratio the suite prints, in order.
pub const RATIOS: &[RatioDef] = &[
    r(
        "tcp_one_way.serve_vs_copy8k",
        "TCP one way, unpaced: serve throughput / tokio copy 8 KiB",
        Of("tcp_one_way/copy_8k", "tcp_one_way/serve"),
        true,
        Some(1.3),
    ),
    r(
        "tcp_one_way.serve_vs_splice",
        "TCP one way, unpaced: serve / splice relay",
        Of("tcp_one_way/splice", "tcp_one_way/serve"),
        true,
        Some(1.0),
    ),
    r(
        "tcp_one_way.copy8k_vs_direct",
        "TCP one way: tokio copy 8 KiB / direct (context)",
        Of("tcp_one_way/direct", "tcp_one_way/copy_8k"),
        true,
        None,
    ),
    r(
        "tcp_one_way.copy64k_vs_copy8k",
        "TCP one way: copy 64 KiB / copy 8 KiB (context)",
        Of("tcp_one_way/copy_8k", "tcp_one_way/copy_64k"),
        true,
        None,
    ),
    r(
        "tcp_one_way.splice_vs_copy8k",
        "TCP one way: splice / copy 8 KiB (context)",
        Of("tcp_one_way/copy_8k", "tcp_one_way/splice"),
        true,
        None,
    ),
    r(
        "tcp_both_ways.serve_vs_copy8k",
        "TCP both ways, unpaced: serve / tokio copy 8 KiB",
        Of("tcp_both_ways/copy_8k", "tcp_both_ways/serve"),
        true,
        Some(1.3),
    ),
    r(
        "tcp_both_ways.serve_vs_splice",
        "TCP both ways, unpaced: serve / splice relay",
        Of("tcp_both_ways/splice", "tcp_both_ways/serve"),
        true,
        Some(1.0),
    ),
    r(
        "tcp_both_ways.splice_vs_copy8k",
        "TCP both ways: splice / copy 8 KiB (context)",
        Of("tcp_both_ways/copy_8k", "tcp_both_ways/splice"),
        true,
        None,
    ),
    r(
        "tcp_paced_cpu.serve_vs_copy8k",
        "TCP paced 1 Gbit/s: bytes per relay CPU-second, serve / copy 8 KiB",
        Of("tcp_paced_cpu/serve", "tcp_paced_cpu/copy_8k"),
        true,
        Some(2.5),
    ),
    r(
        "tcp_paced_cpu.copy64k_vs_copy8k",
        "TCP paced: bytes per CPU-second, copy 64 KiB / copy 8 KiB (context)",
        Of("tcp_paced_cpu/copy_64k", "tcp_paced_cpu/copy_8k"),
        true,
        None,
    ),
    r(
        "tcp_paced_cpu.splice_vs_copy8k",
        "TCP paced: bytes per CPU-second, splice / copy 8 KiB (context)",
        Of("tcp_paced_cpu/splice", "tcp_paced_cpu/copy_8k"),
        true,
        None,
    ),
    r(
        "udp_echo.serve_vs_naive",
        "UDP echo 1200 B, window 64: serve rate / naive tokio relay",
        Of("udp_echo_1200B_w64/naive", "udp_echo_1200B_w64/serve"),
        true,
        Some(1.3),
    ),
    r(
        "udp_echo.serve_vs_mmsg",
        "UDP echo: serve / recvmmsg-sendmmsg relay",
        Of("udp_echo_1200B_w64/mmsg", "udp_echo_1200B_w64/serve"),
        true,
        Some(1.1),
    ),
    r(
        "udp_echo.mmsg_vs_naive",
        "UDP echo: mmsg relay / naive relay (context)",
        Of("udp_echo_1200B_w64/naive", "udp_echo_1200B_w64/mmsg"),
        true,
        None,
    ),
    r(
        "udp_echo.ring_vs_sendmmsg",
        "UDP echo: serve / serve with io_uring = false (one sendmmsg per socket; context)",
        Of(
            "udp_echo_1200B_w64/serve_sendmmsg",
            "udp_echo_1200B_w64/serve",
        ),
        true,
        None,
    ),
    r(
        "udp_bursts.serve_vs_naive",
        "UDP echo, client bursts of 16 in one GSO send: serve (GRO) / naive relay (context)",
        Of(
            "udp_echo_1200B_w64_bursts16/naive",
            "udp_echo_1200B_w64_bursts16/serve",
        ),
        true,
        None,
    ),
    r(
        "udp_bursts.serve_vs_mmsg",
        "UDP echo, client bursts of 16: serve (GRO) / mmsg relay (context)",
        Of(
            "udp_echo_1200B_w64_bursts16/mmsg",
            "udp_echo_1200B_w64_bursts16/serve",
        ),
        true,
        None,
    ),
    r(
        "flows64.serve_vs_naive",
        "64 flows x 50 pps: relay CPU per datagram, serve / naive",
        Of("flows64_cpu/serve", "flows64_cpu/naive"),
        false,
        Some(0.7),
    ),
    r(
        "flows64.ring_vs_sendmmsg",
        "64 flows: relay CPU per datagram, serve / serve with io_uring = false (context)",
        Of("flows64_cpu/serve", "flows64_cpu/serve_sendmmsg"),
        false,
        None,
    ),
    r(
        "idle5000.loaded_vs_fresh",
        "the same flows, 5,000 idle sessions held / a fresh serve (CPU per datagram)",
        Of("idle5000_cpu/loaded", "idle5000_cpu/fresh"),
        false,
        Some(1.1),
    ),
    r(
        "workers.two_vs_one",
        "two relay workers / one, 16 flows x 4 outstanding (datagrams per second)",
        Of("udp_flows16_workers/one", "udp_flows16_workers/two"),
        true,
        Some(1.7),
    ),
    r(
        "memory.media_session_kib",
        "resident memory per idle media session, KiB (absolute)",
        Abs("memory/media_session_bytes", 1024.0),
        false,
        Some(4.0),
    ),
    r(
        "memory.tunnel_kib",
        "resident memory per idle tunnel, KiB (absolute)",
        Abs("memory/tunnel_bytes", 1024.0),
        false,
        Some(16.0),
    ),
    r(
        "memory.media_session_fds",
        "descriptors per idle media session (absolute)",
        Abs("memory/media_session_fds", 1.0),
        false,
        None,
    ),
    r(
        "call.signalling_rtt.serve_vs_direct",
        "call signalling round trip, idle path: through serve / direct to the edge (time)",
        Of("call_signalling_rtt/serve", "call_signalling_rtt/direct"),
        false,
        None,
    ),
    r(
        "call.rtt_p50.serve_vs_direct",
        "call at 50 pps: signalling round trip p50, through serve / direct",
        Of(
            "call_media/serve_rtt_p50_us",
            "call_media/direct_rtt_p50_us",
        ),
        false,
        None,
    ),
    r(
        "call.rtt_p99.serve_vs_direct",
        "call at 50 pps: signalling round trip p99, through serve / direct",
        Of(
            "call_media/serve_rtt_p99_us",
            "call_media/direct_rtt_p99_us",
        ),
        false,
        None,
    ),
    r(
        "call.transit_p50.serve_vs_direct",
        "call at 50 pps: one-way media transit p50, through serve / direct",
        Of(
            "call_media/serve_transit_p50_us",
            "call_media/direct_transit_p50_us",
        ),
        false,
        None,
    ),
    r(
        "call.jitter.serve_vs_direct",
        "call at 50 pps: RFC 3550 media jitter, through serve / direct",
        Of("call_media/serve_jitter_us", "call_media/direct_jitter_us"),
        false,
        None,
    ),
    r(
        "socks5.core_vs_raw",
        "SOCKS5 CONNECT through the in-process server: core's client / raw bytes (time)",
        Of("socks5_connect/core_client", "socks5_connect/raw_client"),
        false,
        None,
    ),
    r(
        "wire.ap_request",
        "wire codec ApRequest: encode+decode / memcpy (time)",
        Of("wire_ap_request/encode_decode", "wire_ap_request/memcpy"),
        false,
        None,
    ),
    r(
        "wire.ap_response",
        "wire codec ApResponse / memcpy",
        Of("wire_ap_response/encode_decode", "wire_ap_response/memcpy"),
        false,
        None,
    ),
    r(
        "wire.error",
        "wire codec Error / memcpy",
        Of("wire_error/encode_decode", "wire_error/memcpy"),
        false,
        None,
    ),
    r(
        "wire.tunnel_open",
        "wire codec TunnelOpen / memcpy",
        Of("wire_tunnel_open/encode_decode", "wire_tunnel_open/memcpy"),
        false,
        None,
    ),
    r(
        "wire.tunnel_accept",
        "wire codec TunnelAccept / memcpy",
        Of(
            "wire_tunnel_accept/encode_decode",
            "wire_tunnel_accept/memcpy",
        ),
        false,
        None,
    ),
    r(
        "wire.media_channel_open",
        "wire codec MediaChannelOpen / memcpy",
        Of(
            "wire_media_channel_open/encode_decode",
            "wire_media_channel_open/memcpy",
        ),
        false,
        None,
    ),
    r(
        "wire.media_channel_accept",
        "wire codec MediaChannelAccept / memcpy",
        Of(
            "wire_media_channel_accept/encode_decode",
            "wire_media_channel_accept/memcpy",
        ),
        false,
        None,
    ),
    r(
        "wire.media_data",
        "wire codec MediaData (1200 B) / memcpy",
        Of("wire_media_data/encode_decode", "wire_media_data/memcpy"),
        false,
        None,
    ),
    r(
        "wire.keepalive",
        "wire codec Keepalive / memcpy",
        Of("wire_keepalive/encode_decode", "wire_keepalive/memcpy"),
        false,
        None,
    ),
    r(
        "wire.keepalive_ack",
        "wire codec KeepaliveAck / memcpy",
        Of(
            "wire_keepalive_ack/encode_decode",
            "wire_keepalive_ack/memcpy",
        ),
        false,
        None,
    ),
    r(
        "wire.close",
        "wire codec Close / memcpy",
        Of("wire_close/encode_decode", "wire_close/memcpy"),
        false,
        None,
    ),
    r(
        "scenario.call_vs_idle",
        "two-party call, 60 s simulated / an idle world of the same length (time)",
        Of("scenario_60s/two_party_call", "scenario_60s/idle"),
        false,
        None,
    ),
    r(
        "params.enable",
        "setParameters enable / serde_json Value (time)",
        Of(
            "params/enable/cloudproxy_parse",
            "params/enable/baseline_serde_json_value",
        ),
        false,
        None,
    ),
    r(
        "params.socks5",
        "setParameters SOCKS5 / serde_json Value",
        Of(
            "params/socks5/cloudproxy_parse",
            "params/socks5/baseline_serde_json_value",
        ),
        false,
        None,
    ),
    r(
        "params.domain",
        "setParameters domain / serde_json Value",
        Of(
            "params/domain/cloudproxy_parse",
            "params/domain/baseline_serde_json_value",
        ),
        false,
        None,
    ),
    r(
        "params.ip_list",
        "setParameters IP list / serde_json Value",
        Of(
            "params/ip_list/cloudproxy_parse",
            "params/ip_list/baseline_serde_json_value",
        ),
        false,
        None,
    ),
];

/// A ratio as measured in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Measured {
    /// Its value.
    Value(f64),
    /// A case failed; why.
    Failed(String),
    /// Not in this run (or not measurable yet); why.
    Missing(String),
}

/// Computes one ratio from a run's figures.
pub fn measure(def: &RatioDef, figures: &Figures) -> Measured {
    let get = |id: &str| -> Result<f64, Measured> {
        match figures.get(id) {
            Some(Figure {
                failed: Some(why), ..
            }) => Err(Measured::Failed(format!("{id}: {why}"))),
            Some(Figure { value: Some(v), .. }) if *v > 0.0 => Ok(*v),
            _ => Err(Measured::Missing(format!("{id} not measured"))),
        }
    };
    let value = match def.quotient {
        Of(a, b) => get(a).and_then(|a| get(b).map(|b| a / b)),
        Abs(a, scale) => get(a).map(|a| a / scale),
        NotYet(why) => Err(Measured::Missing(why.to_owned())),
    };
    match value {
        Ok(v) => Measured::Value(v),
        Err(m) => m,
    }
}

/// The committed reference: which run, on which machine, and its ratios.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reference {
    /// The commit measured.
    pub commit: String,
    /// The machine.
    pub machine: String,
    /// When.
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// Every ratio, by id.
    pub ratios: BTreeMap<String, Measured>,
}

/// How one ratio compares with the reference.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Within the tolerance, or better.
    Ok,
    /// Worse than the reference by more than the tolerance.
    Regressed(String),
    /// Nothing to compare with (no reference value, or not measurable).
    NoReference,
}

/// Compares a measured ratio with its reference value; `tolerance` is a fraction (0.10).
pub fn compare(
    def: &RatioDef,
    now: &Measured,
    reference: Option<&Measured>,
    tolerance: f64,
) -> Verdict {
    match (reference, now) {
        (Some(Measured::Value(r)), Measured::Value(v)) => {
            let worse = if def.higher_is_better {
                *v < r * (1.0 - tolerance)
            } else {
                *v > r * (1.0 + tolerance)
            };
            if worse {
                Verdict::Regressed(format!(
                    "{v:.3} against {r:.3} (more than {:.0}% {})",
                    tolerance * 100.0,
                    if def.higher_is_better {
                        "below"
                    } else {
                        "above"
                    }
                ))
            } else {
                Verdict::Ok
            }
        }
        (Some(Measured::Value(r)), Measured::Failed(why)) => {
            Verdict::Regressed(format!("failed ({why}); the reference measured {r:.3}"))
        }
        (Some(Measured::Value(r)), Measured::Missing(why)) => Verdict::Regressed(format!(
            "not measured ({why}); the reference measured {r:.3}"
        )),
        // A case that failed in the reference too is still known to fail: no new regression.
        _ => Verdict::NoReference,
    }
}

/// The benchmark target (`benches/benches/<name>.rs`) that measures ratio `id`: what the CI
/// gate runs again when the ratio regressed.
pub fn bench_target(id: &str) -> &'static str {
    let prefix = id.split('.').next().unwrap_or("");
    match prefix {
        "tcp_one_way" | "tcp_both_ways" => "relay_tcp",
        "udp_echo" => "relay_udp",
        "tcp_paced_cpu" | "flows64" | "idle5000" | "workers" => "relay_cpu",
        "memory" => "memory",
        "call" => "call",
        "socks5" => "socks5",
        "wire" => "wire",
        "scenario" => "scenario",
        _ => "params",
    }
}

/// Every ratio that fails the comparison: compared with `reference` within `tolerance`, and,
/// with `goals_only`, only the [gated](RatioDef::gated) ones. Each with why.
pub fn regressions(
    figures: &Figures,
    reference: Option<&Reference>,
    tolerance: f64,
    goals_only: bool,
) -> Vec<(&'static str, String)> {
    RATIOS
        .iter()
        .filter(|def| !goals_only || def.gated())
        .filter_map(|def| {
            let m = measure(def, figures);
            let r = reference.and_then(|r| r.ratios.get(def.id));
            match compare(def, &m, r, tolerance) {
                Verdict::Regressed(why) => Some((def.id, why)),
                _ => None,
            }
        })
        .collect()
}

/// The benchmark targets to run again for `regressions`, each once, in order.
pub fn retry_targets(regressions: &[(&str, String)]) -> Vec<&'static str> {
    let mut targets: Vec<&'static str> =
        regressions.iter().map(|(id, _)| bench_target(id)).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

/// The worse of two measurements of one ratio (a failure is worse than any value, a value
/// worse than nothing): how a reference is taken from several runs, so that a run is compared
/// with the low end of what the machine's noise gave, not with a lucky run.
pub fn worse(def: &RatioDef, a: &Measured, b: &Measured) -> Measured {
    match (a, b) {
        (Measured::Value(x), Measured::Value(y)) => {
            let pick = if def.higher_is_better {
                x.min(*y)
            } else {
                x.max(*y)
            };
            Measured::Value(pick)
        }
        (Measured::Failed(_), _) | (_, Measured::Missing(_)) => a.clone(),
        _ => b.clone(),
    }
}

/// Whether a value meets its goal.
pub fn meets_goal(def: &RatioDef, v: f64) -> Option<bool> {
    def.goal
        .map(|g| if def.higher_is_better { v >= g } else { v <= g })
}

#[cfg(test)]
mod tests;
