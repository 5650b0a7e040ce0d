//! Scenarios beyond the seed (issue 18), joining: fail-over that races, automatic mode, force
//! TCP behind a TCP-443-only bank, and the enterprise HTTP proxy (type 3) with and without
//! Basic authentication. `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, MediaPath, DEFAULT_DIRECT_PROBE_TIMEOUT};
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_node::nodes::client::{ClientSpec, Op};

use super::catalogue::checks_of;
use super::checks::Check;
use super::vocabulary::CheckDef;
use super::{Scenario, Source};
use crate::policy::{Policy, Proto};
use crate::world::{ip, Fault, HttpProxySpec, WorldOutcome, WorldSpec, AP_IPS};

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;
/// The bank's HTTP proxy.
const PROXY_IP: &str = "10.1.0.8";
const PROXY_PORT: u16 = 3128;
const HTTP_PROXY: &str = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"10.1.0.8",3128]}"#;
const HTTP_PROXY_AUTH: &str =
    r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","s3cret"]}"#;
const HTTP_PROXY_BY_NAME: &str =
    r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128]}"#;

/// The racing fail-over's goal: a join within 1.5 s with the first two access points dead.
pub const RACING_JOIN_BOUND: Duration = Duration::from_millis(1_500);

/// The proxy's join at its slowest in this world: three round trips (the access point, the
/// tunnel's connect, its ticket) of six messages at the links' worst latency, 20 ms each.
pub const PROXY_JOIN_WORST: Duration = Duration::from_millis(120);

/// The scenarios of this module, in catalogue order.
pub static SCENARIOS: [Scenario; 6] = [
    Scenario { name: "ap-failover-racing", proves: "setCloudProxy(force UDP) races the access points (RFC 8305): the first two dead, the join takes at most 1.5 s", source: Source::Builtin { build: ap_failover_racing, check: check_ap_failover_racing } },
    Scenario { name: "automatic-open", proves: "setCloudProxy(automatic) on an open network stays direct: no access point is asked", source: Source::Builtin { build: automatic_open, check: check_automatic_open } },
    Scenario { name: "automatic-fallback", proves: "setCloudProxy(automatic) behind the seed firewall falls back to the proxy within the probe time plus the proxy's join", source: Source::Builtin { build: automatic_fallback, check: check_automatic_fallback } },
    Scenario { name: "force-tcp-443", proves: "a bank that opens only TCP 443: setCloudProxy(force TCP) joins with media over TCP 443; the seed's client cannot", source: Source::Builtin { build: force_tcp_443, check: check_force_tcp_443 } },
    Scenario { name: "http-proxy", proves: "type 3 through the enterprise HTTP proxy (CONNECT), the only host allowed: signalling and TCP media, no UDP", source: Source::Builtin { build: http_proxy, check: check_http_proxy } },
    Scenario { name: "http-proxy-auth", proves: "type 3 with Basic credentials answers the 407 and joins; without them the join fails with a clear reason", source: Source::Builtin { build: http_proxy_auth, check: check_http_proxy_auth } },
];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A client that runs `params`, then `setCloudProxy(cloud)` when given, then joins.
pub(super) fn client(
    name: &str,
    uid: u32,
    params: &[&str],
    cloud: Option<CloudProxyType>,
) -> ClientSpec {
    let start = Duration::from_millis(100);
    let mut spec = ClientSpec::new(name, uid, "room", params, start);
    if let Some(cloud) = cloud {
        let join = spec.script.len().saturating_sub(1);
        spec.script.insert(join, (start, Op::SetCloudProxy(cloud)));
    }
    spec
}

/// Faster give-up for clients meant to fail (the same function a scenario file's
/// `give_up_after_s = 10` names).
const QUICK_GIVE_UP: fn(&mut ClientConfig) = super::file::give_up_after::<10>;

