//! Admission: how many logins and commands the controller starts at once, apart from
//! the run's `concurrency`. A deadline starts only once its login or command is
//! admitted, so it measures the host, not the controller's own queue.
//!
//! A login (or command) holds its admission for at most [`ADMIT_HOLD`]: the busy part of
//! a login (our `ssh` and, on a lab host, its `sshd`) takes far less than that, so what
//! still runs after it is waiting on the host, and a host that hangs does not hold up
//! every other login behind it. The deadline keeps running either way.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Semaphore;

/// How long one login or command counts against the admission bound, at most.
pub const ADMIT_HOLD: Duration = Duration::from_secs(1);

/// Logins in their handshake at once, per core of this machine (at least 4 in all).
pub const LOGINS_PER_CORE: usize = 4;
/// Commands starting at once, per core of this machine (at least 8 in all).
pub const COMMANDS_PER_CORE: usize = 8;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn from_env(var: &str) -> Option<usize> {
    std::env::var(var).ok()?.parse().ok().filter(|n| *n > 0)
}

/// The bound on logins in their handshake at once on this machine
/// (`WAVECTL_ADMIT_LOGINS` overrides it, for measurements).
pub fn login_bound() -> usize {
    from_env("WAVECTL_ADMIT_LOGINS").unwrap_or((LOGINS_PER_CORE * cores()).max(4))
}

/// The bound on commands in their start at once on this machine
/// (`WAVECTL_ADMIT_COMMANDS` overrides it, for measurements).
pub fn command_bound() -> usize {
    from_env("WAVECTL_ADMIT_COMMANDS").unwrap_or((COMMANDS_PER_CORE * cores()).max(8))
}

/// A gate: at most `n` holders at once, each for at most [`ADMIT_HOLD`].
pub struct Gate {
    permits: Semaphore,
}

/// The work did not end within its deadline, counted from its admission.
pub struct Missed {
    pub after: Duration,
}

impl Gate {
    pub fn new(n: usize) -> Gate {
        Gate {
            permits: Semaphore::new(n.max(1)),
        }
    }

    /// Wait for admission (not counted), then run `work` within `deadline` from then.
    pub async fn run<F: Future>(&self, deadline: Duration, work: F) -> Result<F::Output, Missed> {
        let permit = self.permits.acquire().await.ok();
        let started = Instant::now();
        let timer = tokio::time::sleep(deadline);
        tokio::pin!(work, timer);
        tokio::select! {
            biased;
            r = &mut work => return Ok(r),
            _ = &mut timer => return Err(Missed { after: started.elapsed() }),
            _ = tokio::time::sleep(ADMIT_HOLD) => {}
        }
        // Past its busy part: the rest is the host's, and counts against nobody else.
        drop(permit);
        tokio::select! {
            biased;
            r = &mut work => Ok(r),
            _ = &mut timer => Err(Missed { after: started.elapsed() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_starts_at_admission_not_in_the_queue() {
        let gate = Arc::new(Gate::new(1));
        // The first holds the gate for 900 ms (under ADMIT_HOLD); the second, with a
        // 500 ms deadline of its own, waits for it and still makes its deadline.
        let g = gate.clone();
        let first = tokio::spawn(async move {
            g.run(
                Duration::from_secs(5),
                tokio::time::sleep(Duration::from_millis(900)),
            )
            .await
            .is_ok()
        });
        tokio::task::yield_now().await;
        let second = gate
            .run(
                Duration::from_millis(500),
                tokio::time::sleep(Duration::from_millis(100)),
            )
            .await;
        assert!(second.is_ok());
        assert!(first.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_past_admit_hold_lets_the_next_in_and_keeps_its_deadline() {
        let gate = Arc::new(Gate::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let work = |inside: Arc<AtomicUsize>, most: Arc<AtomicUsize>, d: Duration| async move {
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(d).await;
            inside.fetch_sub(1, Ordering::SeqCst);
        };
        // A hung one: 10 s of work, a 3 s deadline.
        let g = gate.clone();
        let (i, m) = (inside.clone(), most.clone());
        let hung = tokio::spawn(async move {
            g.run(Duration::from_secs(3), work(i, m, Duration::from_secs(10)))
                .await
                .map_err(|e| e.after)
        });
        tokio::task::yield_now().await;
        // Admitted once the hung one passed ADMIT_HOLD, long before its deadline.
        let r = gate
            .run(
                Duration::from_secs(1),
                work(inside.clone(), most.clone(), Duration::from_millis(10)),
            )
            .await;
        assert!(r.is_ok());
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let missed = hung.await.unwrap().unwrap_err();
        assert_eq!(missed, Duration::from_secs(3));
    }
}
