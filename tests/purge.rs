//! `purge NAME`, `purge --path PATH` and `reconcile`, end to end against a real sshd
//! fleet: frozen hosts stay pending and are finished later, `--until-done` waits for
//! them, a hand-installed script is disabled everywhere it is scheduled, and bad input
//! contacts no host.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wavectl::lab::{Fleet, LabHost};

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const SCRIPT: &str = "#!/bin/sh\necho raid ok\n";

/// A work dir with an inventory of `fleet`, SCRIPT and `spec()`.
fn setup(fleet: Fleet) -> Workdir {
    Workdir::new(fleet, SCRIPT, &spec())
}

/// This file's `apply`: it must succeed and install everywhere.
trait Apply {
    fn apply(&self);
}

impl Apply for Workdir {
    fn apply(&self) {
        let r = self.wavectl(&["apply", "rollout.toml", "--yes"]);
        assert_eq!(r.code, Some(0), "apply:\n{}\n{}", r.stdout, r.stderr);
        for h in self.fleet.hosts() {
            assert!(
                h.path("/etc/cron.d/wavectl-raid-health").exists()
                    && h.path("/var/lib/wavectl/raid-health/manifest.json")
                        .exists()
                    && h.path(INSTALL).exists(),
                "{}: not installed",
                h.name()
            );
        }
    }
}

