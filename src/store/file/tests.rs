//! The file store through the `Store` trait: journals (append, read, a torn last line,
//! damage), the lock (held, named, released, fenced), stop requests, artefacts, the
//! audit log and the applied-plan claim under a race. Real files in a temp directory.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use super::*;
use crate::rollout::{Event, Record};
use crate::store::STOP_POLL;

fn store() -> (tempfile::TempDir, FileStore) {
    let t = tempfile::tempdir().unwrap();
    let s = FileStore::new(t.path().join("state"));
    (t, s)
}

fn me(run: &str) -> Holder {
    Holder::this_process(run)
}

fn tick(at: u64) -> Record {
    Record::new(at, Event::Tick)
}

fn line(at: u64) -> String {
    serde_json::to_string(&tick(at)).unwrap() + "\n"
}

#[tokio::test]
async fn records_appended_in_batches_read_back_in_order() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    s.check(Access::Write).await.unwrap();
    s.prepare().await.unwrap();
    assert!(s.runs().await.unwrap().is_empty());
    let lease = s.lock("app", &me("r1")).await.unwrap();
    let mut w = s.create(lease, "r1").await.unwrap();
    w.append(&[tick(1), tick(2)]).await.unwrap();
    w.append(&[tick(3)]).await.unwrap();
    let j = s.read("r1").await.unwrap();
    assert!(j.damage.is_none());
    let at: Vec<u64> = j.records.iter().map(|r| r.at).collect();
    assert_eq!(at, [1, 2, 3]);
    assert_eq!(s.runs().await.unwrap(), ["r1"]);
    // The same layout as ever: one JSON line per record.
    let path = s.journal_location("r1");
    assert!(path.ends_with("state/runs/r1/journal.jsonl"), "{path}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}{}{}", line(1), line(2), line(3))
    );
    // A second journal of the same run is refused.
    drop(w);
    let lease = s.lock("app", &me("r1")).await.unwrap();
    assert!(s.create(lease, "r1").await.is_err());
    assert!(matches!(s.read("r2").await, Err(StoreError::NoSuchRun(_))));
}

#[tokio::test]
async fn a_torn_last_line_is_ignored_and_cut_before_appending() {
    let (_t, s) = store();
    let dir = s.root().join("runs/r");
    std::fs::create_dir_all(&dir).unwrap();
    let full = line(1);
    let text = format!("{full}{full}{}", &full[..full.len() / 2]);
    std::fs::write(dir.join("journal.jsonl"), text).unwrap();
    let s: &dyn Store = &s;
    let j = s.read("r").await.unwrap();
    assert_eq!(j.records.len(), 2);
    assert!(j.damage.is_none(), "{:?}", j.damage);
    let lease = s.lock("app", &me("r")).await.unwrap();
    let (mut w, records) = s.open(lease, "r").await.unwrap();
    assert_eq!(records.len(), 2);
    w.append(&[tick(2)]).await.unwrap();
    let after = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert_eq!(after, format!("{full}{full}{}", line(2)));
    assert_eq!(s.read("r").await.unwrap().records.len(), 3);
}

#[tokio::test]
async fn a_damaged_run_is_listed_and_reads_up_to_its_damage() {
    let (_t, s) = store();
    let dir = s.root().join("runs/bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("journal.jsonl"),
        format!(
            "{}{{\"v\":1,\"at\":2,\"type\":\"nonsense\"}}\n{}",
            line(1),
            line(3)
        ),
    )
    .unwrap();
    // A run directory without a journal is no run.
    std::fs::create_dir_all(s.root().join("runs/never")).unwrap();
    let s: &dyn Store = &s;
    assert_eq!(s.runs().await.unwrap(), ["bad"]);
    let j = s.read("bad").await.unwrap();
    assert_eq!(j.records.len(), 1);
    match j.damage {
        Some(StoreError::Corrupt { at, .. }) => {
            assert!(at.ends_with("runs/bad/journal.jsonl:2"), "{at}")
        }
        other => panic!("{other:?}"),
    }
    let (state, damage) = s.inspect("bad").await;
    assert_eq!(state.now, 1);
    assert!(damage.is_some());
    assert!(s.load("bad").await.is_err());
}

#[tokio::test]
async fn run_ids_resolve_by_unique_prefix() {
    let (_t, s) = store();
    for r in ["20260101-a-1", "20260101-a-2", "20260102-b-1"] {
        let dir = s.root().join("runs").join(r);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("journal.jsonl"), "").unwrap();
    }
    let s: &dyn Store = &s;
    assert_eq!(s.resolve("20260102").await.unwrap(), "20260102-b-1");
    assert_eq!(s.resolve("20260101-a-2").await.unwrap(), "20260101-a-2");
    assert!(matches!(
        s.resolve("20260101").await,
        Err(StoreError::Ambiguous { .. })
    ));
    assert!(matches!(
        s.resolve("2027").await,
        Err(StoreError::NoSuchRun(_))
    ));
}

