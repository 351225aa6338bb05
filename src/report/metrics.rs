//! `--metrics-file PATH`: the runs of a command as node_exporter's textfile collector
//! reads them (Prometheus text format), rewritten atomically — a temporary file in the
//! same directory, renamed over PATH — whenever what it says changes, which is after
//! every event of the run. A sink of the reporter; writes that one file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::diag::InputError;
use crate::rollout::{exit_code, HostState, RunState};

use super::{Notes, Sink};

/// What the file says about one run, read off its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub run: String,
    pub rollout: String,
    /// `apply`, `purge` or `purge-path`.
    pub kind: &'static str,
    /// `status`'s word for where it stands (`running`, `paused`, `done`…).
    pub status: &'static str,
    pub hosts: [(HostState, usize); HostState::ALL.len()],
    /// Hosts judged unhealthy, by the signal of each piece of evidence of their first
    /// bad verdict (the one that counted against `max_unhealthy`).
    pub verdicts: BTreeMap<String, usize>,
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds and the exit code, once the run has ended.
    pub end: Option<(f64, i32)>,
}

impl Snapshot {
    pub fn of(s: &RunState) -> Option<Snapshot> {
        let plan = s.plan.as_ref()?;
        let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, v) in &s.unhealthy {
            let mut signals: Vec<&str> = v.evidence.iter().map(|e| e.signal.as_str()).collect();
            signals.sort_unstable();
            signals.dedup();
            for sig in signals {
                *verdicts.entry(sig.to_string()).or_default() += 1;
            }
        }
        Some(Snapshot {
            run: plan.run.clone(),
            rollout: plan.name.clone(),
            kind: match plan.kind() {
                crate::rollout::RunKind::Apply => "apply",
                crate::rollout::RunKind::Purge => "purge",
                crate::rollout::RunKind::PurgePath => "purge-path",
            },
            status: s.status_name(),
            hosts: HostState::ALL.map(|st| (st, s.hosts.iter().filter(|h| h.state == st).count())),
            verdicts,
            start: s.started as f64 / 1000.0,
            end: s
                .ended
                .filter(|_| s.is_ended())
                .map(|t| (t as f64 / 1000.0, exit_code(s))),
        })
    }
}

/// A label value, escaped as the text format wants (`\\`, `\"`, `\n`).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The file's text for these runs (each series once per run). Pure.
pub fn render(runs: &[Snapshot]) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, lines: &mut dyn Iterator<Item = String>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for l in lines {
                let _ = writeln!(out, "{name}{l}");
            }
        };
    let id = |r: &Snapshot| format!("run=\"{}\",rollout=\"{}\"", esc(&r.run), esc(&r.rollout));
    let states: Vec<&str> = HostState::ALL.iter().map(|s| s.as_str()).collect();
    family(
        "wavectl_hosts",
        "gauge",
        &format!(
            "Hosts of a wavectl run in each state ({}).",
            states.join(", ")
        ),
        &mut runs.iter().flat_map(|r| {
            r.hosts.iter().map(move |(st, n)| {
                format!("{{{},state=\"{}\"}} {n}", id(r), HostState::as_str(*st))
            })
        }),
    );
    family(
        "wavectl_verdicts_total",
        "counter",
        "Hosts a wavectl run judged unhealthy, by the signal of the evidence against them.",
        &mut runs.iter().flat_map(|r| {
            r.verdicts
                .iter()
                .map(move |(sig, n)| format!("{{{},signal=\"{}\"}} {n}", id(r), esc(sig)))
        }),
    );
    family(
        "wavectl_run_info",
        "gauge",
        "A wavectl run: its kind (apply, purge, purge-path) and where it stands (running, paused, done, rolled-back...).",
        &mut runs
            .iter()
            .map(|r| format!("{{{},kind=\"{}\",status=\"{}\"}} 1", id(r), r.kind, r.status)),
    );
    family(
        "wavectl_run_start_timestamp_seconds",
        "gauge",
        "When a wavectl run began, in Unix seconds.",
        &mut runs.iter().map(|r| format!("{{{}}} {:.3}", id(r), r.start)),
    );
    family(
        "wavectl_run_end_timestamp_seconds",
        "gauge",
        "When a wavectl run ended, in Unix seconds (absent while it runs).",
        &mut runs
            .iter()
            .filter_map(|r| Some(format!("{{{}}} {:.3}", id(r), r.end?.0))),
    );
    family(
        "wavectl_run_exit_code",
        "gauge",
        "The exit code a wavectl run ended with (0 done, 1 rolled back or paused, 2 bad input, 3 aborted, 4 incomplete, 5 refused; absent while it runs).",
        &mut runs
            .iter()
            .filter_map(|r| Some(format!("{{{}}} {}", id(r), r.end?.1))),
    );
    out
}

/// The metrics file of one command: every run it works on, rewritten when it changes.
pub struct MetricsFile {
    path: PathBuf,
    runs: Vec<Snapshot>,
    written: String,
    notes: Option<Notes>,
    /// A write failed and was said (said once).
    failed: bool,
}

