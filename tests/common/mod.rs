//! Helpers shared by the integration tests: lab fleets, running the wavectl binary,
//! and finding live `ssh` processes. Each test file uses only some of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wavectl::lab::{Fleet, FleetOptions};

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
    command
        .args(args)
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
