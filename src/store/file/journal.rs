//! A run's journal in the state directory: `runs/<run>/journal.jsonl`, one JSON line per
//! record, appended and fsync'd by the run's one writer. A torn last line (a write cut
//! short) is ignored when read and cut off before the next append; any other line that
//! does not read is damage, named by file and line. Reads and writes that file.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::rollout::{Record, FORMAT};
use crate::store::{BoxFuture, JournalWriter, Lease, StoreError};

use super::lock::FileLock;
use super::sync_dir;

/// Read a journal: every record, in order. A torn last line (a write cut short) is
/// ignored; any other line that does not read is an error naming the file and line.
pub(super) fn read(path: &Path) -> Result<Vec<Record>, StoreError> {
    match read_lenient(path) {
        (records, None) => Ok(records),
        (_, Some(e)) => Err(e),
    }
}

/// [`read`], but keeping the records before the damage: the records that read, and
/// the error that stopped the reading, if any.
pub(super) fn read_lenient(path: &Path) -> (Vec<Record>, Option<StoreError>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (Vec::new(), Some(StoreError::io("read", path)(e))),
    };
    let text = String::from_utf8_lossy(&bytes);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    let at = |line: usize| format!("{}:{line}", path.display());
    let corrupt = |line: usize, message: String| StoreError::Corrupt {
        at: at(line),
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
                let e = StoreError::Version {
                    at: at(i + 1),
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

/// The lease is this store's, and its lock file still the one held.
pub(super) fn held(lease: &Lease, run: &str) -> Result<(), StoreError> {
    match lease.guard::<FileLock>() {
        Some(lock) => lock.still_held(run),
        None => Err(StoreError::Fenced {
            run: run.to_string(),
            why: "its lease is not one of this state directory".to_string(),
        }),
    }
}

/// The one writer of a run's journal, holding its rollout's lock.
pub(super) struct FileWriter {
    run: String,
    path: PathBuf,
    file: File,
    lease: Lease,
}

impl FileWriter {
    /// Create the journal of a new run (its directory too); fails if it exists.
    pub(super) fn create(
        lease: Lease,
        run: &str,
        dir: &Path,
        path: PathBuf,
    ) -> Result<FileWriter, StoreError> {
        held(&lease, run)?;
        std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(StoreError::io("create", &path))?;
        sync_dir(dir);
        Ok(FileWriter {
            run: run.to_string(),
            path,
            file,
            lease,
        })
    }

    /// Open an existing run's journal for appending; returns its records too. A torn
    /// last line is cut off first, so the next record starts on a line of its own.
    pub(super) fn open(
        lease: Lease,
        run: &str,
        path: PathBuf,
    ) -> Result<(FileWriter, Vec<Record>), StoreError> {
        held(&lease, run)?;
        if !path.exists() {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        let records = read(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        let bytes = std::fs::read(&path).map_err(StoreError::io("read", &path))?;
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            file.set_len(keep as u64)
                .map_err(StoreError::io("truncate the torn last line of", &path))?;
            file.sync_all().map_err(StoreError::io("sync", &path))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(StoreError::io("seek", &path))?;
        let w = FileWriter {
            run: run.to_string(),
            path,
            file,
            lease,
        };
        Ok((w, records))
    }

    /// One write and one fsync for all of `records`, after checking the lock is still
    /// the one this writer holds.
    fn append_now(&mut self, records: &[Record]) -> Result<(), StoreError> {
        held(&self.lease, &self.run)?;
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| StoreError::Io {
                what: "encode a record for",
                path: self.path.clone(),
                source: e.into(),
            })?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(StoreError::io("write", &self.path))?;
        self.file
            .sync_data()
            .map_err(StoreError::io("sync", &self.path))
    }
}

impl JournalWriter for FileWriter {
    fn run(&self) -> &str {
        &self.run
    }

    fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Written and fsync'd in place: a local write of a few records, then one fsync
    /// (the engine's group commit: the results that arrived together are made durable
    /// together, and only then does any action they order start).
    fn append<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.append_now(records) })
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
            StoreError::Corrupt { at, .. } => assert_eq!(at, &format!("{}:2", p.display())),
            other => panic!("{other:?}"),
        }
        assert!(e
            .to_string()
            .starts_with(&format!("{}:2: unreadable journal record", p.display())));
        // Garbage in the middle, even a half line, is not skipped either.
        write(&p, &format!("{good}{}\n{good}", &good[..10]));
        match read(&p) {
            Err(StoreError::Corrupt { at, .. }) => assert!(at.ends_with(":2"), "{at}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        write(&p, "{\"v\":2,\"at\":1,\"type\":\"tick\"}\n");
        match read(&p) {
            Err(StoreError::Version { found: 2, at }) => assert!(at.ends_with(":1"), "{at}"),
            other => panic!("{other:?}"),
        }
    }
}
