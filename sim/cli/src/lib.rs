//! # cloudproxy
//!
//! The `cloudproxy` binary's library: the command line ([`cli`]) and real serving ([`serve`]:
//! `cloudproxy serve`, `edge` and `call`, their configuration, metrics, logging and signals).
//! [`netlab`] puts the simulated world on real network namespaces, with the enterprise
//! firewalls compiled to nftables, and compares the two.
//! The simulation lives in `cloudproxy-sim`, the nodes in `cloudproxy-node`, the rules in
//! `cloudproxy-core`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod markup;
pub mod netlab;
pub mod report;
pub mod serve;
