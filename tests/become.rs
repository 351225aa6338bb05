//! `become`: hosts reached as a non-root user whose every command runs through `sudo -n`,
//! end to end against real sshd hosts with real sudo (lab logins, `Fleet::add_login`): a
//! whole rollout, its rollback, an automatic rollback on a failed check, a purge; and a
//! host whose sudo wants a password, refused before anything changes.

mod common;

use std::os::unix::fs::MetadataExt;

use wavectl::lab::{Sudo, HOME_PARENT};

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const STATE: &str = "/var/lib/wavectl/raid-health";

fn spec(checks: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "{INSTALL}"
mode = "0750"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"

[waves]
sizes = ["100%"]
bake = "1s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]
{checks}
"#
    )
}

/// The run id of a `--json` run (its first event).
fn run_of(r: &Run) -> String {
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    first["run"].as_str().unwrap().to_string()
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

#[test]
fn become_host_rolls_out_rolls_back_and_is_purged_through_sudo() {
    let mut s = Workdir::new(fleet(2), "#!/bin/sh\necho raid ok\n", &spec(""));
    s.fleet
        .add_login("h02", "deploy", Sudo::NoPassword)
        .unwrap();
    s.fleet
        .write_inventory(&s.path().join("inventory.toml"))
        .unwrap();
    let inv = std::fs::read_to_string(s.path().join("inventory.toml")).unwrap();
    assert!(inv.contains("user = \"deploy\"\nbecome = true"), "{inv}");
    let h02 = s.fleet.host("h02");
    let original = seed_original(h02, INSTALL, "vendor original");

    // A whole rollout: h02 is reached as deploy, every step through sudo.
    let r = s.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let run = run_of(&r);
    for h in s.fleet.hosts() {
        let meta = std::fs::metadata(h.path(INSTALL)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "{}: script not root's",
            h.name()
        );
        assert_eq!(meta.mode() & 0o7777, 0o750, "{}", h.name());
        let state = std::fs::metadata(h.path(STATE)).unwrap();
        assert_eq!(state.uid(), 0, "{}: state dir not root's", h.name());
        let m = manifest(h, NAME).unwrap();
        assert_eq!(
            m.state,
            wavectl::remote::ManifestState::Confirmed,
            "{}: {m:?}",
            h.name()
        );
        assert_eq!(m.run_id, run);
        // The first run went through the wrapper, as root.
        let runs = std::fs::read_to_string(h.path(&format!("{STATE}/runs.log"))).unwrap();
        assert_eq!(
            runs.split_whitespace().nth(2),
            Some("0"),
            "{}: {runs}",
            h.name()
        );
        assert_eq!(
            std::fs::metadata(h.path("/etc/cron.d/wavectl-raid-health"))
                .unwrap()
                .uid(),
            0
        );
    }
    // deploy logged in (its sshd log says so) and nothing it owns was written by us.
    let log = std::fs::read_to_string(h02.dir().join("sshd.log")).unwrap();
    assert!(
        log.contains("Accepted publickey for deploy"),
        "h02 was not reached as deploy:\n{log}"
    );
    let home = h02.path(&format!("{HOME_PARENT}/deploy"));
    let in_home: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".ssh" && !n.to_string_lossy().starts_with(".bash") && n != ".profile")
        .collect();
    assert!(in_home.is_empty(), "files in deploy's home: {in_home:?}");

    // Its rollback: the original comes back, byte for byte, still root's.
    let r = s.wavectl(&["rollback", &run, "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_no_wavectl_files(h02, NAME, INSTALL);
    assert_eq!(std::fs::read(h02.path(INSTALL)).unwrap(), original);
    assert_eq!(std::fs::metadata(h02.path(INSTALL)).unwrap().uid(), 0);
    assert!(!h02.path(STATE).exists());

    // A failing check on the become host: probed through sudo, degraded, every host
    // rolled back (exit 1).
    exec_ok(h02, "touch /etc/wavectl-test-bad");
    std::fs::write(
        s.path().join("rollout.toml"),
        spec("[[health.check]]\nname = \"flag\"\ncommand = \"test ! -e /etc/wavectl-test-bad\"\n"),
    )
    .unwrap();
    let r = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(1), "{}", show(&r));
    assert!(r.stdout.contains("h02"), "{}", show(&r));
    for h in s.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
    }
    assert_eq!(std::fs::read(h02.path(INSTALL)).unwrap(), original);

    // And a purge reaches it the same way.
    exec_ok(h02, "rm /etc/wavectl-test-bad");
    std::fs::write(s.path().join("rollout.toml"), spec("")).unwrap();
    let r = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let r = s.wavectl(&["purge", NAME, "--inventory", "inventory.toml", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    for h in s.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
    }
    assert_eq!(std::fs::read(h02.path(INSTALL)).unwrap(), original);
    s.assert_no_ssh_left();
}

#[test]
fn sudo_that_wants_a_password_is_refused_before_anything_changes() {
    let mut s = Workdir::new(fleet(3), "#!/bin/sh\necho raid ok\n", &spec(""));
    s.fleet
        .add_login("h02", "deploy", Sudo::WantsPassword)
        .unwrap();
    s.fleet
        .write_inventory(&s.path().join("inventory.toml"))
        .unwrap();
    let r = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(2), "{}", show(&r));
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("host h02 refused us") && all.contains("`sudo -n` refused for deploy"),
        "{}",
        show(&r)
    );
    assert!(all.contains("a password is required"), "{}", show(&r));
    assert!(all.contains("NOPASSWD"), "{}", show(&r));
    // Nothing on h02; what the others got (they may have been installed first, at once)
    // was rolled back.
    let h02 = s.fleet.host("h02");
    assert!(!h02.path("/var/lib/wavectl").exists(), "h02 was touched");
    assert!(!h02.path(INSTALL).exists(), "h02 was touched");
    for h in s.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert!(!h.path(INSTALL).exists(), "{}", h.name());
    }
    s.assert_no_ssh_left();
}
