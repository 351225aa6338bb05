//! `apply`: the run, wave by wave — deploy, bake, judge — then confirm every host, or
//! roll back every host that got the script.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{Mutex, Semaphore};

use super::bake::{bake, probe_host, BakeEnd, Judge};
use super::cleanup::clean_hosts;
use super::deploy::{deploy_host, Deployed};
use super::remove::{Removal, REMOVE_FANOUT};
use super::{new_run_id, now, Ctx};
use crate::exit;
use crate::inventory::Host;
use crate::journal::{Action, Journal, JournalError, Record, RunInfo, RunKind, StateDir};
use crate::plan::Wave;
use crate::remote;
use crate::report::{count, Event, Phase, Reporter, Summary};
use crate::rollout::verdict::{HostWatch, Outcome, Verdict};
use crate::spec::{Builtin, Loaded, OnFailure, Rollout};
use crate::transport::Transport;

/// Settings of an apply that do not come from the spec.
pub struct ApplyOptions {
    pub state: StateDir,
    pub ssh_config: Option<PathBuf>,
}

/// Why a run ended the way it did.
enum End {
    Healthy,
    Unhealthy,
    Stopped,
}

/// Carry out a rollout. Returns the exit code.
pub async fn apply(
    loaded: &Loaded,
    waves: &[Wave],
    opts: &ApplyOptions,
    reporter: &Reporter,
    stop: Arc<AtomicBool>,
) -> Result<i32, JournalError> {
    let rollout = &loaded.rollout;
    let run_id = new_run_id(&rollout.name);
    let _lock = opts.state.lock(&rollout.name, &run_id)?;
    let journal = Journal::open(&opts.state, &run_id)?;
    let transport = Transport::new(opts.ssh_config.clone()).map_err(|e| JournalError::Io {
        path: PathBuf::from("/tmp"),
        source: e,
    })?;
    let ctx = Ctx {
        transport: &transport,
        journal: &journal,
        reporter,
        stop,
    };
    ctx.record(Record::Run(Box::new(RunInfo {
        run: run_id.clone(),
        rollout: rollout.name.clone(),
        install_path: rollout.script.install_path.clone(),
        sha256: rollout.script.sha256.clone(),
        spec_path: rollout.spec_path.display().to_string(),
        inventory_path: loaded.inventory.path.display().to_string(),
        ssh_config: opts.ssh_config.as_ref().map(|p| p.display().to_string()),
        hosts: loaded.targets.clone(),
        waves: waves.iter().map(|w| w.hosts.clone()).collect(),
        pid: std::process::id(),
        started: now(),
        kind: RunKind::Apply,
    })))?;
    ctx.record(Record::State {
        state: "running".into(),
        at: now(),
    })?;
    ctx.emit(Event::RunStarted {
        run: run_id.clone(),
        rollout: rollout.name.clone(),
        hosts: loaded.targets.len(),
        waves: waves.len(),
        journal: journal.path().display().to_string(),
    });

    let code = drive(&ctx, loaded, waves, &run_id, Progress::default()).await;
    transport.reap();
    code
}

/// Where a resumed run picks up.
#[derive(Debug, Default)]
pub struct Progress {
    /// The 1-based index of the first wave still to do (0 or 1: from the start).
    pub first_wave: usize,
    /// Hosts that may hold the script already (the rollback set so far).
    pub touched: Vec<Host>,
    /// Hosts of finished waves installed without error (probed from now on).
    pub deployed: Vec<Host>,
    /// Hosts of the first wave still to do that are installed already, and whether
    /// their first run was started.
    pub installed: HashMap<String, bool>,
}

