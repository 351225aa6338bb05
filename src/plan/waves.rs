//! Splitting targets into waves: Ansible `serial` sizes, canaries pinned into wave 1,
//! `spread_by` / `max_per_group`. Pure: no I/O. The rules are in the `plan` module docs.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::diag::InputError;
use crate::inventory::Host;
use crate::spec::{WaveSize, WaveSpec};

use super::Wave;

/// The `spread_by` group of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group<'a> {
    /// The target's value of the `spread_by` label.
    Value(&'a str),
    /// A target without the label (or with no `spread_by` at all): a group of its own,
    /// named by the target's index.
    Alone(usize),
}

/// The most waves a plan may have. Every wave is deployed, baked and judged in turn, so
/// a plan past this (one big group with `max_per_group = 1`, `sizes = [1]` over a large
/// fleet) is a mistake in the spec: refused at once rather than planned.
pub const MAX_WAVES: usize = 10_000;

/// See [`super::waves`].
///
/// A wave takes, in target order, every host that fits: its size not reached, and fewer
/// than `max_per_group` of the host's group in it. So it takes the first `size` (in
/// target order) of the candidates, each group's first `max_per_group` unplaced hosts.
/// The candidates are kept in one ordered set and a group is refilled only when a wave
/// takes from it: O(n log n) whatever the number of waves.
pub(super) fn split(targets: &[Host], spec: &WaveSpec) -> Result<Vec<Wave>, InputError> {
    let spread_by = spec.spread_by.as_deref();
    // Without `spread_by` every host is its own group, so nothing can break the limit.
    let max_per_group = if spread_by.is_some() {
        spec.max_per_group
    } else {
        usize::MAX
    };
    if max_per_group == 0 {
        return Err(
            InputError::new("waves.max_per_group is 0, so no wave could hold any host")
                .help("set waves.max_per_group to 1 or more"),
        );
    }
    let groups: Vec<Group> = targets
        .iter()
        .enumerate()
        .map(
            |(i, host)| match spread_by.and_then(|key| host.labels.get(key)) {
                Some(value) => Group::Value(value),
                None => Group::Alone(i),
            },
        )
        .collect();

    let canaries = canary_indices(targets, spec)?;
    check_canaries(targets, spec, &canaries, &groups, max_per_group)?;
    check_group_sizes(spec, &groups, max_per_group)?;

    let total = targets.len();
    let mut pool = Pool::new(&groups, &canaries);
    // Wave 1's canaries take their groups' slots in it.
    let mut pinned = vec![0; pool.queue.len()];
    for &i in &canaries {
        pinned[pool.group_of[i]] += 1;
    }
    for (g, &p) in pinned.iter().enumerate() {
        pool.top_up(g, max_per_group - p);
    }

    let mut waves: Vec<Wave> = Vec::new();
    let mut first = canaries;
    let mut touched: Vec<usize> = Vec::new();
    while !pool.candidates.is_empty() || !first.is_empty() {
        if waves.len() == MAX_WAVES {
            return Err(too_many_waves(spec, total));
        }
        let size = wave_size(size_entry(&spec.sizes, waves.len()), total);
        // Wave 1 holds every canary, growing past its size if it must.
        let mut members = std::mem::take(&mut first);
        touched.extend(members.iter().map(|&i| pool.group_of[i]));
        for _ in members.len()..size {
            let Some(i) = pool.take_first() else {
                break;
            };
            touched.push(pool.group_of[i]);
            members.push(i);
        }
        for g in touched.drain(..) {
            pool.top_up(g, max_per_group);
        }
        // Never empty: size >= 1 and max_per_group >= 1, so the first remaining host
        // always fits an otherwise empty wave. Checked anyway, so a bug cannot loop.
        if members.is_empty() {
            return Err(InputError::new(
                "internal error: an empty wave while planning",
            ));
        }
        waves.push(Wave {
            index: waves.len() + 1,
            hosts: members.iter().map(|&i| targets[i].name.clone()).collect(),
        });
    }
    Ok(waves)
}

