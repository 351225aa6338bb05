//! Helpers shared by the integration tests: lab fleets, a work dir to run the wavectl
//! binary in, finding live `ssh` processes, and small checks of what a host holds. Each
//! test file uses only some of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wavectl::lab::{Fleet, FleetOptions, LabHost};

/// The deadline of [`run`] unless a test passes its own to [`run_within`].
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// `n` hosts named h01..hNN, without labels.
pub fn fleet(n: usize) -> Fleet {
    Fleet::start(FleetOptions::numbered(n)).expect("start lab fleet")
}

/// Hosts with labels: `fleet_with(&[("db-1", &[("role", "db")]), ..])`.
pub fn fleet_with(hosts: &[(&str, &[(&str, &str)])]) -> Fleet {
    let names = hosts.iter().map(|(n, _)| n.to_string()).collect();
    let labels = hosts
        .iter()
        .map(|(_, l)| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        })
        .collect();
    Fleet::start(FleetOptions { names, labels }).expect("start lab fleet")
}

/// The wavectl binary cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wavectl"))
}

/// `--ssh-config SSH_CONFIG --state-dir STATE_DIR ARGS`: the global flags every test
/// passes, then `args`.
pub fn wavectl_args(ssh_config: &Path, state_dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--ssh-config".to_string(),
        ssh_config.to_str().unwrap().to_string(),
        "--state-dir".to_string(),
        state_dir.to_str().unwrap().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// A work dir for one rollout against `fleet`: `inventory.toml` (written by the fleet),
/// `script.sh` and `rollout.toml`, with the runs' state in `state/`. A test file that
/// needs more (a fixed script, a background apply, ..) adds it locally.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub fleet: Fleet,
}

impl Workdir {
    pub fn new(fleet: Fleet, script: &str, spec: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        fleet
            .write_inventory(&dir.path().join("inventory.toml"))
            .unwrap();
        std::fs::write(dir.path().join("script.sh"), script).unwrap();
        std::fs::write(dir.path().join("rollout.toml"), spec).unwrap();
        Workdir { dir, fleet }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `--state-dir` of every run here.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `--ssh-config .. --state-dir .. ARGS`, see [`wavectl_args`].
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        wavectl_args(self.fleet.ssh_config(), &self.state(), args)
    }

    /// `wavectl --ssh-config .. --state-dir .. ARGS`, in the work dir, to its end.
    pub fn wavectl(&self, args: &[&str]) -> Run {
        run(self.path(), self.args(args), &[])
    }

