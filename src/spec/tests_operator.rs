//! Spec keys of the operator's day: `waves.concurrency` as a percentage of the run's
//! targets, resolved after `--limit`; exact errors.

use super::tests::{err, ok, Fixture, BASE, INV};
use super::*;

#[test]
fn concurrency_as_a_percentage_resolves_against_the_targets() {
    // INV has 3 hosts: 25% of 3 rounds down to 0, and is at least 1.
    let l = ok(&format!("{BASE}[waves]\nconcurrency = \"25%\"\n"));
    assert_eq!(l.targets.len(), 3);
    assert_eq!(l.rollout.waves.concurrency, 1);
    assert_eq!(l.concurrency_given, WaveSize::Percent(25));
    let l = ok(&format!("{BASE}[waves]\nconcurrency = \"67%\"\n"));
    assert_eq!(l.rollout.waves.concurrency, 2);
    let l = ok(&format!("{BASE}[waves]\nconcurrency = \"100%\"\n"));
    assert_eq!(l.rollout.waves.concurrency, 3);
    // A count is what it says, whatever the targets.
    let l = ok(&format!("{BASE}[waves]\nconcurrency = 7\n"));
    assert_eq!(
        (l.rollout.waves.concurrency, l.concurrency_given),
        (7, WaveSize::Count(7))
    );
    // The default is a count of 50.
    assert_eq!(ok(BASE).rollout.waves.concurrency, 50);
}

#[test]
fn concurrency_percentage_counts_the_targets_left_by_limit() {
    let f = Fixture::new(&format!("{BASE}[waves]\nconcurrency = \"100%\"\n"), INV);
    let opts = LoadOptions {
        limit: Some("db-*".into()),
        ..LoadOptions::default()
    };
    let l = load_with(&f.spec(), None, &opts).unwrap();
    assert_eq!((l.targets.len(), l.rollout.waves.concurrency), (2, 2));
}

#[test]
fn concurrency_percentage_is_capped_at_the_count_maximum() {
    assert_eq!(waves::concurrency_of(WaveSize::Percent(100), 5000), 1000);
    assert_eq!(waves::concurrency_of(WaveSize::Percent(1), 99), 1);
    assert_eq!(waves::concurrency_of(WaveSize::Percent(1), 0), 1);
    assert_eq!(waves::concurrency_of(WaveSize::Percent(10), 1000), 100);
}

#[test]
fn concurrency_errors() {
    let help = "help: the number of hosts worked on at once; write a number from 1 to 1000, \
                or a percentage of the run's targets like \"25%\"";
    for (value, shown) in [
        ("\"0%\"", "`0%`"),
        ("\"101%\"", "`101%`"),
        ("\"25\"", "`25`"),
        ("\"all\"", "`all`"),
        ("\"%\"", "`%`"),
    ] {
        assert_eq!(
            err(&format!("[waves]\nconcurrency = {value}\n")),
            format!(
                "T/r.toml:10:15: `waves.concurrency` {shown} is not a count or a percentage \
                 from \"1%\" to \"100%\"\n  {help}"
            )
        );
    }
    // Counts keep their range errors.
    assert_eq!(
        err("[waves]\nconcurrency = 0\n"),
        "T/r.toml:10:15: `waves.concurrency` must be at least 1, not 0\n  help: the number of \
         hosts worked on at once; write a number from 1 to 1000"
    );
}
