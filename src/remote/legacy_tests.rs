//! Hosts that hold an install of an earlier release, made for real in a [`Sandbox`] by
//! that release's own host scripts: the release before this one (`manifest`, one
//! `KEY=VALUE` a line; `tests/fixtures/keyvalue-release/`, frozen at commit 010c414) and
//! the one before that (a compact one-line `manifest.json`;
//! `tests/fixtures/previous-release/`, frozen at commit 0b103e2). For each, this release
//! reads such an install, confirms it, upgrades it (the old version kept in `prev/` in
//! its own form, this release's `manifest.json` in place), rolls the upgrade back (the
//! old version back whole, run by its own wrapper), rolls back past it (superseded) and
//! purges it.

use std::time::Duration;

use super::install::{INSTALL_TIMEOUT, LIB_END, SMALL_TIMEOUT};
use super::sandbox::*;
use super::*;

/// An earlier release's host scripts, and the manifest it sent.
struct Release {
    lib: &'static str,
    procs: &'static str,
    removal: &'static str,
    /// The install's script parts (the library comes from the wrapper).
    install: &'static [&'static str],
    wrapper: &'static str,
    confirm: &'static str,
    manifest: fn(&InstallParams) -> String,
    /// Its manifest's file name, and the form this release reads it as.
    file: &'static str,
    format: ManifestFormat,
}

/// The release before this one: `manifest`, `KEY=VALUE` lines.
const KEY_VALUE: Release = Release {
    lib: include_str!("../../tests/fixtures/keyvalue-release/lib.sh"),
    procs: include_str!("../../tests/fixtures/keyvalue-release/procs.sh"),
    removal: include_str!("../../tests/fixtures/keyvalue-release/removal.sh"),
    install: &[
        include_str!("../../tests/fixtures/keyvalue-release/pkg.sh"),
        include_str!("../../tests/fixtures/keyvalue-release/checks.sh"),
        include_str!("../../tests/fixtures/keyvalue-release/install.sh"),
    ],
    wrapper: include_str!("../../tests/fixtures/keyvalue-release/wrapper.sh"),
    confirm: include_str!("../../tests/fixtures/keyvalue-release/confirm.sh"),
    manifest: key_value_manifest,
    file: "manifest",
    format: ManifestFormat::KeyValue,
};

/// The release before that: a compact `manifest.json`.
const COMPACT_JSON: Release = Release {
    lib: include_str!("../../tests/fixtures/previous-release/lib.sh"),
    procs: include_str!("../../tests/fixtures/previous-release/procs.sh"),
    removal: include_str!("../../tests/fixtures/previous-release/removal.sh"),
    install: &[
        include_str!("../../tests/fixtures/previous-release/pkg.sh"),
        include_str!("../../tests/fixtures/previous-release/install.sh"),
    ],
    wrapper: include_str!("../../tests/fixtures/previous-release/wrapper.sh"),
    confirm: include_str!("../../tests/fixtures/previous-release/confirm.sh"),
    manifest: compact_manifest,
    file: "manifest.json",
    format: ManifestFormat::CompactJson,
};

const A: &[u8] = b"#!/bin/sh\necho old-a\nexit 11\n";
const B: &[u8] = b"#!/bin/sh\necho old-b\nexit 12\n";
const C: &[u8] = b"#!/bin/sh\necho new-c\nexit 13\n";

fn old_with_lib(r: &Release, parts: &[&str]) -> String {
    let mut s = compact(r.lib);
    for p in parts {
        s.push_str(&compact(p));
    }
    s
}

/// The wrapper the release wrote (its `wrapper_text`).
fn old_wrapper(r: &Release, name: &str, timeout: Duration) -> String {
    format!(
        "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n\
         {}{LIB_END}NAME={}\nTIMEOUT={}\n{}",
        old_with_lib(r, &[r.procs, r.removal]),
        sh_quote(name),
        sh_quote(&secs(timeout)),
        compact(r.wrapper),
    )
}

/// The manifest the release before this one sent: `KEY=VALUE` lines.
fn key_value_manifest(p: &InstallParams) -> String {
    super::manifest::render_key_value(&Manifest {
        name: p.name.into(),
        run_id: p.run_id.into(),
        state: ManifestState::Probation,
        sha256: p.sha256.into(),
        installed_at: p.installed_at,
        install_path: p.install_path.into(),
        activation: p.activation,
        schedule: p.schedule.into(),
        lease_secs: p.lease.as_secs(),
        backup: false,
        prev: None,
        format: ManifestFormat::KeyValue,
    })
}

