//! The lab's freezer cgroups (cgroup v1): one per host under
//! `/sys/fs/cgroup/freezer/wavectl-lab/<fleet-id>/<host>/`; freeze, thaw, kill, remove,
//! and the clean-up of fleets whose owning process died. Touches /sys, /proc and /tmp.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Where the freezer hierarchy is mounted.
pub(crate) const FREEZER: &str = "/sys/fs/cgroup/freezer";
/// The parent of every lab fleet's cgroup. Never removed: parallel fleets share it.
pub(crate) const LAB_ROOT: &str = "/sys/fs/cgroup/freezer/wavectl-lab";
/// Where fleet directories live (`/tmp/<fleet-id>`); short, for unix socket paths.
pub(crate) const FLEET_PARENT: &str = "/tmp";
/// The file in a fleet's directory naming the process that owns the fleet.
pub(crate) const OWNER_FILE: &str = "owner";

const POLL: Duration = Duration::from_millis(10);

/// The pids in a cgroup (empty if the cgroup is gone).
pub(crate) fn procs(cg: &Path) -> io::Result<Vec<i32>> {
    match fs::read_to_string(cg.join("cgroup.procs")) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `FROZEN`, `FREEZING` or `THAWED`.
pub(crate) fn state(cg: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(cg.join("freezer.state"))?
        .trim()
        .to_owned())
}

/// Write `want` to freezer.state until it reads back `want`, or fail at the deadline.
pub(crate) fn set_state(cg: &Path, want: &str, within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        fs::write(cg.join("freezer.state"), want)?;
        let now = state(cg)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{}: freezer.state is {now}, not {want}, after {within:?}",
                    cg.display()
                ),
            ));
        }
        sleep(POLL);
    }
}

/// Thaw the cgroup and SIGKILL every process in it (a frozen process only dies once thawed).
pub(crate) fn kill_all(cg: &Path) {
    if cg.exists() {
        let _ = fs::write(cg.join("freezer.state"), "THAWED");
    }
    for pid in procs(cg).unwrap_or_default() {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Kill what is left in the cgroup, wait until it is empty, and remove it. Missing is fine.
pub(crate) fn remove(cg: &Path, within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        kill_all(cg);
        match fs::remove_dir(cg) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                let left = procs(cg).unwrap_or_default();
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot remove {} ({e}); processes left: {left:?}",
                        cg.display()
                    ),
                ));
            }
            Err(_) => sleep(POLL),
        }
    }
}

/// The start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot):
/// with the pid, it names a process even after its pid is reused.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields after comm start at field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// The owner file's text for this process: `PID START_TIME`.
pub(crate) fn owner_line() -> String {
    let pid = std::process::id();
    format!("{pid} {}\n", start_time(pid).unwrap_or(0))
}

/// Whether the process an owner file names is still alive.
fn owner_alive(text: &str) -> bool {
    let mut fields = text.split_whitespace();
    let (Some(pid), Some(start)) = (fields.next(), fields.next()) else {
        return false;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => false,
    }
}

/// Remove what crashed lab runs left behind: for every fleet under `wavectl-lab/` whose
/// owning process is gone (per `/tmp/<fleet-id>/owner`), kill its hosts' processes, remove
/// its cgroups and its directory. Fleets of live processes (other tests, other users) are
/// left alone. Every stale fleet is tried; returns how many were cleaned, or the first error.
pub fn cleanup_stale() -> io::Result<usize> {
    let entries = match fs::read_dir(LAB_ROOT) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut cleaned = 0;
    let mut first_error = None;
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let fleet_dir = Path::new(FLEET_PARENT).join(entry.file_name());
        match fs::read_to_string(fleet_dir.join(OWNER_FILE)) {
            Ok(owner) if owner_alive(&owner) => continue,
            // The directory is written before the cgroup, so a cgroup without an owner
            // file belongs to no running fleet.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => continue,
        }
        match remove_fleet(&entry.path(), &fleet_dir) {
            Ok(()) => cleaned += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(cleaned), Err)
}

/// Kill and remove one fleet's cgroups, then its directory. Tolerates a concurrent
/// clean-up of the same fleet.
fn remove_fleet(fleet_cg: &Path, fleet_dir: &Path) -> io::Result<()> {
    let hosts: Vec<PathBuf> = match fs::read_dir(fleet_cg) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    for host in &hosts {
        kill_all(host);
    }
    for host in &hosts {
        remove(host, Duration::from_secs(5))?;
    }
    remove(fleet_cg, Duration::from_secs(1))?;
    match fs::remove_dir_all(fleet_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_bogus_one_is_not() {
        assert!(owner_alive(&owner_line()));
        assert!(!owner_alive("1 0"));
        assert!(!owner_alive("garbage"));
        assert!(!owner_alive(""));
    }
}
