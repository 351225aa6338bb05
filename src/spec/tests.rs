//! Tests of `spec::load` on files in a temp dir: a good spec resolves with the right
//! values, and each bad input gives its exact error (file:line:col, message, help).

use std::path::Path;
use std::time::Duration;

use super::*;

pub(super) const INV: &str = r#"
[defaults]
user = "root"

[[host]]
name = "db-1"
labels = { role = "db", cluster = "a" }

[[host]]
name = "db-2"
labels = { role = "db", cluster = "b" }

[[host]]
name = "web-1"
labels = { role = "web", cluster = "w" }
"#;

/// Line 1..8 of every spec below; tests append or replace lines.
pub(super) const BASE: &str = r#"name = "raid-health"
inventory = "inv.toml"
[script]
source = "check.sh"
install_path = "/usr/local/sbin/raid-health"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
"#;

pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
}

impl Fixture {
    pub(super) fn new(spec: &str, inv: &str) -> Fixture {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("r.toml"), spec).unwrap();
        std::fs::write(dir.path().join("inv.toml"), inv).unwrap();
        std::fs::write(dir.path().join("check.sh"), "#!/bin/sh\necho ok\n").unwrap();
        Fixture { dir }
    }
    pub(super) fn spec(&self) -> std::path::PathBuf {
        self.dir.path().join("r.toml")
    }
    pub(super) fn load(&self) -> Result<Loaded, InputError> {
        load(&self.spec(), None)
    }
    /// The error's display, with the temp dir shown as `T`.
    pub(super) fn err(&self) -> String {
        self.err_of(self.load())
    }
    pub(super) fn err_of(&self, r: Result<Loaded, InputError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e
                .to_string()
                .replace(&self.dir.path().display().to_string(), "T"),
        }
    }
}

pub(super) fn ok(spec: &str) -> Loaded {
    Fixture::new(spec, INV)
        .load()
        .unwrap_or_else(|e| panic!("{e}\n{spec}"))
}

/// The error for `BASE` followed by `extra`.
pub(super) fn err(extra: &str) -> String {
    Fixture::new(&format!("{BASE}{extra}"), INV).err()
}

/// The error for `BASE` with `from` replaced by `to`.
pub(super) fn err_replacing(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?}");
    Fixture::new(&BASE.replace(from, to), INV).err()
}

#[test]
fn minimal_spec_gets_the_defaults() {
    let l = ok(BASE);
    let r = &l.rollout;
    assert_eq!(r.name, "raid-health");
    assert_eq!(r.description, "");
    assert_eq!(r.script.mode, 0o755);
    assert_eq!(r.script.timeout, Duration::from_secs(300));
    assert_eq!(r.script.body, b"#!/bin/sh\necho ok\n");
    assert_eq!(r.script.sha256.len(), 64);
    assert!(r.script.source.ends_with("check.sh"));
    assert_eq!(r.activation.kind, ActivationKind::Cron);
    assert_eq!(r.activation.schedule, "*/5 * * * *");
    assert!(r.activation.run_on_install);
    assert!(r.targets.select.is_empty() && r.targets.exclude.is_empty());
    let w = &r.waves;
    assert_eq!(
        w.sizes,
        [
            WaveSize::Count(1),
            WaveSize::Percent(10),
            WaveSize::Percent(100)
        ]
    );
    assert!(w.canaries.is_empty());
    assert_eq!(
        (w.spread_by.as_deref(), w.max_per_group),
        (None, usize::MAX)
    );
    assert_eq!(
        (w.concurrency, w.bake, w.min_runs),
        (50, Duration::from_secs(600), 1)
    );
    let h = &r.health;
    assert_eq!(
        (h.interval, h.probe_timeout),
        (Duration::from_secs(15), Duration::from_secs(10))
    );
    assert_eq!(h.builtin, [Builtin::Reachable, Builtin::Script]);
    assert!(h.checks.is_empty());
    assert_eq!(r.policy.max_unhealthy, 0);
    assert_eq!(r.policy.on_failure, OnFailure::Rollback);
    assert_eq!(r.policy.approvals, 0);
    assert_eq!(r.policy.lease, Duration::from_secs(15 * 60));
    assert_eq!(r.policy.allowed_signers, None);
    let names: Vec<&str> = l.targets.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db-1", "db-2", "web-1"]);
    assert_eq!(l.inventory.hosts.len(), 3);
}

