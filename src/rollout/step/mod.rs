//! PURE: the run's decisions — `step(state, record) → actions`. No I/O and no clock: time
//! arrives in the records. The driver journals a record, then steps, then carries out
//! the actions; replaying a journal is folding its records through this same function.
//!
//! Here: `step` itself, a run's beginning and a controller taking it up; beside it,
//! `results` (what host actions and rounds gave), `orders` (which host action each host
//! needs, within the limits), `bake` (probe rounds, fresh logins), `holds` (entering a
//! wave, and the group holds, gates and freezes at its boundary), `advance` (the next
//! phase, wave, pass or end).

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use super::event::{
    Attach, Event, Finding, HostResult, HostVerdict, Intent, Lost, Op, Plan, Record, RunKind,
    Sample, Seen,
};
use super::state::{Bake, End, HostRun, HostState, RunState, Stage, Status, Why};
use super::verdict::{Evidence, Health, Verdict, CHECK_STRIKES};
use crate::spec::OnFailure;

mod advance;
mod bake;
mod holds;
mod orders;
mod results;

use advance::*;
use bake::*;
use holds::*;
use orders::*;
use results::*;

pub use bake::fresh_logins;
pub use holds::{group_hold, group_members};

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Carry out `op` on `host` and report its [`HostResult`]; `fresh`: over a new
    /// login, not the connection kept for the host (a confirmation the host owes one).
    Host { host: String, op: Op, fresh: bool },
    /// Sample the wave's hosts and the controls, and once the other hosts of the
    /// redundancy groups the wave touches (`group`, read-only), then report
    /// `BaselineDone` with what each of `group` showed.
    Baseline {
        wave: usize,
        hosts: Vec<String>,
        controls: Vec<String>,
        group: Vec<String>,
    },
    /// Probe these hosts (the installed hosts of the bake so far) and the controls once,
    /// then report `Round`. Those of `owed` are probed over a new login only (they owe
    /// one since their install); those of `fresh` log in afresh beside the connection
    /// kept for them and are judged on the new login: see [`fresh_logins`].
    Probe {
        wave: usize,
        hosts: Vec<String>,
        controls: Vec<String>,
        owed: Vec<String>,
        fresh: Vec<String>,
    },
    /// The bake is over: drop the probe round in flight (it reports nothing).
    EndProbe,
    /// Send a `Tick` at this time (Unix ms).
    WakeAt(u64),
}

/// The most the controls of a wave are.
pub const CONTROLS: usize = 3;
/// First wait between removal passes of `--until-done`; doubles up to the last.
pub const BACKOFF_FIRST_MS: u64 = 1_000;
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// `min_runs` is waited for at most max(3 × bake, bake + this).
pub const MIN_RUNS_GRACE: Duration = Duration::from_secs(15 * 60);

/// Fold one record into the state; returns what to do now.
pub fn step(s: &mut RunState, rec: &Record) -> Vec<Action> {
    let mut out = Vec::new();
    s.now = s.now.max(rec.at);
    let was_probing = s.round_in_flight();
    match &rec.event {
        Event::Begin {
            plan,
            pid,
            until_done,
        } => begin(s, plan, *pid, *until_done, &mut out),
        Event::Attach(a) => attach(s, a, &mut out),
        Event::Stop(r) => {
            if s.plan.is_some() {
                s.stopped = true;
                if let Status::Running { stage } = s.status {
                    s.status = Status::Stopping {
                        why: Why::Operator { by: r.by.clone() },
                        stage: Some(stage),
                    };
                }
            }
        }
        Event::Tick => {}
        Event::Promote(p) => {
            if let Status::Running {
                stage: Stage::Gate { wave, bake, .. },
            } = s.status
            {
                if wave == p.wave {
                    past_boundary(s, bake, &mut out);
                }
            }
        }
        Event::Freeze { freeze } => s.frozen = freeze.clone(),
        Event::BaselineDone { wave, group, watch } => {
            super::watched::fold(&mut s.watch, watch);
            let stage = Stage::Baseline { wave: *wave };
            if s.status == (Status::Running { stage }) {
                let held = s.plan.as_ref().and_then(|p| group_hold(p, *wave, group));
                s.status = match held {
                    Some((group, host, reason)) => Status::Stopping {
                        why: Why::Group {
                            group,
                            host,
                            reason,
                        },
                        stage: Some(stage),
                    },
                    None => Status::Running {
                        stage: Stage::Deploy { wave: *wave },
                    },
                };
                s.epoch += 1;
            }
        }
        Event::Result { host, op, result } => on_result(s, host, *op, result),
        Event::Round {
            wave,
            verdicts,
            watch,
        } => {
            super::watched::fold(&mut s.watch, watch);
            for v in verdicts {
                on_verdict(s, &v.host, &v.verdict, v.runs, v.lost.as_ref());
            }
            inconclusive(s, verdicts);
            s.renewed = s.now;
            let now = s.now;
            if let Some(b) = s.bake_mut() {
                if b.wave == *wave {
                    b.rounds += 1;
                    b.probing = false;
                    b.reported = now;
                }
            }
        }
    }
    advance(s, &mut out);
    if was_probing && !s.round_in_flight() && !matches!(rec.event, Event::Round { .. }) {
        out.push(Action::EndProbe);
    }
    if s.is_ended() && s.ended.is_none() {
        s.ended = Some(s.now);
    }
    out
}

