//! Bad input, end to end: every bad spec, inventory or flag makes the real binary exit 2
//! with `error: FILE:LINE:COL: message` and a `help:` line, for `check`, `plan` and
//! `apply --yes` alike, and `apply` contacts no host at all (the hosts' sshd logs do not
//! change, nothing of wavectl lands on them). Also: host keys are checked strictly.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wavectl::lab::Fleet;

use common::*;

const INSTALL: &str = "/usr/local/sbin/raid-health";

/// A valid spec: each case breaks exactly one thing in it (or in the inventory).
const SPEC: &str = r#"name = "raid-health"
description = "bad input tests"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "/usr/local/sbin/raid-health"
mode = "0755"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[targets]
select = ["role=db"]
exclude = []

[waves]
sizes = [1, "100%"]
canaries = ["h01"]
concurrency = 10
bake = "1s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]

[policy]
max_unhealthy = 0
on_failure = "rollback"
"#;

/// A valid inventory of the two-host fleet (addresses are the fleet's ssh_config aliases,
/// so a case that slipped through validation would really reach the hosts).
const INVENTORY: &str = r#"[defaults]
user = "root"

[[host]]
name = "h01"
address = "h01"
labels = { role = "db" }

[[host]]
name = "h02"
address = "h02"
labels = { role = "db" }
"#;

const SCRIPT: &str = "#!/bin/sh\necho raid ok\n";

/// `text` with the one occurrence of `from` replaced by `to` (panics unless exactly one).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in the fixture"
    );
    text.replacen(from, to, 1)
}

/// `line:col` (1-based) of `needle` in `text`, where `needle` is found as the end of the
/// one occurrence of `prefix` + `needle` (panics unless exactly one).
fn pos(text: &str, prefix: &str, needle: &str) -> String {
    let whole = format!("{prefix}{needle}");
    let found: Vec<usize> = text.match_indices(&whole).map(|(i, _)| i).collect();
    assert_eq!(
        found.len(),
        1,
        "{whole:?} must occur exactly once in {text}"
    );
    let offset = found[0] + prefix.len();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    format!("{line}:{col}")
}

/// `line:col` of the start of the one occurrence of `needle` in `text`.
fn at(text: &str, needle: &str) -> String {
    pos(text, "", needle)
}

/// One bad input.
struct Case {
    name: String,
    spec: String,
    inventory: String,
    /// Extra arguments after the spec (e.g. `--inventory FILE`).
    extra: Vec<String>,
    /// The exact first line of stderr after `error: `.
    want: String,
    /// A fragment of the `help:` line.
    help: &'static str,
}

fn case(name: &str, spec: String, inventory: String, want: String, help: &'static str) -> Case {
    Case {
        name: name.to_string(),
        spec,
        inventory,
        extra: vec![],
        want,
        help,
    }
}

fn spec_case(
    name: &str,
    spec: String,
    message: impl FnOnce(&str) -> String,
    help: &'static str,
) -> Case {
    let want = message(&spec);
    case(name, spec, INVENTORY.to_string(), want, help)
}

fn inv_case(
    name: &str,
    inventory: String,
    message: impl FnOnce(&str) -> String,
    help: &'static str,
) -> Case {
    let want = message(&inventory);
    case(name, SPEC.to_string(), inventory, want, help)
}

