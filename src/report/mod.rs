//! Events → display. The driver never prints: it emits [`Event`]s, and a reporter turns
//! them into progress bars and plain lines (human) or one JSON object per line (`--json`),
//! and feeds them to its sinks: the metrics file and the notification hooks.

mod human;
pub mod markdown;
pub mod metrics;
pub mod notify;
pub mod transition;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::rollout::verdict::Verdict;

pub use human::Human;

/// A phase of a wave (or of the run's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Baseline,
    Deploy,
    Bake,
    Confirm,
    Rollback,
    Purge,
    Settle,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Deploy => "deploy",
            Phase::Bake => "bake",
            Phase::Confirm => "confirm",
            Phase::Rollback => "rollback",
            Phase::Purge => "purge",
            Phase::Settle => "settle",
        }
    }
}

/// Something that happened during a run, in the order it happened. (The summary, its
/// largest variant, comes once per run: its size does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run: String,
        rollout: String,
        hosts: usize,
        waves: usize,
        journal: String,
    },
    WaveStarted {
        wave: usize,
        waves: usize,
        hosts: Vec<String>,
    },
    PhaseStarted {
        wave: usize,
        phase: Phase,
        hosts: usize,
        seconds: Option<u64>,
    },
    /// One host finished a step of a phase.
    HostStep {
        wave: usize,
        phase: Phase,
        host: String,
        ok: bool,
        detail: String,
    },
    /// Bake progress: seconds elapsed of the bake.
    BakeTick {
        wave: usize,
        elapsed: u64,
        bake: u64,
        round: u32,
    },
    /// A host's verdict changed.
    Verdict {
        wave: usize,
        host: String,
        verdict: Verdict,
    },
    PhaseDone {
        wave: usize,
        phase: Phase,
    },
    RollbackStarted {
        reason: String,
        hosts: Vec<String>,
    },
    Note {
        message: String,
    },
    /// The run passed wave `wave`'s bake and waits at its gate: `promote` (the command
    /// that lets it go on) until `until` (UTC), then it rolls back. Its hosts are probed.
    Gated {
        wave: usize,
        promote: String,
        until: String,
    },
    /// The run was let go on past the gate after `wave`.
    Promoted {
        wave: usize,
        by: String,
    },
    /// The rollout is frozen: the run starts no new wave (it waits after `wave`, probing)
    /// until `unfreeze` or `until` (UTC; none: until unfrozen).
    Frozen {
        wave: usize,
        rollout: String,
        by: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        unfreeze: String,
    },
    /// The freeze is lifted (or ran out): the run goes on after `wave`.
    Thawed {
        wave: usize,
    },
    Summary(Summary),
    /// `apply`'s preflight, before any change: targets checked (SSH banner), logins
    /// (the first wave's hosts), the targets that did not answer, and whether they are
    /// skipped (`--skip-unreachable`) or refuse the run.
    Preflight {
        checked: usize,
        logins: usize,
        offline: Vec<crate::rollout::Offline>,
        skipped: bool,
    },
    /// `plan --probe`: what one target holds at the install path.
    HostHolds(Holding),
    /// `plan --probe` ended: how many targets hold what (`holds`: word → hosts).
    ProbeDone {
        hosts: usize,
        holds: std::collections::BTreeMap<&'static str, usize>,
        exit_code: i32,
    },
    // A command's answer, on a run or the store, rather than a run's progress. Fields
    // marked `skip` are for the human line only; the JSON is the contract (docs/EVENTS.md).
    /// `promote` left its go-ahead for run `run` past the gate after `wave`.
    PromoteSent {
        run: String,
        wave: usize,
        by: String,
        /// What the run goes on to (`wave 3`, `the confirmation`).
        #[serde(skip)]
        next: String,
        /// Its controller (`user@host pid N`), if one drives it now.
        #[serde(skip)]
        driver: Option<String>,
        /// When the gate would roll it back (UTC).
        #[serde(skip)]
        deadline: String,
    },
    /// `freeze` set a freeze (`rollout`: none for every rollout).
    #[serde(rename = "frozen")]
    FreezeSet {
        rollout: Option<String>,
        by: String,
        reason: String,
        until: Option<String>,
        /// `rollout NAME` or `every rollout`.
        #[serde(skip)]
        scope: String,
    },
    /// `unfreeze` lifted a freeze (`was`: what it was).
    Unfrozen {
        rollout: Option<String>,
        by: String,
        was: String,
        #[serde(skip)]
        scope: String,
    },
    /// `abort` left a stop request for run `run`; its controller is `pid` on `host`.
    AbortSent {
        run: String,
        pid: u32,
        host: String,
        user: String,
        /// The controller, for people (`user@host pid N`).
        #[serde(skip)]
        who: String,
    },
    /// `approve` signed `plan`: `verified` is the principal the plan's allowed signers
    /// name for the key (none: they could not be read here, `unverified` says why).
    Approved {
        by: String,
        verified: Option<String>,
        plan: String,
        hash: String,
        signatures: usize,
        needed: u32,
        #[serde(skip)]
        unverified: Option<String>,
    },
    /// `report RUN`: the run's Markdown account.
    Report {
        run: String,
        markdown: String,
    },
    /// The command failed: `message` (what, and how to go on) and its exit code;
    /// `help` repeats how to go on on its own, when the error says.
    Error {
        message: String,
        exit_code: i32,
        #[serde(skip_serializing_if = "Option::is_none")]
        help: Option<String>,
    },
}

