//! Non-root logins on lab hosts, for `become`: a user with the fleet's client key in its
//! authorized_keys and a sudo rule (passwordless, or one that wants a password), written
//! into that host's own /etc and /var overlays; the fleet's inventory then names the user
//! and `become = true` for that host. Runs commands inside the host.

use std::fs;

use super::{Fleet, LabError, LabHost};

/// Where the lab puts a login's home inside a host: under /var (a per-host overlay;
/// /home is not one).
pub const HOME_PARENT: &str = "/var/lib/lab-home";

/// The sudo rule a lab login gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sudo {
    /// `USER ALL=(ALL:ALL) NOPASSWD: ALL`: `sudo -n` runs anything as root.
    NoPassword,
    /// `USER ALL=(ALL:ALL) ALL`, and the user has no password: sudo always wants one,
    /// so `sudo -n` fails ("a password is required").
    WantsPassword,
}

/// Creates the user, its home with `.ssh/authorized_keys` (mode 0600, owned by the user),
/// a not-locked account (`*`: sshd without PAM refuses a locked one), the sudo rule in
/// `/etc/sudoers.d/lab-USER`, and the host's name in /etc/hosts (sudo looks it up).
const ADD_USER: &str = r#"set -eu
user=$1 key=$2 rule=$3 parent=$4
mkdir -p "$parent"
useradd --create-home --home-dir "$parent/$user" --shell /bin/bash --user-group "$user"
usermod -p '*' "$user"
install -d -m 0700 -o "$user" -g "$user" "$parent/$user/.ssh"
printf '%s\n' "$key" > "$parent/$user/.ssh/authorized_keys"
chown "$user:$user" "$parent/$user/.ssh/authorized_keys"
chmod 0600 "$parent/$user/.ssh/authorized_keys"
printf '%s\n' "$rule" > "/etc/sudoers.d/lab-$user"
chmod 0440 "/etc/sudoers.d/lab-$user"
visudo -cq
name=$(hostname)
grep -qw -- "$name" /etc/hosts 2>/dev/null || printf '127.0.1.1 %s\n' "$name" >> /etc/hosts
"#;

impl LabHost {
    /// Add a login `user` (`[a-z_][a-z0-9_-]*`) that `public_key` (one authorized_keys
    /// line) opens, with the `sudo` rule. The host must be running.
    pub fn add_user(&self, user: &str, public_key: &str, sudo: Sudo) -> Result<(), LabError> {
        let valid = user.len() <= 32
            && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(LabError::BadOptions(format!(
                "user name {user:?}: use [a-z_][a-z0-9_-]*, at most 32 characters"
            )));
        }
        let rule = match sudo {
            Sudo::NoPassword => format!("{user} ALL=(ALL:ALL) NOPASSWD: ALL"),
            Sudo::WantsPassword => format!("{user} ALL=(ALL:ALL) ALL"),
        };
        let q = crate::remote::sh_quote;
        let cmd = format!(
            "sh -c {} lab-add-user {} {} {} {}",
            q(ADD_USER),
            q(user),
            q(public_key.trim()),
            q(&rule),
            q(HOME_PARENT)
        );
        let out = self.exec(&cmd).map_err(|source| LabError::Io {
            what: "add a user in",
            path: self.dir().to_owned(),
            source,
        })?;
        if !out.status.success() {
            return Err(LabError::BadOptions(format!(
                "host {}: adding user {user} failed: {}",
                self.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

impl Fleet {
    /// Give host `host` a login `user` opened by the fleet's client key, with the `sudo`
    /// rule (see [`LabHost::add_user`]); from now on [`write_inventory`](Self::write_inventory)
    /// gives that host `user = USER` and `become = true`. The ssh_config still says
    /// `User root` (so `Fleet::ssh` stays root); the inventory's user wins for wavectl.
    pub fn add_login(&mut self, host: &str, user: &str, sudo: Sudo) -> Result<(), LabError> {
        let public = self.path.join("client_key.pub");
        let key = fs::read_to_string(&public).map_err(|source| LabError::Io {
            what: "read",
            path: public.clone(),
            source,
        })?;
        let h = self
            .get(host)
            .ok_or_else(|| LabError::BadOptions(format!("no lab host named {host:?}")))?;
        h.add_user(user, &key, sudo)?;
        self.logins.insert(host.to_owned(), user.to_owned());
        Ok(())
    }

    /// The login [`add_login`](Self::add_login) gave `host`, if any.
    pub fn login(&self, host: &str) -> Option<&str> {
        self.logins.get(host).map(String::as_str)
    }
}
