//! What a removal may touch, run for real in a [`Sandbox`] (issue 13 on the host side):
//! runs in cgroups of their own (v1, v2) killed whole, detached children included; pid +
//! start time + boot id where no cgroup can be made; no symlink followed; parents others
//! may write refused; protected link targets; the state lock a removal needs; activation
//! files a run wrote; purge fences; the host-wide lock.

use std::time::Duration;

use super::sandbox::*;
use super::*;
use crate::spec::ActivationKind;

/// A script that leaves a detached child behind (its own session), then sleeps.
const DETACHING: &[u8] = b"#!/bin/sh\nsetsid sleep 1011 </dev/null >/dev/null 2>&1 &\nsleep 1012\n";
const WAIT: Duration = Duration::from_secs(5);

/// Pids of processes in the sandbox whose command line is exactly `cmd`.
fn pids(sb: &Sandbox, cmd: &str) -> Vec<u32> {
    let o = sb.sh("pgrep -xf \"$1\" || true", &[cmd]);
    text(&o.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Starts NAME's wrapper once in the background and waits until `cmd` runs.
fn start_and_wait(sb: &Sandbox, name: &str, cmd: &str) -> u32 {
    sb.ok(
        "(setsid \"/var/lib/wavectl/$1/run\" </dev/null >/dev/null 2>&1 &)",
        &[name],
    );
    assert!(eventually(|| pids(sb, cmd).len() == 1), "{cmd} never ran");
    pids(sb, cmd)[0]
}

/// The cgroup lines of a process (as the sandbox sees them).
fn cgroup_of(sb: &Sandbox, pid: u32) -> String {
    sb.ok("cat \"/proc/$1/cgroup\"", &[&pid.to_string()])
}

/// An unrelated long-running process (not ours): its pid.
fn victim(sb: &Sandbox, cmd_arg: &str) -> u32 {
    sb.ok(
        "(setsid sleep \"$1\" </dev/null >/dev/null 2>&1 &)",
        &[cmd_arg],
    );
    let cmd = format!("sleep {cmd_arg}");
    assert!(eventually(|| pids(sb, &cmd).len() == 1));
    pids(sb, &cmd)[0]
}

/// The process runs (a zombie does not: the sandbox's pid 1 reaps nobody).
fn alive(sb: &Sandbox, pid: u32) -> bool {
    sb.sh(
        "s=$(sed 's/.*) //' \"/proc/$1/stat\") && [ \"${s%% *}\" != Z ]",
        &[&pid.to_string()],
    )
    .status
    .success()
}

both_shells!(a_run_lives_in_a_cgroup_of_its_own_and_dies_whole);
/// Case 9 of issue 13: a detached child (`setsid … &`) of the script is in the run's
/// cgroup, under the sandbox's own (pid 1's) in the freezer hierarchy (v1) or the
/// unified one (v2), and a purge kills it with the rest.
fn a_run_lives_in_a_cgroup_of_its_own_and_dies_whole(shell: Shell) {
    for cg in [Cgroups::V1, Cgroups::V2] {
        let sb = Sandbox::with(shell, cg);
        let own = match cg {
            Cgroups::V1 => sb.freezer_cgroup(),
            _ => sb.unified_cgroup(),
        }
        .unwrap_or_else(|| panic!("{cg:?}: this machine has no such cgroup hierarchy"))
        .clone();
        let (name, path) = ("t-cg", "/opt/wv/detach");
        let h = sha(DETACHING);
        install_ok(&sb, &params(name, path, DETACHING, &h, WAIT));
        let script = start_and_wait(&sb, name, "sleep 1012");
        let child = pids(&sb, "sleep 1011");
        assert_eq!(child.len(), 1, "{cg:?}: the detached child is not there");
        for pid in [script, child[0]] {
            let lines = cgroup_of(&sb, pid);
            assert!(
                lines.contains("/wavectl-t-cg/run"),
                "{cg:?}: {pid} not in a run cgroup: {lines}"
            );
        }
        let runs: Vec<_> = std::fs::read_dir(own.join("wavectl-t-cg"))
            .unwrap_or_else(|e| panic!("{cg:?}: no wavectl-t-cg under {}: {e}", own.display()))
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("run"))
            .collect();
        assert_eq!(runs.len(), 1, "{cg:?}");
        // The script ends; the detached child stays in the run's cgroup.
        sb.ok("kill \"$1\"", &[&script.to_string()]);
        assert!(eventually(|| pids(&sb, "sleep 1012").is_empty()));
        assert!(eventually(|| !alive(&sb, script)));
        assert_eq!(pids(&sb, "sleep 1011"), child, "{cg:?}");
        let r = remove_on(&sb, name, None, RemoveScope::All(None));
        assert!(r.clean && r.killed >= 1, "{cg:?}: {r:?}");
        assert!(pids(&sb, "sleep 1011").is_empty(), "{cg:?}: child survived");
        assert!(!own.join("wavectl-t-cg").exists(), "{cg:?}: cgroup left");
    }
}

both_shells!(without_cgroups_a_run_is_known_by_pid_start_time_and_boot_id);
/// Case 1 of issue 13 where no cgroup can be made: the wrapper's record is `BOOT PID
/// START`; a record of another boot is discarded unread (the guard at boot and a purge
/// kill nothing by it), one whose start time is not the process's names nobody, and the
/// run itself (its process group) is killed by a true one.
fn without_cgroups_a_run_is_known_by_pid_start_time_and_boot_id(shell: Shell) {
    let sb = Sandbox::with(shell, Cgroups::None);
    let (name, path) = ("t-pid", "/opt/wv/pid");
    let body = b"#!/bin/sh\nsleep 1021\n";
    let h = sha(body);
    install_ok(&sb, &params(name, path, body, &h, WAIT));
    let script = start_and_wait(&sb, name, "sleep 1021");
    assert!(!cgroup_of(&sb, script).contains("wavectl-t-pid"));
    let boot = sb.ok("cat /proc/sys/kernel/random/boot_id", &[]);
    let rec = sb.ok("cat /var/lib/wavectl/t-pid/pid", &[]);
    let f: Vec<&str> = rec.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{rec}");
    assert_eq!(f[0], boot.trim());
    let timeout_pid = f[1];
    assert!(state_of(&sb, name, "run-1").running);
    // The run ends; an unrelated process takes a pid, and the record names it.
    sb.ok("kill -9 \"$1\"", &[&format!("-{timeout_pid}")]);
    assert!(eventually(|| !state_of(&sb, name, "run-1").running));
    let v = victim(&sb, "1022");
    let start = sb.ok(
        "set -- $(sed 's/.*) //' \"/proc/$1/stat\"); echo \"${20}\"",
        &[&v.to_string()],
    );
    let forge = |b: &str, s: &str| {
        sb.ok(
            "printf '%s %s %s\\n' \"$2\" \"$3\" \"$4\" > \"/var/lib/wavectl/$1/pid\"",
            &[name, b, &v.to_string(), s.trim()],
        );
    };
    // Of another boot: the boot guard (in probation) kills nothing by it.
    forge("00000000-0000-0000-0000-000000000000", &start);
    assert!(!state_of(&sb, name, "run-1").running);
    sb.ok(
        "sed -i 's/^\"state\": \"[a-z]*\",$/\"state\": \"probation\",/' /var/lib/wavectl/t-pid/manifest.json && /var/lib/wavectl/t-pid/run guard boot",
        &[],
    );
    assert!(alive(&sb, v), "the boot guard killed an unrelated process");
    assert!(!sb.exists(path) && !sb.exists("/var/lib/wavectl/t-pid"));
    // Of this boot but another start time, then of another boot: a purge kills nothing.
    install_ok(&sb, &params(name, path, body, &h, WAIT));
    forge(boot.trim(), "1");
    assert!(!state_of(&sb, name, "run-1").running);
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean && r.killed == 0, "{r:?}");
    assert!(alive(&sb, v), "a purge killed an unrelated process");
    install_ok(&sb, &params(name, path, body, &h, WAIT));
    forge("00000000-0000-0000-0000-000000000000", &start);
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean && r.killed == 0, "{r:?}");
    assert!(alive(&sb, v));
    // A true record (the victim is taken for the run): its whole process group goes.
    install_ok(&sb, &params(name, path, body, &h, WAIT));
    forge(boot.trim(), &start);
    assert!(state_of(&sb, name, "run-1").running);
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean && r.killed >= 1, "{r:?}");
    assert!(eventually(|| !alive(&sb, v)));
}

