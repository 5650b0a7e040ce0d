//! `cloudproxy netlab up|run|down` on this machine's network namespaces: what `up` makes is
//! there and works (the enterprise resolver through the system's resolver, the gateway's
//! firewall counting per rule, unsolicited inbound traffic dropped, the export importing as the
//! policy), two labs live side by side, and `down` removes exactly what a lab made. A run
//! interrupted (SIGINT, SIGTERM), a run whose `serve` dies, and a run killed outright (then
//! `down`) leave nothing behind: no namespace, link, `/etc/netns` entry, state or process.
//!
//! Traffic stays inside the namespaces the tests create (198.18.0.0/15).

mod netlab_support;

use std::time::Duration;

use cloudproxy::netlab::{addr_map, LabState};
use cloudproxy_sim::policy::Policy;
use cloudproxy_sim::policy_formats::{canonical, from_nft, nft_counters};
use netlab_support::*;

const UP: Duration = Duration::from_secs(60);

fn up(args: &[&str]) -> LabState {
    let mut all = vec!["netlab", "up"];
    all.extend_from_slice(args);
    let out = cloudproxy(&all, UP);
    assert!(
        out.status.success(),
        "netlab up failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    for needle in [
        "47.74.211.17     198.18.1.1     access point 1",
        "120.92.18.162    198.18.2.2     relay 2",
        "101.36.1.10      198.18.3.10    SD-RTN edge",
        "10.1.0.10        198.19.1.10    bank: SDK clients",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    state_of(&id_in(&stdout))
}

fn counter(ns: &str, prefix: &str) -> u64 {
    let out = in_ns(ns, &["nft", "-j", "list", "ruleset"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    nft_counters(&text(&out.stdout))
        .unwrap()
        .iter()
        .filter(|(c, _)| c.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn up_makes_a_working_lab_and_down_removes_exactly_it() {
    require_lab();
    let links_before = host_links();
    let blocked = temp_file(
        "dns-blocked.toml",
        &cloudproxy_sim::policy::SEED_POLICY_TOML.replace("dns = \"public\"", "dns = \"blocked\""),
    );
    let a = up(&[]);
    let b = up(&["--policy", blocked.to_str().unwrap()]);
    remove_temp(&blocked);
    assert_ne!(a.id, b.id);
    let all = namespaces();
    for state in [&a, &b] {
        for ns in &state.namespaces {
            assert!(all.contains(ns), "{ns} missing: {all:?}");
            assert!(ns.starts_with(&format!("cpnl-{}-", state.id)));
        }
        assert_eq!(state.namespaces.len(), 7, "{state:?}");
        let names: Vec<&str> = state.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["resolver bank", "resolver hospital", "edge", "serve"]
        );
        assert!(state.processes.iter().all(alive), "{state:?}");
    }
    // No interface of either lab exists in the host's namespace.
    assert_eq!(host_links(), links_before);

    // The enterprise resolver, through the system's resolver (/etc/netns/<ns>/resolv.conf):
    // the access points' lab addresses; refused where the policy blocks DNS.
    let bank = format!("cpnl-{}-bank", a.id);
    let out = in_ns(&bank, &["getent", "ahostsv4", "ap-proxy.agora.io"]);
    let found = text(&out.stdout);
    for i in 0..4 {
        assert!(found.contains(&addr_map::ap(i).to_string()), "{found}");
    }
    let out = in_ns(
        &format!("cpnl-{}-bank", b.id),
        &["getent", "ahostsv4", "ap-proxy.agora.io"],
    );
    assert!(
        !out.status.success(),
        "resolved although blocked: {}",
        text(&out.stdout)
    );

    // The gateway: what it loaded reads back as the policy; a denied datagram is counted on
    // the default, an unsolicited one from outside on the inbound guard, an allowed one on its
    // rule.
    let gw = format!("cpnl-{}-bank-gw", a.id);
    let export = in_ns(&gw, &["nft", "-j", "list", "ruleset"]);
    let mapping = cloudproxy::netlab::LabPlan::from_world(&cloudproxy::netlab::default_world(
        &Policy::seed(),
    ))
    .unwrap()
    .mapping();
    assert_eq!(
        from_nft(&text(&export.stdout)).unwrap(),
        canonical(&mapping.policy(&Policy::seed()))
    );
    let before = (
        counter(&gw, "cloudproxy default drop"),
        counter(&gw, "cloudproxy inbound"),
        counter(&gw, "cloudproxy rule 4:"),
    );
    let send = |ns: &str, to: &str| {
        let out = in_ns(ns, &["bash", "-c", &format!("echo probe > /dev/udp/{to}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    send(&bank, "198.18.2.1/9999");
    send(&format!("cpnl-{}-cloud", a.id), "198.19.1.10/40000");
    send(&bank, "198.18.2.1/4500");
    let after = (
        counter(&gw, "cloudproxy default drop"),
        counter(&gw, "cloudproxy inbound"),
        counter(&gw, "cloudproxy rule 4:"),
    );
    assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1));

    // Down removes lab a, and only it.
    let out = cloudproxy(&["netlab", "down", "--id", &a.id], UP);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("4 process(es) stopped"),
        "{}",
        text(&out.stdout)
    );
    assert_gone(&a);
    assert!(b.processes.iter().all(alive));
    assert!(b.namespaces.iter().all(|n| namespaces().contains(n)));
    let out = cloudproxy(&["netlab", "down", "--id", &format!("cpnl-{}", b.id)], UP);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_gone(&b);
    assert_eq!(host_links(), links_before);
}

/// A run interrupted by `signal` while its calls run: it says so, exits 1, and leaves nothing.
fn interrupted(signal: &str) {
    require_lab();
    let child = start_run(&["proxy-default", "--for", "30"]);
    let state = lab_of(child.id(), &["call alice", "call bob"], UP);
    assert!(state.processes.iter().all(alive), "{state:?}");
    kill(child.id(), signal);
    let out = wait_child(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("interrupted by SIG{signal}")),
        "{}",
        text(&out.stderr)
    );
    assert_gone(&state);
}

#[test]
fn an_interrupt_removes_everything_the_run_made() {
    interrupted("INT");
}

#[test]
fn a_termination_removes_everything_the_run_made() {
    interrupted("TERM");
}

#[test]
fn a_dead_serve_fails_the_run_naming_it_and_leaves_nothing() {
    require_lab();
    let child = start_run(&["proxy-default", "--for", "30"]);
    let state = lab_of(child.id(), &["serve", "call alice", "call bob"], UP);
    let serve = state.processes.iter().find(|p| p.name == "serve").unwrap();
    kill(serve.pid, "KILL");
    let out = wait_child(child, Duration::from_secs(30));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("serve exited during the run"), "{stderr}");
    assert_gone(&state);
}

#[test]
fn down_removes_what_a_killed_run_left() {
    require_lab();
    let mut child = start_run(&["proxy-default", "--for", "30"]);
    let state = lab_of(child.id(), &["serve", "call alice", "call bob"], UP);
    child.kill().expect("SIGKILL the run");
    let _ = child.wait();
    // Killed outright, it could clean nothing: its services and namespaces are still there.
    let now = namespaces();
    assert!(state.namespaces.iter().all(|n| now.contains(n)));
    assert!(state.processes.iter().any(alive));
    let out = cloudproxy(&["netlab", "down", "--id", &state.id], UP);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The state file on disk may record more than this copy (the calls started since).
    assert_gone(&state);
}

/// A namespace of this test for a scratch firewall, deleted when dropped.
struct Scratch(String);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
    }
}

/// The administrator's rehearsal: a ruleset exported with `nft -j list ruleset` (written on
/// the seed's addresses, as a real firewall has them) runs as the lab's firewall with real
/// calls, and agrees with the simulation; scenarios a lab cannot run are refused with why.
#[test]
fn run_rehearses_an_exported_ruleset_and_refuses_what_it_cannot_run() {
    require_lab();
    let scratch = Scratch(format!("cp-test-netlab-{}", std::process::id()));
    let out = run(
        std::process::Command::new("ip").args(["netns", "add", &scratch.0]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut policy = Policy::seed();
    policy.default = cloudproxy_sim::policy::Verdict::Reject;
    let compiled = cloudproxy_sim::policy_formats::compile_nft(
        &policy,
        &cloudproxy_sim::policy_formats::CompileOptions::new(
            "admin",
            cloudproxy_sim::policy_formats::Hook::Forward,
        ),
    );
    let ruleset = temp_file("admin.nft", &compiled);
    let out = in_ns(&scratch.0, &["nft", "-f", ruleset.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = in_ns(&scratch.0, &["nft", "-j", "list", "ruleset"]);
    let exported = temp_file("admin.json", &text(&export.stdout));
    let out = cloudproxy(
        &[
            "netlab",
            "run",
            "proxy-default",
            "--from-nft",
            exported.to_str().unwrap(),
            "--for",
            "4",
        ],
        Duration::from_secs(90),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("proxy-default      pass "), "{stdout}");
    assert!(stdout.contains("type 1 via 120.92."), "{stdout}");
    assert!(
        stdout.contains(
            "1 agree, 0 disagree. Reproduce: cloudproxy netlab run proxy-default --from-nft "
        ),
        "{stdout}"
    );
    remove_temp(&exported);
    remove_temp(&ruleset);
    for (args, why) in [
        (&["netlab", "run", "relay-crash"][..], "fault"),
        (&["netlab", "run", "no-such"][..], "no scenario named"),
        (
            &["netlab", "run", "proxy-default", "--for", "1"][..],
            "--for 1",
        ),
    ] {
        let out = cloudproxy(args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Type 0 through real SOCKS5 servers on the enterprise's gateway: dante relays UDP (media over
/// UDP), microsocks does not (media falls back to TCP), as the simulation's server does with and
/// without UDP ASSOCIATE.
#[test]
fn socks5_through_dante_and_microsocks_agrees_with_the_simulation() {
    require_lab();
    let out = cloudproxy(
        &["netlab", "run", "socks5", "socks5-no-udp", "--for", "5"],
        Duration::from_secs(120),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("2 agree, 0 disagree"), "{stdout}");
    for needle in [
        "socks5             pass ",
        "socks5-no-udp      pass ",
        "alice    real: type 0 via 10.1.0.2:1080, media udp; simulation: type 0 via 10.1.0.2:1080, media udp",
        "alice    real: type 0 via 10.1.0.2:1080, media tcp; simulation: type 0 via 10.1.0.2:1080, media tcp",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
}
