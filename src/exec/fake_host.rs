//! Fake hosts for engine tests: an in-memory fleet behind the [`Host`] seam, each host
//! scripted by a test ([`Behaviour`]: healthy, failing health, loaded, hanging once the script
//! runs, unreachable, unreachable for its first calls) on the test's [`Clock`]. A host
//! keeps what a real one would: the run's install (probation with a lease, or
//! confirmed), its runs, and — when its lease runs out — a revert by its own guard.
//! Every action takes `work` on the clock; a host that does not answer makes its caller
//! wait out the deadline a real one would (login, probe), then says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::inventory;
use crate::rollout::probe_report::{ProbeReport, Reverted, RunRecord};
use crate::rollout::verdict::{Evidence, Health, Outcome, Verdict};
use crate::rollout::{Finding, HostResult, Plan, Target};
use crate::store::BoxFuture;

use super::clock::Clock;
use super::host::{Host, ProbeAsk};
use super::probe::login_deadline;

/// How a fake host behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Healthy,
    /// Answers, but every run of the script is killed by its timeout (a critical event
    /// in its runs log).
    FailingHealth,
    /// Hangs once the script has run on it: from its install on, no login or command
    /// answers (each misses its deadline).
    HangsOnRun,
    /// Refuses every connection.
    Unreachable,
    /// Refuses its first `n` calls, then answers (healthy).
    UnreachableFor(u32),
    /// Answers, but once it holds this run's install its load per CPU stays at 4 (out
    /// of line at every probe); before, at 0.1 as on every other host.
    LoadedOnceInstalled,
}

/// This run's install on a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub run: String,
    pub confirmed: bool,
    /// Unix ms; in probation only.
    pub lease_until: u64,
}

/// One fake host.
#[derive(Debug, Clone)]
pub struct Side {
    pub behaviour: Behaviour,
    /// What it holds of wavectl's (this run's install, or another run's).
    pub holds: Option<Install>,
    /// Its guard reverted this run (its lease ran out).
    pub reverted: Option<Reverted>,
    /// It hangs (the script ran on a `HangsOnRun` host).
    pub hung: bool,
    pub runs: Vec<RunRecord>,
    /// Every call, with the clock's time (Unix ms) when it came.
    pub calls: Vec<(&'static str, u64)>,
}

/// The fleet of one run.
#[derive(Clone)]
pub struct FakeHosts {
    plan: Plan,
    clock: Arc<dyn Clock>,
    /// How long an action (or a probe) takes on a host that answers.
    work: Duration,
    sides: Arc<Mutex<BTreeMap<String, Side>>>,
}

impl FakeHosts {
    /// Every host of `plan` (and of its targets' groups) healthy and holding nothing.
    pub fn new(plan: &Plan, clock: Arc<dyn Clock>) -> FakeHosts {
        // The targets, and the hosts of their groups outside the rollout.
        let others = plan.groups.iter().flat_map(|g| g.others.iter());
        let sides = plan
            .hosts
            .iter()
            .chain(others)
            .map(|h| {
                let side = Side {
                    behaviour: Behaviour::Healthy,
                    holds: None,
                    reverted: None,
                    hung: false,
                    runs: Vec::new(),
                    calls: Vec::new(),
                };
                (h.name.clone(), side)
            })
            .collect();
        FakeHosts {
            plan: plan.clone(),
            clock,
            work: Duration::from_millis(300),
            sides: Arc::new(Mutex::new(sides)),
        }
    }

    /// The same hosts, seen by another run (or another controller's clock).
    pub fn for_run(&self, plan: &Plan, clock: Arc<dyn Clock>) -> FakeHosts {
        FakeHosts {
            plan: plan.clone(),
            clock,
            work: self.work,
            sides: self.sides.clone(),
        }
    }

    pub fn behave(&self, host: &str, b: Behaviour) -> &Self {
        self.sides()
            .get_mut(host)
            .expect("a host of the plan")
            .behaviour = b;
        self
    }

    /// The host holds an install of `run` (confirmed), as one from before would.
    pub fn holding(&self, host: &str, run: &str) -> &Self {
        self.sides()
            .get_mut(host)
            .expect("a host of the plan")
            .holds = Some(Install {
            run: run.into(),
            confirmed: true,
            lease_until: 0,
        });
        self
    }

    fn sides(&self) -> MutexGuard<'_, BTreeMap<String, Side>> {
        self.sides.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every host as it is now (leases that ran out reverted by their guards).
    pub fn snapshot(&self) -> BTreeMap<String, Side> {
        let now = self.clock.now_ms();
        let mut sides = self.sides();
        for side in sides.values_mut() {
            guard(side, now);
        }
        sides.clone()
    }

