//! Unit tests of `plan::waves` on plain values: Ansible `serial` sizes, canaries,
//! `spread_by` / `max_per_group`, and invariants over many generated inputs.

use std::time::Duration;

use crate::diag::Pos;
use crate::inventory::Host;
use crate::plan::waves;
use crate::spec::{Located, WaveSize, WaveSpec};

use WaveSize::{Count as C, Percent as P};

/// `h1`..`hN`, no labels.
fn hosts(n: usize) -> Vec<Host> {
    (1..=n)
        .map(|i| Host::labelled(&format!("h{i}"), &[]))
        .collect()
}

/// Hosts named by `(name, cluster)`, `""` for no `cluster` label.
fn clustered(spec: &[(&str, &str)]) -> Vec<Host> {
    spec.iter()
        .map(|&(name, cluster)| {
            if cluster.is_empty() {
                Host::labelled(name, &[])
            } else {
                Host::labelled(name, &[("cluster", cluster)])
            }
        })
        .collect()
}

fn spec(sizes: &[WaveSize]) -> WaveSpec {
    WaveSpec {
        sizes: sizes.to_vec(),
        canaries: Vec::new(),
        spread_by: None,
        max_per_group: usize::MAX,
        concurrency: 50,
        bake: Duration::from_secs(600),
        min_runs: 1,
    }
}

fn with_canaries(mut spec: WaveSpec, canaries: &[&str]) -> WaveSpec {
    spec.canaries = canaries
        .iter()
        .map(|c| Located {
            value: c.to_string(),
            pos: None,
        })
        .collect();
    spec
}

fn spread(mut spec: WaveSpec, key: &str, max_per_group: usize) -> WaveSpec {
    spec.spread_by = Some(key.to_string());
    spec.max_per_group = max_per_group;
    spec
}

fn plan(targets: &[Host], spec: &WaveSpec) -> Vec<Vec<String>> {
    let waves = waves(targets, spec).expect("a valid plan");
    for (i, w) in waves.iter().enumerate() {
        assert_eq!(w.index, i + 1, "indices are 1-based and consecutive");
    }
    waves.into_iter().map(|w| w.hosts).collect()
}

#[test]
fn ansible_sizes_on_10_hosts() {
    let got = plan(&hosts(10), &spec(&[C(1), P(10), P(50), P(100)]));
    assert_eq!(
        got,
        vec![
            vec!["h1"],
            vec!["h2"],
            vec!["h3", "h4", "h5", "h6", "h7"],
            vec!["h8", "h9", "h10"]
        ]
    );
}

#[test]
fn ansible_sizes_on_7_hosts() {
    // 10% of 7 is 0.7 → 1; 50% of 7 is 3.5 → 3; 100% takes the 2 left.
    let got = plan(&hosts(7), &spec(&[C(1), P(10), P(50), P(100)]));
    assert_eq!(
        got,
        vec![
            vec!["h1"],
            vec!["h2"],
            vec!["h3", "h4", "h5"],
            vec!["h6", "h7"]
        ]
    );
}

#[test]
fn last_size_repeats_until_all_are_placed() {
    let got = plan(&hosts(10), &spec(&[C(2), C(3)]));
    assert_eq!(
        got,
        vec![
            vec!["h1", "h2"],
            vec!["h3", "h4", "h5"],
            vec!["h6", "h7", "h8"],
            vec!["h9", "h10"]
        ]
    );
    let got = plan(&hosts(7), &spec(&[C(2), C(3)]));
    assert_eq!(
        got,
        vec![vec!["h1", "h2"], vec!["h3", "h4", "h5"], vec!["h6", "h7"]]
    );
}

#[test]
fn percentage_is_of_all_targets_rounded_down_at_least_one() {
    // 30% of 10 = 3, repeating, on the total (not on what remains).
    let got = plan(&hosts(10), &spec(&[P(30)]));
    assert_eq!(
        got,
        vec![
            vec!["h1", "h2", "h3"],
            vec!["h4", "h5", "h6"],
            vec!["h7", "h8", "h9"],
            vec!["h10"]
        ]
    );
    // 10% of 7 = 0.7 → 1: seven waves of one.
    let got = plan(&hosts(7), &spec(&[P(10)]));
    assert_eq!(got.len(), 7);
    assert!(got.iter().all(|w| w.len() == 1));
    // 99% of 10 = 9.9 → 9.
    let got = plan(&hosts(10), &spec(&[P(99)]));
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![9, 1]);
    // 0% → at least 1.
    let got = plan(&hosts(3), &spec(&[P(0)]));
    assert_eq!(got, vec![vec!["h1"], vec!["h2"], vec!["h3"]]);
    // 1% of 150 = 1.5 → 1, then 50% of 150 = 75.
    let got = plan(&hosts(150), &spec(&[P(1), P(50)]));
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1, 75, 74]
    );
}

