//! The core rollout, end to end against a real sshd fleet: happy path, rollback on a
//! failed check, a hung canary, and hostile strings.

mod common;

use std::path::Path;

use wavectl::lab::Fleet;

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";

/// `wavectl apply rollout.toml --yes`, as this file runs it.
trait Apply {
    fn apply(&self) -> Run;
}

impl Apply for Workdir {
    fn apply(&self) -> Run {
        self.wavectl(&["apply", "rollout.toml", "--yes"])
    }
}

fn spec(extra_waves: &str, checks: &str) -> String {
    format!(
        r#"name = "{NAME}"
description = "test rollout"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "{INSTALL}"
mode = "0755"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
{extra_waves}
concurrency = 10
bake = "1s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]
{checks}

[policy]
max_unhealthy = 0
on_failure = "rollback"
"#
    )
}

fn labelled(n: usize) -> Fleet {
    let names: Vec<String> = (1..=n).map(|i| format!("h{i:02}")).collect();
    let clusters = ["c1", "c2", "c3"];
    let hosts: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), clusters[i % 3].to_string()))
        .collect();
    let refs: Vec<(&str, Vec<(&str, &str)>)> = hosts
        .iter()
        .map(|(n, c)| (n.as_str(), vec![("role", "db"), ("cluster", c.as_str())]))
        .collect();
    let refs2: Vec<(&str, &[(&str, &str)])> =
        refs.iter().map(|(n, l)| (*n, l.as_slice())).collect();
    fleet_with(&refs2)
}

#[test]
fn happy_path_three_waves_confirms_every_host() {
    let script = "#!/bin/sh\necho raid ok\n";
    let s = Workdir::new(labelled(9), script, &spec("sizes = [1, 3, \"100%\"]\ncanaries = [\"h05\"]\nspread_by = \"cluster\"\nmax_per_group = 2", ""));
    let plan = s.wavectl(&["plan", "rollout.toml"]);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    assert!(
        plan.stdout.contains("wave 1 (1 host):  h05"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("in 3 waves"), "{}", plan.stdout);

    let r = s.apply();
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("every host healthy and confirmed"),
        "{}",
        r.stdout
    );
    let want = sha256_hex(script.as_bytes());
    for h in s.fleet.hosts() {
        let body = std::fs::read(h.path(INSTALL)).unwrap_or_else(|e| panic!("{}: {e}", h.name()));
        assert_eq!(sha256_hex(&body), want, "{}", h.name());
        let wrapper = h.path("/var/lib/wavectl/raid-health/run");
        let mode = std::fs::metadata(&wrapper)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
            .unwrap_or(0);
        assert_eq!(mode & 0o111, 0o111, "{}: wrapper not executable", h.name());
        let cron = std::fs::read_to_string(h.path("/etc/cron.d/wavectl-raid-health")).unwrap();
        assert!(
            cron.lines()
                .any(|l| l.starts_with("*/5 * * * * root /var/lib/wavectl/raid-health/run")),
            "{cron}"
        );
        assert!(
            cron.lines()
                .any(|l| l.starts_with("@reboot root /var/lib/wavectl/raid-health/run guard")),
            "{cron}"
        );
        let m = manifest(h, "raid-health").unwrap();
        assert_eq!(
            m.state,
            wavectl::remote::ManifestState::Confirmed,
            "{}: {m:?}",
            h.name()
        );
        assert_eq!(m.sha256, want);
        let runs =
            std::fs::read_to_string(h.path("/var/lib/wavectl/raid-health/runs.log")).unwrap();
        assert_eq!(runs.lines().count(), 1, "{}: {runs}", h.name());
        // `start end exit run`: this run's one run, exit 0.
        let fields: Vec<&str> = runs.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "{}: {runs}", h.name());
        assert_eq!(fields[2], "0", "{}: {runs}", h.name());
    }
    s.assert_no_ssh_left();

    // The journal agrees.
    let st = s.wavectl(&["status", "--json"]);
    let line: serde_json::Value = serde_json::from_str(st.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["state"], "done");
    assert_eq!(line["done"], 9);
}

