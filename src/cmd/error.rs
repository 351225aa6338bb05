//! Why a command failed: one [`CmdError`] per family of failure, each with what went
//! wrong and how to go on as fields of their own, mapped to its exit code once
//! ([`CmdError::code`], used by `cmd::run`) and printed once there, through the reporter
//! (an `error` event).

use crate::diag::InputError;
use crate::exec::wall_ms;
use crate::exit;
use crate::rollout::RunState;
use crate::store::StoreError;

/// Why a command failed, by family; the family gives the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Bad input: a spec, an inventory, a flag (exit 2: nothing was touched on any host).
    #[error("{0}")]
    Input(#[from] InputError),
    /// The store, a lock or a journal (exit 2: nothing was touched; exit 4 if the
    /// store is out of reach or the run was lost).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The store stopped taking the run's records in the middle of it (exit 4); when
    /// the probation hosts' leases run out (Unix ms), if any host is in probation.
    #[error("{err}{leases}\n  help: {help}", err = .0, leases = leases_note(*.1), help = lost_help(.0))]
    Lost(StoreError, Option<u64>),
    /// Refused by policy: missing approvals, a stale or spent plan, a freeze (exit 5).
    #[error("{0}")]
    Refused(Failure),
    /// A run, a rollout or a host is not in a state the command can act on: a run not
    /// at a gate, not running, a purge to undo, a kept script changed, a host refusing
    /// the preflight's login, a rollout another run works on (exit 2: nothing touched).
    #[error("{0}")]
    State(Failure),
    /// Targets (or a run holding the rollout) did not answer or let go in time: the
    /// preflight's offline targets, a purge waiting on an apply (exit 4).
    #[error("{0}")]
    Offline(Failure),
    /// This machine lacks what the command needs before it starts: `ssh-keygen`, the
    /// ssh control directory, a lab fleet (exit 2: nothing was touched).
    #[error("{0}")]
    Setup(Failure),
    /// The system failed under the command: signals, temporary files, writing out
    /// (exit 4).
    #[error("{0}")]
    System(Failure),
    /// A signal after a stop request: the command ended at once (exit 3).
    #[error("second interrupt ({0}): exiting now; the journal is intact (`wavectl status`, then `wavectl resume RUN`, `rollback RUN` or `reconcile`)")]
    Interrupted(&'static str),
}

impl CmdError {
    /// The exit code of this failure (DESIGN.md's table): the one place it is decided.
    pub fn code(&self) -> i32 {
        match self {
            CmdError::Store(e) if e.is_lost() => exit::INCOMPLETE,
            CmdError::Input(_) | CmdError::Store(_) => exit::BAD_INPUT,
            CmdError::State(_) | CmdError::Setup(_) => exit::BAD_INPUT,
            CmdError::Lost(..) | CmdError::Offline(_) | CmdError::System(_) => exit::INCOMPLETE,
            CmdError::Refused(_) => exit::REFUSED,
            CmdError::Interrupted(_) => exit::ABORTED,
        }
    }

    /// How to go on, when the error says.
    pub fn help(&self) -> Option<String> {
        match self {
            CmdError::Input(e) => e.help.clone(),
            CmdError::Lost(e, _) => Some(lost_help(e).to_string()),
            CmdError::Refused(f)
            | CmdError::State(f)
            | CmdError::Offline(f)
            | CmdError::Setup(f)
            | CmdError::System(f) => f.help.clone(),
            CmdError::Store(_) | CmdError::Interrupted(_) => None,
        }
    }
}

/// What went wrong (a sentence, possibly with lines of detail) and how to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub what: String,
    pub help: Option<String>,
}

impl Failure {
    pub fn new(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Failure {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

pub type CmdResult = Result<i32, CmdError>;

fn lost_help(e: &StoreError) -> &'static str {
    match e {
        StoreError::Fenced { .. } => "this controller stopped touching hosts at once: the run is another controller's now (`wavectl status` says whose)",
        StoreError::Unreachable { .. } => "the run stopped where it was, starting no host action since: once the store is back, `wavectl reconcile` finishes it (or `wavectl purge NAME`, which asks the hosts themselves)",
        _ => "the run stopped where it was, and hosts may hold the script: make the state directory writable, then `wavectl reconcile` (or `wavectl purge NAME`, which asks the hosts themselves)",
    }
}

/// When the leases of a run that stopped part-way run out, at the latest: its probation
/// hosts' (renewed at the last probe) and those of an install in flight (begun by now).
pub(super) fn leases_run_out(s: &RunState) -> Option<u64> {
    use crate::rollout::HostState;
    let lease = s.plan.as_ref()?.deployment()?.lease.as_millis() as u64;
    let in_flight = s.hosts.iter().any(|h| h.state == HostState::Unknown);
    let installed = s.hosts.iter().any(|h| h.state == HostState::Installed);
    let from = match (installed, in_flight) {
        (_, true) => wall_ms(),
        (true, false) => s.renewed,
        (false, false) => return None,
    };
    Some(from.saturating_add(lease))
}

/// "; the probation hosts' leases run out at T, then they revert themselves".
fn leases_note(until: Option<u64>) -> String {
    match until {
        Some(ms) => format!(
            "\n  the probation hosts' leases run out by {} (unless the run is resumed before), and then they revert themselves",
            crate::rollout::step::utc(ms / 1000)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_its_exit_code_and_the_help_is_its_own_field() {
        let f = || Failure::new("run r1 is not running").help("`wavectl resume r1`");
        let cases = [
            (CmdError::Refused(f()), exit::REFUSED),
            (CmdError::State(f()), exit::BAD_INPUT),
            (CmdError::Setup(f()), exit::BAD_INPUT),
            (CmdError::Offline(f()), exit::INCOMPLETE),
            (CmdError::System(f()), exit::INCOMPLETE),
            (CmdError::Input(InputError::new("bad")), exit::BAD_INPUT),
            (CmdError::Interrupted("SIGINT"), exit::ABORTED),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
        let e = CmdError::State(f());
        assert_eq!(
            e.to_string(),
            "run r1 is not running\n  help: `wavectl resume r1`"
        );
        assert_eq!(e.help().as_deref(), Some("`wavectl resume r1`"));
        let bare = CmdError::System(Failure::new("cannot listen for signals"));
        assert_eq!(bare.to_string(), "cannot listen for signals");
        assert_eq!(bare.help(), None);
    }
}
