//! Systemd and cron lab hosts (and mixed fleets), against real hosts: boot, units,
//! timers, cron, reboot, freeze, clean-up. Needs root, sshd, cron, systemd and cgroup v1 (freezer and
//! name=systemd): see DESIGN.md "Testing against real hosts".

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::eventually;
use wavectl::lab::{Fleet, FleetOptions, HostKind, LabError, LabHost};

/// How long a scheduled job may take to show its effect: generous, the machine is shared.
const JOB_DEADLINE: Duration = Duration::from_secs(60);
/// A cron job runs at the next minute boundary: up to 60 s, plus load.
const CRON_DEADLINE: Duration = Duration::from_secs(150);

fn systemd_fleet(n: usize) -> Fleet {
    Fleet::start_kind(FleetOptions::numbered(n), HostKind::Systemd).expect("start lab fleet")
}

/// `ssh -F <config> -o ConnectTimeout=2 <host> <cmd>`.
fn ssh(fleet: &Fleet, host: &str, cmd: &str) -> Output {
    fleet
        .ssh(host)
        .args(["-o", "ConnectTimeout=2", "--", cmd])
        .output()
        .expect("run ssh")
}

fn ssh_stdout(fleet: &Fleet, host: &str, cmd: &str) -> String {
    let out = ssh(fleet, host, cmd);
    assert!(
        out.status.success(),
        "ssh {host} {cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sh -c cmd` inside the host; panics unless it succeeds; its stdout.
fn exec_ok(host: &LabHost, cmd: &str) -> String {
    let out = host.exec(cmd).expect("exec");
    assert!(
        out.status.success(),
        "{} {cmd:?}: {}{}",
        host.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemctl --failed`: the failed units' names.
fn failed_units(host: &LabHost) -> Vec<String> {
    let out = host
        .systemctl(&["--failed", "--plain", "--no-legend", "--no-pager"])
        .expect("systemctl --failed");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The sub-directories (cgroups) of a cgroup, recursively, relative to it.
fn sub_cgroups(cg: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![cg.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let path = entry.path();
                found.insert(path.strip_prefix(cg).unwrap().display().to_string());
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn a_systemd_host_boots_to_running_with_sshd_and_cron_as_units() {
    let fleet = systemd_fleet(2);
    let h01 = fleet.host("h01");
    assert_eq!(h01.kind(), HostKind::Systemd);
    assert_eq!(h01.wait_running().unwrap(), "running");
    assert_eq!(failed_units(h01), Vec::<String>::new());
    assert_eq!(
        ssh_stdout(&fleet, "h01", "hostname; ps -o comm= -p 1").trim(),
        "h01\nsystemd"
    );
    // sshd and cron are systemd's units; the lab's sshd config keeps sshd's defaults.
    assert_eq!(
        ssh_stdout(
            &fleet,
            "h01",
            "systemctl is-active ssh.service cron.service"
        ),
        "active\nactive\n"
    );
    let sshd = ssh_stdout(&fleet, "h01", "sshd -T -f /etc/ssh/lab_sshd_config");
    for line in ["maxsessions 10", "maxstartups 10:30:100", "subsystem sftp"] {
        assert!(sshd.contains(line), "{line:?} not in sshd -T:\n{sshd}");
    }
    assert_eq!(
        ssh_stdout(&fleet, "h01", "cat /root/.bashrc"),
        "# wavectl lab host: a plain .bashrc\n"
    );
    // A terminal (the host's own devpts) and sftp work as on a real server.
    let tty = fleet.ssh("h01").args(["-tt", "tty"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&tty.stdout).starts_with("/dev/pts/"),
        "{tty:?}"
    );
    let mut sftp = std::process::Command::new("sftp")
        .arg("-F")
        .arg(fleet.ssh_config())
        .args(["-b", "-", "h01"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sftp.stdin
        .take()
        .unwrap()
        .write_all(b"ls /etc/hostname\n")
        .unwrap();
    let listed = sftp.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("/etc/hostname"),
        "{listed:?}"
    );
    // Each host has its own machine-id, /tmp and /run; the fleet dir is hidden.
    let ids: BTreeSet<String> = ["h01", "h02"]
        .iter()
        .map(|h| ssh_stdout(&fleet, h, "cat /etc/machine-id"))
        .chain([std::fs::read_to_string("/etc/machine-id").unwrap_or_default()])
        .collect();
    assert_eq!(ids.len(), 3, "machine-ids not distinct: {ids:?}");
    let dir = fleet.dir().display().to_string();
    assert_eq!(
        ssh_stdout(
            &fleet,
            "h01",
            &format!("findmnt -no FSTYPE /tmp; test -e {dir} && echo seen || echo hidden")
        ),
        "tmpfs\nhidden\n"
    );
    // systemd runs in the host's own name=systemd hierarchy and leaves the freezer alone:
    // every process of the host stays in its freezer cgroup itself.
    let units = sub_cgroups(h01.systemd_cgroup().unwrap());
    for unit in [
        "init.scope",
        "system.slice/ssh.service",
        "system.slice/cron.service",
    ] {
        assert!(units.contains(unit), "{unit} not in {units:?}");
    }
    assert_eq!(sub_cgroups(h01.cgroup()), BTreeSet::new());
    let in_freezer = std::fs::read_to_string(h01.cgroup().join("cgroup.procs")).unwrap();
    assert!(
        in_freezer.lines().count() >= 4,
        "systemd, journald, sshd and cron at least: {in_freezer}"
    );
}

#[test]
fn a_two_second_timer_fires_and_a_failing_unit_shows_in_failed() {
    let fleet = systemd_fleet(1);
    let h01 = fleet.host("h01");
    ssh_stdout(
        &fleet,
        "h01",
        "cat > /etc/systemd/system/wlab-tick.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'date +%%s >> /var/tmp/wlab-tick'
EOF
cat > /etc/systemd/system/wlab-tick.timer <<'EOF'
[Timer]
OnCalendar=*:*:0/2
AccuracySec=1s
[Install]
WantedBy=timers.target
EOF
cat > /etc/systemd/system/wlab-fail.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/false
EOF
systemctl daemon-reload && systemctl enable --now wlab-tick.timer",
    );
    let ticks = h01.path("/var/tmp/wlab-tick");
    let fired = eventually(JOB_DEADLINE, || {
        std::fs::read_to_string(&ticks).is_ok_and(|t| t.lines().count() >= 2)
    });
    assert!(
        fired,
        "the timer did not fire twice: {}",
        exec_ok(
            h01,
            "systemctl status wlab-tick.timer wlab-tick.service --no-pager; true"
        )
    );

    let out = ssh(&fleet, "h01", "systemctl start wlab-fail.service");
    assert!(!out.status.success(), "wlab-fail.service started");
    assert_eq!(failed_units(h01), vec!["wlab-fail.service".to_string()]);
    let over_ssh = ssh_stdout(&fleet, "h01", "systemctl --failed --no-legend --plain");
    assert!(over_ssh.contains("wlab-fail.service"), "{over_ssh}");
    assert_eq!(h01.wait_running().unwrap(), "degraded");
    ssh_stdout(&fleet, "h01", "systemctl reset-failed");
    assert_eq!(h01.wait_running().unwrap(), "running");
}

/// One wait for a minute boundary serves both kinds of host that run cron.
#[test]
fn a_cron_d_line_runs_only_on_its_own_host_under_cron_and_under_systemd() {
    let fleet = Fleet::start_kinds(
        FleetOptions::numbered(3),
        vec![HostKind::Cron, HostKind::Cron, HostKind::Systemd],
    )
    .unwrap();
    let line = "echo '* * * * * root hostname >> /var/tmp/wlab-cron' > /etc/cron.d/wlab-test";
    ssh_stdout(&fleet, "h01", line);
    ssh_stdout(&fleet, "h03", line);
    let start = Instant::now();
    for name in ["h01", "h03"] {
        let ran = fleet.host(name).path("/var/tmp/wlab-cron");
        let line = format!("{name}\n");
        assert!(
            eventually(CRON_DEADLINE.saturating_sub(start.elapsed()), || {
                std::fs::read_to_string(&ran).is_ok_and(|t| t.starts_with(&line))
            }),
            "cron did not run the line on {name}"
        );
    }
    eprintln!("cron ran after {:?}", start.elapsed());
    // h02's cron woke at the same minute: it neither has the line nor ran it.
    let h02 = fleet.host("h02");
    assert!(!h02.path("/etc/cron.d/wlab-test").exists());
    assert!(!h02.path("/var/tmp/wlab-cron").exists(), "ran on h02");
}

#[test]
fn reboot_keeps_etc_and_var_and_empties_run_and_tmp() {
    let fleet = systemd_fleet(1);
    let h01 = fleet.host("h01");
    ssh_stdout(
        &fleet,
        "h01",
        "echo kept > /etc/wlab-etc && mkdir -p /var/lib/wlab && echo kept > /var/lib/wlab/f \
         && echo gone > /run/wlab-run && echo gone > /tmp/wlab-tmp \
         && echo '@reboot root echo booted >> /var/tmp/wlab-reboots' > /etc/cron.d/wlab-boot",
    );
    let before = h01.pid().unwrap();
    let boot_id = ssh_stdout(&fleet, "h01", "cat /proc/sys/kernel/random/boot_id");

    h01.reboot().unwrap();

    assert_ne!(h01.pid().unwrap(), before, "the same systemd still runs");
    assert_eq!(h01.wait_running().unwrap(), "running");
    assert_eq!(
        ssh_stdout(
            &fleet,
            "h01",
            "cat /etc/wlab-etc /var/lib/wlab/f; ls /run/wlab-run /tmp/wlab-tmp 2>/dev/null | wc -l"
        ),
        "kept\nkept\n0\n"
    );
    // Each boot has its own boot id (the kernel's, this machine's, does not change), so
    // the journal (kept in the host's /var) tells the two boots apart.
    let new_id = ssh_stdout(&fleet, "h01", "cat /proc/sys/kernel/random/boot_id");
    assert_ne!(new_id, boot_id);
    let machine_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_ne!(new_id, machine_id);
    let boots = ssh_stdout(&fleet, "h01", "journalctl --list-boots --no-pager");
    for id in [&boot_id, &new_id] {
        assert!(
            boots.contains(&id.trim().replace('-', "")),
            "{id} not in {boots}"
        );
    }
    // Boot-time work runs again: cron's @reboot line.
    let reboots = h01.path("/var/tmp/wlab-reboots");
    assert!(
        eventually(JOB_DEADLINE, || std::fs::read_to_string(&reboots)
            .is_ok_and(|t| t == "booted\n")),
        "@reboot did not run once after the reboot"
    );
}

#[test]
fn a_frozen_systemd_host_stalls_ssh_and_thaw_recovers() {
    let fleet = systemd_fleet(2);
    let h01 = fleet.host("h01");
    // A unit started after boot is in the host's freezer cgroup too.
    ssh_stdout(
        &fleet,
        "h01",
        "systemd-run --unit=wlab-sleep sleep 4242.5 && systemctl is-active wlab-sleep",
    );
    let sleep_pid = exec_ok(h01, "systemctl show -P MainPID wlab-sleep");
    assert_ne!(sleep_pid.trim(), "0");
    let outside: Vec<u32> = h01.pids().unwrap();
    let sleeping = outside.iter().any(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.ends_with(b"sleep\x004242.5\x00"))
    });
    assert!(
        sleeping,
        "the unit's process is not in the host's freezer cgroup"
    );

    h01.freeze().unwrap();
    assert!(h01.is_frozen().unwrap());
    let out = ssh(&fleet, "h01", "true");
    assert!(!out.status.success(), "a frozen host answered");
    assert_eq!(ssh_stdout(&fleet, "h02", "hostname").trim(), "h02");
    let err = h01
        .exec_within("systemctl is-system-running", Duration::from_millis(500))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    h01.thaw().unwrap();
    assert_eq!(ssh_stdout(&fleet, "h01", "hostname").trim(), "h01");
    assert_eq!(h01.wait_running().unwrap(), "running");
}

#[test]
fn a_mixed_fleet_has_one_kind_per_host() {
    let kinds = vec![HostKind::Systemd, HostKind::Cron, HostKind::Sshd];
    let fleet = Fleet::start_kinds(FleetOptions::numbered(3), kinds.clone()).unwrap();
    let mut seen = Vec::new();
    for host in fleet.hosts() {
        let out = ssh_stdout(
            &fleet,
            host.name(),
            "hostname; ps -o comm= -p 1; pgrep -x cron >/dev/null && echo cron || echo no-cron",
        );
        seen.push(out);
    }
    assert_eq!(
        seen,
        [
            "h01\nsystemd\ncron\n",
            "h02\nsshd\ncron\n",
            "h03\nsshd\nno-cron\n"
        ]
    );
    let got: Vec<HostKind> = fleet.hosts().iter().map(|h| h.kind()).collect();
    assert_eq!(got, kinds);
    assert!(fleet.host("h02").wait_running().is_err());
    assert!(fleet.host("h03").systemd_cgroup().is_none());
}

#[test]
fn dropping_a_fleet_leaves_nothing_behind_and_spares_this_machines_tmp() {
    let canary = PathBuf::from(format!("/tmp/wlab-canary-{}", std::process::id()));
    std::fs::write(&canary, "still here\n").unwrap();
    let fleet = Fleet::start_kinds(
        FleetOptions::numbered(3),
        vec![HostKind::Systemd, HostKind::Systemd, HostKind::Cron],
    )
    .unwrap();
    // Work that systemd and cron would clean or stop: a unit, a frozen host.
    ssh_stdout(&fleet, "h01", "systemd-run --unit=wlab-sleep sleep 999");
    fleet.host("h02").freeze().unwrap();
    let pids: Vec<u32> = fleet
        .hosts()
        .iter()
        .flat_map(|h| h.pids().unwrap())
        .collect();
    let cgroups: Vec<PathBuf> = fleet
        .hosts()
        .iter()
        .flat_map(|h| {
            [
                Some(h.cgroup().to_owned()),
                h.systemd_cgroup().map(Path::to_owned),
            ]
        })
        .flatten()
        .collect();
    assert_eq!(cgroups.len(), 5);
    let dir = fleet.dir().to_owned();
    let id = dir.file_name().unwrap().to_str().unwrap().to_owned();

    drop(fleet);

    for pid in pids {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        assert!(gone, "process {pid} survived");
    }
    for cg in &cgroups {
        assert!(!cg.exists(), "{} left behind", cg.display());
    }
    for root in ["freezer", "systemd"] {
        let fleet_cg = Path::new("/sys/fs/cgroup")
            .join(root)
            .join("wavectl-lab")
            .join(&id);
        assert!(!fleet_cg.exists(), "{} left behind", fleet_cg.display());
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    let strays: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("cgroup")).ok())
        .filter(|cg| cg.contains(&id))
        .collect();
    assert!(
        strays.is_empty(),
        "processes still in the fleet's cgroups: {strays:?}"
    );
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "still here\n");
    std::fs::remove_file(&canary).unwrap();
}

#[test]
fn a_unit_can_freeze_its_own_host_as_on_a_plain_host() {
    let fleet = systemd_fleet(1);
    let h01 = fleet.host("h01");
    // The script a rollout uses to hang its host: the freezer hierarchy is mounted in
    // a systemd host too, rooted at the host's own freezer cgroup.
    let script = "cg=$(awk -F: '$2 ~ /freezer/ {print $3}' /proc/self/cgroup); \
                  echo FROZEN > /sys/fs/cgroup/freezer$cg/freezer.state";
    // In the background: the host (this command too) may freeze before it returns.
    exec_ok(
        h01,
        &format!("systemd-run --unit=wlab-hang /bin/sh -c \"{script}\" >/dev/null 2>&1 &"),
    );
    assert!(
        eventually(JOB_DEADLINE, || h01.is_frozen().unwrap_or(false)),
        "h01 did not freeze itself"
    );
    assert!(
        !ssh(&fleet, "h01", "true").status.success(),
        "a frozen host answered"
    );
    h01.thaw().unwrap();
    assert_eq!(ssh_stdout(&fleet, "h01", "hostname").trim(), "h01");
}

#[test]
fn a_systemd_host_whose_port_was_taken_fails_to_boot_and_says_why() {
    let fleet = systemd_fleet(1);
    let h01 = fleet.host("h01");
    h01.kill().unwrap();
    let taken = std::net::TcpListener::bind(("127.0.0.1", h01.port())).unwrap();
    let err = h01.restart().unwrap_err();
    assert!(matches!(err, LabError::HostStart { .. }), "{err}");
    assert!(err.to_string().contains("ssh.service failed"), "{err}");
    assert!(err.to_string().contains("Address already in use"), "{err}");
    assert_eq!(
        h01.pids().unwrap(),
        Vec::<u32>::new(),
        "a failed boot left processes"
    );
    drop(taken);
    h01.restart().unwrap();
    assert_eq!(ssh_stdout(&fleet, "h01", "hostname").trim(), "h01");
}

/// Run by `stale_systemd_fleets_of_dead_processes_are_cleaned_up` in a child process,
/// which it then kills: starts a fleet, prints its directory, and waits to die.
#[test]
#[ignore]
fn child_that_starts_a_systemd_fleet_and_hangs() {
    if std::env::var_os("WLAB_STALE_SYSTEMD_CHILD").is_none() {
        return;
    }
    let fleet = Fleet::start_kinds(
        FleetOptions::numbered(2),
        vec![HostKind::Systemd, HostKind::Cron],
    )
    .unwrap();
    fleet.host("h01").freeze().unwrap();
    println!("FLEET {}", fleet.dir().display());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn stale_systemd_fleets_of_dead_processes_are_cleaned_up() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_that_starts_a_systemd_fleet_and_hangs",
            "--ignored",
            "--nocapture",
        ])
        .env("WLAB_STALE_SYSTEMD_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("FLEET ")))
        .expect("child fleet");
    child.kill().unwrap();
    child.wait().unwrap();
    let dir = PathBuf::from(line.trim_start_matches("FLEET "));
    let id = dir.file_name().unwrap().to_owned();
    let cgroups: Vec<PathBuf> = ["freezer", "systemd"]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join("wavectl-lab")
                .join(&id)
        })
        .collect();
    assert!(
        dir.exists() && cgroups.iter().all(|c| c.exists()),
        "the killed child's fleet should still be there"
    );

    // Another test's Fleet::start may clean it first; either way it must be gone.
    wavectl::lab::cleanup_stale().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    for cg in &cgroups {
        assert!(!cg.exists(), "{} left behind", cg.display());
    }
    let id = id.to_str().unwrap();
    let live = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(id))
            })
            .count()
    };
    assert!(
        eventually(Duration::from_secs(5), || live() == 0),
        "processes of the stale fleet survived"
    );
}
