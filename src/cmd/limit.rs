//! `--limit`'s `@failed:RUN`, `@pending:RUN` and `@untouched:RUN`: the hosts of an
//! earlier run in that state, read from its journal through the one replay
//! (`rollout::replay`, as `status` reads it). Reads journals; changes nothing.

use crate::diag::InputError;
use crate::inventory::shown;
use crate::rollout::{HostState, RunState};
use crate::spec::{self, RunHosts, RunSet, RunSets};
use crate::store::{Access, Store};

/// The hosts of every `@STATE:RUN` term of `limit`, read from the runs' journals in
/// the store. An unknown run, a prefix naming several, or a damaged journal is an error
/// (exit 2), as for every command that names a run.
pub async fn run_sets(store: &dyn Store, limit: Option<&str>) -> Result<RunSets, InputError> {
    let mut sets = RunSets::new();
    let terms = spec::limit_runs(limit)?;
    if !terms.is_empty() {
        store
            .check(Access::Read)
            .await
            .map_err(|e| InputError::new(e.to_string()))?;
    }
    for (which, prefix) in terms {
        let term = format!("@{}:{prefix}", which.name());
        let bad = |e: &dyn std::fmt::Display| {
            InputError::new(format!("--limit {}: {e}", shown(&term))).help(
                "RUN is a run id or a unique prefix of one, of the runs in this state directory \
                 (`wavectl status` lists them); @failed, @pending and @untouched name their hosts \
                 in that state",
            )
        };
        let run = store.resolve(&prefix).await.map_err(|e| bad(&e))?;
        let state = store.load(&run).await.map_err(|e| bad(&e))?;
        if state.plan.is_none() {
            return Err(bad(&format!("the journal of run {run} has no beginning")));
        }
        sets.insert(
            (which, prefix),
            RunSet {
                hosts: hosts_in(&state, which),
                run,
            },
        );
    }
    Ok(sets)
}

/// The hosts of a run in a `@STATE` (docs/COMMANDS.md "Retry what failed"), in the run's order:
/// - `failed`: judged unhealthy by the run (any bad verdict: degraded, hung,
///   unreachable, a failed install, an expired lease — the summary's "unhealthy"), or a
///   removal of the run did not finish there (`pending`);
/// - `pending`: may still hold something of the run that is not finished — a removal
///   owed (`unknown`, `partial`, `pending`) or an install in probation, not confirmed
///   (`installed`);
/// - `untouched`: the run never changed it (`untouched`: a later wave of a run that
///   stopped, a host that refused it before any change).
pub fn hosts_in(state: &RunState, which: RunHosts) -> Vec<String> {
    state
        .hosts
        .iter()
        .filter(|h| match which {
            RunHosts::Failed => state.is_unhealthy(&h.host) || h.state == HostState::Pending,
            RunHosts::Pending => h.state.unfinished() || h.state == HostState::Installed,
            RunHosts::Untouched => h.state == HostState::Untouched,
        })
        .map(|h| h.host.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::verdict::{Evidence, Health, Verdict};
    use crate::rollout::{HostRun, Record};
    use crate::store::FileStore;

    fn host(name: &str, state: HostState) -> HostRun {
        HostRun::new(name.into(), 1, state)
    }

    #[test]
    fn each_state_names_its_hosts_in_the_runs_order() {
        let mut s = RunState::new();
        s.hosts = vec![
            host("confirmed", HostState::Confirmed),
            // Judged unhealthy, then rolled back: failed, and clean.
            host("bad-clean", HostState::Clean),
            host("untouched", HostState::Untouched),
            host("pending", HostState::Pending),
            host("installed", HostState::Installed),
            host("unknown", HostState::Unknown),
            host("partial", HostState::Partial),
            host("clean", HostState::Clean),
            host("reverted", HostState::Reverted),
        ];
        let bad = Verdict::bad(Health::Hung, Evidence::new("reachable"));
        s.unhealthy = vec![("partial".into(), bad.clone()), ("bad-clean".into(), bad)];
        assert_eq!(
            hosts_in(&s, RunHosts::Failed),
            ["bad-clean", "pending", "partial"]
        );
        assert_eq!(
            hosts_in(&s, RunHosts::Pending),
            ["pending", "installed", "unknown", "partial"]
        );
        assert_eq!(hosts_in(&s, RunHosts::Untouched), ["untouched"]);
    }

    fn journal(root: &std::path::Path, run: &str, text: &str) {
        let dir = root.join("runs").join(run);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("journal.jsonl"), text).unwrap();
    }

    async fn err(store: &dyn Store, root: &std::path::Path, limit: &str) -> String {
        run_sets(store, Some(limit))
            .await
            .unwrap_err()
            .message
            .replace(&root.display().to_string(), "S")
    }

    #[tokio::test]
    async fn unknown_ambiguous_and_damaged_runs_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let store = FileStore::new(root.to_path_buf());
        let store: &dyn Store = &store;
        let tick = serde_json::to_string(&Record::new(1, crate::rollout::Event::Tick)).unwrap();
        journal(root, "20260101T000000Z-a-0001", &format!("{tick}\n"));
        journal(root, "20260101T000000Z-a-0002", &format!("{tick}\n"));
        journal(
            root,
            "20260202T000000Z-b-0001",
            &format!("{tick}\n{{\"v\":1,\"at\":2,\"type\":\"nonsense\"}}\n{tick}\n"),
        );
        assert_eq!(
            err(store, root, "web:@failed:2027").await,
            "--limit `@failed:2027`: no run `2027` in the state directory; `wavectl status` lists the runs"
        );
        assert_eq!(
            err(store, root, "@pending:20260101").await,
            "--limit `@pending:20260101`: `20260101` names more than one run \
             (20260101T000000Z-a-0001, 20260101T000000Z-a-0002); give more of the id"
        );
        assert!(err(store, root, "@untouched:20260202").await.starts_with(
            "--limit `@untouched:20260202`: S/runs/20260202T000000Z-b-0001/journal.jsonl:2: \
             unreadable journal record"
        ));
        assert_eq!(
            err(store, root, "@failed:20260101T000000Z-a-0001").await,
            "--limit `@failed:20260101T000000Z-a-0001`: the journal of run \
             20260101T000000Z-a-0001 has no beginning"
        );
        // No run term, no journal read: a plain limit needs no state directory.
        let none = FileStore::new(root.join("absent"));
        let none: &dyn Store = &none;
        assert!(run_sets(none, Some("web:!db")).await.unwrap().is_empty());
        assert!(run_sets(none, None).await.unwrap().is_empty());
    }
}
