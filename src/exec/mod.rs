//! The async driver: carries out what the run's state machine orders (deploy, probe,
//! confirm, remove, settle) on its hosts through the [`Host`] seam ([`Ssh`]: over the
//! transport), journals every event in the store before its actions start, enforces
//! deadlines, and turns stop requests (signals, the store's) into the run's stop. The
//! only module that writes journals and talks to hosts.

mod clock;
mod engine;
#[cfg(test)]
mod fake_host;
pub mod host;
mod ops;
pub mod preflight;
pub mod preview;
mod probe;
mod stop;

pub use clock::{wall_ms, Clock, SystemClock, TestClock};
pub use engine::{Engine, Seams, Stopped};
pub use host::{Host, ProbeAsk, Ssh};
pub use ops::{transport_verdict, KILL_TIMEOUT};
pub use probe::login_deadline;
pub use stop::{Signals, Stop};

/// A new run id: `<UTC timestamp>-<name>-<4 hex>`, sortable by start time.
pub fn new_run_id(name: &str) -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    format!("{stamp}-{name}-{:04x}", rand::random::<u16>())
}
