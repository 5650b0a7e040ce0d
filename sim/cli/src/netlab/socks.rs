//! An enterprise's SOCKS5 server in the lab, for proxy type 0: Debian's `danted` (CONNECT and
//! UDP ASSOCIATE) when the world's server relays UDP, `microsocks` (CONNECT only: it answers UDP
//! ASSOCIATE with reply 7, so media falls back to TCP) when it does not.
//!
//! It runs on the enterprise's gateway, on the inside address 198.19.k.2 (the world's SOCKS5
//! host, mapped), and reaches the outside from the gateway's outside address: as in the
//! simulation, where the SOCKS5 host is behind no firewall, its own traffic is not filtered by
//! the enterprise's policy (it leaves through the gateway's `output`, not `forward`). The
//! clients' connections to it end at the gateway (`input`), so the forward chain does not see
//! them either, where the simulation filters them as any flow: the catalogue's SOCKS5 policies
//! allow them, so the verdicts are the same, and the per-rule counts show the difference.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cloudproxy_core::socks5::ServerPolicy;

use super::addr_map as map;
use super::NetlabError;

/// The install command named when a SOCKS5 server is missing.
pub const INSTALL: &str =
    "DEBIAN_FRONTEND=noninteractive apt-get install -y dante-server microsocks";

/// How long a SOCKS5 server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// An enterprise's SOCKS5 server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksPlan {
    /// Its address in the simulation.
    pub seed: IpAddr,
    /// Its port.
    pub port: u16,
    /// Whether it relays UDP (`danted`) or not (`microsocks`).
    pub udp: bool,
}

impl SocksPlan {
    /// The plan for a simulated server with `policy`; the error says what a lab cannot serve.
    pub fn new(seed: IpAddr, port: u16, policy: &ServerPolicy) -> Result<SocksPlan, String> {
        if policy.credentials.is_some() || !policy.allow_no_auth {
            return Err("a SOCKS5 server that asks for a password: not yet in the lab".into());
        }
        if !policy.connect || policy.bind {
            return Err("a SOCKS5 server without CONNECT, or with BIND: not in the lab".into());
        }
        Ok(SocksPlan {
            seed,
            port,
            udp: policy.udp_associate,
        })
    }

    /// The program that serves it.
    pub fn program(&self) -> &'static str {
        if self.udp {
            "danted"
        } else {
            "microsocks"
        }
    }

    /// Its arguments, for enterprise `k`, with its configuration and log in `dir`.
    pub fn args(&self, k: usize, dir: &Path, slug: &str) -> Result<Vec<String>, NetlabError> {
        let inside = map::socks(k).to_string();
        let outside = map::gateway_outside(k).to_string();
        if !self.udp {
            return Ok(
                ["-i", &inside, "-p", &self.port.to_string(), "-b", &outside]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            );
        }
        let config = dir.join(format!("danted-{slug}.conf"));
        let text = format!(
            "# cloudproxy netlab: the SOCKS5 server of enterprise {slug}\n\
             logoutput: {log}\n\
             internal: {inside} port = {port}\n\
             external: {outside}\n\
             socksmethod: none\n\
             clientmethod: none\n\
             user.privileged: root\n\
             user.unprivileged: nobody\n\
             client pass {{\n  from: 198.19.{k}.0/24 to: 0.0.0.0/0\n}}\n\
             socks pass {{\n  from: {range} to: {range}\n  command: connect udpassociate udpreply\n  log: connect disconnect error\n}}\n",
            log = dir.join(format!("danted-{slug}.log")).display(),
            port = self.port,
            range = map::TEST_RANGE,
        );
        std::fs::write(&config, text).map_err(|e| NetlabError::io(&config, e))?;
        Ok(vec![
            "-f".into(),
            config.display().to_string(),
            "-p".into(),
            dir.join(format!("danted-{slug}.pid")).display().to_string(),
            "-N".into(),
            "1".into(),
        ])
    }
}

/// Fails with the install command when the program is missing.
pub fn require(program: &str) -> Result<(), NetlabError> {
    match std::process::Command::new(program)
        .arg("-h")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(NetlabError::Unavailable(format!(
            "`{program}` is missing ({e}): the lab's SOCKS5 server. Install: {INSTALL}"
        ))),
    }
}

/// Waits until something in `netns` accepts TCP on `ip:port`.
pub async fn wait_port(netns: &str, ip: &str, port: u16) -> Result<(), NetlabError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let probe = format!("exec 3<>/dev/tcp/{ip}/{port}");
    loop {
        if super::procs::run("ip", &["netns", "exec", netns, "bash", "-c", &probe], None)
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(NetlabError::Process(format!(
                "the SOCKS5 server did not accept connections on {ip}:{port} within {READY_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
