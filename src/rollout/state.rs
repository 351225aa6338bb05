//! PURE: the state of a run — per host, per wave, the failure budget and where the run
//! stands — as the state machine (`step/`) leaves it after each event. `status`,
//! `resume`, `rollback` and `reconcile` read exactly this, rebuilt by replaying the journal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::{Op, Plan, RunKind};
use super::verdict::Verdict;
use super::watched::HostWatch;

/// What this run may have left on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Nothing of this run can be on the host.
    Untouched,
    /// An action may have changed the host and its result is not known (or, in a purge,
    /// the host is still to be visited): it may hold the script.
    Unknown,
    /// This run's install is in place, in probation.
    Installed,
    /// This run's install is in place and confirmed.
    Confirmed,
    /// An install that failed part-way: the host may hold some of it.
    Partial,
    /// Verified to hold nothing of this run (removed, or never got it).
    Clean,
    /// A removal did not finish (unreachable, hung, failed): it may still hold the script.
    Pending,
    /// The lease ran out and the host reverted itself: it holds nothing of this run.
    Reverted,
    /// It holds nothing of this run, but the rollout stays on it under a newer run (the
    /// detail names it): not clean.
    Superseded,
}

impl HostState {
    /// Every state, in the order `status` and the metrics list them.
    pub const ALL: [HostState; 9] = [
        HostState::Untouched,
        HostState::Unknown,
        HostState::Installed,
        HostState::Confirmed,
        HostState::Partial,
        HostState::Clean,
        HostState::Pending,
        HostState::Reverted,
        HostState::Superseded,
    ];

    /// Its name, as the journal and `status` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Untouched => "untouched",
            HostState::Unknown => "unknown",
            HostState::Installed => "installed",
            HostState::Confirmed => "confirmed",
            HostState::Partial => "partial",
            HostState::Clean => "clean",
            HostState::Pending => "pending",
            HostState::Reverted => "reverted",
            HostState::Superseded => "superseded",
        }
    }

    /// The host may hold some of this run's files (a rollback must visit it).
    pub fn may_hold(self) -> bool {
        matches!(
            self,
            HostState::Unknown
                | HostState::Installed
                | HostState::Confirmed
                | HostState::Partial
                | HostState::Pending
        )
    }

    /// A removal is owed: the host may hold an unfinished part of the run.
    pub fn unfinished(self) -> bool {
        matches!(
            self,
            HostState::Unknown | HostState::Partial | HostState::Pending
        )
    }
}

/// One host of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRun {
    pub host: String,
    /// 1-based wave (0 in a purge).
    pub wave: usize,
    pub state: HostState,
    /// The action in flight, ordered by the machine and not finished.
    pub op: Option<Op>,
    /// The action a dead controller had in flight (its result is unknown).
    pub lost: Option<Op>,
    /// The last verdict.
    pub verdict: Option<Verdict>,
    /// Runs of this version seen in its `runs.log`.
    pub runs: u32,
    /// Its supervised first run was started.
    pub started: bool,
    /// One line on what the last action did, or why it failed.
    pub detail: String,
    /// The epoch in which `tried` was filled.
    pub epoch: u32,
    /// The actions tried on this host in that epoch (each is tried once per epoch).
    pub tried: Vec<Op>,
    /// Its next probe (or its confirmation) must log in afresh: it was installed and has
    /// not answered over a fresh login since — the evidence that it still takes new
    /// logins, not only the session kept from its install.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh_owed: bool,
}

impl HostRun {
    /// A host of the run as the run plan first lists it: nothing done to it yet.
    pub fn new(host: String, wave: usize, state: HostState) -> HostRun {
        HostRun {
            host,
            wave,
            state,
            op: None,
            lost: None,
            verdict: None,
            runs: 0,
            started: false,
            detail: String::new(),
            epoch: 0,
            tried: Vec::new(),
            fresh_owed: false,
        }
    }
}

