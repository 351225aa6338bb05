//! The shared store (`--store postgres://…`) against a real PostgreSQL the tests start
//! themselves (tests/common/pg.rs), with two controllers standing for two bastions:
//! each its own state directory and HOME, both naming the same database.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::pg::{self, Cluster, PASSWORD};
use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";
const CRON: &str = "/etc/cron.d/wavectl-raid-health";

/// Two hosts, canary h01 alone in wave 1, a bake of `bake`.
fn spec(bake: &str) -> String {
    format!(
        r#"name = "{NAME}"
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
bake = "{bake}"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]

[policy]
max_unhealthy = 0
on_failure = "rollback"
"#
    )
}

/// A controller on a machine of its own: its state directory and HOME, the shared store.
struct Bastion {
    home: tempfile::TempDir,
    url: String,
    ssh_config: PathBuf,
    cwd: PathBuf,
}

impl Bastion {
    fn new(w: &Workdir, url: &str) -> Bastion {
        Bastion {
            home: tempfile::tempdir().unwrap(),
            url: url.to_string(),
            ssh_config: w.fleet.ssh_config().to_path_buf(),
            cwd: w.path().to_path_buf(),
        }
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = wavectl_args(&self.ssh_config, &self.home.path().join("state"), &[]);
        all.extend(["--store".to_string(), self.url.clone()]);
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("HOME", self.home.path().to_str().unwrap())]
    }

    fn wavectl(&self, args: &[&str]) -> Run {
        let r = run(&self.cwd, self.args(args), &self.env());
        assert_secret_kept(&r.stdout);
        assert_secret_kept(&r.stderr);
        r
    }

    /// `wavectl --json ARGS` in the background, its stdout collected line by line.
    fn spawn(&self, args: &[&str]) -> Bg {
        let mut all = vec!["--json"];
        all.extend(args);
        let mut child = Command::new(bin())
            .args(self.args(&all))
            .current_dir(&self.cwd)
            .env("HOME", self.home.path())
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
}

fn assert_secret_kept(text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password was printed:\n{text}"
    );
}