    /// No `ssh` of any run against this fleet is still alive (checked once, no waiting).
    pub fn assert_no_ssh_left(&self) {
        let left = ssh_processes(self.fleet.ssh_config().to_str().unwrap());
        assert!(left.is_empty(), "ssh processes left behind: {left:?}");
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// Run wavectl with `args` and extra `env`, in `cwd`, at most [`RUN_DEADLINE`].
pub fn run<I, S>(cwd: &Path, args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_within(cwd, args, env, RUN_DEADLINE)
}

/// [`run`] with an explicit deadline; panics (after killing it) if the binary overruns.
pub fn run_within<I, S>(cwd: &Path, args: I, env: &[(&str, &str)], within: Duration) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(bin());
    command.args(args);
    finish(command, cwd, env, within)
}

/// [`run`] as another user: `setpriv --reuid=UID --regid=UID --clear-groups wavectl ARGS`
/// (the test must run as root; otherwise setpriv fails and so does the test).
pub fn run_as<I, S>(uid: u32, cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(bin())
        .args(args);
    finish(command, cwd, &[], RUN_DEADLINE)
}

fn finish(mut command: Command, cwd: &Path, env: &[(&str, &str)], within: Duration) -> Run {
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("spawn wavectl");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for wavectl") {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wavectl did not finish within {within:?}; stderr so far is lost");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took: start.elapsed(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Live `ssh` client processes whose command line contains `needle` (e.g. a fleet's
/// directory): `(pid, command line with spaces between arguments)`.
pub fn ssh_processes(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // A mux master renames itself "ssh: /path/to/socket [mux]".
        let is_ssh = args.first().is_some_and(|a0| {
            Path::new(a0).file_name() == Some(OsStr::new("ssh")) || a0.starts_with("ssh: ")
        });
        let line = args.join(" ");
        if is_ssh && line.contains(needle) {
            found.push((pid, line));
        }
    }
    found
}

/// Wait until `f` holds, at most `within`; false on timeout.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The permission bits (`& 0o7777`) of the file at `p`; panics if it is missing.
pub fn file_mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o7777
}

/// `sh -c cmd` on the host; panics unless it exits 0. Returns its stdout.
pub fn exec_ok(h: &LabHost, cmd: &str) -> String {
    let out = h.exec(cmd).unwrap();
    assert!(
        out.status.success(),
        "{}: `{cmd}` failed: {:?}\n{}",
        h.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Put `content` at `install` on the host, mode 0640: the file a rollout backs up.
/// Returns the bytes as they landed.
pub fn seed_original(h: &LabHost, install: &str, content: &str) -> Vec<u8> {
    let out = h
        .exec(&format!(
            "mkdir -p /usr/local/sbin && printf '%s' '{content}' > {install} && chmod 0640 {install}"
        ))
        .unwrap();
    assert!(out.status.success(), "{}: seeding failed", h.name());
    std::fs::read(h.path(install)).unwrap()
}

/// The host's systemd timers, as `systemctl list-timers --all --no-legend` lists them.
pub fn timers(h: &LabHost) -> String {
    let out = h
        .systemctl(&["list-timers", "--all", "--no-legend"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// No unit of rollout `name` is left on a systemd host (the script's service and timer,
/// the guard's and the lease guard's), and no wavectl timer is loaded.
pub fn assert_no_wavectl_units(h: &LabHost, name: &str) {
    for unit in ["", "-guard", "-lease"] {
        for ext in ["service", "timer"] {
            let p = format!("/etc/systemd/system/wavectl-{name}{unit}.{ext}");
            assert!(!h.path(&p).exists(), "{}: {p} left", h.name());
        }
    }
    let timers = timers(h);
    assert!(!timers.contains("wavectl-"), "{}: {timers}", h.name());
}

/// None of the files wavectl writes for rollout `name` (script at `install`) is on the
/// host: its state dir, its cron file, a half-written new script (in a private
/// directory beside `install`). The script itself is not checked.
pub fn assert_no_wavectl_files(h: &LabHost, name: &str, install: &str) {
    for p in [
        format!("/var/lib/wavectl/{name}"),
        format!("/etc/cron.d/wavectl-{name}"),
    ] {
        assert!(!h.path(&p).exists(), "{} still holds {p}", h.name());
    }
    let temps = temp_dirs(h, name, install);
    assert!(temps.is_empty(), "{} still holds {temps:?}", h.name());
}

/// The private directories (`.wavectl-NAME.XXXXXXXX`) an install or restore of rollout
/// `name` made beside `install` and left there.
pub fn temp_dirs(h: &LabHost, name: &str, install: &str) -> Vec<String> {
    let dir = Path::new(install).parent().unwrap_or(Path::new("/"));
    let prefix = format!(".wavectl-{name}.");
    std::fs::read_dir(h.path(dir.to_str().unwrap()))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// NAME's manifest on a host (`/var/lib/wavectl/NAME/manifest.json`), parsed; None if there
/// is none.
pub fn manifest(h: &LabHost, name: &str) -> Option<wavectl::remote::Manifest> {
    let text =
        std::fs::read_to_string(h.path(&format!("/var/lib/wavectl/{name}/manifest.json"))).ok()?;
    Some(
        wavectl::remote::Manifest::read(&text)
            .unwrap_or_else(|e| panic!("{}: {e}: {text}", h.name())),
    )
}
