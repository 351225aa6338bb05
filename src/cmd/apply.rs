//! `apply` (a new run from a spec) and `resume` (a run whose controller died or paused).

use std::path::{Path, PathBuf};

use crate::cli::{Global, SpecArgs};
use crate::exec::{self, login_deadline};
use crate::exit;
use crate::journal::{write_durably, Journal, StateDir};
use crate::plan::Wave;
use crate::report::{count, Event as Shown};
use crate::rollout::signals;
use crate::rollout::{
    Attach, Deployment, End, Event, Intent, Plan, Policy, RunKind, RunState, Status, Target,
};
use crate::spec::Loaded;

use super::session::{drive, open_run, reporter, state_dir, with_runtime, CmdError, CmdResult, Cx};
use super::{confirm, load};

/// Hosts removed at once in a rollback.
pub const REMOVE_FANOUT: usize = 200;

pub fn apply(g: &Global, args: &SpecArgs, yes: bool) -> CmdResult {
    let (loaded, waves) = load(args)?;
    if loaded.rollout.policy.approvals > 0 {
        return Err(CmdError::Refused(format!(
            "rollout {} needs {} approvals (policy.approvals), and a bare spec carries none\n  help: signed plans (`plan -o`, `approve`, `apply PLAN`) are not built yet; set approvals = 0 to apply without them",
            loaded.rollout.name, loaded.rollout.policy.approvals
        )));
    }
    if !yes {
        let shown = crate::plan::render(
            &waves,
            &loaded.targets,
            loaded.rollout.waves.spread_by.as_deref(),
        );
        let question = format!(
            "apply rollout {} to {}?",
            loaded.rollout.name,
            count(loaded.targets.len(), "host")
        );
        if !confirm(&shown, &question)? {
            eprintln!("not applied");
            return Ok(exit::ABORTED);
        }
    }
    let dir = state_dir(g);
    run_apply(g, &dir, &loaded, &waves, args.force)
}

/// Start a new run of a loaded spec (also used by `demo`). Returns the exit code.
pub fn run_apply(
    g: &Global,
    dir: &StateDir,
    loaded: &Loaded,
    waves: &[Wave],
    force: bool,
) -> CmdResult {
    dir.ensure()?;
    let r = &loaded.rollout;
    let run = exec::new_run_id(&r.name);
    let _lock = dir.lock(&r.name, &run)?;
    let plan = plan_of(g, loaded, waves, &run, force);
    let journal = Journal::create(dir, &run)?;
    write_durably(&dir.script_path(&run), &r.script.body)?;
    let reporter = reporter(g);
    reporter.emit(Shown::RunStarted {
        run: run.clone(),
        rollout: r.name.clone(),
        hosts: loaded.targets.len(),
        waves: waves.len(),
        journal: journal.path().display().to_string(),
    });
    with_runtime(|stop| async move {
        let first = Event::Begin {
            plan: Box::new(plan.clone()),
            pid: std::process::id(),
            until_done: false,
        };
        let state = drive(
            &Cx {
                g,
                dir,
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

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// The local user running this command.
pub fn local_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid(2) cannot fail and touches no memory.
            format!("uid {}", unsafe { libc::getuid() })
        })
}

fn plan_of(g: &Global, loaded: &Loaded, waves: &[Wave], run: &str, force: bool) -> Plan {
    let r = &loaded.rollout;
    let h = &r.health;
    let d = Deployment {
        install_path: r.script.install_path.clone(),
        mode: r.script.mode,
        sha256: r.script.sha256.clone(),
        script_timeout: r.script.timeout,
        activation: r.activation.kind,
        schedule: r.activation.schedule.clone(),
        run_on_install: r.activation.run_on_install,
        interval: h.interval,
        probe_timeout: h.probe_timeout,
        builtins: h.builtin.clone(),
        thresholds: h.thresholds.clone(),
        checks: h.checks.clone(),
        lease: r.policy.lease,
        force,
    };
    Plan {
        run: run.to_string(),
        name: r.name.clone(),
        target: Target::Apply(d),
        hosts: loaded.targets.clone(),
        waves: waves.iter().map(|w| w.hosts.clone()).collect(),
        policy: Policy {
            max_unhealthy: r.policy.max_unhealthy,
            on_failure: r.policy.on_failure,
            bake: r.waves.bake,
            min_runs: r.waves.min_runs,
            concurrency: r.waves.concurrency,
            fanout: REMOVE_FANOUT,
            login_timeout: login_deadline(h.probe_timeout),
            baseline: signals::needs_baseline(&h.builtin),
            controls: signals::needs_controls(&h.builtin),
        },
        spec: Some(r.spec_path.clone()),
        inventory: Some(r.inventory_path.clone()),
        ssh_config: g.ssh_config.as_deref().map(absolute),
        user: local_user(),
        command: std::env::args().collect(),
    }
}

/// The Attach of a command that takes a run up.
pub fn attach(intent: Intent, until_done: bool, fanout: Option<usize>) -> Event {
    Event::Attach(Attach {
        pid: std::process::id(),
        intent,
        until_done,
        fanout,
        user: local_user(),
        command: std::env::args().collect(),
    })
}

/// Continue a run whose controller died (or a paused one), from its journal alone.
pub fn resume(g: &Global, run: &str) -> CmdResult {
    let dir = state_dir(g);
    let o = open_run(&dir, run)?;
    let id = o.run.clone();
    let plan = o
        .state
        .plan
        .clone()
        .ok_or_else(|| CmdError::Other(format!("run {id} never began"), exit::BAD_INPUT))?;
    if plan.kind() != RunKind::Apply {
        return Err(CmdError::Other(
            format!("run {id} is a purge: there is nothing to resume\n  help: `wavectl reconcile {id}` finishes its pending hosts"),
            exit::BAD_INPUT,
        ));
    }
    match &o.state.status {
        Status::Ended { end } if !matches!(end, End::Paused { .. }) => {
            println!(
                "run {id} has ended ({}); nothing to resume",
                o.state.status_name()
            );
            return Ok(exit::OK);
        }
        _ => {}
    }
    let reporter = reporter(g);
    reporter.emit(Shown::Note {
        message: format!(
            "resuming run {id} ({}) of rollout {}",
            o.state.status_name(),
            plan.name
        ),
    });
    let _lock = o.lock;
    with_runtime(|stop| async move {
        let state = drive(
            &Cx {
                g,
                dir: &dir,
                reporter: &reporter,
                stop: &stop,
            },
            o.state,
            o.journal,
            attach(Intent::Resume, false, None),
            plan,
        )
        .await?;
        Ok(crate::rollout::exit_code(&state))
    })
}
