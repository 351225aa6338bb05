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
use crate::rollout::{Plan, Policy, RunKind, StopRequest, Target};
use crate::spec::{self, OnFailure};
use crate::store::{local_host, local_user, Access, Holder, Lease, Store, StoreError};
use crate::units;

use super::apply::begin;
use super::session::{run_one, store, CmdError, CmdResult, Failure, Opened};

/// How long a purge waits for a running apply of the same rollout to roll back and go.
const WAIT_FOR_APPLY: Duration = Duration::from_secs(15 * 60);

pub async fn purge(g: &Global, args: &PurgeArgs) -> CmdResult {
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
    let store = store(g, Access::Write).await?;
    let hosts = spec::select_hosts(&inv, &args.select, &args.exclude)?;
    let runs = super::limit::run_sets(&*store, args.limit.as_deref()).await?;
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
    store.prepare().await?;
    let run = exec::new_run_id(&format!("purge-{}", name.trim_start_matches("path-")));
    let lease = take_lock(&*store, &name, &run, target.kind()).await?;
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
            gates: None,
        },
        spec: None,
        inventory: Some(std::fs::canonicalize(&inv.path).unwrap_or(inv.path.clone())),
        ssh_config: g
            .ssh_config
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or(p.clone())),
        user: local_user(),
        approval: None,
        command: crate::store::command_line(),
        preflight: None,
        groups: None,
    };
    let o = Opened::begin(&*store, lease, &run, &[]).await?;
    let reporter = super::session::reporter_with(g, metrics);
    let first = begin(&plan, args.until_done);
    run_one(g, &store, &reporter, o, first, plan).await
}

/// Take the rollout's lock. A running apply of it is asked to stop (it rolls back),
/// through the store, and waited for; any other holder (another purge, a rollback)
/// refuses this purge.
async fn take_lock(
    store: &dyn Store,
    name: &str,
    run: &str,
    kind: RunKind,
) -> Result<Lease, CmdError> {
    let me = Holder::this_process(run);
    let holder = match store.lock(name, &me).await {
        Err(StoreError::Locked { holder, .. }) => holder,
        other => return Ok(other?),
    };
    let holder_kind = store.load(&holder.run).await.ok().and_then(|s| s.kind());
    if kind != RunKind::Purge || holder_kind != Some(RunKind::Apply) {
        return Err(CmdError::State(
            Failure::new(format!(
                "{} is being worked on by run {} ({}){}; a second removal would race it",
                if kind == RunKind::Purge {
                    format!("rollout {name}")
                } else {
                    "this path".into()
                },
                holder.run,
                holder.who(),
                holder_kind.map_or(String::new(), |k| format!(", a {k:?}").to_lowercase()),
            ))
            .help(format!(
                "wait for it to end (`wavectl status {}`), then run this again",
                holder.run
            )),
        ));
    }
    let req = StopRequest {
        by: format!("purge by {}@{}", local_user(), local_host()),
    };
    store.request_stop(&holder.run, &req).await?;
    eprintln!(
        "run {} of {name} is in progress ({}): asked it to stop and roll back; waiting for it to release the rollout (at most {})",
        holder.run,
        holder.who(),
        units::duration(WAIT_FOR_APPLY)
    );
    store
        .lock_waiting(name, &me, WAIT_FOR_APPLY, |h, waited| {
            if waited.as_secs() > 0 {
                eprintln!(
                    "still waiting for run {} ({}) to finish its rollback ({})",
                    h.run,
                    h.who(),
                    units::duration(Duration::from_secs(waited.as_secs()))
                );
            }
        })
        .await
        .map_err(|e| match e {
            StoreError::Locked { holder, .. } => CmdError::Offline(
                Failure::new(format!(
                    "run {} ({}) still holds rollout {name} after {}; nothing was purged",
                    holder.run,
                    holder.who(),
                    units::duration(WAIT_FOR_APPLY),
                ))
                .help(format!(
                    "see `wavectl status {}`; purge again once it has ended",
                    holder.run
                )),
            ),
            other => other.into(),
        })
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
