//! `purge --path PATH`: removal of a script wavectl never installed (put there by hand
//! or by another tool). Pure; no I/O. The host side is `scripts/purge_path.sh`.
//!
//! On the host, never stopping at an error (PATH checked again first: absolute, not
//! `/`, no `.`/`..`/`//` component, no control characters, not a directory or other
//! non-file, not under `/proc`, `/sys`, `/dev` or `/var/lib/wavectl/purged`, and —
//! unless `force` — not a file that belongs to an installed package (`dpkg-query -S`,
//! also with its directory resolved and across the /usr merge; `rpm -qf` where dpkg is
//! absent), and not a symlink to (or a path through a directory that resolves into) a
//! protected path; a refusal is a `problem` line naming the reason, exit 65). Nothing is
//! followed through a symlink:
//!
//! 1. What schedules PATH is disabled first. A line *calls* PATH when PATH occurs in it
//!    as a whole word (before it: line start, blank, quote, backtick or `;|&(`; after
//!    it: line end, blank, quote, backtick, CR or `;|&)<>`), found with `grep -F` and
//!    awk `index()` on `ENVIRON` — never a regex; comment lines never call it. Such
//!    lines in `/etc/crontab`, `/etc/cron.d/*`, `/var/spool/cron/crontabs/*`,
//!    `/var/spool/cron/*` and the scripts in `/etc/cron.{hourly,daily,weekly,monthly}/`
//!    are commented out as `#wavectl-purged# <line>`, every other byte kept, written
//!    in a private directory made beside the original (by `cp -p`: same mode and owner)
//!    and renamed over it (a cron file that is a symlink is replaced by the edited file,
//!    what it led to kept as it was); a run-parts entry that is PATH or a symlink to it
//!    is removed.
//!    Services in `/etc/systemd/system`, `/lib/systemd/system`,
//!    `/usr/lib/systemd/system` whose `ExecStart*=` runs PATH: `systemctl disable
//!    --now` (and a `.timer` of the same name) when systemd runs; a unit in `/etc` is
//!    moved out (with that timer and its `.wants` links), a vendor unit is masked
//!    (never edited; only noted when systemd does not run).
//! 2. Every process whose script argument — argv\[1\], or argv\[2\] after an option
//!    (`sh -e PATH`) — is PATH, or (PATH a regular file) whose executable or an open file
//!    is that very file, is SIGKILLed with its descendants (`procs.sh` `wv_kill_procs`:
//!    each stopped and checked again first), repeating until none is left or the wait is
//!    over; never a process that runs what a link at PATH leads to, never the purge
//!    itself or its parents.
//! 3. PATH (a symlink: the link, not its target) is removed.
//! 4. Verify: PATH gone, nothing runs it, no scanned cron file or `/etc` unit calls it.
//!
//! Before any file is changed or removed an exact copy (`cp -P --preserve=all`, compared:
//! bytes, mode, owner, mtime, xattrs; a symlink's target) is kept at
//! `/var/lib/wavectl/purged/<UTC yyyymmddThhmmssZ>/<original path>` (directory 0700,
//! made only when something is kept); without an exact copy the file is left alone.
//! A second run on a clean host finds, changes and keeps nothing.
//!
//! Report lines (values hex): `found`, `changed`, `saved`, `note`, `problem`;
//! `killed <n>`, `removed 0|1`, `clean 0|1`, then `wavectl-purge-path done`.

use std::time::Duration;

use super::{command, parse_cleanup, wait_secs, with_lib, RemoteCommand, PKG_SH, PROCS_SH};

const PURGE_PATH_SH: &str = include_str!("scripts/purge_path.sh");
/// The script after the library.
const PARTS: &[&str] = &[PKG_SH, PROCS_SH, PURGE_PATH_SH];

/// Time for scanning, systemctl and file work on top of the kill wait.
pub const PURGE_PATH_MARGIN: Duration = Duration::from_secs(60);

