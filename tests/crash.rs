//! The controller killed with SIGKILL at many points of every command that changes hosts
//! (`apply`, `purge`, `purge --path`, `rollback RUN`, `reconcile`), then `reconcile`
//! with no arguments: every host ends either fully installed, as the journal says, or
//! clean; and at no moment did any journal call a host clean (or untouched) while it
//! held a wavectl file or ran a copy of the script. Every scenario runs with the runs in
//! a state directory, and again in PostgreSQL (`--store`, one database each).

mod common;

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wavectl::lab::LabHost;

use common::*;

const NAME: &str = "crashy";
const INSTALL: &str = "/usr/local/sbin/crashy";
const VENDOR: &str = "/usr/local/sbin/vendor-crashy";
const ORIGINAL: &str = "#!/bin/sh\n# what stood here before\n";
/// Kill points of a command: (journal lines the command has written, then a delay in ms).
fn points(cmd: &str) -> Vec<(usize, u64)> {
    if cmd == "apply" {
        // An apply of 3 hosts in 2 waves writes about 14 records (the install starts
        // the first run itself): kill it at each of the first 12.
        let mut p: Vec<(usize, u64)> = (1..=12).map(|l| (l, 0)).collect();
        p.extend([(1, 30), (2, 30)]);
        p
    } else {
        // The others write a few records (the beginning, then one per host) within a
        // second or so: kill them at moments after their start, and at each record.
        let mut p: Vec<(usize, u64)> = [5, 15, 25, 40, 55, 70, 100, 140, 200, 280]
            .iter()
            .map(|&d| (0, d))
            .collect();
        p.extend((1..=4).map(|l| (l, 0)));
        p.extend([(1, 20), (2, 20), (3, 10)]);
        p
    }
}

fn spec(fail_on: &str) -> String {
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
bake = "1s"
min_runs = 1
[health]
interval = "1s"
probe_timeout = "1s"
builtin = ["reachable", "script"]
# fails on {fail_on}
"#
    )
}

fn script(fail_on: &str) -> String {
    format!("#!/bin/sh\n[ \"$(hostname)\" = \"{fail_on}\" ] && exit 3\necho ok\n")
}

/// What a host holds of the rollout (or of the hand-installed VENDOR script).
#[derive(Debug)]
struct Held {
    files: bool,
    full: bool,
    running: bool,
    clean: bool,
}

fn running(h: &LabHost, path: &str) -> bool {
    let out = h.exec("ps -eo args=").unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().take(3).any(|w| w == path))
}

fn held(h: &LabHost, body: &str) -> Held {
    let state_dir = h.path(&format!("/var/lib/wavectl/{NAME}")).exists();
    let cron = h.path(&format!("/etc/cron.d/wavectl-{NAME}")).exists();
    let file = std::fs::read_to_string(h.path(INSTALL)).ok();
    let temp = !temp_dirs(h, NAME, INSTALL).is_empty();
    let confirmed =
        manifest(h, NAME).is_some_and(|m| m.state == wavectl::remote::ManifestState::Confirmed);
    let original = (h.name() == "h02").then_some(ORIGINAL);
    let run = running(h, INSTALL);
    let files = state_dir || cron || temp || (file.is_some() && file.as_deref() != original);
    let full = state_dir && cron && file.as_deref() == Some(body) && confirmed;
    Held {
        files,
        full,
        running: run,
        clean: !files && !run && file.as_deref() == original,
    }
}

