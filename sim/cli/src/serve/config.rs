//! The configuration of `cloudproxy serve`: TOML, every field optional, defaults mapping the
//! seed's topology onto loopback addresses (see `docs/serving.md`).
//!
//! ```toml
//! ticket_key_file = "/etc/cloudproxy/ticket.key"   # or $CLOUDPROXY_TICKET_KEY
//! sdrtn = ["127.0.3.0/24"]
//! metrics = "127.0.0.1:9464"
//!
//! [ap]
//! listen = ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"]
//! ports = [1080, 8000, 25000, 9700]
//!
//! [relay]
//! listen = ["127.0.2.1", "127.0.2.2"]
//! tcp_port = 4000
//! udp_ports = "4500-4650"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudproxy_core::relay::{ApConfig, Cidr, RelayConfig};
use cloudproxy_core::wire::{
    RelayInfo, TicketKey, AP_PORTS, AP_TLS_PORT, RELAY_TCP_PORT, RELAY_TLS_PORT,
};
use cloudproxy_node::tls::Tls;
use serde::Deserialize;
use thiserror::Error;

use super::endpoint::{self, EndpointLimits};
use super::input::{read_text, ReadError, MAX_CONFIG_BYTES, MAX_KEY_FILE_BYTES};

/// The environment variable that may hold the ticket key (64 hex characters).
pub const TICKET_KEY_ENV: &str = "CLOUDPROXY_TICKET_KEY";

/// The seed's access points, mapped onto loopback: 47.74.211.17 → 127.0.1.1, 52.80.192.229 →
/// 127.0.1.2, 52.52.84.170 → 127.0.1.3, 47.96.234.219 → 127.0.1.4.
pub const LOOPBACK_APS: [&str; 4] = ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"];
/// The seed's relays, mapped onto loopback: 120.92.118.34 → 127.0.2.1, 120.92.18.162 →
/// 127.0.2.2.
pub const LOOPBACK_RELAYS: [&str; 2] = ["127.0.2.1", "127.0.2.2"];
/// The SD-RTN edge of `cloudproxy edge`, mapped onto loopback: 101.36.1.10 → 127.0.3.1.
pub const LOOPBACK_EDGE: &str = "127.0.3.1";
/// The SD-RTN block on loopback (the seed's 101.36.0.0/16).
pub const LOOPBACK_SDRTN: &str = "127.0.3.0/24";

/// The widest IPv4 `sdrtn` block accepted without `allow_open_relay`: a `/8`, already more
/// than any one network's address space.
pub const MIN_SDRTN_PREFIX_V4: u8 = 8;
/// The widest IPv6 `sdrtn` block accepted without `allow_open_relay`.
pub const MIN_SDRTN_PREFIX_V6: u8 = 16;

