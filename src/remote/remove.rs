//! Rollback/purge by NAME: the remote removal command and the parser of its report.
//! Pure; no I/O. The host side is `wv_remove_run` / `wv_remove_full` in
//! `scripts/removal.sh`.
//!
//! A removal takes NAME's state lock first (waiting up to the kill wait): one that cannot have it
//! changes nothing, says so (a `problem`) and reports `clean 0`, so the host stays
//! pending. A purge (`All` with a fence) first leaves its run id as NAME's fence
//! (`/var/lib/wavectl/.fences/NAME`, never moved back to an older purge's): an install
//! by a run that began before it refuses.
//!
//! A removal is scoped ([`RemoveScope`]):
//!
//! - `Run(R)` undoes R's install and only R's. The host is R's if `txn` names R, or
//!   (no `txn`) the manifest does. Otherwise nothing of the install in place is touched
//!   and nothing killed:
//!   - the host holds again what R's own undoing left (`removed` says so: R was undone
//!     here before and the answer was lost): `other <hex run id> <state>`, `clean 1`;
//!   - another run's install is unfinished (`txn`): `other <hex run id> installing`
//!     and a problem (`clean 0`);
//!   - NAME is held by another, newer run: `superseded <hex run id>` and `clean 1`;
//!     if R's version is the one kept for that run's rollback (`prev/`), it is dropped
//!     first (and that run's manifest says `"prev":null`), so no later rollback brings
//!     R's version back;
//!   - no run's install at all: the activation files whose first line names R
//!     (`# wavectl NAME run R`) go — R wrote them, its state directory went under it.
//!
//!   When R's:
//!   - `prev/` is complete and was kept for R: the previous version comes back whole.
//!     The manifest is marked `revoked` (R's wrapper refuses), R's activation dropped,
//!     running copies killed (if the manifest was R's), then prev's script (exact copy,
//!     tmp + `mv -fT`; its sha256 compared with prev's manifest), wrapper, runs.log,
//!     activation files (enabled again where the scheduler needs it), and prev's
//!     manifest (`confirmed`) last; lease, `prev/` and `txn` removed;
//!     `restored-version <hex run id>`.
//!   - `txn` is R but the manifest is still the previous version and no snapshot was
//!     completed (an install cut short before it changed anything): `prev.new/`,
//!     the private directories beside `install_path` (`.wavectl-NAME.*`), the lease
//!     and `txn` go (`removed` notes it); nothing else is touched.
//!   - otherwise a full removal (below).
//! - `All` (purge): a full removal of every version, `prev/` and
//!   `/var/lib/wavectl/.reverted/NAME` included.
//!
//! A full removal, in order, never stopping at an error: mark the manifest `revoked`;
//! remove the cron file and the five systemd units (disable, delete, daemon-reload when
//! systemd runs); SIGKILL what is NAME's (`scripts/procs.sh`): every process in NAME's
//! cgroups (each run's scope or cgroup directory, detached children included), the pid
//! file's `timeout` and its process group while boot id, pid and start time match (a
//! record of another boot is discarded unread), every process whose script argument or
//! executable is the wrapper or the install path (never what a symlink there leads to;
//! never copies of a pre-wavectl original still in place), and their descendants; each
//! stopped and checked again before it is killed, never the removal itself, its parents
//! or its subshells; repeating until two passes find nothing or the wait is over; then
//! NAME's empty cgroup directories go; restore the backup
//! (exact copy: bytes, mode, owner, timestamps, xattrs; a symlink as the link) or
//! without one delete the file at install_path only if its sha256 is one wavectl
//! installed under NAME (a changed file is kept and noted, not a failure); delete the
//! private directories an install or restore of NAME left beside it (`.wavectl-NAME.*`,
//! real directories only); remove the directories the first install created
//! (innermost first, only if empty; a non-empty one is noted); verify; and only if all
//! went well delete `/var/lib/wavectl/NAME` — otherwise it stays (state revoked, backup
//! kept) so a retry can finish.
//!
//! Report lines (paths and messages hex, as in the probe): `found <hex>`, `other <hex
//! run id> <state>`, `superseded <hex run id>`, `killed <n>`, `restored 0|1` (the
//! pre-wavectl original), `restored-version <hex run id>`, `removed <hex>`, `note
//! <hex>`, `problem <hex>`, `clean 0|1`, then `wavectl-remove done`.

use std::time::Duration;

use super::{
    command, parse_cleanup, unhex, wait_secs, with_lib, RemoteCommand, ACTIVATION_SH, PROCS_SH,
    REMOVAL_SH,
};

const REMOVE_SH: &str = include_str!("scripts/remove.sh");
/// The removal's script after the library.
const PARTS: &[&str] = &[PROCS_SH, ACTIVATION_SH, REMOVAL_SH, REMOVE_SH];

/// Time for systemctl and file work on top of the kill wait.
pub const REMOVE_MARGIN: Duration = Duration::from_secs(40);

/// What a removal found and did on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovalReport {
    /// wavectl's things that were there: the state directory, cron file, units, temp file.
    pub found: Vec<String>,
    /// Distinct processes SIGKILLed.
    pub killed: u32,
    /// The pre-wavectl original was put back at install_path and compared equal.
    pub restored: bool,
    /// The previous version (this run id) was brought back whole.
    pub restored_version: Option<String>,
    /// The host holds another run's install (run id, state), left alone.
    pub other: Option<(String, String)>,
    /// The rollout stays on the host under this newer run (this run's version, if it
    /// was kept for that run's rollback, was dropped from the host's history).
    pub superseded: Option<String>,
    /// Files and directories deleted.
    pub removed: Vec<String>,
    /// The scope's work is done: nothing of the removed install(s) is left or runs (a
    /// host holding another run's install, left alone, is clean for `Run`).
    pub clean: bool,
    /// Problems and notes, `; `-separated (empty when there was nothing to say).
    pub detail: String,
}

