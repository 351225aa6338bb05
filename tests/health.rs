//! Health judgement on real hosts: the probe's sources on plain, cron and systemd lab
//! hosts; each critical event failing exactly the host that shows it; a fleet-wide
//! kernel line pausing instead of rolling back; hung told apart from unreachable, and
//! both from the controller's own network; a script that never runs holding the bake.
//! Needs root, sshd, cron and systemd (see DESIGN.md "Testing against real hosts").

mod common;

use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use wavectl::lab::{Fleet, FleetOptions, HostKind, LabHost};
use wavectl::remote::host_probe::{parse_probe, probe_with, Ask};
use wavectl::rollout::probe_report::ProbeReport;

/// Tests that write to this machine's kernel log (which every lab host shares) and
/// tests that judge kernel lines take turns.
static KERNEL_LOG: Mutex<()> = Mutex::new(());

fn kernel_log() -> std::sync::MutexGuard<'static, ()> {
    KERNEL_LOG.lock().unwrap_or_else(|e| e.into_inner())
}

fn ssh(fleet: &Fleet, host: &str, line: &str) -> Output {
    fleet
        .ssh(host)
        .args(["-o", "ConnectTimeout=5", "--", line])
        .output()
        .expect("run ssh")
}

/// One probe of `host` for rollout `name`, every source, the kernel from `cursor`.
fn probe(fleet: &Fleet, host: &str, cursor: Option<&str>) -> (String, ProbeReport) {
    let mut ask = Ask::everything();
    ask.kernel_cursor = cursor.map(str::to_string);
    let cmd = probe_with(
        "probed",
        "r-1",
        &[],
        Duration::from_secs(20),
        Duration::ZERO,
        &ask,
    );
    let out = ssh(fleet, host, &cmd.line);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{host}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = parse_probe(&text, &[]).unwrap_or_else(|e| panic!("{host}: {e}\n{text}"));
    (text, r)
}

/// Put a stand-in `dmesg` in the host's own /usr overlay (/usr/local/bin comes first
/// on the PATH): the real log, then the lines of /var/tmp/kmsg-extra.
fn stand_in_dmesg(h: &LabHost) {
    exec_ok(
        h,
        "mkdir -p /usr/local/bin && cat > /usr/local/bin/dmesg <<'EOF'\n#!/bin/sh\n/usr/bin/dmesg \"$@\" || exit\n[ ! -f /var/tmp/kmsg-extra ] || cat /var/tmp/kmsg-extra\nEOF\nchmod 0755 /usr/local/bin/dmesg",
    );
}

/// A shell line that makes the host's stand-in dmesg show `message` now (stamped with
/// the host's seconds since boot, as the kernel stamps its lines).
fn kernel_says(message: &str) -> String {
    format!(
        "printf '[%12.6f] %s\\n' \"$(cut -d' ' -f1 /proc/uptime)\" '{message}' >> /var/tmp/kmsg-extra"
    )
}

