//! The text the lab generates: the host boot script, sshd's config, the client's
//! ssh_config blocks and the TOML inventory. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Where, inside a host, sshd finds its config, host key and root's authorized keys.
/// They are written into the host's overlay upper dirs before the host boots. sshd reads
/// every user's `~/.ssh/authorized_keys` (root's is this one; see `users` for others).
pub(crate) const SSHD_CONFIG: &str = "/etc/ssh/lab_sshd_config";
pub(crate) const HOST_KEY: &str = "/etc/ssh/lab_host_ed25519_key";
pub(crate) const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";

/// The directories each host sees through its own copy-on-write overlay.
pub(crate) const OVERLAID: [&str; 5] = ["etc", "var", "usr", "opt", "root"];

/// A plain `.bashrc` for root: the machine's own runs pyenv (~100 ms a login).
pub(crate) const BASHRC: &str = "# wavectl lab host: a plain .bashrc\n";

/// Runs as pid 1 of the host's new namespaces (`unshare ... sh boot.sh DIR NAME KIND`):
/// sets the hostname, mounts the overlays, a private /run and /tmp, then becomes sshd
/// (kinds `sshd` and `cron`, the latter after starting Debian's cron daemon) or systemd
/// (kind `systemd`, in its own cgroup namespace too).
///
/// The private /tmp also hides the fleet's directory from the host, and it is mounted
/// before systemd starts: systemd-tmpfiles empties /tmp at boot, and must never see this
/// machine's. What a systemd host needs of the lab's files after that (its boot log,
/// where ssh.service reports) is bind-mounted under its /run first.
///
/// Every boot gets its own boot id (`/proc/sys/kernel/random/boot_id`, a random UUID
/// bind-mounted over the kernel's, as LXC does), so a reboot is visible as on a real
/// host; the kernel, its uptime and its clocks stay this machine's.
///
/// A systemd host also gets what a container manager gives a container: a private /dev
/// (a few device nodes, its own devpts, /dev/console on /dev/null), read-only /sys,
/// /proc/sys and /proc/sysrq-trigger, a read-only view of / outside the overlays (so
/// nothing it runs at boot changes this machine's kernel settings or files), and a
/// cgroup namespace rooted at its own cgroups with the `name=systemd` hierarchy (for
/// systemd, which runs in legacy cgroup v1 mode there) and the freezer hierarchy mounted
/// under /sys/fs/cgroup. `container=wavectl-lab` in its environment makes systemd run as
/// in a container: it does not remount, unmount or reboot the machine.
pub(crate) const BOOT_SCRIPT: &str = r#"# wavectl lab host boot: pid 1 of the host's namespaces, becomes sshd or systemd.
set -eu
dir=$1
name=$2
kind=${3:-sshd}
printf '%s' "$name" > /proc/sys/kernel/hostname
for d in etc var usr opt root; do
    mount -t overlay "lab-$d" -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount -t tmpfs -o mode=0755,size=64m lab-run /run
mkdir /run/wavectl-lab
# Each boot its own boot id, as on a real host (the kernel's is this machine's).
read -r id < /proc/sys/kernel/random/uuid
echo "$id" > /run/wavectl-lab/boot_id
boot_id() {
    mount --bind /run/wavectl-lab/boot_id /proc/sys/kernel/random/boot_id
}
if [ "$kind" = systemd ]; then
    touch /run/wavectl-lab/boot.log
    mount --bind "$dir/sshd.log" /run/wavectl-lab/boot.log
fi
mount -t tmpfs -o mode=1777,size=512m lab-tmp /tmp
case $kind in
sshd)
    boot_id
    mkdir -p /run/sshd
    exec /usr/sbin/sshd -D -e -f /etc/ssh/lab_sshd_config
    ;;
cron)
    boot_id
    mkdir -p /run/sshd
    /usr/sbin/cron
    exec /usr/sbin/sshd -D -e -f /etc/ssh/lab_sshd_config
    ;;
