//! The real [`Host`]: carrying out one host action the state machine ordered (install,
//! first run, confirm, remove, settle) over the transport, and turning what happened
//! into a [`HostResult`]; its probes are `probe`'s. Talks to hosts; writes nothing.
//!
//! Logins: a host's actions ride the connection the transport keeps for it (the
//! baseline's login serves the install, which starts the first run in the same
//! command; the bake's serves the later probes and the confirmation). When a probe or a
//! confirmation logs in afresh is the state machine's call (`rollout::step`:
//! `Action::Host::fresh`, `Action::Probe::fresh`); this only carries it out.

use std::time::Duration;

use crate::inventory::Host;
use crate::remote::{self, InstallResult, RemoveScope};
use crate::rollout::verdict::{Evidence, Health, Outcome, Verdict};
use crate::rollout::{Finding, HostResult, Plan, Refusal, Target};
use crate::store::BoxFuture;
use crate::transport::{Conn, Output, Stage, Transport, TransportError};

use super::host::ProbeAsk;

/// How long a removal keeps killing running copies before it reports failure.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The hosts of a run over SSH: what every host action of the run shares.
pub struct Ssh {
    /// Also keeps the run's connections between actions (bounded: see `transport`).
    pub transport: Transport,
    pub plan: Plan,
    /// The script an apply installs (its sha256 was checked when read).
    pub body: Option<Vec<u8>>,
}

impl Ssh {
    pub fn new(transport: Transport, plan: Plan, body: Option<Vec<u8>>) -> Ssh {
        Ssh {
            transport,
            plan,
            body,
        }
    }

    fn login_timeout(&self) -> Duration {
        self.plan.policy.login_timeout
    }
}

/// Which connection an action uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The one kept for the host, if any; else a new login.
    Reuse,
    /// A new login, whatever is kept.
    Fresh,
}

impl super::host::Host for Ssh {
    fn install<'a>(&'a self, host: &'a Host, at: u64) -> BoxFuture<'a, HostResult> {
        Box::pin(install(self, host, at))
    }

    fn start_run<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, HostResult> {
        Box::pin(start_run(self, host))
    }

    fn confirm<'a>(&'a self, host: &'a Host, fresh: bool) -> BoxFuture<'a, HostResult> {
        Box::pin(confirm(self, host, fresh))
    }

    fn remove<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, HostResult> {
        Box::pin(remove(self, host))
    }

    fn settle<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, HostResult> {
        Box::pin(settle(self, host))
    }

    fn probe<'a>(&'a self, host: &'a Host, ask: &'a ProbeAsk) -> BoxFuture<'a, Outcome> {
        Box::pin(super::probe::probe_host(self, host, ask))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            self.transport.close_idle().await;
            self.transport.reap();
        })
    }
}

/// A connection for the host's action, reused or new (see [`Login`]).
async fn login(sh: &Ssh, host: &Host, how: Login) -> Result<Conn, HostResult> {
    if how == Login::Reuse {
        if let Some(c) = sh.transport.reuse(&host.name).await {
            return Ok(c);
        }
    }
    let c = sh
        .transport
        .connect(host, sh.login_timeout())
        .await
        .map_err(|e| not_reached(&e))?;
    Ok(c)
}

/// Done with a connection: kept for the host's next action, or closed.
async fn release(sh: &Ssh, conn: Conn, keep: bool) {
    if keep {
        sh.transport.keep(conn).await;
    } else {
        conn.close().await;
    }
}

/// A failed login: a refusal of ours, or a host that did not answer (nothing changed).
fn not_reached(e: &TransportError) -> HostResult {
    match e {
        TransportError::Refused { message, help, .. } => HostResult::Refused(Refusal {
            reason: message.clone(),
            help: help.clone(),
        }),
        _ => HostResult::Failed {
            verdict: transport_verdict(e, false),
            touched: false,
        },
    }
}

/// A command that failed on a host that answered the login.
fn broken(e: &TransportError) -> HostResult {
    HostResult::Failed {
        verdict: transport_verdict(e, true),
        touched: true,
    }
}

/// What a transport failure says of a host's health.
pub fn transport_verdict(e: &TransportError, answered_before: bool) -> Verdict {
    let health = if matches!(
        e,
        TransportError::ConnectTimeout {
            stage: Stage::NoBanner,
            ..
        }
    ) {
        // Connected, no SSH banner: its sshd does not run.
        Health::Hung
    } else if e.is_deadline() && answered_before {
        Health::Hung
    } else if e.is_deadline() || matches!(e, TransportError::Connect { .. }) {
        Health::Unreachable
    } else {
        Health::Degraded
    };
    let signal = if e.is_deadline() { "deadline" } else { "ssh" };
    Verdict::bad(health, Evidence::new(signal).raw(e.to_string()))
}

fn failed_on_host(signal: &str, what: &str, out: &Output) -> HostResult {
    HostResult::Failed {
        verdict: Verdict::bad(
            Health::Degraded,
            Evidence::new(signal).raw(format!(
                "{what} failed: exit {}: {}",
                out.code
                    .map_or("by a signal".to_string(), |c| c.to_string()),
                out.last_line()
            )),
        ),
        touched: true,
    }
}

