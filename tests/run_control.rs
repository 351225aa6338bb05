//! Controlling a run from outside, against real lab hosts: the one-run-per-rollout lock,
//! `abort`, Ctrl-C (once: roll back; twice: exit at once), and a torn journal.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wavectl::lab::Fleet;

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const CRON: &str = "/etc/cron.d/wavectl-raid-health";

/// A work dir with an inventory of `fleet`, a fixed script and `spec`.
fn setup(fleet: Fleet, spec: &str) -> Workdir {
    Workdir::new(fleet, "#!/bin/sh\necho raid ok\n", spec)
}

/// What this file does with a work dir beyond the shared [`Workdir`].
trait RunControl {
    /// `wavectl .. --json apply rollout.toml --yes` in the background.
    fn spawn_apply(&self) -> Bg;
    fn assert_all_clean(&self);
    /// [`Workdir::assert_no_ssh_left`], after giving the masters of a finished command
    /// a moment to go.
    fn assert_no_ssh_left_soon(&self);
    fn journal(&self, run: &str) -> PathBuf;
}

impl RunControl for Workdir {
    fn spawn_apply(&self) -> Bg {
        let all = self.args(&["--json", "apply", "rollout.toml", "--yes"]);
        let mut child = Command::new(bin())
            .args(&all)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wavectl");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
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

    fn assert_all_clean(&self) {
        for h in self.fleet.hosts() {
            assert_no_wavectl_files(h, NAME, INSTALL);
            assert!(
                !h.path(INSTALL).exists(),
                "{} still holds {INSTALL}",
                h.name()
            );
        }
    }

    fn assert_no_ssh_left_soon(&self) {
        let needle = self.fleet.ssh_config().to_str().unwrap().to_string();
        // The masters of a finished command may take a moment to go.
        eventually(Duration::from_secs(3), || ssh_processes(&needle).is_empty());
        self.assert_no_ssh_left();
    }

    fn journal(&self, run: &str) -> PathBuf {
        self.state().join("runs").join(run).join("journal.jsonl")
    }
}

/// A wavectl running in the background, its stdout collected line by line.
struct Bg {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Bg {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The run id of the first event (`run_started`), waiting for it at most 20 s.
    fn run_id(&self) -> String {
        let mut id = None;
        let ok = eventually(Duration::from_secs(20), || {
            id = self.events().first().and_then(|e| {
                (e["event"] == "run_started").then(|| e["run"].as_str().unwrap().to_string())
            });
            id.is_some()
        });
        assert!(ok, "no run_started event; stdout so far: {:?}", self.lines);
        id.unwrap()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Wait for the exit, at most `within` (killing it and panicking past that):
    /// (exit code, elapsed, stdout, stderr).
    fn wait(mut self, within: Duration) -> (Option<i32>, Duration, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "wavectl did not exit within {within:?}; stdout: {:?}",
                    self.lines.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        let _ = self.reader.take().unwrap().join();
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let stdout = self.lines.lock().unwrap().join("\n");
        (status.code(), took, stdout, stderr)
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

/// Two hosts, canary h01 alone in wave 1, a bake of `bake`.
fn spec(bake: &str, on_failure: &str, checks: &str) -> String {
    format!(
        r#"name = "{NAME}"
description = "run control test rollout"
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
sizes = [1, "100%"]
canaries = ["h01"]
concurrency = 10
bake = "{bake}"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]
{checks}

[policy]
max_unhealthy = 0
on_failure = "{on_failure}"
"#
    )
}

fn long_bake() -> String {
    spec("30s", "rollback", "")
}

/// Wait until the canary h01 has its cron file (deployed), at most 20 s.
fn wait_deployed(s: &Workdir) {
    let h = s.fleet.host("h01");
    assert!(
        eventually(Duration::from_secs(20), || h.path(CRON).exists()),
        "h01 never got its cron file"
    );
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

#[test]
fn a_second_apply_of_the_same_rollout_is_refused_with_exit_2() {
    let s = setup(fleet(2), &long_bake());
    let first = s.spawn_apply();
    let run1 = first.run_id();
    // The lock is taken before run_started is printed; check it names run 1 and its pid.
    let lock =
        std::fs::read_to_string(s.state().join("locks").join(format!("{NAME}.lock"))).unwrap();
    assert_eq!(lock.trim(), format!("{run1} {}", first.pid()));

    let second = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(second.code, Some(2), "{}", show(&second));
    assert!(
        second.stderr.contains(&run1),
        "stderr does not name {run1}: {}",
        second.stderr
    );
    // The refused apply started no run of its own.
    let runs: Vec<_> = std::fs::read_dir(s.state().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(runs, vec![run1.clone()], "runs in the state dir");
    // `status` names the controller that drives run 1: this machine, its pid.
    let st = s.wavectl(&["status", &run1, "--json"]);
    let st: serde_json::Value = serde_json::from_str(st.stdout.trim()).unwrap();
    assert_eq!(st["driver"]["pid"], first.pid(), "{st}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(st["driver"]["host"], host.trim(), "{st}");

    wait_deployed(&s);
    let ab = s.wavectl(&["abort", &run1]);
    assert_eq!(ab.code, Some(0), "{}", show(&ab));
    let (code, _, stdout, stderr) = first.wait(Duration::from_secs(25));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The abort reached it as a stop request through the state directory, not a signal.
    let journal = std::fs::read_to_string(s.journal(&run1)).unwrap();
    let stop: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "stop")
        .collect();
    assert_eq!(stop.len(), 1, "{journal}");
    assert!(
        stop[0]["by"].as_str().unwrap().starts_with("abort by "),
        "{}",
        stop[0]
    );
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    // The lock died with its process: abort now says run 1 is not running.
    let ab2 = s.wavectl(&["abort", &run1]);
    assert_eq!(ab2.code, Some(2), "{}", show(&ab2));
}

#[test]
fn first_ctrl_c_rolls_back_and_exits_3() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    assert!(s.fleet.host("h01").path(INSTALL).exists());
    let sent = Instant::now();
    apply.signal(libc::SIGINT);
    let (code, _, stdout, stderr) = apply.wait(Duration::from_secs(25));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // It did not sit out the 30 s bake.
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "took {:?}",
        sent.elapsed()
    );
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    let st = s.wavectl(&["status", &run_id]);
    assert_eq!(st.code, Some(0), "{}", show(&st));
    let first = st.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("run {run_id}:")) && first.contains("aborted"),
        "{}",
        st.stdout
    );
    let js = s.wavectl(&["status", &run_id, "--json"]);
    assert_eq!(js.code, Some(0), "{}", show(&js));
    assert!(js.stdout.contains("\"aborted\""), "{}", js.stdout);
}

#[test]
fn second_ctrl_c_exits_at_once_leaving_the_journal_for_rollback() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    apply.signal(libc::SIGINT);
    thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    // The first interrupt may already have finished the rollback and exited.
    // SAFETY: kill(2) on our own child's pid (not yet reaped: still a valid pid).
    unsafe { libc::kill(apply.pid(), libc::SIGINT) };
    let (code, _, stdout, stderr) = apply.wait(Duration::from_secs(10));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // It was the second interrupt that ended it, not the end of the first one's rollback.
    assert!(stderr.contains("second interrupt"), "{stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "the second interrupt took {:?} to end it",
        sent.elapsed()
    );
    // The exit killed its ssh masters.
    s.assert_no_ssh_left_soon();