/// Alice in the bank behind `bank`, Bob in the hospital behind the seed's firewall with the
/// proxy on, both in one channel.
fn bank_and_hospital(seed: u64, bank: Policy, alice: ClientSpec, duration: Duration) -> WorldSpec {
    let mut spec = WorldSpec::new(seed, duration);
    let a = spec.enterprise("bank", "10.1.0.10", bank);
    spec.enterprises[a].clients.push(alice);
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
    spec.enterprises[b]
        .clients
        .push(client("bob", 2, &[ENABLE], None));
    spec
}

/// The checks of `name` (a scenario of this module), as words of the vocabulary: the same
/// list its file twin in `sim/scenarios/` holds.
pub(super) fn check_defs(name: &str) -> Option<Vec<CheckDef>> {
    use CheckDef as D;
    let s = |t: &str| t.to_owned();
    let call = D::Call(s("alice"), s("bob"), 200);
    let alice = || s("alice");
    Some(match name {
        "ap-failover-racing" => vec![
            call,
            D::JoinedWithin(alice(), RACING_JOIN_BOUND),
            D::JoinedWithin(s("bob"), RACING_JOIN_BOUND),
            D::ProxyType(alice(), 1),
            D::MediaPath(alice(), MediaPath::Udp),
            D::ApsSilent(vec![ip(AP_IPS[0]), ip(AP_IPS[1])]),
        ],
        "automatic-open" => vec![
            call,
            D::StayDirect(vec![alice(), s("bob")]),
            D::NoAccessPointAnswered,
            D::JoinedWithin(alice(), DEFAULT_DIRECT_PROBE_TIMEOUT),
        ],
        "automatic-fallback" => vec![
            call,
            D::ProxyType(alice(), 1),
            D::FallsBack(alice(), DEFAULT_DIRECT_PROBE_TIMEOUT),
            // Alice within the probe time plus the proxy's join; carol, forced onto the proxy
            // in the same bank, shows the proxy's own join time.
            D::Named(
                format!(
                    "alice joins within the probe time plus the proxy's join ({} ms)",
                    (DEFAULT_DIRECT_PROBE_TIMEOUT + PROXY_JOIN_WORST).as_millis()
                ),
                Box::new(D::JoinedWithin(
                    alice(),
                    DEFAULT_DIRECT_PROBE_TIMEOUT + PROXY_JOIN_WORST,
                )),
            ),
            D::Named(
                format!(
                    "carol, forced onto the proxy, shows the proxy's own join: within {} ms",
                    PROXY_JOIN_WORST.as_millis()
                ),
                Box::new(D::JoinedWithin(s("carol"), PROXY_JOIN_WORST)),
            ),
        ],
        "force-tcp-443" => vec![
            call,
            D::ProxyType(alice(), 1),
            D::MediaPath(alice(), MediaPath::Tcp),
            D::RelayPort(alice(), 443),
            // The bank's only rule is TCP 443; every denial was carol's (seed ports).
            D::NoUdpLeft(s("bank")),
            D::NothingDeniedTo(s("bank"), Proto::Tcp, 443),
            D::NeverJoined(s("carol"), s("gave up")),
        ],
        "http-proxy" => [vec![call], through_the_proxy(2, 0)].concat(),
        // Alice's two tunnels each answer one 407; carol's one request gets the third.
        "http-proxy-auth" => [
            vec![call],
            through_the_proxy(2, 3),
            vec![D::NeverJoined(
                s("carol"),
                s("configure the proxy's user name and password"),
            )],
        ]
        .concat(),
        _ => return None,
    })
}

/// Type 3, TCP media, the proxy carried `tunnels` tunnels and sent `challenges` 407s, and no
/// UDP left the bank.
fn through_the_proxy(tunnels: u64, challenges: u64) -> Vec<CheckDef> {
    vec![
        CheckDef::ProxyType("alice".into(), 3),
        CheckDef::MediaPath("alice".into(), MediaPath::Tcp),
        CheckDef::HttpProxyTunnels("bank".into(), tunnels, challenges),
        CheckDef::NoUdpLeft("bank".into()),
    ]
}

// --- Fail-over that races ------------------------------------------------------------------

