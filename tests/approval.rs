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

/// The armored signature of `key` over `hash`, made by hand (as `approve` would).
fn sign_raw(key: &Path, hash: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "wavectl-plan", "-f"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("wavectl plan {hash}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Add an approval signed with `key`, claiming to be `by`, to the plan file by hand.
fn inject(dir: &Path, plan: &str, key: &Path, by: &str) {
    let p = dir.join(plan);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let sig = sign_raw(key, v["hash"].as_str().unwrap());
    v["approvals"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "by": by,
            "at": "2026-01-01T00:00:00Z",
            "signature": sig,
        }));
    std::fs::write(&p, v.to_string()).unwrap();
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
    approve(&w, "change.plan", &ann, "ann");
    refused(&w, "change.plan", "ann signed more than once");
    // A key the allowed signers do not list signs nothing, and a listed key signs only
    // under its own name.
    let e = w.wavectl(&["approve", "change.plan", "--key", eve.to_str().unwrap()]);
    assert_eq!(e.code, Some(2), "{}", show(&e));
    assert!(
        e.stderr
            .contains("is not a key of the plan's allowed signers"),
        "{}",
        show(&e)
    );
    let e = w.wavectl(&[
        "approve",
        "change.plan",
        "--key",
        ann.to_str().unwrap(),
        "--by",
        "bob",
    ]);
    assert_eq!(e.code, Some(2), "{}", show(&e));
    assert!(
        e.stderr
            .contains("signs as ann in the plan's allowed signers, not as bob"),
        "{}",
        show(&e)
    );
    // Eve's signature put in by hand is not counted either.
    inject(d, "change.plan", &eve, "bob");
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
    let approvals: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["action"] == "approve").collect();
    assert_eq!(approvals.len(), 4);
    // Each names the signer the allowed signers verified.
    for a in &approvals {
        let s = a["signers"].as_array().unwrap();
        assert!(s == &["ann"] || s == &["bob"], "{a}");
    }
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

/// The plan file as JSON.
fn plan_json(dir: &Path, plan: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(plan)).unwrap()).unwrap()
}

/// The audit log's entries.
fn audit(w: &Workdir) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.state().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Issue 13, case 4: with `policy.approvals = 2` and `policy.allowed_signers` in the
/// spec, `apply PLAN --allowed-signers MINE` accepted two signatures made with the
/// applier's own keys mapped to the approvers' names, and the audit log and the report
/// named two approvers who never saw the plan. `--allowed-signers` is only for a spec
/// that names none (exit 2 otherwise, audited), and nothing names an unverified signer.
#[test]
fn an_applier_cannot_pick_the_trust_anchor() {
    let w = Workdir::new(fleet(1), "#!/bin/sh\necho ok\n", SPEC);
    let d = w.path();
    let (ann, bob) = (key(d, "ann"), key(d, "bob"));
    let (m1, m2) = (key(d, "m1"), key(d, "m2"));
    allowed(d, &[("ann", &ann), ("bob", &bob)]);
    // Mallory's own file: the approvers' names on her keys.
    let mut mine = String::new();
    for (name, k) in [("ann", &m1), ("bob", &m2)] {
        let pubkey = std::fs::read_to_string(format!("{}.pub", k.display())).unwrap();
        mine.push_str(&format!("{name} namespaces=\"wavectl-plan\" {pubkey}"));
    }
    std::fs::write(d.join("mine"), mine).unwrap();

    let p = w.wavectl(&[
        "plan",
        "rollout.toml",
        "-o",
        "p.plan",
        "--allowed-signers",
        "mine",
    ]);
    assert_eq!(p.code, Some(2), "{}", show(&p));
    assert!(
        p.stderr.contains(
            "--allowed-signers mine is given, but the spec names its own allowed signers"
        ),
        "{}",
        show(&p)
    );
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "p.plan"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    let pj = plan_json(d, "p.plan");
    assert_eq!(
        pj["trust"]["allowed_signers"]["path"],
        d.join("allowed_signers")
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap(),
        "{pj}"
    );
    inject(d, "p.plan", &m1, "ann");
    inject(d, "p.plan", &m2, "bob");

    let r = w.wavectl(&["apply", "p.plan", "--allowed-signers", "mine", "--yes"]);
    assert_eq!(r.code, Some(2), "{}", show(&r));
    assert!(
        r.stderr.contains(
            "error: --allowed-signers mine is given, but the spec names its own allowed signers"
        ) && r
            .stderr
            .contains("help: approvals are checked against the spec's policy.allowed_signers"),
        "{}",
        show(&r)
    );
    refused(
        &w,
        "p.plan",
        "has 0 valid approvals of the 2 approvals it needs",
    );
    assert!(!w.state().join("runs").exists(), "a run began");

    // An approval that cannot be checked here (the allowed signers moved away) is kept
    // as claimed, and the audit log names no signer for it.
    std::fs::rename(d.join("allowed_signers"), d.join("away")).unwrap();
    let a = w.wavectl(&[
        "approve",
        "p.plan",
        "--key",
        m1.to_str().unwrap(),
        "--by",
        "ann",
    ]);
    assert_eq!(a.code, Some(0), "{}", show(&a));
    assert!(a.stdout.contains("not verified here"), "{}", show(&a));
    std::fs::rename(d.join("away"), d.join("allowed_signers")).unwrap();
    refused(&w, "p.plan", "has 0 valid approvals");

    let entries = audit(&w);
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "apply" && e["outcome"] == "refused")
        .collect();
    assert_eq!(refusals.len(), 3, "{entries:?}");
    assert_eq!(refusals[0]["exit_code"], 2, "{}", refusals[0]);
    for e in &entries {
        assert!(
            e.get("signers").is_none(),
            "an unverified signer is named: {e}"
        );
    }
    let claimed = entries.iter().find(|e| e["action"] == "approve").unwrap();
    assert!(
        claimed["detail"]
            .as_str()
            .unwrap()
            .starts_with("claimed by ann; not verified here: "),
        "{claimed}"
    );
}

