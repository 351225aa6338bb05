//! The host side of a health probe (`exec/probe.rs` carries probes out, `rollout`
//! judges what they read): one remote command that reads what the built-in signals need,
//! renews the probation lease and runs the custom checks, and the parser of its
//! tagged-line output. Pure; no I/O.
//!
//! Output, one fact per line (free-form values are lowercase hex, `-` = empty):
//!
//! ```text
//! uptime 1234.56                   /proc/uptime: the clock rates are measured with
//! clock 1700000000                 the host's wall clock (date +%s)
//! load1 0.12                       /proc/loadavg, 1-minute load        (source load)
//! cpus 8                           online CPUs                         (source load)
//! blocked 0                        /proc/stat procs_blocked            (source blocked)
//! oom_kill 0                       /proc/vmstat oom_kill               (source oom)
//! pressure <cpu> <memory> <io>     /proc/pressure/* `some` totals, us  (source pressure)
//! kcursor <boot id>:<secs>         the kernel log's cursor now         (source kernel)
//! kcount <n>                       alert lines after the given cursor
//! kline <hex>                      one of the last 10 of them
//! systemd 1                        systemd runs (then:)                (source units)
//! failed <unit>                    one per failed unit
//! restarts <unit> <n>              NRestarts of a service that restarted
//! na <source> <hex why>            the host lacks this source: not available there
//! owner <run id> | owner -         the run id the manifest names
//! state probation|confirmed|revoked|none
//! lease <unix secs>                the lease's end after renewal (0: no lease)
//! reverted <run> <until> <at> <0|1> the guard reverted the probed run
//! run <start> <end> <exit>         one per runs.log line of the probed run
//! runerr <start> <end> <exit> <hex> a failed run's last stderr lines (failed.log)
//! running 0|1                      the wrapper's pid file names a live `timeout`
//! check <hex name> <exit|-> <hex last output line>   (`-`: no result; the text says why)
//! end
//! ```
//!
//! Only the sources asked for are read (the signals table says which each signal
//! needs). The kernel log is read with `dmesg`: lines after the cursor given that
//! contain one of the kernel patterns; given no cursor the probe only takes one.
//!
//! The lease (host clock) is renewed to now + `lease` only when the manifest names the
//! probed run and is in probation (and no install is under way).
//!
//! Timing: the whole probe runs under `timeout <probe_timeout>`. The custom checks run
//! concurrently, each under `timeout -k 1s C`, with
//! `C = probe_timeout - max(probe_timeout/4, 1s) - 1s` (at least 100 ms), so a check
//! that hangs is reported as 124 while the probe itself still finishes in time. Each
//! check keeps its output in memory (no temporary files: no command beyond the check's
//! own for an empty output) and prints its own line when it ends; [`parse_probe`] marks
//! a configured check without a line as not reported.

use std::time::Duration;

use super::ManifestState;
use super::{command, secs, unhex, with_lib, RemoteCommand, REPORT_SH};
use crate::rollout::probe_report::{
    CheckResult, KernelRead, Pressure, ProbeReport, ProbeSource, RunRecord, UnitsRead,
};
use crate::rollout::signals;
use crate::spec::Check;

const PROBE_SH: &str = include_str!("scripts/probe.sh");
/// The probe's script after the library.
const PARTS: &[&str] = &[REPORT_SH, PROBE_SH];

/// Each custom check's own timeout within a probe of `probe_timeout`.
pub fn check_timeout(probe_timeout: Duration) -> Duration {
    let reserve = (probe_timeout / 4).max(Duration::from_secs(1)) + Duration::from_secs(1);
    probe_timeout
        .saturating_sub(reserve)
        .max(Duration::from_millis(100))
}

/// What a probe reads beyond the run's own state: the signals' sources, and where the
/// kernel log was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Sources to read.
    pub sources: Vec<ProbeSource>,
    /// The kernel log's cursor from an earlier probe; None: take one.
    pub kernel_cursor: Option<String>,
}

impl Ask {
    /// Every source, no cursor.
    pub fn everything() -> Ask {
        Ask {
            sources: ProbeSource::ALL.to_vec(),
            kernel_cursor: None,
        }
    }
}

