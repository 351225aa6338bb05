//! Invariants of `plan::waves` checked over many generated inputs (a plain loop, no
//! proptest), against a direct port of Ansible's batching where it applies and against
//! the greedy scan the planner replaced.

use std::collections::HashMap;

use super::{spec, with_canaries, C, P};
use crate::inventory::Host;
use crate::plan::waves;
use crate::spec::{WaveSize, WaveSpec};

/// A direct port of Ansible's `_get_serialized_batches` / `pct_to_int`, as the
/// reference for plans without canaries or spread.
fn ansible_batches(n: usize, sizes: &[WaveSize]) -> Vec<Vec<usize>> {
    let sizes = if sizes.is_empty() {
        vec![P(100)]
    } else {
        sizes.to_vec()
    };
    let mut all: Vec<usize> = (0..n).collect();
    let mut batches = Vec::new();
    let mut cur = 0;
    while !all.is_empty() {
        let serial = match sizes[cur] {
            C(c) => c,
            P(p) => match (p as u128 * n as u128 / 100) as usize {
                0 => 1,
                v => v,
            },
        };
        if serial == 0 {
            batches.push(std::mem::take(&mut all));
            break;
        }
        let take = serial.min(all.len());
        batches.push(all.drain(..take).collect());
        cur = (cur + 1).min(sizes.len() - 1);
    }
    batches
}

/// The greedy scan `waves` replaced (quadratic: each wave looked at every unplaced
/// host), as the reference its faster form must equal: each wave takes, in target
/// order, every host its size and its group's count in it allow.
fn greedy_scan(targets: &[Host], s: &WaveSpec) -> Vec<Vec<String>> {
    let max = if s.spread_by.is_some() {
        s.max_per_group
    } else {
        usize::MAX
    };
    let group = |i: usize| -> (Option<&String>, usize) {
        match s.spread_by.as_ref().and_then(|k| targets[i].labels.get(k)) {
            Some(v) => (Some(v), 0),
            None => (None, i),
        }
    };
    let mut first: Vec<usize> = Vec::new();
    for c in &s.canaries {
        let i = targets.iter().position(|h| h.name == c.value).unwrap();
        if !first.contains(&i) {
            first.push(i);
        }
    }
    let mut remaining: Vec<usize> = (0..targets.len()).filter(|i| !first.contains(i)).collect();
    let mut out = Vec::new();
    while !remaining.is_empty() || !first.is_empty() {
        let size =
            super::super::wave_size(super::super::size_entry(&s.sizes, out.len()), targets.len());
        let mut members = std::mem::take(&mut first);
        let size = size.max(members.len());
        let mut counts: HashMap<(Option<&String>, usize), usize> = HashMap::new();
        for &i in &members {
            *counts.entry(group(i)).or_default() += 1;
        }
        let mut left = Vec::new();
        for i in remaining {
            let count = counts.entry(group(i)).or_default();
            if members.len() < size && *count < max {
                *count += 1;
                members.push(i);
            } else {
                left.push(i);
            }
        }
        remaining = left;
        out.push(members.iter().map(|&i| targets[i].name.clone()).collect());
    }
    out
}

