//! Helpers of the netlab tests: the binary, what a lab left on the machine (namespaces,
//! processes, `/etc/netns` entries, its state directory, host interfaces), bounded waits.
//!
//! These tests need root, `ip` (iproute2) and `nft` (nftables), as CI has them: without them
//! they fail with the reason and the install command, never pass silently.
// Measures or bounds its waits on the wall clock (clippy.toml disallows the system clocks
// for the simulation's sake).
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloudproxy::netlab::state::{labs_dir, LabState, ProcessRecord};

/// The `cloudproxy` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudproxy")
}

/// Fails the test, with the install command, when this machine cannot host a lab.
pub fn require_lab() {
    if let Err(e) = cloudproxy::netlab::preflight() {
        panic!(
            "{e}: the netlab tests build real network namespaces (root, {})",
            cloudproxy::netlab::INSTALL
        );
    }
}

/// Runs a command to completion, bounded (killed after `timeout`, which fails the test).
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} did not finish within {timeout:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cloudproxy ARGS`, bounded; the output.
pub fn cloudproxy(args: &[&str], timeout: Duration) -> Output {
    run(Command::new(bin()).args(args), timeout)
}

/// The text of an output stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every network namespace of the machine.
pub fn namespaces() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The host namespace's interfaces.
pub fn host_links() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// Whether a recorded process still runs (same id and start time, not a zombie).
pub fn alive(p: &ProcessRecord) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(19).and_then(|s| s.parse().ok()) == Some(p.start)
}

/// The state file of the lab `owner` is building, once it has started `wanted` processes
/// (waits up to `timeout`).
pub fn lab_of(owner: u32, wanted: &[&str], timeout: Duration) -> LabState {
    let deadline = Instant::now() + timeout;
    loop {
        for path in LabState::all() {
            if let Ok(state) = LabState::load(&path) {
                let names: Vec<&str> = state.processes.iter().map(|p| p.name.as_str()).collect();
                if state.owner_pid == owner && wanted.iter().all(|w| names.contains(w)) {
                    return state;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no lab of process {owner} started {wanted:?} within {timeout:?} (labs: {:?})",
            LabState::all()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The state of lab `id`.
pub fn state_of(id: &str) -> LabState {
    LabState::load(&LabState::path_of(id)).expect("the lab's state file")
}

/// The lab id in `netlab up`'s output.
pub fn id_in(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cpnl-"))
        .expect("a lab name in the output")
        .to_owned()
}

/// Asserts that nothing `state` records is left: no namespace, no process, no `/etc/netns`
/// entry, no state directory, no namespace of its prefix at all.
pub fn assert_gone(state: &LabState) {
    let now = namespaces();
    let prefix = format!("cpnl-{}-", state.id);
    let left: Vec<&String> = now.iter().filter(|n| n.starts_with(&prefix)).collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let running: Vec<&ProcessRecord> = state.processes.iter().filter(|p| alive(p)).collect();
    assert!(running.is_empty(), "processes left: {running:?}");
    for dir in &state.etc_netns {
        assert!(!dir.exists(), "{} left", dir.display());
    }
    let dir: PathBuf = labs_dir().join(&state.id);
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(
        !state.namespaces.is_empty(),
        "the state recorded no namespace: {state:?}"
    );
}

/// Sends `signal` to a process.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -s {signal} {pid}");
}

/// Waits for a child, bounded; its output.
pub fn wait_child(child: Child, timeout: Duration) -> Output {
    let mut child = child;
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `cloudproxy netlab run ARGS` in the background.
pub fn start_run(args: &[&str]) -> Child {
    Command::new(bin())
        .args(["netlab", "run"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netlab run")
}

/// Runs `ip netns exec NS ARGS`; the output.
pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    run(
        Command::new("ip").args(["netns", "exec", ns]).args(args),
        Duration::from_secs(20),
    )
}

/// A file in a temporary directory of its own (of this test process and this name).
pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cloudproxy-netlab-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Removes the temporary directory of a [`temp_file`].
pub fn remove_temp(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
