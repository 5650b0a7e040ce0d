//! Racing attempts (RFC 8305, "Happy Eyeballs"), **beyond the seed**: the scheduler that says
//! when the next attempt of a race may start, and the order access-point candidates are tried
//! in.
//!
//! The scheduler only counts: which candidate is next, how many are in flight, when the next
//! may start. The parts that own the attempts (the access-point round, the tunnel opening)
//! start one when [`Stagger::start_due`] says so and report its end with [`Stagger::ended`].
//! Without racing ([`ClientConfig::race`] `None`) the same scheduler runs one attempt at a
//! time, the next starting when the previous ends: the seed-era behaviour, unchanged.
//!
//! Everything is a pure function of the configuration and the calls: no clock is read, no
//! randomness drawn, so a race runs the same way every time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::time::Instant;

use super::config::{ClientConfig, MIN_TIMER};

/// When attempts of one race start.
#[derive(Clone, Debug)]
pub(super) struct Stagger {
    /// Delay between two starts; `None`: only when the previous attempt ends.
    stagger: Option<Duration>,
    /// Most attempts in flight.
    max_in_flight: usize,
    /// How many candidates the race has.
    total: usize,
    /// How many have been started (they are the first `started` candidates).
    started: usize,
    /// How many are in flight.
    in_flight: usize,
    /// The earliest instant the next may start.
    next_at: Instant,
}

impl Stagger {
    /// A race over `total` candidates whose first attempt may start at `now`, racing as
    /// `config.race` says (one at a time when it is `None`).
    pub(super) fn new(total: usize, config: &ClientConfig, now: Instant) -> Stagger {
        let (stagger, max_in_flight) = match &config.race {
            Some(race) => (Some(race.stagger.max(MIN_TIMER)), race.max_in_flight.max(1)),
            None => (None, 1),
        };
        Stagger {
            stagger,
            max_in_flight,
            total,
            started: 0,
            in_flight: 0,
            next_at: now,
        }
    }

    /// When the next attempt may start, if one can (candidates left, room in flight).
    pub(super) fn next_start(&self) -> Option<Instant> {
        (self.started < self.total && self.in_flight < self.max_in_flight).then_some(self.next_at)
    }

    /// Starts the next attempt if it is due at `now`: its candidate index.
    pub(super) fn start_due(&mut self, now: Instant) -> Option<usize> {
        if self.next_start()? > now {
            return None;
        }
        let index = self.started;
        self.started += 1;
        self.in_flight += 1;
        self.next_at = match self.stagger {
            Some(stagger) => now + stagger,
            None => Instant::MAX,
        };
        Some(index)
    }

    /// An attempt in flight ended (it failed, timed out or was refused): the next may start at
    /// once (RFC 8305 §5: a failed attempt does not wait out the delay).
    pub(super) fn ended(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.next_at = self.next_at.min(now);
    }

    /// Whether every candidate was started and none is in flight.
    pub(super) fn exhausted(&self) -> bool {
        self.started >= self.total && self.in_flight == 0
    }

