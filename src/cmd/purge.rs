//! `purge NAME` and `purge --path PATH`: the emergency removal. Needs only an inventory
//! (each host's own manifest says what is there). Journaled like every run: every host
//! counts as possibly holding the script from the first record until it is seen clean.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cli::{Global, PurgeArgs};
use crate::diag::InputError;
use crate::exec;
use crate::exit;
use crate::inventory;
use crate::journal::{Access, Journal, JournalError, RunLock, StateDir};
use crate::rollout::{Event, Plan, Policy, RunKind, RunState, Target};
use crate::spec::{self, OnFailure};

use super::apply::local_user;
use super::session::{drive, state_dir, with_runtime, CmdError, CmdResult, Cx};

/// How long a purge waits for a running apply of the same rollout to roll back and go.
const WAIT_FOR_APPLY: Duration = Duration::from_secs(15 * 60);

pub fn purge(g: &Global, args: &PurgeArgs) -> CmdResult {
    let metrics = super::session::metrics_file(args.metrics_file.as_deref())?;
    let (target, name) = match (&args.name, &args.path) {
        (Some(name), None) => {
            spec::check_name_arg(name)?;
            (Target::Purge, name.clone())
        }
        (None, Some(path)) => {
            spec::check_path_arg(path, args.force)?;
            let hash = hex::encode(Sha256::digest(path.as_bytes()));
            (
                Target::PurgePath {
                    path: path.clone(),
                    force: args.force,
                },
                format!("path-{}", &hash[..12]),
            )
        }
        _ => return Err(InputError::new("give either NAME or --path PATH, not both").into()),
    };
    let inv = inventory_of(args)?;
    let dir = state_dir(g, Access::Write)?;
    let hosts = spec::select_hosts(&inv, &args.select, &args.exclude)?;
    let runs = super::limit::run_sets(&dir, args.limit.as_deref())?;
    let hosts = spec::limit_hosts(&inv, hosts, args.limit.as_deref(), &runs, "hosts to purge")?;
    let question = format!(
        "purge {} from {}?",
        match &target {
            Target::PurgePath { path, .. } => path.clone(),
            _ => format!("every version of rollout {name}"),
        },
        crate::report::count(hosts.len(), "host")
    );
    if !super::consent(args.yes, "purge", "", &question)? {
        eprintln!("not purged");
        return Ok(exit::ABORTED);
    }
    dir.ensure()?;
    let run = exec::new_run_id(&format!("purge-{}", name.trim_start_matches("path-")));
    let _lock = take_lock(&dir, &name, &run, target.kind())?;
    let plan = Plan {
        run: run.clone(),
        name: name.clone(),
        target,
        hosts: hosts.clone(),
        waves: vec![hosts.iter().map(|h| h.name.clone()).collect()],
        policy: Policy {
            max_unhealthy: 0,
            on_failure: OnFailure::Rollback,
            bake: Duration::ZERO,
            min_runs: 0,
            concurrency: args.concurrency as usize,
            fanout: args.concurrency as usize,
            login_timeout: args.login_timeout,
            baseline: false,
            controls: false,
        },
        spec: None,
        inventory: Some(std::fs::canonicalize(&inv.path).unwrap_or(inv.path.clone())),
        ssh_config: g
            .ssh_config
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or(p.clone())),
        user: local_user(),
        approval: None,
        command: std::env::args().collect(),
    };
    let journal = Journal::create(&dir, &run)?;
    let reporter = super::session::reporter_with(g, metrics);
    with_runtime(|stop| async move {
        let first = Event::Begin {
            plan: Box::new(plan.clone()),
            pid: std::process::id(),
            until_done: args.until_done,
        };
        let state = drive(
            &Cx {
                g,
                dir: &dir,
                reporter: &reporter,
                stop: &stop,
            },
            RunState::new(),
            journal,
            first,
            plan,
        )
        .await?;
        Ok(crate::rollout::exit_code(&state))
    })
}

/// Take the rollout's lock. A running apply of it is asked to stop (it rolls back) and
/// waited for; any other holder (another purge, a rollback) refuses this purge.
fn take_lock(dir: &StateDir, name: &str, run: &str, kind: RunKind) -> Result<RunLock, CmdError> {
    match dir.lock(name, run) {
        Err(JournalError::Locked { holder, pid, .. }) => {
            let holder_kind = dir.load(&holder).ok().and_then(|s| s.kind());
            if kind != RunKind::Purge || holder_kind != Some(RunKind::Apply) || pid == 0 {
                return Err(CmdError::Other(
                    format!(
                        "{} is being worked on by run {holder} (pid {pid}){}; a second removal would race it\n  help: wait for it to end (`wavectl status {holder}`), then run this again",
                        if kind == RunKind::Purge { format!("rollout {name}") } else { "this path".into() },
                        holder_kind.map_or(String::new(), |k| format!(", a {k:?}").to_lowercase()),
                    ),
                    exit::BAD_INPUT,
                ));
            }
            // SAFETY: kill(2) on the pid the lock's live holder recorded; no memory involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGINT);
            }
            eprintln!("run {holder} of {name} is in progress (pid {pid}): asked it to stop and roll back; waiting for it to release the rollout (at most {}s)", WAIT_FOR_APPLY.as_secs());
            dir.lock_waiting(name, run, WAIT_FOR_APPLY, |h, waited| {
                if waited.as_secs() > 0 {
                    eprintln!(
                        "still waiting for run {} (pid {}) to finish its rollback ({}s)",
                        h.run,
                        h.pid,
                        waited.as_secs()
                    );
                }
            })
            .map_err(|e| match e {
                JournalError::Locked { holder, pid, .. } => CmdError::Other(
                    format!("run {holder} (pid {pid}) still holds rollout {name} after {}s; nothing was purged\n  help: see `wavectl status {holder}`; purge again once it has ended", WAIT_FOR_APPLY.as_secs()),
                    exit::INCOMPLETE,
                ),
                other => other.into(),
            })
        }
        other => Ok(other?),
    }
}

/// `--inventory`, else the inventory of `rollouts/NAME.toml` (the whole inventory: the
/// script may have spread beyond the spec's targets).
fn inventory_of(args: &PurgeArgs) -> Result<inventory::Inventory, InputError> {
    if let Some(path) = &args.inventory {
        return inventory::load(path);
    }
    let spec = args
        .name
        .as_ref()
        .map(|n| std::path::PathBuf::from(format!("rollouts/{n}.toml")));
    match spec {
        Some(spec) if spec.exists() => spec::load(&spec, None).map(|l| l.inventory),
        _ => Err(InputError::new("purge needs an inventory").help(
            "pass --inventory INV (without it, purge NAME reads the inventory of rollouts/NAME.toml in the current directory)",
        )),
    }
}
