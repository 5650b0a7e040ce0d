//! The nodes of the world: each drives a core machine (or plays a peer) over the `Net` seam.

pub mod ap;
pub mod attacker;
pub mod client;
pub mod edge;
pub mod http_proxy;
pub mod relay;
pub mod socks;
