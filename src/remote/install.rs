//! Install, the on-host wrapper, one supervised run, confirm. Pure builders of
//! [`RemoteCommand`]s and parsers; no I/O.
//!
//! Install on the host (`scripts/install.sh`), in order:
//!
//! 1. Checks (`scripts/checks.sh`, which `plan --probe` runs too: [`mod@super::preview`]),
//!    first without a lock, then under the host-wide lock and NAME's state lock
//!    (NAME's state directory is made only once they pass); a refusal changes nothing
//!    (no state directory left behind), prints `wavectl-refused <hex reason>` and exits
//!    73: `install_path` is a directory (or not a file); another rollout's state records
//!    the same `install_path`; NAME holds another run's unconfirmed (probation) install,
//!    an unfinished removal (revoked) or a cut-short install (`txn`); NAME is confirmed
//!    at another `install_path`; a purge of NAME left a fence here no earlier than this
//!    run began; and unless `force`: the file at `install_path` is not NAME's and
//!    belongs to an installed package (`dpkg-query -S`, `rpm -qf`), `install_path` is a
//!    symlink to (or lies in a directory that resolves into) a protected path, or a
//!    directory above it (or one a link on the way leads through) is not root's or is
//!    writable by group or others.
//! 2. `txn` (the run id) first; the install path (the claim: the host-wide lock is let
//!    go after it), the sha256, the lease.
//! 3. First install of NAME: `created_dirs` and `backup` (or `backup.none`), once.
//! 4. The script into a private directory made beside `install_path` (`mktemp -d`),
//!    sha256-checked (exit 66), chmod. A failure up to here undoes what this attempt
//!    started.
//! 5. Upgrade (a confirmed install of another run): that version kept whole in `prev/`
//!    (built in `prev.new/`, renamed when complete); then an empty `runs.log`.
//! 6. `mv -fT` into place; the wrapper, `boot_id`, the manifest `manifest.json`
//!    (`probation`; `backup` and `prev_*` set on the host; an earlier release's
//!    `manifest` removed after it), the activation last; `txn` removed; with
//!    `start`, the first run started through the wrapper (detached, as `start_run`
//!    does); prints `wavectl-install ok backup=0|1 prev=<run id or -> started=0|1`.
//!
//! The same run again is idempotent: over its own probation install it redoes 4 and 6
//! without a new snapshot (`prev/` kept); over its own confirmed install it only prints
//! the success line.

use std::time::Duration;

use super::{
    command, compact, secs, sh_quote, unhex, with_lib, Manifest, ManifestFormat, ManifestState,
    RemoteCommand, ACTIVATION_SH, CHECKS_SH, PKG_SH, PROCS_SH, REMOVAL_SH, STATE_DIR,
};
use crate::spec::ActivationKind;

const INSTALL_SH: &str = include_str!("scripts/install.sh");
const WRAPPER_SH: &str = include_str!("scripts/wrapper.sh");
const RUN_ONCE_SH: &str = include_str!("scripts/run_once.sh");
const START_RUN_SH: &str = include_str!("scripts/start_run.sh");
const CONFIRM_SH: &str = include_str!("scripts/confirm.sh");
/// The install's script; the library comes first, evaluated from the wrapper it carries.
const INSTALL_PARTS: &[&str] = &[PKG_SH, CHECKS_SH, INSTALL_SH];
/// The wrapper's library parts, after `lib.sh`.
const WRAPPER_LIB: &[&str] = &[PROCS_SH, ACTIVATION_SH, REMOVAL_SH];

/// Remote timeout of an install (write, hash, back up or snapshot, rename, activate).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Remote timeout of confirm, start_run and read_state.
pub const SMALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The wrapper's `timeout -k` grace before SIGKILL (must match `scripts/wrapper.sh`).
pub const WRAPPER_KILL_AFTER: Duration = Duration::from_secs(10);
/// Added to a run's worst case (script timeout + kill grace) for the remote timeout.
pub const RUN_MARGIN: Duration = Duration::from_secs(15);

