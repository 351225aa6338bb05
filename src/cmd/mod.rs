//! The commands: each returns its exit code or a [`CmdError`], which is printed once
//! here and mapped to its exit code. Every command runs on one async runtime (the store
//! and the engine are async); only the commands that drive runs listen for signals.

mod apply;
mod approval;
mod demo;
mod error;
mod hold;
mod lab;
mod limit;
mod preflight;
mod preview;
mod purge;
mod report;
mod runs;
mod session;
mod shared;
mod status;
mod trust;

use std::io::IsTerminal;

use crate::cli::{Cli, Command, SpecArgs};
use crate::diag::InputError;
use crate::exit;
use crate::{plan, spec};

pub use error::{CmdError, Failure};
use session::CmdResult;

/// Run one command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INCOMPLETE;
        }
    };
    let code = rt.block_on(dispatch(&cli));
    // What a command left running (the host actions a second signal cut off) ends with
    // the process, now: not waited for.
    rt.shutdown_background();
    code
}

async fn dispatch(cli: &Cli) -> i32 {
    let start = std::time::Instant::now();
    let g = &cli.global;
    let result = match &cli.command {
        Command::Check(args) => check(g, args).await,
        Command::Plan {
            spec,
            output,
            valid_for,
            allowed_signers,
            probe,
        } => {
            let code = approval::plan(
                g,
                spec,
                output.as_deref(),
                *valid_for,
                allowed_signers.as_deref(),
            )
            .await;
            match code {
                Ok(_) if *probe => preview::probe(g, spec).await,
                other => other,
            }
        }
        Command::Approve { plan, key, by } => approval::approve(g, plan, key, by.as_deref()).await,
        Command::Apply {
            spec,
            yes,
            skip_unreachable,
            allowed_signers,
            metrics_file,
        } => match approval::read_plan(&spec.rollout) {
            Ok(Some(pf)) => {
                approval::apply_plan(
                    g,
                    spec,
                    pf,
                    *yes,
                    *skip_unreachable,
                    allowed_signers.as_deref(),
                    metrics_file.as_deref(),
                )
                .await
            }
            Ok(None) => {
                apply::apply(g, spec, *yes, *skip_unreachable, metrics_file.as_deref()).await
            }
            Err(e) => Err(e.into()),
        },
        Command::Report { run } => report::report(g, run).await,
        Command::Status { run, watch } => status::watch(g, run.as_deref(), *watch).await,
        Command::Resume {
            run,
            yes,
            metrics_file,
        } => apply::resume(g, run, *yes, metrics_file.as_deref()).await,
        Command::Rollback {
            run,
            yes,
            metrics_file,
        } => runs::rollback(g, run, *yes, metrics_file.as_deref()).await,
        Command::Abort { run } => runs::abort(g, run).await,
        Command::Promote { run } => hold::promote(g, run).await,
        Command::Freeze(args) => hold::freeze(g, args).await,
        Command::Unfreeze { name, all: _ } => hold::unfreeze(g, name.as_deref()).await,
        Command::Reconcile {
            watch: true,
            grace,
            metrics_file,
            ..
        } => runs::watch(g, *grace, metrics_file.as_deref()).await,
        Command::Reconcile {
            run,
            until_done,
            yes,
            metrics_file,
            ..
        } => {
            runs::reconcile(
                g,
                run.as_deref(),
                *until_done,
                *yes,
                metrics_file.as_deref(),
            )
            .await
        }
        Command::Purge(args) => purge::purge(g, args).await,
        Command::Store(crate::cli::StoreCommand::Init) => shared::init(g).await,
        Command::Store(crate::cli::StoreCommand::Import) => shared::import(g).await,
        Command::Audit { since } => shared::audit(g, since.as_deref()).await,
        Command::Demo { hosts } => demo::demo(g, *hosts).await,
        Command::Lab(crate::cli::LabCommand::Up {
            hosts,
            dir,
            kind,
            kex,
        }) => lab::up(*hosts, dir, kind, kex.as_deref()).await,
        Command::Lab(crate::cli::LabCommand::Down { dir }) => lab::down(dir),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "wavectl", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Manpage => {
            let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map(|()| exit::OK)
                .map_err(|e| {
                    CmdError::System(Failure::new(format!("cannot write the man page: {e}")))
                })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::report::Reporter::since(g.json, g.verbose, start).emit(
                crate::report::Event::Error {
                    message: e.to_string(),
                    exit_code: e.code(),
                    help: e.help(),
                },
            );
            e.code()
        }
    }
}

async fn load(
    g: &crate::cli::Global,
    args: &SpecArgs,
) -> Result<(spec::Loaded, Vec<plan::Wave>), CmdError> {
    let opts = load_options(g, args.force, args.limit.clone()).await?;
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

/// How to load a spec for `--force` and `--limit` (its `@STATE:RUN` terms read from
/// the runs' journals in the store).
async fn load_options(
    g: &crate::cli::Global,
    force: bool,
    limit: Option<String>,
) -> Result<spec::LoadOptions, CmdError> {
    let store = session::open_store(g).await?;
    let runs = limit::run_sets(&*store, limit.as_deref()).await?;
    Ok(spec::LoadOptions { force, limit, runs })
}

async fn check(g: &crate::cli::Global, args: &SpecArgs) -> CmdResult {
    let (l, waves) = load(g, args).await?;
    let r = &l.rollout;
    if g.json {
        let c = apply::content_of(&l, &waves, args.force);
        crate::outln!("{}", serde_json::to_string(&c).unwrap_or_default());
        return Ok(exit::OK);
    }
    crate::outln!(
        "ok: rollout {} — {} targets in {} waves; script {} ({} bytes, sha256 {}) → {}",
        r.name,
        l.targets.len(),
        waves.len(),
        r.script.source.display(),
        r.script.body.len(),
        r.script.sha256,
        r.script.install_path
    );
    if r.policy.approvals > 0 {
        crate::outln!(
            "note: policy.approvals = {}: `apply` takes only an approved plan: `wavectl plan {} -o PLAN`, `wavectl approve PLAN --key KEY` by each approver, then `wavectl apply PLAN`",
            r.policy.approvals,
            args.rollout.display()
        );
    }
    Ok(exit::OK)
}

/// Ask before a command that changes hosts goes on (after `preface`), unless `yes`;
/// without a terminal to ask on, refuse. `Ok(false)`: the operator said no.
pub fn consent(yes: bool, what: &str, preface: &str, question: &str) -> Result<bool, InputError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(InputError::new(format!(
            "refusing to {what} without confirmation: standard input is not a terminal"
        ))
        .help(format!("pass --yes to {what} without asking")));
    }
    eprint!("{preface}{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| InputError::new(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