/// A wave's bake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bake {
    pub wave: usize,
    /// Unix ms.
    pub since: u64,
    /// The bake's end (Unix ms); it also lasts until every host ran `min_runs` times.
    pub until: u64,
    /// After this, hosts short of `min_runs` are degraded.
    pub limit: u64,
    /// Probe rounds done.
    pub rounds: u32,
    /// A probe round was ordered and has not reported.
    #[serde(default)]
    pub probing: bool,
    /// When the next probe round is due (Unix ms): an interval after the last one was
    /// ordered.
    #[serde(default)]
    pub next_round: u64,
    /// When the last round reported (Unix ms): the bake is judged over (its end, the
    /// `min_runs` limit) on a round's report, never on a wake-up between rounds.
    #[serde(default)]
    pub reported: u64,
    /// The round that may close the bake was ordered with the wave's hosts logging in
    /// afresh (once per bake).
    #[serde(default)]
    pub fresh_closed: bool,
}

/// Where an apply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum Stage {
    /// Sampling the wave's hosts and the controls before deploy.
    Baseline {
        wave: usize,
    },
    Deploy {
        wave: usize,
    },
    Bake(Bake),
    /// The wave passed its bake and waits for `wavectl promote` until `until` (Unix ms),
    /// then rolls back; its hosts are still probed.
    Gate {
        wave: usize,
        since: u64,
        until: u64,
        /// The wave's bake, whose probe rounds go on while it waits.
        bake: Bake,
    },
    /// The wave passed (and any gate): the next one waits while the rollout is frozen;
    /// the hosts so far are still probed.
    Frozen {
        wave: usize,
        /// The wave's bake, whose probe rounds go on while it waits.
        bake: Bake,
    },
    /// Every wave passed: confirming the healthy hosts.
    Confirm,
}

/// Why a run rolls back (or removes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum Why {
    /// More unhealthy hosts than `max_unhealthy`.
    Unhealthy,
    /// Same, with `on_failure = "pause"`.
    Pause,
    /// A verdict was inconclusive (the control hosts moved as much as `host`, or failed
    /// with it): the run pauses for the operator, whatever `on_failure` says.
    Inconclusive { host: String, reason: String },
    /// A host of a redundancy group the next wave touches is unhealthy or unreachable:
    /// the wave does not start; the run pauses for the operator.
    Group {
        group: String,
        host: String,
        reason: String,
    },
    /// The operator stopped the run (signal or `abort`).
    Operator { by: String },
    /// A host refused us for our own reasons.
    Refused {
        host: String,
        reason: String,
        help: String,
    },
    /// `wavectl rollback RUN`.
    Rollback,
    /// `wavectl reconcile`.
    Reconcile,
    /// `wavectl purge`.
    Purge,
    /// `reconcile` of an apply whose controller died.
    Orphaned,
    /// Nobody promoted the run past the gate after `wave` within `[gates] timeout` (ms).
    GateTimeout { wave: usize, timeout: u64 },
}

impl Why {
    /// A removal the operator ran as a command of its own: a stop request halts it.
    /// (An apply's own rollback goes on: stopping is what it is doing.)
    pub fn is_command(&self) -> bool {
        matches!(
            self,
            Why::Rollback | Why::Reconcile | Why::Purge | Why::Orphaned
        )
    }

    /// The run stops and waits for the operator (`resume` or `rollback`).
    pub fn is_pause(&self) -> bool {
        matches!(
            self,
            Why::Pause | Why::Inconclusive { .. } | Why::Group { .. }
        )
    }
}

fn pause_why() -> Why {
    Why::Pause
}