/// What `purge --path` found and did on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgePathReport {
    /// What ran or scheduled PATH, and the file: `FILE:LINENO: LINE` for a cron or unit
    /// line, `FILE: run by run-parts`, `process PID: ARGV`, and PATH itself.
    pub found: Vec<String>,
    /// Distinct processes SIGKILLed.
    pub killed: u32,
    /// Files modified (cron lines commented out), moved out, disabled or masked.
    pub changed: Vec<String>,
    /// The copies kept, under `/var/lib/wavectl/purged/<time>/`.
    pub saved: Vec<String>,
    /// The script file was deleted (by this run).
    pub removed: bool,
    /// PATH is gone, nothing runs it and nothing scanned still calls it.
    pub clean: bool,
    /// Problems and notes, `; `-separated (empty when there was nothing to say).
    pub detail: String,
}

/// Purges the script at `path` (absolute; checked again on the host) from a host.
/// `kill_timeout`: how long to keep killing and waiting for processes to go (whole
/// seconds, rounded up). `force`: purge even a file that belongs to a package. Remote
/// timeout = `kill_timeout + PURGE_PATH_MARGIN`.
pub fn purge_path(path: &str, kill_timeout: Duration, force: bool) -> RemoteCommand {
    let wait = wait_secs(kill_timeout);
    command(
        "purge path",
        &with_lib(PARTS),
        &[
            path,
            &wait,
            if force { "1" } else { "0" },
            &crate::spec::protected_host_list(),
        ],
        kill_timeout + PURGE_PATH_MARGIN,
        Duration::from_secs(5),
        None,
    )
}

/// Parses a `purge --path` run's stdout. Output cut short (no `clean` or no final
/// marker) is reported as not clean, with whatever was seen.
pub fn parse_purge_path(stdout: &str) -> PurgePathReport {
    let mut r = PurgePathReport::default();
    (r.clean, r.detail) =
        parse_cleanup(
            stdout,
            "purge",
            "wavectl-purge-path",
            |tag, val, text| match tag {
                "found" => r.found.push(text),
                "changed" => r.changed.push(text),
                "saved" => r.saved.push(text),
                "killed" => r.killed = val.parse().unwrap_or(0),
                "removed" => r.removed = val == "1",
                _ => {}
            },
        );
    r
}

#[cfg(test)]
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![("purge --path", PARTS.to_vec())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::sh_quote;

    #[test]
    fn builds_the_line() {
        let c = purge_path("/opt/a b/it's", Duration::from_millis(1500), false);
        assert!(
            c.line.ends_with(&format!(
                " wavectl '/opt/a b/it'\\''s' '2' '0' {}",
                sh_quote(&crate::spec::protected_host_list())
            )),
            "{}",
            c.line
        );
        assert!(c.line.starts_with("timeout -k 5s 61.5s sh -c '"));
        assert_eq!(c.timeout, Duration::from_millis(61_500));
        assert_eq!(c.what, "purge path");
        // Linux limits one argv string to 128 KiB; ssh hands the line to `$SHELL -c`.
        assert!(c.line.len() < 64 * 1024, "{}", c.line.len());
    }

    #[test]
    fn parses_a_report() {
        let out = format!(
            "found {}\nchanged {}\nsaved {}\nkilled 3\nremoved 1\nnote {}\nproblem {}\nclean 0\nwavectl-purge-path done\n",
            hex::encode("/etc/crontab:4: * * * * * root /x"),
            hex::encode("/etc/crontab"),
            hex::encode("/var/lib/wavectl/purged/20240101T000000Z/etc/crontab"),
            hex::encode("a note"),
            hex::encode("still\nthere"),
        );
        let r = parse_purge_path(&out);
        assert_eq!(r.found, vec!["/etc/crontab:4: * * * * * root /x"]);
        assert_eq!(r.changed, vec!["/etc/crontab"]);
        assert_eq!(
            r.saved,
            vec!["/var/lib/wavectl/purged/20240101T000000Z/etc/crontab"]
        );
        assert_eq!(r.killed, 3);
        assert!(r.removed && !r.clean);
        assert_eq!(r.detail, "a note; problem: still\nthere");
    }

    #[test]
    fn clean_host_and_cut_output() {
        let r = parse_purge_path("killed 0\nremoved 0\nclean 1\nwavectl-purge-path done\n");
        assert_eq!(
            r,
            PurgePathReport {
                clean: true,
                ..Default::default()
            }
        );
        let r = parse_purge_path("killed 0\nremoved 0\n");
        assert!(!r.clean && r.detail.contains("incomplete"));
    }
}
