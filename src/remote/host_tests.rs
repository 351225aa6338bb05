//! Host-side behaviour of the generated commands, run for real in a [`Sandbox`]:
//! install/backup, the wrapper, timeouts, removal, the boot guard, probe, hostile input.

use std::time::Duration;

use super::sandbox::*;
use super::*;
use crate::spec::{ActivationKind, Check};

const SLEEPER: &[u8] = b"#!/bin/sh\necho started\nsleep 300\n";

#[test]
fn install_run_confirm_remove_restores_the_original() {
    let Some(sb) = Sandbox::new() else { return };
    let path = "/opt/wv/bin/tool";
    sb.ok(
        "mkdir -p /opt/wv/bin && printf 'original\\0\\377\\n' > \"$1\" && chmod 0640 \"$1\"",
        &[path],
    );
    let body = b"#!/bin/sh\necho hello\nexit 3\n";
    let h = sha(body);
    assert!(install_ok(
        &sb,
        &params("t-basic", path, body, &h, Duration::from_secs(5))
    ));
    let m = parse_manifest(&text(&sb.run(&read_manifest("t-basic")).stdout))
        .unwrap()
        .unwrap();
    assert_eq!((m.state.as_str(), m.backup), ("probation", true));
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
        cron.contains("\n@reboot root /var/lib/wavectl/t-basic/run guard\n644\n"),
        "{cron}"
    );

    let o = sb.run(&run_once("t-basic", Duration::from_secs(5)));
    assert_eq!(o.status.code(), Some(3));
    let runs = sb.ok("cat /var/lib/wavectl/t-basic/runs.log", &[]);
    assert!(
        runs.trim_end().ends_with(" 3") && runs.lines().count() == 1,
        "{runs}"
    );
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/t-basic/last.log", &[]),
        "hello\n"
    );

    // A second version keeps the first backup: the pre-wavectl original.
    let body2 = b"#!/bin/sh\nexit 0\n";
    let h2 = sha(body2);
    assert!(install_ok(
        &sb,
        &params("t-basic", path, body2, &h2, Duration::from_secs(5))
    ));
    let c = sb.run(&confirm("t-basic"));
    assert_eq!(text(&c.stdout), "wavectl-confirm ok state=confirmed\n");
    let r = parse_probe(&text(
        &sb.run(&probe("t-basic", &[], Duration::from_secs(5)))
            .stdout,
    ))
    .unwrap();
    assert_eq!(r.manifest_state.as_deref(), Some("confirmed"));
    assert_eq!(r.runs.len(), 1);

    let r = parse_remove(&text(
        &sb.run(&remove("t-basic", Some(path), Duration::from_secs(5)))
            .stdout,
    ));
    assert!(r.clean && r.restored, "{r:?}");
    assert!(
        r.found.contains(&"/var/lib/wavectl/t-basic".to_string()),
        "{r:?}"
    );
    assert_eq!(
        sb.ok(
            "od -An -v -tx1 \"$1\" | tr -d ' \\n'; stat -c ' %a' \"$1\"",
            &[path]
        ),
        format!("{} 640\n", hex::encode(b"original\0\xff\n"))
    );
    assert_eq!(state_files(&sb, "t-basic"), "");
    // Idempotent, and without a spec (install path from the host: gone, so none).
    let r = parse_remove(&text(
        &sb.run(&remove("t-basic", Some(path), Duration::from_secs(5)))
            .stdout,
    ));
    assert!(
        r.clean && r.found.is_empty() && r.killed == 0 && !r.restored,
        "{r:?}"
    );
    let r = parse_remove(&text(
        &sb.run(&remove("t-basic", None, Duration::from_secs(1)))
            .stdout,
    ));
    assert!(r.clean && r.found.is_empty(), "{r:?}");
    assert!(sb.exists(path));
}

