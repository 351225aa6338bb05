//! The [`Watch`]: every watched host's baseline, last reading and streaks, and the
//! judging of a probe round — each host against its own baseline and the controls.

use super::*;

/// A custom check must fail this many probes in a row to fail a host.
pub const CHECK_STRIKES: u32 = 2;

/// A level's reading: (value, baseline mean); `Ok(None)`: no value this probe;
/// `Err`: not available on the host.
type LevelRead = Result<Option<(f64, f64)>, String>;

/// What one report says, signal by signal, against the host's own baseline.
struct Reading {
    events: Vec<(&'static Signal, Result<Vec<Found>, String>)>,
    levels: Vec<(&'static Signal, LevelRead)>,
}

/// The control hosts' side of a round.
#[derive(Default)]
struct Controls {
    /// Per events signal: the controls that could show it (their source is there).
    read: BTreeMap<&'static str, Vec<String>>,
    /// Per events signal: key → controls that show it.
    events: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
    /// Per level signal: (control, rise over its baseline).
    rises: BTreeMap<&'static str, Vec<(String, f64)>>,
    /// Every control that answered before failed this round: (host, what happened).
    all_failed: Option<Vec<(String, String)>>,
    /// Each control's host clock (Unix seconds) in its report this round.
    clocks: BTreeMap<String, u64>,
}

/// The watch over a run's hosts and its control hosts.
#[derive(Clone)]
pub struct Watch {
    signals: Vec<&'static Signal>,
    th: Thresholds,
    hosts: BTreeMap<String, HostWatch>,
}

impl Watch {
    pub fn new(builtins: &[Builtin], thresholds: &Thresholds) -> Watch {
        Watch {
            signals: signals::enabled(builtins),
            th: thresholds.clone(),
            hosts: BTreeMap::new(),
        }
    }

    fn host(&mut self, name: &str) -> &mut HostWatch {
        self.hosts.entry(name.to_string()).or_default()
    }

    /// The host answered a login and a command (its install, say).
    pub fn answered(&mut self, host: &str) {
        self.host(host).counts.answered_before = true;
    }

    /// The host's readings before its wave (the baseline window, oldest first). A host
    /// that gave none makes its baseline from its first probes instead.
    pub fn set_baseline(&mut self, host: &str, samples: Vec<ProbeReport>) {
        let levels = self.has_levels();
        let keep = self.needs_baseline();
        let w = self.host(host);
        w.counts.streaks.clear();
        if samples.is_empty() {
            // An older baseline (from when it was a control) is stale: its first
            // probes make a new one.
            w.baseline.clear();
            w.counts.last = None;
            return;
        }
        w.counts.answered_before = true;
        w.counts.last = samples.last().filter(|_| levels).map(for_rates);
        // Kept (and journaled) only where a signal is judged against it.
        w.baseline = if keep { samples } else { Vec::new() };
    }

    /// The kernel log's cursor to probe `host` with: where its log stood at its
    /// baseline (None: take one).
    pub fn cursor(&self, host: &str) -> Option<String> {
        let w = self.hosts.get(host)?;
        w.baseline
            .iter()
            .rev()
            .find_map(|b| b.kernel.as_ref().ok().map(|k| k.cursor.clone()))
            .filter(|c| !c.is_empty())
    }

    /// Take up what the journal kept of each host's watch (a resumed run goes on
    /// counting where the last controller stopped).
    pub fn restore(&mut self, known: &BTreeMap<String, HostWatch>) {
        self.hosts = known.clone();
    }

    /// What changed since `known` (what the journal has), to journal with the round.
    pub fn changes(&self, known: &BTreeMap<String, HostWatch>) -> Vec<Watched> {
        crate::rollout::watched::changes(&self.hosts, known)
    }

    /// Some signal is a level, whose rate reads the previous sample.
    fn has_levels(&self) -> bool {
        self.signals
            .iter()
            .any(|s| matches!(s.judge, Judge::Level { .. }))
    }

    fn needs_baseline(&self) -> bool {
        self.signals.iter().any(|s| s.baseline)
    }

    /// Judge one probe round: a verdict for each host of `judged`; `controls` are the
    /// untouched hosts probed in the same round, read for comparison only.
    pub fn round(
        &mut self,
        outcomes: &[(String, Outcome)],
        judged: &[String],
        controls: &[String],
    ) -> Vec<(String, Verdict)> {
        let c = self.read_controls(outcomes, controls);
        let mut out = Vec::new();
        for (host, outcome) in outcomes {
            if judged.contains(host) && !controls.contains(host) {
                let v = self.judge(host, outcome, &c);
                out.push((host.clone(), v));
            }
        }
        out
    }

    fn read_controls(&mut self, outcomes: &[(String, Outcome)], names: &[String]) -> Controls {
        let mut c = Controls::default();
        let mut prior = 0;
        let mut failed = Vec::new();
        for (host, outcome) in outcomes.iter().filter(|(h, _)| names.contains(h)) {
            let answered = self
                .hosts
                .get(host)
                .is_some_and(|w| w.counts.answered_before);
            prior += usize::from(answered);
            let report = match outcome {
                Outcome::Report(r) => r,
                Outcome::Missed { what, after } => {
                    if answered {
                        failed.push((host.clone(), missed_text(what, *after)));
                    }
                    continue;
                }
                Outcome::Failed { message } => {
                    if answered {
                        failed.push((host.clone(), message.clone()));
                    }
                    continue;
                }
            };
            if let Some(clock) = report.clock {
                c.clocks.insert(host.clone(), clock);
            }
            let Some(r) = self.read(host, report) else {
                continue;
            };
            for (s, found) in r.events {
                if found.is_ok() {
                    c.read.entry(s.name).or_default().push(host.clone());
                }
                for f in found.into_iter().flatten() {
                    c.events
                        .entry(s.name)
                        .or_default()
                        .entry(f.key)
                        .or_default()
                        .push(host.clone());
                }
            }
            for (s, level) in r.levels {
                if let Ok(Some((v, b))) = level {
                    c.rises
                        .entry(s.name)
                        .or_default()
                        .push((host.clone(), v - b));
                }
            }
        }
        if prior > 0 && failed.len() == prior {
            c.all_failed = Some(failed);
        }
        c
    }

    /// Read one report against the host's baseline, and keep it as the host's last.
    /// None while the host is still making its baseline (after a resume).
    fn read(&mut self, host: &str, report: &ProbeReport) -> Option<Reading> {
        let needs_baseline = self.needs_baseline();
        let levels = self.has_levels();
        let signals = self.signals.clone();
        let th = self.th.clone();
        let w = self.host(host);
        w.counts.answered_before = true;
        // Only a level's rate reads the previous sample: without one, none is kept (nor
        // journaled with every round).
        let prev = if levels {
            w.counts.last.replace(for_rates(report))
        } else {
            None
        };
        let making = needs_baseline && w.baseline.len() < 2;
        if making {
            w.baseline.push(report.clone());
        }
        let mut r = Reading {
            events: Vec::new(),
            levels: Vec::new(),
        };
        for s in signals {
            if s.baseline && making {
                continue;
            }
            match &s.judge {
                Judge::Outcome => {}
                Judge::Events { found, .. } => r.events.push((s, found(&w.baseline, report, &th))),
                Judge::Level { value, .. } => {
                    let now = match prev.as_ref() {
                        Some(p) => value(p, report),
                        None => Ok(None),
                    };
                    let base: Vec<f64> = w
                        .baseline
                        .windows(2)
                        .filter_map(|p| value(&p[0], &p[1]).ok().flatten())
                        .collect();
                    let level = now.map(|v| {
                        v.filter(|_| !base.is_empty())
                            .map(|v| (v, base.iter().sum::<f64>() / base.len() as f64))
                    });
                    r.levels.push((s, level));
                }
            }
        }
        (!making || r.events.iter().any(|(s, _)| !s.baseline)).then_some(r)
    }

    fn judge(&mut self, host: &str, outcome: &Outcome, c: &Controls) -> Verdict {
        let report = match outcome {
            Outcome::Report(r) => r,
            Outcome::Missed { what, after } => {
                let answered = self.host(host).counts.answered_before;
                let ev = Evidence::new("reachable").raw(if answered {
                    format!("{} (it answered before)", missed_text(what, *after))
                } else {
                    format!(
                        "{} (it never answered in this run)",
                        missed_text(what, *after)
                    )
                });
                let health = if answered {
                    Health::Hung
                } else {
                    Health::Unreachable
                };
                return self.unless_us(health, ev, c);
            }
            Outcome::Failed { message } => {
                let ev = Evidence::new("reachable").raw(message.clone());
                return self.unless_us(Health::Unreachable, ev, c);
            }
        };
        let mut bad = Vec::new();
        let mut unsure = Vec::new();
        let mut not_available = Vec::new();
        let th = self.th.clone();
        let reading = self.read(host, report);
        let w = self.host(host);
        bad.extend(check_evidence(&mut w.counts.check_fails, report));
        let Some(reading) = reading else {
            return verdict(bad, unsure, not_available);
        };
        for (s, found) in reading.events {
            let found = match found {
                Ok(f) => f,
                Err(why) => {
                    not_available.push(na(s.name, why));
                    continue;
                }
            };
            // One piece of evidence per key; where only the latest counts (a script's failed
            // runs), that one.
            let found: Vec<Found> = if matches!(
                s.judge,
                Judge::Events {
                    latest_only: true,
                    ..
                }
            ) {
                found.into_iter().last().into_iter().collect()
            } else {
                found
            };
            for f in found {
                let mut ev = Evidence {
                    signal: s.name.to_string(),
                    before: f.before.clone(),
                    after: f.after.clone(),
                    threshold: Some(f.threshold.clone()),
                    raw: Some(f.raw.clone()),
                    stderr: f.tail.clone(),
                    ..Default::default()
                }
                .at(f.at);
                if !s.controls {
                    bad.push(ev);
                    continue;
                }
                let also: Vec<String> = c
                    .events
                    .get(s.name)
                    .and_then(|k| k.get(&f.key))
                    .cloned()
                    .unwrap_or_default();
                // Within one round the hosts are read moments apart: a kernel line (it
                // carries its own time, unlike the counters) written after a control
                // was read cannot show there yet. While a control that could show it,
                // and does not, was read no later than the line, judge it on the next
                // probe (once), when the controls have had the chance to see it.
                let too_early = matches!(s.judge, Judge::Events { stamped: true, .. })
                    && f.at.is_some_and(|at| {
                        c.read
                            .get(s.name)
                            .into_iter()
                            .flatten()
                            .filter(|h| !also.contains(h))
                            .any(|h| c.clocks.get(h).is_some_and(|&seen| seen <= at))
                    });
                if too_early && w.counts.held.insert((s.name.to_string(), f.key.clone())) {
                    continue;
                }
                if also.is_empty() {
                    ev.control = Some(match c.read.get(s.name) {
                        Some(read) if !read.is_empty() => format!("none on {}", read.join(", ")),
                        _ => "no control host to compare with".to_string(),
                    });
                    bad.push(ev);
                } else {
                    ev.control = Some(format!(
                        "the same on {} (a fleet-wide event?)",
                        also.join(", ")
                    ));
                    unsure.push(ev);
                }
            }
        }
        let w = self.host(host);
        for (s, level) in reading.levels {
            let Judge::Level { floor, unit, .. } = &s.judge else {
                continue;
            };
            let streak = w.counts.streaks.entry(s.name.to_string()).or_default();
            let (v, b) = match level {
                Err(why) => {
                    not_available.push(na(s.name, why));
                    *streak = Streak::default();
                    continue;
                }
                Ok(None) => {
                    *streak = Streak::default();
                    continue;
                }
                Ok(Some(vb)) => vb,
            };
            let floor = floor(&th);
            let rise = floor / 2.0;
            let high = v >= floor && v - b >= rise;
            let rises = c.rises.get(s.name).cloned().unwrap_or_default();
            let control_rise = median(rises.iter().map(|(_, r)| *r).collect());
            let against = high && control_rise.is_none_or(|cr| (v - b) - cr >= rise);
            streak.high = if high { streak.high + 1 } else { 0 };
            streak.against = if against { streak.against + 1 } else { 0 };
            if streak.high < th.strikes {
                continue;
            }
            let control = match control_rise {
                None => "no control host to compare with".to_string(),
                Some(cr) => format!(
                    "median rise {cr:+.2} ({})",
                    rises
                        .iter()
                        .map(|(h, r)| format!("{h} {r:+.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let ev = Evidence::new(s.name)
                .change(
                    format!("{b:.2}"),
                    format!("{v:.2} {unit}"),
                    format!(
                        ">= {floor} and risen >= {rise} above its baseline and the controls' rise, {} probes in a row",
                        th.strikes
                    ),
                )
                .control(control)
                .raw(format!(
                    "{v:.2} {unit}, {:+.2} over its baseline, {} probes in a row",
                    v - b,
                    streak.high
                ))
                .at(report.clock);
            if streak.against >= th.strikes {
                bad.push(ev);
            } else {
                unsure.push(ev);
            }
        }
        verdict(bad, unsure, not_available)
    }

    /// A host that failed its probe is `health`, unless every control host that answered
    /// before failed in the same round: then the controller's own network is suspect.
    fn unless_us(&self, health: Health, ev: Evidence, c: &Controls) -> Verdict {
        match &c.all_failed {
            Some(failed) => {
                let list: Vec<String> = failed.iter().map(|(h, w)| format!("{h}: {w}")).collect();
                let ev = ev.control(format!(
                    "every control host failed at the same moment ({}): suspect the controller's own network",
                    list.join("; ")
                ));
                Verdict::bad(Health::Inconclusive, ev)
            }
            None => Verdict::bad(health, ev),
        }
    }
}

fn verdict(bad: Vec<Evidence>, unsure: Vec<Evidence>, not_available: Vec<Evidence>) -> Verdict {
    let (health, evidence) = if !bad.is_empty() {
        (Health::Degraded, bad)
    } else if !unsure.is_empty() {
        (Health::Inconclusive, unsure)
    } else {
        (Health::Healthy, Vec::new())
    };
    Verdict {
        health,
        evidence,
        not_available,
    }
}

fn na(signal: &str, why: String) -> Evidence {
    Evidence::new(signal).raw(format!("not available on this host: {why}"))
}

fn missed_text(what: &str, after: Duration) -> String {
    format!("{what} gave no answer within {}", fmt_dur(after))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A custom check that failed `CHECK_STRIKES` probes in a row.
fn check_evidence(fails: &mut BTreeMap<String, u32>, report: &ProbeReport) -> Vec<Evidence> {
    let mut out = Vec::new();
    for c in &report.checks {
        let n = fails.entry(c.name.clone()).or_insert(0);
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
                .raw(format!("{what}, {n} probes in a row"))
                .at(report.clock);
            if !c.output.is_empty() {
                ev.raw = Some(format!("{what}, {n} probes in a row: {}", c.output));
            }
            ev.threshold = Some(format!("{CHECK_STRIKES} failures in a row"));
            out.push(ev);
        }
    }
    out
}
