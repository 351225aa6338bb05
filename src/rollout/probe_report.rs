//! What one probe of one host reported, as plain values (parsed by
//! `remote::host_probe`). A source the host lacks is `Err(why)` in a [`Source`]: not
//! available there, which is neither healthy nor a failure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of the wrapper's `runs.log`: a finished run of the script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unix seconds.
    pub start: u64,
    pub end: u64,
    /// The script's exit code; 124 = killed by its timeout (GNU timeout), 137 = SIGKILL.
    pub exit: i32,
    /// For a failed run: the last lines of its stderr (from the wrapper's `failed.log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
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

/// What a probe read from one source: the value, or why the host has none (not
/// available there). `Default` is "not read" (the probe was not asked for it).
pub type Source<T> = Result<T, String>;

/// A source a probe can read for the built-in signals (the probe reads only those its
/// signals need). The words are the host's (`as_str`: the probe's argument and its `na`
/// lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeSource {
    /// `/proc/loadavg` and the online CPUs.
    Load,
    /// `/proc/stat` procs_blocked.
    Blocked,
    /// `/proc/vmstat` oom_kill.
    Oom,
    /// `/proc/pressure/*`.
    Pressure,
    /// The kernel log after a cursor.
    Kernel,
    /// systemd's failed units and restarts.
    Units,
}

impl ProbeSource {
    pub const ALL: [ProbeSource; 6] = [
        ProbeSource::Load,
        ProbeSource::Blocked,
        ProbeSource::Oom,
        ProbeSource::Pressure,
        ProbeSource::Kernel,
        ProbeSource::Units,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeSource::Load => "load",
            ProbeSource::Blocked => "blocked",
            ProbeSource::Oom => "oom",
            ProbeSource::Pressure => "pressure",
            ProbeSource::Kernel => "kernel",
            ProbeSource::Units => "units",
        }
    }

    /// The source a host's word names; None for anything else.
    pub fn parse(word: &str) -> Option<ProbeSource> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// Alert lines of the kernel log after a cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelRead {
    /// Where the log stood at this probe (`<boot id>:<seconds since boot>`): the next
    /// probe given this cursor reports only lines after it.
    pub cursor: String,
    /// The alert lines after the cursor the probe was given (the last few; none when it
    /// was given no cursor), as the kernel wrote them, timestamp first.
    pub lines: Vec<String>,
}

/// What systemd says of the host's units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitsRead {
    /// `systemctl --failed`.
    pub failed: Vec<String>,
    /// `NRestarts` of every loaded service that restarted at all.
    pub restarts: BTreeMap<String, u64>,
}

/// `/proc/pressure/{cpu,memory,io}`: the `some` `total` counters (microseconds stalled
/// since boot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pressure {
    pub cpu: u64,
    pub memory: u64,
    pub io: u64,
}

fn not_read<T>() -> Source<T> {
    Err("not read".into())
}

/// Everything one probe command read on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Every run of the probed run id recorded in `runs.log` (runs of other versions
    /// are left out).
    pub runs: Vec<RunRecord>,
    /// A copy of the script is running right now (the wrapper's pid file names a live process).
    pub running: bool,
    pub checks: Vec<CheckResult>,
    /// Seconds since boot (`/proc/uptime`): the clock rates are measured with.
    pub uptime: Option<f64>,
    /// The host's wall clock (Unix seconds) when it was probed, for evidence.
    pub clock: Option<u64>,
    /// Online CPUs.
    pub cpus: Option<u32>,
    /// 1-minute load average (`/proc/loadavg`).
    pub load1: Source<f64>,
    /// `procs_blocked` from `/proc/stat`.
    pub procs_blocked: Source<u64>,
    /// `oom_kill` from `/proc/vmstat`.
    pub oom_kill: Source<u64>,
    pub pressure: Source<Pressure>,
    pub kernel: Source<KernelRead>,
    pub units: Source<UnitsRead>,
    /// The manifest's state, if there is one.
    pub manifest_state: Option<crate::remote::ManifestState>,
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

impl ProbeReport {
    /// The host lacks `source` (its `na` line): `why`, in the field that source fills.
    pub fn not_available(&mut self, source: ProbeSource, why: String) {
        match source {
            ProbeSource::Load => self.load1 = Err(why),
            ProbeSource::Blocked => self.procs_blocked = Err(why),
            ProbeSource::Oom => self.oom_kill = Err(why),
            ProbeSource::Pressure => self.pressure = Err(why),
            ProbeSource::Kernel => self.kernel = Err(why),
            ProbeSource::Units => self.units = Err(why),
        }
    }
}

impl Default for ProbeReport {
    fn default() -> Self {
        ProbeReport {
            runs: Vec::new(),
            running: false,
            checks: Vec::new(),
            uptime: None,
            clock: None,
            cpus: None,
            load1: not_read(),
            procs_blocked: not_read(),
            oom_kill: not_read(),
            pressure: not_read(),
            kernel: not_read(),
            units: not_read(),
            manifest_state: None,
            owner: None,
            reverted: None,
            lease_until: None,
        }
    }
}
