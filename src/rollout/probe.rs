//! What one probe of one host reported, as plain values (parsed by `remote::probe`).

use serde::{Deserialize, Serialize};

/// One line of the wrapper's `runs.log`: a finished run of the script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unix seconds.
    pub start: u64,
    pub end: u64,
    /// The script's exit code; 124 = killed by its timeout (GNU timeout), 137 = SIGKILL.
    pub exit: i32,
}

impl RunRecord {
    pub fn timed_out(&self) -> bool {
        self.exit == 124 || self.exit == 137
    }
}

/// One `[[health.check]]` as run by a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// Exit code; 124 = the check hit its own timeout.
    pub exit: i32,
    /// The last line or so of its output, for evidence.
    pub output: String,
}

/// Everything one probe command read on a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Every run recorded in `runs.log` since install.
    pub runs: Vec<RunRecord>,
    /// A copy of the script is running right now (the wrapper's pid file names a live process).
    pub running: bool,
    pub checks: Vec<CheckResult>,
    /// 1-minute load average (`/proc/loadavg`).
    pub load1: Option<f64>,
    /// `procs_blocked` from `/proc/stat`.
    pub procs_blocked: Option<u64>,
    /// Number of hung-task / oops / BUG lines in the kernel log (None if unreadable).
    pub kernel_alerts: Option<u64>,
    /// The last such kernel line, for evidence.
    pub kernel_last: Option<String>,
    /// Failed systemd units (empty without systemd).
    pub failed_units: Vec<String>,
    /// The manifest's state (`probation`, `confirmed`, `revoked`), if there is one.
    pub manifest_state: Option<String>,
}
