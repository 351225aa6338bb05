//! The health probe: one remote command that reads every built-in signal, renews the
//! probation lease and runs the custom checks, and the parser of its tagged-line output.
//! Pure; no I/O.
//!
//! Output, one fact per line (free-form values are lowercase hex, `-` = empty):
//!
//! ```text
//! load1 0.12                       /proc/loadavg, 1-minute load
//! blocked 0                        /proc/stat procs_blocked
//! kernel 2 | kernel none           hung-task/oops/BUG/lockup lines in dmesg (none: unreadable)
//! kernel_last <hex>                the last such line
//! systemd 1                        systemd runs (then:)
//! failed <unit>                    one per failed unit
//! owner <run id> | owner -         the run id the manifest names
//! state probation|confirmed|revoked|none
//! lease <unix secs>                the lease's end after renewal (0: no lease)
//! reverted <run> <until> <at> <0|1> the guard reverted the probed run
//! run <start> <end> <exit>         one per runs.log line of the probed run
//! running 0|1                      the wrapper's pid file names a live `timeout`
//! check <hex name> <exit|-> <hex last output line>   (`-`: no result; the text says why)
//! end
//! ```
//!
//! The lease (host clock) is renewed to now + `lease` only when the manifest names the
//! probed run and is in probation (and no install is under way).
//!
//! Timing: the whole probe runs under `timeout <probe_timeout>`. The custom checks run
//! concurrently, each under `timeout -k 1s C`, with
//! `C = probe_timeout - max(probe_timeout/4, 1s) - 1s` (at least 100 ms), so a check
//! that hangs is reported as 124 while the probe itself still finishes in time. Every
//! check reports: without a temporary directory each check keeps its output in memory
//! and prints its own line; a check that leaves no exit status is reported as `-`;
//! [`parse_probe`] marks a configured check without a line as not reported.

use std::time::Duration;

use super::{command, secs, unhex, with_lib, RemoteCommand, REPORT_SH};
use crate::rollout::probe::{CheckResult, ProbeReport, RunRecord};
use crate::spec::Check;

const PROBE_SH: &str = include_str!("scripts/probe.sh");

/// Each custom check's own timeout within a probe of `probe_timeout`.
pub fn check_timeout(probe_timeout: Duration) -> Duration {
    let reserve = (probe_timeout / 4).max(Duration::from_secs(1)) + Duration::from_secs(1);
    probe_timeout
        .saturating_sub(reserve)
        .max(Duration::from_millis(100))
}

/// One probe of one host for `run_id`: built-in signals for NAME, the lease renewed to
/// `lease` from now (whole seconds, rounded up; zero: not renewed), plus the custom
/// checks, whose names and commands travel as arguments (pairs), never spliced into the
/// script.
pub fn probe(
    name: &str,
    run_id: &str,
    checks: &[Check],
    probe_timeout: Duration,
    lease: Duration,
) -> RemoteCommand {
    let ct = secs(check_timeout(probe_timeout));
    let lease = lease
        .as_secs()
        .saturating_add(u64::from(lease.subsec_nanos() > 0))
        .to_string();
    let mut args: Vec<&str> = vec![name, run_id, &lease, &ct];
    for c in checks {
        args.push(&c.name);
        args.push(&c.command);
    }
    command(
        "probe",
        &with_lib(&[REPORT_SH, PROBE_SH]),
        &args,
        probe_timeout,
        Duration::from_secs(1),
        None,
    )
}

