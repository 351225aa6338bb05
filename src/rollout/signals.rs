//! PURE: the built-in health signals as data. One entry per signal says what the probe
//! reads for it, whether it needs a baseline and control hosts, and how it is judged;
//! `verdict.rs` applies the entries, `remote::host_probe` reads the sources they name, and
//! `policy.baseline`/`policy.controls` follow from them. A new signal is one entry here
//! (and its source in the probe, if it reads a new one).
//!
//! Two ways of judging, beside reachability (the probe's outcome itself):
//!
//! - **Events** ([`Judge::Events`]): things that happened after the wave's baseline —
//!   a kernel alert line, a unit that failed or keeps restarting, an OOM kill, a failed
//!   run of the script. Each fails its host at once, unless a control host (an untouched
//!   target, probed over the same window) shows an event of the same key: then the
//!   verdict is inconclusive (a fleet-wide event is not the script's doing) and the run
//!   pauses.
//! - **Levels** ([`Judge::Level`]): a value each probe (load per CPU, blocked tasks, the
//!   share of time stalled on a resource). A host is out of line when the value is at
//!   least the floor and has risen by at least half the floor above its own baseline
//!   (the mean over the baseline window); it fails when it has also risen by at least
//!   that much more than the control hosts (their median rise over the same window),
//!   `strikes` probes in a row. Out of line for `strikes` probes while the controls rose
//!   as much: inconclusive. Without control hosts (the last wave has none) the baseline
//!   alone decides, and the evidence says so.

use std::collections::BTreeSet;

use super::probe_report::{ProbeReport, ProbeSource, Source};
use crate::spec::{Builtin, Thresholds};

/// How a signal is judged.
pub enum Judge {
    /// On the probe's outcome: a missed deadline is `hung` (after an answer) or
    /// `unreachable`, a refused connection `unreachable`; see `verdict.rs`.
    Outcome,
    /// What happened on the host after its baseline: each [`Found`] fails it at once.
    Events {
        found: fn(&[ProbeReport], &ProbeReport, &Thresholds) -> Source<Vec<Found>>,
        /// Only the latest event is evidence (a script's last failed run, not every one).
        latest_only: bool,
        /// Each event carries the host's time of its own (a kernel line's stamp, unlike a
        /// counter read at the probe): one newer than a control's reading cannot show
        /// there yet, so it waits (once) for the controls' next probe.
        stamped: bool,
    },
    /// A value per probe, from the previous sample and this one (`Ok(None)`: none yet).
    Level {
        value: fn(&ProbeReport, &ProbeReport) -> Source<Option<f64>>,
        /// The absolute floor; half of it is the rise that counts.
        floor: fn(&Thresholds) -> f64,
        /// How the value reads, after the number ("per CPU", "% of the time").
        unit: &'static str,
    },
}

/// One built-in signal.
pub struct Signal {
    pub builtin: Builtin,
    /// The evidence's `signal`.
    pub name: &'static str,
    /// What the probe reads for it, in words (docs/RUNS.md says the same).
    pub reads: &'static str,
    /// The probe source it needs (`remote::host_probe`), if any.
    pub source: Option<ProbeSource>,
    /// Judged against a reading taken before the wave.
    pub baseline: bool,
    /// Judged against the untouched control hosts over the same window.
    pub controls: bool,
    pub judge: Judge,
}

/// One event a signal found on a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// What makes two hosts' events the same event (a kernel line's kind, a unit's name).
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub threshold: String,
    /// The line that decided it.
    pub raw: String,
    /// When it happened, Unix seconds (host clock).
    pub at: Option<u64>,
    /// The last lines of a failed run's stderr.
    pub tail: Option<String>,
}

