//! PURE: per-host verdicts — healthy, degraded, hung, unreachable, or inconclusive —
//! each with its evidence. A [`Watch`] holds every watched host's baseline and recent
//! readings (the wave's hosts and the untouched control hosts) and judges a probe
//! round at once: each host against its own baseline and against the controls over
//! the same window, by the entries of `signals.rs`.
//!
//! - Events (kernel lines, new failed units, restart storms, OOM kills, failed runs)
//!   fail a host at once; the same event on a control host makes it inconclusive. A
//!   kernel line no older than the reading of a control that does not show it (in
//!   the same round) waits one probe, so the controls can show it too.
//! - Levels (load, blocked, pressure) fail a host when out of line against its
//!   baseline and the controls for `strikes` probes in a row; out of line while the
//!   controls moved as much: inconclusive.
//! - A custom check fails a host after [`CHECK_STRIKES`] failures in a row.
//! - A missed deadline is `hung` on a host that answered before, else `unreachable`; a
//!   refused or failed connection is `unreachable`. If every control host that answered
//!   before fails in the same round, the controller's own network is suspect: the verdict
//!   is inconclusive.
//!
//! An inconclusive verdict does not count against the failure budget: the run pauses
//! (see `step/`) and says why. A source a host lacks is reported as not available
//! there — neither healthy nor a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::probe_report::ProbeReport;
use super::signals::{self, Found, Judge, Signal};
use super::step::utc;
use super::watched::{for_rates, HostWatch, Streak, Watched};
use crate::spec::{Builtin, Thresholds};

mod watch;

pub use watch::{Watch, CHECK_STRIKES};

/// A host's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Degraded,
    /// Missed a deadline after it had answered before.
    Hung,
    /// Refused or failed to connect, or never answered.
    Unreachable,
    /// Something moved, but the control hosts moved as much (a fleet-wide event), or
    /// failed at the same moment (the controller's own network): not the host's fault
    /// as far as can be told. The run pauses; it does not count against the budget.
    Inconclusive,
}

impl Health {
    /// Counts against the failure budget.
    pub fn is_bad(self) -> bool {
        matches!(self, Health::Degraded | Health::Hung | Health::Unreachable)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Hung => "hung",
            Health::Unreachable => "unreachable",
            Health::Inconclusive => "inconclusive",
        })
    }
}

/// Why a verdict is what it is: the signal, its baseline (`before`), the control hosts'
/// reading over the same window, the value (`after`), the threshold, the raw line that
/// decided it, when (UTC), and a failed run's stderr.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// When, as readable UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The last lines of a failed run's stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl Evidence {
    pub fn new(signal: impl Into<String>) -> Self {
        Evidence {
            signal: signal.into(),
            ..Default::default()
        }
    }
    pub fn raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }
    pub fn change(
        mut self,
        before: impl ToString,
        after: impl ToString,
        threshold: impl Into<String>,
    ) -> Self {
        self.before = Some(before.to_string());
        self.after = Some(after.to_string());
        self.threshold = Some(threshold.into());
        self
    }
    pub fn control(mut self, control: impl Into<String>) -> Self {
        self.control = Some(control.into());
        self
    }
    /// At `secs` (Unix seconds), shown as UTC.
    pub fn at(mut self, secs: Option<u64>) -> Self {
        self.at = secs.map(utc);
        self
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)?;
        if let (Some(b), Some(a)) = (&self.before, &self.after) {
            write!(f, ": {b} -> {a}")?;
        } else if let Some(a) = &self.after {
            write!(f, ": {a}")?;
        }
        if let Some(c) = &self.control {
            write!(f, "; controls: {c}")?;
        }
        if let Some(r) = &self.raw {
            write!(f, ": {r}")?;
        }
        if let Some(at) = &self.at {
            write!(f, ", at {at}")?;
        }
        if let Some(t) = &self.threshold {
            write!(f, " (threshold {t})")?;
        }
        if let Some(e) = &self.stderr {
            let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
            write!(f, "; stderr: {}", lines.join(" | "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub health: Health,
    pub evidence: Vec<Evidence>,
    /// Signals whose source this host lacks (each with why): not judged there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_available: Vec<Evidence>,
}

impl Verdict {
    pub fn healthy() -> Self {
        Verdict {
            health: Health::Healthy,
            evidence: Vec::new(),
            not_available: Vec::new(),
        }
    }
    pub fn bad(health: Health, evidence: Evidence) -> Self {
        Verdict {
            health,
            evidence: vec![evidence],
            not_available: Vec::new(),
        }
    }
}

/// What one attempt to probe a host produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The host answered.
    Report(Box<ProbeReport>),
    /// A login or command missed its deadline.
    Missed { what: String, after: Duration },
    /// The connection was refused or failed.
    Failed { message: String },
}

pub use crate::units::duration as fmt_dur;

#[cfg(test)]
mod tests;