#[test]
fn full_spec_resolves_every_value() {
    let l = ok(&format!(
        r#"{BASE}run_on_install = false
[targets]
select = ["role=db"]
exclude = ["db-1"]
[waves]
sizes = [2, "50%"]
canaries = ["db-2"]
spread_by = "cluster"
concurrency = 7
bake = "0s"
min_runs = 3
[health]
interval = "30s"
builtin = ["load", "kernel"]
[[health.check]]
name = "pg"
command = "pg_isready -q"
[policy]
max_unhealthy = 2
on_failure = "pause"
approvals = 0
allowed_signers = "keys/approvers"
lease = "1h 30m"
"#
    ));
    let r = &l.rollout;
    assert!(!r.activation.run_on_install);
    assert_eq!(
        r.targets.select[0].value,
        Selector {
            key: "role".into(),
            value: "db".into()
        }
    );
    assert_eq!(r.targets.select[0].pos, Some(Pos { line: 11, col: 11 }));
    assert_eq!(r.targets.exclude[0].value, "db-1");
    let w = &r.waves;
    assert_eq!(w.sizes, [WaveSize::Count(2), WaveSize::Percent(50)]);
    assert_eq!(w.canaries[0].value, "db-2");
    assert_eq!(w.canaries[0].pos, Some(Pos { line: 15, col: 13 }));
    assert_eq!(
        (w.spread_by.as_deref(), w.max_per_group),
        (Some("cluster"), 1)
    );
    assert_eq!((w.concurrency, w.bake, w.min_runs), (7, Duration::ZERO, 3));
    let h = &r.health;
    assert_eq!(
        (h.interval, h.probe_timeout),
        (Duration::from_secs(30), Duration::from_secs(10))
    );
    assert_eq!(h.builtin, [Builtin::Load, Builtin::Kernel]);
    assert_eq!(
        h.checks,
        [Check {
            name: "pg".into(),
            command: "pg_isready -q".into()
        }]
    );
    assert_eq!(
        (
            r.policy.max_unhealthy,
            r.policy.on_failure,
            r.policy.approvals
        ),
        (2, OnFailure::Pause, 0)
    );
    assert_eq!(r.policy.lease, Duration::from_secs(5400));
    // Not checked without approvals; resolved against the spec's directory, absolute.
    let signers = r.policy.allowed_signers.as_ref().unwrap();
    assert!(signers.is_absolute(), "{}", signers.display());
    assert!(signers.ends_with("keys/approvers"), "{}", signers.display());
    let names: Vec<&str> = l.targets.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db-2"]);
}

#[test]
fn example_rollout_loads() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("rollouts/raid-health.toml");
    let l = load(&spec, None).unwrap();
    assert_eq!(l.rollout.name, "raid-health");
    assert_eq!(l.rollout.waves.canaries[0].value, "db-standby-2");
    assert_eq!(l.rollout.health.builtin.len(), 6);
    let names: Vec<&str> = l.targets.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["db-1", "db-standby-1", "db-standby-2", "db-5", "db-6"]
    );
    let script = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scripts/raid-health.sh"),
    )
    .unwrap();
    assert_eq!(l.rollout.script.body, script);
}

#[test]
fn inventory_override_replaces_the_specs() {
    let f = Fixture::new(BASE, INV);
    let other = f.dir.path().join("other.toml");
    std::fs::write(&other, "[[host]]\nname = \"solo\"\n").unwrap();
    let l = load(&f.spec(), Some(&other)).unwrap();
    assert_eq!(
        l.rollout.inventory_path,
        std::fs::canonicalize(&other).unwrap()
    );
    assert_eq!(l.targets.len(), 1);
    assert_eq!(l.targets[0].name, "solo");
    assert_eq!(l.targets[0].address, "solo");
}

#[test]
fn script_hash_is_sha256_of_the_body() {
    let l = ok(BASE);
    // sha256 of "#!/bin/sh\necho ok\n"
    assert_eq!(
        l.rollout.script.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"#!/bin/sh\necho ok\n"
        ))
    );
}

