//! Change approval end to end: a plan approved by two allowed signers applies; too few
//! signers, one signer twice, a key not allowed, a signature over another plan, an
//! edited plan, a changed script and a changed inventory each refuse with exit 5 naming
//! the cause; the audit log and `report` hold what happened; `--json` streams parse.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SPEC: &str = r#"name = "approved"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "/usr/local/sbin/approved"
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
[policy]
approvals = 2
allowed_signers = "allowed_signers"
"#;

/// An ed25519 key pair in `dir`; returns the private key's path.
fn key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}_key"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn allowed(dir: &Path, who: &[(&str, &Path)]) {
    let mut text = String::new();
    for (name, k) in who {
        let pubkey = std::fs::read_to_string(format!("{}.pub", k.display())).unwrap();
        text.push_str(&format!("{name} namespaces=\"wavectl-plan\" {pubkey}"));
    }
    std::fs::write(dir.join("allowed_signers"), text).unwrap();
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

fn refused(w: &Workdir, plan: &str, cause: &str) {
    let r = w.wavectl(&["apply", plan, "--yes"]);
    assert_eq!(r.code, Some(5), "{}", show(&r));
    assert!(
        r.stderr.contains(cause),
        "expected {cause:?}:\n{}",
        show(&r)
    );
    for h in w.fleet.hosts() {
        assert!(
            !h.path("/usr/local/sbin/approved").exists(),
            "{} touched",
            h.name()
        );
    }
}

fn approve(w: &Workdir, plan: &str, key: &Path, by: &str) {
    let r = w.wavectl(&["approve", plan, "--key", key.to_str().unwrap(), "--by", by]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
}

#[test]
fn a_plan_needs_two_distinct_allowed_signers_and_refuses_anything_stale() {
    let w = Workdir::new(fleet(2), "#!/bin/sh\necho ok\n", SPEC);
    let d = w.path();
    let (ann, bob, eve) = (key(d, "ann"), key(d, "bob"), key(d, "eve"));
    allowed(d, &[("ann", &ann), ("bob", &bob)]);

    let c = w.wavectl(&["check", "rollout.toml"]);
    assert_eq!(c.code, Some(0), "{}", show(&c));
    assert!(c.stdout.contains("policy.approvals = 2"), "{}", c.stdout);
    refused_spec(&w);

    let p = w.wavectl(&["plan", "rollout.toml", "-o", "change.plan"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    assert!(p.stdout.contains("estimate: at least"), "{}", p.stdout);
    refused(
        &w,
        "change.plan",
        "has 0 valid approvals of the 2 approvals it needs",
    );
    approve(&w, "change.plan", &ann, "ann");
    refused(
        &w,
        "change.plan",
        "has 1 valid approval of the 2 approvals it needs (policy.approvals): ann",
    );
    // The same signer twice counts once.
    approve(&w, "change.plan", &ann, "ann-again");
    refused(&w, "change.plan", "ann signed more than once");
    // A key the allowed signers do not list.
    approve(&w, "change.plan", &eve, "bob");
    refused(
        &w,
        "change.plan",
        "is not from a key the allowed signers list",
    );

    // A signature over another plan's hash does not count for this one.
    std::fs::write(d.join("script.sh"), "#!/bin/sh\necho other\n").unwrap();
    let p2 = w.wavectl(&["plan", "rollout.toml", "-o", "other.plan"]);
    assert_eq!(p2.code, Some(0), "{}", show(&p2));
    let aj = w.wavectl(&[
        "--json",
        "approve",
        "other.plan",
        "--key",
        bob.to_str().unwrap(),
        "--by",
        "bob",
    ]);
    let aj: serde_json::Value = serde_json::from_str(aj.stdout.trim()).unwrap();
    assert_eq!(aj["event"], "approved");
    assert_eq!(aj["needed"], 2);
    std::fs::write(d.join("script.sh"), "#!/bin/sh\necho ok\n").unwrap();
    let mut this: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("change.plan")).unwrap()).unwrap();
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("other.plan")).unwrap()).unwrap();
    let mut with_foreign = this.clone();
    with_foreign["approvals"]
        .as_array_mut()
        .unwrap()
        .push(other["approvals"][0].clone());
    std::fs::write(d.join("foreign.plan"), with_foreign.to_string()).unwrap();
    refused(&w, "foreign.plan", "does not sign this plan's hash");

    // An edited plan.
    let mut edited = this.clone();
    edited["content"]["policy"]["bake"] = 5.into();
    std::fs::write(d.join("edited.plan"), edited.to_string()).unwrap();
    refused(
        &w,
        "edited.plan",
        "the plan was edited after it was written",
    );

    // Bob approves: two distinct allowed signers.
    approve(&w, "change.plan", &bob, "bob");
    this = serde_json::from_str(&std::fs::read_to_string(d.join("change.plan")).unwrap()).unwrap();
    assert_eq!(this["approvals"].as_array().unwrap().len(), 4);

    // A changed script, then a changed inventory: stale.
    std::fs::write(d.join("script.sh"), "#!/bin/sh\necho changed\n").unwrap();
    refused(&w, "change.plan", "the script changed: sha256");
    std::fs::write(d.join("script.sh"), "#!/bin/sh\necho ok\n").unwrap();
    let inv = std::fs::read_to_string(d.join("inventory.toml")).unwrap();
    let moved = inv.replace("address = \"h02\"", "address = \"h02-new\"");
    assert_ne!(moved, inv, "{inv}");
    std::fs::write(d.join("inventory.toml"), &moved).unwrap();
    refused(&w, "change.plan", "host h02: address h02 → h02-new");
    std::fs::write(d.join("inventory.toml"), &inv).unwrap();

    // Now it applies, and the run records the plan and who approved it.
    let r = w.wavectl(&["--json", "apply", "change.plan", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    for l in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["event"].is_string() && v["at"].is_string(), "{v}");
    }
    let run = serde_json::from_str::<serde_json::Value>(r.stdout.lines().next().unwrap()).unwrap()
        ["run"]
        .as_str()
        .unwrap()
        .to_string();
    let report = w.wavectl(&["report", &run]);
    assert_eq!(report.code, Some(0), "{}", show(&report));
    assert!(
        report.stdout.contains("| approved by | ann, bob |"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains(this["hash"].as_str().unwrap()),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("| h01 | 1 | confirmed |"),
        "{}",
        report.stdout
    );

    let rj = w.wavectl(&["--json", "report", &run]);
    let rj: serde_json::Value = serde_json::from_str(rj.stdout.trim()).unwrap();
    assert_eq!(rj["event"], "report");
    assert!(rj["markdown"].as_str().unwrap().contains("approved by"));

    // The audit log: the approvals, the refusals, and the run with its signers.
    let audit = std::fs::read_to_string(w.state().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().filter(|l| l["action"] == "approve").count(), 5);
    assert!(lines
        .iter()
        .any(|l| l["action"] == "apply" && l["outcome"] == "refused"));
    let done = lines
        .iter()
        .find(|l| l["action"] == "apply" && l["outcome"] == "done")
        .unwrap();
    assert_eq!(done["signers"], serde_json::json!(["ann", "bob"]));
    assert_eq!(done["run"], run.as_str());
    assert_eq!(done["plan_hash"], this["hash"]);
    assert_eq!(done["exit_code"], 0);
}

