//! DNS as the enterprise resolver answers it: our own name table (turmoil cannot pin a name to
//! an address of our choosing), and a policy that may refuse every external name.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::policy::DnsPolicy;

/// The names the world knows.
#[derive(Clone, Debug, Default)]
pub struct Dns {
    names: BTreeMap<String, Vec<IpAddr>>,
    /// A DNS outage: every query fails (a fault the world can switch on and off).
    outage: Cell<bool>,
}

impl Dns {
    /// Adds (or replaces) a name.
    pub fn insert(&mut self, name: &str, addrs: Vec<IpAddr>) {
        self.names.insert(name.to_ascii_lowercase(), addrs);
    }

    /// Starts or ends a DNS outage.
    pub fn set_outage(&self, on: bool) {
        self.outage.set(on);
    }

    /// Resolves `name` through an enterprise resolver with `policy`.
    pub fn resolve(&self, name: &str, policy: DnsPolicy) -> Result<Vec<IpAddr>, String> {
        if self.outage.get() {
            return Err(format!(
                "{name}: the resolver is not answering (DNS outage)"
            ));
        }
        if policy == DnsPolicy::Blocked {
            return Err(format!(
                "the enterprise resolver refused {name}: external names are blocked"
            ));
        }
        match self.names.get(&name.to_ascii_lowercase()) {
            Some(addrs) if !addrs.is_empty() => Ok(addrs.clone()),
            _ => Err(format!("{name}: no such name (NXDOMAIN)")),
        }
    }
}
