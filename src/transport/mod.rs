//! SSH to the hosts over the system `ssh` (our own `ssh -M -f` master per host, its
//! commands through the openssh crate's native mux): a deadline on connect and login, a local backstop deadline on every command, at most
//! [`MAX_COMMANDS_PER_HOST`] commands at once per connection, and no `ssh` process left
//! behind. The only module that starts `ssh`.
//!
//! Bounds, whatever the size of the fleet:
//! - at most [`MAX_OPEN`] connections (each one `ssh` master process) open at once: a
//!   login that would pass it first closes the connection idle longest, else waits;
//! - logins in their handshake at once: as many as the controller's CPU finishes well
//!   within the deadline ([`admit::Logins`], adapted to measured handshake times), and
//!   at most [`admit::command_bound`] commands starting at once (admission, apart from
//!   the run's `concurrency`); a login's or command's deadline starts at its admission,
//!   so a controller busy with its own fan-out never condemns a healthy host;
//! - a login that misses its deadline is judged by how far ssh's own log (`LogLevel=DEBUG1`)
//!   got ([`Stage`]): no TCP answer or no banner is the host's; a banner with the
//!   handshake unfinished is the host's too when a fresh connection beside the login
//!   hears no banner (`stalled_handshake`), else retried once when no other login waits
//!   (see [`Transport::connect`]);
//! - connections are kept between the actions of a run ([`Transport::keep`],
//!   [`Transport::reuse`]), one per host, and closed when they are needed elsewhere.
//!
//! Closing a connection SIGKILLs its master by the pid the master gave when asked (one
//! `/proc/PID` read, no `-O exit` round trip); the full `/proc` scan ([`reap`]) is left for a login that failed
//! or timed out (its `ssh -M` may have forked already) and for the end of a run.
//!
//! A host with `become` (a non-root login) gets every command as
//! [`RemoteCommand::line_as`] builds it (behind `sudo -n --`), and its login is not done
//! until `sudo -n` has run a first command (`remote::become_check`) within a login
//! deadline of its own: a sudo that wants a password, a user sudo does not allow, a
//! missing sudo are [`TransportError::Refused`] with sudo's own words, before any command
//! that changes something. One round trip more per login, on `become` hosts only.

pub mod admit;
pub mod banner;
mod reap;

use openssh::Stdio;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssh::Session;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::inventory::{Host, HostKeyCheck};
use crate::remote::RemoteCommand;

use admit::{Gate, Logins};
use banner::Heard;
pub use reap::{clean_stale_control_dirs, reap_all, ssh_processes_using};

/// sshd's default MaxSessions is 10: never more commands than that at once on one connection.
pub const MAX_COMMANDS_PER_HOST: usize = 10;

/// The most connections (so `ssh` master processes) a run has open at once, however
/// large the fleet (each costs about 1.5 MiB and a file descriptor or two).
pub const MAX_OPEN: usize = 256;

/// A master connection with no command for this long exits by itself (a controller
/// killed with SIGKILL cannot close its masters).
const MASTER_IDLE: u32 = 300;

/// Seconds of silence from the host after which a master sends a keep-alive. Not
/// evidence of the host (a host is judged by its command's deadline), but what makes a
/// master to a host that stopped answering give up within seconds (three unanswered):
/// at 30 s an apply whose canary froze its host took a minute longer to end. They cost
/// the controller about 0.4 s of a 200-host apply's 35 s (docs/BENCHMARKS.md).
const SERVER_ALIVE: u32 = 2;

/// How often a session the server refused (its slots momentarily full) is retried.
const SESSION_RETRIES: u32 = 20;

/// Extra local time given to a command beyond its remote `timeout -k`, before we give up on it.
pub const LOCAL_GRACE: Duration = Duration::from_secs(3);

/// How far a login that missed its deadline got, from ssh's own log: the evidence of
/// whose side the miss is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No TCP answer: the host (or the way to it) is down.
    NoTcp,
    /// Connected, but no SSH banner: the host's sshd does not run (a frozen host).
    NoBanner,
    /// The banner came, the key exchange or authentication did not finish: the host
    /// answers; a busy controller is the likelier cause (retried once before it counts).
    Handshake,
}

impl Stage {
    /// Read from a `LogLevel=DEBUG1` ssh log.
    pub fn of(log: &str) -> Stage {
        if log.contains("Remote protocol version") {
            Stage::Handshake
        } else if log.contains("Connection established") {
            Stage::NoBanner
        } else {
            Stage::NoTcp
        }
    }

