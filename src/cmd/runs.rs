//! Commands on a journaled run: `rollback`, `abort`, `reconcile` (and its standby,
//! `reconcile --watch`).

use std::path::Path;

use crate::cli::Global;
use crate::exec::wall_ms;
use crate::exit;
use crate::report::Event as Shown;
use crate::rollout::reconcile::{decide, Reconcile as Plan};
use crate::rollout::{step::utc, End, Intent, RunKind, StopRequest};
use crate::store::{local_host, local_user, Access};

use super::apply::attach;
use super::session::{
    began, metrics_file, open_run, reporter, reporter_with, run_one, store, CmdError, CmdResult,
    Cx, Failure,
};

/// Return every host of a run to what it held before the run.
pub async fn rollback(g: &Global, run: &str, yes: bool, metrics: Option<&Path>) -> CmdResult {
    let metrics = metrics_file(metrics)?;
    let store = store(g, Access::Write).await?;
    let o = open_run(&*store, run).await?;
    let id = o.run.clone();
    let plan = began(&id, &o.state)?.clone();
    if plan.kind() != RunKind::Apply {
        return Err(CmdError::State(
            Failure::new(format!("run {id} is a purge, which cannot be undone")).help(format!(
                "`wavectl reconcile {id}` finishes its pending hosts"
            )),
        ));
    }
    let question = format!(
        "roll back run {id} of rollout {}: {} may hold its install?",
        plan.name,
        crate::report::count(o.state.may_hold().count(), "host")
    );
    if !super::consent(yes, "roll back", "", &question)? {
        eprintln!("not rolled back");
        return Ok(exit::ABORTED);
    }
    let reporter = reporter_with(g, metrics);
    let first = attach(Intent::Rollback, false, None);
    run_one(g, &store, &reporter, o, first, plan).await
}

/// Ask the controller driving a run to stop (an apply then rolls back), wherever it
/// runs: a stop request in the store, which it sees within a second and handles as a
/// first Ctrl-C. Nothing is signalled.
pub async fn abort(g: &Global, run: &str) -> CmdResult {
    let store = store(g, Access::Read).await?;
    let id = store.resolve(run).await?;
    let st = store.load(&id).await?;
    let plan = began(&id, &st)?;
    match store.holder(&plan.name).await? {
        Some(h) if h.run == id => {
            let req = StopRequest {
                by: format!("abort by {}@{}", local_user(), local_host()),
            };
            store.request_stop(&id, &req).await?;
            reporter(g).emit(Shown::AbortSent {
                run: id,
                pid: h.pid,
                who: h.who(),
                host: h.host,
                user: h.user,
            });
            Ok(exit::OK)
        }
        _ => Err(CmdError::State(
            Failure::new(format!(
                "run {id} is not running (it is {}; its controller is gone)",
                st.status_name()
            ))
            .help(format!("`wavectl rollback {id}` returns its hosts to what they held; `wavectl resume {id}` continues it")),
        )),
    }
}

/// Finish what is unfinished: pending removals, unconfirmed hosts, and applies whose
/// controller died (rolled back, as their leases would) — of one run or of every run.
pub async fn reconcile(
    g: &Global,
    run: Option<&str>,
    until_done: bool,
    yes: bool,
    metrics: Option<&Path>,
) -> CmdResult {
    let metrics = metrics_file(metrics)?;
    let store = store(g, Access::Write).await?;
    let ids: Vec<String> = match run {
        Some(r) => vec![store.resolve(r).await?],
        None => store.runs().await?,
    };
    // A damaged journal stops the command before anything is touched: what it would do
    // there cannot be known.
    let mut todo = 0;
    let mut hosts = 0;
    for id in &ids {
        let st = store.load(id).await?;
        if matches!(decide(id, &st), Plan::Take(_)) {
            todo += 1;
            hosts += st.may_hold().count();
        }
    }
    if todo > 0 {
        let question = format!(
            "reconcile {}: {} may hold something unfinished?",
            crate::report::count(todo, "run"),
            crate::report::count(hosts, "host")
        );
        if !super::consent(yes, "reconcile", "", &question)? {
            eprintln!("not reconciled");
            return Ok(exit::ABORTED);
        }
    }
    let reporter = reporter_with(g, metrics);
    let cx = Cx::new(g, &store, &reporter)?;
    let mut worst = exit::OK;
    let mut worked = false;
    for id in ids {
        if cx.stopped() {
            reporter.emit(Shown::Note {
                message: format!("stopped: run {id} and the runs after it were not reconciled"),
            });
            worst = worst.max(exit::INCOMPLETE);
            break;
        }
        let st = match store.load(&id).await {
            Ok(s) => s,
            Err(e) => {
                worst = worst.max(said(&reporter, e.into(), exit::INCOMPLETE));
                continue;
            }
        };
        let intent = match decide(&id, &st) {
            Plan::Skip => continue,
            Plan::Note(n) => {
                reporter.emit(Shown::Note { message: n });
                continue;
            }
            Plan::Take(i) => i,
        };
        let Some(name) = st.plan.as_ref().map(|p| p.name.clone()) else {
            continue;
        };
        if let Some(h) = store.holder(&name).await? {
            reporter.emit(Shown::Note {
                message: format!(
                    "skipping run {id}: rollout {name} is being worked on by run {} ({})",
                    h.run,
                    h.who()
                ),
            });
            worst = worst.max(exit::INCOMPLETE);
            continue;
        }
        let o = match open_run(&*store, &id).await {
            Ok(o) => o,
            Err(e) => {
                let code = e.code().max(exit::INCOMPLETE);
                worst = worst.max(said(&reporter, e, code));
                continue;
            }
        };
        worked = true;
        let Some(plan) = o.state.plan.clone() else {
            continue;
        };
        if intent == Intent::Orphaned {
            reporter.emit(Shown::Note {
                message: format!(
                    "run {id} ({}) was interrupted and its controller is gone: rolling it back, as its hosts' leases would",
                    o.state.status_name()
                ),
            });
        }
        let state = cx.drive(o, attach(intent, until_done, None), plan).await;
        worst = worst.max(reconciled(&reporter, state)?);
    }
    if !worked && worst == exit::OK {
        crate::outln!("nothing to reconcile: every run has ended and no host is pending");
    }
    Ok(worst)
}

