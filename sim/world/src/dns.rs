//! DNS as the enterprise resolver answers it: our own name table (turmoil cannot pin a name to
//! an address of our choosing), and a policy that may refuse every external name.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::time::Instant;
use cloudproxy_node::net::Net;

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

/// How long the enterprise resolver takes to answer.
pub const DNS_DELAY: Duration = Duration::from_millis(5);

/// A network whose names are answered by an enterprise resolver: the world's names seen
/// through the enterprise's DNS policy, each answer after [`DNS_DELAY`]. Everything else goes
/// to the inner network unchanged.
#[derive(Clone)]
pub struct Resolving<N> {
    inner: N,
    dns: Rc<Dns>,
    policy: DnsPolicy,
}

impl<N: Net> Resolving<N> {
    /// `inner`, resolving through `dns` as a resolver with `policy` answers.
    pub fn new(inner: N, dns: Rc<Dns>, policy: DnsPolicy) -> Self {
        Resolving { inner, dns, policy }
    }
}

impl<N: Net> Net for Resolving<N> {
    type Stream = N::Stream;
    type Listener = N::Listener;
    type Udp = N::Udp;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        self.inner.connect(to).await
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        self.inner.listen(at).await
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        self.inner.bind_udp(at).await
    }

    /// The answer is decided when the query is asked (an outage that starts while it is in
    /// flight does not change it), and arrives [`DNS_DELAY`] later.
    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let answer = self.dns.resolve(name, self.policy);
        tokio::time::sleep(DNS_DELAY).await;
        answer
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        self.inner.unix_now()
    }
}
