//! Host-side behaviour of the generated commands, run for real in a [`Sandbox`]:
//! install/backup, the wrapper, timeouts, removal, the boot guard, probe, hostile input.
//! Versions, leases and refusals are in `version_tests.rs`.

use std::time::Duration;

use super::sandbox::*;
use super::*;
use crate::spec::{ActivationKind, Check};

const SLEEPER: &[u8] = b"#!/bin/sh\necho started\nsleep 300\n";

both_shells!(install_run_confirm_remove_restores_the_original);
fn install_run_confirm_remove_restores_the_original(shell: Shell) {
    let sb = Sandbox::new(shell);
    let path = "/opt/wv/bin/tool";
    sb.ok(
        "mkdir -p /opt/wv/bin && printf 'original\\0\\377\\n' > \"$1\" && chmod 0640 \"$1\"",
        &[path],
    );
    let before = file_facts(&sb, path);
    let body = b"#!/bin/sh\necho hello\nexit 3\n";
    let h = sha(body);
    let p = params("t-basic", path, body, &h, Duration::from_secs(5));
    assert_eq!(install_ok(&sb, &p), (true, None));
    let f = state_of(&sb, "t-basic", "run-1");
    let m = f.manifest.unwrap();
    assert_eq!((m.state, m.backup), (ManifestState::Probation, true));
    assert_eq!(
        (m.run_id.as_str(), m.lease_secs, m.prev),
        ("run-1", 0, None)
    );
    assert_eq!((f.txn, f.prev, f.runs, f.running), (None, None, 0, false));
    assert_eq!(sb.ok("stat -c %a \"$1\"", &[path]).trim(), "755");
    let cron = sb.ok(
        "cat /etc/cron.d/wavectl-t-basic; stat -c %a /etc/cron.d/wavectl-t-basic",
        &[],
    );
    assert!(cron.contains("\nSHELL=/bin/sh\n"), "{cron}");
    assert!(
        cron.contains("\n*/5 * * * * root /var/lib/wavectl/t-basic/run\n"),
        "{cron}"
    );
    assert!(
        cron.ends_with(
            "\n* * * * * root /var/lib/wavectl/t-basic/run guard\n\
             @reboot root /var/lib/wavectl/t-basic/run guard boot\n644\n"
        ),
        "{cron}"
    );

    let o = sb.run(&run_once("t-basic", Duration::from_secs(5)));
    assert_eq!(o.status.code(), Some(3));
    let runs = sb.ok("cat /var/lib/wavectl/t-basic/runs.log", &[]);
    assert!(
        runs.trim_end().ends_with(" 3 run-1") && runs.lines().count() == 1,
        "{runs}"
    );
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/t-basic/last.log", &[]),
        "hello\n"
    );
    assert_eq!(state_of(&sb, "t-basic", "run-1").runs, 1);
    assert_eq!(state_of(&sb, "t-basic", "run-0").runs, 0);

    // The same run again (a resumed controller): idempotent, the backup kept.
    assert_eq!(install_ok(&sb, &p), (true, None));
    assert_eq!(
        confirm_on(&sb, "t-basic", "run-1"),
        ConfirmResult::Confirmed
    );
    assert_eq!(
        confirm_on(&sb, "t-basic", "run-1"),
        ConfirmResult::Confirmed
    );
    assert_eq!(install_ok(&sb, &p), (true, None));
    let r = parse_probe(
        &text(
            &sb.run(&probe(
                "t-basic",
                "run-1",
                &[],
                Duration::from_secs(5),
                Duration::ZERO,
            ))
            .stdout,
        ),
        &[],
    )
    .unwrap();
    assert_eq!(r.manifest_state, Some(ManifestState::Confirmed));
    assert_eq!(r.owner.as_deref(), Some("run-1"));
    assert_eq!(r.runs.len(), 1);

    let r = remove_on(&sb, "t-basic", Some(path), RemoveScope::Run("run-1"));
    assert!(r.clean && r.restored, "{r:?}");
    assert!(
        r.found.contains(&"/var/lib/wavectl/t-basic".to_string()),
        "{r:?}"
    );
    assert_eq!(file_facts(&sb, path), before);
    assert_eq!(state_files(&sb, "t-basic"), "");
    // Idempotent, and without a spec (install path from the host: gone, so none).
    let r = remove_on(&sb, "t-basic", Some(path), RemoveScope::Run("run-1"));
    assert!(
        r.clean && r.found.is_empty() && r.killed == 0 && !r.restored && r.other.is_none(),
        "{r:?}"
    );
    let r = remove_on(&sb, "t-basic", None, RemoveScope::All(None));
    assert!(r.clean && r.found.is_empty(), "{r:?}");
    assert_eq!(file_facts(&sb, path), before);
}

