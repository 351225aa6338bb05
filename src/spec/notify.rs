//! `[notify]`: a command run on the controller for each event of the listed kinds (the
//! event's JSON on stdin). Its kinds, and the checks at load. Pure; `report::notify`
//! runs the hooks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limits::DurationKey;
use super::raw::{RawNotify, S};
use super::resolve::{at, duration};
use super::source::SourceFile;
use crate::diag::InputError;
use crate::inventory::{shown, Bad};

/// A kind of event a hook can be run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An apply began (`run_started`).
    Started,
    /// A wave began (`wave_started`).
    Wave,
    /// A host's verdict turned bad (a `verdict` event that is not healthy).
    Unhealthy,
    /// The removal from every host that may hold the script began (`rollback_started`).
    RollingBack,
    /// The run waits at a gate for `wavectl promote` (`gated`).
    Gated,
    // The run ended (`summary`), by its status:
    Done,
    Paused,
    RolledBack,
    Aborted,
    /// A host refused the run for a reason of ours (exit 2).
    Refused,
    /// Some hosts are still pending (exit 4).
    Incomplete,
    /// Healthy, but some hosts could not be confirmed.
    Unconfirmed,
    /// `reconcile` finished the run.
    Reconciled,
    /// Any end (every `summary`).
    Ended,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::Started,
        EventKind::Wave,
        EventKind::Unhealthy,
        EventKind::RollingBack,
        EventKind::Gated,
        EventKind::Done,
        EventKind::Paused,
        EventKind::RolledBack,
        EventKind::Aborted,
        EventKind::Refused,
        EventKind::Incomplete,
        EventKind::Unconfirmed,
        EventKind::Reconciled,
        EventKind::Ended,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Wave => "wave",
            EventKind::Unhealthy => "unhealthy",
            EventKind::RollingBack => "rolling-back",
            EventKind::Gated => "gated",
            EventKind::Done => "done",
            EventKind::Paused => "paused",
            EventKind::RolledBack => "rolled-back",
            EventKind::Aborted => "aborted",
            EventKind::Refused => "refused",
            EventKind::Incomplete => "incomplete",
            EventKind::Unconfirmed => "unconfirmed",
            EventKind::Reconciled => "reconciled",
            EventKind::Ended => "ended",
        }
    }

    pub fn named(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The end kind of a run's closing status (`summary.status`), if it is one.
    pub fn of_status(status: &str) -> Option<EventKind> {
        EventKind::named(status).filter(|k| {
            !matches!(
                k,
                EventKind::Started
                    | EventKind::Wave
                    | EventKind::Unhealthy
                    | EventKind::RollingBack
                    | EventKind::Gated
                    | EventKind::Ended
            )
        })
    }
}

/// `[notify]`, resolved: what `report::notify` runs, also kept beside a run's journal
/// (so `resume`, `rollback` and `reconcile` notify the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// Run by `/bin/sh -c` on the controller, in `dir`.
    pub command: String,
    pub events: Vec<EventKind>,
    /// A hook still running after this is killed, with its whole process group.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// The spec's directory (absolute): paths in `command` are relative to it, as every
    /// path of a spec is.
    pub dir: PathBuf,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// 1s..=5m, default 30s: a hook is for telling someone, not for work.
pub(crate) const TIMEOUT: DurationKey = DurationKey {
    key: "notify.timeout",
    min: Duration::from_secs(1),
    max: Duration::from_secs(5 * 60),
    what: "a notification hook still running after this is killed (it never holds the run)",
};
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn kinds() -> String {
    EventKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn resolve_notify(
    src: &SourceFile,
    dir: &Path,
    raw: &S<RawNotify>,
) -> Result<Notify, InputError> {
    let n = raw.get_ref();
    let command = n.command.as_ref().ok_or_else(|| {
        src.err(
            raw.span(),
            "missing `notify.command`",
            "add a line like command = \"/usr/local/bin/page-oncall\" (run by /bin/sh -c on the \
             controller, the event's JSON on its stdin)",
        )
    })?;
    let text = command.get_ref();
    if text.trim().is_empty() {
        return Err(src.err(
            command.span(),
            "`notify.command` is empty",
            "write the command to run, like \"/usr/local/bin/page-oncall\"",
        ));
    }
    if text.contains('\0') {
        return Err(src.err(
            command.span(),
            format!("`notify.command` {} contains a NUL character", shown(text)),
            "remove it",
        ));
    }
    let list = n.events.as_ref().ok_or_else(|| {
        src.err(
            raw.span(),
            "missing `notify.events`",
            format!(
                "list the kinds of event to run the command for, like events = [\"paused\", \
                 \"rolled-back\", \"done\"]; the kinds are: {}",
                kinds()
            ),
        )
    })?;
    if list.get_ref().is_empty() {
        return Err(src.err(
            list.span(),
            "`notify.events` is empty",
            format!(
                "list at least one kind (or remove [notify]); the kinds are: {}",
                kinds()
            ),
        ));
    }
    let mut events: Vec<EventKind> = Vec::new();
    for e in list.get_ref() {
        let kind = event_kind(e.get_ref()).map_err(at(src, e.span()))?;
        if events.contains(&kind) {
            return Err(src.err(
                e.span(),
                format!("event kind `{}` is listed twice", kind.name()),
                "remove the duplicate",
            ));
        }
        events.push(kind);
    }
    Ok(Notify {
        command: text.clone(),
        events,
        timeout: duration(src, n.timeout.as_ref(), &TIMEOUT, DEFAULT_TIMEOUT)?,
        dir: super::resolve::absolute(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }),
    })
}

fn event_kind(name: &str) -> Result<EventKind, Bad> {
    EventKind::named(name).ok_or_else(|| {
        Bad::new(
            format!("unknown event kind {}", shown(name)),
            format!("the kinds are: {}", kinds()),
        )
    })
}
