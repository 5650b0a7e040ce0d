//! # cloudproxy-sim
//!
//! The world around [`cloudproxy_core`]: the `Net` seam and its turmoil implementation, the
//! enterprise firewall, the nodes (SDK clients, the cloud proxy's access points and relays,
//! SD-RTN edges, an enterprise SOCKS5 server), the scenarios, and the `cloudproxy` binary.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod dns;
pub mod faults;
pub mod firewall_check;
pub mod net;
pub mod nodes;
pub mod pcap;
pub mod policy;
pub mod policy_formats;
pub mod scenario;
pub mod serve;
pub mod swarm;
pub mod trace;
pub mod world;
