//! Admission: how many logins and commands the controller starts at once, apart from
//! the run's `concurrency`. A deadline starts only once its login or command is
//! admitted, so it measures the host, not the controller's own queue.
//!
//! Logins ([`Logins`]): a handshake holds its slot until it completes or fails. How many
//! run at once follows what the controller's CPU can carry, measured by the handshakes
//! themselves (AIMD, like TCP's congestion window): a handshake that took less than a
//! quarter of its deadline lets one more in per window, one that took more than
//! [`SLOW`] of its deadline (or missed it with the host's banner in hand: the
//! controller's side) cuts the bound by a third, once per window; never below 1, never
//! above [`MAX_LOGINS`]. OpenSSH's default post-quantum key exchange costs ~135 ms of
//! client CPU per login on a 2-core machine: with the handshakes of a 200-host wave
//! admitted at once, each would take ~14 s; held to the bound, each takes well under
//! its deadline, and the wave as a whole is no slower (the CPU was the limit anyway).
//!
//! Commands ([`Gate`]): a new session on a kept connection costs little; a command
//! holds its admission for at most [`ADMIT_HOLD`], so what still runs after that is
//! waiting on the host, and a host that hangs does not hold up every other command.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// How long one command counts against the command admission bound, at most.
pub const ADMIT_HOLD: Duration = Duration::from_secs(1);

/// Logins in their handshake at once to begin with, per core of this machine (at least 4).
pub const LOGINS_PER_CORE: usize = 4;
/// The most logins in their handshake at once, however fast they go.
pub const MAX_LOGINS: usize = 64;
/// A handshake that took more than this fraction of its deadline cuts the bound.
pub const SLOW: f64 = 0.4;
/// A handshake that took less than this fraction of its deadline may let one more in.
pub const FAST: f64 = 0.2;
/// Commands starting at once, per core of this machine (at least 8 in all).
pub const COMMANDS_PER_CORE: usize = 8;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn from_env(var: &str) -> Option<usize> {
    std::env::var(var).ok()?.parse().ok().filter(|n| *n > 0)
}

/// The first bound on logins in their handshake at once on this machine
/// (`WAVECTL_ADMIT_LOGINS` fixes it, for measurements).
pub fn login_start() -> (usize, bool) {
    match from_env("WAVECTL_ADMIT_LOGINS") {
        Some(n) => (n, true),
        None => ((LOGINS_PER_CORE * cores()).max(4), false),
    }
}

/// The bound on commands in their start at once on this machine
/// (`WAVECTL_ADMIT_COMMANDS` overrides it, for measurements).
pub fn command_bound() -> usize {
    from_env("WAVECTL_ADMIT_COMMANDS").unwrap_or((COMMANDS_PER_CORE * cores()).max(8))
}

/// The work did not end within its deadline, counted from its admission.
#[derive(Debug)]
pub struct Missed {
    pub after: Duration,
}

/// How a handshake ended, for the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Done (logged in, or refused by the host) after this long.
    Done(Duration),
    /// Missed its deadline on the controller's side (the host had answered).
    Slow,
    /// Failed or missed for a reason of the host's: says nothing of the controller.
    Host,
}

#[derive(Debug)]
struct State {
    /// The bound now (a float: the additive increase is 1/bound per handshake).
    bound: f64,
    in_flight: usize,
    waiting: usize,
    /// Bumped at every cut: a handshake admitted before the last cut cannot cut again.
    epoch: u64,
    fixed: bool,
}

/// Admission of logins: at most [`Logins::bound`] handshakes at once, the bound
/// following how long handshakes take (see the module's text).
pub struct Logins {
    state: Mutex<State>,
    freed: Notify,
}

/// One admitted handshake: give it back with [`Logins::end`] (dropping it counts as
/// [`Ended::Host`]).
pub struct Slot<'a> {
    gate: &'a Logins,
    epoch: u64,
    ended: bool,
}

