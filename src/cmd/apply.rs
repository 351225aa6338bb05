//! `apply` (a new run from a spec) and `resume` (a run whose controller died or paused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{Global, SpecArgs};
use crate::diag::InputError;
use crate::exec::{self, login_deadline, wall_ms};
use crate::exit;
use crate::plan::file::PlanContent;
use crate::plan::Wave;
use crate::report::metrics::MetricsFile;
use crate::report::{count, Event as Shown};
use crate::rollout::signals;
use crate::rollout::{
    Approved, Attach, Deployment, End, Event, Intent, Plan, Policy, RunKind, Status, Target,
};
use crate::spec::Loaded;
use crate::store::{local_user, Access, AppliedPlan, Artefact, AuditEntry, Holder, Store};

use super::load;
use super::session::{
    began, metrics_file, open_run, reporter_with, run_one, store, CmdError, CmdResult, Cx, Failure,
    Opened,
};

/// Hosts removed at once in a rollback.
pub const REMOVE_FANOUT: usize = 200;

pub async fn apply(
    g: &Global,
    args: &SpecArgs,
    yes: bool,
    skip_unreachable: bool,
    metrics: Option<&Path>,
) -> CmdResult {
    let (loaded, waves) = load(g, args).await?;
    let metrics = metrics_file(metrics)?;
    if loaded.rollout.policy.approvals > 0 {
        return Err(CmdError::Refused(
            Failure::new(format!(
                "rollout {} needs {} approvals (policy.approvals), and a bare spec carries none",
                loaded.rollout.name, loaded.rollout.policy.approvals,
            ))
            .help(format!(
                "`wavectl plan {} -o PLAN`, then `wavectl approve PLAN --key KEY` by each approver, then `wavectl apply PLAN`",
                args.rollout.display()
            )),
        ));
    }
    let store = store(g, Access::Write).await?;
    super::hold::refuse_if_frozen(&*store, &loaded.rollout.name).await?;
    if !ask_to_apply(
        yes,
        &loaded,
        &waves,
        &format!("rollout {}", loaded.rollout.name),
    )? {
        eprintln!("not applied");
        return Ok(exit::ABORTED);
    }
    let how = HowToRun {
        force: args.force,
        skip_unreachable,
    };
    run_apply(g, &store, &loaded, &waves, how, None, metrics).await
}

/// The flags of an apply that shape its run.
#[derive(Debug, Clone, Copy, Default)]
pub struct HowToRun {
    /// `--force`: replace a file a package owns.
    pub force: bool,
    /// `--skip-unreachable`: leave out the targets offline before the run.
    pub skip_unreachable: bool,
}

/// Show the waves and ask whether to apply `what` (the rollout, or a plan) to the
/// targets, unless `yes`. `Ok(false)`: the operator said no.
pub fn ask_to_apply(
    yes: bool,
    loaded: &Loaded,
    waves: &[Wave],
    what: &str,
) -> Result<bool, InputError> {
    if yes {
        return Ok(true);
    }
    let shown = crate::plan::render(
        waves,
        &loaded.targets,
        loaded.rollout.waves.spread_by.as_deref(),
    );
    let question = format!("apply {what} to {}?", count(loaded.targets.len(), "host"));
    super::consent(false, "apply", &shown, &question)
}

/// What `apply PLAN` brings to its run: the approval the journal records, and the
/// plan's id, claimed in the store as the run begins (a plan applies once).
pub struct FromPlan {
    pub id: String,
    pub approved: Approved,
}

