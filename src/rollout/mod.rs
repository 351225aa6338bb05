//! PURE: what a probe saw and what it means — per-host verdicts with evidence,
//! and the run's decision (go on, roll back, pause). No network, files or clock.

pub mod probe;
pub mod verdict;
