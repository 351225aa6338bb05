//! Entering a wave, and what holds a run at a wave boundary: the other hosts of the
//! redundancy groups the wave touches, a gate, a freeze.

use super::*;

pub(super) fn enter_wave(s: &mut RunState, wave: usize, out: &mut Vec<Action>) {
    let Some(plan) = &s.plan else { return };
    let controls: Vec<String> = if plan.policy.controls {
        s.hosts
            .iter()
            .filter(|h| h.wave > wave && h.state == HostState::Untouched)
            .filter(|h| !s.unhealthy.iter().any(|(n, _)| n == &h.host))
            .take(CONTROLS)
            .map(|h| h.host.clone())
            .collect()
    } else {
        Vec::new()
    };
    s.controls = controls;
    s.epoch += 1;
    let group: Vec<String> = group_members(plan, wave)
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    if plan.policy.baseline || !group.is_empty() {
        let baseline = plan.policy.baseline;
        s.status = Status::Running {
            stage: Stage::Baseline { wave },
        };
        out.push(Action::Baseline {
            wave,
            hosts: s
                .hosts
                .iter()
                .filter(|h| baseline && h.wave == wave)
                .map(|h| h.host.clone())
                .collect(),
            controls: if baseline {
                s.controls.clone()
            } else {
                Vec::new()
            },
            group,
        });
    } else {
        s.status = Status::Running {
            stage: Stage::Deploy { wave },
        };
    }
}

/// The other hosts of the redundancy groups (`spread_by`) that wave `wave` touches, each
/// with its group: targets of other waves and inventory hosts that are not targets (the
/// standby outside the rollout), in plan order. Sampled before the wave; the wave does
/// not start while one of them is unhealthy or unreachable ([`group_hold`]).
pub fn group_members(plan: &Plan, wave: usize) -> Vec<(String, String)> {
    let Some(groups) = &plan.groups else {
        return Vec::new();
    };
    let Some(names) = wave.checked_sub(1).and_then(|i| plan.waves.get(i)) else {
        return Vec::new();
    };
    let touched: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| plan.host(n))
        .filter_map(|h| h.labels.get(&groups.label))
        .map(String::as_str)
        .collect();
    let mut seen = BTreeSet::new();
    plan.hosts
        .iter()
        .chain(groups.others.iter())
        .filter(|h| !names.contains(&h.name))
        .filter_map(|h| {
            let g = h.labels.get(&groups.label)?;
            (touched.contains(g.as_str()) && seen.insert(h.name.clone()))
                .then(|| (g.clone(), h.name.clone()))
        })
        .collect()
}

/// Whether wave `wave` is held by its groups: the first of [`group_members`] that did
/// not answer its sample, or whose health checks failed (a member with no sample counts
/// as not answering), as (group, host, why).
pub fn group_hold(
    plan: &Plan,
    wave: usize,
    samples: &[Sample],
) -> Option<(String, String, String)> {
    group_members(plan, wave)
        .into_iter()
        .find_map(|(group, host)| {
            let why = match samples.iter().find(|s| s.host == host).map(|s| &s.seen) {
                None => "unreachable: not sampled".to_string(),
                Some(Seen::NoAnswer { reason }) => format!("unreachable: {reason}"),
                Some(Seen::Answered { failing }) if !failing.is_empty() => {
                    format!("unhealthy: {}", failing.join("; "))
                }
                Some(Seen::Answered { .. }) => return None,
            };
            Some((group, host, why))
        })
}

/// Go on after `wave` passed its bake (and its gate, if it has one): the next wave, or,
/// after the last, the confirmation. A new wave does not start while the rollout is
/// frozen: the run waits at the boundary (probing) until the freeze is lifted or runs out.
pub(super) fn past_boundary(s: &mut RunState, bake: Bake, out: &mut Vec<Action>) {
    let wave = bake.wave;
    let waves = s.plan.as_ref().map_or(0, |p| p.waves.len());
    if wave >= waves {
        s.status = Status::Running {
            stage: Stage::Confirm,
        };
        s.epoch += 1;
    } else if s.freeze().is_some() {
        s.status = Status::Running {
            stage: Stage::Frozen { wave, bake },
        };
        s.epoch += 1;
    } else {
        enter_wave(s, wave + 1, out);
    }
}
