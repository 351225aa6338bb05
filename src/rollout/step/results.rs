//! Folding what a host action gave, and a probe round's verdicts, into the run: host
//! states, the failure budget, an inconclusive verdict's pause.

use super::*;

/// Note a bad verdict: the host's first one counts against the budget.
pub(super) fn bad(s: &mut RunState, host: &str, v: &Verdict) {
    if let Some(h) = s.host_mut(host) {
        h.verdict = Some(v.clone());
    }
    if !s.is_unhealthy(host) {
        s.unhealthy.push((host.to_string(), v.clone()));
    }
}

pub(super) fn on_result(s: &mut RunState, host: &str, op: Op, result: &HostResult) {
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
            verdict = Some(reverted_by_guard(h, *lease_until, *at, *clean));
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
                verdict = Some(reverted_by_guard(h, *lease_until, *at, *clean));
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
pub(super) fn inconclusive(s: &mut RunState, verdicts: &[HostVerdict]) {
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

pub(super) fn on_verdict(
    s: &mut RunState,
    host: &str,
    v: &Verdict,
    runs: u32,
    lost: Option<&Lost>,
) {
    let Some(h) = s.host_mut(host) else { return };
    // A round still in flight when the host was removed (or revoked) says nothing new.
    if h.state != HostState::Installed {
        return;
    }
    // A host whose install is gone is judged on that, whatever its probe showed.
    let gone = lost.map(crate::rollout::found::lost_verdict);
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
/// The host's guard reverted this run after its lease ran out (found by a refused confirm
/// or a settle): the host's state and detail, and the verdict.
fn reverted_by_guard(h: &mut HostRun, lease_until: u64, at: u64, clean: bool) -> Verdict {
    h.state = reverted_state(clean);
    let v = lease_verdict(lease_until, at);
    h.detail = first_evidence(&v);
    v
}

pub(super) fn reverted_state(clean: bool) -> HostState {
    if clean {
        HostState::Reverted
    } else {
        HostState::Pending
    }
}

pub(super) fn first_evidence(v: &Verdict) -> String {
    v.evidence
        .first()
        .map(|e| e.to_string())
        .unwrap_or_else(|| v.health.to_string())
}
