//! Jittered exponential backoff.

use std::time::Duration;

use crate::entropy::Entropy;

use super::config::MIN_TIMER;

/// The delay before the retry that follows the `failures`-th consecutive failure (0-based):
/// `initial * 2^failures`, capped at `max`, then multiplied by a uniform draw from
/// `[1 - jitter, 1 + jitter]` (`jitter_percent` / 100, at most 1), and at least one millisecond.
///
/// Computed in whole microseconds, so it is exact and deterministic for a given entropy stream.
pub(crate) fn delay(
    initial: Duration,
    max: Duration,
    jitter_percent: u8,
    failures: u32,
    entropy: &mut Entropy,
) -> Duration {
    let base = nominal(initial, max, failures);
    let base_us = u64::try_from(base.as_micros()).unwrap_or(u64::MAX);
    let jitter = u64::from(jitter_percent.min(100));
    // factor in percent-hundredths: 10_000 = 1.0; uniform in [10_000 - 100j, 10_000 + 100j].
    let spread = jitter * 100;
    let factor = 10_000 - spread + entropy.next_below(2 * spread + 1);
    let us = u128::from(base_us) * u128::from(factor) / 10_000;
    Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX)).max(MIN_TIMER)
}

/// `initial * 2^failures` capped at `max` (before jitter).
pub(crate) fn nominal(initial: Duration, max: Duration, failures: u32) -> Duration {
    let mut d = initial;
    for _ in 0..failures {
        if d >= max || d.is_zero() {
            break;
        }
        d = d.saturating_mul(2);
    }
    d.min(max)
}

/// The bounds [`delay`] stays within for `failures`: `(low, high)` inclusive.
#[cfg(test)]
pub(crate) fn bounds(
    initial: Duration,
    max: Duration,
    jitter_percent: u8,
    failures: u32,
) -> (Duration, Duration) {
    let base = nominal(initial, max, failures);
    let j = u32::from(jitter_percent.min(100));
    let low = (base * (100 - j) / 100).max(MIN_TIMER);
    let high = (base * (100 + j) / 100).max(MIN_TIMER);
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn grows_then_caps() {
        let (i, m) = (MS(250), MS(4_000));
        let got: Vec<_> = (0..8).map(|n| nominal(i, m, n)).collect();
        assert_eq!(
            got,
            [250, 500, 1_000, 2_000, 4_000, 4_000, 4_000, 4_000].map(MS)
        );
        assert_eq!(nominal(i, m, u32::MAX), m);
        assert_eq!(nominal(Duration::MAX, Duration::MAX, 40), Duration::MAX);
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let mut e = Entropy::from_u64(3);
        for n in 0..10 {
            let (lo, hi) = bounds(MS(250), MS(4_000), 50, n);
            let draws: Vec<_> = (0..50)
                .map(|_| delay(MS(250), MS(4_000), 50, n, &mut e))
                .collect();
            assert!(draws.iter().all(|d| lo <= *d && *d <= hi), "{n}: {draws:?}");
            assert!(draws.iter().any(|d| *d != draws[0]));
        }
    }

    #[test]
    fn no_jitter_is_exact_and_zero_is_clamped() {
        let mut e = Entropy::from_u64(1);
        assert_eq!(delay(MS(100), MS(1_000), 0, 2, &mut e), MS(400));
        assert_eq!(delay(Duration::ZERO, MS(1_000), 50, 2, &mut e), MIN_TIMER);
        let d = delay(MS(100), MS(1_000), 255, 0, &mut e);
        assert!(d <= MS(200));
    }
}