/// Every built-in signal.
pub const SIGNALS: &[Signal] = &[
    Signal {
        builtin: Builtin::Reachable,
        name: "reachable",
        reads: "the probe's own login and command: a missed deadline, a refused connection",
        source: None,
        baseline: false,
        // A host and every control failing at once points at the controller's network.
        controls: true,
        judge: Judge::Outcome,
    },
    Signal {
        builtin: Builtin::Script,
        name: "script",
        reads: "the wrapper's runs.log (runs of this version) and failed.log (a failed \
                run's stderr)",
        source: None,
        baseline: false,
        controls: false,
        judge: Judge::Events {
            found: script_runs,
            latest_only: true,
            stamped: false,
        },
    },
    Signal {
        builtin: Builtin::Kernel,
        name: "kernel",
        reads: "`dmesg`: alert lines after a cursor taken before the wave",
        source: Some(ProbeSource::Kernel),
        baseline: true,
        controls: true,
        judge: Judge::Events {
            found: kernel_lines,
            latest_only: false,
            stamped: true,
        },
    },
    Signal {
        builtin: Builtin::Units,
        name: "units",
        reads: "`systemctl --failed`, and `NRestarts` of every loaded service",
        source: Some(ProbeSource::Units),
        baseline: true,
        controls: true,
        judge: Judge::Events {
            found: units_changes,
            latest_only: false,
            stamped: false,
        },
    },
    Signal {
        builtin: Builtin::Oom,
        name: "oom",
        reads: "`oom_kill` in /proc/vmstat",
        source: Some(ProbeSource::Oom),
        baseline: true,
        controls: true,
        judge: Judge::Events {
            found: oom_kills,
            latest_only: false,
            stamped: false,
        },
    },
    Signal {
        builtin: Builtin::Blocked,
        name: "blocked",
        reads: "`procs_blocked` in /proc/stat",
        source: Some(ProbeSource::Blocked),
        baseline: true,
        controls: true,
        judge: Judge::Level {
            value: |_, now| now.procs_blocked.clone().map(|b| Some(b as f64)),
            floor: |t| f64::from(t.blocked),
            unit: "tasks blocked",
        },
    },
    Signal {
        builtin: Builtin::Load,
        name: "load",
        reads: "/proc/loadavg (1-minute) over the online CPUs",
        source: Some(ProbeSource::Load),
        baseline: true,
        controls: true,
        judge: Judge::Level {
            value: |_, now| {
                let cpus = f64::from(now.cpus.unwrap_or(1).max(1));
                now.load1.clone().map(|l| Some(l / cpus))
            },
            floor: |t| t.load_per_core,
            unit: "load per CPU",
        },
    },
    Signal {
        builtin: Builtin::Pressure,
        name: "pressure.cpu",
        reads: "/proc/pressure/cpu: the `some` total, as a share of the time between probes",
        source: Some(ProbeSource::Pressure),
        baseline: true,
        controls: true,
        judge: Judge::Level {
            value: |prev, now| stall(prev, now, |p| p.cpu),
            floor: |t| f64::from(t.pressure_cpu),
            unit: "% of the time stalled on CPU",
        },
    },
    Signal {
        builtin: Builtin::Pressure,
        name: "pressure.memory",
        reads: "/proc/pressure/memory: the `some` total, as a share of the time between probes",
        source: Some(ProbeSource::Pressure),
        baseline: true,
        controls: true,
        judge: Judge::Level {
            value: |prev, now| stall(prev, now, |p| p.memory),
            floor: |t| f64::from(t.pressure_memory),
            unit: "% of the time stalled on memory",
        },
    },
    Signal {
        builtin: Builtin::Pressure,
        name: "pressure.io",
        reads: "/proc/pressure/io: the `some` total, as a share of the time between probes",
        source: Some(ProbeSource::Pressure),
        baseline: true,
        controls: true,
        judge: Judge::Level {
            value: |prev, now| stall(prev, now, |p| p.io),
            floor: |t| f64::from(t.pressure_io),
            unit: "% of the time stalled on I/O",
        },
    },
];

