//! The dispatcher: feeds a run's events to the state machine and carries out what it
//! orders. Every event is journaled in the store before the actions it leads to start,
//! so an action's intent is durable before the host is touched; host actions run
//! concurrently within the machine's limits; probe rounds run when it orders them; the
//! operator's stop request (a signal, or a request in the store, which it watches) is
//! an event like any other. Reads time only through its [`Clock`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinHandle, JoinSet};

use crate::report::{Event as Shown, Phase, Reporter};
use crate::rollout::probe_report::ProbeReport;
use crate::rollout::verdict::{Evidence, Health, Outcome, Verdict, Watch};
use crate::rollout::{
    freeze_of, step, Action, Event, HostResult, HostState, HostVerdict, Lost, Op, Record, RunKind,
    RunState, Sample, Seen, Stage, Status, StopRequest,
};

use crate::rollout::Plan;
use crate::store::{JournalWriter, Store, StoreError};

use super::clock::Clock;
use super::host::{Host, ProbeAsk};
use super::probe;
use super::stop::Stop;

/// A probe round's outcomes, by host.
type Outcomes = Vec<(String, Outcome)>;

/// A baseline's samples: the wave, its hosts (and controls), the other hosts of its
/// groups, and each round of the window.
type Baseline = (usize, Vec<String>, Vec<String>, Vec<Outcomes>);

/// The last verdict event sent for a host (sent again only when something changed).
type Sent = (Verdict, u32, Option<Lost>);

/// The store failed in the middle of a run (it refused or lost a record).
#[derive(Debug)]
pub struct Stopped {
    pub source: StoreError,
    /// Records were written: hosts may have been touched.
    pub touched: bool,
}

/// What the engine is wired to: its hosts, its journal and store, its clock, its stop.
pub struct Seams<'r> {
    /// The run's hosts: every host action and probe goes through them.
    pub hosts: Arc<dyn Host>,
    /// The run's journal: the engine is its one writer.
    pub journal: &'r mut dyn JournalWriter,
    /// Where the run is kept: watched for stop requests.
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Requested by a signal (the session's) or by the store's stop request (watched
    /// here); the engine handles both the same way.
    pub stop: Stop,
}

pub struct Engine<'r> {
    pub state: RunState,
    /// Records written so far.
    submitted: usize,
    journal: &'r mut dyn JournalWriter,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hosts: Arc<dyn Host>,
    /// What the run is (its first record's).
    plan: Plan,
    reporter: &'r Reporter,
    stop: Stop,
    stop_sent: bool,
    /// Every watched host's baseline and readings (health's side of the rounds).
    health: Watch,
    /// (host, signal) pairs already said to be not available.
    not_available: HashSet<(String, String)>,
    /// The wave whose bake was said to be held for `min_runs`.
    held: Option<usize>,
    sent: HashMap<String, Sent>,
    ops: JoinSet<HostResult>,
    running: HashMap<Id, (String, Op)>,
    baseline: Option<JoinHandle<Baseline>>,
    /// The probe round the machine ordered, in flight.
    round: Option<JoinHandle<(usize, Outcomes)>>,
    /// When the store is next asked for a freeze or a promote (while hosts are probed).
    next_poll: Option<tokio::time::Instant>,
    wake: Option<u64>,
}

/// What woke the dispatcher.
enum Woken {
    Stop,
    Op(Id, Result<HostResult, String>),
    Baseline(Result<Baseline, String>),
    Round(Result<(usize, Outcomes), String>),
    Poll,
    Tick,
}

