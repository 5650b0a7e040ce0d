//! The catalogue: every named scenario, what it proves and how it is checked.
//! `docs/scenarios.md` explains each one.

use std::time::Duration;

use cloudproxy_core::client::{ClientConfig, MediaPath};
use cloudproxy_core::socks5::ServerPolicy;

use super::checks::*;
use super::Scenario;
use crate::faults::Impairments;
use crate::policy::{DnsPolicy, Policy};
use crate::world::{ip, Fault, SocksSpec, WorldOutcome, WorldSpec, AP_IPS, RELAY_IPS};
use cloudproxy_node::nodes::attacker::FORBIDDEN;
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

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    catalogue().iter().find(|s| s.name == name)
}

static CATALOGUE: [Scenario; 15] = [
    Scenario { name: "direct-blocked", proves: "proxy off behind the seed firewall: the join fails with a clear reason", build: direct_blocked, check: check_direct_blocked },
    Scenario { name: "direct-open", proves: "no firewall, proxy off: the call works directly", build: direct_open, check: check_call },
    Scenario { name: "proxy-default", proves: "only rtc.enable_proxy: DNS, AP, relays; two enterprises hear each other", build: proxy_default, check: check_proxy_default },
    Scenario { name: "proxy-ip-list", proves: "enterprise DNS blocked: type 1 fails with a clear reason, type 2 works", build: proxy_ip_list, check: check_proxy_ip_list },
    Scenario { name: "ap-failover", proves: "the first access points are dead: the client reaches the next", build: ap_failover, check: check_ap_failover },
    Scenario { name: "relay-crash", proves: "the relay in use crashes mid-call: the client moves to the other relay and media resumes", build: relay_crash, check: check_relay_crash },
    Scenario { name: "udp-blocked", proves: "the policy allows TCP only: media falls back to the TCP tunnel", build: udp_blocked, check: check_udp_blocked },
    Scenario { name: "socks5", proves: "type 0 through the enterprise SOCKS5 server, the only host allowed out", build: socks5, check: check_socks5 },
    Scenario { name: "socks5-no-udp", proves: "the SOCKS5 server refuses UDP ASSOCIATE: media goes over TCP", build: socks5_no_udp, check: check_socks5_no_udp },
    Scenario { name: "in-channel-change", proves: "proxy keys during a call return -4; after leave and re-join the new config is in force", build: in_channel_change, check: check_in_channel_change },
    Scenario { name: "lossy-media", proves: "UDP loss, duplication and jitter mid-call: measured per stream, the call goes on", build: lossy_media, check: check_lossy_media },
    Scenario { name: "partition-heal", proves: "an enterprise is cut off from the relays, then healed: clients reconnect and media flows", build: partition_heal, check: check_partition_heal },
    Scenario { name: "open-relay-attack", proves: "forged, replayed and expired tickets and internal destinations are refused; other calls are unaffected", build: open_relay_attack, check: check_open_relay_attack },
    Scenario { name: "ticket-expiry", proves: "a call outlives its ticket, and a reconnect after expiry fetches a new one", build: ticket_expiry, check: check_ticket_expiry },
    Scenario { name: "crowd", proves: "200 clients in two enterprises join and talk; join-time percentiles and relay load", build: crowd, check: check_crowd },
];

/// Faster give-up for scenarios where failing is the point.
fn quick_give_up(config: &mut ClientConfig) {
    config.give_up_after = secs(10);
}

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
    spec.enterprises[0].clients[0].tune = quick_give_up;
    spec.enterprises[1].clients[0].tune = quick_give_up;
    spec.never_join = vec!["alice".into(), "bob".into()];
    spec
}

fn check_direct_blocked(_: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    vec![
        never_joined(outcome, "alice", "direct"),
        never_joined(outcome, "bob", "direct"),
        Check::new(
            "the firewall dropped the direct attempts",
            !outcome.firewalls.is_empty() && outcome.firewalls.values().all(|f| f.tcp_drop > 0),
            format!(
                "{:?}",
                outcome
                    .firewalls
                    .values()
                    .map(|f| f.tcp_drop)
                    .collect::<Vec<_>>()
            ),
        ),
        Check::new(
            "the edge saw no signalling",
            outcome.edge.signalling_messages == 0,
            format!("{} messages", outcome.edge.signalling_messages),
        ),
    ]
}

fn direct_open(seed: u64) -> WorldSpec {
    two_enterprises(seed, Policy::open(), &[], secs(12))
}

