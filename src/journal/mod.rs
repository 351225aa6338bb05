//! The controller's durable record of runs: one append-only JSON-lines file per run,
//! each line a [`Record`] (an event of the run, with the format version), fsync'd before
//! the actions it leads to start; and one lock per rollout name that dies with its
//! process. Reading a journal and replaying it through `rollout::step` gives the run's
//! state. Reads and writes files under the state directory.

mod applied;
mod audit;
mod dir;
mod lock;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use applied::AppliedPlan;
pub use audit::AuditEntry;
pub use dir::Access;
pub use lock::{Holder, RunLock};

use crate::rollout::{replay, Record, RunState, FORMAT};

/// Journal, lock and state-directory failures.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state directory (or its `runs/`, `locks/`) exists but cannot be used.
    #[error("{problem}\n  help: {help}")]
    Unusable {
        path: PathBuf,
        problem: String,
        help: String,
    },
    #[error("rollout `{name}` is being worked on by run {holder} (pid {pid}); wait for it to end, or `wavectl abort {holder}`")]
    Locked {
        name: String,
        holder: String,
        pid: u32,
    },
    #[error("no run `{0}` in the state directory; `wavectl status` lists the runs")]
    NoSuchRun(String),
    #[error("`{prefix}` names more than one run ({}); give more of the id", matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("{path}:{line}: unreadable journal record ({message}); the journal is damaged in the middle, so nothing after it can be trusted: keep the file for inspection, and use `wavectl purge NAME --inventory INV` to clean the hosts by their own manifests")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: journal format {found}, this wavectl reads format {FORMAT}; use the wavectl version that wrote it")]
    Version {
        path: PathBuf,
        line: usize,
        found: u64,
    },
}

impl JournalError {
    fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
        move |source| JournalError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The state directory: `runs/<run>/journal.jsonl` (and the script an apply installs,
/// `runs/<run>/script`, and its spec's `[notify]`, `runs/<run>/notify.json`),
/// `locks/<name>.lock`, `audit.jsonl`, `applied/<plan id>.json`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    /// `--state-dir`, else `$WAVECTL_STATE_DIR` (clap fills it), else `~/.local/state/wavectl`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/state/wavectl"),
            None => PathBuf::from("/var/lib/wavectl-controller"),
        }
    }

    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join("runs").join(run)
    }

    pub fn journal_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("journal.jsonl")
    }

    /// Where an apply keeps the bytes of the script it installs.
    pub fn script_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("script")
    }

    /// Where an apply keeps its spec's `[notify]` (JSON), for every command that takes
    /// the run up again.
    pub fn notify_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("notify.json")
    }

    /// Every run id, oldest first (ids start with a UTC timestamp): each directory of
    /// `runs/` with a journal — or with one that cannot even be looked at, whose damage
    /// shows when it is read. No `runs/` yet: no runs; one that cannot be read: an error.
    pub fn runs(&self) -> Result<Vec<String>, JournalError> {
        let dir = self.root.join("runs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(JournalError::io("read", &dir)(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(JournalError::io("read", &dir))?;
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

    /// The run an id or a unique prefix of one names.
    pub fn resolve(&self, prefix: &str) -> Result<String, JournalError> {
        let all = self.runs()?;
        if all.iter().any(|r| r == prefix) {
            return Ok(prefix.to_string());
        }
        let matches: Vec<String> = all
            .into_iter()
            .filter(|r| !prefix.is_empty() && r.starts_with(prefix))
            .collect();
        match matches.len() {
            0 => Err(JournalError::NoSuchRun(prefix.to_string())),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(JournalError::Ambiguous {
                prefix: prefix.to_string(),
                matches,
            }),
        }
    }

    /// Read one run's journal and replay it.
    pub fn load(&self, run: &str) -> Result<RunState, JournalError> {
        match self.inspect(run) {
            (state, None) => Ok(state),
            (_, Some(e)) => Err(e),
        }
    }

    /// Read one run's journal as far as it reads and replay that: the state, and what
    /// stopped the reading (the damage) if anything did. For listing a damaged run.
    pub fn inspect(&self, run: &str) -> (RunState, Option<JournalError>) {
        let (records, damage) = read_lenient(&self.journal_path(run));
        let damage = damage.map(|e| match e {
            JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                JournalError::NoSuchRun(run.to_string())
            }
            other => other,
        });
        (replay(&records), damage)
    }

    /// Make sure the state directory can be written (before anything is touched).
    pub fn ensure(&self) -> Result<(), JournalError> {
        self.usable(Access::Write)?;
        for d in [self.root.join("runs"), self.root.join("locks")] {
            std::fs::create_dir_all(&d).map_err(JournalError::io("create", &d))?;
        }
        let probe = self.root.join("runs").join(".write-test");
        std::fs::write(&probe, b"").map_err(JournalError::io("write to", &probe))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }
}

/// Read a journal: every record, in order. A torn last line (a write cut short) is
/// ignored; any other line that does not read is an error naming the file and line.
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    match read_lenient(path) {
        (records, None) => Ok(records),
        (_, Some(e)) => Err(e),
    }
}

