//! `apply` and `rollback`.

use crate::cli::{Global, SpecArgs};
use crate::exec::{self, ApplyOptions, Ctx, RemovalTarget};
use crate::exit;
use crate::journal::{Journal, Record};
use crate::report::{Event, Summary};
use crate::transport::Transport;

use super::{bad_input, journal_failed, load, reporter, runtime, state_dir, stop_on_ctrl_c};

pub fn apply(g: &Global, args: &SpecArgs, yes: bool) -> i32 {
    let (loaded, waves) = match load(args) {
        Ok(x) => x,
        Err(e) => return bad_input(&e),
    };
    if !yes {
        eprint!(
            "{}",
            crate::plan::render(
                &waves,
                &loaded.targets,
                loaded.rollout.waves.spread_by.as_deref()
            )
        );
        match super::confirm(&format!(
            "apply rollout {} to {} hosts?",
            loaded.rollout.name,
            loaded.targets.len()
        )) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("not applied");
                return exit::ABORTED;
            }
            Err(e) => return bad_input(&e),
        }
    }
    let opts = ApplyOptions {
        state: state_dir(g),
        ssh_config: g.ssh_config.clone(),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INCOMPLETE;
        }
    };
    let reporter = reporter(g);
    rt.block_on(async {
        let stop = stop_on_ctrl_c();
        match exec::apply(&loaded, &waves, &opts, &reporter, stop).await {
            Ok(code) => code,
            Err(e) => journal_failed(&e),
        }
    })
}

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
    let to_clean: Vec<String> = rs.to_clean().iter().map(|h| h.host.clone()).collect();
    let hosts: Vec<_> = info
        .hosts
        .iter()
        .filter(|h| to_clean.contains(&h.name))
        .cloned()
        .collect();
    let journal = match Journal::open(&state, run) {
        Ok(j) => j,
        Err(e) => return journal_failed(&e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INCOMPLETE;
        }
    };
    let reporter = reporter(g);
    let ssh_config = g
        .ssh_config
        .clone()
        .or(info.ssh_config.as_ref().map(Into::into));
    rt.block_on(async {
        let stop = stop_on_ctrl_c();
        let transport = match Transport::new(ssh_config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot create the ssh control directory: {e}");
                return exit::INCOMPLETE;
            }
        };
        let ctx = Ctx {
            transport: &transport,
            journal: &journal,
            reporter: &reporter,
            stop,
        };
        let result = async {
            ctx.record(Record::State {
                state: "rolling-back".into(),
                at: exec::now(),
            })?;
            ctx.emit(Event::RollbackStarted {
                reason: format!("`wavectl rollback {run}`"),
                hosts: to_clean.clone(),
            });
            let target = RemovalTarget {
                name: &info.rollout,
                install_path: Some(&info.install_path),
                login_timeout: std::time::Duration::from_secs(10),
                hosts,
            };
            let removed = exec::remove_hosts(&ctx, 0, &target).await?;
            let mut summary = Summary {
                run: run.to_string(),
                outcome: String::new(),
                exit_code: exit::OK,
                meaning: String::new(),
                confirmed: vec![],
                rolled_back: vec![],
                untouched: vec![],
                unhealthy: vec![],
                pending: vec![],
            };
            for r in removed {
                if r.clean {
                    summary.rolled_back.push(r.host);
                } else {
                    summary.pending.push((r.host, r.detail));
                }
            }
            let (state, code) = if summary.pending.is_empty() {
                ("rolled-back", exit::OK)
            } else {
                ("incomplete", exit::INCOMPLETE)
            };
            ctx.record(Record::State {
                state: state.into(),
                at: exec::now(),
            })?;
            summary.exit_code = code;
            summary.outcome = if code == exit::OK {
                "rolled back: no host holds the script".into()
            } else {
                "some hosts are still pending".into()
            };
            summary.meaning = if code == exit::OK {
                "done: every host of the run is clean".into()
            } else {
                exit::meaning(code).into()
            };
            ctx.emit(Event::Summary(summary));
            Ok::<i32, crate::journal::JournalError>(code)
        }
        .await;
        transport.reap();
        result.unwrap_or_else(|e| journal_failed(&e))
    })
}
