//! The model's flows and rules, offline; the exploration's verdicts over seeds and policies;
//! the suggested rules verified and minimal, checked again from outside.

use std::net::SocketAddr;
use std::sync::Mutex;

use serde_json::Value;

use super::model::{self, Route};
use super::*;
use crate::policy::{Proto, Verdict};
use crate::policy_formats::render::rule_toml;
use crate::world::ip;

const RELAY_A: &str = "120.92.118.34";
const RELAY_B: &str = "120.92.18.162";

fn cloud() -> Route {
    Route::new(Some(&ProxyServer::default_cloud()), |_| true, None).unwrap()
}

fn policy(text: &str) -> Policy {
    text.parse().unwrap()
}

fn texts(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| report::rule_json(r).to_string())
        .collect()
}

/// The seed whitelist with the rules for `relay` (TCP 4000, UDP 4500-4650) taken out, under
/// `default`.
fn one_relay(default: &str) -> Policy {
    let mut p = Policy::seed();
    p.default = match default {
        "reject" => Verdict::Reject,
        _ => Verdict::Drop,
    };
    for rule in &mut p.rules {
        rule.to.retain(|c| c.addr() != ip(RELAY_B));
    }
    p
}

#[test]
fn candidates_are_every_flow_of_every_path_minus_what_is_open() {
    let route = cloud();
    assert!(model::best_path_candidates(&route, &Policy::seed()).is_empty());
    assert!(model::best_path_candidates(&route, &Policy::open()).is_empty());
    // TCP-only: the access points answer over TCP, so only the relays' UDP is a candidate.
    assert_eq!(
        texts(&model::best_path_candidates(
            &route,
            &Policy::seed_tcp_only()
        )),
        [r#"{"ports":["4500-4650"],"proto":"udp","to":["120.92.118.34","120.92.18.162"]}"#]
    );
    // Deny-all: the vendor's four rules, in the documented order, with the client's ports.
    let all = model::best_path_candidates(&route, &policy("default = \"drop\""));
    assert_eq!(
        texts(&all),
        [
            r#"{"ports":["4000"],"proto":"tcp","to":["120.92.118.34","120.92.18.162"]}"#,
            r#"{"ports":["1080","8000","25000","9700"],"proto":"tcp","to":["47.74.211.17","52.80.192.229","52.52.84.170","47.96.234.219"]}"#,
            r#"{"ports":["1080","8000","25000","9700"],"proto":"udp","to":["47.74.211.17","52.80.192.229","52.52.84.170","47.96.234.219"]}"#,
            r#"{"ports":["4500-4650"],"proto":"udp","to":["120.92.118.34","120.92.18.162"]}"#,
        ]
    );
    // The TOML pastes into a policy, and then nothing is a candidate any more.
    let pasted: String = all.iter().map(rule_toml).collect::<Vec<_>>().join("\n");
    let fixed = policy(&format!("default = \"drop\"\n{pasted}"));
    assert!(model::best_path_candidates(&route, &fixed).is_empty());
    // Half the range open on one relay: the rest is what is missing, per relay.
    let partial = policy("default = \"drop\"\n[[allow]]\nproto = \"udp\"\nto = [\"120.92.118.34\"]\nports = [\"4500-4600\"]\n[[allow]]\nproto = \"tcp\"\nto = [\"0.0.0.0/0\"]\nports = [\"1-65535\"]");
    assert_eq!(
        texts(&model::best_path_candidates(&route, &partial)),
        [
            r#"{"ports":["4601-4650"],"proto":"udp","to":["120.92.118.34"]}"#,
            r#"{"ports":["4500-4650"],"proto":"udp","to":["120.92.18.162"]}"#,
        ]
    );
    // The relay's port is chosen at run time: the runs pin it to one the policy does not open.
    let pins = model::pins(&route, &partial);
    assert_eq!(pins.relay_udp[&ip(RELAY_A)], 4601);
    assert_eq!(
        model::pins(&route, &Policy::seed()).relay_udp[&ip(RELAY_A)],
        4500
    );
}

#[test]
fn resilience_candidates_are_the_relays_and_access_points_one_loss_leaves() {
    let route = cloud();
    assert!(model::resilience_candidates(&route, &Policy::seed()).is_empty());
    assert_eq!(
        texts(&model::resilience_candidates(&route, &one_relay("reject"))),
        [
            r#"{"ports":["4000"],"proto":"tcp","to":["120.92.18.162"]}"#,
            r#"{"ports":["4500-4650"],"proto":"udp","to":["120.92.18.162"]}"#,
        ]
    );
    let one_ap = policy("default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = [\"47.74.211.17\", \"120.92.118.34\", \"120.92.18.162\"]\nports = [\"1-65535\"]\n[[allow]]\nproto = \"udp\"\nto = [\"120.92.118.34\", \"120.92.18.162\"]\nports = [\"4500-4650\"]");
    let rules = model::resilience_candidates(&route, &one_ap);
    assert_eq!(rules.len(), 2, "{:?}", texts(&rules));
    assert_eq!(rules[0].proto, Proto::Tcp);
    assert_eq!(rules[0].to.len(), 3, "the three other access points");
}

#[test]
fn cases_cover_each_relay_and_each_resolver_answer_left_open() {
    let route = cloud();
    assert_eq!(model::cases(&route, &Policy::seed(), true).len(), 2);
    let both = model::cases(&route, &Policy::seed(), false);
    assert_eq!(both.len(), 3, "{both:?}");
    assert_eq!(both[2].dns, DnsPolicy::Blocked);
    assert_eq!(both[2].relay_first, None);
    let list = Route::new(
        Some(&ProxyServer::CloudIpList {
            ips: vec![ip("47.74.211.17")],
            port: 0,
        }),
        |_| true,
        None,
    )
    .unwrap();
    assert_eq!(model::cases(&list, &Policy::seed(), false).len(), 2);
    let socks = Route::new(
        Some(&ProxyServer::Socks5("10.1.0.2:1080".parse().unwrap())),
        |_| true,
        None,
    )
    .unwrap();
    assert_eq!(model::cases(&socks, &Policy::seed(), false).len(), 1);
    assert_eq!(
        model::cases(&Route::Direct, &Policy::seed(), false).len(),
        1
    );
}

#[test]
fn the_predicted_join_counts_the_client_timers_a_policy_costs() {
    let route = cloud();
    let case = |r: &str| Case {
        relay_first: Some(ip(r)),
        dns: DnsPolicy::Public,
    };
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(
        model::predicted_join(&route, &Policy::seed(), &case(RELAY_B)),
        secs(0)
    );
    assert_eq!(
        model::predicted_join(&route, &one_relay("drop"), &case(RELAY_B)),
        secs(5)
    );
    assert_eq!(
        model::predicted_join(&route, &one_relay("reject"), &case(RELAY_B)),
        secs(0)
    );
    let mut first_ap_dropped = Policy::seed();
    for rule in &mut first_ap_dropped.rules {
        rule.to.retain(|c| c.addr() != ip("47.74.211.17"));
    }
    assert_eq!(
        model::predicted_join(&route, &first_ap_dropped, &case(RELAY_A)),
        secs(4)
    );
    let mut blocked = Policy::seed();
    blocked.dns = DnsPolicy::Blocked;
    let refused = Case {
        relay_first: None,
        dns: DnsPolicy::Blocked,
    };
    assert_eq!(model::predicted_join(&route, &blocked, &refused), None);
}

#[test]
fn socks_and_direct_routes_suggest_only_real_addresses() {
    let server: SocketAddr = "10.1.0.2:1080".parse().unwrap();
    let socks = Route::new(Some(&ProxyServer::Socks5(server)), |_| true, None).unwrap();
    let deny = policy("default = \"drop\"");
    assert_eq!(
        texts(&model::best_path_candidates(&socks, &deny)),
        [
            r#"{"ports":["1080"],"proto":"tcp","to":["10.1.0.2"]}"#,
            r#"{"ports":["32768-60999"],"proto":"udp","to":["10.1.0.2"]}"#,
        ]
    );
    let stated = Route::new(
        Some(&ProxyServer::Socks5(server)),
        |_| true,
        Some(40000..=40099),
    )
    .unwrap();
    assert_eq!(
        texts(&model::best_path_candidates(&stated, &deny))[1],
        r#"{"ports":["40000-40099"],"proto":"udp","to":["10.1.0.2"]}"#
    );
    assert!(model::best_path_candidates(&Route::Direct, &deny).is_empty());
    // Type 2 with the documented access points parses, strictly.
    let server = proxy_server(&[type2_params()], false).unwrap();
    assert!(
        matches!(server, Some(ProxyServer::CloudIpList { ref ips, port: 0 }) if ips.len() == 4),
        "{server:?}"
    );
}

/// The verdict without timings (which follow the simulated latencies of the seed).
fn verdict_of(report: &CheckReport) -> Value {
    let j = report.to_json();
    let paths: Vec<Value> = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            serde_json::json!([
                p["label"],
                p["behind"]["joined"],
                p["behind"]["media"],
                p["behind"]["signalling"],
                p["takes_best"]
            ])
        })
        .collect();
    let checks: Vec<Value> = j["resilience"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!([c["lost"], c["survived"], c["via"], c["media"]]))
        .collect();
    serde_json::json!({
        "joined": j["joined"], "media": j["media"], "missing": j["missing"],
        "resilience_missing": j["resilience_missing"], "resilient": j["resilient"],
        "nothing_missing": j["nothing_missing"], "best_path": j["best_path"],
        "summary": j["summary"], "missing_reason": j["missing_reason"], "denied": j["denied"],
        "paths": paths, "checks": checks, "runtime_ports": j["runtime_ports"],
        "alternative": j["alternative"].get("report").map(|a| a["summary"].clone()),
    })
}

