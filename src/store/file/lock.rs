//! One run per rollout name at a time: `locks/<name>.lock`, an flock held for the life of
//! the process that works on the rollout (the kernel drops it when that process dies, even
//! by SIGKILL). The file names the run and pid that hold it (`RUN PID`); the host is this
//! machine's, the user the one the holding process runs as.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::store::{local_host, Holder, Lease, StoreError};

use super::FileStore;

/// The file store's hold on a rollout: the open lock file whose flock this process has.
pub(super) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file at the lock's path is still the one held (not removed or replaced,
    /// which would let another controller take the rollout beside this one).
    pub(super) fn still_held(&self, run: &str) -> Result<(), StoreError> {
        let held = self
            .file
            .metadata()
            .map_err(StoreError::io("look at", &self.path))?;
        match std::fs::metadata(&self.path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => Ok(()),
            Ok(_) => Err(StoreError::Fenced {
                run: run.to_string(),
                why: format!(
                    "the lock file {} was replaced: another controller may work on the rollout",
                    self.path.display()
                ),
            }),
            Err(e) => Err(StoreError::Fenced {
                run: run.to_string(),
                why: format!("the lock file {} is gone ({e})", self.path.display()),
            }),
        }
    }
}

impl FileStore {
    pub(super) fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// Take the lock of `name` for `driver`, or say who holds it.
    pub(super) fn lock_now(&self, name: &str, driver: &Holder) -> Result<Lease, StoreError> {
        let path = self.lock_path(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = self.holder_now(name).unwrap_or_else(unknown_holder);
                return Err(StoreError::Locked {
                    rollout: name.to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("lock", &path)(e)),
        }
        file.set_len(0)
            .and_then(|_| file.write_all(format!("{} {}\n", driver.run, driver.pid).as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(StoreError::io("write", &path))?;
        // Stop requests left for this run were for a controller that is gone.
        let stop = self.stop_path(&driver.run);
        match std::fs::remove_file(&stop) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::io("remove the old stop request", &stop)(e))
            }
            _ => {}
        }
        Ok(Lease::new(name, driver.clone(), 0, FileLock { file, path }))
    }

    /// The run and pid holding `name`'s lock right now, if a live process holds it.
    pub(super) fn holder_now(&self, name: &str) -> Option<Holder> {
        let path = self.lock_path(name);
        let file = File::open(&path).ok()?;
        if file.try_lock_shared().is_ok() {
            return None;
        }
        // The holder writes its name just after taking the lock: read again briefly.
        for _ in 0..20 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut parts = text.split_whitespace();
            if let (Some(run), Some(Ok(pid))) = (parts.next(), parts.next().map(str::parse::<u32>))
            {
                return Some(Holder {
                    run: run.to_string(),
                    host: local_host(),
                    user: user_of(pid),
                    pid,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(unknown_holder())
    }
}

/// A live holder whose lock file does not say who it is.
fn unknown_holder() -> Holder {
    Holder {
        run: "?".to_string(),
        host: local_host(),
        user: "?".to_string(),
        pid: 0,
    }
}

/// The user a live process runs as (the owner of `/proc/PID`), by name where it has one.
fn user_of(pid: u32) -> String {
    match std::fs::metadata(format!("/proc/{pid}")) {
        Ok(m) => user_name(m.uid()),
        Err(_) => "?".to_string(),
    }
}

pub(crate) fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero `passwd` is a valid value of a plain C struct.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r(3) writes only into `pwd` and `buf` (of the length given), both
    // alive across the call; `found` is set to null or to `&pwd`.
    let r = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if r != 0 || found.is_null() || pwd.pw_name.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: on success `pw_name` points at a NUL-terminated string inside `buf`.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_without_a_name_shows_as_its_uid() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "uid 4000000000");
    }
}