/// Parses a probe's stdout. Unknown tags are ignored (newer host scripts); a missing
/// `end` line (the probe was cut short) or a malformed known line is an error. Every
/// check of `checks` gets a [`CheckResult`], in that order: one without a line (or with
/// no exit status) has `reported: false`, exit -1. Lines of checks not configured are
/// dropped.
pub fn parse_probe(stdout: &str, checks: &[Check]) -> Result<ProbeReport, String> {
    let mut r = ProbeReport::default();
    let mut ended = false;
    let mut got: Vec<CheckResult> = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let bad = |what: &str| format!("probe output line {}: {what}: {line:?}", i + 1);
        let mut f = line.split_ascii_whitespace();
        let Some(tag) = f.next() else { continue };
        let rest: Vec<&str> = f.collect();
        match (tag, rest.as_slice()) {
            ("load1", [v]) => r.load1 = Some(v.parse().map_err(|_| bad("bad load"))?),
            ("blocked", [v]) => {
                r.procs_blocked = Some(v.parse().map_err(|_| bad("bad procs_blocked"))?)
            }
            ("kernel", ["none"]) => r.kernel_alerts = None,
            ("kernel", [v]) => {
                r.kernel_alerts = Some(v.parse().map_err(|_| bad("bad kernel count"))?)
            }
            ("kernel_last", [v]) => {
                let s = unhex_field(v).map_err(|e| bad(&e))?;
                let s = s.trim_end_matches(['\n', '\r']).to_string();
                r.kernel_last = (!s.is_empty()).then_some(s);
            }
            ("systemd", _) => {}
            ("failed", [u]) => r.failed_units.push(u.to_string()),
            ("run", [s, e, x]) => r.runs.push(RunRecord {
                start: s.parse().map_err(|_| bad("bad run start"))?,
                end: e.parse().map_err(|_| bad("bad run end"))?,
                exit: x.parse().map_err(|_| bad("bad run exit"))?,
            }),
            ("running", [v]) => r.running = *v == "1",
            ("state", ["none"]) => r.manifest_state = None,
            ("state", [s]) => r.manifest_state = Some(s.to_string()),
            ("owner", ["-"]) => r.owner = None,
            ("owner", [o]) => r.owner = Some(o.to_string()),
            ("lease", [v]) => {
                let v: u64 = v.parse().map_err(|_| bad("bad lease"))?;
                r.lease_until = (v > 0).then_some(v);
            }
            ("reverted", w) => {
                r.reverted = Some(super::state::parse_reverted(w).ok_or_else(|| bad("malformed"))?)
            }
            ("check", [n, x, o]) => {
                let output = unhex_field(o)
                    .map_err(|e| bad(&e))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let (exit, reported) = if *x == "-" {
                    (-1, false)
                } else {
                    (x.parse().map_err(|_| bad("bad check exit"))?, true)
                };
                got.push(CheckResult {
                    name: unhex_field(n).map_err(|e| bad(&e))?,
                    exit,
                    output,
                    reported,
                });
            }
            ("end", []) => ended = true,
            (
                "load1" | "blocked" | "kernel" | "kernel_last" | "failed" | "run" | "running"
                | "state" | "owner" | "lease" | "check" | "end",
                _,
            ) => return Err(bad("malformed")),
            _ => {}
        }
    }
    if !ended {
        return Err("probe output incomplete (no end line)".into());
    }
    r.checks = checks
        .iter()
        .map(|c| match got.iter().position(|g| g.name == c.name) {
            Some(i) => got.swap_remove(i),
            None => CheckResult {
                name: c.name.clone(),
                exit: -1,
                output: "no result reported by the probe".into(),
                reported: false,
            },
        })
        .collect();
    Ok(r)
}

fn unhex_field(v: &str) -> Result<String, String> {
    if v == "-" {
        Ok(String::new())
    } else {
        unhex(v)
    }
}

