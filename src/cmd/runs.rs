//! Commands on a journaled run: `rollback`, `abort`, `reconcile`.

use crate::cli::Global;
use crate::exec::{self, Ctx};
use crate::exit;
use crate::journal::{Journal, RunKind, RunStatus};
use crate::report::{Event, Summary};

use super::{block_on, journal_failed, reporter, state_dir, stop_on_ctrl_c, transport};

/// Remove the script from every host of a run that may hold it.
pub fn rollback(g: &Global, run: &str) -> i32 {
    let state = state_dir(g);
    let rs = match state.load(run) {
        Ok(s) => s,
        Err(e) => return journal_failed(&e),
    };
    let Some(info) = rs.info.clone() else {
        eprintln!("error: the journal of run {run} has no run record; nothing to roll back");
        return exit::BAD_INPUT;
    };
    let _lock = match state.lock(&info.rollout, run) {
        Ok(l) => l,
        Err(e) => return journal_failed(&e),
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
            let hosts: Vec<String> = rs.to_clean().iter().map(|h| h.host.clone()).collect();
            ctx.emit(Event::RollbackStarted {
                reason: format!("`wavectl rollback {run}`"),
                hosts,
            });
            let done = exec::roll_back_run(&ctx, &info, &rs, false, false).await?;
            let code = if done.pending.is_empty() {
                exit::OK
            } else {
                exit::INCOMPLETE
            };
            ctx.emit(Event::Summary(Summary {
                run: run.to_string(),
                outcome: if code == exit::OK {
                    "rolled back: no host of the run holds the script".into()
                } else {
                    format!(
                        "some hosts are still pending: `wavectl reconcile {run}` once they answer"
                    )
                },
                exit_code: code,
                meaning: if code == exit::OK {
                    "done: every host of the run is clean".into()
                } else {
                    exit::meaning(code).into()
                },
                rolled_back: done.clean,
                pending: done.pending,
                ..Summary::default()
            }));
            Ok::<i32, crate::journal::JournalError>(code)
        }
        .await;
        transport.reap();
        result.unwrap_or_else(|e| journal_failed(&e))
    })
}

/// Ask the process running a run to stop and roll back (SIGINT, as the first Ctrl-C).
pub fn abort(g: &Global, run: &str) -> i32 {
    let state = state_dir(g);
    let rs = match state.load(run) {
        Ok(s) => s,
        Err(e) => return journal_failed(&e),
    };
    let Some(info) = rs.info else {
        eprintln!("error: the journal of run {run} has no run record");
        return exit::BAD_INPUT;
    };
    match state.holder(&info.rollout) {
        Some((holder, pid)) if holder == run => {
            // SAFETY: kill(2) on a pid read from the lock its holder keeps; no memory involved.
            let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            if r == 0 {
                println!("asked run {run} (pid {pid}) to stop: it finishes the actions in flight and rolls back");
                exit::OK
            } else {
                eprintln!(
                    "error: cannot signal pid {pid}: {}",
                    std::io::Error::last_os_error()
                );
                exit::INCOMPLETE
            }
        }
        _ => {
            eprintln!(
                "error: run {run} is not running (state {})\n  help: `wavectl rollback {run}` removes what it installed; `wavectl resume {run}` continues it",
                super::apply::status_name(rs.status)
            );
            exit::BAD_INPUT
        }
    }
}

/// Retry every pending removal of one run, or of every run not running now.
pub fn reconcile(g: &Global, run: Option<&str>, until_done: bool) -> i32 {
    let state = state_dir(g);
    let ids: Vec<String> = match run {
        Some(r) => vec![r.to_string()],
        None => state.runs(),
    };
    let reporter = reporter(g);
    let mut worst = exit::OK;
    let mut touched_any = false;
    for id in ids {
        let rs = match state.load(&id) {
            Ok(s) => s,
            Err(e) => {
                worst = worst.max(journal_failed(&e));
                continue;
            }
        };
        let Some(info) = rs.info.clone() else {
            continue;
        };
        // A rollback or purge that died half-way: everything it may not have cleaned.
        let unfinished = matches!(
            rs.status,
            RunStatus::RollingBack | RunStatus::Incomplete | RunStatus::Aborted
        ) || (info.kind != RunKind::Apply && rs.status == RunStatus::Running);
        let only_pending = !unfinished;
        let count = if unfinished {
            rs.to_clean().len()
        } else {
            rs.pending().len()
        };
        if count == 0 {
            continue;
        }
        let _lock = match state.lock(&info.rollout, &id) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skipping run {id}: {e}");
                worst = worst.max(exit::INCOMPLETE);
                continue;
            }
        };
        let journal = match Journal::open(&state, &id) {
            Ok(j) => j,
            Err(e) => return journal_failed(&e),
        };
        touched_any = true;
        let ssh_config = g
            .ssh_config
            .clone()
            .or(info.ssh_config.as_ref().map(Into::into));
        let code = block_on(async {
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
            let result = exec::roll_back_run(&ctx, &info, &rs, only_pending, until_done).await;
            transport.reap();
            match result {
                Ok(done) => {
                    let code = if done.pending.is_empty() {
                        exit::OK
                    } else {
                        exit::INCOMPLETE
                    };
                    ctx.emit(Event::Summary(Summary {
                        run: id.clone(),
                        outcome: if code == exit::OK {
                            format!(
                                "reconciled: {} pending hosts are clean now",
                                done.clean.len()
                            )
                        } else {
                            format!("{} hosts are still pending", done.pending.len())
                        },
                        exit_code: code,
                        meaning: if code == exit::OK {
                            "done: every host of the run is clean".into()
                        } else {
                            exit::meaning(code).into()
                        },
                        rolled_back: done.clean,
                        pending: done.pending,
                        removed: done.details,
                        ..Summary::default()
                    }));
                    code
                }
                Err(e) => journal_failed(&e),
            }
        });
        worst = worst.max(code);
    }
    if !touched_any && worst == exit::OK {
        println!("nothing to reconcile: no run has a pending removal");
    }
    worst
}
