//! Timing statistics as pure functions of timestamps: nearest-rank percentiles, samples in
//! bounded memory, and RFC 3550 interarrival jitter. One implementation for every report that
//! prints them: the application's ([`ClientReport`](super::ClientReport), behind
//! `cloudproxy call`), `cloudproxy load`'s, and the call benchmark's.
//!
//! Definitions (the tests pin each on fixed inputs worked out by hand):
//!
//! - **percentile p** = the nearest-rank value: the smallest sample such that at least p % of
//!   the samples are at or below it (rank ⌈p/100 · n⌉, counted from 1);
//! - **jitter** = RFC 3550 §6.4.1's interarrival jitter `J += (|D| − J) / 16`, kept as
//!   RFC 3550 A.8 does in integers scaled by 16, where `D` is the change of *relative transit
//!   time* between consecutive arrivals of one flow: `D(i, j) = (Rj − Ri) − (Sj − Si)`, with
//!   `R` the receiver's clock and `S` the sender's. The transit `R − S` may carry any constant
//!   offset between the two clocks (they need not agree): it cancels in `D`. On a round trip
//!   the sender stamps and reads one clock, and the transit is the round-trip time itself.
//!
//! ```
//! use cloudproxy_core::app::stats::{Jitter, Percentiles, Samples};
//!
//! let mut rtt = Samples::new(1_000);
//! for us in [900, 1_000, 1_100, 5_000] {
//!     rtt.push(us);
//! }
//! let p = rtt.summary().unwrap();
//! assert_eq!((p.p50, p.p90, p.p99, p.max), (1_000, 5_000, 5_000, 5_000));
//! assert_eq!(p.to_string(), "p50 1000 us  p90 5000 us  p99 5000 us  max 5000 us");
//!
//! // Transit 1,000 then 1,160 (offset of the clocks included): |D| = 160, J = 160 / 16.
//! let mut j = Jitter::default();
//! j.record(1_000);
//! assert_eq!(j.record(1_160), 10);
//! # let _ = Percentiles::of(&[1]);
//! ```

use std::fmt;

use serde::Serialize;

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending); `None` when it
/// is empty or `p` is out of range.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    // The cast saturates; the rank is clamped into 1..=len below.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// p50, p90, p99 and the maximum of a set of samples (microseconds, for times).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// Largest.
    pub max: u32,
}

impl Percentiles {
    /// The percentiles of `values` (any order); `None` when there are none.
    pub fn of(values: &[u32]) -> Option<Percentiles> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        Some(Percentiles {
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// `p50 A  p90 B  p99 C  max D`, each a duration in microseconds written as `us` below 10 ms
/// and as `ms` (one decimal) from there: the line `cloudproxy load` and `cloudproxy call`
/// print.
impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  max {}",
            Micros(self.p50),
            Micros(self.p90),
            Micros(self.p99),
            Micros(self.max)
        )
    }
}

/// A duration in microseconds, for people: `850 us`, `12.5 ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Micros(pub u32);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 10_000 {
            write!(f, "{:.1} ms", f64::from(self.0) / 1000.0)
        } else {
            write!(f, "{} us", self.0)
        }
    }
}

/// Samples in bounded memory: all of them up to `cap`, then every second one of those kept and
/// of those to come, then every fourth, and so on (a deterministic decimation, so percentiles
/// stay representative of the whole run). The maximum is kept exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Samples {
    values: Vec<u32>,
    cap: usize,
    stride: u64,
    offered: u64,
    max: u32,
}

impl Default for Samples {
    /// At most [`Samples::DEFAULT_CAP`] samples.
    fn default() -> Self {
        Samples::new(Samples::DEFAULT_CAP)
    }
}

impl Samples {
    /// The bound of [`Samples::default`]: 4,096 samples (16 KiB).
    pub const DEFAULT_CAP: usize = 4_096;

    /// Keeps at most `cap` samples (at least 2).
    pub fn new(cap: usize) -> Self {
        Samples {
            values: Vec::new(),
            cap: cap.max(2),
            stride: 1,
            offered: 0,
            max: 0,
        }
    }

    /// Offers one sample.
    pub fn push(&mut self, value: u32) {
        self.max = self.max.max(value);
        self.offered += 1;
        if (self.offered - 1) % self.stride != 0 {
            return;
        }
        if self.values.len() >= self.cap {
            self.values = self.values.iter().step_by(2).copied().collect();
            self.stride = self.stride.saturating_mul(2);
            if (self.offered - 1) % self.stride != 0 {
                return;
            }
        }
        self.values.push(value);
    }

    /// Adds every sample `other` kept (each as one offer), and its maximum.
    pub fn merge(&mut self, other: &Samples) {
        for v in &other.values {
            self.push(*v);
        }
        self.max = self.max.max(other.max);
    }

    /// How many samples were offered.
    pub fn count(&self) -> u64 {
        self.offered
    }

    /// How many samples are kept (at most the cap).
    pub fn kept(&self) -> usize {
        self.values.len()
    }

    /// The percentiles of what was offered (the exact maximum, even after decimation); `None`
    /// when nothing was.
    pub fn summary(&self) -> Option<Percentiles> {
        let p = Percentiles::of(&self.values)?;
        Some(Percentiles { max: self.max, ..p })
    }
}

