//! Benchmark: what wavectl itself spends at fleet scale, against a floor measured in the
//! same run.
//!
//! One run brings up N lab hosts (real `sshd`s, see `src/lab`, with OpenSSH's default key
//! exchange unless `--kex` names another) and measures, one after another on the same
//! fleet and with the same ssh configuration (the fleet's `ssh_config`) and concurrency C:
//!
//! 1. **floor** (twice, `--floors N`): `ssh HOST true` to every host, `xargs -P C` — one
//!    login per host;
//! 2. **apply**: `wavectl apply` of a 4-wave rollout (`sizes = [1, "10%", "50%",
//!    "100%"]`, bake 0, `run_on_install`, one custom check, concurrency C);
//! 3. **purge**: `wavectl purge NAME --concurrency C`;
//! 4. **ansible**: ansible-core 2.19 (installed into a virtualenv under `target/` from
//!    PyPI on first use; pipelining on, forks = C) running the same staged rollout as a
//!    playbook (`serial` with the same list; copy the script, a cron file, one run, the
//!    same check);
//! 5. **store**: the same apply with the runs in a state directory, then in a PostgreSQL
//!    (`--store`, a cluster the benchmark starts as the tests do), each after a purge
//!    (not measured): the ratio of their wall times (the contract: at most 1.15).
//!
//! Each command runs in a CPU accounting cgroup of its own (cpuacct on cgroup v1,
//! `cpu.stat` on v2) and a memory cgroup: wavectl and every `ssh` it starts (forked
//! masters too) in one, the floor's `xargs` and its `ssh`es in another; the lab hosts'
//! `sshd`s are in the hosts' own cgroups, so **controller cpu** is the controller's own
//! work, apart from the hosts' (they share this machine's cores). It prints per row the
//! wall time, controller CPU, peak memory of the command with its `ssh` processes, the
//! most `ssh` processes open at once, the CPU the whole machine spent and the 1-minute
//! load average at its end, and below it that CPU by kind of process (wavectl, the
//! `ssh -M` logins and the masters they fork, one-command `ssh -T`, `ssh -G`, ...:
//! `/proc/PID/schedstat` sampled every 20 ms; "unsampled" is the rest, mostly the last
//! moments of short-lived processes); then the ratios of controller CPU apply/floor,
//! purge/floor (against the floors' mean) and ansible/apply, and of wall times. It asserts nothing about
//! time: timings on a shared machine are not pass/fail. It does fail when a wavectl
//! command does not end as it should (a verdict that is not healthy, a host left
//! pending, an error of wavectl's own), since then the figures mean nothing.
//!
//! ```text
//! cargo bench --bench fanout                                   # 200 hosts, C = 50, all four
//! cargo bench --bench fanout -- --hosts 1000 --concurrency 200 --skip floor,apply,ansible
//! cargo bench --bench fanout -- --concurrency 200 --probe-timeout 2s --skip purge,ansible --hogs 2
//! cargo bench --bench fanout -- --kex curve25519-sha256        # a cheaper key exchange
//! ```
//!
//! Options: `--hosts N` (200), `--concurrency C` (50), `--probe-timeout D` ("5s"),
//! `--skip LIST` (any of floor, apply, purge, ansible, store), `--kex ALG` (the only key
//! exchange the client offers; default: OpenSSH's), `--hogs N` (N CPU hogs `sh -c
//! 'while :; do :; done'` beside the measured commands), `--floors N` (2), `--hold`
//! (start the fleet, print how to reach it, and wait for Enter or 30 minutes: for
//! profiling by hand). Needs root, openssh-server and cgroups (v1 memory, freezer and
//! cpuacct, or v2), like the tests.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wavectl::lab::{Fleet, FleetOptions};

/// ansible-core's release line the comparison uses.
const ANSIBLE: &str = "ansible-core>=2.19,<2.20";
/// The longest any one measured command may take before the benchmark gives up.
const COMMAND_DEADLINE: Duration = Duration::from_secs(40 * 60);

struct Args {
    hosts: usize,
    concurrency: usize,
    probe_timeout: String,
    skip: HashSet<String>,
    hold: bool,
    /// The only key exchange the client offers (else OpenSSH's default).
    kex: Option<String>,
    /// CPU hogs (`sh -c 'while :; do :; done'`) running beside the measured commands.
    hogs: usize,
    /// How many times the floor is measured.
    floors: usize,
}

