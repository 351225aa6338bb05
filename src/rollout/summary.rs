//! PURE: the closing account of a run and its exit code, read off the state.

use serde::Serialize;

use super::event::RunKind;
use super::state::{End, HostState, RunState, Stage, Status, Why};
use super::step::utc;
use super::verdict::Verdict;
use crate::exit;
use crate::report::count;

/// What a run did, host by host, and what it means.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub run: String,
    pub status: String,
    /// One sentence.
    pub outcome: String,
    pub exit_code: i32,
    pub meaning: String,
    pub confirmed: Vec<String>,
    /// Returned to what they held before the run (or, in a purge, cleaned).
    pub clean: Vec<String>,
    pub untouched: Vec<String>,
    pub unhealthy: Vec<(String, Verdict)>,
    /// Hosts that may still hold the script, with why.
    pub pending: Vec<(String, String)>,
    /// Hosts installed but not confirmed (they revert when their lease runs out).
    pub unconfirmed: Vec<(String, String)>,
    /// Hosts rid of this run's install that keep the rollout under a newer run, with
    /// which (not clean).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<(String, String)>,
    /// Targets left out by the preflight (`--skip-unreachable`), with what it saw.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(String, String)>,
    /// What was found and done on each cleaned host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(String, String)>,
}

/// The exit code a run's state stands for (DESIGN.md's contract).
pub fn exit_code(s: &RunState) -> i32 {
    match s.end() {
        None => exit::INCOMPLETE,
        Some(End::Done) => exit::OK,
        Some(End::Unconfirmed) | Some(End::Pending { .. }) | Some(End::Superseded { .. }) => {
            exit::INCOMPLETE
        }
        Some(End::Paused { .. }) => exit::ROLLED_BACK,
        Some(End::Clean { why }) => match why {
            Why::Unhealthy
            | Why::Pause
            | Why::Inconclusive { .. }
            | Why::Group { .. }
            | Why::GateTimeout { .. } => exit::ROLLED_BACK,
            Why::Operator { .. } => exit::ABORTED,
            Why::Refused { .. } => exit::BAD_INPUT,
            Why::Rollback | Why::Reconcile | Why::Purge | Why::Orphaned => exit::OK,
        },
    }
}

/// When the leases of the run's probation hosts run out, at the earliest (Unix ms), if
/// any host is in probation.
pub fn lease_runs_out(s: &RunState) -> Option<u64> {
    let plan = s.plan.as_ref()?;
    let lease = plan.deployment()?.lease.as_millis() as u64;
    s.hosts
        .iter()
        .any(|h| h.state == HostState::Installed)
        .then(|| s.renewed.saturating_add(lease))
}

/// Why a run rolls back (or removes), in a few words.
pub fn why_sentence(s: &RunState, why: &Why) -> String {
    let max = s.plan.as_ref().map_or(0, |p| p.policy.max_unhealthy);
    match why {
        Why::Unhealthy | Why::Pause => format!(
            "{} unhealthy, more than max_unhealthy = {max}",
            count(s.unhealthy.len(), "host")
        ),
        Why::Inconclusive { host, reason } => format!(
            "inconclusive verdict on {host}, not counted against it (look, then decide): {reason}"
        ),
        Why::Group {
            group,
            host,
            reason,
        } => format!("a host of group {group} is not healthy: {host} is {reason}"),
        Why::Operator { by } => format!("stopped by the operator ({by})"),
        Why::Refused { host, reason, help } => {
            format!("host {host} refused us: {reason} (to fix: {help})")
        }
        Why::Rollback => "`wavectl rollback`".into(),
        Why::Reconcile => "`wavectl reconcile`".into(),
        Why::Purge => "purge".into(),
        Why::Orphaned => "its controller died and nobody resumed it".into(),
        Why::GateTimeout { wave, timeout } => format!(
            "nobody promoted it past the gate after wave {wave} within gates.timeout = {}",
            crate::units::duration_ms(*timeout)
        ),
    }
}

