//! The on-host side: every remote command line and script, built and quoted in one place.
//! Pure text building and parsing; the transport carries the commands out.
//!
//! Every command line has the same shape:
//!
//! ```text
//! timeout -k <kill-after>s <T>s sh -c '<constant script>' wavectl '<arg1>' '<arg2>' ...
//! ```
//!
//! On a host with `become` (a non-root login), the transport sends
//! [`RemoteCommand::line_as`]: the same line behind `sudo -n --`, a constant prefix (no
//! value is added, so quoting stays here); before the first command of a connection it
//! checks with [`become_check`] that sudo runs without a password.
//!
//! The scripts (`scripts/*.sh`, embedded with `include_str!`) are constant POSIX sh;
//! every dynamic value reaches them as a positional argument quoted by
//! [`quote::sh_quote`], so no user value is ever spliced into script text.
//! `scripts/lib.sh` (paths, the manifest, locks, the lease, fences, enabling and removing
//! the activation files — `install.sh` writes them —, exact copies) is concatenated in
//! front of every script; `procs.sh` (the runs' cgroups, and finding and killing what is
//! ours: by cgroup, by pid + start time + boot id, by what runs a path) and `removal.sh`
//! (removal and the guard) in front of `remove.sh` and into the wrapper; `pkg.sh` (what
//! a path is: package ownership, where a link leads, who may write its directories) for
//! install, `plan --probe` and purge --path; `checks.sh` (the install's refusals) for
//! install and `plan --probe` ([`mod@preview`]); `report.sh` for probe and settle. The
//! install carries the library once, as the first part of the wrapper it writes, and
//! evaluates it from there (`install::LIB_END`).
//!
//! "Asking a host what it holds" is *settle* ([`settle()`], answered by a
//! [`SettleReport`]; the engine's `Op::Settle` decides a `Finding` from it); what a
//! probe reads is a `ProbeReport`, what a removal did a [`RemovalReport`], what `plan
//! --probe` saw a [`PreviewReport`].
//!
//! Comment lines and blank lines are dropped when a script is embedded (`compact`), so
//! the source files stay commented while the command lines stay short (the install,
//! which carries the wrapper, is ~47 KB; a test keeps every line under 48 KiB, another
//! checks that no dropped line sits inside a string).
//!
//! Versions: a run installed over another run's *confirmed* install is an upgrade; the
//! version in place is kept whole in `prev/` (one level: the previous version of the
//! newest), and a removal scoped to the newer run brings it back (see [`mod@remove`]).
//! The manifest of an install in probation holds a lease (host clock) that probes of
//! the same run renew; the wrapper's guard (every minute, and at boot) reverts a
//! probation install whose lease ran out — at boot whatever the lease — exactly as that
//! run's removal would, and records it in `/var/lib/wavectl/.reverted/NAME`.
//!
//! On-host layout (NAME is `[a-z0-9][a-z0-9-]*`, a run id `[A-Za-z0-9][A-Za-z0-9_-]*`;
//! both checked again on the host):
//!
//! | path | what |
//! |---|---|
//! | `install_path` | the script (written in a private directory made beside it, `.wavectl-NAME.XXXXXXXX` by `mktemp -d`, sha256-checked, renamed with `mv -fT`: a symlink there is replaced, never followed) |
//! | `/var/lib/wavectl/NAME/manifest.json` | [`Manifest`], JSON with one top-level field a line ([`mod@manifest`]): name, sha256, run_id, installed_at, state (`probation` → `confirmed`; `revoked` while removed), backup, prev_run_id, prev_sha256, install_path, activation, schedule, lease_secs. A version installed by an earlier release has that release's form instead (`manifest`, `KEY=VALUE` lines; or a compact one-line `manifest.json`), read and kept as it is until an install replaces it |
//! | `/var/lib/wavectl/NAME/txn` | the run id of an install in progress: written first, removed last (a cut-short install leaves it) |
//! | `/var/lib/wavectl/NAME/lease` | unix seconds (host clock) until which the probation lease runs; renewed by probes of the same run, removed at confirm |
//! | `/var/lib/wavectl/NAME/prev/` | the previous confirmed version, whole, for a rollback of the newest: `script` (exact copy), `manifest.json` (or an earlier release's `manifest`), `run`, `runs.log`, the activation files (`cron` or `units/`), `for` (the run it was kept for), `complete` (written last); built in `prev.new/`, renamed when complete; kept after confirm, replaced by the next upgrade |
//! | `/var/lib/wavectl/NAME/backup` | the pre-wavectl original at `install_path` (`cp -a --preserve=all`: mode, owner, timestamps, xattrs, a symlink as the link), decided at the first install, restored by a full removal |
//! | `/var/lib/wavectl/NAME/backup.none` | marker: nothing was at `install_path` before wavectl |
//! | `/var/lib/wavectl/NAME/created_dirs` | the outermost parent directory of `install_path` the first install created (raw bytes; every directory between it and `install_path` was created too); a full removal removes them again if empty |
//! | `/var/lib/wavectl/NAME/run` | the wrapper (see `scripts/wrapper.sh`); `run guard` = the lease guard, `run guard boot` = the boot guard |
//! | `/var/lib/wavectl/NAME/install_path` | the install path, raw bytes (used by removal without a spec) |
//! | `/var/lib/wavectl/NAME/sha256s` | every sha256 installed under NAME, one per line |
//! | `/var/lib/wavectl/NAME/boot_id` | the kernel boot id at install (the wrapper refuses a probation run after a reboot) |
//! | `/var/lib/wavectl/NAME/runs.log` | one line per run of this version: `<start_unix> <end_unix> <exit_code> <run_id>` (old 3-field lines are run `-`) |
//! | `/var/lib/wavectl/NAME/last.log` | the script's output, appended, capped at ~256 KiB (each run's stdout, then its stderr) |
//! | `/var/lib/wavectl/NAME/failed.log` | one line per failed run: `<start> <end> <exit> <run_id> <hex of its stderr's last lines>`, the last 64 kept (the probe's `runerr`) |
//! | `/var/lib/wavectl/NAME/pid` | `<boot id> <pid> <start time>` of the running `timeout` (pid = its process group; start time = `/proc/PID/stat` field 22): signalled only while all three match; a record of another boot is discarded unread |
//! | `wavectl-NAME_<pid>.scope` / `<pid 1's cgroup>/wavectl-NAME/run<pid>` | the run's cgroup: a transient systemd scope (`systemd-run --scope`) where systemd runs, else a cgroup directory under pid 1's own cgroup in the freezer hierarchy (v1) or the unified one (v2); a removal kills every process in NAME's (each stopped and checked once stopped), then removes the empty directories |
//! | `/var/lib/wavectl/NAME/removed` | `<run id> <run id or ->` per run undone here: what the host held again (`-`: the run's version was dropped under a newer run) |
//! | `/var/lib/wavectl/.fences/NAME` | the run id of the latest purge of NAME to reach the host (never moved back); an install by a run that began no later refuses |
//! | `/run/wavectl.lock` | the host-wide `flock` under which an install checks and claims its `install_path` (else `/var/lib/wavectl/.lock`) |
//! | `/var/lib/wavectl/NAME/lock` | `flock` against overlapping runs |
//! | `/var/lib/wavectl/NAME/state.lock` | `flock` between install, removal, confirm, lease renewal and the guard |
//! | `/var/lib/wavectl/.reverted/NAME` | the guard reverted a run: `<run_id> <lease_until> <reverted_at> <clean 0\|1>` |
//! | activation files | each kind's, written, removed, kept in `prev/` and restored by `scripts/activation.sh` (which lists them; docs/HOSTS.md too): they run the script on its schedule, the lease guard every minute (`run guard`) and the boot guard (`run guard boot`); activation `none` writes the guards only; each file's first line names the run that wrote it |
//! | `/var/log/wavectl-guard.log` | what the guards did (also sent to syslog via `logger -t wavectl`) |
//! | `/var/lib/wavectl/purged/<UTC time>/<original path>` | copies of what `purge --path` changed or removed |
//!
//! Exit codes of the host scripts: 0 ok; 65 invalid argument (and `purge --path`
//! refusals, reported as `problem` lines); 66 sha256 mismatch (install); 73 install
//! refused, nothing changed (`wavectl-refused <hex reason>` on stdout); 75 NAME's state
//! lock or the host-wide lock is busy (install, confirm); 78 refused by the wrapper, `run_once`, `start_run`
//! or `confirm` (confirm also prints `wavectl-refused <hex reason>`). A script that
//! stops on an error prints `wavectl-error <hex message>` on stdout (and the message on
//! stderr). The install reads its stdin (the script body) to the end even when it
//! refuses, so the sender can always finish writing it. The preview exits 0 whatever it
//! finds (a refusal it foresees is a `refused` line), 65 on an invalid argument.

