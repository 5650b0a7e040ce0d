//! Interop (beyond the seed): proxy type 3 through Debian's `tinyproxy` and `squid`, HTTP
//! proxies no one here wrote, on loopback: `cloudproxy call` opens `CONNECT` tunnels through it to the real
//! `cloudproxy edge` (signalling on 5000, framed TCP media on 5002: an HTTP proxy carries no
//! UDP), without authentication and with Basic authentication (tinyproxy's `BasicAuth`,
//! squid's `basic_ncsa_auth` helper; the 407 answered with the configured credentials; without
//! them the call fails with the reason).
//!
//! Each proxy runs as a child with a generated configuration listening on a free port, and is
//! stopped by its process id. When one is not installed the test says why and returns (CI
//! installs both: `cargo xtask test` installs the Debian peers). squid's ICMP pinger is off and
//! its resolver is loopback: it sends nothing off this machine.
// clippy.toml disallows the system's clocks; real-socket tests bound their waits on the wall clock.
#![allow(clippy::disallowed_methods)]

mod real_support;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use real_support::*;

const USER: &str = "alice";
const PASS: &str = "tiny-s3cret";

/// The installed `name` (tinyproxy, squid), or `None` (and why) when it is not installed.
fn installed(name: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
        .into_iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "skipped: {name} is not installed (apt-get install -y {name}); this interop test needs it"
        );
    }
    found
}

/// A port nothing listens on at `ip` now.
fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Starts tinyproxy on `ip:port`, allowing CONNECT to the edge's ports, asking for Basic
/// credentials when `auth`.
fn start_tinyproxy(binary: &PathBuf, ip: IpAddr, port: u16, dir: &TempDir, auth: bool) -> Proc {
    let mut config = format!(
        "Port {port}\nListen {ip}\nTimeout 60\nMaxClients 32\nAllow 127.0.0.0/8\n\
         ConnectPort 5000\nConnectPort 5002\nLogLevel Info\n"
    );
    if auth {
        config.push_str(&format!("BasicAuth {USER} {PASS}\n"));
    }
    let path = dir.write("tinyproxy.conf", &config);
    let mut command = Command::new(binary);
    command.arg("-d").arg("-c").arg(&path);
    let proc = Proc::spawn("tinyproxy", command, dir);
    wait_port(SocketAddr::new(ip, port), &proc);
    proc
}

fn type3(proxy: SocketAddr, credentials: Option<(&str, &str)>) -> String {
    match credentials {
        None => format!(
            r#"{{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"{}",{}]}}"#,
            proxy.ip(),
            proxy.port()
        ),
        Some((user, pass)) => format!(
            r#"{{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"{}",{},"{user}","{pass}"]}}"#,
            proxy.ip(),
            proxy.port()
        ),
    }
}

fn check_heard(report: &CallReport, other: u32, proxy: SocketAddr) {
    assert!(report.status.success() && report.joined(), "{report:#?}");
    assert_eq!(report.proxy_type(), Some(3), "{report:#?}");
    assert_eq!(report.relay(), proxy.to_string(), "{report:#?}");
    assert_eq!(report.media_path(), "Tcp", "{report:#?}");
    let heard = report.received_from(other);
    assert!(heard >= 80, "heard only {heard} packets: {report:#?}");
    assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
}

/// Two calls through the proxy with `params`; their reports.
fn two_calls(b: Block, dir: &TempDir, params: &str) -> (CallReport, CallReport) {
    let mut alice = start_call(b, dir, "alice", 1, 4.0, &[params], &[]);
    let mut bob = start_call(b, dir, "bob", 2, 4.0, &[params], &[]);
    let timeout = Duration::from_secs(20);
    (
        finish_call(&mut alice, timeout),
        finish_call(&mut bob, timeout),
    )
}

#[test]
fn type3_through_tinyproxy_without_authentication() {
    let Some(binary) = installed("tinyproxy") else {
        return;
    };
    let b = Block(81);
    let dir = TempDir::new("tinyproxy-noauth");
    let _edge = start_edge(b, &dir);
    let proxy = SocketAddr::new(b.socks(), free_port(b.socks()));
    let mut server = start_tinyproxy(&binary, proxy.ip(), proxy.port(), &dir, false);
    let (alice, bob) = two_calls(b, &dir, &type3(proxy, None));
    check_heard(&alice, 2, proxy);
    check_heard(&bob, 1, proxy);
    server.terminate(Duration::from_secs(5));
    // tinyproxy itself opened the tunnels: signalling and framed media, for each client.
    // Its log (with -d) goes to standard output.
    let log = format!("{}\n{}", server.stdout().join("\n"), server.stderr());
    for port in [5000, 5002] {
        assert!(
            log.contains(&format!("{}:{port}", b.edge())),
            "no CONNECT to the edge's port {port} in tinyproxy's log:\n{log}"
        );
    }
}

#[test]
fn type3_through_tinyproxy_with_basic_authentication() {
    let Some(binary) = installed("tinyproxy") else {
        return;
    };
    let b = Block(82);
    let dir = TempDir::new("tinyproxy-auth");
    let _edge = start_edge(b, &dir);
    let proxy = SocketAddr::new(b.socks(), free_port(b.socks()));
    let mut server = start_tinyproxy(&binary, proxy.ip(), proxy.port(), &dir, true);
    let (alice, bob) = two_calls(b, &dir, &type3(proxy, Some((USER, PASS))));
    check_heard(&alice, 2, proxy);
    check_heard(&bob, 1, proxy);
    // The password never reaches the call's output.
    assert!(!alice.stderr.contains(PASS), "{}", alice.stderr);
    assert!(!alice.json.to_string().contains(PASS), "{:#?}", alice.json);

    // Without credentials: tinyproxy answers 407, the call fails with what to configure.
    let mut mallory = start_call(b, &dir, "mallory", 3, 2.0, &[&type3(proxy, None)], &[]);
    let mallory = finish_call(&mut mallory, Duration::from_secs(20));
    assert_eq!(mallory.status.code(), Some(1), "{mallory:#?}");
    assert!(!mallory.joined());
    assert!(
        mallory.stderr.contains("requires authentication")
            && mallory
                .stderr
                .contains("configure the proxy's user name and password"),
        "{}",
        mallory.stderr
    );
    server.terminate(Duration::from_secs(5));
}