fn check(policy: &Policy, params: &[&str], seed: u64) -> CheckReport {
    let request = CheckRequest::new(
        policy.clone(),
        params.iter().map(|p| (*p).to_owned()).collect(),
        seed,
    );
    check_firewall(&request).unwrap()
}

#[test]
fn verdicts_are_the_same_for_every_seed() {
    let mut dns_blocked = Policy::seed();
    dns_blocked.dns = DnsPolicy::Blocked;
    let policies = [
        ("one relay, drop", one_relay("drop"), 6),
        ("seed", Policy::seed(), 3),
        ("tcp only", Policy::seed_tcp_only(), 3),
        ("dns blocked", dns_blocked, 3),
    ];
    for (name, policy, seeds) in policies {
        let first = check(&policy, &[], 1);
        let expected = verdict_of(&first);
        for seed in 2..=seeds {
            let report = check(&policy, &[], seed);
            assert_eq!(
                verdict_of(&report),
                expected,
                "{name}, seed {seed} vs seed 1"
            );
        }
        match name {
            "one relay, drop" => {
                assert_eq!(first.resilience.resilient, Some(false), "{expected}");
                assert_eq!(
                    first.resilience.text,
                    "no, only 120.92.118.34 is reachable; losing it drops the call"
                );
                assert_eq!(first.missing.len(), 2, "{expected}");
            }
            "seed" => assert!(first.nothing_missing, "{expected}"),
            "tcp only" => assert_eq!(first.media(), Media::Tcp),
            _ => {
                assert!(!first.joined() && !first.nothing_missing, "{expected}");
                assert!(!first.summary.contains("Nothing is missing"), "{expected}");
                assert!(first.missing.is_empty());
                assert!(first.missing_reason.is_some(), "{expected}");
                let alt = first.alternative.as_ref().expect("type 2 instead");
                assert!(
                    alt.report.joined() && alt.report.nothing_missing,
                    "{expected}"
                );
            }
        }
    }
}

