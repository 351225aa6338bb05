//! Versions, the lease and the install refusals, run for real in a [`Sandbox`]:
//! upgrade and rollback to the previous version, purge after an upgrade, a removal
//! scoped to its run, installs cut short, the lease guard, exact restores (owner,
//! mode, timestamps, xattrs, capabilities, symlinks), packaged files.

use std::time::Duration;

use super::host_tests::under_bash;
use super::sandbox::*;
use super::*;
use crate::spec::ActivationKind;

const A: &[u8] = b"#!/bin/sh\necho version-a\nexit 0\n";
const B: &[u8] = b"#!/bin/sh\necho version-b\nexit 0\n";

/// What must come back whole with a version: the script (bytes and metadata), the
/// wrapper, the cron file, the manifest, the run log.
fn version_facts(sb: &Sandbox, name: &str, path: &str) -> String {
    let d = format!("/var/lib/wavectl/{name}");
    let mut s = file_facts(sb, path);
    for f in [
        format!("{d}/run"),
        format!("{d}/manifest.json"),
        format!("{d}/runs.log"),
        format!("/etc/cron.d/wavectl-{name}"),
    ] {
        s.push_str(&f);
        s.push('\n');
        s.push_str(&file_facts(sb, &f));
    }
    s
}

fn ls(sb: &Sandbox, name: &str) -> String {
    sb.ok("ls -A \"/var/lib/wavectl/$1\" 2>/dev/null || true", &[name])
}

/// A confirmed run-a at `path` (cron `*/5`), one run recorded, and its script's
/// metadata changed after install (mode, mtime, an xattr and a capability where the
/// filesystem allows): what a rollback of a later run must bring back.
fn confirmed_a<'a>(sb: &Sandbox, name: &'a str, path: &'a str, h: &'a str) -> InstallParams<'a> {
    let mut p = params(name, path, A, h, Duration::from_secs(5));
    p.run_id = "run-a";
    install_ok(sb, &p);
    assert!(sb
        .run(&run_once(name, Duration::from_secs(5)))
        .status
        .success());
    assert_eq!(confirm_on(sb, name, "run-a"), ConfirmResult::Confirmed);
    sb.ok(
        "chmod 0750 \"$1\" && touch -d '2001-02-03 04:05:06' \"$1\"",
        &[path],
    );
    assert_xattrs_work(sb);
    sb.ok("setfattr -n user.wv -v kept \"$1\"", &[path]);
    sb.ok("setcap cap_net_raw+ep \"$1\"", &[path]);
    p
}

fn b_params<'a>(name: &'a str, path: &'a str, h: &'a str) -> InstallParams<'a> {
    let mut p = params(name, path, B, h, Duration::from_secs(7));
    p.run_id = "run-b";
    p.schedule = "*/7 * * * *";
    p.lease = Duration::from_secs(600);
    p
}

