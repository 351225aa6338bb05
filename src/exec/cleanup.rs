//! Clean a set of hosts (rollback, purge, reconcile): remove from all at once, and
//! with `until_done` retry the ones left pending, with backoff, until all are clean
//! or the operator stops.

use std::time::Duration;

use super::remove::{remove_hosts, Removal, RemovalTarget};
use super::Ctx;
use crate::inventory::Host;
use crate::journal::JournalError;
use crate::report::{Event, Phase};

/// Backoff between retries of pending hosts: doubles from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which hosts ended clean, and which are still pending (with why).
#[derive(Debug, Default)]
pub struct Cleanup {
    pub clean: Vec<String>,
    /// Per clean host, what was found and done.
    pub details: Vec<(String, String)>,
    pub pending: Vec<(String, String)>,
}

/// Remove `removal` from `hosts`.
pub async fn clean_hosts(
    ctx: &Ctx<'_>,
    phase: Phase,
    removal: Removal,
    hosts: Vec<Host>,
    login_timeout: Duration,
    fanout: usize,
    until_done: bool,
) -> Result<Cleanup, JournalError> {
    let mut out = Cleanup::default();
    let mut target = RemovalTarget {
        removal,
        login_timeout,
        hosts,
        fanout,
    };
    let mut backoff = BACKOFF_FIRST;
    loop {
        let removed = remove_hosts(ctx, phase, &target).await?;
        let mut left = Vec::new();
        out.pending.clear();
        for r in removed {
            if r.clean {
                out.clean.push(r.host.clone());
                out.details.push((r.host, r.detail));
            } else {
                if let Some(h) = target.hosts.iter().find(|h| h.name == r.host) {
                    left.push(h.clone());
                }
                out.pending.push((r.host, r.detail));
            }
        }
        if left.is_empty() || !until_done || ctx.stopping() {
            return Ok(out);
        }
        ctx.emit(Event::Note {
            message: format!(
                "{} hosts still pending; retrying in {}s (Ctrl-C to stop)",
                left.len(),
                backoff.as_secs()
            ),
        });
        let deadline = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < deadline {
            if ctx.stopping() {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        target.hosts = left;
    }
}
