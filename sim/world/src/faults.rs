//! Faults of our own where turmoil has none: seeded per-packet UDP impairments (uniform or
//! bursty loss, duplication, jitter that reorders), as a [`Net`] decorator whose settings a
//! fault schedule changes at run time. TCP is never impaired per segment (turmoil has no
//! retransmission): TCP faults are partitions, holds, crashes and restarts, applied by the
//! world (`crate::world::Fault`).

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use cloudproxy_core::entropy::Entropy;
use cloudproxy_core::time::Instant;

use cloudproxy_node::net::{Net, Udp};

/// Per-datagram impairments, in percent and milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Impairments {
    /// Probability of losing a datagram, percent (in the "good" state when bursty).
    pub loss_pct: u8,
    /// Bursty loss (Gilbert-Elliott): percent chance per datagram of entering a burst, and of
    /// leaving it; inside a burst every datagram is lost.
    pub burst: Option<(u8, u8)>,
    /// Probability of sending a datagram twice, percent.
    pub dup_pct: u8,
    /// Extra delay drawn uniformly from `0..=jitter_ms` per datagram (reorders them).
    pub jitter_ms: u16,
}

impl Impairments {
    /// No impairment.
    pub const NONE: Impairments = Impairments {
        loss_pct: 0,
        burst: None,
        dup_pct: 0,
        jitter_ms: 0,
    };

    /// Whether nothing is impaired.
    pub fn is_none(&self) -> bool {
        *self == Impairments::NONE
    }
}

/// What the impairment layer did, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpairmentCounters {
    /// Datagrams seen.
    pub seen: u64,
    /// Datagrams lost.
    pub lost: u64,
    /// Datagrams duplicated.
    pub duplicated: u64,
    /// Datagrams delayed by jitter.
    pub delayed: u64,
}

/// The shared state of one world's impairment layer: settings, randomness and counters.
#[derive(Debug)]
pub struct ImpairmentState {
    /// The settings in force.
    pub settings: Impairments,
    /// Whether a loss burst is in progress.
    in_burst: bool,
    entropy: Entropy,
    /// What was done.
    pub counters: ImpairmentCounters,
}

impl ImpairmentState {
    /// A layer with no impairment yet, drawing from `seed`.
    pub fn new(seed: u64) -> Rc<RefCell<ImpairmentState>> {
        Rc::new(RefCell::new(ImpairmentState {
            settings: Impairments::NONE,
            in_burst: false,
            entropy: Entropy::from_u64(seed),
            counters: ImpairmentCounters::default(),
        }))
    }

    fn roll(&mut self, pct: u8) -> bool {
        pct > 0 && self.entropy.next_below(100) < u64::from(pct)
    }

    /// Decides the fate of one datagram: how many copies, each with its delay.
    fn decide(&mut self) -> Vec<Duration> {
        self.counters.seen += 1;
        let settings = self.settings;
        if settings.is_none() {
            return vec![Duration::ZERO];
        }
        if let Some((enter, leave)) = settings.burst {
            if self.in_burst {
                if self.roll(leave) {
                    self.in_burst = false;
                }
            } else if self.roll(enter) {
                self.in_burst = true;
            }
        }
        if self.in_burst || self.roll(settings.loss_pct) {
            self.counters.lost += 1;
            return Vec::new();
        }
        let copies = if self.roll(settings.dup_pct) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let ms = self.entropy.next_below(u64::from(settings.jitter_ms) + 1);
                if ms > 0 {
                    self.counters.delayed += 1;
                }
                Duration::from_millis(ms)
            })
            .collect()
    }
}

/// A network whose outgoing UDP datagrams go through the impairment layer.
#[derive(Clone)]
pub struct Impaired<N> {
    inner: N,
    state: Rc<RefCell<ImpairmentState>>,
}

impl<N: Net> Impaired<N> {
    /// `inner`, with its UDP impaired as `state` says.
    pub fn new(inner: N, state: Rc<RefCell<ImpairmentState>>) -> Self {
        Impaired { inner, state }
    }
}

impl<N: Net> Net for Impaired<N> {
    type Stream = N::Stream;
    type Listener = N::Listener;
    type Udp = ImpairedUdp<N::Udp>;

    async fn connect(&self, to: SocketAddr) -> io::Result<Self::Stream> {
        self.inner.connect(to).await
    }

    async fn listen(&self, at: SocketAddr) -> io::Result<Self::Listener> {
        self.inner.listen(at).await
    }

    async fn bind_udp(&self, at: SocketAddr) -> io::Result<Self::Udp> {
        Ok(ImpairedUdp {
            inner: Rc::new(self.inner.bind_udp(at).await?),
            state: self.state.clone(),
        })
    }

    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        self.inner.resolve(name).await
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix_now(&self) -> cloudproxy_core::time::UnixTime {
        self.inner.unix_now()
    }
}

/// A UDP socket whose sends are impaired.
pub struct ImpairedUdp<U> {
    inner: Rc<U>,
    state: Rc<RefCell<ImpairmentState>>,
}

impl<U: Udp> Udp for ImpairedUdp<U> {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let fates = self.state.borrow_mut().decide();
        for delay in fates {
            if delay.is_zero() {
                let _ = self.inner.send_to(data, to).await;
            } else {
                let (socket, data) = (self.inner.clone(), data.to_vec());
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    let _ = socket.send_to(&data, to).await;
                });
            }
        }
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_impairment_sends_once_without_delay() {
        let state = ImpairmentState::new(1);
        for _ in 0..100 {
            assert_eq!(state.borrow_mut().decide(), vec![Duration::ZERO]);
        }
    }

    #[test]
    fn loss_rate_is_near_the_setting_and_deterministic() {
        let run = |seed| {
            let state = ImpairmentState::new(seed);
            state.borrow_mut().settings = Impairments {
                loss_pct: 20,
                dup_pct: 5,
                jitter_ms: 30,
                ..Impairments::NONE
            };
            let fates: Vec<Vec<Duration>> =
                (0..10_000).map(|_| state.borrow_mut().decide()).collect();
            let counters = state.borrow().counters.clone();
            (fates, counters)
        };
        let (a, counters) = run(7);
        assert_eq!(a, run(7).0);
        assert!((1_700..2_300).contains(&counters.lost), "{counters:?}");
        assert!((300..700).contains(&counters.duplicated), "{counters:?}");
        assert!(a.iter().flatten().all(|d| *d <= Duration::from_millis(30)));
    }

    #[test]
    fn bursts_lose_runs_of_datagrams() {
        let state = ImpairmentState::new(3);
        state.borrow_mut().settings = Impairments {
            burst: Some((2, 20)),
            ..Impairments::NONE
        };
        let lost: Vec<bool> = (0..20_000)
            .map(|_| state.borrow_mut().decide().is_empty())
            .collect();
        let losses = lost.iter().filter(|l| **l).count();
        let runs = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        assert!(losses > 0 && runs > 0);
        assert!(
            losses / runs >= 3,
            "bursty losses come in runs: {losses} losses in {runs} runs"
        );
    }
}
