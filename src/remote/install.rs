//! Install, the on-host wrapper, one supervised run, confirm, and reading the manifest.
//! Pure builders of [`RemoteCommand`]s and a parser; no I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{command, secs, sh_quote, with_lib, RemoteCommand, STATE_DIR};
use crate::spec::ActivationKind;

const INSTALL_SH: &str = include_str!("scripts/install.sh");
const WRAPPER_SH: &str = include_str!("scripts/wrapper.sh");
const RUN_ONCE_SH: &str = include_str!("scripts/run_once.sh");
const CONFIRM_SH: &str = include_str!("scripts/confirm.sh");
const READ_MANIFEST_SH: &str = include_str!("scripts/read_manifest.sh");

/// Remote timeout of an install (write, hash, back up, rename, activate).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Remote timeout of confirm and read_manifest.
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
    /// The run that installs it, recorded in the manifest.
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
}

/// The host's own record of what wavectl installed: `/var/lib/wavectl/NAME/manifest.json`,
/// compact JSON. `state` is `probation`, `confirmed` or `revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub sha256: String,
    pub run_id: String,
    pub installed_at: u64,
    pub state: String,
    /// A backup of the pre-wavectl file exists (`/var/lib/wavectl/NAME/backup`).
    pub backup: bool,
    pub install_path: String,
    pub activation: ManifestActivation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestActivation {
    /// `cron`, `systemd-timer` or `none`.
    pub kind: String,
    pub schedule: String,
}

fn kind_str(k: ActivationKind) -> &'static str {
    match k {
        ActivationKind::Cron => "cron",
        ActivationKind::SystemdTimer => "systemd-timer",
        ActivationKind::None => "none",
    }
}

/// The manifest JSON `install` writes (state `probation`).
pub fn manifest_json(p: &InstallParams, backup: bool) -> String {
    let kind = kind_str(p.activation);
    let m = Manifest {
        name: p.name.to_string(),
        sha256: p.sha256.to_string(),
        run_id: p.run_id.to_string(),
        installed_at: p.installed_at,
        state: "probation".into(),
        backup,
        install_path: p.install_path.to_string(),
        activation: ManifestActivation {
            kind: kind.into(),
            schedule: if kind == "none" {
                String::new()
            } else {
                p.schedule.to_string()
            },
        },
    };
    serde_json::to_string(&m).expect("a manifest always serializes")
}

/// The wrapper file `/var/lib/wavectl/NAME/run`: a header of `sh_quote`d assignments
/// (NAME, INSTALL_PATH, TIMEOUT), then `lib.sh` and `wrapper.sh`, both constant.
pub fn wrapper_text(name: &str, install_path: &str, script_timeout: Duration) -> String {
    let header = format!(
        "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n\
         NAME={}\nINSTALL_PATH={}\nTIMEOUT={}\n",
        sh_quote(name),
        sh_quote(install_path),
        sh_quote(&secs(script_timeout)),
    );
    header + &with_lib(WRAPPER_SH)
}

/// Install the script (stdin), its wrapper, manifest and activation on a host.
/// Prints `wavectl-install ok backup=0|1` on success; see `scripts/install.sh`.
pub fn install(p: &InstallParams) -> RemoteCommand {
    let mode = format!("{:o}", p.mode & 0o7777);
    let schedule = match p.activation {
        ActivationKind::None => "",
        _ => p.schedule,
    };
    let wrapper = wrapper_text(p.name, p.install_path, p.script_timeout);
    let man0 = manifest_json(p, false);
    let man1 = manifest_json(p, true);
    command(
        "install",
        &with_lib(INSTALL_SH),
        &[
            p.name,
            p.install_path,
            &mode,
            p.sha256,
            kind_str(p.activation),
            schedule,
            &wrapper,
            &man0,
            &man1,
        ],
        INSTALL_TIMEOUT,
        Duration::from_secs(5),
        Some(p.body.to_vec()),
    )
}

/// Whether an install's stdout ends with success, and whether a backup was kept.
pub fn parse_install(stdout: &str) -> Result<bool, String> {
    match stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        Some("wavectl-install ok backup=1") => Ok(true),
        Some("wavectl-install ok backup=0") => Ok(false),
        other => Err(format!("install did not finish (last line: {other:?})")),
    }
}