    /// What the log says, in words, with its last line.
    fn evidence(self, log: &str) -> String {
        let last = log
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| l.strip_prefix("debug1: ").unwrap_or(l))
            .unwrap_or("nothing");
        let what = match self {
            Stage::NoTcp => "no TCP answer",
            Stage::NoBanner => "connected, no SSH banner",
            Stage::Handshake => {
                let banner = log
                    .lines()
                    .find_map(|l| l.split("remote software version ").nth(1))
                    .unwrap_or("?");
                return format!(
                    "banner received ({}), key exchange or authentication unfinished (ssh's last word: {last})",
                    banner.trim()
                );
            }
        };
        format!("{what} (ssh's last word: {last})")
    }
}

/// Whose side a login that missed its deadline with the banner in hand is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The host stopped answering: a verdict now, at the stage a fresh connection saw.
    Host(Stage),
    /// The host's sshd still answers: the controller's (its CPU) is the likelier cause,
    /// and the login is retried once.
    Controller,
}

/// A handshake stalled after the banner: the host's side when a fresh connection made
/// meanwhile got no banner (connected and silent: a frozen or hung host, `NoBanner`) or was
/// refused (`NoTcp`: its sshd is gone); the controller's when it got the banner, something
/// else, no TCP answer in time (a lost packet looks the same), or nothing could be asked
/// (a proxy between, the login was a retry).
fn stalled_handshake(heard: Option<&Heard>) -> Side {
    match heard {
        Some(Heard::Silent(_)) => Side::Host(Stage::NoBanner),
        Some(Heard::NoTcp(_)) => Side::Host(Stage::NoTcp),
        Some(Heard::Banner(_) | Heard::NoAnswer(_) | Heard::Other(_)) | None => Side::Controller,
    }
}

/// Where ssh connected, from its log (`Connecting to NAME [ADDR] port PORT.`); `None`
/// through a proxy (no such line).
fn connected_to(log: &str) -> Option<(String, u16)> {
    let line = log.lines().find_map(|l| l.split("Connecting to ").nth(1))?;
    let (_, rest) = line.split_once('[')?;
    let (addr, rest) = rest.split_once(']')?;
    let port = rest
        .trim()
        .strip_prefix("port ")?
        .trim_end_matches('.')
        .trim();
    Some((addr.to_string(), port.parse().ok()?))
}

/// What a fresh connection heard, in words.
fn heard_words(h: &Heard) -> &str {
    match h {
        Heard::Banner(line) => line,
        Heard::NoTcp(m) | Heard::NoAnswer(m) | Heard::Silent(m) | Heard::Other(m) => m,
    }
}

/// The fresh look beside a login ([`Transport::watch`]); aborted when dropped.
struct Watch(tokio::task::JoinHandle<Option<Heard>>);

impl Watch {
    /// What it heard (it ends by itself at most half a login deadline after the login's).
    async fn heard(mut self) -> Option<Heard> {
        (&mut self.0).await.ok().flatten()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The line a one-shot command prints first: the login is done.
const LOGGED_IN: &str = "wavectl-logged-in";

/// A login that did not end in a connection.
enum Fail {
    Error(TransportError),
    /// Missed its deadline with the host's banner in hand.
    Retry {
        after: Duration,
        evidence: String,
    },
}

/// A login tried by `attempt(retry)`: a miss on the controller's side (`Fail::Retry`:
/// banner in hand, handshake unfinished) is tried once more, afresh (`retry`: once no
/// other login waits); only a second miss is an error, and its evidence names both.
async fn retried_once<T, F, Fut>(host: &Host, mut attempt: F) -> Result<T, TransportError>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T, Fail>>,
{
    let first = match attempt(false).await {
        Ok(v) => return Ok(v),
        Err(Fail::Error(e)) => return Err(e),
        Err(Fail::Retry { after, evidence }) => (after, evidence),
    };
    match attempt(true).await {
        Ok(v) => Ok(v),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::Retry { after, evidence }) => Err(TransportError::ConnectTimeout {
            host: host.name.clone(),
            after,
            stage: Stage::Handshake,
            evidence: format!(
                "first login: {} after {:.1?}; second login (once no other login waited): {evidence}",
                first.1, first.0
            ),
        }),
    }
}

/// A master that logged in.
struct Master {
    session: Session,
    master: Option<u32>,
    dir: PathBuf,
}

/// The error lines of an ssh log (not its debug lines), on one line.
fn ssh_log_errors(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("debug"))
        .collect();
    if lines.is_empty() {
        "ssh failed without a word".into()
    } else {
        lines.join("; ")
    }
}

/// Why talking to a host failed. `Deadline` and `ConnectTimeout` mean the host did not
/// answer in time (a hang); the others mean it answered with a refusal or an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: no login within {after:.1?} (connect deadline): {evidence}")]
    ConnectTimeout {
        host: String,
        after: Duration,
        stage: Stage,
        evidence: String,
    },
    #[error("{host}: cannot connect: {message}")]
    Connect { host: String, message: String },
    /// The host refused us for a reason of ours, not of its health: its host key is
    /// unknown or changed, or it does not accept our credentials.
    #[error("{host}: {message}")]
    Refused {
        host: String,
        message: String,
        help: String,
    },
    #[error("{host}: `{what}` missed its deadline of {after:?}")]
    Deadline {
        host: String,
        what: String,
        after: Duration,
    },
    #[error("{host}: `{what}` failed: {message}")]
    Failed {
        host: String,
        what: String,
        message: String,
    },
}

