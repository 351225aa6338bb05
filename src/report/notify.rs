//! `[notify]`: the hook run on the controller for each event of the listed kinds — the
//! event's JSON (the line `--json` prints) on its stdin, `WAVECTL_RUN`, `WAVECTL_ROLLOUT`
//! and `WAVECTL_EVENT` in its environment. A sink of the reporter: events go into a
//! bounded queue that a thread of its own drains, a few hooks at a time, each killed with
//! its whole process group after the timeout. A hook that fails or hangs is said (a
//! note) and never fails or holds the run; at the run's end the hooks in flight are
//! waited for, at most one timeout. Runs `/bin/sh -c COMMAND`; reads and writes nothing.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::child::{self, Ended};
use crate::rollout::verdict::Health;
use crate::spec::{EventKind, Notify};

use super::{Event, Notes, Sink};

/// Events waiting for a hook, at most; more are dropped (and said).
const QUEUE: usize = 64;
/// Hooks running at once, at most.
const IN_FLIGHT: usize = 4;

/// The kinds an event is of: its own, and for a run's end also `ended`.
pub fn kinds_of(event: &Event) -> Vec<EventKind> {
    match event {
        Event::RunStarted { .. } => vec![EventKind::Started],
        Event::WaveStarted { .. } => vec![EventKind::Wave],
        Event::Verdict { verdict, .. }
            if verdict.health != Health::Healthy && verdict.health != Health::Inconclusive =>
        {
            vec![EventKind::Unhealthy]
        }
        Event::RollbackStarted { .. } => vec![EventKind::RollingBack],
        Event::Gated { .. } => vec![EventKind::Gated],
        Event::Summary(s) => EventKind::of_status(&s.status)
            .into_iter()
            .chain([EventKind::Ended])
            .collect(),
        _ => Vec::new(),
    }
}

/// One event for the hook.
struct Job {
    kind: EventKind,
    json: String,
}

/// What the hooks of a run share with the thread that runs them.
struct Hooks {
    notify: Notify,
    run: String,
    rollout: String,
    notes: Notes,
    /// Once the run has ended: hooks not started by then are not started; those running
    /// are killed then.
    end_by: Mutex<Option<Instant>>,
}

/// The notification hook of one run.
pub struct Notifier {
    hooks: Arc<Hooks>,
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Events queued or with their hook running.
    pending: Arc<AtomicUsize>,
}

impl Notifier {
    pub fn new(notify: Notify, run: &str, rollout: &str, notes: Notes) -> Notifier {
        let hooks = Arc::new(Hooks {
            notify,
            run: run.to_string(),
            rollout: rollout.to_string(),
            notes,
            end_by: Mutex::new(None),
        });
        let (tx, rx) = sync_channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (hooks, pending) = (hooks.clone(), pending.clone());
            thread::spawn(move || drain(&hooks, rx, &pending))
        };
        Notifier {
            hooks,
            queue: Some(tx),
            thread: Some(thread),
            pending,
        }
    }
}

impl Sink for Notifier {
    fn event(&mut self, event: &Event, json: &serde_json::Value) {
        let Some(queue) = &self.queue else { return };
        for kind in kinds_of(event) {
            if !self.hooks.notify.events.contains(&kind) {
                continue;
            }
            let job = Job {
                kind,
                json: json.to_string(),
            };
            match queue.try_send(job) {
                Ok(()) => {
                    self.pending.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    self.hooks.notes.note(format!(
                        "notify: the `{}` event was not sent: {QUEUE} events are already waiting for the hook",
                        job.kind.name()
                    ));
                }
            }
        }
    }

