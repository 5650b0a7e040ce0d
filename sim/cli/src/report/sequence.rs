//! The sequence diagram of a run's key events between the clients, the resolver, the access
//! points, the relays and the edge, drawn as inline SVG from the trace (no script, no font or
//! file from elsewhere: the page opens offline).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use cloudproxy_sim::world::{WorldSpec, ATTACKER_IP};

use crate::markup::escape;

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

/// The most client lanes drawn; the other clients' events are left out of the diagram (the
/// page says how many; the trace has them all).
pub const MAX_CLIENT_LANES: usize = 8;

/// What the diagram draws of a run: its rows, its lanes, and how many clients it left out.
pub struct Diagram {
    /// The rows, in trace order.
    pub rows: Vec<Row>,
    /// The lanes, left to right.
    pub lanes: Vec<String>,
    /// Clients beyond [`MAX_CLIENT_LANES`], not drawn.
    pub clients_not_drawn: usize,
}

/// The diagram of `lines` (a trace) in the world `spec`: a lane for each client (at most
/// [`MAX_CLIENT_LANES`], the first of every enterprise among them), and for the servers. What the servers see from an enterprise host
/// is drawn from its client when it has one, else from a lane for the host (`bank
/// 10.1.0.10`): its clients share the address, so a server's event cannot say whose it is.
pub fn diagram(spec: &WorldSpec, lines: &[String]) -> Diagram {
    // The clients drawn: the first of each enterprise, then the second of each..., up to the
    // cap; drawn in enterprise order.
    let mut chosen = std::collections::BTreeSet::new();
    let most = spec.enterprises.iter().map(|e| e.clients.len()).max();
    for i in 0..most.unwrap_or(0) {
        for (n, e) in spec.enterprises.iter().enumerate() {
            if i < e.clients.len() && chosen.len() < MAX_CLIENT_LANES {
                chosen.insert((n, i));
            }
        }
    }
    let mut hosts = BTreeMap::new();
    let mut order = Vec::new();
    let mut hidden = Vec::new();
    for (n, e) in spec.enterprises.iter().enumerate() {
        for (i, c) in e.clients.iter().enumerate() {
            if chosen.contains(&(n, i)) {
                order.push(c.name.clone());
            } else {
                hidden.push(c.name.as_str());
            }
        }
        let host_lane = match e.clients.as_slice() {
            [one] => one.name.clone(),
            _ => format!("{} {}", e.name, e.clients_ip),
        };
        if e.clients.len() > 1 {
            order.push(host_lane.clone());
        }
        hosts.insert(e.clients_ip.to_string(), host_lane);
    }
    hosts.insert(ATTACKER_IP.to_owned(), "attacker".to_owned());
    let rows: Vec<Row> = rows(lines, &hosts)
        .into_iter()
        .filter(|r| !hidden.contains(&r.from.as_str()) && !hidden.contains(&r.to.as_str()))
        .collect();
    let lanes = lanes(&rows, &order);
    Diagram {
        rows,
        lanes,
        clients_not_drawn: hidden.len(),
    }
}

/// The rows of a trace: `clients` maps each enterprise host to the lane its traffic is
/// drawn from.
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

/// One trace line being turned into a row.
struct Line<'a> {
    v: &'a Value,
    t_ms: u64,
    node: String,
    clients: &'a BTreeMap<String, String>,
}