    let rb = s.wavectl(&["rollback", "--yes", &run_id]);
    assert_eq!(rb.code, Some(0), "{}", show(&rb));
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    assert_eq!(status_of(&s, &run_id), "rolled-back");
}

/// Cut the journal's last line in half; returns the half left in the file.
fn tear_last_line(journal: &Path) -> String {
    let text = std::fs::read_to_string(journal).unwrap();
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let start = body.rfind('\n').map_or(0, |p| p + 1);
    let last = &body[start..];
    let half = last[..last.len() / 2].to_string();
    std::fs::write(journal, format!("{}{half}", &body[..start])).unwrap();
    half
}

/// The torn half is gone (cut off before the next record was appended), and every line
/// of the journal reads.
fn assert_torn_half_cut(journal: &Path, half: &str) {
    let text = std::fs::read_to_string(journal).unwrap();
    assert!(text.ends_with('\n'));
    for l in text.lines() {
        assert_ne!(l, half, "the torn half is still in the journal");
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("unreadable journal line {l:?}: {e}"));
    }
}

/// The `status` of `status RUN --json`.
fn status_of(s: &Workdir, run_id: &str) -> String {
    let js = s.wavectl(&["status", run_id, "--json"]);
    assert_eq!(js.code, Some(0), "{}", show(&js));
    let v: serde_json::Value = serde_json::from_str(js.stdout.trim()).unwrap();
    v["status"].as_str().unwrap_or_default().to_string()
}

