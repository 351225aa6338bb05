//! Plans applied once: `<state-dir>/applied/<plan id>.json`, created exclusively as a
//! run of the plan begins and naming that run, so the plan is refused the next time.
//! The one place that knows this record (it moves behind the shared store with the
//! rest of the state). Reads and writes files under the state directory.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{sync_dir, JournalError, StateDir};

/// Which run applied a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPlan {
    /// The plan's id.
    pub plan: String,
    /// The plan's hash.
    pub hash: String,
    pub run: String,
    /// When the run began (UTC).
    pub at: String,
    /// Who applied it (the local user).
    pub user: String,
}

impl StateDir {
    /// Where the record of plan `id` lives (`id` is a checked plan id: hex digits).
    fn applied_path(&self, id: &str) -> PathBuf {
        self.root.join("applied").join(format!("{id}.json"))
    }

    /// The run that applied plan `id`, if one did.
    pub fn applied_plan(&self, id: &str) -> Result<Option<AppliedPlan>, JournalError> {
        let path = self.applied_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(JournalError::io("read", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| JournalError::Corrupt {
                path,
                line: 1,
                message: e.to_string(),
            })
    }

    /// Record that `rec.run` applies plan `rec.plan`, unless a run did already:
    /// `Ok(None)` recorded; `Ok(Some(earlier))` the plan was applied before (nothing is
    /// written). Exclusive and whole: the record is written aside, then linked into
    /// place, which fails if the name exists.
    pub fn claim_plan(&self, rec: &AppliedPlan) -> Result<Option<AppliedPlan>, JournalError> {
        let path = self.applied_path(&rec.plan);
        let dir = self.root.join("applied");
        std::fs::create_dir_all(&dir).map_err(JournalError::io("create", &dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(JournalError::io("create a temporary file in", &dir))?;
        let text = serde_json::to_string(rec).unwrap_or_default() + "\n";
        tmp.write_all(text.as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(JournalError::io("write", tmp.path()))?;
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => {
                sync_dir(&dir);
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Some(
                self.applied_plan(&rec.plan)?.unwrap_or_else(|| rec.clone()),
            )),
            Err(e) => Err(JournalError::io("write", &path)(e)),
        }
    }

    /// Take back the claim of a run that never began (its journal could not be made).
    pub fn unclaim_plan(&self, id: &str) {
        let _ = std::fs::remove_file(self.applied_path(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(run: &str) -> AppliedPlan {
        AppliedPlan {
            plan: "0123456789abcdef0123456789abcdef".into(),
            hash: "sha256:x".into(),
            run: run.into(),
            at: "2026-01-01T00:00:00Z".into(),
            user: "ann".into(),
        }
    }

    #[test]
    fn a_plan_is_claimed_once_and_the_second_claim_names_the_first_run() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::new(t.path().to_path_buf());
        assert_eq!(s.applied_plan(&rec("r1").plan).unwrap(), None);
        assert_eq!(s.claim_plan(&rec("r1")).unwrap(), None);
        assert_eq!(s.claim_plan(&rec("r2")).unwrap(), Some(rec("r1")));
        assert_eq!(s.applied_plan(&rec("r1").plan).unwrap(), Some(rec("r1")));
        // Only the record is left in the directory (no temporary files).
        let names: Vec<_> = std::fs::read_dir(t.path().join("applied"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        s.unclaim_plan(&rec("r1").plan);
        assert_eq!(s.claim_plan(&rec("r3")).unwrap(), None);
    }
}