#[test]
fn the_probe_reads_every_source_and_says_what_a_host_lacks() {
    let _k = kernel_log();
    let fleet = Fleet::start_kinds(
        FleetOptions::numbered(3),
        vec![HostKind::Sshd, HostKind::Cron, HostKind::Systemd],
    )
    .expect("mixed fleet");
    let h03 = fleet.host("h03");
    h03.wait_running().expect("systemd is running");

    let mut cursors = Vec::new();
    for name in ["h01", "h02", "h03"] {
        let (text, r) = probe(&fleet, name, None);
        eprintln!("--- {name}, every source, no cursor:\n{text}");
        assert!(r.uptime.is_some() && r.clock.is_some(), "{name}: {text}");
        assert!(r.cpus.is_some_and(|c| c > 0), "{name}: {text}");
        assert!(r.load1.is_ok() && r.procs_blocked.is_ok(), "{name}: {text}");
        assert!(r.oom_kill.is_ok() && r.pressure.is_ok(), "{name}: {text}");
        let k = r.kernel.clone().expect("dmesg reads the kernel log");
        assert!(k.lines.is_empty(), "no cursor, no lines: {text}");
        // The cursor is the host's own boot id and a time since boot.
        let boot =
            std::fs::read_to_string(fleet.host(name).path("/proc/sys/kernel/random/boot_id"))
                .unwrap();
        assert!(k.cursor.starts_with(&format!("{}:", boot.trim())), "{k:?}");
        cursors.push(k.cursor);
        if name == "h03" {
            let u = r.units.expect("systemd runs");
            assert!(u.failed.is_empty(), "{u:?}");
        } else {
            assert_eq!(r.units, Err("systemd does not run here".to_string()));
        }
    }

    // Units: one that failed, one that keeps restarting (slower than systemd's start
    // limit, so it never fails).
    exec_ok(
        h03,
        "systemd-run --unit=wlab-broken /bin/false; \
         systemd-run --unit=wlab-flappy -p Restart=always -p RestartSec=200ms -p StartLimitIntervalSec=0 /bin/sh -c 'sleep 0.1; exit 1'; true",
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let (_, r) = probe(&fleet, "h03", None);
            let u = r.units.unwrap();
            u.failed.contains(&"wlab-broken.service".to_string())
                && u.restarts
                    .get("wlab-flappy.service")
                    .is_some_and(|n| *n >= 3)
        }),
        "the failed and the restarting unit did not show"
    );

    // Kernel: the stand-in on h01 shows an oops after its cursor; h02, probed from its
    // own cursor, shows nothing new.
    stand_in_dmesg(fleet.host("h01"));
    exec_ok(
        fleet.host("h01"),
        &kernel_says("BUG: unable to handle page fault for address: 0000000000001000"),
    );
    let (text, r) = probe(&fleet, "h01", Some(&cursors[0]));
    eprintln!("--- h01 from its cursor:\n{text}");
    let k = r.kernel.unwrap();
    assert_eq!(k.lines.len(), 1, "{text}");
    assert!(
        k.lines[0].ends_with("] BUG: unable to handle page fault for address: 0000000000001000")
    );
    assert!(k.cursor > cursors[0], "{} !> {}", k.cursor, cursors[0]);
    // Probed from the new cursor, the line is old news.
    let (_, again) = probe(&fleet, "h01", Some(&k.cursor));
    assert_eq!(again.kernel.unwrap().lines, Vec::<String>::new());
    let (text, r) = probe(&fleet, "h02", Some(&cursors[1]));
    assert_eq!(r.kernel.unwrap().lines, Vec::<String>::new(), "{text}");
}

// --- whole runs of the real binary ---

const NAME: &str = "raidcheck";
const INSTALL: &str = "/usr/local/sbin/raidcheck";
const MANIFEST: &str = "/var/lib/wavectl/raidcheck/manifest.json";
const RUNS: &str = "/var/lib/wavectl/raidcheck/runs.log";

/// A spec: waves `sizes`, built-ins `builtin`; `more` replaces lines by key (`bake`,
/// `timeout`, `max_unhealthy`, ..) as `key = value` lines.
fn spec(sizes: &str, builtin: &str, more: &[(&str, &str)]) -> String {
    let mut lines = vec![
        ("name", format!("\"{NAME}\"")),
        ("inventory", "\"inventory.toml\"".into()),
        ("[script]", String::new()),
        ("source", "\"script.sh\"".into()),
        ("install_path", format!("\"{INSTALL}\"")),
        ("timeout", "\"20s\"".into()),
        ("[activation]", String::new()),
        ("kind", "\"cron\"".into()),
        ("schedule", "\"*/30 * * * *\"".into()),
        ("run_on_install", "true".into()),
        ("[waves]", String::new()),
        ("sizes", sizes.into()),
        ("bake", "\"2s\"".into()),
        ("min_runs", "1".into()),
        ("[health]", String::new()),
        // Generous: a probe's deadline includes its login, and the machine may be busy.
        ("interval", "\"5s\"".into()),
        ("probe_timeout", "\"5s\"".into()),
        ("baseline_samples", "2".into()),
        ("builtin", builtin.into()),
        ("[policy]", String::new()),
        ("max_unhealthy", "0".into()),
    ];
    for (k, v) in more {
        let e = lines
            .iter_mut()
            .find(|(key, _)| key == k)
            .expect("a known key");
        e.1 = v.to_string();
    }
    lines
        .into_iter()
        .map(|(k, v)| {
            if v.is_empty() {
                format!("{k}\n")
            } else {
                format!("{k} = {v}\n")
            }
        })
        .collect()
}

