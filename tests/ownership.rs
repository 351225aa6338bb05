//! Never harm what isn't ours (issue 13, the host side), against real lab hosts: each
//! case of the issue as the operator met it, named after the bug — a stale pid file
//! after a power cut, `purge --path` of a symlink, a rolled-back version that came back,
//! a user racing on the temporary name, two rollouts on one install path, a removal
//! without its lock, a purge from another bastion, detached children, a refused install's
//! leftovers.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wavectl::lab::{Fleet, FleetOptions, HostKind, LabHost};

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const STATE: &str = "/var/lib/wavectl/raid-health";
const CRON: &str = "/etc/cron.d/wavectl-raid-health";

/// A cron-activated rollout `name` at `install`: one run at install, `sizes` waves
/// baked `bake`, judged by reachability only.
fn spec(name: &str, install: &str, sizes: &str, bake: &str, min_runs: u32) -> String {
    format!(
        r#"name = "{name}"
inventory = "inventory.toml"
[script]
source = "{name}.sh"
install_path = "{install}"
timeout = "20m"
[activation]
kind = "cron"
schedule = "*/30 * * * *"
run_on_install = true
[waves]
sizes = {sizes}
bake = "{bake}"
min_runs = {min_runs}
[health]
interval = "1s"
probe_timeout = "1s"
builtin = ["reachable"]
"#
    )
}

/// A work dir with rollout `name` (spec and script written as `<name>.toml`/`.sh`).
fn workdir(fleet: Fleet, name: &str, script: &str, spec_text: &str) -> Workdir {
    let w = Workdir::new(fleet, "", "");
    add_rollout(&w, name, script, spec_text);
    w
}

fn add_rollout(w: &Workdir, name: &str, script: &str, spec_text: &str) {
    std::fs::write(w.path().join(format!("{name}.sh")), script).unwrap();
    std::fs::write(w.path().join(format!("{name}.toml")), spec_text).unwrap();
}

/// `--json apply <name>.toml --yes ARGS`: the run and its run id.
fn apply(w: &Workdir, name: &str, args: &[&str]) -> (Run, String) {
    let spec = format!("{name}.toml");
    let mut all = vec!["--json", "apply", &spec, "--yes"];
    all.extend_from_slice(args);
    let r = w.wavectl(&all);
    let run = r
        .stdout
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["run"].as_str().map(String::from)
        })
        .unwrap_or_default();
    (r, run)
}

