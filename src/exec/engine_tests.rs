//! The engine against the in-memory store, a clock on paused tokio time and a stand-in
//! for host actions: purges whose hosts do not answer, retried on the clock; a stop
//! request through the store; a controller that lost its run; a crash after every
//! record, then reconcile. No network, no real time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::inventory::{Host, HostKeyCheck};
use crate::report::Reporter;
use crate::rollout::verdict::{Evidence, Health, Verdict};
use crate::rollout::{
    exit_code, replay, Attach, Event, HostResult, HostState, Intent, Op, Plan, Policy, Record,
    RunState, StopRequest, Target,
};
use crate::spec::OnFailure;
use crate::store::{Holder, JournalWriter, MemStore, Store, StoreError};
use crate::transport::Transport;

use super::{CarryOut, Engine, Seams, Stopped};
use crate::exec::clock::{Clock, TestClock};
use crate::exec::ops::Shared;
use crate::exec::stop::Stop;

const T0: u64 = 1_800_000_000_000;
const RUN: &str = "20270115T080000Z-purge-app-0001";

fn host(name: &str) -> Host {
    Host {
        name: name.into(),
        address: "192.0.2.1".into(),
        port: None,
        user: None,
        labels: Default::default(),
        host_key_check: HostKeyCheck::Strict,
        become_root: false,
    }
}

fn purge_plan(hosts: &[&str], fanout: usize) -> Plan {
    let hosts: Vec<Host> = hosts.iter().map(|h| host(h)).collect();
    Plan {
        run: RUN.into(),
        name: "app".into(),
        target: Target::Purge,
        waves: vec![hosts.iter().map(|h| h.name.clone()).collect()],
        hosts,
        policy: Policy {
            max_unhealthy: 0,
            on_failure: OnFailure::Rollback,
            bake: Duration::ZERO,
            min_runs: 0,
            concurrency: fanout,
            fanout,
            login_timeout: Duration::from_secs(5),
            baseline: false,
            controls: false,
        },
        spec: None,
        inventory: None,
        ssh_config: None,
        user: "ann".into(),
        approval: None,
        command: vec!["wavectl".into(), "purge".into()],
        preflight: None,
        groups: None,
    }
}

fn unreachable() -> HostResult {
    HostResult::Failed {
        verdict: Verdict::bad(
            Health::Unreachable,
            Evidence::new("ssh").raw("connect to host 192.0.2.1 port 22: Connection refused"),
        ),
        touched: false,
    }
}

/// Fake hosts that each hold the rollout until a removal reaches them: a host answers
/// from its `answers_from`-th removal on (1: at once; 0: never). Every call is kept
/// with the record time it was ordered at.
#[derive(Clone, Default)]
struct Fleet {
    answers_from: HashMap<String, u32>,
    calls: Arc<Mutex<Vec<(String, Op, u64)>>>,
    holds: Arc<Mutex<HashMap<String, bool>>>,
}

impl Fleet {
    fn new(hosts: &[(&str, u32)]) -> Fleet {
        Fleet {
            answers_from: hosts.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
            holds: Arc::new(Mutex::new(
                hosts.iter().map(|(h, _)| (h.to_string(), true)).collect(),
            )),
            ..Fleet::default()
        }
    }

    fn carry_out(&self) -> CarryOut {
        let fleet = self.clone();
        Arc::new(move |_shared, host, op, at| {
            let fleet = fleet.clone();
            Box::pin(async move {
                let tries = {
                    let mut calls = fleet.calls.lock().unwrap();
                    calls.push((host.name.clone(), op, at));
                    calls.iter().filter(|c| c.0 == host.name).count() as u32
                };
                let from = fleet.answers_from[&host.name];
                // A removal takes a moment on the host.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if op != Op::Remove || from == 0 || tries < from {
                    return unreachable();
                }
                fleet.holds.lock().unwrap().insert(host.name.clone(), false);
                HostResult::Removed {
                    detail: "found manifest; removed".into(),
                }
            })
        })
    }

    fn calls(&self) -> Vec<(String, Op, u64)> {
        self.calls.lock().unwrap().clone()
    }

    fn holding(&self) -> Vec<String> {
        let mut h: Vec<String> = self
            .holds
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| **v)
            .map(|(k, _)| k.clone())
            .collect();
        h.sort();
        h
    }
}

