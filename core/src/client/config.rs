//! The client's configuration: which proxy, which SD-RTN edge, and every timeout and bound.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::engine::CloudProxyType;
use crate::params::{ProxyConfig, ProxyServer};
use crate::sdrtn::SdRtnEndpoints;
use crate::socks5::Credentials;

/// Everything a [`ProxyClient`](super::ProxyClient) needs to know, fixed at join.
///
/// Build it with [`ClientConfig::new`] (every timeout at its default) and change the fields
/// that matter. Durations of zero are treated as one millisecond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The proxy in use; `None` when the proxy is off (connect to SD-RTN directly).
    pub proxy: Option<ProxyServer>,
    /// The application id sent to the access point (1..=64 bytes of printable ASCII).
    pub app_id: String,
    /// The SD-RTN edge to reach.
    pub sdrtn: SdRtnEndpoints,
    /// Credentials for a SOCKS5 server (type 0) that wants USERNAME/PASSWORD.
    pub socks5_credentials: Option<Credentials>,
    /// How long one access-point attempt (one address and port, over UDP and TCP) may go
    /// unanswered before the next one starts. Default 1 s.
    pub ap_attempt_timeout: Duration,
    /// How long the driver may take to resolve the access point's name. Default 5 s.
    pub resolve_timeout: Duration,
    /// How long opening one TCP path may take, handshake included: a tunnel up to
    /// `TunnelAccept`, a SOCKS5 handshake, a direct connection, a TCP media path. Default 5 s.
    pub connect_timeout: Duration,
    /// How long UDP media may go unanswered, from the first datagram (or the first keepalive)
    /// sent, before media falls back to TCP. Default 2 s.
    pub udp_probe_timeout: Duration,
    /// The keepalive interval on the relay's media path; `None` takes the relay's
    /// `keepalive_interval_ms` from `TunnelAccept` (or 5 s when that is 0). Default `None`.
    pub keepalive_interval: Option<Duration>,
    /// How many keepalive intervals in a row may pass without a `KeepaliveAck` or a
    /// `MediaData` from the relay before the relay counts as dead. Default 3 (at least 1).
    pub keepalive_misses: u32,
    /// First backoff delay after a failure; the `n`-th consecutive failure waits
    /// `backoff_initial * 2^n`, capped at [`backoff_max`](Self::backoff_max), then jittered.
    /// Default 250 ms.
    pub backoff_initial: Duration,
    /// Largest backoff delay before jitter. Default 4 s.
    pub backoff_max: Duration,
    /// Jitter of each backoff delay, in percent: a delay `d` becomes a uniform draw from
    /// `d * (1 ± jitter/100)`. Default 50; values above 100 count as 100.
    pub backoff_jitter_percent: u8,
    /// Give up (state `Failed`) after this long without a connection, counted from
    /// [`ProxyClient::new`](super::ProxyClient::new) or from the moment the connection was
    /// lost. Default 30 s.
    pub give_up_after: Duration,
    /// Also give up after this many consecutive failed attempts; `None` for no count bound.
    /// Default `None`.
    pub max_reconnect_attempts: Option<u32>,
    /// Most application signalling bytes queued while not connected; beyond it, whole
    /// `SendSignalling` calls are dropped (and counted). Default 256 KiB.
    pub max_pending_signalling: usize,
    /// **Beyond the seed** (RFC 8305 Happy Eyeballs): race the access-point candidates and the
    /// relays instead of trying them one at a time. `None` (the default): one attempt at a
    /// time, as the seed-era client. [`ClientConfig::for_join`] sets it for every cloud proxy
    /// type.
    pub race: Option<RaceConfig>,
    /// **Beyond the seed** (automatic mode: Agora 4.x `setCloudProxy(NONE_PROXY)`, ZEGO's
    /// smart proxy): with [`proxy`](Self::proxy) `None`, try SD-RTN directly first and, when
    /// that gives no connection within [`direct_probe_timeout`](Self::direct_probe_timeout),
    /// fall back to this cloud proxy for the rest of the call (until the address changes).
    /// Default `None`.
    pub fallback_proxy: Option<ProxyServer>,
    /// Automatic mode: how long the direct attempt may take before the fallback. Default 1 s
    /// (ZEGO's smart proxy probes 1 s).
    pub direct_probe_timeout: Duration,
    /// **Beyond the seed**: how the cloud proxy is reached (the seed's ports, or TCP 443).
    /// Default [`CloudTransport::Standard`].
    pub cloud_transport: CloudTransport,
    /// **Beyond the seed** (a VPN that comes up mid-call and blocks UDP): when UDP media to the
    /// relay stops being answered, probe it for [`udp_probe_timeout`](Self::udp_probe_timeout)
    /// after the first missed keepalive, then move media to a TCP media channel on the same
    /// session instead of waiting for [`keepalive_misses`](Self::keepalive_misses) and
    /// reconnecting. Default `false` (the seed-era behaviour).
    pub udp_loss_fallback: bool,
}

