//! The lab fleet itself, against real sshd hosts: names, overlays, hangs, namespaces,
//! clean-up. Needs root, sshd and the freezer cgroup (see DESIGN.md "Testing against real hosts").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, fleet, fleet_with};
use wavectl::lab::{Fleet, FleetOptions, HostKind, LabError};

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
        "ssh {host} {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test or run uses.
fn unique(what: &str) -> String {
    format!(
        "wlab-test-{what}-{}-{:?}",
        std::process::id(),
        Instant::now()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
}

#[test]
fn each_host_answers_ssh_with_its_own_hostname() {
    let fleet = fleet(3);
    for host in fleet.hosts() {
        assert_eq!(
            ssh_stdout(&fleet, host.name(), "hostname").trim(),
            host.name()
        );
        assert_eq!(
            String::from_utf8_lossy(&host.exec("hostname").unwrap().stdout).trim(),
            host.name()
        );
    }
}

#[test]
fn a_write_lands_only_in_that_hosts_overlay() {
    let fleet = fleet(3);
    let file = format!("/etc/{}", unique("marker"));
    ssh_stdout(&fleet, "h01", &format!("echo from-h01 > {file}"));
    let seen = std::fs::read_to_string(fleet.host("h01").path(&file)).unwrap();
    assert_eq!(seen, "from-h01\n");
    assert!(!fleet.host("h02").path(&file).exists(), "leaked to h02");
    assert!(!Path::new(&file).exists(), "leaked to the real /etc");
    assert_eq!(
        ssh_stdout(
            &fleet,
            "h02",
            &format!("cat {file} 2>/dev/null || echo absent")
        ),
        "absent\n"
    );
    // The fleet's own directory is hidden by the host's private /tmp.
    let dir = fleet.dir().display().to_string();
    assert_eq!(
        ssh_stdout(
            &fleet,
            "h03",
            &format!("test -e {dir} && echo seen || echo hidden")
        ),
        "hidden\n"
    );
}

#[test]
fn a_frozen_host_times_out_while_others_answer_and_thaw_brings_it_back() {
    let fleet = fleet(3);
    let h02 = fleet.host("h02");
    h02.freeze().unwrap();
    assert!(h02.is_frozen().unwrap());
    let start = Instant::now();
    let out = ssh(&fleet, "h02", "true");
    assert!(!out.status.success(), "a frozen host answered");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(ssh_stdout(&fleet, "h01", "hostname").trim(), "h01");
    // Files stay readable from outside while the host is frozen; commands inside hang.
    assert!(h02.path("/etc/ssh/lab_sshd_config").exists());
    let err = h02
        .exec_within("true", Duration::from_millis(500))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    h02.thaw().unwrap();
    assert_eq!(ssh_stdout(&fleet, "h02", "hostname").trim(), "h02");
}

#[test]
fn a_host_can_freeze_itself_from_inside() {
    let fleet = fleet(2);
    let h01 = fleet.host("h01");
    let script = "cg=$(awk -F: '$2 ~ /freezer/ {print $3}' /proc/self/cgroup); \
                  echo FROZEN > /sys/fs/cgroup/freezer$cg/freezer.state";
    let mut session = fleet
        .ssh("h01")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let frozen = eventually(Duration::from_secs(10), || h01.is_frozen().unwrap_or(false));
    let _ = session.kill();
    let _ = session.wait();
    assert!(frozen, "h01 did not freeze itself");
    assert!(
        !ssh(&fleet, "h01", "true").status.success(),
        "a self-frozen host answered"
    );
    assert_eq!(ssh_stdout(&fleet, "h02", "hostname").trim(), "h02");
    h01.thaw().unwrap();
    assert_eq!(ssh_stdout(&fleet, "h01", "hostname").trim(), "h01");
}

#[test]
fn processes_of_one_host_are_invisible_from_another() {
    let fleet = fleet(2);
    let marker = "4242.5";
    let out = fleet
        .host("h01")
        .exec(&format!("sleep {marker} >/dev/null 2>&1 &"))
        .unwrap();
    assert!(out.status.success());
    let on_h01 = ssh_stdout(&fleet, "h01", "ps -eo args");
    assert!(on_h01.contains(&format!("sleep {marker}")), "{on_h01}");
    let on_h02 = ssh_stdout(
        &fleet,
        "h02",
        "ps -eo args; cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
    );
    assert!(!on_h02.contains(&format!("sleep {marker}")), "{on_h02}");
    // A kill of every process on h02 cannot reach h01's sleep.
    let _ = ssh(&fleet, "h02", "pkill -KILL -f 'sleep 4242' ; true");
    let still = fleet
        .host("h01")
        .exec("pgrep -f 'sleep 4242' >/dev/null && echo alive")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&still.stdout), "alive\n");
}

