//! Splitting targets into waves: Ansible `serial` sizes, canaries pinned into wave 1,
//! `spread_by` / `max_per_group`. Pure: no I/O. The rules are in the `plan` module docs.

use std::collections::HashMap;

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

/// See [`super::waves`].
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

    let total = targets.len();
    let mut is_canary = vec![false; total];
    for &i in &canaries {
        is_canary[i] = true;
    }
    let mut remaining: Vec<usize> = (0..total).filter(|&i| !is_canary[i]).collect();
    let mut first = canaries;

    let mut waves = Vec::new();
    while !remaining.is_empty() || !first.is_empty() {
        let size = wave_size(size_entry(&spec.sizes, waves.len()), total);
        // Wave 1 holds every canary, growing past its size if it must.
        let mut members = std::mem::take(&mut first);
        let size = size.max(members.len());
        let mut counts: HashMap<Group, usize> = HashMap::new();
        for &i in &members {
            *counts.entry(groups[i]).or_default() += 1;
        }
        let mut left = Vec::with_capacity(remaining.len());
        for i in remaining {
            let count = counts.entry(groups[i]).or_default();
            if members.len() < size && *count < max_per_group {
                *count += 1;
                members.push(i);
            } else {
                left.push(i);
            }
        }
        remaining = left;
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
    for canary in &spec.canaries {
        let Some(i) = targets.iter().position(|h| h.name == canary.value) else {
            let mut err = InputError::new(format!(
                "waves.canaries names `{}`, which is not among the targets",
                canary.value
            ))
            .help("a canary must be a host that [targets] selects");
            err.pos = canary.pos;
            return Err(err);
        };
        if !indices.contains(&i) {
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
