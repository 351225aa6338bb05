//! The local lab fleet: real sshd hosts, each in its own namespaces with overlays
//! (used by `wavectl demo` and by the tests). Needs root; spawns processes, mounts, cgroups.
//!
//! Each host is pid 1 of its own mount, UTS and pid namespaces (`unshare -m -u -p --fork
//! --mount-proc`), with copy-on-write overlays over /etc, /var, /usr, /opt and /root
//! (upper dirs in the fleet's directory, so a test can read what landed where), a
//! private /run and /tmp, its own hostname, its own boot id at every boot, and its own
//! freezer cgroup (`/sys/fs/cgroup/freezer/wavectl-lab/<fleet-id>/<host>/`): a frozen
//! host is a hung host (every process of it stops, cron and systemd included), a killed
//! one is down. Its sshd listens on its own 127.0.0.1 port with the lab's config (sshd's
//! defaults MaxSessions 10 and MaxStartups 10:30:100, the sftp subsystem) and root's
//! /root/.bashrc is a plain one. The fleet's `ssh_config` has one `Host <name>` block per
//! host, so `ssh -F <ssh_config> <name>` (and wavectl's `--ssh-config`) reach it with
//! strict host-key checking.
//!
//! A host can also have a non-root login with sudo ([`Fleet::add_login`], see
//! [`Sudo`]): a user opened by the fleet's client key, whose sudo runs without a password
//! or always wants one; the fleet's inventory then names that user and `become = true`
//! for the host (its ssh_config keeps `User root`).
//!
//! # Kinds of host
//!
//! Chosen per fleet ([`Fleet::start_kind`]) or per host ([`Fleet::start_kinds`]);
//! [`Fleet::start`] starts plain sshd hosts, the default.
//!
//! - [`HostKind::Sshd`]: `sshd -D -e` is pid 1. Starts in a few milliseconds: for speed
//!   and scale.
//! - [`HostKind::Cron`]: the same, but the boot script first starts Debian's `cron`
//!   daemon, so it lives in the host's namespaces and freezer cgroup and reads the host's
//!   /etc/cron.d (and /etc/crontab, /var/spool/cron) through the overlays: a line in one
//!   host's /etc/cron.d runs only there, at the next minute boundary; `@reboot` lines run
//!   at every boot (cron's marker lives in the private /run).
//! - [`HostKind::Systemd`]: Debian's systemd (/lib/systemd/systemd) is pid 1, with
//!   `container=wavectl-lab` in its environment (so it behaves as in a container: no
//!   remount, unmount or reboot of the machine), runs sshd as Debian's ssh.service (a
//!   drop-in gives it the lab's config and port; `RuntimeDirectory=sshd`) and cron as
//!   cron.service. Boots in well under a second here; [`Fleet::start`] waits for the end
//!   of the boot. Timers fire, `systemctl --failed` and `is-system-running` work
//!   ([`LabHost::systemctl`], [`LabHost::wait_running`]), and [`LabHost::reboot`] is a
//!   clean reboot: `systemctl reboot` inside ends the host, the same overlays boot again
//!   with a fresh /run and /tmp and a new boot id (the kernel, its uptime and clocks
//!   stay this machine's).
//!
//! What a systemd host gets, as from a container manager (see `files::BOOT_SCRIPT`):
//! its own tmpfs on /tmp before systemd starts (systemd-tmpfiles empties /tmp at boot:
//! it must never see this machine's, which holds the fleet's directory; the one lab file
//! the host needs afterwards, its boot log, is bind-mounted at /run/wavectl-lab/boot.log);
//! a private /dev; read-only /sys, /proc/sys and view of / outside the overlays (so
//! writes to /home or /srv fail there, where on other kinds they would reach this
//! machine's); and a cgroup namespace rooted at its own cgroups, with two cgroup v1
//! hierarchies mounted under /sys/fs/cgroup: `name=systemd` (systemd runs in legacy
//! mode and keeps its slices and scopes in the host's own
//! `/sys/fs/cgroup/systemd/wavectl-lab/<fleet-id>/<host>/`) and the freezer (which
//! systemd does not manage: every process stays in the host's freezer cgroup, and a
//! unit can freeze its own host as on other kinds). Its /etc overlay holds its hostname,
//! its own machine-id, `DefaultTimeoutStopSec=15s`, a 16 MB journal, no generators (this
//! machine's SysV scripts, database clusters and consoles are not the host's), and masks
//! (`files::MASKED`) for: the getty units (no terminal), what would reach the shared
//! kernel, clock or disks (module loading, binfmt_misc, sysctl, debugfs/tracefs/configfs,
//! fuse control, the audit socket, pstore, timesyncd, remount-fs, fstrim, e2scrub), the
//! ssh.socket on port 22, and every non-target unit this machine enabled in
//! /etc/systemd/system besides ssh and cron (here: postgresql, the apt, man-db, dpkg and
//! exim timers, getty@tty1), which would share ports and work in the one network
//! namespace. SIGTERM does not stop a systemd pid 1 (it re-executes): the lab stops a
//! host with SIGKILL, or with `systemctl reboot`/`poweroff` inside; and it finds a host's
//! processes by its freezer cgroup ([`LabHost::pids`]), never by a pid file inside
//! (those hold namespaced pids).
//!
//! ```no_run
//! use wavectl::lab::{Fleet, FleetOptions, HostKind};
//! let fleet = Fleet::start(FleetOptions::numbered(3)).unwrap();
//! fleet.host("h02").freeze().unwrap();
//! // ... run `wavectl --ssh-config <fleet.ssh_config()>` against fleet.write_inventory(..) ...
//! drop(fleet); // kills every host and removes the cgroups and the directory
//!
//! let fleet = Fleet::start_kind(FleetOptions::numbered(2), HostKind::Systemd).unwrap();
//! let h01 = fleet.host("h01");
//! h01.systemctl(&["start", "some.timer"]).unwrap();
//! h01.reboot().unwrap();
//! assert_eq!(h01.wait_running().unwrap(), "running");
//! ```

