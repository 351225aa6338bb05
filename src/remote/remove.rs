//! Rollback/purge by NAME: the remote removal command and the parser of its report.
//! Pure; no I/O. The host side is `wv_remove_all` in `scripts/lib.sh`.
//!
//! On the host, in order, never stopping at an error: mark the manifest `revoked`
//! (the wrapper then refuses to run); remove the cron file and the systemd units
//! (disable, delete, daemon-reload when systemd runs); SIGKILL the pid file's process
//! group and every process whose argv\[0\] or argv\[1\] is the wrapper or the install
//! path (never the removal itself, its parents or its subshells), repeating until
//! two passes find nothing or the wait is over; restore the backup (`cp -Pp` to a
//! temp beside install_path, rename, `cmp`), or without a backup delete the file at
//! install_path only if its sha256 is one wavectl installed under NAME (a changed
//! file is kept and noted, not a failure); delete `<install_path>.wavectl-new`;
//! verify; and only if all went well delete `/var/lib/wavectl/NAME` — otherwise it
//! stays (state revoked, backup kept) so a retry can finish. Processes running the
//! install path are killed only if the host has wavectl state for NAME, so a repeat
//! removal never kills the restored original.
//!
//! Report lines (paths and messages hex, as in the probe): `found <hex>`,
//! `killed <n>`, `restored 0|1`, `removed <hex>`, `note <hex>`, `problem <hex>`,
//! `clean 0|1`, then `wavectl-remove done`.

use std::time::Duration;

use super::{command, parse_cleanup, wait_secs, with_lib, RemoteCommand};

const REMOVE_SH: &str = include_str!("scripts/remove.sh");

/// Time for systemctl and file work on top of the kill wait.
pub const REMOVE_MARGIN: Duration = Duration::from_secs(40);

/// What a removal found and did on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovalReport {
    /// wavectl's things that were there: the state directory, cron file, units, temp file.
    pub found: Vec<String>,
    /// Distinct processes SIGKILLed.
    pub killed: u32,
    /// The backup was put back at install_path and compared equal.
    pub restored: bool,
    /// Files and directories deleted.
    pub removed: Vec<String>,
    /// Nothing of wavectl's is left for NAME and nothing of it runs.
    pub clean: bool,
    /// Problems and notes, `; `-separated (empty when there was nothing to say).
    pub detail: String,
}

/// Removes NAME from a host. `install_path`: from the spec; `None` reads it from the
/// host's state (purge has no spec). `kill_timeout`: how long to keep killing and
/// waiting for processes to go (whole seconds, rounded up). Remote timeout =
/// `kill_timeout + REMOVE_MARGIN`.
pub fn remove(name: &str, install_path: Option<&str>, kill_timeout: Duration) -> RemoteCommand {
    let wait = wait_secs(kill_timeout);
    command(
        "remove",
        &with_lib(REMOVE_SH),
        &[name, install_path.unwrap_or(""), &wait],
        kill_timeout + REMOVE_MARGIN,
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
                _ => {}
            },
        );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_line() {
        let c = remove("x", Some("/opt/a b"), Duration::from_millis(1500));
        assert!(
            c.line.ends_with(" wavectl 'x' '/opt/a b' '2'"),
            "{}",
            c.line
        );
        assert_eq!(c.timeout, Duration::from_millis(41_500));
        let c = remove("x", None, Duration::from_secs(10));
        assert!(c.line.ends_with(" wavectl 'x' '' '10'"));
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
        assert_eq!(r.detail, "kept it; problem: still\nthere");
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
