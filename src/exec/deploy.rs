//! Deploy one host: install the script (temp name, sha256 check, backup, rename),
//! the wrapper, the manifest and the activation; then start the supervised first run.

use crate::inventory::Host;
use crate::journal::{Action, JournalError};
use crate::remote;
use crate::rollout::verdict::{Evidence, Health, Verdict};
use crate::spec::Rollout;
use crate::transport::TransportError;

use super::{login_deadline, now, Ctx};

/// Install on one host. `Err` carries the verdict the failure amounts to.
pub async fn deploy_host(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    run_id: &str,
    host: &Host,
) -> Result<Result<(), Verdict>, JournalError> {
    ctx.intent(&host.name, Action::Install)?;
    let conn = match ctx
        .transport
        .connect(host, login_deadline(rollout.health.probe_timeout))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            ctx.outcome(&host.name, Action::Install, false, e.to_string())?;
            return Ok(Err(transport_verdict(&e, false)));
        }
    };
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
    };
    let result = conn.run(&remote::install(&params)).await;
    let verdict = match result {
        Ok(out) if out.success() => None,
        Ok(out) => Some(Verdict::bad(
            Health::Degraded,
            Evidence::new("install").raw(format!("exit {:?}: {}", out.code, out.last_line())),
        )),
        Err(e) => Some(transport_verdict(&e, true)),
    };
    if let Some(v) = verdict {
        ctx.outcome(
            &host.name,
            Action::Install,
            false,
            v.evidence[0].to_string(),
        )?;
        conn.close().await;
        return Ok(Err(v));
    }
    ctx.outcome(&host.name, Action::Install, true, "installed")?;
    if rollout.activation.run_on_install {
        ctx.intent(&host.name, Action::Run)?;
        match conn.run(&remote::start_run(&rollout.name)).await {
            Ok(out) if out.success() => {
                ctx.outcome(&host.name, Action::Run, true, "first run started")?
            }
            Ok(out) => {
                let detail = format!(
                    "could not start the first run: exit {:?}: {}",
                    out.code,
                    out.last_line()
                );
                ctx.outcome(&host.name, Action::Run, false, detail.clone())?;
                conn.close().await;
                return Ok(Err(Verdict::bad(
                    Health::Degraded,
                    Evidence::new("script").raw(detail),
                )));
            }
            Err(e) => {
                ctx.outcome(&host.name, Action::Run, false, e.to_string())?;
                conn.close().await;
                return Ok(Err(transport_verdict(&e, true)));
            }
        }
    }
    conn.close().await;
    Ok(Ok(()))
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
