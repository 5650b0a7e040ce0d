//! The real-socket commands' contract: `serve` refuses to start without a valid ticket key or
//! with a bad configuration (exit 2, saying why), shuts down gracefully on SIGTERM (every
//! session closed with `ShuttingDown`, exit 0), and `call` exits 1, saying why, when it never
//! joins, ends disconnected or hears no media, and refuses a media rate it cannot sustain.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::process::Command;
use std::time::{Duration, Instant};

use real_support::*;

/// Runs `cloudproxy serve` with `args` and the key environment `key`; returns (exit code,
/// stdout, stderr). These runs end by themselves (errors, or `--check`).
fn serve_once(args: &[&str], key: Option<&str>) -> (Option<i32>, String, String) {
    let mut command = Command::new(bin());
    command
        .arg("serve")
        .args(args)
        .env_remove("CLOUDPROXY_TICKET_KEY");
    if let Some(key) = key {
        command.env("CLOUDPROXY_TICKET_KEY", key);
    }
    let output = command.output().expect("run cloudproxy serve");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_to_start_without_a_valid_key_or_with_a_bad_config() {
    let dir = TempDir::new("cli");
    let config = dir.write("serve.toml", "[ap]\nlisten = [\"127.60.1.1\"]\n");
    let config = config.to_str().unwrap();

    let (code, _, stderr) = serve_once(&["--config", config], None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no ticket key"), "{stderr}");
    assert!(stderr.contains("CLOUDPROXY_TICKET_KEY"), "{stderr}");
    assert!(
        stderr.contains("no built-in key") || stderr.contains("There is no built-in key"),
        "{stderr}"
    );

    let (code, _, stderr) = serve_once(&["--config", config], Some("abcd"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not 64 hex characters"), "{stderr}");
    let (code, _, stderr) = serve_once(&["--config", config], Some(&"0".repeat(64)));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("all zeros"), "{stderr}");

    // The key from a file, and from both places at once (refused: ambiguous).
    let key = random_key();
    let key_file = dir.write("ticket.key", &format!("{key}\n"));
    let key_file = key_file.to_str().unwrap();
    let (code, stdout, stderr) = serve_once(
        &["--config", config, "--ticket-key-file", key_file, "--check"],
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("configuration ok"), "{stdout}");
    let (code, _, stderr) = serve_once(
        &["--config", config, "--ticket-key-file", key_file],
        Some(&key),
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("both"), "{stderr}");

    // Bad configurations name the field.
    let typo = dir.write("typo.toml", "[relay]\nudp_port = \"4500\"\n");
    let (code, _, stderr) = serve_once(&["--config", typo.to_str().unwrap()], Some(&key));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("udp_port"), "{stderr}");
    let empty = dir.write("empty.toml", "sdrtn = []\n");
    let (code, _, stderr) = serve_once(&["--config", empty.to_str().unwrap()], Some(&key));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("sdrtn: no SD-RTN block"), "{stderr}");

    // An address already in use: the start fails (exit 1) and says where.
    let b = Block(60);
    let taken = std::net::TcpListener::bind((b.relay(1), 4000)).unwrap();
    let busy = dir.write(
        "busy.toml",
        &serve_config(b, &[], &[b.relay(1)], &[b.relay(1)], b.metrics(1), ""),
    );
    let (code, _, stderr) = serve_once(&["--config", busy.to_str().unwrap()], Some(&key));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{}:4000", b.relay(1))), "{stderr}");
    drop(taken);
}

#[test]
fn sigterm_closes_every_session_with_shutting_down_and_exits_0() {
    let b = Block(61);
    let dir = TempDir::new("sigterm");
    let key = random_key();
    let _edge = start_edge(b, &dir);
    let config = serve_config(b, &[b.ap()], &[b.relay(1)], &[], b.metrics(1), "");
    let mut serve = start_serve("serve", &dir, &config, &key);
    let mut alice = start_call(b, &dir, "alice", 1, 5.0, &[ENABLE], &[]);
    let relay = format!("relay=\"{}\"", b.relay(1));
    let deadline = Instant::now() + Duration::from_secs(8);
    while metric(&scrape(b.metrics(1)), "cloudproxy_relay_sessions", &relay) < 1 {
        assert!(
            Instant::now() < deadline,
            "the call did not reach the relay"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    let asked = Instant::now();
    let status = serve.terminate(Duration::from_secs(5));
    assert!(
        status.success(),
        "serve exited {status}\n{}",
        serve.stderr()
    );
    assert!(asked.elapsed() < Duration::from_secs(4));
    let log = serve.stderr();
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert!(log.contains("\"reason\":\"ShuttingDown\""), "{log}");
    assert!(log.contains("sessions_left=0"), "{log}");
    assert_eq!(
        serve.stdout().last().map(String::as_str),
        Some("cloudproxy serve: stopped")
    );

    // The client saw its relay go (and, the proxy being gone, could not come back): the call
    // ended disconnected, which is a failure (exit 1) that says so.
    let alice = finish_call(&mut alice, Duration::from_secs(20));
    assert!(alice.joined(), "{alice:#?}");
    assert_eq!(alice.reconnects(), 1, "{alice:#?}");
    assert_eq!(alice.status.code(), Some(1), "{alice:#?}");
    assert_eq!(alice.json["verdict"], "ended disconnected", "{alice:#?}");
    assert!(
        alice.stderr.contains("alice joined but ended disconnected"),
        "{}",
        alice.stderr
    );
}

#[test]
fn a_call_that_joined_but_heard_no_media_exits_1_and_says_so() {
    let b = Block(63);
    let dir = TempDir::new("lonely");
    let key = random_key();
    let _edge = start_edge(b, &dir);
    let config = serve_config(b, &[b.ap()], &[b.relay(1)], &[], b.metrics(1), "");
    let _serve = start_serve("serve", &dir, &config, &key);
    // Alone in its channel: it joins and stays connected, but nobody talks to it.
    let mut carol = start_call(b, &dir, "carol", 1, 3.0, &[ENABLE], &[]);
    let carol = finish_call(&mut carol, Duration::from_secs(20));
    assert!(carol.joined(), "{carol:#?}");
    assert_eq!(carol.received(), 0, "{carol:#?}");
    assert_eq!(carol.status.code(), Some(1), "{carol:#?}");
    assert_eq!(carol.json["verdict"], "no media", "{carol:#?}");
    assert!(
        carol.stderr.contains("carol joined but received no media"),
        "{}",
        carol.stderr
    );
}

#[test]
fn call_refuses_a_media_rate_above_what_it_sustains() {
    for pps in ["0", "5001"] {
        let output = Command::new(bin())
            .args(["call", "--for", "1", "--pps", pps])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("1..=5000"), "{stderr}");
    }
}

#[test]
fn call_exits_1_when_it_never_joins() {
    let b = Block(62);
    let dir = TempDir::new("never");
    // Nothing listens in this block: the access point does not answer.
    let params = b.ip_list_params();
    let mut call = start_call(b, &dir, "carol", 1, 2.0, &[ENABLE, &params], &[]);
    let report = finish_call(&mut call, Duration::from_secs(15));
    assert_eq!(report.status.code(), Some(1), "{report:#?}");
    assert!(!report.joined());
    assert!(
        report.stderr.contains("carol never joined"),
        "{}",
        report.stderr
    );

    // A setParameters text the engine refuses is a usage error (exit 2), before any socket.
    let output = Command::new(bin())
        .args([
            "call",
            "--for",
            "1",
            "--params",
            r#"{"rtc.proxy_server":[3,"x",0]}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("rtc.proxy_server"));
}
