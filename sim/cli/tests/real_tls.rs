//! TLS on 443 on real sockets (loopback only; **beyond the seed**, docs/protocol.md §13): a
//! test CA made at test start, `cloudproxy serve` with TLS on the access point's and the
//! relays' port 443, two force-TCP `cloudproxy call` clients that join and hear each other
//! over the TLS tunnel, and a client trusting another CA that is refused with a clear error
//! while the others go on.

mod real_support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_node::tls::TestCa;
use real_support::*;

// 127.90 and 127.91 are the benchmarks'.
const B: Block = Block(93);
/// The two-worker test's block.
const W: Block = Block(95);

/// A CA from the operating system's randomness.
fn fresh_ca() -> TestCa {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .unwrap();
    TestCa::new(Entropy::from_seed(seed)).unwrap()
}

/// The CA's certificate, the access point's and the relays' certificates and keys, written
/// of block `b` in `dir` (keys `chmod 600`); returns the CA file.
fn write_pki(dir: &TempDir, ca: &mut TestCa, b: Block) -> PathBuf {
    let ap = ca.issue(&["ap-proxy.agora.io"], &[b.ap()]).unwrap();
    let relays = ca.issue(&[], &[b.relay(1), b.relay(2)]).unwrap();
    for (name, issued) in [("ap", &ap), ("relay", &relays)] {
        dir.write(&format!("{name}.crt"), &issued.chain_pem);
        let key = dir.write(&format!("{name}.key"), &issued.key_pem);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir.write("ca.pem", &ca.root_pem())
}

fn tls_config(dir: &TempDir) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    format!(
        "sdrtn = [\"{}\"]\nmetrics = \"{}\"\n\n[ap]\nlisten = [\"{}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\n[relay]\nlisten = [\"{}\", \"{}\"]\nudp_ports = \"4500-4503\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        B.sdrtn(),
        B.metrics(1),
        B.ap(),
        path("ap.crt"),
        path("ap.key"),
        B.relay(1),
        B.relay(2),
        path("relay.crt"),
        path("relay.key"),
    )
}

/// A force-TCP call (setCloudProxy(force TCP), no setParameters) trusting `ca`.
fn force_tcp_call(dir: &TempDir, b: Block, name: &str, i: u8, secs: f64, ca: &PathBuf) -> Proc {
    let mut command = Command::new(bin());
    command
        .arg("call")
        .arg("--json")
        .args(["--name", name])
        .args(["--uid", &i.to_string()])
        .args(["--bind", &b.client(i).to_string()])
        .args(["--edge", &b.edge().to_string()])
        .args(["--dns", &b.dns()])
        .args(["--for", &secs.to_string()])
        .args(["--cloud-proxy", "force-tcp"])
        .arg("--tls-ca")
        .arg(ca);
    Proc::spawn(name, command, dir)
}

