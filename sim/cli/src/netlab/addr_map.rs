//! The seed's addresses on the lab's test range: the seed's public addresses are never
//! configured anywhere; every host of the simulated world gets an address in 198.18.0.0/15
//! (RFC 2544's benchmarking range, which exists only inside the lab's namespaces), and the
//! policy, the setParameters texts and the reports are translated through this table.
//!
//! | seed (simulation) | lab | what |
//! |---|---|---|
//! | 47.74.211.17, 52.80.192.229, 52.52.84.170, 47.96.234.219 | 198.18.1.1 - 198.18.1.4 | access points |
//! | 120.92.118.34, 120.92.18.162 | 198.18.2.1, 198.18.2.2 | relays |
//! | 101.36.1.10 (block 101.36.0.0/16) | 198.18.3.10 (block 198.18.3.0/24) | SD-RTN edge |
//! | enterprise k's clients (10.k.0.10) | 198.19.k.10 | SDK clients |
//! | enterprise k's SOCKS5 server | 198.19.k.2 | SOCKS5 server |
//! | - | 198.19.k.1, 198.18.0.(10+k) | enterprise k's gateway (inside, outside) |
//! | - | 198.19.k.53 | enterprise k's resolver |

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use cloudproxy_core::relay::Cidr;
use cloudproxy_sim::policy::{Policy, Rule};
use cloudproxy_sim::world::{AP_IPS, EDGE_IP, RELAY_IPS, SDRTN_BLOCK};

/// The test range the lab owns: 198.18.0.0/15.
pub const TEST_RANGE: &str = "198.18.0.0/15";
/// The outside segment (the bridge every gateway, the cloud proxy and SD-RTN sit on).
pub const OUTSIDE_PREFIX: u8 = 16;
/// The lab's SD-RTN edge.
pub const EDGE: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 10);
/// The lab's SD-RTN block (what the relays may reach).
pub const SDRTN: &str = "198.18.3.0/24";
/// The most enterprises a lab holds (one `198.19.k.0/24` each).
pub const MAX_ENTERPRISES: usize = 200;

/// Access point `i` (0-based).
pub fn ap(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, (i + 1) as u8)
}

/// Relay `i` (0-based).
pub fn relay(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, (i + 1) as u8)
}

/// Enterprise `k`'s (1-based) gateway on the outside segment.
pub fn gateway_outside(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, (10 + k) as u8)
}

/// Host `host` of enterprise `k`'s network, `198.19.k.host`.
pub fn inside(k: usize, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, k as u8, host)
}

/// Enterprise `k`'s gateway on the inside.
pub fn gateway_inside(k: usize) -> Ipv4Addr {
    inside(k, 1)
}

/// Enterprise `k`'s clients.
pub fn clients(k: usize) -> Ipv4Addr {
    inside(k, 10)
}

/// Enterprise `k`'s SOCKS5 server.
pub fn socks(k: usize) -> Ipv4Addr {
    inside(k, 2)
}

/// Enterprise `k`'s resolver.
pub fn resolver(k: usize) -> Ipv4Addr {
    inside(k, 53)
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The seed's (simulated) address, when the host exists in the simulation.
    pub seed: Option<IpAddr>,
    /// Its address in the lab.
    pub lab: Ipv4Addr,
    /// What it is.
    pub what: String,
}

/// The seed's addresses and their lab addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    entries: Vec<Entry>,
}

/// What the table needs to know of an enterprise.
#[derive(Clone, Debug)]
pub struct EnterpriseAddrs {
    /// Its name.
    pub name: String,
    /// Its clients' address in the simulation.
    pub clients: IpAddr,
    /// Its SOCKS5 server's address in the simulation, if any.
    pub socks: Option<IpAddr>,
}

