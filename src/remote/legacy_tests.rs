//! Hosts that hold an install of the previous release (its `manifest.json`, its wrapper),
//! made for real in a [`Sandbox`] by that release's own host scripts
//! (`tests/fixtures/previous-release/`, frozen at commit 0b103e2): this release reads it,
//! confirms it, upgrades it (the old version kept in `prev/` in its own format), rolls
//! the upgrade back (the old version back whole, run by its own wrapper), rolls back
//! past it (superseded) and purges it.

use std::time::Duration;

use super::install::{INSTALL_TIMEOUT, LIB_END, SMALL_TIMEOUT};
use super::sandbox::*;
use super::*;

const OLD_LIB: &str = include_str!("../../tests/fixtures/previous-release/lib.sh");
const OLD_PROCS: &str = include_str!("../../tests/fixtures/previous-release/procs.sh");
const OLD_REMOVAL: &str = include_str!("../../tests/fixtures/previous-release/removal.sh");
const OLD_PKG: &str = include_str!("../../tests/fixtures/previous-release/pkg.sh");
const OLD_INSTALL: &str = include_str!("../../tests/fixtures/previous-release/install.sh");
const OLD_WRAPPER: &str = include_str!("../../tests/fixtures/previous-release/wrapper.sh");
const OLD_CONFIRM: &str = include_str!("../../tests/fixtures/previous-release/confirm.sh");

const A: &[u8] = b"#!/bin/sh\necho old-a\nexit 11\n";
const B: &[u8] = b"#!/bin/sh\necho old-b\nexit 12\n";
const C: &[u8] = b"#!/bin/sh\necho new-c\nexit 13\n";

fn old_with_lib(parts: &[&str]) -> String {
    let mut s = compact(OLD_LIB);
    for p in parts {
        s.push_str(&compact(p));
    }
    s
}

/// The wrapper the previous release wrote (its `wrapper_text`).
fn old_wrapper(name: &str, timeout: Duration) -> String {
    format!(
        "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n\
         {}{LIB_END}NAME={}\nTIMEOUT={}\n{}",
        old_with_lib(&[OLD_PROCS, OLD_REMOVAL]),
        sh_quote(name),
        sh_quote(&secs(timeout)),
        compact(OLD_WRAPPER),
    )
}

/// The manifest the previous release sent: compact JSON in its field order.
fn old_manifest(p: &InstallParams) -> String {
    let j = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "{{\"name\":{},\"sha256\":{},\"run_id\":{},\"installed_at\":{},\"state\":\"probation\",\
         \"backup\":false,\"install_path\":{},\"activation\":{{\"kind\":{},\"schedule\":{}}},\
         \"lease_secs\":{},\"prev\":null}}",
        j(p.name),
        j(p.sha256),
        j(p.run_id),
        p.installed_at,
        j(p.install_path),
        j(p.activation.as_str()),
        j(p.schedule),
        p.lease.as_secs()
    )
}

/// The previous release's install command.
fn old_install(p: &InstallParams) -> RemoteCommand {
    let mode = format!("{:o}", p.mode & 0o7777);
    let lease = p.lease.as_secs().to_string();
    command(
        "install",
        &(compact(OLD_PKG) + &compact(OLD_INSTALL)),
        &[
            p.name,
            p.install_path,
            &mode,
            p.sha256,
            p.activation.as_str(),
            p.schedule,
            &old_wrapper(p.name, p.script_timeout),
            &old_manifest(p),
            p.run_id,
            &lease,
            "0",
            "0",
            &crate::spec::protected_host_list(),
        ],
        INSTALL_TIMEOUT,
        Duration::from_secs(5),
        Some(p.body.to_vec()),
    )
}

