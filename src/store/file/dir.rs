//! Whether the state directory can be used at all, asked before a command reads or
//! writes it: a directory that exists but is not one, or that this user cannot read
//! (or write, for a command that writes), is an error that says what to do — never an
//! empty list of runs. Looks at the file system only (metadata and `faccessat`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::store::{Access, StoreError};

use super::FileStore;

const HELP: &str = "give --state-dir (or WAVECTL_STATE_DIR) a directory this user can read \
                    and write, or run wavectl as the user that owns it";

impl FileStore {
    /// The state directory, and its `runs/` and `locks/`, are directories this user may
    /// use as `access` says — or do not exist yet (no runs). Nothing is created.
    pub(super) fn usable(&self, access: Access) -> Result<(), StoreError> {
        let parts = [
            (self.root.clone(), "the state directory"),
            (self.root.join("runs"), "the state directory's runs"),
            (self.root.join("locks"), "the state directory's locks"),
            (
                self.root.join("applied"),
                "the state directory's applied plans",
            ),
        ];
        for (path, what) in &parts {
            let meta = match std::fs::metadata(path) {
                Ok(m) => m,
                // Not there yet: the state directory itself, nothing under it either.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == &self.root => {
                    return Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(unusable(
                        path,
                        format!("cannot read {what} {}: {e}", path.display()),
                    ))
                }
            };
            if !meta.is_dir() {
                return Err(StoreError::Unusable {
                    path: path.clone(),
                    problem: format!(
                        "{what} {} is not a directory (it is {})",
                        path.display(),
                        kind(&meta)
                    ),
                    help: format!(
                        "give --state-dir (or WAVECTL_STATE_DIR) a directory, or move {} away",
                        path.display()
                    ),
                });
            }
            let (mode, verb) = match access {
                Access::Read => (libc::R_OK | libc::X_OK, "read"),
                Access::Write => (libc::R_OK | libc::W_OK | libc::X_OK, "read and write"),
            };
            if let Err(e) = may(path, mode) {
                return Err(unusable(
                    path,
                    format!(
                        "cannot {verb} {what} {}: {e} (it is owned by uid {}, mode {:04o}; this is uid {})",
                        path.display(),
                        meta.uid(),
                        meta.mode() & 0o7777,
                        // SAFETY: geteuid(2) cannot fail and touches no memory.
                        unsafe { libc::geteuid() }
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn unusable(path: &Path, problem: String) -> StoreError {
    StoreError::Unusable {
        path: path.to_path_buf(),
        problem,
        help: HELP.to_string(),
    }
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "a file"
    } else {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            "a named pipe"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "not a directory"
        }
    }
}

/// `faccessat(2)` with the effective ids: may this process use `path` as `mode` says?
fn may(path: &Path, mode: libc::c_int) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call, which only reads it.
    let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_dir_is_usable_and_a_file_is_not() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::new(t.path().join("nowhere"));
        assert!(s.usable(Access::Write).is_ok());
        let f = t.path().join("file");
        std::fs::write(&f, "x").unwrap();
        let e = FileStore::new(f.clone()).usable(Access::Read).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the state directory {0} is not a directory (it is a file)\n  help: give \
                 --state-dir (or WAVECTL_STATE_DIR) a directory, or move {0} away",
                f.display()
            )
        );
        // Under a file: the path cannot even be looked at.
        let e = FileStore::new(f.join("state"))
            .usable(Access::Read)
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "cannot read the state directory {}/state: ",
                f.display()
            )),
            "{e}"
        );
        // `runs` a file in a state directory.
        std::fs::create_dir(t.path().join("s")).unwrap();
        std::fs::write(t.path().join("s/runs"), "").unwrap();
        let e = FileStore::new(t.path().join("s"))
            .usable(Access::Read)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("the state directory's runs "),
            "{e}"
        );
    }
}