fn held_vendor(h: &LabHost) -> Held {
    let file = h.path(VENDOR).exists();
    let cron = std::fs::read_to_string(h.path("/etc/cron.d/vendor-crashy"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(VENDOR) && !l.starts_with('#'));
    let run = running(h, VENDOR);
    Held {
        files: file || cron,
        full: false,
        running: run,
        clean: !file && !cron && !run,
    }
}

/// Each run's host states, the latest run last (by start time).
fn journals(w: &Workdir) -> Vec<(String, serde_json::Value)> {
    let list = w.wavectl(&["status", "--json"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let mut runs: Vec<(u64, String)> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["started_ms"].as_u64().unwrap(),
                v["run"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    runs.sort();
    runs.into_iter()
        .map(|(_, id)| {
            let one = w.wavectl(&["status", &id, "--json"]);
            assert_eq!(one.code, Some(0), "{}", one.stderr);
            (id, serde_json::from_str(one.stdout.trim()).unwrap())
        })
        .collect()
}

fn host_state(status: &serde_json::Value, host: &str) -> Option<String> {
    status["hosts"]
        .as_array()?
        .iter()
        .find(|x| x["host"] == host)
        .map(|x| x["state"].as_str().unwrap().to_string())
}

/// No journal calls a host clean, untouched or reverted while it holds the script or runs it.
fn assert_no_false_clean(w: &Workdir, vendor: bool, body: &str, label: &str) {
    let runs = journals(w);
    for h in w.fleet.hosts() {
        let now = if vendor {
            held_vendor(h)
        } else {
            held(h, body)
        };
        if !(now.files || now.running) {
            continue;
        }
        for (id, st) in &runs {
            let s = host_state(st, h.name()).unwrap_or_default();
            assert!(
                !matches!(s.as_str(), "clean" | "untouched" | "reverted"),
                "{label}: run {id} says {} is {s}, but it holds {now:?}",
                h.name()
            );
        }
    }
}

/// After the final reconcile: every host fully installed (and the latest journal that
/// names it says confirmed) or clean (and it says so).
fn assert_whole_or_clean(w: &Workdir, vendor: bool, body: &str, label: &str) {
    let runs = journals(w);
    for h in w.fleet.hosts() {
        let now = if vendor {
            held_vendor(h)
        } else {
            held(h, body)
        };
        let latest = runs
            .iter()
            .rev()
            .find_map(|(_, st)| host_state(st, h.name()))
            .unwrap_or_default();
        if latest.is_empty() && vendor {
            // No journal names it: the purge never began, the host is as it was.
            continue;
        }
        if now.full {
            assert_eq!(
                latest,
                "confirmed",
                "{label}: {} holds the install",
                h.name()
            );
        } else {
            assert!(
                now.clean,
                "{label}: {} is half-way: {now:?} (journal: {latest})",
                h.name()
            );
            assert!(
                matches!(latest.as_str(), "" | "clean" | "untouched" | "reverted"),
                "{label}: {} is clean but the journal says {latest}",
                h.name()
            );
        }
    }
    let left = ssh_processes(w.fleet.ssh_config().to_str().unwrap());
    assert!(left.is_empty(), "{label}: ssh left behind: {left:?}");
}

fn journal_lines(w: &Workdir) -> usize {
    if let Some(url) = &w.store {
        thread_local! {
            static COUNTERS: std::cell::RefCell<std::collections::HashMap<String, common::pg::Counter>> =
                Default::default();
        }
        return COUNTERS.with(|c| {
            c.borrow_mut()
                .entry(url.clone())
                .or_insert_with(|| common::pg::Counter::connect(url))
                .count("SELECT count(*) FROM wavectl_journal")
        });
    }
    let Ok(rd) = std::fs::read_dir(w.state().join("runs")) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            std::fs::read_to_string(e.path().join("journal.jsonl")).map_or(0, |t| t.lines().count())
        })
        .sum()
}

/// Run wavectl with `args`; SIGKILL it once the journals hold `lines` more lines and
/// `delay` has passed. True if it was killed (false: it ended first).
fn kill_at(w: &Workdir, args: &[&str], (lines, delay): (usize, u64)) -> bool {
    let base = journal_lines(w);
    let mut child = Command::new(bin())
        .args(w.args(args))
        .current_dir(w.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut reached: Option<Instant> = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if reached.is_none() && journal_lines(w) >= base + lines {
            reached = Some(Instant::now());
        }
        if reached.is_some_and(|r| r.elapsed() >= Duration::from_millis(delay)) {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{args:?} hung");
        thread::sleep(Duration::from_millis(1));
    }
}

fn ok(w: &Workdir, args: &[&str], codes: &[i32]) -> Run {
    let r = w.wavectl(args);
    assert!(
        r.code.is_some_and(|c| codes.contains(&c)),
        "{args:?}: exit {:?}\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    r
}

/// A fresh work dir on 3 hosts; h02 has an original file at the install path.
fn case(fail_on: &str, shared: bool) -> Workdir {
    let mut w = Workdir::new(fleet(3), &script(fail_on), &spec(fail_on));
    if shared {
        let url = common::pg::shared().database();
        w.store = Some(url);
        ok(&w, &["store", "init"], &[0]);
    }
    seed_original(w.fleet.host("h02"), INSTALL, ORIGINAL);
    w
}

fn latest_run(w: &Workdir) -> String {
    journals(w).last().map(|(id, _)| id.clone()).unwrap()
}

/// One scenario: set up, kill `cmd` at `point`, check, `reconcile`, check; the runs
/// in a state directory, or (`shared`) in a PostgreSQL database of their own.
fn scenario(cmd: &str, i: usize, shared: bool) -> Result<bool, String> {
    let point = points(cmd)[i];
    let fail_on = if i.is_multiple_of(2) { "none" } else { "h03" };
    let w = case(fail_on, shared);
    let body = script(fail_on);
    let mut vendor = false;
    let killed = match cmd {
        "apply" => kill_at(&w, &["apply", "rollout.toml", "--yes"], point),
        "rollback" => {
            ok(&w, &["apply", "rollout.toml", "--yes"], &[0, 1]);
            let run = latest_run(&w);
            kill_at(&w, &["rollback", "--yes", &run], point)
        }
        "reconcile" => {
            // An apply whose controller died part-way: reconcile rolls it back.
            kill_at(&w, &["apply", "rollout.toml", "--yes"], (3, 0));
            kill_at(&w, &["reconcile", "--yes"], point)
        }
        "purge" => {
            ok(&w, &["apply", "rollout.toml", "--yes"], &[0, 1]);
            for h in w.fleet.hosts() {
                // A copy that runs on: the purge must kill it before calling the host clean.
                exec_ok(h, &format!("[ -x {INSTALL} ] && (setsid {INSTALL} >/dev/null 2>&1 </dev/null &) ; true"));
            }
            kill_at(
                &w,
                &["purge", "--yes", NAME, "--inventory", "inventory.toml"],
                point,
            )
        }
        "purge-path" => {
            vendor = true;
            for h in w.fleet.hosts() {
                exec_ok(
                    h,
                    &format!(
                        "set -e; mkdir -p /usr/local/sbin /etc/cron.d
printf '#!/bin/sh\\nsleep 300\\n' > {VENDOR}; chmod 0755 {VENDOR}
printf '*/10 * * * * root {VENDOR}\\n' > /etc/cron.d/vendor-crashy
setsid {VENDOR} </dev/null >/dev/null 2>&1 &"
                    ),
                );
                assert!(eventually(Duration::from_secs(5), || running(h, VENDOR)));
            }
            kill_at(
                &w,
                &[
                    "purge",
                    "--yes",
                    "--path",
                    VENDOR,
                    "--inventory",
                    "inventory.toml",
                ],
                point,
            )
        }
        other => unreachable!("{other}"),
    };
    let label = format!(
        "{cmd} killed at {point:?} (fail_on {fail_on}, {})",
        if shared {
            "PostgreSQL store"
        } else {
            "state directory"
        }
    );
    assert_no_false_clean(&w, vendor, &body, &label);
    ok(&w, &["reconcile", "--yes"], &[0]);
    assert_no_false_clean(&w, vendor, &body, &label);
    assert_whole_or_clean(&w, vendor, &body, &label);
    // A second reconcile finds nothing left to do.
    let again = ok(&w, &["reconcile", "--yes"], &[0]);
    if !again.stdout.contains("nothing to reconcile") {
        return Err(format!(
            "{label}: second reconcile did work:\n{}",
            again.stdout
        ));
    }
    Ok(killed)
}

/// Every kill point of `cmd`, with the runs in a state directory and again with them in
/// PostgreSQL (the same assertions), two scenarios at a time: the machine has two cores.
fn command_at_many_points(cmd: &'static str) {
    let mut killed = [0, 0];
    let mut failures = Vec::new();
    let n = points(cmd).len();
    // PostgreSQL at half the points (pairs of them: both fail_on cases), to keep the
    // suite's time down: the store is below the engine, and the points are alike.
    let all: Vec<(usize, bool)> = (0..n)
        .map(|i| (i, false))
        .chain((0..n).filter(|i| (i / 2) % 2 == 0).map(|i| (i, true)))
        .collect();
    for pair in all.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|&(i, shared)| (shared, thread::spawn(move || scenario(cmd, i, shared))))
            .collect();
        for (shared, h) in handles {
            match h.join() {
                Ok(Ok(k)) => killed[usize::from(shared)] += usize::from(k),
                Ok(Err(e)) => failures.push(e),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        killed[0] >= 10 && killed[1] >= 5,
        "{cmd}: killed at only {} points with a state directory, {} with PostgreSQL",
        killed[0],
        killed[1]
    );
}

#[test]
fn apply_killed_at_many_points_then_reconcile() {
    command_at_many_points("apply");
}

#[test]
fn purge_killed_at_many_points_then_reconcile() {
    command_at_many_points("purge");
}

#[test]
fn purge_path_killed_at_many_points_then_reconcile() {
    command_at_many_points("purge-path");
}

#[test]
fn rollback_killed_at_many_points_then_reconcile() {
    command_at_many_points("rollback");
}

#[test]
fn reconcile_killed_at_many_points_then_reconcile() {
    command_at_many_points("reconcile");
}