/// `status`, `status RUN` and `status RUN --json` all work and show the run.
fn assert_status_shows(s: &Workdir, run_id: &str) {
    let all = s.wavectl(&["status"]);
    assert_eq!(all.code, Some(0), "{}", show(&all));
    assert!(
        all.stdout.lines().any(|l| l.starts_with(run_id)),
        "{}",
        all.stdout
    );
    let all_js = s.wavectl(&["status", "--json"]);
    assert_eq!(all_js.code, Some(0), "{}", show(&all_js));
    assert!(all_js.stdout.contains(run_id), "{}", all_js.stdout);
    let one = s.wavectl(&["status", run_id]);
    assert_eq!(one.code, Some(0), "{}", show(&one));
    assert!(
        one.stdout.starts_with(&format!("run {run_id}:")),
        "{}",
        one.stdout
    );
    for host in ["h01", "h02"] {
        assert!(
            one.stdout.lines().any(|l| l.starts_with(host)),
            "{host} missing:\n{}",
            one.stdout
        );
    }
    let js = s.wavectl(&["status", run_id, "--json"]);
    assert_eq!(js.code, Some(0), "{}", show(&js));
    let v: serde_json::Value = serde_json::from_str(js.stdout.trim())
        .unwrap_or_else(|e| panic!("status --json is not one JSON value ({e}): {}", js.stdout));
    assert!(v.is_object(), "{v}");
}

#[test]
fn a_torn_last_journal_line_is_ignored_after_a_pause() {
    let checks =
        "[[health.check]]\nname = \"app\"\ncommand = \"test \\\"$(hostname)\\\" != h02\"\n";
    // A bake longer than the 2 s interval: the check fails in at least two rounds (its
    // failing twice is what fails h02) however long one round takes on a busy machine.
    let spec = spec("3s", "pause", checks)
        .replace("sizes = [1, \"100%\"]", "sizes = [\"100%\"]")
        .replace("canaries = [\"h01\"]\n", "");
    let s = setup(fleet(2), &spec);
    let r = s.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(1), "{}", show(&r));
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    let run_id = first["run"].as_str().unwrap().to_string();
    for h in s.fleet.hosts() {
        assert!(
            h.path(INSTALL).exists(),
            "{}: paused run left no script",
            h.name()
        );
    }

    let half = tear_last_line(&s.journal(&run_id));
    assert_status_shows(&s, &run_id);

    let rb = s.wavectl(&["rollback", "--yes", &run_id]);
    assert_eq!(rb.code, Some(0), "{}", show(&rb));
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    // The records appended after the torn line are read back.
    assert_eq!(status_of(&s, &run_id), "rolled-back");
    assert_torn_half_cut(&s.journal(&run_id), &half);
}

#[test]
fn a_torn_last_journal_line_of_a_killed_apply_is_ignored() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    // Let the bake start probing, then kill the controller outright.
    thread::sleep(Duration::from_millis(500));
    apply.signal(libc::SIGKILL);
    let (code, ..) = apply.wait(Duration::from_secs(5));
    assert_eq!(code, None, "killed by a signal");
    assert!(s.fleet.host("h01").path(INSTALL).exists());
    // SIGKILL leaves the mux masters; they must not hold the hosts for what follows.
    for (pid, _) in ssh_processes(s.fleet.ssh_config().to_str().unwrap()) {
        // SAFETY: kill(2) on an ssh master of this test's fleet.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }

    let half = tear_last_line(&s.journal(&run_id));
    assert_status_shows(&s, &run_id);

    let rb = s.wavectl(&["rollback", "--yes", &run_id]);
    assert_eq!(rb.code, Some(0), "{}", show(&rb));
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    assert_eq!(status_of(&s, &run_id), "rolled-back");
    assert_torn_half_cut(&s.journal(&run_id), &half);
}