/// The run itself, from `progress` on: wave by wave, then confirm or roll back.
pub async fn drive(
    ctx: &Ctx<'_>,
    loaded: &Loaded,
    waves: &[Wave],
    run_id: &str,
    progress: Progress,
) -> Result<i32, JournalError> {
    let rollout = &loaded.rollout;
    let hosts: HashMap<&str, &Host> = loaded
        .targets
        .iter()
        .map(|h| (h.name.as_str(), h))
        .collect();
    let mut judge = Judge::new();
    let installed = &progress.installed;
    // Every host an install reached: the rollback set.
    let mut touched: Vec<Host> = progress.touched;
    // Hosts installed without error: the ones probed.
    let mut deployed: Vec<Host> = progress.deployed;
    for h in &deployed {
        judge
            .watches
            .entry(h.name.clone())
            .or_insert_with(|| HostWatch::new(&rollout.health.builtin))
            .answered_before = true;
    }
    let needs_baseline = rollout.health.builtin.iter().any(|b| {
        matches!(
            b,
            Builtin::Kernel | Builtin::Units | Builtin::Blocked | Builtin::Load
        )
    });
    let needs_controls = rollout
        .health
        .builtin
        .iter()
        .any(|b| matches!(b, Builtin::Blocked | Builtin::Load));

    let mut end = End::Healthy;
    for wave in waves.iter().filter(|w| w.index >= progress.first_wave) {
        if ctx.stopping() {
            end = End::Stopped;
            break;
        }
        let w = wave.index;
        let wave_hosts: Vec<Host> = wave
            .hosts
            .iter()
            .filter_map(|n| hosts.get(n.as_str()).map(|h| (*h).clone()))
            .collect();
        ctx.record(Record::Wave {
            wave: w,
            state: "started".into(),
        })?;
        ctx.emit(Event::WaveStarted {
            wave: w,
            waves: waves.len(),
            hosts: wave.hosts.clone(),
        });
        if needs_baseline {
            baseline(ctx, loaded, w, &wave_hosts, &mut judge).await;
        }

        let sets = Sets {
            touched: &mut touched,
            deployed: &mut deployed,
            judge: &mut judge,
        };
        deploy_wave(ctx, rollout, run_id, w, &wave_hosts, installed, sets).await?;
        if judge.too_many(rollout.policy.max_unhealthy) {
            end = End::Unhealthy;
            break;
        }
        if ctx.stopping() {
            end = End::Stopped;
            break;
        }
        let controls: Vec<Host> = if needs_controls {
            let done: Vec<&str> = touched.iter().map(|h| h.name.as_str()).collect();
            loaded
                .targets
                .iter()
                .filter(|h| !done.contains(&h.name.as_str()))
                .take(3)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        match bake(
            ctx,
            rollout,
            w,
            &wave.hosts,
            &deployed,
            &controls,
            &mut judge,
        )
        .await?
        {
            BakeEnd::Passed => ctx.record(Record::Wave {
                wave: w,
                state: "baked".into(),
            })?,
            BakeEnd::Failed => {
                end = End::Unhealthy;
                break;
            }
            BakeEnd::Stopped => {
                end = End::Stopped;
                break;
            }
        }
    }

    let touched_names: Vec<String> = touched.iter().map(|h| h.name.clone()).collect();
    let untouched: Vec<String> = loaded
        .targets
        .iter()
        .filter(|h| !touched_names.contains(&h.name))
        .map(|h| h.name.clone())
        .collect();
    let unhealthy: Vec<(String, Verdict)> = judge
        .unhealthy
        .iter()
        .map(|(h, v)| (h.clone(), v.clone()))
        .collect();
    let mut summary = Summary {
        run: run_id.to_string(),
        outcome: String::new(),
        exit_code: exit::OK,
        meaning: String::new(),
        confirmed: Vec::new(),
        rolled_back: Vec::new(),
        untouched,
        unhealthy,
        ..Summary::default()
    };
    match end {
        End::Healthy => {
            let (confirmed, failed) = confirm(ctx, loaded, &deployed).await?;
            summary.confirmed = confirmed;
            summary.pending = failed;
            if summary.pending.is_empty() {
                summary.outcome = "every host healthy and confirmed".into();
                finish(ctx, &mut summary, "done", exit::OK)?;
            } else {
                summary.outcome =
                    "healthy, but some hosts could not be confirmed (they stay in probation)"
                        .into();
                finish(ctx, &mut summary, "incomplete", exit::INCOMPLETE)?;
            }
        }
        End::Unhealthy if rollout.policy.on_failure == OnFailure::Pause => {
            summary.outcome = format!("paused: {} unhealthy (max_unhealthy = {}); `wavectl rollback {run_id}` removes the script", count(judge.unhealthy.len(), "host"), rollout.policy.max_unhealthy);
            finish(ctx, &mut summary, "paused", exit::ROLLED_BACK)?;
        }
        End::Unhealthy | End::Stopped => {
            let reason = if matches!(end, End::Stopped) {
                "stopped by the operator".to_string()
            } else {
                format!(
                    "{} unhealthy, more than max_unhealthy = {}",
                    count(judge.unhealthy.len(), "host"),
                    rollout.policy.max_unhealthy
                )
            };
            ctx.record(Record::State {
                state: "rolling-back".into(),
                at: now(),
            })?;
            ctx.emit(Event::RollbackStarted {
                reason: reason.clone(),
                hosts: touched_names.clone(),
            });
            let removal = Removal::Name {
                name: rollout.name.clone(),
                install_path: Some(rollout.script.install_path.clone()),
            };
            let login = rollout.health.probe_timeout;
            let done = clean_hosts(
                ctx,
                Phase::Rollback,
                removal,
                touched.clone(),
                login,
                REMOVE_FANOUT,
                false,
            )
            .await?;
            summary.rolled_back = done.clean;
            summary.pending = done.pending;
            let (state, code) = match (summary.pending.is_empty(), matches!(end, End::Stopped)) {
                (false, _) => ("incomplete", exit::INCOMPLETE),
                (true, true) => ("aborted", exit::ABORTED),
                (true, false) => ("rolled-back", exit::ROLLED_BACK),
            };
            summary.outcome = if summary.pending.is_empty() {
                format!("rolled back: {reason}")
            } else {
                format!("rolled back ({reason}), but {} still pending: `wavectl reconcile {run_id}` once they answer", count(summary.pending.len(), "host"))
            };
            finish(ctx, &mut summary, state, code)?;
        }
    }
    Ok(summary.exit_code)
}

/// What a deploy adds to: the run's host sets and its judge.
struct Sets<'a> {
    touched: &'a mut Vec<Host>,
    deployed: &'a mut Vec<Host>,
    judge: &'a mut Judge,
}