mod cgroup;
mod files;
mod host;
mod keys;
mod systemd;
mod users;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use cgroup::cleanup_stale;
#[cfg(test)]
pub(crate) use cgroup::remove as remove_cgroup;
use host::Boot;
pub use host::LabHost;
pub use users::{Sudo, HOME_PARENT};

/// How long `start` waits for every sshd to answer.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long `stop` waits for every process to be gone.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Boots of one host that may fail on a port another process took meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// sshd ports are drawn from here: below the ephemeral range (32768..), so outgoing
/// connections do not take them between the check and sshd's bind.
const PORTS: std::ops::Range<u16> = 20000..32000;

/// What runs in a lab host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HostKind {
    /// sshd alone as pid 1: fast to start, for scale. The default.
    #[default]
    Sshd,
    /// Debian's `cron` daemon, started by the boot script, then sshd as pid 1.
    Cron,
    /// Debian's systemd as pid 1, running sshd (ssh.service) and cron (cron.service).
    Systemd,
}

impl HostKind {
    /// `sshd`, `cron` or `systemd` (also the boot script's argument).
    pub fn as_str(self) -> &'static str {
        match self {
            HostKind::Sshd => "sshd",
            HostKind::Cron => "cron",
            HostKind::Systemd => "systemd",
        }
    }
}

impl std::fmt::Display for HostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What fleet to start.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Host names: `[A-Za-z0-9][A-Za-z0-9_-]*`, at most 32 characters, distinct.
    pub names: Vec<String>,
    /// Labels per host, in the order of `names`; empty means no labels for any host.
    pub labels: Vec<BTreeMap<String, String>>,
}

impl FleetOptions {
    /// `n` hosts named `h01`, `h02`, ... without labels.
    pub fn numbered(n: usize) -> FleetOptions {
        FleetOptions {
            names: (1..=n).map(|i| format!("h{i:02}")).collect(),
            labels: Vec::new(),
        }
    }
}

/// What can go wrong starting or stopping a lab fleet.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (it mounts overlays and creates namespaces and cgroups)")]
    NotRoot,
    #[error("{} not found: install openssh-server: apt-get install -y openssh-server", path.display())]
    SshdMissing { path: PathBuf },
    #[error("`{tool}` not found in PATH: apt-get install -y {package}")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("no freezer cgroup at {path} (the lab needs cgroup v1 with the freezer controller mounted there)")]
    NoFreezer { path: PathBuf },
    #[error("{} not found: apt-get install -y {package}", path.display())]
    Missing {
        path: PathBuf,
        package: &'static str,
    },
    #[error("no cgroup v1 name=systemd hierarchy at {path} (systemd hosts need it: mount -t cgroup -o none,name=systemd cgroup {path})", path = path.display())]
    NoSystemdHierarchy { path: PathBuf },
    #[error("bad fleet options: {0}")]
    BadOptions(String),
    #[error("failed to {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ssh-keygen failed for {}: {detail}", path.display())]
    KeyGen { path: PathBuf, detail: String },
    #[error("host {host}: sshd did not start: {log}")]
    HostStart { host: String, log: String },
    #[error("host {host}: systemd is {state}, not running: {detail}")]
    SystemdBoot {
        host: String,
        state: String,
        detail: String,
    },
    #[error("host {host}: `systemctl reboot` failed: {detail}")]
    Reboot { host: String, detail: String },
    #[error("host {host} is a {kind} host: {what} needs a systemd host")]
    WrongKind {
        host: String,
        kind: HostKind,
        what: &'static str,
    },
    #[error("hosts {hosts:?}: sshd not answering after {waited:?}")]
    StartTimeout {
        hosts: Vec<String>,
        waited: Duration,
    },
    #[error("lab clean-up incomplete: {}", problems.join("; "))]
    Cleanup { problems: Vec<String> },
}