#[test]
fn a_killed_apply_with_a_torn_journal_line_resumes_to_the_end() {
    let s = setup(fleet(2), &spec("6s", "rollback", ""));
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    thread::sleep(Duration::from_millis(500));
    apply.signal(libc::SIGKILL);
    let (code, ..) = apply.wait(Duration::from_secs(5));
    assert_eq!(code, None, "killed by a signal");
    for (pid, _) in ssh_processes(s.fleet.ssh_config().to_str().unwrap()) {
        // SAFETY: kill(2) on an ssh master of this test's fleet.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let half = tear_last_line(&s.journal(&run_id));
    assert_status_shows(&s, &run_id);

    let r = s.wavectl(&["resume", "--yes", &run_id]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    for h in s.fleet.hosts() {
        let m = manifest(h, "raid-health").unwrap();
        assert_eq!(
            m.state,
            wavectl::remote::ManifestState::Confirmed,
            "{}: {m:?}",
            h.name()
        );
        assert!(h.path(CRON).exists(), "{}", h.name());
    }
    s.assert_no_ssh_left_soon();
    assert_eq!(status_of(&s, &run_id), "done");
    assert_torn_half_cut(&s.journal(&run_id), &half);

    let rb = s.wavectl(&["rollback", "--yes", &run_id]);
    assert_eq!(rb.code, Some(0), "{}", show(&rb));
    s.assert_all_clean();
}

#[test]
fn sigterm_during_the_bake_rolls_back_and_exits_3() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    // Mid-interval: the stop request must not wait for the next probe round.
    thread::sleep(Duration::from_millis(700));
    apply.signal(libc::SIGTERM);
    let (code, _, stdout, stderr) = apply.wait(Duration::from_secs(25));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("SIGTERM"), "{stdout}");
    s.assert_all_clean();
    s.assert_no_ssh_left_soon();
    assert_eq!(status_of(&s, &run_id), "aborted");
}

#[test]
fn purge_during_an_apply_stops_it_first_and_removes_once() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let apply_run = apply.run_id();
    wait_deployed(&s);
    let p = s.wavectl(&[
        "--json",
        "purge",
        "--yes",
        NAME,
        "--inventory",
        "inventory.toml",
    ]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    assert!(p.stderr.contains("asked it to stop"), "{}", p.stderr);
    let (code, _, stdout, stderr) = apply.wait(Duration::from_secs(25));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    s.assert_all_clean();
    // No race: the purge began after the apply's rollback had ended.
    let first: serde_json::Value = serde_json::from_str(p.stdout.lines().next().unwrap()).unwrap();
    let purge_run = first["run"].as_str().unwrap().to_string();
    let applied = s.wavectl(&["status", &apply_run, "--json"]);
    let applied: serde_json::Value = serde_json::from_str(applied.stdout.trim()).unwrap();
    let purged = s.wavectl(&["status", &purge_run, "--json"]);
    let purged: serde_json::Value = serde_json::from_str(purged.stdout.trim()).unwrap();
    assert_eq!(applied["status"], "aborted", "{applied}");
    assert_eq!(purged["status"], "purged", "{purged}");
    // The purge asked through the state directory: the apply's stop names it.
    let journal = std::fs::read_to_string(s.journal(&apply_run)).unwrap();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"type\":\"stop\"") && l.contains("\"by\":\"purge by ")),
        "{journal}"
    );
    let apply_ended = journal_times(&s.journal(&apply_run)).1;
    let purge_began = journal_times(&s.journal(&purge_run)).0;
    assert!(
        purge_began >= apply_ended,
        "the purge began ({purge_began}) before the apply's rollback ended ({apply_ended})"
    );
    s.assert_no_ssh_left_soon();
}

/// The `at` of a journal's first and last records.
fn journal_times(journal: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(journal).unwrap();
    let at = |l: &str| -> u64 {
        serde_json::from_str::<serde_json::Value>(l).unwrap()["at"]
            .as_u64()
            .unwrap()
    };
    (
        at(text.lines().next().unwrap()),
        at(text.lines().last().unwrap()),
    )
}