pub use crate::rollout::Summary;

/// What one target holds at the install path (`plan --probe`); the fields that do not
/// apply are left out of the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Holding {
    pub host: String,
    /// `nothing`, `version` (this rollout's), `same-script` (the spec's bytes, not
    /// installed by wavectl), `foreign` (a file wavectl did not install), `refused` (an
    /// install would be refused: `reason`), `not-asked` (no login: `reason`) or `failed`
    /// (the preview did not answer as it should: `reason`).
    pub holds: &'static str,
    pub install_path: String,
    /// This rollout's version: the run that installed it, its state, and whether it is
    /// the spec's script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same: Option<bool>,
    /// What is at the path: a file's sha256, or a symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `user:group` and the mode (octal) of what is at the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The installed packages that own it (dpkg, or rpm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// An install of this rollout under way or cut short (its run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where events go: the display (human or `--json`), then every sink attached (the
/// metrics file, a notification hook), each given the event's JSON as `--json` prints it.
pub struct Reporter {
    out: Arc<Output>,
    sinks: Mutex<Vec<(u64, Box<dyn Sink>)>>,
    next_sink: AtomicU64,
}

/// Something events are fed to besides the display. Called on the engine's path: a sink
/// that does slow work (runs a program) hands it to a thread of its own.
pub trait Sink: Send {
    /// An event, and its JSON form (the line `--json` prints for it).
    fn event(&mut self, _event: &Event, _json: &serde_json::Value) {}
    /// Where a run stands now: after every record the engine journaled.
    fn state(&mut self, _state: &crate::rollout::RunState) {}
    /// The run ends (or the command): finish what is in flight, within the sink's bound.
    fn finish(&mut self) {}
}

/// A sink attached with [`Reporter::attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkId(u64);

/// The display, shared with sinks that speak from threads of their own ([`Notes`]).
struct Output {
    display: Display,
    /// When the reporter was made (`elapsed_ms`).
    start: Instant,
    /// The run events belong to, once known (`run`).
    run: Mutex<Option<String>>,
}

enum Display {
    Human(Human),
    /// JSON lines; each event carries its type (`event`), the time (`at`, UTC), the run
    /// id (`run`, once known) and `elapsed_ms` since the reporter was made.
    Json,
}

impl Output {
    /// The event as `--json` prints it.
    fn json(&self, event: &Event) -> serde_json::Value {
        let mut run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::RunStarted { run: r, .. } => *run = Some(r.clone()),
            Event::Summary(s) if !s.run.is_empty() => *run = Some(s.run.clone()),
            _ => {}
        }
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "at".into(),
                humantime::format_rfc3339_millis(SystemTime::now())
                    .to_string()
                    .into(),
            );
            if let Some(r) = run.as_ref() {
                obj.entry("run").or_insert_with(|| r.clone().into());
            }
            obj.insert(
                "elapsed_ms".into(),
                (self.start.elapsed().as_millis() as u64).into(),
            );
        }
        value
    }

    fn show(&self, event: &Event, json: Option<&serde_json::Value>) {
        match &self.display {
            Display::Json => {
                match json {
                    Some(v) => crate::outln!("{v}"),
                    None => crate::outln!("{}", self.json(event)),
                }
                // What failed is said to people too, on stderr, whatever the display.
                if let Event::Error { message, .. } = event {
                    eprintln!("error: {message}");
                }
            }
            Display::Human(h) => h.show(event),
        }
    }
}