impl Line<'_> {
    /// The field `k` as text (`""` when absent or null).
    fn s(&self, k: &str) -> String {
        match self.v.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    fn flag(&self, k: &str) -> bool {
        self.v.get(k) == Some(&Value::Bool(true))
    }

    /// The lane of the host of the address in field `k` (an enterprise's, or the address).
    fn lane_of(&self, k: &str) -> String {
        let t = self.s(k);
        let ip = t.rsplit_once(':').map_or(t.clone(), |(h, _)| h.to_owned());
        self.clients.get(&ip).cloned().unwrap_or(ip)
    }

    fn note(&self, label: String, bad: bool) -> Row {
        self.arrow(self.node.clone(), self.node.clone(), label, bad)
    }

    fn arrow(&self, from: String, to: String, label: String, bad: bool) -> Row {
        Row {
            t_ms: self.t_ms,
            from,
            to,
            label,
            bad,
        }
    }

    /// What a client writes: its calls, states, paths and resolutions.
    fn client_row(&self, event: &str) -> Option<Row> {
        let code = self.s("code");
        Some(match event {
            "join" | "leave" => self.note(format!("{event} code {code}"), code != "0"),
            "set_parameters" if code != "0" => {
                self.note(format!("set_parameters code {code}"), true)
            }
            "set_cloud_proxy" if code != "0" => {
                self.note(format!("set_cloud_proxy code {code}"), true)
            }
            "state" => self.note(
                format!("{}: {}", self.s("state"), self.s("reason")),
                self.s("state") == "Disconnected",
            ),
            "media_path" => self.note(format!("media path {}", self.s("path")), false),
            "network_change" => self.note(format!("network change: {}", self.s("change")), true),
            "signalling_error" => self.note(format!("signalling error: {}", self.s("error")), true),
            "resolve" => {
                let ok = self.flag("ok");
                let label = format!(
                    "resolve {}{}",
                    self.s("name"),
                    if ok { "" } else { ": no answer" }
                );
                self.arrow(self.node.clone(), "dns".into(), label, !ok)
            }
            "proxy_connected" => {
                let relay = self.s("relay");
                let lane = relay_name(&relay).unwrap_or(relay);
                let label = format!("connected, type {}", self.s("proxy_type"));
                self.arrow(lane, self.node.clone(), label, false)
            }
            _ => return None,
        })
    }

    /// What a server writes: access-point requests, relay sessions and refusals.
    fn server_row(&self, event: &str) -> Option<Row> {
        let node = self.node.clone();
        Some(match event {
            "ap_request" => {
                let answered = self.flag("answered");
                let label = format!(
                    "AP request over {}{}",
                    self.s("transport"),
                    if answered {
                        ", answered"
                    } else {
                        ", not answered"
                    }
                );
                self.arrow(self.lane_of("from"), node, label, !answered)
            }
            "session_opened" => {
                let label = format!("session to {}", self.s("destination"));
                self.arrow(self.lane_of("client"), node, label, false)
            }
            "session_closed" => self.note(format!("session closed: {}", self.s("reason")), false),
            "refused" => {
                let label = format!("refused: {}", self.s("code"));
                self.arrow(self.lane_of("peer"), node, label, true)
            }
            _ => return None,
        })
    }

    /// A fault, from the world's lane, aimed at the server it hit when it names one.
    fn fault_row(&self) -> Row {
        let label = if self.flag("applied") {
            format!("fault: {}", self.s("fault"))
        } else {
            format!("fault {} did nothing", self.s("fault"))
        };
        let text = format!("{} {}", self.s("effect"), self.s("fault"));
        let target = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .find_map(server_name)
            .unwrap_or_else(|| "world".to_owned());
        self.arrow("world".into(), target, label, true)
    }
}