/// Every bad input of the issue ("unknown keys, bad durations, bad names, relative or `..`
/// install paths, a missing script file, duplicate hosts, selectors that match nothing,
/// canaries not among the targets, a wave size of 0 or over 100%"), and some more.
/// `pwned` is a file a hostile name would make ssh create on this machine.
fn cases(pwned: &Path) -> Vec<Case> {
    let mut v = Vec::new();

    // Unknown keys.
    let s = edit(SPEC, "description =", "colour = \"red\"\ndescription =");
    v.push(spec_case(
        "unknown top-level key",
        s,
        |s| {
            format!(
                "rollout.toml:{}: unknown field `colour`, expected one of `name`, `description`, \
                 `inventory`, `script`, `activation`, `targets`, `waves`, `health`, `policy`, \
                 `gates`, `notify`",
                at(s, "colour")
            )
        },
        "remove the key or fix its spelling",
    ));
    // A gate after wave 0.
    let s = format!("{SPEC}\n[gates]\nafter = [0]\n");
    v.push(spec_case(
        "a gate after wave 0",
        s,
        |s| {
            format!(
                "rollout.toml:{}: `gates.after` holds wave 0, which is not a wave number",
                pos(s, "after = [", "0]")
            )
        },
        "waves are numbered from 1",
    ));
    let s = edit(SPEC, "bake = \"1s\"", "bake_time = \"1s\"");
    v.push(spec_case(
        "unknown key in [waves]",
        s,
        |s| {
            format!(
                "rollout.toml:{}: unknown field `bake_time`, expected one of `sizes`, `canaries`, \
                 `spread_by`, `max_per_group`, `concurrency`, `bake`, `min_runs`",
                at(s, "bake_time")
            )
        },
        "remove the key or fix its spelling",
    ));
    let s = edit(SPEC, "mode = \"0755\"", "mode = \"0755\"\nowner = \"root\"");
    v.push(spec_case(
        "unknown key in [script]",
        s,
        |s| {
            format!(
                "rollout.toml:{}: unknown field `owner`, expected one of `source`, `install_path`, \
                 `mode`, `timeout`",
                at(s, "owner")
            )
        },
        "remove the key or fix its spelling",
    ));
    let i = edit(INVENTORY, "address = \"h02\"", "adress = \"h02\"");
    v.push(inv_case(
        "unknown key in an inventory [[host]]",
        i,
        |i| {
            format!(
                "inventory.toml:{}: unknown field `adress`, expected one of `name`, `address`, \
                 `port`, `user`, `labels`, `host_key_check`, `become`",
                at(i, "adress")
            )
        },
        "remove the key or fix its spelling",
    ));
    let i = edit(
        INVENTORY,
        "user = \"root\"",
        "user = \"root\"\nidentity = \"id\"",
    );
    v.push(inv_case(
        "unknown key in the inventory [defaults]",
        i,
        |i| {
            format!(
                "inventory.toml:{}: unknown field `identity`, expected one of `user`, `port`, \
                 `host_key_check`, `become`",
                at(i, "identity")
            )
        },
        "remove the key or fix its spelling",
    ));

    // Bad durations, in each duration key.
    for (key, line) in [
        ("waves.bake", "bake = \"1s\""),
        ("health.interval", "interval = \"2s\""),
        ("script.timeout", "timeout = \"20s\""),
        ("health.probe_timeout", "probe_timeout = \"2s\""),
    ] {
        let short = key.split('.').nth(1).unwrap();
        for (bad, what) in [
            ("5x", ": unknown unit `x`"),
            ("", ""),
            ("10 parsecs", ": unknown unit `parsecs`"),
            // Ten months to a general duration parser, ten minutes to a hasty reader.
            ("10M", ": unknown unit `M`"),
        ] {
            // `timeout = ` also ends `probe_timeout = `: anchor on the line start.
            let s = edit(
                SPEC,
                &format!("\n{line}"),
                &format!("\n{short} = \"{bad}\""),
            );
            let message = if bad.is_empty() {
                format!("`{key}` is empty")
            } else {
                format!("bad duration `{bad}` for `{key}`{what}")
            };
            v.push(spec_case(
                &format!("{key} = {bad:?}"),
                s,
                |s| {
                    format!(
                        "rollout.toml:{}: {message}",
                        pos(s, &format!("\n{short} = "), &format!("\"{bad}\""))
                    )
                },
                // The units, in every duration hint.
                "ms, s, m, h",
            ));
        }
    }

    // Values beyond a key's range: once they passed `check` and broke the run.
    for (from, to, message, help) in [
        (
            "concurrency = 10",
            "concurrency = 99999999",
            "`waves.concurrency` must be at most 1000, not 99999999",
            "write a number from 1 to 1000",
        ),
        (
            "bake = \"1s\"",
            "bake = \"99999999999999999999d\"",
            "`waves.bake` must be at most 7d, not `99999999999999999999d`",
            "write a duration from 0s to 7d",
        ),
        (
            "interval = \"2s\"",
            "interval = \"2h\"",
            "`health.interval` must be at most 1h, not `2h`",
            "write a duration from 1s to 1h",
        ),
        (
            "timeout = \"20s\"",
            "timeout = \"25h\"",
            "`script.timeout` must be at most 1d, not `25h`",
            "write a duration from 1s to 1d",
        ),
        (
            "min_runs = 1",
            "min_runs = 1001",
            "`waves.min_runs` must be at most 1000, not 1001",
            "write a number from 0 to 1000",
        ),
        (
            "on_failure = \"rollback\"",
            "on_failure = \"rollback\"\nlease = \"5s\"",
            "`policy.lease` must be at least 10s, not `5s`",
            "write a duration from 10s to 7d",
        ),
        (
            "on_failure = \"rollback\"",
            "on_failure = \"rollback\"\napprovals = 101",
            "`policy.approvals` must be at most 100, not 101",
            "write a number from 0 to 100",
        ),
    ] {
        let value = to.rsplit(" = ").next().unwrap();
        let key = to.rsplit('\n').next().unwrap().split(" = ").next().unwrap();
        let s = edit(SPEC, &format!("\n{from}"), &format!("\n{to}"));
        v.push(spec_case(
            &format!("{key} out of range ({value})"),
            s,
            |s| {
                format!(
                    "rollout.toml:{}: {message}",
                    pos(s, &format!("\n{key} = "), value)
                )
            },
            help,
        ));
    }

    // A lease the controller could not renew in time.
    let s = edit(SPEC, "interval = \"2s\"", "interval = \"10s\"");
    let s = edit(
        &s,
        "on_failure = \"rollback\"",
        "on_failure = \"rollback\"\nlease = \"20s\"",
    );
    v.push(spec_case(
        "lease shorter than 3 intervals",
        s,
        |s| {
            format!(
                "rollout.toml:{}: `policy.lease` (20s) is shorter than 3 × `health.interval` \
                 (3 × 10s = 30s)",
                pos(s, "\nlease = ", "\"20s\"")
            )
        },
        "make lease at least 30s, or shorten the interval",
    ));

    // Approvals with an allowed_signers file that is not there.
    let s = edit(
        SPEC,
        "on_failure = \"rollback\"",
        "on_failure = \"rollback\"\napprovals = 1\nallowed_signers = \"approvers\"",
    );
    v.push(spec_case(
        "allowed_signers missing",
        s,
        |s| {
            format!(
                "rollout.toml:{}: allowed_signers file `approvers` not found",
                at(s, "\"approvers\"")
            )
        },
        "`allowed_signers` is relative to the spec's directory (.)",
    ));

    // Bad rollout names.
    let long = "a".repeat(64);
    for (bad, message) in [
        (
            "Raid_Health",
            "rollout name `Raid_Health` must not start with 'R'".to_string(),
        ),
        (
            "raid_health",
            "rollout name `raid_health` contains '_'".to_string(),
        ),
        (
            long.as_str(),
            "rollout name is 64 characters long, at most 63 are allowed".to_string(),
        ),
        (
            "-x",
            "rollout name `-x` must not start with '-'".to_string(),
        ),
        ("", "rollout name is empty".to_string()),
    ] {
        let s = edit(SPEC, "name = \"raid-health\"", &format!("name = \"{bad}\""));
        v.push(spec_case(
            &format!("rollout name {bad:?}"),
            s,
            |s| {
                format!(
                    "rollout.toml:{}: {message}",
                    pos(s, "name = ", &format!("\"{bad}\""))
                )
            },
            "a rollout name uses lowercase letters",
        ));
    }

    // Bad host names and addresses in the inventory.
    let hostile = format!("-oProxyCommand=touch {}", pwned.display());
    for (bad, with_address) in [
        ("db 1", true),
        (hostile.as_str(), true),
        (hostile.as_str(), false),
    ] {
        let to = if with_address {
            format!("name = \"{bad}\"\naddress = \"h02\"")
        } else {
            format!("name = \"{bad}\"")
        };
        let i = edit(INVENTORY, "name = \"h02\"\naddress = \"h02\"", &to);
        let message = if bad.starts_with('-') {
            format!("host name `{bad}` must not start with '-'")
        } else {
            format!("host name `{bad}` contains ' '")
        };
        v.push(inv_case(
            &format!("host name {bad:?} (address given: {with_address})"),
            i,
            |i| {
                format!(
                    "inventory.toml:{}: {message}",
                    pos(i, "name = ", &format!("\"{bad}\""))
                )
            },
            "a host name uses letters, digits",
        ));
    }
    let i = edit(
        INVENTORY,
        "address = \"h02\"",
        &format!("address = \"{hostile}\""),
    );
    v.push(inv_case(
        "address starting with '-'",
        i,
        |i| {
            format!(
                "inventory.toml:{}: host address `{hostile}` starts with '-'",
                pos(i, "address = ", &format!("\"{hostile}\""))
            )
        },
        "ssh would read it as an option",
    ));
    // Issue 13, case 11b: an address is a host name, an IP address or an ssh_config
    // alias — not a URL the transport takes a user and options from, nor shell words.
    let p = pwned.display();
    for (bad, message, help) in [
        (
            format!("ssh://-oProxyCommand=touch${{IFS}}{p}"),
            "is a URL".to_string(),
            "the user goes in `user`",
        ),
        (
            "root@h02".to_string(),
            "contains '@'".to_string(),
            "the user goes in `user`",
        ),
        (
            format!("h02;touch${{IFS}}{p}"),
            "contains ';'".to_string(),
            "a host address uses letters",
        ),
        (
            format!("h02`touch${{IFS}}{p}`"),
            "contains '`'".to_string(),
            "a host address uses letters",
        ),
        (
            format!("$(touch${{IFS}}{p})"),
            "must not start with '$'".to_string(),
            "a host address uses letters",
        ),
    ] {
        let i = edit(
            INVENTORY,
            "address = \"h02\"",
            &format!("address = \"{bad}\""),
        );
        v.push(inv_case(
            &format!("address {bad:?}"),
            i,
            |i| {
                format!(
                    "inventory.toml:{}: host address `{bad}` {message}",
                    pos(i, "address = ", &format!("\"{bad}\""))
                )
            },
            help,
        ));
    }
    let i = edit(INVENTORY, "user = \"root\"", "user = \"-oProxyCommand=x\"");
    v.push(inv_case(
        "user starting with '-'",
        i,
        |i| {
            format!(
                "inventory.toml:{}: user name `-oProxyCommand=x` must not start with '-'",
                at(i, "\"-oProxy")
            )
        },
        "a user name uses letters",
    ));

    // Install paths.
    for (bad, message, help) in [
        (
            "usr/local/sbin/raid-health",
            "install_path `usr/local/sbin/raid-health` is not absolute",
            "write the full path of the script on the host",
        ),
        (
            "/usr/local/../sbin/raid-health",
            "install_path `/usr/local/../sbin/raid-health` contains a '..' component",
            "write the path without '..'",
        ),
        (
            "/usr/local/sbin/..",
            "install_path `/usr/local/sbin/..` contains a '..' component",
            "write the path without '..'",
        ),
        // Protected: what wavectl's host side runs, what keeps a host reachable.
        (
            "/usr/bin/timeout",
            "install_path `/usr/bin/timeout` is a tool wavectl's host side runs (timeout)",
            "replacing it could leave hosts that cannot be cleaned; choose another path, or \
             pass --force if you really mean it",
        ),
        (
            "/usr/sbin/sshd",
            "install_path `/usr/sbin/sshd` is the SSH server wavectl reaches hosts through",
            "or pass --force if you really mean it",
        ),
        (
            "/etc/pam.d/sshd",
            "install_path `/etc/pam.d/sshd` is inside /etc/pam.d (the PAM login configuration)",
            "or pass --force if you really mean it",
        ),
    ] {
        let s = edit(SPEC, INSTALL, bad);
        v.push(spec_case(
            &format!("install_path {bad:?}"),
            s,
            |s| {
                format!(
                    "rollout.toml:{}: {message}",
                    pos(s, "install_path = ", "\"")
                )
            },
            help,
        ));
    }

    // A missing script source.
    let s = edit(SPEC, "source = \"script.sh\"", "source = \"missing.sh\"");
    v.push(spec_case(
        "missing script source",
        s,
        |s| {
            format!(
                "rollout.toml:{}: script `missing.sh` not found",
                at(s, "\"missing.sh\"")
            )
        },
        "`source` is relative to the spec's directory (.); fix the path or create the file",
    ));

    // Duplicate hosts.
    let i = edit(INVENTORY, "name = \"h02\"", "name = \"h01\"");
    v.push(inv_case(
        "duplicate host names",
        i,
        |i| {
            let first = pos(INVENTORY, "name = ", "\"h01\"");
            let first_line = first.split(':').next().unwrap().to_string();
            format!(
                "inventory.toml:{}: duplicate host `h01` (first defined at line {first_line})",
                pos(
                    i,
                    "address = \"h01\"\nlabels = { role = \"db\" }\n\n[[host]]\nname = ",
                    "\"h01\""
                )
            )
        },
        "give each [[host]] a unique name",
    ));

    // Selectors and exclusions that match nothing.
    let s = edit(SPEC, "select = [\"role=db\"]", "select = [\"role=web\"]");
    v.push(spec_case(
        "selector value that matches nothing",
        s,
        |s| {
            format!(
                "rollout.toml:{}: selector `role=web` matches no host in inventory.toml",
                at(s, "\"role=web\"")
            )
        },
        "`role` values in use: db",
    ));
    let s = edit(
        SPEC,
        "select = [\"role=db\"]",
        "select = [\"role=db\", \"rack=a1\"]",
    );
    v.push(spec_case(
        "selector key no host has",
        s,
        |s| {
            format!(
                "rollout.toml:{}: selector `rack=a1` matches no host in inventory.toml",
                at(s, "\"rack=a1\"")
            )
        },
        "no host has a `rack` label; labels in use: role",
    ));
    let s = edit(SPEC, "select = [\"role=db\"]", "select = [\"role\"]");
    v.push(spec_case(
        "selector that is not key=value",
        s,
        |s| {
            format!(
                "rollout.toml:{}: selector `role` is not key=value",
                at(s, "\"role\"")
            )
        },
        "write a label selector like \"role=db\"",
    ));
    let s = edit(SPEC, "exclude = []", "exclude = [\"h09\"]");
    v.push(spec_case(
        "exclude naming an unknown host",
        s,
        |s| {
            format!(
                "rollout.toml:{}: excluded host `h09` is not in inventory.toml",
                at(s, "\"h09\"")
            )
        },
        "remove it from the exclusions, or fix its spelling",
    ));
    let s = edit(SPEC, "exclude = []", "exclude = [\"h01\", \"h02\"]");
    v.push(spec_case(
        "every target excluded",
        s,
        |s| {
            format!(
                "rollout.toml:{}: every selected host is excluded",
                at(s, "\"h01\", \"h02\"")
            )
        },
        "exclude fewer hosts",
    ));

    // Canaries not among the targets.
    let s = edit(SPEC, "exclude = []", "exclude = [\"h01\"]");
    v.push(spec_case(
        "canary excluded from the targets",
        s,
        |s| {
            format!(
                "rollout.toml:{}: canary `h01` is not a target",
                pos(s, "canaries = [", "\"h01\"")
            )
        },
        "pick a canary among the targets",
    ));
    let s = edit(SPEC, "canaries = [\"h01\"]", "canaries = [\"h09\"]");
    v.push(spec_case(
        "canary not in the inventory",
        s,
        |s| {
            format!(
                "rollout.toml:{}: canary `h09` is not in inventory.toml",
                at(s, "\"h09\"")
            )
        },
        "name a host of the inventory, or fix the spelling",
    ));
    let i = edit(
        INVENTORY,
        "name = \"h01\"\naddress = \"h01\"\nlabels = { role = \"db\" }",
        "name = \"h01\"\naddress = \"h01\"\nlabels = { role = \"web\" }",
    );
    v.push(case(
        "canary not matching the selector",
        SPEC.to_string(),
        i,
        format!(
            "rollout.toml:{}: canary `h01` is not a target",
            pos(SPEC, "canaries = [", "\"h01\"")
        ),
        "pick a canary among the targets",
    ));

    // Wave sizes.
    for (bad, message) in [
        ("0", "wave size 0 is less than 1"),
        ("1000001", "wave size 1000001 is more than 1000000"),
        ("\"0%\"", "wave size `0%` is out of range"),
        ("\"101%\"", "wave size `101%` is out of range"),
        ("-1", "wave size -1 is less than 1"),
        ("\"-5%\"", "wave size `-5%` is not a count or a percentage"),
        ("\"ten\"", "wave size `ten` is not a count or a percentage"),
    ] {
        let s = edit(
            SPEC,
            "sizes = [1, \"100%\"]",
            &format!("sizes = [1, {bad}]"),
        );
        v.push(spec_case(
            &format!("wave size {bad}"),
            s,
            |s| format!("rollout.toml:{}: {message}", pos(s, "sizes = [1, ", bad)),
            "a wave size is a host count from 1 to 1000000",
        ));
    }
    let s = edit(SPEC, "sizes = [1, \"100%\"]", "sizes = []");
    v.push(spec_case(
        "empty wave sizes",
        s,
        |s| {
            format!(
                "rollout.toml:{}: `waves.sizes` is empty",
                pos(s, "sizes = ", "[]")
            )
        },
        "list wave sizes like",
    ));

    // TOML syntax errors.
    let s = edit(SPEC, "[waves]", "[waves");
    v.push(spec_case(
        "TOML syntax error in the spec",
        s,
        |s| {
            format!(
                "rollout.toml:{}: unclosed table, expected `]`",
                pos(s, "[waves", "")
            )
        },
        "fix the TOML syntax (see https://toml.io)",
    ));
    let i = edit(INVENTORY, "name = \"h02\"", "name = \"h02");
    v.push(inv_case(
        "TOML syntax error in the inventory",
        i,
        |i| {
            format!(
                "inventory.toml:{}: invalid basic string, expected `\"`",
                pos(i, "name = \"h02", "")
            )
        },
        "fix the TOML syntax (see https://toml.io)",
    ));

    // Missing inventory files.
    let s = edit(
        SPEC,
        "inventory = \"inventory.toml\"",
        "inventory = \"nowhere.toml\"",
    );
    v.push(spec_case(
        "the spec's inventory file is missing",
        s,
        |s| {
            format!(
                "rollout.toml:{}: inventory `nowhere.toml` not found",
                at(s, "\"nowhere.toml\"")
            )
        },
        "`inventory` is relative to the spec's directory",
    ));
    let mut c = case(
        "--inventory names a missing file",
        SPEC.to_string(),
        INVENTORY.to_string(),
        "elsewhere.toml: inventory not found".to_string(),
        "check the path",
    );
    c.extra = vec!["--inventory".into(), "elsewhere.toml".into()];
    v.push(c);

    // The operator's day: a percentage, a notification kind, a run named in --limit.
    let s = edit(SPEC, "concurrency = 10", "concurrency = \"0%\"");
    v.push(spec_case(
        "a concurrency percentage of 0",
        s,
        |s| {
            format!(
                "rollout.toml:{}: `waves.concurrency` `0%` is not a count or a percentage from \
                 \"1%\" to \"100%\"",
                at(s, "\"0%\"")
            )
        },
        "or a percentage of the run's targets like \"25%\"",
    ));
    let s = format!("{SPEC}[notify]\ncommand = \"true\"\nevents = [\"paused\", \"pasued\"]\n");
    v.push(spec_case(
        "an unknown notification kind",
        s,
        |s| {
            format!(
                "rollout.toml:{}: unknown event kind `pasued`",
                at(s, "\"pasued\"")
            )
        },
        "the kinds are: started, wave, unhealthy,",
    ));
    let mut c = case(
        "--limit names a run there is not",
        SPEC.to_string(),
        INVENTORY.to_string(),
        "--limit `@failed:1999`: no run `1999` in the state directory; `wavectl status` lists \
         the runs"
            .to_string(),
        "RUN is a run id or a unique prefix of one",
    );
    c.extra = vec!["--limit".into(), "h01:@failed:1999".into()];
    v.push(c);
    v
}

