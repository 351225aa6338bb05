//! The controller's own state (issue 13, cases 10 and 11d): a state directory that
//! exists but is not a directory, or that this user cannot read, is exit 2 with what to
//! do for every command that uses it — never "no runs" or "nothing to reconcile" while
//! runs there hold hosts; `status` lists a run whose journal is damaged, with its damage.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const NAME: &str = "stateful";
const INSTALL: &str = "/usr/local/sbin/stateful";

const SPEC: &str = r#"name = "stateful"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "/usr/local/sbin/stateful"
timeout = "20s"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true
[waves]
sizes = ["100%"]
bake = "0s"
min_runs = 0
[health]
interval = "1s"
probe_timeout = "1s"
builtin = ["reachable", "script"]
"#;

/// The uid the unreadable case runs as (`nobody`).
const NOBODY: u32 = 65534;

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

/// The run id of a `--json` apply or purge (its first line).
fn run_id(r: &Run) -> String {
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {}", show(r)));
    first["run"].as_str().unwrap().to_string()
}

/// Every command that reads or writes the state directory, for run `run`.
fn commands(run: &str, key: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["status"]),
        v(&["status", run]),
        v(&["status", run, "--watch"]),
        v(&["report", run]),
        v(&["resume", run, "--yes"]),
        v(&["rollback", run, "--yes"]),
        v(&["abort", run]),
        v(&["reconcile", "--yes"]),
        v(&["reconcile", run, "--yes"]),
        v(&["apply", "rollout.toml", "--yes"]),
        v(&["apply", "change.plan", "--yes"]),
        v(&["approve", "change.plan", "--key", key]),
        v(&["purge", NAME, "--yes", "--inventory", "inventory.toml"]),
        v(&[
            "purge",
            "--path",
            "/usr/local/sbin/other",
            "--yes",
            "--inventory",
            "inventory.toml",
        ]),
        v(&["demo"]),
    ]
}

/// Exit 2, the problem on stderr with a help line, and nothing of the run changed.
fn refused(what: &str, r: &Run, problem: &str) {
    assert_eq!(r.code, Some(2), "{what}: {}", show(r));
    assert!(
        r.stderr.contains(problem) && r.stderr.contains("\n  help: give --state-dir"),
        "{what}: expected {problem:?} and a help line: {}",
        show(r)
    );
    assert!(!r.stdout.contains("no runs"), "{what}: {}", show(r));
    assert!(
        !r.stdout.contains("nothing to reconcile"),
        "{what}: {}",
        show(r)
    );
}

