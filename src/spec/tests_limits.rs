//! Ranges (the last accepted value passes, the first refused one fails, at both
//! edges), the lease against the interval, allowed_signers, protected install paths
//! with and without force, and the absolute paths a loaded rollout carries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tests::{err, err_replacing, ok, Fixture, BASE, INV};
use super::*;

/// A spec with `key = value` in `[table]`, after `before` (whole lines, other tables).
/// `[script]` is BASE's own table: the key goes at its end.
fn spec_with(before: &str, table: &str, key: &str, value: &str) -> String {
    if table == "script" {
        assert!(before.is_empty());
        BASE.replace(
            "[activation]\n",
            &format!("{key} = {value}\n[activation]\n"),
        )
    } else if before.starts_with(&format!("[{table}]\n")) {
        format!("{BASE}{before}{key} = {value}\n")
    } else {
        format!("{BASE}{before}[{table}]\n{key} = {value}\n")
    }
}

/// `line:col` of the value of the last `key = ` line of `spec`.
fn value_pos(spec: &str, key: &str) -> String {
    let needle = format!("\n{key} = ");
    let at = spec.rfind(&needle).expect("key in spec") + needle.len();
    let line = spec[..at].matches('\n').count() + 1;
    format!("{line}:{}", needle.len())
}

/// One key's range: values that load, and values refused with their message; `help`
/// is the hint of every refusal.
struct Edges {
    before: &'static str,
    table: &'static str,
    key: &'static str,
    good: [&'static str; 2],
    bad: [(&'static str, &'static str); 2],
    help: &'static str,
}

const EDGES: &[Edges] = &[
    Edges {
        before: "",
        table: "script",
        key: "timeout",
        good: ["\"1s\"", "\"24h\""],
        bad: [
            (
                "\"999ms\"",
                "`script.timeout` must be at least 1s, not `999ms`",
            ),
            (
                "\"24h 1ms\"",
                "`script.timeout` must be at most 1d, not `24h 1ms`",
            ),
        ],
        help: "every run of the script on a host is killed after this; write a duration from \
               1s to 1d",
    },
    Edges {
        before: "",
        table: "waves",
        key: "concurrency",
        good: ["1", "1000"],
        bad: [
            ("0", "`waves.concurrency` must be at least 1, not 0"),
            ("1001", "`waves.concurrency` must be at most 1000, not 1001"),
        ],
        help: "the number of hosts worked on at once; write a number from 1 to 1000",
    },
    Edges {
        before: "",
        table: "waves",
        key: "bake",
        good: ["\"0s\"", "\"7d\""],
        bad: [
            (
                "\"7d 1ms\"",
                "`waves.bake` must be at most 7d, not `7d 1ms`",
            ),
            (
                "\"168h 1ms\"",
                "`waves.bake` must be at most 7d, not `168h 1ms`",
            ),
        ],
        help: "how long each wave is watched before the next one starts; \"0s\" does not \
               wait; write a duration from 0s to 7d",
    },
    Edges {
        before: "",
        table: "waves",
        key: "min_runs",
        good: ["0", "1000"],
        bad: [
            ("-1", "`waves.min_runs` must be at least 0, not -1"),
            ("1001", "`waves.min_runs` must be at most 1000, not 1001"),
        ],
        help: "how many times every host of a wave must have run the script before the wave \
               is judged; 0 does not wait for runs; write a number from 0 to 1000",
    },
    Edges {
        before: "[waves]\nspread_by = \"cluster\"\n",
        table: "waves",
        key: "max_per_group",
        good: ["1", "100000"],
        bad: [
            ("0", "`waves.max_per_group` must be at least 1, not 0"),
            (
                "100001",
                "`waves.max_per_group` must be at most 100000, not 100001",
            ),
        ],
        help: "the most hosts of one spread_by group in one wave; 1 keeps a primary and its \
               standby in different waves; write a number from 1 to 100000",
    },
    Edges {
        before: "",
        table: "health",
        key: "interval",
        good: ["\"1s\"", "\"1h\""],
        bad: [
            (
                "\"999ms\"",
                "`health.interval` must be at least 1s, not `999ms`",
            ),
            (
                "\"1h 1ms\"",
                "`health.interval` must be at most 1h, not `1h 1ms`",
            ),
        ],
        help: "the time between two probes of a host; write a duration from 1s to 1h",
    },
    Edges {
        before: "[health]\ninterval = \"1h\"\n",
        table: "health",
        key: "probe_timeout",
        good: ["\"1s\"", "\"10m\""],
        bad: [
            (
                "\"999ms\"",
                "`health.probe_timeout` must be at least 1s, not `999ms`",
            ),
            (
                "\"10m 1ms\"",
                "`health.probe_timeout` must be at most 10m, not `10m 1ms`",
            ),
        ],
        help: "the deadline of one probe of a host (login and command); write a duration \
               from 1s to 10m",
    },
    Edges {
        before: "",
        table: "policy",
        key: "max_unhealthy",
        good: ["0", "1000000"],
        bad: [
            ("-1", "`policy.max_unhealthy` must be at least 0, not -1"),
            (
                "1000001",
                "`policy.max_unhealthy` must be at most 1000000, not 1000001",
            ),
        ],
        help: "the number of bad hosts tolerated over the whole run; 0 rolls back on the \
               first; write a number from 0 to 1000000",
    },
    Edges {
        before: "",
        table: "policy",
        key: "approvals",
        good: ["0", "100"],
        bad: [
            ("-1", "`policy.approvals` must be at least 0, not -1"),
            ("101", "`policy.approvals` must be at most 100, not 101"),
        ],
        help: "the number of distinct signatures needed before apply; 0 needs none; write a \
               number from 0 to 100",
    },
    Edges {
        // 3 × 3s is below the lease's own minimum: the range decides.
        before: "[health]\ninterval = \"3s\"\n",
        table: "policy",
        key: "lease",
        good: ["\"10s\"", "\"7d\""],
        bad: [
            (
                "\"9s 999ms\"",
                "`policy.lease` must be at least 10s, not `9s 999ms`",
            ),
            (
                "\"7d 1ms\"",
                "`policy.lease` must be at most 7d, not `7d 1ms`",
            ),
        ],
        help: "a host on probation reverts itself when the controller has not renewed its \
               lease for this long; write a duration from 10s to 7d",
    },
];

#[test]
fn every_range_at_both_edges() {
    for e in EDGES {
        for value in e.good {
            ok(&spec_with(e.before, e.table, e.key, value));
        }
        for (value, message) in e.bad {
            let spec = spec_with(e.before, e.table, e.key, value);
            assert_eq!(
                Fixture::new(&spec, INV).err(),
                format!(
                    "T/r.toml:{}: {message}\n  help: {}",
                    value_pos(&spec, e.key),
                    e.help
                ),
                "{}.{} = {value}",
                e.table,
                e.key
            );
        }
    }
}

#[test]
fn the_values_at_the_edges_are_what_they_say() {
    let l = ok(&format!(
        "{BASE}[waves]\nconcurrency = 1000\nbake = \"7d\"\nmin_runs = 1000\n\
         [health]\ninterval = \"1h\"\nprobe_timeout = \"10m\"\n\
         [policy]\nmax_unhealthy = 1000000\napprovals = 100\nlease = \"7d\"\n"
    ));
    let r = &l.rollout;
    assert_eq!(
        (r.waves.concurrency, r.waves.bake, r.waves.min_runs),
        (1000, Duration::from_secs(7 * 86400), 1000)
    );
    assert_eq!(
        (r.health.interval, r.health.probe_timeout),
        (Duration::from_secs(3600), Duration::from_secs(600))
    );
    assert_eq!(
        (r.policy.max_unhealthy, r.policy.approvals, r.policy.lease),
        (1_000_000, 100, Duration::from_secs(7 * 86400))
    );
}

#[test]
fn wave_size_counts_at_both_edges() {
    let help = "help: a wave size is a host count from 1 to 1000000 (like 5), or a percentage \
                of the targets from \"1%\" to \"100%\"";
    let l = ok(&format!("{BASE}[waves]\nsizes = [1, 1000000]\n"));
    assert_eq!(
        l.rollout.waves.sizes,
        [WaveSize::Count(1), WaveSize::Count(1_000_000)]
    );
    assert_eq!(
        err("[waves]\nsizes = [1, 1000001]\n"),
        format!("T/r.toml:10:13: wave size 1000001 is more than 1000000\n  {help}")
    );
    assert_eq!(
        err("[waves]\nsizes = [9223372036854775807]\n"),
        format!("T/r.toml:10:10: wave size 9223372036854775807 is more than 1000000\n  {help}")
    );
    assert_eq!(
        err("[waves]\nsizes = [-9223372036854775808]\n"),
        format!("T/r.toml:10:10: wave size -9223372036854775808 is less than 1\n  {help}")
    );
}

#[test]
fn numbers_beyond_what_toml_holds_are_toml_errors() {
    // TOML integers are i64: a larger literal never reaches the range checks.
    let e = err("[waves]\nconcurrency = 99999999999999999999\n");
    assert!(e.starts_with("T/r.toml:10:15: "), "{e}");
    assert_eq!(
        err("[waves]\nconcurrency = 9223372036854775807\n"),
        "T/r.toml:10:15: `waves.concurrency` must be at most 1000, not 9223372036854775807\n  \
         help: the number of hosts worked on at once; write a number from 1 to 1000"
    );
    assert_eq!(
        err("[waves]\nbake = \"99999999999999999999d\"\n"),
        "T/r.toml:10:8: `waves.bake` must be at most 7d, not `99999999999999999999d`\n  \
         help: how long each wave is watched before the next one starts; \"0s\" does not \
         wait; write a duration from 0s to 7d"
    );
}

const LEASE_HELP_45S: &str = "help: the controller renews the lease with every probe, so a \
    lease of fewer than 3 intervals can run out on a healthy host that missed a probe or two, \
    and the host then reverts itself; make lease at least 45s, or shorten the interval";

#[test]
fn lease_is_at_least_three_intervals() {
    // Default interval 15s: 45s is the least lease.
    let l = ok(&format!("{BASE}[policy]\nlease = \"45s\"\n"));
    assert_eq!(l.rollout.policy.lease, Duration::from_secs(45));
    assert_eq!(
        err("[policy]\nlease = \"44s 999ms\"\n"),
        format!(
            "T/r.toml:10:9: `policy.lease` (44s 999ms) is shorter than 3 × `health.interval` \
             (3 × 15s = 45s)\n  {LEASE_HELP_45S}"
        )
    );
    assert_eq!(
        err("[health]\ninterval = \"10m\"\n[policy]\nlease = \"29m 59s\"\n"),
        "T/r.toml:12:9: `policy.lease` (29m 59s) is shorter than 3 × `health.interval` \
         (3 × 10m = 30m)\n  help: the controller renews the lease with every probe, so a lease \
         of fewer than 3 intervals can run out on a healthy host that missed a probe or two, \
         and the host then reverts itself; make lease at least 30m, or shorten the interval"
    );
    ok(&format!(
        "{BASE}[health]\ninterval = \"10m\"\n[policy]\nlease = \"30m\"\n"
    ));
}

#[test]
fn default_lease_is_15m_or_three_intervals() {
    for (interval, lease) in [
        ("1s", 15 * 60),
        ("1m", 15 * 60),
        ("5m", 15 * 60),
        ("5m 1s", 15 * 60 + 3),
        ("10m", 30 * 60),
        ("1h", 3 * 3600),
    ] {
        let l = ok(&format!("{BASE}[health]\ninterval = \"{interval}\"\n"));
        assert_eq!(
            l.rollout.policy.lease,
            Duration::from_secs(lease),
            "{interval}"
        );
    }
}

/// The help of an allowed_signers file that is not there.
const SIGNERS_HELP: &str = "help: `policy.approvals` needs the signers' keys: `allowed_signers` \
    is relative to the spec's directory (T); fix the path or create the file (one \"NAME \
    ssh-ed25519 KEY\" line per approver, see ssh-keygen(1))";

#[test]
fn allowed_signers_is_checked_when_approvals_are_needed() {
    let policy = |approvals: u32, signers: &str| {
        format!("{BASE}[policy]\napprovals = {approvals}\nallowed_signers = \"{signers}\"\n")
    };
    // Missing, with approvals needed: an error at the key.
    assert_eq!(
        Fixture::new(&policy(1, "approvers"), INV).err(),
        format!("T/r.toml:11:19: allowed_signers file `T/approvers` not found\n  {SIGNERS_HELP}")
    );
    assert_eq!(
        Fixture::new(&policy(2, "../nowhere/approvers"), INV).err(),
        format!(
            "T/r.toml:11:19: allowed_signers file `T/../nowhere/approvers` not found\n  \
             {SIGNERS_HELP}"
        )
    );
    let f = Fixture::new(&policy(1, "keys"), INV);
    std::fs::create_dir(f.dir.path().join("keys")).unwrap();
    assert_eq!(
        f.err(),
        format!(
            "T/r.toml:11:19: allowed_signers `T/keys` is a directory, not a file\n  {SIGNERS_HELP}"
        )
    );
    // Present: resolved against the spec's directory, absolute.
    let f = Fixture::new(&policy(1, "keys/approvers"), INV);
    std::fs::create_dir(f.dir.path().join("keys")).unwrap();
    std::fs::write(
        f.dir.path().join("keys/approvers"),
        "alice ssh-ed25519 AAAA\n",
    )
    .unwrap();
    let l = f.load().unwrap();
    assert_eq!(
        l.rollout.policy.allowed_signers,
        Some(std::fs::canonicalize(f.dir.path().join("keys/approvers")).unwrap())
    );
    // Missing but no approvals needed: not checked.
    let l = ok(&policy(0, "approvers"));
    let path = l.rollout.policy.allowed_signers.unwrap();
    assert!(
        path.is_absolute() && path.ends_with("approvers"),
        "{}",
        path.display()
    );
    // Approvals without the key: the file may come from the command line.
    let l = ok(&format!("{BASE}[policy]\napprovals = 1\n"));
    assert_eq!(l.rollout.policy.allowed_signers, None);
    // Empty: always an error.
    assert_eq!(
        Fixture::new(&policy(0, ""), INV).err(),
        "T/r.toml:11:19: `policy.allowed_signers` is empty\n  help: name the ssh-keygen \
         allowed-signers file, relative to the spec's directory, or remove the key"
    );
}

const REPLACING_TOOL: &str = "help: replacing it could leave hosts that cannot be cleaned; \
                              choose another path, or pass --force if you really mean it";

#[test]
fn protected_install_paths_are_refused_without_force() {
    let install =
        |path: &str| err_replacing("\"/usr/local/sbin/raid-health\"", &format!("\"{path}\""));
    assert_eq!(
        install("/usr/bin/timeout"),
        format!(
            "T/r.toml:5:16: install_path `/usr/bin/timeout` is a tool wavectl's host side runs \
             (timeout)\n  {REPLACING_TOOL}"
        )
    );
    assert_eq!(
        install("/bin/sh"),
        format!(
            "T/r.toml:5:16: install_path `/bin/sh` is a tool wavectl's host side runs (sh)\n  \
             {REPLACING_TOOL}"
        )
    );
    assert_eq!(
        install("/usr/local/sbin/["),
        format!(
            "T/r.toml:5:16: install_path `/usr/local/sbin/[` is a tool wavectl's host side runs \
             ([)\n  {REPLACING_TOOL}"
        )
    );
    assert_eq!(
        install("/usr/sbin/sshd"),
        "T/r.toml:5:16: install_path `/usr/sbin/sshd` is the SSH server wavectl reaches hosts \
         through\n  help: replacing it could lock wavectl (and you) out of the hosts; choose \
         another path, or pass --force if you really mean it"
    );
    assert_eq!(
        install("/etc/ssh/sshrc"),
        "T/r.toml:5:16: install_path `/etc/ssh/sshrc` is inside /etc/ssh (the SSH configuration \
         and host keys)\n  help: replacing it could lock wavectl (and you) out of the hosts; \
         choose another path, or pass --force if you really mean it"
    );
    assert_eq!(
        install("/usr/sbin/cron"),
        "T/r.toml:5:16: install_path `/usr/sbin/cron` is the cron daemon\n  help: replacing it \
         could stop every scheduled job on the hosts, wavectl's own lease and boot guards among \
         them; choose another path, or pass --force if you really mean it"
    );
    assert_eq!(
        install("/sbin/init"),
        "T/r.toml:5:16: install_path `/sbin/init` is the init system (PID 1)\n  help: replacing \
         it could leave hosts that do not boot; choose another path, or pass --force if you \
         really mean it"
    );
}

#[test]
fn force_allows_a_protected_install_path_and_nothing_else() {
    let force = LoadOptions {
        force: true,
        ..LoadOptions::default()
    };
    let f = Fixture::new(
        &BASE.replace("/usr/local/sbin/raid-health", "/usr/bin/timeout"),
        INV,
    );
    let l = load_with(&f.spec(), None, &force).unwrap();
    assert_eq!(l.rollout.script.install_path, "/usr/bin/timeout");
    // `load` is `load_with` without force.
    assert_eq!(
        LoadOptions::default(),
        LoadOptions {
            force: false,
            limit: None,
            runs: Default::default()
        }
    );
    assert!(f.load().is_err());
    // Force does not lift the other install_path rules.
    let f = Fixture::new(
        &BASE.replace("/usr/local/sbin/raid-health", "/var/lib/wavectl/x"),
        INV,
    );
    assert_eq!(
        f.err_of(load_with(&f.spec(), None, &force)),
        "T/r.toml:5:16: install_path `/var/lib/wavectl/x` is inside /var/lib/wavectl\n  help: \
         wavectl keeps its own state there; install the script elsewhere, like /usr/local/sbin"
    );
}

#[test]
fn purge_path_argument() {
    let show = |r: Result<(), InputError>| r.unwrap_err().to_string();
    assert_eq!(
        show(check_path_arg("/usr/bin/timeout", false)),
        "bad --path: `/usr/bin/timeout` is a tool wavectl's host side runs (timeout)\n  help: \
         removing it could leave hosts that cannot be cleaned; choose another path, or pass \
         --force if you really mean it"
    );
    assert_eq!(
        show(check_path_arg("/etc/pam.d/sshd", false)),
        "bad --path: `/etc/pam.d/sshd` is inside /etc/pam.d (the PAM login configuration)\n  \
         help: removing it could lock wavectl (and you) out of the hosts; choose another path, \
         or pass --force if you really mean it"
    );
    assert_eq!(check_path_arg("/usr/bin/timeout", true), Ok(()));
    assert_eq!(check_path_arg("/etc/pam.d/sshd", true), Ok(()));
    assert_eq!(check_path_arg("/usr/local/sbin/raid-health", false), Ok(()));
    // The other rules hold with or without force.
    for force in [false, true] {
        assert_eq!(
            show(check_path_arg("usr/bin/x", force)),
            "bad --path: `usr/bin/x` is not absolute\n  help: write the full path of the \
             script on the host, like \"/usr/local/sbin/raid-health\""
        );
        assert_eq!(
            show(check_path_arg("/var/lib/wavectl/x", force)),
            "bad --path: `/var/lib/wavectl/x` is inside /var/lib/wavectl\n  help: wavectl keeps \
             its own state there; install the script elsewhere, like /usr/local/sbin"
        );
    }
}

/// `path` relative to the working directory, through `..` up to `/`.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let up = cwd.components().count() - 1;
    let mut rel: PathBuf = std::iter::repeat_n("..", up).collect();
    rel.push(path.strip_prefix("/").unwrap());
    rel
}