fn row(v: &Value, clients: &BTreeMap<String, String>) -> Option<Row> {
    let line = Line {
        v,
        t_ms: v.get("t_us")?.as_u64()? / 1000,
        node: v.get("node")?.as_str()?.to_owned(),
        clients,
    };
    match v.get("event")?.as_str()? {
        "fault" => Some(line.fault_row()),
        event => line.client_row(event).or_else(|| line.server_row(event)),
    }
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

/// The diagram as an `<svg>` element; `more` clients not drawn are named in a last header.
pub fn svg(rows: &[Row], lanes: &[String], more: usize) -> String {
    let shown = &rows[..rows.len().min(MAX_ROWS)];
    let width = LEFT + LANE_W * (lanes.len() + usize::from(more > 0)).max(1);
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
    if more > 0 {
        let _ = write!(
            out,
            r##"<text class="more" x="{}" y="22" text-anchor="middle" font-size="12" fill="#567">{more} more clients</text>"##,
            LEFT + LANE_W * lanes.len() + LANE_W / 2
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
        let svg = svg(&rows, &lanes, 0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<line x1").count(), 6 + lanes.len());
        assert!(svg.contains("fault: crash 120.92.18.162"));
    }

    #[test]
    fn lane_names_and_labels_are_escaped_in_the_svg() {
        let rows = [Row {
            t_ms: 5,
            from: "a<b>".to_owned(),
            to: "a<b>".to_owned(),
            label: "say \"hi\" & 'bye'\u{7}".to_owned(),
            bad: false,
        }];
        let svg = svg(&rows, &["a<b>".to_owned()], 0);
        assert!(svg.contains(">a&lt;b&gt;</text>"), "{svg}");
        assert!(
            svg.contains(">say &quot;hi&quot; &amp; &#39;bye&#39;\u{FFFD}</text>"),
            "{svg}"
        );
        assert!(!svg.contains("a<b>") && !svg.contains('\u{7}'));
    }

    /// A world of `n` clients in the bank (sharing its host) and bob alone in the hospital.
    fn crowded(n: usize) -> WorldSpec {
        use cloudproxy_node::nodes::client::ClientSpec;
        use cloudproxy_sim::policy::Policy;
        use std::time::Duration;
        let mut spec = WorldSpec::new(1, Duration::from_secs(10));
        let bank = spec.enterprise("bank", "10.1.0.10", Policy::seed());
        for i in 0..n {
            let name = format!("c{i}");
            let c = ClientSpec::new(&name, i as u32 + 10, "room", &[], Duration::ZERO);
            spec.enterprises[bank].clients.push(c);
        }
        let h = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
        let bob = ClientSpec::new("bob", 2, "room", &[], Duration::ZERO);
        spec.enterprises[h].clients.push(bob);
        spec
    }

    fn joined(node: &str, t_ms: u64) -> String {
        format!(
            r#"{{"t_us":{},"node":"{node}","event":"join","code":0}}"#,
            t_ms * 1000
        )
    }

    #[test]
    fn every_client_gets_its_lane_up_to_the_cap_and_a_shared_host_its_own() {
        // Two clients in the bank: both drawn; the access point's view of their shared
        // address goes to the bank's host lane, bob's to bob.
        let spec = crowded(2);
        let mut lines: Vec<String> = ["c0", "c1", "bob"].iter().map(|n| joined(n, 100)).collect();
        lines.push(r#"{"t_us":110000,"node":"ap1","event":"ap_request","answered":true,"from":"10.1.0.10:49153","transport":"udp"}"#.into());
        lines.push(r#"{"t_us":111000,"node":"ap1","event":"ap_request","answered":true,"from":"10.2.0.10:49153","transport":"udp"}"#.into());
        let d = diagram(&spec, &lines);
        assert_eq!(
            d.lanes,
            ["c0", "c1", "bank 10.1.0.10", "bob", "ap1", "edge"]
        );
        assert_eq!(d.clients_not_drawn, 0);
        assert_eq!(
            (d.rows[3].from.as_str(), d.rows[4].from.as_str()),
            ("bank 10.1.0.10", "bob")
        );
        // Twelve in the bank: seven of them and bob (the first of his enterprise) are drawn,
        // the other five counted.
        let spec = crowded(12);
        let lines: Vec<String> = (0..12)
            .map(|i| joined(&format!("c{i}"), 100 + i))
            .chain([joined("bob", 200)])
            .collect();
        let d = diagram(&spec, &lines);
        assert_eq!(d.clients_not_drawn, 5);
        assert_eq!(d.rows.len(), MAX_CLIENT_LANES);
        let mut expected: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        expected.push("bob".into());
        assert_eq!(d.lanes[..MAX_CLIENT_LANES], expected[..]);
        let svg = svg(&d.rows, &d.lanes, d.clients_not_drawn);
        assert!(svg.contains(">5 more clients</text>"), "{svg}");
    }
}