#[test]
fn toml_errors() {
    assert_eq!(
        err("[activation.extra]\n"),
        "T/r.toml:9:13: unknown field `extra`, expected one of `kind`, `schedule`, `run_on_install`\n  \
         help: remove the key or fix its spelling"
    );
    assert_eq!(
        err_replacing("name = \"raid-health\"\n", "name = \"a\"\nname = \"b\"\n"),
        "T/r.toml:2:1: duplicate key\n  help: remove one of the two definitions of this key"
    );
    assert_eq!(
        err_replacing(
            "name = \"raid-health\"\n",
            "name = \"raid-health\"\nnmae = \"x\"\n"
        ),
        "T/r.toml:2:1: unknown field `nmae`, expected one of `name`, `description`, `inventory`, \
         `script`, `activation`, `targets`, `waves`, `health`, `policy`, `gates`, `notify`\n  \
         help: remove the key or fix its spelling"
    );
    assert_eq!(
        err("[waves]\nbake_time = \"1m\"\n"),
        "T/r.toml:10:1: unknown field `bake_time`, expected one of `sizes`, `canaries`, `spread_by`, \
         `max_per_group`, `concurrency`, `bake`, `min_runs`\n  help: remove the key or fix its spelling"
    );
    assert_eq!(
        err("[policy]\non_failure = \"retry\"\n"),
        "T/r.toml:10:14: unknown variant `retry`, expected `rollback` or `pause`\n  \
         help: use one of the listed values"
    );
    assert_eq!(
        err("[health]\nbuiltin = [\"reachable\", \"disk\"]\n"),
        "T/r.toml:10:25: unknown variant `disk`, expected one of `reachable`, `script`, `kernel`, \
         `units`, `oom`, `blocked`, `load`, `pressure`\n  help: use one of the listed values"
    );
    assert_eq!(
        err("[waves]\nbake = 10\n"),
        "T/r.toml:10:8: invalid type: integer `10`, expected a string\n  \
         help: change the value to the expected type"
    );
    assert_eq!(
        err("[waves\n"),
        "T/r.toml:9:7: unclosed table, expected `]`\n  help: fix the TOML syntax (see https://toml.io)"
    );
    assert_eq!(
        err("[[health.check]]\nname = \"x\"\n"),
        "T/r.toml:9:1: missing field `command`\n  help: add the missing key"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        err_replacing("name = \"raid-health\"\n", ""),
        "T/r.toml: missing `name`\n  help: add a line like name = \"raid-health\" at the top"
    );
    assert_eq!(
        err_replacing("inventory = \"inv.toml\"\n", ""),
        "T/r.toml: no inventory: the spec has no `inventory` key and none was given with \
         --inventory\n  help: add a line like inventory = \"../inventory.toml\", or pass --inventory FILE"
    );
    assert_eq!(
        err_replacing("source = \"check.sh\"\n", ""),
        "T/r.toml:3:1: missing `script.source`\n  help: add a line like source = \"scripts/raid-health.sh\""
    );
    assert_eq!(
        err_replacing("install_path = \"/usr/local/sbin/raid-health\"\n", ""),
        "T/r.toml:3:1: missing `script.install_path`\n  \
         help: add a line like install_path = \"/usr/local/sbin/raid-health\""
    );
    assert_eq!(
        err_replacing(
            "[activation]\nkind = \"cron\"\nschedule = \"*/5 * * * *\"\n",
            ""
        ),
        "T/r.toml: missing [activation] table\n  \
         help: add an [activation] table with kind = \"cron\", \"systemd-timer\" or \"none\""
    );
    assert_eq!(
        err_replacing("kind = \"cron\"\n", ""),
        "T/r.toml:6:1: missing `activation.kind`\n  \
         help: add a line like kind = \"cron\" (or \"systemd-timer\", or \"none\")"
    );
}

#[test]
fn bad_names() {
    let help = "help: a rollout name uses lowercase letters, digits and '-', starts with a letter \
                or digit, at most 63 characters (it names files and units on every host)";
    assert_eq!(
        err_replacing("\"raid-health\"", "\"Raid\""),
        format!("T/r.toml:1:8: rollout name `Raid` must not start with 'R'\n  {help}")
    );
    assert_eq!(
        err_replacing("\"raid-health\"", &format!("\"{}\"", "a".repeat(64))),
        format!(
            "T/r.toml:1:8: rollout name is 64 characters long, at most 63 are allowed\n  {help}"
        )
    );
    assert_eq!(
        err("[[health.check]]\nname = \"pg ready\"\ncommand = \"true\"\n"),
        "T/r.toml:10:8: check name `pg ready` contains ' '\n  help: a check name uses letters, \
         digits, '_', '.' and '-', starts with a letter or digit, at most 63 characters"
    );
}

/// The spec's words (serde, kebab-case) are `as_str`'s: one spelling of each kind.
#[test]
fn activation_kinds_have_one_spelling() {
    for k in ActivationKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        assert_eq!(ActivationKind::parse(k.as_str()), Some(k));
        assert_eq!(k.to_string(), k.as_str());
    }
    assert_eq!(ActivationKind::parse("SystemdTimer"), None);
}

/// The spec's words for the built-in signals (serde, kebab-case) are `as_str`'s.
#[test]
fn builtins_have_one_spelling() {
    for b in Builtin::ALL {
        assert_eq!(serde_json::to_value(b).unwrap(), b.as_str());
        let back: Builtin = serde_json::from_value(b.as_str().into()).unwrap();
        assert_eq!(back, b);
    }
}
