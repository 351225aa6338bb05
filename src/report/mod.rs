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
