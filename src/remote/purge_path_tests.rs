//! Host-side behaviour of `purge --path`, run for real in a [`Sandbox`]: a script put
//! there by hand, scheduled by cron files and a unit, running; purged; purged again.

use std::collections::BTreeSet;
use std::time::Duration;

use super::sandbox::*;
use super::*;

const SCRIPT: &str = "/opt/vendor/sbin/raid-health";
const OLD: &str = "/opt/vendor/sbin/raid-health-old";

/// Writes `body` at `path` (parents made), then `chmod mode`.
fn put(sb: &Sandbox, path: &str, body: &str, mode: &str) {
    sb.ok(
        "mkdir -p \"${1%/*}\" && printf '%s' \"$2\" > \"$1\" && chmod \"$3\" \"$1\"",
        &[path, body, mode],
    );
}

fn cat(sb: &Sandbox, path: &str) -> String {
    sb.ok("cat \"$1\"", &[path])
}

/// Processes whose argv, joined by spaces (plus a trailing one), matches the BRE `pat`.
fn count(sb: &Sandbox, pat: &str) -> usize {
    sb.ok(
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | grep -c -e \"$1\" || true",
        &[pat],
    )
    .trim()
    .parse()
    .unwrap()
}

fn wait_for(sb: &Sandbox, pat: &str, n: usize) {
    assert!(eventually(|| count(sb, pat) >= n), "never saw {n} of {pat}");
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

both_shells!(purge_path_disables_kills_keeps_copies_and_removes);
fn purge_path_disables_kills_keeps_copies_and_removes(shell: Shell) {
    let sb = Sandbox::new(shell);
    let body = "#!/bin/sh\nsleep 300 &\nsleep 301\n";
    put(&sb, SCRIPT, body, "0755");
    put(&sb, OLD, "#!/bin/sh\nsleep 302\n", "0755");

    let crontab = "SHELL=/bin/sh\n# m h dom mon dow user\tcommand\n\
        17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n\
        */5 * * * * root /opt/vendor/sbin/raid-health >/dev/null 2>&1\n\
        */5 * * * * root /opt/vendor/sbin/raid-health-old >/dev/null 2>&1\n";
    // No newline at the end: kept that way.
    let vendor = "MAILTO=\"\"\n# run the RAID check: /opt/vendor/sbin/raid-health\n\
        0 * * * * root [ -x /opt/vendor/sbin/raid-health ] && /opt/vendor/sbin/raid-health --quick\n\
        30 2 * * * root /opt/vendor/sbin/raid-health-old; echo /opt/vendor/sbin/raid-health.bak\n\
        15 3 * * * root test -x /opt/vendor/sbin/raid-health/sub || true";
    let spool =
        "@hourly sh \"/opt/vendor/sbin/raid-health\"\r\n@daily /opt/vendor/sbin/raid-health2\n";
    let daily = "#!/bin/sh\n/opt/vendor/sbin/raid-health --daily\nexit 0\n";
    let unit =
        "[Unit]\nDescription=RAID\n[Service]\nExecStart=-/opt/vendor/sbin/raid-health --oneshot\n\
        [Install]\nWantedBy=multi-user.target\n";
    let old_unit = "[Service]\nExecStart=/opt/vendor/sbin/raid-health-old\n";
    put(&sb, "/etc/crontab", crontab, "0644");
    put(&sb, "/etc/cron.d/vendor", vendor, "0640");
    put(&sb, "/var/spool/cron/crontabs/root", spool, "0600");
    sb.ok("chown 1234:1234 /var/spool/cron/crontabs/root", &[]);
    put(&sb, "/etc/cron.daily/raid", daily, "0755");
    sb.ok(
        "mkdir -p /etc/cron.hourly && ln -sfn \"$1\" /etc/cron.hourly/raid-link",
        &[SCRIPT],
    );
    let unit_path = "/etc/systemd/system/raid-health.service";
    let wants = "/etc/systemd/system/multi-user.target.wants/raid-health.service";
    put(&sb, unit_path, unit, "0644");
    put(
        &sb,
        "/etc/systemd/system/raid-old.service",
        old_unit,
        "0644",
    );
    sb.ok(
        "mkdir -p \"${1%/*}\" && ln -sfn ../raid-health.service \"$1\"",
        &[wants],
    );

    // Running copies: `sh PATH`, PATH itself (its #! line), `/bin/sh -e PATH`, each
    // with a child; and the prefix-sharing OLD, which must survive.
    sb.ok(
        "(sh \"$1\" >/dev/null 2>&1 &); (\"$1\" >/dev/null 2>&1 &); \
         (/bin/sh -e \"$1\" >/dev/null 2>&1 &); (sh \"$2\" >/dev/null 2>&1 &)",
        &[SCRIPT, OLD],
    );
    wait_for(&sb, "^sleep 301 $", 3);
    wait_for(&sb, "^sleep 300 $", 3);
    wait_for(&sb, "^sleep 302 $", 1);

    let o = sb.run(&purge_path(SCRIPT, Duration::from_secs(5), false));
    let r = parse_purge_path(&text(&o.stdout));
    assert!(o.status.success(), "{r:?} {}", text(&o.stderr));
    assert!(r.clean && r.removed, "{r:?}");
    assert_eq!(r.detail, "", "{r:?}");
    // 3 shells, 3 `sleep 300`, 3 `sleep 301`.
    assert!(r.killed >= 9, "{r:?}");
    assert_eq!(count(&sb, "^sleep 30[01] $"), 0);
    assert_eq!(count(&sb, "raid-health $"), 0);
    assert_eq!(count(&sb, "^sleep 302 $"), 1, "OLD was killed");

    // Cron lines commented out, every other byte the same.
    assert_eq!(
        cat(&sb, "/etc/crontab"),
        crontab.replace(
            "*/5 * * * * root /opt/vendor/sbin/raid-health >",
            "#wavectl-purged# */5 * * * * root /opt/vendor/sbin/raid-health >"
        )
    );
    assert_eq!(
        cat(&sb, "/etc/cron.d/vendor"),
        vendor.replace("0 * * * * root [", "#wavectl-purged# 0 * * * * root [")
    );
    assert_eq!(
        cat(&sb, "/var/spool/cron/crontabs/root"),
        format!("#wavectl-purged# {spool}")
    );
    assert_eq!(
        cat(&sb, "/etc/cron.daily/raid"),
        daily.replace("\n/opt", "\n#wavectl-purged# /opt")
    );
    assert_eq!(
        sb.ok(
            "stat -c '%a %u:%g' /etc/crontab /etc/cron.d/vendor /var/spool/cron/crontabs/root /etc/cron.daily/raid",
            &[]
        ),
        "644 0:0\n640 0:0\n600 1234:1234\n755 0:0\n"
    );
    assert_eq!(cat(&sb, "/etc/systemd/system/raid-old.service"), old_unit);
    for gone in [SCRIPT, "/etc/cron.hourly/raid-link", unit_path, wants] {
        assert!(!sb.exists(gone), "{gone} is still there");
    }
    assert_eq!(cat(&sb, OLD), "#!/bin/sh\nsleep 302\n");

    // The report.
    let mut want_found = strs(&[
        "/etc/crontab:4: */5 * * * * root /opt/vendor/sbin/raid-health >/dev/null 2>&1",
        "/etc/cron.d/vendor:3: 0 * * * * root [ -x /opt/vendor/sbin/raid-health ] && /opt/vendor/sbin/raid-health --quick",
        "/var/spool/cron/crontabs/root:1: @hourly sh \"/opt/vendor/sbin/raid-health\"\r",
        "/etc/cron.daily/raid:2: /opt/vendor/sbin/raid-health --daily",
        "/etc/cron.hourly/raid-link: run by run-parts",
        "/etc/systemd/system/raid-health.service:4: ExecStart=-/opt/vendor/sbin/raid-health --oneshot",
        SCRIPT,
    ]);
    let procs: Vec<&String> = r
        .found
        .iter()
        .filter(|f| f.starts_with("process "))
        .collect();
    assert_eq!(procs.len(), 3, "{r:?}");
    assert!(procs.iter().all(|p| p.ends_with(SCRIPT)), "{procs:?}");
    for p in procs {
        want_found.insert(p.clone());
    }
    assert_eq!(set(&r.found), want_found);
    let changed = [
        "/etc/crontab",
        "/etc/cron.d/vendor",
        "/var/spool/cron/crontabs/root",
        "/etc/cron.daily/raid",
        "/etc/cron.hourly/raid-link",
        unit_path,
        wants,
    ];
    assert_eq!(set(&r.changed), strs(&changed));

    // Exact copies of everything changed or removed, under one purged directory.
    let dir = r
        .saved
        .iter()
        .find_map(|s| s.strip_suffix("/etc/crontab"))
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    assert!(dir.starts_with("/var/lib/wavectl/purged/20"), "{dir}");
    let want_saved: BTreeSet<String> = changed
        .iter()
        .chain([&SCRIPT])
        .map(|p| format!("{dir}{p}"))
        .collect();
    assert_eq!(set(&r.saved), want_saved);
    for (orig, body) in [
        ("/etc/crontab", crontab),
        ("/etc/cron.d/vendor", vendor),
        ("/var/spool/cron/crontabs/root", spool),
        ("/etc/cron.daily/raid", daily),
        (unit_path, unit),
        (SCRIPT, body),
    ] {
        assert_eq!(cat(&sb, &format!("{dir}{orig}")), body, "{orig}");
    }
    assert_eq!(
        sb.ok("readlink \"$1$2\"", &[&dir, "/etc/cron.hourly/raid-link"]),
        format!("{SCRIPT}\n")
    );
    assert_eq!(
        sb.ok(
            "stat -c %a /var/lib/wavectl/purged \"$1\" \"$1/var/spool/cron/crontabs/root\"",
            &[&dir]
        ),
        "700\n700\n600\n"
    );

    // Again: nothing found, nothing changed, nothing kept, clean.
    let after = sb.ok(
        "cat /etc/crontab /etc/cron.d/vendor /var/spool/cron/crontabs/root /etc/cron.daily/raid",
        &[],
    );
    let o = sb.run(&purge_path(SCRIPT, Duration::from_secs(1), false));
    let r = parse_purge_path(&text(&o.stdout));
    assert_eq!(
        r,
        PurgePathReport {
            clean: true,
            ..Default::default()
        },
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        sb.ok(
            "cat /etc/crontab /etc/cron.d/vendor /var/spool/cron/crontabs/root /etc/cron.daily/raid",
            &[],
        ),
        after
    );
    assert_eq!(sb.ok("ls /var/lib/wavectl/purged | wc -l", &[]).trim(), "1");
    assert_eq!(count(&sb, "^sleep 302 $"), 1);
}

/// The same command with its script run by `bash` instead of `sh`.
fn under_bash(mut c: RemoteCommand) -> RemoteCommand {
    c.line = c.line.replacen(" sh -c ", " bash -c ", 1);
    c
}

both_shells!(purge_path_with_a_hostile_path_injects_nothing);
fn purge_path_with_a_hostile_path_injects_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    let path = format!("/opt/wv/my tool 'it' \"q\" $(touch {m}) `touch {m}` ;&|x");
    put(&sb, &path, "#!/bin/sh\nsleep 303\n", "0755");
    let other = format!("{path}-old");
    put(&sb, &other, "#!/bin/sh\nexit 0\n", "0755");
    let crontab = format!("SHELL=/bin/sh\n* * * * * root sh {path}\n* * * * * root sh {other}\n");
    put(&sb, "/etc/crontab", &crontab, "0644");
    sb.ok("(sh \"$1\" >/dev/null 2>&1 &)", &[&path]);
    wait_for(&sb, "^sleep 303 $", 1);

    let o = sb.run_with(
        "bash",
        &under_bash(purge_path(&path, Duration::from_secs(5), false)),
    );
    let r = parse_purge_path(&text(&o.stdout));
    assert!(r.clean && r.removed, "{r:?} {}", text(&o.stderr));
    assert!(r.killed >= 2, "{r:?}");
    assert_eq!(count(&sb, "^sleep 303 $"), 0);
    assert!(!sb.exists(&path) && sb.exists(&other));
    assert_eq!(
        cat(&sb, "/etc/crontab"),
        format!(
            "SHELL=/bin/sh\n#wavectl-purged# * * * * * root sh {path}\n* * * * * root sh {other}\n"
        )
    );
    assert!(
        r.found
            .contains(&format!("/etc/crontab:2: * * * * * root sh {path}")),
        "{r:?}"
    );
    assert!(r.found.contains(&path), "{r:?}");
    let o = sb.run_with(
        "bash",
        &under_bash(purge_path(&path, Duration::from_secs(1), false)),
    );
    let r = parse_purge_path(&text(&o.stdout));
    assert!(r.clean && r.found.is_empty() && !r.removed, "{r:?}");
    assert!(!marker.exists());
}

