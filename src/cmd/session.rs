//! What the commands that work on hosts share: one error type mapped to an exit code,
//! the runtime with the stop request, opening a journaled run (lock, then journal), and
//! running the engine to the end of a run with its summary shown.

use crate::cli::Global;
use crate::diag::InputError;
use crate::exec::{Engine, Shared, Stop};
use crate::exit;
use crate::journal::{Access, Journal, JournalError, RunLock, StateDir};
use crate::report::metrics::MetricsFile;
use crate::report::{Event as Shown, Reporter};
use crate::rollout::{summarize, Event, RunState};
use crate::transport::Transport;

/// Why a command failed, with the exit code it means. Printed once, by `cmd::run`.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Bad input: nothing was touched on any host (exit 2).
    #[error("{0}")]
    Input(#[from] InputError),
    /// The state directory, a lock or a journal (exit 2: nothing was touched).
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// The journal stopped taking records in the middle of a run (exit 4).
    #[error("{0}\n  help: the run stopped where it was, and hosts may hold the script: make the state directory writable, then `wavectl reconcile` (or `wavectl purge NAME`, which asks the hosts themselves)")]
    Lost(JournalError),
    /// Refused: approvals, a stale plan (exit 5).
    #[error("{0}")]
    Refused(String),
    /// Anything else, with its exit code.
    #[error("{0}")]
    Other(String, i32),
}

impl CmdError {
    pub fn code(&self) -> i32 {
        match self {
            CmdError::Input(_) | CmdError::Journal(_) => exit::BAD_INPUT,
            CmdError::Lost(_) => exit::INCOMPLETE,
            CmdError::Refused(_) => exit::REFUSED,
            CmdError::Other(_, c) => *c,
        }
    }
}

pub type CmdResult = Result<i32, CmdError>;

/// The state directory of `--state-dir` (or its default), once it is known to be usable
/// as `access` says (exit 2 with what to do otherwise: never an empty list of runs).
pub fn state_dir(g: &Global, access: Access) -> Result<StateDir, CmdError> {
    let dir = unchecked_state_dir(g);
    dir.usable(access)?;
    Ok(dir)
}

/// The state directory named by `--state-dir` (or the default), not looked at yet: for
/// code that checks it only when it needs it (`--limit @STATE:RUN`).
pub fn unchecked_state_dir(g: &Global) -> StateDir {
    StateDir::new(g.state_dir.clone().unwrap_or_else(StateDir::default_root))
}

pub fn reporter(g: &Global) -> Reporter {
    Reporter::new(g.json, g.verbose)
}

/// The reporter of a command that works on runs, writing `--metrics-file` if given
/// (checked before anything is done: `metrics_file` opens it).
pub fn reporter_with(g: &Global, metrics: Option<MetricsFile>) -> Reporter {
    let r = reporter(g);
    if let Some(m) = metrics {
        let notes = r.notes();
        r.attach(Box::new(m.with_notes(notes)));
    }
    r
}

/// `--metrics-file PATH`, checked: its directory takes a new file (exit 2 if not).
pub fn metrics_file(path: Option<&std::path::Path>) -> Result<Option<MetricsFile>, CmdError> {
    Ok(path.map(MetricsFile::open).transpose()?)
}

/// Run async work on a fresh runtime, with SIGINT/SIGTERM turned into a stop request.
pub fn with_runtime<F, Fut>(work: F) -> CmdResult
where
    F: FnOnce(Stop) -> Fut,
    Fut: std::future::Future<Output = CmdResult>,
{
    // The `ssh` masters of controllers that died go first, whatever this command does.
    crate::transport::clean_stale_control_dirs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CmdError::Other(
                format!("cannot start the async runtime: {e}"),
                exit::INCOMPLETE,
            )
        })?;
    rt.block_on(async {
        let stop = Stop::listen().map_err(|e| {
            CmdError::Other(format!("cannot listen for signals: {e}"), exit::INCOMPLETE)
        })?;
        work(stop).await
    })
}

