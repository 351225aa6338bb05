//! Settle: ask a host what it holds of a rollout, for `resume` and `reconcile` (the
//! engine's `settle` action) — one command that reads NAME's state (`scripts/settle.sh`)
//! and its parser, [`parse_settle`] → [`SettleReport`]. Pure; no I/O.
//!
//! Output lines: `manifest <hex>` (the manifest file, in whichever release's form:
//! [`Manifest::read`]) or `manifest none`; `txn <run id>` (an install
//! in progress or cut short); `reverted <run> <lease until> <reverted at> <clean 0|1>`
//! (only when the guard's record names the asked run); `runs <n>` (runs.log lines of
//! the asked run); `running 0|1`; `prev <run id>` (the version kept for rollback); then
//! `wavectl-settle done`.

use std::time::Duration;

use super::install::{tagged, SMALL_TIMEOUT};
use super::{command, unhex, with_lib, Manifest, RemoteCommand, REPORT_SH};
use crate::rollout::probe_report::Reverted;

const SETTLE_SH: &str = include_str!("scripts/settle.sh");
/// The script after the library.
const PARTS: &[&str] = &[REPORT_SH, SETTLE_SH];

/// What one host holds of NAME, as seen by `run_id` (the engine decides from it what is
/// true of the run there: its `Finding`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettleReport {
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

/// Asks a host what it holds of NAME; see the module docs.
pub fn settle(name: &str, run_id: &str) -> RemoteCommand {
    command(
        "settle",
        &with_lib(PARTS),
        &[name, run_id],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// Parses [`settle`]'s output. Output cut short (no final marker), an unreadable
/// manifest, a malformed known line or the host's own error (`wavectl-error`, e.g. NAME's
/// state lock held past the wait) is an error.
pub fn parse_settle(stdout: &str) -> Result<SettleReport, String> {
    if let Some(why) = tagged(stdout, "wavectl-error") {
        return Err(format!("settle stopped on the host: {why}"));
    }
    let mut f = SettleReport::default();
    let mut done = false;
    let mut seen_manifest = false;
    for (i, line) in stdout.lines().enumerate() {
        let bad = |what: &str| format!("settle output line {}: {what}: {line:?}", i + 1);
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["manifest", "none"] => seen_manifest = true,
            ["manifest", h] => {
                seen_manifest = true;
                let text = unhex(h).map_err(|e| bad(&e))?;
                let m = Manifest::read(&text);
                f.manifest = Some(m.map_err(|e| bad(&format!("unreadable manifest ({e})")))?);
            }
            ["txn", r] => f.txn = Some(r.to_string()),
            ["reverted", ..] => {
                f.reverted = Some(parse_reverted(&w[1..]).ok_or_else(|| bad("malformed"))?)
            }
            ["runs", n] => f.runs = n.parse().map_err(|_| bad("bad count"))?,
            ["running", v] => f.running = *v == "1",
            ["prev", r] => f.prev = Some(r.to_string()),
            ["wavectl-settle", "done"] => done = true,
            ["manifest" | "txn" | "runs" | "running" | "prev", ..] => return Err(bad("malformed")),
            _ => {}
        }
    }
    if !done || !seen_manifest {
        return Err("settle output incomplete".into());
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
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![("settle", PARTS.to_vec())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{ManifestFormat, ManifestState};
    use crate::spec::ActivationKind;

    #[test]
    fn builds_the_line() {
        let c = settle("x", "r-1");
        assert!(c.line.ends_with(" wavectl 'x' 'r-1'"), "{}", c.line);
    }

    #[test]
    fn parses_a_report() {
        let m = "{\n\"name\": \"x\",\n\"sha256\": \"00\",\n\"run_id\": \"B\",\n\"installed_at\": 1,\n\"state\": \"probation\",\n\"backup\": true,\n\"prev_run_id\": \"A\",\n\"prev_sha256\": \"11\",\n\"install_path\": \"/x\",\n\"activation\": \"cron\",\n\"schedule\": \"* * * * *\",\n\"lease_secs\": 60\n}\n";
        let out = format!(
            "manifest {}\ntxn B\nreverted B 100 160 1\nruns 2\nrunning 1\nprev A\nwavectl-settle done\n",
            hex::encode(m)
        );
        let f = parse_settle(&out).unwrap();
        let m = f.manifest.unwrap();
        assert_eq!((m.run_id.as_str(), m.lease_secs), ("B", 60));
        assert_eq!(
            (m.state, m.activation, m.format),
            (
                ManifestState::Probation,
                ActivationKind::Cron,
                ManifestFormat::Json
            )
        );
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
    fn the_hosts_own_error_is_the_error() {
        let out = format!(
            "wavectl-error {}\n",
            hex::encode("x is busy here (/var/lib/wavectl/x/state.lock is held)")
        );
        let e = parse_settle(&out).unwrap_err();
        assert!(e.contains("x is busy here"), "{e}");
    }

    #[test]
    fn parses_the_earlier_releases_manifests() {
        let j = r#"{"name":"x","sha256":"00","run_id":"B","installed_at":1,"state":"confirmed","backup":true,"install_path":"/x","activation":{"kind":"systemd-timer","schedule":"daily"},"lease_secs":60,"prev":null}"#;
        let kv = "# c\nname=x\nrun_id=C\nstate=probation\nsha256=00\ninstalled_at=1\ninstall_path=/x\nactivation=cron\nschedule=* * * * *\nlease_secs=60\nbackup=1\nprev_run_id=A\nprev_sha256=11\n";
        for (text, run, state, format) in [
            (
                j,
                "B",
                ManifestState::Confirmed,
                ManifestFormat::CompactJson,
            ),
            (kv, "C", ManifestState::Probation, ManifestFormat::KeyValue),
        ] {
            let out = format!(
                "manifest {}\nruns 0\nrunning 0\nwavectl-settle done\n",
                hex::encode(text)
            );
            let m = parse_settle(&out).unwrap().manifest.unwrap();
            assert_eq!((m.run_id.as_str(), m.state, m.format), (run, state, format));
        }
    }

    #[test]
    fn empty_host_and_broken_outputs() {
        let f = parse_settle("manifest none\nruns 0\nrunning 0\nwavectl-settle done\n").unwrap();
        assert_eq!(f, SettleReport::default());
        assert!(parse_settle("manifest none\nruns 0\n").is_err());
        assert!(parse_settle("manifest zz\nwavectl-settle done\n").is_err());
        assert!(parse_settle(&format!(
            "manifest {}\nwavectl-settle done\n",
            hex::encode("state=odd\n")
        ))
        .is_err());
        assert!(parse_settle(&format!(
            "manifest {}\nwavectl-settle done\n",
            hex::encode("{")
        ))
        .is_err());
        assert!(parse_settle("manifest none\nreverted B x 1 1\nwavectl-settle done\n").is_err());
    }
}
