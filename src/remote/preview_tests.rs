//! `plan --probe`'s host side, run for real in a [`Sandbox`]: what a host holds in each
//! situation, each refusal the install itself would give, and that the preview changes
//! nothing (every file, mtime and ctime under /var/lib/wavectl, the install paths,
//! /etc/cron.d, /etc/systemd/system and /run the same) and waits for no lock.

use std::time::Duration;

use super::preview::AtPath;
use super::sandbox::*;
use super::*;

const A: &[u8] = b"#!/bin/sh\necho a\n";
const SPEC: &[u8] = b"#!/bin/sh\necho the spec's script\n";

/// Every file and directory under the places a preview could touch, with its type,
/// mode, owner, size, mtime and ctime (nanoseconds) and a link's target.
fn tree(sb: &Sandbox) -> String {
    sb.ok(
        "find /var/lib/wavectl /opt/wv /etc/cron.d /etc/systemd/system /run /usr/bin/tac \
         -printf '%p %y %m %u:%g %s %T@ %C@ %l\\n' 2>/dev/null | sort",
        &[],
    )
}

fn preview_on(sb: &Sandbox, name: &str, path: &str, force: bool) -> PreviewReport {
    let h = sha(SPEC);
    let p = PreviewParams {
        name,
        install_path: path,
        sha256: &h,
        run_id: "20260101T000000Z-preview-0000",
        force,
    };
    let o = sb.run(&preview(&p));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    parse_preview(&text(&o.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)))
}

fn refused(r: &PreviewReport) -> String {
    match r.holds(&sha(SPEC)) {
        Holds::Refused(why) => why,
        other => panic!("not refused: {other:?} {r:?}"),
    }
}

both_shells!(a_preview_tells_what_each_host_holds_and_changes_nothing);
fn a_preview_tells_what_each_host_holds_and_changes_nothing(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (ha, hs) = (sha(A), sha(SPEC));
    // A confirmed version, one in probation (another run's), one whose removal is
    // unfinished, one cut short, one another rollout owns the path of.
    let mut pv = params("p-ver", "/opt/wv/ver", A, &ha, Duration::from_secs(5));
    pv.run_id = "run-v";
    install_ok(&sb, &pv);
    assert_eq!(confirm_on(&sb, "p-ver", "run-v"), ConfirmResult::Confirmed);
    let mut pp = params("p-prob", "/opt/wv/prob", SPEC, &hs, Duration::from_secs(5));
    pp.run_id = "run-p";
    pp.lease = Duration::from_secs(600);
    install_ok(&sb, &pp);
    let mut pr = params("p-rev", "/opt/wv/rev", A, &ha, Duration::from_secs(5));
    pr.run_id = "run-r";
    install_ok(&sb, &pr);
    sb.ok(
        "sed -i 's/^\"state\": \"probation\",$/\"state\": \"revoked\",/' /var/lib/wavectl/p-rev/manifest.json",
        &[],
    );
    let mut pc = params("p-cut", "/opt/wv/cut", A, &ha, Duration::from_secs(5));
    pc.run_id = "run-c";
    install_ok(&sb, &pc);
    assert_eq!(confirm_on(&sb, "p-cut", "run-c"), ConfirmResult::Confirmed);
    sb.ok("echo run-9 > /var/lib/wavectl/p-cut/txn", &[]);
    let mut po = params("p-other", "/opt/wv/shared", A, &ha, Duration::from_secs(5));
    po.run_id = "run-o";
    install_ok(&sb, &po);
    // By hand: the spec's bytes, another file, a fence newer than the run, an open
    // directory, a link into a protected path.
    sb.ok(
        "printf '%s' \"$1\" > /opt/wv/same && chmod 0700 /opt/wv/same && \
         printf 'vendor' > /opt/wv/foreign && chown 1:2 /opt/wv/foreign && \
         mkdir -p /var/lib/wavectl/.fences && echo 20990101T000000Z-p-fence-0000 > /var/lib/wavectl/.fences/p-fence && \
         mkdir -m 0777 /opt/wv/open && ln -s /etc/shadow /opt/wv/shadow",
        &[&text(SPEC)],
    );
    let before = tree(&sb);

    let r = preview_on(&sb, "p-none", "/opt/wv/none", false);
    assert_eq!(r.holds(&hs), Holds::Nothing, "{r:?}");
    assert_eq!((r.owner.as_ref(), r.package.as_ref()), (None, None));

    let r = preview_on(&sb, "p-ver", "/opt/wv/ver", false);
    assert_eq!(
        r.holds(&hs),
        Holds::Version {
            run: "run-v".into(),
            state: ManifestState::Confirmed,
            sha256: ha.clone(),
            same: false
        }
    );
    assert_eq!(r.at_path, AtPath::File(Some(ha.clone())));
    // Its own script: the same.
    assert!(matches!(r.holds(&ha), Holds::Version { same: true, .. }));

    let r = preview_on(&sb, "p-x", "/opt/wv/same", false);
    assert_eq!(r.holds(&hs), Holds::SameScript, "{r:?}");
    assert_eq!(
        (r.owner.as_deref(), r.mode.as_deref()),
        (Some("root:root"), Some("700"))
    );

    let r = preview_on(&sb, "p-x", "/opt/wv/foreign", false);
    assert_eq!(r.holds(&hs), Holds::Foreign, "{r:?}");
    assert_eq!(r.at_path, AtPath::File(Some(sha(b"vendor"))));
    assert_eq!(r.owner.as_deref(), Some("daemon:bin"));
    assert_eq!(r.package, None);

    // A packaged file: refused (and named) without --force; with it, a foreign file of
    // that package.
    let r = preview_on(&sb, "p-x", "/usr/bin/tac", false);
    assert!(
        refused(&r).contains("belongs to package coreutils"),
        "{r:?}"
    );
    assert_eq!(r.package.as_deref(), Some("coreutils"));
    let r = preview_on(&sb, "p-x", "/usr/bin/tac", true);
    assert_eq!(r.holds(&hs), Holds::Foreign, "{r:?}");
    assert_eq!(r.package.as_deref(), Some("coreutils"));

    let r = preview_on(&sb, "p-x", "/opt/wv/shared", false);
    assert!(refused(&r).contains("owned by rollout p-other"), "{r:?}");
    let r = preview_on(&sb, "p-prob", "/opt/wv/prob", false);
    assert!(
        refused(&r).contains("run run-p's install is unconfirmed (probation)"),
        "{r:?}"
    );
    assert!(matches!(&r.manifest, Some(m) if m.state == ManifestState::Probation));
    let r = preview_on(&sb, "p-rev", "/opt/wv/rev", false);
    assert!(
        refused(&r).contains("removal is unfinished here (revoked)"),
        "{r:?}"
    );
    let r = preview_on(&sb, "p-cut", "/opt/wv/cut", false);
    assert!(
        refused(&r).contains("run run-9's install was cut short"),
        "{r:?}"
    );
    assert_eq!(r.txn.as_deref(), Some("run-9"));
    let r = preview_on(&sb, "p-ver", "/opt/wv/elsewhere", false);
    assert!(
        refused(&r).contains("p-ver is installed at /opt/wv/ver here"),
        "{r:?}"
    );
    let r = preview_on(&sb, "p-fence", "/opt/wv/fence", false);
    assert!(
        refused(&r).contains("p-fence was purged here by run 20990101T000000Z-p-fence-0000"),
        "{r:?}"
    );
    let r = preview_on(&sb, "p-x", "/opt/wv/open/tool", false);
    assert!(refused(&r).contains("/opt/wv/open (above install_path /opt/wv/open/tool) is not owned by root or is writable"), "{r:?}");
    let r = preview_on(&sb, "p-x", "/opt/wv/shadow", false);
    assert!(
        refused(&r).contains("leads to /etc/shadow, a path wavectl protects"),
        "{r:?}"
    );
    assert_eq!(r.at_path, AtPath::Link("/etc/shadow".into()));
    let r = preview_on(&sb, "p-x", "/opt/wv", false);
    assert!(refused(&r).contains("/opt/wv is a directory"), "{r:?}");

    assert_eq!(tree(&sb), before, "a preview changed something");
}

