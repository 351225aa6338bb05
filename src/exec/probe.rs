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

use std::collections::{HashMap, HashSet};
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

use super::ops::{Login, Shared};

/// How a round probes (which sources, where each kernel log stood, a fresh login beside
/// the kept connection).
#[derive(Debug, Clone, Default)]
pub struct RoundOpts {
    /// Each host's kernel log cursor (none: the probe takes one).
    pub cursors: HashMap<String, String>,
    /// Hosts that also log in afresh beside a kept connection: a host can keep old
    /// sessions alive while new logins hang.
    pub fresh: HashSet<String>,
}

/// Probe every host once, at most `concurrency` at once; each host with the login its
/// `Login` says (a host's first probe after its install comes over a new one).
pub async fn round(
    shared: Arc<Shared>,
    hosts: Vec<(Host, Login)>,
    opts: RoundOpts,
) -> Vec<(String, Outcome)> {
    let Some(d) = shared.plan.deployment().cloned() else {
        return Vec::new();
    };
    let limit = Arc::new(Semaphore::new(shared.plan.policy.concurrency.max(1)));
    let opts = Arc::new(opts);
    let probes = hosts.into_iter().map(|(host, how)| {
        let (shared, limit, d, opts) = (shared.clone(), limit.clone(), d.clone(), opts.clone());
        async move {
            let _permit = limit.acquire().await;
            let o = probe_host(&shared, &d, &host, how, &opts).await;
            (host.name, o)
        }
    });
    join_all(probes).await
}

/// One probe of one host, and for a host in `opts.fresh` a fresh login beside the kept
/// connection: a host whose new logins hang (or are refused) while an old session still
/// answers is judged on the fresh login (which is then kept instead).
async fn probe_host(
    shared: &Shared,
    d: &Deployment,
    host: &Host,
    how: Login,
    opts: &RoundOpts,
) -> Outcome {
    let kept = match how {
        Login::Reuse => shared.transport.reuse(&host.name).await,
        Login::Fresh => None,
    };
    if !(opts.fresh.contains(&host.name) && kept.is_some()) {
        return probe_over(shared, d, host, opts, kept).await;
    }
    let (outcome, login) = tokio::join!(
        probe_over(shared, d, host, opts, kept),
        shared
            .transport
            .connect(host, login_deadline(d.probe_timeout))
    );
    match (outcome, login) {
        (o @ Outcome::Report(_), Ok(fresh)) => {
            shared.proven(&host.name);
            shared.transport.keep(fresh).await;
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

/// One probe over `kept` (or a new login, within its own deadline), then the probe
/// command, within `probe_timeout` from when it is under way: a slow login does not eat
/// into the time the host has to answer. A kept connection that broke (not one that
/// missed its deadline) says nothing of the host — its master may have given up on a
/// host that stopped answering — so a fresh login decides: a silent host is then
/// `hung`, one that refuses `unreachable`.
async fn probe_over(
    shared: &Shared,
    d: &Deployment,
    host: &Host,
    opts: &RoundOpts,
    mut kept: Option<crate::transport::Conn>,
) -> Outcome {
    loop {
        let was_kept = kept.is_some();
        let conn = match kept.take() {
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
                if was_kept && !e.is_deadline() {
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
        TransportError::ConnectTimeout {
            after, evidence, ..
        } => Outcome::Missed {
            what: format!("login ({evidence})"),
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