/// Replay: fold every record from a fresh state.
pub fn replay<'a>(records: impl IntoIterator<Item = &'a Record>) -> RunState {
    let mut s = RunState::new();
    for r in records {
        step(&mut s, r);
    }
    s
}

fn begin(s: &mut RunState, plan: &Plan, pid: u32, until_done: bool, out: &mut Vec<Action>) {
    if s.plan.is_some() {
        return;
    }
    let apply = plan.kind() == RunKind::Apply;
    s.hosts = Vec::new();
    for (i, names) in plan.waves.iter().enumerate() {
        for name in names {
            if s.hosts.iter().any(|h| &h.host == name) {
                continue;
            }
            s.hosts.push(HostRun::new(
                name.clone(),
                if apply { i + 1 } else { 0 },
                // A purge visits every host: each may hold the script until it is seen.
                if apply {
                    HostState::Untouched
                } else {
                    HostState::Unknown
                },
            ));
        }
    }
    s.plan = Some(plan.clone());
    s.pid = pid;
    s.started = s.now;
    s.until_done = until_done;
    if apply {
        enter_wave(s, 1, out);
    } else {
        s.status = Status::Removing { why: Why::Purge };
        s.epoch += 1;
    }
}

fn attach(s: &mut RunState, a: &Attach, out: &mut Vec<Action>) {
    let Some(plan) = s.plan.as_mut() else { return };
    if let Some(f) = a.fanout {
        plan.policy.fanout = f.max(1);
    }
    s.pid = a.pid;
    s.until_done = a.until_done;
    s.stopped = false;
    s.pass = 0;
    s.ended = None;
    // The controller that had these actions in flight is gone: their results are unknown.
    for h in &mut s.hosts {
        if let Some(op) = h.op.take() {
            h.lost = Some(op);
            if op == Op::Remove && h.state.may_hold() {
                h.state = HostState::Pending;
                h.detail = "removal interrupted (the controller died)".into();
            }
        }
    }
    let status = s.status.clone();
    s.status = match (a.intent, status) {
        (Intent::Resume, Status::Running { stage }) => resumed(stage),
        (
            Intent::Resume,
            Status::Stopping {
                why,
                stage: Some(stage),
            },
        ) if why.is_pause() => resumed(stage),
        (
            Intent::Resume,
            Status::Ended {
                end: End::Paused { stage, .. },
            },
        ) => {
            // The operator looked at the bad hosts and goes on: they no longer count.
            s.accepted = s.unhealthy.len();
            resumed(stage)
        }
        (Intent::Resume, Status::Stopping { why, .. })
        | (Intent::Resume, Status::Removing { why, .. })
        | (Intent::Resume, Status::Backoff { why, .. }) => Status::Removing { why },
        (Intent::Rollback, _) => Status::Removing { why: Why::Rollback },
        (Intent::Orphaned, _) => Status::Removing { why: Why::Orphaned },
        (
            Intent::Reconcile,
            Status::Ended {
                end: End::Unconfirmed,
            },
        ) => Status::Running {
            stage: Stage::Confirm,
        },
        (
            Intent::Reconcile,
            Status::Ended {
                end: End::Pending { why },
            },
        )
        | (Intent::Reconcile, Status::Removing { why, .. })
        | (Intent::Reconcile, Status::Backoff { why, .. }) => Status::Removing { why },
        (Intent::Reconcile, Status::Stopping { why, .. }) if !why.is_pause() => {
            Status::Removing { why }
        }
        (_, other) => other,
    };
    s.epoch += 1;
    if let Status::Running {
        stage: Stage::Baseline { wave },
    } = s.status
    {
        enter_wave(s, wave, out);
    }
}

/// Where a resumed apply picks up: the current wave's deploy again (what is done is
/// skipped; a bake starts over once it is complete), or the confirmation.
fn resumed(stage: Stage) -> Status {
    Status::Running {
        stage: match stage {
            Stage::Baseline { wave } => Stage::Baseline { wave },
            Stage::Deploy { wave } => Stage::Deploy { wave },
            Stage::Bake(b) => Stage::Deploy { wave: b.wave },
            // Still waiting for its promote (the gate's deadline stands) or its thaw; its
            // probe rounds start again (the one in flight died with its controller).
            Stage::Gate {
                wave,
                since,
                until,
                bake,
            } => Stage::Gate {
                wave,
                since,
                until,
                bake: Bake {
                    probing: false,
                    next_round: 0,
                    ..bake
                },
            },
            Stage::Frozen { wave, bake } => Stage::Frozen {
                wave,
                bake: Bake {
                    probing: false,
                    next_round: 0,
                    ..bake
                },
            },
            Stage::Confirm => Stage::Confirm,
        },
    }
}

/// What a host's install did, in words (its status line and the run's output).
pub fn installed_detail(prev: Option<&str>, started: bool) -> String {
    let kept = prev.map_or(String::new(), |p| {
        format!(" (run {p}'s version kept for rollback)")
    });
    let run = if started { ", first run started" } else { "" };
    format!("installed{kept}{run}")
}

/// UTC, readable, from Unix seconds.
pub fn utc(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The verdict on a host that reverted itself.
pub fn lease_verdict(lease_until: u64, at: u64) -> Verdict {
    Verdict::bad(
        Health::Degraded,
        Evidence::new("lease").raw(format!(
            "lease expired at {}; the host reverted itself at {}",
            utc(lease_until),
            utc(at)
        )),
    )
}
