//! What the commands that work on runs share: their errors (`cmd::error`, re-exported),
//! the store the flags name, opening a run (its rollout's lease, then its journal), and
//! driving a run to its end ([`Cx`]) — the one place where an OS signal becomes the
//! run's stop request, and a signal after a stop request ends the command at once.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::cli::Global;
use crate::exec::{wall_ms, Engine, Seams, Signals, Ssh, Stop, SystemClock};
use crate::report::metrics::MetricsFile;
use crate::report::{Event as Shown, Reporter};
use crate::rollout::{summarize, Event, Plan, RunState};
use crate::store::{
    self, Access, Artefact, AuditEntry, FileStore, Holder, JournalWriter, Lease, Location, Store,
};
use crate::transport::Transport;

use super::error::leases_run_out;
pub use super::error::{CmdError, CmdResult, Failure};

/// The store the flags name (`--state-dir`, or its default), not looked at yet: for
/// code that checks it only when it needs it (`--limit @STATE:RUN`).
pub async fn open_store(g: &Global) -> Result<Arc<dyn Store>, CmdError> {
    let at = match g.store.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(url) => Location::Postgres(url.to_string()),
        None => Location::Dir(g.state_dir.clone().unwrap_or_else(FileStore::default_root)),
    };
    Ok(store::open(at).await?)
}

/// The store the flags name, once it is known to be usable as `access` says (exit 2
/// with what to do otherwise: never an empty list of runs).
pub async fn store(g: &Global, access: Access) -> Result<Arc<dyn Store>, CmdError> {
    let s = open_store(g).await?;
    s.check(access).await?;
    Ok(s)
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

/// A run ready to be driven: its state so far and its journal's writer (which holds the
/// rollout's lease until it is dropped).
pub struct Opened {
    pub run: String,
    pub state: RunState,
    pub journal: Box<dyn JournalWriter>,
}

impl Opened {
    /// Begin a new run under `lease`: its journal, then the artefacts it keeps.
    pub async fn begin(
        store: &dyn Store,
        lease: Lease,
        run: &str,
        artefacts: &[(Artefact, &[u8])],
    ) -> Result<Opened, CmdError> {
        let journal = store.create(lease, run).await?;
        for (what, bytes) in artefacts {
            store.put(run, *what, bytes).await?;
        }
        Ok(Opened {
            run: run.to_string(),
            state: RunState::new(),
            journal,
        })
    }
}

/// The plan of run `id`, whose state `st` was read from its journal: a run whose journal
/// holds no beginning is exit 2.
pub fn began<'s>(id: &str, st: &'s RunState) -> Result<&'s Plan, CmdError> {
    st.plan
        .as_ref()
        .ok_or_else(|| CmdError::State(Failure::new(format!("run {id} never began"))))
}

/// Find a run by id or unique prefix, take its rollout's lease, open its journal.
pub async fn open_run(store: &dyn Store, prefix: &str) -> Result<Opened, CmdError> {
    let run = store.resolve(prefix).await?;
    let peek = store.load(&run).await?;
    let Some(plan) = &peek.plan else {
        return Err(CmdError::State(Failure::new(format!(
            "the journal of run {run} has no beginning: the run never started"
        ))));
    };
    let lease = store.lock(&plan.name, &Holder::this_process(&run)).await?;
    // Read again under the lease: nobody writes it now.
    let (journal, records) = store.open(lease, &run).await?;
    Ok(Opened {
        run,
        state: crate::rollout::replay(&records),
        journal,
    })
}

/// The bytes of the script an apply installs, kept with its journal; checked.
async fn script_of(store: &dyn Store, plan: &Plan) -> Result<Option<Vec<u8>>, CmdError> {
    let Some(d) = plan.deployment() else {
        return Ok(None);
    };
    let at = store.artefact_location(&plan.run, Artefact::Script);
    let Some(body) = store.get(&plan.run, Artefact::Script).await? else {
        return Err(CmdError::State(Failure::new(format!(
            "cannot read the script kept at {at}: it is not there"
        ))));
    };
    let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    if got != d.sha256 {
        return Err(CmdError::State(Failure::new(format!(
            "{at}: sha256 {got}, but run {} installs {}: the kept script changed",
            plan.run, d.sha256
        ))));
    }
    Ok(Some(body))
}