/// What a host looked like before the runs: its sshd log.
struct Untouched {
    logs: Vec<(String, PathBuf, String)>,
}

impl Untouched {
    /// Call it once the fleet is quiet: waits for the trace of the lab's own readiness
    /// probe (a TCP connection that reads the banner) to reach the logs.
    fn snapshot(fleet: &Fleet) -> Untouched {
        for h in fleet.hosts() {
            let log = h.dir().join("sshd.log");
            let read = || std::fs::read_to_string(&log).unwrap_or_default();
            eventually(Duration::from_secs(2), || read().lines().count() > 1);
            // Settled: unchanged over 100 ms.
            let mut last = read();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let now = read();
                if now == last {
                    break;
                }
                last = now;
            }
        }
        let logs = fleet
            .hosts()
            .iter()
            .map(|h| {
                let log = h.dir().join("sshd.log");
                let text = std::fs::read_to_string(&log)
                    .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
                (h.name().to_string(), log, text)
            })
            .collect();
        Untouched { logs }
    }

    /// No host was contacted since the snapshot, and nothing of wavectl is on any host.
    fn assert(&self, fleet: &Fleet, what: &str) {
        for (name, log, before) in &self.logs {
            let now = std::fs::read_to_string(log).unwrap();
            assert!(
                !now.contains("Accepted publickey"),
                "{what}: {name} accepted a login:\n{now}"
            );
            assert_eq!(
                &now, before,
                "{what}: {name}'s sshd log changed (a connection was made)"
            );
            let h = fleet.host(name);
            assert!(
                h.path("/var/lib").is_dir(),
                "{name}: cannot see the host's files"
            );
            for p in [
                "/var/lib/wavectl",
                INSTALL,
                "/etc/cron.d/wavectl-raid-health",
            ] {
                assert!(!h.path(p).exists(), "{what}: {name} holds {p}");
            }
        }
        let left = ssh_processes(fleet.dir().to_str().unwrap());
        assert!(left.is_empty(), "{what}: ssh processes: {left:?}");
    }
}

