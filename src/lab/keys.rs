//! The fleet's keys and client config: an ed25519 client key, one host key per host,
//! root's authorized_keys on each host, known_hosts and the ssh_config. Runs ssh-keygen.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{files, Fleet, LabError, LabHost};

/// How long key generation may take.
const KEYGEN_DEADLINE: Duration = Duration::from_secs(20);

impl Fleet {
    /// The client key and every host's key, generated concurrently; the client's public
    /// key becomes root's authorized_keys on every host.
    pub(super) fn generate_keys(&self) -> Result<(), LabError> {
        let client_key = self.path.join("client_key");
        let host_key = |h: &LabHost| h.dir().join("upper").join(&files::HOST_KEY[1..]);
        let mut jobs = Vec::new();
        for (key, comment) in std::iter::once((client_key.clone(), "wavectl-lab-client".to_owned()))
            .chain(
                self.hosts
                    .iter()
                    .map(|h| (host_key(h), format!("wavectl-lab-{}", h.name()))),
            )
        {
            let child = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
                .arg(&key)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| LabError::Io {
                    what: "run ssh-keygen for",
                    path: key.clone(),
                    source,
                })?;
            jobs.push((key, child));
        }
        let deadline = Instant::now() + KEYGEN_DEADLINE;
        let mut failure = None;
        for (key, mut child) in jobs {
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(5)),
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err("timed out".to_owned());
                    }
                    Err(e) => break Err(e.to_string()),
                }
            };
            let detail = match status {
                Ok(s) if s.success() => continue,
                Ok(s) => {
                    let mut err = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = io::Read::read_to_string(&mut pipe, &mut err);
                    }
                    format!("{s}: {}", err.trim())
                }
                Err(e) => e,
            };
            failure.get_or_insert(LabError::KeyGen { path: key, detail });
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let public = client_key.with_extension("pub");
        let text = fs::read_to_string(&public).map_err(|source| LabError::Io {
            what: "read",
            path: public.clone(),
            source,
        })?;
        for host in &self.hosts {
            let keys = host.dir().join("upper").join(&files::AUTHORIZED_KEYS[1..]);
            fs::write(&keys, &text)
                .and_then(|()| fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)))
                .map_err(|source| LabError::Io {
                    what: "write",
                    path: keys.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// known_hosts (each host's key under its alias) and the ssh_config.
    pub(super) fn write_client_config(&self) -> Result<(), LabError> {
        let known_hosts = self.path.join("known_hosts");
        let client_key = self.path.join("client_key");
        let mut known = String::new();
        let mut config = format!("# wavectl lab fleet {}\n", self.path.display());
        for host in &self.hosts {
            let public = host
                .dir()
                .join("upper")
                .join(&files::HOST_KEY[1..])
                .with_extension("pub");
            let key = fs::read_to_string(&public).map_err(|source| LabError::Io {
                what: "read",
                path: public.clone(),
                source,
            })?;
            known.push_str(&files::known_hosts_line(host.name(), &key));
            config.push('\n');
            config.push_str(&files::ssh_config_block(
                host.name(),
                host.port(),
                &client_key,
                &known_hosts,
                self.kex.as_deref(),
            ));
        }
        fs::write(&known_hosts, known).map_err(|source| LabError::Io {
            what: "write",
            path: known_hosts.clone(),
            source,
        })?;
        fs::write(&self.ssh_config, config).map_err(|source| LabError::Io {
            what: "write",
            path: self.ssh_config.clone(),
            source,
        })
    }
}
