//! What a host holds of a rollout, for `resume` and `reconcile`: one command that reads
//! NAME's state (`scripts/read_state.sh`) and its parser. Pure; no I/O.
//!
//! Output lines: `manifest <hex json>` or `manifest none`; `txn <run id>` (an install
//! in progress or cut short); `reverted <run> <lease until> <reverted at> <clean 0|1>`
//! (only when the guard's record names the asked run); `runs <n>` (runs.log lines of
//! the asked run); `running 0|1`; `prev <run id>` (the version kept for rollback); then
//! `wavectl-state done`.

use std::time::Duration;

use super::install::{Manifest, SMALL_TIMEOUT};
use super::{command, unhex, with_lib, RemoteCommand, REPORT_SH};
use crate::rollout::probe::Reverted;

const READ_STATE_SH: &str = include_str!("scripts/read_state.sh");

/// What one host holds of NAME, as seen by `run_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFinding {
    /// The manifest, if there is one (any run's).
    pub manifest: Option<Manifest>,
    /// The run id in `txn`: an install in progress, or cut short.
    pub txn: Option<String>,
    /// The guard reverted `run_id` after its lease ran out (or at boot).
    pub reverted: Option<Reverted>,
    /// runs.log lines of `run_id`.
    pub runs: u32,
    /// A copy of the script is running now.
    pub running: bool,
    /// The run id of the previous version kept in `prev/` (for the newest's rollback).
    pub prev: Option<String>,
}

/// Reads NAME's state on a host; see the module docs.
pub fn read_state(name: &str, run_id: &str) -> RemoteCommand {
    command(
        "read state",
        &with_lib(&[REPORT_SH, READ_STATE_SH]),
        &[name, run_id],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// Parses [`read_state`]'s output. Output cut short (no final marker), an unreadable
/// manifest or a malformed known line is an error.
pub fn parse_state(stdout: &str) -> Result<HostFinding, String> {
    let mut f = HostFinding::default();
    let mut done = false;
    let mut seen_manifest = false;
    for (i, line) in stdout.lines().enumerate() {
        let bad = |what: &str| format!("read-state output line {}: {what}: {line:?}", i + 1);
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["manifest", "none"] => seen_manifest = true,
            ["manifest", h] => {
                seen_manifest = true;
                let json = unhex(h).map_err(|e| bad(&e))?;
                f.manifest = Some(
                    serde_json::from_str(json.trim())
                        .map_err(|e| bad(&format!("unreadable manifest ({e})")))?,
                );
            }
            ["txn", r] => f.txn = Some(r.to_string()),
            ["reverted", ..] => {
                f.reverted = Some(parse_reverted(&w[1..]).ok_or_else(|| bad("malformed"))?)
            }
            ["runs", n] => f.runs = n.parse().map_err(|_| bad("bad count"))?,
            ["running", v] => f.running = *v == "1",
            ["prev", r] => f.prev = Some(r.to_string()),
            ["wavectl-state", "done"] => done = true,
            ["manifest" | "txn" | "runs" | "running" | "prev", ..] => return Err(bad("malformed")),
            _ => {}
        }
    }
    if !done || !seen_manifest {
        return Err("read-state output incomplete".into());
    }
    Ok(f)
}

/// `<run> <lease until> <reverted at> <clean 0|1>`, as the host's guard records it.
pub(super) fn parse_reverted(w: &[&str]) -> Option<Reverted> {
    match w {
        [r, l, a, c] if *c == "0" || *c == "1" => Some(Reverted {
            run_id: r.to_string(),
            lease_until: l.parse().ok()?,
            at: a.parse().ok()?,
            clean: *c == "1",
        }),
        _ => None,
    }
}

#[cfg(test)]
pub(super) fn scripts() -> Vec<(&'static str, &'static str)> {
    vec![("read_state.sh", READ_STATE_SH)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_line() {
        let c = read_state("x", "r-1");
        assert!(c.line.ends_with(" wavectl 'x' 'r-1'"), "{}", c.line);
    }

    #[test]
    fn parses_a_finding() {
        let j = r#"{"name":"x","sha256":"00","run_id":"B","installed_at":1,"state":"probation","backup":true,"install_path":"/x","activation":{"kind":"cron","schedule":"* * * * *"},"lease_secs":60,"prev":{"run_id":"A","sha256":"11"}}"#;
        let out = format!(
            "manifest {}\ntxn B\nreverted B 100 160 1\nruns 2\nrunning 1\nprev A\nwavectl-state done\n",
            hex::encode(j)
        );
        let f = parse_state(&out).unwrap();
        let m = f.manifest.unwrap();
        assert_eq!((m.run_id.as_str(), m.lease_secs), ("B", 60));
        assert_eq!(m.prev.unwrap().run_id, "A");
        assert_eq!(f.txn.as_deref(), Some("B"));
        assert_eq!(
            f.reverted,
            Some(Reverted {
                run_id: "B".into(),
                lease_until: 100,
                at: 160,
                clean: true
            })
        );
        assert_eq!((f.runs, f.running, f.prev.as_deref()), (2, true, Some("A")));
    }

    #[test]
    fn empty_host_and_broken_outputs() {
        let f = parse_state("manifest none\nruns 0\nrunning 0\nwavectl-state done\n").unwrap();
        assert_eq!(f, HostFinding::default());
        assert!(parse_state("manifest none\nruns 0\n").is_err());
        assert!(parse_state("manifest zz\nwavectl-state done\n").is_err());
        assert!(parse_state(&format!(
            "manifest {}\nwavectl-state done\n",
            hex::encode("{")
        ))
        .is_err());
        assert!(parse_state("manifest none\nreverted B x 1 1\nwavectl-state done\n").is_err());
    }
}