#[test]
fn wrapper_records_timeouts_and_refuses_when_revoked() {
    let Some(sb) = Sandbox::new() else { return };
    let path = "/opt/wv/slow";
    let h = sha(SLEEPER);
    assert!(!install_ok(
        &sb,
        &params("t-slow", path, SLEEPER, &h, Duration::from_secs(1))
    ));
    let o = sb.run(&run_once("t-slow", Duration::from_secs(1)));
    assert_eq!(o.status.code(), Some(124));
    let r = parse_probe(&text(
        &sb.run(&probe("t-slow", &[], Duration::from_secs(4))).stdout,
    ))
    .unwrap();
    assert_eq!(r.runs.len(), 1);
    assert!(
        r.runs[0].timed_out() && r.runs[0].end > r.runs[0].start,
        "{r:?}"
    );
    assert!(!r.running);

    sb.ok("sed -i 's/\"state\":\"probation\"/\"state\":\"revoked\"/' /var/lib/wavectl/t-slow/manifest.json", &[]);
    let o = sb.run(&run_once("t-slow", Duration::from_secs(1)));
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("revoked"), "{}", text(&o.stderr));
    assert_eq!(
        sb.ok("wc -l < /var/lib/wavectl/t-slow/runs.log", &[])
            .trim(),
        "1"
    );
    // Missing manifest: refused too; a bad confirm is refused.
    assert_eq!(sb.run(&confirm("t-slow")).status.code(), Some(78));
    sb.ok("rm /var/lib/wavectl/t-slow/manifest.json", &[]);
    assert_eq!(
        sb.run(&run_once("t-slow", Duration::from_secs(1)))
            .status
            .code(),
        Some(78)
    );
}

#[test]
fn remove_kills_a_running_copy() {
    let Some(sb) = Sandbox::new() else { return };
    let path = "/opt/wv/sleeper";
    let h = sha(SLEEPER);
    assert!(!install_ok(
        &sb,
        &params("t-kill", path, SLEEPER, &h, Duration::from_secs(600))
    ));
    // A second copy started by hand, not through the wrapper.
    sb.ok(
        "/var/lib/wavectl/t-kill/run >/dev/null 2>&1 & \"$1\" >/dev/null 2>&1 &",
        &[path],
    );
    let mut running = false;
    for _ in 0..50 {
        let r = parse_probe(&text(
            &sb.run(&probe("t-kill", &[], Duration::from_secs(4))).stdout,
        ))
        .unwrap();
        if r.running {
            running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(running, "the wrapper never started");
    let o = sb.run(&remove("t-kill", None, Duration::from_secs(5)));
    let r = parse_remove(&text(&o.stdout));
    assert!(r.clean, "{r:?} {}", text(&o.stderr));
    // wrapper, timeout, sh running the script, its sleep, the hand-started copy (sh + sleep).
    assert!(r.killed >= 4, "{r:?}");
    assert!(r.removed.contains(&path.to_string()), "{r:?}");
    let left = sb.ok("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 30[0]' || true", &[]);
    assert_eq!(left.trim(), "0");
    assert!(!sb.exists(path));
    assert_eq!(state_files(&sb, "t-kill"), "");
}

#[test]
fn guard_removes_probation_and_keeps_confirmed() {
    let Some(sb) = Sandbox::new() else { return };
    sb.ok("printf 'mine\\n' > /opt/wv/a", &[]);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    assert!(install_ok(
        &sb,
        &params("t-guard-a", "/opt/wv/a", body, &h, Duration::from_secs(5))
    ));
    assert!(!install_ok(
        &sb,
        &params("t-guard-b", "/opt/wv/b", body, &h, Duration::from_secs(5))
    ));
    assert!(sb.run(&confirm("t-guard-b")).status.success());
    // A probation run after a reboot is refused: fake another boot id.
    sb.ok("echo other-boot > /var/lib/wavectl/t-guard-a/boot_id", &[]);
    assert_eq!(
        sb.run(&run_once("t-guard-a", Duration::from_secs(5)))
            .status
            .code(),
        Some(78)
    );

    sb.ok(
        "/var/lib/wavectl/t-guard-a/run guard && /var/lib/wavectl/t-guard-b/run guard",
        &[],
    );
    assert_eq!(sb.ok("cat /opt/wv/a", &[]), "mine\n");
    assert_eq!(state_files(&sb, "t-guard-a"), "");
    let log = sb.ok("cat /var/log/wavectl-guard.log", &[]);
    assert!(
        log.contains("t-guard-a was probation at boot") && log.contains("clean=1"),
        "{log}"
    );
    assert!(sb.exists("/var/lib/wavectl/t-guard-b/manifest.json"));
    assert!(sb.exists("/etc/cron.d/wavectl-t-guard-b"));
    assert!(sb.exists("/opt/wv/b"));
}

#[test]
fn probe_reports_checks_and_injects_nothing() {
    let Some(sb) = Sandbox::new() else { return };
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
    assert!(!install_ok(
        &sb,
        &params("t-probe", "/opt/wv/p", body, &h, Duration::from_secs(5))
    ));
    assert!(sb
        .run(&run_once("t-probe", Duration::from_secs(5)))
        .status
        .success());
    let start = std::time::Instant::now();
    let o = sb.run(&probe("t-probe", &checks, Duration::from_secs(3)));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = parse_probe(&text(&o.stdout)).unwrap();
    let got: Vec<(&str, i32, &str)> = r
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.exit, c.output.as_str()))
        .collect();
    let literal = format!("`touch {m}`");
    assert_eq!(
        got,
        vec![
            ("ok", 0, "fine"),
            (hostile_name.as_str(), 7, literal.as_str()),
            ("hang", 124, ""),
            ("bytes", 0, "state revoked"),
        ]
    );
    assert_eq!(r.manifest_state.as_deref(), Some("probation"));
    assert_eq!(r.runs.len(), 1);
    assert!(r.load1.is_some() && r.procs_blocked.is_some());
    assert!(!marker.exists());
}

