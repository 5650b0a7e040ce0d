//! Scenarios beyond the seed (issue 18), joining: fail-over that races, automatic mode, force
//! TCP behind a TCP-443-only bank, and the enterprise HTTP proxy (type 3) with and without
//! Basic authentication. `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, MediaPath, DEFAULT_DIRECT_PROBE_TIMEOUT};
use cloudproxy_core::engine::CloudProxyType;
use cloudproxy_core::http_connect::BasicCredentials;
use cloudproxy_node::nodes::client::{ClientSpec, Op};

use super::checks::*;
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

/// Faster give-up for clients meant to fail.
fn quick_give_up(config: &mut ClientConfig) {
    config.give_up_after = secs(10);
}

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

/// Both join, hear each other, every message acknowledged.
fn call(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    vec![
        joined(outcome, "alice"),
        joined(outcome, "bob"),
        hears(outcome, spec, "alice", "bob", 200),
        hears(outcome, spec, "bob", "alice", 200),
        signalling_all_acked(outcome, "alice"),
        signalling_all_acked(outcome, "bob"),
    ]
}

fn join_time(outcome: &WorldOutcome, name: &str) -> Option<Duration> {
    outcome.clients.get(name).and_then(|r| r.join_time)
}

/// The client joined within `bound`.
fn joined_within(outcome: &WorldOutcome, name: &str, bound: Duration) -> Check {
    let t = join_time(outcome, name);
    Check::new(
        format!("{name} joins within {} ms", bound.as_millis()),
        t.is_some_and(|t| t <= bound),
        format!("join time {:?} ms", t.map(|t| t.as_millis())),
    )
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

fn check_ap_failover_racing(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    checks.push(joined_within(outcome, "alice", RACING_JOIN_BOUND));
    checks.push(joined_within(outcome, "bob", RACING_JOIN_BOUND));
    checks.push(proxy_type(outcome, "alice", 1));
    checks.push(media_path(outcome, "alice", MediaPath::Udp));
    let answered = |i: usize| outcome.aps.get(&ip(AP_IPS[i])).map_or(0, |c| c.answered);
    let answers: Vec<u64> = (0..AP_IPS.len()).map(answered).collect();
    checks.push(Check::new(
        "the dead access points answered nothing and a live one answered",
        answers[0] == 0 && answers[1] == 0 && answers[2] + answers[3] > 0,
        format!("answers per access point: {answers:?}"),
    ));
    checks
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

fn check_automatic_open(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    let proxies: Vec<String> = ["alice", "bob"]
        .iter()
        .filter_map(|n| {
            outcome
                .clients
                .get(*n)?
                .proxy
                .map(|p| format!("{n}: {p:?}"))
        })
        .collect();
    checks.push(Check::new(
        "both stay direct: no proxy connection",
        proxies.is_empty(),
        format!("{proxies:?}"),
    ));
    let asked: u64 = outcome.aps.values().map(|c| c.answered).sum();
    checks.push(Check::new(
        "no access point was asked",
        asked == 0,
        format!("{asked} answers"),
    ));
    checks.push(joined_within(
        outcome,
        "alice",
        DEFAULT_DIRECT_PROBE_TIMEOUT,
    ));
    checks
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

fn check_automatic_fallback(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 1));
    let fallbacks: Vec<String> = trace_events(outcome, "state")
        .into_iter()
        .filter_map(|(_, v)| {
            let reason = v["reason"].as_str()?;
            reason
                .contains("falling back to the cloud proxy")
                .then(|| reason.to_owned())
        })
        .collect();
    let probe_ms = DEFAULT_DIRECT_PROBE_TIMEOUT.as_millis();
    checks.push(Check::new(
        format!("the fallback is reported with its reason and the probe time ({probe_ms} ms)"),
        fallbacks.len() == 1 && fallbacks[0].contains(&format!("after {probe_ms} ms")),
        format!("{fallbacks:?}"),
    ));
    let (alice, carol) = (join_time(outcome, "alice"), join_time(outcome, "carol"));
    let bound = DEFAULT_DIRECT_PROBE_TIMEOUT + PROXY_JOIN_WORST;
    checks.push(Check::new(
        format!(
            "alice joins within the probe time plus the proxy's join ({} ms)",
            bound.as_millis()
        ),
        alice.is_some_and(|a| a <= bound) && carol.is_some_and(|c| c <= PROXY_JOIN_WORST),
        format!(
            "alice {:?} ms; the proxy's join, carol's (forced): {:?} ms; probe {probe_ms} ms",
            alice.map(|t| t.as_millis()),
            carol.map(|t| t.as_millis())
        ),
    ));
    checks
}

// --- TCP 443 only ------------------------------------------------------------------------------

fn force_tcp_443(seed: u64) -> WorldSpec {
    let alice = client("alice", 1, &[], Some(CloudProxyType::ForceTcp));
    let mut spec = bank_and_hospital(seed, Policy::tcp_443_only(), alice, secs(15));
    let mut carol = client("carol", 3, &[ENABLE], None);
    carol.tune = quick_give_up;
    spec.enterprises[0].clients.push(carol);
    spec.never_join = vec!["carol".into()];
    spec
}

fn check_force_tcp_443(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 1));
    checks.push(media_path(outcome, "alice", MediaPath::Tcp));
    let relay_port = outcome
        .clients
        .get("alice")
        .and_then(|r| r.proxy)
        .map(|(_, r)| r.port());
    checks.push(Check::new(
        "alice's relay is on port 443",
        relay_port == Some(443),
        format!("relay port {relay_port:?}"),
    ));
    // Every pass through the bank's firewall was TCP 443 (its only rule); every denial was
    // carol's (seed ports), none alice's.
    let bank = outcome.firewalls.get("bank");
    let udp_out = bank.map_or(0, |f| f.udp_pass);
    let denied_443 = bank.map_or(0, |f| {
        f.denied
            .iter()
            .filter(|(proto, to)| *proto == Proto::Tcp && to.port() == 443)
            .count()
    });
    checks.push(Check::new(
        "no UDP left the bank and nothing to TCP 443 was denied",
        udp_out == 0 && denied_443 == 0,
        format!("{udp_out} UDP passed, {denied_443} TCP 443 destinations denied"),
    ));
    checks.push(never_joined(outcome, "carol", "gave up"));
    checks
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