both_shells!(wrapper_records_timeouts_and_refuses_when_revoked);
fn wrapper_records_timeouts_and_refuses_when_revoked(shell: Shell) {
    let sb = Sandbox::new(shell);
    let path = "/opt/wv/slow";
    let h = sha(SLEEPER);
    let p = params("t-slow", path, SLEEPER, &h, Duration::from_secs(1));
    assert_eq!(install_ok(&sb, &p), (false, None));
    let o = sb.run(&run_once("t-slow", Duration::from_secs(1)));
    assert_eq!(o.status.code(), Some(124));
    let r = parse_probe(
        &text(
            &sb.run(&probe(
                "t-slow",
                "run-1",
                &[],
                Duration::from_secs(4),
                Duration::ZERO,
            ))
            .stdout,
        ),
        &[],
    )
    .unwrap();
    assert_eq!(r.runs.len(), 1);
    assert!(
        r.runs[0].timed_out() && r.runs[0].end > r.runs[0].start,
        "{r:?}"
    );
    assert!(!r.running);

    sb.ok(
        "sed -i 's/^\"state\": \"probation\",$/\"state\": \"revoked\",/' /var/lib/wavectl/t-slow/manifest.json",
        &[],
    );
    let o = sb.run(&run_once("t-slow", Duration::from_secs(1)));
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("revoked"), "{}", text(&o.stderr));
    assert_eq!(
        sb.ok("wc -l < /var/lib/wavectl/t-slow/runs.log", &[])
            .trim(),
        "1"
    );
    // A revoked install is not confirmed, and not started.
    assert!(matches!(
        confirm_on(&sb, "t-slow", "run-1"),
        ConfirmResult::Refused(r) if r.contains("being removed")
    ));
    assert_eq!(
        sb.run(&start_run("t-slow", "run-1")).status.code(),
        Some(78)
    );
    // Missing manifest: refused too.
    sb.ok("rm /var/lib/wavectl/t-slow/manifest.json", &[]);
    assert_eq!(
        sb.run(&run_once("t-slow", Duration::from_secs(1)))
            .status
            .code(),
        Some(78)
    );
    assert!(matches!(
        confirm_on(&sb, "t-slow", "run-1"),
        ConfirmResult::Refused(r) if r.contains("not installed")
    ));
}

