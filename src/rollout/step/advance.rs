//! Apply every decision the state calls for after an event, until nothing changes: the
//! next phase, wave, pass or end of the run.

use super::*;

/// Apply every decision the state calls for, until nothing changes.
pub(super) fn advance(s: &mut RunState, out: &mut Vec<Action>) {
    for _ in 0..64 {
        if !advance_once(s, out) {
            return;
        }
    }
}

/// One decision; true if the status changed (so look again).
pub(super) fn advance_once(s: &mut RunState, out: &mut Vec<Action>) -> bool {
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
                    // A custom check that failed its last probe but not yet
                    // CHECK_STRIKES in a row is a suspicion the bake does not pass
                    // over: it holds (up to its limit) until the check passes again or
                    // fails the host.
                    let suspect = b.reported < b.limit && check_pending(s);
                    if b.reported >= b.until && short.is_empty() && !suspect {
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
                                        crate::units::duration_ms(b.limit - b.since)
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

/// Whether a host that holds this run's install (and is not judged yet) has a custom
/// check between its first failure and the [`CHECK_STRIKES`] that would fail the host.
fn check_pending(s: &RunState) -> bool {
    s.hosts.iter().any(|h| {
        h.state == HostState::Installed
            && !s.is_unhealthy(&h.host)
            && s.watch.get(&h.host).is_some_and(|w| {
                w.counts
                    .check_fails
                    .values()
                    .any(|&n| n > 0 && n < CHECK_STRIKES)
            })
    })
}
