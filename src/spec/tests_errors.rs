//! Exact errors for bad values in a spec: script, activation, targets, waves, health,
//! policy — each with file:line:col, message and help.

use super::tests::{err, err_replacing, Fixture, BASE, INV};

/// The error for `line` added to `[script]` (it lands on line 6).
fn script_err(line: &str) -> String {
    err_replacing("[activation]\n", &format!("{line}\n[activation]\n"))
}

const DURATION_HELP: &str = "help: write whole numbers with the units ms, s, m, h or d, like \
                             \"500ms\", \"90s\", \"10m\" or \"1h 30m\"";
const UNITS_HELP: &str =
    "help: the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"";

#[test]
fn script_source_missing() {
    assert_eq!(
        err_replacing("\"check.sh\"", "\"nope.sh\""),
        "T/r.toml:4:10: script `T/nope.sh` not found\n  help: `source` is relative to the spec's \
         directory (T); fix the path or create the file"
    );
    assert_eq!(
        err_replacing("\"check.sh\"", "\".\""),
        "T/r.toml:4:10: script `T/.` is a directory, not a file\n  help: `source` is relative to \
         the spec's directory (T); fix the path or create the file"
    );
}

#[test]
fn install_path_errors() {
    let cases = [
        ("\"usr/bin/x\"", "install_path `usr/bin/x` is not absolute", "write the full path of the script on the host, like \"/usr/local/sbin/raid-health\""),
        ("\"/usr/../x\"", "install_path `/usr/../x` contains a '..' component", "write the path without '..', like \"/usr/local/sbin/raid-health\""),
        ("\"/usr/x\\ny\"", "install_path `/usr/x\\ny` contains the control character '\\n'", "write the path on one line, without control characters"),
        ("\"/usr/sbin/\"", "install_path `/usr/sbin/` ends with '/'", "name the file itself, like \"/usr/local/sbin/raid-health\""),
        ("\"/etc/cron.d/x\"", "install_path `/etc/cron.d/x` is inside /etc/cron.d", "cron would read the script as a crontab; install the script elsewhere, like /usr/local/sbin"),
        ("\"/var/lib/wavectl/x\"", "install_path `/var/lib/wavectl/x` is inside /var/lib/wavectl", "wavectl keeps its own state there; install the script elsewhere, like /usr/local/sbin"),
        ("\"/proc/x\"", "install_path `/proc/x` is inside /proc", "it is a kernel filesystem; install the script elsewhere, like /usr/local/sbin"),
    ];
    for (value, message, help) in cases {
        assert_eq!(
            err_replacing("\"/usr/local/sbin/raid-health\"", value),
            format!("T/r.toml:5:16: {message}\n  help: {help}")
        );
    }
}

#[test]
fn mode_errors() {
    assert_eq!(
        script_err("mode = \"0644\""),
        "T/r.toml:6:8: mode `0644` does not let the owner execute the script\n  help: cron and \
         systemd run the script directly, so its owner needs execute permission; use \"0755\" or \"0700\""
    );
    assert_eq!(
        script_err("mode = \"rwx\""),
        "T/r.toml:6:8: mode `rwx` is not an octal file mode\n  \
         help: write 3 or 4 octal digits in quotes, like \"0755\""
    );
    assert_eq!(
        script_err("mode = 0o755"),
        "T/r.toml:6:8: mode is the integer 493, not an octal string\n  \
         help: write 3 or 4 octal digits in quotes, like \"0755\""
    );
    assert_eq!(
        script_err("mode = \"0777\""),
        "T/r.toml:6:8: mode `0777` lets every user change the script\n  help: the script runs as \
         root, so a world-writable file hands root to any local user; use \"0755\""
    );
}