/// The manifest the release before that sent: compact JSON in its field order.
fn compact_manifest(p: &InstallParams) -> String {
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

/// The release's install command.
fn old_install(r: &Release, p: &InstallParams) -> RemoteCommand {
    let mode = format!("{:o}", p.mode & 0o7777);
    let lease = p.lease.as_secs().to_string();
    command(
        "install",
        &r.install.iter().map(|s| compact(s)).collect::<String>(),
        &[
            p.name,
            p.install_path,
            &mode,
            p.sha256,
            p.activation.as_str(),
            p.schedule,
            &old_wrapper(r, p.name, p.script_timeout),
            &(r.manifest)(p),
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

/// Install and confirm a run with the release's scripts.
fn old_install_ok(r: &Release, sb: &Sandbox, p: &InstallParams, confirm: bool) {
    let o = sb.run(&old_install(r, p));
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
            &old_with_lib(r, &[r.confirm]),
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

/// The other manifest file name than `r`'s.
fn other_file(r: &Release) -> &'static str {
    if r.file == "manifest" {
        "manifest.json"
    } else {
        "manifest"
    }
}

both_shells!(a_key_value_install_is_read_upgraded_rolled_back_and_purged);
fn a_key_value_install_is_read_upgraded_rolled_back_and_purged(shell: Shell) {
    read_upgraded_rolled_back_and_purged(&KEY_VALUE, shell);
}
both_shells!(a_compact_json_install_is_read_upgraded_rolled_back_and_purged);
fn a_compact_json_install_is_read_upgraded_rolled_back_and_purged(shell: Shell) {
    read_upgraded_rolled_back_and_purged(&COMPACT_JSON, shell);
}
fn read_upgraded_rolled_back_and_purged(rel: &Release, shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy", "/opt/wv/legacy");
    let dir = "/var/lib/wavectl/t-legacy";
    sb.ok("printf 'original' > \"$1\"", &[path]);
    let original = file_facts(&sb, path);
    let (ha, hc) = (sha(A), sha(C));
    let pa = p(name, path, "run-a", A, &ha);
    old_install_ok(rel, &sb, &pa, true);
    assert!(sb.exists(&format!("{dir}/{}", rel.file)));
    assert!(!sb.exists(&format!("{dir}/{}", other_file(rel))));
    // Its own wrapper runs it.
    assert_eq!(run_code(&sb, name), Some(11));

    // Read: settle, probe, preview.
    let f = state_of(&sb, name, "run-a");
    let m = f.manifest.clone().unwrap();
    assert_eq!(m.format, rel.format, "{m:?}");
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

    // Upgrade by this release: A kept whole in prev/, in its own form with its wrapper;
    // this release's manifest.json in place, and nothing else.
    let pc = p(name, path, "run-c", C, &hc);
    assert_eq!(install_ok(&sb, &pc), (true, Some("run-a".into())));
    assert!(!sb.exists(&format!("{dir}/manifest")));
    assert!(sb.exists(&format!("{dir}/prev/{}", rel.file)));
    assert!(!sb.exists(&format!("{dir}/prev/{}", other_file(rel))));
    let json = sb.ok("cat \"$1/manifest.json\"", &[dir]);
    let m = Manifest::read(&json).unwrap();
    assert_eq!(m.format, ManifestFormat::Json, "{json}");
    assert_eq!((m.state, m.backup), (ManifestState::Probation, true));
    assert_eq!(m.prev.as_ref().map(|p| p.run_id.as_str()), Some("run-a"));
    assert_eq!(
        m.prev.as_ref().map(|p| p.sha256.as_str()),
        Some(ha.as_str())
    );
    assert_eq!(state_of(&sb, name, "run-c").manifest, Some(m));
    assert_eq!(state_of(&sb, name, "run-c").prev.as_deref(), Some("run-a"));
    assert_eq!(run_code(&sb, name), Some(13));

    // Its rollback brings A back as it was, run by its own wrapper again.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-c"));
    assert!(r.clean, "{r:?}");
    assert_eq!(r.restored_version.as_deref(), Some("run-a"), "{r:?}");
    assert_eq!(version_facts(&sb, name, path), a_facts);
    assert!(!sb.exists(&format!("{dir}/{}", other_file(rel))));
    assert_eq!(run_code(&sb, name), Some(11));
    let m = state_of(&sb, name, "run-a").manifest.unwrap();
    assert_eq!((m.format, m.state), (rel.format, ManifestState::Confirmed));
    // Its own guard (run by its cron file) leaves it be: confirmed, no lease.
    sb.ok(&format!("{dir}/run guard"), &[]);
    let m = state_of(&sb, name, "run-a").manifest.unwrap();
    assert_eq!(
        (m.run_id.as_str(), m.state),
        ("run-a", ManifestState::Confirmed)
    );
    assert_eq!(run_code(&sb, name), Some(11));

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

both_shells!(a_probation_key_value_install_is_confirmed_and_rolled_back);
fn a_probation_key_value_install_is_confirmed_and_rolled_back(shell: Shell) {
    probation_confirmed_and_rolled_back(&KEY_VALUE, shell);
}
both_shells!(a_probation_compact_json_install_is_confirmed_and_rolled_back);
fn a_probation_compact_json_install_is_confirmed_and_rolled_back(shell: Shell) {
    probation_confirmed_and_rolled_back(&COMPACT_JSON, shell);
}
fn probation_confirmed_and_rolled_back(rel: &Release, shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy-p", "/opt/wv/legacy-p");
    let dir = "/var/lib/wavectl/t-legacy-p";
    let ha = sha(A);
    let pa = p(name, path, "run-a", A, &ha);
    old_install_ok(rel, &sb, &pa, false);
    // A probe of that run renews its lease; confirm (this release) writes the
    // confirmation into its manifest, in its form, which its wrapper reads.
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
    let held = sb.ok(&format!("cat \"$1/{}\"", rel.file), &[dir]);
    let confirmed = match rel.format {
        ManifestFormat::KeyValue => "\nstate=confirmed\n",
        _ => "\"state\":\"confirmed\"",
    };
    assert!(held.contains(confirmed), "{held}");
    assert_eq!(Manifest::read(&held).unwrap().format, rel.format);
    assert!(!sb.exists(&format!("{dir}/{}", other_file(rel))));
    assert!(!sb.exists(&format!("{dir}/lease")));
    assert_eq!(run_code(&sb, name), Some(11));
    // Its rollback (a full removal: nothing was there before): everything goes.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(path) && !sb.exists(dir));
    assert_eq!(state_files(&sb, name), "");
}

both_shells!(rolling_back_past_a_key_value_upgrade_drops_its_version);
fn rolling_back_past_a_key_value_upgrade_drops_its_version(shell: Shell) {
    rolling_back_past_an_upgrade(&KEY_VALUE, shell);
}
both_shells!(rolling_back_past_a_compact_json_upgrade_drops_its_version);
fn rolling_back_past_a_compact_json_upgrade_drops_its_version(shell: Shell) {
    rolling_back_past_an_upgrade(&COMPACT_JSON, shell);
}
fn rolling_back_past_an_upgrade(rel: &Release, shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy-s", "/opt/wv/legacy-s");
    let dir = "/var/lib/wavectl/t-legacy-s";
    let (ha, hb) = (sha(A), sha(B));
    old_install_ok(rel, &sb, &p(name, path, "run-a", A, &ha), true);
    old_install_ok(rel, &sb, &p(name, path, "run-b", B, &hb), true);
    assert!(sb.exists(&format!("{dir}/prev/{}", rel.file)));
    // A's rollback, after B upgraded it: B stays; A's version leaves the history, and
    // B's manifest (in its own form) no longer names it.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-a"));
    assert_eq!(r.superseded.as_deref(), Some("run-b"), "{r:?}");
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(&format!("{dir}/prev")));
    let held = sb.ok(&format!("cat \"$1/{}\"", rel.file), &[dir]);
    match rel.format {
        ManifestFormat::KeyValue => assert!(!held.contains("\nprev_"), "{held}"),
        _ => assert!(held.ends_with(",\"prev\":null}\n"), "{held}"),
    }
    let m = state_of(&sb, name, "run-b").manifest.unwrap();
    assert_eq!(
        (m.state, m.prev, m.format),
        (ManifestState::Confirmed, None, rel.format)
    );
    assert_eq!(run_code(&sb, name), Some(12));
    // B's rollback: nothing to bring back, so everything goes.
    let r = remove_on(&sb, name, Some(path), RemoveScope::Run("run-b"));
    assert!(r.clean && r.restored_version.is_none(), "{r:?}");
    assert!(!sb.exists(path) && !sb.exists(dir));
}

// This release's manifest.json over an earlier `manifest` left beside it (an install
// cut short between the two), and a compact manifest.json beside a `manifest`: the
// newer form is the host's record, for every reader.
both_shells!(of_two_manifests_the_newer_form_counts);
fn of_two_manifests_the_newer_form_counts(shell: Shell) {
    let sb = Sandbox::new(shell);
    let (name, path) = ("t-legacy-2", "/opt/wv/legacy-2");
    let dir = "/var/lib/wavectl/t-legacy-2";
    let (ha, hc) = (sha(A), sha(C));
    old_install_ok(&KEY_VALUE, &sb, &p(name, path, "run-a", A, &ha), true);
    let kv = sb.ok("cat \"$1/manifest\"", &[dir]);
    install_ok(&sb, &p(name, path, "run-c", C, &hc));
    // Cut short before the `manifest` went: run-c's manifest.json counts.
    sb.ok("printf '%s' \"$2\" > \"$1/manifest\"", &[dir, &kv]);
    let f = state_of(&sb, name, "run-c");
    let m = f.manifest.unwrap();
    assert_eq!(
        (m.run_id.as_str(), m.state, m.format),
        ("run-c", ManifestState::Probation, ManifestFormat::Json)
    );
    assert_eq!(confirm_on(&sb, name, "run-c"), ConfirmResult::Confirmed);
    assert_eq!(sb.ok("cat \"$1/manifest\"", &[dir]), kv, "left as it was");
    // The compact form counts only alone.
    sb.ok(
        "printf '%s\\n' '{\"name\":\"t-legacy-2\",\"sha256\":\"00\",\"run_id\":\"run-z\",\"installed_at\":1,\"state\":\"probation\",\"backup\":false,\"install_path\":\"/x\",\"activation\":{\"kind\":\"none\",\"schedule\":\"\"},\"lease_secs\":0,\"prev\":null}' > \"$1/manifest.json\"",
        &[dir],
    );
    let m = state_of(&sb, name, "run-c").manifest.unwrap();
    assert_eq!(
        (m.run_id.as_str(), m.format),
        ("run-a", ManifestFormat::KeyValue)
    );
    // A purge recognises every form: everything goes.
    let r = remove_on(&sb, name, None, RemoveScope::All(None));
    assert!(r.clean, "{r:?}");
    assert!(!sb.exists(path) && !sb.exists(dir));
    assert_eq!(state_files(&sb, name), "");
}

// This release's guard (its wrapper, as an install of this release cut short after
// writing it would leave) over an earlier release's install in probation: it reads that
// manifest and reverts the install at boot, exactly as a rollback would.
both_shells!(this_releases_boot_guard_reverts_an_earlier_probation_install);
fn this_releases_boot_guard_reverts_an_earlier_probation_install(shell: Shell) {
    let sb = Sandbox::new(shell);
    let ha = sha(A);
    for (rel, name) in [(&KEY_VALUE, "t-legacy-gk"), (&COMPACT_JSON, "t-legacy-gc")] {
        let path = format!("/opt/wv/{name}");
        let dir = format!("/var/lib/wavectl/{name}");
        sb.ok("printf 'original' > \"$1\"", &[&path]);
        let original = file_facts(&sb, &path);
        old_install_ok(rel, &sb, &p(name, &path, "run-a", A, &ha), false);
        assert!(sb.exists(&format!("{dir}/{}", rel.file)));
        sb.ok(
            "printf '%s' \"$2\" > \"$1/run\"",
            &[&dir, &wrapper_text(name, Duration::from_secs(5))],
        );
        let f = state_of(&sb, name, "run-a");
        assert_eq!(
            f.manifest.map(|m| (m.state, m.format)),
            Some((ManifestState::Probation, rel.format))
        );
        sb.ok(&format!("{dir}/run guard boot"), &[]);
        let log = sb.ok("cat /var/log/wavectl-guard.log", &[]);
        assert!(
            log.contains(&format!(
                "{name} run run-a in probation at boot; reverting it"
            )) && log.contains(&format!("{name} run run-a reverted, clean=1")),
            "{log}"
        );
        assert_eq!(file_facts(&sb, &path), original, "{name}");
        assert!(!sb.exists(&dir), "{name}");
        assert_eq!(state_files(&sb, name), "", "{name}");
        let f = state_of(&sb, name, "run-a");
        assert_eq!(f.manifest, None);
        assert!(f.reverted.as_ref().is_some_and(|r| r.clean), "{f:?}");
    }
}
