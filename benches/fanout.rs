//! Benchmark: wavectl at fleet scale against a floor measured in the same run.
//!
//! One run brings up N lab hosts (real `sshd`s, see `src/lab`) and measures, one after
//! another on the same fleet and with the same ssh configuration (the fleet's
//! `ssh_config`) and concurrency C:
//!
//! 1. **floor**: `ssh HOST true` to every host, `xargs -P C` — one login per host;
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
//! It prints wall times, the ratios apply/floor, purge/floor and ansible/apply, the CPU
//! time the whole machine spent during each command (the lab hosts share its cores:
//! their work is in it) and how many cores that kept busy, the peak memory of wavectl
//! together with its `ssh` processes (the high-water mark of a memory cgroup that holds
//! wavectl and everything it starts: the forked `ssh` masters stay in it), the most
//! `ssh` processes open at once, and whether any verdict was not healthy. It asserts nothing about time: timings on a shared machine are not
//! pass/fail. It does fail when a wavectl command does not end as it should (a false
//! verdict, an error of wavectl's own), since then the figures mean nothing.
//!
//! ```text
//! cargo bench --bench fanout                                   # 200 hosts, C = 50, all four
//! cargo bench --bench fanout -- --hosts 1000 --skip apply,ansible
//! cargo bench --bench fanout -- --hosts 200 --concurrency 200 --probe-timeout 2s --skip purge,ansible
//! ```
//!
//! Options: `--hosts N` (200), `--concurrency C` (50), `--probe-timeout D` ("5s"),
//! `--skip LIST` (any of floor, apply, purge, ansible, store), `--hold` (start the fleet, print
//! how to reach it, and wait for Enter or 30 minutes: for profiling by hand). Needs
//! root, openssh-server and cgroup v1 (memory, freezer), like the tests.

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
}

fn args() -> Args {
    let mut a = Args {
        hosts: 200,
        concurrency: 50,
        probe_timeout: "5s".into(),
        skip: HashSet::new(),
        hold: false,
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

/// What one measured command did.
struct Measured {
    wall: Duration,
    /// CPU time the whole machine spent while it ran (every process, the lab hosts'
    /// too: they share the controller's cores), from `/proc/stat`.
    cpu: Duration,
    peak_bytes: u64,
    max_ssh: usize,
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Run `argv` in a fresh memory cgroup, sampling how many `ssh` processes it holds.
fn measure(tag: &str, argv: &[String], dir: &Path) -> Measured {
    let cg = Cgroup::new(tag);
    let procs = cg.path.join("cgroup.procs");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(&procs)
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
            while !done.load(Ordering::Relaxed) {
                let n = cg
                    .pids()
                    .iter()
                    .filter(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.trim() == "ssh")
                    })
                    .count();
                max_ssh.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            std::mem::forget(cg);
        })
    };
    let busy_before = busy_cpu();
    let start = Instant::now();
    let child = cmd.spawn().expect("start the measured command");
    let out = wait_with_deadline(child, COMMAND_DEADLINE);
    let wall = start.elapsed();
    let cpu = busy_cpu().saturating_sub(busy_before);
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Measured {
        wall,
        cpu,
        peak_bytes: cg.peak_bytes(),
        max_ssh: max_ssh.load(Ordering::Relaxed),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
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

fn main() {
    let a = args();
    let fleet = Fleet::start(FleetOptions::numbered(a.hosts)).expect("lab fleet");
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
        "{} lab hosts, concurrency {}; {}",
        a.hosts,
        a.concurrency,
        machine()
    );
    let _ = std::io::stdout().flush();
    let run = |what: &str| !a.skip.contains(what);
    let mut rows: Vec<(&str, Measured)> = Vec::new();
    println!(
        "{:<10} {:>10} {:>16} {:>14} {:>12} {:>11}",
        "what", "wall", "peak memory", "most ssh open", "machine cpu", "cores busy"
    );
    let show = |what: &str, m: &Measured| {
        println!(
            "{what:<10} {:>9.2}s {:>12.1} MiB {:>14} {:>11.1}s {:>11.2}",
            secs(m.wall),
            mib(m.peak_bytes),
            m.max_ssh,
            secs(m.cpu),
            secs(m.cpu) / secs(m.wall).max(1e-9)
        );
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
        let m = measure("floor", &argv, d);
        assert_eq!(m.code, Some(0), "floor: {}", m.stderr);
        show("floor", &m);
        rows.push(("floor", m));
    }
    if run("apply") {
        let m = measure(
            "apply",
            &wavectl_argv(&fleet, &state, &["apply", "bench.toml", "--yes"]),
            d,
        );
        let bad = bad_events(&m.stdout);
        assert!(
            m.code == Some(0) && bad.is_empty(),
            "apply exit {:?}; bad verdicts: {bad:#?}\n{}",
            m.code,
            m.stderr
        );
        show("apply", &m);
        rows.push(("apply", m));
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
        assert!(
            m.code == Some(0) && bad.is_empty(),
            "purge exit {:?}; failed hosts: {bad:#?}\n{}",
            m.code,
            m.stderr
        );
        show("purge", &m);
        rows.push(("purge", m));
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
        rows.push(("ansible", m));
    }

    if run("store") {
        store_step(&fleet, d, &show);
    }

    let get = |w: &str| rows.iter().find(|(n, _)| *n == w).map(|(_, m)| m.wall);
    let cpu = |w: &str| rows.iter().find(|(n, _)| *n == w).map(|(_, m)| m.cpu);
    let ratio = |x: Option<Duration>, y: Option<Duration>| match (x, y) {
        (Some(x), Some(y)) => format!("{:.2}", secs(x) / secs(y)),
        _ => "-".into(),
    };
    println!(
        "apply/floor {}   purge/floor {}   ansible/apply {}",
        ratio(get("apply"), get("floor")),
        ratio(get("purge"), get("floor")),
        ratio(get("ansible"), get("apply")),
    );
    println!(
        "machine cpu: apply/floor {}   purge/floor {}",
        ratio(cpu("apply"), cpu("floor")),
        ratio(cpu("purge"), cpu("floor")),
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