#[test]
fn an_apply_or_a_second_purge_during_a_purge_is_refused() {
    let s = setup(fleet(2), &spec("1s", "rollback", ""));
    let r = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    // A frozen host holds the purge at its login deadline.
    s.fleet.host("h02").freeze().unwrap();
    let purge = Command::new(bin())
        .args(s.args(&[
            "purge",
            "--yes",
            NAME,
            "--inventory",
            "inventory.toml",
            "--login-timeout",
            "6s",
        ]))
        .current_dir(s.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = s.state().join("locks").join(format!("{NAME}.lock"));
    assert!(eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("purge"))
    }));
    let a = s.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(a.code, Some(2), "{}", show(&a));
    assert!(a.stderr.contains("purge"), "{}", a.stderr);
    let p2 = s.wavectl(&["purge", "--yes", NAME, "--inventory", "inventory.toml"]);
    assert_eq!(p2.code, Some(2), "{}", show(&p2));
    assert!(p2.stderr.contains("race"), "{}", p2.stderr);
    let out = purge.wait_with_output().unwrap();
    // h02 did not answer in time: pending (exit 4), then reconcile finishes it.
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.fleet.host("h02").thaw().unwrap();
    let rc = s.wavectl(&["reconcile", "--yes"]);
    assert_eq!(rc.code, Some(0), "{}", show(&rc));
    s.assert_all_clean();
}

#[test]
fn a_corrupt_middle_journal_line_stops_every_command_naming_file_and_line() {
    let s = setup(fleet(2), &long_bake());
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    // A middle line needs three: wait for the third record (the bake's first round, late
    // on a busy machine), not for a fixed time.
    let journal = s.journal(&run_id);
    assert!(eventually(Duration::from_secs(60), || {
        std::fs::read_to_string(&journal).is_ok_and(|t| t.lines().count() >= 3)
    }));
    apply.signal(libc::SIGKILL);
    apply.wait(Duration::from_secs(5));
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    lines[1] = "{\"v\":1,\"at\":5,\"type\":\"result\",\"host\":";
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let before: Vec<bool> = s
        .fleet
        .hosts()
        .iter()
        .map(|h| h.path(INSTALL).exists())
        .collect();
    for args in [
        vec!["status", run_id.as_str()],
        vec!["resume", "--yes", run_id.as_str()],
        vec!["rollback", "--yes", run_id.as_str()],
        vec!["reconcile", "--yes", run_id.as_str()],
    ] {
        let r = s.wavectl(&args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", show(&r));
        assert!(
            r.stderr.contains(&format!(
                "{}:2: unreadable journal record",
                journal.display()
            )),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing was guessed: the hosts are as the killed apply left them.
    let after: Vec<bool> = s
        .fleet
        .hosts()
        .iter()
        .map(|h| h.path(INSTALL).exists())
        .collect();
    assert_eq!(before, after);
    // The hosts' own manifests still let purge clean up.
    let p = s.wavectl(&["purge", "--yes", NAME, "--inventory", "inventory.toml"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    s.assert_all_clean();
}

#[test]
fn a_killed_apply_shows_as_interrupted_and_resumes_from_another_directory() {
    let s = setup(fleet(2), &spec("4s", "rollback", ""));
    let apply = s.spawn_apply();
    let run_id = apply.run_id();
    wait_deployed(&s);
    apply.signal(libc::SIGKILL);
    apply.wait(Duration::from_secs(5));
    let st = s.wavectl(&["status"]);
    let line = st.stdout.lines().find(|l| l.contains(&run_id)).unwrap();
    assert!(line.contains("interrupted"), "{}", st.stdout);
    // From elsewhere, with a unique prefix of the run id.
    let elsewhere = tempfile::tempdir().unwrap();
    let prefix = &run_id[..run_id.len() - 2];
    let r = run(elsewhere.path(), s.args(&["resume", "--yes", prefix]), &[]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(status_of(&s, &run_id), "done");
    for h in s.fleet.hosts() {
        assert!(h.path(CRON).exists(), "{}", h.name());
    }
}

#[test]
fn a_state_directory_that_cannot_be_written_is_bad_input_and_touches_nothing() {
    let s = setup(fleet(1), &spec("1s", "rollback", ""));
    let not_a_dir = s.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let r = run(
        s.path(),
        wavectl_args(
            s.fleet.ssh_config(),
            &not_a_dir,
            &["apply", "rollout.toml", "--yes"],
        ),
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(r.stderr.contains("plain-file"), "{}", r.stderr);
    s.assert_all_clean();
}
