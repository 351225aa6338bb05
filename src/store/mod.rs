//! Where runs are kept, behind one small async trait ([`Store`]): each run's journal
//! (one writer at a time, fenced by its lease), the lock that lets one controller work
//! on a rollout, stop requests, the audit log, a run's artefacts and the applied-plan
//! claims. [`FileStore`] is the state directory; [`MemStore`] is the in-memory fake for
//! engine and unit tests; a shared database goes behind the same trait.

mod error;
mod file;
mod memory;
mod records;

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::StoreError;
pub use file::{write_durably, FileStore};
pub use memory::MemStore;
pub use records::{AppliedPlan, AuditEntry};

use crate::rollout::{replay, Freeze, Promotion, Record, RunState, StopRequest};

/// A boxed future of a store call. Boxed so the trait stays object-safe: commands and
/// the engine hold an `Arc<dyn Store>` picked at run time.
pub type BoxFuture<'a, T> = futures::future::BoxFuture<'a, T>;

/// How often a store that cannot push a stop request to the controller looks for one
/// (the file store, and a database as a backstop to its notifications): well within the
/// second an operator may wait for it to be seen.
pub const STOP_POLL: Duration = Duration::from_millis(250);

/// What a command does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads runs (`status`, `report`, `abort`).
    Read,
    /// Also writes journals, locks or the audit log.
    Write,
}

/// What a run keeps besides its journal, so a later command needs neither the spec nor
/// the directory it was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artefact {
    /// The bytes of the script an apply installs (its sha256 is in the plan).
    Script,
    /// The spec's `[notify]` (JSON), for every command that takes the run up again.
    Notify,
}

/// A run's journal as far as it reads: its records in order, and what stopped the
/// reading (the damage), if anything did. A torn last record is not damage.
#[derive(Debug)]
pub struct Journal {
    pub records: Vec<Record>,
    pub damage: Option<StoreError>,
}

/// An existing run's journal opened for appending: its writer, and the records it holds.
pub type Appending = (Box<dyn JournalWriter>, Vec<Record>);

/// Who works on a rollout: the run, and the controller driving it (host, user, pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run: String,
    /// The machine the controller runs on.
    pub host: String,
    /// The user it runs as.
    pub user: String,
    pub pid: u32,
}

impl Holder {
    /// This process, driving `run`.
    pub fn this_process(run: &str) -> Holder {
        Holder {
            run: run.to_string(),
            host: local_host(),
            user: local_user(),
            pid: std::process::id(),
        }
    }

    /// "pid 123, ann on bastion-1": the controller, for messages.
    pub fn who(&self) -> String {
        format!("pid {}, {} on {}", self.pid, self.user, self.host)
    }
}

/// The right to work on one rollout, held until dropped or until the controller dies
/// (a lock that dies with its holder). A run's journal is written only under the lease
/// of its rollout (see [`Store::create`], [`Store::open`]), and every append is fenced
/// by it: once another controller holds the rollout, the old holder's records are
/// refused ([`StoreError::Fenced`]).
pub struct Lease {
    pub rollout: String,
    pub holder: Holder,
    /// Grows with every lease of the rollout ever taken; what a shared store fences
    /// appends with. The file store's is 0: its lock is held by the kernel for the live
    /// holder only, and each append checks that the lock file is still the one held.
    pub epoch: u64,
    /// The backend's own hold (an open lock file, a connection, a token).
    guard: Box<dyn Any + Send + Sync>,
}

impl Lease {
    pub fn new(rollout: &str, holder: Holder, epoch: u64, guard: impl Any + Send + Sync) -> Lease {
        Lease {
            rollout: rollout.to_string(),
            holder,
            epoch,
            guard: Box::new(guard),
        }
    }