async fn install(sh: &Ssh, host: &Host, now: u64) -> HostResult {
    let (Target::Apply(d), Some(body)) = (&sh.plan.target, &sh.body) else {
        return internal("install ordered in a run that installs nothing");
    };
    // The baseline's login, if it had one.
    let conn = match login(sh, host, Login::Reuse).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let params = remote::InstallParams {
        name: &sh.plan.name,
        run_id: &sh.plan.run,
        install_path: &d.install_path,
        mode: d.mode,
        script_timeout: d.script_timeout,
        activation: d.activation,
        schedule: &d.schedule,
        body,
        sha256: &d.sha256,
        installed_at: now / 1000,
        lease: d.lease,
        force: d.force,
        // The first run rides the install's session; `Op::StartRun` is left for an
        // install that did not start it.
        start: d.run_on_install,
    };
    let result = match conn.run(&remote::install(&params)).await {
        Ok(out) => match remote::parse_install(out.code, &out.stdout) {
            InstallResult::Installed {
                backup,
                prev,
                started,
            } => HostResult::Installed {
                backup,
                prev,
                started,
            },
            InstallResult::Refused(reason) => HostResult::Refused(Refusal {
                reason: format!("{}: {reason}", host.name),
                help: "nothing was changed on that host; resolve what it names (another rollout's install, an unfinished run, a packaged file: --force replaces one), then apply again".into(),
            }),
            InstallResult::Failed(why) => HostResult::Failed {
                verdict: Verdict::bad(
                    Health::Degraded,
                    Evidence::new("install").raw(format!(
                        "{why} (exit {}: {})",
                        out.code.map_or("signal".into(), |c| c.to_string()),
                        out.last_line()
                    )),
                ),
                touched: true,
            },
        },
        Err(e) => broken(&e),
    };
    let installed = matches!(result, HostResult::Installed { .. });
    release(sh, conn, installed).await;
    result
}

async fn start_run(sh: &Ssh, host: &Host) -> HostResult {
    let conn = match login(sh, host, Login::Reuse).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let out = conn
        .run(&remote::start_run(&sh.plan.name, &sh.plan.run))
        .await;
    release(sh, conn, out.is_ok()).await;
    match out {
        Ok(o) if o.success() => HostResult::Started,
        Ok(o) => failed_on_host("script", "starting the first run", &o),
        Err(e) => broken(&e),
    }
}

/// Confirm over the bake's connection, or over a fresh one when the machine says so (the
/// host has not answered a fresh login since its install: the evidence that it still
/// takes new logins).
async fn confirm(sh: &Ssh, host: &Host, fresh: bool) -> HostResult {
    let how = if fresh { Login::Fresh } else { Login::Reuse };
    let conn = match login(sh, host, how).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = match conn
        .run(&remote::confirm(&sh.plan.name, &sh.plan.run))
        .await
    {
        Ok(o) => match remote::parse_confirm(o.code, &o.stdout) {
            remote::ConfirmResult::Confirmed => HostResult::Confirmed,
            remote::ConfirmResult::Refused(why) => match ask(&conn, sh).await {
                // The lease ran out and the host reverted itself.
                Ok(f @ Finding::Reverted { .. }) => HostResult::Settled(f),
                _ => HostResult::Failed {
                    verdict: Verdict::bad(Health::Degraded, Evidence::new("confirm").raw(why)),
                    touched: true,
                },
            },
            remote::ConfirmResult::Failed(why) => HostResult::Failed {
                verdict: Verdict::bad(Health::Degraded, Evidence::new("confirm").raw(why)),
                touched: true,
            },
        },
        Err(e) => broken(&e),
    };
    conn.close().await;
    result
}

