//! The engine's clock: what time it is (Unix milliseconds, the records' `at`) and a wait
//! until a time. [`SystemClock`] is the wall clock; [`TestClock`] runs on tokio's time,
//! so a test that pauses it (`tokio::time::pause`, `advance`, or auto-advance) drives a
//! whole run's bakes and backoffs in no real time. Reads the system clock only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, and a wait until then. The engine and everything it calls in `exec/` read time
/// only through one (the transport keeps its own deadlines). Two kinds of time: the wall
/// clock's (what records carry and the machine's wake-ups name), and a monotonic one for
/// spans (a bake's rounds), which a wall clock set back cannot stretch.
pub trait Clock: Send + Sync {
    /// Unix milliseconds now.
    fn now_ms(&self) -> u64;

    /// A sleep that ends when [`now_ms`](Clock::now_ms) reaches `at` (at once if it has).
    fn sleep_until(&self, at: u64) -> tokio::time::Sleep;

    /// Monotonic now (tokio's: paused with it in tests).
    fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    /// A sleep until a monotonic `at` (at once if it has passed).
    fn sleep_until_instant(&self, at: tokio::time::Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(at)
    }

    /// A sleep of `d` from now.
    fn sleep(&self, d: Duration) -> tokio::time::Sleep {
        self.sleep_until_instant(self.instant() + d)
    }
}

/// The wall clock (what the hosts' leases are judged by, too).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_ms()
    }

    fn sleep_until(&self, at: u64) -> tokio::time::Sleep {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(wall_ms())))
    }
}

/// Unix milliseconds on the wall clock: for what is stamped outside a run's engine (the
/// audit log, a command's JSON lines).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A clock on tokio's time, starting at a Unix time of the test's choosing: paused, it
/// moves only when the test (or tokio's auto-advance, when every task waits) moves it.
#[derive(Debug, Clone, Copy)]
pub struct TestClock {
    start_ms: u64,
    start: tokio::time::Instant,
}

impl TestClock {
    /// Now is `start_ms`.
    pub fn starting_at(start_ms: u64) -> TestClock {
        TestClock {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(millis(self.instant() - self.start))
    }

    fn sleep_until(&self, at: u64) -> tokio::time::Sleep {
        let after = Duration::from_millis(at.saturating_sub(self.start_ms));
        tokio::time::sleep_until(self.start + after)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_test_clock_moves_only_with_tokio_time() {
        let c = TestClock::starting_at(1_000_000);
        assert_eq!(c.now_ms(), 1_000_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms(), 1_090_000);
        // Auto-advance: a sleep of an hour ends at once, an hour later by the clock.
        c.sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.now_ms(), 1_090_000 + 3_600_000);
        // A time already past does not wait.
        c.sleep_until(5).await;
        assert_eq!(c.now_ms(), 1_090_000 + 3_600_000);
    }
}
