//! The cheapest sign that a host answers: its SSH banner (`SSH-2.0-…`), read over a
//! plain TCP connection, no key exchange and no login. Where ssh would reach the host
//! (`HostName`, `Port`) comes from `ssh -G` with the run's ssh_config, so aliases work as
//! they do for a login; a host reached through a proxy (`ProxyJump`, `ProxyCommand`) has
//! no banner to read from here, and says so (the caller logs in instead). Also what a
//! fresh connection hears beside a login that stalls ([`listen`]).

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

/// What a fresh TCP connection to a host's SSH port heard within its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The identification line: the host's sshd answers.
    Banner(String),
    /// No TCP connection (refused, unreachable, or no answer in time).
    NoTcp(String),
    /// Connected, and nothing more until the deadline: the host's sshd does not run.
    Silent(String),
    /// Connected, then something else than a banner (closed, or garbage): the host's
    /// sshd runs enough to say no.
    Other(String),
}

/// Listen for the host's SSH banner within `deadline` (from the TCP connect on).
pub async fn listen(addr: &str, port: u16, deadline: Duration) -> Heard {
    let started = tokio::time::Instant::now();
    let stream = match tokio::time::timeout(deadline, TcpStream::connect((addr, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Heard::NoTcp(format!("cannot connect to {addr}:{port}: {e}")),
        Err(_) => {
            return Heard::NoTcp(format!(
                "no TCP answer from {addr}:{port} within {deadline:?}"
            ))
        }
    };
    let mut s = stream;
    let work = async {
        // Lines before the identification are allowed (RFC 4253 4.2); 4 KiB is plenty.
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        loop {
            let n = match s.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => return Heard::Other(format!("{addr}:{port}: {e}")),
            };
            if n == 0 {
                return Heard::Other(format!(
                    "{addr}:{port} closed the connection without an SSH banner"
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(line) = banner_line(&buf) {
                return Heard::Banner(line);
            }
            if buf.len() > 4096 {
                return Heard::Other(format!(
                    "{addr}:{port} sent no SSH banner in its first 4 KiB"
                ));
            }
        }
    };
    match tokio::time::timeout_at(started + deadline, work).await {
        Ok(h) => h,
        Err(_) => Heard::Silent(format!(
            "connected to {addr}:{port}, no SSH banner within {deadline:?}"
        )),
    }
}

/// Read the host's SSH banner within `deadline` (from the TCP connect on): the
/// identification line, or why there is none.
pub async fn read(addr: &str, port: u16, deadline: Duration) -> Result<String, BannerError> {
    match listen(addr, port, deadline).await {
        Heard::Banner(line) => Ok(line),
        Heard::NoTcp(m) | Heard::Silent(m) | Heard::Other(m) => Err(BannerError::NoBanner(m)),
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
        assert!(matches!(
            listen("127.0.0.1", port, Duration::from_secs(5)).await,
            Heard::NoTcp(_)
        ));
    }

    #[tokio::test]
    async fn a_port_that_accepts_and_says_nothing_is_silent() {
        // The kernel accepts for a listener that never reads (a frozen sshd).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = listen("127.0.0.1", port, Duration::from_millis(300)).await;
        assert!(
            matches!(&h, Heard::Silent(m) if m.contains("no SSH banner")),
            "{h:?}"
        );
        drop(l);
    }
}
