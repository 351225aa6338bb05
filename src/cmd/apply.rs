//! `apply` (a new run) and `resume` (a run whose controller died).

use std::path::Path;
use std::time::Duration;

use crate::cli::{Global, SpecArgs};
use crate::exec::{self, ApplyOptions};
use crate::exit;
use crate::journal::{Record, RunKind, RunStatus};
use crate::plan::Wave;
use crate::report::Event;
use crate::spec;

use super::session::{cleanup_summary, open_run, with_ctx};
use super::{bad_input, block_on, journal_failed, load, reporter, state_dir, stop_on_ctrl_c};

pub fn apply(g: &Global, args: &SpecArgs, yes: bool) -> i32 {
    let (loaded, waves) = match load(args) {
        Ok(x) => x,
        Err(e) => return bad_input(&e),
    };
    if loaded.rollout.policy.approvals > 0 {
        eprintln!(
            "error: rollout {} needs {} approvals (policy.approvals), and a bare spec carries none\n  help: signed plans (`plan -o`, `approve`, `apply PLAN`) are not built yet; set approvals = 0 to apply without them",
            loaded.rollout.name, loaded.rollout.policy.approvals
        );
        return exit::REFUSED;
    }
    if !yes {
        let plan = crate::plan::render(
            &waves,
            &loaded.targets,
            loaded.rollout.waves.spread_by.as_deref(),
        );
        let question = format!(
            "apply rollout {} to {}?",
            loaded.rollout.name,
            crate::report::count(loaded.targets.len(), "host")
        );
        match super::confirm(&plan, &question) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("not applied");
                return exit::ABORTED;
            }
            Err(e) => return bad_input(&e),
        }
    }
    let opts = ApplyOptions {
        state: state_dir(g),
        ssh_config: g.ssh_config.clone(),
    };
    let reporter = reporter(g);
    block_on(async {
        let stop = stop_on_ctrl_c();
        exec::apply(&loaded, &waves, &opts, &reporter, stop)
            .await
            .unwrap_or_else(|e| journal_failed(&e))
    })
}

/// Continue a run from its journal: settle the hosts whose last action has no outcome,
/// then carry on with the waves, or finish the rollback.
pub fn resume(g: &Global, run: &str) -> i32 {
    let dir = state_dir(g);
    let status = match dir.load(run) {
        Ok(s) => s.status,
        Err(e) => return journal_failed(&e),
    };
    match status {
        RunStatus::Done | RunStatus::RolledBack | RunStatus::Aborted => {
            println!(
                "run {run} is finished ({}); nothing to resume",
                status_name(status)
            );
            return exit::OK;
        }
        RunStatus::Paused => {
            eprintln!(
                "error: run {run} is paused on a health failure\n  help: `wavectl rollback {run}` removes the script"
            );
            return exit::BAD_INPUT;
        }
        _ => {}
    }
    let open = match open_run(&dir, run) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let info = &open.info;
    // An apply goes on with the same spec, script and hosts: refuse a changed spec.
    let loaded = if status == RunStatus::Running && info.kind == RunKind::Apply {
        match spec::load(
            Path::new(&info.spec_path),
            Some(Path::new(&info.inventory_path)),
        ) {
            Ok(mut l)
                if l.rollout.script.sha256 == info.sha256 && l.rollout.name == info.rollout =>
            {
                l.targets = info.hosts.clone();
                Some(l)
            }
            Ok(_) => {
                eprintln!(
                    "error: {} changed since run {run} started (name or script sha256 differ)\n  help: `wavectl rollback {run}` removes what the run installed; then apply the new spec",
                    info.spec_path
                );
                return exit::BAD_INPUT;
            }
            Err(e) => return bad_input(&e),
        }
    } else {
        None
    };
    let reporter = reporter(g);
    with_ctx(open.ssh_config(g), &open.journal, &reporter, async |ctx| {
        ctx.emit(Event::Note {
            message: format!("resuming run {run} ({})", status_name(status)),
        });
        let login = loaded
            .as_ref()
            .map_or(Duration::from_secs(10), |l| l.rollout.health.probe_timeout);
        exec::settle(ctx, info, &open.state, login).await?;
        let rs = dir.load(run)?;
        if let Some(loaded) = &loaded {
            ctx.record(Record::State {
                state: "running".into(),
                at: exec::now(),
            })?;
            let waves: Vec<Wave> = info
                .waves
                .iter()
                .enumerate()
                .map(|(i, h)| Wave {
                    index: i + 1,
                    hosts: h.clone(),
                })
                .collect();
            ctx.emit(Event::RunStarted {
                run: run.to_string(),
                rollout: info.rollout.clone(),
                hosts: info.hosts.len(),
                waves: waves.len(),
                journal: open.journal.path().display().to_string(),
            });
            return exec::drive(ctx, loaded, &waves, run, exec::progress(info, &rs)).await;
        }
        let done = exec::roll_back_run(ctx, info, &rs, false, false).await?;
        let mut summary = cleanup_summary(
            run,
            done,
            "rollback resumed and finished".into(),
            "rollback resumed; some hosts are still pending".into(),
        );
        // The run ends as it would have: rolled back (1), or aborted by the operator (3).
        if summary.exit_code == exit::OK {
            summary.exit_code = if status == RunStatus::Aborted {
                exit::ABORTED
            } else {
                exit::ROLLED_BACK
            };
            summary.meaning = exit::meaning(summary.exit_code).into();
        }
        let code = summary.exit_code;
        ctx.emit(Event::Summary(summary));
        Ok(code)
    })
}

/// The name a state has in the journal and in `--json` (its serde name).
pub fn status_name(s: impl serde::Serialize) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