/// Type 3, TCP media, the proxy carried `tunnels` tunnels and sent `challenges` 407s, and no
/// UDP left the bank.
fn through_the_proxy(outcome: &WorldOutcome, tunnels: u64, challenges: u64) -> Vec<Check> {
    let stats = outcome
        .http_proxies
        .get("bank")
        .cloned()
        .unwrap_or_default();
    let udp_out = outcome.firewalls.get("bank").map_or(0, |f| f.udp_pass);
    vec![
        proxy_type(outcome, "alice", 3),
        media_path(outcome, "alice", MediaPath::Tcp),
        Check::new(
            format!("the HTTP proxy opened {tunnels} tunnels (signalling, media) after {challenges} challenges"),
            stats.tunnels == tunnels && stats.challenges == challenges,
            format!("{stats:?}"),
        ),
        Check::new(
            "no UDP left the bank",
            udp_out == 0,
            format!("{udp_out} datagrams passed"),
        ),
    ]
}

fn check_http_proxy(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    checks.extend(through_the_proxy(outcome, 2, 0));
    checks
}

fn http_proxy_auth(seed: u64) -> WorldSpec {
    let user = BasicCredentials::new("alice", "s3cret").ok();
    let mut spec = with_http_proxy(seed, user, HTTP_PROXY_AUTH);
    let mut carol = client("carol", 3, &[HTTP_PROXY_BY_NAME], None);
    carol.tune = quick_give_up;
    spec.enterprises[0].clients.push(carol);
    spec.never_join = vec!["carol".into()];
    spec
}

fn check_http_proxy_auth(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome);
    // Alice's two tunnels each answer one 407; carol's one request gets the third.
    checks.extend(through_the_proxy(outcome, 2, 3));
    checks.push(never_joined(
        outcome,
        "carol",
        "configure the proxy's user name and password",
    ));
    checks
}
