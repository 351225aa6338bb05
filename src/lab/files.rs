//! The text the lab generates: the host boot script, sshd's config, the client's
//! ssh_config blocks and the TOML inventory. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Where, inside a host, sshd finds its config, host key and root's authorized keys.
/// They are written into the host's overlay upper dirs before the host boots.
pub(crate) const SSHD_CONFIG: &str = "/etc/ssh/lab_sshd_config";
pub(crate) const HOST_KEY: &str = "/etc/ssh/lab_host_ed25519_key";
pub(crate) const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";

/// The directories each host sees through its own copy-on-write overlay.
pub(crate) const OVERLAID: [&str; 5] = ["etc", "var", "usr", "opt", "root"];

/// The one key exchange both sides use: the default post-quantum one costs ~50 ms
/// of CPU per login on these machines.
pub(crate) const KEX: &str = "curve25519-sha256";

/// A plain `.bashrc` for root: the machine's own runs pyenv (~100 ms a login).
pub(crate) const BASHRC: &str = "# wavectl lab host: a plain .bashrc\n";

/// Runs as pid 1 of a new mount, UTS and pid namespace (`unshare ... sh boot.sh DIR NAME`):
/// sets the hostname, mounts the overlays, a private /run and /tmp, then becomes sshd.
/// The private /tmp also hides the fleet's directory from the host.
pub(crate) const BOOT_SCRIPT: &str = r#"# wavectl lab host boot: pid 1 of the host's namespaces, becomes sshd.
set -eu
dir=$1
name=$2
printf '%s' "$name" > /proc/sys/kernel/hostname
for d in etc var usr opt root; do
    mount -t overlay "lab-$d" -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount -t tmpfs -o mode=0755,size=64m lab-run /run
mkdir -p /run/sshd
mount -t tmpfs -o mode=1777,size=512m lab-tmp /tmp
exec /usr/sbin/sshd -D -e -f /etc/ssh/lab_sshd_config
"#;

/// sshd's config for one host. MaxSessions and MaxStartups keep their defaults
/// (10 and 10:30:100), as on real servers.
pub(crate) fn sshd_config(name: &str, port: u16) -> String {
    format!(
        "# wavectl lab host {name}\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {HOST_KEY}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile {AUTHORIZED_KEYS}\n\
         UsePAM no\n\
         KexAlgorithms {KEX}\n\
         PrintMotd no\n\
         PidFile none\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )
}

/// One `Host` block of the fleet's ssh_config: the host's name is the alias.
pub(crate) fn ssh_config_block(name: &str, port: u16, key: &Path, known_hosts: &Path) -> String {
    format!(
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
         \x20 KexAlgorithms {KEX}\n\
         \x20 BatchMode yes\n\
         \x20 LogLevel ERROR\n",
        key = key.display(),
        known = known_hosts.display(),
    )
}

/// One known_hosts line: the host's public key (`ssh-ed25519 AAAA... comment`) under its alias.
pub(crate) fn known_hosts_line(name: &str, public_key: &str) -> String {
    let mut fields = public_key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("{name} {kind} {key}\n")
}

/// The fleet as a TOML inventory (DESIGN.md): each host's address is its ssh_config alias,
/// so no port is written; ssh takes it from the fleet's ssh_config.
pub(crate) fn inventory<'a>(
    header: &str,
    hosts: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("[defaults]\nuser = \"root\"\n");
    for (name, labels) in hosts {
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
        let text = inventory("lab fleet\nline two", [("h01", &labels), ("h02", &none)]);
        let value: toml::Value = toml::from_str(&text).expect(&text);
        assert_eq!(value["defaults"]["user"].as_str(), Some("root"));
        let hosts = value["host"].as_array().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0]["address"].as_str(), Some("h01"));
        assert_eq!(hosts[0]["labels"]["odd key"].as_str(), Some("a \"b\""));
        assert!(hosts[1]["labels"].as_table().unwrap().is_empty());
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
