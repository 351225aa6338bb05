//! The human story of a run, read from its records: the engine hands over each record
//! with the status before it, and this says what changed — the waves and phases entered
//! and left, verdicts, bake progress, the rollback, a gate or a freeze — as [`Event`]s
//! for the reporter. A pure function of the run's state: the engine only emits.

use super::{Event as Shown, Phase};
use crate::rollout::{
    Event, HostResult, HostState, Op, Plan, Record, RunKind, RunState, Stage, Status,
};

/// What to show for `rec`, folded into `state` (which was at `before`): the end of a
/// hold, then the phase changes, then the start of a hold.
pub fn shown(plan: &Plan, before: &Status, state: &RunState, rec: &Record) -> Vec<Shown> {
    let mut out = Vec::new();
    hold(plan, before, state, rec, false, &mut out);
    transition(plan, before, state, rec, &mut out);
    hold(plan, before, state, rec, true, &mut out);
    out
}

fn phase_of(state: &RunState, op: Op) -> Phase {
    match (op, state.kind()) {
        (Op::Install | Op::StartRun, _) => Phase::Deploy,
        (Op::Confirm, _) => Phase::Confirm,
        (Op::Settle, _) => Phase::Settle,
        (Op::Remove, Some(RunKind::Apply)) => Phase::Rollback,
        (Op::Remove, _) => Phase::Purge,
    }
}

/// The line for one host's action done: `None` for a host's first run started (counted
/// with its install).
pub fn host_step(state: &RunState, host: &str, op: Op, result: &HostResult) -> Option<Shown> {
    if op == Op::StartRun && matches!(result, HostResult::Started) {
        // Part of the host's deploy, which was counted at its install.
        return None;
    }
    let (ok, detail) = match result {
        HostResult::Installed { prev, started, .. } => (
            true,
            crate::rollout::step::installed_detail(prev.as_deref(), *started),
        ),
        HostResult::Started => (true, "first run started".to_string()),
        HostResult::Confirmed => (true, "confirmed".to_string()),
        HostResult::Removed { detail } => (true, detail.clone()),
        // Not clean: the rollout stays on the host.
        HostResult::Superseded { by, detail } => (
            false,
            format!("the rollout stays here under newer run {by}: {detail}"),
        ),
        HostResult::Settled(f) => (true, format!("{f:?}")),
        HostResult::Failed { verdict, .. } => (
            false,
            verdict
                .evidence
                .first()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ),
        HostResult::Refused(r) => (false, format!("refused: {}", r.reason)),
    };
    // Deploys belong to their wave; the other phases to the run.
    let wave = match op {
        Op::Install | Op::StartRun => state.host(host).map_or(0, |h| h.wave),
        _ => 0,
    };
    Some(Shown::HostStep {
        wave,
        phase: phase_of(state, op),
        host: host.to_string(),
        ok,
        detail,
    })
}

