//! The sequence diagram of a run's key events between the clients, the resolver, the access
//! points, the relays and the edge, drawn as inline SVG from the trace (no script, no font or
//! file from elsewhere: the page opens offline).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::escape;

/// The most events drawn; the rest are counted under the diagram.
pub const MAX_ROWS: usize = 300;

const LANE_W: usize = 150;
const ROW_H: usize = 22;
const TOP: usize = 44;
const LEFT: usize = 70;

/// One row of the diagram: an arrow between two lanes, or a note on one.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    /// Simulated time, ms.
    pub t_ms: u64,
    /// The lane it starts on.
    pub from: String,
    /// The lane it ends on (the same lane: a note).
    pub to: String,
    /// Its label.
    pub label: String,
    /// Drawn in red (a refusal, a failure, a fault).
    pub bad: bool,
}

/// The lanes and rows of a trace: `clients` maps each enterprise host to the lane its
/// traffic is drawn from (its first client).
pub fn rows(lines: &[String], clients: &BTreeMap<String, String>) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(row) = row(&v, clients) {
            // A session opened on a relay goes on upstream, to the edge.
            let upstream =
                (v.get("event").and_then(Value::as_str) == Some("session_opened")).then(|| Row {
                    t_ms: row.t_ms,
                    from: row.to.clone(),
                    to: "edge".to_owned(),
                    label: "upstream".to_owned(),
                    bad: false,
                });
            rows.push(row);
            rows.extend(upstream);
        }
    }
    rows
}

fn row(v: &Value, clients: &BTreeMap<String, String>) -> Option<Row> {
    let t_ms = v.get("t_us")?.as_u64()? / 1000;
    let node = v.get("node")?.as_str()?.to_owned();
    let s = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let host = |k: &str| {
        let t = s(k);
        t.rsplit_once(':').map_or(t.clone(), |(h, _)| h.to_owned())
    };
    let lane_of = |ip: String| clients.get(&ip).cloned().unwrap_or(ip);
    let relay_lane = |addr: String| relay_name(&addr).unwrap_or(addr);
    let note = |label: String, bad: bool| Row {
        t_ms,
        from: node.clone(),
        to: node.clone(),
        label,
        bad,
    };
    let arrow = |from: String, to: String, label: String, bad: bool| Row {
        t_ms,
        from,
        to,
        label,
        bad,
    };
    Some(match v.get("event")?.as_str()? {
        "join" => note(format!("join code {}", s("code")), s("code") != "0"),
        "leave" => note(format!("leave code {}", s("code")), s("code") != "0"),
        "set_parameters" if s("code") != "0" => {
            note(format!("set_parameters code {}", s("code")), true)
        }
        "state" => note(
            format!("{}: {}", s("state"), s("reason")),
            s("state") == "Disconnected",
        ),
        "media_path" => note(format!("media path {}", s("path")), false),
        "resolve" => {
            let ok = v.get("ok") == Some(&Value::Bool(true));
            let label = format!(
                "resolve {}{}",
                s("name"),
                if ok { "" } else { ": no answer" }
            );
            arrow(node.clone(), "dns".into(), label, !ok)
        }
        "ap_request" => {
            let answered = v.get("answered") == Some(&Value::Bool(true));
            let label = format!(
                "AP request over {}{}",
                s("transport"),
                if answered {
                    ", answered"
                } else {
                    ", not answered"
                }
            );
            arrow(lane_of(host("from")), node.clone(), label, !answered)
        }
        "proxy_connected" => arrow(
            relay_lane(s("relay")),
            node.clone(),
            format!("connected, type {}", s("proxy_type")),
            false,
        ),
        "session_opened" => arrow(
            lane_of(host("client")),
            node.clone(),
            format!("session to {}", s("destination")),
            false,
        ),
        "session_closed" => note(format!("session closed: {}", s("reason")), false),
        "refused" => arrow(
            lane_of(host("peer")),
            node.clone(),
            format!("refused: {}", s("code")),
            true,
        ),
        "fault" => {
            let applied = v.get("applied") == Some(&Value::Bool(true));
            let label = if applied {
                format!("fault: {}", s("fault"))
            } else {
                format!("fault {} did nothing", s("fault"))
            };
            // Aimed at the server it hit, when it names one.
            let text = format!("{} {}", s("effect"), s("fault"));
            let target = text
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .find_map(server_name)
                .unwrap_or_else(|| "world".to_owned());
            Row {
                t_ms,
                from: "world".into(),
                to: target,
                label,
                bad: true,
            }
        }
        "signalling_error" => note(format!("signalling error: {}", s("error")), true),
        _ => return None,
    })
}

/// `apN`/`relayN`/`edge` for a server's address.
fn server_name(ip: &str) -> Option<String> {
    use cloudproxy_sim::world::{AP_IPS, EDGE_IP};
    if ip == EDGE_IP {
        return Some("edge".to_owned());
    }
    AP_IPS
        .iter()
        .position(|a| *a == ip)
        .map(|i| format!("ap{}", i + 1))
        .or_else(|| relay_name(ip))
}

