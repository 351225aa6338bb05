//! Versions on real hosts: an upgrade A→B that fails its bake brings A back whole on every
//! host (bytes, mode, wrapper, activation, confirmed manifest, run history); purge removes
//! every version and restores the pre-wavectl original; removals act only on the install
//! they were sent for (an older run's drops its version: it never comes back); two
//! rollouts cannot share an install path.

mod common;

use wavectl::lab::LabHost;

use common::*;

const NAME: &str = "agent";
const INSTALL: &str = "/usr/local/sbin/agent-upgrade";
const ORIGINAL: &str = "#!/bin/sh\n# the vendor version, from before wavectl\n";
const A: &str = "#!/bin/sh\n# version A\necho A\n";
const B: &str =
    "#!/bin/sh\n# version B: breaks on h03\n[ \"$(hostname)\" = h03 ] && exit 7\necho B\n";

fn spec(name: &str, install: &str, mode: &str, schedule: &str) -> String {
    format!(
        r#"name = "{name}"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "{install}"
mode = "{mode}"
timeout = "20s"
[activation]
kind = "cron"
schedule = "{schedule}"
run_on_install = true
[waves]
sizes = [1, "100%"]
bake = "1s"
min_runs = 1
[health]
interval = "1s"
probe_timeout = "1s"
builtin = ["reachable", "script"]
"#
    )
}

fn apply(w: &Workdir, script: &str, spec_text: &str, code: i32) -> String {
    std::fs::write(w.path().join("script.sh"), script).unwrap();
    std::fs::write(w.path().join("rollout.toml"), spec_text).unwrap();
    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(code), "{}\n{}", r.stdout, r.stderr);
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    first["run"].as_str().unwrap().to_string()
}

/// What a host holds of NAME: (script bytes, mode, cron file, manifest, wrapper, runs.log).
fn snapshot(h: &LabHost) -> (Vec<u8>, u32, String, String, String, String) {
    let read = |p: &str| std::fs::read_to_string(h.path(p)).unwrap_or_default();
    (
        std::fs::read(h.path(INSTALL)).unwrap_or_default(),
        file_mode(&h.path(INSTALL)),
        read(&format!("/etc/cron.d/wavectl-{NAME}")),
        read(&format!("/var/lib/wavectl/{NAME}/manifest.json")),
        read(&format!("/var/lib/wavectl/{NAME}/run")),
        read(&format!("/var/lib/wavectl/{NAME}/runs.log")),
    )
}

#[test]
fn a_failed_upgrade_brings_version_a_back_whole_and_purge_restores_the_original() {
    let w = Workdir::new(fleet(3), A, &spec(NAME, INSTALL, "0750", "*/5 * * * *"));
    let original = seed_original(w.fleet.host("h02"), INSTALL, ORIGINAL);
    let run_a = apply(&w, A, &spec(NAME, INSTALL, "0750", "*/5 * * * *"), 0);
    let before: Vec<_> = w.fleet.hosts().iter().map(snapshot).collect();
    for (h, s) in w.fleet.hosts().iter().zip(&before) {
        assert_eq!(s.0, A.as_bytes(), "{}", h.name());
        // The manifest a real install wrote: ordinary JSON to anyone (serde_json here),
        // one field a line to the host's shell.
        let m: serde_json::Value = serde_json::from_str(&s.3)
            .unwrap_or_else(|e| panic!("{}: manifest.json is not JSON ({e}): {}", h.name(), s.3));
        assert_eq!(
            (
                m["name"].as_str(),
                m["run_id"].as_str(),
                m["state"].as_str()
            ),
            (Some(NAME), Some(run_a.as_str()), Some("confirmed")),
            "{}: {}",
            h.name(),
            s.3
        );
        assert_eq!(m["backup"], h.name() == "h02", "{}: {}", h.name(), s.3);
        assert_eq!(m["sha256"].as_str().map(str::len), Some(64), "{}", s.3);
        assert!(m["installed_at"].is_u64(), "{}", s.3);
        let lines: Vec<&str> = s.3.lines().collect();
        assert_eq!((lines[0], lines[lines.len() - 1]), ("{", "}"), "{}", s.3);
        assert_eq!(
            lines.len() - 2,
            m.as_object().unwrap().len(),
            "one field a line: {}",
            s.3
        );
        assert!(lines.contains(&"\"state\": \"confirmed\","), "{}", s.3);
        // And jq, as an outside tool would (.ci/run installs it).
        let jq = std::process::Command::new("jq")
            .args(["-r", ".state + \" \" + .run_id"])
            .arg(h.path(&format!("/var/lib/wavectl/{NAME}/manifest.json")))
            .output()
            .expect("jq (apt-get install jq) must be installed for this test");
        assert_eq!(
            String::from_utf8_lossy(&jq.stdout),
            format!("confirmed {run_a}\n"),
            "{}: jq: {}",
            h.name(),
            String::from_utf8_lossy(&jq.stderr)
        );
        assert!(!s.5.is_empty(), "{}: A has run", h.name());
    }

    // B, with another mode and schedule, fails on h03 in its second wave.
    let run_b = apply(&w, B, &spec(NAME, INSTALL, "0700", "*/7 * * * *"), 1);
    for (h, s) in w.fleet.hosts().iter().zip(&before) {
        let now = snapshot(h);
        assert_eq!(now.0, s.0, "{}: script bytes", h.name());
        assert_eq!(now.1, 0o750, "{}: mode", h.name());
        assert_eq!(now.2, s.2, "{}: cron file", h.name());
        assert_eq!(now.3, s.3, "{}: manifest", h.name());
        assert_eq!(now.4, s.4, "{}: wrapper", h.name());
        assert_eq!(now.5, s.5, "{}: A's run history", h.name());
        assert!(!now.5.contains(&run_b), "{}", h.name());
    }
    let st = w.wavectl(&["status", &run_b, "--json"]);
    let st: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(st["status"], "rolled-back", "{st}");

    // An old run's rollback acts only on its own install: B is gone, so nothing of
    // B's is found, and A stays.
    let r = w.wavectl(&["rollback", "--yes", &run_b]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for (h, s) in w.fleet.hosts().iter().zip(&before) {
        assert_eq!(snapshot(h).3, s.3, "{}", h.name());
    }

    // purge removes every version and puts back what stood there before wavectl.
    let p = w.wavectl(&["purge", "--yes", NAME, "--inventory", "inventory.toml"]);
    assert_eq!(p.code, Some(0), "{}\n{}", p.stdout, p.stderr);
    for h in w.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        if h.name() == "h02" {
            assert_eq!(std::fs::read(h.path(INSTALL)).unwrap(), original);
            assert_eq!(file_mode(&h.path(INSTALL)), 0o640);
        } else {
            assert!(!h.path(INSTALL).exists(), "{}", h.name());
        }
    }
}

