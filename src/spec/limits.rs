//! The range of every duration and count a spec may hold, in one place, enforced at
//! load. Nothing a spec accepts may overflow or misbehave at run time: deadlines are
//! `Instant + Duration` sums, counts size buffers and fan-outs, and a value a controller
//! cannot act on (a week-long probe interval, a million-way fan-out) is a typo, not a
//! plan. The spec table (docs/SPEC.md) lists the same ranges.

use std::time::Duration;

/// A duration key and its range.
pub(crate) struct DurationKey {
    /// The key, as messages name it ("health.interval").
    pub key: &'static str,
    pub min: Duration,
    pub max: Duration,
    /// What the value means, for the hint of an out-of-range error.
    pub what: &'static str,
}

/// An integer key and its range.
pub(crate) struct IntKey {
    pub key: &'static str,
    pub min: i64,
    pub max: i64,
    pub what: &'static str,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// 1s..=24h: a run that needs more than a day is not a maintenance script.
pub(crate) const SCRIPT_TIMEOUT: DurationKey = DurationKey {
    key: "script.timeout",
    min: secs(1),
    max: secs(DAY),
    what: "every run of the script on a host is killed after this",
};

/// 0s..=7d: a week of watching is the longest bake that still ends.
pub(crate) const BAKE: DurationKey = DurationKey {
    key: "waves.bake",
    min: Duration::ZERO,
    max: secs(7 * DAY),
    what: "how long each wave is watched before the next one starts; \"0s\" does not wait",
};

/// 1s..=1h: faster is a login storm; slower leaves a hung host unnoticed for too long.
pub(crate) const INTERVAL: DurationKey = DurationKey {
    key: "health.interval",
    min: secs(1),
    max: secs(HOUR),
    what: "the time between two probes of a host",
};

/// 1s..=10m, and at most the interval (checked in `health`): a login alone takes
/// a good part of a second.
pub(crate) const PROBE_TIMEOUT: DurationKey = DurationKey {
    key: "health.probe_timeout",
    min: secs(1),
    max: secs(10 * MINUTE),
    what: "the deadline of one probe of a host (login and command)",
};

/// 10s..=7d, and at least `LEASE_INTERVALS` × the interval (checked in `resolve`):
/// the on-host guard looks at the lease about once a minute, so a shorter lease
/// means little, and a host should not stay on probation unattended for more than a week.
pub(crate) const LEASE: DurationKey = DurationKey {
    key: "policy.lease",
    min: secs(10),
    max: secs(7 * DAY),
    what: "a host on probation reverts itself when the controller has not renewed its \
           lease for this long",
};

/// The lease covers this many probe intervals: the controller renews it with every
/// probe, so a healthy host that misses one or two probes keeps its lease.
pub(crate) const LEASE_INTERVALS: u32 = 3;

/// 1..=1000: each host in flight is an ssh process with its own connection.
pub(crate) const CONCURRENCY: IntKey = IntKey {
    key: "waves.concurrency",
    min: 1,
    max: 1000,
    what: "the number of hosts worked on at once",
};

/// 0..=1000.
pub(crate) const MIN_RUNS: IntKey = IntKey {
    key: "waves.min_runs",
    min: 0,
    max: 1000,
    what: "how many times every host of a wave must have run the script before the wave \
           is judged; 0 does not wait for runs",
};

/// 1..=100000.
pub(crate) const MAX_PER_GROUP: IntKey = IntKey {
    key: "waves.max_per_group",
    min: 1,
    max: 100_000,
    what: "the most hosts of one spread_by group in one wave; 1 keeps a primary and its \
           standby in different waves",
};

/// A count in `waves.sizes`: 1..=1000000 hosts.
pub(crate) const WAVE_SIZE_MAX: i64 = 1_000_000;

/// 0..=1000000.
pub(crate) const MAX_UNHEALTHY: IntKey = IntKey {
    key: "policy.max_unhealthy",
    min: 0,
    max: 1_000_000,
    what: "the number of bad hosts tolerated over the whole run; 0 rolls back on the first",
};

/// 0..=100.
pub(crate) const APPROVALS: IntKey = IntKey {
    key: "policy.approvals",
    min: 0,
    max: 100,
    what: "the number of distinct signatures needed before apply; 0 needs none",
};

/// A number key (integers are accepted too) and its range.
pub(crate) struct FloatKey {
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    pub what: &'static str,
}

// --- `[health]` thresholds. Each default is in `Thresholds::default()` (spec/mod.rs);
// why it is what it is, here beside its range, and in the spec table (docs/SPEC.md).

/// 2..=20, default 3: a baseline is a short window, not one sample (a rate needs two,
/// and one noisy sample must not become the reference). At most `min(interval, 5s)`
/// apart, so the default costs about 10 s per wave.
pub(crate) const BASELINE_SAMPLES: IntKey = IntKey {
    key: "health.baseline_samples",
    min: 2,
    max: 20,
    what: "how many probes of each host (and control host) make its baseline before a wave",
};

/// 1..=100, default 3: the `for:` habit of alerting rules — one noisy sample never
/// decides; 3 probes are 45 s at the default interval.
pub(crate) const STRIKES: IntKey = IntKey {
    key: "health.strikes",
    min: 1,
    max: 100,
    what: "how many probes in a row a continuous signal (load, blocked, pressure) must be \
           out of line before it counts",
};

/// 0.1..=100, default 1.0: a 1-minute load above the CPU count means runnable tasks
/// queue for a CPU (saturation, in the USE method's terms); the host must also have
/// risen by half of it above its baseline and above the control hosts.
pub(crate) const LOAD_PER_CORE: FloatKey = FloatKey {
    key: "health.load_per_core",
    min: 0.1,
    max: 100.0,
    what: "the 1-minute load per CPU a host must reach (and rise by half of, against its \
           baseline and the control hosts) for `load` to count",
};

/// 1..=100000, default 4: a healthy server's `procs_blocked` (vmstat's `b` column) is
/// 0 or 1 at almost every sample; 4 tasks in uninterruptible sleep for several probes
/// in a row is an I/O stall.
pub(crate) const BLOCKED: IntKey = IntKey {
    key: "health.blocked",
    min: 1,
    max: 100_000,
    what: "the number of tasks blocked on I/O a host must reach (and rise by half of, \
           against its baseline and the control hosts) for `blocked` to count",
};

/// 1..=100 percent. Defaults: cpu 50, memory 10, io 20 — the share of wall time, over
/// one probe interval, that some task stalled waiting for the resource (PSI `some`,
/// from the `total` counters). Memory is the strictest: a stall there is reclaim or
/// swapping, and systemd-oomd already kills at 60 % (`DefaultMemoryPressureLimit`);
/// CPU contention is normal on a busy host, so its floor is high.
pub(crate) const PRESSURE_CPU: IntKey = IntKey {
    key: "health.pressure_cpu",
    min: 1,
    max: 100,
    what: "the percent of time some task waited for a CPU (PSI) a host must reach for \
           `pressure` to count",
};
pub(crate) const PRESSURE_MEMORY: IntKey = IntKey {
    key: "health.pressure_memory",
    min: 1,
    max: 100,
    what: "the percent of time some task waited for memory (PSI) a host must reach for \
           `pressure` to count",
};
pub(crate) const PRESSURE_IO: IntKey = IntKey {
    key: "health.pressure_io",
    min: 1,
    max: 100,
    what: "the percent of time some task waited for I/O (PSI) a host must reach for \
           `pressure` to count",
};

/// 1..=1000, default 3: systemd gives a unit up (it fails, and `units` sees it) after 5
/// starts in 10 s (`DefaultStartLimitBurst`/`DefaultStartLimitIntervalSec`); a unit
/// that restarts slower than that never fails but keeps crashing: 3 restarts since the
/// wave began are a restart storm.
pub(crate) const RESTARTS: IntKey = IntKey {
    key: "health.restarts",
    min: 1,
    max: 1000,
    what: "how many times one systemd unit may restart (NRestarts) after the wave began \
           before `units` counts it as a restart storm",
};