#[test]
fn hostile_install_path_injects_nothing() {
    let Some(sb) = Sandbox::new() else { return };
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    let path =
        format!("/opt/wv/it's \"q\" $(touch {m}) `touch {m}`;&& *\n-x/ré tool '$(touch {m})'\n");
    sb.ok("mkdir -p \"${1%/*}\" && printf 'before' > \"$1\"", &[&path]);
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
    let m2 = parse_manifest(&text(&sb.run(&read_manifest("t-hostile")).stdout))
        .unwrap()
        .unwrap();
    assert_eq!(m2.install_path, path);
    // Kill scan with a hostile path: a copy running under that exact name.
    sb.ok("cp \"$1\" /opt/wv/s && printf '#!/bin/sh\\nsleep 300\\n' > \"$1\" && (\"$1\" >/dev/null 2>&1 &)", &[&path]);
    std::thread::sleep(Duration::from_millis(200));
    let r = parse_remove(&text(
        &sb.run_with(
            "bash",
            &under_bash(remove("t-hostile", None, Duration::from_secs(5))),
        )
        .stdout,
    ));
    assert!(r.restored && r.clean, "{r:?}");
    assert!(r.killed >= 1, "{r:?}");
    assert_eq!(sb.ok("cat \"$1\"", &[&path]), "before");
    assert_eq!(state_files(&sb, "t-hostile"), "");
    assert!(!marker.exists());
}

#[test]
fn bad_hash_installs_nothing_and_systemd_units_are_written_and_removed() {
    let Some(sb) = Sandbox::new() else { return };
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(b"something else");
    let o = sb.run(&install(&params(
        "t-unit",
        "/opt/wv/u",
        body,
        &h,
        Duration::from_secs(5),
    )));
    assert_eq!(o.status.code(), Some(66), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("sha256 mismatch"));
    assert!(!sb.exists("/opt/wv/u") && !sb.exists("/opt/wv/u.wavectl-new"));
    assert!(!sb.exists("/etc/cron.d/wavectl-t-unit"));

    let h = sha(body);
    let mut p = params("t-unit", "/opt/wv/u", body, &h, Duration::from_secs(5));
    p.activation = ActivationKind::SystemdTimer;
    p.schedule = "*-*-* *:00/5:00";
    assert!(!install_ok(&sb, &p));
    let timer = sb.ok("cat /etc/systemd/system/wavectl-t-unit.timer", &[]);
    assert!(timer.contains("\nOnCalendar=*-*-* *:00/5:00\n"), "{timer}");
    let guard = sb.ok("cat /etc/systemd/system/wavectl-t-unit-guard.service", &[]);
    assert!(
        guard.contains("\nExecStart=/var/lib/wavectl/t-unit/run guard\n"),
        "{guard}"
    );
    // A schedule with a newline is refused on the host, before anything is written.
    p.schedule = "* * * * *\n* * * * * root touch /x";
    p.activation = ActivationKind::Cron;
    assert_eq!(sb.run(&install(&p)).status.code(), Some(65));
    let r = parse_remove(&text(
        &sb.run(&remove("t-unit", None, Duration::from_secs(2)))
            .stdout,
    ));
    assert!(r.clean, "{r:?}");
    assert!(
        r.removed
            .iter()
            .any(|x| x.ends_with("wavectl-t-unit.timer")),
        "{r:?}"
    );
    assert_eq!(state_files(&sb, "t-unit"), "");
    assert!(!sb.exists("/opt/wv/u"));
}

/// The same command with its script run by `bash` instead of `sh`.
fn under_bash(mut c: RemoteCommand) -> RemoteCommand {
    c.line = c.line.replacen(" sh -c ", " bash -c ", 1);
    c
}

#[test]
fn command_lines_fit_in_one_exec_argument() {
    // Linux limits one argv string to 128 KiB; ssh hands the line to `$SHELL -c`.
    let body = b"x";
    let h = sha(body);
    let p = params("n", "/opt/x", body, &h, Duration::from_secs(5));
    assert!(
        install(&p).line.len() < 64 * 1024,
        "{}",
        install(&p).line.len()
    );
}
