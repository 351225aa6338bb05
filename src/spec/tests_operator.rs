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

#[test]
fn notify_resolves_with_its_kinds_timeout_and_directory() {
    let f = Fixture::new(
        &format!(
            "{BASE}[notify]\ncommand = \"./page.sh --team db\"\nevents = [\"paused\", \"rolled-back\", \"done\", \"gated\"]\n"
        ),
        INV,
    );
    let n = f.load().unwrap().rollout.notify.unwrap();
    assert_eq!(n.command, "./page.sh --team db");
    assert_eq!(
        n.events,
        [
            EventKind::Paused,
            EventKind::RolledBack,
            EventKind::Done,
            EventKind::Gated
        ]
    );
    assert_eq!(n.timeout, std::time::Duration::from_secs(30));
    assert_eq!(n.dir, std::fs::canonicalize(f.dir.path()).unwrap());
    let n = ok(&format!(
        "{BASE}[notify]\ncommand = \"x\"\nevents = [\"ended\"]\ntimeout = \"5s\"\n"
    ))
    .rollout
    .notify
    .unwrap();
    assert_eq!(n.timeout, std::time::Duration::from_secs(5));
    assert!(ok(BASE).rollout.notify.is_none());
    // Every kind reads back from its name.
    for k in EventKind::ALL {
        assert_eq!(EventKind::named(k.name()), Some(k));
    }
}

#[test]
fn notify_errors() {
    let kinds = "started, wave, unhealthy, rolling-back, gated, done, paused, rolled-back, \
                 aborted, refused, incomplete, unconfirmed, reconciled, ended";
    let cases = [
        (
            "[notify]\ncommand = \"x\"\nevents = [\"paused\", \"pasued\"]\n",
            format!("T/r.toml:11:21: unknown event kind `pasued`\n  help: the kinds are: {kinds}"),
        ),
        (
            "[notify]\ncommand = \"x\"\nevents = [\"done\", \"done\"]\n",
            "T/r.toml:11:19: event kind `done` is listed twice\n  help: remove the duplicate"
                .to_string(),
        ),
        (
            "[notify]\ncommand = \"x\"\nevents = []\n",
            format!(
                "T/r.toml:11:10: `notify.events` is empty\n  help: list at least one kind (or \
                 remove [notify]); the kinds are: {kinds}"
            ),
        ),
        (
            "[notify]\ncommand = \"x\"\n",
            format!(
                "T/r.toml:9:1: missing `notify.events`\n  help: list the kinds of event to run \
                 the command for, like events = [\"paused\", \"rolled-back\", \"done\"]; the \
                 kinds are: {kinds}"
            ),
        ),
        (
            "[notify]\nevents = [\"done\"]\n",
            "T/r.toml:9:1: missing `notify.command`\n  help: add a line like command = \
             \"/usr/local/bin/page-oncall\" (run by /bin/sh -c on the controller, the event's \
             JSON on its stdin)"
                .to_string(),
        ),
        (
            "[notify]\ncommand = \"  \"\nevents = [\"done\"]\n",
            "T/r.toml:10:11: `notify.command` is empty\n  help: write the command to run, like \
             \"/usr/local/bin/page-oncall\""
                .to_string(),
        ),
        (
            "[notify]\ncommand = \"x\"\nevents = [\"done\"]\ntimeout = \"10m\"\n",
            "T/r.toml:12:11: `notify.timeout` must be at most 5m, not `10m`\n  help: a \
             notification hook still running after this is killed (it never holds the run); \
             write a duration from 1s to 5m"
                .to_string(),
        ),
        (
            "[notify]\ncommand = \"x\"\nevents = [\"done\"]\nwhen = \"always\"\n",
            "T/r.toml:12:1: unknown field `when`, expected one of `command`, `events`, \
             `timeout`\n  help: remove the key or fix its spelling"
                .to_string(),
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(err(extra), expected, "{extra}");
    }
}

#[test]
fn gates_resolve_sorted_with_their_timeout() {
    let l = ok(&format!(
        "{BASE}[gates]\nafter = [3, 1]\ntimeout = \"30m\"\n"
    ));
    assert_eq!(
        l.rollout.gates,
        Some(Gates {
            after: vec![1, 3],
            timeout: Duration::from_secs(30 * 60)
        })
    );
    // The default timeout is 4h; no [gates], no gates.
    let l = ok(&format!("{BASE}[gates]\nafter = [1]\n"));
    assert_eq!(
        l.rollout.gates.unwrap().timeout,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(ok(BASE).rollout.gates, None);
}

#[test]
fn gates_errors() {
    for (extra, want) in [
        (
            "[gates]\ntimeout = \"1h\"\n",
            "T/r.toml:9:1: missing `gates.after`\n  help: add a line like after = [1] (the waves \
             after whose bake the run waits for `wavectl promote RUN`), or remove [gates]",
        ),
        (
            "[gates]\nafter = []\n",
            "T/r.toml:10:9: `gates.after` is empty\n  help: list at least one wave number, like \
             after = [1], or remove [gates]",
        ),
        (
            "[gates]\nafter = [0]\n",
            "T/r.toml:10:10: `gates.after` holds wave 0, which is not a wave number\n  help: waves \
             are numbered from 1 (the first wave) to at most 10000",
        ),
        (
            "[gates]\nafter = [1, 2, 1]\n",
            "T/r.toml:10:16: wave 1 is listed twice in `gates.after`\n  help: remove the duplicate",
        ),
        (
            "[gates]\nafter = [1]\ntimeout = \"0s\"\n",
            "T/r.toml:11:11: `gates.timeout` must be at least 1s, not `0s`\n  help: how long a run \
             waits at a gate for `wavectl promote` before it rolls back; write a duration from 1s \
             to 7d",
        ),
        (
            "[gates]\nafter = [1]\nwait = \"1h\"\n",
            "T/r.toml:11:1: unknown field `wait`, expected `after` or `timeout`\n  help: remove the key or fix its spelling",
        ),
        (
            "[gates]\nafter = \"1\"\n",
            "T/r.toml:10:9: invalid type: string \"1\", expected a sequence\n  help: change the value to the expected type",
        ),
    ] {
        assert_eq!(err(extra), want, "{extra}");
    }
}