/// `wavectl --ssh-config CFG --state-dir STATE ARGS` in `dir`.
fn wavectl(fleet: &Fleet, dir: &Path, args: &[&str]) -> Run {
    run(
        dir,
        wavectl_args(fleet.ssh_config(), &dir.join("state"), args),
        &[],
    )
}

fn two_hosts() -> Fleet {
    fleet_with(&[("h01", &[("role", "db")]), ("h02", &[("role", "db")])])
}

fn write_setup(dir: &Path, spec: &str, inventory: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rollout.toml"), spec).unwrap();
    std::fs::write(dir.join("inventory.toml"), inventory).unwrap();
    std::fs::write(dir.join("script.sh"), SCRIPT).unwrap();
}

/// Exit 2, nothing on stdout, stderr exactly `error: WANT` and one help line.
fn check_output(r: &Run, c: &Case) -> Result<(), String> {
    if r.code != Some(2) {
        return Err(format!("exit code {:?}, expected 2", r.code));
    }
    if !r.stdout.is_empty() {
        return Err("stdout is not empty".into());
    }
    let mut lines = r.stderr.lines();
    let want = format!("error: {}", c.want);
    if lines.next() != Some(want.as_str()) {
        return Err(format!("the first line of stderr is not\n{want}"));
    }
    let help = lines.next().unwrap_or_default();
    if !(help.starts_with("  help: ") && help.len() > "  help: ".len() + 5 && help.contains(c.help))
    {
        return Err(format!(
            "the second line is not a help line containing {:?}",
            c.help
        ));
    }
    if lines.next().is_some() {
        return Err("stderr has more than the error and its help".into());
    }
    Ok(())
}

