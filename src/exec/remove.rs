//! Remove a rollout's script from hosts, all at once: kill running copies, remove the
//! activation, wrapper, script and manifest, restore the backup, verify. Used by a
//! failed apply and by `rollback`. Every host is tried; failures become pending.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::journal::{Action, JournalError};
use crate::remote;
use crate::report::{Event, Phase};

use super::{login_deadline, Ctx};

/// Hosts removed at once, at most.
pub const REMOVE_FANOUT: usize = 200;

/// What to remove, and where.
pub struct RemovalTarget<'a> {
    pub name: &'a str,
    /// `None` when only the hosts' manifests know it (purge).
    pub install_path: Option<&'a str>,
    pub login_timeout: Duration,
    pub hosts: Vec<Host>,
}

/// The result for one host.
pub struct Removed {
    pub host: String,
    /// Clean and verified.
    pub clean: bool,
    /// What was found and done, or why it could not be.
    pub detail: String,
}

/// Remove from every host concurrently (at most [`REMOVE_FANOUT`] at once).
pub async fn remove_hosts(
    ctx: &Ctx<'_>,
    wave: usize,
    t: &RemovalTarget<'_>,
) -> Result<Vec<Removed>, JournalError> {
    ctx.emit(Event::PhaseStarted {
        wave,
        phase: Phase::Rollback,
        hosts: t.hosts.len(),
        seconds: None,
    });
    let limit = Arc::new(Semaphore::new(REMOVE_FANOUT));
    let results = join_all(t.hosts.iter().map(|host| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            remove_one(ctx, wave, t, host).await
        }
    }))
    .await;
    ctx.emit(Event::PhaseDone {
        wave,
        phase: Phase::Rollback,
    });
    results.into_iter().collect()
}

async fn remove_one(
    ctx: &Ctx<'_>,
    wave: usize,
    t: &RemovalTarget<'_>,
    host: &Host,
) -> Result<Removed, JournalError> {
    ctx.intent(&host.name, Action::Remove)?;
    let (clean, detail) = match ctx
        .transport
        .connect(host, login_deadline(t.login_timeout))
        .await
    {
        Err(e) => (false, e.to_string()),
        Ok(conn) => {
            let cmd = remote::remove(t.name, t.install_path, Duration::from_secs(10));
            let r = match conn.run(&cmd).await {
                Ok(out) => {
                    let rep = remote::parse_remove(&out.stdout);
                    let mut detail = summarize(&rep);
                    if !rep.clean && rep.found.is_empty() && rep.detail.is_empty() {
                        detail = format!("exit {:?}: {}", out.code, out.last_line());
                    }
                    (rep.clean, detail)
                }
                Err(e) => (false, e.to_string()),
            };
            conn.close().await;
            r
        }
    };
    ctx.outcome(&host.name, Action::Remove, clean, detail.clone())?;
    ctx.emit(Event::HostStep {
        wave,
        phase: Phase::Rollback,
        host: host.name.clone(),
        ok: clean,
        detail: detail.clone(),
    });
    Ok(Removed {
        host: host.name.clone(),
        clean,
        detail,
    })
}

/// One line on what a removal found and did.
pub fn summarize(r: &remote::RemovalReport) -> String {
    let mut parts = Vec::new();
    if r.found.is_empty() {
        parts.push("nothing of wavectl's found".to_string());
    } else {
        parts.push(format!("found {}", r.found.join(", ")));
    }
    if r.killed > 0 {
        parts.push(format!("killed {} processes", r.killed));
    }
    if r.restored {
        parts.push("backup restored".to_string());
    }
    if !r.removed.is_empty() {
        parts.push(format!("removed {}", r.removed.len()));
    }
    if !r.detail.is_empty() {
        parts.push(r.detail.clone());
    }
    parts.join("; ")
}