#[test]
fn duration_errors() {
    assert_eq!(
        script_err("timeout = \"5x\""),
        format!(
            "T/r.toml:6:11: bad duration `5x` for `script.timeout`: unknown unit `x`\n  {UNITS_HELP}"
        )
    );
    assert_eq!(
        script_err("timeout = \"10M\""),
        "T/r.toml:6:11: bad duration `10M` for `script.timeout`: unknown unit `M`\n  help: the \
         units are ms, s, m, h and d; `M` could mean months or minutes, so it is refused: write \
         minutes as \"10m\""
    );
    assert_eq!(
        script_err("timeout = \"10\""),
        format!("T/r.toml:6:11: bad duration `10` for `script.timeout`: `10` has no unit\n  {DURATION_HELP}")
    );
    assert_eq!(
        script_err("timeout = \"\""),
        format!("T/r.toml:6:11: `script.timeout` is empty\n  {DURATION_HELP}")
    );
    assert_eq!(
        script_err("timeout = \"0s\""),
        "T/r.toml:6:11: `script.timeout` must be at least 1s, not `0s`\n  help: every run of the \
         script on a host is killed after this; write a duration from 1s to 1d"
    );
    assert_eq!(
        err("[health]\ninterval = \"0s\"\n"),
        "T/r.toml:10:12: `health.interval` must be at least 1s, not `0s`\n  help: the time \
         between two probes of a host; write a duration from 1s to 1h"
    );
    assert_eq!(
        err("[health]\nprobe_timeout = \"0ms\"\n"),
        "T/r.toml:10:17: `health.probe_timeout` must be at least 1s, not `0ms`\n  help: the \
         deadline of one probe of a host (login and command); write a duration from 1s to 10m"
    );
    assert_eq!(
        err("[waves]\nbake = \"ten minutes\"\n"),
        format!(
            "T/r.toml:10:8: bad duration `ten minutes` for `waves.bake`: `ten` is not a number\n  \
             {DURATION_HELP}"
        )
    );
    assert_eq!(
        err("[waves]\nbake = \"1.5h\"\n"),
        "T/r.toml:10:8: bad duration `1.5h` for `waves.bake`: `1.5` is not a whole number\n  \
         help: write whole numbers of a smaller unit, like \"90s\" or \"1h 30m\""
    );
    assert_eq!(
        err("[policy]\nlease = \"-5m\"\n"),
        format!(
            "T/r.toml:10:9: bad duration `-5m` for `policy.lease`: a duration cannot be \
             negative\n  {DURATION_HELP}"
        )
    );
    assert_eq!(
        err("[health]\ninterval = \"15s\"\nprobe_timeout = \"20s\"\n"),
        "T/r.toml:11:17: `health.probe_timeout` (20s) is longer than `health.interval` (15s)\n  \
         help: a probe must end before the next one starts; make probe_timeout at most the interval"
    );
}

#[test]
fn activation_errors() {
    let cron_help = "write five fields (minute hour day-of-month month day-of-week) like \
                     \"*/5 * * * *\", or one of @hourly @daily @weekly @monthly @yearly \
                     @annually @midnight";
    let sched = |s: &str| err_replacing("\"*/5 * * * *\"", s);
    assert_eq!(
        sched("\"@reboot\""),
        format!(
            "T/r.toml:8:12: cron schedule `@reboot` is not allowed\n  help: a script run only at \
             boot never runs during a bake; {cron_help}"
        )
    );
    assert_eq!(
        sched("\"* * * *\""),
        format!(
            "T/r.toml:8:12: cron schedule `* * * *` has 4 fields, expected 5\n  help: {cron_help}"
        )
    );
    assert_eq!(
        sched("\"* * * * *\\nroot rm -rf /\""),
        format!(
            "T/r.toml:8:12: cron schedule `* * * * *\\nroot rm -rf /` contains the control \
             character '\\n'\n  help: a schedule is one line; {cron_help}"
        )
    );
    assert_eq!(
        sched("\"0 0 * * * %\""),
        format!(
            "T/r.toml:8:12: cron schedule `0 0 * * * %` contains '%'\n  help: cron turns '%' into \
             a newline; {cron_help}"
        )
    );
    assert_eq!(
        err_replacing(
            "kind = \"cron\"\nschedule = \"*/5 * * * *\"\n",
            "kind = \"cron\"\n"
        ),
        "T/r.toml:6:1: missing `activation.schedule` for kind `cron`\n  \
         help: add a line like schedule = \"*/5 * * * *\""
    );
    assert_eq!(
        err_replacing("\"cron\"", "\"none\""),
        "T/r.toml:8:12: activation kind `none` takes no schedule\n  \
         help: remove `schedule`, or set kind = \"cron\" or \"systemd-timer\""
    );
    assert_eq!(
        err_replacing(
            "kind = \"cron\"\nschedule = \"*/5 * * * *\"\n",
            "kind = \"systemd-timer\"\nschedule = \"%H\"\n"
        ),
        "T/r.toml:8:12: systemd-timer schedule `%H` contains '%'\n  help: unit files give '%' and \
         '\\' special meanings; write a systemd OnCalendar value like \"*:0/5\" or \"daily\" (see \
         systemd.time(7))"
    );
    assert_eq!(
        err_replacing(
            "kind = \"cron\"\nschedule = \"*/5 * * * *\"\n",
            "kind = \"none\"\nrun_on_install = false\n[waves]\nmin_runs = 2\n"
        ),
        "T/r.toml:10:12: `waves.min_runs` is 2 but nothing runs the script: activation kind is \
         `none` and run_on_install is false\n  help: set run_on_install = true, or min_runs = 0"
    );
}

