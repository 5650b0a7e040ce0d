//! Helpers of the real-socket tests (`real_*.rs`): the `cloudproxy` binary as child
//! processes (serve, edge, call), third-party SOCKS5 servers, loopback address blocks, metrics
//! scrapes. Everything is bounded in time; every child is killed (by process id) when its
//! guard is dropped, even when the test fails.
//!
//! Each test takes its own address block `127.B.0.0/16` (B unique per test), so tests run in
//! parallel without port collisions even though the nodes use the seed's fixed ports:
//!
//! | what | address |
//! |---|---|
//! | access point(s) | 127.B.1.1 (.2, ...) |
//! | relays | 127.B.2.1, 127.B.2.2 |
//! | SD-RTN edge | 127.B.3.1 (SD-RTN block 127.B.3.0/24) |
//! | SOCKS5 server | 127.B.4.1 |
//! | metrics | 127.B.9.x:9464 |
//! | clients | 127.B.10.x |
//! | attackers | 127.B.66.x and up |
#![allow(dead_code)]
// clippy.toml disallows the system's clocks; real-socket tests bound their waits (and name their runs) on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `cloudproxy` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudproxy")
}

/// `127.B.x.y` for test block `b`.
#[derive(Clone, Copy, Debug)]
pub struct Block(pub u8);

