//! `status`: the runs, or each host of one run, from the journals alone (no network). A
//! run that has not ended and whose lock nobody holds is shown as interrupted; a run
//! whose journal is damaged is listed with its damage (what read of it, and why the
//! rest does not).

use serde::Serialize;

use crate::cli::Global;
use crate::exit;
use crate::rollout::{step::utc, HostState, RunState};
use crate::store::{Access, Holder, Store};

use super::session::{store, CmdResult};

#[derive(Serialize)]
struct RunLine {
    run: String,
    rollout: String,
    kind: String,
    /// Where the run stands (`running`, `done`, `rolled-back`, `purged`, ...), or
    /// `damaged`: its journal does not read to its end.
    status: String,
    /// The same, for people: `interrupted (running)` when its controller is gone.
    state: String,
    /// The run has not ended and no live process works on it.
    interrupted: bool,
    /// The controller driving the run now, if one does: its host, user and pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    driver: Option<Driver>,
    started: String,
    started_ms: u64,
    ended: Option<String>,
    /// How long it ran (so far, if it has not ended).
    duration: String,
    user: String,
    hosts: usize,
    done: usize,
    /// Hosts that may still hold something of the run that is not finished.
    pending: usize,
    /// Why the journal does not read to its end (the other fields are from what did).
    #[serde(skip_serializing_if = "Option::is_none")]
    damage: Option<String>,
    /// What a run waiting at a gate or a freeze waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<String>,
}

/// What a run waits for, if it waits at a gate or a freeze.
fn waiting(id: &str, s: &RunState) -> Option<String> {
    if let Some((wave, since, until)) = s.gate() {
        return Some(format!(
            "waiting for `wavectl promote {id}` after wave {wave}'s bake (since {}; it rolls back at {})",
            utc(since / 1000),
            utc(until / 1000)
        ));
    }
    if let crate::rollout::Status::Running {
        stage: crate::rollout::Stage::Frozen { wave, .. },
    } = s.status
    {
        return Some(match s.freeze() {
            Some(f) => format!(
                "waiting after wave {wave}: {} is {} (`wavectl unfreeze {}`)",
                f.scope(),
                f.describe(),
                f.rollout.as_deref().unwrap_or("--all")
            ),
            None => format!("waiting after wave {wave}: the freeze was lifted"),
        });
    }
    None
}

/// Who drives a run.
/// `status --json`'s line for a freeze that holds (a listing, like [`RunLine`], not an
/// event): `frozen` is the rollout, or `*` for every rollout.
#[derive(Serialize)]
struct FreezeLine<'a> {
    frozen: &'a str,
    by: &'a str,
    reason: &'a str,
    since: String,
    until: Option<String>,
}

#[derive(Serialize)]
struct Driver {
    host: String,
    user: String,
    pid: u32,
}

/// The controller driving run `id` of rollout `name` now, if one does.
async fn driver(store: &dyn Store, name: &str, id: &str) -> Option<Holder> {
    store
        .holder(name)
        .await
        .ok()
        .flatten()
        .filter(|h| h.run == id)
}

async fn line(store: &dyn Store, id: &str, s: &RunState, damage: Option<String>) -> RunLine {
    let name = s.plan.as_ref().map_or("?".to_string(), |p| p.name.clone());
    let holder = driver(store, &name, id).await;
    let live = holder.is_some();
    let interrupted = !s.is_ended() && !live && damage.is_none();
    let status = if damage.is_some() {
        "damaged"
    } else {
        s.status_name()
    };
    RunLine {
        run: id.to_string(),
        rollout: name,
        kind: s
            .kind()
            .map_or("?".into(), |k| format!("{k:?}").to_lowercase()),
        state: if interrupted {
            format!("interrupted ({status})")
        } else {
            status.to_string()
        },
        status: status.to_string(),
        interrupted,
        driver: holder.map(|h| Driver {
            host: h.host,
            user: h.user,
            pid: h.pid,
        }),
        // A run whose journal is damaged before its first record has no start.
        started: if s.started == 0 {
            "?".to_string()
        } else {
            utc(s.started / 1000)
        },
        started_ms: s.started,
        ended: s.ended.map(|e| utc(e / 1000)),
        duration: crate::units::duration_ms(
            s.ended.unwrap_or(s.now).saturating_sub(s.started) / 1000 * 1000,
        ),
        user: s.plan.as_ref().map_or(String::new(), |p| p.user.clone()),
        hosts: s.hosts.len(),
        done: s
            .hosts
            .iter()
            .filter(|h| matches!(h.state, HostState::Confirmed | HostState::Clean))
            .count(),
        pending: s.hosts.iter().filter(|h| h.state.unfinished()).count(),
        waiting: if s.is_ended() { None } else { waiting(id, s) },
        damage,
    }
}

