//! The catalogue: every named scenario, what it proves and how it is checked.
//! `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, MediaPath};
use cloudproxy_core::socks5::ServerPolicy;

use super::checks::*;
use super::vocabulary::{
    aps_silent, call, codes_are, config_in_force, crowd as crowd_checks, edge_saw_no_signalling,
    firewall_dropped, fresh_ticket_after, impairments_happened, media_between,
    open_relay_attack as attack_checks, receivers_saw_loss, relay_in_use_crashed,
    socks_refused_udp,
};
use super::Scenario;
use crate::faults::Impairments;
use crate::policy::{DnsPolicy, Policy};
use crate::world::{ip, Fault, SocksSpec, WorldOutcome, WorldSpec, AP_IPS, RELAY_IPS};
use cloudproxy_node::nodes::client::{ClientSpec, Op};

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;
const IP_LIST: &str = r#"{"rtc.proxy_server":[2,"[\"47.74.211.17\",\"52.80.192.229\",\"52.52.84.170\",\"47.96.234.219\"]",0]}"#;
const SOCKS: &str = r#"{"rtc.proxy_server":[0,"10.1.0.2",1080]}"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Every scenario, in catalogue order: the seed's, then those beyond it (issue 18, in their
/// own modules).
pub fn catalogue() -> &'static [Scenario] {
    static ALL: std::sync::LazyLock<Vec<Scenario>> = std::sync::LazyLock::new(|| {
        CATALOGUE
            .iter()
            .chain(&super::beyond_join::SCENARIOS)
            .chain(&super::beyond_changes::SCENARIOS)
            .copied()
            .collect()
    });
    &ALL
}

/// The checks of the catalogue scenario `name` as words of the vocabulary, for the
/// scenarios beyond the seed (`None` for the seed's, whose checks are Rust functions that call
/// the same words; their twins in `sim/scenarios/` list them).
pub fn check_defs(name: &str) -> Option<Vec<super::vocabulary::CheckDef>> {
    super::beyond_join::check_defs(name).or_else(|| super::beyond_changes::check_defs(name))
}

/// The checks of the catalogue scenario `name` whose checks are words ([`check_defs`]),
/// judged on `outcome`.
pub(super) fn checks_of(name: &str, spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    match check_defs(name) {
        Some(defs) => defs.iter().flat_map(|d| d.eval(spec, outcome)).collect(),
        // Never vacuous: a scenario without its words fails.
        None => vec![Check::fail(
            "the scenario's checks",
            format!("no checks are defined for {name}"),
        )],
    }
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    catalogue().iter().find(|s| s.name == name)
}

static CATALOGUE: [Scenario; 15] = [
    Scenario::builtin("direct-blocked", "proxy off behind the seed firewall: the join fails with a clear reason", direct_blocked, check_direct_blocked),
    Scenario::builtin("direct-open", "no firewall, proxy off: the call works directly", direct_open, check_call),
    Scenario::builtin("proxy-default", "only rtc.enable_proxy: DNS, AP, relays; two enterprises hear each other", proxy_default, check_proxy_default),
    Scenario::builtin("proxy-ip-list", "enterprise DNS blocked: type 1 fails with a clear reason, type 2 works", proxy_ip_list, check_proxy_ip_list),
    Scenario::builtin("ap-failover", "the first access points are dead: the client reaches the next", ap_failover, check_ap_failover),
    Scenario::builtin("relay-crash", "the relay in use crashes mid-call: the client moves to the other relay and media resumes", relay_crash, check_relay_crash),
    Scenario::builtin("udp-blocked", "the policy allows TCP only: media falls back to the TCP tunnel", udp_blocked, check_udp_blocked),
    Scenario::builtin("socks5", "type 0 through the enterprise SOCKS5 server, the only host allowed out", socks5, check_socks5),
    Scenario::builtin("socks5-no-udp", "the SOCKS5 server refuses UDP ASSOCIATE: media goes over TCP", socks5_no_udp, check_socks5_no_udp),
    Scenario::builtin("in-channel-change", "proxy keys during a call return -4; after leave and re-join the new config is in force", in_channel_change, check_in_channel_change),
    Scenario::builtin("lossy-media", "UDP loss, duplication and jitter mid-call: measured per stream, the call goes on", lossy_media, check_lossy_media),
    Scenario::builtin("partition-heal", "an enterprise is cut off from the relays, then healed: clients reconnect and media flows", partition_heal, check_partition_heal),
    Scenario::builtin("open-relay-attack", "forged, replayed and expired tickets and internal destinations are refused; other calls are unaffected", open_relay_attack, check_open_relay_attack),
    Scenario::builtin("ticket-expiry", "a call outlives its ticket, and a reconnect after expiry fetches a new one", ticket_expiry, check_ticket_expiry),
    Scenario::builtin("crowd", "200 clients in two enterprises join and talk; join-time percentiles and relay load", crowd, check_crowd),
];