#[test]
fn the_rules_for_the_best_path_are_verified_and_minimal() {
    let policy = one_relay("drop");
    let report = check(&policy, &[], 1);
    let verification = report.missing_verified.expect("verified");
    assert!(verification.verified && verification.minimal);
    assert_eq!(report.missing.len(), 2);
    // From outside: with them, nothing is missing; without any one, the best path is lost.
    let fixed = check(&model::with_rules(&policy, &report.missing), &[], 1);
    assert!(fixed.nothing_missing, "{}", fixed.summary);
    for i in 0..report.missing.len() {
        let mut fewer = report.missing.clone();
        fewer.remove(i);
        let without = check(&model::with_rules(&policy, &fewer), &[], 1);
        assert!(
            !without.best_path_taken(),
            "without rule {}: {}",
            i + 1,
            without.summary
        );
    }
}

#[test]
fn the_rules_for_resilience_are_verified_and_minimal() {
    // A rejected relay costs no time: the best path holds, but losing the other relay drops
    // the call.
    let policy = one_relay("reject");
    let report = check(&policy, &[], 1);
    assert!(
        report.best_path_taken() && report.missing.is_empty(),
        "{}",
        report.summary
    );
    assert_eq!(report.resilience.resilient, Some(false));
    assert_eq!(
        texts(&report.resilience_missing),
        [
            r#"{"ports":["4000"],"proto":"tcp","to":["120.92.18.162"]}"#,
            r#"{"ports":["4500-4650"],"proto":"udp","to":["120.92.18.162"]}"#,
        ]
    );
    let v = report.resilience_verified.expect("verified");
    assert!(v.verified && v.minimal);
    assert!(report
        .summary
        .starts_with("Missing for resilience: 2 allow rule(s)."));
    let fixed = check(
        &model::with_rules(&policy, &report.resilience_missing),
        &[],
        1,
    );
    assert!(fixed.nothing_missing, "{}", fixed.summary);
    let mut fewer = report.resilience_missing.clone();
    fewer.remove(1);
    let degraded = check(&model::with_rules(&policy, &fewer), &[], 1);
    assert!(
        !degraded.nothing_missing,
        "udp on the other relay is needed for the best path"
    );
}