#[test]
fn kill_takes_a_host_down_and_restart_boots_it_with_its_files() {
    let fleet = fleet(2);
    let h01 = fleet.host("h01");
    ssh_stdout(
        &fleet,
        "h01",
        "mkdir -p /var/lib/wlab && echo kept > /var/lib/wlab/f && echo gone > /tmp/f",
    );
    let boot_id = "cat /proc/sys/kernel/random/boot_id";
    let before = ssh_stdout(&fleet, "h01", boot_id);
    assert_ne!(
        before,
        ssh_stdout(&fleet, "h02", boot_id),
        "hosts share a boot id"
    );
    h01.kill().unwrap();
    assert_eq!(h01.pid(), None);
    let start = Instant::now();
    assert!(
        !ssh(&fleet, "h01", "true").status.success(),
        "a killed host answered"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    h01.restart().unwrap();
    assert_eq!(
        ssh_stdout(&fleet, "h01", "cat /var/lib/wlab/f; ls /tmp"),
        "kept\n"
    );
    assert_ne!(
        ssh_stdout(&fleet, "h01", boot_id),
        before,
        "a new boot, the same boot id"
    );
    assert_eq!(ssh_stdout(&fleet, "h02", "hostname").trim(), "h02");
}

#[test]
fn stop_leaves_no_process_cgroup_or_directory_behind() {
    let mut fleet = fleet(3);
    fleet.host("h02").freeze().unwrap();
    fleet
        .host("h03")
        .exec("sleep 999 >/dev/null 2>&1 &")
        .unwrap();
    let pids: Vec<u32> = fleet
        .hosts()
        .iter()
        .map(|h| h.pid().expect("running"))
        .collect();
    let cgroups: Vec<PathBuf> = fleet
        .hosts()
        .iter()
        .map(|h| h.cgroup().to_owned())
        .collect();
    let fleet_cgroup = cgroups[0].parent().unwrap().to_owned();
    let dir = fleet.dir().to_owned();
    let id = dir.file_name().unwrap().to_str().unwrap().to_owned();

    fleet.stop().unwrap();
    fleet.stop().unwrap(); // idempotent

    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "sshd {pid} survived"
        );
    }
    for cg in cgroups.iter().chain([&fleet_cgroup]) {
        assert!(!cg.exists(), "{} left behind", cg.display());
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
}

#[test]
fn a_cron_host_runs_cron_inside_it_with_its_own_cron_d() {
    let fleet = Fleet::start_kind(FleetOptions::numbered(2), HostKind::Cron).unwrap();
    // cron runs inside each host (its namespaces, its freezer cgroup: a frozen host's cron
    // is frozen too).
    for host in fleet.hosts() {
        assert_eq!(host.kind(), HostKind::Cron);
        let crons: Vec<u32> = (host.pids().unwrap().into_iter())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "cron\n")
            })
            .collect();
        assert_eq!(crons.len(), 1, "{}: cron processes {crons:?}", host.name());
        assert_eq!(ssh_stdout(&fleet, host.name(), "pgrep -xc cron"), "1\n");
    }
    // It reads the host's /etc/cron.d through the overlay: an @reboot line of h01 runs
    // when h01 boots, and not when h02 does. (Minute lines: see lab_systemd.rs.)
    ssh_stdout(
        &fleet,
        "h01",
        "echo '@reboot root hostname >> /var/tmp/wlab-boot' > /etc/cron.d/wlab-test",
    );
    for host in fleet.hosts() {
        host.restart().unwrap();
    }
    let ran = fleet.host("h01").path("/var/tmp/wlab-boot");
    assert!(
        eventually(Duration::from_secs(30), || std::fs::read_to_string(&ran)
            .is_ok_and(|t| t == "h01\n")),
        "cron did not run h01's @reboot line once"
    );
    let h02 = fleet.host("h02");
    assert!(!h02.path("/etc/cron.d/wlab-test").exists());
    assert!(!h02.path("/var/tmp/wlab-boot").exists(), "ran on h02");
}

