//! PURE: the run's decisions. A run is a [`Plan`] and the [`Event`]s that happen to it;
//! [`step`] folds each event into the [`RunState`] and says what to do next. The journal
//! records the events, so replaying it is the same fold: what `status`, `resume`,
//! `rollback` and `reconcile` believe is what the live run believed. Probe reports
//! become verdicts here too. No network, files or clock.

pub mod event;
pub mod found;
pub mod probe_report;
pub mod reconcile;
pub mod signals;
pub mod state;
pub mod step;
pub mod summary;
pub mod verdict;
pub mod watched;

#[cfg(test)]
mod group_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use event::{
    freeze_of, Approved, Attach, Deployment, Event, Finding, Freeze, Gates, Groups, HostResult,
    HostVerdict, Intent, Lost, Offline, Op, Plan, Policy, Preflight, Promotion, Record, Refusal,
    RunKind, Sample, Seen, StopRequest, Target, FORMAT,
};
pub use state::{End, HostRun, HostState, RunState, Stage, Status, Why};
pub use step::{replay, step, Action};
pub use summary::{exit_code, summarize, Summary};