impl Mapping {
    /// The table for the cloud proxy, SD-RTN and `enterprises` (enterprise `k` is
    /// `enterprises[k - 1]`).
    pub fn new(enterprises: &[EnterpriseAddrs]) -> Mapping {
        let ip = cloudproxy_sim::world::ip;
        let mut entries = Vec::new();
        for (i, a) in AP_IPS.iter().enumerate() {
            entries.push(Entry {
                seed: Some(ip(a)),
                lab: ap(i),
                what: format!(
                    "access point {} (udp and tcp 1080, 8000, 25000, 9700)",
                    i + 1
                ),
            });
        }
        for (i, a) in RELAY_IPS.iter().enumerate() {
            entries.push(Entry {
                seed: Some(ip(a)),
                lab: relay(i),
                what: format!("relay {} (tcp 4000, udp 4500-4650)", i + 1),
            });
        }
        entries.push(Entry {
            seed: Some(ip(EDGE_IP)),
            lab: EDGE,
            what: format!(
                "SD-RTN edge (tcp 5000, udp 5001, tcp 5002); block {SDRTN_BLOCK} is {SDRTN}"
            ),
        });
        for (i, e) in enterprises.iter().enumerate() {
            let k = i + 1;
            entries.push(Entry {
                seed: Some(e.clients),
                lab: clients(k),
                what: format!("{}: SDK clients", e.name),
            });
            if let Some(s) = e.socks {
                entries.push(Entry {
                    seed: Some(s),
                    lab: socks(k),
                    what: format!("{}: SOCKS5 server (on the gateway)", e.name),
                });
            }
            entries.push(Entry {
                seed: None,
                lab: resolver(k),
                what: format!("{}: resolver (udp 53)", e.name),
            });
            entries.push(Entry {
                seed: None,
                lab: gateway_inside(k),
                what: format!(
                    "{}: gateway, the firewall (outside {})",
                    e.name,
                    gateway_outside(k)
                ),
            });
        }
        Mapping { entries }
    }

    /// Every line.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The lab address of a seed address.
    pub fn to_lab(&self, seed: IpAddr) -> Option<IpAddr> {
        self.entries
            .iter()
            .find(|e| e.seed == Some(seed))
            .map(|e| IpAddr::V4(e.lab))
    }

    /// The seed address of a lab address.
    pub fn to_seed(&self, lab: IpAddr) -> Option<IpAddr> {
        self.entries
            .iter()
            .find(|e| IpAddr::V4(e.lab) == lab)
            .and_then(|e| e.seed)
    }

    /// A block of the policy in the lab: every address of every family stays so (the whole
    /// lab); any other block becomes the lab addresses of the seed hosts inside it (the only
    /// hosts that exist, in the simulation and in the lab alike), possibly none.
    pub fn block(&self, block: &Cidr) -> Vec<Cidr> {
        if block.prefix_len() == 0 {
            return vec![*block];
        }
        let mut out: Vec<Cidr> = Vec::new();
        for e in &self.entries {
            if let Some(seed) = e.seed {
                let host = Cidr::host(IpAddr::V4(e.lab));
                if block.contains(seed) && !out.contains(&host) {
                    out.push(host);
                }
            }
        }
        out
    }

    /// The policy with every block translated ([`Mapping::block`]); rules keep their order
    /// (a rule that covers no host keeps its place with no destination, so rule N is rule N in
    /// both).
    pub fn policy(&self, policy: &Policy) -> Policy {
        Policy {
            default: policy.default,
            dns: policy.dns,
            rules: policy
                .rules
                .iter()
                .map(|r| Rule {
                    proto: r.proto,
                    to: r.to.iter().flat_map(|b| self.block(b)).collect(),
                    ports: r.ports.clone(),
                })
                .collect(),
        }
    }

