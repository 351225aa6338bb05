//! The lease (magic rollback) on hosts that run Debian's real cron: a controller killed
//! during a long bake leaves its hosts in probation; nobody renews their lease, so once
//! it runs out each host reverts itself (its guard runs every minute from cron); the
//! controller, resumed later, counts each such host as unhealthy with the evidence
//! "lease expired at T" and rolls back the rest. A host rebooted in probation reverts
//! at boot, whatever its lease (a real `systemctl reboot` of a systemd lab host).

mod common;

use std::time::Duration;

use wavectl::lab::{Fleet, FleetOptions, HostKind};

use common::*;

const NAME: &str = "leased";
const INSTALL: &str = "/usr/local/sbin/leased";
const ORIGINAL: &str = "#!/bin/sh\n# before wavectl\n";

fn spec() -> String {
    spec_with("kind = \"cron\"\nschedule = \"*/30 * * * *\"")
}

fn spec_with(activation: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "20s"
[activation]
{activation}
run_on_install = true
[waves]
sizes = ["100%"]
bake = "10m"
min_runs = 1
[health]
interval = "3s"
probe_timeout = "3s"
builtin = ["reachable", "script"]
[policy]
lease = "15s"
"#
    )
}

#[test]
fn hosts_revert_themselves_when_the_controller_dies_and_resume_sees_it() {
    let fleet = Fleet::start_kind(FleetOptions::numbered(2), HostKind::Cron).expect("cron fleet");
    let w = Workdir::new(fleet, "#!/bin/sh\necho ok\n", &spec());
    killed_during_the_bake_then_reverted(&w, &format!("/etc/cron.d/wavectl-{NAME}"));
}

/// The same under a real systemd: the script runs from its timer, the lease guard from
/// a minutely timer; the revert disables and removes every unit.
#[test]
fn systemd_timer_hosts_revert_themselves_too() {
    let fleet =
        Fleet::start_kind(FleetOptions::numbered(2), HostKind::Systemd).expect("systemd fleet");
    for h in fleet.hosts() {
        h.wait_running().expect("systemd is running");
    }
    let spec = spec_with("kind = \"systemd-timer\"\nschedule = \"*:*:0/10\"");
    let w = Workdir::new(fleet, "#!/bin/sh\necho ok\n", &spec);
    let timer = format!("/etc/systemd/system/wavectl-{NAME}.timer");
    killed_during_the_bake_then_reverted(&w, &timer);
    for h in w.fleet.hosts() {
        assert_no_wavectl_units(h, NAME);
    }
}

/// Deploy, check the activation `marker` is there and the script runs, kill the
/// controller mid-bake, wait for the hosts to revert themselves, then `resume`.
fn killed_during_the_bake_then_reverted(w: &Workdir, marker: &str) {
    let original = seed_original(w.fleet.host("h02"), INSTALL, ORIGINAL);
    let mut child = spawn_apply(w);
    let cron = marker.to_string();
    let manifest_path = format!("/var/lib/wavectl/{NAME}/manifest.json");
    assert!(
        eventually(Duration::from_secs(30), || w
            .fleet
            .hosts()
            .iter()
            .all(|h| h.path(&cron).exists() && h.path(&manifest_path).exists())),
        "the hosts were never deployed"
    );
    // The bake runs (probes renew the lease); then the controller dies outright.
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    for h in w.fleet.hosts() {
        let m = manifest(h, NAME).unwrap();
        assert_eq!(
            m.state,
            wavectl::remote::ManifestState::Probation,
            "{}: {m:?}",
            h.name()
        );
    }

    // Nobody renews the lease: 15 s, then the next minute's guard reverts each host.
    let state_dir = format!("/var/lib/wavectl/{NAME}");
    let reverted = eventually(Duration::from_secs(110), || {
        w.fleet.hosts().iter().all(|h| {
            !h.path(&cron).exists()
                && !h.path(&state_dir).exists()
                && std::fs::read_to_string(h.path(&format!("/var/lib/wavectl/.reverted/{NAME}")))
                    .is_ok_and(|t| t.trim_end().ends_with(" 1"))
        })
    });
    assert!(reverted, "the hosts did not revert themselves");
    for h in w.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        if h.name() == "h02" {
            assert_eq!(std::fs::read(h.path(INSTALL)).unwrap(), original);
        } else {
            assert!(!h.path(INSTALL).exists(), "{}", h.name());
        }
        let note = std::fs::read_to_string(h.path(&format!("/var/lib/wavectl/.reverted/{NAME}")))
            .unwrap_or_default();
        assert!(!note.is_empty(), "{}: no record of the revert", h.name());
    }

    // The run's journal does not know yet; resume asks the hosts, counts each as
    // unhealthy with the lease's evidence, and ends rolled back.
    let st = w.wavectl(&["status"]);
    assert!(st.stdout.contains("interrupted"), "{}", st.stdout);
    let run = only_run(w);
    let r = w.wavectl(&["resume", "--yes", &run]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("lease expired at"), "{}", r.stdout);
    let js = w.wavectl(&["status", &run, "--json"]);
    let js: serde_json::Value = serde_json::from_str(js.stdout.trim()).unwrap();
    // Each host holds nothing of the run: reverted (as a probe or a check-up saw), or
    // clean (a host the rollback reached before any probe saw its revert).
    let states: Vec<&str> = js["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert!(
        states.iter().all(|s| matches!(*s, "reverted" | "clean")),
        "{states:?}"
    );
    assert!(states.contains(&"reverted"), "{states:?}");
    // Nothing is left for reconcile.
    let rc = w.wavectl(&["reconcile", "--yes"]);
    assert_eq!(rc.code, Some(0), "{}\n{}", rc.stdout, rc.stderr);
    assert!(rc.stdout.contains("nothing to reconcile"), "{}", rc.stdout);
}