/// A running fleet of lab hosts. Dropping it stops it.
#[derive(Debug)]
pub struct Fleet {
    /// The fleet directory (`/tmp/wlab-XXXXXX`); `None` once removed.
    dir: Option<tempfile::TempDir>,
    /// Its path, kept after removal for messages.
    path: PathBuf,
    /// The fleet's cgroup, parent of the hosts' cgroups.
    cgroup: PathBuf,
    /// The fleet's `name=systemd` cgroup, parent of its systemd hosts' (if it has any).
    systemd_cgroup: Option<PathBuf>,
    /// The client's ssh_config: one `Host` block per host.
    ssh_config: PathBuf,
    /// The hosts, in the order of `FleetOptions::names`.
    hosts: Vec<LabHost>,
    /// Non-root logins (host → user) the inventory names, with `become`.
    logins: BTreeMap<String, String>,
    /// The only key exchange the client offers, if set ([`Fleet::set_kex`]).
    kex: Option<String>,
    /// Set by `stop`, which runs once.
    stopped: bool,
}

impl Fleet {
    /// Start every host, all plain sshd hosts ([`HostKind::Sshd`]), at once and wait (at
    /// most 30 s) until each sshd listens and sends its banner. On error, whatever was
    /// started is stopped again.
    pub fn start(opts: FleetOptions) -> Result<Fleet, LabError> {
        Fleet::start_kinds(opts, Vec::new())
    }

    /// [`start`](Self::start) a fleet whose hosts are all of `kind`.
    pub fn start_kind(opts: FleetOptions, kind: HostKind) -> Result<Fleet, LabError> {
        let kinds = vec![kind; opts.names.len()];
        Fleet::start_kinds(opts, kinds)
    }

