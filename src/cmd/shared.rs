//! The commands about the store itself: `store init` (the shared store's schema),
//! `store import` (a state directory's runs and audit log into the store named by
//! `--store`), and `audit` (the audit log, from whichever store the flags name).

use std::time::{Duration, SystemTime};

use crate::cli::Global;
use crate::diag::InputError;
use crate::exit;
use crate::store::{self, Access, Artefact, FileStore, Holder, Location, PgStore, Store};

use super::session::{self, CmdError, CmdResult};

/// `wavectl store init`: create or upgrade the shared store's schema (a state directory
/// is made ready instead).
pub async fn init(g: &Global) -> CmdResult {
    let Some(url) = g.store.as_deref() else {
        let s = session::open_store(g).await?;
        s.prepare().await?;
        crate::outln!("state directory {} ready (a state directory needs no schema; --store names a shared one)", s.describe());
        return Ok(exit::OK);
    };
    let pg = PgStore::new(url)?;
    let (before, now) = pg.init().await?;
    if before == now {
        crate::outln!("store {}: schema version {now}, up to date", pg.describe());
    } else {
        crate::outln!("store {}: schema version {before} → {now}", pg.describe());
    }
    Ok(exit::OK)
}

/// `wavectl store import`: every run of the state directory (`--state-dir`, or its
/// default) that the store does not hold yet, with its artefacts, and every audit entry
/// (the store keeps one of each). Running it again copies nothing twice.
pub async fn import(g: &Global) -> CmdResult {
    if g.store.is_none() {
        return Err(CmdError::Input(
            InputError::new("store import copies a state directory into the shared store")
                .help("name it with --store URL (or WAVECTL_STORE)"),
        ));
    }
    let root = g.state_dir.clone().unwrap_or_else(FileStore::default_root);
    let from = store::open(Location::Dir(root)).await?;
    from.check(Access::Read).await?;
    let to = session::store(g, Access::Write).await?;
    let have: std::collections::BTreeSet<String> = to.runs().await?.into_iter().collect();
    let (mut copied, mut skipped) = (0, 0);
    for run in from.runs().await? {
        if have.contains(&run) {
            skipped += 1;
            continue;
        }
        let journal = from.read(&run).await?;
        if let Some(e) = &journal.damage {
            eprintln!("warning: run {run} not imported: {e}");
            continue;
        }
        let state = crate::rollout::replay(&journal.records);
        let Some(plan) = &state.plan else {
            eprintln!("warning: run {run} not imported: its journal has no beginning");
            continue;
        };
        let lease = match to.lock(&plan.name, &Holder::this_process(&run)).await {
            Ok(l) => l,
            Err(e @ store::StoreError::Locked { .. }) => {
                eprintln!("warning: run {run} not imported now: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut w = to.create(lease, &run).await?;
        for chunk in journal.records.chunks(500) {
            w.append(chunk).await?;
        }
        for what in [Artefact::Script, Artefact::Notify] {
            if let Some(bytes) = from.get(&run, what).await? {
                to.put(&run, what, &bytes).await?;
            }
        }
        drop(w);
        copied += 1;
    }
    let entries = from.audit_log().await?;
    for e in &entries {
        to.audit(e).await?;
    }
    crate::outln!(
        "imported {copied} run(s) into {} ({skipped} already there); {} audit entries offered (each kept once)",
        to.describe(),
        entries.len()
    );
    Ok(exit::OK)
}

/// `wavectl audit [--since DUR|TIME]`: the audit log, oldest first (one JSON entry per
/// line with `--json`).
pub async fn audit(g: &Global, since: Option<&str>) -> CmdResult {
    let from = match since {
        None => None,
        Some(s) => Some(since_time(s).ok_or_else(|| {
            CmdError::Input(InputError::new(format!("--since `{s}`: neither a duration (90m, 24h, 7d) nor a UTC time (2026-12-07T18:00:00Z)")))
        })?),
    };
    let store = session::store(g, Access::Read).await?;
    for e in store.audit_log().await? {
        if from.as_ref().is_some_and(|f| e.at.as_str() < f.as_str()) {
            continue;
        }
        if g.json {
            crate::outln!("{}", serde_json::to_string(&e).unwrap_or_default());
            continue;
        }
        let mut line = format!("{} {} {} {}", e.at, e.user, e.action, e.rollout);
        if let Some(run) = &e.run {
            line.push_str(&format!(" run {run}"));
        }
        line.push_str(&format!(": {}", e.outcome));
        if let Some(c) = e.exit_code {
            line.push_str(&format!(" (exit {c})"));
        }
        if !e.detail.is_empty() {
            line.push_str(&format!(" — {}", e.detail));
        }
        crate::outln!("{line}");
    }
    Ok(exit::OK)
}

/// `--since`: a duration back from now, or a UTC time; as an RFC 3339 string (the
/// audit's times compare as strings).
fn since_time(s: &str) -> Option<String> {
    if let Ok(d) = humantime::parse_duration(s) {
        let t = SystemTime::now().checked_sub(d)?;
        return Some(humantime::format_rfc3339_seconds(t).to_string());
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(
        humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_a_duration_or_a_time() {
        assert_eq!(
            since_time("2026-12-07T18:00:00Z").as_deref(),
            Some("2026-12-07T18:00:00Z")
        );
        assert_eq!(
            since_time("2026-12-07 18:00:00").as_deref(),
            Some("2026-12-07T18:00:00Z")
        );
        let day = since_time("24h").unwrap();
        assert!(day.ends_with('Z') && day.len() == 20, "{day}");
        assert!(since_time("yesterday-ish").is_none());
    }
}
