//! Per-host verdicts: healthy, degraded, hung, unreachable — each with its evidence.
//! `HostWatch` folds one host's probe outcomes (and its baseline) into a verdict.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::probe::ProbeReport;
use crate::spec::Builtin;

/// A host's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Degraded,
    /// Missed a deadline after it had answered before.
    Hung,
    /// Refused or failed to connect, or never answered.
    Unreachable,
}

impl Health {
    pub fn is_bad(self) -> bool {
        self != Health::Healthy
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Hung => "hung",
            Health::Unreachable => "unreachable",
        })
    }
}

/// Why a verdict is what it is: the signal, its value before and after, the threshold, the raw line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl Evidence {
    pub fn new(signal: impl Into<String>) -> Self {
        Evidence {
            signal: signal.into(),
            ..Default::default()
        }
    }
    pub fn raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }
    pub fn change(
        mut self,
        before: impl ToString,
        after: impl ToString,
        threshold: impl Into<String>,
    ) -> Self {
        self.before = Some(before.to_string());
        self.after = Some(after.to_string());
        self.threshold = Some(threshold.into());
        self
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)?;
        if let (Some(b), Some(a)) = (&self.before, &self.after) {
            write!(f, ": {b} -> {a}")?;
        }
        if let Some(r) = &self.raw {
            write!(f, ": {r}")?;
        }
        if let Some(t) = &self.threshold {
            write!(f, " (threshold {t})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub health: Health,
    pub evidence: Vec<Evidence>,
}

impl Verdict {
    pub fn healthy() -> Self {
        Verdict {
            health: Health::Healthy,
            evidence: Vec::new(),
        }
    }
    pub fn bad(health: Health, evidence: Evidence) -> Self {
        Verdict {
            health,
            evidence: vec![evidence],
        }
    }
}

/// What one attempt to probe a host produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The host answered.
    Report(Box<ProbeReport>),
    /// A login or command missed its deadline.
    Missed { what: String, after: Duration },
    /// The connection was refused or failed.
    Failed { message: String },
}

/// A continuous signal must be out of line this many probes in a row to fail a host.
pub const STRIKES: u32 = 3;
/// A custom check must fail this many probes in a row to fail a host.
pub const CHECK_STRIKES: u32 = 2;

/// One host's watch over a run: its baseline, what it answered before, strike counters.
#[derive(Debug, Clone, Default)]
pub struct HostWatch {
    builtins: Vec<Builtin>,
    /// The host answered a login and a command at least once in this run.
    pub answered_before: bool,
    baseline: Option<ProbeReport>,
    check_fails: BTreeMap<String, u32>,
    load_strikes: u32,
    blocked_strikes: u32,
}

impl HostWatch {
    pub fn new(builtins: &[Builtin]) -> Self {
        HostWatch {
            builtins: builtins.to_vec(),
            ..Default::default()
        }
    }

    /// The host's own reading before the script reached it.
    pub fn set_baseline(&mut self, report: ProbeReport) {
        self.answered_before = true;
        self.baseline = Some(report);
    }

    fn has(&self, b: Builtin) -> bool {
        self.builtins.contains(&b)
    }

    /// Judge one probe outcome. `controls` are this round's readings of untouched hosts.
    pub fn observe(&mut self, outcome: &Outcome, controls: &[ProbeReport]) -> Verdict {
        let report = match outcome {
            Outcome::Missed { what, after } => {
                let health = if self.answered_before {
                    Health::Hung
                } else {
                    Health::Unreachable
                };
                let ev = Evidence::new("deadline")
                    .raw(format!("{what} gave no answer within {}", fmt_dur(*after)));
                return Verdict::bad(health, ev);
            }
            Outcome::Failed { message } => {
                return Verdict::bad(
                    Health::Unreachable,
                    Evidence::new("connect").raw(message.clone()),
                );
            }
            Outcome::Report(r) => r,
        };
        self.answered_before = true;
        let mut evidence = Vec::new();
        if self.has(Builtin::Script) {
            evidence.extend(script_evidence(report));
        }
        evidence.extend(self.check_evidence(report));
        let base = self.baseline.clone().unwrap_or_default();
        if self.has(Builtin::Kernel) {
            if let (Some(before), Some(after)) = (base.kernel_alerts, report.kernel_alerts) {
                if after > before {
                    let mut ev = Evidence::new("kernel").change(
                        before,
                        after,
                        format!("> {before} alert lines"),
                    );
                    ev.raw = report.kernel_last.clone();
                    evidence.push(ev);
                }
            }
        }
        if self.has(Builtin::Units) {
            let new: Vec<&String> = report
                .failed_units
                .iter()
                .filter(|u| !base.failed_units.contains(u))
                .collect();
            if !new.is_empty() {
                let names: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
                evidence.push(
                    Evidence::new("units")
                        .change(
                            base.failed_units.len(),
                            report.failed_units.len(),
                            "no new failed units",
                        )
                        .raw(names.join(", ")),
                );
            }
        }
        if self.has(Builtin::Blocked) {
            if let Some(ev) = strike(
                &mut self.blocked_strikes,
                "blocked",
                base.procs_blocked.map(|v| v as f64),
                report.procs_blocked.map(|v| v as f64),
                controls
                    .iter()
                    .filter_map(|c| c.procs_blocked.map(|v| v as f64)),
                |b| b + 4.0,
            ) {
                evidence.push(ev);
            }
        }
        if self.has(Builtin::Load) {
            if let Some(ev) = strike(
                &mut self.load_strikes,
                "load",
                base.load1,
                report.load1,
                controls.iter().filter_map(|c| c.load1),
                |b| (b * 2.0).max(b + 2.0),
            ) {
                evidence.push(ev);
            }
        }
        if evidence.is_empty() {
            Verdict::healthy()
        } else {
            Verdict {
                health: Health::Degraded,
                evidence,
            }
        }
    }

