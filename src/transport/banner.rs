//! The cheapest sign that a host answers: its SSH banner (`SSH-2.0-…`), read over a
//! plain TCP connection, no key exchange and no login. Where ssh would reach the host
//! (`HostName`, `Port`) comes from `ssh -G` with the run's ssh_config, so aliases work as
//! they do for a login; a host reached through a proxy (`ProxyJump`, `ProxyCommand`) has
//! no banner to read from here, and says so (the caller logs in instead).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::inventory::Host;

/// Why no banner was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BannerError {
    /// The host is reached through a proxy, or `ssh -G` could not say where it is: only
    /// a login can tell.
    #[error("{0}")]
    Indirect(String),
    /// Nothing answered at the address, or not with an SSH banner, within the deadline.
    #[error("{0}")]
    NoBanner(String),
}

/// Where ssh connects for `host`: (hostname, port), or why a banner cannot tell.
pub async fn resolve(host: &Host, ssh_config: Option<&Path>) -> Result<(String, u16), BannerError> {
    let mut cmd = Command::new("ssh");
    if let Some(cfg) = ssh_config {
        cmd.arg("-F").arg(cfg);
    }
    if let Some(port) = host.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.arg("-G").arg("--").arg(&host.address);
    cmd.stdin(std::process::Stdio::null());
    cmd.kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| BannerError::Indirect(format!("cannot run `ssh -G`: {e}")))?;
    if !out.status.success() {
        return Err(BannerError::Indirect(format!(
            "`ssh -G` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_config(&String::from_utf8_lossy(&out.stdout))
}

/// `ssh -G`'s output → (hostname, port), unless a proxy stands between.
fn parse_config(text: &str) -> Result<(String, u16), BannerError> {
    let (mut name, mut port) = (None, 22u16);
    for line in text.lines() {
        let mut it = line.splitn(2, ' ');
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        match k {
            "hostname" => name = Some(v.trim().to_string()),
            "port" => port = v.trim().parse().unwrap_or(22),
            "proxyjump" | "proxycommand" if v.trim() != "none" => {
                return Err(BannerError::Indirect(format!("reached through {k}")))
            }
            _ => {}
        }
    }
    name.map(|n| (n, port))
        .ok_or_else(|| BannerError::Indirect("`ssh -G` names no hostname".into()))
}

/// Read the host's SSH banner within `deadline` (from the TCP connect on): the
/// identification line, or why there is none.
pub async fn read(addr: &str, port: u16, deadline: Duration) -> Result<String, BannerError> {
    let work = async {
        let mut s = TcpStream::connect((addr, port))
            .await
            .map_err(|e| format!("cannot connect to {addr}:{port}: {e}"))?;
        // Lines before the identification are allowed (RFC 4253 4.2); 4 KiB is plenty.
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        loop {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("{addr}:{port}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "{addr}:{port} closed the connection without an SSH banner"
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(line) = banner_line(&buf) {
                return Ok(line);
            }
            if buf.len() > 4096 {
                return Err(format!(
                    "{addr}:{port} sent no SSH banner in its first 4 KiB"
                ));
            }
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r.map_err(BannerError::NoBanner),
        Err(_) => Err(BannerError::NoBanner(format!(
            "no SSH banner from {addr}:{port} within {deadline:?}"
        ))),
    }
}

/// The `SSH-` identification line among the complete lines read so far.
fn banner_line(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    let complete = &text[..text.rfind('\n')? + 1];
    complete
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| l.starts_with("SSH-"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_g_output_gives_hostname_and_port() {
        let text = "user root\nhostname 127.0.0.1\nport 40022\nproxyjump none\n";
        assert_eq!(parse_config(text), Ok(("127.0.0.1".to_string(), 40022)));
    }

    #[test]
    fn a_proxied_host_has_no_banner_to_read() {
        let text = "hostname 10.0.0.1\nport 22\nproxyjump bastion\n";
        assert!(matches!(parse_config(text), Err(BannerError::Indirect(_))));
    }

    #[test]
    fn the_banner_line_is_found_after_other_lines() {
        assert_eq!(banner_line(b"SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(
            banner_line(b"hello\r\nSSH-2.0-OpenSSH_9.2p1 Debian\r\n"),
            Some("SSH-2.0-OpenSSH_9.2p1 Debian".to_string())
        );
    }

    #[tokio::test]
    async fn a_closed_port_has_no_banner() {
        // A port nobody listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = read("127.0.0.1", port, Duration::from_secs(5)).await;
        assert!(matches!(e, Err(BannerError::NoBanner(m)) if m.contains("cannot connect")));
    }
}