fn spec() -> String {
    format!(
        r#"name = "{NAME}"
description = "purge test rollout"
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
concurrency = 50
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

/// The host holds nothing of wavectl's for NAME, and INSTALL is back to `original`
/// (byte for byte, mode 0640) or gone when there was none.
fn assert_clean(h: &LabHost, original: Option<&[u8]>) {
    let name = h.name();
    assert!(
        h.path("/var/lib").is_dir(),
        "{name}: cannot see the host's files"
    );
    assert_no_wavectl_files(h, NAME, INSTALL);
    match original {
        Some(want) => {
            let now = std::fs::read(h.path(INSTALL))
                .unwrap_or_else(|e| panic!("{name}: original not restored: {e}"));
            assert_eq!(now, want, "{name}: original not restored byte for byte");
            assert_eq!(
                file_mode(&h.path(INSTALL)),
                0o640,
                "{name}: mode not restored"
            );
        }
        None => assert!(!h.path(INSTALL).exists(), "{name}: script left behind"),
    }
}

/// Every JSON event of a `--json` run; the last must be the summary.
fn summary(r: &Run) -> serde_json::Value {
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let last = events.last().expect("no events").clone();
    assert_eq!(last["event"], "summary", "{}", r.stdout);
    last
}

/// The host names of a summary's `[[host, text], ..]` list.
fn hosts_of(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| p[0].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn purge_name_over_30_hosts_with_3_frozen_then_reconcile() {
    let s = setup(fleet(30));
    let frozen = ["h07", "h19", "h30"];
    // Originals on a few hosts, one of them frozen later.
    let mut originals: Vec<(String, Vec<u8>)> = Vec::new();
    for (host, content) in [
        ("h01", "#!/bin/sh\n# the original h01\n"),
        ("h12", "original h12 text, no trailing newline"),
        ("h19", "#!/bin/sh\n# h19 was frozen during the purge\n"),
        ("h25", "\n\n  spaces  \n"),
    ] {
        originals.push((
            host.into(),
            seed_original(s.fleet.host(host), INSTALL, content),
        ));
    }
    let original = |host: &str| {
        originals
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, b)| b.as_slice())
    };
    s.apply();
    for h in frozen {
        s.fleet.host(h).freeze().unwrap();
    }

    let r = s.wavectl(&[
        "--json",
        "purge",
        "--yes",
        NAME,
        "--inventory",
        "inventory.toml",
        "--login-timeout",
        "2s",
    ]);
    assert_eq!(
        r.code,
        Some(4),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.took < Duration::from_secs(30), "purge took {:?}", r.took);
    let sum = summary(&r);
    assert_eq!(hosts_of(&sum["pending"]), set(&frozen), "{sum}");
    let all: BTreeSet<String> = s.fleet.hosts().iter().map(|h| h.name().into()).collect();
    let others: BTreeSet<String> = all.difference(&set(&frozen)).cloned().collect();
    assert_eq!(others.len(), 27);
    assert_eq!(hosts_of(&sum["details"]), others, "{sum}");
    assert_eq!(sum["exit_code"], 4, "{sum}");
    for h in &others {
        assert_clean(s.fleet.host(h), original(h));
    }
    // The frozen hosts were not cleaned (nor could they be): still installed.
    for h in frozen {
        let lh = s.fleet.host(h);
        assert!(lh.is_frozen().unwrap());
        assert!(
            lh.path("/var/lib/wavectl/raid-health/manifest.json")
                .exists(),
            "{h}: cleaned while frozen?"
        );
    }
    let st = s.wavectl(&["status"]);
    assert_eq!(st.code, Some(0), "{}", st.stderr);

    for h in frozen {
        s.fleet.host(h).thaw().unwrap();
    }
    let r = s.wavectl(&["--json", "reconcile", "--yes"]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let sum = summary(&r);
    assert!(
        sum["pending"].as_array().unwrap().is_empty(),
        "still pending: {sum}"
    );
    for h in s.fleet.hosts() {
        assert_clean(h, original(h.name()));
    }

    let r = s.wavectl(&["reconcile", "--yes"]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("nothing to reconcile"),
        "second reconcile did something:\n{}",
        r.stdout
    );
    s.assert_no_ssh_left();
}

#[test]
fn purge_until_done_finishes_once_frozen_hosts_thaw() {
    let s = setup(fleet(8));
    let original = seed_original(
        s.fleet.host("h08"),
        INSTALL,
        "#!/bin/sh\n# the original of h08\n",
    );
    s.apply();
    let frozen = ["h03", "h08"];
    for h in frozen {
        s.fleet.host(h).freeze().unwrap();
    }
    let args = s.args(&[
        "--json",
        "purge",
        "--yes",
        NAME,
        "--inventory",
        "inventory.toml",
        "--until-done",
        "--login-timeout",
        "2s",
    ]);
    let out_file = s.path().join("purge.out");
    let start = Instant::now();
    let mut child = Command::new(bin())
        .args(&args)
        .current_dir(s.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It keeps going while the hosts are frozen: the first pass is over, the others clean.
    let first_pass = eventually(Duration::from_secs(15), || {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .contains("still pending; retrying")
    });
    assert!(first_pass, "no retry note");
    assert!(
        child.try_wait().unwrap().is_none(),
        "purge exited while hosts were frozen"
    );
    assert_clean(s.fleet.host("h01"), None);
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none());
    for h in frozen {
        s.fleet.host(h).thaw().unwrap();
    }
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(45) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "purge --until-done did not finish after the thaw:\n{}",
                std::fs::read_to_string(&out_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    let sum = summary(&Run {
        code: status.code(),
        stdout: stdout.clone(),
        stderr: String::new(),
        took: start.elapsed(),
    });
    assert!(sum["pending"].as_array().unwrap().is_empty(), "{sum}");
    let all: BTreeSet<String> = s.fleet.hosts().iter().map(|h| h.name().into()).collect();
    assert_eq!(hosts_of(&sum["details"]), all, "{sum}");
    for h in s.fleet.hosts() {
        let orig = (h.name() == "h08").then_some(original.as_slice());
        assert_clean(h, orig);
    }
    // Nothing left for reconcile.
    let r = s.wavectl(&["reconcile", "--yes"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing to reconcile"), "{}", r.stdout);
    s.assert_no_ssh_left();
}

const VENDOR: &str = "/usr/local/sbin/vendor-raid";
const VENDOR_SCRIPT: &str = "#!/bin/sh\nwhile :; do sleep 1; done\n";
const CRONTAB_ADD: &str = "\
*/5 * * * * root /usr/local/sbin/vendor-raid --check >/dev/null 2>&1
17 * * * * root /usr/local/sbin/vendor-raid-old
# 3 * * * * root /usr/local/sbin/vendor-raid (a comment: never a call)
29 4 * * * root test -x /usr/local/sbin/vendor-raid.sh && /usr/local/sbin/vendor-raid.sh
";
const CRON_D: &str = "\
SHELL=/bin/sh
MAILTO=ops@example.com
*/10 * * * * root /usr/local/sbin/vendor-raid >/dev/null 2>&1
@daily root /usr/local/sbin/vendor-raid-old --full
";
const CRON_D_OTHER: &str = "0 3 * * * root /usr/local/sbin/vendor-raid-old\n";

/// The command lines of the processes on `h` that run VENDOR (an argument that is VENDOR).
fn vendor_procs(h: &LabHost) -> Vec<String> {
    let out = h.exec("ps -eo pid=,args=").unwrap();
    assert!(out.status.success(), "{}: ps failed", h.name());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == VENDOR))
        .map(|l| l.trim().to_string())
        .collect()
}

fn procs_with(h: &LabHost, word: &str) -> usize {
    let out = h.exec("ps -eo args=").unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == word))
        .count()
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(
                files_under(&p)
                    .into_iter()
                    .map(|f| Path::new(&e.file_name()).join(f)),
            );
        } else {
            out.push(PathBuf::from(e.file_name()));
        }
    }
    out.sort();
    out
}