#[test]
fn target_errors() {
    assert_eq!(
        err("[targets]\nselect = [\"role\"]\n"),
        "T/r.toml:10:11: selector `role` is not key=value\n  help: write a label selector like \"role=db\""
    );
    assert_eq!(
        err("[targets]\nselect = [\"role=db\", \"role=dbx\"]\n"),
        "T/r.toml:10:22: selector `role=dbx` matches no host in T/inv.toml\n  \
         help: `role` values in use: db, web"
    );
    assert_eq!(
        err("[targets]\nexclude = [\"db-9\"]\n"),
        "T/r.toml:10:12: excluded host `db-9` is not in T/inv.toml\n  \
         help: remove it from the exclusions, or fix its spelling"
    );
    assert_eq!(
        err("[targets]\nselect = [\"role=web\", \"cluster=a\"]\n"),
        "T/r.toml:10:10: no host matches all the selectors together\n  \
         help: a host is a target only if it matches every selector; drop or loosen one"
    );
    assert_eq!(
        err("[targets]\nselect = [\"role=web\"]\nexclude = [\"web-1\"]\n"),
        "T/r.toml:11:12: every selected host is excluded\n  help: exclude fewer hosts"
    );
}

#[test]
fn wave_errors() {
    let size_help = "help: a wave size is a host count from 1 to 1000000 (like 5), or a \
                     percentage of the targets from \"1%\" to \"100%\"";
    assert_eq!(
        err("[waves]\nsizes = [1, 0]\n"),
        format!("T/r.toml:10:13: wave size 0 is less than 1\n  {size_help}")
    );
    assert_eq!(
        err("[waves]\nsizes = [1, \"150%\"]\n"),
        format!("T/r.toml:10:13: wave size `150%` is out of range\n  {size_help}")
    );
    assert_eq!(
        err("[waves]\nsizes = [\"0%\"]\n"),
        format!("T/r.toml:10:10: wave size `0%` is out of range\n  {size_help}")
    );
    assert_eq!(
        err("[waves]\nsizes = [\"10\"]\n"),
        format!("T/r.toml:10:10: wave size `10` is not a count or a percentage\n  {size_help}")
    );
    assert_eq!(
        err("[waves]\nsizes = []\n"),
        "T/r.toml:10:9: `waves.sizes` is empty\n  help: list wave sizes like [1, \"10%\", \
         \"100%\"], or remove the key for that default"
    );
    assert_eq!(
        err("[targets]\nselect = [\"role=db\"]\n[waves]\ncanaries = [\"web-1\"]\n"),
        "T/r.toml:12:13: canary `web-1` is not a target\n  help: it is excluded or does not \
         match targets.select; pick a canary among the targets"
    );
    assert_eq!(
        err("[waves]\ncanaries = [\"db-9\"]\n"),
        "T/r.toml:10:13: canary `db-9` is not in T/inv.toml\n  \
         help: name a host of the inventory, or fix the spelling"
    );
    assert_eq!(
        err("[waves]\ncanaries = [\"db-1\", \"db-1\"]\n"),
        "T/r.toml:10:21: canary `db-1` is listed twice (first at line 10)\n  help: remove the duplicate"
    );
    assert_eq!(
        err("[waves]\nmax_per_group = 2\n"),
        "T/r.toml:10:17: `waves.max_per_group` is set but `waves.spread_by` is not\n  help: set \
         spread_by to the label that names a host's redundancy group, like spread_by = \
         \"cluster\", or remove max_per_group"
    );
    assert_eq!(
        err("[waves]\nspread_by = \"cluster\"\nmax_per_group = 0\n"),
        "T/r.toml:11:17: `waves.max_per_group` must be at least 1, not 0\n  help: the most hosts \
         of one spread_by group in one wave; 1 keeps a primary and its standby in different \
         waves; write a number from 1 to 100000"
    );
    assert_eq!(
        err("[waves]\nconcurrency = 0\n"),
        "T/r.toml:10:15: `waves.concurrency` must be at least 1, not 0\n  \
         help: the number of hosts worked on at once; write a number from 1 to 1000"
    );
    let inv = INV.replace(
        "labels = { role = \"web\", cluster = \"w\" }",
        "labels = { role = \"web\" }",
    );
    let f = Fixture::new(&format!("{BASE}[waves]\nspread_by = \"cluster\"\n"), &inv);
    assert_eq!(
        f.err(),
        "T/r.toml:10:13: 1 target lacks the spread_by label `cluster`: web-1\n  help: give every \
         target a `cluster` label in T/inv.toml (its redundancy group), or exclude them"
    );
}

