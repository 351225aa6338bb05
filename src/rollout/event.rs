//! PURE: what a run is (its [`Plan`], fixed when it begins) and what can happen to it
//! ([`Event`]). The journal is the list of these events, each in a [`Record`]; the state
//! machine in `step/` folds them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::verdict::Verdict;
use super::watched::Watched;
use crate::inventory::Host;
use crate::spec::{ActivationKind, Builtin, Check, OnFailure, Thresholds};

/// The journal's format version, carried by every record.
pub const FORMAT: u32 = 1;

/// One journaled event and when it happened (Unix milliseconds, the controller's clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`FORMAT`]).
    pub v: u32,
    /// Unix milliseconds.
    pub at: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    pub fn new(at: u64, event: Event) -> Record {
        Record {
            v: FORMAT,
            at,
            event,
        }
    }
}

/// What a run does to its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// A rollout in waves (`apply`).
    Apply,
    /// `purge NAME`: every version of a wavectl-installed script, from every host.
    Purge,
    /// `purge --path PATH`: a script wavectl never installed.
    PurgePath,
}

/// What an apply installs and how it watches the hosts: the parts of the spec the run
/// needs, fixed when it begins, so `resume` needs neither the spec nor its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub install_path: String,
    pub mode: u32,
    /// Lowercase hex sha256 of the script; its bytes are kept beside the journal.
    pub sha256: String,
    #[serde(with = "ms")]
    pub script_timeout: std::time::Duration,
    pub activation: ActivationKind,
    pub schedule: String,
    pub run_on_install: bool,
    #[serde(with = "ms")]
    pub interval: std::time::Duration,
    #[serde(with = "ms")]
    pub probe_timeout: std::time::Duration,
    pub builtins: Vec<Builtin>,
    /// How the built-ins are judged (`[health]`'s thresholds; defaults for a journal
    /// written before they existed).
    #[serde(default)]
    pub thresholds: Thresholds,
    pub checks: Vec<Check>,
    /// How long a probation host waits for the controller before it reverts itself.
    #[serde(with = "ms")]
    pub lease: std::time::Duration,
    /// The operator said `--force` (replace a file that belongs to a package).
    pub force: bool,
}

/// What the run acts on. (One per run: the size of its largest variant does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// Install this rollout in waves.
    Apply(Deployment),
    /// Remove every version of rollout `name` (the plan's name).
    Purge,
    /// Remove the script at `path`, which wavectl never installed.
    PurgePath { path: String, force: bool },
}

impl Target {
    pub fn kind(&self) -> RunKind {
        match self {
            Target::Apply(_) => RunKind::Apply,
            Target::Purge => RunKind::Purge,
            Target::PurgePath { .. } => RunKind::PurgePath,
        }
    }
}

/// The decisions' settings, copied from the spec (and flags) when the run begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Bad hosts tolerated over the whole run.
    pub max_unhealthy: usize,
    pub on_failure: OnFailure,
    #[serde(with = "ms")]
    pub bake: std::time::Duration,
    pub min_runs: u32,
    /// Hosts installed or confirmed at once.
    pub concurrency: usize,
    /// Hosts removed (or asked) at once.
    pub fanout: usize,
    /// Deadline of one login (TCP, key exchange and authentication).
    #[serde(with = "ms")]
    pub login_timeout: std::time::Duration,
    /// Sample each wave's hosts before it is deployed.
    pub baseline: bool,
    /// Probe still-untouched targets beside the wave (continuous signals need them).
    pub controls: bool,
    /// `[gates]`: the waves after whose bake the run waits for `wavectl promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Gates>,
}

/// `[gates]`, as a run keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gates {
    /// Wave numbers (1-based): after each one's bake the run waits for a promote.
    pub after: Vec<usize>,
    /// No promote by then: the run rolls back.
    #[serde(with = "ms")]
    pub timeout: std::time::Duration,
}

/// A freeze: applies of `rollout` (of every rollout, when `None`) are refused, and a
/// running one waits at its next wave boundary, until it is lifted or runs out. Kept in
/// the store (`wavectl freeze`), and in a run's journal when the run sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The rollout frozen; `None`: every rollout (`--all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Who froze it: `user@host`.
    pub by: String,
    pub reason: String,
    /// When (Unix ms).
    pub at: u64,
    /// When it runs out by itself (Unix ms); `None`: when it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl Freeze {
    /// It holds `rollout` at `now` (Unix ms).
    pub fn covers(&self, rollout: &str, now: u64) -> bool {
        self.rollout.as_deref().is_none_or(|r| r == rollout) && self.until.is_none_or(|u| now < u)
    }

    /// What it freezes: `rollout NAME`, or `every rollout`.
    pub fn scope(&self) -> String {
        match &self.rollout {
            Some(r) => format!("rollout {r}"),
            None => "every rollout".into(),
        }
    }

    /// "frozen by ann@bastion-1 at T: REASON (until T)", for messages.
    pub fn describe(&self) -> String {
        format!(
            "frozen by {} at {}: {} ({})",
            self.by,
            super::step::utc(self.at / 1000),
            self.reason,
            match self.until {
                Some(u) => format!("until {}", super::step::utc(u.div_ceil(1000))),
                None => "until `wavectl unfreeze`".into(),
            }
        )
    }
}

