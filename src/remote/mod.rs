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
//! install and `plan --probe` ([`mod@preview`]); `report.sh` for probe and settle. The install carries
//! the library once, as the first part of the wrapper it writes, and evaluates it from
//! there (`install::LIB_END`).
//!
//! Comment lines and blank lines are dropped when a script is embedded (`compact`), so
//! the source files stay commented while the command lines stay short (the install,
//! which carries the wrapper, is ~42 KB; a test keeps every line under 48 KiB, another
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
//! | `/var/lib/wavectl/NAME/manifest` | [`Manifest`], one `KEY=VALUE` a line ([`mod@manifest`]): name, run_id, state (`probation` → `confirmed`; `revoked` while removed), sha256, installed_at, install_path, activation, schedule, lease_secs, backup, prev_run_id, prev_sha256. A version installed by the release before this one has `manifest.json` (compact JSON) instead, read and kept as it is until an install replaces it |
//! | `/var/lib/wavectl/NAME/txn` | the run id of an install in progress: written first, removed last (a cut-short install leaves it) |
//! | `/var/lib/wavectl/NAME/lease` | unix seconds (host clock) until which the probation lease runs; renewed by probes of the same run, removed at confirm |
//! | `/var/lib/wavectl/NAME/prev/` | the previous confirmed version, whole, for a rollback of the newest: `script` (exact copy), `manifest` (or its `manifest.json`), `run`, `runs.log`, `cron` or `units/`, `for` (the run it was kept for), `complete` (written last); built in `prev.new/`, renamed when complete; kept after confirm, replaced by the next upgrade |
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
//! | `/etc/cron.d/wavectl-NAME` | cron: a first line naming the run that wrote it, the schedule line, `* * * * * root <run> guard`, `@reboot root <run> guard boot` (activation `none`: the two guard lines only); units start with the same line |
//! | `/etc/systemd/system/wavectl-NAME{.service,.timer}` | systemd-timer activation: the script |
//! | `/etc/systemd/system/wavectl-NAME-guard.service` | `run guard boot`, WantedBy=multi-user.target, Before= the timer |
//! | `/etc/systemd/system/wavectl-NAME-lease.{service,timer}` | `run guard`, OnCalendar=minutely (activation `none` on a host without `/etc/cron.d`: these and the boot guard only) |
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
//! refuses, so the sender can always finish writing it.

pub mod install;
pub mod manifest;
pub mod preview;
pub mod probe;
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
mod version_tests;

use std::time::Duration;

pub use crate::rollout::probe::Reverted;
pub use install::{
    confirm, install, manifest_text, parse_confirm, parse_install, run_once, start_run,
    wrapper_path, wrapper_text, ConfirmResult, InstallParams, InstallResult,
};
pub use manifest::{Manifest, ManifestState, PrevVersion};
pub use preview::{parse_preview, preview, Holds, PreviewParams, PreviewReport};
pub use probe::{check_timeout, parse_probe, probe};
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