/// How attempts race (RFC 8305 §5, "Happy Eyeballs"): the next attempt starts `stagger`
/// after the previous one, or at once when an attempt fails; at most `max_in_flight` are under
/// way; the first answer wins and the others are closed.
///
/// Access-point candidates are ordered so that consecutive attempts change both the address
/// and the port (address `i` of round `r` uses port `(i + r) mod ports`): a dead host and a
/// blocked port each cost one stagger, not a whole row. The order and the stagger are pure
/// functions of the configuration and the answers: no clock, no randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaceConfig {
    /// Delay between the starts of two attempts ("Connection Attempt Delay"). Default 250 ms,
    /// RFC 8305's recommendation; at least 1 ms.
    pub stagger: Duration,
    /// Most attempts in flight at once. Default 4; at least 1.
    pub max_in_flight: usize,
}

/// Default of [`RaceConfig::stagger`].
pub const DEFAULT_RACE_STAGGER: Duration = Duration::from_millis(250);
/// Default of [`RaceConfig::max_in_flight`].
pub const DEFAULT_RACE_MAX_IN_FLIGHT: usize = 4;
/// Default of [`ClientConfig::direct_probe_timeout`].
pub const DEFAULT_DIRECT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            stagger: DEFAULT_RACE_STAGGER,
            max_in_flight: DEFAULT_RACE_MAX_IN_FLIGHT,
        }
    }
}

/// How the client reaches the cloud proxy's access points and relays (**beyond the seed**
/// except `Standard`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CloudTransport {
    /// The seed's: the access point on [`AP_PORTS`](crate::wire::AP_PORTS) over UDP and TCP,
    /// the relay on [`RELAY_TCP_PORT`](crate::wire::RELAY_TCP_PORT) and its UDP media port.
    #[default]
    Standard,
    /// Force TCP (Agora's "TLS 443", Zoom's TCP 443): the access point and the relay on TCP
    /// port 443 only ([`AP_TLS_PORT`](crate::wire::AP_TLS_PORT),
    /// [`RELAY_TLS_PORT`](crate::wire::RELAY_TLS_PORT)), media on a TCP media channel, no UDP
    /// at all. TLS itself is the drivers' (phase 2): the client's bytes are the same.
    Tcp443Only,
    /// `Standard`, then TCP 443 as the last candidates (the automatic ladder's last step): an
    /// access point that answers on 443 means the relays are used on 443 too, over TCP only.
    StandardThen443,
}