/// Both clients join, hear each other, and all their signalling is acknowledged.
fn check_call(spec: &WorldSpec, outcome: &WorldOutcome) -> Vec<Check> {
    vec![
        joined(outcome, "alice"),
        joined(outcome, "bob"),
        hears(outcome, spec, "alice", "bob", 200),
        hears(outcome, spec, "bob", "alice", 200),
        signalling_all_acked(outcome, "alice"),
        signalling_all_acked(outcome, "bob"),
    ]
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
    carol.tune = quick_give_up;
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
    let answered = |i: usize| outcome.aps.get(&ip(AP_IPS[i])).map_or(0, |c| c.answered);
    let answers: Vec<u64> = (0..AP_IPS.len()).map(answered).collect();
    checks.push(Check::new(
        "the dead access points answered nothing and a live one answered",
        answers[0] == 0 && answers[1] == 0 && answers[2] + answers[3] > 0,
        format!("answers per access point: {answers:?}"),
    ));
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

/// The fault "crash the relay NAME uses" took effect (it does nothing when NAME holds no
/// relay at that moment).
fn relay_in_use_crashed(outcome: &WorldOutcome, name: &str) -> Check {
    let fault = Fault::CrashRelayOf(name.into());
    let applied = outcome.faults_applied.iter().find(|(_, f)| *f == fault);
    let idle = outcome
        .faults_without_effect
        .iter()
        .find(|(_, f, _)| *f == fault);
    Check::new(
        format!("the relay {name} was using was crashed"),
        applied.is_some(),
        match (applied, idle) {
            (Some((at, _)), _) => format!("at {:.3} s", at.as_secs_f64()),
            (None, Some((at, _, why))) => {
                format!("at {:.3} s it did nothing: {why}", at.as_secs_f64())
            }
            (None, None) => "no such fault was scheduled".to_owned(),
        },
    )
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
    let refused = outcome.socks.values().map(|s| s.udp_refused).sum::<u64>();
    checks.push(Check::new(
        "the SOCKS5 server refused UDP ASSOCIATE",
        refused > 0,
        format!("{refused} refusals"),
    ));
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
    let codes: Vec<i32> = outcome
        .clients
        .get("alice")
        .map(|r| r.codes.iter().map(|(_, c)| *c).collect())
        .unwrap_or_default();
    let in_force = outcome
        .clients
        .get("alice")
        .and_then(|r| r.config_in_force.clone())
        .unwrap_or_default();
    let mut checks = vec![
        Check::new(
            "codes: set 0, join 0, set -4, set -4, leave 0, set 0, join 0, leave 0",
            codes == [0, 0, -4, -4, 0, 0, 0, 0],
            format!("{codes:?}"),
        ),
        Check::new(
            "the new config is in force after re-joining",
            in_force.contains("[2,"),
            in_force,
        ),
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
    let mut checks = vec![
        joined(outcome, "alice"),
        joined(outcome, "bob"),
        hears(outcome, spec, "alice", "bob", 300),
        hears(outcome, spec, "bob", "alice", 300),
        signalling_all_acked(outcome, "alice"),
        signalling_all_acked(outcome, "bob"),
        Check::new(
            "the impairments really happened",
            outcome.impairments.lost > 0
                && outcome.impairments.duplicated > 0
                && outcome.impairments.delayed > 0,
            format!("{:?}", outcome.impairments),
        ),
        stream_quality(outcome),
    ];
    // Loss and duplication, not reordering: the simulated links' own latency spread reorders
    // a few packets of every call, impaired or not.
    let (lost, duplicated) = outcome
        .clients
        .values()
        .flat_map(|r| r.media_from.values())
        .fold((0, 0), |(l, d), s| (l + s.lost, d + s.duplicated));
    checks.push(Check::new(
        "receivers saw the loss and the duplication",
        lost > 0 && duplicated > 0,
        format!("{lost} lost, {duplicated} duplicated over every stream"),
    ));
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
    let attempts = &outcome.attack.attempts;
    let answer = |what: &str| {
        attempts
            .iter()
            .find(|a| a.what == what)
            .map_or("not tried".to_owned(), |a| a.answer.clone())
    };
    let expect = |what: String, expected: &str| {
        let got = answer(&what);
        Check::new(
            format!("attack: {what} -> {expected}"),
            got == expected,
            got,
        )
    };
    let mut checks = vec![Check::new(
        "the attacker got a real ticket from the access point",
        outcome.attack.got_ticket,
        format!("{} attempts", attempts.len()),
    )];
    for dest in FORBIDDEN {
        checks.push(expect(
            format!("tunnel to {dest} with a valid ticket"),
            "destination refused",
        ));
    }
    checks.push(expect(
        "tunnel with a forged ticket".into(),
        "invalid ticket",
    ));
    checks.push(expect(
        "tunnel with a ticket whose expiry was extended".into(),
        "invalid ticket",
    ));
    checks.push(expect(
        "tunnel to SD-RTN with the valid ticket".into(),
        "accepted",
    ));
    checks.push(expect(
        "the same ticket again (replay)".into(),
        "ticket already used",
    ));
    checks.push(expect(
        "tunnel with an expired ticket".into(),
        "ticket expired",
    ));
    for what in [
        "UDP media to 10.0.0.1:53 on its own session",
        "UDP media to 8.8.8.8:53 on its own session",
        "UDP media on a made-up session",
    ] {
        let got = answer(what);
        checks.push(Check::new(
            format!("attack: {what} -> not relayed"),
            got != "not tried" && !got.starts_with("answered"),
            got,
        ));
    }
    let refused: u64 = outcome
        .relays
        .values()
        .map(|r| {
            r.counters.refused_destination
                + r.counters.refused_ticket_invalid
                + r.counters.refused_ticket_replayed
                + r.counters.refused_ticket_expired
        })
        .sum();
    checks.push(Check::new(
        "the relay counted every refusal",
        refused >= 10,
        format!("{refused} refusals counted"),
    ));
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
    let media_after_expiry = outcome
        .clients
        .get("alice")
        .is_some_and(|r| r.media_per_second.range(6..15).next().is_some());
    checks.push(Check::new(
        "alice's call goes on after her ticket expired (5 s)",
        media_after_expiry,
        "media between 6 s and 15 s",
    ));
    checks.push(relay_in_use_crashed(outcome, "alice"));
    checks.push(reconnected(outcome, "alice"));
    checks.push(outages_within(outcome, "alice", RECOVERY_BOUND));
    // Answers to alice's enterprise after her relay crashed, which is long after her first
    // ticket expired: the reconnect asked for a new one.
    let bank = spec.enterprises[0].clients_ip.to_string();
    let after = EXPIRED_RECONNECT_AT.as_micros() as u64;
    let answers = trace_events(outcome, "ap_request")
        .into_iter()
        .filter(|(t, v)| {
            *t >= after
                && v["answered"] == true
                && v["from"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(&format!("{bank}:")))
        })
        .count();
    checks.push(Check::new(
        "the reconnect fetched a fresh ticket from the access point",
        answers > 0,
        format!(
            "{answers} access point answers to {bank} after {} s (tickets last {} s)",
            EXPIRED_RECONNECT_AT.as_secs(),
            TICKET_LIFETIME.as_secs()
        ),
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
    let mut joins: Vec<Duration> = outcome
        .clients
        .values()
        .filter_map(|c| c.join_time)
        .collect();
    joins.sort();
    let total = outcome.clients.len();
    let pct = |p: usize| {
        joins
            .get((joins.len() * p / 100).min(joins.len().saturating_sub(1)))
            .map_or(0, |d| d.as_millis())
    };
    let deaf: Vec<&String> = outcome
        .clients
        .iter()
        .filter(|(_, c)| c.media_received() == 0)
        .map(|(n, _)| n)
        .collect();
    let load: Vec<String> = outcome
        .relays
        .iter()
        .map(|(ip, r)| {
            format!(
                "{ip}: {} sessions (peak {})",
                r.counters.sessions_opened, r.peak_sessions
            )
        })
        .collect();
    let unacked: usize = outcome
        .clients
        .values()
        .filter(|c| (c.signalling_acked.len() as u64) < c.signalling_sent)
        .count();
    vec![
        Check::new(
            format!("all {total} clients join"),
            joins.len() == total && total == 2 * CROWD_PER_ENTERPRISE as usize,
            format!(
                "{} joined; join ms p50 {} p90 {} p99 {} max {}",
                joins.len(),
                pct(50),
                pct(90),
                pct(99),
                joins.last().map_or(0, |d| d.as_millis())
            ),
        ),
        Check::new(
            "every client hears its channel",
            deaf.is_empty(),
            format!("{} deaf: {deaf:?}", deaf.len()),
        ),
        Check::new(
            "every client's signalling is acknowledged",
            unacked == 0,
            format!("{unacked} clients with unacknowledged messages"),
        ),
        Check::new(
            "both relays carry load",
            outcome
                .relays
                .values()
                .all(|r| r.counters.sessions_opened > 0),
            load.join("; "),
        ),
    ]
}
