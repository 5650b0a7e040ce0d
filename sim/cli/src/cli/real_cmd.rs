//! `cloudproxy serve`, `cloudproxy edge` and `cloudproxy call`: the nodes on real sockets.
//! See `docs/serving.md`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cloudproxy_core::engine::Engine;
use cloudproxy_core::params::Mode;
use cloudproxy_core::socks5::Credentials;

use super::Status;
use crate::serve::call::{self, CallOptions};
use crate::serve::config::{ServeConfig, LOOPBACK_APS, LOOPBACK_EDGE, TICKET_KEY_ENV};
use crate::serve::logging::{self, LogFormat};
use crate::serve::{edge, shutdown};

/// Log options shared by the real-socket commands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Least severe level logged: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

/// Arguments of `cloudproxy serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration (TOML); without it, the defaults: the seed's topology on loopback.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A file holding the ticket key (64 hex characters); overrides the config's
    /// `ticket_key_file`. Without either, the key comes from $CLOUDPROXY_TICKET_KEY.
    #[arg(long, value_name = "FILE")]
    pub ticket_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics at ADDR (`GET /metrics`); overrides the config's `metrics`.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Relay worker threads, each serving one shard of every relay; overrides the config's
    /// `relay.workers`. Default: one per available core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Check the configuration and the key, print the plan, and exit.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Arguments of `cloudproxy edge`.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// The edge's address: signalling on tcp 5000, media on udp 5001 and tcp 5002.
    #[arg(long, default_value = LOOPBACK_EDGE)]
    pub listen: IpAddr,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Arguments of `cloudproxy call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// setParameters texts applied before joining, in order (none: no proxy, straight to the
    /// edge), e.g. '{"rtc.enable_proxy":true}'.
    #[arg(long, value_name = "JSON", num_args = 1..)]
    pub params: Vec<String>,
    /// setParameters texts from files (`-`: standard input), one per file, at most 64 KiB
    /// each; they come before the --params texts.
    #[arg(long, value_name = "FILE")]
    pub params_file: Vec<PathBuf>,
    /// Read the parameters in compatibility mode (the documentation's invalid type-2 example).
    #[arg(long)]
    pub compat: bool,
    /// The SD-RTN edge's address (ports 5000, 5001/udp, 5002).
    #[arg(long, default_value = LOOPBACK_EDGE)]
    pub edge: IpAddr,
    /// How long to stay in the channel, in seconds.
    #[arg(long = "for", value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// The client's name in logs and the report.
    #[arg(long, default_value = "client")]
    pub name: String,
    /// The client's user id (its media carries it).
    #[arg(long, default_value_t = 1)]
    pub uid: u32,
    /// The channel to join.
    #[arg(long, default_value = "room")]
    pub channel: String,
    /// The application id presented to the access point.
    #[arg(long, default_value = "cloudproxy-call")]
    pub app_id: String,
    /// The client's own address: the source of all its traffic.
    #[arg(long, default_value = "127.0.10.1")]
    pub bind: IpAddr,
    /// Names the client answers itself, NAME=IP[,IP...] (repeatable); every other name goes
    /// to the system's resolver. Default: ap-proxy.agora.io=127.0.1.1,127.0.1.2,127.0.1.3,
    /// 127.0.1.4 (the access points of `cloudproxy serve`'s default config), so that the demo
    /// never leaves loopback; `--dns ap-proxy.agora.io=...` replaces it.
    #[arg(long, value_name = "NAME=IPS")]
    pub dns: Vec<String>,
    /// Ask this DNS resolver (UDP, IP:PORT) for every name not given with --dns, instead of
    /// the system's resolver; the built-in loopback answer for ap-proxy.agora.io is then not
    /// used (`cloudproxy netlab` points its clients at their enterprise's resolver so).
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
    /// SOCKS5 username (RFC 1929), for type 0 servers that ask for one.
    #[arg(long, requires = "socks_pass")]
    pub socks_user: Option<String>,
    /// SOCKS5 password.
    #[arg(long, requires = "socks_user")]
    pub socks_pass: Option<String>,
    /// Media packets per second, 1 to 5000 (the most the client sustains on loopback, measured:
    /// docs/serving.md).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(call::MAX_PPS)))]
    pub pps: u32,
    /// The seed of the client's own randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// setCloudProxy(type) before joining (beyond the seed): automatic, force-udp, or
    /// force-tcp (the access points and relays on TCP 443 only, inside TLS).
    #[arg(long, value_name = "TYPE")]
    pub cloud_proxy: Option<super::check_cmd::CloudProxyArg>,
    /// The CA certificates (PEM) trusted for TLS on port 443 (beyond the seed). Default: the
    /// system's bundle, /etc/ssl/certs/ca-certificates.crt.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Print the report as one JSON object instead of the table row.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

fn init_logs(log: &LogArgs) -> Option<Status> {
    match logging::init(log.log_format, &log.log_level) {
        Ok(()) => None,
        Err(e) => {
            eprintln!("cloudproxy: {e}");
            Some(Status::Usage)
        }
    }
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A shutdown fired by the first SIGINT or SIGTERM (logged).
fn on_signal() -> shutdown::Shutdown {
    let (trigger, stop) = shutdown::channel();
    tokio::task::spawn_local(async move {
        match shutdown::signal().await {
            Ok(name) => tracing::info!(signal = name, "stopping"),
            Err(e) => tracing::error!(error = %e, "cannot watch signals"),
        }
        trigger.fire();
    });
    stop
}

/// `cloudproxy serve`.
pub fn serve(args: &ServeArgs, out: &mut impl Write) -> io::Result<Status> {
    if let Some(status) = init_logs(&args.log) {
        return Ok(status);
    }
    let config = match &args.config {
        Some(path) => match ServeConfig::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cloudproxy serve: {e}");
                return Ok(Status::Usage);
            }
        },
        None => ServeConfig::default(),
    };
    let plan = match config.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cloudproxy serve: {e}");
            return Ok(Status::Usage);
        }
    };
    let key = match config.ticket_key(
        args.ticket_key_file.as_deref(),
        std::env::var(TICKET_KEY_ENV).ok(),
    ) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("cloudproxy serve: {e}");
            return Ok(Status::Usage);
        }
    };
    let key_file = config.key_file(args.ticket_key_file.as_deref());
    let key_warning = key_file.and_then(crate::serve::input::key_file_warning);
    let tls_key_warnings = config
        .tls_key_files()
        .into_iter()
        .filter_map(crate::serve::input::tls_key_file_warning);
    for warning in key_warning
        .into_iter()
        .chain(tls_key_warnings)
        .chain(config.warnings())
    {
        tracing::warn!("{warning}");
    }
    let mut plan = plan.with_key(&key);
    if args.metrics.is_some() {
        plan.metrics = args.metrics;
    }
    if let Some(workers) = args.workers {
        plan.workers = workers;
    }
    if args.check {
        writeln!(
            out,
            "cloudproxy serve: configuration ok: {} access point(s) on {:?} ports {:?}; {} relay(s) on {:?} tcp {} udp {:?}, {} worker(s); SD-RTN {:?}; metrics {:?}",
            plan.aps.len(),
            plan.aps,
            plan.ap_ports,
            plan.relays.len(),
            plan.relays,
            plan.relay_tcp_port,
            plan.relay.udp_ports,
            plan.workers,
            plan.relay.sdrtn.iter().map(ToString::to_string).collect::<Vec<_>>(),
            plan.metrics,
        )?;
        return Ok(Status::Ok);
    }
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime()?, async {
        let stop = on_signal();
        crate::serve::serve(plan, stop, |sources, metrics| {
            let mut line = format!(
                "cloudproxy serve: ready: {} access point(s), {} relay(s)",
                sources.aps.len(),
                sources.relays.len()
            );
            if let Some(addr) = metrics {
                line.push_str(&format!(", metrics http://{addr}/metrics"));
            }
            println!("{line}");
        })
        .await
    });
    match result {
        Ok(()) => {
            writeln!(out, "cloudproxy serve: stopped")?;
            Ok(Status::Ok)
        }
        Err(e) => {
            eprintln!("cloudproxy serve: {e}");
            Ok(Status::Failed)
        }
    }
}

/// `cloudproxy edge`.
pub fn edge(args: &EdgeArgs, out: &mut impl Write) -> io::Result<Status> {
    if let Some(status) = init_logs(&args.log) {
        return Ok(status);
    }
    let local = tokio::task::LocalSet::new();
    let listen = args.listen;
    let result = local.block_on(&runtime()?, async {
        let stop = on_signal();
        edge::serve(listen, edge::EDGE_PORTS, stop, || {
            println!(
                "cloudproxy edge: ready on {listen}: signalling tcp {}, media udp {} and tcp {}",
                edge::EDGE_PORTS[0],
                edge::EDGE_PORTS[1],
                edge::EDGE_PORTS[2]
            );
        })
        .await
    });
    match result {
        Ok(stats) => {
            writeln!(out, "{}", edge::stats_json(&stats))?;
            Ok(Status::Ok)
        }
        Err(e) => {
            eprintln!("cloudproxy edge: {e}");
            Ok(Status::Failed)
        }
    }
}

/// Parses `NAME=IP[,IP...]`.
fn parse_dns(entry: &str) -> Result<(String, Vec<IpAddr>), String> {
    let (name, ips) = entry
        .split_once('=')
        .ok_or_else(|| format!("--dns {entry}: expected NAME=IP[,IP...]"))?;
    let ips = ips
        .split(',')
        .map(|ip| {
            ip.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("--dns {entry}: `{ip}` is not an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if name.is_empty() || ips.is_empty() {
        return Err(format!("--dns {entry}: expected NAME=IP[,IP...]"));
    }
    Ok((name.to_owned(), ips))
}

/// `cloudproxy call`.
pub fn call(args: &CallArgs, out: &mut impl Write) -> io::Result<Status> {
    if let Some(status) = init_logs(&args.log) {
        return Ok(status);
    }
    let usage = |message: String| {
        eprintln!("cloudproxy call: {message}");
        Ok(Status::Usage)
    };
    // Refuse what the engine would refuse, before any socket is opened.
    let mode = if args.compat {
        Mode::Compat
    } else {
        Mode::Strict
    };
    let mut params = match super::params_file::read_all(&args.params_file) {
        Ok(texts) => texts,
        Err(e) => return usage(e),
    };
    params.extend(args.params.iter().cloned());
    let mut engine = Engine::new(mode);
    for text in &params {
        if let Err(e) = engine.set_parameters(text) {
            return usage(format!("--params {text}: {e} (code {})", e.code().as_i32()));
        }
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        return usage(format!(
            "--for {}: expected 0 < SECS <= 86400",
            args.duration
        ));
    }
    let mut hosts = BTreeMap::new();
    if args.resolver.is_none() {
        hosts.insert(
            cloudproxy_sim::world::AP_DOMAIN.to_owned(),
            LOOPBACK_APS.iter().filter_map(|a| a.parse().ok()).collect(),
        );
    }
    for entry in &args.dns {
        match parse_dns(entry) {
            Ok((name, ips)) => hosts.insert(name, ips),
            Err(e) => return usage(e),
        };
    }
    let socks5_credentials = match (&args.socks_user, &args.socks_pass) {
        (Some(user), Some(pass)) => match Credentials::new(user.as_bytes(), pass.as_bytes()) {
            Ok(c) => Some(c),
            Err(e) => return usage(format!("--socks-user/--socks-pass: {e}")),
        },
        _ => None,
    };
    let tls = match call::client_tls(args.tls_ca.as_deref()) {
        Ok(tls) => tls,
        Err(e) => return usage(e),
    };
    let options = CallOptions {
        params,
        compat: args.compat,
        edge: edge::endpoints(args.edge, edge::EDGE_PORTS),
        duration: Duration::from_secs_f64(args.duration),
        name: args.name.clone(),
        uid: args.uid,
        channel: args.channel.clone(),
        app_id: args.app_id.clone(),
        bind: args.bind,
        hosts,
        resolver: args.resolver,
        socks5_credentials,
        pps: args.pps,
        seed: args.seed,
        tune: |_| {},
        cloud_proxy: args.cloud_proxy.map(|c| c.0),
        tls,
    };
    let result = match call::run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cloudproxy call: {e}");
            return Ok(Status::Failed);
        }
    };
    if args.json {
        writeln!(out, "{}", call::to_json(&options, &result))?;
    } else {
        writeln!(out, "{}", call::header())?;
        writeln!(out, "{}", call::row(&args.name, &result, options.duration))?;
        writeln!(out, "{}", call::timing(&result))?;
    }
    let verdict = result.verdict();
    if verdict != call::Verdict::Ok {
        eprintln!(
            "cloudproxy call: {}",
            verdict.explain(&args.name, &args.channel, &result)
        );
    }
    Ok(Status::from(verdict == call::Verdict::Ok))
}