both_shells!(the_wrapper_caps_its_logs_before_a_run);
fn the_wrapper_caps_its_logs_before_a_run(shell: Shell) {
    let sb = Sandbox::new(shell);
    let body = b"#!/bin/sh\necho once\n";
    let h = sha(body);
    install_ok(
        &sb,
        &params("t-caps", "/opt/wv/caps", body, &h, Duration::from_secs(5)),
    );
    let dir = "/var/lib/wavectl/t-caps";
    // Under the caps: nothing is cut.
    sb.ok(
        "seq 1 4000 | sed 's/$/ 0 0 run-0/' > \"$1/runs.log\" && head -c 200000 /dev/zero | tr '\\0' x > \"$1/last.log\"",
        &[dir],
    );
    assert_eq!(
        sb.run(&run_once("t-caps", Duration::from_secs(5)))
            .status
            .code(),
        Some(0)
    );
    let sizes = |sb: &Sandbox| -> (usize, usize) {
        let o = sb.ok("wc -l < \"$1/runs.log\"; wc -c < \"$1/last.log\"", &[dir]);
        let v: Vec<usize> = o.split_whitespace().map(|n| n.parse().unwrap()).collect();
        (v[0], v[1])
    };
    assert_eq!(sizes(&sb), (4001, 200_005));
    // Over them: runs.log keeps its last 2048 lines, last.log its last 128 KiB, then
    // the run adds its own.
    sb.ok(
        "seq 1 5000 | sed 's/$/ 0 0 run-0/' > \"$1/runs.log\" && head -c 300000 /dev/zero | tr '\\0' x > \"$1/last.log\"",
        &[dir],
    );
    assert_eq!(
        sb.run(&run_once("t-caps", Duration::from_secs(5)))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(sizes(&sb), (2049, 131_072 + 5));
    let last = sb.ok("tail -n 1 \"$1/runs.log\"", &[dir]);
    assert!(last.trim_end().ends_with(" 0 run-1"), "{last}");
}

both_shells!(start_run_only_for_the_run_the_host_holds);
fn start_run_only_for_the_run_the_host_holds(shell: Shell) {
    let sb = Sandbox::new(shell);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    install_ok(
        &sb,
        &params("t-start", "/opt/wv/st", body, &h, Duration::from_secs(5)),
    );
    let o = sb.run(&start_run("t-start", "run-0"));
    assert_eq!(o.status.code(), Some(78), "{}", text(&o.stderr));
    let o = sb.run(&start_run("t-start", "run-1"));
    assert!(text(&o.stdout).starts_with("wavectl-start ok pid="));
    assert!(
        eventually(|| state_of(&sb, "t-start", "run-1").runs == 1),
        "the started run never finished"
    );
}

both_shells!(settle_waits_for_a_change_in_progress_and_sees_the_state_whole);
/// Settle reads NAME's state under its lock: a guard's revert or a removal half done is
/// not read as "no manifest" (CI once saw the guard's revert read half done).
fn settle_waits_for_a_change_in_progress_and_sees_the_state_whole(shell: Shell) {
    let sb = Sandbox::new(shell);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    install_ok(
        &sb,
        &params("t-settle", "/opt/wv/se", body, &h, Duration::from_secs(5)),
    );
    // A writer holding the state lock with the manifest moved away until told to go on.
    sb.ok(
        "cd /var/lib/wavectl/t-settle || exit 1
         ( exec </dev/null >/dev/null 2>&1; flock -x state.lock sh -c 'mv manifest.json m.hold; \
             while [ ! -e go ]; do sleep 0.05; done; mv m.hold manifest.json' ) &",
        &[],
    );
    assert!(
        eventually(|| sb.exists("/var/lib/wavectl/t-settle/m.hold")),
        "the writer never took the lock"
    );
    let f = std::thread::scope(|s| {
        let asked = s.spawn(|| state_of(&sb, "t-settle", "run-1"));
        std::thread::sleep(Duration::from_millis(500));
        assert!(!asked.is_finished(), "settle read the state under a writer");
        sb.ok("touch /var/lib/wavectl/t-settle/go", &[]);
        asked.join().unwrap()
    });
    let m = f.manifest.expect("settle saw the state half changed");
    assert_eq!(
        (m.run_id.as_str(), m.state),
        ("run-1", ManifestState::Probation)
    );
}

both_shells!(an_install_with_start_starts_the_first_run_detached_and_without_its_lock);
fn an_install_with_start_starts_the_first_run_detached_and_without_its_lock(shell: Shell) {
    let sb = Sandbox::new(shell);
    // A run that lasts longer than confirm waits for the state lock (10 s).
    let body = b"#!/bin/sh\nsleep 30\n";
    let h = sha(body);
    let mut p = params("t-istart", "/opt/wv/is", body, &h, Duration::from_secs(60));
    p.start = true;
    let started = std::time::Instant::now();
    assert!(matches!(
        install_result(&sb, &p),
        InstallResult::Installed { started: true, .. }
    ));
    // The install did not wait for the run.
    assert!(started.elapsed() < Duration::from_secs(25));
    assert!(
        eventually(|| state_of(&sb, "t-istart", "run-1").running),
        "the first run never showed up as running"
    );
    // The run does not hold the install's state lock: a confirm gets it at once.
    assert_eq!(
        confirm_on(&sb, "t-istart", "run-1"),
        ConfirmResult::Confirmed
    );
    // Without `start` nothing runs.
    let mut q = params(
        "t-inostart",
        "/opt/wv/ns",
        body,
        &h,
        Duration::from_secs(60),
    );
    q.start = false;
    assert!(matches!(
        install_result(&sb, &q),
        InstallResult::Installed { started: false, .. }
    ));
    std::thread::sleep(Duration::from_millis(500));
    let r = state_of(&sb, "t-inostart", "run-1");
    assert!(!r.running && r.runs == 0, "{r:?}");
}

both_shells!(remove_kills_a_running_copy);
fn remove_kills_a_running_copy(shell: Shell) {
    let sb = Sandbox::new(shell);
    let path = "/opt/wv/sleeper";
    let h = sha(SLEEPER);
    install_ok(
        &sb,
        &params("t-kill", path, SLEEPER, &h, Duration::from_secs(600)),
    );
    // A second copy started by hand, not through the wrapper.
    sb.ok(
        "/var/lib/wavectl/t-kill/run >/dev/null 2>&1 & \"$1\" >/dev/null 2>&1 &",
        &[path],
    );
    assert!(
        eventually(|| state_of(&sb, "t-kill", "run-1").running),
        "the wrapper never started"
    );
    let r = remove_on(&sb, "t-kill", None, RemoveScope::Run("run-1"));
    assert!(r.clean, "{r:?}");
    // wrapper, timeout, sh running the script, its sleep, the hand-started copy (sh + sleep).
    assert!(r.killed >= 4, "{r:?}");
    assert!(r.removed.contains(&path.to_string()), "{r:?}");
    let left = sb.ok("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 30[0]' || true", &[]);
    assert_eq!(left.trim(), "0");
    assert!(!sb.exists(path));
    assert_eq!(state_files(&sb, "t-kill"), "");
}

both_shells!(boot_guard_reverts_probation_and_keeps_confirmed);
fn boot_guard_reverts_probation_and_keeps_confirmed(shell: Shell) {
    let sb = Sandbox::new(shell);
    sb.ok("printf 'mine\\n' > /opt/wv/a", &[]);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    let mut pa = params("t-guard-a", "/opt/wv/a", body, &h, Duration::from_secs(5));
    // A lease far in the future: the boot guard reverts probation whatever the lease.
    pa.lease = Duration::from_secs(3600);
    install_ok(&sb, &pa);
    install_ok(
        &sb,
        &params("t-guard-b", "/opt/wv/b", body, &h, Duration::from_secs(5)),
    );
    assert_eq!(
        confirm_on(&sb, "t-guard-b", "run-1"),
        ConfirmResult::Confirmed
    );
    // A probation run after a reboot is refused: fake another boot id.
    sb.ok("echo other-boot > /var/lib/wavectl/t-guard-a/boot_id", &[]);
    let o = sb.run(&run_once("t-guard-a", Duration::from_secs(5)));
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("rebooted"), "{}", text(&o.stderr));
    let lease = sb.ok("cat /var/lib/wavectl/t-guard-a/lease", &[]);

    // The periodic guard leaves an unexpired lease alone.
    sb.ok("/var/lib/wavectl/t-guard-a/run guard", &[]);
    assert!(sb.exists("/var/lib/wavectl/t-guard-a/manifest.json"));
    sb.ok(
        "/var/lib/wavectl/t-guard-a/run guard boot && /var/lib/wavectl/t-guard-b/run guard boot",
        &[],
    );
    assert_eq!(sb.ok("cat /opt/wv/a", &[]), "mine\n");
    assert_eq!(state_files(&sb, "t-guard-a"), "");
    let log = sb.ok("cat /var/log/wavectl-guard.log", &[]);
    assert!(
        log.contains("t-guard-a run run-1 in probation at boot; reverting it")
            && log.contains("t-guard-a run run-1 reverted, clean=1"),
        "{log}"
    );
    let rec = sb.ok("cat /var/lib/wavectl/.reverted/t-guard-a", &[]);
    let w: Vec<&str> = rec.split_whitespace().collect();
    assert_eq!((w[0], w[1], w[3]), ("run-1", lease.trim(), "1"), "{rec}");
    let f = state_of(&sb, "t-guard-a", "run-1");
    assert_eq!(f.manifest, None);
    assert!(f.reverted.as_ref().is_some_and(|r| r.clean), "{f:?}");
    assert!(sb.exists("/var/lib/wavectl/t-guard-b/manifest.json"));
    assert!(sb.exists("/etc/cron.d/wavectl-t-guard-b"));
    assert!(sb.exists("/opt/wv/b"));

    // A removal left unfinished (revoked) is finished at boot; no revert is recorded.
    sb.ok(
        "sed -i 's/^\"state\": \"confirmed\",$/\"state\": \"revoked\",/' /var/lib/wavectl/t-guard-b/manifest.json",
        &[],
    );
    sb.ok("/var/lib/wavectl/t-guard-b/run guard boot", &[]);
    assert_eq!(state_files(&sb, "t-guard-b"), "");
    assert!(!sb.exists("/opt/wv/b"));
    assert!(!sb.exists("/var/lib/wavectl/.reverted/t-guard-b"));
}