systemd)
    dev=/run/wavectl-lab/dev
    mkdir "$dev"
    mount -t tmpfs -o mode=0755,size=1m,nosuid lab-dev "$dev"
    mknod -m 666 "$dev/null" c 1 3
    mknod -m 666 "$dev/zero" c 1 5
    mknod -m 666 "$dev/full" c 1 7
    mknod -m 666 "$dev/random" c 1 8
    mknod -m 666 "$dev/urandom" c 1 9
    mknod -m 666 "$dev/tty" c 5 0
    mkdir "$dev/pts" "$dev/shm"
    ln -s pts/ptmx "$dev/ptmx"
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
    touch "$dev/console"
    mount --bind /dev/null "$dev/console"
    mount --move "$dev" /dev
    rmdir "$dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 lab-devpts /dev/pts
    mount -t tmpfs -o mode=1777,nosuid,nodev lab-shm /dev/shm
    mount -t tmpfs -o mode=0755,size=1m lab-cgroup /sys/fs/cgroup
    mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/freezer
    mount -t cgroup -o none,name=systemd lab-cgroup-systemd /sys/fs/cgroup/systemd
    mount -t cgroup -o freezer lab-cgroup-freezer /sys/fs/cgroup/freezer
    mount -o remount,ro /sys/fs/cgroup
    mount -o bind,remount,ro /sys
    for p in /proc/sys /proc/sysrq-trigger; do
        [ -e "$p" ] || continue
        mount --bind "$p" "$p"
        mount -o bind,remount,ro "$p"
    done
    boot_id
    mount -o bind,remount,ro /
    exec env -i container=wavectl-lab PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd
    ;;
esac
echo "unknown host kind $kind" >&2
exit 1
"#;

/// Where a systemd host's boot log (the lab's `sshd.log`) is bind-mounted inside it.
pub(crate) const BOOT_LOG: &str = "/run/wavectl-lab/boot.log";

/// The line a systemd host's ssh.service appends to the boot log once sshd listens
/// (Type=notify: after sshd bound its port).
pub(crate) fn systemd_ready_line(port: u16) -> String {
    format!("wavectl-lab: ssh.service ready on port {port}")
}

/// The line a systemd host's ssh.service appends to the boot log when it failed, after
/// its journal.
pub(crate) const SYSTEMD_SSH_FAILED: &str = "wavectl-lab: ssh.service failed";

/// Where a systemd host's drop-in for Debian's ssh.service goes.
pub(crate) const SSH_DROPIN: &str = "/etc/systemd/system/ssh.service.d/wavectl-lab.conf";

/// The drop-in that makes Debian's ssh.service run the lab's sshd (its config, its port)
/// and report to the boot log: ready once it listens, failed with its journal if it stops
/// on an error (a port taken meanwhile). The unit's own `RuntimeDirectory=sshd` stays.
pub(crate) fn ssh_dropin(port: u16) -> String {
    let ready = systemd_ready_line(port);
    format!(
        "# wavectl lab host: sshd with the lab's config, reporting to the lab's boot log\n\
         [Service]\n\
         EnvironmentFile=\n\
         ExecStartPre=\n\
         ExecStartPre=/usr/sbin/sshd -t -f {SSHD_CONFIG}\n\
         ExecStart=\n\
         ExecStart=/usr/sbin/sshd -D -e -f {SSHD_CONFIG}\n\
         ExecReload=\n\
         ExecReload=/usr/sbin/sshd -t -f {SSHD_CONFIG}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         ExecStartPost=/bin/sh -c 'echo \"{ready}\" >> {BOOT_LOG}'\n\
         ExecStopPost=/bin/sh -c '[ \"$$SERVICE_RESULT\" = success ] || \
         {{ journalctl --sync; journalctl _SYSTEMD_INVOCATION_ID=$$INVOCATION_ID -o cat -n 20 --no-pager; \
         echo \"{SYSTEMD_SSH_FAILED}: $$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS\"; }} \
         >> {BOOT_LOG} 2>&1'\n"
    )
}

/// systemd's manager settings on a lab host: stopping a unit that ignores SIGTERM takes
/// 15 s, not 90, so a reboot stays short.
pub(crate) const SYSTEM_CONF: (&str, &str) = (
    "/etc/systemd/system.conf.d/wavectl-lab.conf",
    "# wavectl lab host\n[Manager]\nDefaultTimeoutStopSec=15s\n",
);

/// journald's settings on a lab host: a small journal (hosts are many and short-lived).
pub(crate) const JOURNALD_CONF: (&str, &str) = (
    "/etc/systemd/journald.conf.d/wavectl-lab.conf",
    "# wavectl lab host\n[Journal]\nSystemMaxUse=16M\nRuntimeMaxUse=16M\n",
);