#[test]
fn purge_path_removes_a_hand_installed_script_its_cron_lines_and_running_copy() {
    let s = setup(fleet(3));
    let mut crontab_before = Vec::new();
    for h in s.fleet.hosts() {
        let seed = format!(
            "set -e; mkdir -p /usr/local/sbin /etc/cron.d
printf '%s' '{VENDOR_SCRIPT}' > {VENDOR}; chmod 0755 {VENDOR}
printf '%s' '{VENDOR_SCRIPT}' > {VENDOR}-old; chmod 0755 {VENDOR}-old
printf '%s' '{CRONTAB_ADD}' >> /etc/crontab
printf '%s' '{CRON_D}' > /etc/cron.d/vendor-raid
printf '%s' '{CRON_D_OTHER}' > /etc/cron.d/other-vendor
setsid sh {VENDOR} </dev/null >/dev/null 2>&1 &
setsid {VENDOR} </dev/null >/dev/null 2>&1 &
setsid {VENDOR}-old </dev/null >/dev/null 2>&1 &
"
        );
        let out = h.exec(&seed).unwrap();
        assert!(
            out.status.success(),
            "{}: seeding: {}",
            h.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let ct = std::fs::read(h.path("/etc/crontab")).unwrap();
        assert!(ct.ends_with(CRONTAB_ADD.as_bytes()));
        crontab_before.push(ct);
        assert!(
            eventually(Duration::from_secs(5), || vendor_procs(h).len() == 2
                && procs_with(h, &format!("{VENDOR}-old")) == 1),
            "{}: running copies did not start: {:?}",
            h.name(),
            vendor_procs(h)
        );
    }

    let r = s.wavectl(&[
        "purge",
        "--yes",
        "--path",
        VENDOR,
        "--inventory",
        "inventory.toml",
    ]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );

    let disabled = |text: &str| {
        text.lines()
            .map(|l| {
                let calls = !l.starts_with('#') && l.split_whitespace().any(|w| w == VENDOR);
                if calls {
                    format!("#wavectl-purged# {l}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>()
    };
    for (i, h) in s.fleet.hosts().iter().enumerate() {
        let name = h.name();
        // Nothing runs it; the prefix-sharing script still runs.
        assert!(
            vendor_procs(h).is_empty(),
            "{name}: still running: {:?}",
            vendor_procs(h)
        );
        assert_eq!(
            procs_with(h, &format!("{VENDOR}-old")),
            1,
            "{name}: {VENDOR}-old was killed"
        );
        // The script is gone; its neighbours are not.
        assert!(!h.path(VENDOR).exists(), "{name}: script left");
        assert_eq!(
            std::fs::read_to_string(h.path(&format!("{VENDOR}-old"))).unwrap(),
            VENDOR_SCRIPT
        );
        // Cron: exactly the calling lines are commented out, every other byte kept.
        let before = String::from_utf8(crontab_before[i].clone()).unwrap();
        let want = disabled(&before);
        assert_ne!(want, before);
        let now = std::fs::read_to_string(h.path("/etc/crontab")).unwrap();
        assert_eq!(now, want, "{name}: /etc/crontab");
        assert_eq!(
            now.lines()
                .filter(|l| l.starts_with("#wavectl-purged# "))
                .count(),
            1,
            "{name}: {now}"
        );
        let now = std::fs::read_to_string(h.path("/etc/cron.d/vendor-raid")).unwrap();
        assert_eq!(now, disabled(CRON_D), "{name}: /etc/cron.d/vendor-raid");
        assert!(now.contains(
            "#wavectl-purged# */10 * * * * root /usr/local/sbin/vendor-raid >/dev/null 2>&1\n"
        ));
        assert!(now.contains("\n@daily root /usr/local/sbin/vendor-raid-old --full\n"));
        assert_eq!(
            std::fs::read_to_string(h.path("/etc/cron.d/other-vendor")).unwrap(),
            CRON_D_OTHER
        );
        for f in ["/etc/crontab", "/etc/cron.d/vendor-raid"] {
            let active: Vec<String> = std::fs::read_to_string(h.path(f))
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter(|l| l.split_whitespace().any(|w| w == VENDOR))
                .map(String::from)
                .collect();
            assert!(active.is_empty(), "{name}: {f} still calls it: {active:?}");
        }
        // Copies of what changed, exactly as they were, and of nothing else.
        let purged = h.path("/var/lib/wavectl/purged");
        let kept = files_under(&purged);
        let stamps: BTreeSet<_> = kept.iter().map(|p| p.iter().next().unwrap()).collect();
        assert_eq!(stamps.len(), 1, "{name}: {kept:?}");
        let stamp = Path::new(stamps.into_iter().next().unwrap()).to_path_buf();
        let rel: BTreeSet<String> = kept
            .iter()
            .map(|p| p.strip_prefix(&stamp).unwrap().display().to_string())
            .collect();
        assert_eq!(
            rel,
            set(&[
                "etc/crontab",
                "etc/cron.d/vendor-raid",
                "usr/local/sbin/vendor-raid"
            ]),
            "{name}"
        );
        let dir = purged.join(&stamp);
        assert_eq!(
            std::fs::read(dir.join("etc/crontab")).unwrap(),
            crontab_before[i],
            "{name}: kept crontab"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("etc/cron.d/vendor-raid")).unwrap(),
            CRON_D
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("usr/local/sbin/vendor-raid")).unwrap(),
            VENDOR_SCRIPT
        );
        // The human summary says, per host, what it found and changed.
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("  {name}: ")))
            .unwrap_or_else(|| panic!("no summary line for {name}:\n{}", r.stdout));
        for want in [
            "found /etc/crontab:",
            "/etc/cron.d/vendor-raid:3: */10 * * * * root /usr/local/sbin/vendor-raid",
            "process ",
            "disabled in /etc/crontab, /etc/cron.d/vendor-raid",
            "script removed",
            "copies kept: /var/lib/wavectl/purged/",
        ] {
            assert!(line.contains(want), "{name}: no {want:?} in {line}");
        }
        // Two copies (sh and its sleep, twice): at least the two shells.
        let killed: u32 = line
            .split("; killed ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no kill count in {line}"));
        assert!(killed >= 2, "{name}: {line}");
        assert_eq!(line.matches("process ").count(), 2, "{name}: {line}");
        assert!(!line.contains("vendor-raid-old"), "{name}: {line}");
        assert!(!line.contains("other-vendor"), "{name}: {line}");
    }

    // Again: nothing to find, nothing changed, no new copies.
    let snapshot: Vec<_> = s
        .fleet
        .hosts()
        .iter()
        .map(|h| {
            (
                std::fs::read(h.path("/etc/crontab")).unwrap(),
                files_under(&h.path("/var/lib/wavectl/purged")),
            )
        })
        .collect();
    let r = s.wavectl(&[
        "purge",
        "--yes",
        "--path",
        VENDOR,
        "--inventory",
        "inventory.toml",
    ]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    for (i, h) in s.fleet.hosts().iter().enumerate() {
        let name = h.name();
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("  {name}: ")))
            .unwrap_or_else(|| panic!("no summary line for {name}:\n{}", r.stdout));
        assert_eq!(line, format!("  {name}: nothing found"), "{}", r.stdout);
        assert_eq!(
            std::fs::read(h.path("/etc/crontab")).unwrap(),
            snapshot[i].0
        );
        assert_eq!(
            files_under(&h.path("/var/lib/wavectl/purged")),
            snapshot[i].1
        );
        assert_eq!(procs_with(h, &format!("{VENDOR}-old")), 1);
    }
    s.assert_no_ssh_left();
}