both_shells!(probe_reports_checks_and_injects_nothing);
fn probe_reports_checks_and_injects_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    let hostile_name = format!("n'; touch {m}; echo '$(touch {m})\nx");
    let hostile_cmd =
        format!("printf '%s\\n' 'first' \"a  b\" '$(touch {m})' '`touch {m}`'; exit 7");
    let checks = vec![
        Check {
            name: "ok".into(),
            command: "echo fine".into(),
        },
        Check {
            name: hostile_name.clone(),
            command: hostile_cmd,
        },
        Check {
            name: "hang".into(),
            command: "sleep 30".into(),
        },
        Check {
            name: "bytes".into(),
            command: "printf 'x\\000\\377\\nend\\nstate revoked'".into(),
        },
    ];
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    install_ok(
        &sb,
        &params("t-probe", "/opt/wv/p", body, &h, Duration::from_secs(5)),
    );
    assert!(sb
        .run(&run_once("t-probe", Duration::from_secs(5)))
        .status
        .success());
    let literal = format!("`touch {m}`");
    let want = vec![
        ("ok", 0, "fine", true),
        (hostile_name.as_str(), 7, literal.as_str(), true),
        ("hang", 124, "", true),
        ("bytes", 0, "state revoked", true),
    ];
    let cmd = probe(
        "t-probe",
        "run-1",
        &checks,
        Duration::from_secs(3),
        Duration::ZERO,
    );
    // A read-only or full /tmp changes nothing: the checks' output stays in memory.
    let mut no_tmp = cmd.clone();
    no_tmp.line = format!("TMPDIR=/nonexistent/x {}", cmd.line);
    for c in [&cmd, &no_tmp] {
        let start = std::time::Instant::now();
        let o = sb.run(c);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let r = parse_probe(&text(&o.stdout), &checks).unwrap();
        let got: Vec<(&str, i32, &str, bool)> = r
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.exit, c.output.as_str(), c.reported))
            .collect();
        assert_eq!(got, want);
        assert_eq!(r.manifest_state, Some(ManifestState::Probation));
        assert_eq!(r.runs.len(), 1);
        assert!(r.load1.is_ok() && r.procs_blocked.is_ok());
    }
    assert!(!marker.exists());
}