/// Install and confirm a run with the previous release's scripts.
fn old_install_ok(sb: &Sandbox, p: &InstallParams, confirm: bool) {
    let o = sb.run(&old_install(p));
    assert_eq!(
        o.status.code(),
        Some(0),
        "old install: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    if confirm {
        let c = command(
            "confirm",
            &old_with_lib(&[OLD_CONFIRM]),
            &[p.name, p.run_id],
            SMALL_TIMEOUT,
            Duration::from_secs(2),
            None,
        );
        let o = sb.run(&c);
        assert!(text(&o.stdout).contains("wavectl-confirm ok"), "{o:?}");
    }
}

fn p<'a>(
    name: &'a str,
    path: &'a str,
    run: &'a str,
    body: &'a [u8],
    h: &'a str,
) -> InstallParams<'a> {
    let mut p = params(name, path, body, h, Duration::from_secs(5));
    p.run_id = run;
    p.lease = Duration::from_secs(600);
    p
}

/// A version as a rollback must bring it back: the script, the wrapper, the manifest
/// (whichever format), the cron file, the run log.
fn version_facts(sb: &Sandbox, name: &str, path: &str) -> String {
    let d = format!("/var/lib/wavectl/{name}");
    let mut s = file_facts(sb, path);
    for f in [
        format!("{d}/run"),
        format!("{d}/manifest"),
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

fn run_code(sb: &Sandbox, name: &str) -> Option<i32> {
    sb.run(&run_once(name, Duration::from_secs(5)))
        .status
        .code()
}

both_shells!(an_install_of_the_previous_release_is_read_upgraded_rolled_back_and_purged);
fn an_install_of_the_previous_release_is_read_upgraded_rolled_back_and_purged(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy", "/opt/wv/legacy");
    let dir = "/var/lib/wavectl/t-legacy";
    sb.ok("printf 'original' > \"$1\"", &[path]);
    let original = file_facts(&sb, path);
    let (ha, hc) = (sha(A), sha(C));
    let pa = p(name, path, "run-a", A, &ha);
    old_install_ok(&sb, &pa, true);
    assert!(sb.exists(&format!("{dir}/manifest.json")));
    assert!(!sb.exists(&format!("{dir}/manifest")));
    // Its own wrapper runs it.
    assert_eq!(run_code(&sb, name), Some(11));

    // Read: settle, probe, preview.
    let f = state_of(&sb, name, "run-a");
    let m = f.manifest.clone().unwrap();
    assert!(m.legacy, "{m:?}");
    assert_eq!(
        (m.run_id.as_str(), m.state, m.backup),
        ("run-a", ManifestState::Confirmed, true)
    );
    assert_eq!(m.install_path, path);
    assert_eq!(f.runs, 1);
    let o = sb.run(&probe(
        name,
        "run-a",
        &[],
        Duration::from_secs(5),
        Duration::ZERO,
    ));
    let r = parse_probe(&text(&o.stdout), &[]).unwrap();
    assert_eq!(
        (r.owner.as_deref(), r.manifest_state),
        (Some("run-a"), Some(ManifestState::Confirmed))
    );
    assert_eq!(r.runs.len(), 1);
    let pv = PreviewParams {
        name,
        install_path: path,
        sha256: &ha,
        run_id: "20990101T000000Z-t-legacy-0000",
        force: false,
    };
    let o = sb.run(&preview(&pv));
    let rep = parse_preview(&text(&o.stdout)).unwrap();
    assert!(
        matches!(&rep.holds(&ha), Holds::Version { run, state: ManifestState::Confirmed, same: true, .. } if run == "run-a"),
        "{rep:?}"
    );
    let a_facts = version_facts(&sb, name, path);

    // Upgrade by this release: A kept whole in prev/, in its own format with its wrapper.
    let pc = p(name, path, "run-c", C, &hc);
    assert_eq!(install_ok(&sb, &pc), (true, Some("run-a".into())));
    assert!(!sb.exists(&format!("{dir}/manifest.json")));
    assert!(sb.exists(&format!("{dir}/prev/manifest.json")));
    assert!(!sb.exists(&format!("{dir}/prev/manifest")));
    let m = state_of(&sb, name, "run-c").manifest.unwrap();
    assert!(!m.legacy);
    assert_eq!((m.state, m.backup), (ManifestState::Probation, true));
    assert_eq!(m.prev.as_ref().map(|p| p.run_id.as_str()), Some("run-a"));
    assert_eq!(state_of(&sb, name, "run-c").prev.as_deref(), Some("run-a"));
    assert_eq!(run_code(&sb, name), Some(13));

    // Its rollback brings A back as it was, run by its own wrapper again.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-c"));
    assert!(r.clean, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);
    assert!(!sb.exists(&format!("{dir}/manifest")));
    assert_eq!(run_code(&sb, name), Some(11));
    let m = state_of(&sb, name, "run-a").manifest.unwrap();
    assert_eq!((m.legacy, m.state), (true, ManifestState::Confirmed));

    // An upgrade again, confirmed this time (A stays in prev/ for it), then purge:
    // every version goes, the original comes back.
    let pc = p(name, path, "run-c2", C, &hc);
    install_ok(&sb, &pc);
    assert_eq!(confirm_on(&sb, name, "run-c2"), ConfirmResult::Confirmed);
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean && r.restored, "{r:?}");
    assert_eq!(file_facts(&sb, path), original);
    assert!(!sb.exists(dir));
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(a_probation_install_of_the_previous_release_is_confirmed_and_rolled_back);
fn a_probation_install_of_the_previous_release_is_confirmed_and_rolled_back(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy-p", "/opt/wv/legacy-p");
    let dir = "/var/lib/wavectl/t-legacy-p";
    let ha = sha(A);
    let pa = p(name, path, "run-a", A, &ha);
    old_install_ok(&sb, &pa, false);
    // A probe of that run renews its lease; confirm (this release) writes the
    // confirmation into its JSON manifest, which its wrapper reads.
    let o = sb.run(&probe(
        name,
        "run-a",
        &[],
        Duration::from_secs(5),
        Duration::from_secs(900),
    ));
    let r = parse_probe(&text(&o.stdout), &[]).unwrap();
    assert_eq!(r.manifest_state, Some(ManifestState::Probation));
    assert!(r.lease_until.is_some(), "{r:?}");
    assert_eq!(confirm_on(&sb, name, "run-a"), ConfirmResult::Confirmed);
    let json = sb.ok("cat \"$1/manifest.json\"", &[dir]);
    assert!(json.contains("\"state\":\"confirmed\""), "{json}");
    assert!(!sb.exists(&format!("{dir}/manifest")));
    assert!(!sb.exists(&format!("{dir}/lease")));
    assert_eq!(run_code(&sb, name), Some(11));
    // Its rollback (a full removal: nothing was there before): everything goes.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(path) && !sb.exists(dir));
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(rolling_back_past_a_previous_release_upgrade_drops_its_version);
fn rolling_back_past_a_previous_release_upgrade_drops_its_version(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy-s", "/opt/wv/legacy-s");
    let dir = "/var/lib/wavectl/t-legacy-s";
    let (ha, hb) = (sha(A), sha(B));
    old_install_ok(&sb, &p(name, path, "run-a", A, &ha), true);
    old_install_ok(&sb, &p(name, path, "run-b", B, &hb), true);
    assert!(sb.exists(&format!("{dir}/prev/manifest.json")));
    // A's rollback, after B upgraded it: B stays; A's version leaves the history, and
    // B's JSON manifest no longer names it.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert_eq!(r.superseded.as_deref(), Some("run-b"), "{r:?}");
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(&format!("{dir}/prev")));
    let json = sb.ok("cat \"$1/manifest.json\"", &[dir]);
    assert!(json.ends_with(",\"prev\":null}\n"), "{json}");
    let m = state_of(&sb, name, "run-b").manifest.unwrap();
    assert_eq!((m.state, m.prev), (ManifestState::Confirmed, None));
    assert_eq!(run_code(&sb, name), Some(12));
    // B's rollback: nothing to bring back, so everything goes.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(r.clean && r.restored_version.is_none(), "{r:?}");
    assert!(!sb.exists(path) && !sb.exists(dir));
}