/// Faster give-up for scenarios where failing is the point (the same function a scenario
/// file's `give_up_after_s = 10` names).
const QUICK_GIVE_UP: fn(&mut ClientConfig) = super::file::give_up_after::<10>;

fn client(name: &str, uid: u32, params: &[&str]) -> ClientSpec {
    ClientSpec::new(name, uid, "room", params, Duration::from_millis(100))
}

/// Two enterprises with one client each, both with `params`.
fn two_enterprises(seed: u64, policy: Policy, params: &[&str], duration: Duration) -> WorldSpec {
    let mut spec = WorldSpec::new(seed, duration);
    let a = spec.enterprise("bank", "10.1.0.10", policy.clone());
    spec.enterprises[a].clients.push(client("alice", 1, params));
    let b = spec.enterprise("hospital", "10.2.0.10", policy);
    spec.enterprises[b].clients.push(client("bob", 2, params));
    spec
}

// --- The scenarios ----------------------------------------------------------------------------

fn direct_blocked(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[], secs(20));
    spec.enterprises[0].clients[0].tune = QUICK_GIVE_UP;
    spec.enterprises[1].clients[0].tune = QUICK_GIVE_UP;
    spec.never_join = vec!["alice".into(), "bob".into()];
    spec
}

fn check_direct_blocked(_: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    vec![
        never_joined(outcome, "alice", "direct"),
        never_joined(outcome, "bob", "direct"),
        firewall_dropped(outcome),
        edge_saw_no_signalling(outcome),
    ]
}

fn direct_open(seed: u64) -> WorldSpec {
    two_enterprises(seed, Policy::open(), &[], secs(12))
}

/// Both clients join, hear each other, and all their signalling is acknowledged.
fn check_call(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    call(spec, outcome, "alice", "bob", 200)
}

fn proxy_default(seed: u64) -> WorldSpec {
    two_enterprises(seed, Policy::seed(), &[ENABLE], secs(12))
}

fn check_proxy_default(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 1));
    checks.push(proxy_type(outcome, "bob", 1));
    checks.push(media_path(outcome, "alice", MediaPath::Udp));
    checks
}

fn proxy_ip_list(seed: u64) -> WorldSpec {
    let mut policy = Policy::seed();
    policy.dns = DnsPolicy::Blocked;
    let mut spec = two_enterprises(seed, policy, &[ENABLE, IP_LIST], secs(14));
    let mut carol = client("carol", 3, &[ENABLE]);
    carol.tune = QUICK_GIVE_UP;
    spec.enterprises[0].clients.push(carol);
    spec.never_join = vec!["carol".into()];
    spec
}

fn check_proxy_ip_list(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 2));
    checks.push(never_joined(outcome, "carol", "dns"));
    checks
}

fn ap_failover(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(40));
    spec.faults
        .push((Duration::ZERO, Fault::Crash(ip(AP_IPS[0]))));
    spec.faults
        .push((Duration::ZERO, Fault::Crash(ip(AP_IPS[1]))));
    spec
}