/// The first freeze in `all` that holds `rollout` at `now`.
pub fn freeze_of<'a>(all: &'a [Freeze], rollout: &str, now: u64) -> Option<&'a Freeze> {
    all.iter().find(|f| f.covers(rollout, now))
}

/// `wavectl promote`: the run goes on past the gate after `wave`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub wave: usize,
    /// `promote by USER@HOST`.
    pub by: String,
}

/// Everything a run is, fixed by its first record. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run: String,
    /// The rollout name (the lock's name too; for `purge --path`, `path-<hash>`).
    pub name: String,
    pub target: Target,
    /// The hosts, with address, port and user as they were resolved.
    pub hosts: Vec<Host>,
    /// Host names per wave (one wave holding every host for a purge).
    pub waves: Vec<Vec<String>>,
    pub policy: Policy,
    pub spec: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    /// The local user who started the run.
    pub user: String,
    /// The approved plan it runs, if it was started from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approved>,
    /// The command line that started it.
    pub command: Vec<String>,
    /// What the preflight found before the run began (absent: no preflight, as in a
    /// purge or a journal written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    /// The redundancy groups (`spread_by`) the targets belong to, with the inventory
    /// hosts of those groups that are not targets: sampled before each wave that
    /// touches their group, never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Groups>,
}

/// The preflight of an apply: every target's SSH banner, then a login to the first
/// wave's hosts, before any change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    /// Targets checked (those of the spec, the skipped ones included).
    pub checked: usize,
    /// Hosts that answered a login (the first wave's).
    pub logins: Vec<String>,
    /// Targets offline before the run, left out by `--skip-unreachable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Offline>,
}

/// A target that did not answer the preflight, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offline {
    pub host: String,
    pub reason: String,
}

/// The redundancy groups of a run: the `spread_by` label, and the inventory hosts that
/// share a group with a target without being one (the standby outside the rollout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Groups {
    pub label: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<Host>,
}

impl Plan {
    pub fn kind(&self) -> RunKind {
        self.target.kind()
    }

    pub fn deployment(&self) -> Option<&Deployment> {
        match &self.target {
            Target::Apply(d) => Some(d),
            _ => None,
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// A target, or an inventory host of a target's group (only ever sampled).
    pub fn member(&self, name: &str) -> Option<&Host> {
        self.host(name).or_else(|| {
            self.groups
                .as_ref()
                .and_then(|g| g.others.iter().find(|h| h.name == name))
        })
    }

    /// The targets left out by the preflight.
    pub fn skipped(&self) -> &[Offline] {
        self.preflight
            .as_ref()
            .map_or(&[], |p| p.skipped.as_slice())
    }
}

/// The approved plan a run carries out: its hash and who approved it (the principals the
/// allowed-signers file gave the verified signatures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    pub plan: PathBuf,
    pub hash: String,
    pub signers: Vec<String>,
}

/// A host action. The state machine orders it; the driver carries it out and reports a
/// [`HostResult`]. The event that made the machine order it is journaled before the
/// action starts: that is the action's intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Install the script, its wrapper, manifest and activation.
    Install,
    /// Start one supervised run (`run_on_install`).
    StartRun,
    /// Set the manifest `confirmed`, over a fresh connection.
    Confirm,
    /// Return the host to what it held before the run (or, for a purge, remove everything).
    Remove,
    /// Ask the host what is true (after a controller died with an action in flight).
    Settle,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Install => "install",
            Op::StartRun => "start run",
            Op::Confirm => "confirm",
            Op::Remove => "remove",
            Op::Settle => "settle",
        }
    }
}

/// Why the host refused us for a reason of ours, not of the script's: host key unknown or
/// changed, authentication denied, the install path owned by another rollout or a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: String,
    /// How to fix it.
    pub help: String,
}

/// What the host says of this run, asked after a controller died with an action in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The host holds this run's install.
    Ours {
        confirmed: bool,
        /// Runs of this version in its `runs.log`.
        runs: u32,
        /// A copy is running now.
        running: bool,
    },
    /// An install of this run began and did not finish.
    Partial,
    /// Nothing of this run is on the host (`other`: the run whose install it holds).
    Absent { other: Option<String> },
    /// The lease ran out and the host reverted itself (`clean`: the revert checked out;
    /// otherwise the host may still hold part of the install).
    Reverted {
        lease_until: u64,
        at: u64,
        clean: bool,
    },
}