pub mod host_probe;
pub mod install;
pub mod manifest;
pub mod preview;
pub mod purge_path;
pub mod quote;
pub mod remove;
pub mod settle;

#[cfg(test)]
mod host_tests;
#[cfg(test)]
mod legacy_tests;
#[cfg(test)]
mod ownership_tests;
#[cfg(test)]
mod preview_tests;
#[cfg(test)]
mod purge_path_tests;
#[cfg(test)]
mod sandbox;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod version_tests;

use std::time::Duration;

pub use crate::rollout::probe_report::Reverted;
pub use host_probe::{check_timeout, parse_probe, probe};
pub use install::{
    confirm, install, manifest_text, parse_confirm, parse_install, run_once, start_run,
    wrapper_path, wrapper_text, ConfirmResult, InstallParams, InstallResult,
};
pub use manifest::{Manifest, ManifestFormat, ManifestState, PrevVersion};
pub use preview::{parse_preview, preview, Holds, PreviewParams, PreviewReport};
pub use purge_path::{parse_purge_path, purge_path, PurgePathReport};
pub use quote::{sh_join, sh_quote};
pub use remove::{parse_remove, remove, RemovalReport, RemoveScope};
pub use settle::{parse_settle, settle, SettleReport};

/// Where wavectl keeps its per-NAME state on a host.
pub const STATE_DIR: &str = "/var/lib/wavectl";

