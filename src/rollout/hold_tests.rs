//! Gates and freezes through the state machine: a run waits after a gated wave's bake
//! (probing) until a promote, rolls back when none comes in time or on an abort; a
//! frozen rollout starts no new wave until the freeze is lifted or runs out.

use super::*;

/// What the simulated operator does, and what the simulation saw of it.
#[derive(Default)]
pub(super) struct Hold {
    /// Promote the run as soon as it waits at a gate.
    pub promote: bool,
    /// Abort the run as soon as it waits at a gate.
    pub abort: bool,
    /// Freeze the rollout once this many installs were ordered.
    pub freeze_after_installs: Option<(usize, Freeze)>,
    froze: bool,
    /// Lift the freeze after this many probe rounds while frozen.
    pub thaw_after_rounds: Option<usize>,
    pub frozen_rounds: usize,
    /// Installs ordered when the promote, and the thaw, came.
    pub installs_at_promote: Option<usize>,
    pub installs_at_thaw: Option<usize>,
}

impl Sim {
    /// The operator's move, if one is due; true if an event was submitted.
    pub(super) fn hold_step(&mut self) -> bool {
        if let Some((wave, ..)) = self.s.gate() {
            if self.hold.abort && !self.s.stopped {
                self.submit(Event::Stop(StopRequest {
                    by: "abort by ann@ops".into(),
                }));
                return true;
            }
            if self.hold.promote && self.hold.installs_at_promote.is_none() {
                self.hold.installs_at_promote = Some(self.installs());
                self.submit(Event::Promote(Promotion {
                    wave,
                    by: "promote by ann@ops".into(),
                }));
                return true;
            }
        }
        if let Some((n, f)) = self.hold.freeze_after_installs.clone() {
            if !self.hold.froze && self.installs() >= n {
                self.hold.froze = true;
                self.submit(Event::Freeze { freeze: Some(f) });
                return true;
            }
        }
        if let Some(n) = self.hold.thaw_after_rounds {
            if self.hold.frozen_rounds >= n && self.hold.installs_at_thaw.is_none() {
                self.hold.installs_at_thaw = Some(self.installs());
                self.submit(Event::Freeze { freeze: None });
                return true;
            }
        }
        false
    }
}

fn gated(after: &[usize], timeout: Duration) -> Plan {
    let mut p = apply_plan(&[&["a"], &["b", "c"]]);
    p.policy.gates = Some(Gates {
        after: after.to_vec(),
        timeout,
    });
    p
}

fn freeze(until: Option<u64>) -> Freeze {
    Freeze {
        rollout: None,
        by: "bob@bastion".into(),
        reason: "incident 42".into(),
        at: 1,
        until,
    }
}

/// Step the run until it waits at a gate (answering actions, healthy probe rounds).
fn until_gated(sim: &mut Sim) {
    for _ in 0..1_000 {
        if sim.s.gate().is_some() {
            return;
        }
        match sim.queue.pop_front().expect("nothing ordered") {
            Action::Host { host, op, .. } => {
                let result = sim.world.result(&host, op);
                sim.submit(Event::Result { host, op, result });
            }
            Action::Baseline { wave, .. } => sim.submit(Event::BaselineDone {
                wave,
                watch: vec![],
                group: vec![],
            }),
            Action::Probe { wave, hosts, .. } => sim.round(wave, hosts),
            Action::EndProbe => {}
            Action::WakeAt(t) => {
                sim.now = sim.now.max(t);
                sim.submit(Event::Tick);
            }
        }
    }
    panic!("never gated: {:?}", sim.s.status);
}

#[test]
fn a_gate_holds_the_next_wave_until_promote_then_the_run_goes_on() {
    let mut sim = Sim::begin(gated(&[1], Duration::from_secs(3600)), World::default());
    until_gated(&mut sim);
    assert_eq!(sim.s.status_name(), "gated");
    let (wave, since, until) = sim.s.gate().unwrap();
    assert_eq!((wave, until - since), (1, 3_600_000));
    // While it waits, wave 1's hosts are still probed (their leases renewed), and the
    // machine asks to be woken at the deadline.
    assert_eq!(sim.s.probing().unwrap().1, ["a"]);
    assert!(
        sim.queue.contains(&Action::WakeAt(until)),
        "{:?}",
        sim.queue
    );
    // A promote for another wave does nothing.
    sim.submit(Event::Promote(Promotion {
        wave: 2,
        by: "x".into(),
    }));
    assert_eq!(sim.s.status_name(), "gated");
    sim.hold.promote = true;
    sim.run();
    assert_eq!(sim.hold.installs_at_promote, Some(1), "b and c waited");
    assert_eq!(sim.s.end(), Some(&End::Done));
    assert_eq!(exit_code(&sim.s), exit::OK);
    for h in ["a", "b", "c"] {
        assert_eq!(sim.state(h), HostState::Confirmed, "{h}");
    }
}

