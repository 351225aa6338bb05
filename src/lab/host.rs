//! One lab host: its directory and overlays, its sshd as pid 1 of its own namespaces,
//! inside its own freezer cgroup; freeze, thaw, kill, restart, and commands run inside it.
//! Spawns processes, writes the host's directory, reads /proc.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{cgroup, files, LabError};

/// PATH for everything the lab runs, and for commands run inside hosts.
pub(crate) const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long `freeze`/`thaw` wait for the freezer to settle.
const FREEZE_DEADLINE: Duration = Duration::from_secs(5);
/// How long `kill` waits for the host's processes to be gone.
const KILL_DEADLINE: Duration = Duration::from_secs(10);
/// The default deadline of [`LabHost::exec`].
const EXEC_DEADLINE: Duration = Duration::from_secs(30);
/// How long `restart` waits for the new sshd.
const RESTART_DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(10);

/// One sshd host of a [`Fleet`](super::Fleet).
#[derive(Debug)]
pub struct LabHost {
    /// The host name: its hostname, ssh alias, directory and cgroup name.
    name: String,
    /// sshd's port on 127.0.0.1.
    pub(crate) port: u16,
    /// Labels for the inventory.
    labels: BTreeMap<String, String>,
    /// The host's directory: overlay upper/work dirs, boot script, sshd log.
    dir: PathBuf,
    /// The host's freezer cgroup.
    cgroup: PathBuf,
    /// The running instance, if any.
    run: Mutex<Running>,
}

/// The processes of one boot of a host.
#[derive(Debug, Default)]
struct Running {
    /// `unshare`, the parent of the host's pid 1; waited on when the host dies.
    launcher: Option<Child>,
    /// The host's pid 1 (sshd), as seen from outside; kept after death for `path`.
    init_pid: Option<i32>,
    /// Length of the sshd log when this boot started: readiness is read after it.
    log_offset: u64,
}

/// What a boot in progress is doing.
pub(crate) enum Boot {
    Pending,
    Ready,
    /// The launcher exited before sshd was ready; `port_taken` if another process had the port.
    Failed {
        port_taken: bool,
        log: String,
    },
}

