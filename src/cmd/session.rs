//! What the commands that work on hosts share: opening a journaled run (its state,
//! lock and journal), running async work with a transport and a context (reaping every
//! `ssh` afterwards), and the summary of a cleanup.

use std::path::PathBuf;

use crate::cli::Global;
use crate::exec::{Cleanup, Ctx};
use crate::exit;
use crate::journal::{Journal, JournalError, RunInfo, RunLock, RunState, StateDir};
use crate::report::{Reporter, Summary};

use super::{block_on, journal_failed, stop_on_ctrl_c};

/// A journaled run opened for more work.
pub struct OpenRun {
    pub state: RunState,
    pub info: RunInfo,
    pub journal: Journal,
    /// Held until the command ends: one process works on a rollout at a time.
    _lock: RunLock,
}

impl OpenRun {
    /// `--ssh-config`, else the one the run was started with.
    pub fn ssh_config(&self, g: &Global) -> Option<PathBuf> {
        g.ssh_config
            .clone()
            .or(self.info.ssh_config.as_ref().map(Into::into))
    }
}

/// Replay a run's journal, take its rollout's lock and open the journal for appending.
/// `Err` is the exit code, after printing why.
pub fn open_run(dir: &StateDir, run: &str) -> Result<OpenRun, i32> {
    let state = dir.load(run).map_err(|e| journal_failed(&e))?;
    let Some(info) = state.info.clone() else {
        eprintln!("error: the journal of run {run} has no run record: the run never started");
        return Err(exit::BAD_INPUT);
    };
    let lock = dir
        .lock(&info.rollout, run)
        .map_err(|e| journal_failed(&e))?;
    let journal = Journal::open(dir, run).map_err(|e| journal_failed(&e))?;
    Ok(OpenRun {
        state,
        info,
        journal,
        _lock: lock,
    })
}

/// Run `work` on a fresh runtime with a transport (`ssh_config` as `-F`) and a context
/// writing to `journal`; Ctrl-C sets the context's stop flag. Every `ssh` it started
/// is gone when this returns.
pub fn with_ctx(
    ssh_config: Option<PathBuf>,
    journal: &Journal,
    reporter: &Reporter,
    work: impl AsyncFnOnce(&Ctx<'_>) -> Result<i32, JournalError>,
) -> i32 {
    block_on(async {
        let stop = stop_on_ctrl_c();
        let transport = match crate::transport::Transport::new(ssh_config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot create the ssh control directory under /tmp: {e}");
                return exit::INCOMPLETE;
            }
        };
        let ctx = Ctx {
            transport: &transport,
            journal,
            reporter,
            stop,
        };
        let result = work(&ctx).await;
        transport.reap();
        result.unwrap_or_else(|e| journal_failed(&e))
    })
}

/// The summary of a cleanup: exit 0 when every host is clean, 4 when some are pending.
pub fn cleanup_summary(run: &str, done: Cleanup, clean: String, pending: String) -> Summary {
    let code = if done.pending.is_empty() {
        exit::OK
    } else {
        exit::INCOMPLETE
    };
    Summary {
        run: run.to_string(),
        outcome: if code == exit::OK { clean } else { pending },
        exit_code: code,
        meaning: if code == exit::OK {
            "done: every host is clean".into()
        } else {
            exit::meaning(code).into()
        },
        rolled_back: done.clean,
        pending: done.pending,
        removed: done.details,
        ..Summary::default()
    }
}