/// A journaled run opened for more work: its state (replayed), its lock, its journal.
pub struct Opened {
    pub run: String,
    pub state: RunState,
    pub journal: Journal,
    pub lock: RunLock,
}

/// Find a run by id or unique prefix, take its rollout's lock, open its journal.
pub fn open_run(dir: &StateDir, prefix: &str) -> Result<Opened, CmdError> {
    let run = dir.resolve(prefix)?;
    let peek = dir.load(&run)?;
    let Some(plan) = &peek.plan else {
        return Err(CmdError::Other(
            format!("the journal of run {run} has no beginning: the run never started"),
            exit::BAD_INPUT,
        ));
    };
    let lock = dir.lock(&plan.name, &run)?;
    // Read again under the lock: nobody writes it now.
    let (journal, records) = Journal::open(dir, &run)?;
    Ok(Opened {
        run,
        state: crate::rollout::replay(&records),
        journal,
        lock,
    })
}

/// The bytes of the script an apply installs, kept beside its journal; checked.
pub fn script_of(dir: &StateDir, state: &RunState) -> Result<Option<Vec<u8>>, CmdError> {
    let Some(plan) = &state.plan else {
        return Ok(None);
    };
    let Some(d) = plan.deployment() else {
        return Ok(None);
    };
    let path = dir.script_path(&plan.run);
    let body = std::fs::read(&path).map_err(|source| {
        CmdError::Journal(JournalError::Io {
            what: "read the script kept at",
            path: path.clone(),
            source,
        })
    })?;
    let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    if got != d.sha256 {
        return Err(CmdError::Other(
            format!(
                "{}: sha256 {got}, but run {} installs {}: the kept script changed",
                path.display(),
                plan.run,
                d.sha256
            ),
            exit::BAD_INPUT,
        ));
    }
    Ok(Some(body))
}

/// What a command that runs the engine brings to it.
pub struct Cx<'a> {
    pub g: &'a Global,
    pub dir: &'a StateDir,
    pub reporter: &'a Reporter,
    pub stop: &'a Stop,
}

/// Run the engine from `first` to the run's end; show the summary. Returns the state.
pub async fn drive(
    cx: &Cx<'_>,
    state: RunState,
    journal: Journal,
    first: Event,
    plan: crate::rollout::Plan,
) -> Result<RunState, CmdError> {
    let Cx {
        g,
        dir,
        reporter,
        stop,
    } = *cx;
    reporter.set_run(&plan.run);
    let notifier = notifier(dir, &plan, reporter);
    if let Event::Begin { .. } = &first {
        reporter.emit(Shown::RunStarted {
            run: plan.run.clone(),
            rollout: plan.name.clone(),
            hosts: plan.hosts.len(),
            waves: match plan.kind() {
                crate::rollout::RunKind::Apply => plan.waves.len(),
                _ => 0,
            },
            journal: journal.path().display().to_string(),
        });
    }
    let body = match &first {
        Event::Begin { .. } => {
            let st = RunState {
                plan: Some(plan.clone()),
                ..RunState::new()
            };
            script_of(dir, &st)?
        }
        _ => script_of(dir, &state)?,
    };
    let ssh_config = g.ssh_config.clone().or_else(|| plan.ssh_config.clone());
    let transport = Transport::new(ssh_config).map_err(|e| {
        CmdError::Other(
            format!("cannot create the ssh control directory under /tmp: {e}"),
            exit::BAD_INPUT,
        )
    })?;
    let plan_copy = plan.clone();
    let shared = Shared::new(transport, plan, body);
    let engine = Engine::new(
        state,
        journal,
        shared,
        reporter,
        stop.token.clone(),
        stop.by.clone(),
    );
    let action = action_of(&first, &plan_copy);
    audit(dir, &plan_copy, &action, "started", None, String::new());
    let (state, result) = engine.run(first).await;
    let outcome = match result {
        Ok(()) => {
            reporter.emit(Shown::Summary(summarize(&state)));
            Ok(state)
        }
        Err(e) if e.touched => Err(CmdError::Lost(e.source)),
        Err(e) => Err(CmdError::Journal(e.source)),
    };
    if let Some(id) = notifier {
        // Waits for the hooks in flight, at most their timeout (a blocking wait: off the
        // runtime's other tasks, the signal listener among them).
        tokio::task::block_in_place(|| reporter.detach(id));
    }
    match &outcome {
        Ok(s) => {
            let pending: Vec<String> = s
                .hosts
                .iter()
                .filter(|h| h.state.unfinished())
                .map(|h| h.host.clone())
                .collect();
            let detail = if pending.is_empty() {
                String::new()
            } else {
                format!("pending: {}", pending.join(", "))
            };
            audit(
                dir,
                &plan_copy,
                &action,
                s.status_name(),
                Some(crate::rollout::exit_code(s)),
                detail,
            );
        }
        Err(e) => audit(
            dir,
            &plan_copy,
            &action,
            "failed",
            Some(e.code()),
            e.to_string(),
        ),
    }
    outcome
}

