//! The controller killed with SIGKILL at many points of a run (install, bake, confirm,
//! rollback), then `resume` or `rollback`: every host ends either fully installed and
//! recorded, or fully clean, and `status RUN` agrees with what the hosts hold.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const INSTALL: &str = "/usr/local/sbin/crashy";
const ORIGINAL: &str = "#!/bin/sh\n# what stood here before\n";

fn spec(fail_on: &str) -> String {
    format!(
        r#"name = "crashy"
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
bake = "2s"
min_runs = 1
[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]
"#
    ) + &format!("# fails on {fail_on}\n")
}

fn script(fail_on: &str) -> String {
    format!("#!/bin/sh\n[ \"$(hostname)\" = \"{fail_on}\" ] && exit 3\necho ok\n")
}

/// One work dir (see [`Workdir`]) and the script it rolls out.
struct Case {
    w: Workdir,
    body: String,
}

impl Case {
    fn new(fail_on: &str) -> Case {
        let w = Workdir::new(fleet(4), &script(fail_on), &spec(fail_on));
        // h02 had a file at install_path before.
        let out = w
            .fleet
            .host("h02")
            .exec(&format!(
                "mkdir -p /usr/local/sbin && printf '%s' '{ORIGINAL}' > {INSTALL}"
            ))
            .unwrap();
        assert!(out.status.success());
        Case {
            w,
            body: script(fail_on),
        }
    }

    fn journal(&self) -> Option<PathBuf> {
        let runs = std::fs::read_dir(self.w.state().join("runs")).ok()?;
        runs.flatten()
            .map(|e| e.path().join("journal.jsonl"))
            .find(|p| p.exists())
    }

    fn lines(&self) -> usize {
        self.journal()
            .and_then(|j| std::fs::read_to_string(j).ok())
            .map_or(0, |t| t.lines().count())
    }

    /// Start apply; SIGKILL it once the journal holds `kill_at` lines (None: let it finish).
    /// Returns the run id and whether it was killed.
    fn apply_and_kill(&self, kill_at: Option<usize>) -> (String, bool) {
        let mut child = Command::new(bin())
            .args(self.w.args(&["apply", "rollout.toml", "--yes"]))
            .current_dir(self.w.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut killed = false;
        loop {
            if let Some(_status) = child.try_wait().unwrap() {
                break;
            }
            if let Some(k) = kill_at {
                if self.lines() >= k {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    killed = true;
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "apply did not finish"
            );
            thread::sleep(Duration::from_millis(2));
        }
        let journal = self.journal().expect("a journal");
        let run = journal
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        (run, killed)
    }

    /// Each host fully installed and confirmed, or fully clean; `status RUN` agrees.
    fn assert_consistent(&self, run: &str, label: &str) {
        let st = self.w.wavectl(&["status", run, "--json"]);
        assert_eq!(st.code, Some(0), "{label}: {}", st.stderr);
        let status: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
        let body = &self.body;
        for h in self.w.fleet.hosts() {
            let name = h.name();
            let recorded = status["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["host"] == name)
                .map(|x| x["state"].as_str().unwrap().to_string())
                .unwrap_or_default();
            let state_dir = h.path("/var/lib/wavectl/crashy").exists();
            let cron = h.path("/etc/cron.d/wavectl-crashy").exists();
            let file = std::fs::read_to_string(h.path(INSTALL)).ok();
            let manifest = std::fs::read_to_string(h.path("/var/lib/wavectl/crashy/manifest.json"))
                .unwrap_or_default();
            let installed = state_dir
                && cron
                && file.as_deref() == Some(body.as_str())
                && manifest.contains("\"state\":\"confirmed\"");
            let original = if name == "h02" { Some(ORIGINAL) } else { None };
            let clean = !state_dir && !cron && file.as_deref() == original;
            assert!(
                installed || clean,
                "{label}: {name} is half-way: state dir {state_dir}, cron {cron}, file {file:?}, manifest {manifest}"
            );
            if installed {
                assert_eq!(
                    recorded, "confirmed",
                    "{label}: {name} holds the script but status says {recorded}"
                );
            } else {
                assert!(
                    recorded == "clean" || recorded == "untouched",
                    "{label}: {name} is clean but status says {recorded}"
                );
            }
        }
        let left = ssh_processes(self.w.fleet.ssh_config().to_str().unwrap());
        assert!(left.is_empty(), "{label}: ssh left behind: {left:?}");
    }
}

/// One scenario: kill at `kill_at` journal lines, then `how` (resume or rollback).
fn scenario(fail_on: &str, kill_at: usize, how: &str) -> Result<(), String> {
    let c = Case::new(fail_on);
    let (run, killed) = c.apply_and_kill(Some(kill_at));
    if !killed {
        return Err(format!("the run ended before line {kill_at}"));
    }
    let r = c.w.wavectl(&[how, &run]);
    let label = format!("fail_on={fail_on} kill_at={kill_at} then {how}");
    if !matches!(r.code, Some(0) | Some(1) | Some(3)) {
        let mut holders = String::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(fds) = std::fs::read_dir(e.path().join("fd")) {
                for fd in fds.flatten() {
                    if let Ok(t) = std::fs::read_link(fd.path()) {
                        if t.to_string_lossy().contains("locks/crashy.lock")
                            && t.starts_with(c.w.path())
                        {
                            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                            holders.push_str(&format!(
                                "{:?} {}\n",
                                e.path(),
                                String::from_utf8_lossy(&cmd)
                            ));
                        }
                    }
                }
            }
        }
        return Err(format!(
            "{label}: exit {:?}\n{}\n{}\nholders:\n{holders}",
            r.code, r.stdout, r.stderr
        ));
    }
    c.assert_consistent(&run, &label);
    Ok(())
}

/// How many journal lines a whole run writes.
fn full_length(fail_on: &str) -> usize {
    let c = Case::new(fail_on);
    let (run, _) = c.apply_and_kill(None);
    c.assert_consistent(&run, &format!("uninterrupted, fail_on={fail_on}"));
    c.lines()
}

#[test]
fn sigkill_at_many_points_then_resume_or_rollback_leaves_every_host_whole_or_clean() {
    // A run that succeeds (nothing fails) and one that rolls back (h03 fails in wave 2).
    let mut cases = Vec::new();
    for fail_on in ["none", "h03"] {
        let total = full_length(fail_on);
        assert!(total > 12, "journal of {total} lines");
        // Six kill points spread over the run, from the first install to the last removal.
        for i in 0..6 {
            let at = 3 + i * (total - 4) / 6;
            let how = if i % 2 == 0 { "resume" } else { "rollback" };
            cases.push((fail_on, at, how));
        }
    }
    let mut points: Vec<usize> = cases.iter().map(|c| c.1).collect();
    points.dedup();
    assert!(cases.len() >= 10, "{cases:?}");
    // Three at a time: the machine has two cores.
    let mut failures = Vec::new();
    for chunk in cases.chunks(3) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&(f, at, how)| thread::spawn(move || scenario(f, at, how)))
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
