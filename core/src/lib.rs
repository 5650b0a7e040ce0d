//! # cloudproxy-core
//!
//! The pure, sans-IO protocol core of cloudproxy: everything that decides, nothing that waits.
//!
//! - [`params`]: the `setParameters` grammar for the proxy keys (`rtc.enable_proxy`,
//!   `rtc.proxy_server`), with errors that name the key, the element and the reason, and a
//!   canonical form that re-parses to the same configuration.
//! - [`engine`]: the SDK engine's life cycle and the rule of when proxy settings may change.
//! - [`ap`]: the cloud proxy's access point, a sans-IO machine: requests in, relays and
//!   tickets out, bounded and rate-limited per client address and network.
//! - [`time`]: the virtual clock every machine is driven by.
//!
//! Nothing here reads a clock, opens a socket or draws from a global random number generator:
//! time and randomness come in as inputs, so every run is a deterministic function of them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ap;
pub mod app;
pub mod client;
pub mod engine;
pub mod entropy;
pub mod params;
pub mod relay;
pub mod sdrtn;
pub mod socks5;
pub mod time;
pub mod wire;

#[cfg(test)]
mod test_support;
