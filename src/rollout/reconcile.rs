//! PURE: what `reconcile` does with a run, from its state alone: leave it (it is done, or
//! never began), say what the operator can do (a paused run), or take it up — finishing
//! its removals and unconfirmed hosts, or rolling back an apply whose controller died.

use super::event::{Intent, RunKind};
use super::state::{End, RunState, Status};
use super::step::utc;
use super::summary::lease_runs_out;

/// What reconcile does with one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconcile {
    /// Nothing to do.
    Skip,
    /// Nothing to do here; this says what the operator can do.
    Note(String),
    /// Take the run up with this intent.
    Take(Intent),
}

/// What reconcile does with run `id`, in state `st`.
pub fn decide(id: &str, st: &RunState) -> Reconcile {
    let kind = st.kind();
    match &st.status {
        Status::New => Reconcile::Skip,
        Status::Ended { end } => match end {
            // Nothing is pending on a superseded host: the newer run's rollback decides.
            End::Done | End::Clean { .. } | End::Superseded { .. } => Reconcile::Skip,
            End::Paused { .. } => Reconcile::Note(format!(
                "run {id} is paused: `wavectl resume {id}` or `wavectl rollback {id}`{}",
                lease_runs_out(st).map_or(String::new(), |t| format!(
                    " (its probation hosts revert themselves from {})",
                    utc(t / 1000)
                ))
            )),
            End::Unconfirmed | End::Pending { .. } => Reconcile::Take(Intent::Reconcile),
        },
        Status::Removing { .. } | Status::Backoff { .. } => Reconcile::Take(Intent::Reconcile),
        Status::Stopping { .. } if kind != Some(RunKind::Apply) => {
            Reconcile::Take(Intent::Reconcile)
        }
        Status::Running { .. } | Status::Stopping { .. } => Reconcile::Take(Intent::Orphaned),
    }
}