/// The entries of these built-ins.
pub fn enabled(builtins: &[Builtin]) -> Vec<&'static Signal> {
    SIGNALS
        .iter()
        .filter(|s| builtins.contains(&s.builtin))
        .collect()
}

/// The probe sources these built-ins need, each once.
pub fn sources(builtins: &[Builtin]) -> Vec<ProbeSource> {
    let mut out: Vec<ProbeSource> = Vec::new();
    for s in enabled(builtins) {
        if let Some(src) = s.source {
            if !out.contains(&src) {
                out.push(src);
            }
        }
    }
    out
}

/// Some signal needs a baseline before each wave.
pub fn needs_baseline(builtins: &[Builtin]) -> bool {
    enabled(builtins).iter().any(|s| s.baseline)
}

/// Some signal needs control hosts beside each wave.
pub fn needs_controls(builtins: &[Builtin]) -> bool {
    enabled(builtins).iter().any(|s| s.controls)
}

// --- kernel ---

/// A kind of kernel alert line: the fixed strings that make a line one.
pub struct KernelKind {
    pub name: &'static str,
    pub patterns: &'static [&'static str],
}

/// The kernel lines that fail a host, by kind (a line is of the first kind it matches).
/// Each is a message the kernel prints only when something is wrong.
pub const KERNEL: &[KernelKind] = &[
    // The hung-task watchdog: a task in uninterruptible sleep for longer than
    // kernel.hung_task_timeout_secs (120 s by default): "INFO: task raid:42 blocked for
    // more than 120 seconds."
    KernelKind {
        name: "hung task",
        patterns: &["blocked for more than"],
    },
    // Oopses, BUGs, lockups and panics: the kernel itself went wrong.
    KernelKind {
        name: "oops",
        patterns: &[
            "Oops:",
            "BUG:",
            "kernel BUG at",
            "general protection fault",
            "soft lockup",
            "hard LOCKUP",
            "Kernel panic",
            "self-detected stall",
        ],
    },
    // A filesystem remounted itself read-only (ext4 `errors=remount-ro`, an aborted
    // journal): writes fail from now on.
    KernelKind {
        name: "read-only remount",
        patterns: &[
            "Remounting filesystem read-only",
            "remounting filesystem read-only",
            "Aborting journal",
        ],
    },
    // A filesystem found corruption or shut itself down.
    KernelKind {
        name: "filesystem error",
        patterns: &[
            "EXT4-fs error",
            "EXT3-fs error",
            "EXT2-fs error",
            "Corruption detected",
            "Filesystem has been shut down",
            "BTRFS error",
            "BTRFS critical",
        ],
    },
    // The block layer gave up on a request: "I/O error, dev sda, sector ..", "Buffer
    // I/O error on dev ..", a medium error.
    KernelKind {
        name: "I/O error",
        patterns: &["I/O error", "critical medium error", "Medium Error"],
    },
    // Machine-check exceptions: the hardware reported an error (CPU, memory, bus).
    KernelKind {
        name: "machine check",
        patterns: &[
            "Machine check events logged",
            "Machine Check Exception",
            "Hardware Error",
        ],
    },
];

/// Every fixed string that makes a kernel line an alert (the probe's filter).
pub fn kernel_patterns() -> Vec<&'static str> {
    KERNEL
        .iter()
        .flat_map(|k| k.patterns.iter().copied())
        .collect()
}

/// The kind of a kernel alert line, if it is one.
pub fn kernel_kind(line: &str) -> Option<&'static str> {
    KERNEL
        .iter()
        .find(|k| k.patterns.iter().any(|p| line.contains(p)))
        .map(|k| k.name)
}

/// Seconds since boot of a `[ 1234.567890] ...` line.
fn kernel_stamp(line: &str) -> Option<f64> {
    let rest = line.strip_prefix('[')?;
    rest[..rest.find(']')?].trim().parse().ok()
}