/// One supervised run through the wrapper; exits with the script's code (124 = its
/// timeout, 78 = refused). Remote timeout = script timeout + kill grace + margin.
pub fn run_once(name: &str, script_timeout: Duration) -> RemoteCommand {
    command(
        "run",
        &with_lib(RUN_ONCE_SH),
        &[name],
        script_timeout + WRAPPER_KILL_AFTER + RUN_MARGIN,
        Duration::from_secs(5),
        None,
    )
}

/// Manifest state probation → confirmed; prints `wavectl-confirm ok state=confirmed`,
/// exits 78 if the manifest is missing or revoked.
pub fn confirm(name: &str) -> RemoteCommand {
    command(
        "confirm",
        &with_lib(CONFIRM_SH),
        &[name],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// Prints `wavectl-manifest` and the manifest JSON, or `wavectl-manifest none`.
pub fn read_manifest(name: &str) -> RemoteCommand {
    command(
        "read manifest",
        &with_lib(READ_MANIFEST_SH),
        &[name],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// Parses [`read_manifest`]'s output: `Ok(None)` when the host has no manifest.
pub fn parse_manifest(stdout: &str) -> Result<Option<Manifest>, String> {
    let mut lines = stdout.lines().skip_while(|l| l.trim().is_empty());
    match lines.next() {
        Some("wavectl-manifest none") => Ok(None),
        Some("wavectl-manifest") => {
            let json: String = lines.collect::<Vec<_>>().join("\n");
            serde_json::from_str(json.trim())
                .map(Some)
                .map_err(|e| format!("unreadable manifest: {e}"))
        }
        other => Err(format!("unexpected read-manifest output: {other:?}")),
    }
}

/// Where the wrapper of NAME lives on a host.
pub fn wrapper_path(name: &str) -> String {
    format!("{STATE_DIR}/{name}/run")
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
        }
    }

    #[test]
    fn manifest_is_compact_json_with_state_probation() {
        let j = manifest_json(&params(), true);
        assert!(j.contains("\"state\":\"probation\""), "{j}");
        assert!(j.contains("\"backup\":true"), "{j}");
        let m: Manifest = serde_json::from_str(&j).unwrap();
        assert_eq!(m.activation.kind, "cron");
        assert_eq!(m.install_path, "/usr/local/sbin/raid health");
    }

    #[test]
    fn wrapper_header_is_quoted() {
        let w = wrapper_text("n", "/opt/it's $(x)", Duration::from_secs(3));
        assert!(w.starts_with(
            "#!/bin/sh\n# wavectl wrapper: written by wavectl install, removed by rollback or purge\n\
             NAME='n'\nINSTALL_PATH='/opt/it'\\''s $(x)'\nTIMEOUT='3s'\n"
        ));
    }

    #[test]
    fn install_sends_the_body_on_stdin_and_values_as_arguments() {
        let c = install(&params());
        assert_eq!(c.stdin.as_deref(), Some(&b"#!/bin/sh\necho hi\n"[..]));
        assert!(c.line.starts_with("timeout -k 5s 60s sh -c '"));
        assert!(c
            .line
            .contains("wavectl 'raid-health' '/usr/local/sbin/raid health' '755' '00' 'cron' '*/5 * * * *' '#!/bin/sh"));
    }

    #[test]
    fn run_once_timeout_covers_the_script_and_its_kill_grace() {
        let c = run_once("x", Duration::from_secs(120));
        assert_eq!(c.timeout, Duration::from_secs(145));
        assert!(c.line.starts_with("timeout -k 5s 145s sh -c "));
        assert!(c.line.ends_with(" wavectl 'x'"));
    }

    #[test]
    fn parses_manifest_output() {
        assert_eq!(parse_manifest("wavectl-manifest none\n"), Ok(None));
        let j = manifest_json(&params(), false);
        let m = parse_manifest(&format!("wavectl-manifest\n{j}\n"))
            .unwrap()
            .unwrap();
        assert!(!m.backup);
        assert!(parse_manifest("garbage").is_err());
        assert_eq!(parse_install("x\nwavectl-install ok backup=1\n"), Ok(true));
        assert!(parse_install("").is_err());
    }
}
