//! Before any change, on real hosts: the preflight (a target down before the run refuses
//! it, exit 4, nothing changed on any host; `--skip-unreachable` leaves it out and says
//! so in the summary, the JSON events, `status` and `report`), and group health before
//! a wave (a member of the wave's `spread_by` group that is not a target, unhealthy,
//! holds the wave: the run pauses naming group and host; `resume` goes on once it is
//! healthy). What a host holds is compared from outside, through its overlay upper dirs.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;
use wavectl::lab::LabHost;
use wavectl::remote::ManifestState;

use common::*;

const NAME: &str = "raidcheck";
const INSTALL: &str = "/usr/local/sbin/raidcheck";
const SCRIPT: &str = "#!/bin/sh\necho raid ok\n";

fn spec(extra: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "10s"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = false
[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable"]
{extra}"#
    )
}

/// Every file under `root` (links not followed): type, mode, owner, size, mtime, bytes.
fn walk(root: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(m) = std::fs::symlink_metadata(root) else {
        out.insert(root.display().to_string(), "absent".into());
        return;
    };
    let mut facts = format!(
        "{:o} {}:{} {} {}.{}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    );
    if m.is_file() {
        facts += &format!(" {}", sha256_hex(&std::fs::read(root).unwrap()));
    } else if m.is_dir() {
        for e in std::fs::read_dir(root).unwrap().flatten() {
            walk(&e.path(), out);
        }
    }
    out.insert(root.display().to_string(), facts);
}

/// What a rollout would change on a host, as its overlay upper dirs hold it.
fn upper_facts(h: &LabHost) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in ["var/lib", "usr/local/sbin", "etc/cron.d"] {
        walk(&h.dir().join("upper").join(p), &mut out);
    }
    out
}

fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn event<'a>(all: &'a [Value], kind: &str) -> &'a Value {
    all.iter()
        .find(|v| v["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {all:?}"))
}