fn refused_spec(w: &Workdir) {
    let r = w.wavectl(&["apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(5), "{}", show(&r));
    assert!(r.stderr.contains("needs 2 approvals"), "{}", r.stderr);
}

#[test]
fn a_rolled_back_run_report_and_json_stream_hold_the_verdict() {
    let spec = SPEC
        .replace("approvals = 2\nallowed_signers = \"allowed_signers\"\n", "")
        .replace("echo ok", "");
    let w = Workdir::new(
        fleet(2),
        "#!/bin/sh\n[ \"$(hostname)\" = h02 ] && exit 9\necho ok\n",
        &spec,
    );
    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    assert_eq!(r.code, Some(1), "{}", show(&r));
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let run = events[0]["run"].as_str().unwrap().to_string();
    for e in &events {
        assert!(e["at"].is_string(), "{e}");
        assert_eq!(e["run"], run.as_str(), "{e}");
    }
    let verdict = events
        .iter()
        .find(|e| e["event"] == "verdict" && e["host"] == "h02")
        .expect("the verdict that caused the rollback");
    assert_eq!(verdict["verdict"]["health"], "degraded");
    let report = w.wavectl(&["report", &run]);
    assert!(
        report.stdout.contains("## Verdicts against hosts"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("| h02 | degraded | script:"),
        "{}",
        report.stdout
    );
    assert!(report.stdout.contains("rolled back"), "{}", report.stdout);
    let audit = std::fs::read_to_string(w.state().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"outcome\":\"rolled-back\""), "{audit}");
}