/// RFC 3550 interarrival jitter of one flow, in the unit its transit times are given in
/// (microseconds for the reports, nanoseconds for the call benchmark).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jitter {
    last_transit: Option<i64>,
    /// The running estimate × 16 (RFC 3550 A.8's integer form).
    scaled: i64,
}

impl Jitter {
    /// Records one arrival whose relative transit time (receive instant minus the sender's
    /// stamp, any constant clock offset included; for a round trip, the round-trip time) was
    /// `transit`; returns the estimate after it.
    pub fn record(&mut self, transit: impl Into<i64>) -> u32 {
        let transit = transit.into();
        if let Some(last) = self.last_transit {
            let d = transit.saturating_sub(last).saturating_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.scaled = self
                .scaled
                .saturating_add(d)
                .saturating_sub((self.scaled + 8) >> 4);
        }
        self.last_transit = Some(transit);
        self.estimate()
    }

    /// The current estimate (0 before the second arrival).
    pub fn estimate(&self) -> u32 {
        u32::try_from(self.scaled >> 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 90.0), Some(90));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        // Ten samples: p50 is the 5th (rank ⌈5⌉), p90 the 9th, p99 the 10th (rank ⌈9.9⌉).
        let ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1000];
        assert_eq!(percentile(&ten, 50.0), Some(5));
        assert_eq!(percentile(&ten, 90.0), Some(9));
        assert_eq!(percentile(&ten, 99.0), Some(1000));
        // Four samples: p50 is rank 2, p90 rank ⌈3.6⌉ = 4.
        assert_eq!(percentile(&[10, 20, 30, 40], 50.0), Some(20));
        assert_eq!(percentile(&[10, 20, 30, 40], 90.0), Some(40));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&sorted, 0.0), None);
        assert_eq!(percentile(&sorted, 100.5), None);
        assert_eq!(percentile(&sorted, f64::NAN), None);
    }

    #[test]
    fn percentiles_of_unsorted_values() {
        // Sorted: 3 5 8 13 21; p50 rank ⌈2.5⌉ = 3 → 8; p90 rank ⌈4.5⌉ = 5 → 21.
        let p = Percentiles::of(&[21, 3, 13, 8, 5]).unwrap();
        assert_eq!(
            p,
            Percentiles {
                p50: 8,
                p90: 21,
                p99: 21,
                max: 21
            }
        );
        assert_eq!(Percentiles::of(&[]), None);
        assert_eq!(p.to_string(), "p50 8 us  p90 21 us  p99 21 us  max 21 us");
        assert_eq!(Micros(9_999).to_string(), "9999 us");
        assert_eq!(Micros(12_345).to_string(), "12.3 ms");
    }

    #[test]
    fn samples_stay_bounded_and_keep_the_exact_maximum() {
        let mut s = Samples::new(64);
        for v in 0..10_000u32 {
            s.push(v);
        }
        assert_eq!(s.count(), 10_000);
        assert!(s.kept() <= 64, "{}", s.kept());
        let p = s.summary().unwrap();
        assert_eq!(p.max, 9_999);
        // Uniform input: the decimated median stays near the true one.
        assert!((4_000..6_000).contains(&p.p50), "{p:?}");
        assert!(p.p90 > 8_000, "{p:?}");
        assert_eq!(Samples::new(8).summary(), None);
    }

    #[test]
    fn decimation_keeps_every_second_then_every_fourth() {
        let mut s = Samples::new(4);
        for v in 0..4 {
            s.push(v);
        }
        assert_eq!(s.values, [0, 1, 2, 3]);
        // Full: halve to 0 2 (stride 2); offer 4 is the 5th (index 4, even): kept.
        s.push(4);
        assert_eq!(s.values, [0, 2, 4]);
        s.push(5);
        s.push(6);
        assert_eq!(s.values, [0, 2, 4, 6]);
        // 7 (the 8th offer, index 7) is off the stride of 2; 8 finds the cap: halve to 0 4
        // (stride 4), and index 8 is on it.
        s.push(7);
        s.push(8);
        assert_eq!(s.values, [0, 4, 8]);
        assert_eq!((s.count(), s.summary().unwrap().max), (9, 8));
    }

    #[test]
    fn samples_merge() {
        let (mut a, mut b) = (Samples::new(100), Samples::new(100));
        for v in [5, 1, 3] {
            a.push(v);
        }
        for v in [2, 4] {
            b.push(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), 5);
        assert_eq!(
            a.summary(),
            Some(Percentiles {
                p50: 3,
                p90: 5,
                p99: 5,
                max: 5
            })
        );
    }

    #[test]
    fn rfc3550_jitter() {
        let mut j = Jitter::default();
        // A constant transit time has no jitter, whatever the clocks' offset.
        for _ in 0..10 {
            assert_eq!(j.record(-5_000_000), 0);
        }
        // One step of 160: J = 160 / 16 = 10 (scaled: 160).
        assert_eq!(j.record(-4_999_840), 10);
        // Back down: |D| = 160; scaled 160 + 160 - (160 + 8) / 16 = 310, J = 310 / 16 = 19
        // (19.375 in real numbers).
        assert_eq!(j.record(-5_000_000), 19);
        // Alternating by 160 converges to 160.
        let mut k = Jitter::default();
        let mut last = 0;
        for i in 0..500 {
            last = k.record(if i % 2 == 0 { 1_000 } else { 1_160 });
        }
        assert!((150..=160).contains(&last), "{last}");
        // One arrival: no estimate yet.
        assert_eq!(Jitter::default().record(7u32), 0);
    }
}
