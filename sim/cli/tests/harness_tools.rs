//! The harness's power tools from the command line: `run`/`sweep --scenario-file`, `shrink`
//! (a failure hidden among harmless faults shrinks to the one fault it needs, written as a
//! file that fails on its own), and the failure report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cloudproxy");

fn cloudproxy(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cloudproxy")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../scenarios/{name}.toml"))
        .display()
        .to_string()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudproxy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A call whose resolver goes down at 0 s for good, hidden among seven harmless faults.
const HIDDEN: &str = r#"name = "dns-outage-hidden"
duration_s = 12

[[enterprise]]
name = "bank"
host = "10.1.0.10"

[[enterprise.client]]
name = "alice"
uid = 1
params = ['{"rtc.enable_proxy":true}']

[[enterprise]]
name = "hospital"
host = "10.2.0.10"

[[enterprise.client]]
name = "bob"
uid = 2
params = ['{"rtc.enable_proxy":true}']

[[fault]]
at_s = 0.5
latency = ["bank", "relay1"]
latency_ms = 30

[[fault]]
at_s = 0
dns_outage = true

[[fault]]
at_s = 1
impair = { loss_pct = 1, jitter_ms = 5 }

[[fault]]
at_s = 3
impair = {}

[[fault]]
at_s = 4
hold = ["hospital", "relay2"]

[[fault]]
at_s = 4.5
release = ["hospital", "relay2"]

[[fault]]
at_s = 5
restart = "ap3"

[[fault]]
at_s = 6
latency = ["hospital", "relay1"]
latency_ms = 15

[[check]]
joined = "alice"
"#;

