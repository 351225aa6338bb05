//! Paths the script must not replace (and `purge --path` must not remove) unless the
//! operator passes `--force`: the tools wavectl's own host side runs, and what a host
//! needs to stay reachable, let anyone log in, and boot. Replacing `timeout`, `sh` or
//! `mv` with a script can leave hosts that wavectl cannot clean any more (the removal
//! itself runs them); replacing `sshd`, PAM or the user database locks everyone out;
//! replacing init, the kernel or its modules leaves a host that does not come back.
//! This is the one list of them; `install_path` and `purge --path` both check it.
//! Pure.

/// The programs the host-side scripts (`src/remote/scripts/`), the wrapper and the
/// activations run. Refused in every directory of [`TOOL_DIRS`].
pub(crate) const HOST_TOOLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "timeout",
    "sha256sum",
    "cat",
    "cp",
    "mv",
    "rm",
    "mkdir",
    "rmdir",
    "chmod",
    "ln",
    "readlink",
    "sed",
    "grep",
    "awk",
    "mawk",
    "gawk",
    "od",
    "tr",
    "head",
    "tail",
    "date",
    "sleep",
    "kill",
    "flock",
    "setsid",
    "mktemp",
    "find",
    "cut",
    "sort",
    "wc",
    "cmp",
    "dd",
    "dmesg",
    "systemctl",
    "logger",
    "env",
    "printf",
    "test",
    "[",
    "id",
    "hostname",
    "dpkg-query",
    "rpm",
    "sudo",
    "getfattr",
    "setfattr",
    "getcap",
    "setcap",
    "stat",
    "touch",
    "xargs",
    "ps",
];

/// Where a `PATH` lookup finds [`HOST_TOOLS`].
pub(crate) const TOOL_DIRS: &[&str] = &[
    "/bin",
    "/usr/bin",
    "/sbin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

const LOCKOUT: &str = "lock wavectl (and you) out of the hosts";
const NO_CRON: &str =
    "stop every scheduled job on the hosts, wavectl's own lease and boot guards among them";
const NO_BOOT: &str = "leave hosts that do not boot";
const NO_CLEAN: &str = "leave hosts that cannot be cleaned";

/// Single files: the path, what it is, and what replacing or removing it could do.
/// `/bin`, `/sbin`, `/lib` and `/lib64` also match their `/usr` twins (merged /usr).
const FILES: &[(&str, &str, &str)] = &[
    (
        "/usr/sbin/sshd",
        "the SSH server wavectl reaches hosts through",
        LOCKOUT,
    ),
    (
        "/usr/lib/openssh/sftp-server",
        "the SSH server's sftp subsystem",
        LOCKOUT,
    ),
    (
        "/usr/libexec/openssh/sftp-server",
        "the SSH server's sftp subsystem",
        LOCKOUT,
    ),
    ("/usr/bin/ssh", "the SSH client", LOCKOUT),
    ("/usr/sbin/cron", "the cron daemon", NO_CRON),
    ("/usr/sbin/crond", "the cron daemon", NO_CRON),
    ("/usr/bin/crontab", "cron's crontab tool", NO_CRON),
    ("/lib/systemd/systemd", "the init system (PID 1)", NO_BOOT),
    (
        "/usr/lib/systemd/systemd",
        "the init system (PID 1)",
        NO_BOOT,
    ),
    ("/sbin/init", "the init system (PID 1)", NO_BOOT),
    ("/usr/bin/sudo", "sudo", LOCKOUT),
    ("/etc/passwd", "the user database", LOCKOUT),
    ("/etc/shadow", "the password database", LOCKOUT),
    ("/etc/group", "the group database", LOCKOUT),
    ("/etc/gshadow", "the group password database", LOCKOUT),
    ("/etc/sudoers", "sudo's configuration", LOCKOUT),
];

/// Directories: nothing inside them (nor the directory itself).
const TREES: &[(&str, &str, &str)] = &[
    ("/etc/ssh", "the SSH configuration and host keys", LOCKOUT),
    ("/etc/pam.d", "the PAM login configuration", LOCKOUT),
    ("/etc/sudoers.d", "sudo's configuration", LOCKOUT),
    ("/boot", "the kernel and the boot loader", NO_BOOT),
    ("/lib/modules", "the kernel modules", NO_BOOT),
];

/// A protected path: what it is, and what replacing or removing it could do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protected {
    /// Completes "install_path `P` is ...".
    pub what: String,
    /// Completes "replacing it could ...".
    pub risk: &'static str,
}

