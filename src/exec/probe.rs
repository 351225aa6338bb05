//! Probing hosts: before a wave (baseline) and every interval of a bake, one command per
//! host that reads every built-in signal, runs the custom checks and renews the lease,
//! over a connection kept for the phase. Talks to hosts; judging is `rollout::verdict`'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::remote;
use crate::rollout::signals;
use crate::rollout::verdict::Outcome;
use crate::rollout::Deployment;
use crate::transport::TransportError;

use super::ops::Shared;
use super::pool::Pool;

/// How a round probes (health's side: which sources, where each kernel log stood, a
/// fresh login or the pooled connection).
#[derive(Debug, Clone, Default)]
pub struct RoundOpts {
    /// Each host's kernel log cursor (none: the probe takes one).
    pub cursors: HashMap<String, String>,
    /// Also log in afresh beside the pooled connection: a host can keep old sessions
    /// alive while new logins hang.
    pub fresh: bool,
}

/// Probe every host once, at most `concurrency` at once.
pub async fn round(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    hosts: Vec<Host>,
    opts: RoundOpts,
) -> Vec<(String, Outcome)> {
    let Some(d) = shared.plan.deployment().cloned() else {
        return Vec::new();
    };
    let limit = Arc::new(Semaphore::new(shared.plan.policy.concurrency.max(1)));
    let opts = Arc::new(opts);
    let probes = hosts.into_iter().map(|host| {
        let (shared, pool, limit, d) = (shared.clone(), pool.clone(), limit.clone(), d.clone());
        let opts = opts.clone();
        async move {
            let _permit = limit.acquire().await;
            let o = probe_host(&shared, &pool, &d, &host, &opts).await;
            (host.name, o)
        }
    });
    join_all(probes).await
}

/// One probe of one host, and with `opts.fresh` a fresh login beside the pooled
/// connection: a host whose new logins hang (or are refused) while an old session still
/// answers is judged on the fresh login (which then replaces the pooled connection).
async fn probe_host(
    shared: &Shared,
    pool: &Pool,
    d: &Deployment,
    host: &Host,
    opts: &RoundOpts,
) -> Outcome {
    let pooled = pool.take(&host.name);
    if !(opts.fresh && pooled.is_some()) {
        return probe_over(shared, pool, d, host, opts, pooled).await;
    }
    let (outcome, login) = tokio::join!(
        probe_over(shared, pool, d, host, opts, pooled),
        shared
            .transport
            .connect(host, login_deadline(d.probe_timeout))
    );
    match (outcome, login) {
        (o @ Outcome::Report(_), Ok(fresh)) => {
            pool.put(&host.name, fresh);
            o
        }
        (Outcome::Report(_), Err(e)) => match transport_outcome(&e) {
            Outcome::Missed { after, .. } => Outcome::Missed {
                what: "a fresh login (the connection kept from before still answers)".into(),
                after,
            },
            Outcome::Failed { message } => Outcome::Failed {
                message: format!(
                    "a fresh login failed (the connection kept from before still answers): {message}"
                ),
            },
            o => o,
        },
        (o, login) => {
            if let Ok(fresh) = login {
                tokio::spawn(fresh.close());
            }
            o
        }
    }
}

/// One probe of one host: a login (unless `pooled` is one), within its own deadline,
/// then the probe command, within `probe_timeout` from when it starts: a slow login (a
/// busy controller, a busy host) does not eat into the time the host has to answer. A kept connection that broke (not one that missed
/// its deadline) says nothing of the host — its master may have given up on a host that
/// stopped answering — so a fresh login decides: a silent host is then `hung`, one that
/// refuses `unreachable`.
async fn probe_over(
    shared: &Shared,
    pool: &Pool,
    d: &Deployment,
    host: &Host,
    opts: &RoundOpts,
    mut pooled: Option<crate::transport::Conn>,
) -> Outcome {
    loop {
        let kept = pooled.is_some();
        let conn = match pooled.take() {
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
        // The login had its own deadline: the host gets the whole probe_timeout to answer.
        let left = d.probe_timeout;
        let ask = remote::probe::Ask {
            sources: signals::sources(&d.builtins),
            kernel_cursor: opts.cursors.get(&host.name).cloned(),
        };
        let cmd = remote::probe::probe_with(
            &shared.plan.name,
            &shared.plan.run,
            &d.checks,
            left,
            d.lease,
            &ask,
        );
        // The remote `timeout` ends the probe at `left`; its answer needs a moment to come back.
        return match conn.run_within(&cmd, left + Duration::from_secs(1)).await {
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
                if kept && !e.is_deadline() {
                    continue;
                }
                transport_outcome(&e)
            }
        };
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
