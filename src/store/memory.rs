//! The in-memory store: the fake behind [`Store`] for engine and unit tests. Clones of a
//! [`MemStore`] share it (two controllers on one store); [`MemStore::after_crash`] is what
//! a controller's death leaves (every record, no lock held); [`MemStore::take_over`] and
//! [`MemStore::set_reachable`] make a controller lose its run or its store. No I/O.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::Notify;

use crate::rollout::{Freeze, Promotion, Record, StopRequest};

use super::{
    Access, Appending, AppliedPlan, Artefact, AuditEntry, BoxFuture, Holder, Journal,
    JournalWriter, Lease, Store, StoreError,
};

/// An in-memory store (see the module's doc).
#[derive(Clone, Default)]
pub struct MemStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    mem: Mutex<Mem>,
    /// Woken at every stop request.
    stops: Notify,
}

/// Everything the store holds; what survives a crash is all of it but `locks`.
#[derive(Debug, Default, Clone)]
struct Mem {
    runs: BTreeMap<String, MemRun>,
    /// Who holds each rollout now, under which epoch.
    locks: HashMap<String, (Holder, u64)>,
    /// The last epoch given out per rollout.
    epochs: HashMap<String, u64>,
    audit: Vec<AuditEntry>,
    applied: BTreeMap<String, AppliedPlan>,
    /// Freezes by scope (`None`: `--all`).
    freezes: BTreeMap<Option<String>, Freeze>,
    unreachable: bool,
}

#[derive(Debug, Default, Clone)]
struct MemRun {
    records: Vec<Record>,
    artefacts: HashMap<Artefact, Vec<u8>>,
    stop: Option<StopRequest>,
    promotion: Option<Promotion>,
}

/// A MemStore lease's hold: released when dropped, if it is still the rollout's.
struct MemHold {
    shared: Weak<Shared>,
    rollout: String,
    epoch: u64,
}

impl Drop for MemHold {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut mem = shared.mem.lock().unwrap_or_else(|p| p.into_inner());
        if mem.locks.get(&self.rollout).map(|l| l.1) == Some(self.epoch) {
            mem.locks.remove(&self.rollout);
        }
    }
}

struct MemWriter {
    shared: Arc<Shared>,
    run: String,
    lease: Lease,
}

impl JournalWriter for MemWriter {
    fn run(&self) -> &str {
        &self.run
    }

    fn lease(&self) -> &Lease {
        &self.lease
    }

    fn append<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut mem = lock(&self.shared)?;
            fence(&mem, &self.lease, &self.run)?;
            mem.runs
                .entry(self.run.clone())
                .or_default()
                .records
                .extend_from_slice(records);
            Ok(())
        })
    }
}

fn lock(shared: &Shared) -> Result<MutexGuard<'_, Mem>, StoreError> {
    let mem = shared.mem.lock().unwrap_or_else(|p| p.into_inner());
    if mem.unreachable {
        return Err(StoreError::Unreachable {
            store: "memory".into(),
            why: "made unreachable by the test".into(),
        });
    }
    Ok(mem)
}

/// The lease is still its rollout's current one.
fn fence(mem: &Mem, lease: &Lease, run: &str) -> Result<(), StoreError> {
    match mem.locks.get(&lease.rollout) {
        Some((_, epoch)) if *epoch == lease.epoch => Ok(()),
        Some((h, epoch)) => Err(StoreError::Fenced {
            run: run.to_string(),
            why: format!(
                "rollout {} is held by run {} ({}) under epoch {epoch}, this controller's lease is epoch {}",
                lease.rollout,
                h.run,
                h.who(),
                lease.epoch
            ),
        }),
        None => Err(StoreError::Fenced {
            run: run.to_string(),
            why: format!("the lock of rollout {} is gone", lease.rollout),
        }),
    }
}