    /// How many attempts are in flight.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// Access-point candidates over `ips` × `ports`, without duplicates, at most `max`.
///
/// Without racing: address-major (every port of the first address, then the second...), the
/// seed-era order. Racing: address `i` of round `r` gets port `(i + r) mod ports`, so that
/// consecutive attempts change both the address and the port: with two dead hosts the third
/// attempt already reaches a live one; with a blocked port the second attempt already uses
/// another.
pub(super) fn ap_order(ips: &[IpAddr], ports: &[u16], racing: bool, max: usize) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut push = |c: SocketAddr| {
        if out.len() < max && !out.contains(&c) {
            out.push(c);
        }
    };
    if racing && !ports.is_empty() {
        for round in 0..ports.len() {
            for (i, ip) in ips.iter().enumerate() {
                // Always `Some`: the index is taken modulo a non-zero length.
                if let Some(&port) = ports.get((i + round) % ports.len()) {
                    push(SocketAddr::new(*ip, port));
                }
            }
        }
    } else {
        for ip in ips {
            for port in ports {
                push(SocketAddr::new(*ip, *port));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::config::RaceConfig;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn racing(stagger_ms: u64, max: usize) -> ClientConfig {
        ClientConfig {
            race: Some(RaceConfig {
                stagger: ms(stagger_ms),
                max_in_flight: max,
            }),
            ..ClientConfig::default()
        }
    }

    /// Starts every attempt due at `now`; their indexes.
    fn starts(s: &mut Stagger, now: Instant) -> Vec<usize> {
        std::iter::from_fn(|| s.start_due(now)).collect()
    }

    #[test]
    fn attempts_start_one_stagger_apart() {
        let mut s = Stagger::new(5, &racing(250, 8), at(0));
        assert_eq!(starts(&mut s, at(0)), [0]);
        assert_eq!(s.next_start(), Some(at(250)));
        assert_eq!(starts(&mut s, at(249)), Vec::<usize>::new());
        assert_eq!(starts(&mut s, at(250)), [1]);
        // A late call starts one, not a burst: the next is a stagger after it.
        assert_eq!(starts(&mut s, at(900)), [2]);
        assert_eq!(s.next_start(), Some(at(1150)));
        assert_eq!(s.in_flight(), 3);
    }

    #[test]
    fn a_failure_starts_the_next_at_once() {
        let mut s = Stagger::new(3, &racing(250, 8), at(0));
        starts(&mut s, at(0));
        s.ended(at(30));
        assert_eq!(s.next_start(), Some(at(30)));
        assert_eq!(starts(&mut s, at(30)), [1]);
        assert_eq!(s.next_start(), Some(at(280)));
    }

    #[test]
    fn concurrency_is_bounded_and_a_slot_frees_on_an_end() {
        let mut s = Stagger::new(10, &racing(100, 2), at(0));
        starts(&mut s, at(0));
        starts(&mut s, at(100));
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.next_start(), None, "no room in flight");
        assert_eq!(starts(&mut s, at(500)), Vec::<usize>::new());
        s.ended(at(600));
        assert_eq!(starts(&mut s, at(600)), [2]);
        assert_eq!(s.next_start(), None);
    }

    #[test]
    fn exhausted_once_every_candidate_started_and_ended() {
        let mut s = Stagger::new(2, &racing(10, 4), at(0));
        assert!(!s.exhausted());
        starts(&mut s, at(0));
        starts(&mut s, at(10));
        assert_eq!(s.next_start(), None);
        assert!(!s.exhausted());
        s.ended(at(20));
        s.ended(at(20));
        assert!(s.exhausted());
        // More ends than starts do not underflow.
        s.ended(at(30));
        assert!(s.exhausted());
    }

    #[test]
    fn without_racing_the_next_starts_only_when_the_previous_ends() {
        let mut s = Stagger::new(3, &ClientConfig::default(), at(0));
        assert_eq!(starts(&mut s, at(0)), [0]);
        assert_eq!(s.next_start(), None);
        assert_eq!(starts(&mut s, at(1_000_000)), Vec::<usize>::new());
        s.ended(at(1_000));
        assert_eq!(starts(&mut s, at(1_000)), [1]);
        assert_eq!(s.next_start(), None);
    }

    #[test]
    fn a_zero_stagger_and_zero_concurrency_are_clamped() {
        let mut s = Stagger::new(3, &racing(0, 0), at(0));
        assert_eq!(starts(&mut s, at(0)), [0]);
        assert_eq!(s.next_start(), None, "one in flight at most");
        s.ended(at(0));
        assert_eq!(starts(&mut s, at(0)), [1]);
        let mut s = Stagger::new(3, &racing(0, 3), at(0));
        assert_eq!(starts(&mut s, at(0)), [0]);
        assert_eq!(s.next_start(), Some(at(0) + MIN_TIMER));
    }

    fn ips(n: u8) -> Vec<IpAddr> {
        (1..=n).map(|i| IpAddr::from([10, 0, 0, i])).collect()
    }

    #[test]
    fn sequential_order_is_address_major() {
        let order = ap_order(&ips(2), &[1080, 8000], false, 256);
        let text: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "10.0.0.1:1080",
                "10.0.0.1:8000",
                "10.0.0.2:1080",
                "10.0.0.2:8000"
            ]
        );
    }

    #[test]
    fn racing_order_changes_address_and_port_each_step() {
        let ports = [1080, 8000, 25000, 9700];
        let order = ap_order(&ips(4), &ports, true, 256);
        assert_eq!(order.len(), 16, "every pair once");
        let text: Vec<String> = order.iter().take(6).map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "10.0.0.1:1080",
                "10.0.0.2:8000",
                "10.0.0.3:25000",
                "10.0.0.4:9700",
                "10.0.0.1:8000",
                "10.0.0.2:25000"
            ]
        );
        // Two dead hosts: the third attempt reaches a live one. A blocked port (1080): the
        // second attempt uses another.
        assert_eq!(order[2].ip(), ips(4)[2]);
        assert_ne!(order[1].port(), 1080);
        // Every pair of the grid is there.
        for ip in ips(4) {
            for port in ports {
                assert!(order.contains(&SocketAddr::new(ip, port)));
            }
        }
    }

    #[test]
    fn orders_are_bounded_and_without_duplicates() {
        let mut doubled = ips(3);
        doubled.extend(ips(3));
        let order = ap_order(&doubled, &[1, 2, 2], true, 256);
        assert_eq!(order.len(), 6);
        assert_eq!(ap_order(&ips(100), &[1, 2, 3, 4], true, 256).len(), 256);
        assert_eq!(ap_order(&ips(1), &[9700], true, 256).len(), 1);
        assert!(ap_order(&ips(3), &[], true, 256).is_empty());
    }
}