#[tokio::test]
async fn a_second_lock_is_refused_naming_the_holder_and_freed_with_the_writer() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    s.prepare().await.unwrap();
    let lease = s.lock("x", &me("run-1")).await.unwrap();
    assert_eq!(lease.epoch, 0);
    // The lock file's format is as it was: `RUN PID`.
    let file = s.describe() + "/locks/x.lock";
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("run-1 {}\n", std::process::id())
    );
    let holder = s.holder("x").await.unwrap().unwrap();
    assert_eq!(holder.run, "run-1");
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.host, crate::store::local_host());
    // The user the holding process runs as.
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(holder.user, super::lock::user_name(uid));
    match s.lock("x", &me("run-2")).await {
        Err(e @ StoreError::Locked { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "rollout `x` is being worked on by run run-1 (pid {}, ",
                    std::process::id()
                )),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Another rollout is free.
    let _y = s.lock("y", &me("run-3")).await.unwrap();
    let w = s.create(lease, "run-1").await.unwrap();
    assert!(s.holder("x").await.unwrap().is_some());
    drop(w);
    assert!(s.holder("x").await.unwrap().is_none());
    let _again = s.lock("x", &me("run-2")).await.unwrap();
}

#[tokio::test]
async fn a_writer_whose_lock_file_was_replaced_is_fenced() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    s.prepare().await.unwrap();
    let lease = s.lock("x", &me("r")).await.unwrap();
    let mut w = s.create(lease, "r").await.unwrap();
    w.append(&[tick(1)]).await.unwrap();
    // Someone removes the lock file: another controller could now lock a new one.
    let file = s.describe() + "/locks/x.lock";
    std::fs::remove_file(&file).unwrap();
    let other = s.lock("x", &me("r2")).await.unwrap();
    let e = w.append(&[tick(2)]).await.unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e:?}");
    assert!(e.is_lost());
    assert!(
        e.to_string().starts_with("lost run r: the lock file "),
        "{e}"
    );
    // Nothing of the refused append reached the journal.
    assert_eq!(s.read("r").await.unwrap().records.len(), 1);
    drop(other);
}

#[tokio::test]
async fn a_stop_request_is_seen_by_its_watcher_and_cleared_by_the_next_lease() {
    let (_t, s) = store();
    let s: Arc<dyn Store> = Arc::new(s);
    s.prepare().await.unwrap();
    let lease = s.lock("app", &me("r")).await.unwrap();
    let w = s.create(lease, "r").await.unwrap();
    assert_eq!(s.stop_request("r").await.unwrap(), None);
    let watcher = {
        let s = s.clone();
        tokio::spawn(async move { s.wait_stop("r").await })
    };
    // The watcher polls; let it look at least once before the request is there.
    tokio::time::sleep(STOP_POLL).await;
    let req = StopRequest {
        by: "abort by ann@bastion".into(),
    };
    s.request_stop("r", &req).await.unwrap();
    assert_eq!(watcher.await.unwrap(), req);
    assert_eq!(s.stop_request("r").await.unwrap(), Some(req.clone()));
    assert!(s.describe().len() > 1);
    assert!(std::path::Path::new(&format!("{}/runs/r/stop", s.describe())).exists());
    // The next controller of the run does not take it for its own.
    drop(w);
    let lease = s.lock("app", &me("r")).await.unwrap();
    assert_eq!(s.stop_request("r").await.unwrap(), None);
    drop(lease);
    // A run that does not exist cannot be asked.
    assert!(matches!(
        s.request_stop("nope", &req).await,
        Err(StoreError::NoSuchRun(_))
    ));
}

#[tokio::test]
async fn artefacts_are_kept_beside_the_journal() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    s.prepare().await.unwrap();
    let lease = s.lock("app", &me("r")).await.unwrap();
    let _w = s.create(lease, "r").await.unwrap();
    assert_eq!(s.get("r", Artefact::Script).await.unwrap(), None);
    s.put("r", Artefact::Script, b"#!/bin/sh\n").await.unwrap();
    s.put("r", Artefact::Notify, b"{}").await.unwrap();
    assert_eq!(
        s.get("r", Artefact::Script).await.unwrap().as_deref(),
        Some(&b"#!/bin/sh\n"[..])
    );
    assert_eq!(
        s.get("r", Artefact::Notify).await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    // Where they always were.
    let root = s.describe();
    assert_eq!(
        s.artefact_location("r", Artefact::Script),
        format!("{root}/runs/r/script")
    );
    assert_eq!(
        std::fs::read(format!("{root}/runs/r/notify.json")).unwrap(),
        b"{}"
    );
}

#[tokio::test]
async fn an_audit_entry_without_signers_or_detail_reads_back_in_order() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    assert!(s.audit_log().await.unwrap().is_empty());
    for action in ["apply", "rollback"] {
        let e = AuditEntry {
            action: action.into(),
            rollout: "app".into(),
            ..AuditEntry::default()
        };
        s.audit(&e).await.unwrap();
    }
    let actions: Vec<String> = s
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["apply", "rollback"]);
    let text = std::fs::read_to_string(s.describe() + "/audit.jsonl").unwrap();
    assert_eq!(text.lines().count(), 2);
}

