//! The journal's records, one JSON object per line.

use serde::{Deserialize, Serialize};

use crate::inventory::Host;
use crate::rollout::verdict::Verdict;

/// A host action that is journaled before (intent) and after (outcome) it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Run,
    Confirm,
    Remove,
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// A rollout in waves (`apply`).
    #[default]
    Apply,
    /// `purge NAME`: removal of a wavectl-installed script from every host.
    Purge,
    /// `purge --path PATH`: removal of a script wavectl never installed.
    PurgePath,
}

/// What a run needs to be resumed or rolled back without its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run: String,
    pub rollout: String,
    pub install_path: String,
    pub sha256: String,
    pub spec_path: String,
    pub inventory_path: String,
    pub ssh_config: Option<String>,
    pub hosts: Vec<Host>,
    pub waves: Vec<Vec<String>>,
    pub pid: u32,
    pub started: u64,
    #[serde(default)]
    pub kind: RunKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Run(Box<RunInfo>),
    Wave {
        wave: usize,
        state: String,
    },
    Intent {
        host: String,
        action: Action,
    },
    Outcome {
        host: String,
        action: Action,
        ok: bool,
        detail: String,
    },
    /// The outcome of an install that never reached the host (no login): nothing changed there.
    Untouched {
        host: String,
        reason: String,
    },
    Verdict {
        host: String,
        wave: usize,
        verdict: Verdict,
    },
    /// The run's state: running, rolling-back, done, rolled-back, paused, incomplete, aborted.
    State {
        state: String,
        at: u64,
    },
}

/// Parse journal text; a line that does not parse (a torn last line) is skipped.
pub fn parse_lines(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
