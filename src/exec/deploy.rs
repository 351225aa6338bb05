//! Deploy one host: install the script (temp name, sha256 check, backup, rename),
//! the wrapper, the manifest and the activation; then start the supervised first run.

use crate::inventory::Host;
use crate::journal::{Action, JournalError, Record};
use crate::remote::{self, RemoteCommand};
use crate::rollout::verdict::{Evidence, Health, Verdict};
use crate::spec::Rollout;
use crate::transport::{Conn, TransportError};

use super::{login_deadline, now, Ctx};

/// How a deploy ended.
pub enum Deployed {
    Done,
    /// Failed on the host: the verdict it amounts to.
    Failed(Verdict),
    /// Never reached the host (no login): nothing was changed there.
    NotReached(Verdict),
}

/// Install on one host (unless `installed`: a resumed run that got that far) and start
/// its first run.
pub async fn deploy_host(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    run_id: &str,
    host: &Host,
    installed: bool,
) -> Result<Deployed, JournalError> {
    let first = if installed {
        Action::Run
    } else {
        Action::Install
    };
    ctx.intent(&host.name, first)?;
    let login = login_deadline(rollout.health.probe_timeout);
    let conn = match ctx.transport.connect(host, login).await {
        Ok(c) => c,
        Err(e) if !installed => {
            let reason = format!("not reached: {e}");
            ctx.record(Record::Untouched {
                host: host.name.clone(),
                reason,
            })?;
            return Ok(Deployed::NotReached(transport_verdict(&e, false)));
        }
        Err(e) => {
            ctx.outcome(&host.name, first, false, e.to_string())?;
            return Ok(Deployed::Failed(transport_verdict(&e, true)));
        }
    };
    let result = deploy_over(ctx, rollout, run_id, host, installed, &conn).await;
    conn.close().await;
    Ok(match result? {
        Ok(()) => Deployed::Done,
        Err(v) => Deployed::Failed(v),
    })
}

async fn deploy_over(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    run_id: &str,
    host: &Host,
    installed: bool,
    conn: &Conn,
) -> Result<Result<(), Verdict>, JournalError> {
    if !installed {
        let params = remote::InstallParams {
            name: &rollout.name,
            run_id,
            install_path: &rollout.script.install_path,
            mode: rollout.script.mode,
            script_timeout: rollout.script.timeout,
            activation: rollout.activation.kind,
            schedule: &rollout.activation.schedule,
            body: &rollout.script.body,
            sha256: &rollout.script.sha256,
            installed_at: now(),
            lease: std::time::Duration::ZERO, // TODO(engine)
            force: false,                     // TODO(engine)
        };
        if let Err(v) = step(
            ctx,
            conn,
            host,
            Action::Install,
            &remote::install(&params),
            "install",
        )
        .await?
        {
            return Ok(Err(v));
        }
        if !rollout.activation.run_on_install {
            return Ok(Ok(()));
        }
        ctx.intent(&host.name, Action::Run)?;
    }
    step(
        ctx,
        conn,
        host,
        Action::Run,
        &remote::start_run(&rollout.name, run_id),
        "script",
    )
    .await
}

/// Run one journaled command whose intent is already written; record its outcome.
async fn step(
    ctx: &Ctx<'_>,
    conn: &Conn,
    host: &Host,
    action: Action,
    cmd: &RemoteCommand,
    signal: &str,
) -> Result<Result<(), Verdict>, JournalError> {
    let verdict = match conn.run(cmd).await {
        Ok(out) if out.success() => {
            ctx.outcome(&host.name, action, true, cmd.what)?;
            return Ok(Ok(()));
        }
        Ok(out) => Verdict::bad(
            Health::Degraded,
            Evidence::new(signal).raw(format!(
                "{} failed: exit {:?}: {}",
                cmd.what,
                out.code,
                out.last_line()
            )),
        ),
        Err(e) => transport_verdict(&e, true),
    };
    let detail = verdict.evidence[0].to_string();
    ctx.outcome(&host.name, action, false, detail)?;
    Ok(Err(verdict))
}

/// What a transport failure says of a host's health.
pub fn transport_verdict(e: &TransportError, answered_before: bool) -> Verdict {
    let health = if e.is_deadline() && answered_before {
        Health::Hung
    } else if e.is_deadline() || matches!(e, TransportError::Connect { .. }) {
        Health::Unreachable
    } else {
        Health::Degraded
    };
    let signal = if e.is_deadline() { "deadline" } else { "ssh" };
    Verdict::bad(health, Evidence::new(signal).raw(e.to_string()))
}
