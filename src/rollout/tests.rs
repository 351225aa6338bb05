//! Whole runs driven through the state machine with synthetic events: no network, no
//! sleeping. A simulated driver answers the machine's actions the way hosts would.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::*;
use crate::exit;
use crate::inventory::Host;
use crate::rollout::verdict::{Evidence, Health, Verdict};
use crate::spec::{ActivationKind, Builtin, OnFailure};

#[path = "hold_tests.rs"]
mod hold;

#[path = "fresh_tests.rs"]
mod fresh;

#[path = "reconcile_tests.rs"]
mod reconcile;

const INTERVAL: u64 = 1_000;

fn deployment() -> Deployment {
    Deployment {
        install_path: "/usr/local/sbin/x".into(),
        mode: 0o755,
        sha256: "00".repeat(32),
        script_timeout: Duration::from_secs(10),
        activation: ActivationKind::Cron,
        schedule: "*/5 * * * *".into(),
        run_on_install: true,
        interval: Duration::from_millis(INTERVAL),
        probe_timeout: Duration::from_millis(INTERVAL),
        builtins: vec![Builtin::Reachable, Builtin::Script],
        thresholds: Default::default(),
        checks: vec![],
        lease: Duration::from_secs(60),
        force: false,
    }
}

/// A plan of these waves (hosts by name) with a quick bake; also the report's tests'.
pub(crate) fn plan(waves: &[&[&str]], target: Target) -> Plan {
    let hosts: Vec<Host> = waves
        .iter()
        .flat_map(|w| w.iter().map(|h| Host::named(h)))
        .collect();
    Plan {
        run: "r1".into(),
        name: "x".into(),
        target,
        hosts,
        waves: waves
            .iter()
            .map(|w| w.iter().map(|h| h.to_string()).collect())
            .collect(),
        policy: Policy {
            max_unhealthy: 0,
            on_failure: OnFailure::Rollback,
            bake: Duration::from_millis(3 * INTERVAL),
            min_runs: 1,
            concurrency: 2,
            fanout: 10,
            login_timeout: Duration::from_secs(2),
            baseline: false,
            controls: false,
            gates: None,
        },
        spec: None,
        inventory: None,
        ssh_config: None,
        user: "root".into(),
        approval: None,
        command: vec![],
        preflight: None,
        groups: None,
    }
}

fn apply_plan(waves: &[&[&str]]) -> Plan {
    plan(waves, Target::Apply(deployment()))
}

fn bad(health: Health, why: &str) -> Verdict {
    Verdict::bad(health, Evidence::new("test").raw(why))
}

/// How the simulated hosts answer.
#[derive(Clone, Default)]
struct World {
    /// host → the verdict every probe gives (healthy when absent).
    verdicts: BTreeMap<String, Verdict>,
    /// host → op whose result is this.
    results: BTreeMap<(String, Op), HostResult>,
    /// hosts whose runs.log never grows.
    never_runs: Vec<String>,
    /// host → the lease ran out (probes say so).
    reverted: Vec<String>,
}

impl World {
    fn result(&self, host: &str, op: Op) -> HostResult {
        if let Some(r) = self.results.get(&(host.to_string(), op)) {
            return r.clone();
        }
        match op {
            Op::Install => HostResult::Installed {
                backup: false,
                prev: None,
                started: false,
            },
            Op::StartRun => HostResult::Started,
            Op::Confirm => HostResult::Confirmed,
            Op::Remove => HostResult::Removed {
                detail: "removed".into(),
            },
            Op::Settle => HostResult::Settled(Finding::Ours {
                confirmed: false,
                runs: 1,
                running: false,
            }),
        }
    }
}

/// A simulated controller: journals each event, steps, answers actions in FIFO order.
struct Sim {
    s: RunState,
    journal: Vec<Record>,
    now: u64,
    queue: VecDeque<Action>,
    world: World,
    /// Every action the machine ordered, in order.
    log: Vec<Action>,
    stop_after_installs: Option<usize>,
    /// What the operator does about gates and freezes (`hold_tests`).
    hold: hold::Hold,
}

impl Sim {
    fn begin(plan: Plan, world: World) -> Sim {
        let mut sim = Sim {
            s: RunState::new(),
            journal: Vec::new(),
            now: 1_700_000_000_000,
            queue: VecDeque::new(),
            world,
            log: Vec::new(),
            stop_after_installs: None,
            hold: Default::default(),
        };
        sim.submit(Event::Begin {
            plan: Box::new(plan),
            pid: 1,
            until_done: false,
        });
        sim
    }

    fn submit(&mut self, e: Event) {
        let rec = Record::new(self.now, e);
        self.journal.push(rec.clone());
        let actions = step(&mut self.s, &rec);
        // The journal alone gives the same state.
        self.log.extend(actions.iter().cloned());
        self.queue.extend(actions);
    }