async fn remove(sh: &Ssh, host: &Host) -> HostResult {
    let cmd = match &sh.plan.target {
        Target::Apply(d) => remote::remove(
            &sh.plan.name,
            Some(&d.install_path),
            RemoveScope::Run(&sh.plan.run),
            KILL_TIMEOUT,
        ),
        // The purge's run id is its fence: a run that began before it installs no more.
        Target::Purge => remote::remove(
            &sh.plan.name,
            None,
            RemoveScope::All(Some(&sh.plan.run)),
            KILL_TIMEOUT,
        ),
        Target::PurgePath { path, force } => remote::purge_path(path, KILL_TIMEOUT, *force),
    };
    let kept = sh.transport.reuse(&host.name).await;
    let out = if kept.is_none()
        && !host.become_root
        && matches!(sh.plan.target, Target::Purge | Target::PurgePath { .. })
    {
        // A purge's one command: one plain `ssh HOST CMD`, no master to set up and close.
        match sh.transport.run_once(host, sh.login_timeout(), &cmd).await {
            Ok(o) => o,
            Err(e @ TransportError::Refused { .. }) => {
                return removal_not_reached(not_reached(&e));
            }
            Err(e @ (TransportError::Connect { .. } | TransportError::ConnectTimeout { .. })) => {
                return not_reached(&e)
            }
            Err(e) => return broken(&e),
        }
    } else {
        let conn = match kept {
            Some(c) => c,
            None => match login(sh, host, Login::Fresh).await {
                Ok(c) => c,
                Err(r) => return removal_not_reached(r),
            },
        };
        let out = conn.run(&cmd).await;
        conn.close().await;
        match out {
            Ok(o) => o,
            Err(e) => return broken(&e),
        }
    };
    let (clean, mut detail, superseded) = match &sh.plan.target {
        Target::PurgePath { .. } => {
            let (clean, detail) = describe_purge_path(&out.stdout);
            (clean, detail, None)
        }
        _ => describe_removal(&out.stdout),
    };
    if let (true, Some(by)) = (clean, superseded) {
        HostResult::Superseded { by, detail }
    } else if clean {
        HostResult::Removed { detail }
    } else {
        if !out.success() {
            detail = format!("{detail}; exit {:?}: {}", out.code, out.last_line());
        }
        HostResult::Failed {
            verdict: Verdict::bad(Health::Degraded, Evidence::new("removal").raw(detail)),
            touched: true,
        }
    }
}

/// A removal whose login failed: a refusal of ours cannot stop it, the host stays
/// pending, with why.
fn removal_not_reached(r: HostResult) -> HostResult {
    match r {
        HostResult::Refused(r) => HostResult::Failed {
            verdict: Verdict::bad(
                Health::Unreachable,
                Evidence::new("ssh").raw(format!("{} (to fix: {})", r.reason, r.help)),
            ),
            touched: false,
        },
        r => r,
    }
}

/// Whether the removal checked out, what it found and did, and the newer run the
/// rollout stays under (if this run's version was superseded there).
fn describe_removal(stdout: &str) -> (bool, String, Option<String>) {
    let r = remote::parse_remove(stdout);
    let mut parts = Vec::new();
    if let Some((run, state)) = &r.other {
        parts.push(format!("holds run {run}'s install ({state}): left alone"));
    }
    if let Some(run) = &r.superseded {
        parts.push(format!(
            "holds run {run}'s newer install: left alone (this run's version dropped from the host's history)"
        ));
    }
    if r.found.is_empty() && r.other.is_none() && r.superseded.is_none() {
        parts.push("nothing of wavectl's found".to_string());
    } else if !r.found.is_empty() {
        parts.push(format!("found {}", r.found.join(", ")));
    }
    if r.killed > 0 {
        parts.push(format!("killed {} processes", r.killed));
    }
    if let Some(v) = &r.restored_version {
        parts.push(format!("run {v}'s version restored"));
    }
    if r.restored {
        parts.push("original restored".into());
    }
    if !r.removed.is_empty() {
        parts.push(format!("removed {}", r.removed.join(", ")));
    }
    if !r.detail.is_empty() {
        parts.push(r.detail.clone());
    }
    (r.clean, parts.join("; "), r.superseded)
}

fn describe_purge_path(stdout: &str) -> (bool, String) {
    let r = remote::parse_purge_path(stdout);
    let mut parts = vec![if r.found.is_empty() {
        "nothing found".to_string()
    } else {
        format!("found {}", r.found.join(", "))
    }];
    if r.killed > 0 {
        parts.push(format!("killed {} processes", r.killed));
    }
    if !r.changed.is_empty() {
        parts.push(format!("disabled in {}", r.changed.join(", ")));
    }
    if r.removed {
        parts.push("script removed".into());
    }
    if !r.saved.is_empty() {
        parts.push(format!("copies kept: {}", r.saved.join(", ")));
    }
    if !r.detail.is_empty() {
        parts.push(r.detail.clone());
    }
    (r.clean, parts.join("; "))
}

/// What the host holds of this run.
async fn ask(conn: &Conn, sh: &Ssh) -> Result<Finding, HostResult> {
    let out = conn
        .run(&remote::settle(&sh.plan.name, &sh.plan.run))
        .await
        .map_err(|e| broken(&e))?;
    let f = remote::parse_settle(&out.stdout).map_err(|e| HostResult::Failed {
        verdict: Verdict::bad(Health::Degraded, Evidence::new("settle").raw(e)),
        touched: false,
    })?;
    Ok(crate::rollout::found::finding(&f, &sh.plan.run))
}

async fn settle(sh: &Ssh, host: &Host) -> HostResult {
    let conn = match login(sh, host, Login::Reuse).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let f = ask(&conn, sh).await;
    // The host's next action (a deploy, a removal) rides it.
    release(sh, conn, f.is_ok()).await;
    match f {
        Ok(f) => HostResult::Settled(f),
        Err(r) => r,
    }
}

fn internal(why: &str) -> HostResult {
    HostResult::Failed {
        verdict: Verdict::bad(Health::Degraded, Evidence::new("wavectl").raw(why)),
        touched: false,
    }
}