/// Every host exactly once, waves non-empty and 1-based, canaries first in wave 1, no
/// wave over `max_per_group`, no wave over its size (but wave 1 may hold every
/// canary), hosts after the canaries in target order, and each wave as full as
/// the rules allow (a host waits only when its wave is full or its group is).
/// Without spread and canaries, equal to Ansible's batches.
#[test]
fn invariants_hold_over_many_generated_inputs() {
    let size_lists: Vec<Vec<WaveSize>> = vec![
        vec![],
        vec![C(1)],
        vec![C(0)],
        vec![P(100)],
        vec![C(1), P(10), P(50), P(100)],
        vec![C(2), C(3)],
        vec![P(25)],
        vec![P(1), P(33)],
        vec![C(3), P(0)],
        vec![C(1), C(1), C(100)],
    ];
    let mut checked = 0;
    for n in 0..=23 {
        for group_count in 0..=4 {
            // Host i is in group i % (group_count + 1); group 0 means no label.
            let targets: Vec<Host> = (0..n)
                .map(|i| {
                    let g = (i * 7 + i / 3) % (group_count + 1);
                    if g == 0 {
                        Host::labelled(&format!("n{i}"), &[])
                    } else {
                        Host::labelled(&format!("n{i}"), &[("cluster", &format!("c{g}"))])
                    }
                })
                .collect();
            let canary_sets: Vec<Vec<String>> = vec![
                vec![],
                targets
                    .last()
                    .map(|h| vec![h.name.clone()])
                    .unwrap_or_default(),
                targets
                    .iter()
                    .rev()
                    .step_by(4)
                    .map(|h| h.name.clone())
                    .collect(),
            ];
            for sizes in &size_lists {
                for max in [1, 2, 3, usize::MAX] {
                    for spread_by in [None, Some("cluster")] {
                        for canaries in &canary_sets {
                            let canary_refs: Vec<&str> =
                                canaries.iter().map(String::as_str).collect();
                            let mut s = with_canaries(spec(sizes), &canary_refs);
                            s.spread_by = spread_by.map(str::to_string);
                            s.max_per_group = max;
                            check_invariants(&targets, &s);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 5000, "checked {checked} inputs");
}

fn check_invariants(targets: &[Host], s: &WaveSpec) {
    let ctx = format!(
        "n={} sizes={:?} spread={:?} max={} canaries={:?}",
        targets.len(),
        s.sizes,
        s.spread_by,
        s.max_per_group,
        s.canaries.iter().map(|c| &c.value).collect::<Vec<_>>()
    );
    let group = |name: &str| -> Option<String> {
        let h = targets.iter().find(|h| h.name == name).unwrap();
        s.spread_by.as_ref().and_then(|k| h.labels.get(k)).cloned()
    };
    let max = if s.spread_by.is_some() {
        s.max_per_group
    } else {
        usize::MAX
    };
    let canaries: Vec<&str> = s.canaries.iter().map(|c| c.value.as_str()).collect();

    // Canaries that alone break the limit: an error, and only then.
    let mut canary_counts: HashMap<String, usize> = HashMap::new();
    for c in &canaries {
        if let Some(g) = group(c) {
            *canary_counts.entry(g).or_default() += 1;
        }
    }
    let result = waves(targets, s);
    if canary_counts.values().any(|&c| c > max) {
        assert!(result.is_err(), "{ctx}: expected an error");
        return;
    }
    let got = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(waves(targets, s).unwrap(), got, "{ctx}: deterministic");
    let hosts: Vec<Vec<String>> = got.iter().map(|w| w.hosts.clone()).collect();
    assert_eq!(
        hosts,
        greedy_scan(targets, s),
        "{ctx}: the greedy scan's waves"
    );

    // Every host exactly once, waves non-empty, 1-based.
    let mut seen: Vec<&str> = got
        .iter()
        .flat_map(|w| w.hosts.iter().map(String::as_str))
        .collect();
    seen.sort_unstable();
    let mut all: Vec<&str> = targets.iter().map(|h| h.name.as_str()).collect();
    all.sort_unstable();
    assert_eq!(seen, all, "{ctx}: every host exactly once");
    for (i, w) in got.iter().enumerate() {
        assert_eq!(w.index, i + 1, "{ctx}");
        assert!(!w.hosts.is_empty(), "{ctx}: wave {} is empty", w.index);
    }

    // Canaries open wave 1, in listed order.
    if !canaries.is_empty() {
        assert_eq!(
            &got[0].hosts[..canaries.len()],
            &canaries[..],
            "{ctx}: canaries first"
        );
    }

    let total = targets.len();
    let position = |name: &str| targets.iter().position(|h| h.name == name).unwrap();
    let mut placed: Vec<usize> = vec![0; total]; // wave index per target
    for w in &got {
        for name in &w.hosts {
            placed[position(name)] = w.index;
        }
    }
    for (wi, w) in got.iter().enumerate() {
        let size = super::super::wave_size(super::super::size_entry(&s.sizes, wi), total);
        let pinned = if wi == 0 { canaries.len() } else { 0 };
        assert!(
            w.hosts.len() <= size.max(pinned),
            "{ctx}: wave {} over its size {size}",
            w.index
        );

        let mut counts: HashMap<String, usize> = HashMap::new();
        for name in &w.hosts {
            if let Some(g) = group(name) {
                *counts.entry(g).or_default() += 1;
            }
        }
        assert!(
            counts.values().all(|&c| c <= max),
            "{ctx}: wave {} breaks max_per_group",
            w.index
        );

        // After the canaries, target order.
        let rest: Vec<usize> = w.hosts[pinned..].iter().map(|n| position(n)).collect();
        assert!(
            rest.windows(2).all(|p| p[0] < p[1]),
            "{ctx}: wave {} out of target order",
            w.index
        );

        // As full as allowed: a host placed later waited only because this wave was
        // full or its group was.
        let full = w.hosts.len() >= size.max(pinned);
        for (i, h) in targets.iter().enumerate() {
            if placed[i] > w.index && !full {
                let g = group(&h.name);
                let group_full = g.is_some_and(|g| counts.get(&g).copied().unwrap_or(0) >= max);
                assert!(
                    group_full,
                    "{ctx}: {} could have gone in wave {}",
                    h.name, w.index
                );
            }
        }
    }

    if s.spread_by.is_none() && canaries.is_empty() {
        let expected: Vec<Vec<usize>> = ansible_batches(total, &s.sizes);
        let got_idx: Vec<Vec<usize>> = got
            .iter()
            .map(|w| w.hosts.iter().map(|n| position(n)).collect())
            .collect();
        assert_eq!(got_idx, expected, "{ctx}: Ansible's batches");
    }
}