/// One probe of one host for `run_id` reading every source (see [`probe_with`]).
pub fn probe(
    name: &str,
    run_id: &str,
    checks: &[Check],
    probe_timeout: Duration,
    lease: Duration,
) -> RemoteCommand {
    probe_with(
        name,
        run_id,
        checks,
        probe_timeout,
        lease,
        &Ask::everything(),
    )
}

/// One probe of one host for `run_id`: the sources `ask` names for NAME, the lease
/// renewed to `lease` from now (whole seconds, rounded up; zero: not renewed), plus the
/// custom checks, whose names and commands travel as arguments (pairs), never spliced
/// into the script; so do the kernel patterns.
pub fn probe_with(
    name: &str,
    run_id: &str,
    checks: &[Check],
    probe_timeout: Duration,
    lease: Duration,
    ask: &Ask,
) -> RemoteCommand {
    let ct = secs(check_timeout(probe_timeout));
    let lease = lease
        .as_secs()
        .saturating_add(u64::from(lease.subsec_nanos() > 0))
        .to_string();
    let sources = ask
        .sources
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let cursor = ask.kernel_cursor.as_deref().unwrap_or("-");
    let patterns = signals::kernel_patterns().join("\n");
    let mut args: Vec<&str> = vec![name, run_id, &lease, &ct, &sources, cursor, &patterns];
    for c in checks {
        args.push(&c.name);
        args.push(&c.command);
    }
    command(
        "probe",
        &with_lib(PARTS),
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
    let mut kernel: Option<KernelRead> = None;
    let mut units: Option<UnitsRead> = None;
    let mut errs: Vec<(u64, u64, i32, String)> = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let bad = |what: &str| format!("probe output line {}: {what}: {line:?}", i + 1);
        let mut f = line.split_ascii_whitespace();
        let Some(tag) = f.next() else { continue };
        let rest: Vec<&str> = f.collect();
        match (tag, rest.as_slice()) {
            ("uptime", [v]) => r.uptime = Some(v.parse().map_err(|_| bad("bad uptime"))?),
            ("clock", [v]) => r.clock = Some(v.parse().map_err(|_| bad("bad clock"))?),
            ("cpus", [v]) => r.cpus = Some(v.parse().map_err(|_| bad("bad cpus"))?),
            ("load1", [v]) => r.load1 = Ok(v.parse().map_err(|_| bad("bad load"))?),
            ("blocked", [v]) => {
                r.procs_blocked = Ok(v.parse().map_err(|_| bad("bad procs_blocked"))?)
            }
            ("oom_kill", [v]) => r.oom_kill = Ok(v.parse().map_err(|_| bad("bad oom_kill"))?),
            ("pressure", [c, m, io]) => {
                let n = |v: &str| v.parse::<u64>().map_err(|_| bad("bad pressure total"));
                r.pressure = Ok(Pressure {
                    cpu: n(c)?,
                    memory: n(m)?,
                    io: n(io)?,
                });
            }
            ("kcursor", [c]) => {
                kernel.get_or_insert_with(KernelRead::default).cursor = c.to_string()
            }
            ("kcount", [_]) => {}
            ("kline", [v]) => {
                let s = unhex_field(v).map_err(|e| bad(&e))?;
                kernel
                    .get_or_insert_with(KernelRead::default)
                    .lines
                    .push(s.trim_end_matches(['\n', '\r']).to_string());
            }
            ("systemd", _) => {
                units.get_or_insert_with(UnitsRead::default);
            }
            ("failed", [u]) => units
                .get_or_insert_with(UnitsRead::default)
                .failed
                .push(u.to_string()),
            ("restarts", [u, n]) => {
                let n = n.parse().map_err(|_| bad("bad NRestarts"))?;
                units
                    .get_or_insert_with(UnitsRead::default)
                    .restarts
                    .insert(u.to_string(), n);
            }
            ("na", [source, why]) => {
                let why = unhex_field(why).map_err(|e| bad(&e))?;
                // A source a newer host script reads is left out.
                if let Some(source) = ProbeSource::parse(source) {
                    r.not_available(source, why);
                }
            }
            ("run", [s, e, x]) => r.runs.push(RunRecord {
                start: s.parse().map_err(|_| bad("bad run start"))?,
                end: e.parse().map_err(|_| bad("bad run end"))?,
                exit: x.parse().map_err(|_| bad("bad run exit"))?,
                stderr: None,
            }),
            ("runerr", [s, e, x, t]) => errs.push((
                s.parse().map_err(|_| bad("bad run start"))?,
                e.parse().map_err(|_| bad("bad run end"))?,
                x.parse().map_err(|_| bad("bad run exit"))?,
                unhex_field(t).map_err(|e| bad(&e))?,
            )),
            ("running", [v]) => r.running = *v == "1",
            ("state", ["none"]) => r.manifest_state = None,
            ("state", [s]) => {
                r.manifest_state =
                    Some(ManifestState::parse(s).ok_or_else(|| bad("unknown manifest state"))?)
            }
            ("owner", ["-"]) => r.owner = None,
            ("owner", [o]) => r.owner = Some(o.to_string()),
            ("lease", [v]) => {
                let v: u64 = v.parse().map_err(|_| bad("bad lease"))?;
                r.lease_until = (v > 0).then_some(v);
            }
            ("reverted", w) => {
                r.reverted = Some(super::settle::parse_reverted(w).ok_or_else(|| bad("malformed"))?)
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
                "uptime" | "clock" | "cpus" | "load1" | "blocked" | "oom_kill" | "pressure"
                | "kcursor" | "kline" | "failed" | "restarts" | "na" | "run" | "runerr" | "running"
                | "state" | "owner" | "lease" | "check" | "end",
                _,
            ) => return Err(bad("malformed")),
            _ => {}
        }
    }
    if !ended {
        return Err("probe output incomplete (no end line)".into());
    }
    if let Some(k) = kernel {
        if r.kernel.is_ok() || r.kernel.as_ref().is_err_and(|e| e == "not read") {
            r.kernel = Ok(k);
        }
    }
    if let Some(u) = units {
        r.units = Ok(u);
    }
    for (start, end, exit, tail) in errs {
        if let Some(run) = r
            .runs
            .iter_mut()
            .find(|x| (x.start, x.end, x.exit) == (start, end, exit))
        {
            let tail = tail.trim_end_matches(['\n', '\r']);
            run.stderr = (!tail.is_empty()).then(|| tail.to_string());
        }
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
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![("probe", PARTS.to_vec())]
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
    fn check_names_commands_sources_cursor_and_patterns_are_arguments() {
        let checks = vec![Check {
            name: "pg".into(),
            command: "pg_isready -q && echo '$(x)'".into(),
        }];
        let ask = Ask {
            sources: vec![ProbeSource::Kernel, ProbeSource::Load],
            kernel_cursor: Some("b00t:12.500000".into()),
        };
        let c = probe_with(
            "db",
            "r-1",
            &checks,
            Duration::from_secs(10),
            Duration::from_millis(1500),
            &ask,
        );
        let patterns = signals::kernel_patterns().join("\n");
        assert!(
            c.line.ends_with(&format!(
                " wavectl 'db' 'r-1' '2' '6.5s' 'kernel load' 'b00t:12.500000' '{patterns}' \
                 'pg' 'pg_isready -q && echo '\\''$(x)'\\'''"
            )),
            "{}",
            c.line
        );
        assert!(c.line.starts_with("timeout -k 1s 10s sh -c "));
        // No cursor: `-`, and every source by default.
        let all = probe("db", "r-1", &[], Duration::from_secs(10), Duration::ZERO);
        assert!(
            all.line
                .contains(" 'load blocked oom pressure kernel units' '-' "),
            "{}",
            all.line
        );
    }

    #[test]
    fn parses_a_full_probe_with_hostile_check_output() {
        let hostile = b"end\nstate revoked\n\x00\xff 'quote' $(rm -rf /)\r\n";
        let out = format!(
            "uptime 1234.56\nclock 1700000100\nload1 0.42\ncpus 4\nblocked 3\noom_kill 7\n\
             pressure 100 200 300\nkcursor b00t:1234.000000\nkcount 1\nkline {}\n\
             systemd 1\nfailed foo.service\nrestarts bar.service 4\n\
             owner r-2\nlease 1700000900\nreverted r-1 1700000000 1700000061 1\n\
             run 1700000000 1700000003 0\nrun 1700000300 1700000420 124\n\
             runerr 1700000300 1700000420 124 {}\nrunning 1\n\
             state probation\ncheck {} 0 {}\ncheck {} 1 {}\ncheck {} 124 -\ncheck {} 0 -\nend\n",
            hx(b"[ 1200.5] INFO: task x:1 blocked for more than 120 seconds.\n"),
            hx(b"raid: controller not found\nend\n"),
            hx(b"ok"),
            hx(b"accepting connections\n"),
            hx(b"bad"),
            hx(hostile),
            hx(b"slow"),
            hx(b"not configured"),
        );
        let checks = [check("bad"), check("ok"), check("slow"), check("lost")];
        let r = parse_probe(&out, &checks).unwrap();
        assert_eq!(
            (r.uptime, r.clock, r.cpus),
            (Some(1234.56), Some(1_700_000_100), Some(4))
        );
        assert_eq!(r.load1, Ok(0.42));
        assert_eq!(r.procs_blocked, Ok(3));
        assert_eq!(r.oom_kill, Ok(7));
        assert_eq!(
            r.pressure,
            Ok(Pressure {
                cpu: 100,
                memory: 200,
                io: 300
            })
        );
        let k = r.kernel.clone().unwrap();
        assert_eq!(k.cursor, "b00t:1234.000000");
        assert_eq!(
            k.lines,
            ["[ 1200.5] INFO: task x:1 blocked for more than 120 seconds."]
        );
        let u = r.units.clone().unwrap();
        assert_eq!(u.failed, ["foo.service"]);
        assert_eq!(u.restarts.get("bar.service"), Some(&4));
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.runs[0].stderr, None);
        assert!(r.runs[1].timed_out());
        // A hostile stderr tail stays a value: its "end" line ends nothing.
        assert_eq!(
            r.runs[1].stderr.as_deref(),
            Some("raid: controller not found\nend")
        );
        assert!(r.running);
        assert_eq!(r.manifest_state, Some(ManifestState::Probation));
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
    fn a_source_the_host_lacks_is_not_available_and_one_not_asked_for_is_not_read() {
        let out = format!(
            "na pressure {}\nna units {}\nna kernel {}\nload1 0.1\nend\n",
            hx(b"no /proc/pressure"),
            hx(b"systemd does not run here"),
            hx(b"dmesg failed (exit 1): dmesg: read kernel buffer failed: Operation not permitted"),
        );
        let r = parse_probe(&out, &[]).unwrap();
        assert_eq!(r.pressure, Err("no /proc/pressure".to_string()));
        assert_eq!(r.units, Err("systemd does not run here".to_string()));
        assert!(r.kernel.unwrap_err().contains("Operation not permitted"));
        assert_eq!(r.load1, Ok(0.1));
        assert_eq!(r.oom_kill, Err("not read".to_string()));
    }

    #[test]
    fn minimal_and_broken_outputs() {
        let r = parse_probe("running 0\nstate none\nowner -\nlease 0\nend\n", &[]).unwrap();
        assert!(r.kernel.is_err());
        assert_eq!(r.manifest_state, None);
        assert_eq!((r.owner, r.lease_until, r.reverted), (None, None, None));
        assert!(r.runs.is_empty());
        assert!(parse_probe("load1 0.1\n", &[])
            .unwrap_err()
            .contains("incomplete"));
        assert!(parse_probe("run 1 2\nend\n", &[]).is_err());
        assert!(parse_probe("check zz 0 -\nend\n", &[]).is_err());
        assert!(parse_probe("reverted r 1 2\nend\n", &[]).is_err());
        assert!(parse_probe("pressure 1 2\nend\n", &[]).is_err());
        assert!(parse_probe("kline zz\nend\n", &[]).is_err());
        assert!(parse_probe("restarts x.service many\nend\n", &[]).is_err());
        assert!(parse_probe("future-tag whatever\nend\n", &[]).is_ok());
        assert!(parse_probe("state Confirmed\nend\n", &[]).is_err());
        assert!(parse_probe(&format!("na future {}\nend\n", hx(b"x")), &[]).is_ok());
    }
}