/// Show where the run went: waves, phases, verdicts, the rollback.
fn transition(plan: &Plan, before: &Status, state: &RunState, rec: &Record, out: &mut Vec<Shown>) {
    let after = &state.status;
    match &rec.event {
        Event::Round { wave, verdicts, .. } => {
            for v in verdicts {
                let wave = state.host(&v.host).map_or(0, |h| h.wave);
                // A host whose install is gone is judged on that (as `step` does).
                let verdict = v.lost.as_ref().map_or_else(
                    || v.verdict.clone(),
                    crate::rollout::found::lost_verdict,
                );
                out.push(Shown::Verdict {
                    wave,
                    host: v.host.clone(),
                    verdict,
                });
            }
            if let Status::Running {
                stage: Stage::Bake(b),
            } = after
            {
                out.push(Shown::BakeTick {
                    wave: *wave,
                    elapsed: (state.now.saturating_sub(b.since)) / 1000,
                    bake: (b.until - b.since) / 1000,
                    round: b.rounds,
                });
            }
        }
        Event::Stop(r) => out.push(Shown::Note {
            message: if matches!(after, Status::Removing { .. }) {
                format!(
                    "{}: already rolling back; it goes on (again to exit at once)",
                    r.by
                )
            } else {
                format!(
                    "{}: no new host action starts; the ones in flight finish, then {} (again to exit at once, leaving the journal)",
                    r.by,
                    if state.kind() == Some(RunKind::Apply)
                        && matches!(after, Status::Stopping { .. })
                    {
                        "every host that got the script is rolled back"
                    } else {
                        "the command ends with the rest pending"
                    }
                )
            },
        }),
        _ => {}
    }
    if before == after {
        return;
    }
    if let Status::Backoff { until, .. } = after {
        out.push(Shown::Note {
            message: format!(
                "{} still pending; retrying in {} (Ctrl-C to stop)",
                crate::report::count(state.may_hold().count(), "host"),
                crate::units::duration_ms(until.saturating_sub(state.now).div_ceil(1000) * 1000)
            ),
        });
    }
    let phase_of = |s: &Status| -> Option<(usize, Phase)> {
        match s {
            Status::Running { stage } => match stage {
                Stage::Baseline { wave } => Some((*wave, Phase::Baseline)),
                Stage::Deploy { wave } => Some((*wave, Phase::Deploy)),
                Stage::Bake(b) => Some((b.wave, Phase::Bake)),
                Stage::Confirm => Some((0, Phase::Confirm)),
                // Waiting between waves: no phase (the hold says what it waits for).
                Stage::Gate { .. } | Stage::Frozen { .. } => None,
            },
            Status::Removing { .. } | Status::Backoff { .. } => Some((
                0,
                if state.kind() == Some(RunKind::Apply) {
                    Phase::Rollback
                } else {
                    Phase::Purge
                },
            )),
            _ => None,
        }
    };
    let (old, new) = (phase_of(before), phase_of(after));
    if old == new {
        return;
    }
    if let Some((wave, phase)) = old {
        out.push(Shown::PhaseDone { wave, phase });
    }
    let Some((wave, phase)) = new else { return };
    let waves = plan.waves.len();
    let wave_hosts = |w: usize| -> Vec<String> {
        state
            .hosts
            .iter()
            .filter(|h| h.wave == w)
            .map(|h| h.host.clone())
            .collect()
    };
    let entered_wave = match old {
        Some((w, _)) => w != wave && wave > 0,
        None => wave > 0,
    };
    if entered_wave {
        out.push(Shown::WaveStarted {
            wave,
            waves,
            hosts: wave_hosts(wave),
        });
    }
    if let Status::Removing { why, .. } = after {
        if !matches!(before, Status::Backoff { .. }) {
            let hosts: Vec<String> = state.may_hold().map(|h| h.host.clone()).collect();
            out.push(Shown::RollbackStarted {
                reason: crate::rollout::summary::why_sentence(state, why),
                hosts,
            });
        }
    }
    let (hosts, seconds) = match after {
        Status::Running {
            stage: Stage::Bake(b),
        } => (
            state.probing().map_or(0, |p| p.1.len()),
            Some((b.until - b.since) / 1000),
        ),
        Status::Running {
            stage: Stage::Confirm,
        } => (
            state
                .hosts
                .iter()
                .filter(|h| h.state == HostState::Installed)
                .count(),
            None,
        ),
        Status::Removing { .. } => (state.may_hold().count(), None),
        _ => (wave_hosts(wave).len(), None),
    };
    out.push(Shown::PhaseStarted {
        wave,
        phase,
        hosts,
        seconds,
    });
}

