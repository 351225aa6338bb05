//! When a probe or a confirmation logs in afresh: the machine's call (`Action::Probe`'s
//! `owed` and `fresh`, `Action::Host::fresh`), so the driver only carries it out.

use super::*;

/// Every probe round of `wave` the machine ordered, as (hosts, owed, fresh).
fn rounds_of(sim: &Sim, wave: usize) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    sim.log
        .iter()
        .filter_map(|a| match a {
            Action::Probe {
                wave: w,
                hosts,
                owed,
                fresh,
                ..
            } if *w == wave => Some((hosts.clone(), owed.clone(), fresh.clone())),
            _ => None,
        })
        .collect()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_host_logs_in_afresh_in_its_first_round_after_install_and_in_the_closing_one() {
    let mut p = apply_plan(&[&["a"], &["b", "c"]]);
    p.policy.bake = Duration::from_millis(4 * INTERVAL);
    let mut sim = Sim::begin(p, World::default());
    sim.run();
    assert_eq!(exit_code(&sim.s), exit::OK, "{:?}", sim.s.status);
    let rounds: Vec<(Vec<String>, Vec<String>)> =
        rounds_of(&sim, 1).into_iter().map(|r| (r.1, r.2)).collect();
    let (none, a) = (names(&[]), names(&["a"]));
    // Its first round over a new login only (it owes one since its install), then none,
    // then the round that may close the bake (its wave's hosts afresh beside the kept
    // connection), then none.
    assert_eq!(
        rounds[..4],
        [
            (a.clone(), none.clone()),
            (none.clone(), none.clone()),
            (none.clone(), none.clone()),
            (none.clone(), a.clone())
        ],
        "{rounds:?}"
    );
    assert!(
        rounds[4..].iter().all(|r| r.0.is_empty() && r.1.is_empty()),
        "{rounds:?}"
    );
    // Wave 2's first round: its own hosts owe it (a answered long ago).
    assert_eq!(rounds_of(&sim, 2)[0].1, names(&["b", "c"]));
    // Every host answered over a fresh login before its confirmation: none owed one.
    let confirms: Vec<bool> = sim
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Host {
                op: Op::Confirm,
                fresh,
                ..
            } => Some(*fresh),
            _ => None,
        })
        .collect();
    assert_eq!(confirms, [false, false, false]);
}

#[test]
fn a_host_that_did_not_answer_its_fresh_login_still_owes_it() {
    let mut p = apply_plan(&[&["a", "b"]]);
    p.policy.max_unhealthy = 1;
    p.policy.bake = Duration::from_millis(10 * INTERVAL);
    let mut sim = Sim::begin(p, World::default());
    let (_, hosts, _) = until_probe(&mut sim);
    assert_eq!(hosts, names(&["a", "b"]));
    assert_eq!(sim.s.host("a").map(|h| h.fresh_owed), Some(true));
    // a's new login missed its deadline; b answered.
    let hung = Verdict::bad(
        Health::Hung,
        Evidence::new("reachable").raw("login gave no answer within 2s"),
    );
    sim.now += INTERVAL;
    sim.submit(Event::Round {
        wave: 1,
        verdicts: vec![
            HostVerdict {
                host: "a".into(),
                verdict: hung,
                runs: 1,
                lost: None,
            },
            HostVerdict {
                host: "b".into(),
                verdict: Verdict::healthy(),
                runs: 1,
                lost: None,
            },
        ],
        watch: vec![],
    });
    // a still owes its fresh login (it is taken off the run as a bad host); b does not.
    assert_eq!(sim.s.host("a").map(|h| h.fresh_owed), Some(true));
    assert_eq!(sim.s.host("b").map(|h| h.fresh_owed), Some(false));
    let next = sim.queue.iter().find_map(|a| match a {
        Action::Probe {
            hosts, owed, fresh, ..
        } => Some((hosts.clone(), owed.clone(), fresh.clone())),
        _ => None,
    });
    assert_eq!(
        next,
        Some((names(&["b"]), names(&[]), names(&[]))),
        "{:?}",
        sim.queue
    );
}

#[test]
fn a_host_never_judged_since_its_install_is_confirmed_over_a_fresh_login() {
    let mut p = apply_plan(&[&["a"]]);
    p.policy.min_runs = 0;
    let mut sim = Sim::begin(p, World::default());
    // Its rounds report nothing of it (no verdict changed): it never showed it takes
    // new logins.
    for _ in 0..100 {
        match sim.queue.pop_front() {
            Some(Action::Host {
                op: Op::Confirm,
                fresh,
                ..
            }) => {
                assert!(fresh, "confirmed over the kept connection");
                return;
            }
            Some(Action::Host { host, op, .. }) => {
                let result = sim.world.result(&host, op);
                sim.submit(Event::Result { host, op, result });
            }
            Some(Action::Baseline { wave, .. }) => sim.submit(Event::BaselineDone {
                wave,
                group: vec![],
                watch: vec![],
            }),
            Some(Action::Probe { wave, .. }) => sim.submit(Event::Round {
                wave,
                verdicts: vec![],
                watch: vec![],
            }),
            Some(Action::WakeAt(t)) => {
                sim.now = sim.now.max(t);
                sim.submit(Event::Tick);
            }
            Some(Action::EndProbe) => {}
            None => panic!("stuck: {:?}", sim.s.status),
        }
    }
    panic!("never confirmed: {:?}", sim.s.status);
}

#[test]
fn every_twentieth_round_of_a_bake_logs_every_host_in_afresh() {
    let mut p = apply_plan(&[&["a"], &["b"]]);
    p.policy.bake = Duration::from_millis(30 * INTERVAL);
    p.policy.controls = true;
    let mut sim = Sim::begin(p, World::default());
    sim.run();
    let rounds = rounds_of(&sim, 1);
    // The wave's host and the control.
    assert_eq!(rounds[20].2, names(&["a", "b"]), "{rounds:?}");
    assert!(
        rounds[19].2.is_empty() && rounds[21].2.is_empty(),
        "{rounds:?}"
    );
}