fn check_ap_failover(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_proxy_default(spec, outcome);
    let dead = [ip(AP_IPS[0]), ip(AP_IPS[1])];
    checks.push(aps_silent(outcome, &dead));
    checks
}

const RELAY_CRASH_AT: Duration = Duration::from_secs(8);
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

fn relay_crash(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(40));
    spec.faults
        .push((RELAY_CRASH_AT, Fault::CrashRelayOf("alice".into())));
    spec
}

fn check_relay_crash(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(reconnected(outcome, "alice"));
    checks.push(outages_within(outcome, "alice", RECOVERY_BOUND));
    checks.push(relay_in_use_crashed(outcome, "alice"));
    checks
}

fn udp_blocked(seed: u64) -> WorldSpec {
    two_enterprises(seed, Policy::seed_tcp_only(), &[ENABLE], secs(15))
}

fn check_udp_blocked(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(media_path(outcome, "alice", MediaPath::Tcp));
    checks.push(media_path(outcome, "bob", MediaPath::Tcp));
    checks
}

fn with_socks(seed: u64, udp: bool) -> WorldSpec {
    let mut spec = WorldSpec::new(seed, secs(15));
    let a = spec.enterprise("bank", "10.1.0.10", Policy::only_host(ip("10.1.0.2")));
    spec.enterprises[a]
        .clients
        .push(client("alice", 1, &[ENABLE, SOCKS]));
    spec.enterprises[a].socks = Some(SocksSpec {
        ip: ip("10.1.0.2"),
        port: 1080,
        policy: ServerPolicy {
            udp_associate: udp,
            ..ServerPolicy::default()
        },
        udp_ports: None,
    });
    let b = spec.enterprise("hospital", "10.2.0.10", Policy::seed());
    spec.enterprises[b]
        .clients
        .push(client("bob", 2, &[ENABLE]));
    spec
}

fn socks5(seed: u64) -> WorldSpec {
    with_socks(seed, true)
}

fn check_socks5(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 0));
    checks.push(media_path(outcome, "alice", MediaPath::Udp));
    checks
}

fn socks5_no_udp(seed: u64) -> WorldSpec {
    with_socks(seed, false)
}

fn check_socks5_no_udp(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(proxy_type(outcome, "alice", 0));
    checks.push(media_path(outcome, "alice", MediaPath::Tcp));
    checks.push(socks_refused_udp(outcome));
    checks
}

fn in_channel_change(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(20));
    let alice = &mut spec.enterprises[0].clients[0];
    alice.script.extend([
        (secs(4), Op::Set(r#"{"rtc.enable_proxy":false}"#.into())),
        (secs(5), Op::Set(IP_LIST.into())),
        (secs(6), Op::Leave),
        (secs(7), Op::Set(IP_LIST.into())),
        (secs(7), Op::Join),
    ]);
    spec
}

fn check_in_channel_change(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = vec![
        codes_are(spec, outcome, "alice", &[0, 0, -4, -4, 0, 0, 0, 0]),
        config_in_force(outcome, "alice", "[2,"),
        proxy_type(outcome, "alice", 2),
    ];
    checks.extend(check_call(spec, outcome));
    checks
}

// --- Faults ------------------------------------------------------------------------------------

const LOSSY_FROM: Duration = Duration::from_secs(2);
const LOSSY_UNTIL: Duration = Duration::from_secs(10);

fn lossy_media(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(16));
    let bad = Impairments {
        loss_pct: 5,
        burst: Some((1, 30)),
        dup_pct: 2,
        jitter_ms: 40,
    };
    spec.faults.push((LOSSY_FROM, Fault::Impair(bad)));
    spec.faults
        .push((LOSSY_UNTIL, Fault::Impair(Impairments::NONE)));
    spec.heal_at = Some(LOSSY_UNTIL);
    spec
}

