//! The commands: each returns its exit code or a [`CmdError`], which is printed once
//! here and mapped to its exit code.

mod apply;
mod demo;
mod purge;
mod runs;
mod session;
mod status;

use std::io::IsTerminal;

use crate::cli::{Cli, Command, SpecArgs};
use crate::diag::InputError;
use crate::exit;
use crate::{plan, spec};

pub use session::CmdError;
use session::CmdResult;

/// Run one command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let g = &cli.global;
    let result = match &cli.command {
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.code()
        }
    }
}

fn load(args: &SpecArgs) -> Result<(spec::Loaded, Vec<plan::Wave>), InputError> {
    let opts = spec::LoadOptions {
        force: args.force,
        limit: args.limit.clone(),
    };
    let loaded = spec::load_with(&args.rollout, args.inventory.as_deref(), &opts)?;
    let waves = plan::waves(&loaded.targets, &loaded.rollout.waves).map_err(|e| {
        if e.file.is_none() {
            InputError {
                file: Some(loaded.rollout.spec_given.clone()),
                ..e
            }
        } else {
            e
        }
    })?;
    Ok((loaded, waves))
}

fn check(args: &SpecArgs) -> CmdResult {
    let (l, waves) = load(args)?;
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
    Ok(exit::OK)
}

fn plan_cmd(args: &SpecArgs) -> CmdResult {
    let (l, waves) = load(args)?;
    println!("rollout {}: {}", l.rollout.name, l.rollout.description);
    print!(
        "{}",
        plan::render(&waves, &l.targets, l.rollout.waves.spread_by.as_deref())
    );
    Ok(exit::OK)
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