/// Default of [`ClientConfig::ap_attempt_timeout`].
pub const DEFAULT_AP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default of [`ClientConfig::resolve_timeout`].
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`ClientConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`ClientConfig::udp_probe_timeout`].
pub const DEFAULT_UDP_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The keepalive interval used when neither the configuration nor the relay gives one.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Default of [`ClientConfig::keepalive_misses`].
pub const DEFAULT_KEEPALIVE_MISSES: u32 = 3;
/// Default of [`ClientConfig::backoff_initial`].
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Default of [`ClientConfig::backoff_max`].
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(4);
/// Default of [`ClientConfig::backoff_jitter_percent`].
pub const DEFAULT_BACKOFF_JITTER_PERCENT: u8 = 50;
/// Default of [`ClientConfig::give_up_after`].
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Default of [`ClientConfig::max_pending_signalling`].
pub const DEFAULT_MAX_PENDING_SIGNALLING: usize = 256 * 1024;

/// The shortest duration the client uses for any timer, so that no deadline is ever `now`.
pub(super) const MIN_TIMER: Duration = Duration::from_millis(1);
/// The shortest keepalive interval, whatever the relay or the configuration says.
pub(super) const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(10);

impl ClientConfig {
    /// A configuration with every timeout and bound at its default.
    pub fn new(
        proxy: Option<ProxyServer>,
        app_id: impl Into<String>,
        sdrtn: SdRtnEndpoints,
    ) -> Self {
        ClientConfig {
            proxy,
            app_id: app_id.into(),
            sdrtn,
            socks5_credentials: None,
            ap_attempt_timeout: DEFAULT_AP_ATTEMPT_TIMEOUT,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            udp_probe_timeout: DEFAULT_UDP_PROBE_TIMEOUT,
            keepalive_interval: None,
            keepalive_misses: DEFAULT_KEEPALIVE_MISSES,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            backoff_jitter_percent: DEFAULT_BACKOFF_JITTER_PERCENT,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            max_reconnect_attempts: None,
            max_pending_signalling: DEFAULT_MAX_PENDING_SIGNALLING,
            race: None,
            fallback_proxy: None,
            direct_probe_timeout: DEFAULT_DIRECT_PROBE_TIMEOUT,
            cloud_transport: CloudTransport::Standard,
            udp_loss_fallback: false,
        }
    }

    /// The configuration for a join: `config` is the one the engine took
    /// ([`Engine::join`](crate::engine::Engine::join)), `cloud` its cloud proxy type
    /// ([`Engine::cloud_proxy_in_force`](crate::engine::Engine::cloud_proxy_in_force)).
    ///
    /// Without a cloud proxy type this is exactly `ClientConfig::new(config.active_server(),
    /// ..)`, the seed's behaviour. With one (every field beyond the seed):
    ///
    /// | type | `proxy` | `fallback_proxy` | `cloud_transport` |
    /// |---|---|---|---|
    /// | automatic | `None` (direct first) | the cloud server | `StandardThen443` |
    /// | force UDP | the cloud server | `None` | `Standard` |
    /// | force TCP | the cloud server | `None` | `Tcp443Only` |
    ///
    /// and racing ([`RaceConfig::default`]) and the mid-call UDP loss fallback on.
    pub fn for_join(
        config: &ProxyConfig,
        cloud: Option<CloudProxyType>,
        app_id: impl Into<String>,
        sdrtn: SdRtnEndpoints,
    ) -> Self {
        let Some(kind) = cloud else {
            return ClientConfig::new(config.active_server().cloned(), app_id, sdrtn);
        };
        let server = crate::engine::cloud::cloud_server(config);
        let (proxy, fallback, transport) = match kind {
            CloudProxyType::Automatic => (None, Some(server), CloudTransport::StandardThen443),
            CloudProxyType::ForceUdp => (Some(server), None, CloudTransport::Standard),
            CloudProxyType::ForceTcp => (Some(server), None, CloudTransport::Tcp443Only),
        };
        ClientConfig {
            fallback_proxy: fallback,
            cloud_transport: transport,
            race: Some(RaceConfig::default()),
            udp_loss_fallback: true,
            ..ClientConfig::new(proxy, app_id, sdrtn)
        }
    }

    /// The proxy type number of the SDK grammar (0, 1, 2, 3), `None` when the proxy is off.
    pub fn proxy_type(&self) -> Option<u8> {
        self.proxy.as_ref().map(ProxyServer::proxy_type)
    }

    /// Whether this is automatic mode: no proxy, a fallback cloud proxy.
    pub fn is_automatic(&self) -> bool {
        self.proxy.is_none() && self.fallback_proxy.is_some()
    }

    /// A duration from the configuration, at least [`MIN_TIMER`].
    pub(super) fn timer(d: Duration) -> Duration {
        d.max(MIN_TIMER)
    }
}

impl Default for ClientConfig {
    /// Proxy off, an empty application id and unspecified SD-RTN addresses (`0.0.0.0:0`):
    /// placeholders for `..Default::default()`, to be filled in.
    fn default() -> Self {
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        ClientConfig::new(
            None,
            String::new(),
            SdRtnEndpoints {
                signalling: unspecified,
                media_udp: unspecified,
                media_tcp: unspecified,
            },
        )
    }
}
