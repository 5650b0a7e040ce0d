//! The statistics of a load run, as pure functions of what was sent and received: loss,
//! duplicates and reordering of a numbered stream, round-trip-time samples in bounded memory,
//! percentiles, and the RFC 3550 interarrival jitter.
//!
//! Definitions (the tests pin each on fixed inputs):
//!
//! - **lost** = sent − distinct received (a late packet is not lost);
//! - **duplicated** = arrivals of a sequence number already received;
//! - **reordered** = arrivals whose sequence number is below the highest one received before
//!   them on the same flow (RFC 4737's "reordered" packet), duplicates excluded;
//! - **percentile p** = the nearest-rank value: the smallest sample such that at least p % of
//!   the samples are at or below it;
//! - **jitter** = RFC 3550 §6.4.1's interarrival jitter `J += (|D| − J) / 16`, where `D` is the
//!   change of transit time between consecutive arrivals of a flow. On a round trip the sender
//!   stamps and reads the same clock, so the transit time is the round-trip time itself and no
//!   clock offset enters: `D = rtt(j) − rtt(i)`.

use serde::Serialize;

/// Tracks one numbered stream: which sequence numbers arrived, in what order.
#[derive(Clone, Debug)]
pub struct SeqTracker {
    /// One bit per sequence number below `capacity`.
    seen: Vec<u64>,
    capacity: u32,
    highest: Option<u32>,
    /// Distinct sequence numbers received.
    pub received: u64,
    /// Arrivals of a number already received.
    pub duplicated: u64,
    /// Arrivals below the highest number seen before them (duplicates excluded).
    pub reordered: u64,
    /// Arrivals at or beyond `capacity` (never sent by a well-behaved sender).
    pub out_of_range: u64,
}

impl SeqTracker {
    /// A tracker for sequence numbers `0..capacity` (memory: `capacity / 8` bytes).
    pub fn new(capacity: u32) -> Self {
        SeqTracker {
            seen: vec![0; (capacity as usize).div_ceil(64)],
            capacity,
            highest: None,
            received: 0,
            duplicated: 0,
            reordered: 0,
            out_of_range: 0,
        }
    }

    /// Records the arrival of `seq`.
    pub fn record(&mut self, seq: u32) {
        if seq >= self.capacity {
            self.out_of_range += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let Some(slot) = self.seen.get_mut(word) else {
            self.out_of_range += 1;
            return;
        };
        if *slot & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        *slot |= 1 << bit;
        self.received += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }

    /// How many of the first `sent` numbers never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.received)
    }
}

/// Samples in bounded memory: all of them up to `cap`, then every second one of those kept and
/// of those to come, then every fourth, and so on (a deterministic decimation, so percentiles
/// stay representative of the whole run).
#[derive(Clone, Debug)]
pub struct Samples {
    values: Vec<u32>,
    cap: usize,
    stride: u64,
    offered: u64,
    max: u32,
}

impl Samples {
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
        if self.values.len() == self.cap {
            let mut keep = 0;
            for i in (0..self.values.len()).step_by(2) {
                self.values[keep] = self.values[i];
                keep += 1;
            }
            self.values.truncate(keep);
            self.stride *= 2;
            if (self.offered - 1) % self.stride != 0 {
                return;
            }
        }
        self.values.push(value);
    }

    /// Adds every sample of `other` (each as one offer).
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

    /// The percentiles of what was offered (the exact maximum, even after decimation).
    pub fn summary(&self) -> Option<Percentiles> {
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        Some(Percentiles {
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: self.max,
        })
    }
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

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending); `None` when it
/// is empty or `p` is out of range.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// RFC 3550 interarrival jitter of one flow, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Jitter {
    last_transit_us: Option<i64>,
    /// The running estimate, in microseconds × 16 (RFC 3550 A.8's integer form).
    scaled: i64,
}

impl Jitter {
    /// Records one arrival whose transit time (here: round-trip time) was `transit_us`;
    /// returns the estimate after it.
    pub fn record(&mut self, transit_us: u32) -> u32 {
        let transit = i64::from(transit_us);
        if let Some(last) = self.last_transit_us {
            let d = (transit - last).abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.scaled += d - ((self.scaled + 8) >> 4);
        }
        self.last_transit_us = Some(transit);
        self.estimate()
    }

    /// The current estimate, in microseconds.
    pub fn estimate(&self) -> u32 {
        u32::try_from(self.scaled >> 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_duplicates_and_reordering_on_a_fixed_stream() {
        let mut t = SeqTracker::new(100);
        // 0 1 3 2 2 5 4 9 ; sent 0..10: 6, 7, 8 lost.
        for seq in [0, 1, 3, 2, 2, 5, 4, 9] {
            t.record(seq);
        }
        assert_eq!(t.received, 7);
        assert_eq!(t.duplicated, 1);
        // 2 arrived after 3, 4 after 5.
        assert_eq!(t.reordered, 2);
        assert_eq!(t.lost(10), 3);
        t.record(100);
        assert_eq!(t.out_of_range, 1);
        assert_eq!(t.received, 7);
    }

    #[test]
    fn an_in_order_stream_has_no_reordering() {
        let mut t = SeqTracker::new(1000);
        for seq in 0..1000 {
            t.record(seq);
        }
        assert_eq!((t.received, t.reordered, t.duplicated), (1000, 0, 0));
        assert_eq!(t.lost(1000), 0);
        assert_eq!(t.lost(1200), 200);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 90.0), Some(90));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1000];
        assert_eq!(percentile(&ten, 50.0), Some(5));
        assert_eq!(percentile(&ten, 99.0), Some(1000));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&sorted, 0.0), None);
    }

    #[test]
    fn samples_stay_bounded_and_keep_the_exact_maximum() {
        let mut s = Samples::new(64);
        for v in 0..10_000u32 {
            s.push(v);
        }
        assert_eq!(s.count(), 10_000);
        assert!(s.values.len() <= 64, "{}", s.values.len());
        let p = s.summary().unwrap();
        assert_eq!(p.max, 9_999);
        // Uniform input: the decimated median stays near the true one.
        assert!((4_000..6_000).contains(&p.p50), "{p:?}");
        assert!(p.p90 > 8_000, "{p:?}");
        assert_eq!(Samples::new(8).summary(), None);
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
        // A constant transit time has no jitter.
        for _ in 0..10 {
            assert_eq!(j.record(1_000), 0);
        }
        // One step of 160 us: J = 160 / 16 = 10.
        assert_eq!(j.record(1_160), 10);
        // Back down: |D| = 160, J = 10 + (160 - 10) / 16 = 19 (rounded as A.8 does).
        assert_eq!(j.record(1_000), 19);
        // Alternating by 160 converges to 160.
        let mut k = Jitter::default();
        let mut last = 0;
        for i in 0..500 {
            last = k.record(if i % 2 == 0 { 1_000 } else { 1_160 });
        }
        assert!((150..=160).contains(&last), "{last}");
    }
}