    fn installs(&self) -> usize {
        self.log
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Host {
                        op: Op::Install,
                        ..
                    }
                )
            })
            .count()
    }

    fn ordered(&self, op: Op) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Host { host, op: o, .. } if *o == op => Some(host.clone()),
                _ => None,
            })
            .collect()
    }

    /// Drive until the run ends (or `limit` events).
    fn run(&mut self) {
        for _ in 0..10_000 {
            if self.s.is_ended() && self.queue.is_empty() {
                break;
            }
            if self.hold_step() {
                continue;
            }
            if let Some(n) = self.stop_after_installs {
                if self.installs() >= n && !self.s.stopped {
                    self.submit(Event::Stop(StopRequest {
                        by: "SIGTERM".into(),
                    }));
                    continue;
                }
            }
            if let Some(a) = self.queue.pop_front() {
                match a {
                    Action::Host { host, op, .. } => {
                        let result = self.world.result(&host, op);
                        self.submit(Event::Result { host, op, result });
                    }
                    Action::Baseline { wave, .. } => self.submit(Event::BaselineDone {
                        wave,
                        watch: vec![],
                        group: vec![],
                    }),
                    Action::Probe { wave, hosts, .. } => self.round(wave, hosts),
                    Action::EndProbe => {}
                    Action::WakeAt(t) => {
                        self.now = self.now.max(t);
                        self.submit(Event::Tick);
                    }
                }
                continue;
            }
            // Nothing ordered: the machine waits for nothing it asked for.
            panic!("stuck: {:?}", self.s.status);
        }
        assert!(self.s.is_ended(), "did not end: {:?}", self.s.status);
        self.assert_replay();
    }

    /// The probe round the machine ordered: each host's verdict as the world says.
    fn round(&mut self, wave: usize, hosts: Vec<String>) {
        let mut verdicts = Vec::new();
        for h in hosts {
            let v = self
                .world
                .verdicts
                .get(&h)
                .cloned()
                .unwrap_or_else(Verdict::healthy);
            let runs = u32::from(!self.world.never_runs.contains(&h));
            let lost = self.world.reverted.contains(&h).then_some(Lost::Reverted {
                lease_until: 1,
                at: 2,
                clean: true,
            });
            let v = if lost.is_some() {
                step::lease_verdict(1, 2)
            } else {
                v
            };
            let known = self.s.host(&h).unwrap();
            if known.verdict.as_ref() != Some(&v) || known.runs != runs || lost.is_some() {
                verdicts.push(HostVerdict {
                    host: h,
                    verdict: v,
                    runs,
                    lost,
                });
            }
        }
        if matches!(
            self.s.status,
            Status::Running {
                stage: Stage::Frozen { .. }
            }
        ) {
            self.hold.frozen_rounds += 1;
        }
        self.submit(Event::Round {
            wave,
            verdicts,
            watch: vec![],
        });
    }

    fn assert_replay(&self) {
        let text: String = self
            .journal
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let records: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replay(&records), self.s);
    }

    fn state(&self, h: &str) -> HostState {
        self.s.host(h).unwrap().state
    }
}

#[test]
fn happy_path_confirms_every_host_wave_by_wave() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"], &["d"]]), World::default());
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::OK);
    assert_eq!(sim.s.end(), Some(&End::Done));
    for h in ["a", "b", "c", "d"] {
        assert_eq!(sim.state(h), HostState::Confirmed, "{h}");
    }
    // Every install of a wave comes after the previous wave's bake: never before its
    // first run was started.
    let order: Vec<String> = sim
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Host { host, op, .. } => Some(format!("{} {host}", op.name())),
            _ => None,
        })
        .collect();
    let pos = |x: &str| order.iter().position(|o| o == x).unwrap();
    assert!(pos("start run a") < pos("install b"), "{order:?}");
    assert!(pos("install c") < pos("install d"), "{order:?}");
    assert!(pos("install d") < pos("confirm a"), "{order:?}");
    let s = summarize(&sim.s);
    assert_eq!(s.confirmed, ["a", "b", "c", "d"]);
    assert_eq!(s.outcome, "every host healthy and confirmed");
}

#[test]
fn a_bad_host_in_wave_two_rolls_back_every_host_that_got_it() {
    let mut world = World::default();
    world
        .verdicts
        .insert("c".into(), bad(Health::Degraded, "check failed"));
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"], &["d"]]), world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.s.status_name(), "rolled-back");
    for h in ["a", "b", "c"] {
        assert_eq!(sim.state(h), HostState::Clean, "{h}");
    }
    assert_eq!(sim.state("d"), HostState::Untouched);
    assert!(sim.ordered(Op::Install).iter().all(|h| h != "d"));
    let mut removed = sim.ordered(Op::Remove);
    removed.sort();
    assert_eq!(removed, ["a", "b", "c"]);
    assert!(sim.ordered(Op::Confirm).is_empty());
    let s = summarize(&sim.s);
    assert_eq!(s.unhealthy.len(), 1);
    assert_eq!(s.unhealthy[0].0, "c");
    assert!(
        s.outcome.starts_with("rolled back: 1 host unhealthy"),
        "{}",
        s.outcome
    );
}

#[test]
fn a_hung_host_that_cannot_be_cleaned_stays_pending_exit_4() {
    let mut world = World::default();
    world
        .verdicts
        .insert("a".into(), bad(Health::Hung, "probe gave no answer"));
    world.results.insert(
        ("a".into(), Op::Remove),
        HostResult::Failed {
            verdict: bad(Health::Hung, "no login"),
            touched: false,
        },
    );
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), world);
    sim.run();
    assert_eq!(sim.state("a"), HostState::Pending);
    assert_eq!(sim.state("b"), HostState::Untouched);
    assert_eq!(exit_code(&sim.s), exit::INCOMPLETE);
    let s = summarize(&sim.s);
    assert_eq!(s.pending.len(), 1);
    assert!(s.pending[0].1.contains("no login"), "{:?}", s.pending);

    // reconcile, once the host answers, finishes it.
    sim.world.results.clear();
    sim.submit(Event::Attach(attach(Intent::Reconcile)));
    sim.run();
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.s.status_name(), "rolled-back");
}

