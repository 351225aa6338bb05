//! `[activation]`: what runs the script on a host, kind by kind, and each kind's schedule
//! rule. Pure. A new kind is a variant here (its word, its schedule rule) and its host
//! side in `remote/scripts/activation.sh`; everything else follows from these.

use super::raw::{RawActivation, S};
use super::resolve::{at, default};
use super::source::SourceFile;
use super::Activation;
use crate::diag::InputError;
use crate::inventory::{shown, Bad};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationKind {
    Cron,
    SystemdTimer,
    None,
}

impl ActivationKind {
    pub const ALL: [ActivationKind; 3] = [
        ActivationKind::Cron,
        ActivationKind::SystemdTimer,
        ActivationKind::None,
    ];

    /// Its one spelling: in the spec, on the host (the install's argument, the
    /// manifest), in reports (serde's kebab-case is the same words: a test checks).
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationKind::Cron => "cron",
            ActivationKind::SystemdTimer => "systemd-timer",
            ActivationKind::None => "none",
        }
    }

    /// The kind a word names (as [`as_str`](Self::as_str) spells it).
    pub fn parse(word: &str) -> Option<ActivationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a kind's `schedule` must be.
pub(crate) struct Schedule {
    /// A line the help offers when it is missing.
    pub example: &'static str,
    /// Its check (the value is then kept trimmed).
    pub check: fn(&str) -> Result<(), Bad>,
}

impl ActivationKind {
    /// Its schedule's rule; `None`: the kind takes no schedule.
    pub(crate) fn schedule(self) -> Option<Schedule> {
        match self {
            ActivationKind::Cron => Some(Schedule {
                example: "schedule = \"*/5 * * * *\"",
                check: check_cron,
            }),
            ActivationKind::SystemdTimer => Some(Schedule {
                example: "schedule = \"*:0/5\"",
                check: check_on_calendar,
            }),
            ActivationKind::None => None,
        }
    }
}