#[test]
fn no_promote_within_the_gate_timeout_rolls_back() {
    let mut sim = Sim::begin(gated(&[1], Duration::from_secs(60)), World::default());
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ROLLED_BACK);
    assert_eq!(sim.s.status_name(), "rolled-back");
    assert_eq!(
        sim.s.end(),
        Some(&End::Clean {
            why: Why::GateTimeout {
                wave: 1,
                timeout: 60_000
            }
        })
    );
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.state("b"), HostState::Untouched);
    assert!(summarize(&sim.s)
        .outcome
        .contains("nobody promoted it past the gate after wave 1 within gates.timeout = 1m"));
}

#[test]
fn an_abort_at_a_gate_rolls_back() {
    let mut sim = Sim::begin(gated(&[1], Duration::from_secs(3600)), World::default());
    sim.hold.abort = true;
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::ABORTED);
    assert_eq!(sim.state("a"), HostState::Clean);
    assert_eq!(sim.state("b"), HostState::Untouched);
}

#[test]
fn a_gate_after_the_last_wave_waits_before_the_confirmation() {
    let mut sim = Sim::begin(gated(&[2], Duration::from_secs(3600)), World::default());
    until_gated(&mut sim);
    assert_eq!(sim.s.gate().unwrap().0, 2);
    assert!(sim.ordered(Op::Confirm).is_empty());
    sim.hold.promote = true;
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
}

#[test]
fn a_resumed_run_still_waits_at_its_gate_with_the_same_deadline() {
    let mut sim = Sim::begin(gated(&[1], Duration::from_secs(3600)), World::default());
    until_gated(&mut sim);
    let gate = sim.s.gate().unwrap();
    // The controller died; a new one replays the journal and attaches.
    let mut s = replay(&sim.journal);
    let rec = Record::new(
        sim.now + 5,
        Event::Attach(Attach {
            pid: 2,
            intent: Intent::Resume,
            until_done: false,
            fanout: None,
            user: "ann".into(),
            command: vec![],
        }),
    );
    let actions = step(&mut s, &rec);
    assert_eq!(s.gate(), Some(gate));
    assert!(actions.contains(&Action::WakeAt(gate.2)), "{actions:?}");
    // Past its deadline, the resumed run rolls back.
    step(&mut s, &Record::new(gate.2, Event::Tick));
    assert!(
        matches!(
            s.status,
            Status::Removing {
                why: Why::GateTimeout { wave: 1, .. }
            }
        ),
        "{:?}",
        s.status
    );
}

#[test]
fn a_freeze_holds_the_next_wave_until_it_is_lifted() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"]]), World::default());
    // Frozen while wave 1 deploys: wave 1 finishes (and bakes), wave 2 waits.
    sim.hold.freeze_after_installs = Some((1, freeze(None)));
    sim.hold.thaw_after_rounds = Some(3);
    sim.run();
    assert!(sim.hold.frozen_rounds >= 3, "probed while frozen");
    assert_eq!(sim.hold.installs_at_thaw, Some(1), "b and c waited");
    assert_eq!(sim.s.end(), Some(&End::Done));
    assert_eq!(sim.state("b"), HostState::Confirmed);
}

#[test]
fn a_freeze_that_runs_out_lets_the_run_go_on() {
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"]]), World::default());
    let until = sim.now + 20 * INTERVAL;
    sim.hold.freeze_after_installs = Some((1, freeze(Some(until))));
    sim.run();
    assert_eq!(sim.s.end(), Some(&End::Done));
    // The machine asked to be woken when the freeze runs out, and went on then.
    assert!(sim.log.contains(&Action::WakeAt(until)));
    let first_b = sim
        .journal
        .iter()
        .find(|r| matches!(&r.event, Event::Result { host, .. } if host == "b"))
        .unwrap();
    assert!(
        first_b.at >= until,
        "wave 2 began before the freeze ran out"
    );
}

#[test]
fn a_freeze_of_another_rollout_or_one_run_out_does_not_hold() {
    let mut f = freeze(None);
    f.rollout = Some("other".into());
    assert!(!f.covers("x", 5));
    assert!(f.covers("other", 5));
    let g = freeze(Some(10));
    assert!(g.covers("x", 9));
    assert!(!g.covers("x", 10));
    let mut sim = Sim::begin(apply_plan(&[&["a"], &["b", "c"]]), World::default());
    sim.hold.freeze_after_installs = Some((1, f));
    sim.run();
    assert_eq!(sim.hold.frozen_rounds, 0);
    assert_eq!(sim.s.end(), Some(&End::Done));
}