/// squid's Basic-auth password file for `USER` and `SQUID_PASS`, in Apache's MD5 format, which
/// squid's `basic_ncsa_auth` reads (made with `openssl passwd -apr1 -salt cpxtest1 squid-s3cret`).
const SQUID_PASSWD: &str = "alice:$apr1$cpxtest1$k5HJTyMdJjRkeXII5NkxS0\n";
const SQUID_PASS: &str = "squid-s3cret";

/// Starts squid on `ip:port` in the foreground: no cache, CONNECT only to the edge's ports, from
/// loopback only, asking for Basic credentials when `auth`. Its logs go into `dir`, which squid's
/// own user must be able to write.
fn start_squid(binary: &PathBuf, ip: IpAddr, port: u16, dir: &TempDir, auth: bool) -> Proc {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777))
        .expect("let squid's user write its logs");
    let d = dir.0.display();
    let mut config = format!(
        "http_port {ip}:{port}\npid_filename {d}/squid.pid\ncache_log {d}/cache.log\n\
         access_log stdio:{d}/access.log\ncoredump_dir {d}\ncache deny all\ncache_mem 8 MB\n\
         pinger_enable off\ndns_nameservers 127.0.0.1\nshutdown_lifetime 0 seconds\n\
         acl edge_ports port 5000 5002\nacl loopback src 127.0.0.0/8\n\
         http_access deny CONNECT !edge_ports\nhttp_access deny !loopback\n"
    );
    if auth {
        let passwd = dir.write("passwd", SQUID_PASSWD);
        config.push_str(&format!(
            "auth_param basic program /usr/lib/squid/basic_ncsa_auth {}\n\
             auth_param basic realm cloudproxy-test\nacl authed proxy_auth REQUIRED\n\
             http_access allow authed\n",
            passwd.display()
        ));
    } else {
        config.push_str("http_access allow loopback\n");
    }
    config.push_str("http_access deny all\n");
    let path = dir.write("squid.conf", &config);
    let mut command = Command::new(binary);
    command.arg("-N").arg("-f").arg(&path);
    let proc = Proc::spawn("squid", command, dir);
    wait_port(SocketAddr::new(ip, port), &proc);
    proc
}

/// squid's access log: one line per request it handled (written as each tunnel ends).
fn squid_access_log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.join("access.log")).unwrap_or_default()
}

#[test]
fn type3_through_squid_without_authentication() {
    let Some(binary) = installed("squid") else {
        return;
    };
    let b = Block(84);
    let dir = TempDir::new("squid-noauth");
    let _edge = start_edge(b, &dir);
    let proxy = SocketAddr::new(b.socks(), free_port(b.socks()));
    let mut server = start_squid(&binary, proxy.ip(), proxy.port(), &dir, false);
    let (alice, bob) = two_calls(b, &dir, &type3(proxy, None));
    check_heard(&alice, 2, proxy);
    check_heard(&bob, 1, proxy);
    server.terminate(Duration::from_secs(10));
    // squid itself opened the tunnels: signalling and framed media, for each client.
    let log = squid_access_log(&dir);
    for port in [5000, 5002] {
        let tunnels = log
            .lines()
            .filter(|l| l.contains("CONNECT") && l.contains(&format!("{}:{port}", b.edge())))
            .count();
        assert!(
            tunnels >= 2,
            "{tunnels} CONNECT(s) to the edge's port {port} in squid's access log:\n{log}"
        );
    }
}

#[test]
fn type3_through_squid_with_basic_authentication() {
    let Some(binary) = installed("squid") else {
        return;
    };
    let b = Block(85);
    let dir = TempDir::new("squid-auth");
    let _edge = start_edge(b, &dir);
    let proxy = SocketAddr::new(b.socks(), free_port(b.socks()));
    let mut server = start_squid(&binary, proxy.ip(), proxy.port(), &dir, true);
    let (alice, bob) = two_calls(b, &dir, &type3(proxy, Some((USER, SQUID_PASS))));
    check_heard(&alice, 2, proxy);
    check_heard(&bob, 1, proxy);
    assert!(!alice.stderr.contains(SQUID_PASS), "{}", alice.stderr);
    assert!(
        !alice.json.to_string().contains(SQUID_PASS),
        "{:#?}",
        alice.json
    );

    // A wrong password: squid answers 407 again, and the call fails saying so.
    let wrong = type3(proxy, Some((USER, "not-the-password")));
    let mut mallory = start_call(b, &dir, "mallory", 3, 2.0, &[&wrong], &[]);
    let mallory = finish_call(&mut mallory, Duration::from_secs(20));
    assert_eq!(mallory.status.code(), Some(1), "{mallory:#?}");
    assert!(!mallory.joined());
    assert!(
        mallory.stderr.contains("rejected the credentials"),
        "{}",
        mallory.stderr
    );
    server.terminate(Duration::from_secs(10));
    let log = squid_access_log(&dir);
    assert!(
        log.lines()
            .any(|l| l.contains("CONNECT") && l.contains(USER)),
        "no authenticated CONNECT by {USER} in squid's access log:\n{log}"
    );
}