fn claim(run: &str) -> AppliedPlan {
    AppliedPlan {
        plan: "0123456789abcdef0123456789abcdef".into(),
        hash: "sha256:x".into(),
        run: run.into(),
        at: "2026-01-01T00:00:00Z".into(),
        user: "ann".into(),
    }
}

#[tokio::test]
async fn a_plan_is_claimed_once_and_the_second_claim_names_the_first_run() {
    let (_t, s) = store();
    let s: &dyn Store = &s;
    let id = claim("r1").plan;
    assert_eq!(s.applied_plan(&id).await.unwrap(), None);
    assert_eq!(s.claim_plan(&claim("r1")).await.unwrap(), None);
    assert_eq!(s.claim_plan(&claim("r2")).await.unwrap(), Some(claim("r1")));
    assert_eq!(s.applied_plan(&id).await.unwrap(), Some(claim("r1")));
    // Only the record is left in the directory (no temporary files).
    let names: Vec<_> = std::fs::read_dir(s.describe() + "/applied")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    s.unclaim_plan(&id).await.unwrap();
    assert_eq!(s.claim_plan(&claim("r3")).await.unwrap(), None);
}

/// Claims made at the same moment from several threads: exactly one is recorded, and
/// every other names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_claims_racing_for_one_plan_exactly_one_wins() {
    let (_t, s) = store();
    let s: Arc<dyn Store> = Arc::new(s);
    for round in 0..20 {
        let id = format!("{round:032x}");
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let claims: Vec<_> = (0..8)
            .map(|i| {
                let (s, start, id) = (s.clone(), start.clone(), id.clone());
                tokio::spawn(async move {
                    let rec = AppliedPlan {
                        plan: id,
                        run: format!("run-{i}"),
                        ..claim("")
                    };
                    start.wait().await;
                    (rec.run.clone(), s.claim_plan(&rec).await.unwrap())
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut named = Vec::new();
        for c in claims {
            match c.await.unwrap() {
                (run, None) => won.push(run),
                (_, Some(earlier)) => named.push(earlier.run),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert!(named.iter().all(|r| r == &won[0]), "{named:?} vs {won:?}");
        assert_eq!(s.applied_plan(&id).await.unwrap().unwrap().run, won[0]);
    }
}

#[tokio::test]
async fn an_unusable_state_dir_is_an_error_before_anything_is_created() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, "x").unwrap();
    let s: &dyn Store = &FileStore::new(f.clone());
    let e = s.check(Access::Read).await.unwrap_err();
    assert!(matches!(e, StoreError::Unusable { .. }), "{e:?}");
    assert!(s.prepare().await.is_err());
    // A state directory not there yet is usable (and empty), and nothing is created.
    let s: &dyn Store = &FileStore::new(t.path().join("later"));
    s.check(Access::Write).await.unwrap();
    assert!(s.runs().await.unwrap().is_empty());
    assert!(!t.path().join("later").exists());
}

#[tokio::test]
async fn freezes_are_kept_replaced_by_scope_and_lifted_and_promotes_kept_per_run() {
    use crate::rollout::{Freeze, Promotion};
    let (_t, s) = store();
    let s: &dyn Store = &s;
    assert!(s.freezes().await.unwrap().is_empty());
    let f = |rollout: Option<&str>, reason: &str| Freeze {
        rollout: rollout.map(String::from),
        by: "ann@bastion-1".into(),
        reason: reason.into(),
        at: 1,
        until: Some(2),
    };
    s.freeze(&f(Some("app"), "first")).await.unwrap();
    s.freeze(&f(Some("app"), "second")).await.unwrap();
    s.freeze(&f(None, "all")).await.unwrap();
    // One per scope, the latest; `--all` sorts first.
    assert_eq!(
        s.freezes().await.unwrap(),
        [f(None, "all"), f(Some("app"), "second")]
    );
    assert_eq!(
        s.unfreeze(Some("app")).await.unwrap(),
        [f(Some("app"), "second")]
    );
    assert!(s.unfreeze(Some("app")).await.unwrap().is_empty());
    s.freeze(&f(Some("db"), "x")).await.unwrap();
    // `unfreeze --all` lifts every one.
    assert_eq!(s.unfreeze(None).await.unwrap().len(), 2);
    assert!(s.freezes().await.unwrap().is_empty());

    let p = Promotion {
        wave: 1,
        by: "promote by ann@bastion-1".into(),
    };
    assert!(matches!(
        s.promote("r1", &p).await,
        Err(StoreError::NoSuchRun(_))
    ));
    s.prepare().await.unwrap();
    let lease = s.lock("app", &me("r1")).await.unwrap();
    let _w = s.create(lease, "r1").await.unwrap();
    assert_eq!(s.promotion("r1").await.unwrap(), None);
    s.promote("r1", &p).await.unwrap();
    assert_eq!(s.promotion("r1").await.unwrap(), Some(p));
}
