//! `promote`, `freeze`, `unfreeze`: what an operator says to runs through the store —
//! let a run waiting at a gate go on; refuse applies of a rollout (a running one waits at
//! its next wave boundary) until the freeze is lifted or runs out. Each is audited. The
//! running apply sees them in the store (see `exec::engine`).

use std::time::Duration;

use crate::cli::{FreezeArgs, Global};
use crate::exec::wall_ms;
use crate::exit;
use crate::rollout::step::utc;
use crate::rollout::{freeze_of, Freeze, Gates, Promotion};
use crate::store::{local_host, local_user, Access, AuditEntry, Store};

use crate::report::Event;

use super::session::{began, reporter, store, CmdError, CmdResult, Failure};

/// `user@host`: who says so.
fn who() -> String {
    format!("{}@{}", local_user(), local_host())
}

async fn audit(
    store: &dyn Store,
    action: &str,
    outcome: &str,
    rollout: &str,
    run: Option<&str>,
    detail: String,
) {
    let entry = AuditEntry {
        at: utc(wall_ms() / 1000),
        user: local_user(),
        action: action.into(),
        outcome: outcome.into(),
        rollout: rollout.into(),
        run: run.map(String::from),
        detail,
        command: crate::store::command_line(),
        ..AuditEntry::default()
    };
    if let Err(e) = store.audit(&entry).await {
        eprintln!("warning: the audit log: {e}");
    }
}

/// `plan`'s line on the gates.
pub fn gates_line(g: &Gates, waves: usize) -> String {
    let (real, beyond): (Vec<usize>, Vec<usize>) = g.after.iter().partition(|w| **w <= waves);
    let list = real
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = if real.is_empty() {
        "gates: none of this plan's waves".to_string()
    } else {
        format!(
            "gates: after the bake of wave {list} the run waits for `wavectl promote RUN` (at most {}, then it rolls back; its hosts are still probed)",
            crate::units::duration(g.timeout)
        )
    };
    if !beyond.is_empty() {
        out.push_str(&format!(
            "; gates.after names wave {} but the plan has {}",
            beyond
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            crate::report::count(waves, "wave")
        ));
    }
    out
}

/// `wavectl promote RUN`.
pub async fn promote(g: &Global, run: &str) -> CmdResult {
    let store = store(g, Access::Write).await?;
    let id = store.resolve(run).await?;
    let st = store.load(&id).await?;
    let plan = began(&id, &st)?;
    let Some((wave, _, until)) = st.gate() else {
        return Err(CmdError::State(
            Failure::new(format!(
                "run {id} is not waiting at a gate (it is {})",
                st.status_name()
            ))
            .help(format!("`wavectl status {id}` shows where it stands; a run waits at a gate after the bake of a wave its spec lists in [gates] after")),
        ));
    };
    let p = Promotion {
        wave,
        by: format!("promote by {}", who()),
    };
    store.promote(&id, &p).await?;
    audit(
        &*store,
        "promote",
        "sent",
        &plan.name,
        Some(&id),
        format!("past the gate after wave {wave}"),
    )
    .await;
    let driver = store
        .holder(&plan.name)
        .await
        .ok()
        .flatten()
        .filter(|h| h.run == id);
    let next = if wave >= plan.waves.len() {
        "the confirmation".to_string()
    } else {
        format!("wave {}", wave + 1)
    };
    reporter(g).emit(Event::PromoteSent {
        run: id,
        wave,
        by: p.by,
        next,
        driver: driver.map(|h| h.who()),
        deadline: utc(until / 1000),
    });
    Ok(exit::OK)
}

/// `--until`: a duration from now ("2h") or a time (RFC 3339, UTC if no offset).
fn until_of(text: &str, now: u64) -> Result<u64, CmdError> {
    let bad = |why: String| {
        CmdError::Input(
            crate::diag::InputError::new(format!("bad --until {text:?}: {why}")).help(
                "write a duration like \"2h\" or \"90m\", or a time like \"2026-12-08T06:00:00Z\"",
            ),
        )
    };
    if let Ok(d) = humantime::parse_duration(text.trim()) {
        if d < Duration::from_secs(1) {
            return Err(bad("it is shorter than a second".into()));
        }
        return Ok(now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
    }
    let t = humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| bad(format!("neither a duration nor a time ({e})")))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if ms <= now {
        return Err(bad("that time has passed".into()));
    }
    Ok(ms)
}