#[test]
fn size_larger_than_what_remains_takes_what_remains() {
    let got = plan(&hosts(7), &spec(&[C(5), C(100)]));
    assert_eq!(
        got,
        vec![vec!["h1", "h2", "h3", "h4", "h5"], vec!["h6", "h7"]]
    );
    let got = plan(&hosts(3), &spec(&[P(250)]));
    assert_eq!(got, vec![vec!["h1", "h2", "h3"]]);
}

#[test]
fn count_zero_is_all_remaining_and_empty_sizes_are_100_percent() {
    let got = plan(&hosts(4), &spec(&[C(1), C(0)]));
    assert_eq!(got, vec![vec!["h1"], vec!["h2", "h3", "h4"]]);
    let got = plan(&hosts(4), &spec(&[]));
    assert_eq!(got, vec![vec!["h1", "h2", "h3", "h4"]]);
}

#[test]
fn no_targets_no_waves() {
    assert_eq!(plan(&[], &spec(&[C(1), P(100)])), Vec::<Vec<String>>::new());
    assert_eq!(
        plan(&[], &spread(spec(&[]), "cluster", 1)),
        Vec::<Vec<String>>::new()
    );
}

#[test]
fn canary_pinned_first_even_when_last_in_target_order() {
    let got = plan(&hosts(10), &with_canaries(spec(&[C(1), P(50)]), &["h10"]));
    assert_eq!(
        got,
        vec![
            vec!["h10"],
            vec!["h1", "h2", "h3", "h4", "h5"],
            vec!["h6", "h7", "h8", "h9"]
        ]
    );
}

#[test]
fn canaries_then_target_order_fill_wave_one() {
    let got = plan(&hosts(7), &with_canaries(spec(&[C(3)]), &["h5"]));
    assert_eq!(
        got,
        vec![vec!["h5", "h1", "h2"], vec!["h3", "h4", "h6"], vec!["h7"]]
    );
}

#[test]
fn canaries_outnumbering_wave_one_grow_it() {
    // Wave 1 is sized 1 but holds all three canaries, in the order they are listed;
    // wave 2 is still 50% of all 10 targets.
    let got = plan(
        &hosts(10),
        &with_canaries(spec(&[C(1), P(50)]), &["h9", "h3", "h6"]),
    );
    assert_eq!(
        got,
        vec![
            vec!["h9", "h3", "h6"],
            vec!["h1", "h2", "h4", "h5", "h7"],
            vec!["h8", "h10"]
        ]
    );
}

#[test]
fn duplicate_canaries_count_once() {
    let got = plan(&hosts(4), &with_canaries(spec(&[C(2)]), &["h3", "h3"]));
    assert_eq!(got, vec![vec!["h3", "h1"], vec!["h2", "h4"]]);
}

#[test]
fn canary_not_among_targets_is_an_error() {
    let mut s = with_canaries(spec(&[C(1)]), &["h9"]);
    s.canaries[0].pos = Some(Pos { line: 14, col: 13 });
    let err = waves(&hosts(3), &s).unwrap_err();
    assert_eq!(
        err.message,
        "waves.canaries names `h9`, which is not among the targets"
    );
    assert_eq!(
        err.help.as_deref(),
        Some("a canary must be a host that [targets] selects")
    );
    assert_eq!(err.pos, Some(Pos { line: 14, col: 13 }));
}

#[test]
fn spread_by_adds_waves_to_honour_max_per_group() {
    // 6 hosts, 2 clusters of 3, one wave asked for: 3 waves of 2.
    let targets = clustered(&[
        ("m1", "pg-main"),
        ("m2", "pg-main"),
        ("m3", "pg-main"),
        ("r1", "pg-rep"),
        ("r2", "pg-rep"),
        ("r3", "pg-rep"),
    ]);
    let got = plan(&targets, &spread(spec(&[P(100)]), "cluster", 1));
    assert_eq!(
        got,
        vec![vec!["m1", "r1"], vec!["m2", "r2"], vec!["m3", "r3"]]
    );
    // max 2: two waves.
    let got = plan(&targets, &spread(spec(&[P(100)]), "cluster", 2));
    assert_eq!(got, vec![vec!["m1", "m2", "r1", "r2"], vec!["m3", "r3"]]);
}

#[test]
fn spread_by_follows_sizes_wave_by_wave() {
    // Sizes [1, 50%] on 8 hosts in 2 clusters, max 2: wave 2 wants 4 and gets 4
    // (2 of each); wave 3 wants 4 but only 2 of pg-main may go; the last one waits.
    let targets = clustered(&[
        ("m1", "pg-main"),
        ("m2", "pg-main"),
        ("m3", "pg-main"),
        ("m4", "pg-main"),
        ("m5", "pg-main"),
        ("m6", "pg-main"),
        ("r1", "pg-rep"),
        ("r2", "pg-rep"),
    ]);
    let got = plan(&targets, &spread(spec(&[C(1), P(50)]), "cluster", 2));
    assert_eq!(
        got,
        vec![
            vec!["m1"],
            vec!["m2", "m3", "r1", "r2"],
            vec!["m4", "m5"],
            vec!["m6"]
        ]
    );
}

