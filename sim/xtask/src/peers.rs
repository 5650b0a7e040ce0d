//! The Debian packages the tests use as real peers, in one place, and their installation.
//!
//! `cargo xtask test` installs the missing ones when it can (as root, with `apt-get`; in CI
//! also through passwordless `sudo`), and otherwise stops at once naming the exact command.

use std::path::PathBuf;
use std::process::Command;

/// A Debian package and the program that shows it is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The package's name.
    pub package: &'static str,
    /// A program it installs.
    pub binary: &'static str,
    /// What the tests use it for.
    pub why: &'static str,
}

/// Every Debian peer the tests need: the one list (the README names `cargo xtask peers` rather
/// than repeat it).
pub const PEERS: &[Peer] = &[
    Peer {
        package: "tshark",
        binary: "tshark",
        why: "reads the pcaps the simulation writes",
    },
    Peer {
        package: "dante-server",
        binary: "danted",
        why: "a real SOCKS5 server for type 0 (no auth and RFC 1929)",
    },
    Peer {
        package: "microsocks",
        binary: "microsocks",
        why: "a real SOCKS5 server without UDP ASSOCIATE",
    },
    Peer {
        package: "nftables",
        binary: "nft",
        why: "nft rulesets, for check-firewall --from-nft (being added)",
    },
    Peer {
        package: "iptables",
        binary: "iptables",
        why: "iptables-save rulesets, for check-firewall --from-iptables (being added)",
    },
    Peer {
        package: "iproute2",
        binary: "ip",
        why: "network namespaces (ip netns), for tests on real rulesets",
    },
    Peer {
        package: "tinyproxy",
        binary: "tinyproxy",
        why: "a real HTTP proxy for type 3 (CONNECT, with and without BasicAuth)",
    },
    Peer {
        package: "squid",
        binary: "squid",
        why: "a real HTTP proxy for type 3 (CONNECT, with and without BasicAuth)",
    },
    Peer {
        package: "chromium",
        binary: "chromium",
        why: "renders the one-file failure reports headless (run --report-dir)",
    },
];

/// The directories searched for a peer's program: `$PATH`, then the sbin directories a
/// non-root `$PATH` often lacks.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"] {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Where `binary` is, if installed.
pub fn find(binary: &str) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

/// The peers whose program is not installed.
pub fn missing() -> Vec<Peer> {
    PEERS
        .iter()
        .copied()
        .filter(|p| find(p.binary).is_none())
        .collect()
}

/// Whether this process runs as root (Linux: `/proc/self/status`; else `id -u`).
pub fn is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(1) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The command that installs `peers`, as a person would type it (with `sudo` unless root).
pub fn install_command(peers: &[Peer], root: bool) -> String {
    let names: Vec<&str> = peers.iter().map(|p| p.package).collect();
    let sudo = if root { "" } else { "sudo " };
    format!(
        "{sudo}apt-get update && {sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
        names.join(" ")
    )
}

/// How this process can install packages: `Some(prefix)` (empty as root, `sudo -n` in CI with
/// passwordless sudo) or `None`.
pub fn installer() -> Option<Vec<&'static str>> {
    find("apt-get")?;
    if is_root() {
        return Some(Vec::new());
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let sudo = ci
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    sudo.then(|| vec!["sudo", "-n"])
}

/// Installs `peers` with `prefix` (see [`installer`]); the error says what failed.
pub fn install(peers: &[Peer], prefix: &[&str]) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend_from_slice(args);
        println!("    $ {}", all.join(" "));
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run {}: {e}", all[0]))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", all.join(" ")))
        }
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut args = vec!["apt-get", "install", "-y", "-qq"];
    args.extend(peers.iter().map(|p| p.package));
    run(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_command_names_every_missing_package() {
        let peers = &PEERS[..2];
        assert_eq!(
            install_command(peers, false),
            "sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y tshark dante-server"
        );
        assert!(install_command(peers, true).starts_with("apt-get update && env "));
    }

    #[test]
    fn every_peer_is_listed_once() {
        let mut names: Vec<&str> = PEERS.iter().map(|p| p.package).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PEERS.len());
    }
}
