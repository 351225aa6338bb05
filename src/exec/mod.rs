//! The async driver: carries out what the run's state machine orders (deploy, probe,
//! confirm, remove, settle) over the transport, journals every event before its actions
//! start, enforces deadlines, and turns the operator's signals into a stop request. The
//! only module that writes the journal and talks to hosts.

mod engine;
mod ops;
pub mod preview;
mod probe;
mod signals;

pub use engine::{now_ms, Engine, Stopped};
pub use ops::{transport_verdict, Shared, KILL_TIMEOUT};
pub use probe::login_deadline;
pub use signals::Stop;

/// A new run id: `<UTC timestamp>-<name>-<4 hex>`, sortable by start time.
pub fn new_run_id(name: &str) -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    format!("{stamp}-{name}-{:04x}", rand::random::<u16>())
}