    /// The backend's hold, if this lease is of that backend.
    pub fn guard<T: Any>(&self) -> Option<&T> {
        self.guard.downcast_ref()
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("rollout", &self.rollout)
            .field("holder", &self.holder)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The one writer of a run's journal; it owns the lease it writes under (the rollout
/// stays locked while it lives).
pub trait JournalWriter: Send {
    fn run(&self) -> &str;

    fn lease(&self) -> &Lease;

    /// Make `records` durable, in order, before returning: all of them or none (one
    /// write and one fsync, or one transaction — the engine's group commit). Refused
    /// with [`StoreError::Fenced`] once the lease is no longer this writer's.
    fn append<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Where runs are kept. Every call is async (a database answers over the network);
/// the file store's calls are short local file operations.
pub trait Store: Send + Sync {
    /// The store, for messages ("no runs in …"): the state directory's path.
    fn describe(&self) -> String;

    /// Where a run's journal is, for messages and the `run_started` event.
    fn journal_location(&self, run: &str) -> String;

    /// Where a run's artefact is, for messages.
    fn artefact_location(&self, run: &str, what: Artefact) -> String;

    /// Whether the store can be used as `access` says — or is simply empty. Creates
    /// nothing; an unusable store is an error that says what to do.
    fn check(&self, access: Access) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Make the store ready to take new runs (create what is missing), and prove it
    /// can be written, before anything is touched.
    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Every run id, oldest first (ids start with a UTC timestamp), damaged runs
    /// included (their damage shows when they are read).
    fn runs(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// A run's journal as far as it reads; `NoSuchRun` if there is none.
    fn read<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Journal, StoreError>>;

    /// Take the lock of `rollout` for `driver`, or say who holds it (`Locked`). Taking
    /// it for a run clears that run's earlier stop requests: they were for a controller
    /// that is gone.
    fn lock<'a>(
        &'a self,
        rollout: &'a str,
        driver: &'a Holder,
    ) -> BoxFuture<'a, Result<Lease, StoreError>>;

    /// Who holds `rollout`'s lock right now, if a live controller does.
    fn holder<'a>(&'a self, rollout: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>>;

    /// Begin the journal of a new run under `lease` (fails if the run exists).
    fn create<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn JournalWriter>, StoreError>>;

    /// Open an existing run's journal for appending under `lease`, with its records
    /// (read under the lease: nobody else writes them now).
    fn open<'a>(
        &'a self,
        lease: Lease,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Appending, StoreError>>;

    /// Ask whoever drives `run` to stop (`abort`, a purge stopping an apply). Kept
    /// until the run's next lease is taken.
    fn request_stop<'a>(
        &'a self,
        run: &'a str,
        req: &'a StopRequest,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The stop request for `run`, if there is one.
    fn stop_request<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<StopRequest>, StoreError>>;

    /// Resolve when a stop request for `run` is there: by default, asked every
    /// [`STOP_POLL`] (a store that cannot be read is asked again).
    fn wait_stop<'a>(&'a self, run: &'a str) -> BoxFuture<'a, StopRequest> {
        Box::pin(async move {
            loop {
                if let Ok(Some(r)) = self.stop_request(run).await {
                    return r;
                }
                tokio::time::sleep(STOP_POLL).await;
            }
        })
    }

    /// Append one entry to the audit log, durably.
    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every audit entry, oldest first.
    fn audit_log(&self) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>>;

    /// Keep an artefact of `run`, durably.
    fn put<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// An artefact of `run`, if it has one.
    fn get<'a>(
        &'a self,
        run: &'a str,
        what: Artefact,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// The run that applied plan `id`, if one did.
    fn applied_plan<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>>;

    /// Record that `rec.run` applies plan `rec.plan`, unless a run did already:
    /// `Ok(None)` recorded; `Ok(Some(earlier))` the plan was applied before (nothing
    /// written). Atomic: of two claims at once, exactly one is recorded.
    fn claim_plan<'a>(
        &'a self,
        rec: &'a AppliedPlan,
    ) -> BoxFuture<'a, Result<Option<AppliedPlan>, StoreError>>;

    /// Take back the claim of a run that never began (its journal could not be made).
    fn unclaim_plan<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    // ---- Holds: freezes and promotions (`freeze`, `unfreeze`, `promote`). Kept in the
    // ---- store so that they are team-wide wherever the store is shared. ----

    /// Record a freeze, replacing the one of the same scope (its rollout, or `--all`).
    fn freeze<'a>(&'a self, f: &'a Freeze) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Lift the freeze of `rollout`, or (`None`) every freeze: the ones lifted.
    fn unfreeze<'a>(
        &'a self,
        rollout: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Freeze>, StoreError>>;

    /// Every freeze recorded and not lifted (run-out ones too: [`Freeze::covers`] says
    /// which hold now).
    fn freezes(&self) -> BoxFuture<'_, Result<Vec<Freeze>, StoreError>>;

    /// Let `run` go on past the gate it waits at (the run journals it when it sees it).
    fn promote<'a>(
        &'a self,
        run: &'a str,
        p: &'a Promotion,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The latest promote of `run`, if there is one.
    fn promotion<'a>(
        &'a self,
        run: &'a str,
    ) -> BoxFuture<'a, Result<Option<Promotion>, StoreError>>;
}

/// What every command does with a store, built on the trait's calls.
impl dyn Store + '_ {
    /// The run an id or a unique prefix of one names.
    pub async fn resolve(&self, prefix: &str) -> Result<String, StoreError> {
        let all = self.runs().await?;
        if all.iter().any(|r| r == prefix) {
            return Ok(prefix.to_string());
        }
        let mut matches: Vec<String> = all
            .into_iter()
            .filter(|r| !prefix.is_empty() && r.starts_with(prefix))
            .collect();
        match matches.len() {
            0 => Err(StoreError::NoSuchRun(prefix.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(StoreError::Ambiguous {
                prefix: prefix.to_string(),
                matches,
            }),
        }
    }

    /// Read one run's journal and replay it; damage is an error.
    pub async fn load(&self, run: &str) -> Result<RunState, StoreError> {
        match self.inspect(run).await {
            (state, None) => Ok(state),
            (_, Some(e)) => Err(e),
        }
    }

    /// Read one run's journal as far as it reads and replay that: the state, and what
    /// stopped the reading (the damage) if anything did. For listing a damaged run.
    pub async fn inspect(&self, run: &str) -> (RunState, Option<StoreError>) {
        match self.read(run).await {
            Ok(j) => (replay(&j.records), j.damage),
            Err(e) => (RunState::new(), Some(e)),
        }
    }

    /// Take the lock, waiting (at most `within`) while another controller holds it;
    /// `waiting` is called about every ten seconds with the holder and the time waited.
    pub async fn lock_waiting(
        &self,
        rollout: &str,
        driver: &Holder,
        within: Duration,
        mut waiting: impl FnMut(&Holder, Duration),
    ) -> Result<Lease, StoreError> {
        let start = tokio::time::Instant::now();
        let mut told = Duration::ZERO;
        loop {
            match self.lock(rollout, driver).await {
                Err(StoreError::Locked { holder, .. }) if start.elapsed() < within => {
                    let waited = start.elapsed();
                    if waited >= told {
                        waiting(&holder, waited);
                        told = waited + Duration::from_secs(10);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }
}

/// Where a command keeps its runs, picked at run time from its flags.
#[derive(Debug, Clone)]
pub enum Location {
    /// A state directory (`--state-dir`, `WAVECTL_STATE_DIR`, or the default).
    Dir(PathBuf),
}

/// The store at `at`. Nothing is read or created yet: [`Store::check`] and
/// [`Store::prepare`] say whether it can be used.
pub async fn open(at: Location) -> Result<Arc<dyn Store>, StoreError> {
    match at {
        Location::Dir(root) => Ok(Arc::new(FileStore::new(root))),
    }
}

/// The local user running this command (`SUDO_USER` when run through sudo).
pub fn local_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid(2) cannot fail and touches no memory.
            format!("uid {}", unsafe { libc::getuid() })
        })
}

/// This machine's host name (`?` if it has none that reads).
pub fn local_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`, which lives
    // across the call.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "?".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if !h.is_empty() => h.to_string(),
        _ => "?".to_string(),
    }
}