fn ap_failover_racing(seed: u64) -> WorldSpec {
    let forced = Some(CloudProxyType::ForceUdp);
    let mut spec = WorldSpec::new(seed, secs(15));
    let a = spec.enterprise("bank", "10.1.0.10", Policy::seed());
    spec.enterprises[a]
        .clients
        .push(client("alice", 1, &[ENABLE], forced));
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
    spec.enterprises[b]
        .clients
        .push(client("bob", 2, &[ENABLE], forced));
    spec.faults
        .push((Duration::ZERO, Fault::Crash(ip(AP_IPS[0]))));
    spec.faults
        .push((Duration::ZERO, Fault::Crash(ip(AP_IPS[1]))));
    spec
}

// --- Automatic mode ------------------------------------------------------------------------

fn automatic_open(seed: u64) -> WorldSpec {
    let auto = Some(CloudProxyType::Automatic);
    let mut spec = WorldSpec::new(seed, secs(12));
    let a = spec.enterprise("bank", "10.1.0.10", Policy::open());
    spec.enterprises[a]
        .clients
        .push(client("alice", 1, &[], auto));
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::open());
    spec.enterprises[b]
        .clients
        .push(client("bob", 2, &[], auto));
    spec
}

fn automatic_fallback(seed: u64) -> WorldSpec {
    let mut spec = bank_and_hospital(
        seed,
        Policy::seed(),
        client("alice", 1, &[], Some(CloudProxyType::Automatic)),
        secs(14),
    );
    // Carol, forced onto the proxy in the same bank, measures the proxy's own join time.
    spec.enterprises[0]
        .clients
        .push(client("carol", 3, &[], Some(CloudProxyType::ForceUdp)));
    spec
}

// --- TCP 443 only ------------------------------------------------------------------------------

fn force_tcp_443(seed: u64) -> WorldSpec {
    let alice = client("alice", 1, &[], Some(CloudProxyType::ForceTcp));
    let mut spec = bank_and_hospital(seed, Policy::tcp_443_only(), alice, secs(15));
    let mut carol = client("carol", 3, &[ENABLE], None);
    carol.tune = QUICK_GIVE_UP;
    spec.enterprises[0].clients.push(carol);
    spec.never_join = vec!["carol".into()];
    spec
}

// --- The HTTP proxy (type 3) -------------------------------------------------------------------

fn with_http_proxy(seed: u64, credentials: Option<BasicCredentials>, alice: &str) -> WorldSpec {
    let bank = Policy::only_tcp_to(ip(PROXY_IP));
    let mut spec = bank_and_hospital(seed, bank, client("alice", 1, &[alice], None), secs(15));
    spec.enterprises[0].http_proxy = Some(HttpProxySpec {
        ip: ip(PROXY_IP),
        port: PROXY_PORT,
        name: Some("proxy.corp".into()),
        credentials,
    });
    spec
}

fn http_proxy(seed: u64) -> WorldSpec {
    with_http_proxy(seed, None, HTTP_PROXY)
}

fn http_proxy_auth(seed: u64) -> WorldSpec {
    let user = BasicCredentials::new("alice", "s3cret").ok();
    let mut spec = with_http_proxy(seed, user, HTTP_PROXY_AUTH);
    let mut carol = client("carol", 3, &[HTTP_PROXY_BY_NAME], None);
    carol.tune = QUICK_GIVE_UP;
    spec.enterprises[0].clients.push(carol);
    spec.never_join = vec!["carol".into()];
    spec
}

fn check_ap_failover_racing(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("ap-failover-racing", spec, outcome)
}

fn check_automatic_open(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("automatic-open", spec, outcome)
}

fn check_automatic_fallback(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("automatic-fallback", spec, outcome)
}

fn check_force_tcp_443(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("force-tcp-443", spec, outcome)
}

fn check_http_proxy(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("http-proxy", spec, outcome)
}

fn check_http_proxy_auth(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    checks_of("http-proxy-auth", spec, outcome)
}
