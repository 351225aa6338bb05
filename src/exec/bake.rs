//! Bake: probe every deployed host every `interval` for `bake` (and until each host of
//! the wave ran the script `min_runs` times), judging each probe as it comes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::{Mutex, Semaphore};

use crate::inventory::Host;
use crate::journal::{JournalError, Record};
use crate::remote;
use crate::report::{Event, Phase};
use crate::rollout::probe::ProbeReport;
use crate::rollout::verdict::{Evidence, Health, HostWatch, Outcome, Verdict};
use crate::spec::Rollout;
use crate::transport::{Conn, TransportError};

use super::{login_deadline, Ctx};

/// What the bake found.
pub enum BakeEnd {
    /// The bake ran its course.
    Passed,
    /// Too many unhealthy hosts: stop now.
    Failed,
    /// The operator asked to stop.
    Stopped,
}

/// The hosts' watches and the first bad verdict of each host, over the whole run.
pub struct Judge {
    pub watches: HashMap<String, HostWatch>,
    /// host → its first bad verdict in this run (sticky).
    pub unhealthy: BTreeMap<String, Verdict>,
    last: HashMap<String, Verdict>,
    /// Runs seen per host in its last report.
    runs: HashMap<String, usize>,
}

impl Judge {
    pub fn new() -> Judge {
        Judge {
            watches: HashMap::new(),
            unhealthy: BTreeMap::new(),
            last: HashMap::new(),
            runs: HashMap::new(),
        }
    }

    /// Record a verdict: emit and journal it when it changed; remember bad ones.
    pub fn note(
        &mut self,
        ctx: &Ctx<'_>,
        wave: usize,
        host: &str,
        v: Verdict,
    ) -> Result<(), JournalError> {
        if self.last.get(host) != Some(&v) {
            ctx.record(Record::Verdict {
                host: host.to_string(),
                wave,
                verdict: v.clone(),
            })?;
            ctx.emit(Event::Verdict {
                wave,
                host: host.to_string(),
                verdict: v.clone(),
            });
            self.last.insert(host.to_string(), v.clone());
        }
        if v.health.is_bad() {
            self.unhealthy.entry(host.to_string()).or_insert(v);
        }
        Ok(())
    }

    pub fn too_many(&self, max_unhealthy: usize) -> bool {
        self.unhealthy.len() > max_unhealthy
    }
}

/// Probe connections of one phase, one per host, reopened after a failure.
type Conns = Arc<Mutex<HashMap<String, Conn>>>;

/// Bake wave `wave` while probing all of `deployed`.
pub async fn bake(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    wave: usize,
    wave_hosts: &[String],
    deployed: &[Host],
    controls: &[Host],
    judge: &mut Judge,
) -> Result<BakeEnd, JournalError> {
    let h = &rollout.health;
    let bake = rollout.waves.bake;
    // Bake also lasts until every host of the wave ran min_runs times, but not forever.
    let limit = (bake * 3).max(bake + Duration::from_secs(900));
    ctx.emit(Event::PhaseStarted {
        wave,
        phase: Phase::Bake,
        hosts: deployed.len(),
        seconds: Some(bake.as_secs()),
    });
    let conns: Conns = Arc::new(Mutex::new(HashMap::new()));
    let started = Instant::now();
    let mut round = 0u32;
    let end = loop {
        if ctx.stopping() {
            break BakeEnd::Stopped;
        }
        round += 1;
        let round_start = Instant::now();
        let control_reports = probe_controls(ctx, rollout, controls, &conns).await;
        let results = probe_round(ctx, rollout, deployed, &conns).await;
        for (host, outcome) in results {
            if let Outcome::Report(r) = &outcome {
                judge.runs.insert(host.clone(), r.runs.len());
            }
            let watch = judge
                .watches
                .entry(host.clone())
                .or_insert_with(|| HostWatch::new(&h.builtin));
            let v = watch.observe(&outcome, &control_reports);
            judge.note(ctx, wave, &host, v)?;
        }
        let elapsed = started.elapsed();
        ctx.emit(Event::BakeTick {
            wave,
            elapsed: elapsed.as_secs().min(bake.as_secs()),
            bake: bake.as_secs(),
            round,
        });
        if judge.too_many(rollout.policy.max_unhealthy) {
            break BakeEnd::Failed;
        }
        let short: Vec<&String> = wave_hosts
            .iter()
            .filter(|n| {
                (judge.runs.get(*n).copied().unwrap_or(0) as u64) < rollout.waves.min_runs as u64
            })
            .collect();
        if elapsed >= bake && short.is_empty() {
            break BakeEnd::Passed;
        }
        if elapsed >= limit {
            for host in short {
                let n = judge.runs.get(host).copied().unwrap_or(0);
                let ev = Evidence::new("min_runs").change(
                    0,
                    n,
                    format!(
                        ">= {} runs within {}",
                        rollout.waves.min_runs,
                        humantime::format_duration(limit)
                    ),
                );
                judge.note(ctx, wave, host, Verdict::bad(Health::Degraded, ev))?;
            }
            break if judge.too_many(rollout.policy.max_unhealthy) {
                BakeEnd::Failed
            } else {
                BakeEnd::Passed
            };
        }
        let next = round_start + h.interval;
        tokio::time::sleep_until(next.into()).await;
    };
    close_all(&conns).await;
    ctx.emit(Event::PhaseDone {
        wave,
        phase: Phase::Bake,
    });
    Ok(end)
}

/// Probe every host once, concurrently (at most `concurrency` at once).
async fn probe_round(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    hosts: &[Host],
    conns: &Conns,
) -> Vec<(String, Outcome)> {
    let limit = Arc::new(Semaphore::new(rollout.waves.concurrency.max(1)));
    let futures = hosts.iter().map(|host| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            (
                host.name.clone(),
                probe_host(ctx, rollout, host, conns).await,
            )
        }
    });
    join_all(futures).await
}

/// Read-only probes of untouched control hosts, for the continuous signals.
async fn probe_controls(
    ctx: &Ctx<'_>,
    rollout: &Rollout,
    controls: &[Host],
    conns: &Conns,
) -> Vec<ProbeReport> {
    if controls.is_empty() {
        return Vec::new();
    }
    probe_round(ctx, rollout, controls, conns)
        .await
        .into_iter()
        .filter_map(|(_, o)| match o {
            Outcome::Report(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// One probe of one host: login (if not connected) and the probe command, all within
/// `probe_timeout`.
pub async fn probe_host(ctx: &Ctx<'_>, rollout: &Rollout, host: &Host, conns: &Conns) -> Outcome {
    let h = &rollout.health;
    let started = Instant::now();
    let existing = conns.lock().await.remove(&host.name);
    let conn = match existing {
        Some(c) => c,
        None => match ctx
            .transport
            .connect(host, login_deadline(h.probe_timeout))
            .await
        {
            Ok(c) => c,
            Err(e) => return transport_outcome(&e),
        },
    };
    let left = h
        .probe_timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(500));
    let cmd = remote::probe(&rollout.name, "-", &h.checks, left, Duration::ZERO); // TODO(engine)
    match conn.run_within(&cmd, left).await {
        Ok(out) => match remote::parse_probe(&out.stdout, &h.checks) {
            Ok(report) => {
                conns.lock().await.insert(host.name.clone(), conn);
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

async fn close_all(conns: &Conns) {
    let all: Vec<Conn> = conns.lock().await.drain().map(|(_, c)| c).collect();
    join_all(all.into_iter().map(|c| c.close())).await;
}