impl MetricsFile {
    /// Check that `path` can be written (its directory exists and takes a new file)
    /// before anything is done: a bad `--metrics-file` is exit 2.
    pub fn open(path: &Path) -> Result<MetricsFile, InputError> {
        let bad = |why: String| {
            InputError::new(format!("--metrics-file {}: {why}", path.display())).help(
                "give a file in an existing directory this user can write (node_exporter's \
                 --collector.textfile.directory, with a name ending in .prom)",
            )
        };
        if path.is_dir() {
            return Err(bad("is a directory".into()));
        }
        let dir = parent(path);
        tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| bad(format!("cannot create a file in {}: {e}", dir.display())))?;
        Ok(MetricsFile {
            path: path.to_path_buf(),
            runs: Vec::new(),
            written: String::new(),
            notes: None,
            failed: false,
        })
    }

    /// Say a failed write here (once).
    pub fn with_notes(mut self, notes: Notes) -> MetricsFile {
        self.notes = Some(notes);
        self
    }

    fn write(&mut self) {
        let text = render(&self.runs);
        if text == self.written {
            return;
        }
        match write_atomically(&self.path, text.as_bytes()) {
            Ok(()) => self.written = text,
            Err(e) if !self.failed => {
                self.failed = true;
                if let Some(n) = &self.notes {
                    n.note(format!(
                        "warning: cannot write the metrics file {}: {e} (the run goes on; tried again at every event)",
                        self.path.display()
                    ));
                }
            }
            Err(_) => {}
        }
    }
}

impl Sink for MetricsFile {
    fn state(&mut self, state: &RunState) {
        let Some(snap) = Snapshot::of(state) else {
            return;
        };
        match self.runs.iter_mut().find(|r| r.run == snap.run) {
            Some(r) => *r = snap,
            None => self.runs.push(snap),
        }
        self.write();
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A temporary file beside `path` (readable by all: node_exporter runs as its own user),
/// renamed over it: a reader sees the old file or the new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .prefix(".wavectl-metrics-")
        .tempfile_in(parent(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(run: &str, end: Option<(f64, i32)>) -> Snapshot {
        let mut hosts = HostState::ALL.map(|s| (s, 0));
        hosts[5].1 = 3;
        hosts[0].1 = 1;
        Snapshot {
            run: run.into(),
            rollout: "raid \"x\"".into(),
            kind: "apply",
            status: if end.is_some() {
                "rolled-back"
            } else {
                "running"
            },
            hosts,
            verdicts: BTreeMap::from([("script".to_string(), 1)]),
            start: 1764680000.123,
            end,
        }
    }

    #[test]
    fn the_text_format_with_help_type_and_escaped_labels() {
        let text = render(&[snap("r1", Some((1764680010.5, 1))), snap("r2", None)]);
        let expected = [
            "# HELP wavectl_hosts Hosts of a wavectl run in each state (untouched, unknown, installed, confirmed, partial, clean, pending, reverted, superseded).",
            "# TYPE wavectl_hosts gauge",
            "wavectl_hosts{run=\"r1\",rollout=\"raid \\\"x\\\"\",state=\"untouched\"} 1",
            "wavectl_hosts{run=\"r1\",rollout=\"raid \\\"x\\\"\",state=\"clean\"} 3",
            "# TYPE wavectl_verdicts_total counter",
            "wavectl_verdicts_total{run=\"r1\",rollout=\"raid \\\"x\\\"\",signal=\"script\"} 1",
            "wavectl_run_info{run=\"r2\",rollout=\"raid \\\"x\\\"\",kind=\"apply\",status=\"running\"} 1",
            "wavectl_run_start_timestamp_seconds{run=\"r1\",rollout=\"raid \\\"x\\\"\"} 1764680000.123",
            "wavectl_run_end_timestamp_seconds{run=\"r1\",rollout=\"raid \\\"x\\\"\"} 1764680010.500",
            "wavectl_run_exit_code{run=\"r1\",rollout=\"raid \\\"x\\\"\"} 1",
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // A run that has not ended has no end and no exit code; 9 states per run.
        assert!(!text.contains("wavectl_run_exit_code{run=\"r2\""));
        assert_eq!(text.matches("wavectl_hosts{").count(), 18);
    }

    #[test]
    fn written_atomically_and_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wavectl.prom");
        let mut m = MetricsFile::open(&path).unwrap();
        m.runs.push(snap("r1", None));
        m.write();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, render(&m.runs));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["wavectl.prom"]);
    }

    #[test]
    fn a_file_that_cannot_be_written_is_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let e = MetricsFile::open(&dir.path().join("no/such/dir/x.prom"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("cannot create a file in"), "{e}");
        let e = MetricsFile::open(dir.path()).err().unwrap();
        assert!(e.to_string().ends_with("is a directory\n  help: give a file in an existing directory this user can write (node_exporter's --collector.textfile.directory, with a name ending in .prom)"), "{e}");
    }
}
