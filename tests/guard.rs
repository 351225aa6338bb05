//! The on-host boot guard and the wrapper's refusal to run a revoked script, against
//! real lab hosts: a rollout is applied for real, then the host-side state is edited
//! the way a power cut or a revocation would leave it.

mod common;

use wavectl::lab::LabHost;
use wavectl::remote::ManifestState::{self, Confirmed, Probation, Revoked};

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const DIR: &str = "/var/lib/wavectl/raid-health";
const WRAPPER: &str = "/var/lib/wavectl/raid-health/run";
const MANIFEST: &str = "/var/lib/wavectl/raid-health/manifest.json";
const RUNS_LOG: &str = "/var/lib/wavectl/raid-health/runs.log";
const CRON: &str = "/etc/cron.d/wavectl-raid-health";
/// Every run of the script appends one line here (on the host).
const SIDE_EFFECT: &str = "/var/tmp/raid-health-ran";

fn spec() -> String {
    format!(
        r#"name = "{NAME}"
description = "guard test rollout"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "{INSTALL}"
mode = "0755"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
sizes = ["100%"]
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
"#
    )
}

fn script() -> String {
    format!("#!/bin/sh\necho ran >> {SIDE_EFFECT}\necho raid ok\n")
}

fn manifest_state(h: &LabHost) -> ManifestState {
    manifest(h, "raid-health").unwrap().state
}

/// The manifest's state changed by hand (one line: `"state": "...",`).
fn set_manifest_state(h: &LabHost, from: ManifestState, to: ManifestState) {
    exec_ok(
        h,
        &format!("sed -i 's/^\"state\": \"{from}\",$/\"state\": \"{to}\",/' {MANIFEST}"),
    );
    assert_eq!(manifest_state(h), to, "{}: manifest not edited", h.name());
}

/// The command of the `@reboot` line of the host's own cron file: fields 7.. of
/// `@reboot root CMD ...` are fields 3.. (the 5 time fields are one `@reboot`).
fn reboot_command(h: &LabHost) -> String {
    let cron = std::fs::read_to_string(h.path(CRON))
        .unwrap_or_else(|e| panic!("{}: no cron file: {e}", h.name()));
    let line = cron
        .lines()
        .find(|l| l.trim_start().starts_with("@reboot"))
        .unwrap_or_else(|| panic!("{}: no @reboot line in\n{cron}", h.name()));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.len() >= 3,
        "{}: short @reboot line {line:?}",
        h.name()
    );
    assert_eq!(fields[1], "root", "{}: {line:?}", h.name());
    let cmd = fields[2..].join(" ");
    assert!(cmd.starts_with(WRAPPER), "{}: {cmd:?}", h.name());
    cmd
}

fn apply_confirmed(s: &Workdir) {
    let r = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    for h in s.fleet.hosts() {
        assert_eq!(manifest_state(h), Confirmed, "{}", h.name());
        assert!(h.path(INSTALL).exists(), "{}", h.name());
        assert!(h.path(WRAPPER).exists(), "{}", h.name());
        assert!(h.path(CRON).exists(), "{}", h.name());
    }
}

