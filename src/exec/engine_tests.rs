//! The engine against fake hosts (`fake_host`), the in-memory store and a clock on
//! paused tokio time, in milliseconds: a 1,000-host four-wave run; a hang in wave 2 and
//! its rollback; a lease that ran out while the controller was gone; a controller
//! killed after every record of an apply (resumed) and of a purge (reconciled); purges
//! whose hosts do not answer, retried on the clock; a stop request through the store; a
//! controller that lost its run; a group member outside the rollout holding a wave. No
//! network, no real time.

use std::sync::Arc;
use std::time::Duration;

use crate::inventory::{Host, HostKeyCheck};
use crate::report::Reporter;
use crate::rollout::verdict::Health;
use crate::rollout::{
    exit_code, replay, Attach, Deployment, Event, HostState, Intent, Op, Plan, Policy, Record,
    RunState, StopRequest, Target,
};
use crate::spec::{ActivationKind, Builtin, OnFailure};
use crate::store::{BoxFuture, Holder, JournalWriter, Lease, MemStore, Store, StoreError};

use super::{Engine, Seams, Stopped};
use crate::exec::clock::{Clock, TestClock};
use crate::exec::fake_host::{Behaviour, FakeHosts};
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
            gates: None,
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

/// Drive one engine to its end on these hosts.
async fn drive(
    store: &MemStore,
    journal: &mut dyn JournalWriter,
    state: RunState,
    plan: &Plan,
    hosts: &FakeHosts,
    clock: Arc<dyn Clock>,
    first: Event,
) -> (RunState, Result<(), Stopped>) {
    let reporter = Reporter::new(true, false);
    let engine = Engine::new(
        state,
        plan.clone(),
        &reporter,
        Seams {
            hosts: Arc::new(hosts.for_run(plan, clock.clone())),
            journal,
            store: Arc::new(store.clone()),
            clock,
            stop: Stop::new(),
        },
    );
    engine.run(first).await
}