#[test]
fn run_and_sweep_take_scenario_files_and_refuse_bad_ones_with_the_line() {
    let output = cloudproxy(&[
        "run",
        "--scenario-file",
        &shipped("direct-open"),
        "--seed",
        "2",
    ]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("direct-open        pass"), "{out}");
    assert!(
        out.contains(&format!(
            "Reproduce: cargo run --release -- run --scenario-file {} --seed 2",
            shipped("direct-open")
        )),
        "{out}"
    );
    let output = cloudproxy(&[
        "sweep",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--scenario-file",
        &shipped("direct-open"),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("2 run(s)"), "{}", text(&output));
    let dir = temp_dir("bad-scenario");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "duration_s = 10\n\n[[fault]]\nat_s = 1\ncrash = \"apx\"\n",
    )
    .unwrap();
    let output = cloudproxy(&["run", "--scenario-file", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("bad.toml:5: `fault[1].crash`: \"apx\" is not a host"),
        "{}",
        text(&output)
    );
}

#[test]
fn shrink_finds_the_one_fault_a_failure_needs_and_writes_a_file_that_fails_on_its_own() {
    let dir = temp_dir("shrink");
    let file = dir.join("hidden.toml");
    std::fs::write(&file, HIDDEN).unwrap();
    let shrunk = dir.join("shrunk.toml");
    let output = cloudproxy(&[
        "shrink",
        "--scenario-file",
        file.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        shrunk.to_str().unwrap(),
    ]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("shrunk: 8 -> 1 faults"), "{out}");
    assert!(out.contains("0.000 s  DNS outage starts"), "{out}");
    assert!(
        out.contains("still fails: alice joins: never connected"),
        "{out}"
    );
    let line = format!(
        "reproduce: cargo run --release -- run --scenario-file {} --seed 1",
        shrunk.display()
    );
    assert!(out.contains(&line), "{out}");
    // The file fails on its own, the same check.
    let output = cloudproxy(&[
        "run",
        "--scenario-file",
        shrunk.to_str().unwrap(),
        "--seed",
        "1",
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("check failed: alice joins: never connected"),
        "{out}"
    );
    assert!(out.contains("faults: 0.000 s DNS outage starts\n"), "{out}");
    // A passing run has nothing to shrink.
    let output = cloudproxy(&["shrink", "direct-open", "--seed", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("there is no failure to shrink"),
        "{}",
        text(&output)
    );
}

/// A relay-crash run with one expectation that does not hold (alice's media is on UDP).
fn wrong_expectation(dir: &Path) -> PathBuf {
    let path = dir.join("relay-crash-wrong.toml");
    let text = std::fs::read_to_string(shipped("relay-crash")).unwrap()
        + "\n[[check]]\nmedia_path = \"alice\"\npath = \"tcp\"\n";
    std::fs::write(&path, text).unwrap();
    path
}

/// The browser that renders the report, when this machine has one.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn a_failing_run_writes_a_one_file_report_that_a_real_browser_renders_offline() {
    let dir = temp_dir("report");
    let file = wrong_expectation(&dir);
    let reports = dir.join("reports");
    let output = cloudproxy(&[
        "run",
        "--scenario-file",
        file.to_str().unwrap(),
        "direct-open",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    // One report, for the failing run only, with its trace and pcap beside it.
    let mut names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "relay-crash-seed-1.html",
            "relay-crash-seed-1.pcap",
            "relay-crash-seed-1.trace.jsonl"
        ]
    );
    let html_path = reports.join("relay-crash-seed-1.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    let line = format!(
        "cargo run --release -- run --scenario-file {} --seed 1",
        file.display()
    );
    assert!(html.contains(&line), "the reproduction line");
    assert!(html.contains("alice media over Tcp") && html.contains("media path Some(Udp)"));
    assert!(
        html.contains("crash the relay alice uses"),
        "the fault timeline"
    );
    assert!(
        html.contains("setParameters({&quot;rtc.enable_proxy&quot;:true})"),
        "the parameters"
    );
    assert!(html.contains("120.92.118.34/32"), "the policies");
    assert!(
        html.contains("href=\"relay-crash-seed-1.trace.jsonl\"")
            && html.contains("href=\"relay-crash-seed-1.pcap\"")
    );
    // Self-contained: nothing is fetched (the SVG namespace is a name, not a fetch).
    assert!(!html.contains("src=") && !html.contains("href=\"http") && !html.contains("@import"));
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the browser half of this test: no chromium on this machine (apt-get install chromium; CI installs it)");
        return;
    };
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", html_path.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(
        dom.contains("<svg class=\"seq\""),
        "the diagram is in the DOM: {dom}"
    );
    assert!(
        dom.contains("data-diagram=\"rendered\""),
        "the diagram laid out with a size, no script error: {}",
        dom.lines().find(|l| l.contains("<body")).unwrap_or("")
    );
    assert!(
        dom.matches("marker-end=").count() > 10,
        "arrows between the lanes"
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_sweep_writes_one_report_per_failing_seed() {
    let dir = temp_dir("sweep-report");
    let file = wrong_expectation(&dir);
    let reports = dir.join("reports");
    let output = cloudproxy(&[
        "sweep",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--scenario-file",
        file.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let mut names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".html"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["relay-crash-seed-1.html", "relay-crash-seed-2.html"]
    );
    let html = std::fs::read_to_string(reports.join("relay-crash-seed-2.html")).unwrap();
    assert!(html.contains("--seed 2") && html.contains("not captured in a sweep"));
}

/// tshark's answer for `fields` of `file` (with `filter`), one line per packet.
fn tshark_fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-T", "fields"]);
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let output = cmd
        .output()
        .expect("tshark (apt-get install tshark; cargo xtask test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn pcaps_carry_dns_start_at_the_epoch_and_pcapng_has_a_host_per_interface_and_comments() {
    let dir = temp_dir("pcapng");
    let file = dir.join("pd.pcapng");
    let output = cloudproxy(&[
        "run",
        "proxy-default",
        "--pcap",
        file.to_str().unwrap(),
        "--pcap-epoch",
        "2026-12-01T09:30:00Z",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    // DNS: both clients ask their enterprise resolver, and hear the four access points.
    let dns = tshark_fields(
        &file,
        "dns",
        &["ip.src", "dns.flags.response", "dns.qry.name", "dns.a"],
    );
    assert_eq!(dns.len(), 4, "{dns:#?}");
    assert!(
        dns.contains(&"10.1.0.10\tFalse\tap-proxy.agora.io\t".to_owned())
            || dns.contains(&"10.1.0.10\t0\tap-proxy.agora.io\t".to_owned()),
        "{dns:#?}"
    );
    assert!(
        dns.iter().any(|l| l.starts_with("10.2.0.53\t")
            && l.ends_with("47.74.211.17,52.80.192.229,52.52.84.170,47.96.234.219")),
        "{dns:#?}"
    );
    // The epoch: the first packet (the first query, at 0.1 s) is on 2026-12-01 09:30:00.1 UTC.
    let first = tshark_fields(&file, "", &["frame.time_epoch"]);
    assert!(first[0].starts_with("1796117400.1"), "{}", first[0]);
    // One interface per simulated host, named by its address.
    let interfaces: std::collections::BTreeSet<String> =
        tshark_fields(&file, "", &["frame.interface_name"])
            .into_iter()
            .collect();
    for host in ["10.1.0.10", "10.1.0.53", "101.36.1.10", "47.74.211.17"] {
        assert!(interfaces.contains(host), "{interfaces:?}");
    }
    assert!(tshark_fields(
        &file,
        "_ws.malformed || _ws.expert.severity >= warning",
        &["frame.number"]
    )
    .is_empty());
    // Comments on the connects a firewall dropped; DNS refused behind a blocking resolver.
    let blocked = dir.join("db.pcapng");
    let _ = cloudproxy(&["run", "direct-blocked", "--pcap", blocked.to_str().unwrap()]);
    let comments = tshark_fields(&blocked, "frame.comment", &["frame.comment"]);
    assert!(
        !comments.is_empty()
            && comments
                .iter()
                .all(|c| c == "connect not answered: dropped (a firewall or a partition)"),
        "{comments:?}"
    );
    let refused = dir.join("ip.pcap");
    let _ = cloudproxy(&["run", "proxy-ip-list", "--pcap", refused.to_str().unwrap()]);
    let rcodes = tshark_fields(&refused, "dns.flags.response == 1", &["dns.flags.rcode"]);
    assert!(
        !rcodes.is_empty() && rcodes.iter().all(|r| r == "5"),
        "REFUSED: {rcodes:?}"
    );
}