#[test]
fn hosts_without_the_label_are_groups_of_their_own() {
    let targets = clustered(&[("a1", "a"), ("a2", "a"), ("x", ""), ("y", ""), ("z", "")]);
    let got = plan(&targets, &spread(spec(&[P(100)]), "cluster", 1));
    assert_eq!(got, vec![vec!["a1", "x", "y", "z"], vec!["a2"]]);
}

#[test]
fn max_per_group_without_spread_by_changes_nothing() {
    let targets = clustered(&[("a1", "a"), ("a2", "a"), ("a3", "a")]);
    let mut s = spec(&[P(100)]);
    s.max_per_group = 1;
    assert_eq!(plan(&targets, &s), vec![vec!["a1", "a2", "a3"]]);
}

#[test]
fn max_per_group_unset_is_usize_max_and_harmless() {
    let targets = clustered(&[("a1", "a"), ("a2", "a"), ("b1", "b")]);
    let got = plan(
        &targets,
        &with_canaries(spread(spec(&[C(2)]), "cluster", usize::MAX), &["a2"]),
    );
    assert_eq!(got, vec![vec!["a2", "a1"], vec!["b1"]]);
}

#[test]
fn canary_takes_its_groups_slot_in_wave_one() {
    // The canary is pg-main's one slot in wave 1, so m1 waits and r1 fills wave 1.
    let targets = clustered(&[
        ("m1", "pg-main"),
        ("m2", "pg-main"),
        ("m3", "pg-main"),
        ("r1", "pg-rep"),
        ("r2", "pg-rep"),
        ("r3", "pg-rep"),
    ]);
    let got = plan(
        &targets,
        &with_canaries(spread(spec(&[C(2), P(100)]), "cluster", 1), &["m3"]),
    );
    assert_eq!(
        got,
        vec![vec!["m3", "r1"], vec!["m1", "r2"], vec!["m2", "r3"]]
    );
}

#[test]
fn canaries_of_distinct_groups_may_exceed_wave_one_size() {
    let targets = clustered(&[
        ("m1", "pg-main"),
        ("m2", "pg-main"),
        ("r1", "pg-rep"),
        ("r2", "pg-rep"),
    ]);
    let got = plan(
        &targets,
        &with_canaries(spread(spec(&[C(1)]), "cluster", 1), &["r2", "m2"]),
    );
    assert_eq!(got, vec![vec!["r2", "m2"], vec!["m1"], vec!["r1"]]);
}

#[test]
fn canaries_that_break_max_per_group_are_an_error() {
    let targets = clustered(&[
        ("db-1", "pg-main"),
        ("db-standby-1", "pg-main"),
        ("db-2", "pg-rep"),
        ("db-standby-2", "pg-rep"),
        ("web-1", ""),
    ]);
    let mut s = with_canaries(
        spread(spec(&[C(1), P(100)]), "cluster", 1),
        &["db-standby-2", "db-1", "web-1", "db-standby-1"],
    );
    s.canaries[3].pos = Some(Pos { line: 20, col: 40 });
    let err = waves(&targets, &s).unwrap_err();
    assert_eq!(
        err.message,
        "waves.canaries break waves.max_per_group = 1 in the first wave: \
         2 canaries with cluster=pg-main (db-1, db-standby-1)"
    );
    assert_eq!(
        err.help.as_deref(),
        Some(
            "every canary goes into the first wave: name at most 1 canary per `cluster` value, \
             or raise waves.max_per_group"
        )
    );
    assert_eq!(
        err.pos,
        Some(Pos { line: 20, col: 40 }),
        "points at the first canary over the limit"
    );
    assert_eq!(err.file, None);
}

#[test]
fn canaries_that_break_max_per_group_in_several_groups_name_each() {
    let targets = clustered(&[
        ("a1", "a"),
        ("a2", "a"),
        ("a3", "a"),
        ("b1", "b"),
        ("b2", "b"),
        ("b3", "b"),
    ]);
    let s = with_canaries(
        spread(spec(&[C(1)]), "cluster", 2),
        &["b1", "a1", "b2", "a2", "b3", "a3"],
    );
    let err = waves(&targets, &s).unwrap_err();
    assert_eq!(
        err.message,
        "waves.canaries break waves.max_per_group = 2 in the first wave: \
         3 canaries with cluster=b (b1, b2, b3); 3 canaries with cluster=a (a1, a2, a3)"
    );
    assert!(err
        .help
        .unwrap()
        .contains("at most 2 canaries per `cluster` value"));
}

