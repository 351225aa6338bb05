//! The on-host side: every remote command line and script, built and quoted in one place.
//! Pure text building and parsing; the transport carries the commands out.
//!
//! Every command line has the same shape:
//!
//! ```text
//! timeout -k <kill-after>s <T>s sh -c '<constant script>' wavectl '<arg1>' '<arg2>' ...
//! ```
//!
//! The scripts (`scripts/*.sh`, embedded with `include_str!`) are constant POSIX sh;
//! every dynamic value reaches them as a positional argument quoted by
//! [`quote::sh_quote`], so no user value is ever spliced into script text.
//! `scripts/lib.sh` (shared functions: paths, kill, removal, restore) is
//! concatenated in front of the scripts that need it, and into the wrapper.
//!
//! On-host layout (NAME is `[a-z0-9][a-z0-9-]*`, checked again on the host):
//!
//! | path | what |
//! |---|---|
//! | `install_path` | the script (written as `<install_path>.wavectl-new`, sha256-checked, renamed) |
//! | `/var/lib/wavectl/NAME/manifest.json` | [`Manifest`], compact JSON |
//! | `/var/lib/wavectl/NAME/backup` | what was at `install_path` before wavectl (`cp -Pp`) |
//! | `/var/lib/wavectl/NAME/backup.none` | marker: nothing was there before wavectl |
//! | `/var/lib/wavectl/NAME/run` | the wrapper (see `scripts/wrapper.sh`) |
//! | `/var/lib/wavectl/NAME/install_path` | the install path, raw bytes (used by removal without a spec) |
//! | `/var/lib/wavectl/NAME/sha256s` | every sha256 installed under NAME, one per line |
//! | `/var/lib/wavectl/NAME/boot_id` | the kernel boot id at install (the wrapper refuses a probation run after a reboot) |
//! | `/var/lib/wavectl/NAME/runs.log` | one line per run: `<start_unix> <end_unix> <exit_code>` |
//! | `/var/lib/wavectl/NAME/last.log` | the script's output, appended, capped at ~256 KiB |
//! | `/var/lib/wavectl/NAME/pid` | pid (= process group) of the running `timeout` |
//! | `/var/lib/wavectl/NAME/lock` | `flock` against overlapping runs |
//! | `/etc/cron.d/wavectl-NAME` | cron activation, with an `@reboot ... run guard` line |
//! | `/etc/systemd/system/wavectl-NAME{.service,.timer,-guard.service}` | systemd-timer activation and boot guard |
//! | `/var/log/wavectl-guard.log` | what the boot guard did (also sent to syslog via `logger`) |
//! | `/var/lib/wavectl/purged/<UTC time>/<original path>` | copies of what `purge --path` changed or removed |

pub mod install;
pub mod probe;
pub mod purge_path;
pub mod quote;
pub mod remove;

#[cfg(test)]
mod host_tests;
#[cfg(test)]
mod purge_path_tests;
#[cfg(test)]
mod sandbox;

use std::time::Duration;

pub use install::{
    confirm, install, manifest_json, parse_install, parse_manifest, read_manifest, run_once,
    wrapper_path, wrapper_text, InstallParams, Manifest, ManifestActivation,
};
pub use probe::{check_timeout, parse_probe, probe};
pub use purge_path::{parse_purge_path, purge_path, PurgePathReport};
pub use quote::{sh_join, sh_quote};
pub use remove::{parse_remove, remove, RemovalReport};

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

/// The shared shell library, prepended to the scripts that need it.
const LIB_SH: &str = include_str!("scripts/lib.sh");

/// `lib.sh` followed by `script`.
/// Start one supervised run of NAME's wrapper in the background and return at once:
/// the run is judged from `runs.log` by the probes, so a run that hangs its host is
/// seen as a probe that misses its deadline.
pub fn start_run(name: &str) -> RemoteCommand {
    command(
        "start run",
        &with_lib(include_str!("scripts/start_run.sh")),
        &[name],
        install::SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

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

fn with_lib(script: &str) -> String {
    let mut s = String::with_capacity(LIB_SH.len() + script.len() + 1);
    s.push_str(LIB_SH);
    s.push('\n');
    s.push_str(script);
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
    }
}
