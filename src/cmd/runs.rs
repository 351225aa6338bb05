//! Commands on a journaled run: `rollback`, `abort`, `reconcile`.

use crate::cli::Global;
use crate::exec;
use crate::exit;
use crate::journal::{RunKind, RunStatus};
use crate::report::Event;

use super::session::{cleanup_summary, open_run, with_ctx};
use super::{journal_failed, reporter, state_dir};

/// Remove the script from every host of a run that may hold it.
pub fn rollback(g: &Global, run: &str) -> i32 {
    let open = match open_run(&state_dir(g), run) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let reporter = reporter(g);
    with_ctx(open.ssh_config(g), &open.journal, &reporter, async |ctx| {
        let hosts = open
            .state
            .to_clean()
            .iter()
            .map(|h| h.host.clone())
            .collect();
        ctx.emit(Event::RollbackStarted {
            reason: format!("`wavectl rollback {run}`"),
            hosts,
        });
        let done = exec::roll_back_run(ctx, &open.info, &open.state, false, false).await?;
        let summary = cleanup_summary(
            run,
            done,
            "rolled back: no host of the run holds the script".into(),
            format!("some hosts are still pending: `wavectl reconcile {run}` once they answer"),
        );
        let code = summary.exit_code;
        ctx.emit(Event::Summary(summary));
        Ok(code)
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
    let dir = state_dir(g);
    let ids: Vec<String> = match run {
        Some(r) => vec![r.to_string()],
        None => dir.runs(),
    };
    let reporter = reporter(g);
    let mut worst = exit::OK;
    let mut worked = false;
    for id in ids {
        let rs = match dir.load(&id) {
            Ok(s) => s,
            Err(e) => {
                worst = worst.max(journal_failed(&e));
                continue;
            }
        };
        let Some(info) = &rs.info else { continue };
        // A rollback or purge that died half-way: everything it may not have cleaned.
        let unfinished = matches!(
            rs.status,
            RunStatus::RollingBack | RunStatus::Incomplete | RunStatus::Aborted
        ) || (info.kind != RunKind::Apply && rs.status == RunStatus::Running);
        let count = if unfinished {
            rs.to_clean().len()
        } else {
            rs.pending().len()
        };
        if count == 0 {
            continue;
        }
        if let Some((holder, pid)) = dir.holder(&info.rollout) {
            eprintln!(
                "skipping run {id}: rollout {} is being worked on by run {holder} (pid {pid})",
                info.rollout
            );
            worst = worst.max(exit::INCOMPLETE);
            continue;
        }
        let open = match open_run(&dir, &id) {
            Ok(o) => o,
            Err(code) => {
                worst = worst.max(code);
                continue;
            }
        };
        worked = true;
        let code = with_ctx(open.ssh_config(g), &open.journal, &reporter, async |ctx| {
            let done =
                exec::roll_back_run(ctx, &open.info, &open.state, !unfinished, until_done).await?;
            let n = done.clean.len();
            let left = done.pending.len();
            let summary = cleanup_summary(
                &id,
                done,
                format!("reconciled: {n} hosts clean"),
                format!("{left} hosts are still pending"),
            );
            let code = summary.exit_code;
            ctx.emit(Event::Summary(summary));
            Ok(code)
        });
        worst = worst.max(code);
    }
    if !worked && worst == exit::OK {
        println!("nothing to reconcile: no run has a pending removal");
    }
    worst
}
