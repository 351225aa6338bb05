//! The async driver: carries out host actions (deploy, probe, confirm, remove) over the
//! transport, journals each one before and after, enforces deadlines, and emits events.
//! The only module that writes the journal and talks to hosts.

mod apply;
mod bake;
mod cleanup;
mod deploy;
mod remove;
mod resume;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::journal::{Action, Journal, Record};
use crate::report::{Event, Reporter};
use crate::transport::Transport;

pub use apply::{apply, drive, ApplyOptions, Progress};
pub use cleanup::{clean_hosts, Cleanup};
pub use remove::{remove_hosts, Removal, RemovalTarget, Removed, REMOVE_FANOUT};
pub use resume::{progress, roll_back_run, settle};

/// What every action of a run shares: the transport, the journal, the reporter, and the
/// operator's stop request.
pub struct Ctx<'a> {
    pub transport: &'a Transport,
    pub journal: &'a Journal,
    pub reporter: &'a Reporter,
    /// Set by the first Ctrl-C (or `abort`): start no new host action.
    pub stop: Arc<AtomicBool>,
}

impl Ctx<'_> {
    pub fn emit(&self, e: Event) {
        self.reporter.emit(e);
    }

    /// Journal a record; a journal that cannot be written stops the run (we would lose track).
    pub fn record(&self, r: Record) -> Result<(), crate::journal::JournalError> {
        self.journal.append(&r)
    }

    pub fn intent(&self, host: &str, action: Action) -> Result<(), crate::journal::JournalError> {
        self.record(Record::Intent {
            host: host.to_string(),
            action,
        })
    }

    pub fn outcome(
        &self,
        host: &str,
        action: Action,
        ok: bool,
        detail: impl Into<String>,
    ) -> Result<(), crate::journal::JournalError> {
        self.record(Record::Outcome {
            host: host.to_string(),
            action,
            ok,
            detail: detail.into(),
        })
    }

    /// Log in to `host` (deadline `login_timeout`), run one command, close the session.
    pub async fn run_on(
        &self,
        host: &crate::inventory::Host,
        login_timeout: Duration,
        cmd: &crate::remote::RemoteCommand,
    ) -> Result<crate::transport::Output, crate::transport::TransportError> {
        let conn = self
            .transport
            .connect(host, login_deadline(login_timeout))
            .await?;
        let out = conn.run(cmd).await;
        conn.close().await;
        out
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new run id: `<UTC timestamp>-<rollout>-<4 hex>`, sortable by start time.
pub fn new_run_id(rollout: &str) -> String {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    format!("{stamp}-{rollout}-{:04x}", rand::random::<u16>())
}

/// The deadline for a login: the probe timeout, but never under 2 s.
pub fn login_deadline(probe_timeout: Duration) -> Duration {
    probe_timeout.max(Duration::from_secs(2))
}
