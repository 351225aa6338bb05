//! The controller's durable record of a run: append-only JSON lines, fsync'd, an
//! intent before each host action and its outcome after; one run per rollout at a
//! time (a lock that dies with its process). Replay is pure (`replay`).

pub mod record;
pub mod replay;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use record::{Action, Record, RunInfo, RunKind};
pub use replay::{replay, HostState, RunState, RunStatus};

/// Journal and lock failures.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write the journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rollout `{rollout}` is already being run by run {holder} (lock {path}); wait for it, or `wavectl abort {holder}`")]
    Locked {
        rollout: String,
        holder: String,
        path: PathBuf,
    },
    #[error("no run `{0}` in the state directory; `wavectl status` lists the runs")]
    NoSuchRun(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The state directory: runs and locks.
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

    /// Every run id, oldest first (ids start with a UTC timestamp).
    pub fn runs(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root.join("runs"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Read and replay one run's journal.
    pub fn load(&self, run: &str) -> Result<RunState, JournalError> {
        let path = self.journal_path(run);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NoSuchRun(run.to_string()))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let records = record::parse_lines(&String::from_utf8_lossy(&text));
        Ok(replay(&records))
    }

    /// Take the lock of a rollout for this process's lifetime (released when the
    /// returned file is dropped or the process dies).
    pub fn lock(&self, rollout: &str, run: &str) -> Result<RunLock, JournalError> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{rollout}.lock"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = text.split_whitespace().next().unwrap_or("?").to_string();
                return Err(JournalError::Locked {
                    rollout: rollout.to_string(),
                    holder,
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        file.write_all(format!("{run} {}\n", std::process::id()).as_bytes())
            .map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(RunLock { _file: file })
    }
}

impl StateDir {
    /// The run and pid holding a rollout's lock right now, if a live process holds it.
    pub fn holder(&self, rollout: &str) -> Option<(String, u32)> {
        let path = self.root.join("locks").join(format!("{rollout}.lock"));
        let file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => {
                let text = std::fs::read_to_string(&path).ok()?;
                let mut parts = text.split_whitespace();
                let run = parts.next()?.to_string();
                let pid = parts.next()?.parse().ok()?;
                Some((run, pid))
            }
        }
    }
}

/// Held while a run is being worked on.
pub struct RunLock {
    _file: File,
}

/// An open journal, appended to and fsync'd record by record.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Open (creating) the journal of `run`.
    pub fn open(state: &StateDir, run: &str) -> Result<Journal, JournalError> {
        let dir = state.run_dir(run);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = state.journal_path(run);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io(&path))?;
        // A torn last line (power cut mid-write) must not glue onto the next record.
        let len = file.metadata().map_err(io(&path))?.len();
        if len > 0 {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if bytes.last() != Some(&b'\n') {
                file.write_all(b"\n").map_err(io(&path))?;
            }
        }
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and fsync it before returning.
    pub fn append(&self, record: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(record).map_err(|e| io(&self.path)(e.into()))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))
    }
}
