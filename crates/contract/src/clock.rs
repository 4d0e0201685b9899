//! The one source of time, injected so tests and simulations can drive
//! it: the service's decisions, the harness's loop and pipeline and the
//! agents all read a [`Clock`]. Each reading names its unit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> u64;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        self.now_ns() / NANOS_PER_MS
    }

    /// Milliseconds on a clock that never steps back, from an arbitrary
    /// start: for measuring how long something took (a bound on wall
    /// time), never for dates. A simulated clock answers [`Clock::now_ms`].
    fn monotonic_ms(&self) -> u64 {
        self.now_ms()
    }
}

/// Nanoseconds in a millisecond.
pub const NANOS_PER_MS: u64 = 1_000_000;

/// The wall clock (and, for [`Clock::monotonic_ms`], the process's
/// monotonic clock).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
            })
    }

    fn monotonic_ms(&self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let elapsed = START.get_or_init(Instant::now).elapsed();
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests and simulations. It
/// keeps nanoseconds; the setters name their unit.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ns: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_ns` nanoseconds since the epoch.
    pub fn at_ns(start_ns: u64) -> ManualClock {
        ManualClock {
            now_ns: AtomicU64::new(start_ns),
        }
    }

    /// A clock reading `start_ms` milliseconds since the epoch.
    pub fn at_ms(start_ms: u64) -> ManualClock {
        ManualClock::at_ns(start_ms.saturating_mul(NANOS_PER_MS))
    }

    /// Sets the time (it may go backwards: every reader copes).
    pub fn set_ns(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::SeqCst);
    }

    /// Sets the time, in milliseconds since the epoch.
    pub fn set_ms(&self, now_ms: u64) {
        self.set_ns(now_ms.saturating_mul(NANOS_PER_MS));
    }

    /// Moves the time forward by `by_ns`; answers the new time.
    pub fn advance_ns(&self, by_ns: u64) -> u64 {
        self.now_ns.fetch_add(by_ns, Ordering::SeqCst) + by_ns
    }

    /// Moves the time forward by `by_ms`; answers the new time in
    /// milliseconds.
    pub fn advance_ms(&self, by_ms: u64) -> u64 {
        self.advance_ns(by_ms.saturating_mul(NANOS_PER_MS)) / NANOS_PER_MS
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_reads_in_every_unit() {
        let clock = ManualClock::at_ms(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_ns(), 1_000_000_000);
        assert_eq!(clock.advance_ms(5), 1_005);
        clock.advance_ns(999_999);
        assert_eq!(clock.now_ms(), 1_005);
        assert_eq!(clock.monotonic_ms(), 1_005);
        clock.set_ns(7);
        assert_eq!(clock.now_ns(), 7);
        clock.set_ms(2);
        assert_eq!(clock.now_ns(), 2_000_000);
    }

    #[test]
    fn the_system_clock_is_after_2020_and_monotonic_never_steps_back() {
        let clock = SystemClock;
        assert!(clock.now_ms() > 1_577_836_800_000);
        let first = clock.monotonic_ms();
        assert!(clock.monotonic_ms() >= first);
    }
}