/// Deploy one wave (at most `concurrency` hosts at once), skipping what a resumed run
/// already did; judge the failures.
async fn deploy_wave(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    run_id: &str,
    w: usize,
    wave_hosts: &[Host],
    installed: &HashMap<String, bool>,
    sets: Sets<'_>,
) -> Result<(), JournalError> {
    ctx.emit(Event::PhaseStarted {
        wave: w,
        phase: Phase::Deploy,
        hosts: wave_hosts.len(),
        seconds: None,
    });
    let limit = Arc::new(Semaphore::new(rollout.waves.concurrency.max(1)));
    let results = join_all(wave_hosts.iter().map(|host| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            if ctx.stopping() {
                return Ok(None);
            }
            // None: not installed yet; Some(ran): installed before a resume.
            let already = installed.get(&host.name).copied();
            let result = match already {
                Some(true) => Deployed::Done,
                Some(false) if !rollout.activation.run_on_install => Deployed::Done,
                _ => deploy_host(ctx, rollout, run_id, host, already.is_some()).await?,
            };
            Ok::<_, JournalError>(Some((host.clone(), already.is_none(), result)))
        }
    }))
    .await;
    for r in results {
        let Some((host, fresh, result)) = r? else {
            continue;
        };
        let (ok, detail) = match &result {
            Deployed::Done => (true, "installed".to_string()),
            Deployed::Failed(v) | Deployed::NotReached(v) => (
                false,
                v.evidence
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            ),
        };
        ctx.emit(Event::HostStep {
            wave: w,
            phase: Phase::Deploy,
            host: host.name.clone(),
            ok,
            detail,
        });
        // A resumed run may have touched the host already (an install without outcome).
        if fresh
            && !matches!(result, Deployed::NotReached(_))
            && !sets.touched.iter().any(|t| t.name == host.name)
        {
            sets.touched.push(host.clone());
        }
        match result {
            Deployed::Done => {
                sets.judge
                    .watches
                    .entry(host.name.clone())
                    .or_insert_with(|| HostWatch::new(&rollout.health.builtin))
                    .answered_before = true;
                sets.deployed.push(host);
            }
            Deployed::Failed(v) | Deployed::NotReached(v) => {
                sets.judge.note(ctx, w, &host.name, v)?
            }
        }
    }
    ctx.emit(Event::PhaseDone {
        wave: w,
        phase: Phase::Deploy,
    });
    Ok(())
}

