//! Plans applied once, in the state directory: `applied/<plan id>.json`, created
//! exclusively as a run of the plan begins and naming that run, so the plan is refused
//! the next time. Reads and writes files under the state directory.

use std::io::Write;
use std::path::PathBuf;

use crate::store::{AppliedPlan, StoreError};

use super::{sync_dir, FileStore};

impl FileStore {
    /// Where the record of plan `id` lives (`id` is a checked plan id: hex digits).
    fn applied_path(&self, id: &str) -> PathBuf {
        self.root.join("applied").join(format!("{id}.json"))
    }

    /// The run that applied plan `id`, if one did.
    pub(super) fn applied_plan_now(&self, id: &str) -> Result<Option<AppliedPlan>, StoreError> {
        let path = self.applied_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                at: format!("{}:1", path.display()),
                message: e.to_string(),
            })
    }

    /// Record that `rec.run` applies plan `rec.plan`, unless a run did already:
    /// `Ok(None)` recorded; `Ok(Some(earlier))` the plan was applied before (nothing is
    /// written). Exclusive and whole: the record is written aside, then linked into
    /// place, which fails if the name exists.
    pub(super) fn claim_plan_now(
        &self,
        rec: &AppliedPlan,
    ) -> Result<Option<AppliedPlan>, StoreError> {
        let path = self.applied_path(&rec.plan);
        let dir = self.root.join("applied");
        std::fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(StoreError::io("create a temporary file in", &dir))?;
        let text = serde_json::to_string(rec).unwrap_or_default() + "\n";
        tmp.write_all(text.as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(StoreError::io("write", tmp.path()))?;
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => {
                sync_dir(&dir);
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Some(
                self.applied_plan_now(&rec.plan)?
                    .unwrap_or_else(|| rec.clone()),
            )),
            Err(e) => Err(StoreError::io("write", &path)(e)),
        }
    }

    /// Take back the claim of a run that never began (its journal could not be made).
    pub(super) fn unclaim_plan_now(&self, id: &str) -> Result<(), StoreError> {
        let path = self.applied_path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::io("remove", &path)(e))
            }
            _ => Ok(()),
        }
    }
}