/// The sshd log of every host, once it has settled.
fn sshd_logs(fleet: &Fleet) -> Vec<String> {
    fleet
        .hosts()
        .iter()
        .map(|h| {
            let log = h.dir().join("sshd.log");
            let read = || std::fs::read_to_string(&log).unwrap_or_default();
            eventually(Duration::from_secs(2), || read().lines().count() > 1);
            let mut last = read();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let now = read();
                if now == last {
                    return now;
                }
                last = now;
            }
        })
        .collect()
}

#[test]
fn purge_of_unknown_name_or_bad_path_is_bad_input() {
    let s = setup(fleet(2));
    let before = sshd_logs(&s.fleet);
    let inv = ["--inventory", "inventory.toml"];
    let long_name = "a".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["purge", "--yes", "Bad Name"], "bad NAME"),
        (vec!["purge", "--yes", "raid_health"], "bad NAME"),
        (vec!["purge", "--yes", &long_name], "bad NAME"),
        (vec!["purge", "--yes", "--path", "relative/x"], "bad --path"),
        (vec!["purge", "--yes", "--path", "/usr/x\ny"], "bad --path"),
        (
            vec!["purge", "--yes", "--path", "/usr/local/../etc/passwd"],
            "bad --path",
        ),
        (vec!["purge", "--yes"], "--path"),
        (
            vec!["purge", "--yes", NAME, "--path", VENDOR],
            "cannot be used with",
        ),
    ];
    for (args, want) in cases {
        let mut all = args.clone();
        all.extend_from_slice(&inv);
        let r = s.wavectl(&all);
        assert_eq!(
            r.code,
            Some(2),
            "{args:?}: stdout:\n{}\nstderr:\n{}",
            r.stdout,
            r.stderr
        );
        assert!(
            r.stderr.contains(want),
            "{args:?}: want {want:?} in:\n{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: stdout:\n{}", r.stdout);
    }
    for (h, log) in s.fleet.hosts().iter().zip(&before) {
        let now = std::fs::read_to_string(h.dir().join("sshd.log")).unwrap();
        assert_eq!(
            &now,
            log,
            "{}: sshd log changed (a connection was made)",
            h.name()
        );
        assert!(!h.path("/var/lib/wavectl").exists(), "{}", h.name());
    }
    // Without --inventory (and no rollouts/NAME.toml here) there is nothing to purge.
    for args in [
        vec!["purge", "--yes", "--path", VENDOR],
        vec!["purge", "--yes", NAME],
    ] {
        let r = s.wavectl(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("purge needs an inventory")
                && r.stderr.contains("help: pass --inventory"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // No run was journaled.
    let st = s.wavectl(&["status", "--json"]);
    assert!(st.stdout.trim().is_empty(), "runs recorded:\n{}", st.stdout);
    s.assert_no_ssh_left();

    // With rollouts/NAME.toml beside it, `purge NAME` reads that spec's inventory.
    std::fs::create_dir(s.path().join("rollouts")).unwrap();
    let beside = spec()
        .replace(
            "inventory = \"inventory.toml\"",
            "inventory = \"../inventory.toml\"",
        )
        .replace("source = \"script.sh\"", "source = \"../script.sh\"");
    std::fs::write(s.path().join(format!("rollouts/{NAME}.toml")), beside).unwrap();
    let r = s.wavectl(&["purge", "--yes", NAME]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    for h in s.fleet.hosts() {
        assert!(
            r.stdout
                .contains(&format!("{}: nothing of wavectl's found", h.name())),
            "{}",
            r.stdout
        );
    }
}

/// Regression: a copy of the script started through a relative path
/// (`cd /usr/local/sbin && sh vendor-raid`) or through a symlink to it
/// (`/usr/sbin/vr-link -> PATH`) names neither path in its argv; it used to survive
/// while the host was reported clean. lib.sh `wv_match_procs` now also finds the
/// processes that hold the script file open (a shell keeps it open while it runs it).
#[test]
fn purge_path_kills_copies_run_through_a_relative_path_or_a_symlink() {
    let s = setup(fleet(1));
    let h = s.fleet.host("h01");
    let out = h
        .exec(&format!(
            "set -e; mkdir -p /usr/local/sbin
printf '%s' '{VENDOR_SCRIPT}' > {VENDOR}; chmod 0755 {VENDOR}
ln -s {VENDOR} /usr/sbin/vr-link
cd /usr/local/sbin && setsid sh vendor-raid </dev/null >/dev/null 2>&1 &
setsid /usr/sbin/vr-link </dev/null >/dev/null 2>&1 &
"
        ))
        .unwrap();
    assert!(out.status.success());
    let running = || procs_with(h, "vendor-raid") + procs_with(h, "/usr/sbin/vr-link");
    assert!(eventually(Duration::from_secs(5), || running() == 2));
    let r = s.wavectl(&[
        "purge",
        "--yes",
        "--path",
        VENDOR,
        "--inventory",
        "inventory.toml",
    ]);
    assert!(!h.path(VENDOR).exists());
    assert_eq!(
        running(),
        0,
        "copies still run, yet exit {:?}:\n{}",
        r.code,
        r.stdout
    );
}