#[test]
fn position_helper_counts_lines_and_columns() {
    // Cross-check the helper against the fixture by hand: line 24 is `bake = "1s"`.
    assert_eq!(SPEC.lines().nth(23), Some("bake = \"1s\""));
    assert_eq!(pos(SPEC, "\nbake = ", "\"1s\""), "24:8");
    assert_eq!(at(SPEC, "name = \"raid"), "1:1");
    assert_eq!(pos(INVENTORY, "[[host]]\nname = ", "\"h02\""), "10:8");
}

#[test]
fn every_bad_input_exits_2_with_its_place_and_touches_no_host() {
    let fleet = two_hosts();
    let work = tempfile::tempdir().unwrap();
    let pwned = work.path().join("pwned");

    // The fixture itself is good: each case below breaks one thing.
    let good = work.path().join("good");
    write_setup(&good, SPEC, INVENTORY);
    let r = wavectl(&fleet, &good, &["check", "rollout.toml"]);
    assert_eq!(
        r.code,
        Some(0),
        "the base fixture must pass `check`: {}",
        r.stderr
    );

    let untouched = Untouched::snapshot(&fleet);
    let cases = cases(&pwned);
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let dir = work.path().join(format!("case{n:02}"));
        write_setup(&dir, &c.spec, &c.inventory);
        let extra: Vec<&str> = c.extra.iter().map(String::as_str).collect();
        for cmd in [&["check"][..], &["plan"], &["apply", "--yes"]] {
            let mut args = cmd.to_vec();
            args.push("rollout.toml");
            args.extend_from_slice(&extra);
            let what = format!("case {:?}, `wavectl {}`", c.name, args.join(" "));
            let r = wavectl(&fleet, &dir, &args);
            if let Err(problem) = check_output(&r, c) {
                failures.push(format!(
                    "{what}: {problem}\nstdout:\n{}\nstderr:\n{}",
                    r.stdout, r.stderr
                ));
            }
            if cmd[0] == "apply" {
                untouched.assert(&fleet, &what);
                assert!(
                    !dir.join("state").join("runs").exists(),
                    "{what}: a run journal was written"
                );
            }
            assert!(!pwned.exists(), "{what}: a hostile name ran a command");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs went wrong:\n\n{}",
        failures.len(),
        cases.len() * 3,
        failures.join("\n\n")
    );
    eprintln!(
        "{} bad-input cases, each through check, plan and apply",
        cases.len()
    );

    // The check above can see a contact: one ssh login does show in the log.
    let out = fleet.ssh("h01").arg("true").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(fleet.host("h01").dir().join("sshd.log")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_to_string(
            fleet.host("h01").dir().join("sshd.log")
        )
        .unwrap()
        .contains("Accepted publickey")),
        "a login does not show in sshd.log, so the no-contact check proves nothing:\n{log}"
    );
}