fn attach(intent: Intent) -> Attach {
    Attach {
        pid: 2,
        intent,
        until_done: false,
        fanout: None,
        user: "root".into(),
        command: vec![],
    }
}

#[test]
fn pause_leaves_hosts_and_resume_goes_on_accepting_them() {
    let mut p = apply_plan(&[&["a"], &["b"], &["c"]]);
    p.policy.on_failure = OnFailure::Pause;
    let mut world = World::default();
    world
        .verdicts
        .insert("b".into(), bad(Health::Degraded, "slow"));
    let mut sim = Sim::begin(p, world);
    sim.run();
    assert_eq!(sim.s.status_name(), "paused");
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.state("a"), HostState::Installed);
    assert_eq!(sim.state("b"), HostState::Installed);
    assert!(sim.ordered(Op::Remove).is_empty());
    assert!(summarize(&sim.s).outcome.contains("leases run out"));

    sim.submit(Event::Attach(attach(Intent::Resume)));
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
    assert_eq!(sim.state("a"), HostState::Confirmed);
    // The bad host the operator accepted is not confirmed: it is rolled back on its own.
    assert_eq!(sim.state("b"), HostState::Clean);
    assert_eq!(sim.state("c"), HostState::Confirmed);
}

#[test]
fn stop_lets_actions_in_flight_finish_then_rolls_back_exit_3() {
    let mut sim = Sim::begin(
        apply_plan(&[&["a"], &["b", "c", "d", "e"]]),
        World::default(),
    );
    // Stop right after the second install was ordered (two at once in wave 2).
    sim.stop_after_installs = Some(2);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ABORTED);
    assert_eq!(sim.s.status_name(), "aborted");
    // Concurrency 2: b and c were in flight; d and e never started.
    let installs = sim.ordered(Op::Install);
    assert!(installs.len() <= 3, "{installs:?}");
    assert_eq!(sim.state("e"), HostState::Untouched);
    for h in &installs {
        assert_eq!(sim.state(h), HostState::Clean, "{h}");
    }
}

#[test]
fn a_host_whose_lease_ran_out_counts_as_unhealthy_with_that_evidence() {
    let mut world = World::default();
    world.reverted.push("b".into());
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"], &["c"]]), world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.state("b"), HostState::Reverted);
    // It reverted itself: nothing to remove there.
    assert!(!sim.ordered(Op::Remove).contains(&"b".to_string()));
    let v = sim.s.unhealthy_verdict("b").unwrap();
    assert!(
        v.evidence[0].to_string().contains("lease expired at"),
        "{v:?}"
    );
}

#[test]
fn rolling_back_an_upgrade_removes_this_runs_version_on_every_host() {
    let mut world = World::default();
    for h in ["a", "b"] {
        world.results.insert(
            (h.into(), Op::Install),
            HostResult::Installed {
                backup: false,
                prev: Some("r0".into()),
                started: false,
            },
        );
    }
    world
        .verdicts
        .insert("b".into(), bad(Health::Degraded, "B is broken"));
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.ordered(Op::Remove).len(), 2);
    assert!(sim.journal.iter().any(|r| matches!(&r.event,
        Event::Result { result: HostResult::Installed { prev: Some(p), .. }, .. } if p == "r0")));
}

#[test]
fn an_install_that_started_the_first_run_orders_no_separate_start() {
    let mut world = World::default();
    // a's install started its first run in the same command; b's did not.
    world.results.insert(
        ("a".into(), Op::Install),
        HostResult::Installed {
            backup: false,
            prev: None,
            started: true,
        },
    );
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::OK);
    assert_eq!(sim.ordered(Op::StartRun), vec!["b".to_string()]);
    assert!(sim.s.host("a").is_some_and(|h| h.started));
}

#[test]
fn a_journaled_install_without_started_reads_as_not_started() {
    // Journals written before the install could start the first run.
    let old = r#"{"installed":{"backup":false,"prev":null}}"#;
    let r: HostResult = serde_json::from_str(old).unwrap();
    assert_eq!(
        r,
        HostResult::Installed {
            backup: false,
            prev: None,
            started: false
        }
    );
    // And one that did not start it is written as before.
    assert_eq!(serde_json::to_string(&r).unwrap(), old);
}

#[test]
fn max_unhealthy_at_its_edge() {
    // One bad host with max_unhealthy = 1: the run goes on, the bad host is rolled back.
    let mut p = apply_plan(&[&["a"], &["b", "c"], &["d"]]);
    p.policy.max_unhealthy = 1;
    let mut world = World::default();
    world
        .verdicts
        .insert("b".into(), bad(Health::Degraded, "x"));
    let mut sim = Sim::begin(p.clone(), world.clone());
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
    assert_eq!(exit_code(&sim.s), exit::OK);
    assert_eq!(sim.state("b"), HostState::Clean);
    assert_eq!(sim.state("d"), HostState::Confirmed);
    assert!(summarize(&sim.s).outcome.contains("1 bad host"));

    // Two bad hosts: over the budget.
    world
        .verdicts
        .insert("c".into(), bad(Health::Degraded, "y"));
    let mut sim = Sim::begin(p, world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.state("d"), HostState::Untouched);
}