    /// The hosts that hold an install of wavectl's, by name.
    pub fn holders(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|(_, s)| s.holds.is_some())
            .map(|(h, _)| h)
            .collect()
    }

    /// The calls of one kind to `host`, with their times (Unix ms).
    pub fn calls(&self, host: &str, what: &str) -> Vec<u64> {
        self.sides()[host]
            .calls
            .iter()
            .filter(|c| c.0 == what)
            .map(|c| c.1)
            .collect()
    }

    fn lease_ms(&self) -> u64 {
        self.plan.deployment().map_or(0, |d| millis(d.lease))
    }

    /// One call to `host`: recorded, then refused, left unanswered until its deadline, or
    /// done after `work` by `act` on the host as it is then.
    async fn call<T>(
        &self,
        host: &str,
        what: &'static str,
        no_answer: impl FnOnce(Answer) -> T,
        act: impl FnOnce(&mut Side, u64) -> T,
    ) -> T {
        let answer = {
            let now = self.clock.now_ms();
            let mut sides = self.sides();
            let side = sides.get_mut(host).expect("a host of the plan");
            guard(side, now);
            side.calls.push((what, now));
            let tries = u32::try_from(side.calls.len()).unwrap_or(u32::MAX);
            match side.behaviour {
                Behaviour::Unreachable => Answer::Refused,
                Behaviour::UnreachableFor(n) if tries <= n => Answer::Refused,
                _ if side.hung => Answer::Silent,
                _ => Answer::Yes,
            }
        };
        match answer {
            Answer::Refused => {
                // A refusal comes back as late as an answer would (the engine's timing is
                // the same either way).
                self.clock.sleep(self.work).await;
                no_answer(Answer::Refused)
            }
            Answer::Silent => {
                self.clock.sleep(self.deadline()).await;
                no_answer(Answer::Silent)
            }
            Answer::Yes => {
                self.clock.sleep(self.work).await;
                let now = self.clock.now_ms();
                let mut sides = self.sides();
                let side = sides.get_mut(host).expect("a host of the plan");
                guard(side, now);
                act(side, now)
            }
        }
    }

    /// How long a caller waits for a host that does not answer.
    fn deadline(&self) -> Duration {
        match self.plan.deployment() {
            Some(d) => login_deadline(d.probe_timeout),
            None => self.plan.policy.login_timeout,
        }
    }

    fn failed(&self, a: Answer) -> HostResult {
        let (health, raw) = match a {
            Answer::Refused => (
                Health::Unreachable,
                "connect: Connection refused".to_string(),
            ),
            _ => (
                Health::Hung,
                format!("no answer within {}s", self.deadline().as_secs()),
            ),
        };
        HostResult::Failed {
            verdict: Verdict::bad(health, Evidence::new("ssh").raw(raw)),
            touched: false,
        }
    }

    fn finding(&self, side: &Side) -> Finding {
        let run = &self.plan.run;
        if let Some(r) = side.reverted.as_ref().filter(|r| &r.run_id == run) {
            return Finding::Reverted {
                lease_until: r.lease_until,
                at: r.at,
                clean: r.clean,
            };
        }
        match &side.holds {
            Some(i) if &i.run == run => Finding::Ours {
                confirmed: i.confirmed,
                runs: u32::try_from(side.runs.len()).unwrap_or(u32::MAX),
                running: false,
            },
            other => Finding::Absent {
                other: other.as_ref().map(|i| i.run.clone()),
            },
        }
    }
}

/// How a host meets a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Connection refused.
    Refused,
    /// Nothing comes back: the caller's deadline ends it.
    Silent,
}

/// The host's guard: a probation install whose lease ran out is reverted (the guard
/// runs every minute: it acts at the first whole minute after the lease's end).
fn guard(side: &mut Side, now: u64) {
    let Some(i) = &side.holds else { return };
    if i.confirmed || i.lease_until == 0 {
        return;
    }
    let at = (i.lease_until / 60_000 + 1) * 60_000;
    if now < at {
        return;
    }
    side.reverted = Some(Reverted {
        run_id: i.run.clone(),
        lease_until: i.lease_until / 1000,
        at: at / 1000,
        clean: true,
    });
    side.holds = None;
}