#[test]
fn paths_are_absolute_but_messages_name_them_as_given() {
    let spec = BASE.replace("\"inv.toml\"", "\"sub/../inv.toml\"");
    let f = Fixture::new(&spec, INV);
    std::fs::create_dir(f.dir.path().join("sub")).unwrap();
    let real = std::fs::canonicalize(f.dir.path()).unwrap();
    let given = relative_to_cwd(&f.spec());
    assert!(given.is_relative());
    let l = load(&given, None).unwrap();
    let r = &l.rollout;
    assert_eq!(r.spec_path, real.join("r.toml"));
    assert_eq!(r.spec_given, given);
    assert_eq!(r.inventory_path, real.join("inv.toml"));
    assert_eq!(r.script.source, real.join("check.sh"));
    // The inventory keeps the path as given, for its messages.
    assert_eq!(
        l.inventory.path,
        given.parent().unwrap().join("sub/../inv.toml")
    );

    // An error names the spec as given.
    std::fs::write(
        f.dir.path().join("r.toml"),
        spec.replace("\"check.sh\"", "\"nope.sh\""),
    )
    .unwrap();
    let dir = given.parent().unwrap().display().to_string();
    assert_eq!(
        load(&given, None).unwrap_err().to_string(),
        format!(
            "{dir}/r.toml:4:10: script `{dir}/nope.sh` not found\n  help: `source` is relative \
             to the spec's directory ({dir}); fix the path or create the file"
        )
    );

    // An --inventory override is made absolute too.
    std::fs::write(f.dir.path().join("r.toml"), &spec).unwrap();
    let inv = relative_to_cwd(&f.dir.path().join("inv.toml"));
    let l = load(&given, Some(&inv)).unwrap();
    assert_eq!(l.rollout.inventory_path, real.join("inv.toml"));
    assert_eq!(l.inventory.path, inv);
}