/// The shared shell library (paths, manifest, locks, lease, activation, exact copies),
/// in front of every script and in the wrapper.
const LIB_SH: &str = include_str!("scripts/lib.sh");
/// Finding and killing what runs a path: removal, purge --path, the wrapper's guard.
const PROCS_SH: &str = include_str!("scripts/procs.sh");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_seconds_for_gnu_timeout() {
        assert_eq!(secs(Duration::from_secs(120)), "120s");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
        assert_eq!(secs(Duration::from_millis(1250)), "1.25s");
        assert_eq!(secs(Duration::from_millis(7)), "0.007s");
        assert_eq!(secs(Duration::ZERO), "0.001s");
    }

    /// Every script a host runs: its name and its parts after `lib.sh` (the install's
    /// library arrives inside the wrapper it carries, the same text).
    fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
        let mut v = Vec::new();
        v.extend(install::assemblies());
        v.extend(probe::assemblies());
        v.extend(remove::assemblies());
        v.extend(settle::assemblies());
        v.extend(preview::assemblies());
        v.extend(purge_path::assemblies());
        v
    }

    /// Every fragment of every assembly, each once, with `lib.sh` first.
    fn all_scripts() -> Vec<&'static str> {
        let mut v = vec![LIB_SH];
        for (_, parts) in assemblies() {
            for p in parts {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        v
    }

    /// Whether a shell text is inside a quoted string at the end of each line.
    fn open_quote_after_each_line(script: &str) -> Vec<bool> {
        let mut q = Quotes::default();
        script
            .lines()
            .map(|line| {
                q.feed(line);
                q.open()
            })
            .collect()
    }

    /// The `become` line, run by a real shell through a real sudo (the tests run as
    /// root), hands every hostile argument to the script byte for byte.
    #[test]
    fn become_line_round_trips_through_sudo() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let m = marker.display();
        let args = [
            "it's".to_string(),
            format!("$(touch {m})"),
            format!("`touch {m}`; touch {m}"),
            "-n".into(),
            "--".into(),
            "a\nb\n".into(),
            String::new(),
        ];
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let c = command(
            "x",
            "printf '%s\\0' \"$@\"",
            &refs,
            Duration::from_secs(5),
            Duration::from_secs(1),
            None,
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(c.line_as(true).as_ref())
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{} (needs sudo: apt-get install sudo, and root)",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: String = args.iter().map(|a| format!("{a}\0")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        assert!(!marker.exists());
    }

    #[test]
    fn compaction_never_drops_a_line_inside_a_string() {
        for script in all_scripts() {
            let name = script.lines().next().unwrap_or("");
            let open = open_quote_after_each_line(script);
            let lines: Vec<&str> = script.lines().collect();
            for (i, line) in lines.iter().enumerate().skip(1) {
                let t = line.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    assert!(
                        !open[i - 1],
                        "{name}:{}: dropped inside a string: {line:?}",
                        i + 1
                    );
                }
            }
            assert!(
                !open.last().copied().unwrap_or(false),
                "{name}: ends in a string"
            );
        }
    }

    /// `shellcheck -s sh` finds nothing in any script a host runs, checked as it runs:
    /// `lib.sh` and the fragments after it joined (so a name one fragment sets and another
    /// reads is checked too). Set aside: SC2034 and SC2317 (a library variable or
    /// function this script leaves unused) and SC2015 (`A && B || C`, meant throughout).
    /// Every `.sh` file here is in some assembly.
    #[test]
    fn every_host_script_as_it_runs_is_shellcheck_clean() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/remote/scripts");
        let used = all_scripts();
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sh") {
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    used.contains(&text.as_str()),
                    "{} is in no assembly",
                    p.display()
                );
            }
        }
        assert!(files >= 14, "{files} scripts");
        let tmp = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (name, parts) in assemblies() {
            let mut text = String::from("#!/bin/sh\n");
            text.push_str(LIB_SH);
            for p in parts {
                text.push_str(p);
            }
            let path = tmp.path().join(name.replace(' ', "_") + ".sh");
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
        let out = std::process::Command::new("shellcheck")
            .args(["--norc", "-s", "sh", "-e", "SC2034,SC2317,SC2015"])
            .args(&paths)
            .output()
            .expect("run shellcheck (apt-get install -y shellcheck)");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The install takes the library from the wrapper it carries, up to the first
    /// [`install::LIB_END`] line: no library text may hold one.
    #[test]
    fn no_library_text_holds_the_wrappers_marker() {
        for (name, script) in [
            ("lib.sh", LIB_SH),
            ("procs.sh", PROCS_SH),
            ("removal.sh", REMOVAL_SH),
        ] {
            assert!(
                !compact(script).contains(install::LIB_END.trim_end()),
                "{name}"
            );
        }
    }

    /// The shells a host may run the scripts with: each must be here.
    const SHELLS: [&str; 3] = ["sh", "dash", "bash"];

    fn assert_shells_present() {
        for shell in SHELLS {
            let ok = std::process::Command::new(shell)
                .arg("-c")
                .arg("true")
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "{shell} is needed by this test (apt-get install -y dash bash)"
            );
        }
    }

    #[test]
    fn compacted_scripts_parse() {
        assert_shells_present();
        for shell in SHELLS {
            for (name, parts) in assemblies() {
                let text = with_lib(&parts);
                let o = std::process::Command::new(shell)
                    .arg("-n")
                    .arg("-c")
                    .arg(&text)
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{shell} {name}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }

    #[test]
    fn command_line_has_the_fixed_shape() {
        let c = command(
            "x",
            "echo \"$1\"",
            &["a'b", "$(x)"],
            Duration::from_secs(5),
            Duration::from_secs(2),
            None,
        );
        assert_eq!(
            c.line,
            "timeout -k 2s 5s sh -c 'echo \"$1\"' wavectl 'a'\\''b' '$(x)'"
        );
        assert_eq!(c.line_as(false), c.line);
        assert_eq!(
            c.line_as(true),
            "sudo -n -- timeout -k 2s 5s sh -c 'echo \"$1\"' wavectl 'a'\\''b' '$(x)'"
        );
        assert_eq!(
            become_check(Duration::from_secs(5)).line_as(true),
            "sudo -n -- timeout -k 1s 5s sh -c 'exit 0' wavectl"
        );
    }

    /// The shell's own readings (hex, the manifest's fields and rewrites, whole files,
    /// runs.log, sha256s) give exactly what the commands they stand in for (od|tr,
    /// awk, grep -qx; for the previous release's JSON manifest, its own sed|head) give —
    /// or, for the manifest, what its parser means — in every shell here, in the C and
    /// a UTF-8 locale, for odd input too.
    #[test]
    fn shell_readings_match_the_commands_they_stand_in_for() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let fp = f.to_str().unwrap();
        let long = "x/".repeat(300);
        let ascii: String = (0x20u8..0x7f).map(char::from).collect();
        let strings = [
            "",
            "plain",
            "/var/lib/wavectl/x y: kept (changed since?)",
            &ascii,
            "tab\there",
            "nl\n",
            "x\n\n",
            "\u{e9}t\u{e9}",
            "a'b\"c\\d$(x)`y`",
            &long,
            "\u{1}",
            "*",
            "[!a]",
        ];
        let manifests: &[&[u8]] = &[
            b"",
            b"{\"name\":\"n\",\"run_id\":\"r1\",\"state\":\"probation\",\"sha256\":\"ab\",\"prev\":{\"run_id\":\"r0\",\"state\":\"confirmed\"}}\n",
            b"{\"run_id\":\"r1\",\"state\":\"confirmed\",\"prev\":null}",
            b"{\"run_id\":\"r1\",\"x\":\"\\\"run_id\\\":\\\"no\\\"\",\"run_id\":\"r\\\\2\",\"state\":\"Odd\",\"state\":\"b\"}\n",
            b"{\"state\":\"\",\"run_id\":\"unterminated}\n",
            b"{\"run_id\":\"r1\"}\n{\"run_id\":\"r2\",\"state\":\"x\"}\n",
            b"{\"run_id\":\"r1\",\"state\":\"a\"}\n\n",
            b"no json at all\n",
        ];
        let rendered = Manifest {
            name: "n".into(),
            run_id: "r1".into(),
            state: ManifestState::Probation,
            sha256: "ab".into(),
            installed_at: 1,
            install_path: "/x=\"y\" *".into(),
            activation: crate::spec::ActivationKind::Cron,
            schedule: "* * * * *".into(),
            lease_secs: 0,
            backup: false,
            prev: None,
            legacy: false,
        }
        .render();
        let lines_manifests = [
            rendered.clone(),
            rendered.clone() + "backup=1\nprev_run_id=r0\nprev_sha256=cd\n",
            "state=confirmed\nrun_id=r2\n# state=revoked\nrun_id=r3\nsha256=a=b\nstate=x y".into(),
            "prev_run_id=r0\nstate=probation\nprev_sha256=\n".into(),
            "run_id= spaced \n\nstate=*\n".into(),
            String::new(),
        ];
        // What the shell must read of a manifest: the last `KEY=` line's value.
        fn last_value(m: &str, key: &str) -> String {
            let mut v = String::new();
            for l in m.split('\n') {
                if let Some(x) = l.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                    v = x.to_string();
                }
            }
            v
        }
        // What wv_mf_set must write (None: it fails, the file read empty).
        fn set_value(m: &str, pat: &str, value: &str) -> Option<String> {
            let lines: Vec<&str> = m.strip_suffix('\n').unwrap_or(m).split('\n').collect();
            if m.is_empty() {
                return None;
            }
            let matches = |l: &str| match pat.strip_suffix('*') {
                Some(p) => l.starts_with(p) && l.contains('='),
                None => l.starts_with(&format!("{pat}=")),
            };
            let mut out = String::new();
            let mut done = false;
            for l in lines {
                if matches(l) {
                    if !done && !value.is_empty() {
                        out.push_str(&format!("{pat}={value}\n"));
                    }
                    done = true;
                } else {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            if !done && !value.is_empty() {
                out.push_str(&format!("{pat}={value}\n"));
            }
            Some(out)
        }
        let runs =
            "1 2 0 r1\n 3\t4  -1 r1\n5 6 0\n7 8 0 r2\nx 9 0 r1\n1 2 --1 r1\n1 2 0 r1 z\n\n9 9 9 r1";
        let mut long_runs = String::new();
        for i in 0..40 {
            long_runs.push_str(&format!("{i} {i} 0 r1\n"));
        }
        assert_shells_present();
        for shell in SHELLS {
            for locale in ["C", "C.UTF-8"] {
                let run = |script: &str, args: &[&str]| -> String {
                    let text = with_lib(&[REPORT_SH]) + script;
                    let o = std::process::Command::new(shell)
                        .env("LC_ALL", locale)
                        .arg("-c")
                        .arg(&text)
                        .arg("wavectl")
                        .args(args)
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&o.stdout).into_owned()
                };
                for s in strings {
                    let want = if s.is_empty() {
                        "-".to_string()
                    } else {
                        hex::encode(s)
                    };
                    let got = run("wv_hex \"$1\"; printf '|'; wv_out t \"$1\"", &[s]);
                    assert_eq!(got, format!("{want}|t {want}\n"), "{shell} {locale}: {s:?}");
                }
                let d = dir.path().join("m");
                std::fs::create_dir_all(&d).unwrap();
                let dp = d.to_str().unwrap();
                let json = d.join("manifest.json");
                for m in manifests {
                    std::fs::write(&json, m).unwrap();
                    for key in ["run_id", "state", "sha256"] {
                        let sed = run(
                            "sed -n 's/,\"prev\":.*//; s/.*\"'\"$1\"'\":\"\\([^\"\\\\]*\\)\".*/\\1/p' \"$2\" | head -n 1",
                            &[key, json.to_str().unwrap()],
                        );
                        let got = run(
                            "wv_mf_read \"$2\"; case $1 in run_id) v=$WV_MFR ;; state) v=$WV_MFS ;; *) v=$WV_MFH ;; esac; printf '%s %s\\n' \"$WV_MFJ\" \"$v\"",
                            &[key, dp],
                        );
                        assert_eq!(
                            got.trim_end(),
                            format!("1 {}", sed.trim_end()).trim_end(),
                            "{shell} {locale} {key}: {m:?}"
                        );
                    }
                    let sed = run(
                        "sed 's/\"state\":\"[a-z]*\"/\"state\":\"revoked\"/' \"$1\"",
                        &[json.to_str().unwrap()],
                    );
                    let got = run(
                        "WV_DIR=$1; wv_set_state revoked && cat \"$1/manifest.json\"",
                        &[dp],
                    );
                    assert_eq!(got, sed, "{shell} {locale}: {m:?}");
                    std::fs::write(&f, m).unwrap();
                    let got = run("wv_read_file \"$1\"; printf '%s|' \"$WV_VAL\"", &[fp]);
                    assert_eq!(got, format!("{}|", String::from_utf8_lossy(m)), "{shell}");
                }
                std::fs::remove_file(&json).unwrap();
                // The manifest of this release: the last line of a key counts; a
                // manifest.json beside it is not read.
                std::fs::write(&json, manifests[1]).unwrap();
                let file = d.join("manifest");
                for m in &lines_manifests {
                    std::fs::write(&file, m).unwrap();
                    let got = run(
                        "wv_mf_read \"$1\"; printf '%s|%s|%s|%s' \"$WV_MFJ\" \"$WV_MFR\" \"$WV_MFS\" \"$WV_MFH\"",
                        &[dp],
                    );
                    let want = format!(
                        "|{}|{}|{}",
                        last_value(m, "run_id"),
                        last_value(m, "state"),
                        last_value(m, "sha256")
                    );
                    assert_eq!(got, want, "{shell} {locale}: {m:?}");
                    for (key, value) in [("state", "revoked"), ("prev_*", ""), ("new_key", "v")] {
                        std::fs::write(&file, m).unwrap();
                        let got = run(
                            "wv_mf_set \"$1/manifest\" \"$2\" \"$3\" && cat \"$1/manifest\"",
                            &[dp, key, value],
                        );
                        let want = set_value(m, key, value).unwrap_or_default();
                        assert_eq!(got, want, "{shell} {locale} {key}={value}: {m:?}");
                    }
                }
                std::fs::remove_file(&file).unwrap();
                std::fs::remove_file(&json).unwrap();
                for log in [runs, &long_runs] {
                    let d = dir.path().join("d");
                    std::fs::create_dir_all(&d).unwrap();
                    std::fs::write(d.join("runs.log"), log).unwrap();
                    let dp = d.to_str().unwrap();
                    let awk = run(
                        "WVR=r1 awk 'NF == 3 { $4 = \"-\" } (NF == 3 || NF == 4) && $4 == ENVIRON[\"WVR\"] && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^-?[0-9]+$/ { print \"run \" $1 \" \" $2 \" \" $3 }' \"$1/runs.log\"",
                        &[dp],
                    );
                    assert_eq!(run("WV_DIR=$1; wv_runs r1", &[dp]), awk, "{shell} {locale}");
                    for line in ["1 2 0 r1", "39 39 0 r1", "r1", ""] {
                        let grep = run("grep -qx \"$2\" \"$1/runs.log\" && echo yes", &[dp, line]);
                        let got = run(
                            "wv_has_line \"$1/runs.log\" \"$2\" && echo yes",
                            &[dp, line],
                        );
                        assert_eq!(got, grep, "{shell} {locale}: {line:?}");
                    }
                }
            }
        }
    }
}