#[test]
fn a_target_down_before_the_run_refuses_it_unless_skip_unreachable_leaves_it_out() {
    let w = Workdir::new(
        fleet(3),
        SCRIPT,
        &spec("[waves]\nsizes = [1, \"100%\"]\nbake = \"1s\"\nmin_runs = 0\n"),
    );
    let f = &w.fleet;
    f.host("h02").kill().unwrap();
    let before: Vec<_> = f.hosts().iter().map(upper_facts).collect();

    // Refused: exit 4, h02 named, no host changed, no run begun.
    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("1 target is offline before the run; the run did not start and nothing was changed on any host:\n  h02: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--skip-unreachable"), "{}", r.stderr);
    let all = events(&r.stdout);
    let pf = event(&all, "preflight");
    assert_eq!(pf["checked"], 3);
    assert_eq!(pf["skipped"], false);
    assert_eq!(pf["offline"][0]["host"], "h02", "{pf}");
    assert!(all.iter().all(|v| v["event"] != "run_started"), "{all:?}");
    // The first line names the run (as every --json run's first line does).
    assert!(all[0]["run"].is_string(), "{:?}", all[0]);
    let after: Vec<_> = f.hosts().iter().map(upper_facts).collect();
    assert_eq!(before, after, "a host changed in a refused run");
    let st = w.wavectl(&["status"]);
    assert!(st.stdout.starts_with("no runs"), "{}", st.stdout);
    // The audit log keeps the refusal.
    let audit = std::fs::read_to_string(w.state().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["action"], &last["outcome"], &last["exit_code"]),
        (
            &Value::from("apply"),
            &Value::from("refused"),
            &Value::from(4)
        ),
        "{last}"
    );
    assert!(last["detail"].as_str().unwrap().contains("h02: "), "{last}");

    // Skipped: the others get it, h02 is reported and never touched.
    let r = w.wavectl(&[
        "--json",
        "apply",
        "rollout.toml",
        "--yes",
        "--skip-unreachable",
    ]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let all = events(&r.stdout);
    let pf = event(&all, "preflight");
    assert_eq!(pf["skipped"], true);
    assert_eq!(pf["offline"][0]["host"], "h02", "{pf}");
    // The first wave's host was logged in to.
    assert_eq!(pf["logins"], 1, "{pf}");
    // Right after the run began (its first line), from the journal.
    assert_eq!(all[0]["event"], "run_started");
    assert_eq!(all[1]["event"], "preflight");
    let started = event(&all, "run_started");
    assert_eq!(all[1]["run"], started["run"], "{all:?}");
    assert_eq!(started["hosts"], 2, "{started}");
    let sum = event(&all, "summary");
    assert_eq!(sum["skipped"][0][0], "h02", "{sum}");
    assert!(
        sum["outcome"]
            .as_str()
            .unwrap()
            .contains("1 target offline before the run skipped"),
        "{sum}"
    );
    let run = sum["run"].as_str().unwrap().to_string();
    for h in ["h01", "h03"] {
        let m = manifest(f.host(h), NAME).unwrap_or_else(|| panic!("{h}: no manifest"));
        assert_eq!(
            (m.run_id.as_str(), m.state),
            (run.as_str(), ManifestState::Confirmed)
        );
    }
    assert_eq!(upper_facts(f.host("h02")), before[1], "h02 was touched");

    // `status` and `report` know it from the journal.
    let st = w.wavectl(&["status", &run]);
    let line = st
        .stdout
        .lines()
        .find(|l| l.starts_with("h02"))
        .unwrap_or_else(|| panic!("{}", st.stdout));
    assert!(
        line.contains("skipped") && line.contains("offline before the run: "),
        "{line}"
    );
    let js = w.wavectl(&["--json", "status", &run]);
    let v: Value = serde_json::from_str(js.stdout.trim()).unwrap();
    assert_eq!(v["skipped"][0]["host"], "h02", "{v}");
    let rep = w.wavectl(&["report", &run]);
    assert!(rep.stdout.contains("## Preflight"), "{}", rep.stdout);
    assert!(rep.stdout.contains("| h02 | "), "{}", rep.stdout);

    // The human summary says it too (h03 again; h02 still down).
    let r = w.wavectl(&[
        "apply",
        "rollout.toml",
        "--yes",
        "--skip-unreachable",
        "--limit",
        "h02,h03",
    ]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let text = format!("{}{}", r.stdout, r.stderr);
    assert!(
        text.contains("preflight: 1 of 2 targets answered (SSH banner), 1 logged in; 1 target offline before the run, skipped"),
        "{text}"
    );
    assert!(
        text.contains("SKIPPED:     h02: offline before the run: "),
        "{text}"
    );
    assert_eq!(upper_facts(f.host("h02")), before[1], "h02 was touched");
    w.assert_no_ssh_left();
}

#[test]
fn an_unhealthy_group_member_outside_the_rollout_holds_the_wave() {
    // db-1 is the target; db-2, its group's standby, is not (role=standby).
    let fleet = fleet_with(&[
        ("db-1", &[("role", "db"), ("cluster", "pg-main")]),
        ("db-2", &[("role", "standby"), ("cluster", "pg-main")]),
    ]);
    let w = Workdir::new(
        fleet,
        SCRIPT,
        &spec(
            "[[health.check]]\nname = \"flag\"\ncommand = \"test ! -e /var/lib/wv-test-bad\"\n\
             [targets]\nselect = [\"role=db\"]\n\
             [waves]\nsizes = [1]\nspread_by = \"cluster\"\nbake = \"1s\"\nmin_runs = 0\n",
        ),
    );
    let f = &w.fleet;
    exec_ok(f.host("db-2"), "touch /var/lib/wv-test-bad");
    let standby = upper_facts(f.host("db-2"));

    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let all = events(&r.stdout);
    let sum = event(&all, "summary");
    assert_eq!(sum["status"], "paused", "{sum}");
    let outcome = sum["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("paused before wave 1, which does not start while a host of group pg-main is not healthy: db-2 is unhealthy: check flag: exit 1;"),
        "{outcome}"
    );
    let run = sum["run"].as_str().unwrap().to_string();
    assert!(
        manifest(f.host("db-1"), NAME).is_none(),
        "db-1 was deployed"
    );
    assert!(!f.host("db-1").path(INSTALL).exists());
    // The standby was only looked at.
    assert_eq!(upper_facts(f.host("db-2")), standby, "db-2 was changed");
    let st = w.wavectl(&["status", &run]);
    assert!(
        st.stdout
            .contains("paused: a host of group pg-main is not healthy: db-2 is unhealthy"),
        "{}",
        st.stdout
    );

    // Healthy again: resume samples the group again and goes on.
    exec_ok(f.host("db-2"), "rm /var/lib/wv-test-bad");
    let r = w.wavectl(&["resume", &run, "--yes"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let m = manifest(f.host("db-1"), NAME).expect("db-1 deployed after resume");
    assert_eq!(
        (m.run_id.as_str(), m.state),
        (run.as_str(), ManifestState::Confirmed)
    );
    assert!(manifest(f.host("db-2"), NAME).is_none());
    w.assert_no_ssh_left();
}