impl LabHost {
    /// Lay out the host's directory (overlay upper/work dirs, a plain .bashrc, the boot
    /// script) and create its cgroup. The caller adds the host key and authorized_keys;
    /// `spawn` writes sshd's config.
    pub(crate) fn prepare(
        name: String,
        labels: BTreeMap<String, String>,
        dir: PathBuf,
        cgroup: PathBuf,
    ) -> Result<LabHost, LabError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| LabError::Io { what, path, source }
        };
        for d in files::OVERLAID {
            let upper = dir.join("upper").join(d);
            fs::create_dir_all(&upper).map_err(io("create overlay dir", &upper))?;
            let work = dir.join("work").join(d);
            fs::create_dir_all(&work).map_err(io("create overlay dir", &work))?;
        }
        // The merged /root and /root/.ssh take their modes from the upper dirs: sshd's
        // StrictModes refuses group- or world-writable ones.
        let ssh_dir = dir.join("upper/root/.ssh");
        fs::create_dir_all(&ssh_dir).map_err(io("create", &ssh_dir))?;
        let etc_ssh = dir.join("upper/etc/ssh");
        fs::create_dir_all(&etc_ssh).map_err(io("create", &etc_ssh))?;
        for (path, mode) in [(dir.join("upper/root"), 0o700), (ssh_dir.clone(), 0o700)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(io("chmod", &path))?;
        }
        let bashrc = dir.join("upper/root/.bashrc");
        fs::write(&bashrc, files::BASHRC).map_err(io("write", &bashrc))?;
        let boot = dir.join("boot.sh");
        fs::write(&boot, files::BOOT_SCRIPT).map_err(io("write", &boot))?;
        fs::create_dir_all(&cgroup).map_err(io("create cgroup", &cgroup))?;
        if !cgroup.join("freezer.state").exists() {
            return Err(LabError::NoFreezer {
                path: PathBuf::from(cgroup::FREEZER),
            });
        }
        Ok(LabHost {
            name,
            port: 0,
            labels,
            dir,
            cgroup,
            run: Mutex::new(Running::default()),
        })
    }

    /// The host's name (also its hostname and its ssh_config alias).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sshd's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host's inventory labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The host's directory in the fleet dir (overlay upper dirs, `sshd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host's pid 1 (its sshd) as seen from outside, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let run = self.lock();
        run.launcher.as_ref()?;
        run.init_pid.and_then(|p| u32::try_from(p).ok())
    }

    /// The host's freezer cgroup directory.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// The host's view of the absolute path `p`, from outside:
    /// `/proc/<host's pid 1>/root/<p>`. Valid while the host runs (frozen is fine).
    pub fn path(&self, p: &str) -> PathBuf {
        let pid = self.lock().init_pid.unwrap_or(0);
        PathBuf::from(format!("/proc/{pid}/root")).join(p.trim_start_matches('/'))
    }

    /// Hang the host: freeze its cgroup and wait until every process of it is frozen.
    /// Existing connections stall; new ones connect but get no banner.
    pub fn freeze(&self) -> io::Result<()> {
        cgroup::set_state(&self.cgroup, "FROZEN", FREEZE_DEADLINE)
    }

    /// Undo [`freeze`](Self::freeze) (also when the host froze itself).
    pub fn thaw(&self) -> io::Result<()> {
        cgroup::set_state(&self.cgroup, "THAWED", FREEZE_DEADLINE)
    }

    /// Whether the host's cgroup is frozen (or freezing).
    pub fn is_frozen(&self) -> io::Result<bool> {
        Ok(cgroup::state(&self.cgroup)? != "THAWED")
    }

    /// Take the host down: kill its sshd, the pid 1 of its namespace, and so every
    /// process of the host; wait until they are gone. Its files stay (see `restart`).
    pub fn kill(&self) -> io::Result<()> {
        let mut run = self.lock();
        self.kill_locked(&mut run, Instant::now() + KILL_DEADLINE)
    }

    /// Reboot the host: kill it if it runs, then boot it again on the same port with the
    /// same overlays (so files written before survive; /run and /tmp start empty).
    pub fn restart(&self) -> Result<(), LabError> {
        let mut run = self.lock();
        let deadline = Instant::now() + RESTART_DEADLINE;
        self.kill_locked(&mut run, deadline)
            .map_err(|source| LabError::Io {
                what: "kill",
                path: self.dir.clone(),
                source,
            })?;
        drop(run);
        self.spawn()?;
        loop {
            match self.poll_boot() {
                Boot::Ready => return Ok(()),
                Boot::Failed { log, .. } => {
                    return Err(LabError::HostStart {
                        host: self.name.clone(),
                        log,
                    })
                }
                Boot::Pending if Instant::now() >= deadline => {
                    return Err(LabError::StartTimeout {
                        hosts: vec![self.name.clone()],
                        waited: RESTART_DEADLINE,
                    })
                }
                Boot::Pending => sleep(POLL),
            }
        }
    }

    /// Run `sh -c cmd` inside the host (its mount, UTS and pid namespaces and its cgroup),
    /// as root with a plain environment, waiting at most 30 s. For tests: seed files,
    /// simulate boot-time jobs. A frozen host makes it time out.
    pub fn exec(&self, cmd: &str) -> io::Result<Output> {
        self.exec_within(cmd, EXEC_DEADLINE)
    }

    /// [`exec`](Self::exec) with an explicit deadline; on timeout the command is killed
    /// and an `io::ErrorKind::TimedOut` error returned.
    pub fn exec_within(&self, cmd: &str, within: Duration) -> io::Result<Output> {
        let Some(pid) = self.lock().init_pid.filter(|&p| p > 0) else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "host is not running",
            ));
        };
        let mut command = self.in_cgroup("nsenter");
        command
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "-u",
                "-p",
                "-r",
                "-w",
                "--",
                "/bin/sh",
                "-c",
                cmd,
            ])
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/root")
            .env("USER", "root")
            .env("LANG", "C.UTF-8")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn()?;
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                // nsenter forks the command into the host's pid namespace; both share
                // the process group.
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                // A frozen host holds the kill until it thaws: reap on a thread.
                std::thread::spawn(move || child.wait());
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "command on {} did not finish within {within:?}: {cmd}",
                        self.name
                    ),
                ));
            }
            sleep(POLL);
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// A command that first moves itself into the host's cgroup, then execs `program`.
    fn in_cgroup(&self, program: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(self.cgroup.join("cgroup.procs"))
            .arg(program);
        command
    }

    /// Start a boot: `unshare` (already in the host's cgroup) runs the boot script as
    /// pid 1 of new namespaces; it becomes sshd. Output goes to `sshd.log`.
    pub(crate) fn spawn(&self) -> Result<(), LabError> {
        let log_path = self.dir.join("sshd.log");
        let io = |what: &'static str| {
            let path = log_path.clone();
            move |source| LabError::Io { what, path, source }
        };
        let config = self
            .dir
            .join("upper")
            .join(files::SSHD_CONFIG.trim_start_matches('/'));
        fs::write(&config, files::sshd_config(&self.name, self.port)).map_err(|source| {
            LabError::Io {
                what: "write",
                path: config.clone(),
                source,
            }
        })?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open log"))?;
        let log_offset = log.metadata().map_err(io("stat log"))?.len();
        let mut command = self.in_cgroup("unshare");
        command
            .args([
                "-m",
                "-u",
                "-p",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "--",
                "/bin/sh",
            ])
            .arg(self.dir.join("boot.sh"))
            .arg(&self.dir)
            .arg(&self.name)
            .env_clear()
            .env("PATH", PATH)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("open log"))?)
            .stderr(log)
            // Out of the caller's process group: a Ctrl-C meant for the caller (which
            // stops the fleet on its way out) must not take hosts down behind its back.
            .process_group(0);
        let launcher = command.spawn().map_err(|source| LabError::Io {
            what: "run unshare",
            path: PathBuf::from("unshare"),
            source,
        })?;
        *self.lock() = Running {
            launcher: Some(launcher),
            init_pid: None,
            log_offset,
        };
        Ok(())
    }

    /// Check a boot in progress: ready once sshd logged that it listens on our port
    /// and a TCP connection to it gets an SSH banner.
    pub(crate) fn poll_boot(&self) -> Boot {
        let mut guard = self.lock();
        let run = &mut *guard;
        let log = self.log_since(run.log_offset);
        let Some(launcher) = run.launcher.as_mut() else {
            return Boot::Failed {
                port_taken: false,
                log: "(not started)".into(),
            };
        };
        if let Ok(Some(status)) = launcher.try_wait() {
            run.launcher = None;
            let port_taken = log.contains("Address already in use");
            return Boot::Failed {
                port_taken,
                log: format!("{status}; log:\n{log}"),
            };
        }
        if run.init_pid.is_none() {
            let pid = launcher.id();
            run.init_pid = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        }
        let listening = format!("Server listening on 127.0.0.1 port {}.", self.port);
        if run.init_pid.is_some() && log.contains(&listening) && banner(self.port) {
            Boot::Ready
        } else {
            Boot::Pending
        }
    }

    /// What sshd (and the boot script) wrote since `offset`.
    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.join("sshd.log")) {
            use std::io::Seek;
            if f.seek(io::SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_string(&mut text);
            }
        }
        text
    }

    /// Thaw the host and SIGKILL its pid 1, which takes every process of its pid
    /// namespace with it. Does not wait. The launcher (`unshare`) is left to reap pid 1,
    /// so that no zombie outlives it.
    pub(crate) fn signal_kill(&self) {
        let run = self.lock();
        self.signal_kill_locked(&run);
    }

    fn signal_kill_locked(&self, run: &Running) {
        let _ = fs::write(self.cgroup.join("freezer.state"), "THAWED");
        match run.init_pid.filter(|&p| p > 0 && run.launcher.is_some()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            Some(pid) => unsafe {
                libc::kill(pid, libc::SIGKILL);
            },
            None => cgroup::kill_all(&self.cgroup),
        }
    }

    /// Kill the host and wait (until `deadline`) for its launcher and every process of
    /// its cgroup to be gone. Whatever still runs after a grace period is killed directly.
    fn kill_locked(&self, run: &mut Running, deadline: Instant) -> io::Result<()> {
        self.signal_kill_locked(run);
        let grace = Instant::now() + Duration::from_secs(2);
        loop {
            let launcher_done = match run.launcher.as_mut() {
                None => true,
                Some(child) => child.try_wait()?.is_some(),
            };
            if launcher_done {
                run.launcher = None;
            }
            if launcher_done || Instant::now() >= grace {
                cgroup::kill_all(&self.cgroup);
            }
            if launcher_done && cgroup::procs(&self.cgroup)?.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("host {}: processes still alive after SIGKILL", self.name),
                ));
            }
            sleep(POLL);
        }
    }

    /// Kill the host, wait, and remove its cgroup.
    pub(crate) fn teardown(&self, deadline: Instant) -> io::Result<()> {
        let mut run = self.lock();
        let killed = self.kill_locked(&mut run, deadline);
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let removed = cgroup::remove(&self.cgroup, left);
        killed.and(removed)
    }

    fn lock(&self) -> MutexGuard<'_, Running> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a TCP connection to 127.0.0.1:port gets an SSH banner within a second.
fn banner(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 8];
    stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-")
}

/// Read a pipe to its end on a thread.
fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}