impl TransportError {
    /// The host did not answer in time (as opposed to refusing or failing).
    pub fn is_deadline(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectTimeout { .. } | TransportError::Deadline { .. }
        )
    }
}

/// What a finished remote command gave back.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `None` when the remote process died of a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// The last non-empty line of stderr (or stdout), for evidence and errors.
    pub fn last_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .chain(self.stdout.lines().rev())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

/// Connections kept for reuse, one per host, oldest first out.
#[derive(Default)]
struct Idle {
    conns: HashMap<String, (u64, Conn)>,
    seq: u64,
}

impl Idle {
    fn oldest(&mut self) -> Option<Conn> {
        let host = self
            .conns
            .iter()
            .min_by_key(|(_, (seq, _))| *seq)
            .map(|(h, _)| h.clone())?;
        self.conns.remove(&host).map(|(_, c)| c)
    }
}

/// Connection settings shared by every host of a run, the run's control directory, its
/// open connections' bound and admission, and the connections it keeps.
pub struct Transport {
    ssh_config: Option<PathBuf>,
    /// Short directory for the mux control sockets (unix socket paths are ~108 bytes).
    control_dir: tempfile::TempDir,
    next: AtomicUsize,
    /// One permit per open connection, `limit` (normally [`MAX_OPEN`]) in all.
    open: Arc<Semaphore>,
    limit: usize,
    /// Logins waiting for an open slot (a connection then is closed, not kept).
    waiting: AtomicUsize,
    logins: Logins,
    commands: Arc<Gate>,
    idle: Mutex<Idle>,
}

impl Transport {
    /// `ssh_config` is passed to ssh as `-F`.
    pub fn new(ssh_config: Option<PathBuf>) -> std::io::Result<Transport> {
        Transport::with_limit(ssh_config, MAX_OPEN)
    }

    /// [`new`](Self::new) with another bound on open connections (tests).
    pub fn with_limit(ssh_config: Option<PathBuf>, open: usize) -> std::io::Result<Transport> {
        reap::clean_stale_control_dirs();
        let control_dir = tempfile::Builder::new()
            .prefix(&reap::control_dir_prefix())
            .tempdir_in(reap::control_parent())?;
        reap::register(control_dir.path());
        Ok(Transport {
            ssh_config,
            control_dir,
            next: AtomicUsize::new(0),
            open: Arc::new(Semaphore::new(open.max(1))),
            limit: open.max(1),
            waiting: AtomicUsize::new(0),
            logins: {
                let (start, fixed) = admit::login_start();
                Logins::new(start, fixed)
            },
            commands: Arc::new(Gate::new(admit::command_bound())),
            idle: Mutex::new(Idle::default()),
        })
    }

    /// The directory holding this run's control sockets (every `ssh` we start names it).
    pub fn control_dir(&self) -> &Path {
        self.control_dir.path()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now (kept ones included).
    pub fn open_now(&self) -> usize {
        self.limit.saturating_sub(self.open.available_permits())
    }

    /// A slot for one more open connection: free, or freed by closing the connection
    /// kept idle longest; else wait for one (not counted against any deadline).
    async fn open_slot(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(p) = self.open.clone().try_acquire_owned() {
                return p;
            }
            let oldest = self.idle().oldest();
            match oldest {
                Some(c) => c.close().await,
                None => {
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                    let p = self.open.clone().acquire_owned().await;
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(p) = p {
                        return p;
                    }
                }
            }
        }
    }

    /// Open a master connection, with `deadline` for TCP, banner, key exchange *and*
    /// login, counted from the moment the login is admitted (see [`admit::Logins`]).
    ///
    /// A login that misses its deadline is judged by what ssh's own log saw of the host
    /// ([`Stage`]): no TCP answer, or connected but no SSH banner, is the host's
    /// (`ConnectTimeout` at once: a frozen host is judged within its deadline); a banner
    /// with the key exchange or authentication unfinished is the host's as well when a
    /// fresh connection made meanwhile heard no banner (it stopped answering:
    /// `stalled_handshake`), else the controller's side (its CPU): the login is retried
    /// once, afresh, when no other login waits for admission, and only a second miss is
    /// an error, whose evidence names both.
    pub async fn connect(&self, host: &Host, deadline: Duration) -> Result<Conn, TransportError> {
        let slot = self.open_slot().await;
        let m = retried_once(host, |retry| self.attempt(host, deadline, retry)).await?;
        self.finish(host, deadline, m, slot).await
    }