both_shells!(a_check_whose_result_is_lost_is_not_reported);
fn a_check_whose_result_is_lost_is_not_reported(shell: Shell) {
    let sb = Sandbox::new(shell);
    // The check kills the subshell that would write its exit status.
    let checks = vec![
        Check {
            name: "lost".into(),
            // Up from the check to the child of the probe's own shell (the subshells
            // share its command line; how many there are depends on the shell).
            command: r#"c=$PPID
while p=$(ps -o ppid= -p "$c" | tr -d ' ') && [ "${p:-0}" -gt 1 ]; do
  if cmp -s "/proc/$p/cmdline" "/proc/$c/cmdline"; then
    pp=$(ps -o ppid= -p "$p" | tr -d ' ')
    cmp -s "/proc/$pp/cmdline" "/proc/$p/cmdline" || { kill -9 "$c"; break; }
  fi
  c=$p
done"#
                .into(),
        },
        Check {
            name: "fine".into(),
            command: "true".into(),
        },
    ];
    let o = sb.run(&probe(
        "t-lost",
        "run-1",
        &checks,
        Duration::from_secs(3),
        Duration::ZERO,
    ));
    let r = parse_probe(&text(&o.stdout), &checks).unwrap();
    assert_eq!(r.checks.len(), 2);
    assert!(!r.checks[0].reported, "{r:?}");
    assert!(r.checks[0].output.contains("no result"), "{r:?}");
    assert!(r.checks[1].reported && r.checks[1].exit == 0, "{r:?}");
    assert_eq!((r.owner, r.manifest_state), (None, None));
    // A configured check with no line at all (here: the host got no check).
    let none = probe(
        "t-lost",
        "run-1",
        &[],
        Duration::from_secs(3),
        Duration::ZERO,
    );
    let r = parse_probe(&text(&sb.run(&none).stdout), &checks).unwrap();
    assert!(
        r.checks.iter().all(|c| !c.reported && c.exit == -1),
        "{r:?}"
    );
}