/// The context of a command that drives runs: its store and reporter, the runs' stop
/// request, and the signals it listens to from its creation to its end.
pub struct Cx<'a> {
    pub g: &'a Global,
    pub store: &'a Arc<dyn Store>,
    pub reporter: &'a Reporter,
    stop: Stop,
    /// Cancelled by a signal that came after a stop request, whose name it keeps.
    exit_now: CancellationToken,
    exit_by: Arc<OnceLock<&'static str>>,
    listener: tokio::task::JoinHandle<()>,
    /// A transport made before the run began (the preflight's, its logins kept), for
    /// the first run driven; otherwise each run makes its own.
    transport: std::sync::Mutex<Option<Transport>>,
}

impl<'a> Cx<'a> {
    /// Listen for SIGINT and SIGTERM from now on (the first is the runs' stop request;
    /// one after a stop request ends the command at once).
    pub fn new(
        g: &'a Global,
        store: &'a Arc<dyn Store>,
        reporter: &'a Reporter,
    ) -> Result<Cx<'a>, CmdError> {
        // The `ssh` masters of controllers that died go first, whatever this command does.
        crate::transport::clean_stale_control_dirs();
        let signals = Signals::listen().map_err(|e| {
            CmdError::System(Failure::new(format!("cannot listen for signals: {e}")))
        })?;
        let stop = Stop::new();
        let exit_now = CancellationToken::new();
        let exit_by = Arc::new(OnceLock::new());
        let listener = tokio::spawn(interrupts(
            signals,
            stop.clone(),
            exit_now.clone(),
            exit_by.clone(),
        ));
        Ok(Cx {
            g,
            store,
            reporter,
            stop,
            exit_now,
            exit_by,
            listener,
            transport: std::sync::Mutex::new(None),
        })
    }

    /// Drive the first run over `transport` (its kept connections serve that run).
    pub fn with_transport(self, transport: Option<Transport>) -> Cx<'a> {
        *self.transport.lock().unwrap_or_else(|p| p.into_inner()) = transport;
        self
    }

    /// A stop was requested (no further run should be taken up).
    pub fn stopped(&self) -> bool {
        self.stop.requested()
    }

    /// Resolves once a stop is requested.
    pub async fn stop_requested(&self) {
        self.stop.wait().await
    }

    /// Drive an opened run from `first` to its end, its summary shown and the audit log
    /// told; the state it ended in.
    pub async fn drive(&self, o: Opened, first: Event, plan: Plan) -> Result<RunState, CmdError> {
        let Opened {
            state, mut journal, ..
        } = o;
        let (g, store, reporter) = (self.g, self.store, self.reporter);
        reporter.set_run(&plan.run);
        let notifier = notifier(&**store, &plan, reporter).await;
        if let Event::Begin { .. } = &first {
            reporter.emit(Shown::RunStarted {
                run: plan.run.clone(),
                rollout: plan.name.clone(),
                hosts: plan.hosts.len(),
                waves: match plan.kind() {
                    crate::rollout::RunKind::Apply => plan.waves.len(),
                    _ => 0,
                },
                journal: store.journal_location(&plan.run),
            });
            if let Some(p) = &plan.preflight {
                reporter.emit(Shown::Preflight {
                    checked: p.checked,
                    logins: p.logins.len(),
                    offline: p.skipped.clone(),
                    skipped: true,
                });
            }
        }
        let body = script_of(&**store, &plan).await?;
        let ssh_config = g.ssh_config.clone().or_else(|| plan.ssh_config.clone());
        let made = self
            .transport
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let transport = match made {
            Some(t) => t,
            None => Transport::new(ssh_config).map_err(|e| {
                CmdError::Setup(Failure::new(format!(
                    "cannot create the ssh control directory under /tmp: {e}"
                )))
            })?,
        };
        let action = action_of(&first, &plan);
        audit(&**store, &plan, &action, "started", None, String::new()).await;
        let engine = Engine::new(
            state,
            plan.clone(),
            reporter,
            Seams {
                hosts: Arc::new(Ssh::new(transport, plan.clone(), body)),
                journal: &mut *journal,
                store: store.clone(),
                clock: Arc::new(SystemClock),
                stop: self.stop.clone(),
            },
        );
        let (state, result) = tokio::select! {
            biased;
            () = self.exit_now.cancelled() => {
                // Whatever the engine had in flight is dropped with it; its `ssh` go too.
                crate::transport::reap_all();
                let by = self.exit_by.get().copied().unwrap_or("SIGINT");
                return Err(CmdError::Interrupted(by));
            }
            r = engine.run(first) => r,
        };
        let outcome = match result {
            Ok(()) => {
                reporter.emit(Shown::Summary(summarize(&state)));
                Ok(state)
            }
            Err(e) if e.touched || e.source.is_lost() => {
                Err(CmdError::Lost(e.source, leases_run_out(&state)))
            }
            Err(e) => Err(CmdError::Store(e.source)),
        };
        if let Some(id) = notifier {
            // Waits for the hooks in flight, at most their timeout (a blocking wait: off the
            // runtime's other tasks, the signal listener among them).
            tokio::task::block_in_place(|| reporter.detach(id));
        }
        let (outcome_name, code, detail) = match &outcome {
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
                (s.status_name(), crate::rollout::exit_code(s), detail)
            }
            Err(e) => ("failed", e.code(), e.to_string()),
        };
        audit(&**store, &plan, &action, outcome_name, Some(code), detail).await;
        // The lease goes with the journal's writer, after the audit line.
        drop(journal);
        outcome
    }

    /// [`drive`](Self::drive), and the exit code the run's end means.
    pub async fn run_to_end(&self, o: Opened, first: Event, plan: Plan) -> CmdResult {
        let state = self.drive(o, first, plan).await?;
        Ok(crate::rollout::exit_code(&state))
    }
}