both_shells!(upgrade_then_rollback_brings_the_previous_version_back_whole);
fn upgrade_then_rollback_brings_the_previous_version_back_whole(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-up", "/opt/wv/up/tool");
    sb.ok("mkdir -p /opt/wv/up && printf 'orig' > \"$1\"", &[path]);
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    let a_facts = version_facts(&sb, name, path);
    let runs_a = sb.ok("cat /var/lib/wavectl/t-up/runs.log", &[]);
    assert!(
        runs_a.ends_with(" 0 run-a\n") && runs_a.lines().count() == 1,
        "{runs_a}"
    );

    let pb = b_params(name, path, &hb);
    let before: u64 = sb.ok("date +%s", &[]).trim().parse().unwrap();
    assert_eq!(install_ok(&sb, &pb), (true, Some("run-a".into())));
    assert_eq!(sb.ok("cat \"$1\"", &[path]), text(B));
    assert_eq!(sb.ok("cat /var/lib/wavectl/t-up/prev/for", &[]), "run-b\n");
    assert!(sb.exists("/var/lib/wavectl/t-up/prev/complete"));
    assert!(!sb.exists("/var/lib/wavectl/t-up/prev.new"));
    assert!(!sb.exists("/var/lib/wavectl/t-up/txn"));
    // The new version starts an empty run log; A's is in prev/.
    assert_eq!(sb.ok("cat /var/lib/wavectl/t-up/runs.log", &[]), "");
    let f = state_of(&sb, name, "run-b");
    let m = f.manifest.unwrap();
    assert_eq!((m.state, m.lease_secs), (ManifestState::Probation, 600));
    assert_eq!(
        m.prev,
        Some(PrevVersion {
            run_id: "run-a".into(),
            sha256: ha.clone()
        })
    );
    assert_eq!(f.prev.as_deref(), Some("run-a"));
    let lease: u64 = sb
        .ok("cat /var/lib/wavectl/t-up/lease", &[])
        .trim()
        .parse()
        .unwrap();
    // The lease runs 600 s from the install: between the clock read before it and
    // after it (a busy machine may take seconds between the two).
    let after: u64 = sb.ok("date +%s", &[]).trim().parse().unwrap();
    assert!(
        lease >= before + 600 && lease <= after + 600,
        "{lease} not in [{before} + 600, {after} + 600]"
    );
    let cron = sb.ok("cat /etc/cron.d/wavectl-t-up", &[]);
    assert!(cron.contains("\n*/7 * * * * root "), "{cron}");

    // B's runs are judged alone.
    assert!(sb
        .run(&run_once(name, Duration::from_secs(7)))
        .status
        .success());
    let probe_b = probe(name, "run-b", &[], Duration::from_secs(5), Duration::ZERO);
    let r = parse_probe(&text(&sb.run(&probe_b).stdout), &[]).unwrap();
    assert_eq!((r.runs.len(), r.owner.as_deref()), (1, Some("run-b")));
    let probe_a = probe(name, "run-a", &[], Duration::from_secs(5), Duration::ZERO);
    let r = parse_probe(&text(&sb.run(&probe_a).stdout), &[]).unwrap();
    assert_eq!((r.runs.len(), r.owner.as_deref()), (0, Some("run-b")));
    assert_eq!(state_of(&sb, name, "run-a").runs, 0);
    // The same run again (a resumed controller): no new snapshot, its runs kept.
    let prev_facts = sb.ok("cd /var/lib/wavectl/t-up/prev && ls -A && sha256sum *", &[]);
    assert_eq!(install_ok(&sb, &pb), (true, Some("run-a".into())));
    assert_eq!(state_of(&sb, name, "run-b").runs, 1);
    assert_eq!(
        sb.ok("cd /var/lib/wavectl/t-up/prev && ls -A && sha256sum *", &[]),
        prev_facts
    );

    // Confirmed, B keeps prev/: its rollback still brings A back.
    assert_eq!(confirm_on(&sb, name, "run-b"), ConfirmResult::Confirmed);
    assert!(!sb.exists("/var/lib/wavectl/t-up/lease"));
    assert!(sb.exists("/var/lib/wavectl/t-up/prev/complete"));
    // Another run cannot confirm, and is told whose the host is.
    assert!(matches!(
        confirm_on(&sb, name, "run-a"),
        ConfirmResult::Refused(r) if r.contains("holds run run-b's install")
    ));

    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(r.clean, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert!(!r.restored, "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);
    // `removed` remembers that run-b was undone here, and what came back.
    assert_eq!(
        ls(&sb, name),
        "backup\nboot_id\ninstall_path\nlast.log\nlock\nmanifest.json\nremoved\nrun\nruns.log\nsha256s\nstate.lock\n"
    );
    assert_eq!(
        sb.ok("cat /var/lib/wavectl/t-up/removed", &[]),
        "run-b run-a\n"
    );
    let f = state_of(&sb, name, "run-a");
    assert_eq!(f.manifest.unwrap().state, ManifestState::Confirmed);
    assert_eq!((f.runs, f.prev, f.txn), (1, None, None));
    // A runs again.
    assert!(sb
        .run(&run_once(name, Duration::from_secs(5)))
        .status
        .success());
    let now_a = version_facts(&sb, name, path);

    // B's removal again: the host holds run-a's install, nothing is touched.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert_eq!(r.other, Some(("run-a".into(), "confirmed".into())), "{r:?}");
    assert!(r.clean && r.found.is_empty() && r.killed == 0, "{r:?}");
    assert_eq!(version_facts(&sb, name, path), now_a);

    // A's rollback: no version before A, so the pre-wavectl original comes back.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert!(r.clean && r.restored, "{r:?}");
    assert_eq!(sb.ok("cat \"$1\"", &[path]), "orig");
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(systemd_timer_versions_come_back_with_their_units);
fn systemd_timer_versions_come_back_with_their_units(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-upu", "/opt/wv/upu");
    let (ha, hb) = (sha(A), sha(B));
    let mut pa = params(name, path, A, &ha, Duration::from_secs(5));
    pa.run_id = "run-a";
    pa.activation = ActivationKind::SystemdTimer;
    pa.schedule = "hourly";
    install_ok(&sb, &pa);
    assert_eq!(confirm_on(&sb, name, "run-a"), ConfirmResult::Confirmed);
    let units = |sb: &Sandbox| {
        sb.ok(
            "cd /etc/systemd/system && for f in wavectl-t-upu*; do echo \"== $f\"; cat \"$f\"; done; ls /etc/cron.d",
            &[],
        )
    };
    let a_units = units(&sb);
    let mut pb = b_params(name, path, &hb);
    pb.activation = ActivationKind::Cron;
    assert_eq!(install_ok(&sb, &pb), (false, Some("run-a".into())));
    assert!(sb.exists("/etc/cron.d/wavectl-t-upu"));
    assert!(!sb.exists("/etc/systemd/system/wavectl-t-upu.timer"));
    assert!(sb.exists("/var/lib/wavectl/t-upu/prev/units/wavectl-t-upu.timer"));
    let r = remove_on(&sb, name, None, RemoveScope::Run("run-b"));
    assert!(r.clean, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"));
    assert_eq!(units(&sb), a_units);
    assert!(!sb.exists("/etc/cron.d/wavectl-t-upu"));
}

both_shells!(purge_after_an_upgrade_restores_the_pre_wavectl_original);
fn purge_after_an_upgrade_restores_the_pre_wavectl_original(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-purge", "/opt/wv/pg");
    sb.ok(
        "printf 'orig\\n' > \"$1\" && chown 1234:5678 \"$1\" && chmod 0604 \"$1\" && \
         touch -d '1999-12-31 23:59:59' \"$1\"",
        &[path],
    );
    assert_xattrs_work(&sb);
    sb.ok("setfattr -n user.origin -v vendor \"$1\"", &[path]);
    sb.ok("setcap cap_net_raw+ep \"$1\"", &[path]);
    let before = file_facts(&sb, path);
    assert!(before.contains("user.origin="), "{before}");
    assert!(before.contains("security.capability="), "{before}");
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    let mut pb = b_params(name, path, &hb);
    // An expired lease and a guard revert record: purge removes them too.
    pb.lease = Duration::from_secs(1);
    install_ok(&sb, &pb);
    sb.ok(
        "echo 1000 > /var/lib/wavectl/t-purge/lease && /var/lib/wavectl/t-purge/run guard",
        &[],
    );
    assert!(sb.exists("/var/lib/wavectl/.reverted/t-purge"));
    install_ok(&sb, &{
        let mut p = b_params(name, path, &hb);
        p.run_id = "run-c";
        p
    });
    assert!(sb.exists("/var/lib/wavectl/t-purge/prev/complete"));
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean && r.restored, "{r:?}");
    assert_eq!(file_facts(&sb, path), before);
    assert_eq!(state_files(&sb, name), "");
    assert!(!sb.exists("/var/lib/wavectl/.reverted/t-purge"));
}

both_shells!(removal_of_an_older_run_drops_its_version_and_touches_nothing_else);
/// Case 3 of issue 13 on the host: run-a's version, kept for run-b's rollback, is
/// dropped by run-a's removal (the rollout stays under run-b: superseded); run-b's own
/// removal then takes the host back to before run-a, never to run-a's version.
fn removal_of_an_older_run_drops_its_version_and_touches_nothing_else(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-other", "/opt/wv/other");
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    // B is a sleeper: a running copy must survive run-a's removal.
    let sleeper = b"#!/bin/sh\nsleep 300\n";
    let hs = sha(sleeper);
    let mut pb = b_params(name, path, &hs);
    pb.body = sleeper;
    install_ok(&sb, &pb);
    assert_eq!(confirm_on(&sb, name, "run-b"), ConfirmResult::Confirmed);
    sb.ok("(/var/lib/wavectl/t-other/run >/dev/null 2>&1 &)", &[]);
    assert!(eventually(|| state_of(&sb, name, "run-b").running));
    let before = version_facts(&sb, name, path);
    let _ = hb;
    assert!(sb.exists("/var/lib/wavectl/t-other/prev/complete"));
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert_eq!(r.superseded.as_deref(), Some("run-b"), "{r:?}");
    assert_eq!(r.removed, vec!["/var/lib/wavectl/t-other/prev"], "{r:?}");
    assert!(r.clean && r.killed == 0 && r.other.is_none(), "{r:?}");
    assert!(state_of(&sb, name, "run-b").running);
    // run-b's script, wrapper, run log and activation untouched; its manifest no longer
    // names a previous version.
    let but_manifest = |facts: String| {
        let m = facts
            .find("/var/lib/wavectl/t-other/manifest.json\n")
            .unwrap();
        let r = facts.find("/var/lib/wavectl/t-other/runs.log").unwrap();
        format!("{}{}", &facts[..m], &facts[r..])
    };
    assert_eq!(
        but_manifest(version_facts(&sb, name, path)),
        but_manifest(before.clone())
    );
    let m = Manifest::read(&sb.ok("cat /var/lib/wavectl/t-other/manifest.json", &[])).unwrap();
    assert_eq!(
        (m.run_id.as_str(), m.state, m.prev),
        ("run-b", ManifestState::Confirmed, None)
    );
    assert!(!sb.exists("/var/lib/wavectl/t-other/prev"));
    assert_eq!(state_of(&sb, name, "run-b").prev, None);
    // Again (the answer lost), and a run id nobody installed here: superseded, nothing more.
    for run in ["run-a", "run-z"] {
        let r = remove_on(&sb, name, None, RemoveScope::Run(run));
        assert_eq!(r.superseded.as_deref(), Some("run-b"), "{r:?}");
        assert!(
            r.clean && r.found.is_empty() && r.removed.is_empty(),
            "{r:?}"
        );
    }
    // run-b's rollback: no version of run-a comes back; the host is as before run-a.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(
        r.clean && r.restored_version.is_none() && r.killed >= 1,
        "{r:?}"
    );
    assert!(!sb.exists(path) && !sb.exists("/var/lib/wavectl/t-other"));
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(install_refusals_change_nothing);
fn install_refusals_change_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let h = sha(A);
    let refused = |p: &InstallParams| match install_result(&sb, p) {
        InstallResult::Refused(r) => r,
        other => panic!("not refused: {other:?}"),
    };
    // Another rollout's install path.
    install_ok(
        &sb,
        &params("t-own-a", "/opt/wv/x", A, &h, Duration::from_secs(5)),
    );
    // A big body: the host reads it to its end even when it refuses (the sender never
    // sees a closed pipe).
    let big = vec![b'#'; 4 << 20];
    let hbig = sha(&big);
    let r = refused(&params(
        "t-own-b",
        "/opt/wv/x",
        &big,
        &hbig,
        Duration::from_secs(5),
    ));
    assert!(r.contains("owned by rollout t-own-a"), "{r}");
    assert_eq!(state_files(&sb, "t-own-b"), "");

    // Another run's unconfirmed install; then its unfinished removal.
    let mut p2 = params("t-own-a", "/opt/wv/x", B, &h, Duration::from_secs(5));
    p2.run_id = "run-2";
    let before = version_facts(&sb, "t-own-a", "/opt/wv/x");
    let r = refused(&p2);
    assert!(
        r.contains("run run-1's install is unconfirmed (probation) here: resume, roll back or purge it first"),
        "{r}"
    );
    assert_eq!(version_facts(&sb, "t-own-a", "/opt/wv/x"), before);
    sb.ok(
        "sed -i 's/^\"state\": \"probation\",$/\"state\": \"revoked\",/' /var/lib/wavectl/t-own-a/manifest.json",
        &[],
    );
    let r = refused(&p2);
    assert!(
        r.contains("removal is unfinished") && r.contains("reconcile"),
        "{r}"
    );
    sb.ok(
        "sed -i 's/^\"state\": \"revoked\",$/\"state\": \"probation\",/' /var/lib/wavectl/t-own-a/manifest.json",
        &[],
    );

    // Confirmed at another install path.
    assert_eq!(
        confirm_on(&sb, "t-own-a", "run-1"),
        ConfirmResult::Confirmed
    );
    let mut p3 = params("t-own-a", "/opt/wv/y", A, &h, Duration::from_secs(5));
    p3.run_id = "run-3";
    let r = refused(&p3);
    assert!(
        r.contains("purge t-own-a first, or keep install_path"),
        "{r}"
    );
    assert!(!sb.exists("/opt/wv/y"));

    // A directory.
    sb.ok("mkdir -p /opt/wv/dir", &[]);
    let r = refused(&params(
        "t-dir",
        "/opt/wv/dir",
        A,
        &h,
        Duration::from_secs(5),
    ));
    assert!(r.contains("is a directory"), "{r}");
    assert_eq!(state_files(&sb, "t-dir"), "");

    // An interrupted install of another run.
    sb.ok("echo run-9 > /var/lib/wavectl/t-own-a/txn", &[]);
    let r = refused(&p2);
    assert!(r.contains("run run-9's install was cut short"), "{r}");
}

both_shells!(a_packaged_file_needs_force);
fn a_packaged_file_needs_force(shell: Shell) {
    let sb = Sandbox::new(shell);
    assert!(
        sb.sh("dpkg-query -S /usr/bin/tac", &[]).status.success(),
        "this test needs a Debian host whose /usr/bin/tac belongs to a package (coreutils)"
    );
    let h = sha(A);
    let before = file_facts(&sb, "/usr/bin/tac");
    // The path itself, and through the /usr merge (/bin -> usr/bin) when it exists.
    let mut paths = vec!["/usr/bin/tac"];
    if sb
        .sh("[ -L /bin ] && [ -e /bin/tac ]", &[])
        .status
        .success()
    {
        paths.push("/bin/tac");
    }
    for path in paths {
        let p = params("t-pkg", path, A, &h, Duration::from_secs(5));
        match install_result(&sb, &p) {
            InstallResult::Refused(r) => assert!(
                r.contains("belongs to package coreutils: pass --force"),
                "{r}"
            ),
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(state_files(&sb, "t-pkg"), "");
    }
    let mut p = params("t-pkg", "/usr/bin/tac", A, &h, Duration::from_secs(5));
    p.force = true;
    assert_eq!(install_ok(&sb, &p), (true, None));
    // Ours now: a later version needs no force.
    assert_eq!(confirm_on(&sb, "t-pkg", "run-1"), ConfirmResult::Confirmed);
    let hb = sha(B);
    let mut p2 = params("t-pkg", "/usr/bin/tac", B, &hb, Duration::from_secs(5));
    p2.run_id = "run-2";
    assert_eq!(install_ok(&sb, &p2), (true, Some("run-1".into())));
    let r = remove_on(&sb, "t-pkg", None, RemoveScope::All(None));
    assert!(r.clean && r.restored, "{r:?}");
    assert_eq!(file_facts(&sb, "/usr/bin/tac"), before);

    // purge --path refuses it too, unless forced.
    let o = sb.run(&purge_path("/usr/bin/tac", Duration::from_secs(1), false));
    assert_eq!(o.status.code(), Some(65));
    let r = parse_purge_path(&text(&o.stdout));
    assert!(
        r.detail.contains("package coreutils; pass --force"),
        "{r:?}"
    );
    assert_eq!(file_facts(&sb, "/usr/bin/tac"), before);
    let o = sb.run(&purge_path("/usr/bin/tac", Duration::from_secs(1), true));
    let r = parse_purge_path(&text(&o.stdout));
    assert!(r.clean && r.removed, "{r:?}");
    assert!(!sb.exists("/usr/bin/tac"));
}

both_shells!(expired_lease_the_wrapper_refuses_and_the_guard_reverts_to_the_previous_version);
fn expired_lease_the_wrapper_refuses_and_the_guard_reverts_to_the_previous_version(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-lease", "/opt/wv/lease");
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    let a_facts = version_facts(&sb, name, path);
    install_ok(&sb, &b_params(name, path, &hb));

    // A probe of run-b renews the lease; a probe of another run does not.
    sb.ok("echo 5000 > /var/lib/wavectl/t-lease/lease", &[]);
    let pr = |run: &str| {
        let c = probe(
            name,
            run,
            &[],
            Duration::from_secs(5),
            Duration::from_secs(300),
        );
        parse_probe(&text(&sb.run(&c).stdout), &[]).unwrap()
    };
    assert_eq!(pr("run-x").lease_until, Some(5000));
    let now: u64 = sb.ok("date +%s", &[]).trim().parse().unwrap();
    let until = pr("run-b").lease_until.unwrap();
    assert!(until >= now + 299 && until <= now + 301, "{until} {now}");
    // The guard leaves a live lease alone.
    sb.ok("/var/lib/wavectl/t-lease/run guard", &[]);
    assert_eq!(
        state_of(&sb, name, "run-b").manifest.unwrap().run_id,
        "run-b"
    );

    // Expired: the wrapper refuses, the guard reverts to A and says so.
    sb.ok("echo 1000 > /var/lib/wavectl/t-lease/lease", &[]);
    let o = sb.run(&run_once(name, Duration::from_secs(5)));
    assert_eq!(o.status.code(), Some(78));
    assert!(
        text(&o.stderr).contains("the lease of run run-b expired at 1000"),
        "{}",
        text(&o.stderr)
    );
    sb.ok("/var/lib/wavectl/t-lease/run guard", &[]);
    assert_eq!(version_facts(&sb, name, path), a_facts);
    let log = sb.ok("cat /var/log/wavectl-guard.log", &[]);
    assert!(
        log.contains("t-lease run run-b in probation; its lease expired at 1000; reverting it"),
        "{log}"
    );
    let f = state_of(&sb, name, "run-b");
    let rv = f.reverted.clone().unwrap();
    assert_eq!(
        (rv.run_id.as_str(), rv.lease_until, rv.clean),
        ("run-b", 1000, true)
    );
    assert!(rv.at >= now, "{rv:?}");
    assert_eq!(f.manifest.unwrap().run_id, "run-a");
    let r = pr("run-b");
    assert_eq!(r.reverted, Some(rv.clone()));
    assert_eq!((r.owner.as_deref(), r.lease_until), (Some("run-a"), None));
    // Not for another run id.
    assert_eq!(state_of(&sb, name, "run-a").reverted, None);
    assert!(matches!(
        confirm_on(&sb, name, "run-b"),
        ConfirmResult::Refused(r) if r.contains("the lease of run run-b expired at 1000")
    ));
    // The controller's rollback afterwards finds run-a's install: nothing to do.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert_eq!(r.other, Some(("run-a".into(), "confirmed".into())), "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);
}

both_shells!(expired_lease_without_a_previous_version_reverts_to_nothing);
fn expired_lease_without_a_previous_version_reverts_to_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-lease0", "/opt/wv/l0/new/tool");
    let h = sha(A);
    let mut p = params(name, path, A, &h, Duration::from_secs(5));
    p.lease = Duration::from_secs(60);
    p.activation = ActivationKind::None;
    install_ok(&sb, &p);
    sb.ok("echo 1000 > /var/lib/wavectl/t-lease0/lease", &[]);
    sb.ok("/var/lib/wavectl/t-lease0/run guard", &[]);
    assert_eq!(state_files(&sb, name), "");
    assert!(!sb.exists("/opt/wv/l0"));
    let f = state_of(&sb, name, "run-1");
    assert_eq!(f.manifest, None);
    assert_eq!(f.reverted.unwrap().lease_until, 1000);
}

both_shells!(the_minutely_guard_waits_for_a_reader_of_the_state_and_reverts);
/// A settle reads NAME's state under its lock (shared). The minutely guard used to give up
/// at once when the lock was held: beside a reader that asks often (CI: a test polling
/// every 250 ms under load) its revert was skipped minute after minute.
fn the_minutely_guard_waits_for_a_reader_of_the_state_and_reverts(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-lease-rd", "/opt/wv/lrd");
    let h = sha(A);
    let mut p = params(name, path, A, &h, Duration::from_secs(5));
    p.lease = Duration::from_secs(60);
    install_ok(&sb, &p);
    sb.ok("echo 1000 > /var/lib/wavectl/t-lease-rd/lease", &[]);
    // A reader holding the shared lock for a second, as a slow settle would.
    sb.ok(
        "cd /var/lib/wavectl/t-lease-rd || exit 1
         ( exec </dev/null >/dev/null 2>&1; flock -s state.lock sh -c 'touch reading; sleep 1; rm -f reading' ) &",
        &[],
    );
    assert!(
        eventually(|| sb.exists("/var/lib/wavectl/t-lease-rd/reading")),
        "the reader never took the lock"
    );
    sb.ok("/var/lib/wavectl/t-lease-rd/run guard", &[]);
    assert!(!sb.exists(path), "the guard did not revert beside a reader");
    let f = state_of(&sb, name, "run-1");
    assert_eq!(f.manifest, None);
    assert_eq!(
        f.reverted.map(|r| (r.lease_until, r.clean)),
        Some((1000, true))
    );
}

both_shells!(boot_guard_brings_the_previous_version_back);
fn boot_guard_brings_the_previous_version_back(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-boot", "/opt/wv/boot");
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    let a_facts = version_facts(&sb, name, path);
    install_ok(&sb, &b_params(name, path, &hb));
    let lease = sb.ok("cat /var/lib/wavectl/t-boot/lease", &[]);
    sb.ok("/var/lib/wavectl/t-boot/run guard boot", &[]);
    assert_eq!(version_facts(&sb, name, path), a_facts);
    let rv = state_of(&sb, name, "run-b").reverted.unwrap();
    assert_eq!(rv.lease_until.to_string(), lease.trim());
}

both_shells!(symlink_install_path_replaces_the_link_and_gets_it_back);
fn symlink_install_path_replaces_the_link_and_gets_it_back(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-link", "/opt/wv/link");
    sb.ok(
        "mkdir -p /opt/wv/realdir && echo keep > /opt/wv/realdir/f && ln -s realdir /opt/wv/link",
        &[],
    );
    let dir = "stat -c '%n %a %Y' /opt/wv/realdir /opt/wv/realdir/f && ls -A /opt/wv/realdir && cat /opt/wv/realdir/f";
    let dir_before = sb.ok(dir, &[]);
    let h = sha(A);
    let p = params(name, path, A, &h, Duration::from_secs(5));
    assert_eq!(install_ok(&sb, &p), (true, None));
    assert!(file_facts(&sb, path).starts_with(&sha(A)));
    assert_eq!(
        file_facts(&sb, "/var/lib/wavectl/t-link/backup"),
        "link realdir\n"
    );
    assert_eq!(sb.ok(dir, &[]), dir_before);
    let r = remove_on(&sb, name, None, RemoveScope::Run("run-1"));
    assert!(r.clean && r.restored, "{r:?}");
    assert_eq!(file_facts(&sb, path), "link realdir\n");
    assert_eq!(sb.ok(dir, &[]), dir_before);
}

both_shells!(a_first_install_killed_part_way_is_removed_without_a_trace);
fn a_first_install_killed_part_way_is_removed_without_a_trace(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-cut", "/opt/wv/cut/deeper/tool");
    let h = sha(A);
    let mut c = install(&params(name, path, A, &h, Duration::from_secs(5)));
    // Killed by its remote timeout while it reads the script.
    c.line = c
        .line
        .replacen("timeout -k 5s 60s ", "timeout -k 1s 1s ", 1);
    let o = sb.run_held(&c, &A[..5]);
    assert_eq!(o.status.code(), Some(124), "{}", text(&o.stderr));
    assert_eq!(sb.ok("cat /var/lib/wavectl/t-cut/txn", &[]), "run-1\n");
    // The script went into a private directory beside its place.
    assert_eq!(
        sb.ok(
            "ls -A /opt/wv/cut/deeper | sed 's/\\.[A-Za-z0-9]*$/.X/'",
            &[]
        ),
        ".wavectl-t-cut.X\n"
    );
    let f = state_of(&sb, name, "run-1");
    assert_eq!((f.manifest, f.txn.as_deref()), (None, Some("run-1")));
    // Another run is refused meanwhile; the wrapper does not exist yet.
    let mut p2 = params(name, path, A, &h, Duration::from_secs(5));
    p2.run_id = "run-2";
    assert!(
        matches!(install_result(&sb, &p2), InstallResult::Refused(r) if r.contains("cut short"))
    );
    let r = remove_on(&sb, name, None, RemoveScope::Run("run-2"));
    assert_eq!(
        r.other,
        Some(("run-1".into(), "installing".into())),
        "{r:?}"
    );
    // Not clean: another run's install is unfinished here.
    assert!(!r.clean && r.detail.contains("unfinished"), "{r:?}");
    let r = remove_on(&sb, name, None, RemoveScope::Run("run-1"));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists("/opt/wv/cut"), "{r:?}");
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(an_upgrade_cut_short_is_undone_by_its_removal);
fn an_upgrade_cut_short_is_undone_by_its_removal(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-cutup", "/opt/wv/cutup");
    let (ha, hb) = (sha(A), sha(B));
    confirmed_a(&sb, name, path, &ha);
    let a_facts = version_facts(&sb, name, path);
    let ls_a = ls(&sb, name);

    // 1. A bad body: refused by its sha256 before anything of A changed; nothing left.
    let bad = b_params(name, path, &ha);
    assert!(matches!(install_result(&sb, &bad), InstallResult::Failed(e) if e.contains("sha256")));
    assert_eq!(version_facts(&sb, name, path), a_facts);
    assert_eq!(ls(&sb, name), ls_a);

    // 2. Killed while reading the script (before the snapshot): A untouched; the
    //    wrapper refuses while the install is open; its removal cleans the leftovers.
    let mut c = install(&b_params(name, path, &hb));
    c.line = c
        .line
        .replacen("timeout -k 5s 60s ", "timeout -k 1s 1s ", 1);
    assert_eq!(sb.run_held(&c, &B[..3]).status.code(), Some(124));
    assert_eq!(version_facts(&sb, name, path), a_facts);
    let o = sb.run(&run_once(name, Duration::from_secs(5)));
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("run-b"), "{}", text(&o.stderr));
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(
        r.clean && r.restored_version.is_none() && r.killed == 0,
        "{r:?}"
    );
    assert_eq!(version_facts(&sb, name, path), a_facts);
    // Only `removed` more: run-b was undone, run-a holds the host again.
    assert_eq!(
        ls(&sb, name),
        ls_a.replacen("manifest.json\n", "manifest.json\nremoved\n", 1)
    );
    // A retry whose answer was lost: the host holds what run-b's undoing left, clean.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert_eq!(r.other, Some(("run-a".into(), "confirmed".into())), "{r:?}");
    assert!(r.clean && r.superseded.is_none(), "{r:?}");

    // 3. Failed after the rename (the wrapper cannot be written): B's script is in
    //    place under A's manifest; the wrapper refuses; B's removal brings A back whole.
    sb.ok("mkdir /var/lib/wavectl/t-cutup/run.tmp", &[]);
    assert!(matches!(
        install_result(&sb, &b_params(name, path, &hb)),
        InstallResult::Failed(e) if e.contains("wrapper")
    ));
    sb.ok("rmdir /var/lib/wavectl/t-cutup/run.tmp", &[]);
    assert_eq!(sb.ok("cat \"$1\"", &[path]), text(B));
    assert_eq!(
        sb.run(&run_once(name, Duration::from_secs(5)))
            .status
            .code(),
        Some(78)
    );
    let f = state_of(&sb, name, "run-b");
    assert_eq!(f.txn.as_deref(), Some("run-b"));
    assert_eq!(f.prev.as_deref(), Some("run-a"));
    // Resuming it (the same run again) finishes it; here it is rolled back instead.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(r.clean, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"));
    assert_eq!(version_facts(&sb, name, path), a_facts);

    // 4. The same, then resumed: the same run again completes it, the snapshot kept.
    sb.ok("mkdir /var/lib/wavectl/t-cutup/run.tmp", &[]);
    assert!(matches!(
        install_result(&sb, &b_params(name, path, &hb)),
        InstallResult::Failed(_)
    ));
    sb.ok("rmdir /var/lib/wavectl/t-cutup/run.tmp", &[]);
    assert_eq!(
        install_ok(&sb, &b_params(name, path, &hb)),
        (false, Some("run-a".into()))
    );
    assert!(!sb.exists("/var/lib/wavectl/t-cutup/txn"));
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);

    // 5. Cut short by hand between a snapshot and its use: a txn, a complete prev.new/
    //    and no prev/ (the install died between removing the old prev/ and renaming).
    sb.ok(
        "d=/var/lib/wavectl/t-cutup && echo run-b > $d/txn && mkdir $d/prev.new && \
         cp -a --preserve=all \"$1\" $d/prev.new/script && cp -p $d/manifest.json $d/run $d/runs.log $d/prev.new/ && \
         cp -p /etc/cron.d/wavectl-t-cutup $d/prev.new/cron && echo run-b > $d/prev.new/for && touch $d/prev.new/complete && \
         printf 'half-written' > \"$1\"",
        &[path],
    );
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert!(r.clean, "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);
}

both_shells!(hostile_paths_survive_a_guard_revert);
fn hostile_paths_survive_a_guard_revert(shell: Shell) {
    let sb = Sandbox::new(shell);
    let marker = sb.outside("pwned");
    let m = marker.to_str().unwrap();
    let path = format!("/opt/wv/a 'b' $(touch {m})\n/`touch {m}`");
    let (ha, hb) = (sha(A), sha(B));
    let name = "t-hguard";
    let mut pa = params(name, &path, A, &ha, Duration::from_secs(5));
    pa.run_id = "run-a";
    let o = sb.run_with("bash", &under_bash(install(&pa)));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(confirm_on(&sb, name, "run-a"), ConfirmResult::Confirmed);
    let a_facts = version_facts(&sb, name, &path);
    let pb = b_params(name, &path, &hb);
    let o = sb.run_with("bash", &under_bash(install(&pb)));
    assert!(o.status.success(), "{}", text(&o.stderr));
    sb.ok(
        "echo 1000 > /var/lib/wavectl/t-hguard/lease && bash /var/lib/wavectl/t-hguard/run guard",
        &[],
    );
    assert_eq!(version_facts(&sb, name, &path), a_facts);
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(&path) && !sb.exists(&format!("/opt/wv/a 'b' $(touch {m})\n")));
    assert!(!marker.exists());
}