    fn finish(&mut self) {
        let Some(queue) = self.queue.take() else {
            return;
        };
        let timeout = self.hooks.notify.timeout;
        *self.hooks.end_by.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + timeout);
        drop(queue);
        let waiting = self.pending.load(Ordering::Relaxed);
        if waiting > 0 {
            self.hooks.notes.note(format!(
                "notify: waiting for {} (at most {})",
                crate::report::count(waiting, "notification hook"),
                crate::units::duration(timeout)
            ));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Start a hook for each job, at most `IN_FLIGHT` at once, until the queue closes and
/// every hook has ended; `pending` counts the jobs not done yet.
fn drain(hooks: &Arc<Hooks>, rx: Receiver<Job>, pending: &Arc<AtomicUsize>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for job in rx {
        loop {
            threads.retain(|t| !t.is_finished());
            if threads.len() < IN_FLIGHT {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let end_by = *hooks.end_by.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = match end_by {
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(hooks.notify.timeout),
                _ => {
                    hooks.notes.note(format!(
                        "notify: the `{}` event was not sent: the run has ended and the hooks' time is up",
                        job.kind.name()
                    ));
                    pending.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
            },
            None => hooks.notify.timeout,
        };
        let (hooks, pending) = (hooks.clone(), pending.clone());
        threads.push(thread::spawn(move || {
            hook(&hooks, &job, deadline);
            pending.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Run the hook once for `job`, within `deadline`; say what went wrong, if anything.
fn hook(hooks: &Hooks, job: &Job, deadline: Duration) {
    let n = &hooks.notify;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&n.command)
        .env("WAVECTL_RUN", &hooks.run)
        .env("WAVECTL_ROLLOUT", &hooks.rollout)
        .env("WAVECTL_EVENT", job.kind.name());
    if n.dir.is_dir() {
        cmd.current_dir(&n.dir);
    }
    let limits = child::Limits {
        deadline,
        max_stdout: 64 << 10,
        kill_on_overflow: false,
        stderr_tail: 4 << 10,
    };
    let what = format!("notify: the hook for `{}`", job.kind.name());
    let out = match child::run(
        &mut cmd,
        Some(format!("{}\n", job.json).into_bytes()),
        limits,
    ) {
        Ok(o) => o,
        Err(e) => {
            hooks.notes.note(format!(
                "{what} could not start: {}",
                crate::spec::source::lower_io(&e)
            ));
            return;
        }
    };
    let stderr = match out.stderr_lines(3) {
        s if s.is_empty() => String::new(),
        s => format!("; its stderr: {}", s.replace('\n', " | ")),
    };
    match out.ended {
        Ended::Exited(s) if s.success() => {}
        Ended::Exited(s) => hooks.notes.note(format!(
            "{what} failed ({}){stderr}; the run is not affected",
            match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "no exit code".to_string(),
            }
        )),
        Ended::TimedOut | Ended::TooMuchOutput => hooks.notes.note(format!(
            "{what} timed out after {}: killed with its process group{stderr}; the run is not affected",
            // Cut short by the run's end, a deadline is a hair under the timeout: tenths.
            crate::units::duration(deadline)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Reporter, Summary};

    fn notify(
        dir: &std::path::Path,
        command: &str,
        events: &[EventKind],
        timeout: Duration,
    ) -> Notify {
        Notify {
            command: command.into(),
            events: events.to_vec(),
            timeout,
            dir: dir.to_path_buf(),
        }
    }

    fn summary(status: &str) -> Event {
        Event::Summary(Summary {
            run: "r1".into(),
            status: status.into(),
            ..Summary::default()
        })
    }

    #[test]
    fn event_kinds() {
        use crate::rollout::verdict::{Evidence, Verdict};
        let verdict = |h| Event::Verdict {
            wave: 1,
            host: "h".into(),
            verdict: Verdict::bad(h, Evidence::new("script")),
        };
        assert_eq!(kinds_of(&verdict(Health::Hung)), [EventKind::Unhealthy]);
        assert!(kinds_of(&verdict(Health::Inconclusive)).is_empty());
        assert_eq!(
            kinds_of(&summary("rolled-back")),
            [EventKind::RolledBack, EventKind::Ended]
        );
        assert_eq!(
            kinds_of(&summary("paused")),
            [EventKind::Paused, EventKind::Ended]
        );
        assert_eq!(kinds_of(&summary("purged")), [EventKind::Ended]);
        assert!(kinds_of(&Event::Note {
            message: "x".into()
        })
        .is_empty());
    }

    #[test]
    fn a_hook_gets_the_events_json_on_stdin_and_the_run_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reporter::new(true, false);
        r.set_run("r1");
        let n = notify(
            dir.path(),
            "cat > \"got-$WAVECTL_EVENT.json\"; env | grep '^WAVECTL_' | sort > \"got-$WAVECTL_EVENT.env\"",
            &[EventKind::RolledBack, EventKind::Started],
            Duration::from_secs(30),
        );
        let id = r.attach(Box::new(Notifier::new(n, "r1", "raid", r.notes())));
        r.emit(Event::Note {
            message: "not a kind".into(),
        });
        r.emit(summary("rolled-back"));
        r.detach(id);
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("got-rolled-back.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["event"], "summary");
        assert_eq!(json["status"], "rolled-back");
        assert_eq!(json["run"], "r1");
        assert!(
            json["at"].is_string() && json["elapsed_ms"].is_u64(),
            "{json}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("got-rolled-back.env")).unwrap(),
            "WAVECTL_EVENT=rolled-back\nWAVECTL_ROLLOUT=raid\nWAVECTL_RUN=r1\n"
        );
        // Only the kinds listed: `ended` was not, nor is a note a kind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["got-rolled-back.env", "got-rolled-back.json"]);
    }

    #[test]
    fn a_hanging_hook_is_killed_with_its_group_and_the_end_waits_at_most_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("wavectl-hook-test-{}", std::process::id());
        let r = Reporter::new(true, false);
        let n = notify(
            dir.path(),
            &format!(
                "sh -c 'sleep 600; :' {marker} & sh -c 'sleep 601; :' {marker}; touch not-reached"
            ),
            &[EventKind::Done],
            Duration::from_millis(500),
        );
        let id = r.attach(Box::new(Notifier::new(n, "r1", "raid", r.notes())));
        r.emit(summary("done"));
        r.detach(id);
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                .unwrap_or(false)
        });
        assert!(!alive, "a process of the hook outlived it");
        assert!(!dir.path().join("not-reached").exists());
    }

    #[test]
    fn a_failing_hook_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reporter::new(true, false);
        let n = notify(
            dir.path(),
            "if [ \"$WAVECTL_EVENT\" = wave ]; then echo boom >&2; exit 3; fi; touch \"ran-$WAVECTL_EVENT\"",
            &[EventKind::Wave, EventKind::Started, EventKind::Done],
            Duration::from_secs(30),
        );
        let id = r.attach(Box::new(Notifier::new(n, "r1", "raid", r.notes())));
        r.emit(Event::WaveStarted {
            wave: 1,
            waves: 1,
            hosts: vec![],
        });
        r.emit(Event::RunStarted {
            run: "r1".into(),
            rollout: "raid".into(),
            hosts: 1,
            waves: 1,
            journal: "j".into(),
        });
        r.emit(summary("done"));
        r.detach(id);
        assert!(dir.path().join("ran-started").exists());
        assert!(dir.path().join("ran-done").exists());
        assert!(!dir.path().join("ran-wave").exists());
    }
}
