//! `setCloudProxy(type)`, **beyond the seed** (Agora 4.x): automatic, force UDP, force TCP.
//!
//! The seed's `setParameters` keys stay exactly as they were: until the application calls
//! [`Engine::set_cloud_proxy`](super::Engine::set_cloud_proxy), nothing here applies. Once it
//! has, the type decides the path and the `setParameters` server, when it is the cloud proxy
//! (type 1 or 2), is the cloud proxy used; otherwise the default `[1, "ap-proxy.agora.io", 0]`.
//!
//! | type | Agora name | path | the configuration taken at join |
//! |---|---|---|---|
//! | [`Automatic`](CloudProxyType::Automatic) (0) | `NONE_PROXY` | direct to SD-RTN first; no connection within the probe time: the cloud proxy | proxy off, the cloud server kept as the fallback |
//! | [`ForceUdp`](CloudProxyType::ForceUdp) (1) | `UDP_PROXY` | the cloud proxy on the seed's ports (UDP media, TCP when UDP is blocked) | proxy on, the cloud server |
//! | [`ForceTcp`](CloudProxyType::ForceTcp) (2) | `TCP_PROXY` | the cloud proxy over TCP to port 443 only (TLS in the drivers) | proxy on, the cloud server |

use std::fmt;

use crate::params::{ProxyConfig, ProxyServer};

/// The cloud proxy type of `setCloudProxy`, numbered as Agora numbers `CLOUD_PROXY_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CloudProxyType {
    /// `0`: automatic: direct first, the cloud proxy when no connection comes within the probe
    /// time (Agora's default since 3.6.2; ours only once asked for).
    Automatic = 0,
    /// `1`: force UDP: always the cloud proxy, on the seed's whitelisted ports.
    ForceUdp = 1,
    /// `2`: force TCP: always the cloud proxy, over TCP to port 443 only (Agora: "TLS 443").
    ForceTcp = 2,
}

impl CloudProxyType {
    /// The type for Agora's integer (`0`, `1`, `2`), `None` for any other.
    pub fn from_i32(value: i32) -> Option<Self> {
        match value {
            0 => Some(CloudProxyType::Automatic),
            1 => Some(CloudProxyType::ForceUdp),
            2 => Some(CloudProxyType::ForceTcp),
            _ => None,
        }
    }

    /// Agora's integer for this type.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The type's name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            CloudProxyType::Automatic => "automatic",
            CloudProxyType::ForceUdp => "force-udp",
            CloudProxyType::ForceTcp => "force-tcp",
        }
    }

    /// The configuration taken at join for `config` under this type: the proxy on with the
    /// cloud server (forced types) or off with the cloud server kept as the fallback
    /// (automatic). The cloud server is `config`'s when it is the cloud proxy, else the
    /// default.
    pub fn map(self, config: &ProxyConfig) -> ProxyConfig {
        ProxyConfig {
            enabled: self != CloudProxyType::Automatic,
            server: cloud_server(config),
        }
    }
}

impl fmt::Display for CloudProxyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_i32(), self.name())
    }
}

/// The cloud proxy of a configuration: its server when it is the cloud proxy (type 1 or 2),
/// else the default `[1, "ap-proxy.agora.io", 0]`.
pub fn cloud_server(config: &ProxyConfig) -> ProxyServer {
    if config.server.is_cloud() {
        config.server.clone()
    } else {
        ProxyServer::default_cloud()
    }
}
