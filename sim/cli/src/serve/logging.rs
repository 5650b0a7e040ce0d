//! Structured logs of the real-socket commands, with `tracing`: human-readable text or one
//! JSON object per line, on standard error.

use std::str::FromStr;

use clap::ValueEnum;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2024-05-01T10:00:00Z  INFO cloudproxy::serve: relay listening relay=127.0.2.1 ...`
    #[default]
    Text,
    /// One JSON object per line, fields included: for log collectors.
    Json,
}

/// Installs the global subscriber (once; later calls do nothing). `level` is `error`, `warn`,
/// `info`, `debug` or `trace`.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let level = Level::from_str(level)
        .map_err(|_| format!("--log-level {level}: expected error, warn, info, debug or trace"))?;
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::from_level(level))
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// Logs one trace line of a node (`{"t_us":..,"node":..,"event":..,...}`) as a `tracing` event:
/// sessions, connections and state changes at `info`, refusals and timeouts at `debug` (a
/// flood would drown the log), everything else at `debug`.
pub fn trace_line(line: &str) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let node = value.get("node").and_then(|v| v.as_str()).unwrap_or("?");
    let event = value.get("event").and_then(|v| v.as_str()).unwrap_or("?");
    let mut detail = value.clone();
    if let Some(map) = detail.as_object_mut() {
        map.remove("node");
        map.remove("event");
        map.remove("t_us");
    }
    match event {
        "session_opened"
        | "session_closed"
        | "media_channel_opened"
        | "state"
        | "proxy_connected"
        | "media_path"
        | "join"
        | "leave" => {
            tracing::info!(target: "cloudproxy::node", node, event, detail = %detail)
        }
        _ => tracing::debug!(target: "cloudproxy::node", node, event, detail = %detail),
    }
}
