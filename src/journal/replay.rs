//! PURE: journal records → the state of the run and of every host.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{Action, Record, RunInfo};
use crate::rollout::verdict::Verdict;

/// What the journal says of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Never touched by this run.
    Untouched,
    /// An action was started and no outcome recorded: the host's manifest says what is true.
    Unknown,
    /// Installed (probation).
    Installed,
    /// Installed and confirmed.
    Confirmed,
    /// The install failed part-way: needs removal.
    Partial,
    /// Removed and verified clean.
    Clean,
    /// Removal could not be done yet (unreachable or hung).
    Pending,
}

impl HostState {
    /// The host may hold some of the script's files.
    pub fn may_hold_files(self) -> bool {
        matches!(
            self,
            HostState::Unknown
                | HostState::Installed
                | HostState::Confirmed
                | HostState::Partial
                | HostState::Pending
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub wave: usize,
    pub state: HostState,
    /// The action started without an outcome, if any.
    pub in_flight: Option<Action>,
    pub last_verdict: Option<Verdict>,
    pub detail: String,
    /// Its first run was started.
    pub ran: bool,
}

/// The run as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    RollingBack,
    Done,
    RolledBack,
    Paused,
    Incomplete,
    Aborted,
}

impl RunStatus {
    fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "rolling-back" => RunStatus::RollingBack,
            "done" => RunStatus::Done,
            "rolled-back" => RunStatus::RolledBack,
            "paused" => RunStatus::Paused,
            "incomplete" => RunStatus::Incomplete,
            "aborted" => RunStatus::Aborted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunState {
    pub info: Option<RunInfo>,
    pub status: RunStatus,
    pub started: u64,
    /// The last wave that started.
    pub wave: usize,
    /// Waves that finished their bake.
    pub baked: Vec<usize>,
    pub hosts: Vec<HostStatus>,
}

impl RunState {
    pub fn host(&self, name: &str) -> Option<&HostStatus> {
        self.hosts.iter().find(|h| h.host == name)
    }
    /// Hosts that may hold files of the script (a rollback has to visit them).
    pub fn to_clean(&self) -> Vec<&HostStatus> {
        self.hosts
            .iter()
            .filter(|h| h.state.may_hold_files())
            .collect()
    }
    pub fn pending(&self) -> Vec<&HostStatus> {
        self.hosts
            .iter()
            .filter(|h| h.state == HostState::Pending)
            .collect()
    }
}

/// Fold the records into the run's state.
pub fn replay(records: &[Record]) -> RunState {
    let mut info = None;
    let mut status = RunStatus::Running;
    let mut wave_now = 0;
    let mut baked = Vec::new();
    let mut hosts: BTreeMap<String, HostStatus> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for rec in records {
        match rec {
            Record::Run(i) => {
                for (w, names) in i.waves.iter().enumerate() {
                    for h in names {
                        order.push(h.clone());
                        hosts.insert(
                            h.clone(),
                            HostStatus {
                                host: h.clone(),
                                wave: w + 1,
                                state: HostState::Untouched,
                                in_flight: None,
                                last_verdict: None,
                                detail: String::new(),
                                ran: false,
                            },
                        );
                    }
                }
                info = Some((**i).clone());
            }
            Record::Wave { wave, state } => {
                wave_now = *wave;
                if state == "baked" {
                    baked.push(*wave);
                }
            }
            Record::State { state, .. } => {
                if let Some(s) = RunStatus::parse(state) {
                    status = s;
                }
            }
            Record::Intent { host, action } => {
                if let Some(h) = hosts.get_mut(host) {
                    h.in_flight = Some(*action);
                    if *action == Action::Install && h.state == HostState::Untouched {
                        h.state = HostState::Unknown;
                    }
                }
            }
            Record::Outcome {
                host,
                action,
                ok,
                detail,
            } => {
                if let Some(h) = hosts.get_mut(host) {
                    h.in_flight = None;
                    h.detail = detail.clone();
                    h.state = match (action, ok) {
                        (Action::Install, true) => HostState::Installed,
                        (Action::Install, false) => HostState::Partial,
                        (Action::Run, ok) => {
                            h.ran = *ok;
                            h.state
                        }
                        (Action::Confirm, true) => HostState::Confirmed,
                        (Action::Confirm, false) => h.state,
                        (Action::Remove, true) => HostState::Clean,
                        (Action::Remove, false) => HostState::Pending,
                    };
                }
            }
            Record::Untouched { host, reason } => {
                if let Some(h) = hosts.get_mut(host) {
                    h.in_flight = None;
                    h.state = HostState::Untouched;
                    h.detail = reason.clone();
                }
            }
            Record::Verdict { host, verdict, .. } => {
                if let Some(h) = hosts.get_mut(host) {
                    h.last_verdict = Some(verdict.clone());
                }
            }
        }
    }
    let started = info.as_ref().map_or(0, |i: &RunInfo| i.started);
    let hosts = order.into_iter().filter_map(|h| hosts.remove(&h)).collect();
    RunState {
        info,
        status,
        started,
        wave: wave_now,
        baked,
        hosts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::parse_lines;

    fn info() -> Record {
        Record::Run(Box::new(RunInfo {
            run: "r1".into(),
            rollout: "x".into(),
            install_path: "/usr/local/bin/x".into(),
            sha256: "00".into(),
            spec_path: "s.toml".into(),
            inventory_path: "i.toml".into(),
            ssh_config: None,
            hosts: vec![],
            waves: vec![vec!["a".into()], vec!["b".into(), "c".into()]],
            pid: 1,
            started: 5,
            kind: Default::default(),
        }))
    }

    fn intent(h: &str, action: Action) -> Record {
        Record::Intent {
            host: h.into(),
            action,
        }
    }
    fn outcome(h: &str, action: Action, ok: bool) -> Record {
        Record::Outcome {
            host: h.into(),
            action,
            ok,
            detail: String::new(),
        }
    }

    #[test]
    fn an_intent_without_outcome_is_unknown_and_must_be_visited() {
        let s = replay(&[
            info(),
            intent("a", Action::Install),
            outcome("a", Action::Install, true),
            intent("b", Action::Install),
        ]);
        assert_eq!(s.host("a").unwrap().state, HostState::Installed);
        assert_eq!(s.host("b").unwrap().state, HostState::Unknown);
        assert_eq!(s.host("b").unwrap().in_flight, Some(Action::Install));
        assert_eq!(s.host("c").unwrap().state, HostState::Untouched);
        let to_clean: Vec<&str> = s.to_clean().iter().map(|h| h.host.as_str()).collect();
        assert_eq!(to_clean, ["a", "b"]);
        assert_eq!(s.host("c").unwrap().wave, 2);
    }

    #[test]
    fn an_install_that_never_reached_the_host_leaves_it_untouched() {
        let s = replay(&[
            info(),
            intent("a", Action::Install),
            Record::Untouched {
                host: "a".into(),
                reason: "connection refused".into(),
            },
        ]);
        assert_eq!(s.host("a").unwrap().state, HostState::Untouched);
        assert!(s.to_clean().is_empty());
    }

    #[test]
    fn removal_outcomes_make_hosts_clean_or_pending() {
        let s = replay(&[
            info(),
            intent("a", Action::Install),
            outcome("a", Action::Install, true),
            intent("b", Action::Install),
            outcome("b", Action::Install, false),
            intent("a", Action::Remove),
            outcome("a", Action::Remove, true),
            intent("b", Action::Remove),
            outcome("b", Action::Remove, false),
            Record::State {
                state: "incomplete".into(),
                at: 9,
            },
        ]);
        assert_eq!(s.host("a").unwrap().state, HostState::Clean);
        assert_eq!(s.host("b").unwrap().state, HostState::Pending);
        assert_eq!(s.status, RunStatus::Incomplete);
        assert_eq!(s.pending().len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let mut text = String::new();
        for r in [
            info(),
            intent("a", Action::Install),
            outcome("a", Action::Install, true),
        ] {
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        let full = serde_json::to_string(&intent("b", Action::Install)).unwrap();
        text.push_str(&full[..full.len() / 2]);
        let records = parse_lines(&text);
        assert_eq!(records.len(), 3);
        assert_eq!(
            replay(&records).host("b").unwrap().state,
            HostState::Untouched
        );
    }
}