#[test]
fn the_proxy_off_suggests_no_simulation_address_and_checks_the_proxy_on() {
    let report = check(&Policy::seed(), &[r#"{"rtc.enable_proxy":false}"#], 1);
    assert!(!report.joined());
    assert!(
        report.suggestions().is_empty(),
        "{:?}",
        report.suggestions()
    );
    assert!(!report.to_json().to_string().contains("\"101.36.1.10\""));
    let alt = report.alternative.as_ref().expect("the proxy on");
    assert_eq!(alt.params, [DEFAULT_PARAMS]);
    assert!(alt.report.joined() && alt.report.nothing_missing);
    let text = report.to_text("seed.toml", Format::Toml, &target());
    assert!(
        text.contains("instead     the proxy on, setParameters {\"rtc.enable_proxy\":true} (the cloud proxy by domain, the default): joins behind this policy (udp media); resilient; nothing is missing"),
        "{text}"
    );
    assert!(report.missing_reason.is_some());
}

#[test]
fn a_socks5_udp_port_chosen_at_run_time_asks_for_its_range_and_names_the_setting() {
    let only_tcp = policy(
        "default = \"drop\"\n[[allow]]\nproto = \"tcp\"\nto = [\"10.1.0.2\"]\nports = [\"1080\"]",
    );
    let params = [r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[0,"10.1.0.2",1080]}"#];
    let report = check(&only_tcp, &params, 1);
    assert_eq!(report.media(), Media::Tcp);
    assert_eq!(
        texts(&report.missing),
        [r#"{"ports":["32768-60999"],"proto":"udp","to":["10.1.0.2"]}"#]
    );
    let port = &report.runtime_ports[0].text;
    assert!(
        port.contains("udp.portrange") && port.contains("microsocks"),
        "{port}"
    );
    // The server's range stated: that range, verified with the simulated server on it.
    let mut request = CheckRequest::new(only_tcp, params.map(str::to_owned).to_vec(), 1);
    request.socks_udp_ports = Some(40000..=40099);
    let report = check_firewall(&request).unwrap();
    assert_eq!(
        texts(&report.missing),
        [r#"{"ports":["40000-40099"],"proto":"udp","to":["10.1.0.2"]}"#]
    );
    assert!(report.missing_verified.is_some_and(|v| v.verified));
    // The simulated server bound its UDP relay socket in the range, at the worst case.
    let bound: SocketAddr = "10.1.0.2:40000".parse().unwrap();
    assert!(
        report.denied.contains(&(Proto::Udp, bound)),
        "{:?}",
        report.denied
    );
    #[allow(clippy::reversed_empty_ranges)] // the error under test
    let reversed = 5..=1;
    request.socks_udp_ports = Some(reversed);
    assert!(matches!(
        check_firewall(&request),
        Err(CheckError::SocksUdpPorts { start: 5, end: 1 })
    ));
}

#[test]
fn progress_is_reported_and_bounded_and_evidence_is_kept() {
    let seen = Mutex::new(Vec::new());
    let mut request = CheckRequest::new(Policy::seed(), Vec::new(), 1);
    request.evidence = true;
    let report = check_firewall_with(&request, &|p| seen.lock().unwrap().push(p.clone())).unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), report.runs, "one report per run");
    assert!(seen.iter().all(|p| p.done <= p.of && p.runs <= MAX_RUNS));
    assert_eq!(seen.iter().map(|p| p.runs).max(), Some(report.runs));
    let evidence = report.evidence.expect("evidence");
    assert!(evidence
        .description
        .starts_with("the best path: behind the policy, relay 120.92.118.34 handed first"));
    let trace = evidence.evidence.trace.join("\n");
    assert!(trace.contains("\"event\":\"proxy_connected\""), "{trace}");
    assert!(evidence.evidence.capture.summary().packets > 100);
}

fn target() -> crate::policy_formats::render::Target {
    crate::policy_formats::render::Target::for_hook("seed", crate::policy_formats::Hook::Output)
}

use crate::policy_formats::render::Format;

#[test]
fn an_http_proxy_needs_tcp_to_the_proxy_only_with_or_without_credentials() {
    let plain = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"10.1.0.8",3128]}"#;
    let auth = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"10.1.0.8",3128,"u","s3cret"]}"#;
    let only_proxy = Policy::only_tcp_to(ip("10.1.0.8"));
    for text in [plain, auth] {
        let report = check_firewall(&CheckRequest::new(
            only_proxy.clone(),
            vec![text.to_owned()],
            1,
        ))
        .unwrap();
        assert_eq!(report.route, "http-proxy");
        assert!(report.joined(), "{:#?}", report.paths);
        assert_eq!(report.paths[0].behind.media, Media::Tcp);
        assert!(report.paths[0]
            .behind
            .signalling
            .starts_with("http proxy 10.1.0.8:3128"));
        assert!(report.missing.is_empty(), "{:?}", report.missing);
        let notes = report.notes.join("\n");
        assert!(
            notes.contains("need TCP to 10.1.0.8:3128 and nothing else"),
            "{notes}"
        );
        assert!(!notes.contains("s3cret") && !format!("{report:?}").contains("s3cret"));
    }
    // Behind a deny-all policy: the one rule is TCP to the proxy, verified.
    let deny = policy("default = \"drop\"\n");
    let report = check_firewall(&CheckRequest::new(deny, vec![auth.to_owned()], 1)).unwrap();
    assert!(!report.joined());
    assert_eq!(
        texts(&report.missing),
        [r#"{"ports":["3128"],"proto":"tcp","to":["10.1.0.8"]}"#]
    );
    assert!(report
        .missing_verified
        .is_some_and(|v| v.verified && v.minimal));
    // By name: no path can run, and the note says what to give instead.
    let named = r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128]}"#;
    let report = check_firewall(&CheckRequest::new(
        Policy::open(),
        vec![named.to_owned()],
        1,
    ))
    .unwrap();
    assert!(
        report.notes.join("\n").contains("resolves no proxy names"),
        "{:?}",
        report.notes
    );
}