impl<'r> Engine<'r> {
    pub fn new(
        state: RunState,
        plan: Plan,
        reporter: &'r Reporter,
        seams: Seams<'r>,
    ) -> Engine<'r> {
        let mut health = watch_of(&plan);
        // A resumed run goes on counting where the journal left its hosts' watch.
        health.restore(&state.watch);
        Engine {
            state,
            submitted: 0,
            journal: seams.journal,
            store: seams.store,
            clock: seams.clock,
            hosts: seams.hosts,
            plan,
            reporter,
            stop: seams.stop,
            stop_sent: false,
            health,
            not_available: HashSet::new(),
            held: None,
            sent: HashMap::new(),
            ops: JoinSet::new(),
            running: HashMap::new(),
            baseline: None,
            round: None,
            next_poll: None,
            wake: None,
        }
    }

    /// Run from `first` until the run ends and nothing is in flight. On a store error
    /// the run stops where it is, starting nothing more; `touched` says whether any
    /// record was written (else nothing was done on any host).
    pub async fn run(mut self, first: Event) -> (RunState, Result<(), Stopped>) {
        // A stop request in the store is this run's stop, as a first signal is.
        let watcher = {
            let (store, stop) = (self.store.clone(), self.stop.clone());
            let run = self.plan.run.clone();
            tokio::spawn(async move {
                let req = store.wait_stop(&run).await;
                stop.request(&req.by);
            })
        };
        let result = self.drive(first).await;
        watcher.abort();
        self.ops.abort_all();
        self.hosts.close().await;
        let touched = self.submitted > 0;
        (
            self.state,
            result.map_err(|source| Stopped { source, touched }),
        )
    }

    async fn drive(&mut self, first: Event) -> Result<(), StoreError> {
        self.submit(first).await?;
        loop {
            self.schedule_poll();
            let idle = self.ops.is_empty() && self.baseline.is_none() && self.round.is_none();
            if self.state.is_ended() && idle {
                return Ok(());
            }
            if idle && self.wake.is_none() && !self.state.is_ended() {
                // Nothing can happen any more: a decision is missing. Say so rather than hang.
                self.reporter.emit(Shown::Note {
                    message: format!(
                        "internal error: run stuck in {:?}; `wavectl status` shows the hosts",
                        self.state.status
                    ),
                });
                return Ok(());
            }
            let woken = self.wait().await;
            match woken {
                Woken::Stop => {
                    self.stop_sent = true;
                    let by = self.stop.by().unwrap_or_else(|| "stop".into());
                    self.submit(Event::Stop(StopRequest { by })).await?;
                }
                Woken::Op(id, result) => {
                    // Group commit: every result already in joins this one's write.
                    let mut events: Vec<Event> = self.op_event(id, result).into_iter().collect();
                    while let Some(j) = self.ops.try_join_next_with_id() {
                        let (id, r) = match j {
                            Ok((id, r)) => (id, Ok(r)),
                            Err(e) => (e.id(), Err(e.to_string())),
                        };
                        events.extend(self.op_event(id, r));
                    }
                    self.submit_all(events).await?;
                }
                Woken::Baseline(r) => {
                    self.baseline = None;
                    let (wave, hosts, group, outcomes) = r.unwrap_or_default();
                    let group = group_samples(&group, outcomes.last());
                    self.say_group(wave, &group);
                    self.take_baseline(&hosts, outcomes, wave);
                    let watch = self.health.changes(&self.state.watch);
                    self.submit(Event::BaselineDone { wave, group, watch })
                        .await?;
                }
                Woken::Round(r) => {
                    self.round = None;
                    // The round may end the bake: what it goes on to sees the store's
                    // freezes as they are now.
                    self.poll_holds().await?;
                    let (wave, outcomes) = r.unwrap_or_default();
                    let verdicts = self.judge(outcomes);
                    let watch = self.health.changes(&self.state.watch);
                    self.submit(Event::Round {
                        wave,
                        verdicts,
                        watch,
                    })
                    .await?;
                    self.say_held();
                }
                Woken::Poll => {
                    self.next_poll = None;
                    self.poll_holds().await?;
                }
                Woken::Tick => {
                    self.wake = None;
                    self.submit(Event::Tick).await?;
                }
            }
        }
    }

    /// Wait for the next thing to happen.
    async fn wait(&mut self) -> Woken {
        let Engine {
            stop,
            stop_sent,
            ops,
            baseline,
            round,
            next_poll,
            wake,
            clock,
            ..
        } = self;
        let poll_due = next_poll.map(|at| clock.sleep_until_instant(at));
        let stop_armed = !*stop_sent;
        let ops_armed = !ops.is_empty();
        let tick = wake.map(|w| clock.sleep_until(w));
        tokio::select! {
            biased;
            _ = stop.wait(), if stop_armed => Woken::Stop,
            Some(j) = ops.join_next_with_id(), if ops_armed => match j {
                Ok((id, r)) => Woken::Op(id, Ok(r)),
                Err(e) => Woken::Op(e.id(), Err(e.to_string())),
            },
            r = join_opt(baseline) => Woken::Baseline(r),
            r = join_opt(round) => Woken::Round(r),
            _ = sleep_opt(tick) => Woken::Tick,
            _ = sleep_opt(poll_due) => Woken::Poll,
        }
    }

    /// The `Result` event of a finished host action (shown as it is taken in).
    fn op_event(&mut self, id: Id, result: Result<HostResult, String>) -> Option<Event> {
        let (host, op) = self.running.remove(&id)?;
        let result = result.unwrap_or_else(|e| HostResult::Failed {
            verdict: Verdict::bad(
                Health::Degraded,
                Evidence::new("wavectl").raw(format!("internal error: {e}")),
            ),
            touched: op != Op::Settle,
        });
        if let Some(shown) = crate::report::transition::host_step(&self.state, &host, op, &result) {
            self.reporter.emit(shown);
        }
        Some(Event::Result { host, op, result })
    }

    /// Journal one event, fold it, carry out what it calls for.
    async fn submit(&mut self, event: Event) -> Result<(), StoreError> {
        self.submit_all(vec![event]).await
    }

    /// Journal events in one append (group commit: one write and one fsync, or one
    /// transaction), then fold each in order and carry out what it calls for: no action
    /// starts before the record that ordered it is durable.
    async fn submit_all(&mut self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let at = self.clock.now_ms();
        let recs: Vec<Record> = events.into_iter().map(|e| Record::new(at, e)).collect();
        self.journal.append(&recs).await?;
        self.submitted += recs.len();
        for rec in &recs {
            let before = self.state.status.clone();
            let actions = step(&mut self.state, rec);
            for shown in crate::report::transition::shown(&self.plan, &before, &self.state, rec) {
                self.reporter.emit(shown);
            }
            for a in actions {
                self.start(a, rec.at);
            }
        }
        self.reporter.state(&self.state);
        Ok(())
    }

    fn start(&mut self, action: Action, at: u64) {
        match action {
            Action::Host { host, op, fresh } => {
                let Some(h) = self.plan.host(&host).cloned() else {
                    return;
                };
                let hosts = self.hosts.clone();
                let handle = self
                    .ops
                    .spawn(async move { hosts.carry_out(&h, op, at, fresh).await });
                self.running.insert(handle.id(), (host, op));
            }
            Action::Baseline {
                wave,
                hosts,
                controls,
                group,
            } => {
                // Their logins are kept: the wave's deploy rides them. The other hosts
                // of the wave's groups are probed beside them (read-only: nothing of
                // this run is on them, so no lease is renewed there).
                let sampled: Vec<String> = hosts.iter().chain(controls.iter()).cloned().collect();
                let mut all = self.targets(sampled.iter(), |_| ProbeAsk::default());
                all.extend(
                    group
                        .iter()
                        .filter(|g| !sampled.contains(g))
                        .filter_map(|n| self.plan.member(n).cloned())
                        .map(|h| (h, ProbeAsk::default())),
                );
                let (on, clock) = (self.hosts.clone(), self.clock.clone());
                let concurrency = self.plan.policy.concurrency;
                // A short window, not one sample: `baseline_samples` rounds over one
                // connection per host, at most 5 s apart (one, when only the groups
                // are sampled).
                let (samples, gap) = match self.plan.deployment() {
                    Some(d) if !sampled.is_empty() => (
                        d.thresholds.baseline_samples.max(1),
                        d.interval.min(Duration::from_secs(5)),
                    ),
                    _ => (1, Duration::ZERO),
                };
                self.baseline = Some(tokio::spawn(async move {
                    let mut out = Vec::new();
                    for i in 0..samples {
                        if i > 0 {
                            clock.sleep(gap).await;
                        }
                        out.push(probe::round(on.clone(), all.clone(), concurrency).await);
                    }
                    (wave, sampled, group, out)
                }));
            }
            Action::Probe {
                wave,
                hosts,
                controls,
                owed,
                fresh,
            } => self.start_round(wave, hosts, controls, (&owed, &fresh)),
            Action::EndProbe => {
                // The bake's connections stay kept: later waves' probes and the
                // confirmation ride them.
                if let Some(r) = self.round.take() {
                    r.abort();
                }
            }
            Action::WakeAt(t) => self.wake = Some(self.wake.map_or(t, |w| w.min(t))),
        }
    }

    /// The plan's hosts of these names, each with what its probe is asked.
    fn targets<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
        ask: impl Fn(&str) -> ProbeAsk,
    ) -> Vec<(crate::inventory::Host, ProbeAsk)> {
        names
            .filter_map(|n| self.plan.host(n).cloned())
            .map(|h| {
                let a = ask(&h.name);
                (h, a)
            })
            .collect()
    }

    /// Start the probe round the machine ordered.
    fn start_round(
        &mut self,
        wave: usize,
        hosts: Vec<String>,
        controls: Vec<String>,
        (owed, fresh): (&[String], &[String]),
    ) {
        let names: Vec<String> = hosts.into_iter().chain(controls).collect();
        let all = self.targets(names.iter(), |h| ProbeAsk {
            cursor: self.health.cursor(h),
            new_login: owed.iter().any(|f| f == h),
            fresh: fresh.iter().any(|f| f == h),
        });
        let (on, concurrency) = (self.hosts.clone(), self.plan.policy.concurrency);
        if let Some(r) = self.round.take() {
            r.abort();
        }
        self.round = Some(tokio::spawn(async move {
            (wave, probe::round(on, all, concurrency).await)
        }));
    }

    /// Keep the baseline of `sampled` (the wave's hosts and controls).
    fn take_baseline(&mut self, sampled: &[String], samples: Vec<Outcomes>, wave: usize) {
        let mut reports: HashMap<String, Vec<ProbeReport>> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for round in samples {
            for (host, o) in round {
                if !sampled.contains(&host) {
                    continue;
                }
                if !names.contains(&host) {
                    names.push(host.clone());
                }
                if let Outcome::Report(r) = o {
                    reports.entry(host).or_default().push(*r);
                }
            }
        }
        for host in names {
            let got = reports.remove(&host).unwrap_or_default();
            let ok = !got.is_empty();
            // The controls' baselines too: they are compared over the same window.
            self.health.set_baseline(&host, got);
            if self.state.host(&host).is_none_or(|h| h.wave != wave) {
                continue;
            }
            self.reporter.emit(Shown::HostStep {
                wave,
                phase: Phase::Baseline,
                host,
                ok,
                detail: String::new(),
            });
        }
    }

    /// Turn a round's outcomes into verdicts (only where something changed).
    fn judge(&mut self, outcomes: Outcomes) -> Vec<HostVerdict> {
        let run = self.plan.run.clone();
        let judged: Vec<String> = outcomes
            .iter()
            .map(|(h, _)| h)
            .filter(|h| {
                self.state
                    .host(h)
                    .is_some_and(|h| h.state == HostState::Installed)
            })
            .filter(|h| !self.state.controls.contains(h))
            .cloned()
            .collect();
        for h in &judged {
            // It answered its install's login.
            self.health.answered(h);
        }
        let verdicts = self.health.round(&outcomes, &judged, &self.state.controls);
        let mut by_host: HashMap<String, Verdict> = verdicts.into_iter().collect();
        let mut events = Vec::new();
        for (host, outcome) in outcomes {
            let Some(verdict) = by_host.remove(&host) else {
                continue;
            };
            self.say_not_available(&host, &verdict);
            let prev_runs = self.sent.get(&host).map_or(0, |s| s.1);
            let (runs, lost) = match &outcome {
                Outcome::Report(r) => (
                    u32::try_from(r.runs.len()).unwrap_or(u32::MAX),
                    crate::rollout::found::lost(r, &run),
                ),
                _ => (prev_runs, None),
            };
            let now = (verdict.clone(), runs, lost.clone());
            if self.sent.get(&host) != Some(&now) {
                self.sent.insert(host.clone(), now);
                events.push(HostVerdict {
                    host,
                    verdict,
                    runs,
                    lost,
                });
            }
        }
        events
    }

    /// Say once per wave that its bake is over but held: hosts short of `min_runs`
    /// (their script has not run as often yet), until when, and what then.
    fn say_held(&mut self) {
        let Status::Running {
            stage: Stage::Bake(b),
        } = &self.state.status
        else {
            return;
        };
        let min_runs = self.plan.policy.min_runs;
        if self.state.now < b.until || self.held == Some(b.wave) {
            return;
        }
        let short: Vec<String> = self
            .state
            .hosts
            .iter()
            .filter(|h| h.wave == b.wave && h.state == HostState::Installed && h.runs < min_runs)
            .map(|h| format!("{} ({} of {min_runs})", h.host, h.runs))
            .collect();
        if short.is_empty() {
            return;
        }
        self.held = Some(b.wave);
        self.reporter.emit(Shown::Note {
            message: format!(
                "wave {}: the bake is held: the script has not run min_runs = {min_runs} times on {}; waiting until {} at most, then they count as degraded",
                b.wave,
                short.join(", "),
                crate::rollout::step::utc(b.limit / 1000)
            ),
        });
    }

    /// Say what the other hosts of the wave's groups showed before it.
    fn say_group(&self, wave: usize, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let label = self.plan.groups.as_ref().map_or("", |g| g.label.as_str());
        let each: Vec<String> = samples
            .iter()
            .map(|s| {
                let group = self
                    .plan
                    .member(&s.host)
                    .and_then(|h| h.labels.get(label))
                    .map_or("?", String::as_str);
                let seen = match &s.seen {
                    Seen::Answered { failing } if failing.is_empty() => "healthy".to_string(),
                    Seen::Answered { failing } => format!("unhealthy ({})", failing.join("; ")),
                    Seen::NoAnswer { reason } => format!("unreachable ({reason})"),
                };
                format!("{} ({label}={group}) {seen}", s.host)
            })
            .collect();
        self.reporter.emit(Shown::Note {
            message: format!(
                "wave {wave}: its groups' other hosts, sampled before it: {}",
                each.join(", ")
            ),
        });
    }

    /// Say once per host and signal that its source is not available there.
    fn say_not_available(&mut self, host: &str, v: &Verdict) {
        for e in &v.not_available {
            if self
                .not_available
                .insert((host.to_string(), e.signal.clone()))
            {
                self.reporter.emit(Shown::Note {
                    message: format!(
                        "{host}: {}: {} (not judged there)",
                        e.signal,
                        e.raw.as_deref().unwrap_or("not available")
                    ),
                });
            }
        }
    }
}

