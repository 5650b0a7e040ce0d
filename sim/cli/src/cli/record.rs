//! What `run` and `sweep` report about one run, as plain data (sweeps build them on worker
//! threads), and its machine-readable form: one JSON object per run (`--json`), whose schema
//! `docs/scenarios.md` documents ("Reports machines read").

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use cloudproxy_sim::scenario::{Check, RunOptions, RunResult};

/// The version of the JSON object's schema: bumped when a field changes meaning or goes away
/// (new fields may appear without a bump).
pub const SCHEMA: &str = "cloudproxy-run/1";

/// One fault of the schedule and whether it took effect.
#[derive(Clone, Debug)]
pub struct FaultLine {
    /// When it was due.
    pub at: Duration,
    /// What it is, in words.
    pub fault: String,
    /// `None` when it took effect, else why it did nothing.
    pub without_effect: Option<String>,
}

/// One client's summary.
#[derive(Clone, Debug)]
pub struct ClientLine {
    /// Time from its first join to its first connection.
    pub join_ms: Option<u64>,
    /// The proxy type of its latest connection.
    pub proxy_type: Option<u8>,
    /// Its media path at the end.
    pub media_path: Option<String>,
    /// Media packets sent.
    pub media_sent: u64,
    /// Media packets received.
    pub media_received: u64,
    /// Media packets lost.
    pub media_lost: u64,
    /// Times it went from connected to reconnecting.
    pub reconnects: u32,
    /// The reason of its latest state change.
    pub last_reason: String,
}

/// What one run produced, for the report, the JSON object and the JUnit test case.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The scenario.
    pub scenario: &'static str,
    /// The scenario file it was read from (`None`: the catalogue's).
    pub file: Option<std::path::PathBuf>,
    /// The options it ran with.
    pub options: RunOptions,
    /// Every check.
    pub checks: Vec<Check>,
    /// The swarm's fault kinds (empty without `--swarm`).
    pub swarm_kinds: Vec<String>,
    /// The fault schedule, in time order.
    pub faults: Vec<FaultLine>,
    /// Each client, by name.
    pub clients: BTreeMap<String, ClientLine>,
    /// The trace's hash (of its kept lines).
    pub trace_hash: String,
    /// Trace lines kept.
    pub trace_lines: usize,
    /// Trace lines recorded past the cap and not kept.
    pub trace_dropped: u64,
    /// The trace's cap.
    pub trace_cap: usize,
    /// Simulated time at the end.
    pub sim: Duration,
    /// Wall-clock time (reported, never compared).
    pub wall: Duration,
    /// The line that reproduces the run.
    pub reproduce: String,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RunRecord {
    /// The record of `result`.
    pub fn new(result: &RunResult) -> Self {
        let outcome = &result.outcome;
        let mut faults: Vec<FaultLine> = outcome
            .faults_applied
            .iter()
            .map(|(at, f)| FaultLine {
                at: *at,
                fault: f.to_string(),
                without_effect: None,
            })
            .chain(
                outcome
                    .faults_without_effect
                    .iter()
                    .map(|(at, f, why)| FaultLine {
                        at: *at,
                        fault: f.to_string(),
                        without_effect: Some(why.clone()),
                    }),
            )
            .collect();
        faults.sort_by_key(|f| f.at);
        let clients = outcome
            .clients
            .iter()
            .map(|(name, c)| {
                let line = ClientLine {
                    join_ms: c.join_time.map(ms),
                    proxy_type: c.proxy.map(|(t, _)| t),
                    media_path: c.media_path.map(|p| format!("{p:?}")),
                    media_sent: c.media_sent,
                    media_received: c.media_received(),
                    media_lost: c.media_lost(),
                    reconnects: c.reconnects,
                    last_reason: c.last_reason.clone(),
                };
                (name.clone(), line)
            })
            .collect();
        RunRecord {
            scenario: result.name,
            file: result.file.clone(),
            options: result.options.clone(),
            checks: result.checks.clone(),
            swarm_kinds: result
                .swarm_kinds
                .iter()
                .map(|k| format!("{k:?}"))
                .collect(),
            faults,
            clients,
            trace_hash: outcome.trace.hash(),
            trace_lines: outcome.trace.len(),
            trace_dropped: outcome.trace.dropped(),
            trace_cap: outcome.trace.cap(),
            sim: outcome.sim_time,
            wall: result.wall,
            reproduce: result.reproduce(),
        }
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// The slowest client's join time.
    pub fn join_ms_max(&self) -> Option<u64> {
        self.clients.values().filter_map(|c| c.join_ms).max()
    }

    /// Media received, every client.
    pub fn media_received(&self) -> u64 {
        self.clients.values().map(|c| c.media_received).sum()
    }

    /// Media lost, every client.
    pub fn media_lost(&self) -> u64 {
        self.clients.values().map(|c| c.media_lost).sum()
    }

    /// Reconnects, every client.
    pub fn reconnects(&self) -> u32 {
        self.clients.values().map(|c| c.reconnects).sum()
    }

    /// The note a report prints when the trace hit its cap: its hash then covers only the
    /// lines kept, so it proves nothing about what came after.
    pub fn trace_note(&self) -> Option<String> {
        (self.trace_dropped > 0).then(|| {
            format!(
                "the trace hit its cap of {} lines: {} later lines were counted, not kept; its hash covers the first {} only",
                self.trace_cap, self.trace_dropped, self.trace_lines
            )
        })
    }

    /// The fault schedule, one `at S s: FAULT` item each (with why, when it did nothing).
    pub fn schedule(&self) -> Vec<String> {
        self.faults
            .iter()
            .map(|f| match &f.without_effect {
                None => format!("{:.3} s {}", f.at.as_secs_f64(), f.fault),
                Some(why) => format!(
                    "{:.3} s {} (did nothing: {why})",
                    f.at.as_secs_f64(),
                    f.fault
                ),
            })
            .collect()
    }

    /// The run as one JSON object (schema [`SCHEMA`]).
    pub fn to_json(&self) -> Value {
        let clients: serde_json::Map<String, Value> = self
            .clients
            .iter()
            .map(|(name, c)| {
                let v = json!({
                    "joined": c.join_ms.is_some(),
                    "join_ms": c.join_ms,
                    "proxy_type": c.proxy_type,
                    "media_path": c.media_path,
                    "media_sent": c.media_sent,
                    "media_received": c.media_received,
                    "media_lost": c.media_lost,
                    "reconnects": c.reconnects,
                    "last_reason": c.last_reason,
                });
                (name.clone(), v)
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "scenario": self.scenario,
            "seed": self.options.seed,
            "swarm": self.options.swarm,
            "policy": self.options.policy.as_ref().map(|p| p.path.display().to_string()),
            "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "swarm_kinds": self.swarm_kinds,
            "faults": self.faults.iter().map(|f| json!({
                "at_ms": ms(f.at),
                "fault": f.fault,
                "applied": f.without_effect.is_none(),
                "without_effect": f.without_effect,
            })).collect::<Vec<_>>(),
            "clients": clients,
            "totals": {
                "join_ms_max": self.join_ms_max(),
                "media_received": self.media_received(),
                "media_lost": self.media_lost(),
                "reconnects": self.reconnects(),
            },
            "trace": {
                "hash": self.trace_hash,
                "lines": self.trace_lines,
                "dropped": self.trace_dropped,
                "cap": self.trace_cap,
            },
            "sim_ms": ms(self.sim),
            "wall_ms": ms(self.wall),
            "reproduce": self.reproduce,
        })
    }
}