/// The unplaced hosts by group, and the candidates of the next wave.
struct Pool {
    /// Each target's dense group id.
    group_of: Vec<usize>,
    /// Each group's hosts that are not canaries, in target order.
    queue: Vec<Vec<usize>>,
    /// How many of each group's queue are candidates or placed already.
    next: Vec<usize>,
    /// How many of each group's hosts are candidates now.
    held: Vec<usize>,
    /// Target indices that the next wave may take, smallest first.
    candidates: BTreeSet<usize>,
}

impl Pool {
    fn new(groups: &[Group], canaries: &[usize]) -> Pool {
        let mut is_canary = vec![false; groups.len()];
        for &i in canaries {
            is_canary[i] = true;
        }
        let mut ids: HashMap<Group, usize> = HashMap::new();
        let mut group_of = Vec::with_capacity(groups.len());
        let mut queue: Vec<Vec<usize>> = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let id = *ids.entry(*g).or_insert_with(|| {
                queue.push(Vec::new());
                queue.len() - 1
            });
            group_of.push(id);
            if !is_canary[i] {
                queue[id].push(i);
            }
        }
        Pool {
            group_of,
            next: vec![0; queue.len()],
            held: vec![0; queue.len()],
            queue,
            candidates: BTreeSet::new(),
        }
    }

    /// Make group `g`'s next unplaced hosts candidates until it has `cap` of them.
    fn top_up(&mut self, g: usize, cap: usize) {
        let queue = &self.queue[g];
        while self.held[g] < cap && self.next[g] < queue.len() {
            self.candidates.insert(queue[self.next[g]]);
            self.next[g] += 1;
            self.held[g] += 1;
        }
    }

    /// The first candidate in target order, taken out.
    fn take_first(&mut self) -> Option<usize> {
        let i = self.candidates.pop_first()?;
        self.held[self.group_of[i]] -= 1;
        Some(i)
    }
}