#[test]
fn a_simulated_boot_removes_a_script_in_probation_and_keeps_a_confirmed_one() {
    let script = script();
    let s = Workdir::new(fleet(2), &script, &spec());
    let (a, b) = (s.fleet.host("h01"), s.fleet.host("h02"));
    // A had its own file at install_path before the rollout.
    let original = "#!/bin/sh\n# the hand-installed raid check of h01\n";
    exec_ok(
        a,
        &format!("mkdir -p /usr/local/sbin && printf '%s' '{original}' > {INSTALL} && chmod 0750 {INSTALL}"),
    );
    apply_confirmed(&s);
    assert_eq!(std::fs::read_to_string(a.path(INSTALL)).unwrap(), script);
    assert!(a.path(&format!("{DIR}/backup")).exists(), "h01: no backup");

    // A was power-cycled before it was confirmed.
    set_manifest_state(a, Confirmed, Probation);
    let b_before: Vec<(String, Vec<u8>)> = [INSTALL, WRAPPER, CRON, MANIFEST]
        .iter()
        .map(|p| (p.to_string(), std::fs::read(b.path(p)).unwrap()))
        .collect();

    // The boot: each host runs its own @reboot command.
    for h in [a, b] {
        let cmd = reboot_command(h);
        let out = h.exec(&cmd).unwrap();
        assert!(
            out.status.success(),
            "{}: `{cmd}`: {:?}\n{}",
            h.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A: every wavectl file gone, the original back byte for byte, with its mode.
    for p in [
        DIR,
        CRON,
        "/etc/systemd/system/wavectl-raid-health.service",
        "/etc/systemd/system/wavectl-raid-health.timer",
    ] {
        assert!(!a.path(p).exists(), "h01 still holds {p}");
    }
    assert_eq!(temp_dirs(a, "raid-health", INSTALL), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(a.path(INSTALL)).unwrap(),
        original,
        "h01: original not restored"
    );
    assert_eq!(file_mode(&a.path(INSTALL)), 0o750, "h01: mode not restored");
    let log = std::fs::read_to_string(a.path("/var/log/wavectl-guard.log")).unwrap_or_default();
    assert!(
        log.contains("in probation at boot; reverting it"),
        "h01 guard log: {log:?}"
    );

    // B: untouched.
    for (p, before) in &b_before {
        let now = std::fs::read(b.path(p)).unwrap_or_else(|e| panic!("h02 lost {p}: {e}"));
        assert_eq!(&now, before, "h02: {p} changed");
    }
    assert_eq!(manifest_state(b), Confirmed);
    assert!(
        !b.path("/var/log/wavectl-guard.log").exists()
            || !std::fs::read_to_string(b.path("/var/log/wavectl-guard.log"))
                .unwrap()
                .contains("removing"),
        "h02: the guard removed something"
    );
}

#[test]
fn a_boot_of_a_host_with_no_prior_file_leaves_no_script() {
    let s = Workdir::new(fleet(1), &script(), &spec());
    let a = s.fleet.host("h01");
    apply_confirmed(&s);
    set_manifest_state(a, Confirmed, Probation);
    let cmd = reboot_command(a);
    exec_ok(a, &cmd);
    for p in [DIR, CRON, INSTALL] {
        assert!(!a.path(p).exists(), "h01 still holds {p}");
    }
}

#[test]
fn a_revoked_manifest_makes_the_wrapper_refuse_to_run_the_script() {
    let s = Workdir::new(fleet(1), &script(), &spec());
    let h = s.fleet.host("h01");
    apply_confirmed(&s);
    let ran_before = std::fs::read_to_string(h.path(SIDE_EFFECT)).unwrap();
    let runs_before = std::fs::read_to_string(h.path(RUNS_LOG)).unwrap();
    assert_eq!(ran_before.lines().count(), 1, "{ran_before:?}");
    assert_eq!(runs_before.lines().count(), 1, "{runs_before:?}");

    // The wrapper does run a confirmed script (so the refusal below is the manifest's doing).
    exec_ok(h, WRAPPER);
    let ran_mid = std::fs::read_to_string(h.path(SIDE_EFFECT)).unwrap();
    let runs_mid = std::fs::read_to_string(h.path(RUNS_LOG)).unwrap();
    assert_eq!(ran_mid.lines().count(), 2, "{ran_mid:?}");
    assert_eq!(runs_mid.lines().count(), 2, "{runs_mid:?}");

    set_manifest_state(h, Confirmed, Revoked);
    let out = h.exec(WRAPPER).unwrap();
    assert_eq!(
        out.status.code(),
        Some(78),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(h.path(SIDE_EFFECT)).unwrap(),
        ran_mid,
        "the script ran although revoked"
    );
    assert_eq!(
        std::fs::read_to_string(h.path(RUNS_LOG)).unwrap(),
        runs_mid,
        "runs.log got a line although revoked"
    );
}

#[test]
fn a_probation_script_is_not_run_after_a_reboot_and_a_revoked_one_is_removed_at_boot() {
    let s = Workdir::new(fleet(2), &script(), &spec());
    apply_confirmed(&s);
    let (a, b) = (s.fleet.host("h01"), s.fleet.host("h02"));

    // A: in probation, and the boot id recorded at install is not this boot's.
    set_manifest_state(a, Confirmed, Probation);
    assert!(
        a.path(&format!("{DIR}/boot_id")).exists(),
        "h01: no boot_id"
    );
    let ran = std::fs::read_to_string(a.path(SIDE_EFFECT)).unwrap();
    let runs = std::fs::read_to_string(a.path(RUNS_LOG)).unwrap();
    // Same boot: a probation script does run.
    exec_ok(a, WRAPPER);
    let ran_mid = std::fs::read_to_string(a.path(SIDE_EFFECT)).unwrap();
    assert_eq!(ran_mid.lines().count(), ran.lines().count() + 1);
    let runs_mid = std::fs::read_to_string(a.path(RUNS_LOG)).unwrap();
    assert_eq!(runs_mid.lines().count(), runs.lines().count() + 1);
    exec_ok(a, &format!("echo another-boot > {DIR}/boot_id"));
    let out = a.exec(WRAPPER).unwrap();
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rebooted during probation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(a.path(SIDE_EFFECT)).unwrap(),
        ran_mid
    );
    assert_eq!(std::fs::read_to_string(a.path(RUNS_LOG)).unwrap(), runs_mid);

    // B: revoked (a removal that died half-way); the boot guard finishes it.
    set_manifest_state(b, Confirmed, Revoked);
    let cmd = reboot_command(b);
    exec_ok(b, &cmd);
    for p in [DIR, CRON, INSTALL] {
        assert!(!b.path(p).exists(), "h02 still holds {p}");
    }
}
