//! The request rate limiter: fixed windows per client address and per client network, in
//! bounded tables that never evict a window before it ends.
//!
//! A request is judged against two windows: its network's (`/24`, `/56`), then its address's
//! (`/32`, `/64`). It is accepted when both have budget left, and then counts against both;
//! otherwise it is refused by the window that ran out, and only the first refusal of that
//! window is answered (`RateLimited`): the rest get silence until the window ends.
//!
//! Memory: each table holds at most its capacity, plus one overflow window. A window leaves
//! its table only when it ends, so traffic from other clients can never reset (or take over)
//! a tracked client's window. While a table is full, the keys it does not track share its
//! overflow window, whose budget is the per-network one: new clients are served from a shared
//! budget until tracked windows end and make room.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use super::{client_address, client_network};
use crate::time::Instant;

/// One fixed window.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// When it started (its first request).
    start: Instant,
    /// Requests accepted in it.
    count: u32,
    /// Whether a refusal was already answered in it.
    told: bool,
}

impl Window {
    fn new(start: Instant) -> Self {
        Window {
            start,
            count: 0,
            told: false,
        }
    }
}

/// Windows by key (a masked address), bounded, plus the overflow window.
#[derive(Clone, Debug)]
struct WindowTable {
    windows: BTreeMap<IpAddr, Window>,
    /// The same windows by start, oldest first, to expire them in order.
    by_start: BTreeSet<(Instant, IpAddr)>,
    /// The window shared by keys not tracked while the table is full.
    overflow: Option<Window>,
    /// Most keys tracked.
    capacity: usize,
}

impl WindowTable {
    fn new(capacity: usize) -> Self {
        WindowTable {
            windows: BTreeMap::new(),
            by_start: BTreeSet::new(),
            overflow: None,
            capacity,
        }
    }

    /// Forgets every window that ended at or before `now`.
    fn purge(&mut self, now: Instant, length: Duration) {
        while let Some(&(start, key)) = self.by_start.first() {
            if start + length > now {
                break;
            }
            self.by_start.pop_first();
            self.windows.remove(&key);
        }
        if self.overflow.is_some_and(|w| w.start + length <= now) {
            self.overflow = None;
        }
    }

    /// The window of `key`, opened now if it has none; the overflow window (`true`) when the
    /// table is full.
    fn window(&mut self, key: IpAddr, now: Instant) -> (&mut Window, bool) {
        if !self.windows.contains_key(&key) && self.windows.len() >= self.capacity {
            return (self.overflow.get_or_insert(Window::new(now)), true);
        }
        let window = self.windows.entry(key).or_insert_with(|| {
            self.by_start.insert((now, key));
            Window::new(now)
        });
        (window, false)
    }

    /// When the oldest window ends.
    fn next_end(&self, length: Duration) -> Option<Instant> {
        let oldest = self.by_start.first().map(|(start, _)| *start);
        let overflow = self.overflow.map(|w| w.start);
        oldest.into_iter().chain(overflow).min().map(|s| s + length)
    }
}

/// What the limiter says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Within budget; counted.
    Allowed {
        /// Judged against an overflow window.
        overflow: bool,
    },
    /// Over budget.
    Refused {
        /// The first refusal of its window: answer it. Later ones get silence.
        answer: bool,
        /// Judged against an overflow window.
        overflow: bool,
    },
}

/// Per-address and per-network fixed windows.
#[derive(Clone, Debug)]
pub(super) struct RateLimiter {
    addresses: WindowTable,
    networks: WindowTable,
    max_per_address: u32,
    max_per_network: u32,
    length: Duration,
}

impl RateLimiter {
    /// A limiter of `max_per_address` and `max_per_network` requests per window of `length`,
    /// tracking at most `address_capacity` addresses and `network_capacity` networks.
    pub(super) fn new(
        max_per_address: u32,
        max_per_network: u32,
        length: Duration,
        address_capacity: usize,
        network_capacity: usize,
    ) -> Self {
        RateLimiter {
            addresses: WindowTable::new(address_capacity),
            networks: WindowTable::new(network_capacity),
            max_per_address,
            max_per_network,
            length,
        }
    }

    /// Judges (and counts, when allowed) one request from `ip`.
    pub(super) fn check(&mut self, now: Instant, ip: IpAddr) -> Verdict {
        self.purge(now);
        let (network, network_overflow) = self.networks.window(client_network(ip).addr(), now);
        if network.count >= self.max_per_network {
            let answer = !network.told;
            network.told = true;
            return Verdict::Refused {
                answer,
                overflow: network_overflow,
            };
        }
        let (address, address_overflow) = self.addresses.window(client_address(ip).addr(), now);
        let overflow = network_overflow || address_overflow;
        // An overflow window stands for many addresses: it gets the per-network budget.
        let limit = if address_overflow {
            self.max_per_network
        } else {
            self.max_per_address
        };
        if address.count >= limit {
            let answer = !address.told;
            address.told = true;
            return Verdict::Refused { answer, overflow };
        }
        address.count += 1;
        network.count += 1;
        Verdict::Allowed { overflow }
    }

    /// Forgets every window that ended at or before `now`.
    pub(super) fn purge(&mut self, now: Instant) {
        self.addresses.purge(now, self.length);
        self.networks.purge(now, self.length);
    }

    /// When the next window ends (and its memory is freed).
    pub(super) fn next_end(&self) -> Option<Instant> {
        let a = self.addresses.next_end(self.length);
        let n = self.networks.next_end(self.length);
        a.into_iter().chain(n).min()
    }

    /// How many addresses and networks are tracked (overflow windows excluded).
    pub(super) fn tracked(&self) -> (usize, usize) {
        (self.addresses.windows.len(), self.networks.windows.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn v4(c: u8, d: u8) -> IpAddr {
        IpAddr::from([198, 51, c, d])
    }

    fn allowed(v: Verdict) -> bool {
        matches!(v, Verdict::Allowed { .. })
    }

    #[test]
    fn windows_end_and_tables_stay_bounded() {
        let mut l = RateLimiter::new(2, 100, Duration::from_secs(10), 3, 2);
        assert!(allowed(l.check(t(0), v4(0, 1))));
        assert!(allowed(l.check(t(0), v4(0, 1))));
        assert_eq!(
            l.check(t(0), v4(0, 1)),
            Verdict::Refused {
                answer: true,
                overflow: false
            }
        );
        assert_eq!(
            l.check(t(9_999), v4(0, 1)),
            Verdict::Refused {
                answer: false,
                overflow: false
            },
            "silence after the first refusal"
        );
        assert_eq!(l.next_end(), Some(t(10_000)));
        assert!(allowed(l.check(t(10_000), v4(0, 1))), "a new window");
        for d in 2..50 {
            l.check(t(11_000), v4(1, d));
            let (a, n) = l.tracked();
            assert!(a <= 3 && n <= 2);
        }
        l.purge(t(30_000));
        assert_eq!(l.tracked(), (0, 0));
        assert_eq!(l.next_end(), None);
    }

    #[test]
    fn a_zero_budget_refuses_everything() {
        let mut l = RateLimiter::new(0, 10, Duration::from_secs(1), 3, 3);
        assert!(!allowed(l.check(t(0), v4(0, 1))));
        let mut l = RateLimiter::new(10, 0, Duration::from_secs(1), 3, 3);
        assert!(!allowed(l.check(t(0), v4(0, 1))));
    }
}