    /// One login: start `ssh -M -f` (with `LogLevel=DEBUG1` into its log, the evidence of
    /// how far it got) once admitted, and wait for it within `deadline`.
    async fn attempt(&self, host: &Host, deadline: Duration, retry: bool) -> Result<Master, Fail> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.control_dir.path().join(n.to_string());
        std::fs::create_dir(&dir).map_err(|e| {
            Fail::Error(TransportError::Connect {
                host: host.name.clone(),
                message: format!("cannot create control directory {}: {e}", dir.display()),
            })
        })?;
        let log = dir.join("log");
        let ctl = dir.join("m");
        let mut cmd = self.ssh(host, &log, deadline);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .arg("-S")
            .arg(&ctl)
            .args(["-M", "-f", "-N", "-o"])
            // A master orphaned by a killed controller goes away by itself.
            .arg(format!("ControlPersist={MASTER_IDLE}s"))
            .arg("--")
            .arg(&host.address);
        let slot = if retry {
            self.logins.admit_when_idle().await
        } else {
            self.logins.admit().await
        };
        let started = Instant::now();
        let watch = (!retry).then(|| self.watch(&log, deadline));
        let ran = tokio::time::timeout(deadline, async {
            let status = cmd.status().await?;
            if !status.success() {
                return Ok(Err(()));
            }
            let session = Session::resume_mux(ctl.clone().into_boxed_path(), None);
            // The master's pid, so that closing it needs no search.
            let pid = master_pid(&session).await;
            Ok::<_, std::io::Error>(Ok((session, pid)))
        })
        .await;
        let took = started.elapsed();
        let seen = std::fs::read_to_string(&log).unwrap_or_default();
        match ran {
            Ok(Ok(Ok((session, master)))) => {
                self.logins.end(slot, admit::Ended::Done(took), deadline);
                Ok(Master {
                    session,
                    master,
                    dir,
                })
            }
            Ok(Ok(Err(()))) | Ok(Err(_)) => {
                self.logins.end(slot, admit::Ended::Host, deadline);
                forget_dir(dir).await;
                let message = match &ran {
                    Ok(Err(e)) => format!("cannot start ssh: {e}"),
                    _ => ssh_log_errors(&seen),
                };
                Err(Fail::Error(match refusal_help(&message) {
                    Some(help) => TransportError::Refused {
                        host: host.name.clone(),
                        message,
                        help: help.to_string(),
                    },
                    None => TransportError::Connect {
                        host: host.name.clone(),
                        message,
                    },
                }))
            }
            Err(_) => {
                // The dropped `ssh` may have forked its master already: kill it now.
                forget_dir(dir).await;
                Err(self
                    .missed(host, slot, deadline, took, &seen, watch, retry)
                    .await)
            }
        }
    }

    /// A fresh look at a host beside its login, whose ssh logs into `log`: at half the
    /// login's deadline, if the login is not done and ssh's log shows the host's banner
    /// (a handshake under way), one plain TCP connection to where ssh connected (its log
    /// says: no `ssh -G`, nothing started), listening for the banner for the other half.
    /// What it heard decides whose side a handshake that stalls after the banner is on
    /// (`stalled_handshake`).
    fn watch(&self, log: &Path, deadline: Duration) -> Watch {
        let log = log.to_path_buf();
        let half = deadline / 2;
        Watch(tokio::spawn(async move {
            tokio::time::sleep(half).await;
            let seen = std::fs::read_to_string(&log).ok()?;
            if Stage::of(&seen) != Stage::Handshake {
                return None;
            }
            let (addr, port) = connected_to(&seen)?;
            Some(banner::listen(&addr, port, half).await)
        }))
    }

    /// A login missed its `deadline` after `took`, with ssh's log `seen`: a verdict on
    /// the host, or (a banner in hand, the handshake unfinished, and the host's sshd still
    /// answering a fresh connection) a retry.
    #[allow(clippy::too_many_arguments)]
    async fn missed(
        &self,
        host: &Host,
        slot: admit::Slot<'_>,
        deadline: Duration,
        took: Duration,
        seen: &str,
        watch: Option<Watch>,
        retry: bool,
    ) -> Fail {
        let stage = Stage::of(seen);
        let evidence = stage.evidence(seen);
        if stage != Stage::Handshake {
            self.logins.end(slot, admit::Ended::Host, deadline);
            return Fail::Error(TransportError::ConnectTimeout {
                host: host.name.clone(),
                after: took,
                stage,
                evidence,
            });
        }
        let heard = match watch {
            Some(w) => w.heard().await,
            None => None,
        };
        match stalled_handshake(heard.as_ref()) {
            Side::Host(stage) => {
                self.logins.end(slot, admit::Ended::Host, deadline);
                let said = heard.as_ref().map_or("", heard_words);
                Fail::Error(TransportError::ConnectTimeout {
                    host: host.name.clone(),
                    after: took,
                    stage,
                    evidence: format!(
                        "{evidence}; meanwhile a fresh connection from {:.1?} on: {said} (the host stopped answering)",
                        deadline / 2
                    ),
                })
            }
            Side::Controller => {
                self.logins.end(slot, admit::Ended::Slow, deadline);
                let mut evidence = evidence;
                if let Some(h) = &heard {
                    evidence.push_str(&format!(
                        "; meanwhile a fresh connection: {}",
                        heard_words(h)
                    ));
                }
                if retry {
                    evidence.push_str(&format!(" after {took:.1?}"));
                }
                Fail::Retry {
                    after: took,
                    evidence,
                }
            }
        }
    }

    /// `ssh` to `host` with the run's settings, its log (`LogLevel=DEBUG1`, the evidence
    /// of how far a login got) in `log`; the caller adds the rest and the destination.
    fn ssh(&self, host: &Host, log: &Path, deadline: Duration) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.kill_on_drop(true)
            .arg("-E")
            .arg(log)
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(match host.host_key_check {
                HostKeyCheck::Strict => "StrictHostKeyChecking=yes",
                HostKeyCheck::AcceptNew => "StrictHostKeyChecking=accept-new",
            })
            // Our deadline fires first; ssh's own is a backstop.
            .arg("-o")
            .arg(format!("ConnectTimeout={}", deadline.as_secs() + 2))
            // Keep-alives: a master to a host that stopped answering gives up in seconds.
            .arg("-o")
            .arg(format!("ServerAliveInterval={SERVER_ALIVE}"))
            .args(["-o", "LogLevel=DEBUG1"]);
        if let Some(cfg) = &self.ssh_config {
            cmd.arg("-F").arg(cfg);
        }
        if let Some(user) = &host.user {
            cmd.arg("-l").arg(user);
        }
        if let Some(port) = host.port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd
    }

    /// Run one command on `host` over a login of its own: one plain `ssh HOST CMD`, no
    /// master, no mux session (the cheapest way to a host for a single command: a purge's
    /// removal). The login has `login_deadline` from its admission, judged and retried
    /// as [`connect`](Self::connect)'s; the command, once the login is done (it prints a
    /// marker first), `cmd.timeout + LOCAL_GRACE`. Not for `become` hosts (their login
    /// includes a sudo check: use [`connect`](Self::connect)).
    pub async fn run_once(
        &self,
        host: &Host,
        login_deadline: Duration,
        cmd: &RemoteCommand,
    ) -> Result<Output, TransportError> {
        let _slot = self.open_slot().await;
        retried_once(host, |retry| self.once(host, login_deadline, cmd, retry)).await
    }

    async fn once(
        &self,
        host: &Host,
        deadline: Duration,
        cmd: &RemoteCommand,
        retry: bool,
    ) -> Result<Output, Fail> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let log = self.control_dir.path().join(format!("{n}.log"));
        let mut ssh = self.ssh(host, &log, deadline);
        ssh.stdin(if cmd.stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .args(["-T", "--"])
        .arg(&host.address)
        .arg(format!("echo {LOGGED_IN}; {}", cmd.line));
        let slot = if retry {
            self.logins.admit_when_idle().await
        } else {
            self.logins.admit().await
        };
        let started = Instant::now();
        let watch = (!retry).then(|| self.watch(&log, deadline));
        let failed = |message: String| {
            Fail::Error(TransportError::Failed {
                host: host.name.clone(),
                what: cmd.what.to_string(),
                message,
            })
        };
        let mut child = match ssh.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.logins.end(slot, admit::Ended::Host, deadline);
                return Err(failed(format!("cannot start ssh: {e}")));
            }
        };
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err(failed("ssh without pipes".into()));
        };
        let mut stdout = tokio::io::BufReader::new(stdout);
        // The login: until the marker line (or ssh's end). A login shell may print
        // something first: skipped.
        let mut logged_in = false;
        let login = tokio::time::timeout(deadline, async {
            use tokio::io::AsyncBufReadExt;
            let mut line = String::new();
            loop {
                line.clear();
                if stdout.read_line(&mut line).await? == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                if line.trim_end() == LOGGED_IN {
                    logged_in = true;
                    return Ok(());
                }
            }
        })
        .await;
        let took = started.elapsed();
        if logged_in {
            self.logins.end(slot, admit::Ended::Done(took), deadline);
        } else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let seen = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            if login.is_ok() {
                // ssh ended without logging in: a refusal, an error.
                self.logins.end(slot, admit::Ended::Host, deadline);
                let message = ssh_log_errors(&seen);
                return Err(Fail::Error(match refusal_help(&message) {
                    Some(help) => TransportError::Refused {
                        host: host.name.clone(),
                        message,
                        help: help.to_string(),
                    },
                    None => TransportError::Connect {
                        host: host.name.clone(),
                        message,
                    },
                }));
            }
            return Err(self
                .missed(host, slot, deadline, took, &seen, watch, retry)
                .await);
        }
        drop(watch);
        // The command, within its own deadline from now.
        let run_started = Instant::now();
        let work = async {
            use tokio::io::AsyncReadExt;
            if let (Some(bytes), Some(mut stdin)) = (&cmd.stdin, stdin) {
                stdin
                    .write_all(bytes)
                    .await
                    .map_err(|e| failed(format!("sending input: {e}")))?;
                stdin
                    .shutdown()
                    .await
                    .map_err(|e| failed(format!("sending input: {e}")))?;
            }
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut stderr = stderr;
            let (o, e) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            o.and(e)
                .map_err(|e| failed(format!("reading output: {e}")))?;
            let status = child
                .wait()
                .await
                .map_err(|e| failed(format!("waiting for ssh: {e}")))?;
            Ok::<_, Fail>(Output {
                code: status.code(),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
                elapsed: run_started.elapsed(),
            })
        };
        let r = tokio::time::timeout(cmd.timeout + LOCAL_GRACE, work).await;
        let _ = std::fs::remove_file(&log);
        match r {
            Ok(r) => r,
            Err(_) => Err(Fail::Error(TransportError::Deadline {
                host: host.name.clone(),
                what: cmd.what.to_string(),
                after: run_started.elapsed(),
            })),
        }
    }

    /// A master is up: the connection, and on a `become` host its sudo check.
    async fn finish(
        &self,
        host: &Host,
        deadline: Duration,
        m: Master,
        slot: OwnedSemaphorePermit,
    ) -> Result<Conn, TransportError> {
        let conn = Conn {
            host: host.name.clone(),
            session: Some(m.session),
            limit: Semaphore::new(MAX_COMMANDS_PER_HOST),
            dir: m.dir,
            become_root: host.become_root,
            master: m.master,
            commands: self.commands.clone(),
            _slot: slot,
        };
        if host.become_root {
            if let Err(e) = conn.check_become(host, deadline).await {
                conn.close().await;
                return Err(e);
            }
        }
        Ok(conn)
    }

    /// Keep a connection for the host's next action. While logins wait for an open
    /// slot it is closed instead.
    pub async fn keep(&self, conn: Conn) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            conn.close().await;
            return;
        }
        let old = {
            let mut idle = self.idle();
            idle.seq += 1;
            let seq = idle.seq;
            idle.conns.insert(conn.host.clone(), (seq, conn))
        };
        if let Some((_, old)) = old {
            old.close().await;
        }
    }

    /// The connection kept for `host`, if there is one and its master still answers.
    pub async fn reuse(&self, host: &str) -> Option<Conn> {
        let conn = self.idle().conns.remove(host).map(|(_, c)| c)?;
        if conn.alive().await {
            Some(conn)
        } else {
            conn.close().await;
            None
        }
    }

    /// Close every kept connection.
    pub async fn close_idle(&self) {
        let all: Vec<Conn> = self.idle().conns.drain().map(|(_, (_, c))| c).collect();
        futures::future::join_all(all.into_iter().map(Conn::close)).await;
    }

    /// Kill any `ssh` still using this run's control directory. Called at the end of every
    /// run whatever happened, and by `Drop`.
    pub fn reap(&self) -> usize {
        reap::kill_ssh_until_gone(self.control_dir.path(), Duration::from_secs(1))
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Kept connections go with their masters (by pid), then the backstop.
        drop(std::mem::take(&mut *self.idle()));
        self.reap();
        reap::unregister(self.control_dir.path());
    }
}

