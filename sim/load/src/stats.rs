//! The statistics of a load run, as pure functions of what was sent and received: loss,
//! duplicates and reordering of a numbered stream here; round-trip-time samples in bounded
//! memory, percentiles and the RFC 3550 interarrival jitter from
//! [`cloudproxy_core::app::stats`], the one implementation `cloudproxy call`'s report and the
//! call benchmark use too.
//!
//! Definitions (the tests pin each on fixed inputs):
//!
//! - **lost** = sent − distinct received (a late packet is not lost);
//! - **duplicated** = arrivals of a sequence number already received;
//! - **reordered** = arrivals whose sequence number is below the highest one received before
//!   them on the same flow (RFC 4737's "reordered" packet), duplicates excluded;
//! - **percentile** and **jitter**: see [`cloudproxy_core::app::stats`]. On a round trip the
//!   sender stamps and reads the same clock, so the transit time is the round-trip time
//!   itself: `D = rtt(j) − rtt(i)`.

pub use cloudproxy_core::app::stats::{percentile, Jitter, Percentiles, Samples};

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
}
