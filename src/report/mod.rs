//! Events → display. The driver never prints: it emits [`Event`]s, and a reporter turns
//! them into progress bars and plain lines (human) or one JSON object per line (`--json`).

mod human;
pub mod markdown;

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

/// Something that happened during a run, in the order it happened.
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
    Summary(Summary),
}

pub use crate::rollout::Summary;

/// Where events go.
pub enum Reporter {
    Human(Human),
    /// JSON lines; each event carries its type (`event`), the time (`at`, UTC), the run
    /// id (`run`, once known) and `elapsed_ms` since the reporter was made.
    Json(std::time::Instant, std::sync::Mutex<Option<String>>),
}

impl Reporter {
    pub fn new(json: bool, verbose: bool) -> Reporter {
        if json {
            Reporter::Json(std::time::Instant::now(), std::sync::Mutex::new(None))
        } else {
            Reporter::Human(Human::new(verbose))
        }
    }

    pub fn emit(&self, event: Event) {
        match self {
            Reporter::Json(start, run) => {
                let mut run = run.lock().unwrap_or_else(|p| p.into_inner());
                match &event {
                    Event::RunStarted { run: r, .. } => *run = Some(r.clone()),
                    Event::Summary(s) if !s.run.is_empty() => *run = Some(s.run.clone()),
                    _ => {}
                }
                if let Ok(mut value) = serde_json::to_value(&event) {
                    if let Some(obj) = value.as_object_mut() {
                        let now = std::time::SystemTime::now();
                        obj.insert(
                            "at".into(),
                            humantime::format_rfc3339_millis(now).to_string().into(),
                        );
                        if let Some(r) = run.as_ref() {
                            obj.entry("run").or_insert_with(|| r.clone().into());
                        }
                        obj.insert(
                            "elapsed_ms".into(),
                            (start.elapsed().as_millis() as u64).into(),
                        );
                    }
                    println!("{value}");
                }
            }
            Reporter::Human(h) => h.show(&event),
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
