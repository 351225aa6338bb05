//! Probing hosts: before a wave (baseline) and every interval of a bake, one command per
//! host that reads every built-in signal, runs the custom checks and renews the lease,
//! over a connection kept for the phase. Talks to hosts; judging is `rollout::verdict`'s.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::remote;
use crate::rollout::verdict::Outcome;
use crate::rollout::Deployment;
use crate::transport::TransportError;

use super::ops::Shared;
use super::pool::Pool;

/// Probe every host once, at most `concurrency` at once.
pub async fn round(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    hosts: Vec<Host>,
) -> Vec<(String, Outcome)> {
    let Some(d) = shared.plan.deployment().cloned() else {
        return Vec::new();
    };
    let limit = Arc::new(Semaphore::new(shared.plan.policy.concurrency.max(1)));
    let probes = hosts.into_iter().map(|host| {
        let (shared, pool, limit, d) = (shared.clone(), pool.clone(), limit.clone(), d.clone());
        async move {
            let _permit = limit.acquire().await;
            let o = probe_host(&shared, &pool, &d, &host).await;
            (host.name, o)
        }
    });
    join_all(probes).await
}

/// One probe of one host: a login (unless the pool holds one), within its own deadline,
/// then the probe command, within `probe_timeout` from when it starts: a slow login (a
/// busy controller, a busy host) does not eat into the time the host has to answer.
async fn probe_host(shared: &Shared, pool: &Pool, d: &Deployment, host: &Host) -> Outcome {
    let conn = match pool.take(&host.name) {
        Some(c) => c,
        None => match shared
            .transport
            .connect(host, login_deadline(d.probe_timeout))
            .await
        {
            Ok(c) => c,
            Err(e) => return transport_outcome(&e),
        },
    };
    let left = d.probe_timeout;
    let cmd = remote::probe(
        &shared.plan.name,
        &shared.plan.run,
        &d.checks,
        left,
        d.lease,
    );
    // The remote `timeout` ends the probe at `left`; its answer needs a moment to come back.
    match conn.run_within(&cmd, left + Duration::from_secs(1)).await {
        Ok(out) => match remote::parse_probe(&out.stdout, &d.checks) {
            Ok(report) => {
                pool.put(&host.name, conn);
                Outcome::Report(Box::new(report))
            }
            Err(e) => {
                tokio::spawn(conn.close());
                Outcome::Failed {
                    message: format!(
                        "unreadable probe output ({e}); exit {:?}: {}",
                        out.code,
                        out.last_line()
                    ),
                }
            }
        },
        Err(e) => {
            // A stalled connection is useless for the next probe: close it in the background.
            tokio::spawn(conn.close());
            transport_outcome(&e)
        }
    }
}

/// The deadline for a login: the probe timeout, but never under 5 s (a login costs key
/// exchange CPU on both ends; on a busy controller a healthy host can need seconds).
pub fn login_deadline(probe_timeout: Duration) -> Duration {
    probe_timeout.max(Duration::from_secs(5))
}

fn transport_outcome(e: &TransportError) -> Outcome {
    match e {
        TransportError::ConnectTimeout { after, .. } => Outcome::Missed {
            what: "login".into(),
            after: *after,
        },
        TransportError::Deadline { what, after, .. } => Outcome::Missed {
            what: what.clone(),
            after: *after,
        },
        other => Outcome::Failed {
            message: other.to_string(),
        },
    }
}
