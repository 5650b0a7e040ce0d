//! The differential test: one policy, two backends. For the seed policy and its variants (UDP
//! blocked, DNS blocked with type 1 and with type 2, nothing allowed, reject versus drop, one
//! relay only), the world `check-firewall` checks (an SDK client behind the policy, a peer in
//! an open enterprise) runs on a lab (real `serve`, `edge`, `call`, the policy compiled to
//! nftables on the enterprise's gateway, a real resolver) and in the simulation. They must
//! agree on joined or not, the signalling path and the media path; `check-firewall` must give
//! the same verdict; the allow rules each firewall counted must be the same ones; and the
//! gateway's ruleset, exported with `nft -j list ruleset`, must import as the policy it was
//! compiled from. Where they disagree, the failure names the flow: the per-rule table of
//! simulation verdicts against nftables packets.
//!
//! The variants run three labs at a time, each call a few seconds; `check-firewall` runs on a
//! thread of its own meanwhile. Traffic stays inside the labs (198.18.0.0/15).
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]

mod netlab_support;

use std::path::Path;
use std::time::{Duration, Instant};

use cloudproxy::netlab::{self, Rehearsal};
use cloudproxy_node::nodes::client::ClientSpec;
use cloudproxy_sim::firewall_check::{check_firewall, CheckRequest};
use cloudproxy_sim::policy::{DnsPolicy, Policy, Verdict};
use cloudproxy_sim::policy_formats::{canonical, from_nft, RulePart};
use cloudproxy_sim::world::WorldSpec;
use netlab_support::*;

const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;
const IP_LIST: &str = r#"{"rtc.proxy_server":[2,"[\"47.74.211.17\",\"52.80.192.229\",\"52.52.84.170\",\"47.96.234.219\"]",0]}"#;
/// Labs at a time.
const PARALLEL: usize = 3;

/// A policy variant, what the SDK sets, and what must happen.
struct Variant {
    name: &'static str,
    policy: Policy,
    params: Vec<&'static str>,
    secs: u64,
    /// `None`: never joins; `Some(media)`: joins with that media path.
    expect: Option<&'static str>,
}

fn seed_with(f: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy::seed();
    f(&mut p);
    p
}

fn variants() -> Vec<Variant> {
    let one_relay = |p: &mut Policy| {
        // Rules 1 and 4 (TCP 4000, UDP 4500-4650) name only the first relay.
        for i in [0, 3] {
            p.rules[i].to.truncate(1);
        }
    };
    let nothing = |default| Policy {
        default,
        dns: DnsPolicy::Public,
        rules: Vec::new(),
    };
    let v = |name, policy, params: &[&'static str], secs, expect| Variant {
        name,
        policy,
        params: params.to_vec(),
        secs,
        expect,
    };
    vec![
        v("seed", Policy::seed(), &[ENABLE], 6, Some("udp")),
        v(
            "udp-blocked",
            Policy::seed_tcp_only(),
            &[ENABLE],
            6,
            Some("tcp"),
        ),
        v(
            "dns-blocked-type-1",
            seed_with(|p| p.dns = DnsPolicy::Blocked),
            &[ENABLE],
            6,
            None,
        ),
        v(
            "dns-blocked-type-2",
            seed_with(|p| p.dns = DnsPolicy::Blocked),
            &[ENABLE, IP_LIST],
            6,
            Some("udp"),
        ),
        v(
            "nothing-allowed-drop",
            nothing(Verdict::Drop),
            &[ENABLE],
            6,
            None,
        ),
        v(
            "nothing-allowed-reject",
            nothing(Verdict::Reject),
            &[ENABLE],
            6,
            None,
        ),
        v(
            "seed-reject",
            seed_with(|p| p.default = Verdict::Reject),
            &[ENABLE],
            6,
            Some("udp"),
        ),
        // Handed the closed relay first, the client waits out a 5 s connect timeout.
        v(
            "one-relay-drop",
            seed_with(one_relay),
            &[ENABLE],
            10,
            Some("udp"),
        ),
        v(
            "one-relay-reject",
            seed_with(|p| {
                one_relay(p);
                p.default = Verdict::Reject;
            }),
            &[ENABLE],
            6,
            Some("udp"),
        ),
    ]
}

/// The world `check-firewall` checks: `sdk` behind the policy, `peer` in an open enterprise.
fn world(v: &Variant) -> WorldSpec {
    let mut spec = WorldSpec::new(1, Duration::from_secs(v.secs));
    let start = Duration::from_millis(100);
    let a = spec.enterprise("enterprise", "10.1.0.10", v.policy.clone());
    spec.enterprises[a]
        .clients
        .push(ClientSpec::new("sdk", 1, "check", &v.params, start));
    let b = spec.enterprise("open", "10.2.0.10", Policy::open());
    spec.enterprises[b]
        .clients
        .push(ClientSpec::new("peer", 2, "check", &[], start));
    spec
}