/// How a run ended (until a later command takes it up again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "kebab-case")]
pub enum End {
    /// Every healthy host confirmed, every other host clean.
    Done,
    /// Healthy, but some hosts could not be confirmed or cleaned.
    Unconfirmed,
    /// Stopped on a health failure with `on_failure = "pause"`, or on an inconclusive
    /// verdict (`why` says which); hosts left as they are.
    Paused {
        stage: Stage,
        #[serde(default = "pause_why")]
        why: Why,
    },
    /// Every host that may have held the script is clean.
    Clean { why: Why },
    /// Every host that may have held this run's install is rid of it, but some keep the
    /// rollout under a newer run (hosts in state `superseded`): not clean.
    Superseded { why: Why },
    /// Some hosts may still hold it.
    Pending { why: Why },
}

/// Where the run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// No `Begin` record yet.
    New,
    /// An apply working through its waves.
    Running {
        stage: Stage,
    },
    /// No new action starts; those in flight finish, then the run rolls back (or pauses).
    Stopping {
        why: Why,
        stage: Option<Stage>,
    },
    /// Removing from every host that may hold the script.
    Removing {
        why: Why,
    },
    /// Waiting before the next removal pass (`--until-done`).
    Backoff {
        why: Why,
        until: u64,
    },
    Ended {
        end: End,
    },
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub plan: Option<Plan>,
    pub status: Status,
    pub hosts: Vec<HostRun>,
    /// Each bad host's first bad verdict, in the order they went bad (the failure budget).
    pub unhealthy: Vec<(String, Verdict)>,
    /// Bad hosts an operator accepted by resuming a paused run.
    pub accepted: usize,
    /// Control hosts of the current wave.
    pub controls: Vec<String>,
    /// The operator asked to stop.
    pub stopped: bool,
    pub until_done: bool,
    /// Removal passes so far in this phase.
    pub pass: u32,
    /// Bumped whenever a new phase or pass begins; each action is tried once per epoch.
    pub epoch: u32,
    /// Unix ms of the first record, and of the latest.
    pub started: u64,
    pub now: u64,
    /// Unix ms of the latest lease renewal (an install or a probe round).
    pub renewed: u64,
    /// The pid of the controller that wrote the latest `Begin` or `Attach`.
    pub pid: u32,
    /// The run's end is recorded (Unix ms) once it ends.
    pub ended: Option<u64>,
    /// The freeze holding the rollout, as the run last saw it in the store.
    #[serde(default)]
    pub frozen: Option<super::event::Freeze>,
    /// What the health watch remembers of each probed host (baselines, streaks), as the
    /// rounds journaled it: a resumed run's watch starts from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watch: BTreeMap<String, HostWatch>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState::new()
    }
}

impl RunState {
    pub fn new() -> RunState {
        RunState {
            plan: None,
            status: Status::New,
            hosts: Vec::new(),
            unhealthy: Vec::new(),
            accepted: 0,
            controls: Vec::new(),
            stopped: false,
            until_done: false,
            pass: 0,
            epoch: 0,
            started: 0,
            now: 0,
            renewed: 0,
            pid: 0,
            ended: None,
            frozen: None,
            watch: BTreeMap::new(),
        }
    }

    /// The freeze that holds the run now (by its records' time), if one does.
    pub fn freeze(&self) -> Option<&super::event::Freeze> {
        let name = self.plan.as_ref().map_or("", |p| p.name.as_str());
        self.frozen.as_ref().filter(|f| f.covers(name, self.now))
    }

    /// The bake whose probe rounds are going on: a wave's bake, or the bake of the wave a
    /// run waits after (at a gate or a freeze).
    pub fn bake(&self) -> Option<&Bake> {
        match &self.status {
            Status::Running {
                stage: Stage::Bake(b) | Stage::Gate { bake: b, .. } | Stage::Frozen { bake: b, .. },
            } => Some(b),
            _ => None,
        }
    }

    pub(crate) fn bake_mut(&mut self) -> Option<&mut Bake> {
        match &mut self.status {
            Status::Running {
                stage: Stage::Bake(b) | Stage::Gate { bake: b, .. } | Stage::Frozen { bake: b, .. },
            } => Some(b),
            _ => None,
        }
    }