pub fn summarize(s: &RunState) -> Summary {
    let run = s.plan.as_ref().map_or_else(String::new, |p| p.run.clone());
    let kind = s.plan.as_ref().map(|p| p.kind());
    let code = exit_code(s);
    let mut out = Summary {
        run: run.clone(),
        status: s.status_name().to_string(),
        exit_code: code,
        meaning: match (code, s.end()) {
            (exit::OK, Some(End::Clean { .. })) => "done: every host is clean".to_string(),
            (_, Some(End::Superseded { .. })) => "incomplete: the rollout stays on some hosts under a newer run (roll that run back, or purge the rollout, to remove it)".to_string(),
            (_, Some(End::Clean { why: Why::Refused { .. } })) if !s.hosts.iter().any(|h| h.state == HostState::Clean) => {
                exit::meaning(code).to_string()
            }
            (_, Some(End::Clean { why: Why::Refused { .. } })) => {
                "refused by a host for a reason of ours: fix what it says and apply again (what this run had installed is rolled back)".to_string()
            }
            _ => exit::meaning(code).to_string(),
        },
        unhealthy: s.unhealthy.clone(),
        skipped: s.plan.as_ref().map_or_else(Vec::new, |p| {
            p.skipped()
                .iter()
                .map(|o| (o.host.clone(), o.reason.clone()))
                .collect()
        }),
        ..Summary::default()
    };
    for h in &s.hosts {
        let name = h.host.clone();
        match h.state {
            HostState::Confirmed => out.confirmed.push(name),
            HostState::Clean => {
                out.details.push((name.clone(), h.detail.clone()));
                out.clean.push(name);
            }
            HostState::Untouched => out.untouched.push(name),
            HostState::Installed => out.unconfirmed.push((name, h.detail.clone())),
            HostState::Reverted => {}
            HostState::Superseded => out.superseded.push((name, h.detail.clone())),
            HostState::Unknown | HostState::Partial | HostState::Pending => {
                let why = if h.detail.is_empty() {
                    "not visited".to_string()
                } else {
                    h.detail.clone()
                };
                out.pending.push((name, why))
            }
        }
    }
    if kind != Some(RunKind::Apply) {
        // The per-host lines say it all for a purge.
        out.clean.clear();
    }
    let pending = count(out.pending.len(), "host");
    out.outcome = match &s.status {
        Status::Ended { end } => match end {
            End::Done if out.clean.is_empty() && !out.skipped.is_empty() => format!(
                "every host healthy and confirmed; {} offline before the run skipped (never touched)",
                count(out.skipped.len(), "target")
            ),
            End::Done if out.clean.is_empty() => "every host healthy and confirmed".into(),
            End::Done => format!(
                "healthy and confirmed; {} the budget tolerated rolled back",
                count(out.clean.len(), "bad host")
            ),
            End::Unconfirmed => format!(
                "healthy, but {} could not be confirmed or cleaned: `wavectl reconcile {run}` retries",
                count(out.unconfirmed.len() + out.pending.len(), "host")
            ),
            End::Paused { why, stage } => {
                let when = lease_runs_out(s).map_or(String::new(), |t| {
                    format!(
                        "; their leases run out from {} and then they revert themselves",
                        utc(t / 1000)
                    )
                });
                if let (Why::Group { .. }, Stage::Baseline { wave }) = (why, stage) {
                    return Summary {
                        outcome: format!(
                            "paused before wave {wave}, which does not start while {}; hosts left as they are{when}. `wavectl resume {run}` samples the group again and goes on once it is healthy, `wavectl rollback {run}` rolls back",
                            why_sentence(s, why)
                        ),
                        ..out
                    };
                }
                format!(
                    "paused: {}; hosts left as they are{when}. `wavectl resume {run}` goes on (accepting them), `wavectl rollback {run}` rolls back",
                    why_sentence(s, why)
                )
            }
            End::Clean { why } => match (kind, why) {
                (Some(RunKind::Apply), Why::Rollback | Why::Orphaned | Why::Reconcile) => {
                    format!("rolled back ({}): no host holds this run's install", why_sentence(s, why))
                }
                (Some(RunKind::Apply), _) => format!("rolled back: {}", why_sentence(s, why)),
                (_, _) => format!("purged: every host is clean ({})", count(s.hosts.len(), "host")),
            },
            End::Superseded { why } => format!(
                "{} no longer holds this run's install, but {} keep the rollout under a newer run: `wavectl rollback` that run (or `wavectl purge {}`) to remove it",
                match kind {
                    Some(RunKind::Apply) => format!("rolled back ({}): every host", why_sentence(s, why)),
                    _ => "every host".to_string(),
                },
                count(out.superseded.len(), "host"),
                s.plan.as_ref().map_or("NAME", |p| p.name.as_str()),
            ),
            End::Pending { why } => format!(
                "{}; {pending} still pending (may still hold the script): `wavectl reconcile {run}` once they answer",
                match kind {
                    Some(RunKind::Apply) => format!("rolled back ({})", why_sentence(s, why)),
                    _ => "purge incomplete".to_string(),
                }
            ),
        },
        _ => format!(
            "interrupted ({}): `wavectl resume {run}`, `wavectl rollback {run}` or `wavectl reconcile`",
            s.status_name()
        ),
    };
    out
}