/// Purge hosts that each hold an earlier run's install; each refuses its first `n`
/// calls (`u32::MAX`: every one).
fn purge_fleet(plan: &Plan, clock: Arc<dyn Clock>, hosts: &[(&str, u32)]) -> FakeHosts {
    let fleet = FakeHosts::new(plan, clock);
    for (h, n) in hosts {
        fleet
            .holding(h, "20270101T000000Z-app-0000")
            .behave(h, Behaviour::UnreachableFor(*n));
    }
    fleet
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

/// The controller died: a new one takes the run's lock on the crashed store, reads the
/// journal and drives the run on from its replay. Returns the store, how many records it
/// found, and how the drive ended.
async fn take_over(
    store: &MemStore,
    run: &str,
    plan: &Plan,
    fleet: &FakeHosts,
    clock: Arc<dyn Clock>,
    first: Event,
) -> (MemStore, usize, RunState, Result<(), Stopped>) {
    let crashed = store.after_crash();
    let s: &dyn Store = &crashed;
    let lease = s.lock(&plan.name, &holder("bastion-1")).await.unwrap();
    let (mut w, records) = s.open(lease, run).await.unwrap();
    let (state, r) = drive(
        &crashed,
        &mut *w,
        replay(&records),
        plan,
        fleet,
        clock,
        first,
    )
    .await;
    drop(w);
    (crashed, records.len(), state, r)
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
    let clock = Arc::new(TestClock::starting_at(T0));
    // h1 answers at once, h2 from its 3rd try, h3 from its 4th.
    let fleet = purge_fleet(&plan, clock.clone(), &[("h1", 0), ("h2", 2), ("h3", 3)]);
    let mut w = new_run(&store, &plan).await;
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
    assert!(fleet.holders().is_empty());
    // Three passes after the first, each after the backoff (1 s, 2 s, 4 s) that followed
    // the removals of the pass before (0.3 s each): on the clock, not in real time.
    let records = store.records(RUN);
    assert_eq!(ticks(&records), [1_300, 3_600, 7_900]);
    let tries: Vec<u64> = fleet.calls("h3", "remove").iter().map(|t| t - T0).collect();
    assert_eq!(tries, [0, 1_300, 3_600, 7_900]);
    // What the journal says is what the engine held.
    assert_eq!(replay(&records), state);
    assert_eq!(clock.now_ms() - T0, 8_200);
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_in_the_store_stops_a_purge_as_a_first_ctrl_c_would() {
    let store = MemStore::new();
    let plan = purge_plan(&["h1", "h2"], 10);
    let clock = Arc::new(TestClock::starting_at(T0));
    // h2 never answers: the purge would retry for ever.
    let fleet = purge_fleet(&plan, clock.clone(), &[("h1", 0), ("h2", u32::MAX)]);
    let mut w = new_run(&store, &plan).await;
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
    assert_eq!(fleet.holders(), ["h2"]);
    let records = store.records(RUN);
    let stop = records
        .iter()
        .position(|r| matches!(&r.event, Event::Stop(s) if s.by == "abort by bob@bastion-2"))
        .expect("a stop record naming who asked");
    assert_eq!(records[stop].at - T0, 10_000);
    // No host action was ordered after it.
    let after: Vec<u64> = ["h1", "h2"]
        .iter()
        .flat_map(|h| fleet.calls(h, "remove"))
        .filter(|t| *t >= records[stop].at)
        .collect();
    assert!(after.is_empty(), "{after:?}");
    assert!(ticks(&records[stop..]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_lost_its_run_starts_nothing_more() {
    let store = MemStore::new();
    // One host at a time: h2 and h3 wait for h1's removal to be journaled.
    let plan = purge_plan(&["h1", "h2", "h3"], 1);
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = purge_fleet(&plan, clock.clone(), &[("h1", 0), ("h2", 0), ("h3", 0)]);
    let mut w = new_run(&store, &plan).await;
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
    assert_eq!(fleet.calls("h1", "remove").len(), 1);
    assert!(fleet.calls("h2", "remove").is_empty());
    assert!(fleet.calls("h3", "remove").is_empty());
    assert_eq!(
        store.records(RUN).len(),
        1,
        "only the beginning is recorded"
    );
}

/// A journal writer that dies with its controller after `left` more records: the rest
/// of the append that reaches the limit is lost, and so is every later one.
struct Crashing {
    inner: Box<dyn JournalWriter>,
    left: usize,
}

impl JournalWriter for Crashing {
    fn run(&self) -> &str {
        self.inner.run()
    }

    fn lease(&self) -> &Lease {
        self.inner.lease()
    }

    fn append<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let n = records.len().min(self.left);
            if n > 0 {
                self.inner.append(&records[..n]).await?;
                self.left -= n;
            }
            if n < records.len() {
                return Err(StoreError::Unreachable {
                    store: "memory".into(),
                    why: "the controller died".into(),
                });
            }
            Ok(())
        })
    }
}

/// A run on `store` whose controller dies after its `k`-th record (the rest of that
/// append and every later one lost): the hosts are as that run left them.
async fn crash_after(
    k: usize,
    store: &MemStore,
    plan: &Plan,
    fleet: &FakeHosts,
    clock: Arc<dyn Clock>,
    until_done: bool,
) {
    let mut w = Crashing {
        inner: new_run(store, plan).await,
        left: k,
    };
    let (_, r) = drive(
        store,
        &mut w,
        RunState::new(),
        plan,
        fleet,
        clock,
        begin(plan, until_done),
    )
    .await;
    assert!(r.is_err(), "after record {k}: the run did not die");
}

fn attach(intent: Intent, until_done: bool) -> Event {
    Event::Attach(Attach {
        pid: 2,
        intent,
        until_done,
        fanout: None,
        user: "ann".into(),
        command: vec!["wavectl".into(), "reconcile".into()],
    })
}

/// Whether every host the fake fleet says holds the run's install is one the run's
/// state says may hold it, and every other host of the run is one it calls clean of it.
fn nothing_unreported(state: &RunState, fleet: &FakeHosts, run: &str) -> Result<(), String> {
    let sides = fleet.snapshot();
    for h in &state.hosts {
        let holds = sides[&h.host].holds.as_ref().is_some_and(|i| {
            i.run == run || !matches!(state.kind(), Some(crate::rollout::RunKind::Apply))
        });
        if holds && !h.state.may_hold() {
            return Err(format!(
                "{} holds the script, the run says {:?}",
                h.host, h.state
            ));
        }
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_purge_killed_after_any_record_is_finished_by_reconcile() {
    let plan = purge_plan(&["h1", "h2", "h3"], 2);
    let hosts = [("h1", 0), ("h2", 1), ("h3", 0)];
    // The whole run once, for its records.
    let store = MemStore::new();
    let mut w = new_run(&store, &plan).await;
    let clock = Arc::new(TestClock::starting_at(T0));
    let (state, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &purge_fleet(&plan, clock.clone(), &hosts),
        clock,
        begin(&plan, true),
    )
    .await;
    r.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK);
    drop(w);
    let all = store.records(RUN).len();
    assert!(all >= 6, "{all}");
    for k in 1..all {
        // The controller died after its k-th record: the hosts are as that run left them.
        let store = MemStore::new();
        let clock = Arc::new(TestClock::starting_at(T0));
        let fleet = purge_fleet(&plan, clock.clone(), &hosts);
        crash_after(k, &store, &plan, &fleet, clock, true).await;
        let later = Arc::new(TestClock::starting_at(T0 + 60_000));
        let (crashed, found, state, r) = take_over(
            &store,
            RUN,
            &plan,
            &fleet,
            later,
            attach(Intent::Reconcile, true),
        )
        .await;
        assert_eq!(found, k);
        r.unwrap();
        assert_eq!(exit_code(&state), crate::exit::OK, "after record {k}");
        assert!(
            state.hosts.iter().all(|h| h.state == HostState::Clean),
            "after record {k}: {:?}",
            state.hosts
        );
        assert!(fleet.holders().is_empty(), "after record {k}");
        assert_eq!(replay(&crashed.records(RUN)), state, "after record {k}");
    }
}

// --- applies ---

const APPLY: &str = "20270115T080000Z-raid-health-0001";

fn deployment() -> Deployment {
    Deployment {
        install_path: "/usr/local/sbin/raid-health".into(),
        mode: 0o755,
        sha256: "00".repeat(32),
        script_timeout: Duration::from_secs(10),
        activation: ActivationKind::Cron,
        schedule: "*/5 * * * *".into(),
        run_on_install: true,
        interval: Duration::from_secs(15),
        probe_timeout: Duration::from_secs(10),
        builtins: vec![Builtin::Reachable, Builtin::Script],
        thresholds: Default::default(),
        checks: vec![],
        lease: Duration::from_secs(15 * 60),
        force: false,
    }
}

/// An apply of `n` hosts `h0001`.. in waves of these sizes (the last one repeating).
fn apply_plan(n: usize, sizes: &[usize], concurrency: usize) -> Plan {
    let hosts: Vec<Host> = (1..=n).map(|i| host(&format!("h{i:04}"))).collect();
    let mut waves: Vec<Vec<String>> = Vec::new();
    let mut names = hosts.iter().map(|h| h.name.clone());
    for i in 0.. {
        let size = sizes[i.min(sizes.len() - 1)];
        let wave: Vec<String> = names.by_ref().take(size).collect();
        if wave.is_empty() {
            break;
        }
        waves.push(wave);
    }
    Plan {
        run: APPLY.into(),
        name: "raid-health".into(),
        target: Target::Apply(deployment()),
        waves,
        hosts,
        policy: Policy {
            max_unhealthy: 0,
            on_failure: OnFailure::Rollback,
            bake: Duration::from_secs(60),
            min_runs: 1,
            concurrency,
            fanout: concurrency,
            login_timeout: Duration::from_secs(5),
            baseline: true,
            controls: true,
            gates: None,
        },
        spec: None,
        inventory: None,
        ssh_config: None,
        user: "ann".into(),
        approval: None,
        command: vec!["wavectl".into(), "apply".into()],
        preflight: None,
        groups: None,
    }
}

/// Begin an apply on `fleet` and drive it to its end.
async fn apply(
    store: &MemStore,
    plan: &Plan,
    fleet: &FakeHosts,
    clock: Arc<dyn Clock>,
) -> RunState {
    let mut w = new_run(store, plan).await;
    let (state, r) = drive(
        store,
        &mut *w,
        RunState::new(),
        plan,
        fleet,
        clock,
        begin(plan, false),
    )
    .await;
    r.unwrap();
    state
}

#[tokio::test(start_paused = true)]
async fn a_thousand_hosts_in_four_waves_end_confirmed() {
    // 1, 10%, 50%, then the rest.
    let plan = apply_plan(1000, &[1, 100, 500, 399], 50);
    assert_eq!(plan.waves.len(), 4);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    let state = apply(&store, &plan, &fleet, clock.clone()).await;
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    assert!(
        state.hosts.iter().all(|h| h.state == HostState::Confirmed),
        "{:?}",
        state.hosts.iter().find(|h| h.state != HostState::Confirmed)
    );
    let sides = fleet.snapshot();
    assert!(sides.values().all(|s| s
        .holds
        .as_ref()
        .is_some_and(|i| i.run == APPLY && i.confirmed)));
    // Each wave baked (a minute at least) before the next was installed.
    let first_install = |w: usize| {
        plan.waves[w]
            .iter()
            .flat_map(|h| fleet.calls(h, "install"))
            .min()
            .unwrap()
    };
    let last_install = |w: usize| {
        plan.waves[w]
            .iter()
            .flat_map(|h| fleet.calls(h, "install"))
            .max()
            .unwrap()
    };
    for w in 1..4 {
        assert!(
            first_install(w) >= last_install(w - 1) + 60_000,
            "wave {} began {} ms after wave {} was installed",
            w + 1,
            first_install(w) - last_install(w - 1),
            w
        );
    }
    assert_eq!(replay(&store.records(APPLY)), state);
}

#[tokio::test(start_paused = true)]
async fn a_hang_in_wave_two_rolls_back_every_host_that_got_the_script() {
    let plan = apply_plan(30, &[1, 4, 25], 10);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    // The second host of wave 2 hangs as soon as the script runs there.
    let hung = plan.waves[1][1].clone();
    fleet.behave(&hung, Behaviour::HangsOnRun);
    let state = apply(&store, &plan, &fleet, clock.clone()).await;
    // Rolled back, the hung host still pending (it cannot be cleaned while it hangs).
    assert_eq!(
        exit_code(&state),
        crate::exit::INCOMPLETE,
        "{:?}",
        state.status
    );
    let h = state.host(&hung).unwrap();
    assert_eq!(h.state, HostState::Pending, "{h:?}");
    let v = h.verdict.as_ref().expect("a verdict on the hung host");
    assert_eq!(v.health, Health::Hung, "{v:?}");
    // Every other host that got it: removed, and clean of it on the host.
    let got: Vec<&String> = plan.waves[..2].iter().flatten().collect();
    for name in &got {
        assert!(!fleet.calls(name, "install").is_empty());
        assert!(
            !fleet.calls(name, "remove").is_empty(),
            "{name} not rolled back"
        );
        if **name != hung {
            assert_eq!(state.host(name).unwrap().state, HostState::Clean, "{name}");
        }
    }
    assert_eq!(fleet.holders(), std::slice::from_ref(&hung));
    // Wave 3 was never touched.
    for name in &plan.waves[2] {
        assert!(fleet.calls(name, "install").is_empty(), "{name} got it");
        assert_eq!(state.host(name).unwrap().state, HostState::Untouched);
    }
    nothing_unreported(&state, &fleet, APPLY).unwrap();
    assert_eq!(replay(&store.records(APPLY)), state);
}

#[tokio::test(start_paused = true)]
async fn a_host_whose_lease_ran_out_while_the_controller_was_gone_is_unhealthy_with_its_evidence() {
    let plan = apply_plan(3, &[1, 2], 10);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    // The controller dies in wave 1's bake: after the canary's install and a round.
    let all = {
        let probe = MemStore::new();
        let probe_clock = Arc::new(TestClock::starting_at(T0));
        let probe_fleet = FakeHosts::new(&plan, probe_clock.clone());
        apply(&probe, &plan, &probe_fleet, probe_clock).await;
        probe.records(APPLY)
    };
    let in_bake = all
        .iter()
        .position(|r| matches!(r.event, Event::Round { wave: 1, .. }))
        .expect("a round of wave 1");
    crash_after(in_bake + 1, &store, &plan, &fleet, clock.clone(), false).await;
    let canary = plan.waves[0][0].clone();
    let installed = fleet.calls(&canary, "install")[0];
    // Nobody resumes for 20 minutes: the canary's 15-minute lease runs out and its
    // guard reverts it.
    clock.sleep(Duration::from_secs(20 * 60)).await;
    assert!(fleet.holders().is_empty());
    let reverted = fleet.snapshot()[&canary]
        .reverted
        .clone()
        .expect("reverted");
    assert!(reverted.lease_until >= (installed + 15 * 60_000) / 1000);
    let (_, _, state, r) = take_over(
        &store,
        APPLY,
        &plan,
        &fleet,
        clock.clone(),
        attach(Intent::Resume, false),
    )
    .await;
    r.unwrap();
    let h = state.host(&canary).unwrap();
    assert_eq!(h.state, HostState::Reverted, "{h:?}");
    let v = h.verdict.as_ref().expect("a verdict");
    assert!(v.health.is_bad(), "{v:?}");
    let said = v
        .evidence
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let expected = format!(
        "lease expired at {}",
        crate::rollout::step::utc(reverted.lease_until)
    );
    assert!(said.contains(&expected), "{said}");
    // The run rolled back (the budget is 0): the rest never got it.
    assert_eq!(
        exit_code(&state),
        crate::exit::ROLLED_BACK,
        "{:?}",
        state.status
    );
    assert!(fleet.holders().is_empty());
    for name in &plan.waves[1] {
        assert!(fleet.calls(name, "install").is_empty());
    }
    nothing_unreported(&state, &fleet, APPLY).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_apply_killed_after_any_record_is_finished_by_resume() {
    let plan = apply_plan(6, &[1, 2, 3], 3);
    // The whole run once, for its records.
    let all = {
        let store = MemStore::new();
        let clock = Arc::new(TestClock::starting_at(T0));
        let state = apply(&store, &plan, &FakeHosts::new(&plan, clock.clone()), clock).await;
        assert_eq!(exit_code(&state), crate::exit::OK);
        store.records(APPLY).len()
    };
    assert!(all >= 20, "{all}");
    // Crashes with an action in flight whose result was lost: its host settled on resume.
    let mut settled = 0;
    for k in 1..all {
        // The controller died after its k-th record: the hosts are as that run left them
        // (an action whose result was not recorded did happen).
        let store = MemStore::new();
        let clock = Arc::new(TestClock::starting_at(T0));
        let fleet = FakeHosts::new(&plan, clock.clone());
        crash_after(k, &store, &plan, &fleet, clock.clone(), false).await;
        // A minute later (well within the leases), `resume`.
        clock.sleep(Duration::from_secs(60)).await;
        let (crashed, found, state, r) = take_over(
            &store,
            APPLY,
            &plan,
            &fleet,
            clock.clone(),
            attach(Intent::Resume, false),
        )
        .await;
        assert_eq!(found, k);
        r.unwrap();
        assert_eq!(
            exit_code(&state),
            crate::exit::OK,
            "after record {k}: {:?}",
            state.status
        );
        assert!(
            state.hosts.iter().all(|h| h.state == HostState::Confirmed),
            "after record {k}: {:?}",
            state.hosts
        );
        let sides = fleet.snapshot();
        assert!(
            sides
                .values()
                .all(|s| s.holds.as_ref().is_some_and(|i| i.confirmed)),
            "after record {k}: {sides:?}"
        );
        nothing_unreported(&state, &fleet, APPLY).unwrap();
        let after = crashed.records(APPLY);
        assert_eq!(replay(&after), state, "after record {k}");
        settled += after[k..]
            .iter()
            .filter(|r| matches!(r.event, Event::Result { op: Op::Settle, .. }))
            .count();
    }
    assert!(settled > 0, "no crash left an action's result unknown");
    eprintln!("{settled} hosts settled over {} crashes", all - 1);
}

/// The wave-1 rounds in `records` up to the first that gives `host` a bad verdict, and
/// whether one did.
fn rounds_to_bad(records: &[Record], host: &str) -> (usize, bool) {
    let mut n = 0;
    for r in records {
        if let Event::Round {
            wave: 1, verdicts, ..
        } = &r.event
        {
            n += 1;
            if verdicts
                .iter()
                .any(|v| v.host == host && v.verdict.health.is_bad())
            {
                return (n, true);
            }
        }
    }
    (n, false)
}

#[tokio::test(start_paused = true)]
async fn a_bake_resumed_after_k_bad_rounds_reaches_its_verdict_after_the_remaining_ones() {
    // The canary's load is out of line at every probe once installed: `strikes` (3)
    // rounds in a row fail it.
    let mut plan = apply_plan(3, &[1, 2], 10);
    if let Target::Apply(d) = &mut plan.target {
        d.builtins = vec![Builtin::Reachable, Builtin::Load];
    }
    let strikes = crate::spec::Thresholds::default().strikes;
    let canary = plan.waves[0][0].clone();
    let fleet_of = |clock: Arc<dyn Clock>| {
        let fleet = FakeHosts::new(&plan, clock);
        fleet.behave(&canary, Behaviour::LoadedOnceInstalled);
        fleet
    };
    // Without a crash: the verdict comes in the `strikes`-th round.
    let all = {
        let store = MemStore::new();
        let clock = Arc::new(TestClock::starting_at(T0));
        let state = apply(&store, &plan, &fleet_of(clock.clone()), clock).await;
        assert_eq!(exit_code(&state), crate::exit::ROLLED_BACK);
        store.records(APPLY)
    };
    assert_eq!(rounds_to_bad(&all, &canary), (strikes as usize, true));
    // The controller dies right after its (strikes - 1)-th round of wave 1 is journaled.
    let k = 2;
    assert!(k < strikes as usize);
    let kth = all
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.event, Event::Round { wave: 1, .. }))
        .nth(k - 1)
        .map(|(i, _)| i)
        .expect("k rounds of wave 1");
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = fleet_of(clock.clone());
    crash_after(kth + 1, &store, &plan, &fleet, clock.clone(), false).await;
    // The journal kept the canary's streak.
    let records = store.records(APPLY);
    assert_eq!(records.len(), kth + 1);
    let streak = replay(&records).watch[&canary].counts.streaks["load"];
    assert_eq!(streak.high, k as u32, "{streak:?}");
    // A few seconds later, `resume`: the verdict comes after the remaining rounds.
    clock.sleep(Duration::from_secs(5)).await;
    let (crashed, _, state, r) = take_over(
        &store,
        APPLY,
        &plan,
        &fleet,
        clock.clone(),
        attach(Intent::Resume, false),
    )
    .await;
    r.unwrap();
    let after = crashed.records(APPLY);
    assert_eq!(
        rounds_to_bad(&after[records.len()..], &canary),
        (strikes as usize - k, true)
    );
    let v = state
        .host(&canary)
        .unwrap()
        .verdict
        .clone()
        .expect("a verdict");
    assert_eq!(v.health, Health::Degraded, "{v:?}");
    let said = v.evidence.iter().map(|e| e.to_string()).collect::<Vec<_>>();
    assert!(
        said.iter().any(|e| e.contains("3 probes in a row")),
        "{said:?}"
    );
    assert_eq!(
        exit_code(&state),
        crate::exit::ROLLED_BACK,
        "{:?}",
        state.status
    );
    assert!(fleet.holders().is_empty());
    assert_eq!(replay(&after), state);
}

#[tokio::test(start_paused = true)]
async fn a_canary_whose_script_runs_fail_rolls_the_run_back_with_the_evidence() {
    let plan = apply_plan(5, &[1, 4], 10);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    let canary = plan.waves[0][0].clone();
    fleet.behave(&canary, Behaviour::FailingHealth);
    let state = apply(&store, &plan, &fleet, clock).await;
    assert_eq!(
        exit_code(&state),
        crate::exit::ROLLED_BACK,
        "{:?}",
        state.status
    );
    let h = state.host(&canary).unwrap();
    assert_eq!(h.state, HostState::Clean, "{h:?}");
    let v = h.verdict.as_ref().expect("a verdict");
    assert_eq!(v.health, Health::Degraded, "{v:?}");
    let said = v
        .evidence
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(said.contains("killed by its timeout"), "{said}");
    assert!(fleet.holders().is_empty());
    for name in &plan.waves[1] {
        assert!(fleet.calls(name, "install").is_empty(), "{name} got it");
    }
}

#[tokio::test(start_paused = true)]
async fn a_purge_leaves_unreachable_hosts_pending_and_reconcile_finishes_them() {
    let plan = purge_plan(&["h1", "h2", "h3", "h4"], 10);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = purge_fleet(
        &plan,
        clock.clone(),
        &[("h1", 0), ("h2", 0), ("h3", 0), ("h4", 0)],
    );
    fleet
        .behave("h2", Behaviour::Unreachable)
        .behave("h4", Behaviour::Unreachable);
    let mut w = new_run(&store, &plan).await;
    // Without --until-done: one pass, the unreachable hosts left pending (exit 4).
    let (state, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &fleet,
        clock.clone(),
        begin(&plan, false),
    )
    .await;
    r.unwrap();
    drop(w);
    assert_eq!(
        exit_code(&state),
        crate::exit::INCOMPLETE,
        "{:?}",
        state.status
    );
    let pending: Vec<&str> = state
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Pending)
        .map(|h| h.host.as_str())
        .collect();
    assert_eq!(pending, ["h2", "h4"]);
    assert_eq!(fleet.holders(), ["h2", "h4"]);
    nothing_unreported(&state, &fleet, RUN).unwrap();
    // They answer again; `reconcile` finishes the removals, and only those.
    fleet
        .behave("h2", Behaviour::Healthy)
        .behave("h4", Behaviour::Healthy);
    clock.sleep(Duration::from_secs(600)).await;
    let s: &dyn Store = &store;
    let lease = s.lock("app", &holder("bastion-1")).await.unwrap();
    let (mut w, records) = s.open(lease, RUN).await.unwrap();
    let (state, r) = drive(
        &store,
        &mut *w,
        replay(&records),
        &plan,
        &fleet,
        clock,
        attach(Intent::Reconcile, false),
    )
    .await;
    r.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    assert!(state.hosts.iter().all(|h| h.state == HostState::Clean));
    assert!(fleet.holders().is_empty());
    assert_eq!(fleet.calls("h1", "remove").len(), 1);
    assert_eq!(fleet.calls("h3", "remove").len(), 1);
    assert_eq!(fleet.calls("h2", "remove").len(), 2);
    assert_eq!(replay(&store.records(RUN)), state);
}

#[tokio::test(start_paused = true)]
async fn a_group_member_outside_the_rollout_that_does_not_answer_holds_the_wave_until_it_does() {
    // Two targets in one group, one wave each; the group's standby is not a target.
    let mut plan = apply_plan(2, &[1, 1], 2);
    for h in &mut plan.hosts {
        h.labels.insert("cluster".into(), "pg-main".into());
    }
    let mut standby = host("standby");
    standby.labels.insert("cluster".into(), "pg-main".into());
    plan.groups = Some(crate::rollout::Groups {
        label: "cluster".into(),
        others: vec![standby],
    });
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    fleet.behave("standby", Behaviour::Unreachable);
    let mut w = new_run(&store, &plan).await;
    let (state, r) = drive(
        &store,
        &mut *w,
        RunState::new(),
        &plan,
        &fleet,
        clock.clone(),
        begin(&plan, false),
    )
    .await;
    r.unwrap();
    // Paused before wave 1, naming group and host; nothing installed anywhere.
    assert_eq!(state.status_name(), "paused", "{:?}", state.status);
    assert_eq!(exit_code(&state), crate::exit::ROLLED_BACK);
    let Some(crate::rollout::End::Paused { why, .. }) = state.end() else {
        panic!("{:?}", state.status);
    };
    assert!(
        matches!(why, crate::rollout::Why::Group { group, host, .. } if group == "pg-main" && host == "standby"),
        "{why:?}"
    );
    assert!(fleet.holders().is_empty(), "{:?}", fleet.holders());
    // The standby was only probed; the other target of the group was sampled too.
    assert!(!fleet.calls("standby", "probe").is_empty());
    assert!(fleet.calls("standby", "install").is_empty());
    assert!(!fleet.calls(&plan.waves[1][0], "probe").is_empty());
    assert_eq!(replay(&store.records(APPLY)), state);

    // It answers again: resume samples the group again and goes on to the end.
    fleet.behave("standby", Behaviour::Healthy);
    let (state, r) = drive(
        &store,
        &mut *w,
        state,
        &plan,
        &fleet,
        clock.clone(),
        attach(Intent::Resume, false),
    )
    .await;
    r.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    assert!(state.hosts.iter().all(|h| h.state == HostState::Confirmed));
    assert!(fleet.calls("standby", "install").is_empty());
    assert_eq!(replay(&store.records(APPLY)), state);
}

/// An apply of three hosts (h0001, then h0002 and h0003) with a gate after wave 1.
fn gated_apply(timeout: Duration) -> Plan {
    let mut plan = apply_plan(3, &[1, 2], 10);
    plan.policy.gates = Some(crate::rollout::Gates {
        after: vec![1],
        timeout,
    });
    plan
}

/// When wave 2 (h0002, h0003) was first installed, ms after T0.
fn wave_two_began(fleet: &FakeHosts) -> u64 {
    ["h0002", "h0003"]
        .iter()
        .flat_map(|h| fleet.calls(h, "install"))
        .min()
        .unwrap()
        - T0
}

#[tokio::test(start_paused = true)]
async fn a_run_waits_at_its_gate_probing_until_a_promote_in_the_store() {
    let plan = gated_apply(Duration::from_secs(3600));
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    // Another machine's `promote`, ten minutes in (the bake is a minute); wave 2 then
    // begins with its baseline (samples a few seconds apart).
    let promoter = {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move {
            clock.sleep(Duration::from_secs(600)).await;
            let p = crate::rollout::Promotion {
                wave: 1,
                by: "promote by bob@bastion-2".into(),
            };
            (&store as &dyn Store).promote(APPLY, &p).await.unwrap();
        })
    };
    let state = apply(&store, &plan, &fleet, clock.clone()).await;
    promoter.await.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    assert!(state.hosts.iter().all(|h| h.state == HostState::Confirmed));
    let began = wave_two_began(&fleet);
    assert!(
        (600_000..630_000).contains(&began),
        "wave 2 began at {began} ms"
    );
    // It probed wave 1 all along (every interval), and the promote is in the journal.
    let records = store.records(APPLY);
    let rounds = records
        .iter()
        .filter(|r| matches!(r.event, Event::Round { wave: 1, .. }) && r.at - T0 > 120_000)
        .count();
    assert!(rounds >= 25, "{rounds} rounds while gated");
    assert!(records
        .iter()
        .any(|r| matches!(&r.event, Event::Promote(p) if p.wave == 1)));
    assert_eq!(replay(&records), state);
}