/// `relay1`/`relay2` for a relay's address (`IP:port` or `IP`).
fn relay_name(addr: &str) -> Option<String> {
    let ip = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    cloudproxy_sim::world::RELAY_IPS
        .iter()
        .position(|r| *r == ip)
        .map(|i| format!("relay{}", i + 1))
}

/// The lanes, in order: the world (faults), clients, the resolver, the access points, the
/// relays, the edge; only those some row uses (the edge always, as the destination).
pub fn lanes(rows: &[Row], clients: &[String]) -> Vec<String> {
    let used = |lane: &str| rows.iter().any(|r| r.from == lane || r.to == lane);
    let mut lanes: Vec<String> = Vec::new();
    if used("world") {
        lanes.push("world".to_owned());
    }
    lanes.extend(clients.iter().filter(|c| used(c)).cloned());
    let fixed = [
        "dns", "ap1", "ap2", "ap3", "ap4", "relay1", "relay2", "edge",
    ];
    lanes.extend(
        fixed
            .iter()
            .filter(|l| used(l) || **l == "edge")
            .map(|l| (*l).to_owned()),
    );
    // Anything else a row names (a host outside the scenario's clients: the attacker).
    for row in rows {
        for lane in [&row.from, &row.to] {
            if !lanes.contains(lane) {
                lanes.push(lane.clone());
            }
        }
    }
    lanes
}

/// The diagram as an `<svg>` element.
pub fn svg(rows: &[Row], lanes: &[String]) -> String {
    let shown = &rows[..rows.len().min(MAX_ROWS)];
    let width = LEFT + LANE_W * lanes.len().max(1);
    let height = TOP + ROW_H * (shown.len() + 1);
    let x =
        |lane: &str| LEFT + LANE_W * lanes.iter().position(|l| l == lane).unwrap_or(0) + LANE_W / 2;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="seq" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram of the key events">"##
    );
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#345"/></marker><marker id="arrow-bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#b00"/></marker></defs>"##);
    for lane in lanes {
        let cx = x(lane);
        let _ = write!(
            out,
            r##"<rect x="{}" y="6" width="{}" height="24" rx="4" fill="#eef3f8" stroke="#345"/><text x="{cx}" y="22" text-anchor="middle" font-size="12" font-weight="bold">{}</text><line x1="{cx}" y1="30" x2="{cx}" y2="{height}" stroke="#9ab" stroke-dasharray="4 3"/>"##,
            cx - LANE_W / 2 + 8,
            LANE_W - 16,
            escape(lane)
        );
    }
    for (i, row) in shown.iter().enumerate() {
        let y = TOP + ROW_H * i + ROW_H / 2;
        let color = if row.bad { "#b00" } else { "#345" };
        let _ = write!(
            out,
            r##"<text x="4" y="{}" font-size="10" fill="#567">{} ms</text>"##,
            y + 4,
            row.t_ms
        );
        let (x1, x2) = (x(&row.from), x(&row.to));
        let label = escape(&row.label);
        if x1 == x2 {
            let _ = write!(
                out,
                r##"<circle cx="{x1}" cy="{y}" r="3" fill="{color}"/><text x="{}" y="{}" font-size="11" fill="{color}">{label}</text>"##,
                x1 + 6,
                y + 4
            );
        } else {
            let marker = if row.bad { "arrow-bad" } else { "arrow" };
            let _ = write!(
                out,
                r##"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{color}" stroke-width="1.3" marker-end="url(#{marker})"/><text x="{}" y="{}" text-anchor="middle" font-size="10" fill="{color}">{label}</text>"##,
                (x1 + x2) / 2,
                y - 3
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_become_arrows_between_lanes_and_notes() {
        let clients: BTreeMap<String, String> =
            [("10.1.0.10".to_owned(), "alice".to_owned())].into();
        let lines = [
            r#"{"t_us":105000,"node":"alice","event":"resolve","name":"ap-proxy.agora.io","ok":true}"#,
            r#"{"t_us":110000,"node":"ap1","event":"ap_request","answered":true,"from":"10.1.0.10:49153","transport":"tcp"}"#,
            r#"{"t_us":123400,"node":"relay2","event":"session_opened","client":"10.1.0.10:49154","destination":"101.36.1.10:5000"}"#,
            r#"{"t_us":131000,"node":"alice","event":"proxy_connected","relay":"120.92.18.162:4000","proxy_type":1}"#,
            r#"{"t_us":8000000,"node":"world","event":"fault","fault":"crash 120.92.18.162","applied":true,"effect":"crashed"}"#,
            "not json",
        ]
        .map(String::from);
        let rows = rows(&lines, &clients);
        let arrows: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str()))
            .collect();
        assert_eq!(
            arrows,
            [
                ("alice", "dns"),
                ("alice", "ap1"),
                ("alice", "relay2"),
                ("relay2", "edge"),
                ("relay2", "alice"),
                ("world", "relay2")
            ]
        );
        let lanes = lanes(&rows, &["alice".to_owned()]);
        assert_eq!(lanes, ["world", "alice", "dns", "ap1", "relay2", "edge"]);
        let svg = svg(&rows, &lanes);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<line x1").count(), 6 + lanes.len());
        assert!(svg.contains("fault: crash 120.92.18.162"));
    }
}