/// A login that failed: kill what it may have left (its `ssh -M` may have forked
/// already: the one search of `/proc` left), off the async workers, and remove its directory.
async fn forget_dir(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || {
        reap::kill_ssh_until_gone(&dir, Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// Ask a master for its pid over its control socket.
async fn master_pid(session: &Session) -> Option<u32> {
    let mut c = openssh_mux_client::Connection::connect(session.control_socket())
        .await
        .ok()?;
    c.send_alive_check().await.ok().map(|p| p.get())
}

/// One master connection to one host.
pub struct Conn {
    host: String,
    session: Option<Session>,
    limit: Semaphore,
    dir: PathBuf,
    /// Commands go through `sudo -n` (the host's `become`).
    become_root: bool,
    /// The master's pid, as it told us.
    master: Option<u32>,
    commands: Arc<Gate>,
    /// Its place under [`MAX_OPEN`], given back when it is closed.
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The end of a `become` host's login: `sudo -n` runs a first command, within a
    /// login deadline of its own (from the command's admission).
    async fn check_become(&self, host: &Host, deadline: Duration) -> Result<(), TransportError> {
        let left = deadline.max(Duration::from_secs(1));
        let check = crate::remote::become_check(left);
        match self.run_within(&check, left).await {
            Ok(out) if out.success() => Ok(()),
            Ok(out) => Err(TransportError::Refused {
                host: host.name.clone(),
                message: format!(
                    "`sudo -n` refused{}: {}",
                    host.user
                        .as_deref()
                        .map_or(String::new(), |u| format!(" for {u}")),
                    out.last_line()
                ),
                help: SUDO_HELP.to_string(),
            }),
            Err(e) if e.is_deadline() => Err(TransportError::ConnectTimeout {
                host: host.name.clone(),
                after: left,
                stage: Stage::Handshake,
                evidence: format!("logged in, but `sudo -n` did not answer: {e}"),
            }),
            Err(TransportError::Failed { message, .. }) => Err(TransportError::Connect {
                host: host.name.clone(),
                message: format!("checking sudo: {message}"),
            }),
            Err(e) => Err(e),
        }
    }

    /// Whether the master is still there: its process, by the pid it gave (one `/proc`
    /// read, no round trip on its socket: a master whose host closed the connection, or
    /// stopped answering its keep-alives, exits by itself), else whether it answers on its
    /// control socket. A master still there says nothing of its host: the command's own
    /// deadline does.
    async fn alive(&self) -> bool {
        let Some(s) = &self.session else { return false };
        if let Some(pid) = self.master {
            return reap::is_master(pid, &self.dir);
        }
        tokio::time::timeout(Duration::from_secs(2), s.check())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Run one command: its remote `timeout -k` is in `cmd.line`; locally we wait at most
    /// `cmd.timeout + LOCAL_GRACE` from the moment it is under way.
    pub async fn run(&self, cmd: &RemoteCommand) -> Result<Output, TransportError> {
        self.run_within(cmd, cmd.timeout + LOCAL_GRACE).await
    }

    /// Run one command, waiting locally at most `deadline` (which should not be shorter
    /// than the command's remote timeout), counted from the moment the command is
    /// under way: after its turn among this connection's sessions and its admission.
    pub async fn run_within(
        &self,
        cmd: &RemoteCommand,
        deadline: Duration,
    ) -> Result<Output, TransportError> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|e| self.failed(cmd, e.to_string()))?;
        let started = Instant::now();
        let work = async {
            let session = self
                .session
                .as_ref()
                .ok_or_else(|| self.failed(cmd, "connection closed".into()))?;
            let line = cmd.line_as(self.become_root);
            let mut command = session.raw_command(&*line);
            command
                .stdin(if cmd.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // sshd frees a session slot a moment after the command ends, so a new
            // session can be refused even under the limit: it never started, so try
            // again (the deadline bounds it).
            let mut refusals = 0u32;
            let mut child = loop {
                match command.spawn().await {
                    Ok(child) => break child,
                    Err(e)
                        if refusals < SESSION_RETRIES
                            && ssh_error(&e).contains("Session open refused") =>
                    {
                        refusals += 1;
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(refusals))).await;
                    }
                    Err(e) => return Err(self.failed(cmd, ssh_error(&e))),
                }
            };
            if let Some(bytes) = &cmd.stdin {
                if let Some(mut stdin) = child.stdin().take() {
                    stdin
                        .write_all(bytes)
                        .await
                        .map_err(|e| self.failed(cmd, format!("sending input: {e}")))?;
                    stdin
                        .shutdown()
                        .await
                        .map_err(|e| self.failed(cmd, format!("sending input: {e}")))?;
                }
            }
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| self.failed(cmd, ssh_error(&e)))?;
            Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                elapsed: started.elapsed(),
            })
        };
        match self.commands.run(deadline, work).await {
            Ok(r) => r,
            Err(missed) => Err(TransportError::Deadline {
                host: self.host.clone(),
                what: cmd.what.to_string(),
                after: missed.after,
            }),
        }
    }

    fn failed(&self, cmd: &RemoteCommand, message: String) -> TransportError {
        TransportError::Failed {
            host: self.host.clone(),
            what: cmd.what.to_string(),
            message,
        }
    }

    /// Close the connection (always call this): its master is killed by the pid it gave
    /// (no `-O exit` round trip: nothing of ours runs on it any more, and the host's sshd
    /// sees the connection end at once); a master whose pid is unknown is searched for.
    pub async fn close(mut self) {
        drop(self.session.take());
        let dir = std::mem::take(&mut self.dir);
        match self.master {
            Some(pid) => {
                if reap::kill_master(pid, &dir) {
                    // Gone in a moment (SIGKILL is not waited for by anyone else).
                    let until = Instant::now() + Duration::from_millis(500);
                    while reap::is_master(pid, &dir) && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
            None => forget_dir(dir).await,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.session.is_some() {
            // Not closed by `close()` (a task was cancelled): kill its master.
            drop(self.session.take());
            match self.master {
                Some(pid) => {
                    reap::kill_master(pid, &self.dir);
                }
                None => {
                    reap::kill_ssh_using(&self.dir);
                }
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How to fix a `become` host whose `sudo -n` refused.
const SUDO_HELP: &str = "the host has `become`: wavectl runs every command through `sudo -n`, which never asks for a password; give the login user passwordless sudo on that host (a NOPASSWD rule in /etc/sudoers.d/, without requiretty), or log in as root without become; nothing was changed there";

/// How to fix a refusal that is ours (host key, credentials), from ssh's own words; `None`
/// for every other failure (the host's health is in question then).
pub fn refusal_help(message: &str) -> Option<&'static str> {
    const HOST_KEY: &str = "the host's key is not the one known_hosts holds (or none is known): check that it is the right host, then add its key to known_hosts (ssh-keyscan), or set host_key_check = \"accept-new\" in the inventory for a host never seen before";
    const AUTH: &str = "the host does not accept our credentials: check the user, the key (ssh-agent, IdentityFile) and the host's authorized_keys";
    let m = message.to_ascii_lowercase();
    if m.contains("host key verification failed")
        || m.contains("remote host identification has changed")
        || (m.contains("host key") && m.contains("is known"))
        || m.contains("host key for") && m.contains("has changed")
    {
        Some(HOST_KEY)
    } else if m.contains("permission denied")
        || m.contains("too many authentication failures")
        || m.contains("no more authentication methods")
    {
        Some(AUTH)
    } else {
        None
    }
}

/// The most useful text of an openssh error: its chain, joined.
fn ssh_error(e: &openssh::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(text.trim());
        }
        source = s.source();
    }
    // ssh's own messages span lines; keep evidence on one.
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "debug1: Connecting to h01 [127.0.0.1] port 2222.\ndebug1: Connection established.\ndebug1: Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2\n";

    #[test]
    fn a_missed_login_is_judged_by_how_far_ssh_got() {
        assert_eq!(
            Stage::of("debug1: Connecting to h01 [127.0.0.1] port 2222.\n"),
            Stage::NoTcp
        );
        assert_eq!(Stage::of(BANNER), Stage::NoBanner);
        let kex = format!(
            "{BANNER}debug1: Remote protocol version 2.0, remote software version OpenSSH_9.2p1 Debian-2\ndebug1: SSH2_MSG_KEXINIT sent\n"
        );
        assert_eq!(Stage::of(&kex), Stage::Handshake);
        let ev = Stage::Handshake.evidence(&kex);
        assert!(ev.contains("OpenSSH_9.2p1 Debian-2"), "{ev}");
        assert!(ev.contains("SSH2_MSG_KEXINIT sent"), "{ev}");
        assert!(Stage::NoBanner
            .evidence(BANNER)
            .starts_with("connected, no SSH banner"));
        assert_eq!(
            ssh_log_errors(&format!("{BANNER}Permission denied (publickey).\n")),
            "Permission denied (publickey)."
        );
    }

    #[test]
    fn a_handshake_stalled_after_the_banner_is_the_hosts_when_a_fresh_connection_hears_nothing() {
        let silent = Heard::Silent("connected to 127.0.0.1:2222, no SSH banner within 2.5s".into());
        assert_eq!(
            stalled_handshake(Some(&silent)),
            Side::Host(Stage::NoBanner)
        );
        let refused = Heard::NoTcp("cannot connect to 127.0.0.1:2222: refused".into());
        assert_eq!(stalled_handshake(Some(&refused)), Side::Host(Stage::NoTcp));
        // The host's sshd still answers: the controller's side, retried.
        let banner = Heard::Banner("SSH-2.0-OpenSSH_9.2p1".into());
        assert_eq!(stalled_handshake(Some(&banner)), Side::Controller);
        let closed = Heard::Other("closed the connection without an SSH banner".into());
        assert_eq!(stalled_handshake(Some(&closed)), Side::Controller);
        // No TCP answer in time: a lost packet looks the same, no evidence against the host.
        let lost = Heard::NoAnswer("no TCP answer from 10.0.0.1:22 within 2.5s".into());
        assert_eq!(stalled_handshake(Some(&lost)), Side::Controller);
        // Nothing could be asked (a proxy between; a retry): no evidence against the host.
        assert_eq!(stalled_handshake(None), Side::Controller);
    }

    #[test]
    fn the_fresh_look_goes_where_ssh_connected() {
        assert_eq!(connected_to(BANNER), Some(("127.0.0.1".to_string(), 2222)));
        assert_eq!(
            connected_to("debug1: Connecting to db1 [::1] port 22.\n"),
            Some(("::1".to_string(), 22))
        );
        assert_eq!(
            connected_to("debug1: Executing proxy command: exec ssh -W db1:22 bastion\n"),
            None
        );
    }
}
