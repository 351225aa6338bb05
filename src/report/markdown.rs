//! PURE: `wavectl report RUN` — a Markdown account of a run for a change ticket, built by
//! folding its journal: what was planned and approved, each wave with its hosts and
//! times, the verdicts with their evidence, the rollback, the end state of every host.

use std::fmt::Write as _;

use crate::rollout::step::utc;
use crate::rollout::{step, summarize, End, Event, Record, RunState, Stage, Status, Target};

fn at(ms: u64) -> String {
    utc(ms / 1000)
}

fn took(from: u64, to: u64) -> String {
    crate::units::duration_ms(to.saturating_sub(from) / 1000 * 1000)
}

/// What changed in the run's status, with when: the timeline.
fn milestone(before: &Status, after: &Status, s: &RunState) -> Option<String> {
    if before == after {
        return None;
    }
    Some(match after {
        Status::Running { stage } => match stage {
            Stage::Baseline { wave } => format!("wave {wave}: baseline sampled"),
            Stage::Deploy { wave } => {
                if matches!(
                    before,
                    Status::Running {
                        stage: Stage::Baseline { .. }
                    }
                ) {
                    return None;
                }
                let hosts: Vec<&str> = s
                    .hosts
                    .iter()
                    .filter(|h| h.wave == *wave)
                    .map(|h| h.host.as_str())
                    .collect();
                format!("wave {wave}: deploy to {}", hosts.join(", "))
            }
            Stage::Bake(b) => format!("wave {}: bake of {}", b.wave, took(b.since, b.until)),
            Stage::Gate { wave, until, .. } => format!(
                "wave {wave}: passed its bake; waiting at the gate for `wavectl promote` (until {})",
                crate::rollout::step::utc(until / 1000)
            ),
            Stage::Frozen { wave, .. } => format!(
                "wave {wave}: passed; the next wave waits while the rollout is frozen ({})",
                s.freeze().map_or("freeze lifted".to_string(), |f| f.describe())
            ),
            Stage::Confirm => "every wave passed: confirming".to_string(),
        },
        Status::Stopping { why, .. } => {
            format!(
                "stopping: {}",
                crate::rollout::summary::why_sentence(s, why)
            )
        }
        Status::Removing { why } => {
            if matches!(before, Status::Backoff { .. }) {
                return None;
            }
            format!(
                "removal ({}) from {} host(s) that may hold the script",
                crate::rollout::summary::why_sentence(s, why),
                s.may_hold().count()
            )
        }
        Status::Backoff { .. } => "some hosts still pending: retrying".to_string(),
        Status::Ended {
            end: End::Paused { why, .. },
        } => format!(
            "ended: paused: {}",
            crate::rollout::summary::why_sentence(s, why)
        ),
        Status::Ended { .. } => format!("ended: {}", s.status_name()),
        Status::New => return None,
    })
}