/// Drive one engine to its end with the fake fleet.
async fn drive(
    store: &MemStore,
    journal: &mut dyn JournalWriter,
    state: RunState,
    plan: &Plan,
    fleet: &Fleet,
    clock: Arc<dyn Clock>,
    first: Event,
) -> (RunState, Result<(), Stopped>) {
    let reporter = Reporter::new(true, false);
    let transport = Transport::new(None).unwrap();
    let engine = Engine::new(
        state,
        Shared::new(transport, plan.clone(), None),
        &reporter,
        Seams {
            journal,
            store: Arc::new(store.clone()),
            clock,
            stop: Stop::new(),
        },
    )
    .with_host_actions(fleet.carry_out());
    engine.run(first).await
}

fn begin(plan: &Plan, until_done: bool) -> Event {
    Event::Begin {
        plan: Box::new(plan.clone()),
        pid: 1,
        until_done,
    }
}

async fn new_run(store: &MemStore, plan: &Plan) -> Box<dyn JournalWriter> {
    let s: &dyn Store = store;
    let lease = s.lock(&plan.name, &holder("bastion-1")).await.unwrap();
    s.create(lease, &plan.run).await.unwrap()
}

fn holder(host: &str) -> Holder {
    Holder {
        run: RUN.into(),
        host: host.into(),
        user: "ann".into(),
        pid: 1,
    }
}