both_shells!(install_paths_under_directories_others_may_write_need_force);
/// Case 5 of issue 13 on the host: an install_path whose directory (or one above it, or
/// one a link on the way leads through) is not root's, or is writable by group or others,
/// is refused before anything changes, unless forced; the script is written in a private
/// directory, never through the old fixed temporary name.
fn install_paths_under_directories_others_may_write_need_force(shell: Shell) {
    let sb = Sandbox::new(shell);
    let h = sha(b"x");
    sb.ok(
        "mkdir -p /opt/wv/user/sub /opt/wv/group /opt/wv/ok && chown 1000:1000 /opt/wv/user && \
         chmod 0775 /opt/wv/group && ln -s /opt/wv/user/sub /opt/wv/ok/via",
        &[],
    );
    for (path, bad) in [
        ("/opt/wv/user/tool", "/opt/wv/user"),
        ("/opt/wv/user/sub/tool", "/opt/wv/user"),
        ("/opt/wv/user/new/deeper/tool", "/opt/wv/user"),
        ("/opt/wv/group/tool", "/opt/wv/group"),
        ("/opt/wv/ok/via/tool", "/opt/wv/user"),
    ] {
        let p = params("t-parents", path, b"x", &h, WAIT);
        match install_result(&sb, &p) {
            InstallResult::Refused(r) => assert!(
                r.starts_with(&format!("{bad} (above install_path {path}) is not owned by root or is writable by group or others")) && r.ends_with("or pass --force"),
                "{path}: {r}"
            ),
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(state_files(&sb, "t-parents"), "", "{path}");
        assert!(!sb.exists(path));
    }
    assert_eq!(
        sb.ok("ls -A /opt/wv/user /opt/wv/user/sub /opt/wv/group", &[]),
        "/opt/wv/group:\n\n/opt/wv/user:\nsub\n\n/opt/wv/user/sub:\n"
    );
    // A user loops on the old fixed temporary names (the install's, the restore's):
    // forced, neither an install nor the restore of the original uses them.
    sb.ok(
        "touch /opt/wv/victim && chmod 0600 /opt/wv/victim && printf orig > /opt/wv/user/tool",
        &[],
    );
    sb.ok(
        "(setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'while :; do ln -sf /opt/wv/victim /opt/wv/user/tool.wavectl-new; ln -sf /opt/wv/victim /opt/wv/user/tool.wavectl-restore; done 2>/dev/null' </dev/null >/dev/null 2>&1 &)",
        &[],
    );
    assert!(eventually(|| sb
        .ok("readlink /opt/wv/user/tool.wavectl-new || true", &[])
        .starts_with("/opt/wv/victim")));
    let mut p = params("t-parents", "/opt/wv/user/tool", b"x", &h, WAIT);
    p.force = true;
    for _ in 0..3 {
        install_ok(&sb, &p);
        assert_eq!(sb.ok("cat /opt/wv/user/tool", &[]), "x");
        let r = remove_on(&sb, "t-parents", None, RemoveScope::All(None));
        assert!(r.clean && r.restored, "{r:?}");
        assert_eq!(sb.ok("cat /opt/wv/user/tool", &[]), "orig");
    }
    sb.ok("pkill -u 1000 || true", &[]);
    assert_eq!(
        sb.ok("stat -c '%a %s' /opt/wv/victim", &[]),
        "600 0\n",
        "root wrote or chmodded the user's file"
    );
}

both_shells!(links_that_lead_to_protected_paths_need_force);
/// Case 2 of issue 13 on the host: a link at install_path (or `purge --path`) to a
/// protected path, or a directory on the way that resolves into a protected tree, is
/// refused unless forced; forced, the link itself is replaced and comes back, its target
/// untouched.
fn links_that_lead_to_protected_paths_need_force(shell: Shell) {
    let sb = Sandbox::new(shell);
    let h = sha(b"x");
    let sshd = sb.ok("sha256sum /usr/sbin/sshd", &[]);
    sb.ok(
        "ln -s /usr/sbin/sshd /opt/wv/sshd-link && ln -s /etc/ssh /opt/wv/etc-ssh && \
         ln -s ../../usr/bin/timeout /opt/wv/rel-timeout",
        &[],
    );
    for (path, to) in [
        ("/opt/wv/sshd-link", "/usr/sbin/sshd"),
        ("/opt/wv/etc-ssh/tool", "/etc/ssh/tool"),
        ("/opt/wv/rel-timeout", "/usr/bin/timeout"),
    ] {
        match install_result(&sb, &params("t-prot", path, b"x", &h, WAIT)) {
            InstallResult::Refused(r) => assert_eq!(
                r,
                format!("install_path {path} leads to {to}, a path wavectl protects (what the host needs to stay reachable, bootable and cleanable): choose another install_path, or pass --force"),
            ),
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(state_files(&sb, "t-prot"), "");
        let o = sb.run(&purge_path(path, WAIT, false));
        let r = parse_purge_path(&text(&o.stdout));
        assert!(
            !r.clean
                && r.detail
                    .contains(&format!("it leads to {to}, a path wavectl protects")),
            "{path}: {r:?}"
        );
    }
    assert!(sb.exists("/opt/wv/sshd-link") && !sb.exists("/etc/ssh/tool"));
    let mut p = params("t-prot", "/opt/wv/sshd-link", b"x", &h, WAIT);
    p.force = true;
    install_ok(&sb, &p);
    assert_eq!(sb.ok("cat /opt/wv/sshd-link", &[]), "x");
    assert!(remove_on(&sb, "t-prot", None, RemoveScope::All(None)).clean);
    assert_eq!(sb.ok("readlink /opt/wv/sshd-link", &[]), "/usr/sbin/sshd\n");
    assert_eq!(sb.ok("sha256sum /usr/sbin/sshd", &[]), sshd);
}

both_shells!(purge_path_of_a_symlink_spares_what_runs_its_target);
/// Case 2 of issue 13 on the host: `purge --path LINK` kills what runs LINK (its script
/// argument is LINK) and nothing that runs what LINK leads to (a binary or a script);
/// a cron file that is itself a link is replaced by the edited file, its target kept.
fn purge_path_of_a_symlink_spares_what_runs_its_target(shell: Shell) {
    let sb = Sandbox::new(shell);
    sb.ok(
        "mkdir -p /opt/vendor && cp /usr/bin/sleep /opt/vendor/daemon && \
         printf '#!/bin/sh\\nsleep 1032\\n' > /opt/vendor/check.sh && chmod 0755 /opt/vendor/check.sh && \
         ln -s /opt/vendor/daemon /opt/wv/daemon-link && ln -s /opt/vendor/check.sh /opt/wv/check-link && \
         printf '* * * * * root /opt/wv/check-link\\n* * * * * root /opt/vendor/check.sh\\n' > /opt/vendor/cron && \
         ln -s /opt/vendor/cron /etc/cron.d/vendor",
        &[],
    );
    // The target binary runs, by its own path and through the link; the target script
    // by its own path (spared) and through the link (killed).
    sb.ok(
        "(/opt/vendor/daemon 1031 </dev/null >/dev/null 2>&1 &)",
        &[],
    );
    sb.ok(
        "(/opt/wv/daemon-link 1033 </dev/null >/dev/null 2>&1 &)",
        &[],
    );
    sb.ok("(/opt/vendor/check.sh </dev/null >/dev/null 2>&1 &)", &[]);
    assert!(eventually(|| pids(&sb, "/opt/vendor/daemon 1031").len()
        == 1
        && pids(&sb, "/opt/wv/daemon-link 1033").len() == 1
        && pids(&sb, "sleep 1032").len() == 1));
    let spared = [
        pids(&sb, "/opt/vendor/daemon 1031")[0],
        pids(&sb, "/opt/wv/daemon-link 1033")[0],
        pids(&sb, "/bin/sh /opt/vendor/check.sh")[0],
    ];
    let o = sb.run(&purge_path("/opt/wv/daemon-link", WAIT, false));
    let r = parse_purge_path(&text(&o.stdout));
    assert!(r.clean && r.removed && r.killed == 0, "{r:?}");
    for p in spared {
        assert!(alive(&sb, p), "{p} was killed: {r:?}");
    }
    assert!(!sb.exists("/opt/wv/daemon-link") && sb.exists("/opt/vendor/daemon"));
    // Through the script link: that copy goes, the one run by its own path stays.
    sb.ok("(/opt/wv/check-link </dev/null >/dev/null 2>&1 &)", &[]);
    assert!(eventually(|| pids(&sb, "sleep 1032").len() == 2));
    let through = pids(&sb, "/bin/sh /opt/wv/check-link");
    assert_eq!(through.len(), 1);
    let o = sb.run(&purge_path("/opt/wv/check-link", WAIT, false));
    let r = parse_purge_path(&text(&o.stdout));
    assert!(r.clean && r.removed && r.killed == 2, "{r:?}");
    assert!(!alive(&sb, through[0]));
    for p in spared {
        assert!(alive(&sb, p), "{p} was killed: {r:?}");
    }
    // The linked cron file: now a file of its own without the line; the target as it was.
    assert_eq!(
        sb.ok("[ -L /etc/cron.d/vendor ] || cat /etc/cron.d/vendor", &[]),
        "#wavectl-purged# * * * * * root /opt/wv/check-link\n* * * * * root /opt/vendor/check.sh\n"
    );
    assert_eq!(
        sb.ok("cat /opt/vendor/cron", &[]),
        "* * * * * root /opt/wv/check-link\n* * * * * root /opt/vendor/check.sh\n"
    );
}

both_shells!(a_removal_without_its_lock_changes_nothing);
/// Case 7 of issue 13 on the host: while another holds NAME's state lock, a purge
/// changes nothing (but leaves its fence) and is not clean; once free, it removes.
fn a_removal_without_its_lock_changes_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-locked", "/opt/wv/locked");
    let h = sha(b"x");
    install_ok(&sb, &params(name, path, b"x", &h, WAIT));
    let before = state_files(&sb, name);
    sb.ok(
        "(flock /var/lib/wavectl/t-locked/state.lock sleep 1041 </dev/null >/dev/null 2>&1 &)",
        &[],
    );
    assert!(eventually(|| pids(&sb, "sleep 1041").len() == 1));
    let fence = "20300101T000000Z-purge-t-locked-0001";
    let o = sb.run(&remove(
        name,
        None,
        RemoveScope::All(Some(fence)),
        Duration::from_secs(1),
    ));
    let r = parse_remove(&text(&o.stdout));
    assert!(
        !r.clean && r.killed == 0 && r.found.is_empty() && r.removed.is_empty(),
        "{r:?}"
    );
    assert!(
        r.detail.contains("state.lock is held here") && r.detail.contains("nothing was removed"),
        "{r:?}"
    );
    assert_eq!(state_files(&sb, name), before);
    assert!(sb.exists(path));
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/.fences/t-locked", &[]),
        format!("{fence}\n")
    );
    sb.ok("pkill -xf 'sleep 1041'", &[]);
    let o = sb.run(&remove(name, None, RemoveScope::All(Some(fence)), WAIT));
    let r = parse_remove(&text(&o.stdout));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(path) && state_files(&sb, name).is_empty());
}

