//! Reports machines read: `--json` prints one object per run with the documented schema
//! (docs/scenarios.md), and `--junit FILE` writes well-formed JUnit XML (parsed back here with
//! quick-xml) with one test case per scenario and seed, whose failure holds the failed checks
//! and the reproduction line.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn temp(name: &str) -> String {
    format!("{}/reports-{name}", env!("CARGO_TARGET_TMPDIR"))
}

/// The seed whitelist without its UDP rules.
fn tcp_only_policy() -> String {
    let seed = include_str!("../../policies/seed.toml");
    let mut blocks = seed.split("[[allow]]");
    let mut text = blocks.next().unwrap().to_owned();
    for block in blocks.filter(|b| b.contains("proto = \"tcp\"")) {
        text.push_str("[[allow]]");
        text.push_str(block);
    }
    let path = temp("tcp-only.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One XML element: its name, attributes, text and children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {:?}", self.name, self.attrs))
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> Element {
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.expect("a well-formed attribute");
            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
            (
                key,
                a.unescape_value().expect("an escaped value").into_owned(),
            )
        })
        .collect();
    Element {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs,
        ..Element::default()
    }
}

/// Parses `xml` strictly (end names checked, one root); panics at the first error.
fn parse(xml: &str) -> Element {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let el = element(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(done);
            }
            Event::Text(t) => {
                let text = t.unescape().expect("escaped text");
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert!(stack.is_empty(), "unclosed elements");
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.remove(0)
}

#[test]
fn run_junit_has_one_case_per_scenario_and_seed_and_failures_say_what_and_how_to_reproduce() {
    let policy = tcp_only_policy();
    let junit = temp("run.xml");
    // Behind a TCP-only policy udp-blocked passes (it is its own policy) and proxy-default
    // fails (its media should be UDP).
    let out = cloudproxy(&[
        "run",
        "udp-blocked",
        "proxy-default",
        "--seed",
        "3",
        "--policy",
        &policy,
        "--junit",
        &junit,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let root = parse(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(root.name, "testsuites");
    assert_eq!((root.attr("tests"), root.attr("failures")), ("2", "1"));
    let suites = root.all("testsuite");
    let names: Vec<&str> = suites.iter().map(|s| s.attr("name")).collect();
    assert_eq!(names, ["udp-blocked", "proxy-default"]);
    for suite in &suites {
        let cases = suite.all("testcase");
        assert_eq!(cases.len(), 1);
        assert_eq!(suite.attr("tests"), "1");
        let case = cases[0];
        assert_eq!(case.attr("name"), format!("{} seed 3", suite.attr("name")));
        assert_eq!(
            case.attr("classname"),
            format!("cloudproxy.{}", suite.attr("name"))
        );
        assert!(case.attr("time").parse::<f64>().is_ok());
        assert_eq!(case.all("system-out").len(), 1);
    }
    assert!(suites[0].all("testcase")[0].all("failure").is_empty());
    let failure = suites[1].all("testcase")[0].all("failure");
    assert_eq!(failure.len(), 1);
    let reproduce = format!("cargo run --release -- run proxy-default --seed 3 --policy {policy}");
    let message = failure[0].attr("message");
    assert!(message.contains("alice media over Udp"), "{message}");
    assert!(
        message.ends_with(&format!("reproduce: {reproduce}")),
        "{message}"
    );
    let body = &failure[0].text;
    assert!(
        body.contains("check failed: alice media over Udp: media path Some(Tcp)"),
        "{body}"
    );
    assert!(body.ends_with(&format!("reproduce: {reproduce}")), "{body}");
}

#[test]
fn sweep_junit_groups_cases_by_scenario() {
    let junit = temp("sweep.xml");
    let out = cloudproxy(&[
        "sweep",
        "--seeds",
        "1..3",
        "--scenario",
        "direct-open",
        "--scenario",
        "proxy-default",
        "--junit",
        &junit,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let root = parse(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!((root.attr("tests"), root.attr("failures")), ("4", "0"));
    for (suite, name) in root
        .all("testsuite")
        .iter()
        .zip(["direct-open", "proxy-default"])
    {
        assert_eq!(suite.attr("name"), name);
        let cases: Vec<&str> = suite
            .all("testcase")
            .iter()
            .map(|c| c.attr("name"))
            .collect();
        assert_eq!(cases, [format!("{name} seed 1"), format!("{name} seed 2")]);
    }
}

#[test]
fn run_json_prints_one_object_per_run_with_the_documented_schema() {
    let out = cloudproxy(&["run", "relay-crash", "direct-blocked", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line one JSON object"))
        .collect();
    assert_eq!(runs.len(), 2, "{stdout}");
    let keys: Vec<&str> = runs[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "checks",
            "clients",
            "faults",
            "passed",
            "policy",
            "reproduce",
            "scenario",
            "schema",
            "seed",
            "sim_ms",
            "swarm",
            "swarm_kinds",
            "totals",
            "trace",
            "wall_ms"
        ]
    );
    let r = &runs[0];
    assert_eq!(r["schema"], "cloudproxy-run/1");
    assert_eq!(
        (r["scenario"].as_str(), r["seed"].as_u64()),
        (Some("relay-crash"), Some(1))
    );
    assert_eq!(
        (r["swarm"].as_bool(), r["policy"].is_null()),
        (Some(false), true)
    );
    assert_eq!(r["passed"], true);
    for check in r["checks"].as_array().unwrap() {
        assert!(
            check["name"].is_string() && check["ok"].is_boolean() && check["detail"].is_string()
        );
    }
    let fault = &r["faults"][0];
    assert_eq!(fault["at_ms"], 8000);
    assert_eq!(fault["fault"], "crash the relay alice uses");
    assert_eq!(
        (
            fault["applied"].as_bool(),
            fault["without_effect"].is_null()
        ),
        (Some(true), true)
    );
    let alice = &r["clients"]["alice"];
    for key in [
        "joined",
        "join_ms",
        "proxy_type",
        "media_path",
        "media_sent",
        "media_received",
        "media_lost",
        "reconnects",
        "last_reason",
    ] {
        assert!(
            alice.get(key).is_some(),
            "clients.alice.{key} missing: {alice}"
        );
    }
    assert_eq!(alice["reconnects"], 1);
    for key in ["join_ms_max", "media_received", "media_lost", "reconnects"] {
        assert!(r["totals"][key].is_u64(), "totals.{key}: {}", r["totals"]);
    }
    assert_eq!(r["trace"]["hash"].as_str().unwrap().len(), 16);
    assert_eq!(
        (r["trace"]["dropped"].as_u64(), r["trace"]["cap"].as_u64()),
        (Some(0), Some(1_000_000))
    );
    assert!(r["trace"]["lines"].as_u64().unwrap() > 10);
    assert!(
        (40_000..41_000).contains(&r["sim_ms"].as_u64().unwrap()),
        "{}",
        r["sim_ms"]
    );
    assert_eq!(
        r["reproduce"],
        "cargo run --release -- run relay-crash --seed 1"
    );
    // A client that never joined: no join time, its reason kept.
    let blocked = &runs[1]["clients"]["alice"];
    assert_eq!(
        (blocked["joined"].as_bool(), blocked["join_ms"].is_null()),
        (Some(false), true)
    );
    assert!(
        blocked["last_reason"].as_str().unwrap().contains("direct"),
        "{blocked}"
    );
}
