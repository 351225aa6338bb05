//! One lab host: its directory and overlays, its sshd (or systemd) as pid 1 of its own
//! namespaces, inside its own freezer cgroup; freeze, thaw, kill, restart, reboot, and
//! commands run inside it. Spawns processes, writes the host's directory, reads /proc.

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

use super::{cgroup, files, systemd, HostKind, LabError};

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
/// How long a systemd host may take to boot: until sshd answers, then until
/// `systemctl is-system-running` says the boot is over. Generous: several hosts boot
/// at once on two cores, next to other tests.
pub(crate) const SYSTEMD_BOOT_DEADLINE: Duration = Duration::from_secs(120);
/// How long `reboot` waits for a systemd host to shut down before cutting its power.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(45);
const POLL: Duration = Duration::from_millis(10);

/// One host of a [`Fleet`](super::Fleet).
#[derive(Debug)]
pub struct LabHost {
    /// The host name: its hostname, ssh alias, directory and cgroup name.
    name: String,
    /// What runs in it.
    kind: HostKind,
    /// sshd's port on 127.0.0.1.
    pub(crate) port: u16,
    /// Labels for the inventory.
    labels: BTreeMap<String, String>,
    /// The host's directory: overlay upper/work dirs, boot script, sshd log.
    dir: PathBuf,
    /// The host's freezer cgroup.
    cgroup: PathBuf,
    /// A systemd host's `name=systemd` cgroup, the root of its systemd's hierarchy.
    systemd_cgroup: Option<PathBuf>,
    /// The running instance, if any.
    run: Mutex<Running>,
}

/// The processes of one boot of a host.
#[derive(Debug, Default)]
struct Running {
    /// `unshare`, the parent of the host's pid 1; waited on when the host dies.
    launcher: Option<Child>,
    /// The host's pid 1 (sshd or systemd), as seen from outside; kept after death for `path`.
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
    /// script, a systemd host's /etc) and create its cgroups (`systemd_cgroup` for a
    /// systemd host). The caller adds the host key and authorized_keys; `spawn` writes
    /// sshd's config.
    pub(crate) fn prepare(
        name: String,
        kind: HostKind,
        labels: BTreeMap<String, String>,
        dir: PathBuf,
        cgroup: PathBuf,
        systemd_cgroup: Option<PathBuf>,
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
        if kind == HostKind::Systemd {
            let etc = dir.join("upper/etc");
            systemd::prepare(&etc, &name).map_err(io("lay out systemd's /etc in", &etc))?;
        }
        fs::create_dir_all(&cgroup).map_err(io("create cgroup", &cgroup))?;
        if !cgroup.join("freezer.state").exists() {
            return Err(LabError::NoFreezer {
                path: PathBuf::from(cgroup::FREEZER),
            });
        }
        let systemd_cgroup = match kind {
            HostKind::Systemd => systemd_cgroup,
            _ => None,
        };
        if let Some(cg) = &systemd_cgroup {
            fs::create_dir_all(cg).map_err(io("create cgroup", cg))?;
        }
        Ok(LabHost {
            name,
            kind,
            port: 0,
            labels,
            dir,
            cgroup,
            systemd_cgroup,
            run: Mutex::new(Running::default()),
        })
    }

    /// The host's name (also its hostname and its ssh_config alias).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What runs in the host: sshd alone, sshd and cron, or systemd.
    pub fn kind(&self) -> HostKind {
        self.kind
    }