/// Why a configuration cannot be used. Each message names the field and the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read, is larger than [`MAX_CONFIG_BYTES`] or is not text.
    #[error("the configuration {path} {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// The file is not valid TOML, or a field has the wrong type or name.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, field).
        message: String,
    },
    /// A field has a value that cannot work.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as `section.name`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS certificate or key file cannot be used (**beyond the seed**).
    #[error("{field}: {source}")]
    Tls {
        /// The field naming the file, as `section.name`.
        field: &'static str,
        /// What is wrong with the file.
        source: cloudproxy_node::tls::TlsError,
    },
    /// No ticket key was given.
    #[error(
        "no ticket key: set ticket_key_file in the config (or --ticket-key-file) to a file holding 64 hex characters, or set the environment variable {TICKET_KEY_ENV}; generate one with `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`. There is no built-in key"
    )]
    NoTicketKey,
    /// Both a key file and the environment variable are set.
    #[error("both a ticket key file ({0}) and {TICKET_KEY_ENV} are set: keep one, so that every instance surely uses the same key")]
    TwoTicketKeys(PathBuf),
    /// The key is not 64 hex characters, or is all zeros.
    #[error("the ticket key from {source_name} {reason}")]
    BadTicketKey {
        /// Where it came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// A file holding the ticket key (64 hex characters). Without it, the key comes from
    /// [`TICKET_KEY_ENV`].
    pub ticket_key_file: Option<PathBuf>,
    /// The SD-RTN blocks the relays may reach; nothing else is ever relayed to. Default
    /// [`LOOPBACK_SDRTN`].
    pub sdrtn: Vec<String>,
    /// Where to serve Prometheus metrics (`GET /metrics`); none by default.
    pub metrics: Option<SocketAddr>,
    /// Connections the metrics endpoint serves at once; when all are taken, the oldest one
    /// still sending its request is closed for the newcomer. Default 16.
    pub metrics_max_connections: usize,
    /// How long a metrics connection may take to send its whole request. Default 5 000.
    pub metrics_request_timeout_ms: u64,
    /// How long a metrics connection may take to read its answer. Default 5 000.
    pub metrics_write_timeout_ms: u64,
    /// Accept `sdrtn` blocks wider than [`MIN_SDRTN_PREFIX_V4`] / [`MIN_SDRTN_PREFIX_V6`]
    /// (`0.0.0.0/0` above all), which make the relays an open relay to most of the internet.
    /// Default false: such a block is refused.
    pub allow_open_relay: bool,
    /// The access points.
    pub ap: ApSection,
    /// The relays.
    pub relay: RelaySection,
}

/// `[ap]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApSection {
    /// One access point per address. Empty: this instance runs no access point.
    pub listen: Vec<IpAddr>,
    /// The ports each access point serves on, UDP and TCP. Default the seed's four.
    pub ports: Vec<u16>,
    /// The relays handed out, `"ip"` or `"ip:port"` (default port `relay.tcp_port`). Empty:
    /// the relays of this file's `[relay]` section.
    pub relays: Vec<String>,
    /// How long a ticket may open tunnels. Default 120 000.
    pub ticket_lifetime_ms: u64,
    /// Requests answered per client address (IPv4 address, IPv6 `/64`) per window. Default 20.
    pub max_requests_per_ip: u32,
    /// Requests answered per client network (IPv4 `/24`, IPv6 `/56`) per window. Default 200.
    pub max_requests_per_prefix: u32,
    /// The rate limiter's window. Default 10 000.
    pub rate_window_ms: u64,
    /// Client addresses the rate limiter tracks at once. Default 4 096.
    pub max_tracked_ips: usize,
    /// Client networks the rate limiter tracks at once. Default 1 024.
    pub max_tracked_prefixes: usize,
    /// TCP connections open at once per access point. Default 1 024.
    pub max_tcp_connections: usize,
    /// TCP connections open at once from one client address. Default 8.
    pub max_tcp_connections_per_ip: usize,
    /// TCP connections open at once from one client network. Default 64.
    pub max_tcp_connections_per_prefix: usize,
    /// A TCP connection must complete a request within this long. Default 10 000.
    pub tcp_idle_timeout_ms: u64,
    /// Requests answered on one TCP connection. Default 16.
    pub max_requests_per_tcp_connection: u32,
    /// The application ids served; empty serves any.
    pub app_ids: Vec<String>,
    /// The TCP port of TLS (**beyond the seed**, `config/tls.rs`), served when both TLS
    /// files are set. Default 443.
    pub tls_port: u16,
    /// The certificate chain (PEM, leaf first) on `tls_port`: `ap-proxy.agora.io` (DNS SAN)
    /// and the access points' addresses (IP SANs). None by default: no TLS.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8, RSA or EC). None by default.
    pub tls_key_file: Option<PathBuf>,
}