/// What `install` needs; everything comes from the resolved spec and the run.
#[derive(Debug, Clone)]
pub struct InstallParams<'a> {
    /// The rollout name, `[a-z0-9][a-z0-9-]*` (checked again on the host).
    pub name: &'a str,
    /// The run that installs it, `[A-Za-z0-9][A-Za-z0-9_-]*` (checked on the host).
    pub run_id: &'a str,
    /// Absolute path of the script on the host.
    pub install_path: &'a str,
    /// File mode of the script, e.g. `0o755`.
    pub mode: u32,
    /// Every run of the script is killed after this (written into the wrapper).
    pub script_timeout: Duration,
    pub activation: ActivationKind,
    /// Cron schedule or systemd OnCalendar value; ignored for `None`. Validated
    /// upstream, and checked again on the host (no control characters; no `%` for cron).
    pub schedule: &'a str,
    /// The script's bytes, sent on stdin.
    pub body: &'a [u8],
    /// Lowercase hex sha256 of `body`; the host refuses a temp file that differs.
    pub sha256: &'a str,
    /// Unix seconds, from the caller's clock.
    pub installed_at: u64,
    /// The probation lease (`policy.lease`): the host reverts itself if no probe of
    /// this run renews it for this long (whole seconds, rounded up). Zero: no lease.
    pub lease: Duration,
    /// Replace a file that belongs to an installed package (`--force`).
    pub force: bool,
    /// Start the first run once the install is complete (`run_on_install`), in the same
    /// command: one session instead of two. Not over an install that was already
    /// confirmed (the same run again).
    pub start: bool,
}

/// How an install ended, from its exit code and stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallResult {
    /// In place. `backup`: a pre-wavectl original is kept; `prev`: the run id of the
    /// confirmed version this install replaced (kept for its rollback).
    /// `started`: the first run was started (see [`InstallParams::start`]).
    Installed {
        backup: bool,
        prev: Option<String>,
        started: bool,
    },
    /// Refused before anything was changed; the reason says what and how to fix it.
    Refused(String),
    /// Failed part-way (or the output was cut short); a removal of this run cleans up.
    Failed(String),
}

/// How a confirm ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmResult {
    Confirmed,
    /// The host does not hold this run's install in probation (it reverted after its
    /// lease expired, holds another run's install, ...): the reason says which.
    Refused(String),
    Failed(String),
}

/// The lease in whole seconds, rounded up (0 stays 0).
fn lease_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// The manifest `install` sends (see [`Manifest`]): state `probation`, `backup` false and
/// `prev_*` null (the host sets those). An error names a value the manifest cannot hold
/// (see [`Manifest::render`]).
pub fn manifest_text(p: &InstallParams) -> Result<String, String> {
    Manifest {
        name: p.name.to_string(),
        run_id: p.run_id.to_string(),
        state: ManifestState::Probation,
        sha256: p.sha256.to_string(),
        installed_at: p.installed_at,
        install_path: p.install_path.to_string(),
        activation: p.activation,
        schedule: match p.activation {
            ActivationKind::None => String::new(),
            _ => p.schedule.to_string(),
        },
        lease_secs: lease_secs(p.lease),
        backup: false,
        prev: None,
        format: ManifestFormat::Json,
    }
    .render()
}

/// The line that ends the wrapper's library part: the install takes the library from
/// the wrapper it carries (everything before this line) instead of a second copy.
pub(super) const LIB_END: &str = ": wavectl-lib-end\n";

/// The wrapper file `/var/lib/wavectl/NAME/run`: `lib.sh`, `procs.sh` and `removal.sh`
/// (constant), the `LIB_END` line, then the `sh_quote`d assignments (NAME, TIMEOUT)
/// and `wrapper.sh` (constant), which reads the install path from NAME's state.
pub fn wrapper_text(name: &str, script_timeout: Duration) -> String {
    format!(
        "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n\
         {}{LIB_END}NAME={}\nTIMEOUT={}\n{}",
        with_lib(WRAPPER_LIB),
        sh_quote(name),
        sh_quote(&secs(script_timeout)),
        compact(WRAPPER_SH),
    )
}