/// A group with more hosts than [`MAX_WAVES`] waves of `max_per_group` can hold: named,
/// before any planning.
fn check_group_sizes(
    spec: &WaveSpec,
    groups: &[Group],
    max_per_group: usize,
) -> Result<(), InputError> {
    let Some(key) = spec.spread_by.as_deref() else {
        return Ok(());
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for g in groups {
        if let Group::Value(v) = g {
            *counts.entry(v).or_default() += 1;
        }
    }
    // The biggest group (the first by value among equals, so the message is stable).
    let Some((value, count)) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
    else {
        return Ok(());
    };
    let needed = count.div_ceil(max_per_group);
    if needed <= MAX_WAVES {
        return Ok(());
    }
    Err(InputError::new(format!(
        "the plan needs at least {needed} waves, at most {MAX_WAVES} are allowed: \
         {count} targets have {key}={value} and a wave holds at most \
         waves.max_per_group = {max_per_group} of them"
    ))
    .help(format!(
        "raise waves.max_per_group to at least {}, spread by a label with more values, \
         or narrow the targets",
        count.div_ceil(MAX_WAVES)
    )))
}

/// The plan passed [`MAX_WAVES`] waves (wave sizes too small for the targets).
fn too_many_waves(spec: &WaveSpec, total: usize) -> InputError {
    InputError::new(format!(
        "the plan needs more than {MAX_WAVES} waves for {total} targets, at most \
         {MAX_WAVES} are allowed"
    ))
    .help(if spec.spread_by.is_some() {
        "give waves.sizes larger waves (a percentage, like \"10%\"), or raise \
         waves.max_per_group"
    } else {
        "give waves.sizes larger waves (a percentage, like \"10%\"), or narrow the targets"
    })
}

/// The `sizes` entry for the wave at 0-based `wave`: the last entry repeats, and
/// empty `sizes` mean `["100%"]`.
fn size_entry(sizes: &[WaveSize], wave: usize) -> WaveSize {
    match sizes.get(wave).or(sizes.last()) {
        Some(&size) => size,
        None => WaveSize::Percent(100),
    }
}

/// How many hosts one `sizes` entry asks for, out of `total` targets: a percentage is
/// rounded down but at least 1 (Ansible's `pct_to_int`); a count of 0 is everything
/// (Ansible's `serial: 0`).
fn wave_size(size: WaveSize, total: usize) -> usize {
    match size {
        WaveSize::Count(0) => total.max(1),
        WaveSize::Count(n) => n,
        WaveSize::Percent(pct) => {
            let n = u128::from(pct) * total as u128 / 100;
            usize::try_from(n).unwrap_or(usize::MAX).max(1)
        }
    }
}

/// The targets' indices of the canaries, in the order `waves.canaries` lists them,
/// each once.
fn canary_indices(targets: &[Host], spec: &WaveSpec) -> Result<Vec<usize>, InputError> {
    let mut indices: Vec<usize> = Vec::with_capacity(spec.canaries.len());
    if spec.canaries.is_empty() {
        return Ok(indices);
    }
    let mut seen = HashSet::new();
    let by_name: HashMap<&str, usize> = targets
        .iter()
        .enumerate()
        .rev()
        .map(|(i, h)| (h.name.as_str(), i))
        .collect();
    for canary in &spec.canaries {
        let Some(&i) = by_name.get(canary.value.as_str()) else {
            let mut err = InputError::new(format!(
                "waves.canaries names `{}`, which is not among the targets",
                canary.value
            ))
            .help("a canary must be a host that [targets] selects");
            err.pos = canary.pos;
            return Err(err);
        };
        if seen.insert(i) {
            indices.push(i);
        }
    }
    Ok(indices)
}

/// Canaries all go into wave 1, so they alone must not break `max_per_group`.
/// Names every group they break, with its canaries.
fn check_canaries(
    targets: &[Host],
    spec: &WaveSpec,
    canaries: &[usize],
    groups: &[Group],
    max_per_group: usize,
) -> Result<(), InputError> {
    let Some(key) = spec.spread_by.as_deref() else {
        return Ok(());
    };
    // Groups in the order their first canary is listed.
    let mut by_group: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in canaries {
        let Group::Value(value) = groups[i] else {
            continue;
        };
        match by_group.iter_mut().find(|(v, _)| *v == value) {
            Some((_, members)) => members.push(i),
            None => by_group.push((value, vec![i])),
        }
    }
    let broken: Vec<&(&str, Vec<usize>)> = by_group
        .iter()
        .filter(|(_, members)| members.len() > max_per_group)
        .collect();
    let Some((_, first_members)) = broken.first() else {
        return Ok(());
    };
    let details: Vec<String> = broken
        .iter()
        .map(|(value, members)| {
            let names: Vec<&str> = members.iter().map(|&i| targets[i].name.as_str()).collect();
            format!(
                "{} canaries with {key}={value} ({})",
                members.len(),
                names.join(", ")
            )
        })
        .collect();
    let mut err = InputError::new(format!(
        "waves.canaries break waves.max_per_group = {max_per_group} in the first wave: {}",
        details.join("; ")
    ))
    .help(format!(
        "every canary goes into the first wave: name at most {max_per_group} {} per `{key}` \
         value, or raise waves.max_per_group",
        if max_per_group == 1 {
            "canary"
        } else {
            "canaries"
        }
    ));
    // Point at the first canary over the limit.
    if let Some(&over) = first_members.get(max_per_group) {
        let over = targets[over].name.as_str();
        err.pos = spec
            .canaries
            .iter()
            .find(|c| c.value == over)
            .and_then(|c| c.pos);
    }
    Err(err)
}

#[cfg(test)]
mod tests;