/// `[relay]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySection {
    /// One relay per address. Empty: this instance runs no relay.
    pub listen: Vec<IpAddr>,
    /// The TCP port for tunnels and media channels. Default 4000.
    pub tcp_port: u16,
    /// The UDP media ports, `"4500-4650"`, `"4500"`, or `""` for no UDP media. The access
    /// points announce the same range.
    pub udp_ports: String,
    /// Announced keepalive interval. Default 5 000.
    pub keepalive_interval_ms: u64,
    /// A session idle this long is closed. Default 30 000.
    pub idle_timeout_ms: u64,
    /// A connection that has not sent its first message this long after connecting is
    /// closed, and so is a tunnel whose upstream is not connected by then. Default 10 000.
    pub handshake_timeout_ms: u64,
    /// Sessions at once, per relay. Default 10 000.
    pub max_sessions_total: usize,
    /// Sessions at once per client address. Default 256.
    pub max_sessions_per_client_ip: usize,
    /// Connections in their handshake at once. Default 1 024.
    pub max_pending_handshakes: usize,
    /// Of those, from one client address. Default 256.
    pub max_pending_handshakes_per_client_ip: usize,
    /// Bytes held for a tunnel while its upstream connects. Default 65 536.
    pub max_buffered_bytes_per_session: usize,
    /// Bytes queued for writing on one TCP connection before it is cut. Default 4 MiB.
    pub max_queued_bytes_per_stream: usize,
    /// Ticket nonces remembered against replays. Default 100 000.
    pub max_used_nonces: usize,
    /// `Error` datagrams per second. Default 50.
    pub max_udp_error_replies_per_sec: u32,
    /// How long a shutdown waits for the closing messages to be written. Default 2 000.
    pub shutdown_grace_ms: u64,
    /// Worker threads, each serving one shard of every relay (`serve --workers` overrides).
    /// 0: one per available core. Default 0.
    pub workers: u16,
    /// Move tunnels with the bounded copy even where `splice(2)` exists (to compare the
    /// two). Default false.
    pub copy_tunnels: bool,
    /// Let each worker send a round's datagrams on many UDP sockets in one io_uring submit
    /// (Linux 5.11 and later; elsewhere, or where the kernel refuses, one `sendmmsg` per
    /// socket). False for a host whose policy forbids io_uring. Default true.
    pub io_uring: bool,
    /// The TCP port of TLS (**beyond the seed**), served by every worker when both TLS files
    /// are set (`serve/handoff.rs`). Default 443.
    pub tls_port: u16,
    /// The certificate chain (PEM, leaf first) on `tls_port`: each relay's address as an IP
    /// SAN. None by default: no TLS.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM). None by default.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            ticket_key_file: None,
            sdrtn: vec![LOOPBACK_SDRTN.to_owned()],
            metrics: None,
            metrics_max_connections: endpoint::MAX_CONNECTIONS,
            metrics_request_timeout_ms: millis(endpoint::REQUEST_TIMEOUT),
            metrics_write_timeout_ms: millis(endpoint::WRITE_TIMEOUT),
            allow_open_relay: false,
            ap: ApSection::default(),
            relay: RelaySection::default(),
        }
    }
}

