//! The flow-level model of what a client tries, read from its configuration and the policy
//! alone: which access points and ports in which order, which relays the access point may hand
//! out, which ports are chosen at run time, and which of those flows the policy opens. The
//! simulation runs confirm each path end to end; this model says which paths exist, which runs
//! explore them (the worst case of every choice made at run time), and which rules are missing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_core::params::{ProxyHost, ProxyServer};
use cloudproxy_core::relay::Cidr;
use cloudproxy_core::wire::{
    AP_PORTS, AP_TLS_PORT, RELAY_TCP_PORT, RELAY_TLS_PORT, RELAY_UDP_PORTS,
};

use crate::policy::{DnsPolicy, Policy, Proto, Rule, Verdict};
use crate::world::{edge_endpoints, ip, AP_DOMAIN, AP_IPS, RELAY_IPS};

/// The ports a Linux host binds an ephemeral socket to (`net.ipv4.ip_local_port_range`, by
/// default): where dante's UDP relay sockets land when its `udp.portrange` is not set.
pub const LINUX_EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// How the client reaches SD-RTN, as its configuration says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The proxy is off: straight to the SD-RTN edge.
    Direct,
    /// Type 0: an enterprise SOCKS5 server.
    Socks {
        /// The server.
        server: SocketAddr,
        /// Whether the world can put a SOCKS5 server there (an enterprise address).
        simulated: bool,
        /// The ports its UDP relay sockets are bound to, chosen per association at run time.
        udp_ports: RangeInclusive<u16>,
        /// Whether the administrator said so (`--socks-udp-ports`), or it is the OS default.
        udp_ports_stated: bool,
    },
    /// Types 1 and 2: the cloud proxy.
    Cloud {
        /// Type 1: the name resolved first.
        domain: Option<String>,
        /// The access points' addresses, in the order the client tries them (type 1: the
        /// world's answer for the name).
        aps: Vec<IpAddr>,
        /// The access-point port: 0 for the default ports.
        port: u16,
        /// **Beyond the seed**: `setCloudProxy(force TCP)`: TCP 443 only, to the access points
        /// and the relays, no UDP.
        tcp_443: bool,
    },
    /// **Beyond the seed**, type 3: an enterprise HTTP proxy (`CONNECT`), TCP only.
    Http {
        /// The proxy as configured (`10.1.0.8:3128`, `proxy.corp:3128`).
        shown: String,
        /// Its address, when configured by IP (the check resolves no proxy names).
        proxy: Option<SocketAddr>,
        /// Whether the world can put an HTTP proxy there (an enterprise address).
        simulated: bool,
        /// The Basic credentials configured: the simulated proxy asks for exactly these.
        credentials: Option<BasicCredentials>,
    },
}

impl Route {
    /// The route of the server the engine takes at join (`None`: the proxy is off).
    pub(crate) fn new(
        server: Option<&ProxyServer>,
        simulated_socks: impl Fn(SocketAddr) -> bool,
        socks_udp_ports: Option<RangeInclusive<u16>>,
    ) -> Result<Route, super::CheckError> {
        Ok(match server {
            None => Route::Direct,
            Some(ProxyServer::Socks5(addr)) => Route::Socks {
                server: *addr,
                simulated: simulated_socks(*addr),
                udp_ports_stated: socks_udp_ports.is_some(),
                udp_ports: socks_udp_ports.unwrap_or(LINUX_EPHEMERAL_PORTS),
            },
            Some(ProxyServer::CloudDomain { domain, port }) => Route::Cloud {
                domain: Some(domain.clone()),
                aps: if domain.eq_ignore_ascii_case(AP_DOMAIN) {
                    AP_IPS.iter().map(|a| ip(a)).collect()
                } else {
                    Vec::new()
                },
                port: *port,
                tcp_443: false,
            },
            Some(ProxyServer::CloudIpList { ips, port }) => Route::Cloud {
                domain: None,
                aps: ips.clone(),
                port: *port,
                tcp_443: false,
            },
            Some(ProxyServer::HttpConnect {
                host,
                port,
                credentials,
            }) => {
                let proxy = match host {
                    ProxyHost::Ip(ip) => Some(SocketAddr::new(*ip, *port)),
                    ProxyHost::Domain(_) => None,
                };
                Route::Http {
                    shown: format!("{host}:{port}"),
                    simulated: proxy.is_some_and(&simulated_socks),
                    proxy,
                    credentials: credentials.clone(),
                }
            }
        })
    }

