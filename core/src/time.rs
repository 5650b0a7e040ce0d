//! Time for the sans-IO machines: two clocks, both inputs.
//!
//! Nothing in `core` reads a clock. Every machine takes `now` as an argument, expressed as an
//! [`Instant`]: a count of microseconds since an epoch chosen by the driver, monotonic, for
//! timers and rates (the simulation's virtual clock; a real driver's monotonic clock).
//!
//! Tickets are the one thing that crosses hosts: the access point writes an expiry that every
//! relay must read the same way. They carry wall-clock time, a [`UnixTime`] (milliseconds since
//! the Unix epoch). The two timelines are unrelated: a relay whose monotonic clock started at
//! zero this morning still judges a ticket by the Unix time it was issued in.
//!
//! ## The wall clock is an input, always
//!
//! A machine that issues or checks tickets ([`AccessPoint`](crate::ap::AccessPoint),
//! [`Relay`](crate::relay::Relay)) cannot be built without the wall clock: its constructor
//! takes [`Clocks`], both clocks read at one moment. From that reading the machine knows Unix
//! time at every later `now` (the reading's Unix time plus the monotonic time since it, see
//! [`Clocks::unix_at`]); a fresh reading,
//! [`ApInput::WallClock`](crate::ap::ApInput::WallClock) or
//! [`RelayInput::WallClock`](crate::relay::RelayInput::WallClock), replaces it at its `now`
//! (a driver that follows the system's wall clock, steps included, gives one before every
//! input that may carry a ticket). There is no fallback that reads `now` as Unix time.
//!
//! Each driver reads both from its own clocks (`Net::now` and `Net::unix_now` in the node
//! crate): the real driver from the system's monotonic and wall clocks, the simulation from
//! its virtual clock and that clock plus a fixed epoch, the pair harness and the fuzz targets
//! from their virtual clock and a fixed epoch years away from it.

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

/// Both clocks read at one moment: the wall clock read `unix` at the instant `at` of the
/// driver's monotonic timeline. What a machine that needs Unix time is built with (see the
/// [module docs](self)).
///
/// ```
/// use cloudproxy_core::time::{Clocks, Instant, UnixTime};
/// use std::time::Duration;
///
/// // A host whose monotonic clock started at zero, on 2025-12-01T00:00:00Z.
/// let clocks = Clocks::new(Instant::EPOCH, UnixTime::from_millis(1_764_547_200_000));
/// let later = Instant::EPOCH + Duration::from_secs(90);
/// assert_eq!(clocks.unix_at(later), UnixTime::from_millis(1_764_547_290_000));
/// // Before the reading (a `now` that went backwards): the reading itself.
/// let before = Clocks::new(later, UnixTime::from_millis(1_764_547_290_000));
/// assert_eq!(before.unix_at(Instant::EPOCH), UnixTime::from_millis(1_764_547_290_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clocks {
    /// The monotonic instant of the reading.
    pub at: Instant,
    /// The wall clock at that instant.
    pub unix: UnixTime,
}

impl Clocks {
    /// The wall clock read `unix` at the monotonic instant `at`.
    pub const fn new(at: Instant, unix: UnixTime) -> Self {
        Clocks { at, unix }
    }

    /// Unix time at the monotonic instant `now`: the reading's Unix time plus the monotonic
    /// time elapsed since it (none when `now` is before the reading).
    pub fn unix_at(self, now: Instant) -> UnixTime {
        self.unix + now.saturating_duration_since(self.at)
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