/// A spec that names no allowed signers, approved against `plan --allowed-signers`.
fn spec_naming_none() -> String {
    SPEC.replace("allowed_signers = \"allowed_signers\"\n", "")
}

/// Issue 13, case 4: the hash left out the plan's creation, so an approved plan applied
/// again after its rollback. A plan applied once is refused (exit 5, naming the run);
/// for a spec naming no allowed signers, the file given at `plan` is the one the
/// approvals are checked against (another one at `apply` makes the plan stale).
#[test]
fn an_applied_plan_is_refused_the_second_time() {
    let w = Workdir::new(fleet(1), "#!/bin/sh\necho ok\n", &spec_naming_none());
    let d = w.path();
    let (ann, bob, m1) = (key(d, "ann"), key(d, "bob"), key(d, "m1"));
    allowed(d, &[("ann", &ann), ("bob", &bob)]);
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "p.plan"]);
    assert_eq!(p.code, Some(2), "{}", show(&p));
    assert!(
        p.stderr
            .contains("names no allowed-signers file to check them against"),
        "{}",
        show(&p)
    );
    let p = w.wavectl(&[
        "plan",
        "rollout.toml",
        "-o",
        "p.plan",
        "--allowed-signers",
        "allowed_signers",
    ]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    approve(&w, "p.plan", &ann, "ann");
    approve(&w, "p.plan", &bob, "bob");
    // Another file at `apply` (the approvers' names on the applier's key): stale.
    let pubkey = std::fs::read_to_string(format!("{}.pub", m1.display())).unwrap();
    std::fs::write(
        d.join("mine"),
        format!("ann namespaces=\"wavectl-plan\" {pubkey}bob namespaces=\"wavectl-plan\" {pubkey}"),
    )
    .unwrap();
    let r = w.wavectl(&["apply", "p.plan", "--allowed-signers", "mine", "--yes"]);
    assert_eq!(r.code, Some(5), "{}", show(&r));
    assert!(
        r.stderr.contains("is stale") && r.stderr.contains("- the allowed-signers file: "),
        "{}",
        show(&r)
    );

    let r = w.wavectl(&["--json", "apply", "p.plan", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let run = serde_json::from_str::<serde_json::Value>(r.stdout.lines().next().unwrap()).unwrap()
        ["run"]
        .as_str()
        .unwrap()
        .to_string();
    let rb = w.wavectl(&["rollback", &run, "--yes"]);
    assert_eq!(rb.code, Some(0), "{}", show(&rb));

    let again = w.wavectl(&["apply", "p.plan", "--yes"]);
    assert_eq!(again.code, Some(5), "{}", show(&again));
    assert!(
        again
            .stderr
            .contains(&format!("p.plan was applied already, by run {run} at ")),
        "{}",
        show(&again)
    );
    assert!(
        again.stderr.contains("a plan applies once"),
        "{}",
        show(&again)
    );
    assert!(
        !w.fleet
            .host("h01")
            .path("/usr/local/sbin/approved")
            .exists(),
        "the plan was applied again"
    );
    // Nor is it signed again.
    let a = w.wavectl(&["approve", "p.plan", "--key", ann.to_str().unwrap()]);
    assert_eq!(a.code, Some(5), "{}", show(&a));
    assert!(a.stderr.contains("was applied already"), "{}", show(&a));
}

/// Issue 13, case 4: an approval holds for a while only. A plan past its expiry (here
/// re-sealed by hand with an expiry in the past, and signed) is refused with exit 5.
#[test]
fn an_expired_plan_is_refused() {
    let w = Workdir::new(fleet(1), "#!/bin/sh\necho ok\n", SPEC);
    let d = w.path();
    let (ann, bob) = (key(d, "ann"), key(d, "bob"));
    allowed(d, &[("ann", &ann), ("bob", &bob)]);
    for bad in ["10s", "31d", "soon"] {
        let r = w.wavectl(&["plan", "rollout.toml", "-o", "p.plan", "--valid-for", bad]);
        assert_eq!(r.code, Some(2), "--valid-for {bad}: {}", show(&r));
    }
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "p.plan", "--valid-for", "1h"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    assert!(p.stdout.contains(", valid until "), "{}", show(&p));
    let pj = plan_json(d, "p.plan");
    let created = humantime::parse_rfc3339(pj["created"].as_str().unwrap()).unwrap();
    let expires = humantime::parse_rfc3339(pj["expires"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.duration_since(created).unwrap(),
        std::time::Duration::from_secs(3600)
    );
    // Default: 24 hours.
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "q.plan"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    let q = plan_json(d, "q.plan");
    let (c, e) = (
        humantime::parse_rfc3339(q["created"].as_str().unwrap()).unwrap(),
        humantime::parse_rfc3339(q["expires"].as_str().unwrap()).unwrap(),
    );
    assert_eq!(
        e.duration_since(c).unwrap(),
        std::time::Duration::from_secs(86400)
    );

    // Sealed again with an expiry an hour ago, then signed by both approvers.
    let mut pf: wavectl::plan::file::PlanFile =
        serde_json::from_value(plan_json(d, "p.plan")).unwrap();
    pf.created = "2020-01-01T00:00:00Z".into();
    pf.expires = "2020-01-02T00:00:00Z".into();
    pf.hash = wavectl::plan::file::hash(&pf);
    std::fs::write(d.join("old.plan"), serde_json::to_string(&pf).unwrap()).unwrap();
    inject(d, "old.plan", &ann, "ann");
    inject(d, "old.plan", &bob, "bob");
    refused(
        &w,
        "old.plan",
        "old.plan expired at 2020-01-02T00:00:00Z (it was written at 2020-01-01T00:00:00Z)",
    );
    let a = w.wavectl(&["approve", "old.plan", "--key", ann.to_str().unwrap()]);
    assert_eq!(a.code, Some(5), "{}", show(&a));
    assert!(a.stderr.contains("expired at"), "{}", show(&a));
}

/// Issue 13, case 4: the ssh_config (where an alias can be re-pointed at another host)
/// was not covered by the hash. A plan made with one ssh_config is stale once it
/// changes: exit 5 naming the file; applied as planned once it is back.
#[test]
fn a_changed_ssh_config_makes_the_plan_stale() {
    let w = Workdir::new(fleet(2), "#!/bin/sh\necho ok\n", SPEC);
    let d = w.path();
    let (ann, bob) = (key(d, "ann"), key(d, "bob"));
    allowed(d, &[("ann", &ann), ("bob", &bob)]);
    let p = w.wavectl(&["plan", "rollout.toml", "-o", "p.plan"]);
    assert_eq!(p.code, Some(0), "{}", show(&p));
    let cfg = w.fleet.ssh_config().to_path_buf();
    assert_eq!(
        plan_json(d, "p.plan")["trust"]["ssh_config"]["sha256"],
        sha256_hex(&std::fs::read(&cfg).unwrap())
    );
    approve(&w, "p.plan", &ann, "ann");
    approve(&w, "p.plan", &bob, "bob");

    // Alias h02 re-pointed at h01's port: the plan does not go there.
    let original = std::fs::read_to_string(&cfg).unwrap();
    let port = |host: &str| -> String {
        let block = original
            .split("\nHost ")
            .find(|b| b.starts_with(host))
            .unwrap();
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix("Port "))
            .unwrap()
            .to_string()
    };
    let (p1, p2) = (port("h01"), port("h02"));
    assert_ne!(p1, p2);
    let repointed = original.replacen(&format!("Port {p2}"), &format!("Port {p1}"), 1);
    assert_ne!(repointed, original);
    std::fs::write(&cfg, &repointed).unwrap();
    refused(
        &w,
        "p.plan",
        &format!("the ssh_config {} changed: sha256 ", cfg.display()),
    );
    std::fs::write(&cfg, &original).unwrap();
    let r = w.wavectl(&["apply", "p.plan", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
}