#[test]
fn a_host_refusing_us_stops_the_run_exit_2_and_rolls_back_the_rest() {
    let mut world = World::default();
    world.results.insert(
        ("b".into(), Op::Install),
        HostResult::Refused(Refusal {
            reason: "host key verification failed".into(),
            help: "check known_hosts".into(),
        }),
    );
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"], &["c"]]), world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::BAD_INPUT);
    assert_eq!(sim.s.status_name(), "refused");
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.state("b"), HostState::Untouched);
    assert_eq!(sim.state("c"), HostState::Untouched);
    assert!(summarize(&sim.s).outcome.contains("host b refused us"));
}

#[test]
fn a_host_that_never_runs_the_script_holds_the_bake_then_is_degraded() {
    let mut world = World::default();
    world.never_runs.push("a".into());
    let mut p = apply_plan(&[&["a"], &["b"]]);
    p.policy.bake = Duration::from_millis(2 * INTERVAL);
    let mut sim = Sim::begin(p, world);
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    let v = sim.s.unhealthy_verdict("a").unwrap();
    assert_eq!(v.evidence[0].signal, "min_runs");
    // It was waited for past the bake, up to the limit (bake + 15 min here).
    let rounds = sim
        .journal
        .iter()
        .filter(|r| matches!(r.event, Event::Round { .. }))
        .count() as u64;
    assert!(rounds * INTERVAL >= MIN_RUNS_WAIT_MS, "{rounds}");
}

const MIN_RUNS_WAIT_MS: u64 = 15 * 60 * 1000;

#[test]
fn a_killed_controller_is_resumed_by_asking_the_hosts_it_had_in_flight() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"]]), World::default());
    // Run until wave 2's installs are ordered, then "kill": drop what is queued.
    for _ in 0..200 {
        if sim.ordered(Op::Install).len() == 3 {
            break;
        }
        if let Some(Action::Host { host, op, .. }) = sim.queue.pop_front() {
            let result = sim.world.result(&host, op);
            sim.submit(Event::Result { host, op, result });
        } else if let Some((wave, ..)) = sim.s.probing() {
            sim.submit(Event::Round {
                wave,
                watch: vec![],
                verdicts: vec![HostVerdict {
                    host: "a".into(),
                    verdict: Verdict::healthy(),
                    runs: 1,
                    lost: None,
                }],
            });
            sim.now += INTERVAL;
        }
    }
    sim.queue.clear();
    // A new process replays the journal and attaches.
    let replayed = replay(&sim.journal);
    assert_eq!(replayed, sim.s);
    assert_eq!(replayed.host("b").unwrap().op, Some(Op::Install));
    assert_eq!(replayed.host("b").unwrap().state, HostState::Unknown);
    // b's install finished on the host, c's never got there.
    sim.world.results.insert(
        ("c".into(), Op::Settle),
        HostResult::Settled(Finding::Absent { other: None }),
    );
    sim.submit(Event::Attach(attach(Intent::Resume)));
    let settles = sim.ordered(Op::Settle);
    assert!(settles.contains(&"b".to_string()), "{settles:?}");
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
    // c was installed after the resume (it had nothing); b was not installed again.
    let installs = sim.ordered(Op::Install);
    assert_eq!(
        installs.iter().filter(|h| *h == "b").count(),
        1,
        "{installs:?}"
    );
    assert_eq!(
        installs.iter().filter(|h| *h == "c").count(),
        2,
        "{installs:?}"
    );
}

#[test]
fn purge_visits_every_host_and_reconcile_finishes_the_pending_ones() {
    let mut world = World::default();
    world.results.insert(
        ("b".into(), Op::Remove),
        HostResult::Failed {
            verdict: bad(Health::Unreachable, "connection refused"),
            touched: false,
        },
    );
    let p = plan(&[&["a", "b", "c"]], Target::Purge);
    let mut sim = Sim::begin(p, world);
    // Every host is "may hold" from the very first record: a killed purge loses none.
    assert!(sim.s.hosts.iter().all(|h| h.state == HostState::Unknown));
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::INCOMPLETE);
    assert_eq!(sim.state("b"), HostState::Pending);
    sim.world.results.clear();
    sim.submit(Event::Attach(attach(Intent::Reconcile)));
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::OK);
    assert_eq!(sim.s.status_name(), "purged");
    assert_eq!(
        sim.ordered(Op::Remove).iter().filter(|h| *h == "a").count(),
        1
    );
}

#[test]
fn until_done_retries_with_backoff_and_stop_ends_it() {
    let mut world = World::default();
    world.results.insert(
        ("b".into(), Op::Remove),
        HostResult::Failed {
            verdict: bad(Health::Hung, "no answer"),
            touched: false,
        },
    );
    let p = plan(&[&["a", "b"]], Target::Purge);
    let mut sim = Sim {
        s: RunState::new(),
        journal: vec![],
        now: 0,
        queue: VecDeque::new(),
        world,
        log: vec![],
        stop_after_installs: None,
        hold: Default::default(),
    };
    sim.submit(Event::Begin {
        plan: Box::new(p),
        pid: 1,
        until_done: true,
    });
    for _ in 0..20 {
        if let Some(a) = sim.queue.pop_front() {
            match a {
                Action::Host { host, op, .. } => {
                    let result = sim.world.result(&host, op);
                    sim.submit(Event::Result { host, op, result });
                }
                Action::WakeAt(t) => {
                    sim.now = t;
                    sim.submit(Event::Tick);
                }
                Action::Baseline { .. } | Action::Probe { .. } | Action::EndProbe => {
                    unreachable!()
                }
            }
        }
    }
    assert!(sim.ordered(Op::Remove).iter().filter(|h| *h == "b").count() >= 3);
    assert!(!sim.s.is_ended());
    sim.submit(Event::Stop(StopRequest {
        by: "SIGINT".into(),
    }));
    assert!(sim.s.is_ended());
    assert_eq!(exit_code(&sim.s), exit::INCOMPLETE);
}