#[test]
fn health_errors() {
    assert_eq!(
        err("[health]\nbuiltin = [\"load\", \"load\"]\n"),
        "T/r.toml:10:20: builtin `load` is listed twice\n  help: remove the duplicate"
    );
    assert_eq!(
        err("[health]\nbuiltin = []\n"),
        "T/r.toml:10:11: the spec has no health checks at all\n  help: list built-in signals like \
         builtin = [\"reachable\", \"script\"], or add a [[health.check]]"
    );
    let check = |name: &str, command: &str| {
        format!("[[health.check]]\nname = \"{name}\"\ncommand = \"{command}\"\n")
    };
    assert_eq!(
        err(&format!("{}{}", check("pg", "true"), check("pg", "false"))),
        "T/r.toml:13:8: check `pg` is defined twice (first at line 10)\n  \
         help: give each [[health.check]] a unique name"
    );
    assert_eq!(
        err(&check("pg", " ")),
        "T/r.toml:11:11: check `pg` has an empty command\n  help: write a shell command that exits \
         0 when the host is healthy, like \"pg_isready -q\""
    );
}

#[test]
fn policy_errors() {
    assert_eq!(
        err("[policy]\nmax_unhealthy = -1\n"),
        "T/r.toml:10:17: `policy.max_unhealthy` must be at least 0, not -1\n  help: the number of \
         bad hosts tolerated over the whole run; 0 rolls back on the first; write a number from \
         0 to 1000000"
    );
    assert_eq!(
        err("[policy]\napprovals = -2\n"),
        "T/r.toml:10:13: `policy.approvals` must be at least 0, not -2\n  \
         help: the number of distinct signatures needed before apply; 0 needs none; write a \
         number from 0 to 100"
    );
}

#[test]
fn inventory_named_by_the_spec_missing() {
    assert_eq!(
        err_replacing("\"inv.toml\"", "\"nope.toml\""),
        "T/r.toml:2:13: inventory `T/nope.toml` not found\n  help: `inventory` is relative to \
         the spec's directory (T); fix the path, create the file, or pass --inventory FILE"
    );
}
