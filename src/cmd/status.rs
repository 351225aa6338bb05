//! `status`: the runs, or each host of one run, from the journals alone (no network).

use serde::Serialize;

use crate::cli::Global;
use crate::exit;
use crate::journal::{HostState, RunState};

use super::apply::status_name;
use super::{journal_failed, state_dir};

#[derive(Serialize)]
struct RunLine {
    run: String,
    rollout: String,
    state: String,
    started: String,
    hosts: usize,
    done: usize,
    pending: usize,
}

fn line(id: &str, s: &RunState) -> RunLine {
    let done = s
        .hosts
        .iter()
        .filter(|h| matches!(h.state, HostState::Confirmed | HostState::Clean))
        .count();
    RunLine {
        run: id.to_string(),
        rollout: s.info.as_ref().map_or("?".into(), |i| i.rollout.clone()),
        state: status_name(s.status),
        started: humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.started),
        )
        .to_string(),
        hosts: s.hosts.len(),
        done,
        pending: s
            .hosts
            .iter()
            .filter(|h| h.state.may_hold_files() && h.state != HostState::Confirmed)
            .count(),
    }
}

pub fn status(g: &Global, run: Option<&str>) -> i32 {
    let state = state_dir(g);
    match run {
        None => {
            let mut lines = Vec::new();
            for id in state.runs() {
                if let Ok(s) = state.load(&id) {
                    lines.push(line(&id, &s));
                }
            }
            if g.json {
                for l in &lines {
                    println!("{}", serde_json::to_string(l).unwrap_or_default());
                }
            } else if lines.is_empty() {
                println!("no runs in {}", state.root.display());
            } else {
                println!(
                    "{:<48} {:<20} {:<13} {:<21} {:>5} {:>5} {:>7}",
                    "RUN", "ROLLOUT", "STATE", "STARTED", "HOSTS", "DONE", "PENDING"
                );
                for l in &lines {
                    println!(
                        "{:<48} {:<20} {:<13} {:<21} {:>5} {:>5} {:>7}",
                        l.run, l.rollout, l.state, l.started, l.hosts, l.done, l.pending
                    );
                }
            }
            exit::OK
        }
        Some(id) => match state.load(id) {
            Err(e) => journal_failed(&e),
            Ok(s) => {
                if g.json {
                    println!("{}", serde_json::to_string(&s).unwrap_or_default());
                    return exit::OK;
                }
                let l = line(id, &s);
                println!(
                    "run {}: rollout {}, {}, started {}",
                    l.run, l.rollout, l.state, l.started
                );
                println!(
                    "{:<24} {:>4}  {:<11} {:<12} EVIDENCE (or what the last action did)",
                    "HOST", "WAVE", "STATE", "VERDICT"
                );
                for h in &s.hosts {
                    let state = status_name(h.state);
                    let (verdict, evidence) = match &h.last_verdict {
                        Some(v) => (
                            v.health.to_string(),
                            v.evidence
                                .iter()
                                .map(|e| e.to_string())
                                .collect::<Vec<_>>()
                                .join("; "),
                        ),
                        None => ("-".into(), String::new()),
                    };
                    let evidence = if evidence.is_empty() && !h.detail.is_empty() {
                        h.detail.clone()
                    } else {
                        evidence
                    };
                    println!(
                        "{:<24} {:>4}  {:<11} {:<12} {}",
                        h.host, h.wave, state, verdict, evidence
                    );
                }
                exit::OK
            }
        },
    }
}
