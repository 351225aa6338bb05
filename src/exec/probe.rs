//! Probing hosts: before a wave (baseline) and every interval of a bake, one command per
//! host that reads every built-in signal, runs the custom checks and renews the lease,
//! over the connection the transport keeps for the host (a new login only where there
//! is none, and for a host's first probe after its install: see `ops`). Talks to hosts;
//! judging is `rollout::verdict`'s.
//!
//! Deadlines: the login's (at least 2 s) and the probe command's (`probe_timeout`) are
//! each counted from the moment the transport admits them, never from the moment the
//! round began: a round of many hosts on a busy controller condemns no host for the
//! time it waited its turn.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::remote;
use crate::rollout::verdict::Outcome;
use crate::rollout::Deployment;
use crate::transport::TransportError;

use super::ops::{Login, Shared};

/// Probe every host once, at most `concurrency` at once. `fresh` says, per host,
/// whether its probe must come over a new login.
pub async fn round(shared: Arc<Shared>, hosts: Vec<(Host, Login)>) -> Vec<(String, Outcome)> {
    let Some(d) = shared.plan.deployment().cloned() else {
        return Vec::new();
    };
    let limit = Arc::new(Semaphore::new(shared.plan.policy.concurrency.max(1)));
    let probes = hosts.into_iter().map(|(host, how)| {
        let (shared, limit, d) = (shared.clone(), limit.clone(), d.clone());
        async move {
            let _permit = limit.acquire().await;
            let o = probe_host(&shared, &d, &host, how).await;
            (host.name, o)
        }
    });
    join_all(probes).await
}

/// One probe of one host: a login (unless one is kept and may serve), then the probe
/// command, each within its own deadline.
async fn probe_host(shared: &Shared, d: &Deployment, host: &Host, how: Login) -> Outcome {
    let kept = match how {
        Login::Reuse => shared.transport.reuse(&host.name).await,
        Login::Fresh => None,
    };
    let conn = match kept {
        Some(c) => c,
        None => match shared
            .transport
            .connect(host, login_deadline(d.probe_timeout))
            .await
        {
            Ok(c) => {
                shared.proven(&host.name);
                c
            }
            Err(e) => return transport_outcome(&e),
        },
    };
    let cmd = remote::probe(
        &shared.plan.name,
        &shared.plan.run,
        &d.checks,
        d.probe_timeout,
        d.lease,
    );
    match conn.run_within(&cmd, d.probe_timeout).await {
        Ok(out) => match remote::parse_probe(&out.stdout, &d.checks) {
            Ok(report) => {
                shared.transport.keep(conn).await;
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
            // A stalled connection is useless for the next probe: closed in the background.
            tokio::spawn(conn.close());
            transport_outcome(&e)
        }
    }
}

/// The deadline for a login: the probe timeout, but never under 2 s.
pub fn login_deadline(probe_timeout: Duration) -> Duration {
    probe_timeout.max(Duration::from_secs(2))
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