/// A wavectl running in the background (`--json`), its stdout collected line by line.
struct Bg {
    child: std::process::Child,
    lines: std::sync::Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Bg {
    fn spawn(w: &Workdir, args: &[&str]) -> Bg {
        use std::io::BufRead;
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let mut child = std::process::Command::new(bin())
            .args(w.args(&all))
            .current_dir(w.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn wavectl");
        let lines = std::sync::Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Bg {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait (at most `within`) for an event that `f` accepts.
    fn wait_for(
        &self,
        within: Duration,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut found = None;
        let ok = eventually(within, || {
            found = self.events().into_iter().find(|e| f(e));
            found.is_some()
        });
        assert!(
            ok,
            "no {what} within {within:?}; events: {:#?}",
            self.events()
        );
        found.unwrap()
    }

    /// Wait for the exit (killing it and panicking after `within`): exit code, events.
    fn finish(mut self, within: Duration) -> (Option<i32>, Vec<serde_json::Value>) {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "wavectl did not exit within {within:?}; events: {:#?}",
                    self.events()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = self.reader.take().unwrap().join();
        (status.code(), self.events())
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn events_of(r: &Run) -> Vec<serde_json::Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every verdict event: (host, health, evidence).
fn verdicts(events: &[serde_json::Value]) -> Vec<(String, String, Vec<serde_json::Value>)> {
    events
        .iter()
        .filter(|e| e["event"] == "verdict")
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["verdict"]["health"].as_str().unwrap().to_string(),
                e["verdict"]["evidence"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The first verdict of `health` for `host`, with its evidence.
fn first(events: &[serde_json::Value], host: &str, health: &str) -> Vec<serde_json::Value> {
    verdicts(events)
        .into_iter()
        .find(|(h, v, _)| h == host && v == health)
        .unwrap_or_else(|| panic!("no {health} verdict for {host}: {:#?}", verdicts(events)))
        .2
}

fn run_id(events: &[serde_json::Value]) -> String {
    events[0]["run"]
        .as_str()
        .expect("run_started first")
        .to_string()
}

/// The journal's records of the run.
fn journal(w: &Workdir, run: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.state().join("runs").join(run).join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The host holds this run's install and ran the script at least once.
fn deployed_and_ran(h: &LabHost) -> bool {
    h.path(MANIFEST).exists()
        && std::fs::read_to_string(h.path(RUNS)).is_ok_and(|t| !t.trim().is_empty())
}

#[test]
fn each_critical_event_fails_exactly_the_host_that_shows_it() {
    let _k = kernel_log();
    let mut kinds = vec![HostKind::Sshd; 9];
    kinds[1] = HostKind::Systemd;
    let fleet = Fleet::start_kinds(FleetOptions::numbered(9), kinds).expect("fleet");
    fleet
        .host("h02")
        .wait_running()
        .expect("systemd is running");
    // h01 shows its own kernel log's extra lines; h03 reads a copy of /proc/vmstat that
    // its script can make count an OOM kill.
    stand_in_dmesg(fleet.host("h01"));
    exec_ok(
        fleet.host("h03"),
        "cp /proc/vmstat /var/tmp/vmstat && mount --bind /var/tmp/vmstat /proc/vmstat",
    );
    // One script; what it does wrong depends on the host it runs on.
    let script = format!(
        "#!/bin/sh\ncase $(hostname) in\n\
         h01) {} ;;\n\
         h02) systemd-run --unit=raid-agent /bin/sh -c 'echo raid-agent: cannot open the controller >&2; exit 1' ;;\n\
         h03) awk '$1 == \"oom_kill\" {{ $2 = $2 + 1 }} {{ print }}' /var/tmp/vmstat > /var/tmp/vmstat.new && cat /var/tmp/vmstat.new > /var/tmp/vmstat ;;\n\
         h04) echo 'checking controller 0'; echo 'raid-check: controller 0 not responding' >&2; exit 3 ;;\n\
         h05) sleep 60 ;;\n\
         esac\necho ok\n",
        kernel_says("BUG: unable to handle page fault for address: 0000000000001000")
    );
    let w = Workdir::new(
        fleet,
        &script,
        &spec(
            "[6, 3]",
            "[\"reachable\", \"script\", \"kernel\", \"units\", \"oom\"]",
            &[("timeout", "\"3s\""), ("max_unhealthy", "5")],
        ),
    );
    let r = run_within(
        w.path(),
        w.args(&["--json", "apply", "rollout.toml", "--yes"]),
        &[],
        Duration::from_secs(170),
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let events = events_of(&r);

    // Exactly the five hosts that showed something went bad, each for its own signal.
    let bad: std::collections::BTreeSet<String> = verdicts(&events)
        .into_iter()
        .filter(|(_, v, _)| v != "healthy")
        .map(|(h, v, _)| format!("{h} {v}"))
        .collect();
    let want: std::collections::BTreeSet<String> = ["h01", "h02", "h03", "h04", "h05"]
        .iter()
        .map(|h| format!("{h} degraded"))
        .collect();
    assert_eq!(bad, want, "{:#?}", verdicts(&events));
    let expect = [
        ("h01", "kernel", "BUG: unable to handle page fault"),
        ("h02", "units", "raid-agent.service failed"),
        ("h03", "oom", "OOM killer killed 1 process"),
        ("h04", "script", "a run exited 3"),
        ("h05", "script", "killed by its timeout"),
    ];
    for (host, signal, raw) in expect {
        let ev = first(&events, host, "degraded");
        assert_eq!(ev.len(), 1, "{host}: {ev:#?}");
        let e = &ev[0];
        assert_eq!(e["signal"], signal, "{host}: {e}");
        assert!(e["raw"].as_str().unwrap().contains(raw), "{host}: {e}");
        assert!(
            e["at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{host}: {e}"
        );
        assert!(e["threshold"].is_string(), "{host}: {e}");
    }
    // The critical events that a control could show too were compared with the controls.
    for (host, signal) in [("h01", "kernel"), ("h03", "oom")] {
        let ev = first(&events, host, "degraded");
        assert_eq!(
            ev[0]["control"], "none on h07, h08, h09",
            "{host} {signal}: {ev:#?}"
        );
    }
    // No control host has systemd: a unit cannot be compared there.
    assert_eq!(
        first(&events, "h02", "degraded")[0]["control"],
        "no control host to compare with"
    );
    let oom = &first(&events, "h03", "degraded")[0];
    let was: u64 = oom["before"]
        .as_str()
        .unwrap()
        .trim_start_matches("oom_kill ")
        .parse()
        .unwrap();
    assert_eq!(oom["after"], format!("oom_kill {}", was + 1));
    // A failed run brings the tail of its stderr, not its stdout.
    let run = &first(&events, "h04", "degraded")[0];
    assert_eq!(run["stderr"], "raid-check: controller 0 not responding");
    // Where a source is missing it is said, once per host, and not held against it.
    let notes: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        notes.contains(
            &"h06: units: not available on this host: systemd does not run here (not judged there)"
        ),
        "{notes:#?}"
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    let confirmed: Vec<&str> = summary["confirmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(confirmed, ["h06", "h07", "h08", "h09"], "{summary}");
    assert_eq!(
        summary["unhealthy"].as_array().unwrap().len(),
        5,
        "{summary}"
    );

    // The journal holds the same verdicts, with the same evidence.
    let rounds: Vec<serde_json::Value> = journal(&w, &run_id(&events))
        .into_iter()
        .filter(|r| r["type"] == "round")
        .flat_map(|r| r["verdicts"].as_array().cloned().unwrap_or_default())
        .collect();
    for (host, signal, _) in expect {
        assert!(
            rounds.iter().any(|v| v["host"] == host
                && v["verdict"]["health"] == "degraded"
                && v["verdict"]["evidence"][0]["signal"] == signal),
            "{host}: {rounds:#?}"
        );
    }
    // The bad hosts were rolled back on their own: nothing of the script is left there.
    for h in ["h01", "h02", "h03", "h04", "h05"] {
        let h = w.fleet.host(h);
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert!(!h.path(INSTALL).exists(), "{}", h.name());
    }
}

#[test]
fn a_fleet_wide_kernel_line_pauses_the_run_instead_of_rolling_back() {
    let _k = kernel_log();
    let w = Workdir::new(
        fleet(4),
        "#!/bin/sh\necho ok\n",
        &spec(
            "[2, 2]",
            "[\"reachable\", \"script\", \"kernel\"]",
            &[("bake", "\"90s\"")],
        ),
    );
    let apply = Bg::spawn(&w, &["apply", "rollout.toml", "--yes"]);
    apply.wait_for(Duration::from_secs(60), "the bake of wave 1", |e| {
        e["event"] == "phase_started" && e["phase"] == "bake" && e["wave"] == 1
    });
    assert!(
        eventually(Duration::from_secs(30), || ["h01", "h02"]
            .iter()
            .all(|h| deployed_and_ran(w.fleet.host(h)))),
        "wave 1 was not deployed"
    );
    // One line in the kernel log every lab host shares: the wave and the controls alike.
    std::fs::write(
        "/dev/kmsg",
        "<4>INFO: task wlab-health:4242 blocked for more than 120 seconds. (a wavectl lab test: a fleet-wide kernel line)\n",
    )
    .expect("write /dev/kmsg");
    let (code, events) = apply.finish(Duration::from_secs(90));
    assert_eq!(code, Some(1), "{events:#?}");
    for h in ["h01", "h02"] {
        let ev = first(&events, h, "inconclusive");
        assert_eq!(ev[0]["signal"], "kernel", "{ev:#?}");
        assert!(ev[0]["raw"]
            .as_str()
            .unwrap()
            .contains("wlab-health:4242 blocked for more than"));
        assert_eq!(
            ev[0]["control"],
            "the same on h03, h04 (a fleet-wide event?)"
        );
    }
    assert!(
        verdicts(&events)
            .iter()
            .all(|(_, v, _)| v == "healthy" || v == "inconclusive"),
        "{:#?}",
        verdicts(&events)
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["status"], "paused", "{summary}");
    let outcome = summary["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("paused: inconclusive verdict on h0"),
        "{outcome}"
    );
    assert!(outcome.contains("fleet-wide"), "{outcome}");
    // Nothing was rolled back: the wave's hosts wait in probation for the operator.
    assert!(!events.iter().any(|e| e["event"] == "rollback_started"));
    for h in ["h01", "h02"] {
        let m = manifest(w.fleet.host(h), "raidcheck").unwrap();
        assert_eq!(
            m.state,
            wavectl::remote::ManifestState::Probation,
            "{h}: {m:?}"
        );
    }
    let run = run_id(&events);
    let st = w.wavectl(&["status", &run]);
    assert!(st.stdout.contains("paused"), "{}", st.stdout);
    // The operator decides: roll back.
    let rb = w.wavectl(&["rollback", "--yes", &run]);
    assert_eq!(rb.code, Some(0), "{}\n{}", rb.stdout, rb.stderr);
    for h in w.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert!(!h.path(INSTALL).exists(), "{}", h.name());
    }
}

#[test]
fn a_script_that_never_runs_holds_the_bake_and_says_so() {
    let w = Workdir::new(
        fleet(2),
        "#!/bin/sh\necho ok\n",
        &spec(
            "[1, 1]",
            "[\"reachable\", \"script\"]",
            &[
                ("schedule", "\"0 0 1 1 *\""),
                ("run_on_install", "false"),
                ("bake", "\"1s\""),
            ],
        ),
    );
    let apply = Bg::spawn(&w, &["apply", "rollout.toml", "--yes"]);
    let held = apply.wait_for(
        Duration::from_secs(60),
        "a note that the bake is held",
        |e| {
            e["event"] == "note"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("the bake is held"))
        },
    );
    let message = held["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "wave 1: the bake is held: the script has not run min_runs = 1 times on h01 (0 of 1); waiting until "
        ),
        "{message}"
    );
    assert!(
        message.ends_with("Z at most, then they count as degraded"),
        "{message}"
    );
    // Held: wave 2 is not touched, h01 is not confirmed.
    let h01 = w.fleet.host("h01");
    let m = manifest(h01, "raidcheck").unwrap();
    assert_eq!(m.state, wavectl::remote::ManifestState::Probation, "{m:?}");
    assert!(!w.fleet.host("h02").path("/var/lib/wavectl").exists());
    // Rounds go on while it is held.
    let ticks =
        |events: &[serde_json::Value]| events.iter().filter(|e| e["event"] == "bake_tick").count();
    let seen = ticks(&apply.events());
    assert!(
        eventually(Duration::from_secs(30), || ticks(&apply.events())
            > seen + 1),
        "no probe rounds while held"
    );
    let run = run_id(&apply.events());
    let ab = w.wavectl(&["abort", &run]);
    assert_eq!(ab.code, Some(0), "{}\n{}", ab.stdout, ab.stderr);
    let (code, _) = apply.finish(Duration::from_secs(60));
    assert_eq!(code, Some(3));
    assert_no_wavectl_files(h01, NAME, INSTALL);
}

#[test]
fn a_hung_host_is_told_apart_from_an_unreachable_one() {
    let w = Workdir::new(
        fleet(6),
        "#!/bin/sh\necho ok\n",
        &spec(
            "[3, 3]",
            "[\"reachable\", \"script\"]",
            &[("bake", "\"12s\""), ("max_unhealthy", "2")],
        ),
    );
    let apply = Bg::spawn(&w, &["apply", "rollout.toml", "--yes"]);
    apply.wait_for(Duration::from_secs(60), "a probe round of wave 1", |e| {
        e["event"] == "bake_tick" && e["wave"] == 1
    });
    // h01 hangs (its connections stall, new ones get no banner); h02 goes down (its
    // port refuses connections).
    w.fleet.host("h01").freeze().unwrap();
    w.fleet.host("h02").kill().unwrap();
    let (code, events) = apply.finish(Duration::from_secs(150));
    // Both tolerated by the budget, neither could be cleaned: pending.
    assert_eq!(code, Some(4), "{events:#?}");
    let hung = first(&events, "h01", "hung");
    assert_eq!(hung[0]["signal"], "reachable");
    let raw = hung[0]["raw"].as_str().unwrap();
    assert!(
        raw.contains("gave no answer within") && raw.ends_with("(it answered before)"),
        "{raw}"
    );
    let down = first(&events, "h02", "unreachable");
    assert_eq!(down[0]["signal"], "reachable");
    assert!(
        !verdicts(&events)
            .iter()
            .any(|(h, v, _)| (h == "h01" && v == "unreachable") || (h == "h02" && v == "hung")),
        "{:#?}",
        verdicts(&events)
    );
    // The rest of the fleet went on and was confirmed.
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    let confirmed: Vec<&str> = summary["confirmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(confirmed, ["h03", "h04", "h05", "h06"], "{summary}");
    // Back up, reconcile finishes their removal.
    w.fleet.host("h01").thaw().unwrap();
    w.fleet.host("h02").restart().unwrap();
    let rc = w.wavectl(&["reconcile", "--yes"]);
    assert_eq!(rc.code, Some(0), "{}\n{}", rc.stdout, rc.stderr);
    for h in ["h01", "h02"] {
        assert_no_wavectl_files(w.fleet.host(h), NAME, INSTALL);
    }
}

#[test]
fn a_host_failing_with_every_control_points_at_the_controller_and_pauses() {
    let w = Workdir::new(
        fleet(4),
        "#!/bin/sh\necho ok\n",
        &spec(
            "[1, 3]",
            "[\"reachable\", \"script\"]",
            &[("bake", "\"90s\"")],
        ),
    );
    let apply = Bg::spawn(&w, &["apply", "rollout.toml", "--yes"]);
    // The controls answered a round of the bake.
    apply.wait_for(Duration::from_secs(60), "two probe rounds of wave 1", |e| {
        e["event"] == "bake_tick" && e["wave"] == 1 && e["round"].as_u64() >= Some(2)
    });
    // As if the controller lost its network: every host stops answering. The controls
    // first, so the round that first misses h01 misses them too.
    for h in ["h02", "h03", "h04"] {
        w.fleet.host(h).freeze().unwrap();
    }
    let seen = apply
        .events()
        .iter()
        .filter(|e| e["event"] == "bake_tick")
        .count();
    apply.wait_for(
        Duration::from_secs(30),
        "a round with the controls frozen",
        |_| {
            apply
                .events()
                .iter()
                .filter(|e| e["event"] == "bake_tick")
                .count()
                > seen + 1
        },
    );
    w.fleet.host("h01").freeze().unwrap();
    let (code, events) = apply.finish(Duration::from_secs(90));
    assert_eq!(code, Some(1), "{events:#?}");
    let ev = first(&events, "h01", "inconclusive");
    assert_eq!(ev[0]["signal"], "reachable");
    let control = ev[0]["control"].as_str().unwrap();
    assert!(
        control.starts_with("every control host failed at the same moment (h02: "),
        "{control}"
    );
    assert!(
        control.ends_with("suspect the controller's own network"),
        "{control}"
    );
    assert!(
        !verdicts(&events).iter().any(|(_, v, _)| v == "hung"),
        "{:#?}",
        verdicts(&events)
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["status"], "paused", "{summary}");
    assert!(
        summary["outcome"]
            .as_str()
            .unwrap()
            .contains("controller's own network"),
        "{summary}"
    );
    // The network is back: the operator rolls back.
    for h in w.fleet.hosts() {
        h.thaw().unwrap();
    }
    let run = run_id(&events);
    let rb = w.wavectl(&["rollback", "--yes", &run]);
    assert_eq!(rb.code, Some(0), "{}\n{}", rb.stdout, rb.stderr);
    assert_no_wavectl_files(w.fleet.host("h01"), NAME, INSTALL);
}

#[test]
fn a_fresh_login_finds_a_host_that_refuses_new_logins_while_an_old_session_answers() {
    let fleet =
        Fleet::start_kind(FleetOptions::numbered(2), HostKind::Systemd).expect("systemd fleet");
    for h in fleet.hosts() {
        h.wait_running().expect("systemd is running");
    }
    let w = Workdir::new(
        fleet,
        "#!/bin/sh\necho ok\n",
        &spec(
            "[1, 1]",
            "[\"reachable\", \"script\"]",
            &[("bake", "\"20s\"")],
        ),
    );
    let apply = Bg::spawn(&w, &["apply", "rollout.toml", "--yes"]);
    apply.wait_for(Duration::from_secs(60), "a probe round of wave 1", |e| {
        e["event"] == "bake_tick" && e["wave"] == 1
    });
    // sshd stops listening; the sessions it forked (the bake's kept connection) live on
    // (Debian's ssh.service stops only the listener).
    let h01 = w.fleet.host("h01");
    let out = h01.systemctl(&["stop", "ssh.service"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, events) = apply.finish(Duration::from_secs(90));
    // The host is judged on the fresh login, not on the session that still answers.
    let ev = first(&events, "h01", "unreachable");
    assert_eq!(ev[0]["signal"], "reachable");
    let raw = ev[0]["raw"].as_str().unwrap();
    assert!(
        raw.starts_with("a fresh login failed (the connection kept from before still answers)"),
        "{raw}"
    );
    if code == Some(4) {
        // The old session broke before the removal: pending until logins work again.
        let out = h01.systemctl(&["start", "ssh.service"]).unwrap();
        assert!(out.status.success(), "{out:?}");
        let rc = w.wavectl(&["reconcile", "--yes"]);
        assert_eq!(rc.code, Some(0), "{}\n{}", rc.stdout, rc.stderr);
    } else {
        // The rollback rode the session that still answers.
        assert_eq!(code, Some(1), "{events:#?}");
    }
    assert_no_wavectl_files(h01, NAME, INSTALL);
}

/// A level `signal` (of the built-in `builtin`) rising on h01 only: `stand_in` puts a
/// copy of the source over h01's own (bind-mounted; rewritten in place, since the mount
/// holds the file, not its name) and `script` makes it rise there once it runs. The
/// wave [h01, h02] is judged against the controls h03, h04: h01 fails after `strikes`
/// probes in a row, the run rolls back, and no other host is judged anything but
/// healthy. Returns the events and h01's evidence.
fn h01_rises(
    script: &str,
    builtin: &str,
    stand_in: &str,
    signal: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let w = Workdir::new(
        fleet(4),
        script,
        &spec(
            "[2, 2]",
            &format!("[\"reachable\", \"script\", \"{builtin}\"]"),
            &[("bake", "\"120s\"")],
        ),
    );
    exec_ok(w.fleet.host("h01"), stand_in);
    let r = run_within(
        w.path(),
        w.args(&["--json", "apply", "rollout.toml", "--yes"]),
        &[],
        Duration::from_secs(170),
    );
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let events = events_of(&r);
    let ev = first(&events, "h01", "degraded");
    assert_eq!(ev[0]["signal"], signal, "{ev:#?}");
    let control = ev[0]["control"].as_str().unwrap();
    assert!(
        control.contains("h03 ") && control.contains("h04 "),
        "{control}"
    );
    assert!(
        ev[0]["raw"]
            .as_str()
            .unwrap()
            .ends_with(", 3 probes in a row"),
        "{ev:#?}"
    );
    assert!(
        verdicts(&events)
            .iter()
            .all(|(h, v, _)| h == "h01" || v == "healthy"),
        "{:#?}",
        verdicts(&events)
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["status"], "rolled-back", "{summary}");
    (events, ev)
}

#[test]
fn a_load_rise_on_one_host_only_fails_it_after_strikes_probes() {
    let (events, ev) = h01_rises(
        "#!/bin/sh\n[ \"$(hostname)\" != h01 ] || echo '100.00 90.00 80.00 9/999 4242' > /var/tmp/loadavg\necho ok\n",
        "load",
        "echo '0.10 0.10 0.10 1/99 4242' > /var/tmp/loadavg && mount --bind /var/tmp/loadavg /proc/loadavg",
        "load",
    );
    // The hosts count the same CPUs as this machine.
    let cpus: f64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("_NPROCESSORS_ONLN")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert_eq!(ev[0]["before"], format!("{:.2}", 0.10 / cpus), "{ev:#?}");
    assert_eq!(ev[0]["after"], format!("{:.2} load per CPU", 100.0 / cpus));
    let control = ev[0]["control"].as_str().unwrap();
    assert!(control.starts_with("median rise "), "{control}");
    // One out-of-line probe is not a verdict: h01 was healthy first; h02 stayed so.
    let of = |host: &str| -> Vec<String> {
        verdicts(&events)
            .into_iter()
            .filter(|(h, _, _)| h == host)
            .map(|(_, v, _)| v)
            .collect()
    };
    assert_eq!(of("h01"), ["healthy", "degraded"]);
    assert_eq!(of("h02"), ["healthy"]);
}

#[test]
fn a_blocked_rise_on_one_host_only_fails_it_after_strikes_probes() {
    // 50 tasks in uninterruptible sleep on h01 once the script ran there.
    let (_, ev) = h01_rises(
        "#!/bin/sh\n[ \"$(hostname)\" != h01 ] || { sed 's/^procs_blocked .*/procs_blocked 50/' /var/tmp/stat > /var/tmp/stat.new && cat /var/tmp/stat.new > /var/tmp/stat; }\necho ok\n",
        "blocked",
        "sed 's/^procs_blocked .*/procs_blocked 0/' /proc/stat > /var/tmp/stat && mount --bind /var/tmp/stat /proc/stat",
        "blocked",
    );
    assert!(
        ev[0]["after"].as_str().unwrap().starts_with("50"),
        "{ev:#?}"
    );
}

#[test]
fn an_io_stall_on_one_host_only_fails_it_after_strikes_probes() {
    // Once the script ran on h01, a loop there adds 0.8 s of stall to its `total` every
    // second (80 % of the time).
    let (_, ev) = h01_rises(
        "#!/bin/sh\n[ \"$(hostname)\" != h01 ] || setsid sh -c 't=1000; while :; do t=$((t + 800000)); printf \"some avg10=0.00 avg60=0.00 avg300=0.00 total=%s\\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=%s\\n\" $t $t > /var/tmp/io; sleep 1; done' </dev/null >/dev/null 2>&1 &\necho ok\n",
        "pressure",
        "printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\\n' > /var/tmp/io && mount --bind /var/tmp/io /proc/pressure/io",
        "pressure.io",
    );
    // About 80 % of the time stalled between two probes (the loop's own time aside).
    let after: f64 = ev[0]["after"]
        .as_str()
        .unwrap()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {ev:#?}"));
    assert!((50.0..=100.0).contains(&after), "{ev:#?}");
}