both_shells!(the_preview_refuses_exactly_what_the_install_refuses);
/// The preview's refusals are the install's: for each situation the install refuses
/// with the very reason the preview gave (and a preview that saw none, the install
/// takes).
fn the_preview_refuses_exactly_what_the_install_refuses(shell: Shell) {
    let sb = Sandbox::new(shell);
    let ha = sha(A);
    let mut po = params("q-other", "/opt/wv/q", A, &ha, Duration::from_secs(5));
    po.run_id = "run-o";
    install_ok(&sb, &po);
    sb.ok(
        "mkdir -m 0777 /opt/wv/open && ln -s /etc/passwd /opt/wv/pw",
        &[],
    );
    for (name, path) in [
        ("q-x", "/opt/wv/q"),
        ("q-x", "/opt/wv/open/t"),
        ("q-x", "/opt/wv/pw"),
        ("q-x", "/usr/bin/tac"),
        ("q-x", "/opt/wv/fine"),
    ] {
        let hs = sha(SPEC);
        let run = "20260101T000000Z-preview-0000";
        let pv = PreviewParams {
            name,
            install_path: path,
            sha256: &hs,
            run_id: run,
            force: false,
        };
        let o = sb.run(&preview(&pv));
        let r = parse_preview(&text(&o.stdout)).unwrap();
        let mut pi = params(name, path, SPEC, &hs, Duration::from_secs(5));
        pi.run_id = run;
        match (r.refused, install_result(&sb, &pi)) {
            (Some(a), InstallResult::Refused(b)) => assert_eq!(a, b, "{path}"),
            (None, InstallResult::Installed { .. }) => {}
            (a, b) => panic!("{path}: preview {a:?}, install {b:?}"),
        }
    }
}

both_shells!(a_preview_waits_for_no_lock);
/// An install that holds the host lock and NAME's state lock (as one under way does)
/// does not hold a preview up: it takes neither.
fn a_preview_waits_for_no_lock(shell: Shell) {
    let sb = Sandbox::new(shell);
    let ha = sha(A);
    let mut pv = params("p-lock", "/opt/wv/lock", A, &ha, Duration::from_secs(5));
    pv.run_id = "run-l";
    install_ok(&sb, &pv);
    assert_eq!(confirm_on(&sb, "p-lock", "run-l"), ConfirmResult::Confirmed);
    let ready = sb.outside("locked");
    let r = ready.to_str().unwrap();
    // Both locks held until the sandbox goes (flock -n: taken at once, or the test fails).
    sb.ok(
        "exec 7>>/run/wavectl.lock 8>>/var/lib/wavectl/p-lock/state.lock && flock -n 7 && flock -n 8 && \
         { touch \"$1\"; (sleep 600 <&- >/dev/null 2>&1 &) ; }",
        &[r],
    );
    assert!(ready.exists());
    let before = tree(&sb);
    let r = preview_on(&sb, "p-lock", "/opt/wv/lock", false);
    assert!(
        matches!(r.holds(&ha), Holds::Version { same: true, .. }),
        "{r:?}"
    );
    assert_eq!(tree(&sb), before);
}