/// The kinds' words for a help text: `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
pub(crate) fn one_of(kinds: impl IntoIterator<Item = ActivationKind>) -> String {
    let words: Vec<String> = kinds
        .into_iter()
        .map(|k| format!("\"{}\"", k.as_str()))
        .collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

pub(crate) fn resolve_activation(
    src: &SourceFile,
    raw: &S<RawActivation>,
) -> Result<Activation, InputError> {
    let a = raw.get_ref();
    let kind = a.kind.ok_or_else(|| {
        let (first, rest) = ActivationKind::ALL.split_first().expect("some kind");
        let rest: Vec<String> = rest.iter().map(|k| format!("\"{}\"", k.as_str())).collect();
        src.err(
            raw.span(),
            "missing `activation.kind`",
            format!(
                "add a line like kind = \"{}\" (or {})",
                first.as_str(),
                rest.join(", or ")
            ),
        )
    })?;
    let schedule = match (kind.schedule(), &a.schedule) {
        (None, None) => String::new(),
        (None, Some(s)) => {
            let scheduled = ActivationKind::ALL
                .into_iter()
                .filter(|k| k.schedule().is_some());
            return Err(src.err(
                s.span(),
                format!("activation kind `{kind}` takes no schedule"),
                format!("remove `schedule`, or set kind = {}", one_of(scheduled)),
            ));
        }
        (Some(rule), None) => {
            return Err(src.err(
                raw.span(),
                format!("missing `activation.schedule` for kind `{kind}`"),
                format!("add a line like {}", rule.example),
            ));
        }
        (Some(rule), Some(s)) => {
            (rule.check)(s.get_ref()).map_err(at(src, s.span()))?;
            s.get_ref().trim().to_string()
        }
    };
    Ok(Activation {
        kind,
        schedule,
        run_on_install: a.run_on_install.unwrap_or(default::RUN_ON_INSTALL),
    })
}

// --- cron ---

const CRON_KEYWORDS: &[&str] = &[
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
];
const CRON_HELP: &str = "write five fields (minute hour day-of-month month day-of-week) like \
                         \"*/5 * * * *\", or one of @hourly @daily @weekly @monthly @yearly \
                         @annually @midnight";

/// A cron schedule: five fields of `[0-9*/,-A-Za-z]`, or an @keyword other than @reboot.
pub(crate) fn check_cron(s: &str) -> Result<(), Bad> {
    if s.trim().is_empty() {
        return Err(Bad::new("cron schedule is empty", CRON_HELP));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(Bad::new(
            format!(
                "cron schedule {} contains the control character {c:?}",
                shown(s)
            ),
            format!("a schedule is one line; {CRON_HELP}"),
        ));
    }
    if s.contains('%') {
        return Err(Bad::new(
            format!("cron schedule {} contains '%'", shown(s)),
            format!("cron turns '%' into a newline; {CRON_HELP}"),
        ));
    }
    let s = s.trim();
    if s.starts_with('@') {
        if s == "@reboot" {
            return Err(Bad::new(
                "cron schedule `@reboot` is not allowed",
                format!("a script run only at boot never runs during a bake; {CRON_HELP}"),
            ));
        }
        if !CRON_KEYWORDS.contains(&s) {
            return Err(Bad::new(
                format!("unknown cron schedule {}", shown(s)),
                CRON_HELP,
            ));
        }
        return Ok(());
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(Bad::new(
            format!(
                "cron schedule {} has {} fields, expected 5",
                shown(s),
                fields.len()
            ),
            CRON_HELP,
        ));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "*/,-".contains(c);
    for f in fields {
        if let Some(c) = f.chars().find(|c| !ok(*c)) {
            return Err(Bad::new(
                format!("cron schedule field {} contains {c:?}", shown(f)),
                CRON_HELP,
            ));
        }
    }
    Ok(())
}

// --- systemd-timer ---

/// A systemd `OnCalendar=` value: one line of printable ASCII, no '%' or '\'.
pub(crate) fn check_on_calendar(s: &str) -> Result<(), Bad> {
    let help = "write a systemd OnCalendar value like \"*:0/5\" or \"daily\" (see systemd.time(7))";
    if s.trim().is_empty() {
        return Err(Bad::new("systemd-timer schedule is empty", help));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Bad::new(
            format!(
                "systemd-timer schedule {} contains the control character {c:?}",
                shown(s)
            ),
            format!("a schedule is one line; {help}"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ') || "%\\".contains(*c))
    {
        return Err(Bad::new(
            format!("systemd-timer schedule {} contains {c:?}", shown(s)),
            format!("unit files give '%' and '\\' special meanings; {help}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T, Bad>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn help_texts_list_the_kinds() {
        assert_eq!(
            one_of(ActivationKind::ALL),
            "\"cron\", \"systemd-timer\" or \"none\""
        );
        assert_eq!(one_of([ActivationKind::Cron]), "\"cron\"");
    }

    #[test]
    fn cron_schedules() {
        for ok in [
            "*/5 * * * *",
            "0 3 * * mon-fri",
            "1,31 0-5 1 jan *",
            "@daily",
            " @hourly ",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok:?}");
        }
        let cases = [
            ("", "cron schedule is empty"),
            (
                "* * * * *\nroot rm -rf /",
                "cron schedule `* * * * *\\nroot rm -rf /` contains the control character '\\n'",
            ),
            ("* * * * * %", "cron schedule `* * * * * %` contains '%'"),
            ("@reboot", "cron schedule `@reboot` is not allowed"),
            ("@often", "unknown cron schedule `@often`"),
            (
                "* * * *",
                "cron schedule `* * * *` has 4 fields, expected 5",
            ),
            (
                "* * * * * root",
                "cron schedule `* * * * * root` has 6 fields, expected 5",
            ),
            ("* * * * $(x)", "cron schedule field `$(x)` contains '$'"),
        ];
        for (sched, want) in cases {
            assert_eq!(msg(check_cron(sched)), want, "{sched:?}");
        }
    }

    #[test]
    fn systemd_schedules() {
        assert!(check_on_calendar("*:0/5").is_ok());
        assert!(check_on_calendar("Mon..Fri 03:00").is_ok());
        assert_eq!(
            msg(check_on_calendar(" ")),
            "systemd-timer schedule is empty"
        );
        assert_eq!(
            msg(check_on_calendar("daily\nExecStart=x")),
            "systemd-timer schedule `daily\\nExecStart=x` contains the control character '\\n'"
        );
        assert_eq!(
            msg(check_on_calendar("%H")),
            "systemd-timer schedule `%H` contains '%'"
        );
    }
}
