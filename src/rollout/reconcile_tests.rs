//! `reconcile`'s decision for a run in each state it can be found in.

use super::*;
use crate::rollout::reconcile::{decide, Reconcile};

fn at(plan: Plan, status: Status) -> RunState {
    let mut s = replay([&Record::new(
        1_700_000_000_000,
        Event::Begin {
            plan: Box::new(plan),
            pid: 1,
            until_done: false,
        },
    )]);
    s.status = status;
    s
}

#[test]
fn reconcile_leaves_finished_runs_notes_paused_ones_and_takes_up_the_rest() {
    let apply = || apply_plan(&[&["a"], &["b"]]);
    let purge = || plan(&[&["a", "b"]], Target::Purge);
    let removing = || Status::Removing { why: Why::Rollback };
    let stopping = || Status::Stopping {
        why: Why::Operator {
            by: "SIGINT".into(),
        },
        stage: None,
    };
    let ended = |end: End| Status::Ended { end };
    let cases = [
        (RunState::new(), Reconcile::Skip),
        (at(apply(), ended(End::Done)), Reconcile::Skip),
        (
            at(apply(), ended(End::Clean { why: Why::Rollback })),
            Reconcile::Skip,
        ),
        (
            at(apply(), ended(End::Superseded { why: Why::Rollback })),
            Reconcile::Skip,
        ),
        (
            at(apply(), ended(End::Unconfirmed)),
            Reconcile::Take(Intent::Reconcile),
        ),
        (
            at(purge(), ended(End::Pending { why: Why::Purge })),
            Reconcile::Take(Intent::Reconcile),
        ),
        (at(apply(), removing()), Reconcile::Take(Intent::Reconcile)),
        (
            at(
                purge(),
                Status::Backoff {
                    why: Why::Purge,
                    until: 0,
                },
            ),
            Reconcile::Take(Intent::Reconcile),
        ),
        // A removal command stopped: its removals are finished; an apply stopped or
        // still running with its controller gone: rolled back, as its leases would.
        (at(purge(), stopping()), Reconcile::Take(Intent::Reconcile)),
        (at(apply(), stopping()), Reconcile::Take(Intent::Orphaned)),
        (
            at(
                apply(),
                Status::Running {
                    stage: Stage::Deploy { wave: 1 },
                },
            ),
            Reconcile::Take(Intent::Orphaned),
        ),
    ];
    for (st, want) in cases {
        assert_eq!(decide("r1", &st), want, "{:?}", st.status);
    }
}

#[test]
fn reconcile_says_what_to_do_with_a_paused_run_and_when_its_hosts_revert() {
    let paused = Status::Ended {
        end: End::Paused {
            stage: Stage::Deploy { wave: 1 },
            why: Why::Pause,
        },
    };
    let mut st = at(apply_plan(&[&["a"], &["b"]]), paused);
    let Reconcile::Note(n) = decide("r1", &st) else {
        panic!("no note");
    };
    assert_eq!(
        n,
        "run r1 is paused: `wavectl resume r1` or `wavectl rollback r1`"
    );
    // A host in probation: its lease (60 s) runs out a lease after the last renewal.
    st.hosts[0].state = HostState::Installed;
    st.renewed = 1_700_000_000_000;
    let Reconcile::Note(n) = decide("r1", &st) else {
        panic!("no note");
    };
    assert!(
        n.ends_with("(its probation hosts revert themselves from 2023-11-14T22:14:20Z)"),
        "{n}"
    );
}