/// `$0` of every remote `sh -c`, so `ps` shows what runs.
const ARGV0: &str = "wavectl";

/// A command for the transport: run `line` as the ssh remote command, feed `stdin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    /// The whole remote command line, already quoted; the remote login shell runs it.
    pub line: String,
    /// Bytes written to the command's stdin, then stdin is closed (None: close at once).
    pub stdin: Option<Vec<u8>>,
    /// The remote `timeout` given to the command; the transport's local deadline is
    /// this plus its own grace.
    pub timeout: Duration,
    /// What the command is for, for messages ("install", "probe", ...).
    pub what: &'static str,
}

/// What runs a command as root on a `become` host: sudo, never asking for a password
/// (`-n`: a sudo that would ask fails at once instead), and `--` so nothing after it is
/// read as sudo's option. sudo passes stdin through (the install's script body) when it
/// asks nothing.
pub const SUDO: &str = "sudo -n --";

impl RemoteCommand {
    /// The line as sent to a host: as built, or with `become` behind [`SUDO`].
    pub fn line_as(&self, become_root: bool) -> std::borrow::Cow<'_, str> {
        if become_root {
            std::borrow::Cow::Owned(format!("{SUDO} {}", self.line))
        } else {
            std::borrow::Cow::Borrowed(&self.line)
        }
    }
}

/// The first command on a `become` host's connection: `true` through sudo, proving
/// that sudo runs without asking for a password before anything is touched.
pub fn become_check(timeout: Duration) -> RemoteCommand {
    command(
        "sudo check",
        "exit 0",
        &[],
        timeout,
        Duration::from_secs(1),
        None,
    )
}

/// Builds `timeout -k K T sh -c SCRIPT wavectl ARGS...`.
fn command(
    what: &'static str,
    script: &str,
    args: &[&str],
    timeout: Duration,
    kill_after: Duration,
    stdin: Option<Vec<u8>>,
) -> RemoteCommand {
    let mut line = format!(
        "timeout -k {} {} sh -c {} {}",
        secs(kill_after),
        secs(timeout),
        sh_quote(script),
        ARGV0
    );
    if !args.is_empty() {
        line.push(' ');
        line.push_str(&sh_join(args));
    }
    RemoteCommand {
        line,
        stdin,
        timeout,
        what,
    }
}

/// A duration as GNU `timeout` reads it: `"120s"`, `"2.5s"`; never `"0s"`
/// (which would disable the timeout), at least one millisecond.
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

/// Decodes a hex field written by the host's `wv_hex` (lossy UTF-8).
fn unhex(field: &str) -> Result<String, String> {
    hex::decode(field)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("bad hex field {field:?}: {e}"))
}