/// Install the script (stdin), its wrapper, manifest and activation on a host; see the
/// module docs. Read the outcome with [`parse_install`].
pub fn install(p: &InstallParams) -> RemoteCommand {
    let mode = format!("{:o}", p.mode & 0o7777);
    let schedule = match p.activation {
        ActivationKind::None => "",
        _ => p.schedule,
    };
    let wrapper = wrapper_text(p.name, p.script_timeout);
    // A value the manifest cannot hold (never from a checked spec and a run id of ours)
    // sends none: the host refuses that (exit 65) before it touches anything.
    let man = manifest_text(p).unwrap_or_default();
    let lease = lease_secs(p.lease).to_string();
    let protected = crate::spec::protected_host_list();
    // No library here: install.sh takes it from the wrapper it carries (see LIB_END).
    command(
        "install",
        &INSTALL_PARTS.iter().map(|p| compact(p)).collect::<String>(),
        &[
            p.name,
            p.install_path,
            &mode,
            p.sha256,
            p.activation.as_str(),
            schedule,
            &wrapper,
            &man,
            p.run_id,
            &lease,
            if p.force { "1" } else { "0" },
            if p.start { "1" } else { "0" },
            &protected,
        ],
        INSTALL_TIMEOUT,
        Duration::from_secs(5),
        Some(p.body.to_vec()),
    )
}

/// The hex reason of the first `wavectl-refused` line, or of the first `wavectl-error`.
pub(super) fn tagged(stdout: &str, tag: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let v = l.strip_prefix(tag)?.strip_prefix(' ')?;
        Some(unhex(v.trim()).unwrap_or_else(|e| e))
    })
}

/// What an install's exit code and stdout say.
pub fn parse_install(code: Option<i32>, stdout: &str) -> InstallResult {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    if code == Some(0) {
        if let Some(rest) = last.and_then(|l| l.strip_prefix("wavectl-install ok ")) {
            let mut backup = None;
            let mut prev = None;
            let mut started = false;
            for f in rest.split_ascii_whitespace() {
                match f.split_once('=') {
                    Some(("backup", v)) => backup = Some(v == "1"),
                    Some(("started", v)) => started = v == "1",
                    Some(("prev", "-")) => prev = Some(None),
                    Some(("prev", v)) => prev = Some(Some(v.to_string())),
                    _ => {}
                }
            }
            if let (Some(backup), Some(prev)) = (backup, prev) {
                return InstallResult::Installed {
                    backup,
                    prev,
                    started,
                };
            }
        }
    }
    if code == Some(73) {
        if let Some(r) = tagged(stdout, "wavectl-refused") {
            return InstallResult::Refused(r);
        }
    }
    InstallResult::Failed(match tagged(stdout, "wavectl-error") {
        Some(e) => format!("install failed (exit {}): {e}", code_str(code)),
        None => format!(
            "install did not finish (exit {}, last line: {:?})",
            code_str(code),
            last.unwrap_or("")
        ),
    })
}

fn code_str(code: Option<i32>) -> String {
    code.map_or_else(|| "none".into(), |c| c.to_string())
}

/// One supervised run through the wrapper; exits with the script's code (124 = its
/// timeout, 78 = refused). Remote timeout = script timeout + kill grace + margin.
pub fn run_once(name: &str, script_timeout: Duration) -> RemoteCommand {
    command(
        "run",
        &with_lib(&[RUN_ONCE_SH]),
        &[name],
        script_timeout + WRAPPER_KILL_AFTER + RUN_MARGIN,
        Duration::from_secs(5),
        None,
    )
}

