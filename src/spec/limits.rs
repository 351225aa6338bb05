//! The range of every duration and count a spec may hold, in one place, enforced at
//! load. Nothing a spec accepts may overflow or misbehave at run time: deadlines are
//! `Instant + Duration` sums, counts size buffers and fan-outs, and a value a controller
//! cannot act on (a week-long probe interval, a million-way fan-out) is a typo, not a
//! plan. The README's spec table lists the same ranges.

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