    fn check_evidence(&mut self, report: &ProbeReport) -> Vec<Evidence> {
        let mut out = Vec::new();
        for c in &report.checks {
            let n = self.check_fails.entry(c.name.clone()).or_insert(0);
            if c.exit == 0 && c.reported {
                *n = 0;
                continue;
            }
            // A result that never came is evidence against the host, never a pass.
            *n += 1;
            if *n >= CHECK_STRIKES {
                let what = if !c.reported {
                    "gave no result".to_string()
                } else if c.exit == 124 {
                    "timed out".to_string()
                } else {
                    format!("exit {}", c.exit)
                };
                let mut ev = Evidence::new(format!("check {}", c.name))
                    .raw(format!("{what}, {n} probes in a row"));
                if !c.output.is_empty() {
                    ev.raw = Some(format!("{what}, {n} probes in a row: {}", c.output));
                }
                ev.threshold = Some(format!("{CHECK_STRIKES} failures in a row"));
                out.push(ev);
            }
        }
        out
    }
}

/// Runs of the script that failed or hit their timeout: critical at once.
fn script_evidence(report: &ProbeReport) -> Vec<Evidence> {
    report
        .runs
        .iter()
        .filter(|r| r.exit != 0)
        .take(1)
        .map(|r| {
            let raw = if r.timed_out() {
                format!(
                    "run started at {} killed by its timeout (exit {})",
                    r.start, r.exit
                )
            } else {
                format!("run started at {} exited {}", r.start, r.exit)
            };
            Evidence::new("script").raw(raw)
        })
        .collect()
}

/// A continuous signal: out of line against the host's own baseline *and* the control
/// hosts, `STRIKES` probes in a row.
fn strike(
    strikes: &mut u32,
    signal: &str,
    before: Option<f64>,
    now: Option<f64>,
    controls: impl Iterator<Item = f64>,
    limit: impl Fn(f64) -> f64,
) -> Option<Evidence> {
    let (Some(before), Some(now)) = (before, now) else {
        return None;
    };
    let controls: Vec<f64> = controls.collect();
    let threshold = limit(before);
    let control_limit = if controls.is_empty() {
        0.0
    } else {
        limit(controls.iter().sum::<f64>() / controls.len() as f64)
    };
    if now > threshold && now > control_limit {
        *strikes += 1;
    } else {
        *strikes = 0;
    }
    (*strikes >= STRIKES).then(|| {
        Evidence::new(signal).change(
            before,
            now,
            format!("> {threshold:.2} for {STRIKES} probes, and above control hosts"),
        )
    })
}