impl Default for ApSection {
    fn default() -> Self {
        let ap = ApConfig::default();
        ApSection {
            listen: LOOPBACK_APS.iter().map(|a| parse_ip(a)).collect(),
            ports: AP_PORTS.to_vec(),
            relays: Vec::new(),
            ticket_lifetime_ms: millis(ap.ticket_lifetime),
            max_requests_per_ip: ap.max_requests_per_ip,
            max_requests_per_prefix: ap.max_requests_per_prefix,
            rate_window_ms: millis(ap.rate_window),
            max_tracked_ips: ap.max_tracked_ips,
            max_tracked_prefixes: ap.max_tracked_prefixes,
            max_tcp_connections: ap.max_tcp_connections,
            max_tcp_connections_per_ip: ap.max_tcp_connections_per_ip,
            max_tcp_connections_per_prefix: ap.max_tcp_connections_per_prefix,
            tcp_idle_timeout_ms: millis(ap.tcp_idle_timeout),
            max_requests_per_tcp_connection: ap.max_requests_per_tcp_connection,
            app_ids: Vec::new(),
            tls_port: AP_TLS_PORT,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl Default for RelaySection {
    fn default() -> Self {
        let r = RelayConfig::default();
        RelaySection {
            listen: LOOPBACK_RELAYS.iter().map(|a| parse_ip(a)).collect(),
            tcp_port: RELAY_TCP_PORT,
            udp_ports: format!("{}-{}", r.udp_ports.start(), r.udp_ports.end()),
            keepalive_interval_ms: millis(r.keepalive_interval),
            idle_timeout_ms: millis(r.idle_timeout),
            handshake_timeout_ms: millis(r.handshake_timeout),
            max_sessions_total: r.max_sessions_total,
            max_sessions_per_client_ip: r.max_sessions_per_client_ip,
            max_pending_handshakes: r.max_pending_handshakes,
            max_pending_handshakes_per_client_ip: r.max_pending_handshakes_per_client_ip,
            max_buffered_bytes_per_session: r.max_buffered_bytes_per_session,
            max_queued_bytes_per_stream: 4 * 1024 * 1024,
            max_used_nonces: r.max_used_nonces,
            max_udp_error_replies_per_sec: r.max_udp_error_replies_per_sec,
            shutdown_grace_ms: 2_000,
            workers: 0,
            copy_tunnels: false,
            io_uring: true,
            tls_port: RELAY_TLS_PORT,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// A field whose value cannot work, and why.
fn invalid(field: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { field, reason }
}

fn parse_ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Everything `serve` runs, checked and ready (the key aside).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The access points' addresses.
    pub aps: Vec<IpAddr>,
    /// Their ports.
    pub ap_ports: Vec<u16>,
    /// Their configuration, the key a placeholder until [`Plan::with_key`].
    pub ap: ApConfig,
    /// The relays' addresses.
    pub relays: Vec<IpAddr>,
    /// Their TCP port.
    pub relay_tcp_port: u16,
    /// Their configuration, the key a placeholder until [`Plan::with_key`].
    pub relay: RelayConfig,
    /// Bytes queued on one relay TCP connection before it is cut.
    pub max_queued_bytes_per_stream: usize,
    /// How long a relay's shutdown may take to flush.
    pub shutdown_grace: Duration,
    /// The metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// The metrics endpoint's bounds.
    pub metrics_limits: EndpointLimits,
    /// Relay worker threads (at least 1).
    pub workers: u16,
    /// Tunnels use the bounded copy instead of `splice(2)`.
    pub copy_tunnels: bool,
    /// The relay workers may send through io_uring.
    pub io_uring: bool,
    /// The access points' TLS listener (its port, its certificate), if any.
    pub ap_tls: Option<Tls>,
    /// The relays' TLS listener, if any.
    pub relay_tls: Option<Tls>,
}

impl Plan {
    /// The plan with the real key in both configurations.
    pub fn with_key(mut self, key: &TicketKey) -> Self {
        self.ap.key = key.clone();
        self.relay.key = key.clone();
        self
    }
}

impl ServeConfig {
    /// Reads and parses a file. Reads at most [`MAX_CONFIG_BYTES`] (and one more, to tell that there are more).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Syntax {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks every field and builds the plan.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        let udp_ports = self.check_listeners()?;
        let sdrtn = self.sdrtn_blocks()?;
        let handed_out = self.relays_handed_out()?;
        self.check_bounds()?;
        self.check_keepalive()?;
        let placeholder = TicketKey::from_bytes([0; 32]);
        let ap = self.ap_config(placeholder.clone(), &handed_out, udp_ports.clone());
        let relay = self.relay_config(placeholder, sdrtn, udp_ports);
        let r = &self.relay;
        Ok(Plan {
            aps: self.ap.listen.clone(),
            ap_ports: self.ap.ports.clone(),
            ap,
            relays: self.relay.listen.clone(),
            relay_tcp_port: r.tcp_port,
            relay,
            max_queued_bytes_per_stream: r.max_queued_bytes_per_stream,
            shutdown_grace: Duration::from_millis(r.shutdown_grace_ms),
            metrics: self.metrics,
            metrics_limits: EndpointLimits {
                max_connections: self.metrics_max_connections,
                request_timeout: Duration::from_millis(self.metrics_request_timeout_ms),
                write_timeout: Duration::from_millis(self.metrics_write_timeout_ms),
                ..EndpointLimits::default()
            },
            workers: resolve_workers(r.workers),
            copy_tunnels: r.copy_tunnels,
            io_uring: r.io_uring,
            ap_tls: self.ap_tls()?,
            relay_tls: self.relay_tls()?,
        })
    }

    /// Something to serve, addresses unique, ports usable; the relays' UDP port range.
    fn check_listeners(&self) -> Result<RangeInclusive<u16>, ConfigError> {
        if self.ap.listen.is_empty() && self.relay.listen.is_empty() {
            return Err(invalid(
                "ap.listen, relay.listen",
                "both are empty: there is nothing to serve".into(),
            ));
        }
        check_unique("ap.listen", &self.ap.listen)?;
        check_unique("relay.listen", &self.relay.listen)?;
        if self.ap.ports.is_empty() && !self.ap.listen.is_empty() {
            return Err(invalid("ap.ports", "no port to serve on".into()));
        }
        if self.ap.ports.contains(&0) {
            return Err(invalid("ap.ports", "port 0 cannot be served on".into()));
        }
        if self.relay.tcp_port == 0 {
            return Err(invalid(
                "relay.tcp_port",
                "port 0 cannot be served on".into(),
            ));
        }
        let udp_ports = parse_port_range(&self.relay.udp_ports)
            .map_err(|reason| invalid("relay.udp_ports", reason))?;
        if udp_ports.contains(&self.relay.tcp_port) {
            // Different protocols, but one number for two jobs confuses every firewall rule.
            return Err(invalid(
                "relay.udp_ports",
                format!("includes relay.tcp_port {}", self.relay.tcp_port),
            ));
        }
        Ok(udp_ports)
    }

    /// The SD-RTN blocks, at least one when relays run here.
    fn sdrtn_blocks(&self) -> Result<Vec<Cidr>, ConfigError> {
        let mut sdrtn = Vec::new();
        for text in &self.sdrtn {
            let block = text
                .parse::<Cidr>()
                .map_err(|e| invalid("sdrtn", e.to_string()))?;
            if is_open_relay(&block) && !self.allow_open_relay {
                return Err(invalid(
                    "sdrtn",
                    format!(
                        "{block} would make the relays an open relay to {}: list the SD-RTN's own blocks (at most /{MIN_SDRTN_PREFIX_V4} for IPv4, /{MIN_SDRTN_PREFIX_V6} for IPv6), or set allow_open_relay = true to mean it",
                        if block.prefix_len() == 0 { "every address of the internet" } else { "a large part of the internet" }
                    ),
                ));
            }
            sdrtn.push(block);
        }
        if sdrtn.is_empty() && !self.relay.listen.is_empty() {
            return Err(invalid(
                "sdrtn",
                "no SD-RTN block: the relays would refuse every destination".into(),
            ));
        }
        Ok(sdrtn)
    }

    /// The relays the access points hand out (those of this file's `[relay]` by default).
    fn relays_handed_out(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let mut handed_out = Vec::new();
        for text in &self.ap.relays {
            let addr = match text.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => SocketAddr::new(
                    text.parse::<IpAddr>().map_err(|_| {
                        invalid(
                            "ap.relays",
                            format!("`{text}` is not an address or address:port"),
                        )
                    })?,
                    self.relay.tcp_port,
                ),
            };
            handed_out.push(addr);
        }
        if handed_out.is_empty() {
            handed_out = self
                .relay
                .listen
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.relay.tcp_port))
                .collect();
        }
        if !self.ap.listen.is_empty() && handed_out.is_empty() {
            return Err(invalid(
                "ap.relays",
                "the access points have no relay to hand out: list some, or run relays here".into(),
            ));
        }
        if handed_out.iter().any(|a| a.ip().is_unspecified()) {
            return Err(invalid(
                "ap.relays",
                "an unspecified address (0.0.0.0) cannot be handed to clients: list the relays' public addresses".into(),
            ));
        }
        Ok(handed_out)
    }

    /// What is accepted but deserves the operator's attention (logged as warnings at start).
    pub fn warnings(&self) -> Vec<String> {
        let open: Vec<String> = self
            .sdrtn
            .iter()
            .filter_map(|t| t.parse::<Cidr>().ok())
            .filter(is_open_relay)
            .map(|b| b.to_string())
            .collect();
        let mut warnings: Vec<String> = tls::half_warning(self).into_iter().collect();
        if !open.is_empty() && self.allow_open_relay {
            warnings.push(format!(
                "sdrtn {} with allow_open_relay = true: the relays carry any ticket holder's traffic to most of the internet (special-purpose ranges stay refused)",
                open.join(", ")
            ));
        }
        warnings
    }

    /// A keepalive interval below the idle timeout: otherwise a session that only keeps
    /// alive is closed for idleness between two keepalives.
    fn check_keepalive(&self) -> Result<(), ConfigError> {
        let (keepalive, idle) = (self.relay.keepalive_interval_ms, self.relay.idle_timeout_ms);
        if keepalive >= idle {
            return Err(invalid(
                "relay.keepalive_interval_ms",
                format!(
                    "{keepalive} ms is not below relay.idle_timeout_ms ({idle} ms): an idle client keeping alive at that interval would be closed for idleness between two keepalives"
                ),
            ));
        }
        Ok(())
    }

    /// Every duration and bound above 0, every application id printable.
    fn check_bounds(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("ap.ticket_lifetime_ms", self.ap.ticket_lifetime_ms),
            ("ap.rate_window_ms", self.ap.rate_window_ms),
            ("ap.tcp_idle_timeout_ms", self.ap.tcp_idle_timeout_ms),
            (
                "relay.keepalive_interval_ms",
                self.relay.keepalive_interval_ms,
            ),
            ("relay.idle_timeout_ms", self.relay.idle_timeout_ms),
            (
                "relay.handshake_timeout_ms",
                self.relay.handshake_timeout_ms,
            ),
            (
                "metrics_request_timeout_ms",
                self.metrics_request_timeout_ms,
            ),
            ("metrics_write_timeout_ms", self.metrics_write_timeout_ms),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be above 0".into()));
            }
        }
        for (field, value) in [
            (
                "ap.max_requests_per_ip",
                self.ap.max_requests_per_ip as usize,
            ),
            (
                "ap.max_requests_per_prefix",
                self.ap.max_requests_per_prefix as usize,
            ),
            ("ap.max_tracked_ips", self.ap.max_tracked_ips),
            ("ap.max_tracked_prefixes", self.ap.max_tracked_prefixes),
            ("ap.max_tcp_connections", self.ap.max_tcp_connections),
            (
                "ap.max_tcp_connections_per_ip",
                self.ap.max_tcp_connections_per_ip,
            ),
            (
                "ap.max_tcp_connections_per_prefix",
                self.ap.max_tcp_connections_per_prefix,
            ),
            (
                "ap.max_requests_per_tcp_connection",
                self.ap.max_requests_per_tcp_connection as usize,
            ),
            ("relay.max_sessions_total", self.relay.max_sessions_total),
            (
                "relay.max_sessions_per_client_ip",
                self.relay.max_sessions_per_client_ip,
            ),
            (
                "relay.max_pending_handshakes",
                self.relay.max_pending_handshakes,
            ),
            (
                "relay.max_pending_handshakes_per_client_ip",
                self.relay.max_pending_handshakes_per_client_ip,
            ),
            (
                "relay.max_buffered_bytes_per_session",
                self.relay.max_buffered_bytes_per_session,
            ),
            (
                "relay.max_queued_bytes_per_stream",
                self.relay.max_queued_bytes_per_stream,
            ),
            ("relay.max_used_nonces", self.relay.max_used_nonces),
            ("metrics_max_connections", self.metrics_max_connections),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be above 0".into()));
            }
        }
        for app in &self.ap.app_ids {
            if app.is_empty() || app.len() > 64 || !app.bytes().all(|b| (0x21..=0x7E).contains(&b))
            {
                return Err(invalid(
                    "ap.app_ids",
                    format!("`{app}` is not 1 to 64 printable ASCII characters"),
                ));
            }
        }
        Ok(())
    }

    /// The access points' configuration.
    fn ap_config(
        &self,
        key: TicketKey,
        handed_out: &[SocketAddr],
        udp_ports: RangeInclusive<u16>,
    ) -> ApConfig {
        let relays: Vec<RelayInfo> = handed_out
            .iter()
            .map(|a| RelayInfo {
                addr: a.ip(),
                tcp_port: a.port(),
                udp_port: 0,
            })
            .collect();
        let mut ap = ApConfig::new(key, relays);
        ap.udp_ports = udp_ports;
        ap.ticket_lifetime = Duration::from_millis(self.ap.ticket_lifetime_ms);
        ap.max_requests_per_ip = self.ap.max_requests_per_ip;
        ap.rate_window = Duration::from_millis(self.ap.rate_window_ms);
        ap.max_tracked_ips = self.ap.max_tracked_ips;
        ap.max_requests_per_prefix = self.ap.max_requests_per_prefix;
        ap.max_tracked_prefixes = self.ap.max_tracked_prefixes;
        ap.max_tcp_connections = self.ap.max_tcp_connections;
        ap.max_tcp_connections_per_ip = self.ap.max_tcp_connections_per_ip;
        ap.max_tcp_connections_per_prefix = self.ap.max_tcp_connections_per_prefix;
        ap.tcp_idle_timeout = Duration::from_millis(self.ap.tcp_idle_timeout_ms);
        ap.max_requests_per_tcp_connection = self.ap.max_requests_per_tcp_connection;
        ap.allowed_apps = (!self.ap.app_ids.is_empty()).then(|| self.ap.app_ids.clone());
        ap
    }

    /// The relays' configuration.
    fn relay_config(
        &self,
        key: TicketKey,
        sdrtn: Vec<Cidr>,
        udp_ports: RangeInclusive<u16>,
    ) -> RelayConfig {
        let r = &self.relay;
        let mut relay = RelayConfig::new(key, sdrtn);
        relay.udp_ports = udp_ports;
        relay.keepalive_interval = Duration::from_millis(r.keepalive_interval_ms);
        relay.idle_timeout = Duration::from_millis(r.idle_timeout_ms);
        relay.handshake_timeout = Duration::from_millis(r.handshake_timeout_ms);
        relay.max_sessions_total = r.max_sessions_total;
        relay.max_sessions_per_client_ip = r.max_sessions_per_client_ip;
        relay.max_pending_handshakes = r.max_pending_handshakes;
        relay.max_pending_handshakes_per_client_ip = r.max_pending_handshakes_per_client_ip;
        relay.max_buffered_bytes_per_session = r.max_buffered_bytes_per_session;
        relay.max_used_nonces = r.max_used_nonces;
        relay.max_udp_error_replies_per_sec = r.max_udp_error_replies_per_sec;
        relay
    }

    /// The ticket key file used: the command line's `key_file`, else the config's.
    pub fn key_file<'a>(&'a self, key_file: Option<&'a Path>) -> Option<&'a Path> {
        key_file.or(self.ticket_key_file.as_deref())
    }

    /// The ticket key: from `key_file` (the command line's, else the config's), else from the
    /// environment (`env` is the value of [`TICKET_KEY_ENV`], passed in for testability).
    pub fn ticket_key(
        &self,
        key_file: Option<&Path>,
        env: Option<String>,
    ) -> Result<TicketKey, ConfigError> {
        let file = self.key_file(key_file);
        let env = env.filter(|v| !v.trim().is_empty());
        match (file, env) {
            (Some(path), Some(_)) => Err(ConfigError::TwoTicketKeys(path.to_owned())),
            (Some(path), None) => {
                let text =
                    read_text(path, MAX_KEY_FILE_BYTES).map_err(|e| ConfigError::BadTicketKey {
                        source_name: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                parse_key(&text, &path.display().to_string())
            }
            (None, Some(value)) => parse_key(&value, TICKET_KEY_ENV),
            (None, None) => Err(ConfigError::NoTicketKey),
        }
    }
}

/// Parses 64 hex characters (surrounding whitespace ignored) into a key.
pub fn parse_key(text: &str, source_name: &str) -> Result<TicketKey, ConfigError> {
    let bad = |reason: String| ConfigError::BadTicketKey {
        source_name: source_name.to_owned(),
        reason,
    };
    let hex = text.trim();
    if hex.len() != 64 {
        return Err(bad(format!(
            "is {} characters long, not 64 hex characters (32 bytes)",
            hex.len()
        )));
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).unwrap_or("");
        *byte = u8::from_str_radix(pair, 16)
            .map_err(|_| bad(format!("has a non-hex character near position {}", 2 * i)))?;
    }
    if bytes == [0; 32] {
        return Err(bad(
            "is all zeros, a placeholder: generate a random one".into()
        ));
    }
    Ok(TicketKey::from_bytes(bytes))
}