both_shells!(hostile_install_path_injects_nothing);
fn hostile_install_path_injects_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    let path =
        format!("/opt/wv/it's \"q\" $(touch {m}) `touch {m}`;&& *\n-x/ré tool '$(touch {m})'\n");
    sb.ok("mkdir -p \"${1%/*}\" && printf 'before' > \"$1\"", &[&path]);
    let before = file_facts(&sb, &path);
    let body = b"#!/bin/sh\nexit 5\n";
    let h = sha(body);
    let p = params("t-hostile", &path, body, &h, Duration::from_secs(5));
    // The login shell is bash here, and the scripts themselves run under bash too
    // (as on hosts whose /bin/sh is bash).
    let o = sb.run_with("bash", &under_bash(install(&p)));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        sb.run_with("bash", &run_once("t-hostile", Duration::from_secs(5)))
            .status
            .code(),
        Some(5)
    );
    let m2 = state_of(&sb, "t-hostile", "run-1").manifest.unwrap();
    assert_eq!(m2.install_path, path);
    assert_eq!(
        confirm_on(&sb, "t-hostile", "run-1"),
        ConfirmResult::Confirmed
    );
    // An upgrade at the hostile path, then its rollback.
    let body2 = b"#!/bin/sh\nexit 6\n";
    let h2 = sha(body2);
    let mut p2 = params("t-hostile", &path, body2, &h2, Duration::from_secs(5));
    p2.run_id = "run-2";
    let o = sb.run_with("bash", &under_bash(install(&p2)));
    assert_eq!(
        parse_install(o.status.code(), &text(&o.stdout)),
        InstallResult::Installed {
            backup: true,
            prev: Some("run-1".into()),
            started: false,
        }
    );
    let r = parse_remove(&text(
        &sb.run_with(
            "bash",
            &under_bash(remove(
                "t-hostile",
                None,
                RemoveScope::Run("run-2"),
                Duration::from_secs(5),
            )),
        )
        .stdout,
    ));
    assert_eq!(r.restored_version.as_deref(), Some("run-1"), "{r:?}");
    assert!(r.clean, "{r:?}");
    assert_eq!(sb.ok("cat \"$1\"", &[&path]), "#!/bin/sh\nexit 5\n");
    // Kill scan with a hostile path: a copy running under that exact name.
    sb.ok("cp \"$1\" /opt/wv/s && printf '#!/bin/sh\\nsleep 300\\n' > \"$1\" && (\"$1\" >/dev/null 2>&1 &)", &[&path]);
    std::thread::sleep(Duration::from_millis(200));
    let r = parse_remove(&text(
        &sb.run_with(
            "bash",
            &under_bash(remove(
                "t-hostile",
                None,
                RemoveScope::All(None),
                Duration::from_secs(5),
            )),
        )
        .stdout,
    ));
    assert!(r.restored && r.clean, "{r:?}");
    assert!(r.killed >= 1, "{r:?}");
    assert_eq!(file_facts(&sb, &path), before);
    assert_eq!(state_files(&sb, "t-hostile"), "");
    assert!(!marker.exists());
}

