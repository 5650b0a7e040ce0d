//! # cloudproxy-sim
//!
//! The deterministic world around [`cloudproxy_core`] and the nodes of [`cloudproxy_node`]:
//! the turmoil network ([`net::SimNet`]) and its decorators (the enterprise firewall, the
//! impairments, the capture, the enterprise resolver), the firewall policy and DNS models,
//! faults and swarm, the scenario catalogue and its oracles, pcap, and the exploration behind
//! `check-firewall`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
pub mod fault_schedule;
pub mod faults;
pub mod firewall_check;
pub mod net;
pub mod pcap;
pub mod pcap_dns;
pub mod pcap_out;
pub mod policy;
pub mod policy_formats;
pub mod scenario;
pub mod swarm;
pub mod timeline;
pub mod tls;
pub mod world;
