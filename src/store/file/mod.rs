//! The state directory behind [`Store`]: one operator on one machine. Its layout is
//! `runs/<run>/journal.jsonl` (and the artefacts `runs/<run>/script`,
//! `runs/<run>/notify.json`, and `runs/<run>/stop` while a stop is asked),
//! `locks/<name>.lock`, `audit.jsonl`, `applied/<plan id>.json`. Reads and writes files
//! under that directory only; every write that must survive a crash is fsync'd.

mod applied;
mod dir;
mod journal;
mod lock;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::rollout::{Freeze, Promotion, StopRequest};

use super::{
    Access, Appending, AppliedPlan, Artefact, AuditEntry, BoxFuture, Holder, Journal,
    JournalWriter, Lease, Store, StoreError,
};

use journal::FileWriter;

/// The state directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: PathBuf) -> FileStore {
        FileStore { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `--state-dir`, else `$WAVECTL_STATE_DIR` (clap fills it), else `~/.local/state/wavectl`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/state/wavectl"),
            None => PathBuf::from("/var/lib/wavectl-controller"),
        }
    }

    fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join("runs").join(run)
    }

    fn journal_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("journal.jsonl")
    }

    fn artefact_path(&self, run: &str, what: Artefact) -> PathBuf {
        self.run_dir(run).join(match what {
            Artefact::Script => "script",
            Artefact::Notify => "notify.json",
        })
    }

    fn stop_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("stop")
    }

    fn freeze_dir(&self) -> PathBuf {
        self.root.join("freezes")
    }

    /// `freezes/NAME.json`, or `freezes/@all.json` (`@` is in no rollout name).
    fn freeze_path(&self, rollout: Option<&str>) -> PathBuf {
        self.freeze_dir()
            .join(format!("{}.json", rollout.unwrap_or("@all")))
    }

    fn freeze_now(&self, f: &Freeze) -> Result<(), StoreError> {
        let dir = self.freeze_dir();
        std::fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let text = serde_json::to_vec(f).unwrap_or_default();
        write_durably(&self.freeze_path(f.rollout.as_deref()), &text)
    }

    fn freezes_now(&self) -> Result<Vec<Freeze>, StoreError> {
        let dir = self.freeze_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(StoreError::io("read", &dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // Lifted while we looked.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("read", &path)(e)),
            };
            // Written whole (renamed into place): one that does not read is damage.
            let f: Freeze = serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::io("read", &path)(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e,
                ))
            })?;
            out.push(f);
        }
        out.sort_by(|a, b| a.rollout.cmp(&b.rollout));
        Ok(out)
    }

    fn unfreeze_now(&self, rollout: Option<&str>) -> Result<Vec<Freeze>, StoreError> {
        let lifted: Vec<Freeze> = self
            .freezes_now()?
            .into_iter()
            .filter(|f| rollout.is_none() || f.rollout.as_deref() == rollout)
            .collect();
        for f in &lifted {
            let path = self.freeze_path(f.rollout.as_deref());
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", &path)(e)),
            }
        }
        sync_dir(&self.freeze_dir());
        Ok(lifted)
    }

    fn promote_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("promote")
    }

    fn promote_now(&self, run: &str, p: &Promotion) -> Result<(), StoreError> {
        if !self.run_dir(run).is_dir() {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        write_durably(
            &self.promote_path(run),
            &serde_json::to_vec(p).unwrap_or_default(),
        )
    }

    fn promotion_now(&self, run: &str) -> Result<Option<Promotion>, StoreError> {
        let path = self.promote_path(run);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path)(e)),
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    /// Each directory of `runs/` with a journal — or with one that cannot even be
    /// looked at, whose damage shows when it is read. No `runs/` yet: no runs.
    fn runs_now(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("runs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read", &dir)(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read", &dir))?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(id) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            match std::fs::symlink_metadata(entry.path().join("journal.jsonl")) {
                // A run directory without a journal: its run never began.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                _ => ids.push(id),
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn read_now(&self, run: &str) -> Result<Journal, StoreError> {
        let path = self.journal_path(run);
        match journal::read_lenient(&path) {
            (_, Some(StoreError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(StoreError::NoSuchRun(run.to_string()))
            }
            (records, damage) => Ok(Journal { records, damage }),
        }
    }

    fn prepare_now(&self) -> Result<(), StoreError> {
        self.usable(Access::Write)?;
        for d in [self.root.join("runs"), self.root.join("locks")] {
            std::fs::create_dir_all(&d).map_err(StoreError::io("create", &d))?;
        }
        let probe = self.root.join("runs").join(".write-test");
        std::fs::write(&probe, b"").map_err(StoreError::io("write to", &probe))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    fn request_stop_now(&self, run: &str, req: &StopRequest) -> Result<(), StoreError> {
        if !self.run_dir(run).is_dir() {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        let text = serde_json::to_vec(req).unwrap_or_default();
        write_durably(&self.stop_path(run), &text)
    }

    fn stop_request_now(&self, run: &str) -> Result<Option<StopRequest>, StoreError> {
        let path = self.stop_path(run);
        match std::fs::read(&path) {
            // Written whole (renamed into place): a request that does not read is still
            // a request.
            Ok(b) => Ok(Some(serde_json::from_slice(&b).unwrap_or(StopRequest {
                by: "a stop request".into(),
            }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path)(e)),
        }
    }

    fn audit_now(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let path = self.audit_path();
        std::fs::create_dir_all(&self.root).map_err(StoreError::io("create", &self.root))?;
        let mut line = serde_json::to_vec(entry).map_err(|e| StoreError::Io {
            what: "encode an entry for",
            path: path.clone(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .map_err(StoreError::io("write", &path))
    }

    /// Lines that do not read are skipped: it is a log for people, not a journal the
    /// engine replays.
    fn audit_log_now(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let path = self.audit_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    fn get_now(&self, run: &str, what: Artefact) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.artefact_path(run, what);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path)(e)),
        }
    }
}

impl Store for FileStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn journal_location(&self, run: &str) -> String {
        self.journal_path(run).display().to_string()
    }

    fn artefact_location(&self, run: &str, what: Artefact) -> String {
        self.artefact_path(run, what).display().to_string()
    }

    fn check(&self, access: Access) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.usable(access) })
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.prepare_now() })
    }

    fn runs(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move { self.runs_now() })
    }

    fn read<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Journal, StoreError>> {
        Box::pin(async move { self.read_now(run) })
    }

    fn lock<'a>(
        &'a self,
        rollout: &'a str,
        driver: &'a Holder,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move { self.lock_now(rollout, driver) })
    }

    fn holder<'a>(&'a self, rollout: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>> {
        Box::pin(async move { Ok(self.holder_now(rollout)) })
    }

    fn create<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn JournalWriter>, StoreError>> {
        Box::pin(async move {
            let w = FileWriter::create(lease, run, &self.run_dir(run), self.journal_path(run))?;
            Ok(Box::new(w) as Box<dyn JournalWriter>)
        })
    }

    fn open<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Appending, StoreError>> {
        Box::pin(async move {
            let (w, records) = FileWriter::open(lease, run, self.journal_path(run))?;
            Ok((Box::new(w) as Box<dyn JournalWriter>, records))
        })
    }

    fn request_stop<'a>(
        &'a self,
        run: &'a str,
        req: &'a StopRequest,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.request_stop_now(run, req) })
    }

    /// Polled (every [`STOP_POLL`](super::STOP_POLL) by the default `wait_stop`): one
    /// `open` that fails with ENOENT while nothing is asked, which costs less than an
    /// inotify watch and works on any file system the state directory is on.
    fn stop_request<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<StopRequest>, StoreError>> {
        Box::pin(async move { self.stop_request_now(run) })
    }

    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.audit_now(entry) })
    }

    fn audit_log(&self) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        Box::pin(async move { self.audit_log_now() })
    }

    fn put<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { write_durably(&self.artefact_path(run, what), bytes) })
    }

    fn get<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { self.get_now(run, what) })
    }

    fn applied_plan<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(async move { self.applied_plan_now(id) })
    }

    fn claim_plan<'a>(
        &'a self,
        rec: &'a AppliedPlan,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>> {
        Box::pin(async move { self.claim_plan_now(rec) })
    }

    fn unclaim_plan<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.unclaim_plan_now(id) })
    }

    fn freeze<'a>(&'a self, f: &'a Freeze) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.freeze_now(f) })
    }

    fn unfreeze<'a>(
        &'a self,
        rollout: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move { self.unfreeze_now(rollout) })
    }

    fn freezes(&self) -> BoxFuture<'_, Result<Vec<Freeze>, StoreError>> {
        Box::pin(async move { self.freezes_now() })
    }

    fn promote<'a>(
        &'a self,
        run: &'a str,
        p: &'a Promotion,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.promote_now(run, p) })
    }

    fn promotion<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<Promotion>, StoreError>> {
        Box::pin(async move { self.promotion_now(run) })
    }
}

/// Write `bytes` to `path` durably (temp file, fsync, rename, fsync the directory).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(StoreError::io("create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(StoreError::io("write", path))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io("write", path)(e.error))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
