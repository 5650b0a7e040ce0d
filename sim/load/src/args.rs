//! The command line of `cloudproxy load` (a clap `Args` struct the binary flattens in), and
//! how it becomes [`LoadOptions`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use cloudproxy_core::engine::Engine;
use cloudproxy_core::params::{Mode, ProxyServer};
use cloudproxy_core::wire::AP_PORTS;

use crate::upstream::{UpstreamAddrs, UpstreamThread};
use crate::{LoadError, LoadOptions, LoadReport, Target, DEFAULT_PAYLOAD};

/// The access points' default name, `[1, "ap-proxy.agora.io", 0]`.
pub const AP_DOMAIN: &str = "ap-proxy.agora.io";
/// What the default name resolves to: the access points of `cloudproxy serve`'s default
/// configuration (the seed's four, mapped onto loopback; `sim/src/serve/config.rs`).
pub const LOOPBACK_APS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(127, 0, 1, 1),
    Ipv4Addr::new(127, 0, 1, 2),
    Ipv4Addr::new(127, 0, 1, 3),
    Ipv4Addr::new(127, 0, 1, 4),
];

/// Arguments of `cloudproxy load`.
#[derive(Clone, Debug, Args)]
pub struct LoadArgs {
    /// Sessions to open (each: an AP request, a tunnel, a UDP media path). Against an edge,
    /// an even number: clients go in pairs.
    #[arg(long, default_value_t = 2)]
    pub clients: u32,
    /// Media packets per second per client (0: idle sessions, kept alive by keepalives).
    #[arg(long, default_value_t = 50)]
    pub pps: u32,
    /// Media payload, bytes (32..=1500).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_PAYLOAD)]
    pub payload: usize,
    /// How long to send media, in seconds.
    #[arg(long = "for", value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Bytes each client sends through its tunnel meanwhile (suffixes K, M, G: powers of
    /// 1024). Against --echo they come back and are checked; against an edge they go as
    /// signalling messages, each acknowledged.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_bytes)]
    pub tunnel_bytes: u64,
    /// setParameters texts that choose the proxy, in order (type 1 or 2; SOCKS5 type 0 is not
    /// what this tool loads).
    #[arg(long, value_name = "JSON", num_args = 1.., default_value = r#"{"rtc.enable_proxy":true}"#)]
    pub params: Vec<String>,
    /// Read the parameters in compatibility mode.
    #[arg(long)]
    pub compat: bool,
    /// What a name resolves to, NAME=IP[,IP...] (repeatable). Default:
    /// ap-proxy.agora.io=127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4.
    #[arg(long, value_name = "NAME=IPS")]
    pub dns: Vec<String>,
    /// The SD-RTN edge (`cloudproxy edge`): signalling tcp 5000, media udp 5001.
    #[arg(long, default_value = "127.0.3.1", conflicts_with = "echo")]
    pub edge: IpAddr,
    /// Load echo servers at IP instead of an edge (tcp echo 7007, udp echo 7007): every probe
    /// comes back from it. The IP must be inside the relay's SD-RTN range.
    #[arg(long, value_name = "IP")]
    pub echo: Option<IpAddr>,
    /// Run those echo servers in this process (on the --echo address) for the run.
    #[arg(long, requires = "echo")]
    pub start_echo: bool,
    /// The first client's source address; each next --sessions-per-ip clients use the next
    /// address (loopback only).
    #[arg(long, default_value = "127.0.20.1")]
    pub bind: Ipv4Addr,
    /// Sessions per source address (access points rate-limit requests per address).
    #[arg(long, default_value_t = 16)]
    pub sessions_per_ip: u32,
    /// Sessions being opened at once.
    #[arg(long, default_value_t = 64)]
    pub open_concurrency: usize,
    /// The application id presented to the access point.
    #[arg(long, default_value = "cloudproxy-load")]
    pub app_id: String,
    /// Print the report as one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `123`, `64K`, `16M`, `1G` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{text}` is not a byte count such as 4096, 64K, 16M or 1G"))
}