    /// The route over TCP 443 only (`setCloudProxy(force TCP)`): the cloud route's; any other
    /// is returned as it is.
    pub(crate) fn force_tcp(self) -> Route {
        match self {
            Route::Cloud {
                domain, aps, port, ..
            } => Route::Cloud {
                domain,
                aps,
                port,
                tcp_443: true,
            },
            other => other,
        }
    }

    /// Whether the route is the cloud proxy over TCP 443 only.
    pub(crate) fn tcp_443(&self) -> bool {
        matches!(self, Route::Cloud { tcp_443: true, .. })
    }

    /// The relays' TCP port on this route (443 for force TCP).
    pub(crate) fn relay_tcp_port(&self) -> u16 {
        if self.tcp_443() {
            RELAY_TLS_PORT
        } else {
            RELAY_TCP_PORT
        }
    }

    /// Whether the route resolves a name first.
    pub(crate) fn resolves(&self) -> bool {
        matches!(
            self,
            Route::Cloud {
                domain: Some(_),
                ..
            }
        )
    }

    /// The access-point ports the client tries, in order.
    fn ap_ports(&self) -> Vec<u16> {
        match self {
            Route::Cloud { tcp_443: true, .. } => vec![AP_TLS_PORT],
            Route::Cloud { port: 0, .. } => AP_PORTS.to_vec(),
            Route::Cloud { port, .. } => vec![*port],
            _ => Vec::new(),
        }
    }

