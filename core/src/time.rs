//! Time for the sans-IO machines: two clocks, both inputs.
//!
//! Nothing in `core` reads a clock. Every machine takes `now` as an argument, expressed as an
//! [`Instant`]: a count of microseconds since an epoch chosen by the driver, monotonic, for
//! timers and rates (the simulation's virtual clock; a real driver's monotonic clock).
//!
//! Tickets are the one thing that crosses hosts: the access point writes an expiry that every
//! relay must read the same way. They carry wall-clock time, a [`UnixTime`] (milliseconds since
//! the Unix epoch), which the driver reads beside `now` and hands in
//! ([`ApInput::WallClock`](crate::ap::ApInput::WallClock),
//! [`RelayInput::WallClock`](crate::relay::RelayInput::WallClock)): the real driver from the
//! system's wall clock, the simulation from its virtual clock plus a fixed epoch.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point on the driver's timeline, in microseconds since the driver's epoch.
///
/// ```
/// use cloudproxy_core::time::Instant;
/// use std::time::Duration;
///
/// let t0 = Instant::from_millis(1_000);
/// let t1 = t0 + Duration::from_millis(250);
/// assert_eq!(t1.saturating_duration_since(t0), Duration::from_millis(250));
/// assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The driver's epoch.
    pub const EPOCH: Instant = Instant { micros: 0 };
    /// The latest representable instant; adding to it saturates here.
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// The instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Whole milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// The time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        let add = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant {
            micros: self.micros.saturating_add(add),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

/// A wall-clock reading: milliseconds since the Unix epoch (1970-01-01T00:00:00Z), the
/// timeline of tickets, shared by the access point and the relays of one deployment.
///
/// Core never reads it: the driver does and passes it in. Arithmetic saturates.
///
/// ```
/// use cloudproxy_core::time::UnixTime;
/// use std::time::Duration;
///
/// let issued = UnixTime::from_millis(1_764_547_200_000); // 2025-12-01T00:00:00Z
/// let expires = issued + Duration::from_secs(120);
/// assert_eq!(expires.as_millis(), 1_764_547_320_000);
/// assert_eq!(expires.saturating_duration_since(issued), Duration::from_secs(120));
/// assert_eq!(issued.saturating_duration_since(expires), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    millis: u64,
}

impl UnixTime {
    /// The Unix epoch itself.
    pub const EPOCH: UnixTime = UnixTime { millis: 0 };
    /// The latest representable time; adding to it saturates here.
    pub const MAX: UnixTime = UnixTime { millis: u64::MAX };

    /// The time `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        UnixTime { millis }
    }

    /// The time `since_epoch` after the Unix epoch (what
    /// `SystemTime::now().duration_since(UNIX_EPOCH)` gives a driver), truncated to whole
    /// milliseconds, saturating.
    pub fn from_duration_since_epoch(since_epoch: Duration) -> Self {
        UnixTime {
            millis: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// The time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: UnixTime) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }

    /// `self + d` (whole milliseconds of `d`), saturating at [`UnixTime::MAX`].
    pub fn saturating_add(self, d: Duration) -> UnixTime {
        let add = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        UnixTime {
            millis: self.millis.saturating_add(add),
        }
    }
}

impl Add<Duration> for UnixTime {
    type Output = UnixTime;

    fn add(self, d: Duration) -> UnixTime {
        self.saturating_add(d)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.millis / 1_000, self.millis % 1_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}