/// The shared shell library (paths, manifest, locks, lease, exact copies),
/// in front of every script and in the wrapper.
const LIB_SH: &str = include_str!("scripts/lib.sh");
/// Finding and killing what runs a path: removal, purge --path, the wrapper's guard.
const PROCS_SH: &str = include_str!("scripts/procs.sh");
/// Each activation kind's files on a host (write, remove, keep in prev/, restore): the
/// install, remove and the wrapper.
const ACTIVATION_SH: &str = include_str!("scripts/activation.sh");
/// Removal (a run's, or every version) and the guard: remove and the wrapper.
const REMOVAL_SH: &str = include_str!("scripts/removal.sh");
/// Package ownership (dpkg/rpm), for install, preview and purge --path.
const PKG_SH: &str = include_str!("scripts/pkg.sh");
/// The install's refusals, for install and preview (needs PKG_SH).
const CHECKS_SH: &str = include_str!("scripts/checks.sh");
/// What probe and settle report of NAME's state.
const REPORT_SH: &str = include_str!("scripts/report.sh");

/// Whole seconds (rounded up, at least 1) for a host script's kill wait.
fn wait_secs(d: Duration) -> String {
    d.as_secs()
        .saturating_add(u64::from(d.subsec_nanos() > 0))
        .max(1)
        .to_string()
}

/// Reads the tagged lines of a cleanup script (`what`: removal, purge): `clean`, `problem`,
/// `note` and the final `<marker> done` here, every other tag by `field(tag, raw value,
/// hex-decoded text)`. Returns whether the host is clean (output cut short is not), and
/// the problems and notes joined.
fn parse_cleanup(
    stdout: &str,
    what: &str,
    marker: &str,
    mut field: impl FnMut(&str, &str, String),
) -> (bool, String) {
    let mut details = Vec::new();
    let mut clean = None;
    let mut done = false;
    for line in stdout.lines() {
        let (tag, val) = line.split_once(' ').unwrap_or((line, ""));
        let text = || unhex(val).unwrap_or_else(|e| e);
        match tag {
            "clean" => clean = Some(val == "1"),
            "problem" => details.push(format!("problem: {}", text())),
            "note" => details.push(text()),
            t if t == marker => done |= val == "done",
            _ => field(tag, val, text()),
        }
    }
    if !done || clean.is_none() {
        details.push(format!("{what} output incomplete"));
    }
    (done && clean == Some(true), details.join("; "))
}

/// A shell text without its comment lines and blank lines, and without the indentation
/// of every line that does not start inside a quoted string ([`Quotes`] says which do:
/// those, the lines of an awk program for one, are kept as they are) or continue one
/// that ends in a backslash (the indentation may separate two words). Only lines whose
/// first non-blank character is `#` go, so no script may start a line with `#` inside a
/// multi-line string (a test checks every embedded script).
fn compact(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut quotes = Quotes::default();
    for line in script.lines() {
        let keep = quotes.open() || out.ends_with("\\\n");
        quotes.feed(line);
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push_str(if keep { line } else { t });
        out.push('\n');
    }
    out
}

/// Whether a shell text is inside a quoted string at the end of each line fed: a simple
/// tracker of `'`, `"` and `\`, with `#` comments (at a word start, outside quotes)
/// skipped to the end of the line. Enough for the constant scripts here (a test checks
/// that each of them parses after compaction, and that none ends inside a string).
#[derive(Debug, Default, Clone, Copy)]
struct Quotes {
    single: bool,
    double: bool,
}

impl Quotes {
    fn open(&self) -> bool {
        self.single || self.double
    }

    fn feed(&mut self, line: &str) {
        let mut prev = ' ';
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if self.single {
                self.single = c != '\'';
            } else if c == '\\' {
                chars.next();
            } else if self.double {
                self.double = c != '"';
            } else if c == '\'' {
                self.single = true;
            } else if c == '"' {
                self.double = true;
            } else if c == '#' && (prev.is_whitespace() || prev == ';') {
                break;
            }
            prev = c;
        }
    }
}

/// `lib.sh`, then `parts`, each compacted.
fn with_lib(parts: &[&str]) -> String {
    let mut s = compact(LIB_SH);
    for p in parts {
        s.push_str(&compact(p));
    }
    s
}