/// The same apply, started in the background.
fn apply_in_background(w: &Workdir, name: &str) -> Child {
    Command::new(bin())
        .args(w.args(&["apply", &format!("{name}.toml"), "--yes"]))
        .current_dir(w.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wavectl")
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: Duration::ZERO,
    }
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

/// The host's pids (its own pid namespace) of processes whose command line is `cmd`.
fn pids(h: &LabHost, cmd: &str) -> Vec<u32> {
    exec_ok(h, &format!("pgrep -xf '{cmd}' || true"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// The process (a host pid) runs: it exists and is no zombie.
fn alive(h: &LabHost, pid: u32) -> bool {
    h.exec(&format!(
        "s=$(sed 's/.*) //' /proc/{pid}/stat) && [ \"${{s%% *}}\" != Z ]"
    ))
    .unwrap()
    .status
    .success()
}

/// Start `cmd` (no quotes in it) detached on the host with the pid `want` (host pid
/// namespace), by writing ns_last_pid first; retried while other processes of the host
/// take the number first.
fn start_with_pid(h: &LabHost, want: u32, cmd: &str) -> u32 {
    for _ in 0..50 {
        let got: u32 = exec_ok(
            h,
            &format!(
                "echo {} > /proc/sys/kernel/ns_last_pid || exit; setsid {cmd} </dev/null >/dev/null 2>&1 & echo $!",
                want - 1
            ),
        )
        .trim()
        .parse()
        .unwrap();
        if got == want {
            return got;
        }
        exec_ok(h, &format!("kill -9 {got} 2>/dev/null || true"));
    }
    panic!("{}: no process got pid {want}", h.name());
}

/// The pid the wrapper's pid file names (the run's `timeout`, a host pid): the first
/// field of the old format (`PID`), the second of the new (`BOOT PID START`).
fn recorded_pid(h: &LabHost, name: &str) -> u32 {
    let rec = std::fs::read_to_string(h.path(&format!("/var/lib/wavectl/{name}/pid")))
        .unwrap_or_else(|e| panic!("{}: no pid file: {e}", h.name()));
    let f: Vec<&str> = rec.split_whitespace().collect();
    let p = if f.len() == 1 { f[0] } else { f[1] };
    p.parse().unwrap()
}

fn set_probation(h: &LabHost, name: &str) {
    exec_ok(
        h,
        &format!("sed -i 's/^\"state\": \"confirmed\",$/\"state\": \"probation\",/' /var/lib/wavectl/{name}/manifest.json"),
    );
}

/// A stale pid file after a power cut must not kill the process that got its number:
/// not the boot guard, not `purge` (issue 13, case 1). The host's processes are all
/// killed and the same overlays booted again; a daemon is started with the recorded pid.
#[test]
fn a_stale_pid_file_after_a_power_cut_kills_no_unrelated_process() {
    let script = "#!/bin/sh\nsleep 1101\n";
    let w = workdir(fleet(1), NAME, script, &spec(NAME, INSTALL, "[1]", "1s", 0));
    let h = w.fleet.host("h01");
    for killer in ["the boot guard", "purge"] {
        let (r, _) = apply(&w, NAME, &[]);
        assert_eq!(r.code, Some(0), "{}", show(&r));
        assert!(eventually(Duration::from_secs(10), || pids(
            h,
            "sleep 1101"
        )
        .len()
            == 1));
        let stale = recorded_pid(h, NAME);
        // The power cut while the run ran, in probation (the boot guard reverts that).
        set_probation(h, NAME);
        h.restart().unwrap();
        assert!(pids(h, "sleep 1101").is_empty());
        let victim = start_with_pid(h, stale, "sleep 1102");
        match killer {
            "the boot guard" => {
                exec_ok(h, &format!("{STATE}/run guard boot"));
                // The guard did revert the install, and only that.
                assert!(!h.path(INSTALL).exists() && !h.path(STATE).exists());
            }
            _ => {
                let r = w.wavectl(&["purge", NAME, "--inventory", "inventory.toml", "--yes"]);
                assert_eq!(r.code, Some(0), "{}", show(&r));
                assert!(!h.path(INSTALL).exists() && !h.path(STATE).exists());
            }
        }
        assert!(
            alive(h, victim),
            "{killer} killed the process that got the stale pid {stale}"
        );
        exec_ok(h, &format!("kill -9 {victim}"));
    }
}

/// `purge --path` of a symlink kills nothing that runs what the link leads to (a vendor
/// daemon), and a link to a protected path (sshd) is refused, for install and purge,
/// without --force (issue 13, case 2).
#[test]
fn purge_path_of_a_symlink_kills_no_process_of_its_target() {
    let w = workdir(
        fleet(1),
        NAME,
        "#!/bin/sh\nexit 0\n",
        &spec(NAME, INSTALL, "[1]", "1s", 1),
    );
    let h = w.fleet.host("h01");
    exec_ok(
        h,
        &format!(
            "mkdir -p /opt/vendor && cp /usr/bin/sleep /opt/vendor/daemon && ln -s /opt/vendor/daemon {INSTALL} && \
             (/opt/vendor/daemon 1201 </dev/null >/dev/null 2>&1 &)"
        ),
    );
    assert!(eventually(Duration::from_secs(5), || pids(
        h,
        "/opt/vendor/daemon 1201"
    )
    .len()
        == 1));
    let daemon = pids(h, "/opt/vendor/daemon 1201")[0];
    let r = w.wavectl(&[
        "purge",
        "--path",
        INSTALL,
        "--inventory",
        "inventory.toml",
        "--yes",
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(
        alive(h, daemon),
        "purge --path of the link killed the daemon its target runs\n{}",
        show(&r)
    );
    assert!(!h.path(INSTALL).exists() && h.path("/opt/vendor/daemon").exists());

    // A link to sshd: refused by the host (nothing changed), for an install and a purge.
    exec_ok(h, &format!("ln -s /usr/sbin/sshd {INSTALL}"));
    let (r, _) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(
        r.stdout
            .contains("leads to /usr/sbin/sshd, a path wavectl protects"),
        "{}",
        show(&r)
    );
    assert_eq!(
        std::fs::read_link(h.path(INSTALL)).unwrap(),
        std::path::Path::new("/usr/sbin/sshd")
    );
    assert!(!h.path(STATE).exists());
    let r = w.wavectl(&[
        "purge",
        "--path",
        INSTALL,
        "--inventory",
        "inventory.toml",
        "--yes",
    ]);
    assert_eq!(r.code, Some(4), "{}", show(&r));
    assert!(r.stdout.contains("a path wavectl protects"), "{}", show(&r));
    assert!(std::fs::symlink_metadata(h.path(INSTALL)).is_ok());
}

/// Rolling back R1 after R2 upgraded over it drops R1's version and says the rollout
/// stays under R2 (exit 4, never "clean"); rolling back R2 then leaves no version of
/// R1 behind (issue 13, case 3).
#[test]
fn a_rolled_back_version_never_comes_back() {
    let v1 = "#!/bin/sh\necho v1\n";
    let v2 = "#!/bin/sh\necho v2\n";
    let w = workdir(fleet(1), NAME, v1, &spec(NAME, INSTALL, "[1]", "1s", 1));
    let h = w.fleet.host("h01");
    let (r, r1) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    add_rollout(&w, NAME, v2, &spec(NAME, INSTALL, "[1]", "1s", 1));
    let (r, r2) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(std::fs::read_to_string(h.path(INSTALL)).unwrap(), v2);

    let r = w.wavectl(&["rollback", &r1, "--yes"]);
    assert_eq!(r.code, Some(4), "{}", show(&r));
    assert!(
        r.stdout.contains("keep the rollout under a newer run") && !r.stdout.contains("clean"),
        "{}",
        show(&r)
    );
    assert!(r.stdout.contains(&r2), "{}", show(&r));
    // R2's install is untouched; R1's version is gone from the host's history.
    assert_eq!(std::fs::read_to_string(h.path(INSTALL)).unwrap(), v2);
    assert!(!h.path(&format!("{STATE}/prev")).exists());
    let st = w.wavectl(&["status", &r1]);
    assert!(st.stdout.contains("superseded"), "{}", show(&st));

    let r = w.wavectl(&["rollback", &r2, "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(
        !h.path(INSTALL).exists(),
        "rolling back R2 brought R1's version back: {:?}",
        std::fs::read_to_string(h.path(INSTALL))
    );
    assert_no_wavectl_files(h, NAME, INSTALL);
}

/// A user owns the install path's directory and loops on the old fixed temporary name:
/// the install is refused before any change; forced, root still never writes or
/// chmods the user's target (issue 13, case 5).
#[test]
fn a_user_racing_on_the_temporary_name_cannot_make_root_write_their_file() {
    let install = "/opt/app/tool";
    let w = workdir(
        fleet(1),
        NAME,
        "#!/bin/sh\nexit 0\n",
        &spec(NAME, install, "[1]", "1s", 1),
    );
    let h = w.fleet.host("h01");
    exec_ok(
        h,
        "useradd --no-create-home app && mkdir -p /opt/app && chown app:app /opt/app && \
         printf secret > /etc/victim && chmod 0600 /etc/victim",
    );
    for _ in 0..2 {
        exec_ok(
            h,
            "(setpriv --reuid=app --regid=app --clear-groups sh -c 'while :; do ln -sf /etc/victim /opt/app/tool.wavectl-new; done' </dev/null >/dev/null 2>&1 &)",
        );
    }
    assert!(eventually(Duration::from_secs(5), || std::fs::read_link(
        h.path("/opt/app/tool.wavectl-new")
    )
    .is_ok()));
    let victim = || {
        (
            std::fs::read(h.path("/etc/victim")).unwrap(),
            file_mode(&h.path("/etc/victim")),
        )
    };
    let before = victim();
    let (r, _) = apply(&w, NAME, &[]);
    assert_eq!(victim(), before, "root wrote or chmodded the user's file");
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(
        r.stdout
            .contains("/opt/app (above install_path /opt/app/tool) is not owned by root"),
        "{}",
        show(&r)
    );
    assert!(!h.path(STATE).exists() && !h.path(install).exists());
    // Forced: installed, and the user's file still untouched.
    let (r, _) = apply(&w, NAME, &["--force"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(
        std::fs::read_to_string(h.path(install)).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    exec_ok(h, "pkill -u app || true");
    assert_eq!(victim(), before, "root wrote or chmodded the user's file");
}

/// Shims on the host in /usr/local/sbin (first in root's PATH): `mv` onto a rollout's
/// `install_path` record takes 4 s (a slow disk at the moment a rollout claims its
/// install path), and, with `slow_dir`, `mkdir` of that state directory takes 4 s.
fn slow_claims(h: &LabHost, slow_dir: Option<&str>) {
    exec_ok(
        h,
        "printf '#!/bin/sh\\ncase \"$*\" in */install_path) sleep 4 ;; esac\\nexec /usr/bin/mv \"$@\"\\n' > /usr/local/sbin/mv && chmod 0755 /usr/local/sbin/mv",
    );
    if let Some(dir) = slow_dir {
        exec_ok(
            h,
            &format!("printf '#!/bin/sh\\ncase \"$*\" in *{dir}*) sleep 4 ;; esac\\nexec /usr/bin/mkdir \"$@\"\\n' > /usr/local/sbin/mkdir && chmod 0755 /usr/local/sbin/mkdir"),
        );
    }
}

/// Two rollouts, `rollout-a` and `rollout-b`, on one install path (over an original
/// file): a's apply starts, b's a second later. Returns both outcomes.
fn race_two_rollouts(w: &Workdir) -> (Run, Run) {
    let shared = "/usr/local/sbin/shared-check";
    for name in ["rollout-a", "rollout-b"] {
        add_rollout(
            w,
            name,
            &format!("#!/bin/sh\necho {name}\n"),
            &spec(name, shared, "[1]", "1s", 1),
        );
    }
    let a = apply_in_background(w, "rollout-a");
    std::thread::sleep(Duration::from_secs(1));
    let b = apply_in_background(w, "rollout-b");
    (finish(a), finish(b))
}

/// Two installs of different rollouts on one install path cannot both pass the
/// ownership check, however slow the host; after both are purged the original is back
/// (issue 13, case 6).
#[test]
fn two_rollouts_on_one_install_path_cannot_both_claim_it() {
    let w = workdir(fleet(1), NAME, "", &spec(NAME, INSTALL, "[1]", "1s", 1));
    let h = w.fleet.host("h01");
    let original = seed_original(h, "/usr/local/sbin/shared-check", "#!/bin/sh\n# vendor\n");
    slow_claims(h, None);
    let (a, b) = race_two_rollouts(&w);
    let codes = [a.code, b.code];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(2)),
        "both claimed the install path (or neither):\n{}\n{}",
        show(&a),
        show(&b)
    );
    let loser = if a.code == Some(2) { &a } else { &b };
    assert!(
        loser.stdout.contains("is owned by rollout"),
        "{}",
        show(loser)
    );
    exec_ok(h, "rm -f /usr/local/sbin/mv");
    for name in ["rollout-a", "rollout-b"] {
        let r = w.wavectl(&["purge", name, "--inventory", "inventory.toml", "--yes"]);
        assert_eq!(r.code, Some(0), "{}", show(&r));
    }
    assert_eq!(
        std::fs::read(h.path("/usr/local/sbin/shared-check")).unwrap(),
        original,
        "the original file is gone"
    );
}

/// A refused install leaves no state directory on a host the journal calls untouched:
/// here b is refused after a slow `mkdir` let a claim the path first (issue 13, case
/// 11a).
#[test]
fn a_refused_install_leaves_no_state_dir_behind() {
    let w = workdir(fleet(1), NAME, "", &spec(NAME, INSTALL, "[1]", "1s", 1));
    let h = w.fleet.host("h01");
    slow_claims(h, Some("/var/lib/wavectl/rollout-b"));
    let (a, b) = race_two_rollouts(&w);
    assert_eq!(a.code, Some(0), "{}", show(&a));
    assert_eq!(b.code, Some(2), "{}", show(&b));
    assert!(
        b.stdout.contains("owned by rollout rollout-a"),
        "{}",
        show(&b)
    );
    let st = w.wavectl(&["--json", "status"]);
    let b_run = st
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["rollout"] == "rollout-b")
        .expect("rollout-b's run");
    let b_run = b_run["run"].as_str().unwrap();
    let one = w.wavectl(&["--json", "status", b_run]);
    assert!(one.stdout.contains("\"untouched\""), "{}", show(&one));
    assert!(
        !h.path("/var/lib/wavectl/rollout-b").exists(),
        "a refused install left its state directory behind"
    );
}

/// While an install holds the rollout's state lock, a purge from another machine (its
/// own state directory) changes nothing and leaves the host pending (exit 4); once the
/// lock is free, reconcile finishes it (issue 13, case 7).
#[test]
fn a_removal_without_its_lock_changes_nothing() {
    let w = workdir(
        fleet(1),
        NAME,
        "#!/bin/sh\nexit 0\n",
        &spec(NAME, INSTALL, "[1]", "1s", 1),
    );
    let h = w.fleet.host("h01");
    let (r, _) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    exec_ok(
        h,
        &format!("(flock {STATE}/state.lock sleep 1701 </dev/null >/dev/null 2>&1 &)"),
    );
    assert!(eventually(Duration::from_secs(5), || pids(h, "sleep 1701")
        .len()
        == 1));
    let other = tempfile::tempdir().unwrap();
    let elsewhere = |args: &[&str]| {
        run(
            w.path(),
            wavectl_args(w.fleet.ssh_config(), other.path(), args),
            &[],
        )
    };
    let r = elsewhere(&["purge", NAME, "--inventory", "inventory.toml", "--yes"]);
    assert_eq!(r.code, Some(4), "{}", show(&r));
    assert!(r.stdout.contains("state.lock is held here"), "{}", show(&r));
    assert!(h.path(INSTALL).exists() && h.path(CRON).exists());
    assert!(h.path(&format!("{STATE}/manifest.json")).exists());
    exec_ok(h, "pkill -xf 'sleep 1701'");
    let r = elsewhere(&["reconcile", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(!h.path(INSTALL).exists());
    assert_no_wavectl_files(h, NAME, INSTALL);
}

/// A run's rollback finds no state directory (a purge took it while the install was
/// writing the activation): the cron file that run wrote goes all the same (issue 13,
/// case 7).
#[test]
fn a_rollback_without_a_state_dir_removes_the_cron_file_its_run_wrote() {
    let w = workdir(
        fleet(1),
        NAME,
        "#!/bin/sh\nexit 0\n",
        &spec(NAME, INSTALL, "[1]", "1s", 1),
    );
    let h = w.fleet.host("h01");
    let (r, run) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    exec_ok(h, &format!("rm -rf {STATE}"));
    assert!(h.path(CRON).exists());
    let r = w.wavectl(&["rollback", &run, "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(
        !h.path(CRON).exists(),
        "the cron line calling a missing wrapper stayed"
    );
}

/// A purge from another bastion (its own state directory) fences a running apply: the
/// host it reached refuses the apply's later install, the apply rolls back, and the
/// script never runs there (issue 13, case 8).
#[test]
fn a_purge_from_another_bastion_fences_a_running_apply() {
    let script = "#!/bin/sh\necho ran >> /var/tmp/fenced-ran\n";
    let w = workdir(
        fleet(2),
        NAME,
        script,
        &spec(NAME, INSTALL, "[1, \"100%\"]", "8s", 1),
    );
    let (h1, h2) = (w.fleet.host("h01"), w.fleet.host("h02"));
    let apply = apply_in_background(&w, NAME);
    assert!(
        eventually(Duration::from_secs(30), || h1
            .path(&format!("{STATE}/manifest.json"))
            .exists()),
        "wave 1 never installed"
    );
    let other = tempfile::tempdir().unwrap();
    let r = run(
        w.path(),
        wavectl_args(
            w.fleet.ssh_config(),
            other.path(),
            &[
                "purge",
                NAME,
                "--inventory",
                "inventory.toml",
                "--limit",
                "h02",
                "--yes",
            ],
        ),
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let r = finish(apply);
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(
        r.stderr.contains("was purged here by run") || r.stdout.contains("was purged here by run"),
        "{}",
        show(&r)
    );
    assert!(
        !h2.path("/var/tmp/fenced-ran").exists() && !h2.path(INSTALL).exists(),
        "the apply installed and ran the script on a host a purge had visited"
    );
    assert!(!h1.path(INSTALL).exists(), "wave 1 was not rolled back");
}

/// A script that leaves a detached child (`setsid … &`): purge kills it too, on a plain
/// host (the run's cgroup directory) and on a systemd host (its transient scope)
/// (issue 13, case 9).
#[test]
fn detached_children_die_with_their_run() {
    let script = "#!/bin/sh\nsetsid sleep 1901 </dev/null >/dev/null 2>&1 &\necho started\n";
    let fleet = Fleet::start_kinds(
        FleetOptions::numbered(2),
        vec![HostKind::Sshd, HostKind::Systemd],
    )
    .expect("start lab fleet");
    let w = workdir(
        fleet,
        NAME,
        script,
        &spec(NAME, INSTALL, "[\"100%\"]", "1s", 1),
    );
    let (r, _) = apply(&w, NAME, &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let mut cgroups = Vec::new();
    for (h, cgroup) in [
        (w.fleet.host("h01"), format!("/wavectl-{NAME}/run")),
        (w.fleet.host("h02"), format!("/wavectl-{NAME}_")),
    ] {
        let child = pids(h, "sleep 1901");
        assert_eq!(
            child.len(),
            1,
            "{}: the detached child does not run",
            h.name()
        );
        let lines = exec_ok(h, &format!("cat /proc/{}/cgroup", child[0]));
        cgroups.push((h.name().to_string(), cgroup, lines));
    }
    let r = w.wavectl(&["purge", NAME, "--inventory", "inventory.toml", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    for h in w.fleet.hosts() {
        assert!(
            pids(h, "sleep 1901").is_empty(),
            "{}: the detached child survived the purge",
            h.name()
        );
        assert_no_wavectl_files(h, NAME, INSTALL);
    }
    // How: the child was in the run's cgroup directory (h01), in its scope (h02).
    for (host, cgroup, lines) in cgroups {
        assert!(lines.contains(&cgroup), "{host}: {lines}");
    }
}