both_shells!(a_rollback_without_a_state_dir_removes_the_activation_its_run_wrote);
/// Case 7 of issue 13 on the host: the state directory went (a purge elsewhere) while the
/// activation files stayed: a removal of the run that wrote them (named on their first
/// line) removes them; a removal of another run does not.
fn a_rollback_without_a_state_dir_removes_the_activation_its_run_wrote(shell: Shell) {
    let sb = Sandbox::new(shell);
    let h = sha(b"x");
    for kind in [ActivationKind::Cron, ActivationKind::SystemdTimer] {
        let (name, path) = ("t-act", "/opt/wv/act");
        let mut p = params(name, path, b"x", &h, WAIT);
        p.activation = kind;
        p.schedule = if kind == ActivationKind::Cron {
            "*/5 * * * *"
        } else {
            "hourly"
        };
        install_ok(&sb, &p);
        sb.ok("rm -rf /var/lib/wavectl/t-act", &[]);
        let files = state_files(&sb, name);
        assert!(files.contains("wavectl-t-act"), "{kind:?}: {files}");
        let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-2"));
        assert!(r.clean && r.removed.is_empty(), "{kind:?}: {r:?}");
        assert_eq!(state_files(&sb, name), files, "{kind:?}");
        let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-1"));
        assert!(r.clean && !r.removed.is_empty(), "{kind:?}: {r:?}");
        assert_eq!(state_files(&sb, name), "", "{kind:?}");
        sb.ok("rm -f /opt/wv/act", &[]);
    }
}

