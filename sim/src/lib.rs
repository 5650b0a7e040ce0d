//! # cloudproxy-sim
//!
//! The world around [`cloudproxy_core`]: the command-line interface of the `cloudproxy` binary
//! and, as the project grows, the IO drivers, nodes, firewall and DNS models and scenarios.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
