//! `cargo xtask`: the workspace's task runner (the usual xtask pattern: a binary crate of the
//! workspace, `cargo xtask` an alias in `.cargo/config.toml`).
//!
//! ```text
//! cargo xtask test    the README's test command: prerequisites (installed when it can), the
//!                     lint gates, `cargo test --workspace`, the canary (the oracles catch
//!                     a planted bug), no unreferenced snapshot
//! cargo xtask lint    the lint gates only (format, clippy, dependency checks)
//! cargo xtask peers   the Debian packages the tests need, and the command that installs them
//! cargo xtask bench-gate  the benchmark regression gate: the quick suite compared with
//!                     benches/reference.json (goal ratios, 35% tolerance, a regressed target
//!                     retried once); CI runs it after the tests
//! ```
//!
//! `cargo xtask test` stops at the first failing step, naming it; when something the tests need
//! is missing and it cannot install it, it stops at once with the exact command to run.
// clippy.toml disallows the system clocks for the simulation's sake; a task runner times its
// steps on the wall clock.
#![allow(clippy::disallowed_methods)]

mod bench_gate;
mod lint;
mod peers;
mod snapshots;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The workspace's root (this crate is `sim/xtask`).
fn root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// The cargo that runs us (`$CARGO`), or `cargo`.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// Runs `command`, its output streaming through; the error names it.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let shown = shown.replacen(&*std::env::var("CARGO").unwrap_or_default(), "cargo", 1);
    println!("    $ {shown}");
    let _ = std::io::stdout().flush();
    let status = command
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Numbered steps with their times.
struct Steps {
    total: usize,
    done: Vec<(&'static str, Duration)>,
    started: Instant,
}

impl Steps {
    fn new(total: usize) -> Self {
        Steps {
            total,
            done: Vec::new(),
            started: Instant::now(),
        }
    }

    fn step(&mut self, name: &'static str, f: impl FnOnce() -> Result<(), String>) -> bool {
        println!("\n==> [{}/{}] {name}", self.done.len() + 1, self.total);
        let _ = std::io::stdout().flush();
        let started = Instant::now();
        match f() {
            Ok(()) => {
                let took = started.elapsed();
                println!("    ok ({:.1} s)", took.as_secs_f64());
                self.done.push((name, took));
                true
            }
            Err(why) => {
                eprintln!("\ncargo xtask: step {:?} failed: {why}", name);
                false
            }
        }
    }

    fn summary(&self) {
        println!(
            "\ncargo xtask: all {} steps passed in {:.0} s",
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        for (name, took) in &self.done {
            println!("  {:>7.1} s  {name}", took.as_secs_f64());
        }
    }
}

/// rustfmt and clippy, which the lint gates need.
fn toolchain() -> Result<(), String> {
    for (tool, args) in [
        ("rustfmt", ["fmt", "--version"]),
        ("clippy", ["clippy", "--version"]),
    ] {
        let ok = cargo()
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(format!(
                "{tool} is not installed; run: rustup component add rustfmt clippy"
            ));
        }
    }
    run(cargo().arg("--version"))
}

/// Root (dante's RFC 1929 test sets a system account's password) and the Debian peers,
/// installed when missing and possible.
fn prerequisites() -> Result<(), String> {
    let root = peers::is_root();
    let missing = peers::missing();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|p| p.package).collect();
        println!("    missing Debian peers: {}", names.join(", "));
        match peers::installer() {
            Some(prefix) => peers::install(&missing, &prefix)?,
            None => {
                return Err(format!(
                    "the tests need these Debian packages and this process cannot install them; run:\n\n    {}\n",
                    peers::install_command(&missing, root)
                ))
            }
        }
        let still = peers::missing();
        if !still.is_empty() {
            let names: Vec<&str> = still.iter().map(|p| p.binary).collect();
            return Err(format!("still not installed: {}", names.join(", ")));
        }
    }
    for peer in peers::PEERS {
        let path = peers::find(peer.binary).unwrap_or_default();
        println!("    {:<13} {} ({})", peer.package, path.display(), peer.why);
    }
    if !root {
        return Err(
            "the tests must run as root (dante's RFC 1929 test sets the password of the system account cloudproxy-socks); run:\n\n    sudo -E env \"PATH=$PATH\" cargo xtask test\n"
                .to_owned(),
        );
    }
    Ok(())
}