impl Engine<'_> {
    /// Look in the store for what a waiting (or soon waiting) apply waits for: a freeze of
    /// its rollout, appearing or lifted, and a promote of the gate it waits at. What is
    /// new is journaled like any event; a store that does not answer is asked next time.
    async fn poll_holds(&mut self) -> Result<(), StoreError> {
        if self.state.kind() != Some(RunKind::Apply)
            || !matches!(self.state.status, Status::Running { .. })
        {
            return Ok(());
        }
        let mut events = Vec::new();
        if let Ok(all) = self.store.freezes().await {
            let now = self.clock.now_ms();
            let f = freeze_of(&all, &self.plan.name, now).cloned();
            if f != self.state.frozen {
                events.push(Event::Freeze { freeze: f });
            }
        }
        if let Some((wave, ..)) = self.state.gate() {
            if let Ok(Some(p)) = self.store.promotion(&self.plan.run).await {
                if p.wave == wave {
                    events.push(Event::Promote(p));
                }
            }
        }
        self.submit_all(events).await
    }

    /// Ask the store again every [`HOLD_POLL`] while hosts are probed (a bake, a gate, a
    /// freeze): the wave boundaries come at the end of those.
    fn schedule_poll(&mut self) {
        if self.state.probing().is_some() {
            if self.next_poll.is_none() {
                self.next_poll = Some(self.clock.instant() + HOLD_POLL);
            }
        } else {
            self.next_poll = None;
        }
    }
}

