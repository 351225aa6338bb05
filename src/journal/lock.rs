//! One run per rollout name at a time: `locks/<name>.lock`, an flock held for the life of
//! the process that works on the rollout (the kernel drops it when that process dies, even
//! by SIGKILL). The file names the run and pid that hold it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{JournalError, StateDir};

/// Held while a process works on a rollout; released when dropped or when the process dies.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run: String,
    pub pid: u32,
}

impl StateDir {
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// Take the lock of `name` for `run`, or say who holds it.
    pub fn lock(&self, name: &str, run: &str) -> Result<RunLock, JournalError> {
        let path = self.lock_path(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(JournalError::io("create", dir))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(JournalError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let h = self.holder(name).unwrap_or(Holder {
                    run: "?".into(),
                    pid: 0,
                });
                return Err(JournalError::Locked {
                    name: name.to_string(),
                    holder: h.run,
                    pid: h.pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(JournalError::io("lock", &path)(e)),
        }
        file.set_len(0)
            .and_then(|_| file.write_all(format!("{run} {}\n", std::process::id()).as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(JournalError::io("write", &path))?;
        Ok(RunLock { _file: file })
    }

    /// Take the lock, waiting (at most `within`) while another process holds it;
    /// `waiting` is called about every ten seconds with the holder and the time waited.
    pub fn lock_waiting(
        &self,
        name: &str,
        run: &str,
        within: Duration,
        mut waiting: impl FnMut(&Holder, Duration),
    ) -> Result<RunLock, JournalError> {
        let start = Instant::now();
        let mut told = Duration::ZERO;
        loop {
            match self.lock(name, run) {
                Err(JournalError::Locked { holder, pid, .. }) if start.elapsed() < within => {
                    let waited = start.elapsed();
                    if waited >= told {
                        waiting(&Holder { run: holder, pid }, waited);
                        told = waited + Duration::from_secs(10);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// The run and pid holding `name`'s lock right now, if a live process holds it.
    pub fn holder(&self, name: &str) -> Option<Holder> {
        let path = self.lock_path(name);
        let file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => {
                // The holder writes its name just after taking the lock: read again briefly.
                for _ in 0..20 {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut parts = text.split_whitespace();
                    if let (Some(run), Some(Ok(pid))) =
                        (parts.next(), parts.next().map(str::parse::<u32>))
                    {
                        return Some(Holder {
                            run: run.to_string(),
                            pid,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Some(Holder {
                    run: "?".into(),
                    pid: 0,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().to_path_buf());
        let l = s.lock("x", "run-1").unwrap();
        let holder = s.holder("x").unwrap();
        assert_eq!(holder.run, "run-1");
        assert_eq!(holder.pid, std::process::id());
        match s.lock("x", "run-2") {
            Err(JournalError::Locked { holder, .. }) => assert_eq!(holder, "run-1"),
            other => panic!("{other:?}"),
        }
        drop(l);
        assert!(s.holder("x").is_none());
        let _l2 = s.lock("x", "run-2").unwrap();
    }
}