fn check_lossy_media(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = call(spec, outcome, "alice", "bob", 300);
    checks.push(impairments_happened(outcome));
    checks.push(stream_quality(outcome));
    checks.push(receivers_saw_loss(outcome));
    checks.extend(liveness(spec, outcome, secs(3)));
    checks
}

const CUT_AT: Duration = Duration::from_secs(5);
// The cut lasts 20 s: longer than keepalive detection (15 s), and short enough that a client
// that also lost its relay just before the cut (a swarm fault) is still trying when it heals
// (it gives up after 30 s without a connection; partition-heal, seed 446).
const HEAL_AT: Duration = Duration::from_secs(25);

fn partition_heal(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(50));
    let bank = ip("10.1.0.10");
    for relay in RELAY_IPS {
        spec.faults
            .push((CUT_AT, Fault::Partition(bank, ip(relay))));
        spec.faults.push((HEAL_AT, Fault::Repair(bank, ip(relay))));
    }
    spec.heal_at = Some(HEAL_AT);
    spec
}

fn check_partition_heal(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = vec![
        joined(outcome, "alice"),
        joined(outcome, "bob"),
        reconnected(outcome, "alice"),
    ];
    checks.extend(liveness(spec, outcome, secs(15)));
    checks.push(signalling_all_acked(outcome, "alice"));
    checks
}

fn open_relay_attack(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(25));
    spec.ticket_lifetime = secs(8);
    spec.attacker = true;
    spec
}

fn check_open_relay_attack(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = attack_checks(outcome);
    checks.extend(check_call(spec, outcome));
    checks
}

const TICKET_LIFETIME: Duration = Duration::from_secs(5);
const EXPIRED_RECONNECT_AT: Duration = Duration::from_secs(15);

fn ticket_expiry(seed: u64) -> WorldSpec {
    let mut spec = two_enterprises(seed, Policy::seed(), &[ENABLE], secs(40));
    spec.ticket_lifetime = TICKET_LIFETIME;
    spec.faults
        .push((EXPIRED_RECONNECT_AT, Fault::CrashRelayOf("alice".into())));
    spec
}

fn check_ticket_expiry(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    let mut checks = check_call(spec, outcome);
    checks.push(Check {
        name: "alice's call goes on after her ticket expired (5 s)".into(),
        ..media_between(outcome, "alice", 6, 15)
    });
    checks.push(relay_in_use_crashed(outcome, "alice"));
    checks.push(reconnected(outcome, "alice"));
    checks.push(outages_within(outcome, "alice", RECOVERY_BOUND));
    // Answers to alice's enterprise after her relay crashed, which is long after her first
    // ticket expired: the reconnect asked for a new one.
    checks.push(fresh_ticket_after(
        spec,
        outcome,
        "bank",
        EXPIRED_RECONNECT_AT,
    ));
    checks
}

const CROWD_PER_ENTERPRISE: u32 = 100;
const CROWD_CHANNEL_SIZE: u32 = 5;

fn crowd(seed: u64) -> WorldSpec {
    let mut spec = WorldSpec::new(seed, secs(15));
    for (e, (name, host)) in [("bank", "10.1.0.10"), ("hospital", "10.2.0.10")]
        .into_iter()
        .enumerate()
    {
        let index = spec.enterprise(name, host, Policy::seed());
        for i in 0..CROWD_PER_ENTERPRISE {
            let uid = 1000 * (e as u32 + 1) + i;
            // Channels mix both enterprises: member i of each enterprise shares channel i / 5.
            let channel = format!("room{}", i / CROWD_CHANNEL_SIZE);
            let start = Duration::from_millis(u64::from(i) * 20);
            let mut client =
                ClientSpec::new(&format!("{name}-{i:03}"), uid, &channel, &[ENABLE], start);
            client.media_pps = 5;
            client.signalling_every = secs(3);
            spec.enterprises[index].clients.push(client);
        }
    }
    spec
}

fn check_crowd(_: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    crowd_checks(outcome, 2 * CROWD_PER_ENTERPRISE as usize)
}
