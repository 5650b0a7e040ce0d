//! Enterprise firewall policies: rules as data, default deny, and the verdict for a flow.
//!
//! A policy file is TOML:
//!
//! ```toml
//! default = "drop"        # "drop" (silent), "reject" (refused at once) or "pass" (no firewall)
//! dns = "public"          # or "blocked": the enterprise resolver refuses external names
//! [[allow]]
//! proto = "udp"           # "tcp" or "udp"
//! to = ["120.92.118.34", "120.92.18.162"]   # addresses or CIDR blocks
//! ports = ["4500-4650"]   # ports or ranges
//! ```
//!
//! Rules only open outbound flows from the enterprise; replies on an allowed flow pass (the
//! firewall is stateful). The named presets are the enterprises of the tests and the
//! scenarios: [`Policy::seed`] (the seed document's whitelist: the strict enterprise),
//! [`Policy::udp_blocked`], [`Policy::dns_blocked`], [`Policy::only_host`] and
//! [`Policy::open`]. They are built from [`crate::seed`]'s addresses; the same whitelist ships
//! as a file for users, `sim/policies/seed.toml`, checked equal to [`Policy::seed`] by the
//! simulation's tests.
//!
//! ```
//! use cloudproxy_testkit::policy::{Policy, Proto, Verdict};
//!
//! let policy = Policy::seed();
//! assert_eq!(policy.verdict(Proto::Tcp, "120.92.118.34:4000".parse().unwrap()), Verdict::Pass);
//! assert_eq!(policy.verdict(Proto::Tcp, "8.8.8.8:53".parse().unwrap()), Verdict::Drop);
//! let text = "default = \"reject\"\n[[allow]]\nproto = \"tcp\"\nto = [\"10.0.0.0/8\"]\nports = [\"80\"]";
//! let parsed: Policy = text.parse().unwrap();
//! assert_eq!(parsed.verdict(Proto::Udp, "10.1.1.1:80".parse().unwrap()), Verdict::Reject);
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use cloudproxy_core::relay::Cidr;
use serde::Deserialize;

use crate::seed::{self, AP_PORTS, RELAY_TCP_PORT, RELAY_UDP_PORTS};

/// A transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// What the firewall does with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Discard silently: a TCP connect hangs until the client gives up, UDP vanishes.
    Drop,
    /// Refuse at once: a TCP connect fails immediately (UDP still vanishes).
    Reject,
}

/// How the enterprise resolver treats external names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsPolicy {
    /// External names resolve.
    #[default]
    Public,
    /// External names are refused (why the SDK's type 2 exists).
    Blocked,
}

/// One allow rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The protocol it opens.
    pub proto: Proto,
    /// The destination blocks.
    pub to: Vec<Cidr>,
    /// The destination ports.
    pub ports: Vec<RangeInclusive<u16>>,
}

impl Rule {
    /// Whether the rule opens `proto` to `dst`.
    pub fn matches(&self, proto: Proto, dst: SocketAddr) -> bool {
        self.proto == proto
            && self.to.iter().any(|c| c.contains(dst.ip()))
            && self.ports.iter().any(|p| p.contains(&dst.port()))
    }
}

/// A firewall policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The verdict for flows no rule allows.
    pub default: Verdict,
    /// The resolver's stance.
    pub dns: DnsPolicy,
    /// The allow rules.
    pub rules: Vec<Rule>,
}

