//! `purge NAME` and `purge --path PATH`: the emergency removal. Needs only an inventory;
//! the run is journaled (kind purge) so `reconcile` can finish what stays pending.

use crate::cli::{Global, PurgeArgs};
use crate::exec::{self, Removal};
use crate::inventory;
use crate::journal::{Journal, Record, RunInfo, RunKind};
use crate::report::{count, Event, Phase};
use crate::spec;

use super::session::{cleanup_summary, with_ctx};
use super::{bad_input, journal_failed, reporter, state_dir};

pub fn purge(g: &Global, args: &PurgeArgs) -> i32 {
    let (removal, name, kind) = match (&args.name, &args.path) {
        (Some(name), None) => {
            if let Err(e) = spec::check_name_arg(name) {
                return bad_input(&e);
            }
            (
                Removal::Name {
                    name: name.clone(),
                    install_path: None,
                },
                name.clone(),
                RunKind::Purge,
            )
        }
        (None, Some(path)) => {
            if let Err(e) = spec::check_path_arg(path) {
                return bad_input(&e);
            }
            (
                Removal::Path { path: path.clone() },
                "purge-path".to_string(),
                RunKind::PurgePath,
            )
        }
        _ => {
            return bad_input(&crate::diag::InputError::new(
                "give either NAME or --path PATH, not both",
            ))
        }
    };
    let inv = match inventory_of(args) {
        Ok(i) => i,
        Err(e) => return bad_input(&e),
    };
    let hosts = match spec::select_hosts(&inv, &args.select, &args.exclude) {
        Ok(h) => h,
        Err(e) => return bad_input(&e),
    };
    let state = state_dir(g);
    // An apply of the same rollout still running would go on installing: stop it first.
    if kind == RunKind::Purge {
        if let Some((holder, pid)) = state.holder(&name) {
            // SAFETY: kill(2) on the pid its lock holder recorded; no memory involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGINT);
            }
            eprintln!(
                "run {holder} of {name} is in progress (pid {pid}): asked it to stop and roll back"
            );
        }
    }
    let run_id = exec::new_run_id(&format!("purge-{name}"));
    let journal = match Journal::open(&state, &run_id) {
        Ok(j) => j,
        Err(e) => return journal_failed(&e),
    };
    let reporter = reporter(g);
    let path = match &removal {
        Removal::Path { path } => path.clone(),
        Removal::Name { .. } => String::new(),
    };
    with_ctx(g.ssh_config.clone(), &journal, &reporter, async |ctx| {
        ctx.record(Record::Run(Box::new(RunInfo {
            run: run_id.clone(),
            rollout: name.clone(),
            install_path: path,
            sha256: String::new(),
            spec_path: String::new(),
            inventory_path: inv.path.display().to_string(),
            ssh_config: g.ssh_config.as_ref().map(|p| p.display().to_string()),
            hosts: hosts.clone(),
            waves: vec![hosts.iter().map(|h| h.name.clone()).collect()],
            pid: std::process::id(),
            started: exec::now(),
            kind,
        })))?;
        ctx.record(Record::State {
            state: "rolling-back".into(),
            at: exec::now(),
        })?;
        ctx.emit(Event::RunStarted {
            run: run_id.clone(),
            rollout: name.clone(),
            hosts: hosts.len(),
            waves: 0,
            journal: journal.path().display().to_string(),
        });
        let fanout = args.concurrency as usize;
        let done = exec::clean_hosts(
            ctx,
            Phase::Purge,
            removal,
            hosts.clone(),
            args.login_timeout,
            fanout,
            args.until_done,
        )
        .await?;
        let state = if done.pending.is_empty() {
            "rolled-back"
        } else {
            "incomplete"
        };
        ctx.record(Record::State {
            state: state.into(),
            at: exec::now(),
        })?;
        let (n, left) = (done.clean.len(), done.pending.len());
        let mut summary = cleanup_summary(
            &run_id,
            done,
            format!("purged: {} clean", count(n, "host")),
            format!("{} could not be purged (still pending): `wavectl reconcile {run_id}` once they answer", count(left, "host")),
        );
        // The per-host lines say what was removed; the list of names would repeat them.
        summary.rolled_back.clear();
        let code = summary.exit_code;
        ctx.emit(Event::Summary(summary));
        Ok(code)
    })
}

/// `--inventory`, else the inventory of `rollouts/NAME.toml` (the whole inventory: the
/// script may have spread beyond the spec's targets).
fn inventory_of(args: &PurgeArgs) -> Result<inventory::Inventory, crate::diag::InputError> {
    if let Some(path) = &args.inventory {
        return inventory::load(path);
    }
    let spec = args
        .name
        .as_ref()
        .map(|n| std::path::PathBuf::from(format!("rollouts/{n}.toml")));
    match spec {
        Some(spec) if spec.exists() => spec::load(&spec, None).map(|l| l.inventory),
        _ => Err(crate::diag::InputError::new("purge needs an inventory").help(
            "pass --inventory INV (without it, purge NAME reads the inventory of rollouts/NAME.toml in the current directory)",
        )),
    }
}
