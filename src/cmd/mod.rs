//! The commands: resolve the command line once (state dir, reporter, runtime), run one
//! command, and map its result to an exit code.

mod apply;
mod demo;
mod purge;
mod runs;
mod session;
mod status;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cli::{Cli, Command, Global, SpecArgs};
use crate::diag::InputError;
use crate::exit;
use crate::journal::{JournalError, StateDir};
use crate::report::Reporter;
use crate::{plan, spec};

/// Run one command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let g = &cli.global;
    match &cli.command {
        Command::Check(args) => check(args),
        Command::Plan(args) => plan_cmd(args),
        Command::Apply { spec, yes } => apply::apply(g, spec, *yes),
        Command::Status { run } => status::status(g, run.as_deref()),
        Command::Resume { run } => apply::resume(g, run),
        Command::Rollback { run } => runs::rollback(g, run),
        Command::Abort { run } => runs::abort(g, run),
        Command::Reconcile { run, until_done } => runs::reconcile(g, run.as_deref(), *until_done),
        Command::Purge(args) => purge::purge(g, args),
        Command::Demo { hosts } => demo::demo(g, *hosts),
    }
}

/// Print a user error and return exit code 2.
pub fn bad_input(e: &InputError) -> i32 {
    eprintln!("error: {e}");
    exit::BAD_INPUT
}

/// Print a journal error; a held lock is bad input (another run holds the rollout).
pub fn journal_failed(e: &JournalError) -> i32 {
    eprintln!("error: {e}");
    match e {
        JournalError::Locked { .. } | JournalError::NoSuchRun(_) => exit::BAD_INPUT,
        JournalError::Io { .. } => exit::INCOMPLETE,
    }
}

fn load(args: &SpecArgs) -> Result<(spec::Loaded, Vec<plan::Wave>), InputError> {
    let loaded = spec::load(&args.rollout, args.inventory.as_deref())?;
    let waves = plan::waves(&loaded.targets, &loaded.rollout.waves).map_err(|e| {
        if e.file.is_none() {
            InputError {
                file: Some(loaded.rollout.spec_path.clone()),
                ..e
            }
        } else {
            e
        }
    })?;
    Ok((loaded, waves))
}

fn check(args: &SpecArgs) -> i32 {
    match load(args) {
        Ok((l, waves)) => {
            let r = &l.rollout;
            println!(
                "ok: rollout {} — {} targets in {} waves; script {} ({} bytes, sha256 {}) → {}",
                r.name,
                l.targets.len(),
                waves.len(),
                r.script.source.display(),
                r.script.body.len(),
                r.script.sha256,
                r.script.install_path
            );
            exit::OK
        }
        Err(e) => bad_input(&e),
    }
}

fn plan_cmd(args: &SpecArgs) -> i32 {
    match load(args) {
        Ok((l, waves)) => {
            println!("rollout {}: {}", l.rollout.name, l.rollout.description);
            print!(
                "{}",
                plan::render(&waves, &l.targets, l.rollout.waves.spread_by.as_deref())
            );
            exit::OK
        }
        Err(e) => bad_input(&e),
    }
}

pub fn state_dir(g: &Global) -> StateDir {
    StateDir::new(g.state_dir.clone().unwrap_or_else(StateDir::default_root))
}

pub fn reporter(g: &Global) -> Reporter {
    Reporter::new(g.json, g.verbose)
}

pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The operator's stop request: the first Ctrl-C sets it (no new host action starts, the
/// run rolls back); a second one exits at once, leaving the journal for `rollback`.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting now; the journal is intact (`wavectl status`, `wavectl rollback RUN`)");
                crate::transport::reap_all();
                std::process::exit(exit::ABORTED);
            }
            eprintln!("\ninterrupt: finishing the actions in flight, then rolling back (Ctrl-C again to exit at once)");
        }
    });
    stop
}

/// Ask before touching hosts, when a person is there to answer.
pub fn confirm(preface: &str, question: &str) -> Result<bool, InputError> {
    if !std::io::stdin().is_terminal() {
        return Err(InputError::new(
            "refusing to apply without confirmation: standard input is not a terminal",
        )
        .help("pass --yes to apply without asking"));
    }
    eprint!("{preface}{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| InputError::new(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Run an async command to its exit code on a fresh runtime.
pub fn block_on(f: impl std::future::Future<Output = i32>) -> i32 {
    match runtime() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::INCOMPLETE
        }
    }
}
