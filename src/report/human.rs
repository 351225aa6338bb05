//! The human display: a progress bar per wave and phase on a terminal (plain lines
//! elsewhere), verdicts as they come, and a closing summary.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{count, Event, Holding, Phase};
use crate::rollout::verdict::Health;

/// What a phase did so far, for its closing line.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    rounds: u32,
}

/// Human reporter state: the live bars and tallies, by (wave, phase).
pub struct Human {
    multi: MultiProgress,
    bars: Mutex<HashMap<(usize, Phase), ProgressBar>>,
    tallies: Mutex<HashMap<(usize, Phase), Tally>>,
    tty: bool,
    verbose: bool,
}

impl Human {
    pub fn new(verbose: bool) -> Human {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Human {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            tallies: Mutex::new(HashMap::new()),
            tty,
            verbose,
        }
    }

    /// A line above the bars (or on stdout without a terminal).
    fn line(&self, text: &str) {
        if self.tty {
            let _ = self.multi.println(text);
        } else {
            crate::outln!("{text}");
        }
    }

    pub fn show(&self, event: &Event) {
        match event {
            Event::RunStarted {
                run,
                rollout,
                hosts,
                waves,
                journal,
            } => {
                self.line(&format!(
                    "run {run}: rollout {rollout}, {} in {} (journal {journal})",
                    count(*hosts, "host"),
                    count(*waves, "wave")
                ));
            }
            Event::WaveStarted { wave, waves, hosts } => {
                self.line(&format!(
                    "== wave {wave}/{waves}: {}: {}",
                    count(hosts.len(), "host"),
                    self.hosts(hosts)
                ));
            }
            Event::PhaseStarted {
                wave,
                phase,
                hosts,
                seconds,
            } => {
                // Added to the MultiProgress before any draw, or the draw goes around it.
                let bar = self
                    .multi
                    .add(ProgressBar::new(seconds.unwrap_or(*hosts as u64)));
                let label = if *wave == 0 {
                    phase.name().to_string()
                } else {
                    format!("wave {wave} {}", phase.name())
                };
                let unit = if seconds.is_some() { "s" } else { "hosts" };
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(label);
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert((*wave, *phase), bar);
                }
                if !self.tty && self.verbose {
                    crate::outln!("-- wave {wave} {}", phase.name());
                }
            }
            Event::HostStep {
                wave,
                phase,
                host,
                ok,
                detail,
            } => {
                self.with_bar(*wave, *phase, |b| b.inc(1));
                self.tally(
                    *wave,
                    *phase,
                    |t| if *ok { t.ok += 1 } else { t.failed += 1 },
                );
                if !ok || self.verbose {
                    let mark = if *ok { "ok" } else { "FAILED" };
                    self.line(&format!("   {:<8} {host}: {mark} {detail}", phase.name()));
                }
            }
            Event::BakeTick {
                wave,
                elapsed,
                round,
                ..
            } => {
                self.with_bar(*wave, Phase::Bake, |b| {
                    b.set_position(*elapsed);
                    b.set_message(format!("probe round {round}"));
                });
                self.tally(*wave, Phase::Bake, |t| t.rounds = *round);
            }
            Event::Verdict { host, verdict, .. } => {
                let mut text = format!("   verdict  {host}: {}", verdict.health);
                for ev in &verdict.evidence {
                    text.push_str(&format!("\n            {ev}"));
                }
                if verdict.health != Health::Healthy || self.verbose {
                    self.line(&text);
                }
            }
            Event::PhaseDone { wave, phase } => {
                let elapsed = self
                    .bars
                    .lock()
                    .ok()
                    .and_then(|mut bars| bars.remove(&(*wave, *phase)))
                    .map(|b| {
                        b.finish_and_clear();
                        self.multi.remove(&b);
                        b.elapsed()
                    });
                let tally = self
                    .tallies
                    .lock()
                    .ok()
                    .and_then(|mut t| t.remove(&(*wave, *phase)))
                    .unwrap_or_default();
                let took =
                    elapsed.map_or(String::new(), |d| format!(" in {}", crate::units::duration(d)));
                let text = match phase {
                    Phase::Bake => {
                        format!("   {:<8} {} probe rounds{took}", phase.name(), tally.rounds)
                    }
                    _ if tally.failed == 0 => format!(
                        "   {:<8} {} ok{took}",
                        phase.name(),
                        count(tally.ok as usize, "host")
                    ),
                    _ => format!(
                        "   {:<8} {} ok, {} failed{took}",
                        phase.name(),
                        tally.ok,
                        tally.failed
                    ),
                };
                self.line(&text);
            }
            Event::RollbackStarted { reason, hosts } => {
                self.line(&format!(
                    "!! rolling back {}: {reason}",
                    count(hosts.len(), "host")
                ));
            }
            Event::Note { message } => self.line(message),
            Event::Preflight {
                checked,
                logins,
                offline,
                skipped,
            } => {
                let mut out = format!(
                    "preflight: {} of {} answered (SSH banner), {} logged in",
                    checked - offline.len(),
                    count(*checked, "target"),
                    logins
                );
                if !offline.is_empty() {
                    out.push_str(&format!(
                        "; {} before the run{}",
                        count(offline.len(), "target") + " offline",
                        if *skipped { ", skipped" } else { "" }
                    ));
                }
                for o in offline {
                    out.push_str(&format!(
                        "\n  {}: {}: {}",
                        if *skipped { "SKIPPED" } else { "OFFLINE" },
                        o.host,
                        o.reason
                    ));
                }
                self.line(&out);
            }
            Event::Gated {
                wave,
                promote,
                until,
            } => self.line(&format!(
                "|| wave {wave} passed its bake: waiting for `{promote}` (until {until}, then it rolls back; its hosts are still probed)"
            )),
            Event::Promoted { wave, by } => {
                self.line(&format!("|| promoted past wave {wave} ({by})"))
            }
            Event::Frozen {
                wave,
                rollout,
                by,
                reason,
                until,
                unfreeze,
            } => self.line(&format!(
                "|| rollout {rollout} is frozen by {by}: {reason}: waiting after wave {wave} for `{unfreeze}`{} (its hosts are still probed)",
                until.as_ref().map_or(String::new(), |u| format!(" or {u}"))
            )),
            Event::Thawed { wave } => {
                self.line(&format!("|| the freeze is lifted: going on after wave {wave}"))
            }
            Event::HostHolds(h) => self.line(&holding(h)),
            Event::ProbeDone {
                hosts,
                holds,
                exit_code,
            } => {
                let parts: Vec<String> = holds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                self.line(&format!(
                    "probed {}: {} (exit {exit_code})",
                    count(*hosts, "host"),
                    parts.join(", ")
                ));
            }
            Event::PromoteSent {
                run,
                wave,
                next,
                driver,
                deadline,
                ..
            } => match driver {
                Some(who) => crate::outln!(
                    "promoted run {run} past the gate after wave {wave}: its controller ({who}) goes on to {next}"
                ),
                None => crate::outln!(
                    "promoted run {run} past the gate after wave {wave}; its controller is gone: `wavectl resume {run}` goes on to {next} (before {deadline}, when the gate would roll it back)"
                ),
            },
            Event::FreezeSet {
                rollout,
                until,
                scope,
                ..
            } => crate::outln!(
                "froze {scope}: `apply` is refused (exit 5) and a running apply waits at its next wave boundary, {}; purge, rollback and reconcile are not blocked",
                match until {
                    Some(u) => format!("until {u}"),
                    None => format!(
                        "until `wavectl unfreeze {}`",
                        rollout.as_deref().unwrap_or("--all")
                    ),
                }
            ),
            Event::Unfrozen { was, scope, .. } => {
                crate::outln!("lifted the freeze of {scope} (it was {was})")
            }
            Event::AbortSent { run, who, .. } => crate::outln!(
                "asked run {run} ({who}) to stop: the actions in flight finish, then it rolls back"
            ),
            Event::Approved {
                by,
                plan,
                hash,
                signatures,
                needed,
                unverified,
                ..
            } => {
                crate::outln!(
                    "{by} approved {plan} ({hash}); it holds {} of the {needed} needed",
                    count(*signatures, "signature")
                );
                if let Some(why) = unverified {
                    crate::outln!("  not verified here ({why}): `apply` checks every signature against the plan's allowed signers");
                }
            }
            Event::Report { markdown, .. } => crate::out!("{markdown}"),
            Event::Error { message, .. } => eprintln!("error: {message}"),
            Event::Summary(s) => {
                if let Ok(mut bars) = self.bars.lock() {
                    for (_, b) in bars.drain() {
                        b.finish_and_clear();
                        self.multi.remove(&b);
                    }
                }
                let mut out = format!("\nrun {}: {}\n", s.run, s.outcome);
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        self.hosts(v)
                    }
                };
                if !s.confirmed.is_empty() {
                    out.push_str(&format!("  confirmed:   {}\n", list(&s.confirmed)));
                }
                if !s.clean.is_empty() {
                    out.push_str(&format!("  rolled back: {}\n", list(&s.clean)));
                }
                if !s.untouched.is_empty() {
                    out.push_str(&format!("  untouched:   {}\n", list(&s.untouched)));
                }
                for (host, v) in &s.unhealthy {
                    out.push_str(&format!("  unhealthy:   {host} ({})\n", v.health));
                    for ev in &v.evidence {
                        out.push_str(&format!("               {ev}\n"));
                    }
                }
                for (host, what) in &s.details {
                    out.push_str(&format!("  {host}: {what}\n"));
                }
                for (host, why) in &s.unconfirmed {
                    out.push_str(&format!("  UNCONFIRMED: {host}: {why}\n"));
                }
                for (host, why) in &s.superseded {
                    out.push_str(&format!("  SUPERSEDED:  {host}: {why}\n"));
                }
                for (host, why) in &s.pending {
                    out.push_str(&format!("  PENDING:     {host}: {why}\n"));
                }
                for (host, why) in &s.skipped {
                    out.push_str(&format!(
                        "  SKIPPED:     {host}: offline before the run: {why}\n"
                    ));
                }
                out.push_str(&format!("exit {}: {}", s.exit_code, s.meaning));
                self.line(&out);
            }
        }
    }

    /// A host list: compressed into ranges, every name under `-v`.
    fn hosts(&self, names: &[String]) -> String {
        if self.verbose {
            names.join(", ")
        } else {
            super::compact(names)
        }
    }

    fn tally(&self, wave: usize, phase: Phase, f: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = self.tallies.lock() {
            f(t.entry((wave, phase)).or_default());
        }
    }

    fn with_bar(&self, wave: usize, phase: Phase, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(b) = bars.get(&(wave, phase)) {
                f(b);
            }
        }
    }
}