/// The run's notification hook (its spec's `[notify]`, kept beside its journal), fed
/// the run's events until the run ends. One that cannot be read is said, not fatal.
fn notifier(
    dir: &StateDir,
    plan: &crate::rollout::Plan,
    reporter: &Reporter,
) -> Option<crate::report::SinkId> {
    let path = dir.notify_path(&plan.run);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            reporter.emit(Shown::Note {
                message: format!(
                    "warning: no notifications: cannot read {}: {e}",
                    path.display()
                ),
            });
            return None;
        }
    };
    match serde_json::from_slice::<crate::spec::Notify>(&text) {
        Ok(n) => Some(
            reporter.attach(Box::new(crate::report::notify::Notifier::new(
                n,
                &plan.run,
                &plan.name,
                reporter.notes(),
            ))),
        ),
        Err(e) => {
            reporter.emit(Shown::Note {
                message: format!("warning: no notifications: {}: {e}", path.display()),
            });
            None
        }
    }
}

/// What a run's first event makes of this command, for the audit log.
fn action_of(first: &Event, plan: &crate::rollout::Plan) -> String {
    use crate::rollout::{Intent, RunKind};
    match first {
        Event::Attach(a) => match a.intent {
            Intent::Resume => "resume",
            Intent::Rollback => "rollback",
            Intent::Reconcile | Intent::Orphaned => "reconcile",
        },
        _ => match plan.kind() {
            RunKind::Apply => "apply",
            RunKind::Purge => "purge",
            RunKind::PurgePath => "purge-path",
        },
    }
    .to_string()
}

/// One line in the audit log (a log that cannot be written is said, not fatal: the
/// journal is the record the engine depends on).
fn audit(
    dir: &StateDir,
    plan: &crate::rollout::Plan,
    action: &str,
    outcome: &str,
    exit_code: Option<i32>,
    detail: String,
) {
    let entry = crate::journal::AuditEntry {
        at: crate::rollout::step::utc(crate::exec::now_ms() / 1000),
        user: super::apply::local_user(),
        action: action.to_string(),
        outcome: outcome.to_string(),
        exit_code,
        rollout: plan.name.clone(),
        run: Some(plan.run.clone()),
        plan_hash: plan.approval.as_ref().map(|a| a.hash.clone()),
        script_sha256: plan.deployment().map(|d| d.sha256.clone()),
        signers: plan
            .approval
            .as_ref()
            .map(|a| a.signers.clone())
            .unwrap_or_default(),
        detail,
        command: std::env::args().collect(),
    };
    if let Err(e) = dir.audit(&entry) {
        eprintln!("warning: the audit log: {e}");
    }
}

/// Take an opened run up (resume, rollback) with `first`, to its end; its exit code.
pub fn take_up(
    g: &Global,
    dir: &StateDir,
    reporter: &Reporter,
    o: Opened,
    plan: crate::rollout::Plan,
    first: Event,
) -> CmdResult {
    let _lock = o.lock;
    with_runtime(|stop| async move {
        let cx = Cx {
            g,
            dir,
            reporter,
            stop: &stop,
        };
        let state = drive(&cx, o.state, o.journal, first, plan).await?;
        Ok(crate::rollout::exit_code(&state))
    })
}
