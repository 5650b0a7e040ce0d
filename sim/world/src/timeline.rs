//! The key events of a run, in order: `t_ms node event` lines (who joined, which relay took
//! over and when, fail-overs, closes with their reasons, faults and what they did).
//!
//! The scenario snapshots pin these lines rather than end-state dumps, so a snapshot changes
//! when the story of a run changes (an event appears, disappears or moves), not when a counter
//! is renamed. [`key_event`] is the one place that decides which trace events are key events
//! and how each reads; when the trace becomes typed, only it changes.
//!
//! Left out as noise: access-point requests that were answered, successful resolutions, media
//! channel openings, and events without a known shape.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use cloudproxy_node::trace::Trace;

/// One key event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    /// Simulated time, milliseconds since the start.
    pub t_ms: u64,
    /// The node: a client's name, `ap1`..`ap4`, `relay1`, `relay2`, or `world` for faults.
    pub node: String,
    /// What happened, one short phrase.
    pub what: String,
}

impl fmt::Display for KeyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} {} {}", self.t_ms, self.node, self.what)
    }
}

/// The key events of `trace`, in trace order.
pub fn key_events(trace: &Trace) -> Vec<KeyEvent> {
    trace.lines().iter().filter_map(|l| key_event(l)).collect()
}

/// The key event of one trace line, or `None` when the line is not a key event (or not a
/// trace line).
pub fn key_event(line: &str) -> Option<KeyEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    let t_ms = v.get("t_us")?.as_u64()? / 1000;
    let node = v.get("node")?.as_str()?.to_owned();
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let host = |k: &str| {
        let t = text(k);
        t.rsplit_once(':').map_or(t.clone(), |(h, _)| h.to_owned())
    };
    let with_error = |head: String| match text("error") {
        e if e.is_empty() => head,
        e => format!("{head}: {e}"),
    };
    let what = match v.get("event")?.as_str()? {
        "set_parameters" => with_error(format!("set_parameters code {}", text("code"))),
        "set_cloud_proxy" => with_error(format!(
            "set_cloud_proxy type {} code {}",
            text("type"),
            text("code")
        )),
        "network_change" => format!("network change {}", text("change")),
        "join" => with_error(format!("join code {}", text("code"))),
        "leave" => with_error(format!("leave code {}", text("code"))),
        "state" => format!("state {}: {}", text("state"), text("reason")),
        "proxy_connected" => format!(
            "connected through type {} at {}",
            text("proxy_type"),
            text("relay")
        ),
        "media_path" => format!("media path {}", text("path")),
        "resolve" if v.get("ok") == Some(&Value::Bool(false)) => {
            format!("cannot resolve {}", text("name"))
        }
        "signalling_error" => format!("signalling error: {}", text("error")),
        "ap_request" if v.get("answered") == Some(&Value::Bool(false)) => {
            format!("no answer to {} over {}", host("from"), text("transport"))
        }
        "session_opened" => format!(
            "session opened for {} to {}",
            host("client"),
            text("destination")
        ),
        "session_closed" => format!("session closed: {}", text("reason")),
        "refused" => format!(
            "refused {} from {} over {}",
            text("code"),
            host("peer"),
            text("transport")
        ),
        "handshake_timed_out" => format!("handshake timed out from {}", host("peer")),
        "fault" if v.get("applied") == Some(&Value::Bool(false)) => {
            format!("fault {} did nothing: {}", text("fault"), text("effect"))
        }
        "fault" => match text("effect") {
            e if e.is_empty() || e == "set" => format!("fault {}", text("fault")),
            e => format!("fault {}: {e}", text("fault")),
        },
        _ => return None,
    };
    Some(KeyEvent { t_ms, node, what })
}

/// Renders `events` one per line; with `focus`, only the events of those nodes and of the
/// world (faults), then one line counting the events of the nodes left out.
pub fn render(events: &[KeyEvent], focus: Option<&[&str]>) -> String {
    let mut out = String::new();
    let mut hidden = 0usize;
    let mut hidden_nodes = BTreeSet::new();
    for event in events {
        let node = event.node.as_str();
        if focus.is_none_or(|nodes| node == "world" || nodes.contains(&node)) {
            out.push_str(&event.to_string());
            out.push('\n');
        } else {
            hidden += 1;
            hidden_nodes.insert(node);
        }
    }
    if hidden > 0 {
        out.push_str(&format!(
            "(and {hidden} key events of {} other nodes)\n",
            hidden_nodes.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_events_read_as_short_phrases_and_noise_is_left_out() {
        let lines = [
            r#"{"t_us":100000,"node":"alice","event":"join","code":0,"config":{}}"#,
            r#"{"t_us":108000,"node":"ap1","event":"ap_request","answered":true,"from":"10.2.0.10:49152","transport":"udp"}"#,
            r#"{"t_us":123400,"node":"relay1","event":"session_opened","client":"10.2.0.10:49154","destination":"101.36.1.10:5000","session":"293359d016e5da4b","udp_port":4584}"#,
            r#"{"t_us":131000,"node":"alice","event":"state","code":3,"reason":"joined","state":"Connected"}"#,
            r#"{"t_us":8000000,"node":"world","event":"fault","fault":"crash the relay alice uses","applied":false,"effect":"alice holds no relay: it is Reconnecting"}"#,
            r#"{"t_us":9000000,"node":"alice","event":"set_parameters","code":-4,"error":"in a channel","text":"{}"}"#,
            "not json",
        ];
        let events: Vec<String> = lines
            .iter()
            .filter_map(|l| key_event(l))
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            events,
            [
                "    100 alice join code 0",
                "    123 relay1 session opened for 10.2.0.10 to 101.36.1.10:5000",
                "    131 alice state Connected: joined",
                "   8000 world fault crash the relay alice uses did nothing: alice holds no relay: it is Reconnecting",
                "   9000 alice set_parameters code -4: in a channel",
            ]
        );
    }

    #[test]
    fn focus_keeps_its_nodes_and_the_world_and_counts_the_rest() {
        let event = |node: &str| KeyEvent {
            t_ms: 1,
            node: node.to_owned(),
            what: "x".to_owned(),
        };
        let events = [
            event("bank-000"),
            event("bank-001"),
            event("relay2"),
            event("world"),
            event("bank-002"),
        ];
        let text = render(&events, Some(&["bank-000"]));
        assert_eq!(
            text,
            "      1 bank-000 x\n      1 world x\n(and 3 key events of 3 other nodes)\n"
        );
    }
}