    /// sshd's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host's inventory labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The host's directory in the fleet dir (overlay upper dirs, `sshd.log`: sshd's log,
    /// or for a systemd host the boot script's and ssh.service's reports).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host's pid 1 (its sshd, or systemd) as seen from outside, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let run = self.lock();
        run.launcher.as_ref()?;
        run.init_pid.and_then(|p| u32::try_from(p).ok())
    }

    /// The host's freezer cgroup directory. Every process of the host is in it (a
    /// systemd host sees it as its /sys/fs/cgroup/freezer and may make sub-cgroups).
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// A systemd host's `name=systemd` cgroup directory: its systemd's hierarchy (slices,
    /// scopes, services), seen inside as /sys/fs/cgroup/systemd. `None` for other kinds.
    pub fn systemd_cgroup(&self) -> Option<&Path> {
        self.systemd_cgroup.as_deref()
    }

    /// The pids (as seen from outside) of every process of the host, found by its
    /// freezer cgroup (never by a pid file inside, which holds namespaced pids).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        Ok(cgroup::procs(&self.cgroup)?
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .collect())
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

    /// Take the host down: kill its pid 1 (sshd, or systemd: a power cut) and so every
    /// process of the host; wait until they are gone. Its files stay (see `restart`).
    pub fn kill(&self) -> io::Result<()> {
        let mut run = self.lock();
        self.kill_locked(&mut run, Instant::now() + KILL_DEADLINE)
    }

    /// Boot the host again the hard way: kill it if it runs (a power cut), then boot it
    /// on the same port with the same overlays (so files written before survive; /run
    /// and /tmp start empty). Waits for sshd, and on a systemd host until the boot is
    /// over (as [`wait_running`](Self::wait_running)). See [`reboot`](Self::reboot) for
    /// a clean one.
    pub fn restart(&self) -> Result<(), LabError> {
        let mut run = self.lock();
        let deadline = Instant::now() + self.boot_deadline();
        self.kill_locked(&mut run, deadline)
            .map_err(|source| LabError::Io {
                what: "kill",
                path: self.dir.clone(),
                source,
            })?;
        drop(run);
        self.boot_again(deadline)
    }

    /// Reboot the host cleanly. A systemd host runs `systemctl reboot` inside: systemd
    /// stops its units and exits, which ends the host's pid namespace; once every process
    /// of it is gone (after 45 s its power is cut), the same overlays boot again with a
    /// fresh /run and /tmp, and this waits for sshd and for the end of the boot. Other
    /// kinds have no init to ask: for them this is [`restart`](Self::restart).
    ///
    /// All hosts share this machine's kernel: the kernel's boot id, `/proc/uptime` and
    /// the clocks do not change across a reboot. What the host sees change: its boot id
    /// (`/proc/sys/kernel/random/boot_id` is the lab's, new at every boot of every kind
    /// of host, so `journalctl --list-boots` — the journal is kept in the host's /var —
    /// shows one more boot), its processes (systemd's pid seen from outside), an empty
    /// /run and /tmp; `@reboot` cron lines and boot-time units run again.
    pub fn reboot(&self) -> Result<(), LabError> {
        if self.kind != HostKind::Systemd {
            return self.restart();
        }
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        let asked = self.run_inside(&["systemctl", "--no-block", "reboot"], EXEC_DEADLINE);
        let failed = match &asked {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = failed {
            return Err(LabError::Reboot {
                host: self.name.clone(),
                detail,
            });
        }
        let mut run = self.lock();
        loop {
            let gone = match run.launcher.as_mut() {
                None => true,
                Some(launcher) => launcher.try_wait().ok().flatten().is_some(),
            };
            if gone {
                // Reaped: its pid 1's pid may be reused now, never signal it.
                run.launcher = None;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            sleep(POLL);
        }
        // Gone by itself, or still shutting down at the deadline (the power is cut then):
        // either way wait until no process of the host is left.
        self.kill_locked(&mut run, deadline.max(Instant::now()) + KILL_DEADLINE)
            .map_err(|source| LabError::Io {
                what: "shut down",
                path: self.dir.clone(),
                source,
            })?;
        drop(run);
        self.boot_again(Instant::now() + self.boot_deadline())
    }

    /// Wait (at most 120 s) until a systemd host's boot is over, and return
    /// `systemctl is-system-running`'s answer: `running`, or `degraded` if a unit failed
    /// (`systemctl --failed` says which). Any other state is an error, as is a host that
    /// is not a systemd host.
    pub fn wait_running(&self) -> Result<String, LabError> {
        self.wait_running_within(SYSTEMD_BOOT_DEADLINE)
    }

    /// [`wait_running`](Self::wait_running) with an explicit deadline.
    pub fn wait_running_within(&self, within: Duration) -> Result<String, LabError> {
        if self.kind != HostKind::Systemd {
            return Err(LabError::WrongKind {
                host: self.name.clone(),
                kind: self.kind,
                what: "wait_running",
            });
        }
        let fail = |state: String, detail: String| LabError::SystemdBoot {
            host: self.name.clone(),
            state,
            detail,
        };
        // `--wait` returns once the boot is over; a frozen host makes it time out.
        let out = self
            .run_inside(&["systemctl", "is-system-running", "--wait"], within)
            .map_err(|e| fail("unknown".into(), e.to_string()))?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if state == "running" || state == "degraded" {
            return Ok(state);
        }
        let detail = self
            .exec_within(
                "systemctl --failed --no-pager --no-legend; \
                 journalctl -b -p warning -n 30 --no-pager",
                Duration::from_secs(10),
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| e.to_string());
        Err(fail(state, detail))
    }

    /// Run `systemctl ARGS` inside the host (as [`exec`](Self::exec) does, 30 s at most).
    /// Works on any kind of host, but only a systemd host has a systemd to answer.
    pub fn systemctl(&self, args: &[&str]) -> io::Result<Output> {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        self.run_inside(&argv, EXEC_DEADLINE)
    }

    /// Run `sh -c cmd` inside the host (its mount, UTS and pid namespaces — and cgroup
    /// namespace on a systemd host — and its cgroups), as root with a plain environment,
    /// waiting at most 30 s. For tests: seed files, simulate boot-time jobs. A frozen
    /// host makes it time out.
    pub fn exec(&self, cmd: &str) -> io::Result<Output> {
        self.exec_within(cmd, EXEC_DEADLINE)
    }

    /// [`exec`](Self::exec) with an explicit deadline; on timeout the command is killed
    /// and an `io::ErrorKind::TimedOut` error returned.
    pub fn exec_within(&self, cmd: &str, within: Duration) -> io::Result<Output> {
        self.run_inside(&["/bin/sh", "-c", cmd], within)
    }

    /// Run `argv` inside the host (PATH lookup inside), killed at the deadline.
    fn run_inside(&self, argv: &[&str], within: Duration) -> io::Result<Output> {
        let Some(pid) = self.lock().init_pid.filter(|&p| p > 0) else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "host is not running",
            ));
        };
        let mut command = self.in_cgroup("nsenter");
        command.args(["-t", &pid.to_string(), "-m", "-u", "-p", "-r", "-w"]);
        if self.kind == HostKind::Systemd {
            command.arg("-C");
        }
        command
            .arg("--")
            .args(argv)
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
                        "command on {} did not finish within {within:?}: {}",
                        self.name,
                        argv.join(" ")
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

    /// A command that first moves itself into the host's cgroups (freezer, and the root
    /// of a systemd host's `name=systemd` hierarchy), then execs `program`.
    fn in_cgroup(&self, program: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"for f in "$0" "$1"; do [ -z "$f" ] || echo $$ > "$f" || exit; done; shift; exec "$@""#)
            .arg(self.cgroup.join("cgroup.procs"))
            .arg(
                self.systemd_cgroup
                    .as_ref()
                    .map(|cg| cg.join("cgroup.procs"))
                    .unwrap_or_default(),
            )
            .arg(program);
        command
    }

    /// How long a boot may take until sshd answers (and for a systemd host, until its
    /// boot is over).
    pub(crate) fn boot_deadline(&self) -> Duration {
        match self.kind {
            HostKind::Systemd => SYSTEMD_BOOT_DEADLINE,
            _ => RESTART_DEADLINE,
        }
    }

    /// Spawn the host and wait until it is ready (see `restart`).
    fn boot_again(&self, deadline: Instant) -> Result<(), LabError> {
        self.spawn()?;
        loop {
            match self.poll_boot() {
                Boot::Ready => break,
                Boot::Failed { log, .. } => {
                    return Err(LabError::HostStart {
                        host: self.name.clone(),
                        log,
                    })
                }
                Boot::Pending if Instant::now() >= deadline => {
                    return Err(LabError::StartTimeout {
                        hosts: vec![self.name.clone()],
                        waited: self.boot_deadline(),
                    });
                }
                Boot::Pending => sleep(POLL),
            }
        }
        self.wait_booted(deadline)
    }

    /// On a systemd host whose sshd answers, wait until the boot is over (running or
    /// degraded) until `deadline`; nothing to wait for on other kinds.
    pub(crate) fn wait_booted(&self, deadline: Instant) -> Result<(), LabError> {
        if self.kind != HostKind::Systemd {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_running_within(left.max(Duration::from_secs(1)))
            .map(drop)
    }

    /// Start a boot: `unshare` (already in the host's cgroups) runs the boot script as
    /// pid 1 of new namespaces; it becomes sshd, or systemd. Output goes to `sshd.log`.
    pub(crate) fn spawn(&self) -> Result<(), LabError> {
        let log_path = self.dir.join("sshd.log");
        let io = |what: &'static str| {
            let path = log_path.clone();
            move |source| LabError::Io { what, path, source }
        };
        let upper = |p: &str| self.dir.join("upper").join(p.trim_start_matches('/'));
        let mut configs = vec![(
            upper(files::SSHD_CONFIG),
            files::sshd_config(&self.name, self.port),
        )];
        if self.kind == HostKind::Systemd {
            configs.push((upper(files::SSH_DROPIN), files::ssh_dropin(self.port)));
        }
        for (path, text) in configs {
            fs::write(&path, text).map_err(|source| LabError::Io {
                what: "write",
                path: path.clone(),
                source,
            })?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open log"))?;
        let log_offset = log.metadata().map_err(io("stat log"))?.len();
        let mut command = self.in_cgroup("unshare");
        command.args(["-m", "-u", "-p"]);
        if self.kind == HostKind::Systemd {
            command.arg("-C");
        }
        command
            .args(["--fork", "--mount-proc", "--kill-child", "--", "/bin/sh"])
            .arg(self.dir.join("boot.sh"))
            .arg(&self.dir)
            .arg(&self.name)
            .arg(self.kind.as_str())
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

    /// Check a boot in progress: ready once sshd logged that it listens on our port (a
    /// systemd host's ssh.service, that it is ready) and a TCP connection to it gets an
    /// SSH banner. A systemd host whose ssh.service failed is killed (its boot log then
    /// holds sshd's own lines from the journal, which say whether the port was taken).
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
        if self.kind == HostKind::Systemd && log.contains(files::SYSTEMD_SSH_FAILED) {
            let killed = self.kill_locked(run, Instant::now() + KILL_DEADLINE);
            return Boot::Failed {
                port_taken: killed.is_ok() && log.contains("Address already in use"),
                log: format!("ssh.service failed; log:\n{log}"),
            };
        }
        if run.init_pid.is_none() {
            let pid = launcher.id();
            run.init_pid = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        }
        let listening = match self.kind {
            HostKind::Systemd => files::systemd_ready_line(self.port),
            _ => format!("Server listening on 127.0.0.1 port {}.", self.port),
        };
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

    /// Kill the host, wait, and remove its cgroups.
    pub(crate) fn teardown(&self, deadline: Instant) -> io::Result<()> {
        let mut run = self.lock();
        let killed = self.kill_locked(&mut run, deadline);
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let removed = cgroup::remove(&self.cgroup, left);
        let removed_systemd = match &self.systemd_cgroup {
            Some(cg) => cgroup::remove(cg, left),
            None => Ok(()),
        };
        killed.and(removed).and(removed_systemd)
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