#[test]
fn health_thresholds_have_defaults_and_ranges() {
    let l = ok(BASE);
    assert_eq!(l.rollout.health.thresholds, Thresholds::default());
    let counts = [
        (&limits::BASELINE_SAMPLES, "baseline_samples"),
        (&limits::STRIKES, "strikes"),
        (&limits::BLOCKED, "blocked"),
        (&limits::PRESSURE_CPU, "pressure_cpu"),
        (&limits::PRESSURE_MEMORY, "pressure_memory"),
        (&limits::PRESSURE_IO, "pressure_io"),
        (&limits::RESTARTS, "restarts"),
    ];
    for (rule, key) in counts {
        assert_eq!(rule.key, format!("health.{key}"));
        for good in [rule.min, rule.max] {
            ok(&spec_with("", "health", key, &good.to_string()));
        }
        for (bad, word) in [(rule.min - 1, "least"), (rule.max + 1, "most")] {
            let edge = if word == "least" { rule.min } else { rule.max };
            let spec = spec_with("", "health", key, &bad.to_string());
            assert_eq!(
                Fixture::new(&spec, INV).err(),
                format!(
                    "T/r.toml:{}: `health.{key}` must be at {word} {edge}, not {bad}\n  help: {}; \
                     write a number from {} to {}",
                    value_pos(&spec, key),
                    rule.what,
                    rule.min,
                    rule.max
                ),
            );
        }
    }
    let help = format!(
        "help: {}; write a number from 0.1 to 100",
        limits::LOAD_PER_CORE.what
    );
    ok(&spec_with("", "health", "load_per_core", "0.1"));
    ok(&spec_with("", "health", "load_per_core", "100"));
    for (bad, message) in [
        (
            "0.09",
            "`health.load_per_core` must be at least 0.1, not 0.09",
        ),
        (
            "100.5",
            "`health.load_per_core` must be at most 100, not 100.5",
        ),
        (
            "nan",
            "`health.load_per_core` must be at least 0.1, not NaN",
        ),
    ] {
        let spec = spec_with("", "health", "load_per_core", bad);
        assert_eq!(
            Fixture::new(&spec, INV).err(),
            format!(
                "T/r.toml:{}: {message}\n  {help}",
                value_pos(&spec, "load_per_core")
            ),
        );
    }
    // Set, they come through as written.
    let l = ok(&format!(
        "{BASE}[health]\nbaseline_samples = 5\nstrikes = 4\nload_per_core = 2\nblocked = 9\n\
         pressure_cpu = 70\npressure_memory = 5\npressure_io = 30\nrestarts = 10\n"
    ));
    assert_eq!(
        l.rollout.health.thresholds,
        Thresholds {
            baseline_samples: 5,
            strikes: 4,
            load_per_core: 2.0,
            blocked: 9,
            pressure_cpu: 70,
            pressure_memory: 5,
            pressure_io: 30,
            restarts: 10,
        }
    );
}