/// Issue 13, case 10: run as the wrong user, or with `--state-dir` pointing at a file,
/// `status` said "no runs" and `reconcile` "nothing to reconcile" (exit 0) while runs
/// there held hosts. Now every command exits 2 saying what to do, and touches nothing.
#[test]
fn an_unusable_state_dir_is_exit_2_for_every_command() {
    let w = Workdir::new(fleet(1), "#!/bin/sh\necho ok\n", SPEC);
    let d = w.path();
    let h = w.fleet.host("h01");
    let a = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(a.code, Some(0), "{}", show(&a));
    let id = run_id(&a);
    assert!(h.path(INSTALL).exists(), "the run installed nothing");
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "change.plan"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    let journal = w.state().join("runs").join(&id).join("journal.jsonl");
    let before = std::fs::read(&journal).unwrap();
    let key = d.join("ann_key");
    let k = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(k.status.success());
    let key = key.to_str().unwrap();

    // `--state-dir` naming a file.
    let file = d.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    for args in commands(&id, key) {
        let mut all = vec![
            "--ssh-config".to_string(),
            w.fleet.ssh_config().to_str().unwrap().to_string(),
            "--state-dir".to_string(),
            file.to_str().unwrap().to_string(),
        ];
        all.extend(args.iter().cloned());
        let r = run(d, &all, &[]);
        refused(
            &format!("--state-dir FILE {}", args.join(" ")),
            &r,
            &format!(
                "the state directory {} is not a directory (it is a file)",
                file.display()
            ),
        );
    }

    // The state directory of another user (root, 0700), read by `nobody`; the files the
    // commands read besides it are readable by all.
    for p in [d, &d.join("change.plan")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(w.state(), std::fs::Permissions::from_mode(0o700)).unwrap();
    for args in commands(&id, key) {
        let r = run_as(
            NOBODY,
            d,
            w.args(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        let verb = if matches!(args[0].as_str(), "status" | "report" | "abort") {
            "read"
        } else {
            "read and write"
        };
        refused(
            &format!("as nobody: {}", args.join(" ")),
            &r,
            &format!(
                "cannot {verb} the state directory {}: Permission denied (os error 13) (it is \
                 owned by uid 0, mode 0700; this is uid {NOBODY})",
                w.state().display()
            ),
        );
    }

    // Nothing changed: the run's journal, the host's install.
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "the journal changed"
    );
    assert!(h.path(INSTALL).exists(), "the install is gone");
    let s = w.wavectl(&["status"]);
    assert_eq!(s.code, Some(0), "{}", show(&s));
    assert!(s.stdout.contains(&id), "{}", show(&s));
}

/// Issue 13, case 11d: `status` dropped a run whose journal is damaged from the list.
/// Now it is listed, with what read of it and why the rest does not; `reconcile` stops
/// on it rather than saying there is nothing to do.
#[test]
fn status_lists_a_run_whose_journal_is_damaged() {
    let w = Workdir::new(fleet(1), "#!/bin/sh\necho ok\n", SPEC);
    let a = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(a.code, Some(0), "{}", show(&a));
    let damaged = run_id(&a);
    std::fs::write(w.path().join("script.sh"), "#!/bin/sh\necho v2\n").unwrap();
    let b = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(b.code, Some(0), "{}", show(&b));
    let intact = run_id(&b);

    // A line in the middle of the first run's journal turns to garbage.
    let journal = w.state().join("runs").join(&damaged).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 2, "{text}");
    lines[1] = "{\"v\":1,\"at\":garbage";
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    // And a run whose journal cannot be read at all.
    let unreadable = "20000101T000000Z-stateful-0000";
    std::fs::create_dir_all(
        w.state()
            .join("runs")
            .join(unreadable)
            .join("journal.jsonl"),
    )
    .unwrap();

    let s = w.wavectl(&["status"]);
    assert_eq!(s.code, Some(0), "{}", show(&s));
    let row = |id: &str| {
        s.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("run {id} is not listed: {}", show(&s)))
            .to_string()
    };
    assert!(row(&damaged).contains(" damaged "), "{}", show(&s));
    assert!(row(&damaged).contains(NAME), "{}", show(&s));
    assert!(row(unreadable).contains(" damaged "), "{}", show(&s));
    assert!(row(&intact).contains(" done "), "{}", show(&s));
    assert!(
        s.stdout.contains(&format!(
            "run {damaged} is damaged: {}:2: unreadable journal record",
            journal.display()
        )),
        "{}",
        show(&s)
    );
    assert!(
        s.stdout.contains(&format!(
            "run {unreadable} is damaged: cannot read {}",
            w.state()
                .join("runs")
                .join(unreadable)
                .join("journal.jsonl")
                .display()
        )),
        "{}",
        show(&s)
    );

    let j = w.wavectl(&["--json", "status"]);
    assert_eq!(j.code, Some(0), "{}", show(&j));
    let lines: Vec<serde_json::Value> = j
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", show(&j));
    let of = |id: &str| lines.iter().find(|l| l["run"] == id).unwrap().clone();
    let d = of(&damaged);
    assert_eq!(d["status"], "damaged", "{d}");
    assert_eq!(d["rollout"], NAME, "{d}");
    assert_eq!(d["hosts"], 1, "{d}");
    assert!(
        d["damage"]
            .as_str()
            .unwrap()
            .contains(":2: unreadable journal record"),
        "{d}"
    );
    assert_eq!(of(unreadable)["status"], "damaged");
    assert_eq!(of(&intact)["status"], "done");
    assert!(of(&intact).get("damage").is_none());

    // `reconcile` cannot know what the damaged run left: it says so, exit 2.
    let r = w.wavectl(&["reconcile", "--yes"]);
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(!r.stdout.contains("nothing to reconcile"), "{}", show(&r));
    assert!(r.stderr.contains("journal.jsonl"), "{}", show(&r));
}
