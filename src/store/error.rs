//! What can go wrong with the store, in one type for every backend: the store's own
//! state (unusable, damaged, another format), a run it does not hold, a lock another
//! controller holds — and the two that mean this controller must stop touching hosts:
//! it lost the run (fenced) or cannot reach the store.

use std::path::PathBuf;

use crate::rollout::FORMAT;

use super::Holder;

/// Store failures. [`is_lost`](StoreError::is_lost) tells the two after which a
/// controller in the middle of a run stops at once (exit 4) from the rest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store exists but cannot be used (a state directory that is not one, or that
    /// this user cannot read or write).
    #[error("{problem}\n  help: {help}")]
    Unusable {
        path: PathBuf,
        problem: String,
        help: String,
    },
    /// Another controller works on the rollout.
    #[error("rollout `{rollout}` is being worked on by run {} ({}); wait for it to end, or `wavectl abort {}`", holder.run, holder.who(), holder.run)]
    Locked { rollout: String, holder: Holder },
    #[error("no run `{0}` in the state directory; `wavectl status` lists the runs")]
    NoSuchRun(String),
    #[error("`{prefix}` names more than one run ({}); give more of the id", matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    /// A journal record that does not read, before the end (`at`: where, `FILE:LINE`).
    #[error("{at}: unreadable journal record ({message}); the journal is damaged in the middle, so nothing after it can be trusted: keep the file for inspection, and use `wavectl purge NAME --inventory INV` to clean the hosts by their own manifests")]
    Corrupt { at: String, message: String },
    #[error("{at}: journal format {found}, this wavectl reads format {FORMAT}; use the wavectl version that wrote it")]
    Version { at: String, found: u64 },
    /// This controller lost the run: another took it over (a newer epoch), or the lock
    /// it held is gone. Its records are refused from now on.
    #[error("lost run {run}: {why}")]
    Fenced { run: String, why: String },
    /// The store does not answer (a database down or out of reach).
    #[error("cannot reach the store {store}: {why}")]
    Unreachable { store: String, why: String },
}

impl StoreError {
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// This controller cannot go on with its run: it lost it, or the store is out of
    /// reach. It must stop touching hosts at once (exit 4), whatever it was doing.
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            StoreError::Fenced { .. } | StoreError::Unreachable { .. }
        )
    }
}