/// What is wrong with one variant's runs (empty: nothing).
///
/// The peer's media path is not compared, only whether it joined: it talks to the edge
/// directly, and the edge answers its UDP probe only with the SDK's media, so when the SDK's
/// media falls back to TCP after its own 2 s probe the peer's probe (also 2 s) races it, in
/// the simulation as on the lab. The firewall under test decides the SDK's paths.
fn judge(v: &Variant, r: &Rehearsal, check: &serde_json::Value) -> Vec<String> {
    let mut wrong: Vec<String> = r
        .comparison
        .disagreements()
        .into_iter()
        .filter(|d| d.starts_with("sdk (") || d.starts_with("peer (open): joined"))
        .collect();
    let sdk = r
        .comparison
        .clients
        .iter()
        .find(|c| c.name == "sdk")
        .expect("the sdk client");
    let real = &sdk.real;
    let seen = real.joined.then_some(real.media.as_str());
    if seen != v.expect {
        wrong.push(format!(
            "expected {:?}, the real run gave {seen:?}",
            v.expect
        ));
    }
    if check["joined"].as_bool() != Some(real.joined) {
        wrong.push(format!(
            "check-firewall says joined {}, the real run {}",
            check["joined"], real.joined
        ));
    }
    let real_media = if real.joined {
        real.media.as_str()
    } else {
        "none"
    };
    if check["media"].as_str() != Some(real_media) {
        wrong.push(format!(
            "check-firewall says media {}, the real run {real_media}",
            check["media"]
        ));
    }
    for (enterprise, rows) in &r.comparison.rules {
        for row in rows {
            let compared = matches!(
                row.part,
                RulePart::Allow(_) | RulePart::Inbound | RulePart::DnsBlocked
            );
            if compared && row.disagrees() {
                wrong.push(format!(
                    "{enterprise}: {}: the simulation counted {} verdicts, nftables {} packets",
                    row.rule, row.sim, row.real
                ));
            }
        }
    }
    // What the lab loaded, exported as an administrator would, reads back as the policy.
    let compiled = canonical(&r.real.mapping.policy(&v.policy));
    match from_nft(&r.real.outcome.rulesets[0]) {
        Ok(imported) if imported == compiled => {}
        Ok(imported) => wrong.push(format!(
            "the gateway's export imports as {imported:?}, not {compiled:?}"
        )),
        Err(e) => wrong.push(format!("the gateway's export does not import: {e}")),
    }
    wrong
}

#[test]
fn the_real_firewall_and_the_simulated_one_agree() {
    require_lab();
    let started = Instant::now();
    let variants = variants();
    let exe = Path::new(bin());
    let checks = std::thread::spawn({
        let requests: Vec<CheckRequest> = variants
            .iter()
            .map(|v| {
                CheckRequest::new(
                    v.policy.clone(),
                    v.params.iter().map(|p| (*p).to_owned()).collect(),
                    1,
                )
            })
            .collect();
        move || {
            requests
                .iter()
                .map(|r| check_firewall(r).expect("check-firewall runs").to_json())
                .collect::<Vec<_>>()
        }
    });
    let mut rehearsals: Vec<Rehearsal> = Vec::new();
    for batch in variants.chunks(PARALLEL) {
        let done: Vec<Result<Rehearsal, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|v| {
                    s.spawn(move || {
                        netlab::block_on(netlab::rehearse(
                            world(v),
                            exe,
                            Duration::from_secs(v.secs),
                        ))
                        .map_err(|e| format!("{}: {e}", v.name))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        for r in done {
            rehearsals.push(r.unwrap_or_else(|e| panic!("a lab could not run: {e}")));
        }
    }
    let checks = checks.join().expect("check-firewall does not panic");
    let mut report = String::new();
    let mut failed = 0;
    for ((v, r), check) in variants.iter().zip(&rehearsals).zip(&checks) {
        let wrong = judge(v, r, check);
        let sdk = r
            .comparison
            .clients
            .iter()
            .find(|c| c.name == "sdk")
            .unwrap();
        report.push_str(&format!(
            "{:<24} real: {:<48} simulation: {:<48} check-firewall: joined {} media {}\n",
            v.name,
            sdk.real.path(),
            sdk.sim.path(),
            check["joined"],
            check["media"]
        ));
        if !wrong.is_empty() {
            failed += 1;
            for w in &wrong {
                report.push_str(&format!("  DISAGREES {w}\n"));
            }
            report.push_str(&r.comparison.rules_text());
        }
    }
    eprintln!(
        "{report}differential: {} variants in {:.1} s",
        variants.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        failed, 0,
        "the real and the simulated firewall disagree:\n{report}"
    );
}

/// The canary: a real firewall that is not the simulated one (its UDP rules left out) is
/// caught, and the failure names the flow: the media rule the simulation used and nftables
/// never counted, and the default that counted the media datagrams instead.
#[test]
fn a_firewall_that_differs_is_caught_and_the_flow_named() {
    require_lab();
    let v = &variants()[0];
    let sim_spec = world(v);
    let mut real_spec = world(v);
    real_spec.enterprises[0].policy = Policy::seed_tcp_only();
    let duration = Duration::from_secs(v.secs);
    let sim = netlab::SimRun::from(cloudproxy_sim::world::run_world(&sim_spec));
    let real = netlab::block_on(netlab::run_real(&real_spec, Path::new(bin()), duration))
        .expect("the lab runs");
    let comparison = netlab::compare(&sim_spec, &sim, &real.outcome, &real.mapping);
    let found = comparison.disagreements();
    // The SDK's flow is always caught. The peer's media usually follows the SDK's (the relay
    // carries both ways on the path it has), but not in every run: under load the peer's
    // report has also come back with UDP media (twice in a day's full runs), so its line is
    // checked only when present.
    assert!(
        (1..=2).contains(&found.len()),
        "the SDK's disagreement, perhaps the peer's: {found:?}"
    );
    if let Some(peer) = found.get(1) {
        assert!(
            peer.starts_with("peer (open): media: simulation udp, real tcp"),
            "{found:?}"
        );
    }
    let line = &found[0];
    for needle in [
        "sdk (enterprise): media: simulation udp, real tcp; rules counted differently: ",
        "cloudproxy rule 3: udp to 47.74.211.17, 52.80.192.229, 52.52.84.170, 47.96.234.219 ports 1080, 8000, 25000, 9700: simulation 1, nftables 0 packets",
        "cloudproxy rule 4: udp to 120.92.118.34, 120.92.18.162 ports 4500-4650: simulation ",
        "default drop: simulation 0, nftables ",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line}");
    }
}