#[test]
fn bad_flags_exit_2_and_touch_no_host() {
    let fleet = two_hosts();
    let work = tempfile::tempdir().unwrap();
    write_setup(work.path(), SPEC, INVENTORY);
    let untouched = Untouched::snapshot(&fleet);
    let cases: &[(&[&str], &str)] = &[
        (
            &["apply", "rollout.toml", "--yes", "--frobnicate"],
            "error: unexpected argument '--frobnicate' found",
        ),
        (
            &["check", "rollout.toml", "--frobnicate"],
            "error: unexpected argument '--frobnicate' found",
        ),
        (
            &["apply", "--yes"],
            "error: the following required arguments were not provided:",
        ),
        (
            &["plan"],
            "error: the following required arguments were not provided:",
        ),
        (
            &["apply", "rollout.toml", "--yes", "--inventory"],
            "error: a value is required for '--inventory <INV>' but none was supplied",
        ),
        (
            &["apply", "rollout.toml", "--yes", "extra.toml"],
            "error: unexpected argument 'extra.toml' found",
        ),
        (
            &["deploy", "rollout.toml"],
            "error: unrecognized subcommand 'deploy'",
        ),
        // `purge --path` refuses what the host side runs, as install_path does.
        (
            &[
                "purge",
                "--yes",
                "--path",
                "/usr/bin/timeout",
                "--inventory",
                "inventory.toml",
            ],
            "error: bad --path: `/usr/bin/timeout` is a tool wavectl's host side runs \
             (timeout)\n  help: removing it could leave hosts that cannot be cleaned; choose \
             another path, or pass --force if you really mean it\n",
        ),
        (
            &[
                "purge",
                "--yes",
                "--path",
                "/etc/ssh/sshd_config",
                "--inventory",
                "inventory.toml",
            ],
            "error: bad --path: `/etc/ssh/sshd_config` is inside /etc/ssh (the SSH \
             configuration and host keys)\n  help: removing it could lock wavectl (and you) out \
             of the hosts; choose another path, or pass --force if you really mean it\n",
        ),
    ];
    for (args, want) in cases {
        let what = format!("`wavectl {}`", args.join(" "));
        let r = wavectl(&fleet, work.path(), args);
        assert_eq!(
            r.code,
            Some(2),
            "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
            r.stdout,
            r.stderr
        );
        assert!(
            r.stderr.starts_with(want),
            "{what}: stderr must start with {want:?}:\n{}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "{what}");
        untouched.assert(&fleet, &what);
    }

    // `apply` without --yes, stdin not a terminal (run() gives it /dev/null): refused.
    let what = "`wavectl apply rollout.toml` without --yes";
    let r = wavectl(&fleet, work.path(), &["apply", "rollout.toml"]);
    assert_eq!(
        r.code,
        Some(2),
        "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "error: refusing to apply without confirmation: standard input is not a terminal\n  help: pass --yes to apply without asking\n"
        ),
        "{what}:\n{}",
        r.stderr
    );
    untouched.assert(&fleet, what);
    assert!(
        !work.path().join("state").join("runs").exists(),
        "{what}: a run journal was written"
    );
}

