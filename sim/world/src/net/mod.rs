//! The simulated network: [`SimNet`] implements `cloudproxy_node::net::Net` over turmoil, and
//! the decorators the world wraps around it: the enterprise firewall ([`Firewalled`]) and the
//! capture ([`Captured`]). The impairments are in [`crate::faults`] and the enterprise
//! resolver in [`crate::dns`].

mod capture;
mod changes;
mod firewall;
mod sim_net;

pub use capture::{Captured, CapturedListener, CapturedStream, CapturedUdp, StreamAddrs};
pub use changes::{ChangeCounters, Changing, ChangingUdp, NetSwitch};
pub use firewall::{decide, FirewallCounters, Firewalled, FirewalledUdp, RuleHit};
pub use sim_net::{SimListener, SimNet, SimUdp, SIM_UNIX_EPOCH};
