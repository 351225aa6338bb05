//! Remove a script from hosts, all at once: kill running copies, remove what activates
//! it, restore backups, verify. Used by a failed apply, `rollback`, `purge` and
//! `reconcile`. Every host is tried; the ones that fail stay pending.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::journal::{Action, JournalError, RunInfo, RunKind};
use crate::remote::{self, RemoteCommand};
use crate::report::{Event, Phase};

use super::Ctx;

/// Hosts removed at once unless told otherwise.
pub const REMOVE_FANOUT: usize = 200;

/// How long removal keeps killing running copies before it reports failure.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What is removed.
#[derive(Debug, Clone)]
pub enum Removal {
    /// A script wavectl installed under NAME; `install_path` is `None` when only the
    /// hosts' own records know it (purge).
    Name {
        name: String,
        install_path: Option<String>,
    },
    /// A script wavectl never installed (`purge --path`).
    Path { path: String },
}

impl Removal {
    /// The removal a journaled run needs.
    pub fn of_run(info: &RunInfo) -> Removal {
        match info.kind {
            RunKind::Apply => Removal::Name {
                name: info.rollout.clone(),
                install_path: Some(info.install_path.clone()),
            },
            RunKind::Purge => Removal::Name {
                name: info.rollout.clone(),
                install_path: None,
            },
            RunKind::PurgePath => Removal::Path {
                path: info.install_path.clone(),
            },
        }
    }

    fn command(&self) -> RemoteCommand {
        match self {
            Removal::Name { name, install_path } => {
                // TODO(engine): Run(run id) for a rollback
                remote::remove(
                    name,
                    install_path.as_deref(),
                    remote::RemoveScope::All,
                    KILL_TIMEOUT,
                )
            }
            Removal::Path { path } => remote::purge_path(path, KILL_TIMEOUT, false), // TODO(engine)
        }
    }

    /// Whether the host is clean, and one line on what was found and done.
    fn report(&self, stdout: &str) -> (bool, String) {
        match self {
            Removal::Name { .. } => {
                let r = remote::parse_remove(stdout);
                let mut parts = vec![if r.found.is_empty() {
                    "nothing of wavectl's found".to_string()
                } else {
                    format!("found {}", r.found.join(", "))
                }];
                if r.killed > 0 {
                    parts.push(format!("killed {} processes", r.killed));
                }
                if r.restored {
                    parts.push("backup restored".into());
                }
                if !r.removed.is_empty() {
                    parts.push(format!("removed {}", r.removed.join(", ")));
                }
                if !r.detail.is_empty() {
                    parts.push(r.detail.clone());
                }
                (r.clean, parts.join("; "))
            }
            Removal::Path { .. } => {
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
        }
    }
}

/// What to remove, from which hosts.
pub struct RemovalTarget {
    pub removal: Removal,
    pub login_timeout: Duration,
    pub hosts: Vec<Host>,
    /// Hosts worked on at once.
    pub fanout: usize,
}

/// The result for one host.
#[derive(Debug, Clone)]
pub struct Removed {
    pub host: String,
    /// Clean and verified.
    pub clean: bool,
    /// What was found and done, or why it could not be.
    pub detail: String,
}

/// Remove from every host concurrently (at most `fanout` at once).
pub async fn remove_hosts(
    ctx: &Ctx<'_>,
    phase: Phase,
    t: &RemovalTarget,
) -> Result<Vec<Removed>, JournalError> {
    ctx.emit(Event::PhaseStarted {
        wave: 0,
        phase,
        hosts: t.hosts.len(),
        seconds: None,
    });
    let limit = Arc::new(Semaphore::new(t.fanout.max(1)));
    let results = join_all(t.hosts.iter().map(|host| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            remove_one(ctx, phase, t, host).await
        }
    }))
    .await;
    ctx.emit(Event::PhaseDone { wave: 0, phase });
    results.into_iter().collect()
}

async fn remove_one(
    ctx: &Ctx<'_>,
    phase: Phase,
    t: &RemovalTarget,
    host: &Host,
) -> Result<Removed, JournalError> {
    ctx.intent(&host.name, Action::Remove)?;
    let (clean, detail) = match ctx
        .run_on(host, t.login_timeout, &t.removal.command())
        .await
    {
        Ok(out) => {
            let (clean, mut detail) = t.removal.report(&out.stdout);
            if !clean && !out.success() {
                detail = format!("{detail}; exit {:?}: {}", out.code, out.last_line());
            }
            (clean, detail)
        }
        Err(e) => (false, e.to_string()),
    };
    ctx.outcome(&host.name, Action::Remove, clean, detail.clone())?;
    ctx.emit(Event::HostStep {
        wave: 0,
        phase,
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