#[test]
fn force_tcp_clients_carry_media_over_tls_and_a_wrong_ca_is_refused_clearly() {
    let dir = TempDir::new("real-tls");
    let mut ca = fresh_ca();
    let ca_file = write_pki(&dir, &mut ca, B);
    let other_ca = dir.write("other-ca.pem", &fresh_ca().root_pem());
    let _edge = start_edge(B, &dir);
    let mut serve = start_serve("serve", &dir, &tls_config(&dir), &random_key());

    let mut alice = force_tcp_call(&dir, B, "alice", 1, 6.0, &ca_file);
    let mut bob = force_tcp_call(&dir, B, "bob", 2, 6.0, &ca_file);
    // Carol trusts another CA: every TLS handshake fails on her side.
    let mut carol = force_tcp_call(&dir, B, "carol", 3, 2.0, &other_ca);
    let carol = finish_call(&mut carol, Duration::from_secs(20));
    let (alice, bob) = (
        finish_call(&mut alice, Duration::from_secs(25)),
        finish_call(&mut bob, Duration::from_secs(25)),
    );

    // Her call says why, naming the access point and the name it verified.
    assert!(!carol.status.success() && !carol.joined(), "{carol:#?}");
    let expected = format!(
        "TLS to {}:443 (verifying ap-proxy.agora.io): invalid peer certificate: UnknownIssuer",
        B.ap()
    );
    assert!(carol.stderr.contains(&expected), "{}", carol.stderr);
    // And so does her report: the reason names TLS, the address and rustls' reason.
    assert_eq!(
        carol.json["last_reason"],
        format!("TLS handshake failed: {expected}"),
        "{carol:#?}"
    );

    for (report, other) in [(&alice, 2), (&bob, 1)] {
        assert!(report.status.success(), "{report:#?}");
        assert!(report.joined(), "{report:#?}");
        assert_eq!(report.media_path(), "Tcp", "{report:#?}");
        assert!(report.relay().ends_with(":443"), "{report:#?}");
        assert!(report.received_from(other) >= 100, "{report:#?}");
        assert_eq!(report.json["media_from"][other.to_string()]["corrupt"], 0);
    }

    // The tunnels and media channels were TLS connections on 443: the relays saw them.
    let text = scrape(B.metrics(1));
    let opened: u64 = [B.relay(1), B.relay(2)]
        .iter()
        .map(|r| {
            metric(
                &text,
                "cloudproxy_relay_sessions_opened_total",
                &format!("relay=\"{r}\""),
            )
        })
        .sum();
    assert_eq!(opened, 2, "{text}");
    // The access point counted Carol's refusals as bad certificates, the others' handshakes as
    // completed; the relays completed the tunnels' and media channels' handshakes.
    let ap = format!("ap=\"{}\"", B.ap());
    let ap_failed = "cloudproxy_ap_tls_handshake_failures_total";
    let bad = metric(
        &text,
        ap_failed,
        &format!("{ap},reason=\"bad_certificate\""),
    );
    assert!(bad >= 1, "{text}");
    assert_eq!(
        metric(&text, ap_failed, &format!("{ap},reason=\"no_alpn\"")),
        0
    );
    let ap_completed = metric(&text, "cloudproxy_ap_tls_handshakes_total", &ap);
    assert!(ap_completed >= 2, "{text}");
    assert!(
        relay_handshakes(&text, &[B.relay(1), B.relay(2)])
            .iter()
            .sum::<u64>()
            >= 4
    );
    let status = serve.terminate(Duration::from_secs(10));
    assert!(status.success(), "{}", serve.stderr());
    // No key-permission warning for keys kept `chmod 600`.
    assert!(
        !serve.stderr().contains("TLS key file"),
        "{}",
        serve.stderr()
    );
}

/// Each worker's completed TLS handshakes, summed over `relays`.
fn relay_handshakes(text: &str, relays: &[std::net::IpAddr]) -> Vec<u64> {
    let workers = metric(text, "cloudproxy_relay_workers", "");
    (0..workers)
        .map(|w| {
            relays
                .iter()
                .map(|r| {
                    let labels = format!("relay=\"{r}\",worker=\"{w}\"");
                    metric(text, "cloudproxy_relay_tls_handshakes_total", &labels)
                })
                .sum()
        })
        .collect()
}

/// The TLS configuration with two relay workers, one relay.
fn two_worker_config(dir: &TempDir) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    format!(
        "sdrtn = [\"{}\"]\nmetrics = \"{}\"\n\n[ap]\nlisten = [\"{}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\n[relay]\nlisten = [\"{}\"]\nworkers = 2\nudp_ports = \"4500-4503\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        W.sdrtn(),
        W.metrics(1),
        W.ap(),
        path("ap.crt"),
        path("ap.key"),
        W.relay(1),
        path("relay.crt"),
        path("relay.key"),
    )
}

/// Force-TCP clients of the two-worker test (each has a tunnel and a media channel over TLS,
/// so that 2 × CLIENTS relay connections are spread by the kernel over the two workers).
const CLIENTS: u8 = 6;