fn run_record(side: &Side, now: u64) -> RunRecord {
    let (exit, took) = match side.behaviour {
        Behaviour::FailingHealth => (124, 10),
        _ => (0, 1),
    };
    let start = now / 1000;
    RunRecord {
        start,
        end: start + took,
        exit,
        stderr: None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Host for FakeHosts {
    fn install<'a>(&'a self, host: &'a inventory::Host, _at: u64) -> BoxFuture<'a, HostResult> {
        Box::pin(async move {
            let Some(d) = self.plan.deployment() else {
                panic!("install ordered in a run that installs nothing");
            };
            let (run, lease, start) = (self.plan.run.clone(), self.lease_ms(), d.run_on_install);
            self.call(
                &host.name,
                "install",
                |a| self.failed(a),
                |side, now| {
                    side.holds = Some(Install {
                        run,
                        confirmed: false,
                        lease_until: now + lease,
                    });
                    if start {
                        let r = run_record(side, now);
                        side.runs.push(r);
                        side.hung = side.behaviour == Behaviour::HangsOnRun;
                    }
                    HostResult::Installed {
                        backup: false,
                        prev: None,
                        started: start,
                    }
                },
            )
            .await
        })
    }

    fn start_run<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult> {
        Box::pin(self.call(
            &host.name,
            "start run",
            |a| self.failed(a),
            |side, now| {
                let r = run_record(side, now);
                side.runs.push(r);
                side.hung = side.behaviour == Behaviour::HangsOnRun;
                HostResult::Started
            },
        ))
    }

    fn confirm<'a>(&'a self, host: &'a inventory::Host, _fresh: bool) -> BoxFuture<'a, HostResult> {
        let run = self.plan.run.clone();
        Box::pin(self.call(
            &host.name,
            "confirm",
            |a| self.failed(a),
            move |side, _| match &mut side.holds {
                Some(i) if i.run == run => {
                    i.confirmed = true;
                    i.lease_until = 0;
                    HostResult::Confirmed
                }
                _ => match self.finding(side) {
                    f @ Finding::Reverted { .. } => HostResult::Settled(f),
                    _ => HostResult::Failed {
                        verdict: Verdict::bad(
                            Health::Degraded,
                            Evidence::new("confirm").raw("no install of this run to confirm"),
                        ),
                        touched: true,
                    },
                },
            },
        ))
    }

    fn remove<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult> {
        let run = self.plan.run.clone();
        let every_version = !matches!(self.plan.target, Target::Apply(_));
        Box::pin(self.call(
            &host.name,
            "remove",
            |a| self.failed(a),
            move |side, _| {
                let found = match &side.holds {
                    Some(i) if every_version || i.run == run => {
                        side.holds = None;
                        "found manifest; removed"
                    }
                    Some(_) => "holds another run's install: left alone",
                    None => "nothing of wavectl's found",
                };
                HostResult::Removed {
                    detail: found.into(),
                }
            },
        ))
    }

    fn settle<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult> {
        Box::pin(self.call(
            &host.name,
            "settle",
            |a| self.failed(a),
            |side, _| HostResult::Settled(self.finding(side)),
        ))
    }

    fn probe<'a>(
        &'a self,
        host: &'a inventory::Host,
        _ask: &'a ProbeAsk,
    ) -> BoxFuture<'a, Outcome> {
        let (run, lease) = (self.plan.run.clone(), self.lease_ms());
        let after = self.deadline();
        Box::pin(self.call(
            &host.name,
            "probe",
            move |a| match a {
                Answer::Refused => Outcome::Failed {
                    message: "connect: Connection refused".into(),
                },
                _ => Outcome::Missed {
                    what: "login".into(),
                    after,
                },
            },
            move |side, now| {
                // The probe renews the lease of this run's probation install.
                if let Some(i) = side.holds.as_mut().filter(|i| i.run == run && !i.confirmed) {
                    i.lease_until = now + lease;
                }
                let ours = side.holds.as_ref().filter(|i| i.run == run);
                Outcome::Report(Box::new(ProbeReport {
                    runs: if ours.is_some() {
                        side.runs.clone()
                    } else {
                        Vec::new()
                    },
                    clock: Some(now / 1000),
                    owner: side.holds.as_ref().map(|i| i.run.clone()),
                    reverted: side.reverted.clone().filter(|r| r.run_id == run),
                    lease_until: ours.filter(|i| !i.confirmed).map(|i| i.lease_until / 1000),
                    cpus: Some(1),
                    load1: Ok(
                        if side.behaviour == Behaviour::LoadedOnceInstalled && ours.is_some() {
                            4.0
                        } else {
                            0.1
                        },
                    ),
                    ..ProbeReport::default()
                }))
            },
        ))
    }
}