fn finish(
    ctx: &Ctx<'_>,
    summary: &mut Summary,
    state: &str,
    code: i32,
) -> Result<(), JournalError> {
    ctx.record(Record::State {
        state: state.into(),
        at: now(),
    })?;
    summary.exit_code = code;
    summary.meaning = exit::meaning(code).to_string();
    ctx.emit(Event::Summary(summary.clone()));
    Ok(())
}

/// Read each host of the wave once before it gets the script.
async fn baseline(ctx: &Ctx<'_>, loaded: &Loaded, wave: usize, hosts: &[Host], judge: &mut Judge) {
    let rollout = &loaded.rollout;
    ctx.emit(Event::PhaseStarted {
        wave,
        phase: Phase::Baseline,
        hosts: hosts.len(),
        seconds: None,
    });
    let conns = Arc::new(Mutex::new(HashMap::new()));
    let outcomes = join_all(hosts.iter().map(|h| probe_host(ctx, rollout, h, &conns))).await;
    for (host, outcome) in hosts.iter().zip(outcomes) {
        let ok = matches!(outcome, Outcome::Report(_));
        if let Outcome::Report(r) = outcome {
            judge
                .watches
                .entry(host.name.clone())
                .or_insert_with(|| HostWatch::new(&rollout.health.builtin))
                .set_baseline(*r);
        }
        ctx.emit(Event::HostStep {
            wave,
            phase: Phase::Baseline,
            host: host.name.clone(),
            ok,
            detail: String::new(),
        });
    }
    let all: Vec<_> = conns.lock().await.drain().map(|(_, c)| c).collect();
    join_all(all.into_iter().map(|c: crate::transport::Conn| c.close())).await;
    ctx.emit(Event::PhaseDone {
        wave,
        phase: Phase::Baseline,
    });
}

/// Mark every deployed host confirmed, over a fresh connection.
async fn confirm(
    ctx: &Ctx<'_>,
    loaded: &Loaded,
    hosts: &[Host],
) -> Result<(Vec<String>, Vec<(String, String)>), JournalError> {
    let rollout = &loaded.rollout;
    ctx.emit(Event::PhaseStarted {
        wave: 0,
        phase: Phase::Confirm,
        hosts: hosts.len(),
        seconds: None,
    });
    let limit = Arc::new(Semaphore::new(rollout.waves.concurrency.max(1)));
    let results = join_all(hosts.iter().map(|host| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            ctx.intent(&host.name, Action::Confirm)?;
            let cmd = remote::confirm(&rollout.name, "-"); // TODO(engine): the run id
            let r = match ctx.run_on(host, rollout.health.probe_timeout, &cmd).await {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => Err(format!("exit {:?}: {}", out.code, out.last_line())),
                Err(e) => Err(e.to_string()),
            };
            let detail = r
                .as_ref()
                .err()
                .cloned()
                .unwrap_or_else(|| "confirmed".into());
            ctx.outcome(&host.name, Action::Confirm, r.is_ok(), detail.clone())?;
            ctx.emit(Event::HostStep {
                wave: 0,
                phase: Phase::Confirm,
                host: host.name.clone(),
                ok: r.is_ok(),
                detail: detail.clone(),
            });
            Ok::<_, JournalError>((host.name.clone(), r))
        }
    }))
    .await;
    ctx.emit(Event::PhaseDone {
        wave: 0,
        phase: Phase::Confirm,
    });
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r? {
            (h, Ok(())) => ok.push(h),
            (h, Err(e)) => failed.push((h, format!("not confirmed: {e}"))),
        }
    }
    Ok((ok, failed))
}