#[test]
fn host_keys_are_checked_strictly_by_default() {
    let fleet = two_hosts();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // One host, so the run's outcome is about that host only.
    let inventory = INVENTORY
        .split("\n[[host]]\nname = \"h02\"")
        .next()
        .unwrap()
        .to_string();
    let spec = edit(SPEC, "sizes = [1, \"100%\"]", "sizes = [1]");
    write_setup(dir, &spec, &inventory);

    // The fleet's ssh_config, but trusting no host key and leaving strictness to wavectl.
    let known = dir.join("empty_known_hosts");
    std::fs::write(&known, "").unwrap();
    let original = std::fs::read_to_string(fleet.ssh_config()).unwrap();
    assert!(
        original.contains("UserKnownHostsFile") && original.contains("StrictHostKeyChecking"),
        "{original}"
    );
    let cfg: String = original
        .lines()
        .filter(|l| !l.trim_start().starts_with("StrictHostKeyChecking"))
        .map(|l| {
            if l.trim_start().starts_with("UserKnownHostsFile") {
                format!("  UserKnownHostsFile \"{}\"\n", known.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let cfg_path = dir.join("ssh_config");
    std::fs::write(&cfg_path, &cfg).unwrap();

    let state = dir.join("state");
    let r = run(
        dir,
        wavectl_args(&cfg_path, &state, &["apply", "rollout.toml", "--yes"]),
        &[],
    );
    let h = fleet.host("h01");
    assert!(
        !h.path("/var/lib/wavectl").exists(),
        "h01 got wavectl files with an unknown host key"
    );
    assert!(
        !h.path(INSTALL).exists(),
        "h01 got the script with an unknown host key"
    );
    let log = std::fs::read_to_string(h.dir().join("sshd.log")).unwrap();
    assert!(
        !log.contains("Accepted publickey"),
        "h01 accepted a login:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        "",
        "the empty known_hosts file was written to (accept-new?)"
    );
    let all = format!("{}\n{}", r.stdout, r.stderr);
    assert!(
        all.contains("Host key verification failed"),
        "the output does not name the host key problem:\n{all}"
    );
    // A host refusing us for our own reasons is not a health verdict against the script:
    // the run stops before any further host, names the host, says how to fix it, exit 2.
    assert_eq!(r.code, Some(2), "exit code\n{all}");
    assert!(all.contains("host h01 refused us"), "{all}");
    assert!(all.contains("known_hosts"), "{all}");
    assert!(!all.contains("unhealthy:"), "{all}");
    assert!(!r.stdout.contains("PENDING"), "{all}");
    let left = ssh_processes(dir.to_str().unwrap());
    assert!(left.is_empty(), "ssh processes left: {left:?}");
}