/// Units every systemd host has masked (symlinked to /dev/null in its /etc overlay):
/// they would reach this machine's shared kernel, clock, disks or console, or fail in a
/// host without a terminal. Units this machine enabled itself are masked too (see
/// `systemd::MASK_ENABLED_EXCEPT`): they are this machine's services (a database, a mail
/// server) that would all bind the same ports in the shared network namespace.
pub(crate) const MASKED: &[&str] = &[
    // No terminal: agetty fails on /dev/console (a host's is /dev/null).
    "getty.target",
    "getty@.service",
    "getty-static.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    // The shared kernel: module loading, binfmt_misc, sysctls, debug/trace/config/fuse
    // file systems, the audit stream, pstore.
    "systemd-modules-load.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-sysctl.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "systemd-journald-audit.socket",
    "systemd-pstore.service",
    // The shared clock and the machine's root file system and disks.
    "systemd-timesyncd.service",
    "systemd-remount-fs.service",
    "fstrim.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    // Port 22 of the shared network namespace: ssh.service runs the lab's sshd instead.
    "ssh.socket",
];
/// sshd's config for one host. MaxSessions, MaxStartups and the key exchange keep
/// OpenSSH's defaults (10, 10:30:100, the post-quantum `sntrup761x25519-sha512` first),
/// as on real servers.
pub(crate) fn sshd_config(name: &str, port: u16) -> String {
    format!(
        "# wavectl lab host {name}\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {HOST_KEY}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         UsePAM no\n\
         PrintMotd no\n\
         PidFile none\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )
}

/// One `Host` block of the fleet's ssh_config: the host's name is the alias. `kex`, if
/// given, is the only key exchange the client offers (else OpenSSH's default list).
pub(crate) fn ssh_config_block(
    name: &str,
    port: u16,
    key: &Path,
    known_hosts: &Path,
    kex: Option<&str>,
) -> String {
    let mut block = format!(
        "Host {name}\n\
         \x20 HostName 127.0.0.1\n\
         \x20 Port {port}\n\
         \x20 User root\n\
         \x20 IdentityFile \"{key}\"\n\
         \x20 IdentitiesOnly yes\n\
         \x20 UserKnownHostsFile \"{known}\"\n\
         \x20 GlobalKnownHostsFile /dev/null\n\
         \x20 HostKeyAlias {name}\n\
         \x20 StrictHostKeyChecking yes\n\
         \x20 BatchMode yes\n\
         \x20 LogLevel ERROR\n",
        key = key.display(),
        known = known_hosts.display(),
    );
    if let Some(kex) = kex {
        let _ = writeln!(block, "  KexAlgorithms {kex}");
    }
    block
}

/// One known_hosts line: the host's public key (`ssh-ed25519 AAAA... comment`) under its alias.
pub(crate) fn known_hosts_line(name: &str, public_key: &str) -> String {
    let mut fields = public_key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("{name} {kind} {key}\n")
}

/// The fleet as a TOML inventory (DESIGN.md): each host's address is its ssh_config alias,
/// so no port is written; ssh takes it from the fleet's ssh_config. A host with a login
/// (a non-root user with sudo) gets `user` and `become = true`.
pub(crate) fn inventory<'a>(
    header: &str,
    hosts: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>, Option<&'a str>)>,
) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("[defaults]\nuser = \"root\"\n");
    for (name, labels, login) in hosts {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{} = {}", toml_key(k), toml_str(v)))
            .collect();
        let _ = write!(
            out,
            "\n[[host]]\nname = {name}\naddress = {name}\nlabels = {{ {labels} }}\n",
            name = toml_str(name),
            labels = labels.join(", "),
        );
        if let Some(user) = login {
            let _ = writeln!(out, "user = {}\nbecome = true", toml_str(user));
        }
    }
    out
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        k.to_owned()
    } else {
        toml_str(k)
    }
}

/// A host name the lab accepts: it is a hostname, a directory, a cgroup and an ssh alias.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_quotes_and_parses() {
        let mut labels = BTreeMap::new();
        labels.insert("role".to_owned(), "db".to_owned());
        labels.insert("odd key".to_owned(), "a \"b\"".to_owned());
        let none = BTreeMap::new();
        let text = inventory(
            "lab fleet\nline two",
            [("h01", &labels, None), ("h02", &none, Some("deploy"))],
        );
        let value: toml::Value = toml::from_str(&text).expect(&text);
        assert_eq!(value["defaults"]["user"].as_str(), Some("root"));
        let hosts = value["host"].as_array().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0]["address"].as_str(), Some("h01"));
        assert_eq!(hosts[0]["labels"]["odd key"].as_str(), Some("a \"b\""));
        assert!(hosts[1]["labels"].as_table().unwrap().is_empty());
        assert_eq!(hosts[0].get("become"), None);
        assert_eq!(hosts[1]["user"].as_str(), Some("deploy"));
        assert_eq!(hosts[1]["become"].as_bool(), Some(true));
    }

    #[test]
    fn names() {
        assert!(valid_name("h01"));
        assert!(valid_name("db-standby_2"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name("a/b"));
    }

    #[test]
    fn known_hosts_line_drops_the_comment() {
        let line = known_hosts_line("h01", "ssh-ed25519 AAAAkey root@box\n");
        assert_eq!(line, "h01 ssh-ed25519 AAAAkey\n");
    }
}