    /// `text` (a setParameters JSON text) with every seed IPv4 address written in it replaced
    /// by its lab address; other text unchanged.
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let run = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if run == 0 {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let word = &rest[..run];
            match word
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(|a| self.to_lab(IpAddr::V4(a)))
            {
                Some(lab) => out.push_str(&lab.to_string()),
                None => out.push_str(word),
            }
            rest = &rest[run..];
        }
        out
    }

    /// The table for a person.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{:<16} {:<14} what", "seed address", "lab address");
        for e in &self.entries {
            let seed = e.seed.map_or("-".to_owned(), |s| s.to_string());
            let _ = writeln!(t, "{seed:<16} {:<14} {}", e.lab.to_string(), e.what);
        }
        t
    }

    /// The table as JSON: `[{"seed": "...", "lab": "...", "what": "..."}]`.
    pub fn to_json(&self) -> serde_json::Value {
        self.entries
            .iter()
            .map(|e| serde_json::json!({"seed": e.seed.map(|s| s.to_string()), "lab": e.lab.to_string(), "what": e.what}))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Mapping {
        let ip = cloudproxy_sim::world::ip;
        Mapping::new(&[
            EnterpriseAddrs {
                name: "bank".into(),
                clients: ip("10.1.0.10"),
                socks: Some(ip("10.1.0.2")),
            },
            EnterpriseAddrs {
                name: "hospital".into(),
                clients: ip("10.2.0.10"),
                socks: None,
            },
        ])
    }

    #[test]
    fn every_lab_address_is_in_the_test_range_and_appears_once() {
        let range: Cidr = TEST_RANGE.parse().unwrap();
        let m = two();
        let mut seen = std::collections::BTreeSet::new();
        for e in m.entries() {
            assert!(range.contains(IpAddr::V4(e.lab)), "{e:?}");
            assert!(seen.insert(e.lab), "{e:?} twice");
            if let Some(seed) = e.seed {
                assert_eq!(m.to_seed(IpAddr::V4(e.lab)), Some(seed));
                assert_eq!(m.to_lab(seed), Some(IpAddr::V4(e.lab)));
            }
        }
        let sdrtn: Cidr = SDRTN.parse().unwrap();
        assert!(sdrtn.contains(IpAddr::V4(EDGE)));
        assert!(range.contains_block(&sdrtn));
        assert!(m
            .to_text()
            .contains("120.92.118.34    198.18.2.1     relay 1"));
    }

    #[test]
    fn the_policy_keeps_its_rules_and_names_the_lab_hosts() {
        let m = two();
        let lab = m.policy(&Policy::seed());
        assert_eq!(lab.rules.len(), 4);
        assert_eq!(lab.default, Policy::seed().default);
        let hosts = |r: &Rule| r.to.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(hosts(&lab.rules[0]), ["198.18.2.1/32", "198.18.2.2/32"]);
        assert_eq!(
            hosts(&lab.rules[1]),
            [
                "198.18.1.1/32",
                "198.18.1.2/32",
                "198.18.1.3/32",
                "198.18.1.4/32"
            ]
        );
        assert_eq!(lab.rules[3].ports, Policy::seed().rules[3].ports);
        // Blocks: everything stays everything; a block holds the hosts inside it; a block with
        // no host keeps its rule, empty.
        let policy: Policy = "default = \"drop\"\n[[allow]]\nproto = \"udp\"\nto = [\"0.0.0.0/0\"]\nports = [\"1-65535\"]\n[[allow]]\nproto = \"tcp\"\nto = [\"10.0.0.0/8\", \"120.92.0.0/16\"]\nports = [\"1080\"]\n[[allow]]\nproto = \"tcp\"\nto = [\"8.8.8.0/24\"]\nports = [\"53\"]".parse().unwrap();
        let lab = m.policy(&policy);
        assert_eq!(hosts(&lab.rules[0]), ["0.0.0.0/0"]);
        assert_eq!(
            hosts(&lab.rules[1]),
            [
                "198.19.1.10/32",
                "198.19.1.2/32",
                "198.19.2.10/32",
                "198.18.2.1/32",
                "198.18.2.2/32"
            ]
        );
        assert!(lab.rules[2].to.is_empty());
    }

    #[test]
    fn parameters_name_the_lab_addresses() {
        let m = two();
        let list = r#"{"rtc.proxy_server":[2,"[\"47.74.211.17\",\"52.80.192.229\"]",0]}"#;
        assert_eq!(
            m.text(list),
            r#"{"rtc.proxy_server":[2,"[\"198.18.1.1\",\"198.18.1.2\"]",0]}"#
        );
        assert_eq!(
            m.text(r#"{"rtc.proxy_server":[0,"10.1.0.2",1080]}"#),
            r#"{"rtc.proxy_server":[0,"198.19.1.2",1080]}"#
        );
        // Not an address of the world, or not an address: unchanged (ports, versions, é).
        for same in [
            r#"{"rtc.enable_proxy":true}"#,
            "1.2.3.4 47.74.211.170 1.2 é 47.74.211.17.",
        ] {
            assert_eq!(m.text(same), same);
        }
    }
}