/// What a host action gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostResult {
    Installed {
        /// A pre-wavectl original was kept.
        backup: bool,
        /// The run whose confirmed version was kept for rollback (an upgrade).
        prev: Option<String>,
        /// The same command also started the first run (`run_on_install`): no separate
        /// start is needed. Absent in journals written before it existed: not started.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        started: bool,
    },
    Started,
    Confirmed,
    /// The host holds nothing of the run any more (verified).
    Removed {
        /// What was found and done.
        detail: String,
    },
    /// The run's install is not on the host, but the rollout stays there under a newer
    /// run, `by` (the run's version, if it was kept for that run's rollback, was dropped
    /// from the host's history: no later rollback brings it back).
    Superseded {
        by: String,
        /// What was found and done.
        detail: String,
    },
    Settled(Finding),
    /// The action failed. `touched`: it may have changed the host (false: no login,
    /// nothing happened there).
    Failed {
        verdict: Verdict,
        touched: bool,
    },
    /// The host refused us for a reason of ours; nothing was changed there.
    Refused(Refusal),
}

/// The host no longer holds this run's install, seen by a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lost {
    /// Its lease ran out and it reverted itself (host clock, Unix seconds); `clean`: the
    /// revert checked out.
    Reverted {
        lease_until: u64,
        at: u64,
        clean: bool,
    },
    /// Its manifest names another run (or none).
    Replaced { owner: Option<String> },
}

/// A host's verdict after a probe, with the runs of this version it has made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostVerdict {
    pub host: String,
    pub verdict: Verdict,
    pub runs: u32,
    /// The host no longer holds this run's install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<Lost>,
}

/// Why a controller process took a run up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intent {
    /// `resume`: carry on where it stopped.
    Resume,
    /// `rollback RUN`: return every host to what it held before the run.
    Rollback,
    /// `reconcile`: finish what is unfinished (pending removals, unconfirmed hosts).
    Reconcile,
    /// `reconcile` of an apply whose controller died: the lease would revert its hosts
    /// anyway; reconcile does it now.
    Orphaned,
}

/// A controller process takes the run up (the first one begins it with `Begin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attach {
    pub pid: u32,
    pub intent: Intent,
    /// Retry hosts left pending, with backoff, until all are clean.
    pub until_done: bool,
    /// Hosts removed at once from now on, if given.
    pub fanout: Option<usize>,
    pub user: String,
    pub command: Vec<String>,
}

/// Why the run was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// `SIGINT`, `SIGTERM`, or a request through the store (`abort by USER@HOST`,
    /// `purge by USER@HOST`).
    pub by: String,
}

/// Everything that can happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run begins (apply, purge, purge --path), with the controller's pid.
    Begin {
        plan: Box<Plan>,
        pid: u32,
        /// Retry hosts left pending, with backoff, until all are clean (purge).
        until_done: bool,
    },
    Attach(Attach),
    /// The operator asked to stop (signal or `abort`).
    Stop(StopRequest),
    /// Time passed (a wake-up the machine asked for).
    Tick,
    /// The wave's hosts (and controls) were sampled before deploy, and the other hosts
    /// of the redundancy groups it touches (`group`: what each showed).
    BaselineDone {
        wave: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        group: Vec<Sample>,
        /// The health watch's baselines of the hosts sampled (absent in journals written
        /// before it was kept: a resumed run then takes them from its first probes).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        watch: Vec<Watched>,
    },
    /// A host action finished.
    Result {
        host: String,
        op: Op,
        result: HostResult,
    },
    /// A probe round of the bake of `wave` finished, with the hosts whose verdict (or
    /// count of runs) changed; all of them are judged together.
    Round {
        wave: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verdicts: Vec<HostVerdict>,
        /// What the health watch counts of each host whose counts changed in the round
        /// (streaks, failed checks, the last reading): a resumed bake goes on from them.
        /// Absent in journals written before it was kept: their counts start over.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        watch: Vec<Watched>,
    },
    /// The operator let the run go on past the gate after `wave` (`wavectl promote`).
    Promote(Promotion),
    /// The freeze that holds the run's rollout changed, as the run saw it in the store
    /// (`None`: lifted). A frozen run starts no new wave.
    Freeze {
        freeze: Option<Freeze>,
    },
}

/// What one host of a wave's redundancy groups showed before the wave (a read-only probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub host: String,
    #[serde(flatten)]
    pub seen: Seen,
}

/// A group member's probe: it answered (and these health checks failed), or it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "seen", rename_all = "kebab-case")]
pub enum Seen {
    Answered {
        /// The spec's health checks that failed there, each `NAME: exit N: OUTPUT`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failing: Vec<String>,
    },
    NoAnswer {
        reason: String,
    },
}

/// `Duration` as whole milliseconds in the journal.
pub mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
