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
    /// Exit code; 124 = the check hit its own timeout; -1 when not reported.
    pub exit: i32,
    /// The last line or so of its output, for evidence (when not reported: why).
    pub output: String,
    /// The probe reported a result for this check. A configured check whose result is
    /// missing (no line, or a line without an exit status) is not reported: it must not
    /// count as healthy.
    #[serde(default = "reported_default")]
    pub reported: bool,
}

fn reported_default() -> bool {
    true
}

/// The host's guard reverted a run by itself: its probation lease ran out (or the
/// host booted while it was in probation). From `/var/lib/wavectl/.reverted/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reverted {
    pub run_id: String,
    /// The lease's end, unix seconds on the host's clock (0: there was no lease).
    pub lease_until: u64,
    /// When the guard reverted it, unix seconds on the host's clock.
    pub at: u64,
    /// The revert checked out completely.
    pub clean: bool,
}

/// Everything one probe command read on a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Every run of the probed run id recorded in `runs.log` (runs of other versions
    /// are left out).
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
    /// The run id the host's manifest names (None: no manifest).
    #[serde(default)]
    pub owner: Option<String>,
    /// The host's guard reverted the probed run (its lease expired, or a boot in probation).
    #[serde(default)]
    pub reverted: Option<Reverted>,
    /// The probation lease's end, unix seconds on the host's clock, after this probe's
    /// renewal (None: no lease file).
    #[serde(default)]
    pub lease_until: Option<u64>,
}