/// A random round's verdicts on some of `hosts`.
fn random_verdicts(rng: &mut rand::rngs::StdRng, hosts: Vec<String>) -> Vec<HostVerdict> {
    let mut verdicts = Vec::new();
    for host in hosts {
        if rng.random_bool(0.5) {
            continue;
        }
        verdicts.push(HostVerdict {
            host,
            verdict: if rng.random_bool(0.2) {
                bad(Health::Degraded, "x")
            } else {
                Verdict::healthy()
            },
            runs: rng.random_range(0..3),
            lost: rng.random_bool(0.05).then_some(Lost::Reverted {
                lease_until: 1,
                at: 2,
                clean: rng.random_bool(0.7),
            }),
        });
    }
    verdicts
}

/// For random event sequences, every prefix of the journal, written and read back,
/// replays to exactly the state the live machine had after it.
#[test]
fn replaying_any_prefix_of_the_journal_gives_the_live_state() {
    let hosts = ["a", "b", "c", "d", "e"];
    for seed in 0..300u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut p = if seed % 5 == 4 {
            plan(&[&hosts], Target::Purge)
        } else {
            apply_plan(&[&["a"], &["b", "c"], &["d", "e"]])
        };
        p.policy.max_unhealthy = rng.random_range(0..2);
        if rng.random_bool(0.3) {
            p.policy.on_failure = OnFailure::Pause;
        }
        p.policy.baseline = rng.random_bool(0.5);
        let mut s = RunState::new();
        let mut text = String::new();
        let mut outstanding: Vec<Action> = Vec::new();
        let mut now = 1_000u64;
        let feed = |s: &mut RunState, text: &mut String, e: Event, now: u64| {
            let rec = Record::new(now, e);
            text.push_str(&serde_json::to_string(&rec).unwrap());
            text.push('\n');
            let actions = step(s, &rec);
            let records: Vec<Record> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(&replay(&records), s, "seed {seed}");
            actions
        };
        let a = feed(
            &mut s,
            &mut text,
            Event::Begin {
                plan: Box::new(p),
                pid: 1,
                until_done: rng.random_bool(0.2),
            },
            now,
        );
        outstanding.extend(a);
        for _ in 0..120 {
            now += rng.random_range(0..1500);
            let roll = rng.random_range(0..100);
            let event = if roll < 55 && !outstanding.is_empty() {
                let i = rng.random_range(0..outstanding.len());
                match outstanding.swap_remove(i) {
                    Action::Host { host, op, .. } => {
                        let result = match (op, rng.random_range(0..10)) {
                            (_, 0) => HostResult::Failed {
                                verdict: bad(Health::Unreachable, "refused"),
                                touched: rng.random_bool(0.5),
                            },
                            (Op::Install, 1) => HostResult::Refused(Refusal {
                                reason: "key".into(),
                                help: "fix".into(),
                            }),
                            (Op::Settle, n) => HostResult::Settled(match n % 4 {
                                0 => Finding::Partial,
                                1 => Finding::Absent { other: None },
                                2 => Finding::Reverted {
                                    lease_until: 5,
                                    at: 6,
                                    clean: n > 3,
                                },
                                _ => Finding::Ours {
                                    confirmed: n > 5,
                                    runs: 1,
                                    running: false,
                                },
                            }),
                            (op, _) => World::default().result(&host, op),
                        };
                        Event::Result { host, op, result }
                    }
                    Action::Baseline { wave, .. } => Event::BaselineDone {
                        wave,
                        watch: vec![],
                        group: vec![],
                    },
                    Action::Probe { wave, hosts, .. } => Event::Round {
                        wave,
                        watch: vec![],
                        verdicts: random_verdicts(&mut rng, hosts),
                    },
                    Action::EndProbe => Event::Tick,
                    Action::WakeAt(t) => {
                        now = now.max(t);
                        Event::Tick
                    }
                }
            } else if roll < 75 {
                // A round nobody ordered (a late one, or from a controller that died).
                if let Some((wave, hs, _)) = s.probing() {
                    let hs: Vec<String> = hs.iter().map(|h| h.to_string()).collect();
                    Event::Round {
                        wave,
                        watch: vec![],
                        verdicts: random_verdicts(&mut rng, hs),
                    }
                } else {
                    Event::Tick
                }
            } else if roll < 80 {
                Event::Stop(StopRequest {
                    by: "SIGINT".into(),
                })
            } else if roll < 85 {
                // The controller dies; a new one takes the run up.
                outstanding.clear();
                let intent = [
                    Intent::Resume,
                    Intent::Rollback,
                    Intent::Reconcile,
                    Intent::Orphaned,
                ][rng.random_range(0..4)];
                Event::Attach(Attach {
                    pid: 9,
                    intent,
                    until_done: rng.random_bool(0.3),
                    fanout: Some(rng.random_range(1..4)),
                    user: "u".into(),
                    command: vec![],
                })
            } else {
                Event::Tick
            };
            let a = feed(&mut s, &mut text, event, now);
            outstanding.extend(a);
            // Whatever happened, no host is called clean while an action on it runs.
            for h in &s.hosts {
                if h.op == Some(Op::Install) {
                    assert!(h.state.may_hold(), "seed {seed}: {h:?}");
                }
            }
        }
    }
}