/// What a removal undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveScope<'a> {
    /// This run's install only (rollback, reconcile of an apply).
    Run(&'a str),
    /// Every version of NAME, and the pre-wavectl original back (purge); with the
    /// purge's run id, left first as NAME's fence.
    All(Option<&'a str>),
}

/// Removes NAME from a host, within `scope`. `install_path`: from the spec; `None`
/// reads it from the host's state (purge has no spec). `kill_timeout`: how long to wait
/// for NAME's state lock, then how long to keep killing and waiting for processes to go
/// (whole seconds, rounded up). Remote timeout = `2 × kill_timeout + REMOVE_MARGIN`.
pub fn remove(
    name: &str,
    install_path: Option<&str>,
    scope: RemoveScope,
    kill_timeout: Duration,
) -> RemoteCommand {
    let wait = wait_secs(kill_timeout);
    let (scope, fence) = match scope {
        RemoveScope::Run(r) => (r, ""),
        RemoveScope::All(fence) => ("*all*", fence.unwrap_or("")),
    };
    command(
        "remove",
        &with_lib(PARTS),
        &[name, install_path.unwrap_or(""), &wait, scope, fence],
        kill_timeout * 2 + REMOVE_MARGIN,
        Duration::from_secs(5),
        None,
    )
}

/// Parses a removal's stdout. Output cut short (no `clean` or no final marker) is
/// reported as not clean, with whatever was seen.
pub fn parse_remove(stdout: &str) -> RemovalReport {
    let mut r = RemovalReport::default();
    (r.clean, r.detail) =
        parse_cleanup(
            stdout,
            "removal",
            "wavectl-remove",
            |tag, val, text| match tag {
                "found" => r.found.push(text),
                "removed" => r.removed.push(text),
                "killed" => r.killed = val.parse().unwrap_or(0),
                "restored" => r.restored = val == "1",
                "restored-version" => r.restored_version = Some(text),
                "other" => {
                    let (run, state) = val.split_once(' ').unwrap_or((val, ""));
                    r.other = Some((unhex(run).unwrap_or_else(|e| e), state.to_string()));
                }
                "superseded" => r.superseded = Some(text),
                _ => {}
            },
        );
    r
}

#[cfg(test)]
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![("remove", PARTS.to_vec())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_line() {
        let c = remove(
            "x",
            Some("/opt/a b"),
            RemoveScope::Run("r-1"),
            Duration::from_millis(1500),
        );
        assert!(
            c.line.ends_with(" wavectl 'x' '/opt/a b' '2' 'r-1' ''"),
            "{}",
            c.line
        );
        assert_eq!(c.timeout, Duration::from_millis(43_000));
        let c = remove("x", None, RemoveScope::All(None), Duration::from_secs(10));
        assert!(c.line.ends_with(" wavectl 'x' '' '10' '*all*' ''"));
        let c = remove(
            "x",
            None,
            RemoveScope::All(Some("p-1")),
            Duration::from_secs(10),
        );
        assert!(c.line.ends_with(" wavectl 'x' '' '10' '*all*' 'p-1'"));
    }

    #[test]
    fn parses_a_report() {
        let out = format!(
            "found {}\nremoved {}\nkilled 2\nrestored 1\nnote {}\nproblem {}\nclean 0\nwavectl-remove done\n",
            hex::encode("/var/lib/wavectl/x"),
            hex::encode("/etc/cron.d/wavectl-x"),
            hex::encode("kept it"),
            hex::encode("still\nthere"),
        );
        let r = parse_remove(&out);
        assert_eq!(r.found, vec!["/var/lib/wavectl/x"]);
        assert_eq!(r.removed, vec!["/etc/cron.d/wavectl-x"]);
        assert_eq!(r.killed, 2);
        assert!(r.restored);
        assert!(!r.clean);
        assert_eq!((r.restored_version, r.other), (None, None));
        assert_eq!(r.detail, "kept it; problem: still\nthere");
    }

    #[test]
    fn parses_a_version_restore_and_another_run() {
        let out = format!(
            "found {}\nkilled 1\nrestored 0\nrestored-version {}\nclean 1\nwavectl-remove done\n",
            hex::encode("/var/lib/wavectl/x"),
            hex::encode("run-a"),
        );
        let r = parse_remove(&out);
        assert_eq!(r.restored_version.as_deref(), Some("run-a"));
        assert!(r.clean && !r.restored);
        let out = format!(
            "other {} confirmed\nkilled 0\nrestored 0\nclean 1\nwavectl-remove done\n",
            hex::encode("run-b")
        );
        let r = parse_remove(&out);
        assert_eq!(r.other, Some(("run-b".into(), "confirmed".into())));
        assert!(r.clean && r.found.is_empty());
        let out = format!(
            "superseded {}\nkilled 0\nrestored 0\nclean 1\nwavectl-remove done\n",
            hex::encode("run-c")
        );
        let r = parse_remove(&out);
        assert_eq!(r.superseded.as_deref(), Some("run-c"));
        assert!(r.clean && r.other.is_none());
    }

    #[test]
    fn clean_host_and_cut_output() {
        let r = parse_remove("killed 0\nrestored 0\nclean 1\nwavectl-remove done\n");
        assert!(r.clean && r.found.is_empty() && r.detail.is_empty());
        let r = parse_remove("killed 0\nrestored 0\n");
        assert!(!r.clean);
        assert!(r.detail.contains("incomplete"));
    }
}
