//! Gates and freezes against real lab hosts: a gated run waits after wave 1's bake until
//! `promote` from another process; a gate nobody promotes rolls back; `freeze` from a
//! second process stops a running apply at the next wave boundary until `unfreeze`; an
//! apply of a frozen rollout is refused (exit 5) naming who, why and until when; purge
//! is never blocked by a freeze.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use wavectl::remote::ManifestState;

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";

/// Two hosts, h01 alone in wave 1; `gates` is a `[gates]` table or nothing.
fn spec(bake: &str, gates: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
sizes = [1, "100%"]
canaries = ["h01"]
bake = "{bake}"
min_runs = 1

[health]
interval = "1s"
probe_timeout = "1s"
builtin = ["reachable", "script"]
{gates}
"#
    )
}

/// A wavectl `--json apply` in the background, its stdout collected line by line.
struct Bg {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Bg {
    fn apply(s: &Workdir) -> Bg {
        let mut child = Command::new(bin())
            .args(s.args(&["--json", "apply", "rollout.toml", "--yes"]))
            .current_dir(s.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wavectl");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (out, sink) = (child.stdout.take().unwrap(), lines.clone());
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Bg {
            child,
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first event of type `kind`, waiting for it at most `within`.
    fn event(&self, kind: &str, within: Duration) -> serde_json::Value {
        let mut found = None;
        eventually(within, || {
            found = self.events().into_iter().find(|e| e["event"] == kind);
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {kind} event; stdout so far: {:?}", self.lines))
    }

    /// Wait for the exit (at most 60 s): (exit code, stdout, stderr).
    fn wait(mut self) -> (Option<i32>, String, String) {
        let mut status = None;
        eventually(Duration::from_secs(60), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let Some(status) = status else {
            panic!("wavectl did not exit; stdout: {:?}", self.lines);
        };
        let _ = self.reader.take().unwrap().join();
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let stdout = self.lines.lock().unwrap().join("\n");
        (status.code(), stdout, stderr)
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

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

fn state_of(s: &Workdir, host: &str) -> Option<ManifestState> {
    manifest(s.fleet.host(host), NAME).map(|m| m.state)
}

fn who() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}@{}", wavectl::store::local_user(), host.trim())
}

#[test]
fn a_gate_waits_for_promote_a_freeze_refuses_apply_but_not_purge_and_an_unpromoted_gate_rolls_back()
{
    let s = Workdir::new(
        fleet(2),
        "#!/bin/sh\necho raid ok\n",
        &spec("2s", "[gates]\nafter = [1]\ntimeout = \"1h\"\n"),
    );
    // `plan` shows the gate.
    let plan = s.wavectl(&["plan", "rollout.toml"]);
    assert_eq!(plan.code, Some(0), "{}", show(&plan));
    assert!(
        plan.stdout.contains(
            "gates: after the bake of wave 1 the run waits for `wavectl promote RUN` (at most 1h, then it rolls back; its hosts are still probed)"
        ),
        "{}",
        plan.stdout
    );

    // 1. The run waits after wave 1's bake; wave 2 is not touched.
    let apply = Bg::apply(&s);
    let gated = apply.event("gated", Duration::from_secs(60));
    let run = gated["run"].as_str().unwrap().to_string();
    assert_eq!(gated["wave"], 1, "{gated}");
    assert_eq!(
        gated["promote"],
        format!("wavectl promote {run}"),
        "{gated}"
    );
    assert_eq!(state_of(&s, "h01"), Some(ManifestState::Probation));
    assert!(!s.fleet.host("h02").path(INSTALL).exists(), "wave 2 began");
    // `status` says what it waits for, for people and in JSON.
    let st = s.wavectl(&["status", &run]);
    assert!(
        st.stdout.contains(&format!(
            "waiting for `wavectl promote {run}` after wave 1's bake"
        )),
        "{}",
        show(&st)
    );
    let js = s.wavectl(&["status", &run, "--json"]);
    let js: serde_json::Value = serde_json::from_str(js.stdout.trim()).unwrap();
    assert_eq!(js["status"], "gated", "{js}");
    assert!(
        js["waiting"].as_str().unwrap().contains("wavectl promote"),
        "{js}"
    );
    // A promote from another process lets it go on.
    let p = s.wavectl(&["promote", &run]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    assert!(
        p.stdout.contains("past the gate after wave 1"),
        "{}",
        show(&p)
    );
    let (code, stdout, stderr) = apply.wait();
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("\"event\":\"promoted\""), "{stdout}");
    for h in ["h01", "h02"] {
        assert_eq!(state_of(&s, h), Some(ManifestState::Confirmed), "{h}");
    }
    // A run that is not at a gate cannot be promoted.
    let again = s.wavectl(&["promote", &run]);
    assert_eq!(again.code, Some(2), "{}", show(&again));

    // 2. Nobody promotes within gates.timeout: the run rolls back (exit 1), and its
    // hosts are back to what they held before it.
    std::fs::write(
        s.path().join("rollout.toml"),
        spec("1s", "[gates]\nafter = [1]\ntimeout = \"2s\"\n"),
    )
    .unwrap();
    let r = s.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(1), "{}", show(&r));
    assert!(r.stdout.contains("\"event\":\"gated\""), "{}", show(&r));
    assert!(
        r.stdout
            .contains("nobody promoted it past the gate after wave 1 within gates.timeout = 2s"),
        "{}",
        show(&r)
    );
    // h01 is back on the first run's confirmed version; h02 was never touched.
    for h in ["h01", "h02"] {
        let m = manifest(s.fleet.host(h), NAME).unwrap();
        assert_eq!(
            (m.run_id.as_str(), m.state),
            (run.as_str(), ManifestState::Confirmed),
            "{h}"
        );
    }

    // 3. A freeze refuses apply (exit 5), naming who, why and until when.
    let f = s.wavectl(&["freeze", NAME, "--reason", "incident 42", "--until", "2h"]);
    assert_eq!(f.code, Some(0), "{}", show(&f));
    let refused = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(refused.code, Some(5), "{}", show(&refused));
    let err = &refused.stderr;
    assert!(
        err.contains(&format!("rollout {NAME} is frozen by {}", who()))
            && err.contains(": incident 42 (until ")
            && err.contains("`wavectl unfreeze raid-health`"),
        "{err}"
    );
    // `status` lists it.
    let st = s.wavectl(&["status"]);
    assert!(
        st.stdout.contains("FROZEN") && st.stdout.contains("incident 42"),
        "{}",
        show(&st)
    );
    // Purge is not blocked.
    let purge = s.wavectl(&["purge", NAME, "--inventory", "inventory.toml", "--yes"]);
    assert_eq!(purge.code, Some(0), "{}", show(&purge));
    for h in s.fleet.hosts() {
        assert!(
            !h.path(INSTALL).exists(),
            "{} still holds the script",
            h.name()
        );
    }
    // Audited.
    let audit = std::fs::read_to_string(s.state().join("audit.jsonl")).unwrap();
    for action in ["\"promote\"", "\"freeze\"", "\"refused\""] {
        assert!(audit.contains(action), "{action} not in {audit}");
    }
    let u = s.wavectl(&["unfreeze", NAME]);
    assert_eq!(u.code, Some(0), "{}", show(&u));
    assert!(!s.wavectl(&["status"]).stdout.contains("FROZEN"));
}

#[test]
fn a_freeze_from_another_process_holds_a_running_apply_at_the_wave_boundary_until_unfreeze() {
    let s = Workdir::new(fleet(2), "#!/bin/sh\necho raid ok\n", &spec("3s", ""));
    let apply = Bg::apply(&s);
    let h01 = s.fleet.host("h01");
    assert!(
        eventually(Duration::from_secs(30), || h01.path(INSTALL).exists()),
        "h01 was never deployed"
    );
    // Frozen during wave 1: wave 2 waits.
    let f = s.wavectl(&["freeze", "--all", "--reason", "change freeze"]);
    assert_eq!(f.code, Some(0), "{}", show(&f));
    let frozen = apply.event("frozen", Duration::from_secs(60));
    assert_eq!(frozen["wave"], 1, "{frozen}");
    assert_eq!(frozen["by"], who(), "{frozen}");
    assert_eq!(frozen["reason"], "change freeze", "{frozen}");
    assert_eq!(frozen["unfreeze"], "wavectl unfreeze --all", "{frozen}");
    let run = frozen["run"].as_str().unwrap().to_string();
    let st = s.wavectl(&["status", &run, "--json"]);
    let st: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(st["status"], "frozen", "{st}");
    assert!(
        !s.fleet.host("h02").path(INSTALL).exists(),
        "wave 2 began while frozen"
    );
    // Still held a while later (the run probes h01 meanwhile).
    thread::sleep(Duration::from_secs(3));
    assert!(
        !s.fleet.host("h02").path(INSTALL).exists(),
        "wave 2 began while frozen"
    );
    assert_eq!(state_of(&s, "h01"), Some(ManifestState::Probation));
    let u = s.wavectl(&["unfreeze", "--all"]);
    assert_eq!(u.code, Some(0), "{}", show(&u));
    let (code, stdout, stderr) = apply.wait();
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("\"event\":\"thawed\""), "{stdout}");
    for h in ["h01", "h02"] {
        assert_eq!(state_of(&s, h), Some(ManifestState::Confirmed), "{h}");
    }
}