#[test]
fn a_record_carries_the_format_version_and_readable_tags() {
    let rec = Record::new(
        5,
        Event::Result {
            host: "a".into(),
            op: Op::Remove,
            result: HostResult::Removed { detail: "x".into() },
        },
    );
    let line = serde_json::to_string(&rec).unwrap();
    assert_eq!(
        line,
        r#"{"v":1,"at":5,"type":"result","host":"a","op":"remove","result":{"removed":{"detail":"x"}}}"#
    );
}

#[test]
fn a_host_whose_own_revert_did_not_check_out_is_still_removed() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), World::default());
    while let Some(Action::Host { host, op, .. }) = sim.queue.pop_front() {
        let result = sim.world.result(&host, op);
        sim.submit(Event::Result { host, op, result });
    }
    let (wave, ..) = sim.s.probing().unwrap();
    sim.submit(Event::Round {
        wave,
        watch: vec![],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: step::lease_verdict(1, 2),
            runs: 1,
            lost: Some(Lost::Reverted {
                lease_until: 1,
                at: 2,
                clean: false,
            }),
        }],
    });
    // It may still hold part of the install: pending, and the rollback visits it.
    assert_eq!(sim.ordered(Op::Remove), ["a"]);
    sim.run();
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
}

fn inconclusive(why: &str) -> Verdict {
    Verdict::bad(
        Health::Inconclusive,
        Evidence::new("kernel")
            .raw(why)
            .control("the same on c (a fleet-wide event?)"),
    )
}

#[test]
fn an_inconclusive_verdict_pauses_even_with_rollback_and_resume_goes_on() {
    let mut world = World::default();
    world.verdicts.insert(
        "b".into(),
        inconclusive("INFO: task x blocked for more than 120 seconds."),
    );
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"], &["c"]]), world);
    sim.run();
    assert_eq!(sim.s.status_name(), "paused");
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    match sim.s.end() {
        Some(End::Paused {
            why: Why::Inconclusive { host, reason },
            ..
        }) => {
            assert_eq!(host, "b");
            assert!(reason.contains("fleet-wide"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing rolled back, nothing counted against the budget.
    assert!(sim.ordered(Op::Remove).is_empty());
    assert!(sim.s.unhealthy.is_empty());
    assert_eq!(sim.state("a"), HostState::Installed);
    assert_eq!(sim.state("b"), HostState::Installed);
    assert_eq!(sim.state("c"), HostState::Untouched);
    let outcome = summarize(&sim.s).outcome;
    assert!(
        outcome.starts_with("paused: inconclusive verdict on b, not counted against it"),
        "{outcome}"
    );
    assert!(
        outcome.contains("`wavectl rollback r1` rolls back"),
        "{outcome}"
    );

    // The operator looked: the event is over; resume goes on to the end.
    sim.world.verdicts.clear();
    sim.submit(Event::Attach(attach(Intent::Resume)));
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
    for h in ["a", "b", "c"] {
        assert_eq!(sim.state(h), HostState::Confirmed, "{h}");
    }
}

#[test]
fn rollback_of_an_inconclusive_pause_removes_every_host_that_got_it() {
    let mut world = World::default();
    world
        .verdicts
        .insert("a".into(), inconclusive("fleet-wide"));
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), world);
    sim.run();
    assert_eq!(sim.s.status_name(), "paused");
    sim.submit(Event::Attach(attach(Intent::Rollback)));
    sim.run();
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.state("b"), HostState::Untouched);
    assert_eq!(exit_code(&sim.s), exit::OK);
}

#[test]
fn a_bad_host_beyond_the_budget_in_the_same_round_rolls_back_rather_than_pauses() {
    let mut world = World::default();
    world
        .verdicts
        .insert("a".into(), inconclusive("fleet-wide"));
    world
        .verdicts
        .insert("b".into(), bad(Health::Degraded, "oops on b alone"));
    let mut sim = Sim::begin(apply_plan(&[&["a", "b"], &["c"]]), world);
    sim.run();
    assert_eq!(sim.s.status_name(), "rolled-back");
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.state("b"), HostState::Clean);
    assert_eq!(sim.s.unhealthy.len(), 1);
}