fn args() -> Args {
    let mut a = Args {
        hosts: 200,
        concurrency: 50,
        probe_timeout: "5s".into(),
        skip: HashSet::new(),
        hold: false,
        kex: None,
        hogs: 0,
        floors: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--hosts" => a.hosts = value("--hosts").parse().expect("--hosts N"),
            "--concurrency" => {
                a.concurrency = value("--concurrency").parse().expect("--concurrency C")
            }
            "--probe-timeout" => a.probe_timeout = value("--probe-timeout"),
            "--skip" => a
                .skip
                .extend(value("--skip").split(',').map(|s| s.trim().to_string())),
            "--hold" => a.hold = true,
            "--kex" => a.kex = Some(value("--kex")),
            "--hogs" => a.hogs = value("--hogs").parse().expect("--hogs N"),
            "--floors" => a.floors = value("--floors").parse().expect("--floors N"),
            // cargo bench passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    a
}

/// A memory cgroup (v1) for one measured command: everything the command starts stays
/// in it (a forked `ssh -M -f` master too), so its high-water mark is the memory of the
/// command and all its processes.
struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let path = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/wavectl-bench-{}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a memory cgroup (cgroup v1, root)");
        Cgroup { path }
    }

    fn peak_bytes(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.max_usage_in_bytes"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pids().is_empty() && Instant::now() < deadline {
            for pid in self.pids() {
                // SAFETY: kill(2) on a pid of our own benchmark cgroup.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A CPU accounting cgroup for one measured command: cpuacct on cgroup v1 (this
/// machine: a hybrid with the v1 controllers mounted), `cpu.stat` on a pure v2 machine.
/// Everything the command starts stays in it, so its usage is the command's own CPU and
/// that of every `ssh` it started (the lab hosts' `sshd`s are in the hosts' cgroups).
struct CpuCgroup {
    path: PathBuf,
    v2: bool,
}

impl CpuCgroup {
    fn new(tag: &str) -> CpuCgroup {
        let (root, v2) = if Path::new("/sys/fs/cgroup/cpuacct/cpuacct.usage").exists() {
            ("/sys/fs/cgroup/cpuacct", false)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            ("/sys/fs/cgroup", true)
        } else {
            panic!("no cpuacct (cgroup v1) nor cgroup v2 hierarchy under /sys/fs/cgroup");
        };
        let path = PathBuf::from(format!("{root}/wavectl-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a cpu accounting cgroup (root)");
        CpuCgroup { path, v2 }
    }

    /// CPU time (user + system) of every process that ran in it.
    fn usage(&self) -> Duration {
        if self.v2 {
            let stat = std::fs::read_to_string(self.path.join("cpu.stat")).unwrap_or_default();
            let us = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            Duration::from_micros(us)
        } else {
            let ns = std::fs::read_to_string(self.path.join("cpuacct.usage"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            Duration::from_nanos(ns)
        }
    }
}

impl Drop for CpuCgroup {
    fn drop(&mut self) {
        // Emptied by the memory cgroup's drop (same processes), then removed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What one measured command did.
struct Measured {
    wall: Duration,
    /// CPU time the whole machine spent while it ran (every process, the lab hosts'
    /// too: they share the controller's cores), from `/proc/stat`.
    cpu: Duration,
    /// CPU time of the command and every process it started (its cpu cgroup).
    own_cpu: Duration,
    /// The 1-minute load average when it ended.
    load: String,
    peak_bytes: u64,
    max_ssh: usize,
    /// CPU time by kind of process, sampled from `/proc/PID/stat` every 20 ms (a
    /// process's last moments before it exits are missed: the rest of `own_cpu` is
    /// "unsampled").
    by_kind: Vec<(String, Duration, usize)>,
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Run `argv` in a fresh memory cgroup and cpu cgroup, sampling how many `ssh`
/// processes it holds.
fn measure(tag: &str, argv: &[String], dir: &Path) -> Measured {
    let cpu_cg = CpuCgroup::new(tag);
    let cg = Cgroup::new(tag);
    let procs = cg.path.join("cgroup.procs");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("echo $$ > \"$0\" && echo $$ > \"$1\" && shift && exec \"$@\"")
        .arg(&procs)
        .arg(cpu_cg.path.join("cgroup.procs"))
        .args(argv)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let done = Arc::new(AtomicBool::new(false));
    let max_ssh = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, max_ssh, path) = (done.clone(), max_ssh.clone(), cg.path.clone());
        std::thread::spawn(move || {
            let cg = Cgroup { path };
            let mut seen = Seen::default();
            while !done.load(Ordering::Relaxed) {
                let pids = cg.pids();
                let n = pids.iter().filter(|&&p| seen.sample(p)).count();
                max_ssh.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            std::mem::forget(cg);
            seen.by_kind()
        })
    };
    let busy_before = busy_cpu();
    let start = Instant::now();
    let child = cmd.spawn().expect("start the measured command");
    let out = wait_with_deadline(child, COMMAND_DEADLINE);
    let wall = start.elapsed();
    let cpu = busy_cpu().saturating_sub(busy_before);
    done.store(true, Ordering::Relaxed);
    let by_kind = sampler.join().unwrap_or_default();
    let peak_bytes = cg.peak_bytes();
    let own_cpu = cpu_cg.usage();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    // Kill what is left (nothing, normally) before the cpu cgroup goes.
    drop(cg);
    drop(cpu_cg);
    Measured {
        wall,
        cpu,
        own_cpu,
        load,
        peak_bytes,
        max_ssh: max_ssh.load(Ordering::Relaxed),
        by_kind,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

/// The processes of a measured command seen so far: CPU time (from
/// `/proc/PID/schedstat`, in ns) by process (pid and start time) and its kind.
#[derive(Default)]
struct Seen {
    /// (pid, start time) → (comm when classified, kind, CPU ns).
    procs: std::collections::HashMap<(i32, u64), (String, String, u64)>,
    /// The command's own process (the first one seen: wavectl, xargs, ansible).
    top: Option<i32>,
}

impl Seen {
    /// Sample one process; whether it is an `ssh`.
    fn sample(&mut self, pid: i32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // schedstat is the main thread's only: the command's own process (wavectl's
        // tokio workers) is counted by its threads.
        let top_now = self.top.unwrap_or(pid);
        let ns: u64 = if pid == top_now {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|t| {
                            std::fs::read_to_string(t.path().join("schedstat"))
                                .ok()?
                                .split_whitespace()
                                .next()?
                                .parse::<u64>()
                                .ok()
                        })
                        .sum()
                })
                .unwrap_or(0)
        } else {
            std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        // comm is in parentheses and may hold spaces: the fields after its last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let comm = head.split_once('(').map_or("?", |(_, c)| c).to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After ')': state(0) ppid(1) ... starttime(19).
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (ppid, start) = (num(1) as i32, num(19));
        let top = *self.top.get_or_insert(pid);
        let is_ssh = comm == "ssh";
        let entry = self
            .procs
            .entry((pid, start))
            .or_insert_with(|| (String::new(), String::new(), 0));
        // Classified again when it execs (a fork of wavectl becomes an `ssh`) or when a
        // login forks its master.
        if entry.0 != comm || entry.1 == "ssh -M (login)" {
            entry.0 = comm.clone();
            entry.1 = if is_ssh {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                let has = |a: &str| args.contains(&a.as_bytes());
                if has("-M") {
                    // `ssh -M -f` logs in, then forks the master and exits.
                    if ppid == top {
                        "ssh -M (login)"
                    } else {
                        "ssh -M (master)"
                    }
                } else if has("-G") {
                    "ssh -G"
                } else if has("-T") {
                    "ssh -T (one command)"
                } else {
                    "ssh"
                }
                .to_string()
            } else if pid == top {
                format!("{comm} (the command)")
            } else {
                comm.clone()
            };
        }
        entry.2 = entry.2.max(ns);
        is_ssh
    }

    /// CPU time and how many processes, by kind, most first.
    fn by_kind(&self) -> Vec<(String, Duration, usize)> {
        let mut m: std::collections::BTreeMap<&str, (u64, usize)> = Default::default();
        for (_, kind, ns) in self.procs.values() {
            let e = m.entry(kind).or_default();
            e.0 += ns;
            e.1 += 1;
        }
        let mut v: Vec<(String, Duration, usize)> = m
            .into_iter()
            .map(|(k, (ns, n))| (k.to_string(), Duration::from_nanos(ns), n))
            .collect();
        v.sort_by_key(|k| std::cmp::Reverse(k.1));
        v
    }
}

/// The machine's busy CPU time so far (user, nice, system, irq, softirq, steal: not
/// idle or iowait), from the first line of `/proc/stat`.
fn busy_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    // SAFETY: sysconf(3) only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(busy * 1000 / hz)
}

fn wait_with_deadline(child: std::process::Child, deadline: Duration) -> std::process::Output {
    let pid = child.id() as i32;
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + deadline;
            while !finished.load(Ordering::Relaxed) {
                if Instant::now() >= until {
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let out = child
        .wait_with_output()
        .expect("wait for the measured command");
    finished.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    out
}

fn wavectl_argv(fleet: &Fleet, state: &Path, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        env!("CARGO_BIN_EXE_wavectl").to_string(),
        "--ssh-config".into(),
        fleet.ssh_config().display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--json".into(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// The events of a `--json` stream that tell of a host that did not do well: a verdict
/// that is not healthy, a host step that failed.
fn bad_events(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            let s = v.to_string();
            v.get("ok") == Some(&serde_json::Value::Bool(false))
                || (v.get("verdict").is_some()
                    && ["\"hung\"", "\"unreachable\"", "\"degraded\""]
                        .iter()
                        .any(|h| s.contains(h)))
        })
        .map(|v| v.to_string())
        .collect()
}

const SCRIPT: &str = "#!/bin/sh\n# benchmark payload: what a small health script does\ndate +%s > /var/tmp/wavectl-bench.last\necho ok\n";
const CHECK: &str = "test -s /etc/hostname";
const INSTALL_PATH: &str = "/usr/local/sbin/wavectl-bench";

fn write_spec(d: &Path, a: &Args) {
    std::fs::write(d.join("payload.sh"), SCRIPT).unwrap();
    std::fs::write(
        d.join("bench.toml"),
        format!(
            r#"name = "bench"
inventory = "inventory.toml"
[script]
source = "payload.sh"
install_path = "{INSTALL_PATH}"
timeout = "60s"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true
[waves]
sizes = [1, "10%", "50%", "100%"]
concurrency = {c}
bake = "0s"
min_runs = 1
[health]
interval = "{p}"
probe_timeout = "{p}"
[[health.check]]
name = "hostname"
command = "{CHECK}"
"#,
            c = a.concurrency,
            p = a.probe_timeout,
        ),
    )
    .unwrap();
}

/// The same staged rollout as an Ansible playbook.
fn write_ansible(d: &Path, fleet: &Fleet, a: &Args) {
    let mut inv = String::from("[fleet]\n");
    for h in fleet.hosts() {
        inv.push_str(h.name());
        inv.push('\n');
    }
    inv.push_str("\n[fleet:vars]\nansible_python_interpreter=/usr/bin/python3\n");
    std::fs::write(d.join("ansible-hosts"), inv).unwrap();
    std::fs::write(
        d.join("ansible.cfg"),
        format!(
            "[defaults]\nforks = {c}\nhost_key_checking = True\ngathering = explicit\n\
             stdout_callback = default\nretry_files_enabled = False\n\
             interpreter_python = /usr/bin/python3\n\
             [ssh_connection]\npipelining = True\n\
             ssh_args = -F {cfg} -o ControlMaster=auto -o ControlPersist=60s\n\
             control_path_dir = /tmp/wvb-ans\n",
            c = a.concurrency,
            cfg = fleet.ssh_config().display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("playbook.yml"),
        format!(
            r#"- name: staged rollout of the benchmark script
  hosts: fleet
  gather_facts: false
  serial: [1, "10%", "50%", "100%"]
  max_fail_percentage: 0
  tasks:
    - name: install the script
      ansible.builtin.copy:
        src: payload.sh
        dest: {INSTALL_PATH}
        mode: "0755"
    - name: schedule it
      ansible.builtin.copy:
        dest: /etc/cron.d/ansible-bench
        content: "*/5 * * * * root {INSTALL_PATH}\n"
        mode: "0644"
    - name: one run
      ansible.builtin.command: {INSTALL_PATH}
    - name: the check
      ansible.builtin.shell: "{CHECK}"
"#
        ),
    )
    .unwrap();
}

/// A virtualenv with ansible-core, under target/ (made once, reused).
fn ansible_playbook() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-ansible");
    let bin = venv.join("bin/ansible-playbook");
    if bin.exists() {
        return bin;
    }
    eprintln!("installing {ANSIBLE} into {} (from PyPI)", venv.display());
    let ok = Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", ANSIBLE])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok && bin.exists(),
        "cannot install {ANSIBLE} into a virtualenv"
    );
    bin
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{} cores ({cpu}), {:.0} GiB; load average before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem as f64 / 1048576.0,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The key exchange ssh negotiates with the fleet's first host (from `ssh -v`).
fn negotiated_kex(fleet: &Fleet) -> String {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .args(["-v", "-o", "LogLevel=DEBUG1"])
        .arg(fleet.hosts()[0].name())
        .arg("true")
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find_map(|l| l.split("kex: algorithm: ").nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

/// CPU hogs beside the measured commands, killed when dropped.
struct Hogs(Vec<std::process::Child>);

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    let a = args();
    let mut fleet = Fleet::start(FleetOptions::numbered(a.hosts)).expect("lab fleet");
    if let Some(kex) = &a.kex {
        fleet.set_kex(kex).expect("--kex");
    }
    let dir = tempfile::Builder::new()
        .prefix("wvb-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let d = dir.path();
    fleet.write_inventory(&d.join("inventory.toml")).unwrap();
    write_spec(d, &a);
    write_ansible(d, &fleet, &a);
    let names: Vec<String> = fleet.hosts().iter().map(|h| h.name().to_string()).collect();
    std::fs::write(d.join("hosts.txt"), names.join("\n") + "\n").unwrap();
    let state = d.join("state");

    if a.hold {
        println!(
            "fleet of {} hosts up: ssh -F {} h01\nbench dir {} (bench.toml, inventory.toml, hosts.txt)\n\
             wavectl --ssh-config {} --state-dir {} apply bench.toml --yes\npress Enter to stop",
            a.hosts,
            fleet.ssh_config().display(),
            d.display(),
            fleet.ssh_config().display(),
            state.display()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = std::io::stdin().lock().lines().next();
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(30 * 60));
        return;
    }

    println!(
        "{} lab hosts, concurrency {}, probe_timeout {}, key exchange {} (negotiated: {}), {} CPU hogs beside; {}",
        a.hosts,
        a.concurrency,
        a.probe_timeout,
        a.kex.as_deref().unwrap_or("OpenSSH's default"),
        negotiated_kex(&fleet),
        a.hogs,
        machine()
    );
    let _hogs = Hogs(
        (0..a.hogs)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .expect("start a CPU hog")
            })
            .collect(),
    );
    let _ = std::io::stdout().flush();
    let run = |what: &str| !a.skip.contains(what);
    let mut rows: Vec<(String, Measured)> = Vec::new();
    println!(
        "{:<8} {:>9} {:>15} {:>12} {:>10} {:>12} {:>10} {:>6}",
        "what",
        "wall",
        "controller cpu",
        "peak memory",
        "most ssh",
        "machine cpu",
        "cores busy",
        "load1"
    );
    let show = |what: &str, m: &Measured| {
        println!(
            "{what:<8} {:>8.2}s {:>14.2}s {:>8.1} MiB {:>10} {:>11.1}s {:>10.2} {:>6}",
            secs(m.wall),
            secs(m.own_cpu),
            mib(m.peak_bytes),
            m.max_ssh,
            secs(m.cpu),
            secs(m.cpu) / secs(m.wall).max(1e-9),
            m.load,
        );
        let sampled: Duration = m.by_kind.iter().map(|k| k.1).sum();
        let parts: Vec<String> = m
            .by_kind
            .iter()
            .map(|(k, t, n)| format!("{k} {:.2}s ×{n}", secs(*t)))
            .chain(std::iter::once(format!(
                "unsampled {:.2}s",
                secs(m.own_cpu.saturating_sub(sampled))
            )))
            .collect();
        println!("         cpu by process: {}", parts.join(", "));
        let _ = std::io::stdout().flush();
    };

    if run("floor") {
        let argv: Vec<String> = [
            "xargs",
            "-a",
            "hosts.txt",
            "-P",
            &a.concurrency.to_string(),
            "-I",
            "{}",
            "ssh",
            "-F",
            &fleet.ssh_config().display().to_string(),
            "-n",
            "{}",
            "true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for i in 1..=a.floors.max(1) {
            let m = measure(&format!("floor{i}"), &argv, d);
            assert_eq!(m.code, Some(0), "floor: {}", m.stderr);
            let name = format!("floor{i}");
            show(&name, &m);
            rows.push((name, m));
        }
    }
    if run("apply") {
        let m = measure(
            "apply",
            &wavectl_argv(&fleet, &state, &["apply", "bench.toml", "--yes"]),
            d,
        );
        let bad = bad_events(&m.stdout);
        show("apply", &m);
        assert!(
            m.code == Some(0) && bad.is_empty(),
            "apply exit {:?}; {} bad verdicts: {bad:#?}\n{}",
            m.code,
            bad.len(),
            m.stderr
        );
        rows.push(("apply".into(), m));
    }
    if run("purge") {
        let c = a.concurrency.to_string();
        let m = measure(
            "purge",
            &wavectl_argv(
                &fleet,
                &state,
                &[
                    "purge",
                    "bench",
                    "--inventory",
                    "inventory.toml",
                    "--concurrency",
                    &c,
                    "--yes",
                ],
            ),
            d,
        );
        let bad = bad_events(&m.stdout);
        show("purge", &m);
        assert!(
            m.code == Some(0) && bad.is_empty(),
            "purge exit {:?}; {} failed hosts: {bad:#?}\n{}",
            m.code,
            bad.len(),
            m.stderr
        );
        rows.push(("purge".into(), m));
    }
    if run("ansible") {
        let bin = ansible_playbook();
        let argv = vec![
            bin.display().to_string(),
            "-i".into(),
            "ansible-hosts".into(),
            "playbook.yml".into(),
        ];
        std::fs::create_dir_all("/tmp/wvb-ans").unwrap();
        let m = measure("ansible", &argv, d);
        assert_eq!(m.code, Some(0), "ansible: {}\n{}", m.stderr, m.stdout);
        show("ansible", &m);
        rows.push(("ansible".into(), m));
    }

    if run("store") {
        store_step(&fleet, d, &show);
    }

    let pick = |w: &str, f: fn(&Measured) -> Duration| {
        let v: Vec<Duration> = rows
            .iter()
            .filter(|(n, _)| n == w || (w == "floor" && n.starts_with("floor")))
            .map(|(_, m)| f(m))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<Duration>() / v.len() as u32)
    };
    let ratio = |x: Option<Duration>, y: Option<Duration>| match (x, y) {
        (Some(x), Some(y)) => format!("{:.2}", secs(x) / secs(y).max(1e-9)),
        _ => "-".into(),
    };
    let wall = |w: &str| pick(w, |m| m.wall);
    let own = |w: &str| pick(w, |m| m.own_cpu);
    println!(
        "controller cpu (floor: the mean of {} runs): apply/floor {}   purge/floor {}   ansible/apply {}",
        a.floors.max(1),
        ratio(own("apply"), own("floor")),
        ratio(own("purge"), own("floor")),
        ratio(own("ansible"), own("apply")),
    );
    println!(
        "wall: apply/floor {}   purge/floor {}   ansible/apply {}",
        ratio(wall("apply"), wall("floor")),
        ratio(wall("purge"), wall("floor")),
        ratio(wall("ansible"), wall("apply")),
    );
}

#[path = "../tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

/// The store step: the apply with each store on the same fleet, one after the other,
/// each from clean hosts; prints both and their ratio (PostgreSQL / state directory).
fn store_step(fleet: &Fleet, d: &Path, show: &dyn Fn(&str, &Measured)) {
    let cluster = pg::Cluster::start();
    cluster.sql("postgres", "CREATE DATABASE bench");
    let url = cluster.url("bench");
    let purge = |state: &Path, store: Option<&str>| {
        let mut args = vec!["purge", "bench", "--inventory", "inventory.toml", "--yes"];
        if let Some(u) = store {
            args.extend(["--store", u]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_wavectl"))
            .args(&wavectl_argv(fleet, state, &args)[1..])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "purge: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let apply = |tag: &str, state: &Path, store: Option<&str>| {
        let mut args = vec!["apply", "bench.toml", "--yes"];
        if let Some(u) = store {
            args.extend(["--store", u]);
        }
        let m = measure(tag, &wavectl_argv(fleet, state, &args), d);
        let bad = bad_events(&m.stdout);
        assert!(
            m.code == Some(0) && bad.is_empty(),
            "{tag}: exit {:?}; bad verdicts: {bad:#?}\n{}",
            m.code,
            m.stderr
        );
        show(tag, &m);
        m.wall
    };
    let init = Command::new(env!("CARGO_BIN_EXE_wavectl"))
        .args(["--store", &url, "store", "init"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "store init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let file_state = d.join("state-file");
    purge(&file_state, None);
    let file = apply("apply-dir", &file_state, None);
    purge(&file_state, None);
    let pg_state = d.join("state-pg");
    let shared = apply("apply-pg", &pg_state, Some(&url));
    purge(&pg_state, Some(&url));
    println!(
        "store: PostgreSQL/state directory {:.2} (contract: at most 1.15)",
        secs(shared) / secs(file).max(1e-9)
    );
}
