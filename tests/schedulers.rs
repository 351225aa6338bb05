//! Rollouts whose runs come from a real scheduler: a seconds-granular systemd timer on
//! systemd lab hosts (`min_runs` > 1 counted from the timer's runs, then `purge`), a
//! cron line on cron lab hosts, and `purge --path` of a hand-made unit and timer that
//! call the path. Needs root, sshd, cron and systemd (see DESIGN.md).

mod common;

use std::time::Duration;

use common::*;
use wavectl::lab::{Fleet, FleetOptions, HostKind, LabHost};

const NAME: &str = "raidsched";
const INSTALL: &str = "/usr/local/sbin/raidsched";
const RUNS: &str = "/var/lib/wavectl/raidsched/runs.log";
/// Where the script notes each run and who started it.
const RAN: &str = "/var/tmp/raidsched-ran";

fn spec(activation: &str, min_runs: u32, builtin: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "20s"
[activation]
{activation}
run_on_install = false
[waves]
sizes = [1, "100%"]
bake = "1s"
min_runs = {min_runs}
[health]
interval = "4s"
probe_timeout = "4s"
baseline_samples = 2
builtin = {builtin}
"#
    )
}

fn lines(h: &LabHost, p: &str) -> Vec<String> {
    std::fs::read_to_string(h.path(p))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn summary(r: &Run) -> serde_json::Value {
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {}\n{}", r.stdout, r.stderr))
}

#[test]
fn min_runs_are_counted_from_a_systemd_timers_runs_and_purge_removes_every_unit() {
    let fleet =
        Fleet::start_kind(FleetOptions::numbered(2), HostKind::Systemd).expect("systemd fleet");
    for h in fleet.hosts() {
        h.wait_running().expect("systemd is running");
    }
    // systemd gives every run of a service its own INVOCATION_ID.
    let script = format!("#!/bin/sh\necho \"${{INVOCATION_ID:-none}}\" >> {RAN}\n");
    let w = Workdir::new(
        fleet,
        &script,
        &spec(
            "kind = \"systemd-timer\"\nschedule = \"*:*:0/2\"",
            3,
            "[\"reachable\", \"script\", \"units\"]",
        ),
    );
    let r = run_within(
        w.path(),
        w.args(&["--json", "apply", "rollout.toml", "--yes"]),
        &[],
        Duration::from_secs(150),
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let s = summary(&r);
    assert_eq!(s["confirmed"], serde_json::json!(["h01", "h02"]), "{s}");
    for h in w.fleet.hosts() {
        // At least 3 runs of this version, each one the timer's: a run of its own
        // service, none by hand or over ssh.
        let runs = lines(h, RUNS);
        assert!(runs.len() >= 3, "{}: {runs:?}", h.name());
        let ran = lines(h, RAN);
        assert!(ran.len() >= 3, "{}: {ran:?}", h.name());
        assert!(ran.iter().all(|id| id.len() == 32), "{}: {ran:?}", h.name());
        let distinct: std::collections::BTreeSet<&String> = ran.iter().collect();
        assert_eq!(distinct.len(), ran.len(), "{}: {ran:?}", h.name());
        let timers = timers(h);
        assert!(
            timers.contains(&format!("wavectl-{NAME}.timer")),
            "{timers}"
        );
    }

    let p = w.wavectl(&["purge", "--yes", NAME, "--inventory", "inventory.toml"]);
    assert_eq!(p.code, Some(0), "{}\n{}", p.stdout, p.stderr);
    for h in w.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert!(!h.path(INSTALL).exists(), "{}", h.name());
        assert_no_wavectl_units(h, NAME);
    }
}

#[test]
fn a_cron_activated_script_is_run_by_cron_before_the_wave_passes() {
    let fleet = Fleet::start_kind(FleetOptions::numbered(2), HostKind::Cron).expect("cron fleet");
    // Cron starts it without an ssh session.
    let script = format!("#!/bin/sh\necho \"ssh=${{SSH_CONNECTION:-none}}\" >> {RAN}\n");
    let w = Workdir::new(
        fleet,
        &script,
        &spec(
            "kind = \"cron\"\nschedule = \"* * * * *\"",
            1,
            "[\"reachable\", \"script\"]",
        )
        .replace("sizes = [1, \"100%\"]", "sizes = [\"100%\"]"),
    );
    let r = run_within(
        w.path(),
        w.args(&["--json", "apply", "rollout.toml", "--yes"]),
        &[],
        Duration::from_secs(200),
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(summary(&r)["confirmed"], serde_json::json!(["h01", "h02"]));
    for h in w.fleet.hosts() {
        assert!(!lines(h, RUNS).is_empty(), "{}", h.name());
        let ran = lines(h, RAN);
        assert!(!ran.is_empty(), "{}", h.name());
        assert!(ran.iter().all(|l| l == "ssh=none"), "{}: {ran:?}", h.name());
    }
}

#[test]
fn purge_path_stops_and_removes_a_hand_made_unit_and_timer_that_call_the_path() {
    const VENDOR: &str = "/usr/local/sbin/vendor-raid";
    const VENDOR_RAN: &str = "/var/tmp/vendor-raid-ran";
    let fleet =
        Fleet::start_kind(FleetOptions::numbered(2), HostKind::Systemd).expect("systemd fleet");
    let h01 = fleet.host("h01");
    h01.wait_running().expect("systemd is running");
    fleet
        .host("h02")
        .wait_running()
        .expect("systemd is running");
    exec_ok(
        h01,
        &format!(
            "set -e
mkdir -p /usr/local/sbin
printf '#!/bin/sh\\ndate +%%s >> {VENDOR_RAN}\\n' > {VENDOR}; chmod 0755 {VENDOR}
printf '[Unit]\\nDescription=vendor RAID check\\n[Service]\\nType=oneshot\\nExecStart={VENDOR}\\n' > /etc/systemd/system/vendor-raid.service
printf '[Timer]\\nOnCalendar=*:*:0/2\\nAccuracySec=1s\\n[Install]\\nWantedBy=timers.target\\n' > /etc/systemd/system/vendor-raid.timer
systemctl daemon-reload
systemctl enable --now vendor-raid.timer"
        ),
    );
    assert!(
        eventually(Duration::from_secs(60), || lines(h01, VENDOR_RAN).len()
            >= 2),
        "the vendor timer did not run the script"
    );
    let w = Workdir::new(fleet, "#!/bin/sh\n", "# unused\n");

    let r = w.wavectl(&[
        "purge",
        "--yes",
        "--path",
        VENDOR,
        "--inventory",
        "inventory.toml",
    ]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);

    let h01 = w.fleet.host("h01");
    assert!(!h01.path(VENDOR).exists(), "the script is left");
    for unit in ["vendor-raid.service", "vendor-raid.timer"] {
        assert!(
            !h01.path(&format!("/etc/systemd/system/{unit}")).exists(),
            "{unit} left in /etc"
        );
        let enabled = h01.systemctl(&["is-enabled", unit]).unwrap();
        assert!(!enabled.status.success(), "{unit} still enabled");
        // A copy of every file it changed or removed is kept.
        let kept = exec_ok(h01, &format!("find /var/lib/wavectl/purged -name {unit}"));
        assert!(!kept.trim().is_empty(), "no copy of {unit} kept");
    }
    let timers = timers(h01);
    assert!(!timers.contains("vendor-raid"), "{timers}");
    // The timer fired every 2 s; it fires no more.
    let ran = lines(h01, VENDOR_RAN).len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        lines(h01, VENDOR_RAN).len(),
        ran,
        "the script ran after the purge"
    );
    // h02 never had it: left alone.
    assert!(!w.fleet.host("h02").path("/var/lib/wavectl/purged").exists());
}