#[test]
fn rolling_back_an_older_run_leaves_the_newer_install_alone_and_drops_its_version() {
    let w = Workdir::new(fleet(2), A, &spec(NAME, INSTALL, "0755", "*/5 * * * *"));
    let run_a = apply(&w, A, &spec(NAME, INSTALL, "0755", "*/5 * * * *"), 0);
    let good_b = B.replace("h03", "nohost");
    let run_b = apply(&w, &good_b, &spec(NAME, INSTALL, "0755", "*/5 * * * *"), 0);
    // Rolling back A now: every host holds B, which is not A's install; A's version,
    // kept for B's rollback, is dropped, and the rollout stays under B: not clean.
    let r = w.wavectl(&["rollback", "--yes", &run_a]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("holds run {run_b}'s newer install")),
        "{}",
        r.stdout
    );
    for h in w.fleet.hosts() {
        assert_eq!(std::fs::read_to_string(h.path(INSTALL)).unwrap(), good_b);
        let m = manifest(h, NAME).unwrap();
        assert_eq!(
            (&m.run_id, m.state),
            (&run_b, wavectl::remote::ManifestState::Confirmed),
            "{m:?}"
        );
    }
    // Rolling back B does not bring A back: A was rolled back.
    let r = w.wavectl(&["rollback", "--yes", &run_b]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for h in w.fleet.hosts() {
        assert!(!h.path(INSTALL).exists(), "{}: A came back", h.name());
        assert_no_wavectl_files(h, NAME, INSTALL);
    }
}

#[test]
fn a_second_rollout_cannot_take_an_install_path_another_owns() {
    let w = Workdir::new(fleet(2), A, &spec(NAME, INSTALL, "0755", "*/5 * * * *"));
    let original = seed_original(w.fleet.host("h01"), INSTALL, ORIGINAL);
    apply(&w, A, &spec(NAME, INSTALL, "0755", "*/5 * * * *"), 0);
    // Another rollout over the same path: the first host refuses (exit 2), nothing changes.
    std::fs::write(w.path().join("script.sh"), B).unwrap();
    std::fs::write(
        w.path().join("other.toml"),
        spec("other", INSTALL, "0755", "*/5 * * * *"),
    )
    .unwrap();
    let r = w.wavectl(&["apply", "other.toml", "--yes"]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("owned by rollout agent") || r.stderr.contains("owned by rollout agent"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    for h in w.fleet.hosts() {
        assert_eq!(std::fs::read_to_string(h.path(INSTALL)).unwrap(), A);
        assert!(!h.path("/var/lib/wavectl/other").exists());
    }
    // Purging both leaves the original file.
    for name in ["other", NAME] {
        let p = w.wavectl(&["purge", "--yes", name, "--inventory", "inventory.toml"]);
        assert_eq!(p.code, Some(0), "{}\n{}", p.stdout, p.stderr);
    }
    assert_eq!(
        std::fs::read(w.fleet.host("h01").path(INSTALL)).unwrap(),
        original
    );
    assert!(!w.fleet.host("h02").path(INSTALL).exists());
}