fn dependencies() -> Result<(), String> {
    for (package, forbidden, why) in [
        (
            "cloudproxy-core",
            [lint::CORE_FORBIDDEN, lint::CORE_TEST_ONLY].concat(),
            "core must stay sans-IO and keep the testkit a dev-dependency",
        ),
        (
            "cloudproxy-testkit",
            lint::CORE_FORBIDDEN.to_vec(),
            "core's tests pull the testkit in, so it must stay sans-IO too",
        ),
        (
            "cloudproxy-node",
            lint::NODE_FORBIDDEN.to_vec(),
            "the nodes must run on real sockets unchanged",
        ),
    ] {
        let out = cargo()
            .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
            .output()
            .map_err(|e| format!("cannot run cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo tree -p {package} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let found = lint::forbidden_in(&String::from_utf8_lossy(&out.stdout), &forbidden);
        if !found.is_empty() {
            return Err(format!("{package} depends on {} ({why})", found.join(", ")));
        }
        println!("    {package}: none of {}", forbidden.join(", "));
    }
    Ok(())
}

fn format() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--check"]))
}

fn clippy() -> Result<(), String> {
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Where insta lists the snapshot files the suite asserted.
fn references_file() -> PathBuf {
    root().join("target/xtask/insta-references.txt")
}

fn tests() -> Result<(), String> {
    let references = references_file();
    if let Some(dir) = references.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&references);
    run(cargo()
        .args(["test", "--workspace"])
        .env("INSTA_SNAPSHOT_REFERENCES_FILE", &references))
}

/// The canary: with the planted bug (the `canary` feature: relays skip their destination
/// check) the safety oracle must fail, and without it the same world must pass; the test
/// asserts both, so this step passes only when the oracle catches the bug.
fn canary() -> Result<(), String> {
    run(cargo().args([
        "test",
        "-p",
        "cloudproxy-sim",
        "--features",
        "canary",
        "--test",
        "canary",
    ]))
}

fn unreferenced_snapshots() -> Result<(), String> {
    let unnamed = snapshots::unnamed(&root());
    if !unnamed.is_empty() {
        return Err(format!(
            "snapshot files their sources do not name:\n    {}",
            unnamed.join("\n    ")
        ));
    }
    let references = std::fs::read_to_string(references_file()).unwrap_or_default();
    let stale = snapshots::unreferenced(&root(), &references);
    let all = snapshots::files(&root().join("snapshots")).len();
    if stale.is_empty() {
        println!("    all {all} snapshot files were asserted by the suite");
        return Ok(());
    }
    let names: Vec<String> = stale
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap_or(p).display().to_string())
        .collect();
    Err(format!(
        "{} of {all} snapshot files were asserted by no test (delete them, or fix the test that should):\n    {}",
        names.len(),
        names.join("\n    ")
    ))
}

fn test() -> ExitCode {
    let mut steps = Steps::new(8);
    let ok = steps.step("toolchain (rustfmt, clippy)", toolchain)
        && steps.step("prerequisites (root, Debian peers)", prerequisites)
        && steps.step("format (cargo fmt --check)", format)
        && steps.step("lint (clippy -D warnings)", clippy)
        && steps.step(
            "dependencies (core and testkit sans-IO, node without turmoil)",
            dependencies,
        )
        && steps.step("tests (cargo test --workspace)", tests)
        && steps.step("canary (the safety oracle catches the planted bug)", canary)
        && steps.step("snapshots (none unreferenced)", unreferenced_snapshots);
    if ok {
        steps.summary();
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn lint_only() -> ExitCode {
    let mut steps = Steps::new(4);
    let ok = steps.step("toolchain (rustfmt, clippy)", toolchain)
        && steps.step("format (cargo fmt --check)", format)
        && steps.step("lint (clippy -D warnings)", clippy)
        && steps.step(
            "dependencies (core and testkit sans-IO, node without turmoil)",
            dependencies,
        );
    if ok {
        steps.summary();
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_peers() -> ExitCode {
    println!("The Debian packages the tests use as real peers:");
    for peer in peers::PEERS {
        let state = peers::find(peer.binary).map_or("missing".to_owned(), |p| {
            format!("installed: {}", p.display())
        });
        println!(
            "  {:<13} {:<11} {} ({state})",
            peer.package, peer.binary, peer.why
        );
    }
    let all: Vec<peers::Peer> = peers::PEERS.to_vec();
    println!(
        "\nInstall them with:\n  {}",
        peers::install_command(&all, peers::is_root())
    );
    ExitCode::SUCCESS
}

const USAGE: &str = "usage: cargo xtask <test|lint|peers|bench-gate>

  test    the README's test command: rustfmt and clippy, root and the Debian peers
          (installed with apt-get when it can, else it stops naming the command), format,
          clippy -D warnings, the dependency gates, cargo test --workspace, the canary
          (the oracles catch a planted bug), and no unreferenced snapshot
  lint    format, clippy and the dependency gates only
  peers   the Debian packages the tests need and the command that installs them
  bench-gate  the benchmark regression gate: benches/quick --compare --goals-only
          --tolerance 0.35 (same-run ratios against benches/reference.json), a target whose
          ratio regressed run once more before the gate fails";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["test"] => test(),
        ["lint"] => lint_only(),
        ["peers"] => print_peers(),
        ["bench-gate"] => bench_gate::main(),
        [] | ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("cargo xtask: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