/// Case 3 of issue 13: a rollback of a run whose version the hosts no longer hold as
/// current (a newer run upgraded over it) ends `superseded`, exit 4, naming the newer
/// run — never clean — and nothing is left for reconcile to retry.
#[test]
fn rolling_back_a_superseded_run_is_never_clean() {
    let mut sim = Sim::begin(apply_plan(&[&["a", "b"]]), World::default());
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::OK);
    sim.world.results.insert(
        ("a".into(), Op::Remove),
        HostResult::Superseded {
            by: "r2".into(),
            detail: "holds run r2's newer install".into(),
        },
    );
    sim.submit(Event::Attach(attach(Intent::Rollback)));
    sim.run();
    assert_eq!(sim.state("a"), HostState::Superseded);
    assert_eq!(sim.state("b"), HostState::Clean);
    assert!(!HostState::Superseded.may_hold() && !HostState::Superseded.unfinished());
    assert_eq!(sim.s.status_name(), "superseded");
    assert_eq!(exit_code(&sim.s), exit::INCOMPLETE);
    let sum = summarize(&sim.s);
    assert_eq!(sum.superseded.len(), 1, "{sum:?}");
    assert!(sum.superseded[0].1.contains("newer run r2"), "{sum:?}");
    assert!(
        sum.outcome.contains("keep the rollout under a newer run"),
        "{sum:?}"
    );
    assert!(!sum.meaning.contains("clean"), "{sum:?}");
    // Again: the same end, nothing ordered on the superseded host.
    let removes = sim.ordered(Op::Remove).len();
    sim.submit(Event::Attach(attach(Intent::Rollback)));
    sim.run();
    assert_eq!(sim.ordered(Op::Remove).len(), removes);
    assert_eq!(sim.s.status_name(), "superseded");
}

// --- probe rounds, ordered by the machine ---

/// Answer host actions and baselines until the machine orders a probe round; the round.
fn until_probe(sim: &mut Sim) -> (usize, Vec<String>, Vec<String>) {
    for _ in 0..100 {
        match sim.queue.pop_front() {
            Some(Action::Host { host, op, .. }) => {
                let result = sim.world.result(&host, op);
                sim.submit(Event::Result { host, op, result });
            }
            Some(Action::Baseline { wave, .. }) => sim.submit(Event::BaselineDone {
                wave,
                watch: vec![],
                group: vec![],
            }),
            Some(Action::Probe {
                wave,
                hosts,
                controls,
                ..
            }) => return (wave, hosts, controls),
            Some(Action::WakeAt(_)) | Some(Action::EndProbe) => {}
            None => panic!("no probe round ordered: {:?}", sim.s.status),
        }
    }
    panic!("no probe round ordered: {:?}", sim.s.status)
}

fn probes(actions: &VecDeque<Action>) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Probe { .. }))
        .count()
}

#[test]
fn a_bake_orders_its_probe_rounds_one_at_a_time_an_interval_apart() {
    let mut p = apply_plan(&[&["a"], &["b", "c"]]);
    p.policy.bake = Duration::from_millis(10 * INTERVAL);
    p.policy.controls = true;
    let mut sim = Sim::begin(p, World::default());
    let (wave, hosts, controls) = until_probe(&mut sim);
    let t0 = sim.s.now;
    // The wave's installed hosts, and the untouched controls beside them.
    assert_eq!((wave, hosts), (1, vec!["a".to_string()]));
    assert_eq!(controls, sim.s.controls);
    assert!(!controls.is_empty());
    assert!(sim.s.round_in_flight());
    // With a wake-up for when the next is due.
    assert_eq!(
        sim.queue.iter().collect::<Vec<_>>(),
        [&Action::WakeAt(t0 + INTERVAL)]
    );
    sim.queue.clear();
    // Due, but the round has not reported: no second one.
    sim.now = t0 + INTERVAL;
    sim.submit(Event::Tick);
    assert_eq!(probes(&sim.queue), 0, "{:?}", sim.queue);
    // It reports late: the next follows at once, due an interval after it.
    sim.now = t0 + INTERVAL + 300;
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![],
        verdicts: vec![],
    });
    let (wave, hosts, _) = until_probe(&mut sim);
    assert_eq!((wave, hosts), (1, vec!["a".to_string()]));
    assert_eq!(
        sim.queue.pop_front(),
        Some(Action::WakeAt(sim.now + INTERVAL))
    );
    // It reports early: nothing but the wake-up for when the next is due.
    sim.now += 200;
    let due = sim.now - 200 + INTERVAL;
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![],
        verdicts: vec![],
    });
    assert_eq!(sim.queue.iter().collect::<Vec<_>>(), [&Action::WakeAt(due)]);
    assert!(!sim.s.round_in_flight());
    sim.now += INTERVAL - 200;
    sim.submit(Event::Tick);
    assert_eq!(probes(&sim.queue), 1, "{:?}", sim.queue);
    // The journal alone gives the same: a resumed machine knows a round is in flight.
    assert_eq!(replay(&sim.journal), sim.s);
}

#[test]
fn a_stop_or_a_bad_round_ends_the_round_in_flight_and_orders_no_more() {
    // A stop while a round is in flight.
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), World::default());
    until_probe(&mut sim);
    sim.queue.clear();
    sim.submit(Event::Stop(StopRequest {
        by: "SIGINT".into(),
    }));
    assert!(sim.queue.contains(&Action::EndProbe), "{:?}", sim.queue);
    assert_eq!(probes(&sim.queue), 0);
    assert!(!sim.s.round_in_flight());
    // A round that fails the host: the rollback, and no further round.
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), World::default());
    until_probe(&mut sim);
    sim.queue.clear();
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: bad(Health::Hung, "no answer"),
            runs: 1,
            lost: None,
        }],
    });
    assert_eq!(probes(&sim.queue), 0, "{:?}", sim.queue);
    assert!(
        matches!(sim.s.status, Status::Removing { .. }),
        "{:?}",
        sim.s.status
    );
    assert_eq!(sim.ordered(Op::Remove), ["a"]);
}

