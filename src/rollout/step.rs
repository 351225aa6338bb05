//! PURE: the run's decisions — `step(state, record) → actions`. No I/O and no clock: time
//! arrives in the records. The driver journals a record, then steps, then carries out
//! the actions; replaying a journal is folding its records through this same function.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use super::event::{
    Attach, Event, Finding, HostResult, HostVerdict, Intent, Lost, Op, Plan, Record, RunKind,
    Sample, Seen,
};
use super::state::{Bake, End, HostRun, HostState, RunState, Stage, Status, Why};
use super::verdict::{Evidence, Health, Verdict};
use crate::spec::OnFailure;

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
    /// then report `Round`. Those of `fresh` are judged over a new login (beside any
    /// connection kept for them): see [`fresh_logins`].
    Probe {
        wave: usize,
        hosts: Vec<String>,
        controls: Vec<String>,
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
            s.hosts.push(HostRun {
                host: name.clone(),
                wave: if apply { i + 1 } else { 0 },
                // A purge visits every host: each may hold the script until it is seen.
                state: if apply {
                    HostState::Untouched
                } else {
                    HostState::Unknown
                },
                op: None,
                lost: None,
                verdict: None,
                runs: 0,
                started: false,
                detail: String::new(),
                epoch: 0,
                tried: Vec::new(),
                fresh_owed: false,
            });
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

fn enter_wave(s: &mut RunState, wave: usize, out: &mut Vec<Action>) {
    let Some(plan) = &s.plan else { return };
    let controls: Vec<String> = if plan.policy.controls {
        s.hosts
            .iter()
            .filter(|h| h.wave > wave && h.state == HostState::Untouched)
            .filter(|h| !s.unhealthy.iter().any(|(n, _)| n == &h.host))
            .take(CONTROLS)
            .map(|h| h.host.clone())
            .collect()
    } else {
        Vec::new()
    };
    s.controls = controls;
    s.epoch += 1;
    let group: Vec<String> = group_members(plan, wave)
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    if plan.policy.baseline || !group.is_empty() {
        let baseline = plan.policy.baseline;
        s.status = Status::Running {
            stage: Stage::Baseline { wave },
        };
        out.push(Action::Baseline {
            wave,
            hosts: s
                .hosts
                .iter()
                .filter(|h| baseline && h.wave == wave)
                .map(|h| h.host.clone())
                .collect(),
            controls: if baseline {
                s.controls.clone()
            } else {
                Vec::new()
            },
            group,
        });
    } else {
        s.status = Status::Running {
            stage: Stage::Deploy { wave },
        };
    }
}

/// The other hosts of the redundancy groups (`spread_by`) that wave `wave` touches, each
/// with its group: targets of other waves and inventory hosts that are not targets (the
/// standby outside the rollout), in plan order. Sampled before the wave; the wave does
/// not start while one of them is unhealthy or unreachable ([`group_hold`]).
pub fn group_members(plan: &Plan, wave: usize) -> Vec<(String, String)> {
    let Some(groups) = &plan.groups else {
        return Vec::new();
    };
    let Some(names) = wave.checked_sub(1).and_then(|i| plan.waves.get(i)) else {
        return Vec::new();
    };
    let touched: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| plan.host(n))
        .filter_map(|h| h.labels.get(&groups.label))
        .map(String::as_str)
        .collect();
    let mut seen = BTreeSet::new();
    plan.hosts
        .iter()
        .chain(groups.others.iter())
        .filter(|h| !names.contains(&h.name))
        .filter_map(|h| {
            let g = h.labels.get(&groups.label)?;
            (touched.contains(g.as_str()) && seen.insert(h.name.clone()))
                .then(|| (g.clone(), h.name.clone()))
        })
        .collect()
}

