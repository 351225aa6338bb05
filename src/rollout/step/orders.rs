//! Which host action each host needs now, within the limits (`concurrency` for deploys
//! and confirmations, the fan-out for removals and questions), and ordering it.

use super::*;

impl HostRun {
    pub(super) fn state_name(&self) -> &'static str {
        match self.state {
            HostState::Confirmed => "confirmed",
            _ => "probation",
        }
    }

    pub(super) fn tried(&self, epoch: u32, op: Op) -> bool {
        self.epoch == epoch && self.tried.contains(&op)
    }
}

/// Order `op` on the host at index `i`.
pub(super) fn order(s: &mut RunState, i: usize, op: Op, out: &mut Vec<Action>) {
    let epoch = s.epoch;
    let h = &mut s.hosts[i];
    if h.epoch != epoch {
        h.epoch = epoch;
        h.tried.clear();
    }
    h.tried.push(op);
    h.op = Some(op);
    if op == Op::Install {
        // From now on the host may hold part of the install.
        h.state = HostState::Unknown;
    }
    out.push(Action::Host {
        host: h.host.clone(),
        op,
        fresh: op == Op::Confirm && h.fresh_owed,
    });
}

/// Installs, first runs and confirmations count against `concurrency`; removals and
/// questions against the fan-out.
pub(super) fn is_deploy_class(op: Op) -> bool {
    matches!(op, Op::Install | Op::StartRun | Op::Confirm)
}

pub(super) struct Slots {
    deploy: usize,
    remove: usize,
}

impl Slots {
    fn of(s: &RunState) -> Slots {
        let plan = s.plan.as_ref();
        let conc = plan.map_or(1, |p| p.policy.concurrency.max(1));
        let fan = plan.map_or(1, |p| p.policy.fanout.max(1));
        let (mut d, mut r) = (0, 0);
        for h in &s.hosts {
            match h.op {
                Some(op) if is_deploy_class(op) => d += 1,
                Some(_) => r += 1,
                None => {}
            }
        }
        Slots {
            deploy: conc.saturating_sub(d),
            remove: fan.saturating_sub(r),
        }
    }

    /// Take a slot for `op`, if one is free.
    fn take(&mut self, op: Op) -> bool {
        let n = if is_deploy_class(op) {
            &mut self.deploy
        } else {
            &mut self.remove
        };
        if *n == 0 {
            return false;
        }
        *n -= 1;
        true
    }
}

/// What a host needs next during an apply's waves (before any per-stage work).
pub(super) fn common_need(s: &RunState, h: &HostRun) -> Option<Op> {
    if h.op.is_some() {
        return None;
    }
    if h.lost.is_some() && !h.tried(s.epoch, Op::Settle) {
        return Some(Op::Settle);
    }
    // A bad host the budget tolerates still does not keep a bad script.
    if h.state.may_hold() && s.is_unhealthy(&h.host) && !h.tried(s.epoch, Op::Remove) {
        return Some(Op::Remove);
    }
    None
}

pub(super) fn deploy_need(
    s: &RunState,
    h: &HostRun,
    wave: usize,
    run_on_install: bool,
) -> Option<Op> {
    if let Some(op) = common_need(s, h) {
        return Some(op);
    }
    if h.op.is_some() || h.lost.is_some() || h.wave != wave || s.is_unhealthy(&h.host) {
        return None;
    }
    match h.state {
        HostState::Untouched | HostState::Unknown if !h.tried(s.epoch, Op::Install) => {
            Some(Op::Install)
        }
        // The install starts the first run itself; this is for one that did not (the
        // same run over its own confirmed install, an older journal).
        HostState::Installed if run_on_install && !h.started && !h.tried(s.epoch, Op::StartRun) => {
            Some(Op::StartRun)
        }
        _ => None,
    }
}

pub(super) fn confirm_need(s: &RunState, h: &HostRun) -> Option<Op> {
    if let Some(op) = common_need(s, h) {
        return Some(op);
    }
    if h.op.is_some() || h.lost.is_some() {
        return None;
    }
    if h.state == HostState::Installed && !s.is_unhealthy(&h.host) && !h.tried(s.epoch, Op::Confirm)
    {
        return Some(Op::Confirm);
    }
    if h.state.unfinished() && !h.tried(s.epoch, Op::Remove) {
        return Some(Op::Remove);
    }
    None
}

/// Start what `need` says for every host, as far as slots allow. Returns whether any
/// host still needs something (started or waiting for a slot).
pub(super) fn start_needed(
    s: &mut RunState,
    out: &mut Vec<Action>,
    need: impl Fn(&RunState, &HostRun) -> Option<Op>,
) -> bool {
    let mut slots = Slots::of(s);
    let mut any = false;
    for i in 0..s.hosts.len() {
        if let Some(op) = need(s, &s.hosts[i]) {
            any = true;
            if slots.take(op) {
                order(s, i, op, out);
            }
        }
    }
    any
}