impl Protected {
    /// The hint, for `verb` "replacing" (install_path) or "removing" (purge --path).
    pub fn help(&self, verb: &str) -> String {
        format!(
            "{verb} it could {}; choose another path, or pass --force if you really mean it",
            self.risk
        )
    }
}

/// `/bin/x`, `/sbin/x`, `/lib/x`, `/lib64/x` as `/usr/bin/x`...: one name per file on a
/// merged-/usr system.
fn merged(path: &str) -> String {
    for dir in ["/bin/", "/sbin/", "/lib/", "/lib64/"] {
        if path.starts_with(dir) {
            return format!("/usr{path}");
        }
    }
    path.to_string()
}

/// Whether `path` (absolute and normalized, as `check_install_path` requires) is protected.
pub(crate) fn check(path: &str) -> Option<Protected> {
    if let Some((dir, name)) = path.rsplit_once('/') {
        let dir = if dir.is_empty() { "/" } else { dir };
        if TOOL_DIRS.contains(&dir) && HOST_TOOLS.contains(&name) {
            return Some(Protected {
                what: format!("a tool wavectl's host side runs ({name})"),
                risk: NO_CLEAN,
            });
        }
    }
    let path_m = merged(path);
    if let Some((_, what, risk)) = FILES.iter().find(|(f, _, _)| merged(f) == path_m) {
        return Some(Protected {
            what: what.to_string(),
            risk,
        });
    }
    for (tree, what, risk) in TREES {
        let tree_m = merged(&format!("{tree}/"));
        if path_m == tree_m[..tree_m.len() - 1] || path_m.starts_with(&tree_m) {
            return Some(Protected {
                what: format!("inside {tree} ({what})"),
                risk,
            });
        }
    }
    None
}

