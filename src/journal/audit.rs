//! The audit log: `<state-dir>/audit.jsonl`, one JSON line per thing done — apply,
//! approval, rollback, purge, reconcile, resume: who, what, when, and how it ended.
//! Appended and fsync'd; never rewritten.

use std::fs::OpenOptions;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{JournalError, StateDir};

/// One line of the audit log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// UTC, RFC 3339.
    pub at: String,
    /// The local user (`SUDO_USER` when run through sudo).
    pub user: String,
    /// `apply`, `approve`, `resume`, `rollback`, `purge`, `purge-path`, `reconcile`.
    pub action: String,
    /// `started`, or how it ended (`done`, `rolled-back`, `refused`, ...).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub rollout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// Anything else worth keeping (why it was refused, which hosts are pending).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub command: Vec<String>,
}

impl StateDir {
    pub fn audit_path(&self) -> std::path::PathBuf {
        self.root.join("audit.jsonl")
    }

    /// Append one entry to the audit log, durably.
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), JournalError> {
        let path = self.audit_path();
        std::fs::create_dir_all(&self.root).map_err(JournalError::io("create", &self.root))?;
        let mut line = serde_json::to_vec(entry).map_err(|e| JournalError::Io {
            what: "encode an entry for",
            path: path.clone(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(JournalError::io("open", &path))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .map_err(JournalError::io("write", &path))
    }

    /// Every entry, oldest first (lines that do not read are skipped: it is a log for
    /// people, not a journal the engine replays).
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        std::fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