/// `wavectl freeze NAME|--all --reason TEXT [--until DUR|TIME]`.
pub async fn freeze(g: &Global, args: &FreezeArgs) -> CmdResult {
    if let Some(name) = &args.name {
        crate::spec::check_name_arg(name)?;
    }
    if args.reason.trim().is_empty() {
        return Err(CmdError::Input(
            crate::diag::InputError::new("--reason is empty")
                .help("say why, for whoever is refused: --reason \"incident 42: db failover\""),
        ));
    }
    let now = wall_ms();
    let until = args
        .until
        .as_deref()
        .map(|u| until_of(u, now))
        .transpose()?;
    let store = store(g, Access::Write).await?;
    store.prepare().await?;
    let f = Freeze {
        rollout: args.name.clone(),
        by: who(),
        reason: args.reason.trim().to_string(),
        at: now,
        until,
    };
    store.freeze(&f).await?;
    let scope = f.rollout.clone().unwrap_or_else(|| "*".into());
    audit(&*store, "freeze", "frozen", &scope, None, f.describe()).await;
    reporter(g).emit(Event::FreezeSet {
        scope: f.scope(),
        rollout: f.rollout,
        by: f.by,
        reason: f.reason,
        until: f.until.map(|u| utc(u.div_ceil(1000))),
    });
    Ok(exit::OK)
}

/// `wavectl unfreeze NAME|--all` (`None`: every freeze).
pub async fn unfreeze(g: &Global, name: Option<&str>) -> CmdResult {
    if let Some(name) = name {
        crate::spec::check_name_arg(name)?;
    }
    let store = store(g, Access::Write).await?;
    let lifted = store.unfreeze(name).await?;
    if lifted.is_empty() {
        let now = wall_ms();
        let still = match name {
            Some(n) => store
                .freezes()
                .await
                .ok()
                .and_then(|all| freeze_of(&all, n, now).cloned()),
            None => None,
        };
        let failure = match (name, still) {
            (Some(n), Some(f)) => Failure::new(format!(
                "rollout {n} has no freeze of its own; it is held by the freeze of {}: {}",
                f.scope(),
                f.describe()
            ))
            .help("`wavectl unfreeze --all` lifts that one"),
            (Some(n), None) => Failure::new(format!("rollout {n} is not frozen")),
            (None, _) => Failure::new("nothing is frozen"),
        };
        return Err(CmdError::State(failure));
    }
    let reporter = reporter(g);
    for f in &lifted {
        let scope = f.rollout.clone().unwrap_or_else(|| "*".into());
        audit(&*store, "unfreeze", "lifted", &scope, None, f.describe()).await;
        reporter.emit(Event::Unfrozen {
            rollout: f.rollout.clone(),
            by: who(),
            was: f.describe(),
            scope: f.scope(),
        });
    }
    Ok(exit::OK)
}

/// The refusal of an apply of a frozen rollout (exit 5), if a freeze holds it now.
pub async fn refuse_if_frozen(store: &dyn Store, rollout: &str) -> Result<(), CmdError> {
    let all = store.freezes().await?;
    let Some(f) = freeze_of(&all, rollout, wall_ms()) else {
        return Ok(());
    };
    audit(store, "apply", "refused", rollout, None, f.describe()).await;
    Err(CmdError::Refused(
        Failure::new(format!("rollout {rollout} is {}", f.describe())).help(format!(
            "wait until it is lifted; `wavectl status` lists the freezes, and `wavectl unfreeze {}` lifts this one once the reason is over (purge, rollback and reconcile are not blocked)",
            f.rollout.as_deref().unwrap_or("--all")
        )),
    ))
}

/// The freezes that hold now, for `status`.
pub async fn active(store: &dyn Store) -> Vec<Freeze> {
    let now = wall_ms();
    store
        .freezes()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.until.is_none_or(|u| now < u))
        .collect()
}