both_shells!(hostile_created_directories_are_removed_again);
fn hostile_created_directories_are_removed_again(shell: Shell) {
    let sb = Sandbox::new(shell);
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    // The marker's own slashes make more directories below: `top` is the outermost.
    let top = "/opt/wv/new $(touch pwned)\n'x'".to_string();
    let path = format!("{top}/in ner\n/tool `touch {m}`");
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    let p = params("t-mkdir", &path, body, &h, Duration::from_secs(5));
    assert_eq!(install_ok(&sb, &p), (false, None));
    assert_eq!(sb.ok("cat /var/lib/wavectl/t-mkdir/created_dirs", &[]), top);
    let r = remove_on(&sb, "t-mkdir", None, RemoveScope::Run("run-1"));
    assert!(r.clean, "{r:?}");
    assert!(r.removed.contains(&top), "{r:?}");
    assert!(!sb.exists(&top) && sb.exists("/opt/wv"));
    // A created directory someone filled since is kept (noted), the removal is clean.
    install_ok(&sb, &p);
    sb.ok("touch \"$1/other\"", &[&top]);
    let r = remove_on(&sb, "t-mkdir", None, RemoveScope::Run("run-1"));
    assert!(r.clean, "{r:?}");
    assert!(r.detail.contains("not empty"), "{r:?}");
    assert!(sb.exists(&format!("{top}/other")) && !sb.exists(&path));
    assert_eq!(state_files(&sb, "t-mkdir"), "");
    assert!(!marker.exists());
}

