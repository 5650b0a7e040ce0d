//! `cloudproxy load` end to end on real sockets (loopback only): against `cloudproxy serve`
//! and `cloudproxy edge` (clients in pairs, media forwarded between them by the edge,
//! tunnel bytes as acknowledged signalling), and against the load tool's own echo servers
//! (`--echo --start-echo`, tunnel bytes echoed and checked). Every probe is accounted for,
//! round-trip times and jitter are reported, and a bad option is a usage error (exit 2).

mod real_support;

use std::process::Command;
use std::time::Duration;

use real_support::*;

fn load(
    b: Block,
    dir: &TempDir,
    name: &str,
    args: &[&str],
) -> (std::process::ExitStatus, serde_json::Value) {
    let params = b.ip_list_params();
    let mut command = Command::new(bin());
    command
        .arg("load")
        .arg("--params")
        .arg(&params)
        .arg(ENABLE)
        .arg("--json")
        .args(args);
    let mut proc = Proc::spawn(name, command, dir);
    let status = proc.finish(Duration::from_secs(60));
    let out = proc.stdout().join("\n");
    let json = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {out}\nstderr:\n{}", proc.stderr()));
    (status, json)
}

#[test]
fn load_through_serve_to_an_edge_and_to_echo_servers() {
    let b = Block(71);
    let dir = TempDir::new("real-load");
    let key = random_key();
    let _edge = start_edge(b, &dir);
    let config = serve_config(b, &[b.ap()], &[b.relay(1)], &[], b.metrics(1), "");
    let _serve = start_serve("serve", &dir, &config, &key);

    let edge = b.edge().to_string();
    let bind = b.client(1).to_string();
    let (status, r) = load(
        b,
        &dir,
        "load-edge",
        &[
            "--edge",
            &edge,
            "--clients",
            "4",
            "--pps",
            "50",
            "--for",
            "2",
            "--tunnel-bytes",
            "20K",
            "--bind",
            &bind,
        ],
    );
    assert!(status.success(), "{r:#}");
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["sessions_opened"], 4, "{r:#}");
    assert_eq!(r["sent"], 4 * 100, "{r:#}");
    // Loopback loses nothing at this rate; allow a little for a loaded machine.
    assert!(r["returned"].as_u64().unwrap() >= 4 * 95, "{r:#}");
    assert!(r["one_way_received"].as_u64().unwrap() >= 4 * 95, "{r:#}");
    assert!(r["rtt_us"]["p50"].as_u64().unwrap() > 0, "{r:#}");
    assert!(
        r["rtt_us"]["max"].as_u64() >= r["rtt_us"]["p99"].as_u64(),
        "{r:#}"
    );
    assert!(r["jitter_us"]["p50"].is_u64(), "{r:#}");
    assert_eq!(r["tunnels"]["completed"], 4, "{r:#}");

    let echo = b.ip(3, 2).to_string();
    let bind = b.client(50).to_string();
    let (status, r) = load(
        b,
        &dir,
        "load-echo",
        &[
            "--echo",
            &echo,
            "--start-echo",
            "--clients",
            "3",
            "--pps",
            "100",
            "--payload",
            "1200",
            "--for",
            "1",
            "--tunnel-bytes",
            "256K",
            "--bind",
            &bind,
        ],
    );
    assert!(status.success(), "{r:#}");
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["sent"], 3 * 100, "{r:#}");
    assert!(r["returned"].as_u64().unwrap() >= 3 * 95, "{r:#}");
    assert_eq!(r["tunnels"]["back"], 3 * 256 * 1024, "{r:#}");
    assert_eq!(r["closed_by_relay"], serde_json::json!({}), "{r:#}");

    // A usage error says which option, and exits 2.
    let mut command = Command::new(bin());
    command.args(["load", "--clients", "3", "--edge", &edge]);
    let mut proc = Proc::spawn("load-usage", command, &dir);
    let status = proc.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(2));
    assert!(proc.stderr().contains("--clients 3"), "{}", proc.stderr());
}