/// [`read`], but keeping the records before the damage: the records that read, and
/// the error that stopped the reading, if any.
fn read_lenient(path: &Path) -> (Vec<Record>, Option<JournalError>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (Vec::new(), Some(JournalError::io("read", path)(e))),
    };
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    let corrupt = |line: usize, message: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        line,
        message,
    };
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if last && !complete => break,
            Err(e) => return (records, Some(corrupt(i + 1, e.to_string()))),
        };
        match value.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT) => {}
            Some(found) => {
                let e = JournalError::Version {
                    path: path.to_path_buf(),
                    line: i + 1,
                    found,
                };
                return (records, Some(e));
            }
            None => {
                return (
                    records,
                    Some(corrupt(i + 1, "no format version `v`".into())),
                )
            }
        }
        match serde_json::from_value::<Record>(value) {
            Ok(r) => records.push(r),
            Err(_) if last && !complete => break,
            Err(e) => return (records, Some(corrupt(i + 1, e.to_string()))),
        }
    }
    (records, None)
}

/// An open journal: the one writer of a run's records.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Create the journal of a new run (its directory too); fails if it exists.
    pub fn create(state: &StateDir, run: &str) -> Result<Journal, JournalError> {
        let dir = state.run_dir(run);
        std::fs::create_dir_all(&dir).map_err(JournalError::io("create", &dir))?;
        let path = state.journal_path(run);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(JournalError::io("create", &path))?;
        sync_dir(&dir);
        Ok(Journal { path, file })
    }

    /// Open an existing run's journal for appending; returns its records too. A torn last
    /// line is cut off first, so the next record starts on a line of its own.
    pub fn open(state: &StateDir, run: &str) -> Result<(Journal, Vec<Record>), JournalError> {
        let path = state.journal_path(run);
        if !path.exists() {
            return Err(JournalError::NoSuchRun(run.to_string()));
        }
        let records = read(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(JournalError::io("open", &path))?;
        let bytes = std::fs::read(&path).map_err(JournalError::io("read", &path))?;
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            file.set_len(keep as u64)
                .map_err(JournalError::io("truncate the torn last line of", &path))?;
            file.sync_all().map_err(JournalError::io("sync", &path))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(JournalError::io("seek", &path))?;
        Ok((Journal { path, file }, records))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append records and fsync them, before returning: one write and one fsync for all
    /// of them (the engine's group commit: the results that arrived together are made
    /// durable together, and only then does any action they order start).
    pub fn append(&mut self, records: &[Record]) -> Result<(), JournalError> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| JournalError::Io {
                what: "encode a record for",
                path: self.path.clone(),
                source: e.into(),
            })?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(JournalError::io("write", &self.path))?;
        self.file
            .sync_data()
            .map_err(JournalError::io("sync", &self.path))
    }
}

/// Write `bytes` to `path` durably (temp file, fsync, rename, fsync the directory).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(JournalError::io("create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(JournalError::io("write", path))?;
    tmp.persist(path)
        .map_err(|e| JournalError::io("write", path)(e.error))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Event;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    fn line(e: Event) -> String {
        serde_json::to_string(&Record::new(1, e)).unwrap() + "\n"
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().to_path_buf());
        std::fs::create_dir_all(state.run_dir("r")).unwrap();
        let full = line(Event::Tick);
        let text = format!("{full}{full}{}", &full[..full.len() / 2]);
        write(&state.journal_path("r"), &text);
        assert_eq!(read(&state.journal_path("r")).unwrap().len(), 2);
        let (mut j, records) = Journal::open(&state, "r").unwrap();
        assert_eq!(records.len(), 2);
        j.append(&[Record::new(2, Event::Tick)]).unwrap();
        let after = std::fs::read_to_string(state.journal_path("r")).unwrap();
        assert_eq!(after.lines().count(), 3);
        assert_eq!(read(&state.journal_path("r")).unwrap().len(), 3);
    }

    #[test]
    fn an_unreadable_middle_line_is_an_error_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        let good = line(Event::Tick);
        write(
            &p,
            &format!("{good}{{\"v\":1,\"at\":3,\"type\":\"no_such\"}}\n{good}"),
        );
        let e = read(&p).unwrap_err();
        match &e {
            JournalError::Corrupt { line, .. } => assert_eq!(*line, 2),
            other => panic!("{other:?}"),
        }
        assert!(e
            .to_string()
            .starts_with(&format!("{}:2: unreadable journal record", p.display())));
        // Garbage in the middle, even a half line, is not skipped either.
        write(&p, &format!("{good}{}\n{good}", &good[..10]));
        assert!(matches!(
            read(&p),
            Err(JournalError::Corrupt { line: 2, .. })
        ));
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        write(&p, "{\"v\":2,\"at\":1,\"type\":\"tick\"}\n");
        assert!(matches!(
            read(&p),
            Err(JournalError::Version {
                found: 2,
                line: 1,
                ..
            })
        ));
    }

    #[test]
    fn run_ids_resolve_by_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().to_path_buf());
        for r in ["20260101-a-1", "20260101-a-2", "20260102-b-1"] {
            std::fs::create_dir_all(state.run_dir(r)).unwrap();
            write(&state.journal_path(r), "");
        }
        assert_eq!(state.resolve("20260102").unwrap(), "20260102-b-1");
        assert!(matches!(
            state.resolve("20260101"),
            Err(JournalError::Ambiguous { .. })
        ));
        assert!(matches!(
            state.resolve("2027"),
            Err(JournalError::NoSuchRun(_))
        ));
    }
}