#[test]
fn failed_check_in_wave_two_rolls_back_every_host_and_restores_originals() {
    let script =
        "#!/bin/sh\nif [ \"$(hostname)\" = h03 ]; then touch /var/tmp/broken; fi\necho ok\n";
    let checks = "[[health.check]]\nname = \"app\"\ncommand = \"test ! -e /var/tmp/broken\"\n";
    let s = Workdir::new(
        labelled(8),
        script,
        &spec("sizes = [1, 3, \"100%\"]", checks),
    );
    // h01 and h02 had a file at install_path before.
    for (host, content) in [
        ("h01", "#!/bin/sh\n# the original h01\n"),
        ("h02", "original h02 text, no trailing newline"),
    ] {
        let h = s.fleet.host(host);
        let out = h.exec(&format!("mkdir -p /usr/local/sbin && printf '%s' '{content}' > {INSTALL} && chmod 0640 {INSTALL}")).unwrap();
        assert!(out.status.success());
    }
    let originals: Vec<Vec<u8>> = ["h01", "h02"]
        .iter()
        .map(|h| std::fs::read(s.fleet.host(h).path(INSTALL)).unwrap())
        .collect();

    let r = s.apply();
    assert_eq!(
        r.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("unhealthy:   h03 (degraded)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("check app"), "{}", r.stdout);
    for h in s.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
    }
    for (i, host) in ["h01", "h02"].iter().enumerate() {
        let now = std::fs::read(s.fleet.host(host).path(INSTALL)).unwrap();
        assert_eq!(
            now, originals[i],
            "{host}: original not restored byte for byte"
        );
        assert_eq!(
            file_mode(&s.fleet.host(host).path(INSTALL)),
            0o640,
            "{host}: mode not restored"
        );
    }
    for host in ["h03", "h04"] {
        assert!(
            !s.fleet.host(host).path(INSTALL).exists(),
            "{host}: script left"
        );
    }
    // Later waves were never touched: not even the wavectl directory was created.
    for host in ["h05", "h06", "h07", "h08"] {
        let h = s.fleet.host(host);
        assert!(!h.path("/var/lib/wavectl").exists(), "{host} was touched");
        assert!(!h.path(INSTALL).exists(), "{host} was touched");
    }
    s.assert_no_ssh_left();
}

#[test]
fn a_canary_that_hangs_its_host_is_hung_pending_then_cleaned_after_thaw() {
    // The script freezes its own host when run: the host's freezer cgroup, pid 1's (the
    // run itself is in a cgroup of its own below it).
    let script = "#!/bin/sh\ncg=$(awk -F: '$2 ~ /freezer/ {print $3}' /proc/1/cgroup)\necho FROZEN > /sys/fs/cgroup/freezer$cg/freezer.state\n";
    let mut spec = spec("sizes = [1, \"100%\"]\ncanaries = [\"h02\"]", "");
    spec = spec.replace("bake = \"1s\"", "bake = \"20s\"");
    let s = Workdir::new(fleet(4), script, &spec);
    let r = s.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(
        r.code,
        Some(4),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let deployed = events
        .iter()
        .find(|e| e["event"] == "host_step" && e["phase"] == "deploy" && e["host"] == "h02")
        .expect("deploy event");
    let hung = events
        .iter()
        .find(|e| e["event"] == "verdict" && e["host"] == "h02" && e["verdict"]["health"] == "hung")
        .expect("a hung verdict for h02");
    // probe_timeout + 2 × interval, from the moment the install (and the run) started —
    // also when the host froze in the middle of the fresh login's handshake (banner
    // seen, key exchange unfinished): a fresh connection beside that login heard no
    // banner, so the host is judged at the login's deadline, without a retry
    // (docs/TRANSPORT.md). A bound, not a speed check.
    let waited = hung["elapsed_ms"].as_u64().unwrap() - deployed["elapsed_ms"].as_u64().unwrap();
    assert!(waited <= 2000 + 2 * 2000, "hung verdict after {waited} ms");
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["pending"][0][0], "h02", "{summary}");
    assert_eq!(summary["pending"].as_array().unwrap().len(), 1, "{summary}");
    // The other hosts were never touched.
    for host in ["h01", "h03", "h04"] {
        assert!(
            !s.fleet.host(host).path("/var/lib/wavectl").exists(),
            "{host} was touched"
        );
    }
    let run_id = events[0]["run"].as_str().unwrap().to_string();
    let st = s.wavectl(&["status", &run_id]);
    assert!(
        st.stdout
            .lines()
            .any(|l| l.starts_with("h02") && l.contains("pending") && l.contains("hung")),
        "{}",
        st.stdout
    );

    // Thaw: a second command cleans it.
    s.fleet.host("h02").thaw().unwrap();
    let r2 = s.wavectl(&["rollback", "--yes", &run_id]);
    assert_eq!(
        r2.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r2.stdout,
        r2.stderr
    );
    assert_no_wavectl_files(s.fleet.host("h02"), NAME, INSTALL);
    assert!(!s.fleet.host("h02").path(INSTALL).exists());
    s.assert_no_ssh_left();
}

#[test]
fn hostile_strings_inject_nothing_on_controller_or_hosts() {
    let marker = format!("/tmp/wavectl-pwned-{}", std::process::id());
    let install = "/opt/it's a \"dir\" $(touch /tmp/wavectl-pwned-x)/run `id` me";
    let script = "#!/bin/sh\necho fine\n";
    let fleet = fleet_with(&[
        ("h01", &[("team", "$(touch /tmp/wavectl-pwned-x)'; x")]),
        ("h02", &[("team", "ops")]),
    ]);
    let checks = format!(
        "[[health.check]]\nname = \"q\"\ncommand = '''test \"$(printf '%s' 'a b')\" = 'a b' && echo '\"; touch {marker}; \"' && test ! -e {marker}\n'''\n"
    );
    let spec = spec("sizes = [\"100%\"]", &checks)
        .replace(INSTALL, &install.replace('\\', "\\\\").replace('"', "\\\""))
        .replace(
            "[waves]",
            "[targets]\nselect = [\"team=$(touch /tmp/wavectl-pwned-x)'; x\"]\n\n[waves]",
        );
    let s = Workdir::new(fleet, script, &spec);
    let r = s.apply();
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    // Only h01 matched the hostile selector, and got the script at exactly that path.
    assert_eq!(
        std::fs::read_to_string(s.fleet.host("h01").path(install)).unwrap(),
        script
    );
    assert!(!s.fleet.host("h02").path("/var/lib/wavectl").exists());
    for m in [marker.as_str(), "/tmp/wavectl-pwned-x"] {
        assert!(!Path::new(m).exists(), "controller: {m} created");
        for h in s.fleet.hosts() {
            assert!(!h.path(m).exists(), "{}: {m} created", h.name());
        }
    }
    s.assert_no_ssh_left();
}