impl Drop for Cx<'_> {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// What the signals mean: the first is the stop request; one that comes after a stop
/// was requested (by a signal or through the store) exits at once, leaving the journal.
async fn interrupts(
    mut signals: Signals,
    stop: Stop,
    exit_now: CancellationToken,
    exit_by: Arc<OnceLock<&'static str>>,
) {
    loop {
        let name = signals.next().await;
        if !stop.request(name) {
            let _ = exit_by.set(name);
            exit_now.cancel();
            return;
        }
    }
}

/// Drive one opened run from `first` to its end; its exit code.
pub async fn run_one(
    g: &Global,
    store: &Arc<dyn Store>,
    reporter: &Reporter,
    o: Opened,
    first: Event,
    plan: Plan,
) -> CmdResult {
    Cx::new(g, store, reporter)?
        .run_to_end(o, first, plan)
        .await
}

/// The run's notification hook (its spec's `[notify]`, kept with its journal), fed the
/// run's events until the run ends. One that cannot be read is said, not fatal.
async fn notifier(
    store: &dyn Store,
    plan: &Plan,
    reporter: &Reporter,
) -> Option<crate::report::SinkId> {
    let at = store.artefact_location(&plan.run, Artefact::Notify);
    let text = match store.get(&plan.run, Artefact::Notify).await {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            reporter.emit(Shown::Note {
                message: format!("warning: no notifications: {e}"),
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
                message: format!("warning: no notifications: {at}: {e}"),
            });
            None
        }
    }
}

/// What a run's first event makes of this command, for the audit log.
fn action_of(first: &Event, plan: &Plan) -> String {
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
async fn audit(
    store: &dyn Store,
    plan: &Plan,
    action: &str,
    outcome: &str,
    exit_code: Option<i32>,
    detail: String,
) {
    let entry = AuditEntry {
        at: crate::rollout::step::utc(wall_ms() / 1000),
        user: store::local_user(),
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
        command: store::command_line(),
    };
    if let Err(e) = store.audit(&entry).await {
        eprintln!("warning: the audit log: {e}");
    }
}