/// The exit code of one run that reconcile (or the standby) drove: 4 while a host may
/// still hold something unfinished or the run ended unconfirmed; an error is said and
/// counts as at least 4; a second signal (`Interrupted`) ends the command.
fn reconciled(
    reporter: &crate::report::Reporter,
    state: Result<crate::rollout::RunState, CmdError>,
) -> Result<i32, CmdError> {
    Ok(match state {
        Ok(s) if s.may_hold().any(|h| h.state.unfinished()) => exit::INCOMPLETE,
        Ok(s) if matches!(s.end(), Some(End::Unconfirmed)) => exit::INCOMPLETE,
        Ok(_) => exit::OK,
        Err(e @ CmdError::Interrupted(_)) => return Err(e),
        Err(e) => {
            let code = e.code().max(exit::INCOMPLETE);
            said(reporter, e, code)
        }
    })
}

/// Say the error of one run that reconcile (or the standby) goes on past, as an `error`
/// event with the exit code it counts for; that code.
fn said(reporter: &crate::report::Reporter, e: CmdError, code: i32) -> i32 {
    reporter.emit(Shown::Error {
        message: e.to_string(),
        exit_code: code,
        help: e.help(),
    });
    code
}

/// How often the standby looks at the store's runs.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `reconcile --watch`: a standby. A run that reconcile would take up, whose rollout's
/// lock nobody has held for `grace`, is taken over (its lease: a new epoch, so its old
/// controller's records are refused from then on), audited as a takeover, and finished
/// as `reconcile RUN` would. Safe beside another standby: the lock lets one take a run,
/// and the run is looked at again under it. Until Ctrl-C (or SIGTERM).
pub async fn watch(g: &Global, grace: std::time::Duration, metrics: Option<&Path>) -> CmdResult {
    use std::collections::{HashMap, HashSet};
    use tokio::time::Instant;
    let metrics = metrics_file(metrics)?;
    let store = store(g, Access::Write).await?;
    let reporter = reporter_with(g, metrics);
    let cx = Cx::new(g, &store, &reporter)?;
    reporter.emit(Shown::Note {
        message: format!(
            "standing by on {}: taking over unfinished runs whose controller has held no lock for {}",
            store.describe(),
            crate::units::duration(grace)
        ),
    });
    let mut free_since: HashMap<String, Instant> = HashMap::new();
    // Runs that have ended for good: not read again.
    let mut done: HashSet<String> = HashSet::new();
    let mut worst = exit::OK;
    loop {
        if cx.stopped() {
            return Ok(worst);
        }
        let ids = match store.runs().await {
            Ok(ids) => ids,
            Err(e) => {
                eprintln!("warning: {e}");
                Vec::new()
            }
        };
        for id in ids {
            if cx.stopped() {
                break;
            }
            if done.contains(&id) {
                continue;
            }
            let Ok(st) = store.load(&id).await else {
                continue;
            };
            let (Plan::Take(_), Some(name)) =
                (decide(&id, &st), st.plan.as_ref().map(|p| p.name.clone()))
            else {
                free_since.remove(&id);
                if matches!(
                    st.end(),
                    Some(End::Done | End::Clean { .. } | End::Superseded { .. })
                ) {
                    done.insert(id);
                }
                continue;
            };
            if !matches!(store.holder(&name).await, Ok(None)) {
                free_since.remove(&id);
                continue;
            }
            let since = *free_since.entry(id.clone()).or_insert_with(Instant::now);
            if since.elapsed() < grace {
                continue;
            }
            let o = match open_run(&*store, &id).await {
                Ok(o) => o,
                // Another standby (or an operator) took it first.
                Err(CmdError::Store(crate::store::StoreError::Locked { .. })) => continue,
                Err(e) => {
                    eprintln!("warning: run {id}: {e}");
                    continue;
                }
            };
            free_since.remove(&id);
            // Looked at again under the lease: another standby may have finished it.
            let Plan::Take(intent) = decide(&id, &o.state) else {
                continue;
            };
            let Some(plan) = o.state.plan.clone() else {
                continue;
            };
            let message = format!(
                "taking over run {id} ({}): its controller has held no lock for {}; {}",
                o.state.status_name(),
                crate::units::duration(std::time::Duration::from_secs(since.elapsed().as_secs())),
                if intent == Intent::Orphaned {
                    "rolling it back, as its hosts' leases would"
                } else {
                    "finishing its pending removals"
                }
            );
            reporter.emit(Shown::Note {
                message: message.clone(),
            });
            let entry = crate::store::AuditEntry {
                at: utc(wall_ms() / 1000),
                user: local_user(),
                action: "takeover".into(),
                outcome: "started".into(),
                rollout: plan.name.clone(),
                run: Some(id.clone()),
                detail: format!("standby on {}: {message}", local_host()),
                command: crate::store::command_line(),
                ..Default::default()
            };
            if let Err(e) = store.audit(&entry).await {
                eprintln!("warning: the audit log: {e}");
            }
            let state = cx.drive(o, attach(intent, false, None), plan).await;
            worst = worst.max(reconciled(&reporter, state)?);
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            () = cx.stop_requested() => {}
        }
    }
}