    /// Waiting at a gate: the wave, since when and until when (Unix ms).
    pub fn gate(&self) -> Option<(usize, u64, u64)> {
        match self.status {
            Status::Running {
                stage: Stage::Gate {
                    wave, since, until, ..
                },
            } => Some((wave, since, until)),
            _ => None,
        }
    }

    pub fn kind(&self) -> Option<RunKind> {
        self.plan.as_ref().map(Plan::kind)
    }

    pub fn host(&self, name: &str) -> Option<&HostRun> {
        self.hosts.iter().find(|h| h.host == name)
    }

    pub(crate) fn host_mut(&mut self, name: &str) -> Option<&mut HostRun> {
        self.hosts.iter_mut().find(|h| h.host == name)
    }

    /// The run has ended (a later command may take it up again).
    pub fn is_ended(&self) -> bool {
        matches!(self.status, Status::Ended { .. })
    }

    /// The end, if ended.
    pub fn end(&self) -> Option<&End> {
        match &self.status {
            Status::Ended { end } => Some(end),
            _ => None,
        }
    }

    /// Actions in flight.
    pub fn in_flight(&self) -> usize {
        self.hosts.iter().filter(|h| h.op.is_some()).count()
    }

    /// The bad host and its verdict, if `host` went bad in this run.
    pub fn unhealthy_verdict(&self, host: &str) -> Option<&Verdict> {
        self.unhealthy
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, v)| v)
    }

    pub fn is_unhealthy(&self, host: &str) -> bool {
        self.unhealthy_verdict(host).is_some()
    }

    /// Hosts that may hold this run's files.
    pub fn may_hold(&self) -> impl Iterator<Item = &HostRun> {
        self.hosts.iter().filter(|h| h.state.may_hold())
    }

    /// A probe round the machine ordered has not reported.
    pub fn round_in_flight(&self) -> bool {
        self.bake().is_some_and(|b| b.probing)
    }

    /// During a bake: the wave, the hosts to probe (every installed host so far, not
    /// busy), and the controls.
    pub fn probing(&self) -> Option<(usize, Vec<&str>, Vec<&str>)> {
        // A run waiting at a gate or a freeze keeps probing (so leases are renewed).
        let wave = match self.status {
            Status::Running {
                stage: Stage::Bake(b),
            } => b.wave,
            Status::Running {
                stage: Stage::Gate { wave, .. } | Stage::Frozen { wave, .. },
            } => wave,
            _ => return None,
        };
        let hosts = self
            .hosts
            .iter()
            .filter(|h| h.state == HostState::Installed && h.op.is_none() && h.wave <= wave)
            .map(|h| h.host.as_str())
            .collect();
        let controls = self.controls.iter().map(String::as_str).collect();
        Some((wave, hosts, controls))
    }

    /// A short name of where the run stands, for `status` and `--json`.
    pub fn status_name(&self) -> &'static str {
        match &self.status {
            Status::New => "new",
            Status::Running {
                stage: Stage::Confirm,
            } => "confirming",
            Status::Running {
                stage: Stage::Gate { .. },
            } => "gated",
            Status::Running {
                stage: Stage::Frozen { .. },
            } => "frozen",
            Status::Running { .. } => "running",
            Status::Stopping { .. } => "stopping",
            Status::Removing { why, .. } | Status::Backoff { why, .. } => match why {
                Why::Purge => "purging",
                Why::Reconcile => "reconciling",
                _ => "rolling-back",
            },
            Status::Ended { end } => match end {
                End::Done => "done",
                End::Unconfirmed => "unconfirmed",
                End::Paused { .. } => "paused",
                End::Clean { why } => match why {
                    Why::Purge => "purged",
                    Why::Reconcile => "reconciled",
                    Why::Operator { .. } => "aborted",
                    Why::Refused { .. } => "refused",
                    _ => "rolled-back",
                },
                End::Pending { .. } => "incomplete",
                End::Superseded { .. } => "superseded",
            },
        }
    }
}