#[test]
fn a_resumed_bake_orders_a_round_again_though_its_controller_died_with_one_in_flight() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), World::default());
    until_probe(&mut sim);
    assert!(sim.s.round_in_flight());
    // The controller dies; the next one replays and resumes.
    sim.queue.clear();
    sim.s = replay(&sim.journal);
    sim.now += 60_000;
    sim.submit(Event::Attach(attach(Intent::Resume)));
    let (wave, hosts, _) = until_probe(&mut sim);
    assert_eq!((wave, hosts), (1, vec!["a".to_string()]));
    sim.submit(Event::Round {
        wave,
        watch: vec![],
        verdicts: vec![],
    });
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
}

#[test]
fn a_bake_ends_on_a_rounds_report_never_on_a_wake_up_between_rounds() {
    // A bake shorter than the interval (as in the lab): a custom check's second strike
    // comes with the round after the bake's end, and must still count.
    let mut p = apply_plan(&[&["a"], &["b"]]);
    p.policy.bake = Duration::from_millis(INTERVAL / 2);
    let mut sim = Sim::begin(p, World::default());
    until_probe(&mut sim);
    sim.queue.clear();
    sim.now += 100;
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: Verdict::healthy(),
            runs: 1,
            lost: None,
        }],
    });
    // The wake-up for the next round comes after the bake's end: the bake goes on, and
    // that round is ordered.
    sim.now += INTERVAL;
    sim.submit(Event::Tick);
    assert!(
        matches!(
            sim.s.status,
            Status::Running {
                stage: Stage::Bake(state::Bake { wave: 1, .. })
            }
        ),
        "{:?}",
        sim.s.status
    );
    assert_eq!(probes(&sim.queue), 1, "{:?}", sim.queue);
    assert!(sim.ordered(Op::Install).iter().all(|h| h == "a"));
    // Its report decides: here a bad host, so the rollback, and b never gets it.
    sim.queue.clear();
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: bad(Health::Degraded, "check app failed twice"),
            runs: 1,
            lost: None,
        }],
    });
    assert!(
        matches!(sim.s.status, Status::Removing { .. }),
        "{:?}",
        sim.s.status
    );
    assert_eq!(sim.ordered(Op::Install), ["a"]);
}

#[test]
fn a_bake_does_not_pass_over_a_check_that_failed_once_and_waits_for_its_next_probe() {
    // A bake shorter than its first round (a busy machine): the first report comes after
    // the bake's end with a custom check failed once. One strike short of a verdict is a
    // suspicion: the next wave waits for the check's next probe.
    use crate::rollout::watched::{Counts, Watched};
    let check = |n: u32| Watched {
        host: "a".into(),
        baseline: None,
        counts: Counts {
            check_fails: [("app".to_string(), n)].into_iter().collect(),
            ..Counts::default()
        },
    };
    let mut p = apply_plan(&[&["a"], &["b"]]);
    p.policy.bake = Duration::from_millis(INTERVAL / 2);
    let mut sim = Sim::begin(p, World::default());
    until_probe(&mut sim);
    sim.queue.clear();
    sim.now += INTERVAL;
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![check(1)],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: Verdict::healthy(),
            runs: 1,
            lost: None,
        }],
    });
    assert!(
        matches!(
            sim.s.status,
            Status::Running {
                stage: Stage::Bake(state::Bake { wave: 1, .. })
            }
        ),
        "{:?}",
        sim.s.status
    );
    assert!(sim.ordered(Op::Install).iter().all(|h| h == "a"));
    // The wake-up orders the check's next probe; it passes, and the bake ends.
    sim.now += INTERVAL;
    sim.submit(Event::Tick);
    assert_eq!(probes(&sim.queue), 1, "{:?}", sim.queue);
    sim.queue.clear();
    sim.submit(Event::Round {
        wave: 1,
        watch: vec![check(0)],
        verdicts: vec![HostVerdict {
            host: "a".into(),
            verdict: Verdict::healthy(),
            runs: 2,
            lost: None,
        }],
    });
    assert!(
        sim.ordered(Op::Install).iter().any(|h| h == "b"),
        "{:?}",
        sim.s.status
    );
}

#[test]
fn a_host_whose_install_is_gone_is_judged_on_that_whatever_its_probe_showed() {
    // The driver reports what the probe showed (healthy) and that the install is gone;
    // the machine decides the verdict and the host's state.
    for (lost, state, said) in [
        (
            Lost::Reverted {
                lease_until: 1,
                at: 2,
                clean: true,
            },
            HostState::Reverted,
            "lease expired at",
        ),
        (
            Lost::Replaced {
                owner: Some("r2".into()),
            },
            HostState::Clean,
            "install is gone: the host holds run r2's",
        ),
    ] {
        let mut sim = Sim::begin(apply_plan(&[&["a"], &["b"]]), World::default());
        let (wave, ..) = until_probe(&mut sim);
        sim.submit(Event::Round {
            wave,
            watch: vec![],
            verdicts: vec![HostVerdict {
                host: "a".into(),
                verdict: Verdict::healthy(),
                runs: 1,
                lost: Some(lost.clone()),
            }],
        });
        let h = sim.s.host("a").unwrap();
        assert_eq!(h.state, state, "{lost:?}");
        let v = h.verdict.as_ref().unwrap();
        assert_eq!(v.health, Health::Degraded, "{lost:?}");
        assert!(v.evidence[0].to_string().contains(said), "{v:?}");
        assert!(sim.s.is_unhealthy("a"));
        sim.run();
        assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    }
}