/// The report of a run from its journal's records.
pub fn render(records: &[Record]) -> String {
    let mut s = RunState::new();
    let mut timeline: Vec<(u64, String)> = Vec::new();
    for r in records {
        let before = s.status.clone();
        step::step(&mut s, r);
        match &r.event {
            Event::Attach(a) => timeline.push((
                r.at,
                format!(
                    "taken up by {} (`{}`, {:?})",
                    a.user,
                    a.command.join(" "),
                    a.intent
                )
                .to_lowercase(),
            )),
            Event::Stop(stop) => timeline.push((r.at, format!("stop requested ({})", stop.by))),
            _ => {}
        }
        if let Some(m) = milestone(&before, &s.status, &s) {
            timeline.push((r.at, m));
        }
    }
    let Some(plan) = s.plan.clone() else {
        return "# wavectl run\n\nThe journal holds no run.\n".to_string();
    };
    let sum = summarize(&s);
    let mut out = String::new();
    let kind = format!("{:?}", plan.kind()).to_lowercase();
    let _ = writeln!(
        out,
        "# wavectl {kind} {} — rollout `{}`\n",
        plan.run, plan.name
    );
    let _ = writeln!(
        out,
        "**Outcome:** {} (exit {}: {})\n",
        sum.outcome, sum.exit_code, sum.meaning
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| run | `{}` |", plan.run);
    let _ = writeln!(out, "| status | {} |", s.status_name());
    let _ = writeln!(out, "| started | {} by {} |", at(s.started), plan.user);
    let _ = writeln!(out, "| command | `{}` |", plan.command.join(" "));
    if let Some(e) = s.ended {
        let _ = writeln!(out, "| ended | {} (after {}) |", at(e), took(s.started, e));
    }
    if let Some(p) = &plan.spec {
        let _ = writeln!(out, "| spec | `{}` |", p.display());
    }
    if let Some(p) = &plan.inventory {
        let _ = writeln!(out, "| inventory | `{}` |", p.display());
    }
    match &plan.target {
        Target::Apply(d) => {
            let _ = writeln!(
                out,
                "| script | `{}`, mode {:o}, sha256 `{}` |",
                d.install_path, d.mode, d.sha256
            );
            let _ = writeln!(
                out,
                "| activation | {} `{}`; run on install: {} |",
                d.activation, d.schedule, d.run_on_install
            );
            let _ = writeln!(
                out,
                "| health | every {} (probe timeout {}), built-ins {:?}, checks {} |",
                crate::units::duration(d.interval),
                crate::units::duration(d.probe_timeout),
                d.builtins,
                d.checks
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let _ = writeln!(out, "| lease | {} |", crate::units::duration(d.lease));
        }
        Target::Purge => {
            let _ = writeln!(out, "| removes | every version of `{}` |", plan.name);
        }
        Target::PurgePath { path, .. } => {
            let _ = writeln!(out, "| removes | `{path}` (not installed by wavectl) |");
        }
    }
    let p = &plan.policy;
    let _ = writeln!(
        out,
        "| policy | max_unhealthy {}, on_failure {:?}, bake {}, min_runs {}, concurrency {} |",
        p.max_unhealthy,
        p.on_failure,
        crate::units::duration(p.bake),
        p.min_runs,
        p.concurrency
    );
    match &plan.approval {
        Some(a) => {
            let _ = writeln!(out, "| plan | `{}`, `{}` |", a.plan.display(), a.hash);
            let _ = writeln!(
                out,
                "| approved by | {} |",
                if a.signers.is_empty() {
                    "(no approval needed)".into()
                } else {
                    a.signers.join(", ")
                }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| approved by | (applied from the spec, without a plan) |"
            );
        }
    }
    if plan.kind() == crate::rollout::RunKind::Apply {
        let _ = writeln!(out, "\n## Waves\n\n| wave | hosts |\n|---|---|");
        for (i, w) in plan.waves.iter().enumerate() {
            let _ = writeln!(out, "| {} | {} |", i + 1, w.join(", "));
        }
    }
    if let Some(pf) = &plan.preflight {
        let _ = writeln!(
            out,
            "\n## Preflight\n\nBefore any change: {} checked (SSH banner), {} logged in ({}).",
            crate::report::count(pf.checked, "target"),
            pf.logins.len(),
            if pf.logins.is_empty() {
                "-".to_string()
            } else {
                pf.logins.join(", ")
            }
        );
        if !pf.skipped.is_empty() {
            let _ = writeln!(
                out,
                "\nSkipped, offline before the run (`--skip-unreachable`; never touched):\n\n| host | what the preflight saw |\n|---|---|"
            );
            for o in &pf.skipped {
                let _ = writeln!(out, "| {} | {} |", o.host, o.reason);
            }
        }
    }
    let _ = writeln!(out, "\n## What happened\n");
    for (t, what) in &timeline {
        let _ = writeln!(out, "- {} — {}", at(*t), what);
    }
    if !s.unhealthy.is_empty() {
        let _ = writeln!(
            out,
            "\n## Verdicts against hosts\n\n| host | health | evidence |\n|---|---|---|"
        );
        for (h, v) in &s.unhealthy {
            let ev: Vec<String> = v
                .evidence
                .iter()
                .map(|e| e.to_string().replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {h} | {} | {} |", v.health, ev.join("; "));
        }
    }
    let _ = writeln!(
        out,
        "\n## Hosts at the end\n\n| host | wave | state | last action |\n|---|---|---|---|"
    );
    for h in &s.hosts {
        let state = serde_json::to_value(h.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            h.host,
            h.wave,
            state,
            h.detail.replace('|', "\\|")
        );
    }
    if !sum.pending.is_empty() {
        let _ =
            writeln!(
            out,
            "\n**Pending:** {} may still hold the script: `wavectl reconcile {}` once they answer.",
            sum.pending.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", "),
            plan.run
        );
    }
    out
}