/// Say what the run waits for when it starts waiting at a gate or a freeze
/// (`entering`: after the phase changes are shown), and when it goes on (before them).
fn hold(
    plan: &Plan,
    before: &Status,
    state: &RunState,
    rec: &Record,
    entering: bool,
    out: &mut Vec<Shown>,
) {
    let after = &state.status;
    let run = &plan.run;
    let name = &plan.name;
    if let (Event::Freeze { freeze: Some(f) }, false) = (&rec.event, entering) {
        if !matches!(
            after,
            Status::Running {
                stage: Stage::Frozen { .. }
            }
        ) && matches!(after, Status::Running { .. })
        {
            out.push(Shown::Note {
                message: format!(
                    "{} is {}: no new wave starts; the run waits at the next wave boundary (`wavectl unfreeze {}` lets it go on)",
                    f.scope(),
                    f.describe(),
                    f.rollout.as_deref().unwrap_or("--all")
                ),
            });
        }
    }
    if before == after {
        return;
    }
    let waiting = |s: &Status| match s {
        Status::Running {
            stage: Stage::Gate { wave, .. },
        } => Some((*wave, true)),
        Status::Running {
            stage: Stage::Frozen { wave, .. },
        } => Some((*wave, false)),
        _ => None,
    };
    match (waiting(before), waiting(after)) {
        (_, Some(_)) | (None, None) if !entering => {}
        (Some(_), None) if entering => {}
        (_, Some((wave, true))) => {
            let until = state.gate().map_or(0, |g| g.2);
            out.push(Shown::Gated {
                wave,
                promote: format!("wavectl promote {run}"),
                until: crate::rollout::step::utc(until / 1000),
            });
        }
        (_, Some((wave, false))) => {
            if let Some(f) = state.freeze() {
                out.push(Shown::Frozen {
                    wave,
                    rollout: name.clone(),
                    by: f.by.clone(),
                    reason: f.reason.clone(),
                    until: f.until.map(|u| crate::rollout::step::utc(u.div_ceil(1000))),
                    unfreeze: format!(
                        "wavectl unfreeze {}",
                        f.rollout.as_deref().unwrap_or("--all")
                    ),
                });
            }
        }
        (Some((wave, true)), None) => {
            if let Event::Promote(p) = &rec.event {
                out.push(Shown::Promoted {
                    wave,
                    by: p.by.clone(),
                });
            }
        }
        (Some((wave, false)), None) => {
            if matches!(after, Status::Running { .. }) {
                out.push(Shown::Thawed { wave });
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{step, Target};

    fn purge(hosts: &[&str]) -> Plan {
        crate::rollout::tests::plan(&[hosts], Target::Purge)
    }

    /// Each record folded, and what it shows, as `event phase host` words.
    fn story(plan: &Plan, events: Vec<Event>) -> Vec<String> {
        let mut state = RunState::new();
        let mut out = Vec::new();
        for (i, e) in events.into_iter().enumerate() {
            let rec = Record::new(1_000 * i as u64, e);
            // As the engine does: a host's step is shown as its result comes, before
            // the result is journaled and folded.
            let mut shown: Vec<Shown> = match &rec.event {
                Event::Result { host, op, result } => {
                    host_step(&state, host, *op, result).into_iter().collect()
                }
                _ => Vec::new(),
            };
            let before = state.status.clone();
            step(&mut state, &rec);
            shown.extend(self::shown(plan, &before, &state, &rec));
            for s in shown {
                let v = serde_json::to_value(&s).unwrap();
                let word = |k: &str| v[k].as_str().map(|s| format!(" {s}")).unwrap_or_default();
                out.push(format!(
                    "{}{}{}",
                    word("event").trim(),
                    word("phase"),
                    word("host")
                ));
            }
        }
        out
    }

    #[test]
    fn a_purge_shows_its_rollback_its_phase_each_host_and_the_phase_end() {
        let plan = purge(&["h1", "h2"]);
        let removed = |h: &str| Event::Result {
            host: h.into(),
            op: Op::Remove,
            result: HostResult::Removed {
                detail: "removed".into(),
            },
        };
        let shown = story(
            &plan,
            vec![
                Event::Begin {
                    plan: Box::new(plan.clone()),
                    pid: 1,
                    until_done: false,
                },
                removed("h1"),
                removed("h2"),
            ],
        );
        assert_eq!(
            shown,
            [
                "rollback_started",
                "phase_started purge",
                "host_step purge h1",
                "host_step purge h2",
                "phase_done purge",
            ],
            "{shown:?}"
        );
    }
}