#[cfg(test)]
pub(super) fn scripts() -> Vec<(&'static str, &'static str)> {
    vec![("probe.sh", PROBE_SH)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(s: &[u8]) -> String {
        if s.is_empty() {
            "-".into()
        } else {
            hex::encode(s)
        }
    }

    fn check(name: &str) -> Check {
        Check {
            name: name.into(),
            command: "true".into(),
        }
    }

    #[test]
    fn check_timeout_leaves_room() {
        assert_eq!(
            check_timeout(Duration::from_secs(10)),
            Duration::from_millis(6500)
        );
        assert_eq!(
            check_timeout(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            check_timeout(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn check_names_and_commands_are_arguments() {
        let checks = vec![Check {
            name: "pg".into(),
            command: "pg_isready -q && echo '$(x)'".into(),
        }];
        let c = probe(
            "db",
            "r-1",
            &checks,
            Duration::from_secs(10),
            Duration::from_millis(1500),
        );
        assert!(
            c.line.ends_with(
                " wavectl 'db' 'r-1' '2' '6.5s' 'pg' 'pg_isready -q && echo '\\''$(x)'\\'''"
            ),
            "{}",
            c.line
        );
        assert!(c.line.starts_with("timeout -k 1s 10s sh -c "));
    }

    #[test]
    fn parses_a_full_probe_with_hostile_check_output() {
        let hostile = b"end\nstate revoked\n\x00\xff 'quote' $(rm -rf /)\r\n";
        let out = format!(
            "load1 0.42\nblocked 3\nkernel 2\nkernel_last {}\nsystemd 1\nfailed foo.service\n\
             owner r-2\nlease 1700000900\nreverted r-1 1700000000 1700000061 1\n\
             run 1700000000 1700000003 0\nrun 1700000300 1700000420 124\nrunning 1\n\
             state probation\ncheck {} 0 {}\ncheck {} 1 {}\ncheck {} 124 -\ncheck {} 0 -\nend\n",
            hx(b"INFO: task x blocked for more than 120 seconds.\n"),
            hx(b"ok"),
            hx(b"accepting connections\n"),
            hx(b"bad"),
            hx(hostile),
            hx(b"slow"),
            hx(b"not configured"),
        );
        let checks = [check("bad"), check("ok"), check("slow"), check("lost")];
        let r = parse_probe(&out, &checks).unwrap();
        assert_eq!(r.load1, Some(0.42));
        assert_eq!(r.procs_blocked, Some(3));
        assert_eq!(r.kernel_alerts, Some(2));
        assert_eq!(
            r.kernel_last.as_deref(),
            Some("INFO: task x blocked for more than 120 seconds.")
        );
        assert_eq!(r.failed_units, vec!["foo.service"]);
        assert_eq!(r.runs.len(), 2);
        assert!(r.runs[1].timed_out());
        assert!(r.running);
        assert_eq!(r.manifest_state.as_deref(), Some("probation"));
        assert_eq!(r.owner.as_deref(), Some("r-2"));
        assert_eq!(r.lease_until, Some(1_700_000_900));
        let rv = r.reverted.unwrap();
        assert_eq!(
            (rv.run_id.as_str(), rv.lease_until, rv.at, rv.clean),
            ("r-1", 1_700_000_000, 1_700_000_061, true)
        );
        // In the configured order; the one without a line is not reported.
        let got: Vec<(&str, i32, bool)> = r
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.exit, c.reported))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bad", 1, true),
                ("ok", 0, true),
                ("slow", 124, true),
                ("lost", -1, false)
            ]
        );
        assert_eq!(r.checks[1].output, "accepting connections");
        assert_eq!(
            r.checks[0].output,
            "end\nstate revoked\n\u{0}\u{fffd} 'quote' $(rm -rf /)"
        );
        assert_eq!(r.checks[2].output, "");
    }

    #[test]
    fn a_check_without_exit_status_is_not_reported() {
        let out = format!(
            "check {} - {}\nend\n",
            hx(b"pg"),
            hx(b"no result: the check left no exit status")
        );
        let r = parse_probe(&out, &[check("pg")]).unwrap();
        assert!(!r.checks[0].reported);
        assert_eq!(r.checks[0].exit, -1);
        assert!(r.checks[0].output.contains("no exit status"));
    }

    #[test]
    fn minimal_and_broken_outputs() {
        let r = parse_probe(
            "kernel none\nrunning 0\nstate none\nowner -\nlease 0\nend\n",
            &[],
        )
        .unwrap();
        assert_eq!(r.kernel_alerts, None);
        assert_eq!(r.manifest_state, None);
        assert_eq!((r.owner, r.lease_until, r.reverted), (None, None, None));
        assert!(r.runs.is_empty());
        assert!(parse_probe("load1 0.1\n", &[])
            .unwrap_err()
            .contains("incomplete"));
        assert!(parse_probe("run 1 2\nend\n", &[]).is_err());
        assert!(parse_probe("check zz 0 -\nend\n", &[]).is_err());
        assert!(parse_probe("reverted r 1 2\nend\n", &[]).is_err());
        assert!(parse_probe("future-tag whatever\nend\n", &[]).is_ok());
    }
}