fn ticks(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter(|r| matches!(r.event, Event::Tick))
        .map(|r| r.at - T0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_purge_retries_unreachable_hosts_on_the_clock_until_they_answer() {
    let store = MemStore::new();
    let plan = purge_plan(&["h1", "h2", "h3"], 10);
    // h1 answers at once, h2 from its 3rd try, h3 from its 4th.
    let fleet = Fleet::new(&[("h1", 1), ("h2", 3), ("h3", 4)]);
    let mut w = new_run(&store, &plan).await;
    let clock = Arc::new(TestClock::starting_at(T0));
    let (state, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &fleet,
        clock.clone(),
        begin(&plan, true),
    )
    .await;
    r.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    assert!(state.hosts.iter().all(|h| h.state == HostState::Clean));
    assert!(fleet.holding().is_empty());
    // Three passes after the first, each after the backoff (1 s, 2 s, 4 s) that followed
    // the removals of the pass before (0.3 s each): on the clock, not in real time.
    let records = store.records(RUN);
    assert_eq!(ticks(&records), [1_300, 3_600, 7_900]);
    let tries: Vec<u64> = fleet
        .calls()
        .iter()
        .filter(|c| c.0 == "h3")
        .map(|c| c.2 - T0)
        .collect();
    assert_eq!(tries, [0, 1_300, 3_600, 7_900]);
    // What the journal says is what the engine held.
    assert_eq!(replay(&records), state);
    assert_eq!(clock.now_ms() - T0, 8_200);
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_in_the_store_stops_a_purge_as_a_first_ctrl_c_would() {
    let store = MemStore::new();
    let plan = purge_plan(&["h1", "h2"], 10);
    // h2 never answers: the purge would retry for ever.
    let fleet = Fleet::new(&[("h1", 1), ("h2", 0)]);
    let mut w = new_run(&store, &plan).await;
    let clock = Arc::new(TestClock::starting_at(T0));
    // Another machine's `abort`, 10 s into the run.
    let asker = {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move {
            clock.sleep(Duration::from_secs(10)).await;
            let req = StopRequest {
                by: "abort by bob@bastion-2".into(),
            };
            (&store as &dyn Store)
                .request_stop(RUN, &req)
                .await
                .unwrap();
        })
    };
    // An hour on the clock is far more than it may take (and no time at all here).
    let (state, r) = tokio::time::timeout(
        Duration::from_secs(3600),
        drive(
            &store,
            &mut *w,
            RunState::new(),
            &plan,
            &fleet,
            clock.clone(),
            begin(&plan, true),
        ),
    )
    .await
    .expect("the stop request was not seen");
    r.unwrap();
    asker.await.unwrap();
    // A removal command stopped: the rest pending (exit 4), h2 still holding.
    assert_eq!(exit_code(&state), crate::exit::INCOMPLETE);
    assert_eq!(fleet.holding(), ["h2"]);
    let records = store.records(RUN);
    let stop = records
        .iter()
        .position(|r| matches!(&r.event, Event::Stop(s) if s.by == "abort by bob@bastion-2"))
        .expect("a stop record naming who asked");
    assert_eq!(records[stop].at - T0, 10_000);
    // No host action was ordered after it.
    let after = fleet
        .calls()
        .iter()
        .filter(|c| c.2 >= records[stop].at)
        .count();
    assert_eq!(after, 0, "{:?}", fleet.calls());
    assert!(ticks(&records[stop..]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_lost_its_run_starts_nothing_more() {
    let store = MemStore::new();
    // One host at a time: h2 and h3 wait for h1's removal to be journaled.
    let plan = purge_plan(&["h1", "h2", "h3"], 1);
    let fleet = Fleet::new(&[("h1", 1), ("h2", 1), ("h3", 1)]);
    let mut w = new_run(&store, &plan).await;
    let clock = Arc::new(TestClock::starting_at(T0));
    // While h1 is being removed, a standby takes the run over.
    let taker = {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move {
            clock.sleep(Duration::from_millis(100)).await;
            store.take_over("app", holder("bastion-2"))
        })
    };
    let (_, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &fleet,
        clock,
        begin(&plan, false),
    )
    .await;
    assert_eq!(taker.await.unwrap(), 2);
    let e = r.unwrap_err();
    assert!(e.touched);
    assert!(
        matches!(e.source, StoreError::Fenced { .. }),
        "{:?}",
        e.source
    );
    assert!(e.source.is_lost());
    // h1's result was refused; nothing else was started.
    let hosts: Vec<String> = fleet.calls().into_iter().map(|c| c.0).collect();
    assert_eq!(hosts, ["h1"]);
    assert_eq!(
        store.records(RUN).len(),
        1,
        "only the beginning is recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_purge_killed_after_any_record_is_finished_by_reconcile() {
    let plan = purge_plan(&["h1", "h2", "h3"], 2);
    let hosts = [("h1", 1), ("h2", 2), ("h3", 1)];
    // The whole run once, for its records.
    let store = MemStore::new();
    let mut w = new_run(&store, &plan).await;
    let (state, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &Fleet::new(&hosts),
        Arc::new(TestClock::starting_at(T0)),
        begin(&plan, true),
    )
    .await;
    r.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK);
    drop(w);
    let all = store.records(RUN);
    assert!(all.len() >= 6, "{all:#?}");
    for k in 1..all.len() {
        // The controller died after its k-th record; every host acted on so far is as
        // that run left it (the fleet replays the calls the first k records ordered).
        let crashed = store.after_crash();
        crashed.truncate(RUN, k);
        let fleet = Fleet::new(&hosts);
        let seen = replay(&all[..k]);
        for h in &seen.hosts {
            if h.state == HostState::Clean {
                fleet.holds.lock().unwrap().insert(h.host.clone(), false);
            }
        }
        let s: &dyn Store = &crashed;
        let lease = s.lock("app", &holder("bastion-1")).await.unwrap();
        let (mut w, records) = s.open(lease, RUN).await.unwrap();
        assert_eq!(records.len(), k);
        let attach = Event::Attach(Attach {
            pid: 2,
            intent: Intent::Reconcile,
            until_done: true,
            fanout: None,
            user: "ann".into(),
            command: vec!["wavectl".into(), "reconcile".into()],
        });
        let (state, r) = drive(
            &crashed,
            &mut *w,
            replay(&records),
            &plan,
            &fleet,
            Arc::new(TestClock::starting_at(T0 + 60_000)),
            attach,
        )
        .await;
        r.unwrap();
        assert_eq!(exit_code(&state), crate::exit::OK, "after record {k}");
        assert!(
            state.hosts.iter().all(|h| h.state == HostState::Clean),
            "after record {k}: {:?}",
            state.hosts
        );
        assert!(fleet.holding().is_empty(), "after record {k}");
        assert_eq!(replay(&crashed.records(RUN)), state, "after record {k}");
    }
}