    /// [`start`](Self::start) a fleet with a kind per host, in the order of
    /// `opts.names`; empty means every host is plain sshd. With systemd hosts, waits (at
    /// most 120 s) until their sshd answers and their boot is over (`running`, or
    /// `degraded`: see [`LabHost::wait_running`]).
    pub fn start_kinds(opts: FleetOptions, kinds: Vec<HostKind>) -> Result<Fleet, LabError> {
        check_options(&opts)?;
        if !kinds.is_empty() && kinds.len() != opts.names.len() {
            return Err(LabError::BadOptions(format!(
                "{} host kinds for {} hosts",
                kinds.len(),
                opts.names.len()
            )));
        }
        preflight(&kinds)?;
        // Best effort: a crashed earlier run must not pile up processes and cgroups.
        let _ = cleanup_stale();

        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| LabError::Io { what, path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("wlab-")
            .tempdir_in(cgroup::FLEET_PARENT)
            .map_err(io_err(
                "create fleet dir in",
                Path::new(cgroup::FLEET_PARENT),
            ))?;
        let path = dir.path().to_owned();
        let id = path.file_name().unwrap_or_default().to_owned();
        // The owner file is written before the cgroup exists: see `cleanup_stale`.
        let owner = path.join(cgroup::OWNER_FILE);
        fs::write(&owner, cgroup::owner_line()).map_err(io_err("write", &owner))?;
        let fleet_cg = Path::new(cgroup::LAB_ROOT).join(&id);
        fs::create_dir_all(&fleet_cg).map_err(io_err("create cgroup", &fleet_cg))?;
        let mut fleet = Fleet {
            dir: Some(dir),
            ssh_config: path.join("ssh_config"),
            path,
            cgroup: fleet_cg,
            systemd_cgroup: None,
            hosts: Vec::new(),
            logins: BTreeMap::new(),
            kex: None,
            stopped: false,
        };
        if kinds.contains(&HostKind::Systemd) {
            let cg = Path::new(cgroup::SYSTEMD_LAB_ROOT).join(&id);
            fs::create_dir_all(&cg).map_err(io_err("create cgroup", &cg))?;
            fleet.systemd_cgroup = Some(cg);
        }

        let mut labels = opts.labels.into_iter();
        let mut kinds = kinds.into_iter();
        for name in opts.names {
            let host_dir = fleet.path.join(&name);
            let host_cg = fleet.cgroup.join(&name);
            let systemd_cg = fleet.systemd_cgroup.as_ref().map(|cg| cg.join(&name));
            let host = LabHost::prepare(
                name,
                kinds.next().unwrap_or_default(),
                labels.next().unwrap_or_default(),
                host_dir,
                host_cg,
                systemd_cg,
            )?;
            fleet.hosts.push(host);
        }
        fleet.generate_keys()?;
        fleet.boot_all()?;
        fleet.write_client_config()?;
        Ok(fleet)
    }

    /// Make `kex` (e.g. `curve25519-sha256`, or a comma-separated list) the only key
    /// exchange the fleet's ssh_config offers, instead of OpenSSH's default list (which
    /// real fleets negotiate: the post-quantum `sntrup761x25519-sha512`, ~135 ms of client
    /// CPU per login on a 2-core machine). The hosts keep sshd's defaults, which include
    /// the usual ones. For measurements that want a cheaper login, never the default.
    pub fn set_kex(&mut self, kex: &str) -> Result<(), LabError> {
        let ok = !kex.is_empty()
            && kex
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-@.,+".contains(c));
        if !ok {
            return Err(LabError::BadOptions(format!(
                "key exchange `{kex}`: give OpenSSH algorithm names (`ssh -Q kex` lists them), comma-separated"
            )));
        }
        self.kex = Some(kex.to_string());
        self.write_client_config()
    }

    /// The key exchange the fleet's ssh_config forces, if any (else OpenSSH's default).
    pub fn kex(&self) -> Option<&str> {
        self.kex.as_deref()
    }

    /// The fleet's directory (`/tmp/wlab-XXXXXX`): one subdirectory per host.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The ssh_config to pass to `ssh -F` / `wavectl --ssh-config`.
    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    /// Every host, in the order they were named.
    pub fn hosts(&self) -> &[LabHost] {
        &self.hosts
    }

    /// The host of that name. Panics if there is none (a bug in the caller).
    pub fn host(&self, name: &str) -> &LabHost {
        self.get(name)
            .unwrap_or_else(|| panic!("no lab host named {name:?}"))
    }

    /// The host of that name, if any.
    pub fn get(&self, name: &str) -> Option<&LabHost> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// `ssh -F <ssh_config> <name>`, ready for `.arg(command)`.
    pub fn ssh(&self, name: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .arg("-F")
            .arg(&self.ssh_config)
            .arg(name)
            .stdin(Stdio::null());
        command
    }

    /// Write the fleet as a TOML inventory (DESIGN.md): `[defaults] user = "root"`, one
    /// `[[host]]` per host with `address` = its ssh_config alias, and its labels; a host
    /// with a login from [`add_login`](Self::add_login) gets `user` and `become = true`.
    pub fn write_inventory(&self, path: &Path) -> io::Result<()> {
        let header = format!(
            "wavectl lab fleet {}\nuse with --ssh-config {}",
            self.path.display(),
            self.ssh_config.display()
        );
        fs::write(
            path,
            files::inventory(
                &header,
                self.hosts
                    .iter()
                    .map(|h| (h.name(), h.labels(), self.login(h.name()))),
            ),
        )
    }

    /// Stop the fleet: thaw and kill every process of every host, wait for them, remove
    /// the cgroups and the directory. Runs once (later calls return `Ok`); `Drop` calls
    /// it. Every host is cleaned even if one fails; all failures are reported.
    pub fn stop(&mut self) -> Result<(), LabError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let deadline = Instant::now() + STOP_DEADLINE;
        for host in &self.hosts {
            host.signal_kill();
        }
        let mut problems = Vec::new();
        for host in &self.hosts {
            if let Err(e) = host.teardown(deadline) {
                problems.push(format!("host {}: {e}", host.name()));
            }
        }
        for cg in std::iter::once(&self.cgroup).chain(&self.systemd_cgroup) {
            if let Err(e) = cgroup::remove(cg, Duration::from_secs(2)) {
                problems.push(e.to_string());
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                problems.push(format!("cannot remove {}: {e}", self.path.display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LabError::Cleanup { problems })
        }
    }

    /// Boot every host at once, then wait for all; a host whose port was taken meanwhile
    /// boots again on another port. Then wait for the end of the systemd hosts' boots.
    fn boot_all(&mut self) -> Result<(), LabError> {
        let mut used = HashSet::new();
        for host in &mut self.hosts {
            host.port = free_port(&mut used)?;
            host.spawn()?;
        }
        let waited = (self.hosts.iter())
            .map(|h| match h.kind() {
                HostKind::Systemd => host::SYSTEMD_BOOT_DEADLINE,
                _ => START_DEADLINE,
            })
            .max()
            .unwrap_or(START_DEADLINE);
        let deadline = Instant::now() + waited;
        let mut pending: Vec<(usize, usize)> = (0..self.hosts.len()).map(|i| (i, 1)).collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (i, attempts) in pending {
                let host = &mut self.hosts[i];
                match host.poll_boot() {
                    Boot::Ready => {}
                    Boot::Pending => still.push((i, attempts)),
                    Boot::Failed {
                        port_taken: true, ..
                    } if attempts < PORT_ATTEMPTS => {
                        host.port = free_port(&mut used)?;
                        host.spawn()?;
                        still.push((i, attempts + 1));
                    }
                    Boot::Failed { log, .. } => {
                        return Err(LabError::HostStart {
                            host: host.name().to_owned(),
                            log,
                        })
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let hosts = pending
                    .iter()
                    .map(|&(i, _)| self.hosts[i].name().to_owned())
                    .collect();
                return Err(LabError::StartTimeout { hosts, waited });
            }
            sleep(Duration::from_millis(10));
        }
        for host in &self.hosts {
            host.wait_booted(deadline)?;
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("wavectl lab: {e}");
        }
    }
}

/// Root, sshd, the util-linux and ssh tools, and the freezer hierarchy; cron for cron and
/// systemd hosts; systemd and its `name=systemd` hierarchy for systemd hosts.
fn preflight(kinds: &[HostKind]) -> Result<(), LabError> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err(LabError::SshdMissing {
            path: sshd.to_owned(),
        });
    }
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
    ] {
        if !host::PATH
            .split(':')
            .any(|d| Path::new(d).join(tool).exists())
        {
            return Err(LabError::ToolMissing { tool, package });
        }
    }
    let freezer = Path::new(cgroup::FREEZER);
    if !freezer.join("cgroup.procs").exists() {
        return Err(LabError::NoFreezer {
            path: freezer.to_owned(),
        });
    }
    let mut needed = Vec::new();
    if kinds.iter().any(|&k| k != HostKind::Sshd) {
        needed.push(("/usr/sbin/cron", "cron"));
    }
    if kinds.contains(&HostKind::Systemd) {
        needed.extend([
            (systemd::SYSTEMD_BIN, "systemd"),
            ("/usr/bin/systemctl", "systemd"),
            ("/lib/systemd/system/ssh.service", "openssh-server"),
            ("/lib/systemd/system/cron.service", "cron"),
            // systemd-logind fails without a system bus: the host would boot degraded.
            ("/usr/bin/dbus-daemon", "dbus"),
        ]);
    }
    for (path, package) in needed {
        if !Path::new(path).exists() {
            return Err(LabError::Missing {
                path: PathBuf::from(path),
                package,
            });
        }
    }
    if kinds.contains(&HostKind::Systemd) {
        let hierarchy = Path::new(cgroup::SYSTEMD);
        if !hierarchy.join("cgroup.procs").exists() || hierarchy.join("cgroup.controllers").exists()
        {
            return Err(LabError::NoSystemdHierarchy {
                path: hierarchy.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_options(opts: &FleetOptions) -> Result<(), LabError> {
    if opts.names.is_empty() {
        return Err(LabError::BadOptions("no host names".into()));
    }
    if !opts.labels.is_empty() && opts.labels.len() != opts.names.len() {
        return Err(LabError::BadOptions(format!(
            "{} label sets for {} hosts",
            opts.labels.len(),
            opts.names.len()
        )));
    }
    let mut seen = HashSet::new();
    for name in &opts.names {
        if !files::valid_name(name) {
            return Err(LabError::BadOptions(format!(
                "host name {name:?}: use [A-Za-z0-9][A-Za-z0-9_-]*, at most 32 characters"
            )));
        }
        if !seen.insert(name) {
            return Err(LabError::BadOptions(format!(
                "host name {name:?} given twice"
            )));
        }
    }
    Ok(())
}

/// A port in `PORTS` that nothing listens on now and this fleet has not used.
fn free_port(used: &mut HashSet<u16>) -> Result<u16, LabError> {
    for _ in 0..1000 {
        let port = rand::random_range(PORTS);
        if used.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            used.insert(port);
            return Ok(port);
        }
    }
    Err(LabError::BadOptions(format!(
        "no free port found in {PORTS:?}"
    )))
}