/// The boot guard after a real reboot: a controller killed mid-bake, the host rebooted
/// (`systemctl reboot`, a new boot of the same overlays) long before its lease runs out.
/// At boot the guard reverts the install in probation — from its boot unit under a
/// systemd timer activation, from its `@reboot` line under cron (cron runs as a unit).
#[test]
fn a_real_reboot_in_probation_reverts_at_boot_under_a_timer_and_under_cron() {
    for (i, activation) in [
        "kind = \"systemd-timer\"\nschedule = \"*:0/30\"",
        "kind = \"cron\"\nschedule = \"*/30 * * * *\"",
    ]
    .into_iter()
    .enumerate()
    {
        // A lease far longer than the test: only the boot can revert it.
        let spec = spec_with(activation).replace("lease = \"15s\"", "lease = \"30m\"");
        let w = Workdir::new(
            Fleet::start_kind(FleetOptions::numbered(1), HostKind::Systemd).expect("systemd fleet"),
            "#!/bin/sh\necho ok\n",
            &spec,
        );
        let h = w.fleet.host("h01");
        h.wait_running().expect("systemd is running");
        let original = seed_original(h, INSTALL, ORIGINAL);
        let mut child = spawn_apply(&w);
        let manifest_path = format!("/var/lib/wavectl/{NAME}/manifest.json");
        assert!(
            eventually(Duration::from_secs(30), || manifest(h, NAME).is_some_and(
                |m| m.state == wavectl::remote::ManifestState::Probation
            )),
            "case {i}: never deployed"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            h.path(&manifest_path).exists(),
            "case {i}: reverted before the boot"
        );

        h.reboot().expect("reboot");
        h.wait_running()
            .expect("systemd is running after the reboot");
        let log = "/var/log/wavectl-guard.log";
        assert!(
            eventually(Duration::from_secs(60), || std::fs::read_to_string(
                h.path(log)
            )
            .is_ok_and(|l| l.contains(" reverted, clean=1"))),
            "case {i}: the boot guard did not revert: {:?}",
            std::fs::read_to_string(h.path(log))
        );
        let guard_log = std::fs::read_to_string(h.path(log)).unwrap();
        assert!(
            guard_log.contains("in probation at boot; reverting it"),
            "case {i}: {guard_log}"
        );
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert_no_wavectl_units(h, NAME);
        assert_eq!(
            std::fs::read(h.path(INSTALL)).unwrap(),
            original,
            "case {i}"
        );

        // The controller, resumed, learns it from the host: reverted, rolled back.
        let run = only_run(&w);
        let r = w.wavectl(&["resume", "--yes", &run]);
        assert_eq!(r.code, Some(1), "case {i}: {}\n{}", r.stdout, r.stderr);
        let rc = w.wavectl(&["reconcile", "--yes"]);
        assert!(rc.stdout.contains("nothing to reconcile"), "{}", rc.stdout);
    }
}

/// `apply` in the background, its output dropped (the test kills it).
fn spawn_apply(w: &Workdir) -> std::process::Child {
    std::process::Command::new(bin())
        .args(w.args(&["--json", "apply", "rollout.toml", "--yes"]))
        .current_dir(w.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The id of the one run in the state directory.
fn only_run(w: &Workdir) -> String {
    std::fs::read_dir(w.state().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap()
}