/// `status`, once or (`--watch`) every 2 seconds.
pub async fn watch(g: &Global, run: Option<&str>, watch: bool) -> CmdResult {
    let store = store(g, Access::Read).await?;
    if !watch {
        return status(g, &*store, run).await;
    }
    loop {
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            crate::out!("\x1b[2J\x1b[H");
        }
        status(g, &*store, run).await?;
        if let Some(prefix) = run {
            let id = store.resolve(prefix).await?;
            let s = store.load(&id).await?;
            let name = s.plan.as_ref().map_or(String::new(), |p| p.name.clone());
            let live = driver(&*store, &name, &id).await.is_some();
            if s.is_ended() && !live {
                return Ok(exit::OK);
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// The freezes that hold now: one JSON line each, or a table.
async fn show_freezes(g: &Global, store: &dyn Store) {
    let all = super::hold::active(store).await;
    if all.is_empty() {
        return;
    }
    if g.json {
        for f in &all {
            let line = FreezeLine {
                frozen: f.rollout.as_deref().unwrap_or("*"),
                by: &f.by,
                reason: &f.reason,
                since: utc(f.at / 1000),
                until: f.until.map(|u| utc(u.div_ceil(1000))),
            };
            crate::outln!("{}", serde_json::to_string(&line).unwrap_or_default());
        }
        return;
    }
    crate::outln!();
    crate::outln!(
        "{:<20} {:<24} {:<21} {:<21} REASON",
        "FROZEN",
        "BY",
        "SINCE",
        "UNTIL"
    );
    for f in &all {
        crate::outln!(
            "{:<20} {:<24} {:<21} {:<21} {}",
            f.rollout.as_deref().unwrap_or("* (every rollout)"),
            f.by,
            utc(f.at / 1000),
            f.until
                .map_or("unfreeze".to_string(), |u| utc(u.div_ceil(1000))),
            f.reason
        );
    }
}

async fn status(g: &Global, store: &dyn Store, run: Option<&str>) -> CmdResult {
    let Some(prefix) = run else {
        let mut lines = Vec::new();
        for id in store.runs().await? {
            let (s, damage) = store.inspect(&id).await;
            lines.push(line(store, &id, &s, damage.map(|e| e.to_string())).await);
        }
        if g.json {
            for l in &lines {
                crate::outln!("{}", serde_json::to_string(l).unwrap_or_default());
            }
        } else if lines.is_empty() {
            crate::outln!("no runs in {}", store.describe());
        } else {
            crate::outln!(
                "{:<48} {:<20} {:<24} {:<21} {:<10} {:<10} {:>5} {:>5} {:>7}",
                "RUN",
                "ROLLOUT",
                "STATE",
                "STARTED",
                "TOOK",
                "BY",
                "HOSTS",
                "DONE",
                "PENDING"
            );
            for l in &lines {
                crate::outln!(
                    "{:<48} {:<20} {:<24} {:<21} {:<10} {:<10} {:>5} {:>5} {:>7}",
                    l.run,
                    l.rollout,
                    l.state,
                    l.started,
                    l.duration,
                    l.user,
                    l.hosts,
                    l.done,
                    l.pending
                );
            }
            for l in &lines {
                if let Some(d) = &l.driver {
                    crate::outln!(
                        "run {} is driven by {}@{} (pid {})",
                        l.run,
                        d.user,
                        d.host,
                        d.pid
                    );
                }
            }
            for l in &lines {
                if let Some(d) = &l.damage {
                    crate::outln!("run {} is damaged: {d}", l.run);
                }
                if let Some(w) = &l.waiting {
                    crate::outln!("run {}: {w}", l.run);
                }
            }
        }
        show_freezes(g, store).await;
        return Ok(exit::OK);
    };
    let id = store.resolve(prefix).await?;
    let s = store.load(&id).await?;
    let l = line(store, &id, &s, None).await;
    if g.json {
        #[derive(Serialize)]
        struct Full<'a> {
            #[serde(flatten)]
            line: &'a RunLine,
            detail: &'a crate::rollout::Status,
            hosts: &'a [crate::rollout::HostRun],
            unhealthy: &'a [(String, crate::rollout::verdict::Verdict)],
            /// Targets left out by the preflight (`--skip-unreachable`).
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            skipped: &'a [crate::rollout::Offline],
        }
        let full = Full {
            line: &l,
            detail: &s.status,
            hosts: &s.hosts,
            unhealthy: &s.unhealthy,
            skipped: s.plan.as_ref().map_or(&[], |p| p.skipped()),
        };
        crate::outln!("{}", serde_json::to_string(&full).unwrap_or_default());
        return Ok(exit::OK);
    }
    crate::outln!(
        "run {}: {} of {}, {}, started {} by {}{}",
        l.run,
        l.kind,
        l.rollout,
        l.state,
        l.started,
        l.user,
        l.ended
            .as_ref()
            .map_or(String::new(), |e| format!(", ended {e}"))
    );
    if let Some(w) = &l.waiting {
        crate::outln!("  {w}");
    }
    if l.interrupted {
        crate::outln!("  its controller is gone: `wavectl resume {id}` continues it, `wavectl rollback {id}` or `wavectl reconcile` returns its hosts to what they held");
    }
    if let Some(crate::rollout::End::Paused { why, .. }) = s.end() {
        crate::outln!(
            "  paused: {}",
            crate::rollout::summary::why_sentence(&s, why)
        );
    }
    crate::outln!(
        "{:<24} {:>4}  {:<11} {:<12} EVIDENCE (or what the last action did)",
        "HOST",
        "WAVE",
        "STATE",
        "VERDICT"
    );
    for h in &s.hosts {
        let state = serde_json::to_value(h.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let state = match h.op.or(h.lost) {
            Some(op) if !s.is_ended() => format!("{state} ({}?)", op.name()),
            _ => state,
        };
        let (verdict, evidence) = match &h.verdict {
            Some(v) if v.health.is_bad() => (
                v.health.to_string(),
                v.evidence
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Some(v) => (v.health.to_string(), String::new()),
            None => ("-".into(), String::new()),
        };
        let evidence = if evidence.is_empty() {
            h.detail.clone()
        } else {
            evidence
        };
        crate::outln!(
            "{:<24} {:>4}  {:<11} {:<12} {}",
            h.host,
            h.wave,
            state,
            verdict,
            evidence
        );
    }
    for o in s.plan.as_ref().map_or(&[][..], |p| p.skipped()) {
        crate::outln!(
            "{:<24} {:>4}  {:<11} {:<12} offline before the run: {}",
            o.host,
            "-",
            "skipped",
            "-",
            o.reason
        );
    }
    Ok(exit::OK)
}