#[tokio::test(start_paused = true)]
async fn a_gate_nobody_promotes_rolls_the_run_back_at_its_timeout() {
    let plan = gated_apply(Duration::from_secs(300));
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    let state = apply(&store, &plan, &fleet, clock.clone()).await;
    assert_eq!(exit_code(&state), crate::exit::ROLLED_BACK);
    assert!(matches!(
        state.end(),
        Some(crate::rollout::End::Clean {
            why: crate::rollout::Why::GateTimeout { wave: 1, .. }
        })
    ));
    assert!(fleet.calls("h0002", "install").is_empty());
    assert_eq!(state.host("h0001").unwrap().state, HostState::Clean);
}

#[tokio::test(start_paused = true)]
async fn a_freeze_in_the_store_holds_the_next_wave_until_it_is_lifted() {
    let plan = apply_plan(3, &[1, 2], 10);
    let store = MemStore::new();
    let clock = Arc::new(TestClock::starting_at(T0));
    let fleet = FakeHosts::new(&plan, clock.clone());
    // Frozen 30 s in (wave 1 bakes), lifted 20 minutes in.
    let operator = {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move {
            let s: &dyn Store = &store;
            clock.sleep(Duration::from_secs(30)).await;
            let f = crate::rollout::Freeze {
                rollout: None,
                by: "bob@bastion-2".into(),
                reason: "incident 42".into(),
                at: clock.now_ms(),
                until: None,
            };
            s.freeze(&f).await.unwrap();
            clock.sleep(Duration::from_secs(20 * 60 - 30)).await;
            assert_eq!(s.unfreeze(None).await.unwrap(), [f]);
        })
    };
    let state = apply(&store, &plan, &fleet, clock.clone()).await;
    operator.await.unwrap();
    assert_eq!(exit_code(&state), crate::exit::OK, "{:?}", state.status);
    let began = wave_two_began(&fleet);
    assert!(
        (1_200_000..1_230_000).contains(&began),
        "wave 2 began at {began} ms"
    );
    let records = store.records(APPLY);
    let freezes: Vec<bool> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Freeze { freeze } => Some(freeze.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(freezes, [true, false]);
    assert_eq!(replay(&records), state);
}
