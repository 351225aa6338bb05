//! `apply` (a new run) and `resume` (a run whose controller died).

use std::path::Path;

use crate::cli::{Global, SpecArgs};
use crate::exec::{self, ApplyOptions, Ctx};
use crate::exit;
use crate::journal::{Journal, Record, RunStatus};
use crate::plan::Wave;
use crate::report::{Event, Summary};
use crate::spec;

use super::{
    bad_input, block_on, journal_failed, load, reporter, state_dir, stop_on_ctrl_c, transport,
};

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
    let state = state_dir(g);
    let rs = match state.load(run) {
        Ok(s) => s,
        Err(e) => return journal_failed(&e),
    };
    let Some(info) = rs.info.clone() else {
        eprintln!("error: the journal of run {run} has no run record; nothing to resume");
        return exit::BAD_INPUT;
    };
    match rs.status {
        RunStatus::Done | RunStatus::RolledBack => {
            println!(
                "run {run} is finished ({}); nothing to resume",
                status_name(rs.status)
            );
            return exit::OK;
        }
        RunStatus::Paused => {
            eprintln!("error: run {run} is paused on a health failure; `wavectl rollback {run}` removes the script");
            return exit::BAD_INPUT;
        }
        _ => {}
    }
    let _lock = match state.lock(&info.rollout, run) {
        Ok(l) => l,
        Err(e) => return journal_failed(&e),
    };
    // An apply goes on with the same spec, script and hosts: refuse a changed spec.
    let resumed_apply =
        rs.status == RunStatus::Running && info.kind == crate::journal::RunKind::Apply;
    let loaded = if resumed_apply {
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
    let journal = match Journal::open(&state, run) {
        Ok(j) => j,
        Err(e) => return journal_failed(&e),
    };
    let reporter = reporter(g);
    let ssh_config = g
        .ssh_config
        .clone()
        .or(info.ssh_config.as_ref().map(Into::into));
    block_on(async {
        let stop = stop_on_ctrl_c();
        let Some(transport) = transport(ssh_config) else {
            return exit::INCOMPLETE;
        };
        let ctx = Ctx {
            transport: &transport,
            journal: &journal,
            reporter: &reporter,
            stop,
        };
        let result = async {
            ctx.emit(Event::Note {
                message: format!("resuming run {run} ({})", status_name(rs.status)),
            });
            let login = loaded
                .as_ref()
                .map_or(std::time::Duration::from_secs(10), |l| {
                    l.rollout.health.probe_timeout
                });
            exec::settle(&ctx, &info, &rs, login).await?;
            let rs = state.load(run).map_err(|e| match e {
                crate::journal::JournalError::NoSuchRun(_) => unreachable_run(run),
                other => other,
            })?;
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
                let progress = exec::progress(&info, &rs);
                ctx.emit(Event::RunStarted {
                    run: run.to_string(),
                    rollout: info.rollout.clone(),
                    hosts: info.hosts.len(),
                    waves: waves.len(),
                    journal: journal.path().display().to_string(),
                });
                return exec::drive(&ctx, loaded, &waves, run, progress).await;
            }
            let done = exec::roll_back_run(&ctx, &info, &rs, false, false).await?;
            let code = if !done.pending.is_empty() {
                exit::INCOMPLETE
            } else if rs.status == RunStatus::Aborted {
                exit::ABORTED
            } else {
                exit::ROLLED_BACK
            };
            ctx.emit(Event::Summary(Summary {
                run: run.to_string(),
                outcome: if code == exit::INCOMPLETE {
                    "rollback resumed; some hosts are still pending".into()
                } else {
                    "rollback resumed and finished".into()
                },
                exit_code: code,
                meaning: exit::meaning(code).into(),
                rolled_back: done.clean,
                pending: done.pending,
                ..Summary::default()
            }));
            Ok(code)
        }
        .await;
        transport.reap();
        result.unwrap_or_else(|e| journal_failed(&e))
    })
}

fn unreachable_run(run: &str) -> crate::journal::JournalError {
    crate::journal::JournalError::NoSuchRun(run.to_string())
}

pub fn status_name(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