/// Whether wave `wave` is held by its groups: the first of [`group_members`] that did
/// not answer its sample, or whose health checks failed (a member with no sample counts
/// as not answering), as (group, host, why).
pub fn group_hold(
    plan: &Plan,
    wave: usize,
    samples: &[Sample],
) -> Option<(String, String, String)> {
    group_members(plan, wave)
        .into_iter()
        .find_map(|(group, host)| {
            let why = match samples.iter().find(|s| s.host == host).map(|s| &s.seen) {
                None => "unreachable: not sampled".to_string(),
                Some(Seen::NoAnswer { reason }) => format!("unreachable: {reason}"),
                Some(Seen::Answered { failing }) if !failing.is_empty() => {
                    format!("unhealthy: {}", failing.join("; "))
                }
                Some(Seen::Answered { .. }) => return None,
            };
            Some((group, host, why))
        })
}

/// Go on after `wave` passed its bake (and its gate, if it has one): the next wave, or,
/// after the last, the confirmation. A new wave does not start while the rollout is
/// frozen: the run waits at the boundary (probing) until the freeze is lifted or runs out.
fn past_boundary(s: &mut RunState, bake: Bake, out: &mut Vec<Action>) {
    let wave = bake.wave;
    let waves = s.plan.as_ref().map_or(0, |p| p.waves.len());
    if wave >= waves {
        s.status = Status::Running {
            stage: Stage::Confirm,
        };
        s.epoch += 1;
    } else if s.freeze().is_some() {
        s.status = Status::Running {
            stage: Stage::Frozen { wave, bake },
        };
        s.epoch += 1;
    } else {
        enter_wave(s, wave + 1, out);
    }
}