/// Why a policy file was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The TOML is malformed or has unknown keys.
    #[error("policy: {0}")]
    Toml(#[from] toml::de::Error),
    /// An address or block in `to` is invalid.
    #[error("policy: allow rule {rule}: `to` entry {entry:?} is not an IP address or CIDR block")]
    BadAddress {
        /// 1-based index of the rule.
        rule: usize,
        /// The entry.
        entry: String,
    },
    /// A port or range in `ports` is invalid.
    #[error("policy: allow rule {rule}: `ports` entry {entry:?} is not a port (1-65535) or a range like \"4500-4650\"")]
    BadPorts {
        /// 1-based index of the rule.
        rule: usize,
        /// The entry.
        entry: String,
    },
    /// A rule allows nothing.
    #[error("policy: allow rule {rule}: `{field}` is empty")]
    Empty {
        /// 1-based index of the rule.
        rule: usize,
        /// The empty field.
        field: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default: Verdict,
    #[serde(default)]
    dns: DnsPolicy,
    #[serde(default)]
    allow: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    proto: Proto,
    to: Vec<String>,
    ports: Vec<String>,
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        let mut rules = Vec::with_capacity(file.allow.len());
        for (index, rule) in file.allow.into_iter().enumerate() {
            let n = index + 1;
            if rule.to.is_empty() {
                return Err(PolicyError::Empty {
                    rule: n,
                    field: "to",
                });
            }
            if rule.ports.is_empty() {
                return Err(PolicyError::Empty {
                    rule: n,
                    field: "ports",
                });
            }
            let to = rule
                .to
                .iter()
                .map(|entry| {
                    entry.parse::<Cidr>().map_err(|_| PolicyError::BadAddress {
                        rule: n,
                        entry: entry.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ports = rule
                .ports
                .iter()
                .map(|entry| {
                    parse_ports(entry).ok_or_else(|| PolicyError::BadPorts {
                        rule: n,
                        entry: entry.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                proto: rule.proto,
                to,
                ports,
            });
        }
        Ok(Policy {
            default: file.default,
            dns: file.dns,
            rules,
        })
    }
}

fn parse_ports(text: &str) -> Option<RangeInclusive<u16>> {
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (
            lo.trim().parse::<u16>().ok()?,
            hi.trim().parse::<u16>().ok()?,
        ),
        None => {
            let p = text.trim().parse::<u16>().ok()?;
            (p, p)
        }
    };
    (lo >= 1 && lo <= hi).then_some(lo..=hi)
}

impl Policy {
    /// The seed document's whitelist, the strict enterprise and the default policy: TCP 4000
    /// and UDP 4500-4650 to the relays, TCP and UDP on the four AP ports to the access points,
    /// everything else dropped; external names resolve.
    pub fn seed() -> Policy {
        let hosts = |ips: Vec<std::net::IpAddr>| ips.into_iter().map(Cidr::host).collect();
        let relays: Vec<Cidr> = hosts(seed::relay_ips());
        let aps: Vec<Cidr> = hosts(seed::ap_ips());
        let ap_ports: Vec<RangeInclusive<u16>> = AP_PORTS.iter().map(|p| *p..=*p).collect();
        let rule = |proto, to: &Vec<Cidr>, ports| Rule {
            proto,
            to: to.clone(),
            ports,
        };
        Policy {
            default: Verdict::Drop,
            dns: DnsPolicy::Public,
            rules: vec![
                rule(Proto::Tcp, &relays, vec![RELAY_TCP_PORT..=RELAY_TCP_PORT]),
                rule(Proto::Tcp, &aps, ap_ports.clone()),
                rule(Proto::Udp, &aps, ap_ports),
                rule(Proto::Udp, &relays, vec![RELAY_UDP_PORTS]),
            ],
        }
    }

    /// No firewall at all.
    pub fn open() -> Policy {
        Policy {
            default: Verdict::Pass,
            dns: DnsPolicy::Public,
            rules: Vec::new(),
        }
    }

    /// The seed whitelist without its UDP rules: media has to fall back to TCP.
    pub fn udp_blocked() -> Policy {
        let mut policy = Policy::seed();
        policy.rules.retain(|r| r.proto == Proto::Tcp);
        policy
    }

    /// [`Policy::udp_blocked`], by the name the scenario catalogue first gave it.
    pub fn seed_tcp_only() -> Policy {
        Policy::udp_blocked()
    }

    /// The seed whitelist behind a resolver that refuses external names: the access point's
    /// domain does not resolve (why the SDK's type 2, a list of addresses, exists).
    pub fn dns_blocked() -> Policy {
        Policy {
            dns: DnsPolicy::Blocked,
            ..Policy::seed()
        }
    }

    /// Only one host is reachable, on any port, and external names do not resolve (an
    /// enterprise whose SOCKS5 server is the only way out). Refused at once otherwise.
    pub fn only_host(ip: std::net::IpAddr) -> Policy {
        let to = vec![Cidr::host(ip)];
        Policy {
            default: Verdict::Reject,
            dns: DnsPolicy::Blocked,
            rules: [Proto::Tcp, Proto::Udp]
                .into_iter()
                .map(|proto| Rule {
                    proto,
                    to: to.clone(),
                    ports: vec![1..=65535],
                })
                .collect(),
        }
    }

    /// Only TCP to one host, on every port, and rejected otherwise (an enterprise whose one
    /// way out is its HTTP proxy): no UDP at all; the resolver answers.
    pub fn only_tcp_to(ip: std::net::IpAddr) -> Policy {
        Policy {
            default: Verdict::Reject,
            dns: DnsPolicy::Public,
            rules: vec![Rule {
                proto: Proto::Tcp,
                to: vec![Cidr::host(ip)],
                ports: vec![1..=65535],
            }],
        }
    }

    /// A bank's: only TCP 443 to the access points and the relays, silently dropping the rest.
    pub fn tcp_443_only() -> Policy {
        let to = seed::ap_ips()
            .into_iter()
            .chain(seed::relay_ips())
            .map(Cidr::host)
            .collect();
        Policy {
            default: Verdict::Drop,
            dns: DnsPolicy::Public,
            rules: vec![Rule {
                proto: Proto::Tcp,
                to,
                ports: vec![443..=443],
            }],
        }
    }

    /// The verdict for a new outbound flow.
    pub fn verdict(&self, proto: Proto, dst: SocketAddr) -> Verdict {
        if self.rules.iter().any(|r| r.matches(proto, dst)) {
            Verdict::Pass
        } else {
            self.default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn seed_policy_allows_exactly_the_whitelist() {
        let policy = Policy::seed();
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("120.92.118.34:4000")),
            Verdict::Pass
        );
        assert_eq!(
            policy.verdict(Proto::Udp, addr("120.92.18.162:4650")),
            Verdict::Pass
        );
        assert_eq!(
            policy.verdict(Proto::Udp, addr("120.92.18.162:4651")),
            Verdict::Drop
        );
        assert_eq!(
            policy.verdict(Proto::Udp, addr("120.92.18.162:4000")),
            Verdict::Drop
        );
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("47.96.234.219:25000")),
            Verdict::Pass
        );
        assert_eq!(
            policy.verdict(Proto::Udp, addr("52.52.84.170:9700")),
            Verdict::Pass
        );
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("52.52.84.170:443")),
            Verdict::Drop
        );
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("8.8.8.8:53")),
            Verdict::Drop
        );
        assert_eq!(policy.dns, DnsPolicy::Public);
    }

    #[test]
    fn cidr_blocks_ranges_and_reject() {
        let policy: Policy = r#"
            default = "reject"
            dns = "blocked"
            [[allow]]
            proto = "tcp"
            to = ["10.0.0.0/8"]
            ports = ["80", "8000-8080"]
        "#
        .parse()
        .unwrap();
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("10.9.9.9:8042")),
            Verdict::Pass
        );
        assert_eq!(
            policy.verdict(Proto::Tcp, addr("11.0.0.1:80")),
            Verdict::Reject
        );
        assert_eq!(
            policy.verdict(Proto::Udp, addr("10.0.0.1:80")),
            Verdict::Reject
        );
        assert_eq!(policy.dns, DnsPolicy::Blocked);
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let cases = [
            ("default = \"maybe\"", "unknown variant"),
            ("default = \"drop\"\nfirewall = 1", "unknown field"),
            ("default = \"drop\"\n[[allow]]\nproto = \"icmp\"\nto = [\"1.1.1.1\"]\nports = [\"1\"]", "unknown variant"),
            ("default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = [\"1.1.1\"]\nports = [\"1\"]", "`to` entry \"1.1.1\""),
            ("default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = [\"1.1.1.1\"]\nports = [\"9-2\"]", "`ports` entry \"9-2\""),
            ("default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = [\"1.1.1.1\"]\nports = [\"0\"]", "`ports` entry \"0\""),
            ("default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = []\nports = [\"1\"]", "`to` is empty"),
        ];
        for (text, expected) in cases {
            let err = text.parse::<Policy>().unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn the_presets_differ_from_the_seed_where_their_names_say() {
        let relay_media = addr("120.92.118.34:4500");
        let relay_tcp = addr("120.92.118.34:4000");
        assert_eq!(
            Policy::udp_blocked().verdict(Proto::Udp, relay_media),
            Verdict::Drop
        );
        assert_eq!(
            Policy::udp_blocked().verdict(Proto::Tcp, relay_tcp),
            Verdict::Pass
        );
        assert_eq!(Policy::seed_tcp_only(), Policy::udp_blocked());
        let dns = Policy::dns_blocked();
        assert_eq!(
            (dns.dns, dns.rules),
            (DnsPolicy::Blocked, Policy::seed().rules)
        );
        let only = Policy::only_host(crate::seed::ip("10.1.0.2"));
        assert_eq!(
            only.verdict(Proto::Udp, addr("10.1.0.2:1080")),
            Verdict::Pass
        );
        assert_eq!(only.verdict(Proto::Tcp, relay_tcp), Verdict::Reject);
        assert_eq!(
            Policy::open().verdict(Proto::Udp, addr("8.8.8.8:53")),
            Verdict::Pass
        );
    }
}
