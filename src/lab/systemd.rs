//! What a systemd host's /etc overlay holds before its first boot: its hostname and
//! machine-id, ssh.service and cron.service enabled (ssh.service with the lab's drop-in,
//! written at each boot since it names the port), the masks, no generators, and a few
//! manager settings. Reads this machine's /etc/systemd and generator directories; writes
//! the host's upper dir.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::files;

/// Where Debian keeps vendor units and generators (merged /usr: /lib is /usr/lib).
pub(crate) const UNIT_DIR: &str = "/lib/systemd/system";
const GENERATOR_DIRS: [&str; 2] = [
    "/lib/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
];
/// Debian's systemd binary.
pub(crate) const SYSTEMD_BIN: &str = "/lib/systemd/systemd";
/// The units a systemd host runs beyond systemd's own: enabled in its overlay.
pub(crate) const ENABLED: [&str; 2] = ["ssh.service", "cron.service"];
/// Of the units this machine enabled in /etc/systemd/system/*.wants (and *.requires),
/// these are not masked on a host (targets never are).
const MASK_ENABLED_EXCEPT: [&str; 3] = ["ssh.service", "sshd.service", "cron.service"];

/// Lay out a systemd host's /etc in its overlay upper dir `upper_etc`.
pub(crate) fn prepare(upper_etc: &Path, name: &str) -> io::Result<()> {
    let etc = |p: &str| upper_etc.join(p.trim_start_matches("/etc/"));
    // Read by systemd at boot: without it, the host would take this machine's hostname.
    fs::write(etc("/etc/hostname"), format!("{name}\n"))?;
    // Its own machine-id, kept across reboots, as on a real host (the journal is per id).
    let id: u128 = rand::random();
    fs::write(etc("/etc/machine-id"), format!("{id:032x}\n"))?;
    for (path, text) in [files::SYSTEM_CONF, files::JOURNALD_CONF] {
        let path = etc(path);
        fs::create_dir_all(path.parent().expect("a path in /etc"))?;
        fs::write(path, text)?;
    }
    let units = etc("/etc/systemd/system");
    let wants = units.join("multi-user.target.wants");
    fs::create_dir_all(&wants)?;
    fs::create_dir_all(etc(files::SSH_DROPIN).parent().expect("a path in /etc"))?;
    for unit in ENABLED {
        replace_symlink(&Path::new(UNIT_DIR).join(unit), &wants.join(unit))?;
    }
    for unit in masked(Path::new("/etc/systemd/system"))? {
        replace_symlink(Path::new("/dev/null"), &units.join(unit))?;
    }
    // Generators would turn this machine's SysV scripts (a mail server), its database
    // clusters and its consoles into units: none run on a host.
    let generators = etc("/etc/systemd/system-generators");
    fs::create_dir_all(&generators)?;
    for dir in GENERATOR_DIRS {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            replace_symlink(Path::new("/dev/null"), &generators.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The units to mask on a host: [`files::MASKED`], and every non-target unit this
/// machine enabled in `etc_units/*.wants` or `*.requires` but ssh and cron.
fn masked(etc_units: &Path) -> io::Result<BTreeSet<String>> {
    let mut units: BTreeSet<String> = files::MASKED.iter().map(|u| u.to_string()).collect();
    let entries = match fs::read_dir(etc_units) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(units),
        Err(e) => return Err(e),
    };
    for dir in entries.flatten() {
        let dir_name = dir.file_name().to_string_lossy().into_owned();
        if !(dir_name.ends_with(".wants") || dir_name.ends_with(".requires")) {
            continue;
        }
        for unit in fs::read_dir(dir.path())?.flatten() {
            let unit = unit.file_name().to_string_lossy().into_owned();
            if !unit.ends_with(".target") && !MASK_ENABLED_EXCEPT.contains(&unit.as_str()) {
                units.insert(unit);
            }
        }
    }
    Ok(units)
}

/// `ln -sf target link`.
fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    match fs::remove_file(link) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    symlink(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_this_machine_enabled_but_ssh_cron_and_targets() {
        let dir = tempfile::tempdir().unwrap();
        let wants = dir.path().join("multi-user.target.wants");
        fs::create_dir_all(&wants).unwrap();
        for unit in [
            "postgresql.service",
            "ssh.service",
            "cron.service",
            "remote-fs.target",
        ] {
            symlink("/dev/null", wants.join(unit)).unwrap();
        }
        let timers = dir.path().join("timers.target.wants");
        fs::create_dir_all(&timers).unwrap();
        symlink("/dev/null", timers.join("apt-daily.timer")).unwrap();
        fs::write(dir.path().join("sshd.service"), "").unwrap();
        let units = masked(dir.path()).unwrap();
        assert!(units.contains("postgresql.service"));
        assert!(units.contains("apt-daily.timer"));
        assert!(units.contains("getty.target"), "the fixed list is included");
        for kept in [
            "ssh.service",
            "cron.service",
            "remote-fs.target",
            "sshd.service",
        ] {
            assert!(!units.contains(kept), "{kept} masked");
        }
    }
}