fn exists(run: &str) -> StoreError {
    StoreError::Io {
        what: "create",
        path: PathBuf::from(format!("memory:{run}")),
        source: std::io::ErrorKind::AlreadyExists.into(),
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn mem(&self) -> MutexGuard<'_, Mem> {
        self.shared.mem.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is left after the controller died: a new store with every record, artefact,
    /// request and audit entry of this one, and no lock held (locks die with their
    /// holder). The old store (and the writers on it) stay as they were.
    pub fn after_crash(&self) -> MemStore {
        let mut mem = self.mem().clone();
        mem.locks.clear();
        MemStore {
            shared: Arc::new(Shared {
                mem: Mutex::new(mem),
                stops: Notify::new(),
            }),
        }
    }

    /// The records of `run` so far.
    pub fn records(&self, run: &str) -> Vec<Record> {
        self.mem()
            .runs
            .get(run)
            .map_or_else(Vec::new, |r| r.records.clone())
    }

    /// Keep only the first `n` records of `run` (a crash right after the n-th).
    pub fn truncate(&self, run: &str, n: usize) {
        if let Some(r) = self.mem().runs.get_mut(run) {
            r.records.truncate(n);
        }
    }

    /// Another controller takes `rollout` over (a newer epoch): the current holder's
    /// next append is refused.
    pub fn take_over(&self, rollout: &str, by: Holder) -> u64 {
        let mut mem = self.mem();
        let epoch = mem.epochs.get(rollout).copied().unwrap_or(0) + 1;
        mem.epochs.insert(rollout.to_string(), epoch);
        mem.locks.insert(rollout.to_string(), (by, epoch));
        epoch
    }

    /// Make every call fail as a store out of reach would (or answer again).
    pub fn set_reachable(&self, yes: bool) {
        self.mem().unreachable = !yes;
    }

    /// Every audit entry (whether the store is reachable or not).
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        self.mem().audit.clone()
    }
}

impl Store for MemStore {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn journal_location(&self, run: &str) -> String {
        format!("memory:{run}")
    }

    fn artefact_location(&self, run: &str, what: Artefact) -> String {
        format!("memory:{run}:{what:?}")
    }

