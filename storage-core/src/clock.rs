//! Injectable time.
//!
//! Every time-dependent behaviour (TTL, visibility timeouts, delays,
//! retention, dedup windows) reads the store's [`Clock`]. Production code
//! uses [`SystemClock`]; tests use [`ManualClock`] and move time with
//! [`ManualClock::advance`] instead of sleeping.

use std::fmt;
use std::ops::{Add, Sub};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch, by some [`Clock`].
///
/// Millisecond resolution is what every backend can store exactly (SQLite
/// integers, Redis script arguments, object metadata).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration in whole milliseconds, saturating (durations beyond 584
/// million years are clamped).
pub fn duration_millis(d: Duration) -> u64 {
    // In u64 arithmetic: `as_millis` goes through u128, and this runs on
    // every clock read and deadline.
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, earlier: Timestamp) -> Duration {
        self.saturating_since(earlier)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of "now" for a store.
///
/// # Contract
/// - `now` is monotonic non-decreasing for one clock instance (a
///   [`ManualClock`] only moves when told to, and only forward).
/// - `advanced` resolves after the clock jumps forward by a call other
///   than the passage of real time (a manual `set` / `advance`). A real
///   clock never resolves it. Long-polling receives use it so a test that
///   advances a manual clock past a delay wakes a waiting consumer.
///
/// # Example
///
/// A store reads time only through its clock, so a test moves time by hand:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use storage_core::{Clock, ManualClock, SharedClock, SystemClock};
/// let manual = ManualClock::default();
/// let clock: SharedClock = Arc::new(manual.clone());
/// let before = clock.now();
/// manual.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now() - before, Duration::from_millis(1500));
/// // The real clock is what stores use by default.
/// assert!(SystemClock.now().as_millis() > 0);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Resolves when the clock is moved by hand; never for a real clock.
    fn advanced(&self) -> BoxFuture<'static, ()> {
        Box::pin(futures::future::pending())
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(duration_millis(since))
    }
}

/// A clock that moves only when told to; for tests.
///
/// ```
/// use std::time::Duration;
/// use storage_core::{Clock, ManualClock, Timestamp};
/// let clock = ManualClock::new(Timestamp::from_millis(1_000));
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), Timestamp::from_millis(31_000));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    time: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            time: Arc::new(watch::Sender::new(start)),
        }
    }

    /// A clock starting at a fixed, realistic instant (2026-01-01T00:00Z),
    /// so tests are reproducible.
    pub fn at_fixed_start() -> Self {
        ManualClock::new(Timestamp::from_millis(1_767_225_600_000))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.time.send_modify(|t| *t = t.saturating_add(d));
    }

    /// Sets the clock to `t`; a `t` earlier than now is ignored, because
    /// clocks never run backwards.
    pub fn set(&self, t: Timestamp) {
        self.time.send_modify(|cur| {
            if t > *cur {
                *cur = t;
            }
        });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::at_fixed_start()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.time.borrow()
    }

    fn advanced(&self) -> BoxFuture<'static, ()> {
        let mut rx = self.time.subscribe();
        rx.mark_unchanged();
        Box::pin(async move {
            // An error means the clock was dropped: it will never move again.
            if rx.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole milliseconds, truncated, saturating at `u64::MAX` exactly
    /// where the u128 computation stops fitting.
    #[test]
    fn duration_millis_truncates_and_saturates() {
        let wide = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_micros(1_500),
            Duration::new(1_765_000_000, 999_999_999),
            Duration::new(u64::MAX / 1000, 615_999_999),
            Duration::new(u64::MAX / 1000, 616_000_000),
            Duration::new(u64::MAX / 1000 + 1, 0),
            Duration::MAX,
        ] {
            assert_eq!(duration_millis(d), wide(d), "{d:?}");
        }
    }
}