both_shells!(cron_runs_the_boot_guard_and_the_lease_guard);
/// The guards through a real scheduler: Debian's cron started in the sandbox (a fresh
/// /run, so it is cron's first start: its `@reboot` lines run, which is a boot), then
/// the minutely lease guard.
fn cron_runs_the_boot_guard_and_the_lease_guard(shell: Shell) {
    let sb = Sandbox::new(shell);
    assert!(
        sb.sh("command -v cron", &[]).status.success(),
        "this test needs Debian's cron: apt-get install -y cron"
    );
    let (ha, hb) = (sha(A), sha(B));
    // At "boot": run-b is in probation over a confirmed run-a, with a long lease.
    let (name, path) = ("t-cron", "/opt/wv/cron");
    confirmed_a(&sb, name, path, &ha);
    let a_facts = version_facts(&sb, name, path);
    install_ok(&sb, &b_params(name, path, &hb));
    // A confirmed install stays as it is at boot.
    let mut pk = params(
        "t-cron-keep",
        "/opt/wv/keep",
        A,
        &ha,
        Duration::from_secs(5),
    );
    pk.run_id = "run-k";
    install_ok(&sb, &pk);
    assert_eq!(
        confirm_on(&sb, "t-cron-keep", "run-k"),
        ConfirmResult::Confirmed
    );
    // (Its scheduled runs may come and add to its runs.log: not compared.)
    let keep_facts = |sb: &Sandbox| {
        file_facts(sb, "/opt/wv/keep")
            + &file_facts(sb, "/var/lib/wavectl/t-cron-keep/manifest.json")
            + &file_facts(sb, "/etc/cron.d/wavectl-t-cron-keep")
    };
    let keep = keep_facts(&sb);
    sb.ok("cron", &[]);
    let wait_for = |what: &str, done: &dyn Fn() -> bool, secs: u64| {
        let start = std::time::Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{what}: not within {secs}s; guard log: {}\nhost: {}",
                sb.ok("cat /var/log/wavectl-guard.log 2>/dev/null || true", &[]),
                sb.ok(
                    "date +%s.%N; ls -la --time-style=+%s /etc/cron.d; \
                     for d in /var/lib/wavectl/*/; do echo \"$d\"; ls -a \"$d\"; \
                     cat \"$d/lease\" 2>/dev/null; grep -h state \"$d/manifest.json\" 2>/dev/null; done; \
                     ps -eo pid,lstart,args | grep -v ' ps ' ; true",
                    &[]
                )
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for(
        "the boot guard",
        &|| {
            state_of(&sb, name, "run-b")
                .reverted
                .is_some_and(|r| r.clean)
        },
        20,
    );
    assert_eq!(version_facts(&sb, name, path), a_facts);
    assert_eq!(keep_facts(&sb), keep);

    // After boot: a new install whose lease runs out is reverted within two minutes.
    let mut pl = params(
        "t-cron-lease",
        "/opt/wv/lease",
        B,
        &hb,
        Duration::from_secs(5),
    );
    pl.run_id = "run-l";
    pl.lease = Duration::from_secs(1);
    install_ok(&sb, &pl);
    wait_for(
        "the lease guard",
        &|| {
            state_of(&sb, "t-cron-lease", "run-l")
                .reverted
                .is_some_and(|r| r.clean)
        },
        // cron reads a file written inside a minute at the next minute's start and may
        // first run it at the one after: up to two minute boundaries.
        150,
    );
    assert_eq!(state_files(&sb, "t-cron-lease"), "");
    assert!(!sb.exists("/opt/wv/lease"));
    let log = sb.ok("cat /var/log/wavectl-guard.log", &[]);
    assert!(
        log.contains("t-cron run run-b in probation at boot")
            && log.contains("  restored-version: run-a")
            && log.contains("t-cron-lease run run-l in probation; its lease expired at"),
        "{log}"
    );
    assert_eq!(keep_facts(&sb), keep);
}

both_shells!(a_cron_file_written_in_the_same_second_as_another_change_moves_the_directorys_mtime);
/// An install whose cron file leaves /etc/cron.d's mtime (whole seconds) as it found it
/// moves it on to the next second, so that cron, which may have read the directory in
/// that second, reads it again (see activation.sh).
fn a_cron_file_written_in_the_same_second_as_another_change_moves_the_directorys_mtime(
    shell: Shell,
) {
    let sb = Sandbox::new(shell);
    let body = b"#!/bin/sh\nexit 0\n";
    let h = sha(body);
    // The case needs the install in the second of the change before it: tried until
    // it happens (the install starts at the beginning of a second, and takes ~0.1 s).
    for attempt in 0..10 {
        let name = format!("t-crsec{attempt}");
        let path = format!("/opt/wv/crsec{attempt}");
        let mut cmd = install(&params(&name, &path, body, &h, Duration::from_secs(5)));
        cmd.line = format!(
            "s=$(date +%s); while [ \"$(date +%s)\" = \"$s\" ]; do sleep 0.01; done; \
             touch /etc/cron.d && stat -c %Y /etc/cron.d > /run/crsec-before && {}",
            cmd.line
        );
        let o = sb.run(&cmd);
        assert!(
            matches!(
                parse_install(o.status.code(), &text(&o.stdout)),
                InstallResult::Installed { .. }
            ),
            "{}",
            text(&o.stderr)
        );
        let secs = |what: &str| -> u64 {
            let t = sb.ok(what, &[&name]);
            t.trim().parse().unwrap_or_else(|_| panic!("{what}: {t:?}"))
        };
        let before = secs("cat /run/crsec-before");
        // The manifest is written just before the cron file (the activation comes last).
        let manifest = secs("stat -c %Y \"/var/lib/wavectl/$1/manifest.json\"");
        let dir = secs("stat -c %Y /etc/cron.d");
        if manifest != before {
            continue; // the install ran into the next second: cron sees it anyway
        }
        assert!(
            dir > before,
            "attempt {attempt}: /etc/cron.d changed at {before} and again by the install \
             in that second, and its mtime stayed {dir}: cron would not read the new file"
        );
        return;
    }
    panic!("no install in 10 tries ran within the second of the change before it");
}

both_shells!(a_rollback_that_kills_a_running_copy_still_knows_the_previous_sha256);
/// The process scan of a rollback reuses a scratch name (`_ps` in `wv_pstat`) that the
/// restore of the previous version kept that version's sha256 in: a rollback that found
/// a copy running compared the restored script with nothing and noted it as changed.
fn a_rollback_that_kills_a_running_copy_still_knows_the_previous_sha256(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-killrb", "/opt/wv/killrb");
    let ha = sha(A);
    confirmed_a(&sb, name, path, &ha);
    let slow = b"#!/bin/sh\nsleep 300\n";
    let hs = sha(slow);
    let mut pb = params(name, path, slow, &hs, Duration::from_secs(600));
    pb.run_id = "run-b";
    install_ok(&sb, &pb);
    assert!(sb.run(&start_run(name, "run-b")).status.success());
    assert!(
        eventually(|| state_of(&sb, name, "run-b").running),
        "run-b's copy never showed up as running"
    );
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(r.killed >= 1, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert!(r.clean, "{r:?}");
    assert!(!r.detail.contains("is not the"), "{r:?}");
}