#[test]
fn every_relay_worker_serves_tls_and_sessions_of_another_worker_still_carry_media() {
    let dir = TempDir::new("real-tls-workers");
    let mut ca = fresh_ca();
    let ca_file = write_pki(&dir, &mut ca, W);
    let _edge = start_edge(W, &dir);
    let mut serve = start_serve("serve", &dir, &two_worker_config(&dir), &random_key());
    assert!(
        serve.stderr().contains("on every worker"),
        "{}",
        serve.stderr()
    );

    // SO_REUSEPORT deals connections out by their addresses: all 2 x CLIENTS on one worker
    // has a chance of 2^-11, no client's media channel on another worker than its tunnel's
    // about 2^-6, so another round of calls follows while one worker has none or no TLS
    // connection moved (at most 3 rounds: about 2^-18).
    let mut rounds = 0u64;
    let (text, per_worker) = loop {
        rounds += 1;
        let mut calls: Vec<Proc> = (1..=CLIENTS)
            .map(|i| force_tcp_call(&dir, W, &format!("c{rounds}-{i}"), i, 5.0, &ca_file))
            .collect();
        let reports: Vec<CallReport> = calls
            .iter_mut()
            .map(|c| finish_call(c, Duration::from_secs(30)))
            .collect();
        for report in &reports {
            assert!(report.status.success() && report.joined(), "{report:#?}");
            assert_eq!(report.media_path(), "Tcp", "{report:#?}");
            assert!(report.relay().ends_with(":443"), "{report:#?}");
            assert!(report.received() >= 100, "{report:#?}");
        }
        let text = scrape(W.metrics(1));
        let per_worker = relay_handshakes(&text, &[W.relay(1)]);
        assert_eq!(per_worker.len(), 2, "{text}");
        let moved = metric(
            &text,
            "cloudproxy_relay_tls_moved_total",
            &format!("relay=\"{}\"", W.relay(1)),
        );
        if (per_worker.iter().all(|n| *n > 0) && moved > 0) || rounds == 3 {
            break (text, per_worker);
        }
    };
    let relay = format!("relay=\"{}\"", W.relay(1));
    // Both workers took TLS connections, every handshake counted.
    assert!(per_worker.iter().all(|n| *n > 0), "{per_worker:?}\n{text}");
    assert_eq!(
        per_worker.iter().sum::<u64>(),
        2 * u64::from(CLIENTS) * rounds,
        "{text}"
    );
    // A media channel that landed on the other worker moved to its session's (every call
    // above carried media either way): every handoff was a TLS connection moved, none
    // dropped.
    let moved = metric(&text, "cloudproxy_relay_tls_moved_total", &relay);
    let dropped = metric(&text, "cloudproxy_relay_tls_move_dropped_total", &relay);
    let handed = metric(
        &text,
        "cloudproxy_relay_handoffs_total",
        &format!("{relay},direction=\"out\""),
    );
    assert!(moved > 0, "{text}");
    assert_eq!((moved, dropped), (handed, 0), "{text}");
    eprintln!("TLS handshakes per worker {per_worker:?}, moved {moved}");
    // Nothing bridged: serve has no socket on 127.0.0.1 (its own addresses are all of the
    // block), neither a pairing listener nor a loopback pair.
    let sockets = tcp_sockets(serve.pid());
    let relay_hex = proc_hex(W.relay(1));
    assert!(
        sockets.iter().any(|s| s.starts_with(&relay_hex)),
        "serve's relay sockets are seen: {sockets:?}"
    );
    let local: Vec<&String> = sockets
        .iter()
        .filter(|s| s.starts_with("0100007F:"))
        .collect();
    assert!(local.is_empty(), "serve's sockets on 127.0.0.1: {local:?}");
    let opened = metric(&text, "cloudproxy_relay_sessions_opened_total", &relay);
    assert_eq!(opened, u64::from(CLIENTS) * rounds, "{text}");
    let channels = metric(
        &text,
        "cloudproxy_relay_media_channels_opened_total",
        &relay,
    );
    assert_eq!(channels, u64::from(CLIENTS) * rounds, "{text}");
    let status = serve.terminate(Duration::from_secs(10));
    assert!(status.success(), "{}", serve.stderr());
}

/// The local addresses of process `pid`'s TCP sockets, as `/proc/<pid>/net/tcp` writes them
/// (`0100007F:1F90` is 127.0.0.1:8080).
fn tcp_sockets(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mine = fields.len() > 9 && inodes.iter().any(|i| i == fields[9]);
            mine.then(|| fields[1].to_owned())
        })
        .collect()
}

/// An IPv4 address as `/proc/net/tcp` writes it.
fn proc_hex(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("{:08X}", u32::from_le_bytes(v4.octets())),
        std::net::IpAddr::V6(_) => unreachable!("the blocks are IPv4"),
    }
}

#[test]
fn serve_refuses_to_start_without_its_tls_key_naming_the_field() {
    let dir = TempDir::new("real-tls-missing");
    let config = format!(
        "sdrtn = [\"127.94.3.0/24\"]\n[ap]\nlisten = [\"127.94.1.1\"]\nrelays = [\"127.94.2.1\"]\ntls_cert_file = \"{}\"\n[relay]\nlisten = []\n",
        dir.join("ap.crt").display()
    );
    let path = dir.write("serve.toml", &config);
    let output = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("CLOUDPROXY_TICKET_KEY", random_key())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ap.tls_key_file: ap.tls_cert_file is set but not ap.tls_key_file"),
        "{stderr}"
    );
}
