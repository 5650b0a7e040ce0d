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

/// Logs one trace line of a node as a `tracing` event, at the level the event itself states
/// ([`TraceEvent::level`](cloudproxy_node::trace::TraceEvent::level)): sessions, connections and
/// state changes at `info`; refusals and timeouts at `debug` (a flood would drown the log).
pub fn trace_line(line: &cloudproxy_node::trace::Line<'_>) {
    use cloudproxy_node::trace::Level as EventLevel;
    let (node, event) = (line.node, line.event.name());
    let detail = serde_json::Value::Object(line.event.fields());
    match line.event.level() {
        EventLevel::Info => {
            tracing::info!(target: "cloudproxy::node", node, event, detail = %detail)
        }
        EventLevel::Debug => {
            tracing::debug!(target: "cloudproxy::node", node, event, detail = %detail)
        }
    }
}