#[test]
fn max_per_group_zero_is_an_error_not_a_hang() {
    let err = waves(&hosts(3), &spread(spec(&[C(1)]), "cluster", 0)).unwrap_err();
    assert_eq!(
        err.message,
        "waves.max_per_group is 0, so no wave could hold any host"
    );
}

/// Issue 13, case 11c: `spread_by` planning was quadratic (16,000 hosts of one group
/// took 12 s in `check`, 100,000 hosts did not finish in a minute). The result of a
/// 100,000-host plan of 5,001 waves, exactly; its time is measured (with the release
/// binary's `check`), not asserted here.
#[test]
fn spread_by_planning_of_100000_hosts_in_5001_waves() {
    // Host i is in cluster c(i % 20); the first four are canaries.
    let targets: Vec<Host> = (0..100_000)
        .map(|i| Host::labelled(&format!("n{i}"), &[("cluster", &format!("c{}", i % 20))]))
        .collect();
    let s = with_canaries(
        spread(spec(&[C(5), P(100)]), "cluster", 1),
        &["n3", "n2", "n1", "n0"],
    );
    let got = waves(&targets, &s).unwrap();
    // Wave 1: the canaries, then one more (its size is 5): n4, the first host of a
    // cluster with room.
    assert_eq!(got[0].hosts, vec!["n3", "n2", "n1", "n0", "n4"]);
    // Wave 2 (100%, one host per cluster): n5..n19 (clusters 5..19), then the second
    // host of clusters 0..4, n20..n24.
    let names = |r: std::ops::RangeInclusive<usize>| -> Vec<String> {
        r.map(|i| format!("n{i}")).collect()
    };
    assert_eq!(got[1].hosts, names(5..=24));
    // Then each wave holds the next host of every cluster, until clusters 0..4 (one
    // host ahead since wave 1) run out: the last wave holds clusters 5..19 only.
    assert_eq!(got.len(), 5_001);
    for w in &got[2..5_000] {
        let mut clusters: Vec<usize> = w
            .hosts
            .iter()
            .map(|n| n[1..].parse::<usize>().unwrap() % 20)
            .collect();
        clusters.sort_unstable();
        assert_eq!(clusters, (0..20).collect::<Vec<_>>(), "wave {}", w.index);
    }
    assert_eq!(got[5_000].hosts, names(99_985..=99_999));
    let placed: usize = got.iter().map(|w| w.hosts.len()).sum();
    assert_eq!(placed, 100_000);
    for (k, w) in got.iter().enumerate() {
        assert_eq!(w.index, k + 1);
    }
}

/// Issue 13, case 11c: a plan over `MAX_WAVES` waves is refused at once, naming the
/// group that makes it so; one of exactly `MAX_WAVES` waves is planned.
#[test]
fn a_plan_of_more_than_10000_waves_is_refused() {
    let one_group: Vec<Host> = (0..16_000)
        .map(|i| Host::labelled(&format!("n{i}"), &[("cluster", "main")]))
        .collect();
    let err = waves(&one_group, &spread(spec(&[P(100)]), "cluster", 1)).unwrap_err();
    assert_eq!(
        err.message,
        "the plan needs at least 16000 waves, at most 10000 are allowed: 16000 targets \
         have cluster=main and a wave holds at most waves.max_per_group = 1 of them"
    );
    assert_eq!(
        err.help.as_deref(),
        Some(
            "raise waves.max_per_group to at least 2, spread by a label with more values, \
             or narrow the targets"
        )
    );
    assert_eq!(
        waves(&one_group, &spread(spec(&[P(100)]), "cluster", 2))
            .unwrap()
            .len(),
        8_000
    );

    // Wave sizes too small for the fleet.
    let err = waves(&hosts(10_001), &spec(&[C(1)])).unwrap_err();
    assert_eq!(
        err.message,
        "the plan needs more than 10000 waves for 10001 targets, at most 10000 are allowed"
    );
    assert!(err
        .help
        .unwrap()
        .starts_with("give waves.sizes larger waves"));
    let got = waves(&hosts(10_000), &spec(&[C(1)])).unwrap();
    assert_eq!(got.len(), super::MAX_WAVES);
    assert_eq!(got[9_999].hosts, vec!["h10000"]);
}

#[test]
fn huge_sizes_do_not_overflow() {
    let got = plan(&hosts(3), &spec(&[C(usize::MAX), P(u32::MAX)]));
    assert_eq!(got, vec![vec!["h1", "h2", "h3"]]);
    let got = plan(&hosts(3), &spec(&[C(1), P(u32::MAX)]));
    assert_eq!(got, vec![vec!["h1"], vec!["h2", "h3"]]);
}

mod invariants;
