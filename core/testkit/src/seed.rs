//! The seed's world, as data: the addresses and ports of the seed document's test whitelist
//! (four access points, two relays), and what the simulation adds around them (an SD-RTN edge
//! in its own block, the access point's domain). Every world of the project (the turmoil
//! world, the pair world, `cloudproxy serve`'s defaults) is built on these.
//!
//! ```
//! use cloudproxy_testkit::seed;
//!
//! assert_eq!(seed::ap_ips().len(), 4);
//! assert!(seed::sdrtn_block().contains(seed::edge_endpoints().signalling.ip()));
//! assert_eq!(seed::relays()[0].tcp_port, seed::RELAY_TCP_PORT);
//! ```

use std::net::{IpAddr, SocketAddr};

use cloudproxy_core::relay::Cidr;
use cloudproxy_core::sdrtn::SdRtnEndpoints;
use cloudproxy_core::wire::RelayInfo;

pub use cloudproxy_core::params::DEFAULT_DOMAIN as AP_DOMAIN;
pub use cloudproxy_core::wire::{AP_PORTS, RELAY_TCP_PORT, RELAY_UDP_PORTS};

/// The access points' addresses, from the seed's whitelist ("edge-node communication").
pub const AP_IPS: [&str; 4] = [
    "47.74.211.17",
    "52.80.192.229",
    "52.52.84.170",
    "47.96.234.219",
];
/// The relays' addresses, from the seed's whitelist ("message data", "media data exchange").
pub const RELAY_IPS: [&str; 2] = ["120.92.118.34", "120.92.18.162"];
/// The SD-RTN edge's address (a public address of its own).
pub const EDGE_IP: &str = "101.36.1.10";
/// The SD-RTN block the relays may reach.
pub const SDRTN_BLOCK: &str = "101.36.0.0/16";
/// The edge's TCP signalling port.
pub const EDGE_SIGNALLING_PORT: u16 = 5000;
/// The edge's UDP media port.
pub const EDGE_MEDIA_UDP_PORT: u16 = 5001;
/// The edge's TCP media port (for clients that cannot use UDP).
pub const EDGE_MEDIA_TCP_PORT: u16 = 5002;

/// Parses an address literal of this module (all are valid; anything else panics, naming it).
pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not an IP address literal"))
}

/// The access points' addresses.
pub fn ap_ips() -> Vec<IpAddr> {
    AP_IPS.iter().map(|a| ip(a)).collect()
}

/// The relays' addresses.
pub fn relay_ips() -> Vec<IpAddr> {
    RELAY_IPS.iter().map(|a| ip(a)).collect()
}

/// The edge's endpoints.
pub fn edge_endpoints() -> SdRtnEndpoints {
    let edge = ip(EDGE_IP);
    SdRtnEndpoints {
        signalling: SocketAddr::new(edge, EDGE_SIGNALLING_PORT),
        media_udp: SocketAddr::new(edge, EDGE_MEDIA_UDP_PORT),
        media_tcp: SocketAddr::new(edge, EDGE_MEDIA_TCP_PORT),
    }
}

/// The relays as the access points list them: TCP on [`RELAY_TCP_PORT`], UDP from the first
/// port of [`RELAY_UDP_PORTS`].
pub fn relays() -> Vec<RelayInfo> {
    relay_ips()
        .into_iter()
        .map(|addr| RelayInfo {
            addr,
            tcp_port: RELAY_TCP_PORT,
            udp_port: *RELAY_UDP_PORTS.start(),
        })
        .collect()
}

/// [`SDRTN_BLOCK`], parsed.
pub fn sdrtn_block() -> Cidr {
    SDRTN_BLOCK
        .parse()
        .unwrap_or_else(|_| panic!("{SDRTN_BLOCK:?} is not a CIDR block"))
}
