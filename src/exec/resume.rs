//! Picking up a run whose controller died: ask each host with an action in flight
//! what is true (its manifest), journal the answer, then carry on or finish the removal.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;

use super::cleanup::{clean_hosts, Cleanup};
use super::remove::{Removal, REMOVE_FANOUT};
use super::{now, Ctx, Progress};
use crate::inventory::Host;
use crate::journal::{Action, HostState, JournalError, Record, RunInfo, RunState};
use crate::remote;
use crate::report::{Event, Phase};

/// For every host whose last action has an intent and no outcome, read its manifest
/// and journal what it says. Hosts that do not answer stay unknown.
pub async fn settle(
    ctx: &Ctx<'_>,
    info: &RunInfo,
    rs: &RunState,
    login_timeout: Duration,
) -> Result<(), JournalError> {
    let unsure: Vec<(&Host, Action)> = rs
        .hosts
        .iter()
        .filter_map(|h| Some((info.hosts.iter().find(|x| x.name == h.host)?, h.in_flight?)))
        .collect();
    let cmd = remote::read_state(&info.rollout, &info.run); // TODO(engine)
    let answers = join_all(unsure.iter().map(|(host, _)| async {
        let out = ctx
            .run_on(host, login_timeout, &cmd)
            .await
            .map_err(|e| e.to_string())?;
        remote::parse_state(&out.stdout).map(|f| f.manifest) // TODO(engine)
    }))
    .await;
    for ((host, action), answer) in unsure.iter().zip(answers) {
        let name = &host.name;
        let manifest = match answer {
            Ok(m) => m,
            Err(e) => {
                ctx.emit(Event::Note {
                    message: format!("{name}: cannot ask its manifest ({e}); it stays unknown"),
                });
                continue;
            }
        };
        let ours = manifest
            .as_ref()
            .filter(|m| m.run_id == info.run && m.sha256 == info.sha256);
        let (ok, detail) = match (action, ours, &manifest) {
            (Action::Install, Some(m), _) => (
                true,
                format!("resume: the host's manifest says installed ({})", m.state),
            ),
            (Action::Install, None, Some(_)) => (
                false,
                "resume: the host's manifest is another run's".to_string(),
            ),
            (Action::Install, None, None) => (
                false,
                "resume: no manifest on the host: the install did not finish".to_string(),
            ),
            (Action::Run, _, _) => (
                false,
                "resume: unknown whether the first run started".to_string(),
            ),
            (Action::Confirm, Some(m), _) => (
                m.state == "confirmed",
                format!("resume: the host's manifest says {}", m.state),
            ),
            (Action::Confirm, None, _) => (
                false,
                "resume: no manifest of this run on the host".to_string(),
            ),
            (Action::Remove, _, None) => (
                true,
                "resume: nothing of the script's state is left on the host".to_string(),
            ),
            (Action::Remove, _, Some(m)) => (
                false,
                format!(
                    "resume: the removal did not finish (manifest says {})",
                    m.state
                ),
            ),
        };
        ctx.outcome(name, *action, ok, detail)?;
    }
    Ok(())
}

/// Where an interrupted apply picks up, from the journal's state.
pub fn progress(info: &RunInfo, rs: &RunState) -> Progress {
    let host = |name: &str| info.hosts.iter().find(|h| h.name == name).cloned();
    let first_wave = (1..=info.waves.len())
        .find(|w| !rs.baked.contains(w))
        .unwrap_or(info.waves.len() + 1);
    let mut p = Progress {
        first_wave,
        ..Default::default()
    };
    let mut installed = HashMap::new();
    for h in &rs.hosts {
        let Some(full) = host(&h.host) else { continue };
        if h.state.may_hold_files() {
            p.touched.push(full.clone());
        }
        let is_installed = matches!(h.state, HostState::Installed | HostState::Confirmed);
        if h.wave < first_wave && is_installed {
            p.deployed.push(full);
        } else if h.wave == first_wave && is_installed {
            installed.insert(h.host.clone(), h.ran);
        }
    }
    p.installed = installed;
    p
}

/// Remove the script from every host of a run that may hold it, journaling the run's
/// state before and after.
pub async fn roll_back_run(
    ctx: &Ctx<'_>,
    info: &RunInfo,
    rs: &RunState,
    only_pending: bool,
    until_done: bool,
) -> Result<Cleanup, JournalError> {
    let names: Vec<&str> = if only_pending {
        rs.pending().iter().map(|h| h.host.as_str()).collect()
    } else {
        rs.to_clean().iter().map(|h| h.host.as_str()).collect()
    };
    let hosts: Vec<Host> = info
        .hosts
        .iter()
        .filter(|h| names.contains(&h.name.as_str()))
        .cloned()
        .collect();
    ctx.record(Record::State {
        state: "rolling-back".into(),
        at: now(),
    })?;
    let done = clean_hosts(
        ctx,
        Phase::Rollback,
        Removal::of_run(info),
        hosts,
        Duration::from_secs(10),
        REMOVE_FANOUT,
        until_done,
    )
    .await?;
    let state = if done.pending.is_empty() {
        "rolled-back"
    } else {
        "incomplete"
    };
    ctx.record(Record::State {
        state: state.into(),
        at: now(),
    })?;
    Ok(done)
}
