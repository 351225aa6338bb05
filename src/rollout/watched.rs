//! PURE: what the health watch (`verdict::Watch`) remembers of each host between probe
//! rounds — its baseline, its last reading, its streaks — kept in the journal beside the
//! rounds (`Event::Round`, `Event::BaselineDone`) and folded into the run's state, so a
//! resumed bake goes on counting where the dead controller stopped instead of starting
//! its strikes over.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::probe_report::ProbeReport;

/// Consecutive probes a level was out of line: at all, and against the controls too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub high: u32,
    pub against: u32,
}

/// What the watch counts of one host from round to round (everything it remembers but
/// the baseline, which changes only when one is taken).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// The host answered a login and a command at least once in this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered_before: bool,
    /// Its latest report, as far as a rate needs it ([`for_rates`]): the previous sample
    /// of the next rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ProbeReport>,
    /// Per level signal: the probes in a row it was out of line.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streaks: BTreeMap<String, Streak>,
    /// Per custom check: the probes in a row it failed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub check_fails: BTreeMap<String, u32>,
    /// Critical events held back one probe because every control was read before the
    /// event happened (signal, key): a control cannot have shown it yet.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub held: BTreeSet<(String, String)>,
}

/// One host's side of the watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostWatch {
    /// The samples taken before its wave (or, without them, its first probes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<ProbeReport>,
    #[serde(flatten)]
    pub counts: Counts,
}

/// What changed of one host's watch in a round (or a baseline), as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    pub host: String,
    /// Its new baseline, when this event took or changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Vec<ProbeReport>>,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The hosts whose watch differs from what the journal has (`known`), as records for it.
pub fn changes(
    now: &BTreeMap<String, HostWatch>,
    known: &BTreeMap<String, HostWatch>,
) -> Vec<Watched> {
    now.iter()
        .filter_map(|(host, w)| {
            let k = known.get(host);
            if k == Some(w) {
                return None;
            }
            let baseline = match k {
                Some(k) if k.baseline == w.baseline => None,
                None if w.baseline.is_empty() => None,
                _ => Some(w.baseline.clone()),
            };
            Some(Watched {
                host: host.clone(),
                baseline,
                counts: w.counts.clone(),
            })
        })
        .collect()
}

/// Fold journaled changes into what the run knows of its hosts' watch.
pub fn fold(known: &mut BTreeMap<String, HostWatch>, changed: &[Watched]) {
    for c in changed {
        let w = known.entry(c.host.clone()).or_default();
        w.counts = c.counts.clone();
        if let Some(b) = &c.baseline {
            w.baseline = b.clone();
        }
    }
}

/// The part of a report a rate between two probes reads (the `Level` signals' previous
/// sample): the host's clocks and counters, without its runs, checks, kernel lines and
/// units, so the journal keeps a few numbers per host per round. A level signal that
/// reads another field of its previous sample must keep that field here.
pub fn for_rates(r: &ProbeReport) -> ProbeReport {
    ProbeReport {
        uptime: r.uptime,
        clock: r.clock,
        cpus: r.cpus,
        load1: r.load1.clone(),
        procs_blocked: r.procs_blocked.clone(),
        oom_kill: r.oom_kill.clone(),
        pressure: r.pressure.clone(),
        ..ProbeReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{replay, Event, Record};

    fn reading(load: f64) -> ProbeReport {
        ProbeReport {
            uptime: Some(100.0),
            cpus: Some(2),
            load1: Ok(load),
            runs: vec![crate::rollout::probe_report::RunRecord {
                start: 1,
                end: 2,
                exit: 0,
                stderr: None,
            }],
            ..ProbeReport::default()
        }
    }

    fn watch(streak: u32, baseline: Vec<ProbeReport>) -> HostWatch {
        HostWatch {
            baseline,
            counts: Counts {
                answered_before: true,
                last: Some(for_rates(&reading(3.0))),
                streaks: [(
                    "load".to_string(),
                    Streak {
                        high: streak,
                        against: streak,
                    },
                )]
                .into(),
                check_fails: [("app".to_string(), 1)].into(),
                held: [("kernel".to_string(), "oops".to_string())].into(),
            },
        }
    }

    #[test]
    fn changes_name_only_what_moved_and_fold_takes_them_up() {
        let base = vec![reading(0.1), reading(0.2)];
        let mut now = BTreeMap::new();
        now.insert("a".to_string(), watch(1, base.clone()));
        now.insert("b".to_string(), watch(0, Vec::new()));
        let mut known = BTreeMap::new();
        // Nothing known yet: both, a with its baseline, b without one to give.
        let first = changes(&now, &known);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].baseline.as_ref(), Some(&base));
        assert_eq!(first[1].baseline, None);
        fold(&mut known, &first);
        assert_eq!(known, now);
        assert!(changes(&now, &known).is_empty());
        // a's streak grows: a alone, without its unchanged baseline.
        now.get_mut("a")
            .unwrap()
            .counts
            .streaks
            .get_mut("load")
            .unwrap()
            .high = 2;
        let next = changes(&now, &known);
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].host.as_str(), next[0].baseline.as_ref()),
            ("a", None)
        );
        fold(&mut known, &next);
        assert_eq!(known, now);
        // A new (empty) baseline clears the old one.
        now.get_mut("a").unwrap().baseline.clear();
        let cleared = changes(&now, &known);
        assert_eq!(cleared[0].baseline, Some(Vec::new()));
        fold(&mut known, &cleared);
        assert_eq!(known, now);
    }

    #[test]
    fn the_last_reading_keeps_what_a_rate_reads_and_drops_the_runs() {
        let r = reading(3.0);
        let kept = for_rates(&r);
        assert_eq!(
            (kept.uptime, kept.cpus, kept.load1),
            (r.uptime, r.cpus, r.load1)
        );
        assert!(kept.runs.is_empty());
    }

    #[test]
    fn rounds_journal_the_counts_and_older_rounds_without_them_still_replay() {
        let changed = vec![Watched {
            host: "a".into(),
            baseline: Some(vec![reading(0.1), reading(0.2)]),
            counts: watch(2, Vec::new()).counts,
        }];
        let rec = Record::new(
            5,
            Event::Round {
                wave: 1,
                verdicts: vec![],
                watch: changed.clone(),
            },
        );
        let line = serde_json::to_string(&rec).unwrap();
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        let s = replay([&back]);
        assert_eq!(s.watch["a"].counts.streaks["load"].high, 2);
        assert_eq!(s.watch["a"].baseline.len(), 2);
        // A round written before the counts were journaled.
        let old: Record =
            serde_json::from_str(r#"{"v":1,"at":5,"type":"round","wave":1}"#).unwrap();
        assert_eq!(
            old.event,
            Event::Round {
                wave: 1,
                verdicts: vec![],
                watch: vec![]
            }
        );
        assert!(replay([&old]).watch.is_empty());
        let old: Record =
            serde_json::from_str(r#"{"v":1,"at":5,"type":"baseline_done","wave":1}"#).unwrap();
        assert!(matches!(old.event, Event::BaselineDone { ref watch, .. } if watch.is_empty()));
    }
}