/// Start a new run of a loaded spec (also used by `demo`), writing `metrics` if given.
/// Returns the exit code.
pub async fn run_apply(
    g: &Global,
    store: &Arc<dyn Store>,
    loaded: &Loaded,
    waves: &[Wave],
    how: HowToRun,
    from_plan: Option<FromPlan>,
    metrics: Option<MetricsFile>,
) -> CmdResult {
    store.prepare().await?;
    let reporter = reporter_with(g, metrics);
    let force = how.force;
    super::hold::refuse_if_frozen(&**store, &loaded.rollout.name).await?;
    let run = exec::new_run_id(&loaded.rollout.name);
    // The preflight's events carry the run's id (the one it would have had, if refused).
    reporter.set_run(&run);
    let lease = store
        .lock(&loaded.rollout.name, &Holder::this_process(&run))
        .await?;
    let claimed = match &from_plan {
        Some(fp) => {
            let rec = AppliedPlan {
                plan: fp.id.clone(),
                hash: fp.approved.hash.clone(),
                run: run.clone(),
                at: crate::rollout::step::utc(wall_ms() / 1000),
                user: local_user(),
            };
            if let Some(earlier) = store.claim_plan(&rec).await? {
                return Err(CmdError::Refused(
                    Failure::new(format!(
                        "{} was applied already, by run {} at {} ({}): a plan applies once",
                        fp.approved.plan.display(),
                        earlier.run,
                        earlier.at,
                        earlier.user
                    ))
                    .help(super::approval::PLAN_AGAIN),
                ));
            }
            Some(fp.id.as_str())
        }
        None => None,
    };
    // A claim this run does not use is given back (the plan was not applied).
    let unclaim = async |run: &str| {
        if let Some(id) = claimed {
            if !store
                .runs()
                .await
                .is_ok_and(|all| all.iter().any(|r| r == run))
            {
                let _ = store.unclaim_plan(id).await;
            }
        }
    };
    // Before any change: is every target there? (Skipped ones leave the plan.)
    let passed = match super::preflight::preflight(
        g,
        loaded,
        waves,
        how.skip_unreachable,
        &reporter,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            unclaim(&run).await;
            // No run began; the audit log keeps the refusal.
            let entry = AuditEntry {
                at: crate::rollout::step::utc(wall_ms() / 1000),
                user: local_user(),
                action: "apply".into(),
                outcome: "refused".into(),
                exit_code: Some(e.code()),
                rollout: loaded.rollout.name.clone(),
                plan_hash: from_plan.as_ref().map(|fp| fp.approved.hash.clone()),
                script_sha256: Some(loaded.rollout.script.sha256.clone()),
                detail: e.to_string(),
                command: crate::store::command_line(),
                ..AuditEntry::default()
            };
            if let Err(err) = store.audit(&entry).await {
                eprintln!("warning: the audit log: {err}");
            }
            return Err(e);
        }
    };
    let (loaded, waves) = (&passed.loaded, passed.waves.as_slice());
    let r = &loaded.rollout;
    let mut plan = plan_of(
        g,
        content_of(loaded, waves, force),
        &run,
        from_plan.as_ref().map(|fp| fp.approved.clone()),
    );
    plan.groups = super::preflight::groups(loaded, &loaded.targets);
    plan.preflight = Some(passed.found.clone());
    let notify = r
        .notify
        .as_ref()
        .map(|n| serde_json::to_vec_pretty(n).unwrap_or_default());
    let mut artefacts: Vec<(Artefact, &[u8])> = vec![(Artefact::Script, &r.script.body)];
    if let Some(n) = &notify {
        artefacts.push((Artefact::Notify, n));
    }
    let o = match Opened::begin(&**store, lease, &run, &artefacts).await {
        Ok(o) => o,
        Err(e) => {
            unclaim(&run).await;
            return Err(e);
        }
    };
    let first = begin(&plan, false);
    // The preflight's logins serve the run's first actions.
    let cx = Cx::new(g, store, &reporter)?.with_transport(passed.transport);
    cx.run_to_end(o, first, plan).await
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// Everything a run of this spec will do: what `plan -o` writes and `apply PLAN` checks.
pub fn content_of(loaded: &Loaded, waves: &[Wave], force: bool) -> PlanContent {
    let r = &loaded.rollout;
    let h = &r.health;
    PlanContent {
        rollout: r.name.clone(),
        description: r.description.clone(),
        spec: r.spec_path.clone(),
        inventory: r.inventory_path.clone(),
        limit: loaded.limit.clone(),
        deployment: Deployment {
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
        },
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
            gates: r.gates.as_ref().map(|g| crate::rollout::Gates {
                after: g.after.clone(),
                timeout: g.timeout,
            }),
        },
        approvals: r.policy.approvals,
        hosts: loaded.targets.clone(),
        waves: waves.iter().map(|w| w.hosts.clone()).collect(),
    }
}

fn plan_of(g: &Global, c: PlanContent, run: &str, approval: Option<Approved>) -> Plan {
    Plan {
        run: run.to_string(),
        name: c.rollout,
        target: Target::Apply(c.deployment),
        hosts: c.hosts,
        waves: c.waves,
        policy: c.policy,
        spec: Some(c.spec),
        inventory: Some(c.inventory),
        ssh_config: g.ssh_config.as_deref().map(absolute),
        user: local_user(),
        approval,
        command: crate::store::command_line(),
        preflight: None,
        groups: None,
    }
}

/// The Begin of a new run.
pub fn begin(plan: &Plan, until_done: bool) -> Event {
    Event::Begin {
        plan: Box::new(plan.clone()),
        pid: std::process::id(),
        until_done,
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
        command: crate::store::command_line(),
    })
}

/// Continue a run whose controller died (or a paused one), from its journal alone.
pub async fn resume(g: &Global, run: &str, yes: bool, metrics: Option<&Path>) -> CmdResult {
    let metrics = metrics_file(metrics)?;
    let store = store(g, Access::Write).await?;
    let o = open_run(&*store, run).await?;
    let id = o.run.clone();
    let plan = began(&id, &o.state)?.clone();
    if plan.kind() != RunKind::Apply {
        return Err(CmdError::State(
            Failure::new(format!("run {id} is a purge: there is nothing to resume")).help(format!(
                "`wavectl reconcile {id}` finishes its pending hosts"
            )),
        ));
    }
    match &o.state.status {
        Status::Ended { end } if !matches!(end, End::Paused { .. }) => {
            crate::outln!(
                "run {id} has ended ({}); nothing to resume",
                o.state.status_name()
            );
            return Ok(exit::OK);
        }
        _ => {}
    }
    let question = format!(
        "resume run {id} ({}) of rollout {} on {}?",
        o.state.status_name(),
        plan.name,
        count(plan.hosts.len(), "host")
    );
    if !super::consent(yes, "resume", "", &question)? {
        eprintln!("not resumed");
        return Ok(exit::ABORTED);
    }
    let reporter = reporter_with(g, metrics);
    reporter.emit(Shown::Note {
        message: format!(
            "resuming run {id} ({}) of rollout {}",
            o.state.status_name(),
            plan.name
        ),
    });
    let first = attach(Intent::Resume, false, None);
    run_one(g, &store, &reporter, o, first, plan).await
}