/// How often a probing run asks the store for a freeze or a promote.
const HOLD_POLL: Duration = Duration::from_secs(1);

/// The health watch a run's deployment asks for.
fn watch_of(plan: &Plan) -> Watch {
    match plan.deployment() {
        Some(d) => Watch::new(&d.builtins, &d.thresholds),
        None => Watch::new(&[], &Default::default()),
    }
}

/// What each host of a wave's groups showed in the baseline's last round: whether it
/// answered, and which of the spec's health checks failed there.
fn group_samples(group: &[String], last: Option<&Outcomes>) -> Vec<Sample> {
    group
        .iter()
        .map(|host| {
            let seen = match last.and_then(|r| r.iter().find(|(h, _)| h == host)) {
                None => Seen::NoAnswer {
                    reason: "not probed".into(),
                },
                Some((_, Outcome::Report(r))) => Seen::Answered {
                    failing: r
                        .checks
                        .iter()
                        .filter(|c| c.exit != 0 || !c.reported)
                        .map(|c| match c.output.trim() {
                            "" => format!("check {}: exit {}", c.name, c.exit),
                            out => format!("check {}: exit {}: {out}", c.name, c.exit),
                        })
                        .collect(),
                },
                Some((_, Outcome::Missed { what, after })) => Seen::NoAnswer {
                    reason: format!("{what} missed its deadline of {after:?}"),
                },
                Some((_, Outcome::Failed { message })) => Seen::NoAnswer {
                    reason: message.clone(),
                },
            };
            Sample {
                host: host.clone(),
                seen,
            }
        })
        .collect()
}

/// Await a task if there is one; never resolves otherwise.
async fn join_opt<T: Send + 'static>(h: &mut Option<JoinHandle<T>>) -> Result<T, String> {
    match h {
        Some(h) => h.await.map_err(|e| e.to_string()),
        None => std::future::pending().await,
    }
}

async fn sleep_opt(sleep: Option<tokio::time::Sleep>) {
    match sleep {
        Some(s) => s.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
