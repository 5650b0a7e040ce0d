//! The enterprise firewall as a [`Net`] decorator: every new outbound flow of the hosts behind
//! it gets the policy's verdict; replies on allowed flows pass (stateful).
//!
//! Every verdict is also counted against the rule that decided it ([`RuleHit`]: the first
//! allow rule that matches, or the default), as nftables counts packets against the rules of
//! the compiled policy, so that `cloudproxy netlab` can name the rule where a real firewall and
//! this one disagree.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::policy::{Policy, Proto, Verdict};

use cloudproxy_node::net::{Net, Udp};

/// What the firewall did, by verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirewallCounters {
    /// TCP connections allowed.
    pub tcp_pass: u64,
    /// TCP connections dropped silently.
    pub tcp_drop: u64,
    /// TCP connections refused at once.
    pub tcp_reject: u64,
    /// Outbound datagrams allowed.
    pub udp_pass: u64,
    /// Outbound datagrams denied (dropped or rejected: UDP vanishes either way).
    pub udp_deny: u64,
    /// Inbound datagrams that were not replies to an allowed flow.
    pub udp_unsolicited: u64,
    /// The destinations denied, for the report (bounded).
    pub denied: BTreeSet<(Proto, SocketAddr)>,
    /// Verdicts per deciding rule: TCP connects and outbound datagrams under the rule that
    /// decided them, unsolicited inbound datagrams under [`RuleHit::Unsolicited`].
    pub rules: BTreeMap<RuleHit, u64>,
}

/// The part of the policy that decided a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleHit {
    /// The allow rule at this index (0-based, in the policy's order): the first that matches.
    Allow(usize),
    /// No allow rule matched: the policy's default.
    Default,
    /// An inbound datagram that was not a reply to an allowed flow (dropped, unless the
    /// default is pass).
    Unsolicited,
}

/// The verdict of `policy` for a new outbound flow, and the rule that decided it.
pub fn decide(policy: &Policy, proto: Proto, to: SocketAddr) -> (Verdict, RuleHit) {
    match policy.rules.iter().position(|r| r.matches(proto, to)) {
        Some(index) => (Verdict::Pass, RuleHit::Allow(index)),
        None => (policy.default, RuleHit::Default),
    }
}

const MAX_DENIED_KEPT: usize = 256;

impl FirewallCounters {
    fn hit(&mut self, rule: RuleHit) {
        *self.rules.entry(rule).or_default() += 1;
    }

    fn deny(&mut self, proto: Proto, to: SocketAddr) {
        if self.denied.len() < MAX_DENIED_KEPT {
            self.denied.insert((proto, to));
        }
    }
}

/// A network behind an enterprise firewall.
#[derive(Clone)]
pub struct Firewalled<N> {
    inner: N,
    policy: Rc<Policy>,
    counters: Rc<RefCell<FirewallCounters>>,
}

impl<N: Net> Firewalled<N> {
    /// `inner` seen through `policy`; `counters` is shared by every host behind the firewall.
    pub fn new(inner: N, policy: Rc<Policy>, counters: Rc<RefCell<FirewallCounters>>) -> Self {
        Firewalled {
            inner,
            policy,
            counters,
        }
    }
}

impl<N: Net> Net for Firewalled<N> {
    type Stream = N::Stream;
    type Listener = N::Listener;
    type Udp = FirewalledUdp<N::Udp>;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        let (verdict, rule) = decide(&self.policy, Proto::Tcp, to);
        {
            let mut c = self.counters.borrow_mut();
            c.hit(rule);
            match verdict {
                Verdict::Pass => c.tcp_pass += 1,
                Verdict::Drop => c.tcp_drop += 1,
                Verdict::Reject => c.tcp_reject += 1,
            }
            if verdict != Verdict::Pass {
                c.deny(Proto::Tcp, to);
            }
        }
        match verdict {
            Verdict::Pass => self.inner.connect(to).await,
            // The SYN vanishes: the connect never completes; the client's own timer gives up.
            Verdict::Drop => std::future::pending().await,
            Verdict::Reject => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("the enterprise firewall refused tcp to {to}"),
            )),
        }
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        self.inner.listen(at).await
    }

    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        self.inner.resolve(name).await
    }

    fn now(&self) -> cloudproxy_core::time::Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        self.inner.unix_now()
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        Ok(FirewalledUdp {
            inner: self.inner.bind_udp(at).await?,
            policy: self.policy.clone(),
            counters: self.counters.clone(),
            flows: RefCell::new(BTreeSet::new()),
        })
    }
}

/// A UDP socket behind the firewall.
pub struct FirewalledUdp<U> {
    inner: U,
    policy: Rc<Policy>,
    counters: Rc<RefCell<FirewallCounters>>,
    /// Remote addresses this socket sent to through the firewall: their replies pass.
    flows: RefCell<BTreeSet<SocketAddr>>,
}

/// The most flows one socket keeps open (a bound, like a real connection table).
const MAX_FLOWS: usize = 4096;

impl<U: Udp> Udp for FirewalledUdp<U> {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let (verdict, rule) = decide(&self.policy, Proto::Udp, to);
        self.counters.borrow_mut().hit(rule);
        if verdict != Verdict::Pass {
            let mut c = self.counters.borrow_mut();
            c.udp_deny += 1;
            c.deny(Proto::Udp, to);
            return Ok(()); // UDP gives no sign of loss
        }
        self.counters.borrow_mut().udp_pass += 1;
        {
            let mut flows = self.flows.borrow_mut();
            if flows.len() < MAX_FLOWS {
                flows.insert(to);
            }
        }
        // A send error (no such host) is as silent as a loss on a real network.
        let _ = self.inner.send_to(data, to).await;
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if self.policy.default == Verdict::Pass || self.flows.borrow().contains(&from) {
                return Ok((n, from));
            }
            let mut c = self.counters.borrow_mut();
            c.udp_unsolicited += 1;
            c.hit(RuleHit::Unsolicited);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_decides() {
        let policy: Policy = "default = \"reject\"\n[[allow]]\nproto = \"tcp\"\nto = [\"10.0.0.0/8\"]\nports = [\"80\"]\n[[allow]]\nproto = \"tcp\"\nto = [\"10.0.0.1\"]\nports = [\"80\", \"443\"]"
            .parse()
            .unwrap();
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert_eq!(
            decide(&policy, Proto::Tcp, at("10.0.0.1:80")),
            (Verdict::Pass, RuleHit::Allow(0))
        );
        assert_eq!(
            decide(&policy, Proto::Tcp, at("10.0.0.1:443")),
            (Verdict::Pass, RuleHit::Allow(1))
        );
        assert_eq!(
            decide(&policy, Proto::Udp, at("10.0.0.1:80")),
            (Verdict::Reject, RuleHit::Default)
        );
        for (proto, to) in [(Proto::Tcp, "10.9.9.9:80"), (Proto::Udp, "1.1.1.1:53")] {
            assert_eq!(
                decide(&policy, proto, at(to)).0,
                policy.verdict(proto, at(to))
            );
        }
    }
}
