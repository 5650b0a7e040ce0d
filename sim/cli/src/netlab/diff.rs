//! The real run against the simulated run of the same world: per client, joined or not, the
//! signalling path and the media path; per enterprise firewall, the rules each one counted
//! (nftables' per-rule packet counters against the simulation's per-rule verdict counts).
//!
//! Paths must agree. The relay a client ends up on is the access point's random choice among
//! the relays (shuffled per answer: seeded in the simulation, from the OS in `serve`), so two
//! relays agree when the client's policy opens TCP to both; when it opens only one, the client
//! must end up on that one in both runs. Rule counts differ in size (nftables counts packets,
//! the simulation flows and datagrams) and, where the access point's choice differs, in which
//! deny rule a failed attempt hit; the table is the evidence that names the flow where the
//! paths disagree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use cloudproxy_node::nodes::client::ClientReport;
use cloudproxy_sim::net::FirewallCounters;
use cloudproxy_sim::net::RuleHit;
use cloudproxy_sim::policy::{Policy, Proto, Verdict};
use cloudproxy_sim::policy_formats::{rule_comment, rule_part, RulePart};
use cloudproxy_sim::world::{WorldOutcome, WorldSpec};
use serde_json::Value;

use super::addr_map::Mapping;
use super::run::RealOutcome;

/// What the comparison needs of a simulated run: its clients and firewalls (it crosses threads,
/// the run's trace does not).
#[derive(Clone, Debug, Default)]
pub struct SimRun {
    /// Each client's report, by name.
    pub clients: BTreeMap<String, ClientReport>,
    /// Each enterprise's firewall counters, by name.
    pub firewalls: BTreeMap<String, FirewallCounters>,
    /// Set when the simulation itself failed.
    pub error: Option<String>,
}

impl From<WorldOutcome> for SimRun {
    fn from(o: WorldOutcome) -> SimRun {
        SimRun {
            clients: o.clients,
            firewalls: o.firewalls,
            error: o.error,
        }
    }
}

/// How a client signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalling {
    /// It never connected.
    None,
    /// Straight to SD-RTN (the proxy off).
    Direct,
    /// Through the proxy of this type (0, 1, 2), via this relay or SOCKS5 server (the seed's
    /// address).
    Proxy(u8, SocketAddr),
}

impl std::fmt::Display for Signalling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signalling::None => f.write_str("none"),
            Signalling::Direct => f.write_str("direct"),
            Signalling::Proxy(kind, via) => write!(f, "type {kind} via {via}"),
        }
    }
}

/// What one run says of one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Whether it connected.
    pub joined: bool,
    /// Time from join to connected.
    pub join_ms: Option<u64>,
    /// Its signalling path at the end.
    pub signalling: Signalling,
    /// Its media path at the end (`udp`, `tcp`), `none` when it never had one.
    pub media: String,
    /// Media packets received, by sender uid.
    pub heard: BTreeMap<u32, u64>,
    /// Media packets lost.
    pub lost: u64,
    /// Reconnections.
    pub reconnects: u64,
}

impl Facts {
    /// Media packets received from everyone.
    pub fn received(&self) -> u64 {
        self.heard.values().sum()
    }

    /// The simulation's report of a client.
    pub fn of_sim(r: &ClientReport) -> Facts {
        let joined = r.join_time.is_some();
        let signalling = match (joined, r.proxy) {
            (false, _) => Signalling::None,
            (true, Some((kind, via))) => Signalling::Proxy(kind, via),
            (true, None) => Signalling::Direct,
        };
        Facts {
            joined,
            join_ms: r.join_time.map(|t| t.as_millis() as u64),
            signalling,
            media: r
                .media_path
                .map_or("none".to_owned(), |m| format!("{m:?}").to_ascii_lowercase()),
            heard: r.media_from.iter().map(|(u, s)| (*u, s.received)).collect(),
            lost: r.media_lost(),
            reconnects: u64::from(r.reconnects),
        }
    }