/// The list as the host side reads it (`wv_protected` in `src/remote/scripts/pkg.sh`),
/// to check where a symlink at a path really leads: one kind per line, `d` the tool
/// directories, `t` the tools, `f` the single files, `r` the trees.
pub(crate) fn host_list() -> String {
    let line = |kind: &str, items: &mut dyn Iterator<Item = &str>| {
        let words: Vec<&str> = items.collect();
        format!("{kind} {}\n", words.join(" "))
    };
    line("d", &mut TOOL_DIRS.iter().copied())
        + &line("t", &mut HOST_TOOLS.iter().copied())
        + &line("f", &mut FILES.iter().map(|f| f.0))
        + &line("r", &mut TREES.iter().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_list_holds_every_entry_once() {
        let list = host_list();
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 4, "{list}");
        assert!(lines[0].starts_with("d /bin /usr/bin "), "{list}");
        assert_eq!(lines[1].split(' ').count(), HOST_TOOLS.len() + 1);
        assert!(lines[2].contains(" /usr/sbin/sshd "), "{list}");
        assert!(lines[3].ends_with(" /lib/modules"), "{list}");
        // Words are split on blanks on the host: none may hold one.
        for entry in HOST_TOOLS
            .iter()
            .chain(TOOL_DIRS)
            .chain(FILES.iter().map(|f| &f.0))
            .chain(TREES.iter().map(|t| &t.0))
        {
            assert!(!entry.contains(char::is_whitespace), "{entry:?}");
        }
    }

    fn what(path: &str) -> Option<String> {
        check(path).map(|p| p.what)
    }

    #[test]
    fn every_host_tool_in_every_tool_dir() {
        for dir in TOOL_DIRS {
            for tool in HOST_TOOLS {
                let path = format!("{dir}/{tool}");
                let p = check(&path).unwrap_or_else(|| panic!("{path} is not protected"));
                assert_eq!(p.what, format!("a tool wavectl's host side runs ({tool})"));
                assert_eq!(p.risk, NO_CLEAN);
            }
        }
    }

    #[test]
    fn files_and_trees() {
        let cases = [
            (
                "/usr/sbin/sshd",
                "the SSH server wavectl reaches hosts through",
            ),
            ("/sbin/sshd", "the SSH server wavectl reaches hosts through"),
            (
                "/usr/lib/openssh/sftp-server",
                "the SSH server's sftp subsystem",
            ),
            (
                "/lib/openssh/sftp-server",
                "the SSH server's sftp subsystem",
            ),
            ("/usr/sbin/cron", "the cron daemon"),
            ("/usr/bin/crontab", "cron's crontab tool"),
            ("/lib/systemd/systemd", "the init system (PID 1)"),
            ("/usr/lib/systemd/systemd", "the init system (PID 1)"),
            ("/sbin/init", "the init system (PID 1)"),
            ("/usr/sbin/init", "the init system (PID 1)"),
            ("/usr/bin/ssh", "the SSH client"),
            ("/bin/ssh", "the SSH client"),
            // Also a host tool: that reason comes first.
            ("/usr/bin/sudo", "a tool wavectl's host side runs (sudo)"),
            ("/etc/passwd", "the user database"),
            ("/etc/shadow", "the password database"),
            ("/etc/group", "the group database"),
            ("/etc/sudoers", "sudo's configuration"),
            (
                "/etc/ssh/sshd_config",
                "inside /etc/ssh (the SSH configuration and host keys)",
            ),
            (
                "/etc/ssh",
                "inside /etc/ssh (the SSH configuration and host keys)",
            ),
            (
                "/etc/pam.d/sshd",
                "inside /etc/pam.d (the PAM login configuration)",
            ),
            (
                "/etc/sudoers.d/x",
                "inside /etc/sudoers.d (sudo's configuration)",
            ),
            (
                "/boot/vmlinuz",
                "inside /boot (the kernel and the boot loader)",
            ),
            (
                "/boot/grub/grub.cfg",
                "inside /boot (the kernel and the boot loader)",
            ),
            (
                "/lib/modules/6.1/x.ko",
                "inside /lib/modules (the kernel modules)",
            ),
            (
                "/usr/lib/modules/6.1/x.ko",
                "inside /lib/modules (the kernel modules)",
            ),
        ];
        for (path, want) in cases {
            assert_eq!(what(path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn neighbours_are_not_protected() {
        for path in [
            "/usr/local/sbin/raid-health",
            "/usr/local/sbin/timeout2",
            "/usr/local/sbin/my-timeout",
            "/opt/bin/timeout",
            "/usr/bin/x/timeout",
            "/usr/local/lib/timeout",
            "/timeout",
            "/etc/sshd",
            "/etc/ssh2/x",
            "/etc/passwd-",
            "/etc/sudoers.dx",
            "/bootstrap",
            "/usr/lib/modules-load.d/x.conf",
            "/usr/lib/systemd/systemd-foo",
            "/usr/sbin/sshd2",
            "/home/bin/sh",
        ] {
            assert_eq!(what(path), None, "{path}");
        }
    }

    #[test]
    fn help_names_the_risk_and_the_way_out() {
        assert_eq!(
            check("/usr/bin/timeout").unwrap().help("replacing"),
            "replacing it could leave hosts that cannot be cleaned; choose another path, or \
             pass --force if you really mean it"
        );
        assert_eq!(
            check("/etc/pam.d/sshd").unwrap().help("removing"),
            "removing it could lock wavectl (and you) out of the hosts; choose another path, \
             or pass --force if you really mean it"
        );
    }
}
