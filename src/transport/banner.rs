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

/// Where ssh connects for `host`: (hostname, port), or why a banner cannot tell. From the
/// run's ssh_config itself when it is a plain one ([`Plain`]: read once per run, no
/// process started), else from `ssh -G` (one `ssh` started per host: on a virtual
/// machine a program's start is dear).
pub async fn resolve(host: &Host, ssh_config: Option<&Path>) -> Result<(String, u16), BannerError> {
    if let Some(found) = ssh_config.and_then(|cfg| Plain::cached(cfg)?.resolve(host)) {
        return Ok(found);
    }
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

/// An ssh_config (`-F`: ssh then reads no other file) with nothing that needs ssh to say
/// where a host is reached: only `Host` blocks and keywords, no `Include`, `Match`,
/// proxy or canonicalization, no `%` token in a `HostName`. Where ssh connects is then
/// the first `HostName` and `Port` of the blocks whose patterns match the name given, as
/// `ssh -G` says (a unit test compares the two).
#[derive(Debug)]
pub struct Plain {
    /// (patterns, HostName, Port) per block, in order; the lines before any `Host` are a
    /// block that matches every host.
    blocks: Vec<(Vec<String>, Option<String>, Option<u16>)>,
}

impl Plain {
    /// Parse `text`; `None` when it is not a plain one.
    pub fn parse(text: &str) -> Option<Plain> {
        let mut blocks = vec![(vec!["*".to_string()], None, None)];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or((line, ""));
            let value = value.trim_start_matches(|c: char| c.is_whitespace() || c == '=');
            let value = value.trim();
            let unquoted = value.trim_matches('"');
            let last = blocks.len() - 1;
            match key.to_ascii_lowercase().as_str() {
                "include" | "match" | "proxyjump" | "proxycommand" => return None,
                k if k.starts_with("canonical") => return None,
                "host" => blocks.push((
                    value
                        .split_whitespace()
                        .map(|p| p.trim_matches('"').to_string())
                        .collect(),
                    None,
                    None,
                )),
                "hostname" => {
                    if unquoted.contains('%') {
                        return None;
                    }
                    let b = &mut blocks[last];
                    b.1.get_or_insert_with(|| unquoted.to_string());
                }
                "port" => {
                    let port = unquoted.parse().ok()?;
                    blocks[last].2.get_or_insert(port);
                }
                _ => {}
            }
        }
        Some(Plain { blocks })
    }

    /// The run's ssh_config, read and parsed once while it is unchanged (`None`: not
    /// plain, or unreadable).
    fn cached(path: &Path) -> Option<std::sync::Arc<Plain>> {
        type Key = (std::path::PathBuf, Option<std::time::SystemTime>, u64);
        type Cache = std::sync::Mutex<Option<(Key, Option<std::sync::Arc<Plain>>)>>;
        static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        let meta = std::fs::metadata(path).ok()?;
        let key = (path.to_path_buf(), meta.modified().ok(), meta.len());
        let mut c = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &*c {
            Some((k, plain)) if *k == key => plain.clone(),
            _ => {
                let plain = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| Plain::parse(&t))
                    .map(std::sync::Arc::new);
                *c = Some((key, plain.clone()));
                plain
            }
        }
    }

    /// (hostname, port) for `host`; `None` where ssh might say otherwise (a name with
    /// capitals: ssh's matching of them is its own).
    pub fn resolve(&self, host: &Host) -> Option<(String, u16)> {
        let name = host.address.as_str();
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let (mut hostname, mut port) = (None, host.port);
        for (patterns, h, p) in &self.blocks {
            if !host_matches(patterns, name) {
                continue;
            }
            if hostname.is_none() {
                hostname = h.clone();
            }
            if port.is_none() {
                port = *p;
            }
        }
        Some((
            hostname.unwrap_or_else(|| name.to_string()),
            port.unwrap_or(22),
        ))
    }
}

/// ssh's `Host` line: a pattern matches, and no negated one (`!pattern`) does.
fn host_matches(patterns: &[String], name: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(p.as_bytes(), name.as_bytes()),
        }
    }
    matched
}

/// `*` and `?` wildcards, ASCII case-insensitive (as ssh's `match_pattern` on a host).
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
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
    /// No TCP connection: refused, or the way to the host is gone (an error at once).
    NoTcp(String),
    /// No TCP answer within the deadline (a packet lost on the way looks the same).
    NoAnswer(String),
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
            return Heard::NoAnswer(format!(
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
        Heard::NoTcp(m) | Heard::NoAnswer(m) | Heard::Silent(m) | Heard::Other(m) => {
            Err(BannerError::NoBanner(m))
        }
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

    fn host(name: &str, port: Option<u16>) -> Host {
        Host {
            name: name.into(),
            address: name.into(),
            port,
            user: None,
            labels: Default::default(),
            host_key_check: crate::inventory::HostKeyCheck::Strict,
            become_root: false,
        }
    }

    #[test]
    fn a_plain_ssh_config_says_what_ssh_g_says() {
        let text = "# a fleet\nUser root\nHost h01\n  HostName 127.0.0.1\n  Port 40022\n  IdentityFile \"/k ey\"\n\
                    Host db? !db9\n  Port=2200\nHost db*\n  HostName db.internal\n  Port 2300\nHost *\n  Port 2222\n";
        let plain = Plain::parse(text).expect("plain");
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ssh_config");
        std::fs::write(&cfg, text).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (name, port) in [
            ("h01", None),
            ("db1", None),
            ("db9", None),
            ("dbx2", None),
            ("other", None),
            ("h01", Some(7)),
            ("db1", Some(8)),
        ] {
            let host = host(name, port);
            let ours = plain.resolve(&host).expect("resolved");
            // `ssh -G` itself (the config is plain, so resolve() would not ask it).
            let mut cmd = std::process::Command::new("ssh");
            cmd.arg("-F").arg(&cfg);
            if let Some(p) = port {
                cmd.arg("-p").arg(p.to_string());
            }
            let out = cmd.arg("-G").arg(name).output().expect("ssh -G runs");
            let theirs = parse_config(&String::from_utf8_lossy(&out.stdout)).unwrap();
            assert_eq!(ours, theirs, "{name} {port:?}");
            assert_eq!(rt.block_on(resolve(&host, Some(&cfg))), Ok(ours));
        }
        assert_eq!(
            plain.resolve(&host("DB1", None)),
            None,
            "capitals: ssh -G decides"
        );
    }

    #[test]
    fn an_ssh_config_with_what_only_ssh_understands_is_not_plain() {
        for text in [
            "Include ~/.ssh/more\n",
            "Host a\n  ProxyJump bastion\n",
            "Match host a\n  Port 2\n",
            "Host a\n  HostName %h.example\n",
            "Host *\n  CanonicalizeHostname yes\n",
            "Host a\n  Port ssh\n",
        ] {
            assert!(Plain::parse(text).is_none(), "{text}");
        }
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