#[test]
fn force_tcp_needs_tcp_443_to_the_access_points_and_relays_only() {
    let mut request = CheckRequest::new(Policy::tcp_443_only(), Vec::new(), 1);
    request.cloud_proxy = Some(cloudproxy_core::engine::CloudProxyType::ForceTcp);
    let report = check_firewall(&request).unwrap();
    assert_eq!(report.route, "cloud-domain-tcp443");
    assert!(report.joined(), "{:#?}", report.paths);
    assert!(report.paths.iter().all(|p| p.behind.media == Media::Tcp));
    assert!(report
        .paths
        .iter()
        .all(|p| p.behind.via.is_some_and(|v| v.port() == 443)));
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let notes = report.notes.join("\n");
    assert!(
        notes.contains("4 of 4 access point(s) and 2 of 2 relay(s); TCP 443 to them suffices"),
        "{notes}"
    );
    // The seed's whitelist opens no TCP 443: the rules are TCP 443 to the relays, then to the
    // access points, and nothing over UDP.
    request.policy = Policy::seed();
    let report = check_firewall(&request).unwrap();
    assert!(!report.joined());
    assert_eq!(
        texts(&report.missing),
        [
            r#"{"ports":["443"],"proto":"tcp","to":["120.92.118.34","120.92.18.162"]}"#,
            r#"{"ports":["443"],"proto":"tcp","to":["47.74.211.17","52.80.192.229","52.52.84.170","47.96.234.219"]}"#
        ]
    );
    assert!(report.missing_verified.is_some_and(|v| v.verified));
    assert!(report.notes.join("\n").contains("does not suffice"));
    // Automatic is two paths: refused with what to run instead.
    request.cloud_proxy = Some(cloudproxy_core::engine::CloudProxyType::Automatic);
    let err = check_firewall(&request).unwrap_err();
    assert!(err.to_string().contains("--cloud-proxy force-udp"), "{err}");
}