impl Logins {
    /// Start at `start` handshakes at once; `fixed` keeps it there (measurements).
    pub fn new(start: usize, fixed: bool) -> Logins {
        Logins {
            state: Mutex::new(State {
                bound: start.clamp(1, MAX_LOGINS.max(start)) as f64,
                in_flight: 0,
                waiting: 0,
                epoch: 0,
                fixed,
            }),
            freed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many handshakes may run at once now.
    pub fn bound(&self) -> usize {
        (self.state().bound as usize).max(1)
    }

    /// Handshakes running now.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Logins waiting for admission now.
    pub fn waiting(&self) -> usize {
        self.state().waiting
    }

    /// Wait for a slot (not counted against any deadline).
    pub async fn admit(&self) -> Slot<'_> {
        let mut queued = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.state();
                if s.in_flight < (s.bound as usize).max(1) {
                    s.in_flight += 1;
                    if queued {
                        s.waiting -= 1;
                    }
                    return Slot {
                        gate: self,
                        epoch: s.epoch,
                        ended: false,
                    };
                }
                if !queued {
                    s.waiting += 1;
                    queued = true;
                }
            }
            freed.await;
        }
    }

    /// Wait until no login waits for admission (for a retry that must not compete with
    /// the controller's own queue), then for a slot.
    pub async fn admit_when_idle(&self) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.waiting() == 0 {
                return self.admit().await;
            }
            freed.await;
        }
    }

    /// Give a slot back, with how its handshake ended and its deadline.
    pub fn end(&self, mut slot: Slot<'_>, ended: Ended, deadline: Duration) {
        slot.ended = true;
        self.release(slot.epoch, ended, deadline);
    }

    fn release(&self, epoch: u64, ended: Ended, deadline: Duration) {
        {
            let mut s = self.state();
            s.in_flight = s.in_flight.saturating_sub(1);
            if !s.fixed {
                let took = match ended {
                    Ended::Done(d) => Some(d.as_secs_f64() / deadline.as_secs_f64().max(1e-3)),
                    Ended::Slow => Some(1.0),
                    Ended::Host => None,
                };
                match took {
                    // Once per window: a handshake admitted before the last cut
                    // does not cut again.
                    Some(r) if r > SLOW && epoch == s.epoch => {
                        s.bound = (s.bound * 2.0 / 3.0).max(1.0);
                        s.epoch += 1;
                    }
                    Some(r) if r > SLOW => {}
                    Some(r) if r < FAST => {
                        s.bound = (s.bound + 1.0 / s.bound).min(MAX_LOGINS as f64);
                    }
                    _ => {}
                }
            }
        }
        self.freed.notify_waiters();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.gate
                .release(self.epoch, Ended::Host, Duration::from_secs(1));
        }
    }
}

/// A gate for commands: at most `n` holders at once, each for at most [`ADMIT_HOLD`].
pub struct Gate {
    permits: Semaphore,
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

    /// A CPU shared by every handshake in flight: each needs `cost` of it, so `k` at once
    /// each take `k * cost` (one core).
    async fn handshake(gate: &Logins, cost: Duration, deadline: Duration, most: &AtomicUsize) {
        let slot = gate.admit().await;
        let k = gate.in_flight();
        most.fetch_max(k, Ordering::SeqCst);
        let took = cost * k as u32;
        tokio::time::sleep(took).await;
        gate.end(slot, Ended::Done(took), deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn the_login_bound_falls_when_handshakes_slow_down_and_never_below_one() {
        let gate = Logins::new(16, false);
        let most = AtomicUsize::new(0);
        let deadline = Duration::from_secs(5);
        // 200 logins of 400 ms CPU each: 16 at once would take 6.4 s each, past the deadline.
        let all = (0..200).map(|_| handshake(&gate, Duration::from_millis(400), deadline, &most));
        futures::future::join_all(all).await;
        let bound = gate.bound();
        // Where k handshakes at once take between FAST and SLOW of the deadline (2.5..5
        // here), give or take one cut.
        assert!(
            (2..=7).contains(&bound),
            "the bound fell from 16 to {bound}"
        );
        assert_eq!(gate.in_flight(), 0);
        assert_eq!(gate.waiting(), 0);
        // One handshake that takes longer than its deadline alone: the bound stays 1.
        let slow = Logins::new(1, false);
        for _ in 0..3 {
            let s = slow.admit().await;
            slow.end(s, Ended::Slow, deadline);
        }
        assert_eq!(slow.bound(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_login_bound_grows_while_handshakes_are_fast_and_host_failures_say_nothing() {
        let gate = Logins::new(4, false);
        let deadline = Duration::from_secs(5);
        for _ in 0..100 {
            let s = gate.admit().await;
            gate.end(s, Ended::Done(Duration::from_millis(50)), deadline);
        }
        let grown = gate.bound();
        assert!(grown > 4, "{grown}");
        for _ in 0..100 {
            let s = gate.admit().await;
            gate.end(s, Ended::Host, deadline);
        }
        assert_eq!(gate.bound(), grown);
        // A fixed bound (WAVECTL_ADMIT_LOGINS) stays where it is.
        let fixed = Logins::new(3, true);
        let s = fixed.admit().await;
        fixed.end(s, Ended::Slow, deadline);
        assert_eq!(fixed.bound(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_held_until_its_handshake_ends_and_a_retry_waits_for_an_empty_queue() {
        let gate = Arc::new(Logins::new(1, true));
        let long = gate.admit().await;
        let g = gate.clone();
        let second = tokio::spawn(async move {
            let s = g.admit().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            g.end(
                s,
                Ended::Done(Duration::from_secs(1)),
                Duration::from_secs(5),
            );
            Instant::now()
        });
        // Held for 10 s: the next one waits all that time (no ADMIT_HOLD for logins).
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(gate.waiting(), 1);
        let g = gate.clone();
        let retry = tokio::spawn(async move {
            let s = g.admit_when_idle().await;
            let at = Instant::now();
            drop(s);
            at
        });
        tokio::task::yield_now().await;
        let t0 = Instant::now();
        gate.end(
            long,
            Ended::Done(Duration::from_secs(10)),
            Duration::from_secs(5),
        );
        let second_done = second.await.unwrap();
        let retried = retry.await.unwrap();
        assert!(second_done >= t0 + Duration::from_secs(1));
        assert!(retried >= second_done, "the retry went after the queue");
    }
}