/// Note a bad verdict: the host's first one counts against the budget.
fn bad(s: &mut RunState, host: &str, v: &Verdict) {
    if let Some(h) = s.host_mut(host) {
        h.verdict = Some(v.clone());
    }
    if !s.is_unhealthy(host) {
        s.unhealthy.push((host.to_string(), v.clone()));
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

fn on_result(s: &mut RunState, host: &str, op: Op, result: &HostResult) {
    let running = matches!(s.status, Status::Running { .. });
    let stage = match s.status {
        Status::Running { stage } => Some(stage),
        _ => None,
    };
    let Some(h) = s.host_mut(host) else { return };
    if h.op == Some(op) {
        h.op = None;
    }
    let lost = h.lost.take();
    let mut verdict: Option<Verdict> = None;
    let mut renewed = false;
    match (op, result) {
        (_, HostResult::Refused(r)) => {
            h.detail = format!("refused: {}", r.reason);
            match op {
                Op::Install | Op::Settle => {
                    if op == Op::Install {
                        h.state = HostState::Untouched;
                    }
                    if running {
                        s.status = Status::Stopping {
                            why: Why::Refused {
                                host: host.to_string(),
                                reason: r.reason.clone(),
                                help: r.help.clone(),
                            },
                            stage,
                        };
                    }
                }
                Op::Remove if h.state.may_hold() => h.state = HostState::Pending,
                _ => {}
            }
        }
        (Op::Install, HostResult::Installed { prev, started, .. }) => {
            h.state = HostState::Installed;
            // From now on its next probe or confirmation logs in afresh.
            h.fresh_owed = true;
            renewed = true;
            h.started |= *started;
            h.detail = installed_detail(prev.as_deref(), *started);
        }
        (
            Op::Install,
            HostResult::Failed {
                verdict: v,
                touched,
            },
        ) => {
            h.state = if *touched {
                HostState::Partial
            } else {
                HostState::Untouched
            };
            h.detail = first_evidence(v);
            verdict = Some(v.clone());
        }
        (Op::StartRun, HostResult::Started) => {
            h.started = true;
            h.detail = "first run started".into();
        }
        (Op::Confirm, HostResult::Confirmed) => {
            h.state = HostState::Confirmed;
            h.detail = "confirmed".into();
        }
        (
            Op::Confirm,
            HostResult::Settled(Finding::Reverted {
                lease_until,
                at,
                clean,
            }),
        ) => {
            h.state = reverted_state(*clean);
            let v = lease_verdict(*lease_until, *at);
            h.detail = first_evidence(&v);
            verdict = Some(v);
        }
        (Op::Confirm, HostResult::Failed { verdict: v, .. }) => {
            h.detail = format!("not confirmed: {}", first_evidence(v));
        }
        (Op::Remove, HostResult::Removed { detail }) => {
            h.state = HostState::Clean;
            h.detail = detail.clone();
        }
        (Op::Remove, HostResult::Superseded { by, detail }) => {
            h.state = HostState::Superseded;
            h.detail = format!("the rollout stays here under newer run {by}: {detail}");
        }
        (Op::Remove, HostResult::Failed { verdict: v, .. }) => {
            if h.state.may_hold() {
                h.state = HostState::Pending;
            }
            h.detail = format!("removal pending: {}", first_evidence(v));
        }
        (Op::Settle, HostResult::Settled(f)) => match f {
            Finding::Ours {
                confirmed,
                runs,
                running,
            } => {
                h.state = if *confirmed {
                    HostState::Confirmed
                } else {
                    HostState::Installed
                };
                h.runs = *runs;
                h.started |= *runs > 0 || *running;
                h.detail = format!("the host holds this run's install ({})", h.state_name());
            }
            Finding::Partial => {
                h.state = HostState::Unknown;
                h.detail = "an install of this run did not finish".into();
            }
            Finding::Absent { other } => {
                let gone = matches!(lost, Some(Op::StartRun) | Some(Op::Confirm));
                h.state = match lost {
                    Some(Op::Install) | None => HostState::Untouched,
                    _ => HostState::Clean,
                };
                h.detail = match other {
                    Some(o) => format!("nothing of this run on the host (it holds run {o}'s)"),
                    None => "nothing of this run on the host".into(),
                };
                if gone {
                    verdict = Some(Verdict::bad(
                        Health::Degraded,
                        Evidence::new("install").raw(format!(
                            "this run's install is gone from the host ({})",
                            h.detail
                        )),
                    ));
                }
            }
            Finding::Reverted {
                lease_until,
                at,
                clean,
            } => {
                h.state = reverted_state(*clean);
                let v = lease_verdict(*lease_until, *at);
                h.detail = first_evidence(&v);
                verdict = Some(v);
            }
        },
        (Op::Settle, HostResult::Failed { verdict: v, .. }) => {
            h.detail = format!("cannot ask the host: {}", first_evidence(v));
            verdict = Some(v.clone());
        }
        (_, HostResult::Failed { verdict: v, .. }) => {
            h.detail = format!("{} failed: {}", op.name(), first_evidence(v));
            verdict = Some(v.clone());
        }
        (_, other) => {
            h.detail = format!("{} gave an unexpected result: {other:?}", op.name());
        }
    }
    if let Some(v) = verdict {
        bad(s, host, &v);
    }
    if renewed {
        s.renewed = s.now;
    }
}

/// An inconclusive verdict in a round pauses the run for the operator (a fleet-wide
/// event, or the controller's own network), unless the round's bad hosts exceed the
/// budget anyway: then the rollback decides.
fn inconclusive(s: &mut RunState, verdicts: &[HostVerdict]) {
    let Status::Running { stage } = s.status else {
        return;
    };
    let budget = s
        .plan
        .as_ref()
        .map_or(0, |p| p.policy.max_unhealthy)
        .saturating_add(s.accepted);
    if s.unhealthy.len() > budget {
        return;
    }
    let Some(v) = verdicts.iter().find(|v| {
        v.verdict.health == Health::Inconclusive
            && s.host(&v.host)
                .is_some_and(|h| h.state == HostState::Installed)
    }) else {
        return;
    };
    s.status = Status::Stopping {
        why: Why::Inconclusive {
            host: v.host.clone(),
            reason: first_evidence(&v.verdict),
        },
        stage: Some(stage),
    };
}

fn on_verdict(s: &mut RunState, host: &str, v: &Verdict, runs: u32, lost: Option<&Lost>) {
    let Some(h) = s.host_mut(host) else { return };
    // A round still in flight when the host was removed (or revoked) says nothing new.
    if h.state != HostState::Installed {
        return;
    }
    // A host whose install is gone is judged on that, whatever its probe showed.
    let gone = lost.map(super::found::lost_verdict);
    let v = gone.as_ref().unwrap_or(v);
    h.verdict = Some(v.clone());
    h.runs = runs;
    if answered(v) {
        // Its probe got through (over a fresh login, if it owed one).
        h.fresh_owed = false;
    }
    match lost {
        Some(Lost::Reverted { clean, .. }) => h.state = reverted_state(*clean),
        Some(Lost::Replaced { .. }) => h.state = HostState::Clean,
        None => {}
    }
    if v.health.is_bad() {
        bad(s, host, v);
    }
}

/// A host that reverted itself holds nothing of the run, unless its revert did not check
/// out (or is still going on): then it may, and a removal is owed.
fn reverted_state(clean: bool) -> HostState {
    if clean {
        HostState::Reverted
    } else {
        HostState::Pending
    }
}

fn first_evidence(v: &Verdict) -> String {
    v.evidence
        .first()
        .map(|e| e.to_string())
        .unwrap_or_else(|| v.health.to_string())
}

impl HostRun {
    fn state_name(&self) -> &'static str {
        match self.state {
            HostState::Confirmed => "confirmed",
            _ => "probation",
        }
    }

    fn tried(&self, epoch: u32, op: Op) -> bool {
        self.epoch == epoch && self.tried.contains(&op)
    }
}

/// Order `op` on the host at index `i`.
fn order(s: &mut RunState, i: usize, op: Op, out: &mut Vec<Action>) {
    let epoch = s.epoch;
    let h = &mut s.hosts[i];
    if h.epoch != epoch {
        h.epoch = epoch;
        h.tried.clear();
    }
    h.tried.push(op);
    h.op = Some(op);
    if op == Op::Install {
        // From now on the host may hold part of the install.
        h.state = HostState::Unknown;
    }
    out.push(Action::Host {
        host: h.host.clone(),
        op,
        fresh: op == Op::Confirm && h.fresh_owed,
    });
}

/// Installs, first runs and confirmations count against `concurrency`; removals and
/// questions against the fan-out.
fn is_deploy_class(op: Op) -> bool {
    matches!(op, Op::Install | Op::StartRun | Op::Confirm)
}

struct Slots {
    deploy: usize,
    remove: usize,
}

impl Slots {
    fn of(s: &RunState) -> Slots {
        let plan = s.plan.as_ref();
        let conc = plan.map_or(1, |p| p.policy.concurrency.max(1));
        let fan = plan.map_or(1, |p| p.policy.fanout.max(1));
        let (mut d, mut r) = (0, 0);
        for h in &s.hosts {
            match h.op {
                Some(op) if is_deploy_class(op) => d += 1,
                Some(_) => r += 1,
                None => {}
            }
        }
        Slots {
            deploy: conc.saturating_sub(d),
            remove: fan.saturating_sub(r),
        }
    }

    /// Take a slot for `op`, if one is free.
    fn take(&mut self, op: Op) -> bool {
        let n = if is_deploy_class(op) {
            &mut self.deploy
        } else {
            &mut self.remove
        };
        if *n == 0 {
            return false;
        }
        *n -= 1;
        true
    }
}

/// What a host needs next during an apply's waves (before any per-stage work).
fn common_need(s: &RunState, h: &HostRun) -> Option<Op> {
    if h.op.is_some() {
        return None;
    }
    if h.lost.is_some() && !h.tried(s.epoch, Op::Settle) {
        return Some(Op::Settle);
    }
    // A bad host the budget tolerates still does not keep a bad script.
    if h.state.may_hold() && s.is_unhealthy(&h.host) && !h.tried(s.epoch, Op::Remove) {
        return Some(Op::Remove);
    }
    None
}

fn deploy_need(s: &RunState, h: &HostRun, wave: usize, run_on_install: bool) -> Option<Op> {
    if let Some(op) = common_need(s, h) {
        return Some(op);
    }
    if h.op.is_some() || h.lost.is_some() || h.wave != wave || s.is_unhealthy(&h.host) {
        return None;
    }
    match h.state {
        HostState::Untouched | HostState::Unknown if !h.tried(s.epoch, Op::Install) => {
            Some(Op::Install)
        }
        // The install starts the first run itself; this is for one that did not (the
        // same run over its own confirmed install, an older journal).
        HostState::Installed if run_on_install && !h.started && !h.tried(s.epoch, Op::StartRun) => {
            Some(Op::StartRun)
        }
        _ => None,
    }
}

fn confirm_need(s: &RunState, h: &HostRun) -> Option<Op> {
    if let Some(op) = common_need(s, h) {
        return Some(op);
    }
    if h.op.is_some() || h.lost.is_some() {
        return None;
    }
    if h.state == HostState::Installed && !s.is_unhealthy(&h.host) && !h.tried(s.epoch, Op::Confirm)
    {
        return Some(Op::Confirm);
    }
    if h.state.unfinished() && !h.tried(s.epoch, Op::Remove) {
        return Some(Op::Remove);
    }
    None
}

/// Start what `need` says for every host, as far as slots allow. Returns whether any
/// host still needs something (started or waiting for a slot).
fn start_needed(
    s: &mut RunState,
    out: &mut Vec<Action>,
    need: impl Fn(&RunState, &HostRun) -> Option<Op>,
) -> bool {
    let mut slots = Slots::of(s);
    let mut any = false;
    for i in 0..s.hosts.len() {
        if let Some(op) = need(s, &s.hosts[i]) {
            any = true;
            if slots.take(op) {
                order(s, i, op, out);
            }
        }
    }
    any
}

/// Order the bake's next probe round if none is in flight and it is due (every installed
/// host so far, not busy, and the controls), and a wake-up when the one after it is due
/// (or, not yet due, a wake-up for it): a round that takes longer than
/// the interval is followed at once by the next.
fn probe_round(s: &mut RunState, mut b: Bake, interval: u64, out: &mut Vec<Action>) {
    if b.probing {
        return;
    }
    if s.now < b.next_round {
        // Asked again at every event while it waits: a wake-up is never lost to an
        // earlier one.
        out.push(Action::WakeAt(b.next_round));
        return;
    }
    let Some((wave, hosts, controls)) = s.probing() else {
        return;
    };
    let (hosts, controls): (Vec<String>, Vec<String>) = (
        hosts.into_iter().map(str::to_string).collect(),
        controls.into_iter().map(str::to_string).collect(),
    );
    let fresh = fresh_logins(s, &mut b, interval, &hosts, &controls);
    b.probing = true;
    b.next_round = s.now.saturating_add(interval.max(1));
    if let Some(cur) = s.bake_mut() {
        *cur = b;
    }
    out.push(Action::Probe {
        wave,
        hosts,
        controls,
        fresh,
    });
    out.push(Action::WakeAt(b.next_round));
}

/// Which hosts of a round log in afresh beside the kept connections: each host that owes
/// one since its install; beside that, the wave's own hosts once more in the round that
/// may close a bake longer than one round, and every host every 20th round of a bake —
/// so a host that keeps old sessions alive while new logins hang is seen before its wave
/// passes, without a new login per host per wave across the whole run.
pub fn fresh_logins(
    s: &RunState,
    b: &mut Bake,
    interval: u64,
    hosts: &[String],
    controls: &[String],
) -> Vec<String> {
    let all = || hosts.iter().chain(controls);
    let baking = matches!(
        s.status,
        Status::Running {
            stage: Stage::Bake(_)
        }
    );
    if baking && b.rounds > 0 && b.rounds.is_multiple_of(20) {
        return all().cloned().collect();
    }
    // The round that may close the bake (the first round is the one after the install:
    // its hosts owe a fresh login anyway).
    let closing = baking && s.now.saturating_add(interval) >= b.until && !b.fresh_closed;
    if closing {
        b.fresh_closed = true;
    }
    all()
        .filter(|n| {
            s.host(n).is_some_and(|h| {
                (h.state == HostState::Installed && h.fresh_owed)
                    || (closing && b.rounds > 0 && h.wave == b.wave)
            })
        })
        .cloned()
        .collect()
}

/// The host answered its probe (its verdict is not about reaching it).
fn answered(v: &Verdict) -> bool {
    !v.evidence.iter().any(|e| e.signal == "reachable")
}

/// Apply every decision the state calls for, until nothing changes.
fn advance(s: &mut RunState, out: &mut Vec<Action>) {
    for _ in 0..64 {
        if !advance_once(s, out) {
            return;
        }
    }
}

/// One decision; true if the status changed (so look again).
fn advance_once(s: &mut RunState, out: &mut Vec<Action>) -> bool {
    // What it needs of the plan (not the plan: a clone per event costs a run of many
    // hosts O(hosts) per event).
    let Some(plan) = s.plan.as_ref() else {
        return false;
    };
    let (policy, run_on_install, interval) = (
        plan.policy.clone(),
        plan.deployment().is_some_and(|d| d.run_on_install),
        plan.deployment()
            .map_or(0, |d| d.interval.as_millis() as u64),
    );
    let policy = &policy;
    match s.status.clone() {
        Status::New | Status::Ended { .. } => false,
        Status::Running { stage } => {
            if s.unhealthy.len() > policy.max_unhealthy + s.accepted {
                let why = if policy.on_failure == OnFailure::Pause {
                    Why::Pause
                } else {
                    Why::Unhealthy
                };
                s.status = Status::Stopping {
                    why,
                    stage: Some(stage),
                };
                return true;
            }
            match stage {
                Stage::Baseline { .. } => {
                    start_needed(s, out, common_need);
                    false
                }
                Stage::Deploy { wave } => {
                    start_needed(s, out, |s, h| deploy_need(s, h, wave, run_on_install));
                    let busy = s
                        .hosts
                        .iter()
                        .any(|h| matches!(h.op, Some(Op::Install | Op::StartRun | Op::Settle)));
                    let settling = s.hosts.iter().any(|h| h.lost.is_some());
                    let deploying = s.hosts.iter().any(|h| {
                        h.op.is_none()
                            && deploy_need(s, h, wave, run_on_install)
                                .is_some_and(|op| op != Op::Remove)
                    });
                    if busy || settling || deploying {
                        return false;
                    }
                    let bake = policy.bake.as_millis() as u64;
                    let limit = (bake.saturating_mul(3))
                        .max(bake.saturating_add(MIN_RUNS_GRACE.as_millis() as u64));
                    s.status = Status::Running {
                        stage: Stage::Bake(Bake {
                            wave,
                            since: s.now,
                            until: s.now.saturating_add(bake),
                            limit: s.now.saturating_add(limit),
                            rounds: 0,
                            probing: false,
                            next_round: s.now,
                            reported: 0,
                            fresh_closed: false,
                        }),
                    };
                    s.epoch += 1;
                    true
                }
                Stage::Bake(b) => {
                    start_needed(s, out, common_need);
                    if b.rounds == 0 {
                        probe_round(s, b, interval, out);
                        return false;
                    }
                    let short: Vec<String> = s
                        .hosts
                        .iter()
                        .filter(|h| {
                            h.wave == b.wave
                                && h.state == HostState::Installed
                                && h.runs < policy.min_runs
                                && !s.is_unhealthy(&h.host)
                        })
                        .map(|h| h.host.clone())
                        .collect();
                    if b.reported >= b.until && short.is_empty() {
                        match policy.gates.as_ref().filter(|g| g.after.contains(&b.wave)) {
                            Some(g) => {
                                s.status = Status::Running {
                                    stage: Stage::Gate {
                                        wave: b.wave,
                                        since: s.now,
                                        until: s.now.saturating_add(g.timeout.as_millis() as u64),
                                        bake: b,
                                    },
                                };
                                s.epoch += 1;
                            }
                            None => past_boundary(s, b, out),
                        }
                        return true;
                    }
                    if b.reported >= b.limit {
                        for host in short {
                            let runs = s.host(&host).map_or(0, |h| h.runs);
                            let v = Verdict::bad(
                                Health::Degraded,
                                Evidence::new("min_runs").change(
                                    0,
                                    runs,
                                    format!(
                                        ">= {} runs within {}",
                                        policy.min_runs,
                                        humantime::format_duration(Duration::from_millis(
                                            b.limit - b.since
                                        ))
                                    ),
                                ),
                            );
                            bad(s, &host, &v);
                        }
                        return true;
                    }
                    probe_round(s, b, interval, out);
                    false
                }
                Stage::Gate {
                    wave,
                    since,
                    until,
                    bake,
                } => {
                    start_needed(s, out, common_need);
                    if s.now >= until {
                        s.status = Status::Stopping {
                            why: Why::GateTimeout {
                                wave,
                                timeout: until - since,
                            },
                            stage: Some(stage),
                        };
                        return true;
                    }
                    out.push(Action::WakeAt(until));
                    probe_round(s, bake, interval, out);
                    false
                }
                Stage::Frozen { bake, .. } => {
                    start_needed(s, out, common_need);
                    if let Some(f) = s.freeze() {
                        if let Some(until) = f.until {
                            out.push(Action::WakeAt(until));
                        }
                        probe_round(s, bake, interval, out);
                        return false;
                    }
                    past_boundary(s, bake, out);
                    true
                }
                Stage::Confirm => {
                    let more = start_needed(s, out, confirm_need);
                    if more || s.in_flight() > 0 {
                        return false;
                    }
                    let all_done = s
                        .hosts
                        .iter()
                        .all(|h| !h.state.may_hold() || h.state == HostState::Confirmed);
                    s.status = Status::Ended {
                        end: if all_done {
                            End::Done
                        } else {
                            End::Unconfirmed
                        },
                    };
                    true
                }
            }
        }
        Status::Stopping { why, stage } => {
            if s.in_flight() > 0 {
                return false;
            }
            s.status = match (why, stage) {
                (why, Some(stage)) if why.is_pause() => Status::Ended {
                    end: End::Paused { stage, why },
                },
                (why, _) => Status::Removing { why },
            };
            s.epoch += 1;
            true
        }
        Status::Removing { why } => {
            let halt = s.stopped && why.is_command();
            let more = !halt
                && start_needed(s, out, |s, h| {
                    (h.op.is_none() && h.state.may_hold() && !h.tried(s.epoch, Op::Remove))
                        .then_some(Op::Remove)
                });
            if more || s.in_flight() > 0 {
                return false;
            }
            for h in &mut s.hosts {
                h.lost = None;
            }
            let left = s.hosts.iter().any(|h| h.state.may_hold());
            let superseded = s.hosts.iter().any(|h| h.state == HostState::Superseded);
            s.status = if !left && superseded {
                Status::Ended {
                    end: End::Superseded { why },
                }
            } else if !left {
                Status::Ended {
                    end: End::Clean { why },
                }
            } else if s.until_done && !s.stopped {
                let wait = (BACKOFF_FIRST_MS << s.pass.min(16)).min(BACKOFF_MAX_MS);
                let until = s.now.saturating_add(wait);
                out.push(Action::WakeAt(until));
                Status::Backoff { why, until }
            } else {
                Status::Ended {
                    end: End::Pending { why },
                }
            };
            true
        }
        Status::Backoff { why, until } => {
            if s.stopped {
                s.status = Status::Ended {
                    end: End::Pending { why },
                };
                return true;
            }
            if s.now < until {
                return false;
            }
            s.status = Status::Removing { why };
            s.pass += 1;
            s.epoch += 1;
            true
        }
    }
}
