//! What the store keeps beside the journals: the audit log's entries (who did what,
//! when, how it ended) and the claims of applied plans (a plan applies once). Plain
//! values; each backend keeps them its own way.

use serde::{Deserialize, Serialize};

/// One line of the audit log (fields left out when empty read back empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
