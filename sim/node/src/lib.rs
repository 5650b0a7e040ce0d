//! # cloudproxy-node
//!
//! The nodes of cloudproxy, written once against the [`net::Net`] seam and run unchanged on
//! turmoil (by `cloudproxy-sim`) and on real tokio sockets (by the `cloudproxy` binary):
//!
//! - [`net`]: the seam, its tokio implementation ([`net::TokioNet`]) and the stream pumps that
//!   connect a sans-IO machine's connection ids to real streams;
//! - [`nodes`]: the SDK client, the cloud proxy's access point and relay, an SD-RTN edge, an
//!   enterprise SOCKS5 server and an attacker, each driving a machine of `cloudproxy-core` (the
//!   client drives the simulated application, `cloudproxy_core::app`);
//! - [`trace`]: the JSON-lines event trace every node writes.
//!
//! Nothing here knows turmoil: the simulated network, its firewall, impairments and resolver
//! are decorators of [`net::Net`] in `cloudproxy-sim`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
pub mod nodes;
pub mod tls;
pub mod trace;