impl Block {
    /// An address of the block.
    pub fn ip(self, x: u8, y: u8) -> IpAddr {
        IpAddr::from([127, self.0, x, y])
    }
    /// The access point.
    pub fn ap(self) -> IpAddr {
        self.ip(1, 1)
    }
    /// Relay `i` (1 or 2).
    pub fn relay(self, i: u8) -> IpAddr {
        self.ip(2, i)
    }
    /// The edge.
    pub fn edge(self) -> IpAddr {
        self.ip(3, 1)
    }
    /// The SOCKS5 server.
    pub fn socks(self) -> IpAddr {
        self.ip(4, 1)
    }
    /// Client `i`.
    pub fn client(self, i: u8) -> IpAddr {
        self.ip(10, i)
    }
    /// Metrics endpoint `i`.
    pub fn metrics(self, i: u8) -> SocketAddr {
        SocketAddr::new(self.ip(9, i), 9464)
    }
    /// The SD-RTN block.
    pub fn sdrtn(self) -> String {
        format!("127.{}.3.0/24", self.0)
    }
    /// `{"rtc.proxy_server":[2,"[\"<ap>\"]",0]}`.
    pub fn ip_list_params(self) -> String {
        format!(r#"{{"rtc.proxy_server":[2,"[\"{}\"]",0]}}"#, self.ap())
    }
    /// `--dns` entry pointing the default AP name at this block's access point.
    pub fn dns(self) -> String {
        format!("ap-proxy.agora.io={}", self.ap())
    }
}

/// `{"rtc.enable_proxy":true}`.
pub const ENABLE: &str = r#"{"rtc.enable_proxy":true}"#;

/// A fresh random ticket key, hex.
pub fn random_key() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory named after the test.
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path =
            std::env::temp_dir().join(format!("cloudproxy-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file inside and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop. Its stdout lines are collected; stderr goes to a file.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub stderr_path: PathBuf,
}

impl Proc {
    /// Starts `command` as `name`, its stderr in `dir`.
    pub fn spawn(name: &str, mut command: Command, dir: &TempDir) -> Proc {
        let stderr_path = dir.join(&format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Proc {
            name: name.to_owned(),
            child: Some(child),
            lines,
            reader: Some(reader),
            stderr_path,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until a stdout line contains `text`; panics (with the process's output) after
    /// `timeout` or if the process exits first.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().iter().any(|l| l.contains(text)) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before printing {text:?}\nstdout: {:?}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {text:?} within {timeout:?}\nstdout: {:?}\nstderr:\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit (killing it after `timeout`, which fails the test).
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {timeout:?}\nstdout: {:?}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// Sends SIGTERM (by process id) and waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        self.finish(timeout)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) to the process id.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("the kill command");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Kills the process (SIGKILL) at once and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `serve` configuration for block `b`: one access point (the seed's four ports), the given
/// relays, small bounds where `extra` says so (TOML appended to the `[relay]` section).
pub fn serve_config(
    b: Block,
    aps: &[IpAddr],
    relays: &[IpAddr],
    handed_out: &[IpAddr],
    metrics: SocketAddr,
    relay_extra: &str,
) -> String {
    let list = |ips: &[IpAddr]| {
        ips.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "sdrtn = [\"{}\"]\nmetrics = \"{metrics}\"\n\n[ap]\nlisten = [{}]\nrelays = [{}]\n\n[relay]\nlisten = [{}]\nudp_ports = \"4500-4503\"\n{relay_extra}\n",
        b.sdrtn(),
        list(aps),
        list(handed_out),
        list(relays),
    )
}

/// Starts `cloudproxy serve` with `config` and the key in the environment; waits until ready.
pub fn start_serve(name: &str, dir: &TempDir, config: &str, key: &str) -> Proc {
    let path = dir.write(&format!("{name}.toml"), config);
    let mut command = Command::new(bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("CLOUDPROXY_TICKET_KEY", key);
    let mut proc = Proc::spawn(name, command, dir);
    proc.wait_for("cloudproxy serve: ready", Duration::from_secs(10));
    proc
}

/// Starts `cloudproxy edge` on the block's edge address; waits until ready.
pub fn start_edge(b: Block, dir: &TempDir) -> Proc {
    let mut command = Command::new(bin());
    command
        .arg("edge")
        .arg("--listen")
        .arg(b.edge().to_string());
    let mut proc = Proc::spawn("edge", command, dir);
    proc.wait_for("cloudproxy edge: ready", Duration::from_secs(10));
    proc
}

/// Starts `cloudproxy call --json` as client `i` of block `b` (uid `i`).
pub fn start_call(
    b: Block,
    dir: &TempDir,
    name: &str,
    i: u8,
    secs: f64,
    params: &[&str],
    extra: &[&str],
) -> Proc {
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
        .args(["--seed", &i.to_string()])
        .args(extra)
        .arg("--params")
        .args(params);
    Proc::spawn(name, command, dir)
}

/// A finished call: its exit status and its JSON report.
#[derive(Debug)]
pub struct CallReport {
    pub status: ExitStatus,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl CallReport {
    pub fn joined(&self) -> bool {
        self.json["joined"] == true
    }
    pub fn received(&self) -> u64 {
        self.json["media_received"].as_u64().unwrap_or(0)
    }
    pub fn received_from(&self, uid: u32) -> u64 {
        self.json["media_from"][uid.to_string()]["received"]
            .as_u64()
            .unwrap_or(0)
    }
    pub fn lost(&self) -> u64 {
        self.json["media_lost"].as_u64().unwrap_or(0)
    }
    pub fn reconnects(&self) -> u64 {
        self.json["reconnects"].as_u64().unwrap_or(0)
    }
    pub fn media_path(&self) -> &str {
        self.json["media_path"].as_str().unwrap_or("")
    }
    pub fn proxy_type(&self) -> Option<u64> {
        self.json["proxy_type"].as_u64()
    }
    pub fn relay(&self) -> &str {
        self.json["relay"].as_str().unwrap_or("")
    }
    /// Media packets received in whole second `s` of the call.
    pub fn media_in_second(&self, s: u64) -> u64 {
        self.json["media_per_second"][s.to_string()]
            .as_u64()
            .unwrap_or(0)
    }
}

/// Waits for a call to end and reads its report.
pub fn finish_call(proc: &mut Proc, timeout: Duration) -> CallReport {
    let status = proc.finish(timeout);
    let stdout = proc.stdout().join("\n");
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}); status {status}\nstdout: {stdout}\nstderr:\n{}",
            proc.name,
            proc.stderr()
        )
    });
    CallReport {
        status,
        json,
        stderr: proc.stderr(),
    }
}

/// `GET /metrics` from `addr`.
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("metrics at {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// One sample of a scrape (`labels` as written, e.g. `relay="127.1.2.1"`); 0 when absent.
pub fn metric(text: &str, name: &str, labels: &str) -> u64 {
    cloudproxy::serve::metrics::sample(text, name, labels).unwrap_or(0)
}

/// Where a third-party server binary is, or a failure that says how to install it.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/usr/local/sbin",
            "/usr/local/bin",
        ]
        .map(PathBuf::from),
    );
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed; this interop test needs it. Install it with: apt-get update && apt-get install -y {package}"
            )
        })
}

/// Whether a path exists (for logs).
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Waits until something accepts TCP on `addr` (`proc` listens there), up to 10 s.
pub fn wait_port(addr: SocketAddr, proc: &Proc) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not listen on {addr}: {}",
            proc.name,
            proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