/// One target of `plan --probe`, in a line: what it holds at the install path.
fn holding(h: &Holding) -> String {
    let short = |s: &str| s.chars().take(12).collect::<String>();
    // What is at the path, as far as the preview saw it.
    let mut what = Vec::new();
    if let Some(s) = &h.sha256 {
        what.push(format!("sha256 {}…", short(s)));
    }
    if let Some(l) = &h.link {
        what.push(format!("a symlink to {l}"));
    }
    if let (Some(o), Some(m)) = (&h.owner, &h.mode) {
        what.push(format!("{o} {m}"));
    }
    if let Some(p) = &h.package {
        what.push(format!("package {p}"));
    }
    let what = what.join(", ");
    let text = match h.holds {
        "nothing" => format!("nothing at {}", h.install_path),
        "version" => format!(
            "run {}'s version ({}), {}",
            h.run.as_deref().unwrap_or("?"),
            h.state.unwrap_or("?"),
            if h.same == Some(true) {
                "the same script".to_string()
            } else {
                format!("another script: {what}")
            }
        ),
        "same-script" => format!("the same script already, not installed by wavectl: {what}"),
        "foreign" => format!("a file wavectl did not install: {what}"),
        "refused" if what.is_empty() => format!(
            "an install would be refused: {}",
            h.reason.as_deref().unwrap_or("")
        ),
        "refused" => format!(
            "an install would be refused: {} ({what})",
            h.reason.as_deref().unwrap_or("")
        ),
        "not-asked" => format!("not asked: {}", h.reason.as_deref().unwrap_or("")),
        other => format!("{other}: {}", h.reason.as_deref().unwrap_or("")),
    };
    format!("{}: {text}", h.host)
}