/// Lets a sink say something (a note) from a thread of its own.
#[derive(Clone)]
pub struct Notes(Arc<Output>);

impl Notes {
    pub fn note(&self, message: String) {
        self.0.show(&Event::Note { message }, None);
    }
}

impl Reporter {
    pub fn new(json: bool, verbose: bool) -> Reporter {
        Reporter::since(json, verbose, Instant::now())
    }

    /// A reporter whose `elapsed_ms` counts from `start` (when the command began).
    pub fn since(json: bool, verbose: bool, start: Instant) -> Reporter {
        let display = if json {
            Display::Json
        } else {
            Display::Human(Human::new(verbose))
        };
        Reporter {
            out: Arc::new(Output {
                display,
                start,
                run: Mutex::new(None),
            }),
            sinks: Mutex::new(Vec::new()),
            next_sink: AtomicU64::new(0),
        }
    }

    pub fn emit(&self, event: Event) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        let json = (matches!(self.out.display, Display::Json) || !sinks.is_empty())
            .then(|| self.out.json(&event));
        self.out.show(&event, json.as_ref());
        if let Some(json) = &json {
            for (_, s) in sinks.iter_mut() {
                s.event(&event, json);
            }
        }
    }

    /// Where the run stands now (the engine calls this after every journaled record).
    pub fn state(&self, state: &crate::rollout::RunState) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        for (_, s) in sinks.iter_mut() {
            s.state(state);
        }
    }

    /// The run events belong to from now on (for a run taken up again, whose
    /// `run_started` was long ago).
    pub fn set_run(&self, run: &str) {
        *self.out.run.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.to_string());
    }

    /// Feed events to `sink` from now on, until [`detach`](Self::detach).
    pub fn attach(&self, sink: Box<dyn Sink>) -> SinkId {
        let id = self.next_sink.fetch_add(1, Ordering::Relaxed);
        self.sinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, sink));
        SinkId(id)
    }

    /// Stop feeding a sink, and let it finish (within its own bound).
    pub fn detach(&self, id: SinkId) {
        let sink = {
            let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
            let at = sinks.iter().position(|(i, _)| *i == id.0);
            at.map(|at| sinks.remove(at).1)
        };
        if let Some(mut s) = sink {
            s.finish();
        }
    }

    /// For sinks that speak from threads of their own.
    pub fn notes(&self) -> Notes {
        Notes(self.out.clone())
    }
}

impl Drop for Reporter {
    /// Every sink still attached finishes when the command is done with the reporter.
    fn drop(&mut self) {
        let sinks = std::mem::take(&mut *self.sinks.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, mut s) in sinks {
            s.finish();
        }
    }
}

/// `1 host`, `3 hosts`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Host names for people: runs of names that differ only in a trailing number collapse
/// into ranges (`web-01, web-02, web-03, db-1` → `web-[01-03], db-1`), keeping order.
pub fn compact(names: &[String]) -> String {
    fn split(n: &str) -> (&str, &str) {
        let digits = n.len() - n.bytes().rev().take_while(u8::is_ascii_digit).count();
        n.split_at(digits)
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let (prefix, num) = split(&names[i]);
        let mut j = i + 1;
        if !num.is_empty() {
            let mut last: u64 = num.parse().unwrap_or(0);
            while j < names.len() {
                let (p, n) = split(&names[j]);
                let next: Option<u64> = n.parse().ok();
                if p != prefix || n.len() != num.len() || next != Some(last + 1) {
                    break;
                }
                last += 1;
                j += 1;
            }
        }
        if j - i >= 3 {
            let (_, end) = split(&names[j - 1]);
            out.push(format!("{prefix}[{num}-{end}]"));
        } else {
            out.extend(names[i..j].iter().cloned());
        }
        i = j;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::compact;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_of_numbered_names_collapse() {
        assert_eq!(
            compact(&v(&["web-01", "web-02", "web-03", "db-1", "db-2", "x"])),
            "web-[01-03], db-1, db-2, x"
        );
        assert_eq!(compact(&v(&["h12", "h13", "h14", "h16"])), "h[12-14], h16");
        // A change of width or a gap breaks a run.
        assert_eq!(compact(&v(&["h8", "h9", "h10", "h11"])), "h8, h9, h10, h11");
        assert_eq!(compact(&v(&[])), "");
    }
}