/// Start one supervised run of NAME's wrapper in the background and return at once,
/// only if the host holds `run_id`'s install (else exit 78): the run is judged from
/// `runs.log` by the probes, so a run that hangs its host is seen as a probe that
/// misses its deadline. Prints `wavectl-start ok pid=N`.
pub fn start_run(name: &str, run_id: &str) -> RemoteCommand {
    command(
        "start run",
        &with_lib(&[START_RUN_SH]),
        &[name, run_id],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// Manifest state probation → confirmed, only if the manifest is `run_id`'s (already
/// confirmed: fine); removes the lease. Read the outcome with [`parse_confirm`].
pub fn confirm(name: &str, run_id: &str) -> RemoteCommand {
    command(
        "confirm",
        &with_lib(&[CONFIRM_SH]),
        &[name, run_id],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// What a confirm's exit code and stdout say.
pub fn parse_confirm(code: Option<i32>, stdout: &str) -> ConfirmResult {
    if code == Some(0) && stdout.lines().any(|l| l == "wavectl-confirm ok") {
        return ConfirmResult::Confirmed;
    }
    if code == Some(78) {
        if let Some(r) = tagged(stdout, "wavectl-refused") {
            return ConfirmResult::Refused(r);
        }
    }
    ConfirmResult::Failed(match tagged(stdout, "wavectl-error") {
        Some(e) => format!("confirm failed (exit {}): {e}", code_str(code)),
        None => format!("confirm did not finish (exit {})", code_str(code)),
    })
}

/// Where the wrapper of NAME lives on a host.
pub fn wrapper_path(name: &str) -> String {
    format!("{STATE_DIR}/{name}/run")
}

/// Every embedded script of this module, for the checks in the tests.
#[cfg(test)]
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut wrapper = WRAPPER_LIB.to_vec();
    // What wrapper_text puts between the library and wrapper.sh.
    wrapper.extend([LIB_END, "NAME='x'\nTIMEOUT='1s'\n", WRAPPER_SH]);
    vec![
        ("install", INSTALL_PARTS.to_vec()),
        ("wrapper", wrapper),
        ("run once", vec![RUN_ONCE_SH]),
        ("start run", vec![START_RUN_SH]),
        ("confirm", vec![CONFIRM_SH]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> InstallParams<'static> {
        InstallParams {
            name: "raid-health",
            run_id: "r1",
            install_path: "/usr/local/sbin/raid health",
            mode: 0o755,
            script_timeout: Duration::from_millis(2500),
            activation: ActivationKind::Cron,
            schedule: "*/5 * * * *",
            body: b"#!/bin/sh\necho hi\n",
            sha256: "00",
            installed_at: 1_700_000_000,
            lease: Duration::from_millis(900_500),
            force: false,
            start: false,
        }
    }

    #[test]
    fn the_manifest_sent_is_in_probation_without_what_the_host_adds() {
        let t = manifest_text(&params()).unwrap();
        let m = Manifest::read(&t).unwrap();
        assert_eq!(
            (m.state, m.activation),
            (ManifestState::Probation, ActivationKind::Cron)
        );
        assert_eq!((m.lease_secs, m.backup, m.prev), (901, false, None));
        assert_eq!(m.install_path, "/usr/local/sbin/raid health");
        assert!(
            t.contains("\n\"backup\": false,\n\"prev_run_id\": null,\n\"prev_sha256\": null,\n"),
            "{t}"
        );
        let mut p = params();
        p.activation = ActivationKind::None;
        assert_eq!(
            Manifest::read(&manifest_text(&p).unwrap())
                .unwrap()
                .schedule,
            ""
        );
        // A run id the host could not read unescaped: no manifest, so the host refuses.
        p.run_id = "r\"1";
        assert!(manifest_text(&p).is_err());
        let c = install(&p);
        assert!(c.line.contains(" '' 'r\"1' "), "{}", c.line);
    }

    #[test]
    fn wrapper_header_is_quoted() {
        let w = wrapper_text("it's $(x)", Duration::from_secs(3));
        assert!(w.starts_with(
            "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n"
        ));
        let (lib, rest) = w.split_once(&format!("\n{LIB_END}")).unwrap();
        assert!(rest.starts_with("NAME='it'\\''s $(x)'\nTIMEOUT='3s'\n"));
        // The install evaluates what comes before the first LIB_END: constant text only.
        assert_eq!(
            format!("{lib}\n"),
            "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n"
                .to_string()
                + &with_lib(&[PROCS_SH, ACTIVATION_SH, REMOVAL_SH])
        );
    }

    #[test]
    fn install_sends_the_body_on_stdin_and_values_as_arguments() {
        let c = install(&params());
        assert_eq!(c.stdin.as_deref(), Some(&b"#!/bin/sh\necho hi\n"[..]));
        assert!(c.line.starts_with("timeout -k 5s 60s sh -c '"));
        assert!(c
            .line
            .contains("wavectl 'raid-health' '/usr/local/sbin/raid health' '755' '00' 'cron' '*/5 * * * *' '#!/bin/sh"));
        let tail = format!(
            "\n\"lease_secs\": 901\n}}\n' 'r1' '901' '0' '0' {}",
            sh_quote(&crate::spec::protected_host_list())
        );
        assert!(c.line.ends_with(&tail), "{}", &c.line[c.line.len() - 80..]);
    }

    #[test]
    fn run_once_timeout_covers_the_script_and_its_kill_grace() {
        let c = run_once("x", Duration::from_secs(120));
        assert_eq!(c.timeout, Duration::from_secs(145));
        assert!(c.line.starts_with("timeout -k 5s 145s sh -c "));
        assert!(c.line.ends_with(" wavectl 'x'"));
        assert!(start_run("x", "r-1").line.ends_with(" wavectl 'x' 'r-1'"));
        assert!(confirm("x", "r-1").line.ends_with(" wavectl 'x' 'r-1'"));
    }

    #[test]
    fn parses_install_outcomes() {
        assert_eq!(
            parse_install(Some(0), "x\nwavectl-install ok backup=1 prev=r0\n"),
            InstallResult::Installed {
                backup: true,
                prev: Some("r0".into()),
                started: false,
            }
        );
        assert_eq!(
            parse_install(Some(0), "wavectl-install ok backup=0 prev=- started=1\n"),
            InstallResult::Installed {
                backup: false,
                prev: None,
                started: true,
            }
        );
        let why = "/usr/bin/x belongs to package coreutils: pass --force to replace it";
        let out = format!(
            "wavectl-refused {}\nwavectl-error {}\n",
            hex::encode(why),
            hex::encode("refused")
        );
        assert_eq!(
            parse_install(Some(73), &out),
            InstallResult::Refused(why.into())
        );
        let out = format!("wavectl-error {}\n", hex::encode("sha256 mismatch"));
        assert_eq!(
            parse_install(Some(66), &out),
            InstallResult::Failed("install failed (exit 66): sha256 mismatch".into())
        );
        // Success words without exit 0, or cut short: failed.
        assert!(matches!(
            parse_install(None, "wavectl-install ok backup=0 prev=-\n"),
            InstallResult::Failed(_)
        ));
        assert!(matches!(
            parse_install(Some(0), ""),
            InstallResult::Failed(_)
        ));
    }

    #[test]
    fn parses_confirm_outcomes() {
        assert_eq!(
            parse_confirm(Some(0), "wavectl-confirm ok\n"),
            ConfirmResult::Confirmed
        );
        let out = format!(
            "wavectl-refused {}\n",
            hex::encode("the lease of run r expired")
        );
        assert_eq!(
            parse_confirm(Some(78), &out),
            ConfirmResult::Refused("the lease of run r expired".into())
        );
        assert!(matches!(
            parse_confirm(Some(255), ""),
            ConfirmResult::Failed(_)
        ));
    }
}
