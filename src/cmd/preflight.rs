//! `apply`'s preflight, before any change: every target's SSH banner, then a login for
//! the first wave's hosts. A target that does not answer is offline before the run: the
//! run refuses to start (exit 4, naming them) unless `--skip-unreachable`, which leaves
//! them out and plans the waves without them (their first wave's hosts are then logged
//! in to in turn). A host that refuses us (host key, credentials, sudo) stops it (exit 2).
//! A refused run's `preflight` event is its first and only line; a run's comes right
//! after its `run_started`, from what its `begin` record keeps.

use crate::cli::Global;
use crate::exec::login_deadline;
use crate::exec::preflight::{check, Answer, Check};
use crate::inventory::Host;
use crate::plan::Wave;
use crate::report::{count, Event as Shown, Reporter};
use crate::rollout::{Groups, Offline, Preflight};
use crate::spec::Loaded;
use crate::transport::Transport;

use super::session::CmdError;
use super::Failure;

/// What the preflight leaves the run: its targets and waves (without the skipped
/// hosts), and what it found, for the journal.
pub struct Passed {
    pub loaded: Loaded,
    pub waves: Vec<Wave>,
    pub found: Preflight,
    /// The transport the logins were made with, their connections kept: the run's.
    pub transport: Option<Transport>,
}

/// Check the targets; refuse (exit 4) if any is offline and `skip` is not given.
pub async fn preflight(
    g: &Global,
    loaded: &Loaded,
    waves: &[Wave],
    skip: bool,
    reporter: &Reporter,
) -> Result<Passed, CmdError> {
    let transport = Transport::new(g.ssh_config.clone()).map_err(|e| {
        CmdError::Setup(Failure::new(format!(
            "cannot create the ssh control directory under /tmp: {e}"
        )))
    })?;
    let deadline = login_deadline(loaded.rollout.health.probe_timeout);
    let cfg = g.ssh_config.as_deref();
    let checked = loaded.targets.len();
    let mut offline: Vec<Offline> = Vec::new();
    let mut refused: Vec<(String, String, String)> = Vec::new();
    let mut logins: Vec<String> = Vec::new();
    let banners = check(&transport, cfg, &loaded.targets, Check::Banner, deadline).await;
    sort(banners, &mut offline, &mut refused, None);
    let mut now = Passed {
        loaded: loaded.clone(),
        waves: waves.to_vec(),
        found: Preflight {
            checked,
            logins: Vec::new(),
            skipped: Vec::new(),
        },
        transport: None,
    };
    loop {
        if !refused.is_empty() {
            return Err(CmdError::State(Failure::new(refusal(&refused))));
        }
        if !offline.is_empty() {
            let shown = Shown::Preflight {
                checked,
                logins: logins.len(),
                offline: offline.clone(),
                skipped: skip,
            };
            if !skip {
                reporter.emit(shown);
                return Err(CmdError::Offline(offline_failure(&offline)));
            }
            now = without(loaded, &offline)?;
        }
        let first: Vec<Host> = now
            .waves
            .first()
            .map(|w| w.hosts.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|n| !logins.contains(n))
            .filter_map(|n| now.loaded.targets.iter().find(|h| &h.name == n).cloned())
            .collect();
        if first.is_empty() {
            break;
        }
        let before = offline.len();
        let answers = check(&transport, cfg, &first, Check::Login, deadline).await;
        sort(answers, &mut offline, &mut refused, Some(&mut logins));
        if offline.len() == before && refused.is_empty() {
            break;
        }
    }
    now.transport = Some(transport);
    // Said once the run has begun, from its journal (`session::Cx::drive`).
    now.found = Preflight {
        checked,
        logins,
        skipped: offline,
    };
    Ok(now)
}

/// File each answer: offline, refused, or (a login) answered.
fn sort(
    answers: Vec<(String, Answer)>,
    offline: &mut Vec<Offline>,
    refused: &mut Vec<(String, String, String)>,
    mut logins: Option<&mut Vec<String>>,
) {
    for (host, a) in answers {
        match a {
            Answer::Answered(_) => {
                if let Some(l) = logins.as_deref_mut() {
                    l.push(host);
                }
            }
            Answer::Offline(reason) => offline.push(Offline { host, reason }),
            Answer::Refused { reason, help } => refused.push((host, reason, help)),
        }
    }
}

/// The run's targets and waves without the offline hosts (a canary among them is
/// dropped from `canaries` too).
fn without(loaded: &Loaded, offline: &[Offline]) -> Result<Passed, CmdError> {
    let gone = |name: &str| offline.iter().any(|o| o.host == name);
    let mut l = loaded.clone();
    l.targets.retain(|h| !gone(&h.name));
    l.rollout.waves.canaries.retain(|c| !gone(&c.value));
    if l.targets.is_empty() {
        return Err(CmdError::Offline(Failure::new(format!(
            "every target is offline before the run; nothing was changed on any host:\n{}",
            list(offline)
        ))));
    }
    let waves = crate::plan::waves(&l.targets, &l.rollout.waves)?;
    Ok(Passed {
        loaded: l,
        waves,
        found: Preflight {
            checked: loaded.targets.len(),
            logins: Vec::new(),
            skipped: Vec::new(),
        },
        transport: None,
    })
}

fn list(offline: &[Offline]) -> String {
    offline
        .iter()
        .map(|o| format!("  {}: {}", o.host, o.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The refusal of a run with offline targets.
fn offline_failure(offline: &[Offline]) -> Failure {
    let (n, them) = if offline.len() == 1 {
        ("1 target is".to_string(), "it")
    } else {
        (format!("{} targets are", offline.len()), "them")
    };
    Failure::new(format!(
        "{n} offline before the run; the run did not start and nothing was changed on any host:\n{}",
        list(offline),
    ))
    .help(format!(
        "bring {them} back and apply again, or add `--skip-unreachable` to leave {them} out (reported as skipped)"
    ))
}

fn refusal(refused: &[(String, String, String)]) -> String {
    let mut out = format!(
        "{} refused the preflight's login; the run did not start and nothing was changed on any host:",
        count(refused.len(), "target")
    );
    for (host, reason, help) in refused {
        out.push_str(&format!(
            "\n  host {host} refused us: {reason}\n    help: {help}"
        ));
    }
    out
}

/// The redundancy groups of a run of `targets`: the `spread_by` label and every
/// inventory host that shares a group with a target without being one (a skipped target
/// too: it is still its group's member).
pub fn groups(loaded: &Loaded, targets: &[Host]) -> Option<Groups> {
    let label = loaded.rollout.waves.spread_by.clone()?;
    let touched: std::collections::BTreeSet<&String> = targets
        .iter()
        .filter_map(|h| h.labels.get(&label))
        .collect();
    let others = loaded
        .inventory
        .hosts
        .iter()
        .filter(|h| !targets.iter().any(|t| t.name == h.name))
        .filter(|h| h.labels.get(&label).is_some_and(|v| touched.contains(v)))
        .cloned()
        .collect();
    Some(Groups { label, others })
}