fn kernel_lines(_: &[ProbeReport], now: &ProbeReport, _: &Thresholds) -> Source<Vec<Found>> {
    let k = now.kernel.as_ref().map_err(Clone::clone)?;
    let mut kinds: Vec<(&'static str, usize, &String)> = Vec::new();
    for line in &k.lines {
        let Some(kind) = kernel_kind(line) else {
            continue;
        };
        match kinds.iter_mut().find(|(n, ..)| *n == kind) {
            Some(e) => {
                e.1 += 1;
                e.2 = line;
            }
            None => kinds.push((kind, 1, line)),
        }
    }
    // A line's time: the host's clock less the time since the kernel wrote it.
    let at = |line: &str| -> Option<u64> {
        let (clock, up, ts) = (now.clock?, now.uptime?, kernel_stamp(line)?);
        Some(clock.saturating_sub((up - ts).max(0.0) as u64))
    };
    Ok(kinds
        .into_iter()
        .map(|(kind, n, line)| Found {
            key: kind.to_string(),
            before: Some("0".into()),
            after: Some(format!("{n} {kind} line{}", if n == 1 { "" } else { "s" })),
            threshold: "any alert line after the wave's cursor".into(),
            raw: line.clone(),
            at: at(line),
            tail: None,
        })
        .collect())
}

// --- units, oom ---

fn units_changes(base: &[ProbeReport], now: &ProbeReport, t: &Thresholds) -> Source<Vec<Found>> {
    let u = now.units.as_ref().map_err(Clone::clone)?;
    let known: BTreeSet<&String> = base
        .iter()
        .filter_map(|b| b.units.as_ref().ok())
        .flat_map(|b| b.failed.iter())
        .collect();
    let before = base.last().and_then(|b| b.units.as_ref().ok());
    let mut out = Vec::new();
    for unit in &u.failed {
        if known.contains(unit) {
            continue;
        }
        out.push(Found {
            key: format!("failed {unit}"),
            before: Some(format!("{} failed", known.len())),
            after: Some(format!("{} failed", u.failed.len())),
            threshold: "no newly failed unit".into(),
            raw: format!("{unit} failed (systemctl --failed)"),
            at: now.clock,
            tail: None,
        });
    }
    for (unit, &n) in &u.restarts {
        let was = before
            .and_then(|b| b.restarts.get(unit))
            .copied()
            .unwrap_or(0);
        // NRestarts starts again at 0 when the unit is started by hand.
        let grew = if n >= was { n - was } else { n };
        if grew >= u64::from(t.restarts) {
            out.push(Found {
                key: format!("restarts {unit}"),
                before: Some(format!("NRestarts {was}")),
                after: Some(format!("NRestarts {n}")),
                threshold: format!("fewer than {} restarts since the baseline", t.restarts),
                raw: format!("{unit} restarted {grew} times since the baseline (a restart storm)"),
                at: now.clock,
                tail: None,
            });
        }
    }
    Ok(out)
}

fn oom_kills(base: &[ProbeReport], now: &ProbeReport, _: &Thresholds) -> Source<Vec<Found>> {
    let n = now.oom_kill.clone()?;
    let Some(was) = base.iter().rev().find_map(|b| b.oom_kill.clone().ok()) else {
        return Ok(Vec::new());
    };
    if n <= was {
        return Ok(Vec::new());
    }
    Ok(vec![Found {
        key: "oom".into(),
        before: Some(format!("oom_kill {was}")),
        after: Some(format!("oom_kill {n}")),
        threshold: "no OOM kill since the baseline".into(),
        raw: format!(
            "the kernel's OOM killer killed {} process{} since the baseline (/proc/vmstat oom_kill)",
            n - was,
            if n - was == 1 { "" } else { "es" }
        ),
        at: now.clock,
        tail: None,
    }])
}

// --- script ---

fn script_runs(_: &[ProbeReport], now: &ProbeReport, _: &Thresholds) -> Source<Vec<Found>> {
    Ok(now
        .runs
        .iter()
        .filter(|r| r.exit != 0)
        .map(|r| {
            let took = r.end.saturating_sub(r.start);
            let raw = if r.timed_out() {
                format!(
                    "a run was killed by its timeout after {took}s (exit {})",
                    r.exit
                )
            } else {
                format!("a run exited {} after {took}s", r.exit)
            };
            Found {
                key: format!("run {}", r.start),
                before: None,
                after: None,
                threshold: "every run exits 0 within the script's timeout".into(),
                raw,
                at: Some(r.start),
                tail: r.stderr.clone(),
            }
        })
        .collect())
}

// --- pressure ---

/// Percent of the time between two probes that some task stalled on a resource.
fn stall(
    prev: &ProbeReport,
    now: &ProbeReport,
    get: fn(&super::probe_report::Pressure) -> u64,
) -> Source<Option<f64>> {
    let p1 = now.pressure.as_ref().map_err(Clone::clone)?;
    let Ok(p0) = prev.pressure.as_ref() else {
        return Ok(None);
    };
    let (Some(t0), Some(t1)) = (prev.uptime, now.uptime) else {
        return Ok(None);
    };
    let (a, b) = (get(p0), get(p1));
    // Another boot between the two (the counters start again), or no time between them.
    if t1 <= t0 || b < a {
        return Ok(None);
    }
    Ok(Some((b - a) as f64 / ((t1 - t0) * 1e6) * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_has_an_entry_and_names_are_unique() {
        for b in Builtin::ALL {
            assert!(SIGNALS.iter().any(|s| s.builtin == b), "{b:?}");
        }
        let names: BTreeSet<&str> = SIGNALS.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SIGNALS.len());
        // Every source is read for some signal.
        for src in ProbeSource::ALL {
            assert!(SIGNALS.iter().any(|s| s.source == Some(src)), "{src:?}");
        }
    }

    #[test]
    fn what_the_builtins_need() {
        use Builtin::*;
        assert_eq!(sources(&[Reachable, Script]), Vec::<ProbeSource>::new());
        assert!(!needs_baseline(&[Reachable, Script]));
        assert!(needs_controls(&[Reachable]));
        assert!(!needs_controls(&[Script]));
        assert_eq!(
            sources(&[Pressure, Kernel, Load]),
            [
                ProbeSource::Kernel,
                ProbeSource::Load,
                ProbeSource::Pressure
            ]
        );
        assert!(needs_baseline(&[Oom]));
    }

    #[test]
    fn kernel_lines_are_sorted_into_kinds() {
        let cases = [
            (
                "[  242.1] INFO: task raid-check:4242 blocked for more than 120 seconds.",
                Some("hung task"),
            ),
            (
                "[1.0] BUG: unable to handle page fault for address: ffff",
                Some("oops"),
            ),
            (
                "[1.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s!",
                Some("oops"),
            ),
            (
                "[1.0] EXT4-fs (sda1): Remounting filesystem read-only",
                Some("read-only remount"),
            ),
            (
                "[1.0] EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2",
                Some("filesystem error"),
            ),
            (
                "[1.0] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ)",
                Some("I/O error"),
            ),
            (
                "[1.0] mce: [Hardware Error]: Machine check events logged",
                Some("machine check"),
            ),
            (
                "[1.0] new mount options do not match the existing superblock",
                None,
            ),
            ("[1.0] XFS (sda1): Mounting V5 Filesystem", None),
        ];
        for (line, kind) in cases {
            assert_eq!(kernel_kind(line), kind, "{line}");
            if kind.is_some() {
                assert!(kernel_patterns().iter().any(|p| line.contains(p)), "{line}");
            }
        }
        assert_eq!(kernel_stamp("[  242.125] x"), Some(242.125));
        assert_eq!(kernel_stamp("no stamp"), None);
    }
}
