//! `purge NAME` and `purge --path PATH`: the emergency removal. Needs only an inventory;
//! the run is journaled (kind purge) so `reconcile` can finish what stays pending.

use crate::cli::{Global, PurgeArgs};
use crate::exec::{self, Ctx, Removal};
use crate::exit;
use crate::inventory;
use crate::journal::{Journal, Record, RunInfo, RunKind};
use crate::report::{Event, Phase, Summary};
use crate::spec;

use super::{bad_input, block_on, journal_failed, reporter, state_dir, stop_on_ctrl_c, transport};

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
    let inv = match inventory::load(&args.inventory) {
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
    block_on(async {
        let stop = stop_on_ctrl_c();
        let Some(transport) = transport(g.ssh_config.clone()) else {
            return exit::INCOMPLETE;
        };
        let ctx = Ctx {
            transport: &transport,
            journal: &journal,
            reporter: &reporter,
            stop,
        };
        let result = async {
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
            ctx.record(Record::State { state: "rolling-back".into(), at: exec::now() })?;
            ctx.emit(Event::RunStarted {
                run: run_id.clone(),
                rollout: name.clone(),
                hosts: hosts.len(),
                waves: 0,
                journal: journal.path().display().to_string(),
            });
            let fanout = args.concurrency as usize;
            let done = exec::clean_hosts(&ctx, Phase::Purge, removal, hosts.clone(), args.login_timeout, fanout, args.until_done)
                .await?;
            let (state, code) = if done.pending.is_empty() { ("rolled-back", exit::OK) } else { ("incomplete", exit::INCOMPLETE) };
            ctx.record(Record::State { state: state.into(), at: exec::now() })?;
            ctx.emit(Event::Summary(Summary {
                run: run_id.clone(),
                outcome: if code == exit::OK {
                    format!("purged: {} hosts clean", done.clean.len())
                } else {
                    format!(
                        "{} hosts could not be purged (still pending): `wavectl reconcile {run_id}` once they answer",
                        done.pending.len()
                    )
                },
                exit_code: code,
                meaning: if code == exit::OK { "done: every selected host is clean".into() } else { exit::meaning(code).into() },
                pending: done.pending,
                removed: done.details,
                ..Summary::default()
            }));
            Ok::<i32, crate::journal::JournalError>(code)
        }
        .await;
        transport.reap();
        result.unwrap_or_else(|e| journal_failed(&e))
    })
}