    /// A real client's report (`cloudproxy call --json`), its addresses translated back.
    pub fn of_real(json: &Value, mapping: &Mapping) -> Facts {
        let joined = json["joined"].as_bool().unwrap_or(false);
        let via = json["relay"]
            .as_str()
            .and_then(|r| r.parse::<SocketAddr>().ok())
            .map(|a| SocketAddr::new(mapping.to_seed(a.ip()).unwrap_or(a.ip()), a.port()));
        let signalling = match (joined, json["proxy_type"].as_u64(), via) {
            (false, _, _) => Signalling::None,
            (true, Some(kind), Some(via)) => Signalling::Proxy(kind as u8, via),
            (true, _, _) => Signalling::Direct,
        };
        let heard = json["media_from"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(uid, s)| Some((uid.parse().ok()?, s["received"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Facts {
            joined,
            join_ms: json["join_ms"].as_u64(),
            signalling,
            media: json["media_path"]
                .as_str()
                .map_or("none".to_owned(), str::to_ascii_lowercase),
            heard,
            lost: json["media_lost"].as_u64().unwrap_or(0),
            reconnects: json["reconnects"].as_u64().unwrap_or(0),
        }
    }

    /// `type 1 via 120.92.118.34:4000, media udp` or `never joined`.
    pub fn path(&self) -> String {
        if self.joined {
            format!("{}, media {}", self.signalling, self.media)
        } else {
            "never joined".to_owned()
        }
    }
}

/// One client in both runs.
#[derive(Clone, Debug)]
pub struct ClientDiff {
    /// Its name.
    pub name: String,
    /// Its enterprise's name.
    pub enterprise: String,
    /// The simulation's facts.
    pub sim: Facts,
    /// The real run's facts.
    pub real: Facts,
    /// Where they disagree (empty: they agree).
    pub disagreements: Vec<String>,
}

/// One rule of an enterprise's firewall in both runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRow {
    /// The part of the policy.
    pub part: RulePart,
    /// The rule, as the compiled comment names it on the seed's addresses.
    pub rule: String,
    /// Verdicts the simulation counted against it (flows and datagrams).
    pub sim: u64,
    /// Packets nftables counted against it.
    pub real: u64,
}

impl RuleRow {
    /// Whether one run used the rule and the other did not.
    pub fn disagrees(&self) -> bool {
        (self.sim > 0) != (self.real > 0)
    }
}

/// The whole comparison.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Every client.
    pub clients: Vec<ClientDiff>,
    /// Every enterprise's rules, by enterprise name.
    pub rules: BTreeMap<String, Vec<RuleRow>>,
}

impl Comparison {
    /// Whether every client's paths agree.
    pub fn paths_agree(&self) -> bool {
        self.clients.iter().all(|c| c.disagreements.is_empty())
    }

    /// Every disagreement of paths, each naming the client, with the rules where the two
    /// firewalls' counts disagree (the flows that went differently).
    pub fn disagreements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.clients {
            for d in &c.disagreements {
                let mut line = format!("{} ({}): {d}", c.name, c.enterprise);
                let rules: Vec<String> = self
                    .rules
                    .get(&c.enterprise)
                    .into_iter()
                    .flatten()
                    .filter(|r| r.disagrees())
                    .map(|r| {
                        format!(
                            "{}: simulation {}, nftables {} packets",
                            r.rule, r.sim, r.real
                        )
                    })
                    .collect();
                if !rules.is_empty() {
                    let _ = write!(line, "; rules counted differently: {}", rules.join("; "));
                }
                out.push(line);
            }
        }
        out
    }

    /// The per-rule table of every enterprise, for a person.
    pub fn rules_text(&self) -> String {
        let mut t = String::new();
        for (enterprise, rows) in &self.rules {
            let _ = writeln!(
                t,
                "  firewall of {enterprise}: simulation verdicts / nftables packets per rule"
            );
            for r in rows {
                let mark = if r.disagrees() { "  <- differs" } else { "" };
                let _ = writeln!(t, "    {:>7} {:>9}  {}{mark}", r.sim, r.real, r.rule);
            }
        }
        t
    }
}

/// Whether a real relay and a simulated one are the same choice for a client behind `policy`.
fn same_relay(a: SocketAddr, b: SocketAddr, policy: &Policy) -> bool {
    let open = |x: SocketAddr| policy.verdict(Proto::Tcp, x) == Verdict::Pass;
    a == b || (a.port() == b.port() && open(a) && open(b))
}

fn client_diff(
    name: &str,
    enterprise: &str,
    policy: &Policy,
    sim: Facts,
    real: Facts,
) -> ClientDiff {
    let mut d = Vec::new();
    if sim.joined != real.joined {
        d.push(format!(
            "joined: simulation {}, real {}",
            sim.path(),
            real.path()
        ));
    } else if sim.joined {
        let same = match (sim.signalling, real.signalling) {
            (Signalling::Proxy(k1, a), Signalling::Proxy(k2, b)) if k1 == k2 => {
                k1 == 0 && a == b || k1 != 0 && same_relay(a, b, policy)
            }
            (x, y) => x == y,
        };
        if !same {
            d.push(format!(
                "signalling: simulation {}, real {}",
                sim.signalling, real.signalling
            ));
        }
        if sim.media != real.media {
            d.push(format!(
                "media: simulation {}, real {}",
                sim.media, real.media
            ));
        }
    }
    ClientDiff {
        name: name.to_owned(),
        enterprise: enterprise.to_owned(),
        sim,
        real,
        disagreements: d,
    }
}

/// The label of a part of `policy`.
fn label(part: RulePart, policy: &Policy) -> String {
    match part {
        RulePart::Allow(i) => policy
            .rules
            .get(i)
            .map_or(format!("cloudproxy rule {}", i + 1), |r| rule_comment(i, r)),
        RulePart::Default => format!("default {:?}", policy.default).to_ascii_lowercase(),
        RulePart::DnsBlocked => "dns blocked (port 53)".to_owned(),
        RulePart::Inbound => "inbound: not a reply (unsolicited)".to_owned(),
        RulePart::Suggested(i) => format!("suggested rule {}", i + 1),
        RulePart::Frame => "replies".to_owned(),
    }
}

fn rule_rows(
    policy: &Policy,
    sim: &BTreeMap<RuleHit, u64>,
    real: &[(String, u64)],
) -> Vec<RuleRow> {
    let mut rows: BTreeMap<RulePart, (u64, u64)> = BTreeMap::new();
    for i in 0..policy.rules.len() {
        rows.insert(RulePart::Allow(i), (0, 0));
    }
    rows.insert(RulePart::Default, (0, 0));
    for (hit, n) in sim {
        let part = match hit {
            RuleHit::Allow(i) => RulePart::Allow(*i),
            RuleHit::Default => RulePart::Default,
            RuleHit::Unsolicited => RulePart::Inbound,
        };
        rows.entry(part).or_default().0 += n;
    }
    for (comment, n) in real {
        if let Some(part) = rule_part(comment) {
            if part != RulePart::Frame {
                rows.entry(part).or_default().1 += n;
            }
        }
    }
    rows.into_iter()
        .map(|(part, (sim, real))| RuleRow {
            part,
            rule: label(part, policy),
            sim,
            real,
        })
        .collect()
}

/// Compares the real run of `spec` with its simulated run.
pub fn compare(
    spec: &WorldSpec,
    sim: &SimRun,
    real: &RealOutcome,
    mapping: &Mapping,
) -> Comparison {
    let mut out = Comparison::default();
    for (i, e) in spec.enterprises.iter().enumerate() {
        for c in &e.clients {
            let sim_facts = sim
                .clients
                .get(&c.name)
                .map(Facts::of_sim)
                .unwrap_or_else(|| Facts::of_sim(&ClientReport::default()));
            let real_facts = real.clients.get(&c.name).map_or_else(
                || Facts::of_real(&Value::Null, mapping),
                |r| Facts::of_real(&r.json, mapping),
            );
            out.clients.push(client_diff(
                &c.name, &e.name, &e.policy, sim_facts, real_facts,
            ));
        }
        let sim_rules = sim
            .firewalls
            .get(&e.name)
            .map(|f| f.rules.clone())
            .unwrap_or_default();
        let real_rules = real.counters.get(i).cloned().unwrap_or_default();
        out.rules.insert(
            e.name.clone(),
            rule_rows(&e.policy, &sim_rules, &real_rules),
        );
    }
    out
}

/// Who did not hear whom: every joined client must hear every other joined client of its
/// channel.
pub fn unheard(real: &RealOutcome, mapping: &Mapping) -> Vec<String> {
    let facts: Vec<(&str, &super::run::RealClient, Facts)> = real
        .clients
        .iter()
        .map(|(n, c)| (n.as_str(), c, Facts::of_real(&c.json, mapping)))
        .collect();
    let mut missing = Vec::new();
    for (name, client, f) in &facts {
        if !f.joined {
            continue;
        }
        for (other, oc, of) in &facts {
            if other != name
                && of.joined
                && oc.channel == client.channel
                && f.heard.get(&oc.uid).copied().unwrap_or(0) == 0
            {
                missing.push(format!("{name} never heard {other}"));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(joined: bool, sig: Signalling, media: &str) -> Facts {
        Facts {
            joined,
            join_ms: joined.then_some(10),
            signalling: sig,
            media: media.to_owned(),
            heard: BTreeMap::new(),
            lost: 0,
            reconnects: 0,
        }
    }

    fn relay(a: &str) -> SocketAddr {
        format!("{a}:4000").parse().unwrap()
    }

    #[test]
    fn relays_the_policy_opens_both_are_the_same_choice() {
        let r1 = Signalling::Proxy(1, relay("120.92.118.34"));
        let r2 = Signalling::Proxy(1, relay("120.92.18.162"));
        let seed = Policy::seed();
        let d = client_diff(
            "a",
            "bank",
            &seed,
            facts(true, r1, "udp"),
            facts(true, r2, "udp"),
        );
        assert!(d.disagreements.is_empty(), "{d:?}");
        let mut one = Policy::seed();
        one.rules[0].to.truncate(1);
        let d = client_diff(
            "a",
            "bank",
            &one,
            facts(true, r1, "udp"),
            facts(true, r2, "udp"),
        );
        assert_eq!(d.disagreements.len(), 1, "{d:?}");
        let d = client_diff(
            "a",
            "bank",
            &seed,
            facts(true, r1, "udp"),
            facts(true, r1, "tcp"),
        );
        assert_eq!(d.disagreements, ["media: simulation udp, real tcp"]);
        let d = client_diff(
            "a",
            "bank",
            &seed,
            facts(true, r1, "udp"),
            facts(false, Signalling::None, "none"),
        );
        assert_eq!(d.disagreements.len(), 1);
        assert!(d.disagreements[0].starts_with(
            "joined: simulation type 1 via 120.92.118.34:4000, media udp, real never joined"
        ));
    }

    #[test]
    fn rule_rows_join_both_counts_and_name_the_rules_that_differ() {
        let seed = Policy::seed();
        let sim: BTreeMap<RuleHit, u64> = [(RuleHit::Allow(0), 2), (RuleHit::Allow(3), 500)].into();
        let real = vec![
            ("cloudproxy replies".to_owned(), 9),
            (
                "cloudproxy rule 1: tcp to 198.18.2.1 ports 4000".to_owned(),
                1,
            ),
            (
                "cloudproxy rule 4: udp to 198.18.2.1 ports 4500-4650".to_owned(),
                0,
            ),
            ("cloudproxy default drop".to_owned(), 3),
        ];
        let rows = rule_rows(&seed, &sim, &real);
        let differ: Vec<&str> = rows
            .iter()
            .filter(|r| r.disagrees())
            .map(|r| r.rule.as_str())
            .collect();
        assert_eq!(differ.len(), 2, "{rows:?}");
        assert!(
            differ[0].starts_with("cloudproxy rule 4: udp to 120.92.118.34"),
            "{differ:?}"
        );
        assert_eq!(differ[1], "default drop");
        assert_eq!(rows.len(), 5);
    }
}