both_shells!(a_purge_fences_installs_of_runs_that_began_before_it);
/// Case 8 of issue 13 on the host: a purge leaves a fence (its run id, which begins with
/// its start) even where nothing of NAME is; an install by a run that began before it,
/// in the same second, or at an unknown time refuses and leaves nothing; a later run
/// installs; an older purge's retry never moves the fence back.
fn a_purge_fences_installs_of_runs_that_began_before_it(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-fence", "/opt/wv/fence");
    let h = sha(b"x");
    let purge = "20300102T101010Z-purge-t-fence-abcd";
    assert!(remove_on(&sb, name, None, RemoveScope::All(Some(purge))).clean);
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/.fences/t-fence", &[]),
        format!("{purge}\n")
    );
    for run in [
        "20300102T101009Z-t-fence-0001",
        "20300102T101010Z-t-fence-0002",
        "run-1",
    ] {
        let mut p = params(name, path, b"x", &h, WAIT);
        p.run_id = run;
        match install_result(&sb, &p) {
            InstallResult::Refused(r) => assert_eq!(
                r,
                format!("t-fence was purged here by run {purge}, which began after run {run}: this run may not install it again (start a new run)")
            ),
            other => panic!("{run}: {other:?}"),
        }
        assert_eq!(state_files(&sb, name), "", "{run}");
        assert!(!sb.exists(path));
    }
    let older = "20300101T000000Z-purge-t-fence-0000";
    assert!(remove_on(&sb, name, None, RemoveScope::All(Some(older))).clean);
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/.fences/t-fence", &[]),
        format!("{purge}\n")
    );
    let mut p = params(name, path, b"x", &h, WAIT);
    p.run_id = "20300102T101011Z-t-fence-0003";
    install_ok(&sb, &p);
    assert_eq!(sb.ok("cat \"$1\"", &[path]), "x");
}

