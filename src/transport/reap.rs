//! Finding and killing `ssh` processes by a path in their command line (our control
//! directories): the backstop that leaves no `ssh` behind, whatever happened. A master
//! whose pid is known is checked and killed by that pid alone ([`is_master`],
//! [`kill_master`]); the scan of all of `/proc` is for what no pid names.

use std::path::Path;

/// Pids of live `ssh` processes whose command line mentions `needle`.
pub fn ssh_processes_using(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty());
        let Some(argv0) = args.next() else { continue };
        let prog = argv0.rsplit(|b| *b == b'/').next().unwrap_or(argv0);
        // A mux master renames itself "ssh: <control socket> [mux]".
        if prog != b"ssh" && !argv0.starts_with(b"ssh: ") {
            continue;
        }
        if cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is still an `ssh` of ours using `dir` (read from `/proc/PID/cmdline`
/// alone, so a reused pid is never taken for it).
pub fn is_master(pid: u32, dir: &Path) -> bool {
    let Some(dir) = dir.to_str() else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = format!("{}/", dir.trim_end_matches('/'));
    is_ssh(&cmdline) && contains(&cmdline, needle.as_bytes())
}

/// SIGKILL the master `pid` if it is still ours (see [`is_master`]); returns whether it was.
pub fn kill_master(pid: u32, dir: &Path) -> bool {
    if !is_master(pid, dir) {
        return false;
    }
    // SAFETY: kill(2) on a pid whose command line we just read; no memory is involved.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    true
}

fn is_ssh(cmdline: &[u8]) -> bool {
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let prog = argv0.rsplit(|b| *b == b'/').next().unwrap_or(argv0);
    // A mux master renames itself "ssh: <control socket> [mux]".
    prog == b"ssh" || argv0.starts_with(b"ssh: ")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// SIGKILL every `ssh` whose command line mentions a path inside `dir`; returns how many.
pub fn kill_ssh_using(dir: &Path) -> usize {
    let Some(dir) = dir.to_str() else { return 0 };
    let pids = ssh_processes_using(&format!("{}/", dir.trim_end_matches('/')));
    for pid in &pids {
        // SAFETY: kill(2) with a pid we just read; no memory is involved.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    pids.len()
}

/// [`kill_ssh_using`] again and again (an `ssh -M -f` forks its master after login, so
/// one scan can miss the child) until two scans in a row find none, at most `within`.
pub fn kill_ssh_until_gone(dir: &Path, within: std::time::Duration) -> usize {
    let deadline = std::time::Instant::now() + within;
    let mut killed = 0;
    let mut quiet = 0;
    while quiet < 2 && std::time::Instant::now() < deadline {
        let n = kill_ssh_using(dir);
        killed += n;
        quiet = if n == 0 { quiet + 1 } else { 0 };
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    killed
}

use std::path::PathBuf;
use std::sync::Mutex;

/// Control directories of this process's live transports (for an exit at once).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub fn register(dir: &Path) {
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir.to_path_buf());
}

pub fn unregister(dir: &Path) {
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|d| d != dir);
}

/// Kill the `ssh` processes of every live transport: used before exiting at once (second Ctrl-C).
pub fn reap_all() -> usize {
    let dirs = LIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    dirs.iter().map(|d| kill_ssh_using(d)).sum()
}

/// Where control directories go: `/dev/shm` (a tmpfs: the sockets and the masters' logs
/// never touch a disk) where it can be written, else `/tmp`.
pub fn control_parent() -> &'static Path {
    static PARENT: std::sync::OnceLock<&'static Path> = std::sync::OnceLock::new();
    PARENT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let writable = tempfile::Builder::new()
            .prefix("wctl-probe-")
            .tempdir_in(shm)
            .is_ok();
        if writable {
            shm
        } else {
            Path::new("/tmp")
        }
    })
}

/// `wctl-<pid>-`: the control directory names the controller that owns it.
pub fn control_dir_prefix() -> String {
    format!("wctl-{}-", std::process::id())
}

/// Control directories left by controllers that died (SIGKILL, power cut): kill their
/// `ssh` processes and remove them.
pub fn clean_stale_control_dirs() {
    for parent in ["/tmp", "/dev/shm"] {
        clean_stale_in(Path::new(parent));
    }
}

fn clean_stale_in(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("wctl-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_ssh_until_gone(&entry.path(), std::time::Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(entry.path());
    }
}