/// Parses `NAME=IP[,IP...]`.
fn parse_dns(entry: &str) -> Result<(String, Vec<IpAddr>), String> {
    let bad = || format!("--dns {entry}: expected NAME=IP[,IP...]");
    let (name, ips) = entry.split_once('=').ok_or_else(bad)?;
    let ips = ips
        .split(',')
        .map(|ip| ip.trim().parse::<IpAddr>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if name.is_empty() || ips.is_empty() {
        return Err(bad());
    }
    Ok((name.to_ascii_lowercase(), ips))
}

impl LoadArgs {
    /// The access points the parameters point to, in the order a client tries them.
    pub fn access_points(&self) -> Result<Vec<SocketAddr>, String> {
        let mode = if self.compat {
            Mode::Compat
        } else {
            Mode::Strict
        };
        let mut engine = Engine::new(mode);
        for text in &self.params {
            engine
                .set_parameters(text)
                .map_err(|e| format!("--params {text}: {e}"))?;
        }
        let mut dns: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        dns.insert(
            AP_DOMAIN.into(),
            LOOPBACK_APS.iter().map(|a| IpAddr::V4(*a)).collect(),
        );
        for entry in &self.dns {
            let (name, ips) = parse_dns(entry)?;
            dns.insert(name, ips);
        }
        let (ips, port) = match engine.config().active_server() {
            None => return Err("--params: the proxy is not enabled; load needs the cloud proxy, e.g. {\"rtc.enable_proxy\":true}".into()),
            Some(ProxyServer::Socks5(addr)) => {
                return Err(format!("--params: {addr} is a SOCKS5 server (type 0); load speaks the cloud proxy (type 1 or 2)"))
            }
            Some(server @ ProxyServer::HttpConnect { .. }) => return Err(format!("--params: {server} is an HTTP proxy (type 3); load speaks the cloud proxy (type 1 or 2)")),
            Some(ProxyServer::CloudDomain { domain, port }) => (
                dns.get(domain)
                    .cloned()
                    .ok_or_else(|| format!("--params: `{domain}` is not a known name: give --dns {domain}=IP (load resolves nothing on the network)"))?,
                *port,
            ),
            Some(ProxyServer::CloudIpList { ips, port }) => (ips.clone(), *port),
        };
        let ports: Vec<u16> = if port == 0 {
            AP_PORTS.to_vec()
        } else {
            vec![port]
        };
        Ok(ports
            .iter()
            .flat_map(|p| ips.iter().map(move |ip| SocketAddr::new(*ip, *p)))
            .collect())
    }

    /// The options of the run.
    pub fn options(&self) -> Result<LoadOptions, String> {
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 3_600.0) {
            return Err(format!(
                "--for {}: expected 0 < SECS <= 3600",
                self.duration
            ));
        }
        let target = match self.echo {
            Some(ip) => Target::Echo(UpstreamAddrs::on(ip)),
            None => Target::Edge {
                signalling: SocketAddr::new(self.edge, 5000),
                media: SocketAddr::new(self.edge, 5001),
            },
        };
        let options = LoadOptions {
            aps: self.access_points()?,
            app_id: self.app_id.clone(),
            target,
            clients: self.clients,
            pps: self.pps,
            payload_bytes: self.payload,
            duration: Duration::from_secs_f64(self.duration),
            tunnel_bytes: self.tunnel_bytes,
            bind: self.bind,
            sessions_per_ip: self.sessions_per_ip,
            open_concurrency: self.open_concurrency,
        };
        options.validate().map_err(|e| e.to_string())?;
        Ok(options)
    }
}

/// Runs what the command line asks: the echo servers first when `--start-echo`, then the
/// load. A usage error is `Err(LoadError::Usage)`.
pub fn execute(args: &LoadArgs) -> Result<LoadReport, LoadError> {
    let options = args.options().map_err(LoadError::Usage)?;
    let _echo = match (args.start_echo, &options.target) {
        (true, Target::Echo(addrs)) => Some(
            UpstreamThread::start(*addrs)
                .map_err(|e| LoadError::Io(format!("--start-echo: {e}")))?,
        ),
        _ => None,
    };
    crate::run(&options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> LoadArgs {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().load
    }

    #[test]
    fn defaults_reach_the_loopback_access_points() {
        let args = parse(&[]);
        let aps = args.access_points().unwrap();
        assert_eq!(aps[0], "127.0.1.1:1080".parse().unwrap());
        assert_eq!(aps.len(), 16);
        let o = args.options().unwrap();
        assert_eq!(o.clients, 2);
        assert!(o.target.paired());
    }

    #[test]
    fn an_ip_list_with_a_port() {
        let args = parse(&[
            "--params",
            r#"{"rtc.proxy_server":[2,"[\"127.0.1.9\"]",8000]}"#,
            r#"{"rtc.enable_proxy":true}"#,
        ]);
        assert_eq!(
            args.access_points().unwrap(),
            ["127.0.1.9:8000".parse().unwrap()]
        );
    }

    #[test]
    fn errors_name_the_option() {
        let err = |a: &[&str]| parse(a).options().unwrap_err();
        assert!(err(&[
            "--params",
            r#"{"rtc.proxy_server":[0,"127.0.0.1",1080]}"#,
            r#"{"rtc.enable_proxy":true}"#
        ])
        .contains("SOCKS5"));
        assert!(err(&["--params", r#"{"rtc.enable_proxy":false}"#]).contains("not enabled"));
        assert!(err(&[
            "--params",
            r#"{"rtc.proxy_server":[1,"elsewhere.example",0]}"#,
            r#"{"rtc.enable_proxy":true}"#
        ])
        .contains("--dns elsewhere.example"));
        assert!(err(&["--for", "0"]).starts_with("--for 0"));
        assert!(err(&["--clients", "3"]).contains("pairs"));
        assert!(parse(&["--clients", "3", "--echo", "127.0.3.2"])
            .options()
            .is_ok());
        assert!(err(&["--payload", "5000"]).starts_with("--payload"));
    }

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65_536));
        assert_eq!(parse_bytes("16M"), Ok(16 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }
}