both_shells!(installs_of_two_rollouts_wait_for_the_host_lock);
/// Case 6 of issue 13 on the host: who owns an install_path is decided under the
/// host-wide lock; an install waits for it (changing nothing meanwhile) and, once the
/// other rollout's claim is in, refuses without leaving a state directory.
fn installs_of_two_rollouts_wait_for_the_host_lock(shell: Shell) {
    let sb = Sandbox::new(shell);
    let h = sha(b"x");
    sb.ok(
        "(flock /run/wavectl.lock sleep 1061 </dev/null >/dev/null 2>&1 &)",
        &[],
    );
    assert!(eventually(|| pids(&sb, "sleep 1061").len() == 1));
    let line = install(&params("t-lock-b", "/opt/wv/shared", b"x", &h, WAIT)).line;
    sb.ok("(sh -c \"$1\" > /opt/wv/b.out 2>&1 </dev/null &)", &[&line]);
    // B waits for the lock: nothing of it is on the host yet.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!sb.exists("/opt/wv/b.out") || sb.ok("cat /opt/wv/b.out", &[]).is_empty());
    assert_eq!(state_files(&sb, "t-lock-b"), "");
    // A's claim goes in first (as if it held the lock), then the lock is free.
    sb.ok(
        "mkdir -p /var/lib/wavectl/t-lock-a && printf /opt/wv/shared > /var/lib/wavectl/t-lock-a/install_path",
        &[],
    );
    sb.ok("pkill -xf 'sleep 1061'", &[]);
    assert!(eventually(|| sb
        .ok("cat /opt/wv/b.out", &[])
        .contains("wavectl-refused")));
    let out = sb.ok("cat /opt/wv/b.out", &[]);
    assert!(
        matches!(parse_install(Some(73), &out), InstallResult::Refused(r) if r.contains("owned by rollout t-lock-a")),
        "{out}"
    );
    assert_eq!(state_files(&sb, "t-lock-b"), "");
    assert!(!sb.exists("/opt/wv/shared"));
}
