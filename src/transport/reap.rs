//! Finding and killing `ssh` processes by a path in their command line (our control
//! directories): the backstop that leaves no `ssh` behind, whatever happened.

use std::path::Path;

/// Pids of live `ssh` processes whose command line mentions `needle`.
pub fn ssh_processes_using(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let mut args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty());
        let Some(argv0) = args.next() else { continue };
        let prog = argv0.rsplit(|b| *b == b'/').next().unwrap_or(argv0);
        if prog != b"ssh" {
            continue;
        }
        if cmdline.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
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