/// A wavectl running in the background.
struct Bg {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Bg {
    fn events(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The run id of `run_started`, waiting for it at most 30 s.
    fn run_id(&self) -> String {
        let mut id = None;
        let ok = eventually(Duration::from_secs(30), || {
            id = self.events().iter().find_map(|e| {
                (e["event"] == "run_started").then(|| e["run"].as_str().unwrap().to_string())
            });
            id.is_some()
        });
        assert!(ok, "no run_started event; stdout so far: {:?}", self.lines);
        id.unwrap()
    }

    /// Wait for the exit, at most `within` (the contract's bound, not a speed check):
    /// (exit code, stdout, stderr).
    fn wait(mut self, within: Duration) -> (Option<i32>, String, String) {
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
            thread::sleep(Duration::from_millis(20));
        };
        let _ = self.reader.take().unwrap().join();
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let stdout = self.lines.lock().unwrap().join("\n");
        assert_secret_kept(&stdout);
        assert_secret_kept(&stderr);
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

fn setup(hosts: usize, bake: &str) -> Workdir {
    Workdir::new(fleet(hosts), "#!/bin/sh\necho raid ok\n", &spec(bake))
}

/// A database of the shared cluster with the schema made by `store init`.
fn initialised(b: &Bastion) {
    let r = b.wavectl(&["store", "init"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
}

fn wait_deployed(w: &Workdir) {
    let h = w.fleet.host("h01");
    assert!(
        eventually(Duration::from_secs(30), || h.path(CRON).exists()),
        "h01 never got its cron file"
    );
}

fn assert_all_clean(w: &Workdir) {
    for h in w.fleet.hosts() {
        assert_no_wavectl_files(h, NAME, INSTALL);
        assert!(!h.path(INSTALL).exists(), "{} holds {INSTALL}", h.name());
    }
}

fn status_json(b: &Bastion, run: &str) -> serde_json::Value {
    let st = b.wavectl(&["--json", "status", run]);
    assert_eq!(st.code, Some(0), "{}", show(&st));
    serde_json::from_str(st.stdout.trim()).unwrap()
}

/// Every host of a run's status is clean (or was never touched).
fn assert_journal_clean(st: &serde_json::Value) {
    for h in st["hosts"].as_array().unwrap() {
        assert!(
            h["state"] == "clean" || h["state"] == "untouched",
            "{} is {}: {st}",
            h["host"],
            h["state"]
        );
    }
}

/// The journal of `run` as stored: (epoch, record type) in order.
fn journal_rows(c: &Cluster, url: &str, run: &str) -> Vec<(i64, String)> {
    c.sql(
        pg::db_of(url),
        &format!(
            "SELECT epoch, record::json->>'type' FROM wavectl_journal WHERE run = '{run}' ORDER BY seq"
        ),
    )
    .lines()
    .map(|l| {
        let (e, t) = l.split_once('|').unwrap();
        (e.parse().unwrap(), t.to_string())
    })
    .collect()
}

#[test]
fn store_init_upgrades_once_and_a_newer_schema_is_refused() {
    let c = pg::shared();
    let url = c.database();
    let w = Workdir::new(fleet(1), "#!/bin/sh\n", &spec("1s"));
    let b = Bastion::new(&w, &url);
    // No schema yet: every command says to run `store init` (exit 2), password hidden.
    let st = b.wavectl(&["status"]);
    assert_eq!(st.code, Some(2), "{}", show(&st));
    assert!(st.stderr.contains("store init"), "{}", st.stderr);
    assert!(
        st.stderr.contains("postgres:***@127.0.0.1"),
        "{}",
        st.stderr
    );
    let first = b.wavectl(&["store", "init"]);
    assert_eq!(first.code, Some(0), "{}", show(&first));
    assert!(
        first.stdout.contains("schema version 0 → 2"),
        "{}",
        first.stdout
    );
    let again = b.wavectl(&["store", "init"]);
    assert_eq!(again.code, Some(0), "{}", show(&again));
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    let st = b.wavectl(&["status"]);
    assert_eq!(st.code, Some(0), "{}", show(&st));
    // WAVECTL_STORE names it as well as --store does.
    let by_env = run(
        w.path(),
        wavectl_args(w.fleet.ssh_config(), &w.state(), &["status"]),
        &[("WAVECTL_STORE", url.as_str())],
    );
    assert_eq!(by_env.code, Some(0), "{}", show(&by_env));
    assert!(
        by_env
            .stdout
            .contains("no runs in postgres://postgres:***@"),
        "{}",
        by_env.stdout
    );
    // What is neither a URL nor a conninfo: exit 2, saying what is expected.
    let bad = run(
        w.path(),
        wavectl_args(
            w.fleet.ssh_config(),
            &w.state(),
            &["--store", "db.example", "status"],
        ),
        &[],
    );
    assert_eq!(bad.code, Some(2), "{}", show(&bad));
    assert!(bad.stderr.contains("conninfo"), "{}", bad.stderr);
    // A schema from a newer wavectl: refused, by every command and by init.
    c.sql(
        pg::db_of(&url),
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', true, '\\x00', 0)",
    );
    for args in [
        &["status"][..],
        &["store", "init"],
        &["apply", "rollout.toml", "--yes"],
    ] {
        let r = b.wavectl(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", show(&r));
        assert!(
            r.stderr.contains("schema version 99"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing was touched on the host.
    assert!(!w.fleet.host("h01").path(INSTALL).exists());
    // A store that does not answer: exit 2 before anything, password hidden.
    let gone = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/nowhere");
    let r = run(
        w.path(),
        wavectl_args(
            w.fleet.ssh_config(),
            &w.state(),
            &["--store", &gone, "status"],
        ),
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert_secret_kept(&r.stderr);
    assert!(r.stderr.contains("cannot reach the store"), "{}", r.stderr);
}

/// B sees A's baking run (with A's host and user), B's apply of the same rollout is
/// refused naming A's run, B's abort stops A (exit 3, rolled back); then B's purge
/// stops A's next apply and removes.
#[test]
fn a_second_bastion_sees_refuses_aborts_and_purges_the_first_ones_run() {
    let c = pg::shared();
    let url = c.database();
    let w = setup(2, "60s");
    let a = Bastion::new(&w, &url);
    let b = Bastion::new(&w, &url);
    initialised(&a);

    let apply = a.spawn(&["apply", "rollout.toml", "--yes"]);
    let run1 = apply.run_id();
    wait_deployed(&w);
    // B's status lists A's run, and who drives it.
    let list = b.wavectl(&["status"]);
    assert_eq!(list.code, Some(0), "{}", show(&list));
    assert!(list.stdout.contains(&run1), "{}", list.stdout);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        list.stdout.contains(&format!(
            "run {run1} is driven by root@{} (pid {})",
            host.trim(),
            apply.child.id()
        )),
        "{}",
        list.stdout
    );
    let st = status_json(&b, &run1);
    assert_eq!(st["driver"]["host"], host.trim(), "{st}");
    assert_eq!(st["driver"]["user"], "root", "{st}");
    assert_eq!(st["driver"]["pid"], apply.child.id(), "{st}");
    // B's apply of the same rollout: refused, naming A's run and host.
    let second = b.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(second.code, Some(2), "{}", show(&second));
    assert!(second.stderr.contains(&run1), "{}", second.stderr);
    assert!(second.stderr.contains(host.trim()), "{}", second.stderr);
    // B's abort: A rolls back and exits 3.
    let ab = b.wavectl(&["abort", &run1]);
    assert_eq!(ab.code, Some(0), "{}", show(&ab));
    let (code, stdout, stderr) = apply.wait(Duration::from_secs(60));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_all_clean(&w);
    let st = status_json(&b, &run1);
    assert_eq!(st["status"], "aborted", "{st}");
    // B's report of A's run, for the change ticket.
    let report = b.wavectl(&["report", &run1]);
    assert_eq!(report.code, Some(0), "{}", show(&report));
    assert!(report.stdout.contains(&run1), "{}", report.stdout);
    let stops: Vec<_> = journal_rows(c, &url, &run1)
        .into_iter()
        .filter(|(_, t)| t == "stop")
        .collect();
    assert_eq!(stops.len(), 1, "one stop record");

    // A applies again; B's purge stops it first, then removes.
    let apply = a.spawn(&["apply", "rollout.toml", "--yes"]);
    let run2 = apply.run_id();
    wait_deployed(&w);
    let p = b.wavectl(&["purge", "--yes", NAME, "--inventory", "inventory.toml"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    assert!(p.stderr.contains("asked it to stop"), "{}", p.stderr);
    let (code, stdout, stderr) = apply.wait(Duration::from_secs(60));
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_all_clean(&w);
    assert_eq!(status_json(&a, &run2)["status"], "aborted");
    // The audit log is the store's: A's applies and B's purge, seen from either.
    let audit = a.wavectl(&["--json", "audit"]);
    assert_eq!(audit.code, Some(0), "{}", show(&audit));
    let actions: Vec<String> = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    for want in ["apply started", "apply aborted", "purge started"] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
    }
}

/// A network partition stand-in: A's connection killed (A stays alive). B takes the run
/// over and rolls it back; A's next append is refused and A exits 4 having written
/// nothing after B's first record.
#[test]
fn a_controller_whose_connection_is_killed_loses_the_run_to_another() {
    let c = pg::shared();
    let url = c.database();
    let w = setup(2, "60s");
    let a = Bastion::new(&w, &url);
    let b = Bastion::new(&w, &url);
    initialised(&a);
    let apply = a.spawn(&["apply", "rollout.toml", "--yes"]);
    let run = apply.run_id();
    wait_deployed(&w);
    // The backend holding the rollout's advisory lock is A's.
    let killed = c.sql(
        pg::db_of(&url),
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    assert_eq!(killed, "t", "A's lock connection");
    let r = b.wavectl(&["reconcile", "--yes", &run]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let (code, stdout, stderr) = apply.wait(Duration::from_secs(90));
    assert_eq!(code, Some(4), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("lost run"), "{stderr}");
    assert_all_clean(&w);
    // One readable journal: A's records (one epoch), then B's (a newer one), never A's
    // after B's first.
    let rows = journal_rows(c, &url, &run);
    let first_b = rows
        .iter()
        .position(|(e, _)| *e > rows[0].0)
        .expect("B's records");
    assert!(
        rows[first_b..].iter().all(|(e, _)| *e > rows[0].0),
        "A wrote after B took over: {rows:?}"
    );
    let st = status_json(&a, &run);
    assert_journal_clean(&st);
}

/// PostgreSQL stopped mid-bake: A stops starting actions and exits 4 (within the
/// contract's bound), saying when the probation leases run out; once PostgreSQL is
/// back, `reconcile` finishes and records every host clean.
#[test]
fn the_store_going_away_mid_bake_stops_the_run_and_reconcile_finishes_later() {
    let c = Cluster::start();
    c.sql("postgres", "CREATE DATABASE gone");
    let url = c.url("gone");
    let w = setup(2, "60s");
    let a = Bastion::new(&w, &url);
    initialised(&a);
    let apply = a.spawn(&["apply", "rollout.toml", "--yes"]);
    let run = apply.run_id();
    // h01 installed and baking (its install's result recorded).
    assert!(
        eventually(Duration::from_secs(30), || {
            status_json(&a, &run)["hosts"][0]["state"] == "installed"
        }),
        "h01 never showed installed"
    );
    c.down();
    let (code, stdout, stderr) = apply.wait(Duration::from_secs(90));
    assert_eq!(code, Some(4), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("cannot reach the store"), "{stderr}");
    assert!(stderr.contains("leases run out by"), "{stderr}");
    // h02 was never started on: the run stopped before wave 2.
    assert!(!w.fleet.host("h02").path(INSTALL).exists());
    c.up();
    let r = a.wavectl(&["reconcile", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_all_clean(&w);
    let st = status_json(&a, &run);
    assert_journal_clean(&st);
}

/// `store import`: a state directory's runs and audit log copied in, once.
#[test]
fn store_import_copies_a_state_directorys_runs_once() {
    let c = pg::shared();
    let url = c.database();
    let w = setup(1, "1s");
    let done = w.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(done.code, Some(0), "{}", show(&done));
    let b = Bastion::new(&w, &url);
    initialised(&b);
    let state = w.state();
    // The state directory of the machine the runs were made on.
    let import = |b: &Bastion| {
        let args = wavectl_args(
            w.fleet.ssh_config(),
            &state,
            &["--store", &b.url, "store", "import"],
        );
        let r = run(w.path(), args, &b.env());
        assert_secret_kept(&r.stdout);
        assert_secret_kept(&r.stderr);
        r
    };
    let first = import(&b);
    assert_eq!(first.code, Some(0), "{}", show(&first));
    assert!(first.stdout.contains("imported 1 run"), "{}", first.stdout);
    let again = import(&b);
    assert_eq!(again.code, Some(0), "{}", show(&again));
    assert!(
        again.stdout.contains("imported 0 run(s)"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("1 already there"), "{}", again.stdout);
    let local = w.wavectl(&["--json", "status"]);
    let local: serde_json::Value =
        serde_json::from_str(local.stdout.lines().next().unwrap()).unwrap();
    let run = local["run"].as_str().unwrap();
    let shared = status_json(&b, run);
    assert_eq!(shared["status"], "done", "{shared}");
    let audit = |b: &Bastion| b.wavectl(&["--json", "audit"]).stdout.lines().count();
    let n = audit(&b);
    assert!(n >= 2, "audit entries: {n}");
    import(&b);
    assert_eq!(audit(&b), n, "a second import added audit entries");
}

/// A is SIGKILLed mid-bake; two standbys (`reconcile --watch`, on B and C) are running:
/// exactly one takes the run over after the grace, rolls it back, and audits it; every
/// host is clean; A's records and the standby's form one journal.
#[test]
fn a_standby_takes_over_a_run_whose_controller_died() {
    let c = pg::shared();
    let url = c.database();
    let w = setup(2, "60s");
    let a = Bastion::new(&w, &url);
    let b = Bastion::new(&w, &url);
    let c2 = Bastion::new(&w, &url);
    initialised(&a);
    let standby_b = b.spawn(&["reconcile", "--watch", "--grace", "2s"]);
    let standby_c = c2.spawn(&["reconcile", "--watch", "--grace", "2s"]);
    let mut apply = a.spawn(&["apply", "rollout.toml", "--yes"]);
    let run = apply.run_id();
    wait_deployed(&w);
    // While A lives, no standby takes its run.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(status_json(&b, &run)["status"], "running");
    apply.child.kill().unwrap();
    apply.child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || {
            status_json(&b, &run)["state"] == "rolled-back"
        }),
        "no standby rolled run {run} back: {}",
        status_json(&b, &run)
    );
    for s in [standby_b, standby_c] {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
        let (code, stdout, stderr) = s.wait(Duration::from_secs(30));
        assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    }
    assert_all_clean(&w);
    assert_journal_clean(&status_json(&a, &run));
    let rows = journal_rows(c, &url, &run);
    let epochs: std::collections::BTreeSet<i64> = rows.iter().map(|(e, _)| *e).collect();
    assert_eq!(epochs.len(), 2, "A's epoch and one standby's: {rows:?}");
    let first_b = rows.iter().position(|(e, _)| *e != rows[0].0).unwrap();
    assert!(
        rows[first_b..].iter().all(|(e, _)| *e != rows[0].0),
        "{rows:?}"
    );
    let audit = a.wavectl(&["--json", "audit"]);
    let takeovers: Vec<serde_json::Value> = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "takeover")
        .collect();
    assert_eq!(takeovers.len(), 1, "{}", audit.stdout);
    assert_eq!(takeovers[0]["run"], run.as_str());
}

/// Holds are team-wide: a freeze made from one bastion refuses the other's apply
/// (exit 5, naming the reason, nothing touched) and shows in its `status`; lifting it
/// from that other bastion lets the apply go.
#[test]
fn a_freeze_from_one_bastion_holds_the_other() {
    let c = pg::shared();
    let url = c.database();
    let w = setup(1, "1s");
    let a = Bastion::new(&w, &url);
    let b = Bastion::new(&w, &url);
    initialised(&a);
    let f = b.wavectl(&["freeze", NAME, "--reason", "incident 42"]);
    assert_eq!(f.code, Some(0), "{}", show(&f));
    let st = a.wavectl(&["status"]);
    assert_eq!(st.code, Some(0), "{}", show(&st));
    assert!(st.stdout.contains("incident 42"), "{}", st.stdout);
    let refused = a.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(refused.code, Some(5), "{}", show(&refused));
    assert!(refused.stderr.contains("incident 42"), "{}", refused.stderr);
    assert!(
        !w.fleet.host("h01").path(CRON).exists(),
        "a frozen apply touched h01"
    );
    let u = a.wavectl(&["unfreeze", NAME]);
    assert_eq!(u.code, Some(0), "{}", show(&u));
    let st = b.wavectl(&["status"]);
    assert!(!st.stdout.contains("incident 42"), "{}", st.stdout);
    let ok = a.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(ok.code, Some(0), "{}", show(&ok));
}
