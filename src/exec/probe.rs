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
use crate::rollout::signals;
use crate::rollout::verdict::Outcome;
use crate::rollout::Deployment;
use crate::transport::TransportError;

use super::host::ProbeAsk;
use super::ops::Ssh;

/// Probe every host once, each with what its probe is asked, at most `concurrency` at
/// once.
pub async fn round(
    hosts: Arc<dyn super::host::Host>,
    targets: Vec<(Host, ProbeAsk)>,
    concurrency: usize,
) -> Vec<(String, Outcome)> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let probes = targets.into_iter().map(|(host, ask)| {
        let (hosts, limit) = (hosts.clone(), limit.clone());
        async move {
            let _permit = limit.acquire().await;
            let o = hosts.probe(&host, &ask).await;
            (host.name, o)
        }
    });
    join_all(probes).await
}

/// One probe of one host over SSH: over the connection the transport keeps for it, or a
/// new login (with `ask.new_login`, the machine's call for a host that owes one since its
/// install: `Action::Probe::owed`); with `ask.fresh` (`Action::Probe::fresh`), a fresh
/// login beside the kept connection too: a host whose new logins hang (or are refused)
/// while an old session still answers is judged on the fresh login (which is then kept
/// instead).
pub(super) async fn probe_host(shared: &Ssh, host: &Host, ask: &ProbeAsk) -> Outcome {
    let Some(d) = shared.plan.deployment() else {
        return Outcome::Failed {
            message: "probe ordered in a run that installs nothing".into(),
        };
    };
    let kept = if ask.new_login {
        None
    } else {
        shared.transport.reuse(&host.name).await
    };
    if !(ask.fresh && kept.is_some()) {
        return probe_over(shared, d, host, ask, kept).await;
    }
    let (outcome, login) = tokio::join!(
        probe_over(shared, d, host, ask, kept),
        shared
            .transport
            .connect(host, login_deadline(d.probe_timeout))
    );
    match (outcome, login) {
        (o @ Outcome::Report(_), Ok(fresh)) => {
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
    shared: &Ssh,
    d: &Deployment,
    host: &Host,
    ask: &ProbeAsk,
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
                Ok(c) => c,
                Err(e) => return transport_outcome(&e),
            },
        };
        let left = d.probe_timeout;
        let ask = remote::host_probe::Ask {
            sources: signals::sources(&d.builtins),
            kernel_cursor: ask.cursor.clone(),
        };
        let cmd = remote::host_probe::probe_with(
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
