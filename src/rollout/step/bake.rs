//! A bake's probe rounds: when the next is due, which hosts it probes, which of them log
//! in afresh.

use super::*;

/// Order the bake's next probe round if none is in flight and it is due (every installed
/// host so far, not busy, and the controls), and a wake-up when the one after it is due
/// (or, not yet due, a wake-up for it): a round that takes longer than
/// the interval is followed at once by the next.
pub(super) fn probe_round(s: &mut RunState, mut b: Bake, interval: u64, out: &mut Vec<Action>) {
    if b.probing {
        return;
    }
    if s.now < b.next_round {
        // Asked again at every event while it waits: a wake-up is never lost to an
        // earlier one.
        out.push(Action::WakeAt(b.next_round));
        return;
    }
    let Some((wave, hosts, controls)) = s.probing() else {
        return;
    };
    let (hosts, controls): (Vec<String>, Vec<String>) = (
        hosts.into_iter().map(str::to_string).collect(),
        controls.into_iter().map(str::to_string).collect(),
    );
    let (owed, fresh) = fresh_logins(s, &mut b, interval, &hosts, &controls);
    b.probing = true;
    b.next_round = s.now.saturating_add(interval.max(1));
    if let Some(cur) = s.bake_mut() {
        *cur = b;
    }
    out.push(Action::Probe {
        wave,
        hosts,
        controls,
        owed,
        fresh,
    });
    out.push(Action::WakeAt(b.next_round));
}

/// Which hosts of a round log in afresh: (those probed over a new login only — each host
/// that owes one since its install —, those that log in afresh beside the kept
/// connection — the wave's own hosts once more in the round that may close a bake longer
/// than one round, and every host every 20th round of a bake), so a host that keeps old
/// sessions alive while new logins hang is seen before its wave passes, without a new
/// login per host per wave across the whole run.
pub fn fresh_logins(
    s: &RunState,
    b: &mut Bake,
    interval: u64,
    hosts: &[String],
    controls: &[String],
) -> (Vec<String>, Vec<String>) {
    let owes = |n: &String| {
        s.host(n)
            .is_some_and(|h| h.state == HostState::Installed && h.fresh_owed)
    };
    let owed: Vec<String> = hosts
        .iter()
        .chain(controls)
        .filter(|n| owes(n))
        .cloned()
        .collect();
    let all = || hosts.iter().chain(controls).filter(|n| !owes(n));
    let baking = matches!(
        s.status,
        Status::Running {
            stage: Stage::Bake(_)
        }
    );
    if baking && b.rounds > 0 && b.rounds.is_multiple_of(20) {
        return (owed, all().cloned().collect());
    }
    // The round that may close the bake (the first round is the one after the install:
    // its hosts owe a fresh login anyway).
    let closing = baking && s.now.saturating_add(interval) >= b.until && !b.fresh_closed;
    if closing {
        b.fresh_closed = true;
    }
    let beside = all()
        .filter(|n| {
            s.host(n)
                .is_some_and(|h| closing && b.rounds > 0 && h.wave == b.wave)
        })
        .cloned()
        .collect();
    (owed, beside)
}

/// The host answered its probe (its verdict is not about reaching it).
pub(super) fn answered(v: &Verdict) -> bool {
    !v.evidence.iter().any(|e| e.signal == "reachable")
}
