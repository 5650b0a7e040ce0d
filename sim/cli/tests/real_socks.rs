//! Interop: proxy type 0 through SOCKS5 servers no one here wrote, on loopback.
//!
//! - `danted` (Debian's dante-server): CONNECT and UDP ASSOCIATE, without authentication and
//!   with USERNAME/PASSWORD (RFC 1929, checked by dante against the system's accounts);
//! - `microsocks`: CONNECT only; it answers UDP ASSOCIATE with reply 7 (command not
//!   supported), so media must fall back to TCP through a CONNECT to the edge's media port.
//!
//! Each server runs with its own configuration in a temporary directory and is stopped by its
//! process id. A missing server binary fails the test with the install command.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::process::Command;
use std::time::Duration;

use real_support::*;

/// The system account dante checks RFC 1929 credentials against (created when missing; the
/// tests run as root in CI).
const SOCKS_USER: &str = "cloudproxy-socks";
const SOCKS_PASS: &str = "cloudproxy-interop-test";
const INSTALL: &str = "dante-server microsocks";

fn socks_params(b: Block) -> String {
    format!(r#"{{"rtc.proxy_server":[0,"{}",1080]}}"#, b.socks())
}

/// Starts danted on the block's SOCKS5 address with `method` (`none` or `username`).
fn start_dante(b: Block, dir: &TempDir, method: &str) -> Proc {
    let danted = require_binary("danted", INSTALL);
    let log = dir.join("danted.log");
    let config = format!(
        "logoutput: {log}\n\
         internal: {ip} port = 1080\n\
         external: {ip}\n\
         socksmethod: {method}\n\
         clientmethod: none\n\
         user.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}}\n\
         socks pass {{\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect udpassociate udpreply\n  log: connect disconnect error\n}}\n",
        log = log.display(),
        ip = b.socks(),
    );
    let path = dir.write("danted.conf", &config);
    let mut command = Command::new(danted);
    command
        .arg("-f")
        .arg(&path)
        .arg("-p")
        .arg(dir.join("danted.pid"))
        .arg("-N")
        .arg("1");
    let proc = Proc::spawn("danted", command, dir);
    wait_port(std::net::SocketAddr::new(b.socks(), 1080), &proc);
    proc
}

/// Makes sure dante can check our credentials: a system account with a known password.
fn ensure_socks_account() {
    let exists = Command::new("id")
        .arg(SOCKS_USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SOCKS_USER,
            ])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot create the account {SOCKS_USER} that dante checks RFC 1929 credentials against (run the tests as root, or create it: useradd --system --no-create-home --shell /usr/sbin/nologin {SOCKS_USER})"
        );
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{SOCKS_USER}:{SOCKS_PASS}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd {SOCKS_USER}");
}

/// Two calls through the SOCKS5 server; returns their reports.
fn two_calls(b: Block, dir: &TempDir, extra: &[&str], secs: f64) -> (CallReport, CallReport) {
    let params = socks_params(b);
    let mut alice = start_call(b, dir, "alice", 1, secs, &[ENABLE, &params], extra);
    let mut bob = start_call(b, dir, "bob", 2, secs, &[ENABLE, &params], extra);
    let timeout = Duration::from_secs_f64(secs + 15.0);
    (
        finish_call(&mut alice, timeout),
        finish_call(&mut bob, timeout),
    )
}

fn check_heard(report: &CallReport, other: u32, path: &str, socks: std::net::IpAddr) {
    assert!(report.status.success() && report.joined(), "{report:#?}");
    assert_eq!(report.proxy_type(), Some(0), "{report:#?}");
    assert_eq!(report.relay(), format!("{socks}:1080"), "{report:#?}");
    assert_eq!(report.media_path(), path, "{report:#?}");
    let heard = report.received_from(other);
    assert!(heard >= 80, "heard only {heard} packets: {report:#?}");
    assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
    assert!(
        report.json["signalling_acked"].as_u64().unwrap() >= 2,
        "{report:#?}"
    );
}

#[test]
fn type0_through_dante_without_auth_connect_and_udp_associate() {
    let b = Block(31);
    let dir = TempDir::new("dante-noauth");
    let _edge = start_edge(b, &dir);
    let mut dante = start_dante(b, &dir, "none");
    let (alice, bob) = two_calls(b, &dir, &[], 5.0);
    check_heard(&alice, 2, "Udp", b.socks());
    check_heard(&bob, 1, "Udp", b.socks());
    dante.terminate(Duration::from_secs(5));
    // Dante itself carried the signalling (CONNECT to the edge) and the media (UDP ASSOCIATE).
    let log = std::fs::read_to_string(dir.join("danted.log")).unwrap_or_default();
    assert!(
        log.contains("tcp/connect") && log.contains(&format!("{}.5000", b.edge())),
        "{log}"
    );
    assert!(log.contains("udp/udpassociate"), "{log}");
}

#[test]
fn type0_through_dante_with_username_and_password() {
    let b = Block(32);
    let dir = TempDir::new("dante-auth");
    ensure_socks_account();
    let _edge = start_edge(b, &dir);
    let mut dante = start_dante(b, &dir, "username");
    let creds = ["--socks-user", SOCKS_USER, "--socks-pass", SOCKS_PASS];
    let (alice, bob) = two_calls(b, &dir, &creds, 5.0);
    check_heard(&alice, 2, "Udp", b.socks());
    check_heard(&bob, 1, "Udp", b.socks());

    // Wrong password: refused by dante, never joins, exit 1 with the reason.
    let params = socks_params(b);
    let wrong = [
        "--socks-user",
        SOCKS_USER,
        "--socks-pass",
        "not-the-password",
    ];
    let mut mallory = start_call(b, &dir, "mallory", 3, 2.0, &[ENABLE, &params], &wrong);
    let mallory = finish_call(&mut mallory, Duration::from_secs(15));
    assert_eq!(mallory.status.code(), Some(1), "{mallory:#?}");
    assert!(!mallory.joined());
    assert!(
        mallory.stderr.contains("username/password rejected"),
        "{}",
        mallory.stderr
    );

    dante.terminate(Duration::from_secs(5));
    let log = std::fs::read_to_string(dir.join("danted.log")).unwrap_or_default();
    assert!(log.contains(&format!("username%{SOCKS_USER}@")), "{log}");
}

#[test]
fn type0_through_microsocks_connect_only_media_falls_back_to_tcp() {
    let b = Block(33);
    let dir = TempDir::new("microsocks");
    let microsocks = require_binary("microsocks", INSTALL);
    let _edge = start_edge(b, &dir);
    let mut command = Command::new(microsocks);
    command.args([
        "-i",
        &b.socks().to_string(),
        "-p",
        "1080",
        "-b",
        &b.socks().to_string(),
    ]);
    let mut server = Proc::spawn("microsocks", command, &dir);
    wait_port(std::net::SocketAddr::new(b.socks(), 1080), &server);
    // UDP is refused (reply 7); the UDP probe gives up after 2 s, then media goes over TCP.
    let (alice, bob) = two_calls(b, &dir, &[], 6.0);
    check_heard(&alice, 2, "Tcp", b.socks());
    check_heard(&bob, 1, "Tcp", b.socks());
    // Stopped by its process id; its log is complete once it has exited.
    server.terminate(Duration::from_secs(5));
    // microsocks logged the CONNECTs (on stderr): signalling (5000) and framed media (5002) per client.
    let log = server.stderr();
    for client in [b.client(1), b.client(2)] {
        for port in [5000, 5002] {
            assert!(
                log.contains(&format!("{client}: connected to {}:{port}", b.edge())),
                "{log}"
            );
        }
    }
}