    fn check(&self, _access: Access) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { lock(&self.shared).map(|_| ()) })
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { lock(&self.shared).map(|_| ()) })
    }

    fn runs(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move { Ok(lock(&self.shared)?.runs.keys().cloned().collect()) })
    }

    fn read<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Journal, StoreError>> {
        Box::pin(async move {
            let mem = lock(&self.shared)?;
            let r = mem
                .runs
                .get(run)
                .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
            Ok(Journal {
                records: r.records.clone(),
                damage: None,
            })
        })
    }

    fn lock<'a>(
        &'a self,
        rollout: &'a str,
        driver: &'a Holder,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let mut mem = lock(&self.shared)?;
            if let Some((holder, _)) = mem.locks.get(rollout) {
                return Err(StoreError::Locked {
                    rollout: rollout.to_string(),
                    holder: holder.clone(),
                });
            }
            let epoch = mem.epochs.get(rollout).copied().unwrap_or(0) + 1;
            mem.epochs.insert(rollout.to_string(), epoch);
            mem.locks
                .insert(rollout.to_string(), (driver.clone(), epoch));
            if let Some(r) = mem.runs.get_mut(&driver.run) {
                r.stop = None;
            }
            let hold = MemHold {
                shared: Arc::downgrade(&self.shared),
                rollout: rollout.to_string(),
                epoch,
            };
            Ok(Lease::new(rollout, driver.clone(), epoch, hold))
        })
    }

    fn holder<'a>(&'a self, rollout: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>> {
        Box::pin(async move { Ok(lock(&self.shared)?.locks.get(rollout).map(|l| l.0.clone())) })
    }

    fn create<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn JournalWriter>, StoreError>> {
        Box::pin(async move {
            let mut mem = lock(&self.shared)?;
            fence(&mem, &lease, run)?;
            if mem.runs.contains_key(run) {
                return Err(exists(run));
            }
            mem.runs.insert(run.to_string(), MemRun::default());
            let w = MemWriter {
                shared: self.shared.clone(),
                run: run.to_string(),
                lease,
            };
            Ok(Box::new(w) as Box<dyn JournalWriter>)
        })
    }

    fn open<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Appending, StoreError>> {
        Box::pin(async move {
            let mem = lock(&self.shared)?;
            fence(&mem, &lease, run)?;
            let records = mem
                .runs
                .get(run)
                .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?
                .records
                .clone();
            drop(mem);
            let w = MemWriter {
                shared: self.shared.clone(),
                run: run.to_string(),
                lease,
            };
            Ok((Box::new(w) as Box<dyn JournalWriter>, records))
        })
    }

    fn request_stop<'a>(
        &'a self,
        run: &'a str,
        req: &'a StopRequest,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?
                .runs
                .get_mut(run)
                .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?
                .stop = Some(req.clone());
            self.shared.stops.notify_waiters();
            Ok(())
        })
    }

    fn stop_request<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<StopRequest>, StoreError>> {
        Box::pin(async move {
            Ok(lock(&self.shared)?
                .runs
                .get(run)
                .and_then(|r| r.stop.clone()))
        })
    }

    /// Woken by the request itself: no polling, so paused time is not kept busy.
    fn wait_stop<'a>(&'a self, run: &'a str) -> BoxFuture<'a, StopRequest> {
        Box::pin(async move {
            loop {
                let woken = self.shared.stops.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if let Ok(Some(r)) = self.stop_request(run).await {
                    return r;
                }
                woken.await;
            }
        })
    }

    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?.audit.push(entry.clone());
            Ok(())
        })
    }

    fn audit_log(&self) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(async move { Ok(lock(&self.shared)?.audit.clone()) })
    }

    fn put<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?
                .runs
                .get_mut(run)
                .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?
                .artefacts
                .insert(what, bytes.to_vec());
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            Ok(lock(&self.shared)?
                .runs
                .get(run)
                .and_then(|r| r.artefacts.get(&what).cloned()))
        })
    }

    fn applied_plan<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(async move { Ok(lock(&self.shared)?.applied.get(id).cloned()) })
    }

    fn claim_plan<'a>(
        &'a self,
        rec: &'a AppliedPlan,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(async move {
            let mut mem = lock(&self.shared)?;
            if let Some(earlier) = mem.applied.get(&rec.plan) {
                return Ok(Some(earlier.clone()));
            }
            mem.applied.insert(rec.plan.clone(), rec.clone());
            Ok(None)
        })
    }

    fn freeze<'a>(&'a self, f: &'a Freeze) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?
                .freezes
                .insert(f.rollout.clone(), f.clone());
            Ok(())
        })
    }

    fn unfreeze<'a>(
        &'a self,
        rollout: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move {
            let mut mem = lock(&self.shared)?;
            let keys: Vec<Option<String>> = mem
                .freezes
                .keys()
                .filter(|k| rollout.is_none() || k.as_deref() == rollout)
                .cloned()
                .collect();
            Ok(keys.iter().filter_map(|k| mem.freezes.remove(k)).collect())
        })
    }

    fn freezes(&self) -> BoxFuture<'_, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move { Ok(lock(&self.shared)?.freezes.values().cloned().collect()) })
    }

    fn promote<'a>(
        &'a self,
        run: &'a str,
        p: &'a Promotion,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?
                .runs
                .get_mut(run)
                .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?
                .promotion = Some(p.clone());
            Ok(())
        })
    }

    fn promotion<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<Promotion>, StoreError>> {
        Box::pin(async move {
            Ok(lock(&self.shared)?
                .runs
                .get(run)
                .and_then(|r| r.promotion.clone()))
        })
    }

    fn unclaim_plan<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.shared)?.applied.remove(id);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Event;

    fn who(run: &str, host: &str) -> Holder {
        Holder {
            run: run.into(),
            host: host.into(),
            user: "ann".into(),
            pid: 7,
        }
    }

    fn tick(at: u64) -> Record {
        Record::new(at, Event::Tick)
    }

    #[tokio::test]
    async fn one_lease_per_rollout_each_with_a_newer_epoch() {
        let m = MemStore::new();
        let s: &dyn Store = &m;
        let a = s.lock("app", &who("r1", "a")).await.unwrap();
        assert_eq!(a.epoch, 1);
        match s.lock("app", &who("r2", "b")).await {
            Err(StoreError::Locked { holder, .. }) => assert_eq!(holder, who("r1", "a")),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.holder("app").await.unwrap(), Some(who("r1", "a")));
        let w = s.create(a, "r1").await.unwrap();
        assert_eq!(w.lease().epoch, 1);
        drop(w);
        assert_eq!(s.holder("app").await.unwrap(), None);
        let b = s.lock("app", &who("r1", "b")).await.unwrap();
        assert_eq!(b.epoch, 2);
    }

    #[tokio::test]
    async fn a_taken_over_writer_is_fenced_and_the_new_one_goes_on() {
        let m = MemStore::new();
        let s: &dyn Store = &m;
        let lease = s.lock("app", &who("r", "a")).await.unwrap();
        let mut old = s.create(lease, "r").await.unwrap();
        old.append(&[tick(1)]).await.unwrap();
        assert_eq!(m.take_over("app", who("r", "b")), 2);
        let e = old.append(&[tick(2)]).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Fenced { .. }) && e.is_lost(),
            "{e:?}"
        );
        assert!(e.to_string().contains("epoch 2"), "{e}");
        // The old writer going away does not free the new holder's lock.
        drop(old);
        assert_eq!(s.holder("app").await.unwrap(), Some(who("r", "b")));
        assert_eq!(m.records("r").len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_store_refuses_everything_as_lost() {
        let m = MemStore::new();
        let s: &dyn Store = &m;
        let lease = s.lock("app", &who("r", "a")).await.unwrap();
        let mut w = s.create(lease, "r").await.unwrap();
        m.set_reachable(false);
        let e = w.append(&[tick(1)]).await.unwrap_err();
        assert!(matches!(e, StoreError::Unreachable { .. }) && e.is_lost());
        assert!(s.runs().await.is_err());
        assert!(s.check(crate::store::Access::Read).await.is_err());
        m.set_reachable(true);
        w.append(&[tick(2)]).await.unwrap();
        assert_eq!(m.records("r"), [tick(2)]);
    }

    #[tokio::test]
    async fn a_crash_keeps_every_record_and_frees_every_lock() {
        let m = MemStore::new();
        let s: &dyn Store = &m;
        let lease = s.lock("app", &who("r", "a")).await.unwrap();
        let mut w = s.create(lease, "r").await.unwrap();
        w.append(&[tick(1), tick(2), tick(3)]).await.unwrap();
        s.put("r", Artefact::Script, b"x").await.unwrap();
        let after = m.after_crash();
        after.truncate("r", 2);
        let a: &dyn Store = &after;
        assert_eq!(a.holder("app").await.unwrap(), None);
        let lease = a.lock("app", &who("r", "b")).await.unwrap();
        // A newer epoch than any the crashed controller had.
        assert_eq!(lease.epoch, 2);
        let (_w2, records) = a.open(lease, "r").await.unwrap();
        assert_eq!(records, [tick(1), tick(2)]);
        assert_eq!(
            a.get("r", Artefact::Script).await.unwrap(),
            Some(b"x".to_vec())
        );
        // The store before the crash is as it was.
        assert_eq!(m.records("r").len(), 3);
        drop(w);
    }

    #[tokio::test]
    async fn a_stop_request_wakes_its_watcher_and_the_next_lease_clears_it() {
        let m = MemStore::new();
        let s: Arc<dyn Store> = Arc::new(m.clone());
        let lease = s.lock("app", &who("r", "a")).await.unwrap();
        let w = s.create(lease, "r").await.unwrap();
        let watcher = {
            let s = s.clone();
            tokio::spawn(async move { s.wait_stop("r").await })
        };
        tokio::task::yield_now().await;
        let req = StopRequest { by: "abort".into() };
        s.request_stop("r", &req).await.unwrap();
        assert_eq!(watcher.await.unwrap(), req);
        drop(w);
        let _l = s.lock("app", &who("r", "b")).await.unwrap();
        assert_eq!(s.stop_request("r").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_plan_is_claimed_once() {
        let s: &dyn Store = &MemStore::new();
        let rec = |run: &str| AppliedPlan {
            plan: "p".into(),
            hash: "h".into(),
            run: run.into(),
            at: "t".into(),
            user: "u".into(),
        };
        assert_eq!(s.claim_plan(&rec("r1")).await.unwrap(), None);
        assert_eq!(s.claim_plan(&rec("r2")).await.unwrap(), Some(rec("r1")));
        s.unclaim_plan("p").await.unwrap();
        assert_eq!(s.applied_plan("p").await.unwrap(), None);
    }
}