pub fn fmt_dur(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::probe::{CheckResult, RunRecord};

    fn report() -> ProbeReport {
        ProbeReport {
            load1: Some(0.5),
            procs_blocked: Some(0),
            kernel_alerts: Some(0),
            ..Default::default()
        }
    }

    fn all() -> HostWatch {
        HostWatch::new(&[
            Builtin::Reachable,
            Builtin::Script,
            Builtin::Kernel,
            Builtin::Units,
            Builtin::Blocked,
            Builtin::Load,
        ])
    }

    #[test]
    fn deadline_after_an_answer_is_hung_and_before_any_is_unreachable() {
        let missed = Outcome::Missed {
            what: "probe".into(),
            after: Duration::from_secs(5),
        };
        let mut fresh = all();
        assert_eq!(fresh.observe(&missed, &[]).health, Health::Unreachable);
        let mut w = all();
        assert_eq!(
            w.observe(&Outcome::Report(Box::new(report())), &[]).health,
            Health::Healthy
        );
        let v = w.observe(&missed, &[]);
        assert_eq!(v.health, Health::Hung);
        assert_eq!(
            v.evidence[0].to_string(),
            "deadline: probe gave no answer within 5s"
        );
    }

    #[test]
    fn refused_connection_is_unreachable_even_after_answers() {
        let mut w = all();
        w.set_baseline(report());
        let v = w.observe(
            &Outcome::Failed {
                message: "Connection refused".into(),
            },
            &[],
        );
        assert_eq!(v.health, Health::Unreachable);
    }

    #[test]
    fn a_failed_or_timed_out_run_degrades_at_once() {
        let mut w = all();
        let mut r = report();
        r.runs.push(RunRecord {
            start: 10,
            end: 11,
            exit: 0,
        });
        assert_eq!(
            w.observe(&Outcome::Report(Box::new(r.clone())), &[]).health,
            Health::Healthy
        );
        r.runs.push(RunRecord {
            start: 20,
            end: 140,
            exit: 124,
        });
        let v = w.observe(&Outcome::Report(Box::new(r)), &[]);
        assert_eq!(v.health, Health::Degraded);
        assert!(
            v.evidence[0].to_string().contains("killed by its timeout"),
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn script_builtin_off_ignores_failed_runs() {
        let mut w = HostWatch::new(&[Builtin::Reachable]);
        let mut r = report();
        r.runs.push(RunRecord {
            start: 10,
            end: 11,
            exit: 3,
        });
        assert_eq!(
            w.observe(&Outcome::Report(Box::new(r)), &[]).health,
            Health::Healthy
        );
    }

    #[test]
    fn a_custom_check_must_fail_twice_in_a_row() {
        let mut w = all();
        let failing = |exit| {
            let mut r = report();
            r.checks.push(CheckResult {
                name: "pg".into(),
                exit,
                output: "no response".into(),
                reported: true,
            });
            Outcome::Report(Box::new(r))
        };
        assert_eq!(w.observe(&failing(1), &[]).health, Health::Healthy);
        assert_eq!(w.observe(&failing(0), &[]).health, Health::Healthy);
        assert_eq!(w.observe(&failing(2), &[]).health, Health::Healthy);
        let v = w.observe(&failing(2), &[]);
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(v.evidence[0].signal, "check pg");
        assert!(v.evidence[0].to_string().contains("no response"));
    }

    #[test]
    fn a_check_that_gives_no_result_counts_against_the_host() {
        let mut w = all();
        let lost = || {
            let mut r = report();
            r.checks.push(CheckResult {
                name: "pg".into(),
                exit: -1,
                output: "no result line".into(),
                reported: false,
            });
            Outcome::Report(Box::new(r))
        };
        assert_eq!(w.observe(&lost(), &[]).health, Health::Healthy);
        let v = w.observe(&lost(), &[]);
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(v.evidence[0].signal, "check pg");
        assert!(
            v.evidence[0].to_string().contains("gave no result"),
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn new_kernel_alerts_and_failed_units_degrade() {
        let mut w = all();
        w.set_baseline(ProbeReport {
            failed_units: vec!["old.service".into()],
            ..report()
        });
        let mut r = report();
        r.failed_units = vec!["old.service".into()];
        assert_eq!(
            w.observe(&Outcome::Report(Box::new(r.clone())), &[]).health,
            Health::Healthy
        );
        r.kernel_alerts = Some(1);
        r.kernel_last = Some("INFO: task raid:42 blocked for more than 120 seconds.".into());
        r.failed_units.push("raid.service".into());
        let v = w.observe(&Outcome::Report(Box::new(r)), &[]);
        assert_eq!(v.health, Health::Degraded);
        let text: Vec<String> = v.evidence.iter().map(|e| e.to_string()).collect();
        assert!(text[0].starts_with("kernel: 0 -> 1"), "{text:?}");
        assert!(text[0].contains("blocked for more than"), "{text:?}");
        assert!(text[1].contains("raid.service"), "{text:?}");
    }

    #[test]
    fn load_must_rise_against_baseline_and_controls_for_several_probes() {
        let mut w = all();
        w.set_baseline(report());
        let high = Outcome::Report(Box::new(ProbeReport {
            load1: Some(9.0),
            ..report()
        }));
        let calm = [report()];
        let busy = [ProbeReport {
            load1: Some(8.0),
            ..report()
        }];
        // The whole fleet is busy: not this host's fault.
        for _ in 0..5 {
            assert_eq!(w.observe(&high, &busy).health, Health::Healthy);
        }
        for _ in 0..STRIKES - 1 {
            assert_eq!(w.observe(&high, &calm).health, Health::Healthy);
        }
        let v = w.observe(&high, &calm);
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(v.evidence[0].signal, "load");
        assert_eq!(v.evidence[0].before.as_deref(), Some("0.5"));
    }
}