both_shells!(purge_path_refuses_what_is_not_a_plain_script_path);
fn purge_path_refuses_what_is_not_a_plain_script_path(shell: Shell) {
    let sb = Sandbox::new(shell);
    put(&sb, "/opt/wv/keep", "x", "0644");
    for p in [
        "",
        "/",
        "opt/wv/keep",
        "/opt/wv/../wv/keep",
        "/opt/./wv/keep",
        "/opt//wv/keep",
        "/opt/wv/",
        "/opt/wv",
        "/proc/1/status",
        "/sys/kernel",
        "/dev/null",
        "/opt/wv/keep\n",
        "/opt/wv/k\teep",
        "/var/lib/wavectl/purged/x",
    ] {
        let o = sb.run(&purge_path(p, Duration::from_secs(1), false));
        let r = parse_purge_path(&text(&o.stdout));
        assert_eq!(o.status.code(), Some(65), "{p:?}: {r:?}");
        assert!(
            !r.clean && !r.removed && r.detail.starts_with("problem: refused"),
            "{p:?}: {r:?}"
        );
    }
    assert!(sb.exists("/opt/wv/keep") && sb.exists("/dev/null") && sb.exists("/opt/wv"));
    assert!(!sb.exists("/var/lib/wavectl/purged"));
}
