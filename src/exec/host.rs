//! The engine's door to the hosts: a small trait ([`Host`]) with the few things a run
//! asks of a host — install, start a run, confirm, remove, settle (ask what it holds),
//! probe — each answered as a plain value ([`HostResult`], [`Outcome`]). [`Ssh`] is
//! the real side (`ops`, `probe`: over the transport); engine tests put in-memory hosts
//! here (`fake_host`). No decision is taken behind it: what a result means is `step`'s.
//!
//! A [`Host`] answers for every host of one run (it is given the run's [`Plan`] when
//! made), each call naming the host. Every call ends on its own: deadlines (login,
//! command, probe) are the implementation's, and a host that does not answer in time
//! is reported as such (`Missed`, a `hung` or `unreachable` verdict), never waited on.

use crate::inventory;
use crate::rollout::verdict::Outcome;
use crate::rollout::{HostResult, Op};
use crate::store::BoxFuture;

pub use super::ops::Ssh;

/// What one probe is asked beyond the health sample itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeAsk {
    /// Where the host's kernel log stood at its last probe (none: the probe takes one).
    pub cursor: Option<String>,
    /// Probe it over a new login only, not the connection kept for it (it owes one since
    /// its install). The machine says when.
    pub new_login: bool,
    /// Also log in afresh beside the connection kept for it, and judge it on the new
    /// login: a host can keep old sessions alive while new logins hang. The machine says
    /// when.
    pub fresh: bool,
}

/// The hosts of one run, as the engine sees them. The primitives each carry out one
/// action on one host; [`carry_out`](Host::carry_out) is the one the engine calls for
/// the machine's orders.
pub trait Host: Send + Sync {
    /// Install the run's script, wrapper, manifest and activation (probation, with a
    /// lease); `at` is the record time the install was ordered at (Unix ms), the
    /// manifest's `installed_at`. Starts the first run in the same command when the
    /// deployment says `run_on_install`.
    fn install<'a>(&'a self, host: &'a inventory::Host, at: u64) -> BoxFuture<'a, HostResult>;

    /// Start one supervised run (an install that did not start it).
    fn start_run<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult>;

    /// Set the manifest `confirmed` (`fresh`: over a new login, as the machine orders
    /// for a host that owes one).
    fn confirm<'a>(&'a self, host: &'a inventory::Host, fresh: bool) -> BoxFuture<'a, HostResult>;

    /// Return the host to what it held before the run (a purge: remove every version).
    fn remove<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult>;

    /// Ask the host what it holds of the run (`HostResult::Settled`), changing nothing.
    fn settle<'a>(&'a self, host: &'a inventory::Host) -> BoxFuture<'a, HostResult>;

    /// One health sample of the host (renewing its lease, if it holds one).
    fn probe<'a>(&'a self, host: &'a inventory::Host, ask: &'a ProbeAsk) -> BoxFuture<'a, Outcome>;

    /// The run is over: let go of what is kept between actions (connections).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Carry out the action the machine ordered (`fresh`: over a new login).
    fn carry_out<'a>(
        &'a self,
        host: &'a inventory::Host,
        op: Op,
        at: u64,
        fresh: bool,
    ) -> BoxFuture<'a, HostResult> {
        match op {
            Op::Install => self.install(host, at),
            Op::StartRun => self.start_run(host),
            Op::Confirm => self.confirm(host, fresh),
            Op::Remove => self.remove(host),
            Op::Settle => self.settle(host),
        }
    }
}