both_shells!(bad_hash_installs_nothing_and_systemd_units_are_written_and_removed);
fn bad_hash_installs_nothing_and_systemd_units_are_written_and_removed(shell: Shell) {
    let sb = Sandbox::new(shell);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(b"something else");
    let o = sb.run(&install(&params(
        "t-unit",
        "/opt/wv/sub/u",
        body,
        &h,
        Duration::from_secs(5),
    )));
    assert_eq!(o.status.code(), Some(66), "{}", text(&o.stderr));
    assert!(matches!(
        parse_install(o.status.code(), &text(&o.stdout)),
        InstallResult::Failed(e) if e.contains("sha256 mismatch")
    ));
    // Nothing left: no script, no temp file, no state, no directory it made.
    assert!(!sb.exists("/opt/wv/sub"));
    assert_eq!(state_files(&sb, "t-unit"), "");

    let h = sha(body);
    let mut p = params("t-unit", "/opt/wv/u", body, &h, Duration::from_secs(5));
    p.activation = ActivationKind::SystemdTimer;
    p.schedule = "*-*-* *:00/5:00";
    install_ok(&sb, &p);
    let timer = sb.ok("cat /etc/systemd/system/wavectl-t-unit.timer", &[]);
    assert!(timer.contains("\nOnCalendar=*-*-* *:00/5:00\n"), "{timer}");
    let guard = sb.ok("cat /etc/systemd/system/wavectl-t-unit-guard.service", &[]);
    assert!(
        guard.contains("\nExecStart=/var/lib/wavectl/t-unit/run guard boot\n")
            && guard.contains("\nBefore=wavectl-t-unit.timer\n")
            && guard.contains("\nWantedBy=multi-user.target\n"),
        "{guard}"
    );
    let lease = sb.ok(
        "cat /etc/systemd/system/wavectl-t-unit-lease.service /etc/systemd/system/wavectl-t-unit-lease.timer",
        &[],
    );
    assert!(
        lease.contains("\nExecStart=/var/lib/wavectl/t-unit/run guard\n")
            && lease.contains("\nOnCalendar=minutely\n"),
        "{lease}"
    );
    assert!(!sb.exists("/etc/cron.d/wavectl-t-unit"));
    // A schedule with a newline is refused on the host, before anything is written.
    p.schedule = "* * * * *\n* * * * * root touch /x";
    p.activation = ActivationKind::Cron;
    assert_eq!(sb.run(&install(&p)).status.code(), Some(65));
    let r = remove_on(&sb, "t-unit", None, RemoveScope::Run("run-1"));
    assert!(r.clean, "{r:?}");
    for u in [
        "wavectl-t-unit.timer",
        "wavectl-t-unit.service",
        "wavectl-t-unit-guard.service",
        "wavectl-t-unit-lease.timer",
        "wavectl-t-unit-lease.service",
    ] {
        assert!(r.removed.iter().any(|x| x.ends_with(u)), "{u}: {r:?}");
    }
    assert_eq!(state_files(&sb, "t-unit"), "");
    assert!(!sb.exists("/opt/wv/u"));

    // Activation `none`: no schedule, the guard lines only.
    p.activation = ActivationKind::None;
    install_ok(&sb, &p);
    let cron = sb.ok("cat /etc/cron.d/wavectl-t-unit", &[]);
    assert!(
        cron.ends_with(
            "/bin\n* * * * * root /var/lib/wavectl/t-unit/run guard\n\
             @reboot root /var/lib/wavectl/t-unit/run guard boot\n"
        ),
        "{cron}"
    );
    assert!(remove_on(&sb, "t-unit", None, RemoveScope::All(None)).clean);
    assert_eq!(state_files(&sb, "t-unit"), "");
}

/// The same command with its script run by `bash` instead of `sh`.
pub(super) fn under_bash(mut c: RemoteCommand) -> RemoteCommand {
    c.line = c.line.replacen(" sh -c ", " bash -c ", 1);
    c
}

#[test]
fn command_lines_fit_in_one_exec_argument() {
    // Linux limits one argv string to 128 KiB; ssh hands the line to `$SHELL -c`.
    let body = b"x";
    let h = sha(body);
    let path = format!("/opt/{}'", "x'".repeat(200));
    let p = params("n", &path, body, &h, Duration::from_secs(5));
    let checks: Vec<Check> = (0..20)
        .map(|i| Check {
            name: format!("c{i}"),
            command: "pg_isready -q -h 'localhost' && test -e '/x'".into(),
        })
        .collect();
    let lines = [
        install(&p),
        remove(
            "n",
            Some(&path),
            RemoveScope::Run("r"),
            Duration::from_secs(1),
        ),
        probe("n", "r", &checks, Duration::from_secs(5), Duration::ZERO),
        purge_path(&path, Duration::from_secs(1), false),
        settle("n", "r"),
        preview(&PreviewParams {
            name: "n",
            install_path: &path,
            sha256: &h,
            run_id: "r",
            force: false,
        }),
        confirm("n", "r"),
        start_run("n", "r"),
    ];
    for c in lines {
        // The install carries the wrapper (the library a second time): ~47 KB.
        assert!(c.line.len() < 48 * 1024, "{}: {}", c.what, c.line.len());
    }
}