#[test]
fn inventory_names_every_host_by_its_alias_with_labels() {
    let fleet = fleet_with(&[
        ("db-1", &[("role", "db"), ("cluster", "pg")]),
        ("web-1", &[]),
    ]);
    let path = fleet.dir().join("inventory.toml");
    fleet.write_inventory(&path).unwrap();
    let inv: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(inv["defaults"]["user"].as_str(), Some("root"));
    let hosts = inv["host"].as_array().unwrap();
    assert_eq!(hosts[0]["name"].as_str(), Some("db-1"));
    assert_eq!(hosts[0]["address"].as_str(), Some("db-1"));
    assert_eq!(hosts[0]["labels"]["cluster"].as_str(), Some("pg"));
    assert_eq!(hosts[1]["address"].as_str(), Some("web-1"));
    assert_eq!(ssh_stdout(&fleet, "db-1", "hostname").trim(), "db-1");
}

#[test]
fn bad_options_are_refused_before_anything_starts() {
    let err = Fleet::start(FleetOptions {
        names: vec!["a/b".into()],
        labels: vec![],
    })
    .unwrap_err();
    assert!(matches!(err, LabError::BadOptions(_)), "{err}");
    let twice = FleetOptions {
        names: vec!["x".into(), "x".into()],
        labels: vec![],
    };
    assert!(matches!(
        Fleet::start(twice).unwrap_err(),
        LabError::BadOptions(_)
    ));
    let labels = FleetOptions {
        names: vec!["x".into()],
        labels: vec![Default::default(); 2],
    };
    assert!(matches!(
        Fleet::start(labels).unwrap_err(),
        LabError::BadOptions(_)
    ));
}

/// Not a check: prints how long fleets take to start (`--ignored --nocapture`).
#[test]
#[ignore]
fn start_time() {
    for n in [3, 30] {
        let start = Instant::now();
        let mut fleet = Fleet::start(FleetOptions::numbered(n)).unwrap();
        let started = start.elapsed();
        let answered = (fleet.hosts().iter())
            .all(|h| ssh_stdout(&fleet, h.name(), "hostname").trim() == h.name());
        let stop = Instant::now();
        fleet.stop().unwrap();
        println!(
            "{n} hosts: start {started:?}, stop {:?}, all answered: {answered}",
            stop.elapsed()
        );
    }
}

/// Run by `stale_fleets_of_dead_processes_are_cleaned_up` in a child process, which it
/// then kills: starts a fleet, prints its directory and sshd pids, and waits to die.
#[test]
#[ignore]
fn child_that_starts_a_fleet_and_hangs() {
    if std::env::var_os("WLAB_STALE_CHILD").is_none() {
        return;
    }
    let fleet = fleet(2);
    let pids: Vec<String> = fleet
        .hosts()
        .iter()
        .map(|h| h.pid().unwrap().to_string())
        .collect();
    fleet.host("h02").freeze().unwrap();
    println!("FLEET {} {}", fleet.dir().display(), pids.join(" "));
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn stale_fleets_of_dead_processes_are_cleaned_up() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_that_starts_a_fleet_and_hangs",
            "--ignored",
            "--nocapture",
        ])
        .env("WLAB_STALE_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("FLEET ")))
        .expect("child fleet");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut fields = line.split_whitespace().skip(1);
    let dir = PathBuf::from(fields.next().unwrap());
    let pids: Vec<String> = fields.map(str::to_owned).collect();
    let id = dir.file_name().unwrap().to_owned();
    let cg = Path::new("/sys/fs/cgroup/freezer/wavectl-lab").join(&id);
    assert!(
        dir.exists() && cg.exists(),
        "the killed child's fleet should still be there"
    );

    // Another test's Fleet::start may clean it first; either way it must be gone.
    wavectl::lab::cleanup_stale().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!cg.exists(), "{} left behind", cg.display());
    for pid in pids {
        let gone = eventually(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z "))
        });
        assert!(gone, "sshd {pid} of the stale fleet survived");
    }
}