/// The number of relay workers: `requested`, or one per available core for 0.
pub fn resolve_workers(requested: u16) -> u16 {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| u16::try_from(n.get()).unwrap_or(u16::MAX))
        .max(1)
}

/// `"a-b"`, `"a"` or `""` (no ports: an empty range).
pub fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        #[allow(clippy::reversed_empty_ranges)]
        return Ok(1..=0);
    }
    let port = |t: &str| -> Result<u16, String> {
        match t.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("`{text}` is not a port or range such as 4500-4650")),
            Ok(p) => Ok(p),
        }
    };
    let range = match text.split_once('-') {
        Some((a, b)) => port(a)?..=port(b)?,
        None => port(text)?..=port(text)?,
    };
    if range.is_empty() {
        return Err(format!("`{text}` is an empty range"));
    }
    if range.end() - range.start() >= 1024 {
        return Err(format!(
            "`{text}` holds more than 1024 ports: each is a socket of every relay"
        ));
    }
    Ok(range)
}

/// Whether `block` is wider than an SD-RTN block may be without `allow_open_relay`.
fn is_open_relay(block: &Cidr) -> bool {
    let min = if block.addr().is_ipv4() {
        MIN_SDRTN_PREFIX_V4
    } else {
        MIN_SDRTN_PREFIX_V6
    };
    block.prefix_len() < min
}

fn check_unique(field: &'static str, ips: &[IpAddr]) -> Result<(), ConfigError> {
    for (i, ip) in ips.iter().enumerate() {
        if ips[..i].contains(ip) {
            return Err(ConfigError::Invalid {
                field,
                reason: format!("{ip} is listed twice"),
            });
        }
    }
    Ok(())
}

mod tls;

#[cfg(test)]
mod tests;
