//! Every scenario of the catalogue, as a deterministic test with a fixed seed, its story pinned
//! by an insta snapshot (the checks it ran, then the key events in order: `t_ms node event`,
//! see `cloudproxy_sim::timeline`), and the determinism self-check.

use std::fmt::Write as _;

use cloudproxy_sim::scenario::{catalogue, find, RunResult};
use cloudproxy_sim::timeline::{key_events, render};

const SEED: u64 = 1;

fn run(name: &str) -> RunResult {
    let scenario = find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let result = scenario.run(SEED);
    if !result.passed() {
        let failed: Vec<String> = result
            .failed_checks()
            .map(|c| format!("  {}: {}", c.name, c.detail))
            .collect();
        panic!(
            "{name} failed:\n{}\nreproduce: {}",
            failed.join("\n"),
            result.reproduce()
        );
    }
    result
}

/// What a scenario did: the checks it ran, then its key events (of the `focus` clients only,
/// the others counted, for the crowd).
fn story(result: &RunResult, focus: Option<&[&str]>) -> String {
    let mut out = String::new();
    writeln!(out, "scenario {} seed {}", result.name, result.seed).unwrap();
    writeln!(out, "checks").unwrap();
    for check in &result.checks {
        let verdict = if check.ok { "ok  " } else { "FAIL" };
        writeln!(out, "  {verdict} {}", check.name).unwrap();
    }
    writeln!(out, "key events (t_ms node event)").unwrap();
    out.push_str(&render(&key_events(&result.outcome.trace), focus));
    out
}

/// Runs `name`, requires every check to pass, and pins its story as snapshot `snapshot` (a
/// literal, so that the check for unreferenced snapshots finds it in this file).
fn check_and_snapshot(name: &str, snapshot: &str, focus: Option<&[&str]>) {
    let result = run(name);
    assert_eq!(result.outcome.trace.dropped(), 0, "the trace hit its cap");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots/sim"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(snapshot, story(&result, focus)));
}

/// One test per scenario, named after it, with its snapshot's name.
macro_rules! scenario_tests {
    ($($test:ident: $name:literal => $snapshot:literal $(, focus $focus:expr)?;)*) => {
        $(
            #[test]
            fn $test() {
                #[allow(unused_mut, unused_assignments)]
                let mut focus: Option<&[&str]> = None;
                $(focus = Some($focus);)?
                check_and_snapshot($name, $snapshot, focus);
            }
        )*

        /// The scenarios the tests above cover, in order.
        const TESTED: &[&str] = &[$($name),*];
    };
}

scenario_tests! {
    direct_blocked: "direct-blocked" => "scenario_direct-blocked";
    direct_open: "direct-open" => "scenario_direct-open";
    proxy_default: "proxy-default" => "scenario_proxy-default";
    proxy_ip_list: "proxy-ip-list" => "scenario_proxy-ip-list";
    ap_failover: "ap-failover" => "scenario_ap-failover";
    relay_crash: "relay-crash" => "scenario_relay-crash";
    udp_blocked: "udp-blocked" => "scenario_udp-blocked";
    socks5: "socks5" => "scenario_socks5";
    socks5_no_udp: "socks5-no-udp" => "scenario_socks5-no-udp";
    in_channel_change: "in-channel-change" => "scenario_in-channel-change";
    lossy_media: "lossy-media" => "scenario_lossy-media";
    partition_heal: "partition-heal" => "scenario_partition-heal";
    open_relay_attack: "open-relay-attack" => "scenario_open-relay-attack";
    ticket_expiry: "ticket-expiry" => "scenario_ticket-expiry";
    crowd: "crowd" => "scenario_crowd", focus &["bank-000", "hospital-000", "bank-099", "hospital-099"];
    ap_failover_racing: "ap-failover-racing" => "scenario_ap-failover-racing";
    automatic_open: "automatic-open" => "scenario_automatic-open";
    automatic_fallback: "automatic-fallback" => "scenario_automatic-fallback";
    force_tcp_443: "force-tcp-443" => "scenario_force-tcp-443";
    http_proxy: "http-proxy" => "scenario_http-proxy";
    http_proxy_auth: "http-proxy-auth" => "scenario_http-proxy-auth";
    nat_rebinding: "nat-rebinding" => "scenario_nat-rebinding";
    address_change: "address-change" => "scenario_address-change";
    vpn_blocks_udp: "vpn-blocks-udp" => "scenario_vpn-blocks-udp";
}

#[test]
fn every_scenario_of_the_catalogue_has_its_test_and_snapshot() {
    let names: Vec<&str> = catalogue().iter().map(|s| s.name).collect();
    assert_eq!(TESTED, names.as_slice());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots/sim");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("snapshots/sim")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("scenario_") && f.ends_with(".snap"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("scenario_{n}.snap")).collect();
    expected.sort();
    assert_eq!(files, expected, "a scenario snapshot without its scenario");
}

#[test]
fn same_seed_same_trace_and_different_seed_different_trace() {
    let scenario = find("proxy-default").unwrap();
    let a = scenario.run(7).outcome.trace;
    let b = scenario.run(7).outcome.trace;
    assert!(a.len() > 10);
    assert_eq!(
        (a.dropped(), b.dropped()),
        (0, 0),
        "a capped trace proves less"
    );
    assert_eq!(
        a.lines(),
        b.lines(),
        "the same seed must give the same trace, byte for byte"
    );
    let c = scenario.run(8).outcome.trace;
    assert_ne!(
        a.hash(),
        c.hash(),
        "a different seed must give a different trace"
    );
}

/// Differential: the same call, direct on an open network and through the cloud proxy behind
/// the seed firewall, delivers the same application messages.
#[test]
fn differential_direct_and_proxied_deliver_the_same_messages() {
    let direct_spec = find("direct-open").unwrap().world(SEED);
    let proxied_spec = find("proxy-default").unwrap().world(SEED);
    assert_eq!(direct_spec.duration, proxied_spec.duration);
    let direct = cloudproxy_sim::world::run_world(&direct_spec);
    let proxied = cloudproxy_sim::world::run_world(&proxied_spec);
    let checks = cloudproxy_sim::scenario::differential(&direct_spec, &direct, &proxied);
    assert!(!checks.is_empty());
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