    /// The client's access-point addresses that are access points of the world, in order.
    pub(crate) fn known_aps(&self) -> Vec<IpAddr> {
        match self {
            Route::Cloud { aps, .. } => aps
                .iter()
                .copied()
                .filter(|a| AP_IPS.iter().any(|k| ip(k) == *a))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The client's access-point addresses where the world has no access point.
    pub(crate) fn unknown_aps(&self) -> Vec<IpAddr> {
        match self {
            Route::Cloud { aps, .. } => aps
                .iter()
                .copied()
                .filter(|a| !AP_IPS.iter().any(|k| ip(k) == *a))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The relays of the world, in the documented order.
pub(crate) fn relays() -> Vec<IpAddr> {
    RELAY_IPS.iter().map(|a| ip(a)).collect()
}

/// One way the client can be handed its path: what one run pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The relay the access point lists first (the others follow in the documented order);
    /// `None` off the cloud route, or when the client never gets that far.
    pub relay_first: Option<IpAddr>,
    /// How the enterprise resolver answers external names in this case.
    pub dns: DnsPolicy,
}

impl Case {
    /// `relay 120.92.118.34 handed first`, `resolver refuses external names`, ...
    pub fn label(&self, route_resolves: bool, both_dns: bool) -> String {
        let mut parts = Vec::new();
        if let Some(relay) = self.relay_first {
            parts.push(format!("relay {relay} handed first"));
        }
        if route_resolves && both_dns {
            parts.push(match self.dns {
                DnsPolicy::Public => "resolver answers".to_owned(),
                DnsPolicy::Blocked => "resolver refuses external names".to_owned(),
            });
        }
        if parts.is_empty() {
            "the one path".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// The relays in the order the access point lists them in this case.
    pub(crate) fn relay_order(&self) -> Option<Vec<IpAddr>> {
        let first = self.relay_first?;
        let mut order = vec![first];
        order.extend(relays().into_iter().filter(|r| *r != first));
        Some(order)
    }
}

/// Every path the client can be handed behind `policy`: each relay first (cloud), each
/// resolver outcome the policy leaves open (type 1 when `dns_stated` is false).
pub(crate) fn cases(route: &Route, policy: &Policy, dns_stated: bool) -> Vec<Case> {
    let outcomes = if route.resolves() && !dns_stated {
        vec![DnsPolicy::Public, DnsPolicy::Blocked]
    } else {
        vec![policy.dns]
    };
    let mut cases = Vec::new();
    for dns in outcomes {
        // A refused name, or no access point, ends the path before any relay is handed out:
        // one case is enough.
        let reaches_relays = matches!(route, Route::Cloud { .. })
            && !route.known_aps().is_empty()
            && !(route.resolves() && dns == DnsPolicy::Blocked);
        if reaches_relays {
            cases.extend(relays().into_iter().map(|r| Case {
                relay_first: Some(r),
                dns,
            }));
        } else {
            cases.push(Case {
                relay_first: None,
                dns,
            });
        }
    }
    cases
}

/// When the client should join on `case` behind `policy`, from the client's timers alone: a
/// dropped access-point attempt costs its 1 s timer, a dropped relay connect its 5 s one, a
/// refused one nothing. `None` when the policy leaves no way through. A run lasts this plus
/// the time media takes, and is run again at full length when the client did not make it.
pub(crate) fn predicted_join(route: &Route, policy: &Policy, case: &Case) -> Option<Duration> {
    use cloudproxy_core::client::{DEFAULT_AP_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
    let verdict = |proto, to| policy.verdict(proto, to);
    let cost = |v: Verdict, timer: Duration| {
        if v == Verdict::Drop {
            timer
        } else {
            Duration::ZERO
        }
    };
    match route {
        Route::Direct => (verdict(Proto::Tcp, edge_endpoints().signalling) == Verdict::Pass)
            .then_some(Duration::ZERO),
        Route::Socks {
            server, simulated, ..
        } => {
            (*simulated && verdict(Proto::Tcp, *server) == Verdict::Pass).then_some(Duration::ZERO)
        }
        Route::Http {
            proxy: Some(proxy),
            simulated: true,
            ..
        } => (verdict(Proto::Tcp, *proxy) == Verdict::Pass).then_some(Duration::ZERO),
        Route::Http { .. } => None,
        Route::Cloud { aps, .. } => {
            if route.resolves() && case.dns == DnsPolicy::Blocked {
                return None;
            }
            let known = route.known_aps();
            let mut total = Duration::ZERO;
            let mut reached = false;
            'aps: for ap in aps {
                for port in route.ap_ports() {
                    let to = SocketAddr::new(*ap, port);
                    let (tcp, mut udp) = (verdict(Proto::Tcp, to), verdict(Proto::Udp, to));
                    if route.tcp_443() {
                        udp = Verdict::Drop;
                    }
                    if known.contains(ap) && (tcp == Verdict::Pass || udp == Verdict::Pass) {
                        reached = true;
                        break 'aps;
                    }
                    total += cost(tcp, DEFAULT_AP_ATTEMPT_TIMEOUT);
                }
            }
            if !reached {
                return None;
            }
            for relay in case.relay_order().unwrap_or_else(relays) {
                let tcp = verdict(Proto::Tcp, SocketAddr::new(relay, route.relay_tcp_port()));
                if tcp == Verdict::Pass {
                    return Some(total);
                }
                total += cost(tcp, DEFAULT_CONNECT_TIMEOUT);
            }
            None
        }
    }
}

/// The ports of `want` that `policy` opens for `proto` to `to`, as ranges.
pub(crate) fn open_ports(
    policy: &Policy,
    proto: Proto,
    to: IpAddr,
    want: &RangeInclusive<u16>,
) -> Vec<RangeInclusive<u16>> {
    let gaps = uncovered(policy, proto, &Cidr::host(to), std::slice::from_ref(want));
    subtract(want, &gaps)
}

/// The first port of `want` that `policy` does not open for `proto` to `to`.
pub(crate) fn first_closed(
    policy: &Policy,
    proto: Proto,
    to: IpAddr,
    want: &RangeInclusive<u16>,
) -> Option<u16> {
    uncovered(policy, proto, &Cidr::host(to), std::slice::from_ref(want))
        .first()
        .map(|r| *r.start())
}

/// `want` minus `gaps` (sorted, disjoint, inside `want`).
fn subtract(want: &RangeInclusive<u16>, gaps: &[RangeInclusive<u16>]) -> Vec<RangeInclusive<u16>> {
    let mut open = Vec::new();
    let mut next = u32::from(*want.start());
    for gap in gaps {
        if u32::from(*gap.start()) > next {
            open.push((next as u16)..=(gap.start() - 1));
        }
        next = u32::from(*gap.end()) + 1;
    }
    if next <= u32::from(*want.end()) {
        open.push((next as u16)..=*want.end());
    }
    open
}

/// How many ports the ranges hold.
pub(crate) fn port_count(ranges: &[RangeInclusive<u16>]) -> u32 {
    ranges
        .iter()
        .map(|r| u32::from(*r.end()) - u32::from(*r.start()) + 1)
        .sum()
}

/// The ports chosen at run time, pinned to their worst case under a policy: a port the policy
/// does not open when there is one, so that a run shows what a client handed that port gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pins {
    /// Per relay, its one UDP media port.
    pub(crate) relay_udp: BTreeMap<IpAddr, u16>,
    /// The SOCKS5 server's UDP relay port.
    pub(crate) socks_udp: Option<u16>,
}

/// The worst case of every port chosen at run time behind `policy`.
pub(crate) fn pins(route: &Route, policy: &Policy) -> Pins {
    let worst = |proto, to, range: &RangeInclusive<u16>| {
        first_closed(policy, proto, to, range).unwrap_or(*range.start())
    };
    let relay_udp = relays()
        .into_iter()
        .map(|r| (r, worst(Proto::Udp, r, &RELAY_UDP_PORTS)))
        .collect();
    let socks_udp = match route {
        Route::Socks {
            server, udp_ports, ..
        } => Some(worst(Proto::Udp, server.ip(), udp_ports)),
        _ => None,
    };
    Pins {
        relay_udp,
        socks_udp,
    }
}

/// What the policy lets the client reach, flow by flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// Access points (of the world) with at least one of the client's ports open, TCP or UDP.
    pub(crate) aps: Vec<IpAddr>,
    /// Relays whose signalling port (TCP 4000) is open.
    pub(crate) relays: Vec<IpAddr>,
    /// Per relay, the open part of its UDP media range.
    pub(crate) relay_udp: BTreeMap<IpAddr, Vec<RangeInclusive<u16>>>,
    /// The SOCKS5 server: whether its TCP port is open, and the open part of its UDP range.
    pub(crate) socks: Option<(bool, Vec<RangeInclusive<u16>>)>,
}

/// The flows of `route` that `policy` opens.
pub(crate) fn reach(route: &Route, policy: &Policy) -> Reach {
    let passes =
        |proto, to: IpAddr, port| policy.verdict(proto, SocketAddr::new(to, port)) == Verdict::Pass;
    let ports = route.ap_ports();
    let aps = route
        .known_aps()
        .into_iter()
        .filter(|a| {
            ports.iter().any(|p| {
                passes(Proto::Tcp, *a, *p) || (!route.tcp_443() && passes(Proto::Udp, *a, *p))
            })
        })
        .collect();
    let cloud = matches!(route, Route::Cloud { .. });
    let relays_open = relays()
        .into_iter()
        .filter(|r| cloud && passes(Proto::Tcp, *r, route.relay_tcp_port()))
        .collect();
    let relay_udp = relays()
        .into_iter()
        .filter(|_| cloud && !route.tcp_443())
        .map(|r| (r, open_ports(policy, Proto::Udp, r, &RELAY_UDP_PORTS)))
        .collect();
    let socks = match route {
        Route::Socks {
            server, udp_ports, ..
        } => Some((
            passes(Proto::Tcp, server.ip(), server.port()),
            open_ports(policy, Proto::Udp, server.ip(), udp_ports),
        )),
        _ => None,
    };
    Reach {
        aps,
        relays: relays_open,
        relay_udp,
        socks,
    }
}

/// Flows the best path needs, as one would-be rule: a protocol, destinations and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    proto: Proto,
    to: Vec<IpAddr>,
    ports: Vec<RangeInclusive<u16>>,
}

/// The relays' flows: TCP 4000 for signalling (and TCP media), UDP 4500-4650 for media; over
/// TCP 443 only, TCP 443 and no UDP.
fn relay_groups(route: &Route) -> (Group, Option<Group>) {
    let port = route.relay_tcp_port();
    let tcp = Group {
        proto: Proto::Tcp,
        to: relays(),
        ports: vec![port..=port],
    };
    let udp = Group {
        proto: Proto::Udp,
        to: relays(),
        ports: vec![RELAY_UDP_PORTS],
    };
    (tcp, (!route.tcp_443()).then_some(udp))
}

/// The access points' flows, over TCP and over UDP (either answers the client); over TCP 443
/// only, TCP alone.
fn ap_groups(route: &Route) -> (Group, Option<Group>) {
    let ports: Vec<RangeInclusive<u16>> = route.ap_ports().into_iter().map(|p| p..=p).collect();
    let group = |proto| Group {
        proto,
        to: route.known_aps(),
        ports: ports.clone(),
    };
    (
        group(Proto::Tcp),
        (!route.tcp_443()).then(|| group(Proto::Udp)),
    )
}

/// Whether every access point and port the client tries is open over TCP or UDP.
fn aps_all_open(route: &Route, policy: &Policy) -> bool {
    let ports = route.ap_ports();
    let protos: &[Proto] = if route.tcp_443() {
        &[Proto::Tcp]
    } else {
        &[Proto::Tcp, Proto::Udp]
    };
    route.known_aps().iter().all(|a| {
        ports.iter().all(|p| {
            protos
                .iter()
                .any(|proto| policy.verdict(*proto, SocketAddr::new(*a, *p)) == Verdict::Pass)
        })
    })
}

/// The candidate rules for the best path behind `policy`, in the vendor's documented order
/// (relay TCP, access point TCP, access point UDP, relay UDP; the SOCKS5 server's TCP then UDP):
/// every flow of every path the client can be handed, minus what the policy opens. Nothing for
/// the proxy off: SD-RTN's own addresses exist only in the simulation.
pub(crate) fn best_path_candidates(route: &Route, policy: &Policy) -> Vec<Rule> {
    let groups = match route {
        Route::Direct => Vec::new(),
        Route::Socks {
            simulated: false, ..
        } => Vec::new(),
        Route::Socks {
            server, udp_ports, ..
        } => vec![
            Group {
                proto: Proto::Tcp,
                to: vec![server.ip()],
                ports: vec![server.port()..=server.port()],
            },
            Group {
                proto: Proto::Udp,
                to: vec![server.ip()],
                ports: vec![udp_ports.clone()],
            },
        ],
        Route::Http {
            proxy: Some(proxy),
            simulated: true,
            ..
        } => vec![Group {
            proto: Proto::Tcp,
            to: vec![proxy.ip()],
            ports: vec![proxy.port()..=proxy.port()],
        }],
        Route::Http { .. } => Vec::new(),
        Route::Cloud { .. } => {
            let (relay_tcp, relay_udp) = relay_groups(route);
            let mut groups = vec![relay_tcp];
            if !aps_all_open(route, policy) {
                let (ap_tcp, ap_udp) = ap_groups(route);
                groups.push(ap_tcp);
                groups.extend(ap_udp);
            }
            groups.extend(relay_udp);
            groups
        }
    };
    rules_for(&groups, policy)
}

/// The candidate rules that would make the call survive the loss of any one access point or
/// relay behind `policy` (which already holds the best path's rules): the other relays, the
/// other access points the client knows.
pub(crate) fn resilience_candidates(route: &Route, policy: &Policy) -> Vec<Rule> {
    if !matches!(route, Route::Cloud { .. }) {
        return Vec::new();
    }
    let reach = reach(route, policy);
    let (relay_tcp, relay_udp) = relay_groups(route);
    let (ap_tcp, ap_udp) = ap_groups(route);
    let mut groups = Vec::new();
    let relays_short = reach.relays.len() < 2;
    if relays_short {
        groups.push(relay_tcp);
    }
    if reach.aps.len() < 2 && route.known_aps().len() >= 2 {
        groups.push(ap_tcp);
        groups.extend(ap_udp);
    }
    if relays_short {
        groups.extend(relay_udp);
    }
    rules_for(&groups, policy)
}

/// The rules for what `policy` does not open of `groups`: destinations with the same gaps share
/// a rule, in order.
fn rules_for(groups: &[Group], policy: &Policy) -> Vec<Rule> {
    if policy.default == Verdict::Pass {
        return Vec::new();
    }
    let mut rules = Vec::new();
    for group in groups {
        let mut by_gaps: Vec<(Vec<RangeInclusive<u16>>, Vec<Cidr>)> = Vec::new();
        for to in &group.to {
            let block = Cidr::host(*to);
            let gaps = uncovered(policy, group.proto, &block, &group.ports);
            if gaps.is_empty() {
                continue;
            }
            match by_gaps.iter_mut().find(|(g, _)| *g == gaps) {
                Some((_, blocks)) => blocks.push(block),
                None => by_gaps.push((gaps, vec![block])),
            }
        }
        rules.extend(by_gaps.into_iter().map(|(ports, to)| Rule {
            proto: group.proto,
            to,
            ports,
        }));
    }
    rules
}

/// The ports of `want` that no rule of `policy` opens for `proto` to all of `block`, in the
/// order of `want`.
pub(crate) fn uncovered(
    policy: &Policy,
    proto: Proto,
    block: &Cidr,
    want: &[RangeInclusive<u16>],
) -> Vec<RangeInclusive<u16>> {
    if policy.default == Verdict::Pass {
        return Vec::new();
    }
    let open: Vec<&RangeInclusive<u16>> = policy
        .rules
        .iter()
        .filter(|r| r.proto == proto && r.to.iter().any(|c| c.contains_block(block)))
        .flat_map(|r| r.ports.iter())
        .collect();
    let mut gaps = Vec::new();
    for w in want {
        let mut pieces = vec![(u32::from(*w.start()), u32::from(*w.end()))];
        for o in &open {
            let (os, oe) = (u32::from(*o.start()), u32::from(*o.end()));
            pieces = pieces
                .into_iter()
                .flat_map(|(s, e)| {
                    if e < os || s > oe {
                        return vec![(s, e)];
                    }
                    let mut left = Vec::new();
                    if s < os {
                        left.push((s, os - 1));
                    }
                    if e > oe {
                        left.push((oe + 1, e));
                    }
                    left
                })
                .collect();
        }
        gaps.extend(pieces.into_iter().map(|(s, e)| (s as u16)..=(e as u16)));
    }
    gaps
}

/// `policy` with `rules` added.
pub(crate) fn with_rules(policy: &Policy, rules: &[Rule]) -> Policy {
    let mut policy = policy.clone();
    policy.rules.extend(rules.iter().cloned());
    policy
}

/// The SD-RTN edge's flows with the proxy off (simulation addresses: never suggested).
pub(crate) fn direct_flows() -> [(Proto, SocketAddr); 3] {
    let edge = edge_endpoints();
    [
        (Proto::Tcp, edge.signalling),
        (Proto::Udp, edge.media_udp),
        (Proto::Tcp, edge.media_tcp),
    ]
}

/// `"4000"` or `"4500-4650"`.
pub(crate) fn range_text(r: &RangeInclusive<u16>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("{}-{}", r.start(), r.end())
    }
}

/// An address, or a CIDR block when it is wider than one host.
pub(crate) fn block_text(block: &Cidr) -> String {
    if *block == Cidr::host(block.addr()) {
        block.addr().to_string()
    } else {
        block.to_string()
    }
}
