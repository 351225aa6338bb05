//! The lab's cgroups (cgroup v1): a freezer cgroup per host under
//! `/sys/fs/cgroup/freezer/wavectl-lab/<fleet-id>/<host>/`, and for systemd hosts a
//! `name=systemd` cgroup under `/sys/fs/cgroup/systemd/wavectl-lab/<fleet-id>/<host>/`
//! (the root of the host's own systemd hierarchy, which its systemd fills with slices and
//! scopes); freeze, thaw, kill, remove (with whatever sub-cgroups a host made), and the
//! clean-up of fleets whose owning process died. Touches /sys, /proc and /tmp.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Where the freezer hierarchy is mounted.
pub(crate) const FREEZER: &str = "/sys/fs/cgroup/freezer";
/// The parent of every lab fleet's cgroup. Never removed: parallel fleets share it.
pub(crate) const LAB_ROOT: &str = "/sys/fs/cgroup/freezer/wavectl-lab";
/// Where the `name=systemd` hierarchy is mounted (cgroup v1, no controller).
pub(crate) const SYSTEMD: &str = "/sys/fs/cgroup/systemd";
/// The parent of every fleet's `name=systemd` cgroup (only fleets with systemd hosts
/// have one). Never removed.
pub(crate) const SYSTEMD_LAB_ROOT: &str = "/sys/fs/cgroup/systemd/wavectl-lab";
/// Where fleet directories live (`/tmp/<fleet-id>`); short, for unix socket paths.
pub(crate) const FLEET_PARENT: &str = "/tmp";
/// The file in a fleet's directory naming the process that owns the fleet.
pub(crate) const OWNER_FILE: &str = "owner";

const POLL: Duration = Duration::from_millis(10);

/// The pids in a cgroup and in its sub-cgroups (empty if the cgroup is gone).
pub(crate) fn procs(cg: &Path) -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for dir in tree(cg)? {
        match fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pids)
}

/// A cgroup and its sub-cgroups, children before parents (empty if the cgroup is gone).
fn tree(cg: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![(cg.to_owned(), false)];
    while let Some((dir, visited)) = stack.pop() {
        if visited {
            out.push(dir);
            continue;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed meanwhile (a host's systemd removes its empty cgroups).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        stack.push((dir, true));
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), false));
            }
        }
    }
    Ok(out)
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

/// Thaw the cgroup and its sub-cgroups and SIGKILL every process in them (a frozen
/// process only dies once thawed). Works on any hierarchy; only freezer cgroups thaw.
pub(crate) fn kill_all(cg: &Path) {
    for dir in tree(cg).unwrap_or_default() {
        let state = dir.join("freezer.state");
        if state.exists() {
            let _ = fs::write(state, "THAWED");
        }
    }
    for pid in procs(cg).unwrap_or_default() {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Kill what is left in the cgroup and its sub-cgroups, wait until they are empty, and
/// remove them. Missing is fine.
pub(crate) fn remove(cg: &Path, within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        kill_all(cg);
        let removed = tree(cg).and_then(|dirs| {
            for dir in dirs {
                match fs::remove_dir(&dir) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        });
        match removed {
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

/// Remove what crashed lab runs left behind: for every fleet under `wavectl-lab/` (of the
/// freezer or the `name=systemd` hierarchy) whose owning process is gone (per
/// `/tmp/<fleet-id>/owner`), kill its hosts' processes, remove its cgroups and its
/// directory. Fleets of live processes (other tests, other users) are left alone. Every
/// stale fleet is tried; returns how many were cleaned, or the first error.
pub fn cleanup_stale() -> io::Result<usize> {
    let mut ids = std::collections::BTreeSet::new();
    for root in [LAB_ROOT, SYSTEMD_LAB_ROOT] {
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        ids.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name()),
        );
    }
    let mut cleaned = 0;
    let mut first_error = None;
    for id in ids {
        let fleet_dir = Path::new(FLEET_PARENT).join(&id);
        match fs::read_to_string(fleet_dir.join(OWNER_FILE)) {
            Ok(owner) if owner_alive(&owner) => continue,
            // The directory is written before the cgroups, so a cgroup without an owner
            // file belongs to no running fleet.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => continue,
        }
        match remove_fleet(&id, &fleet_dir) {
            Ok(()) => cleaned += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(cleaned), Err)
}

/// Kill and remove one fleet's cgroups (every host, with the sub-cgroups their systemd
/// made), then its directory. Tolerates a concurrent clean-up of the same fleet.
fn remove_fleet(id: &std::ffi::OsStr, fleet_dir: &Path) -> io::Result<()> {
    let freezer = Path::new(LAB_ROOT).join(id);
    let systemd = Path::new(SYSTEMD_LAB_ROOT).join(id);
    // Every process of a host is in its freezer cgroup: killing them all first lets the
    // removals below succeed at once.
    kill_all(&freezer);
    remove(&freezer, Duration::from_secs(5))?;
    remove(&systemd, Duration::from_secs(5))?;
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
