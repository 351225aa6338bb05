//! Rules for single spec values: names, the install path, the file mode, schedules.
//! Pure checks returning a message and a hint; `resolve` adds the file and position.

use super::raw::IntOrStr;
use crate::inventory::names::NameRule;
use crate::inventory::{shown, Bad};

pub(crate) const ROLLOUT_NAME: NameRule = NameRule {
    what: "rollout name",
    first: |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    rest: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
    max: 63,
    describe: "lowercase letters, digits and '-', starts with a letter or digit, \
               at most 63 characters (it names files and units on every host)",
};

pub(crate) const CHECK_NAME: NameRule = NameRule {
    what: "check name",
    first: |c| c.is_ascii_alphanumeric(),
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
    max: 63,
    describe:
        "letters, digits, '_', '.' and '-', starts with a letter or digit, at most 63 characters",
};

/// Directories the script must never be installed into, and why.
const FORBIDDEN_DIRS: &[(&str, &str)] = &[
    ("/var/lib/wavectl", "wavectl keeps its own state there"),
    ("/etc/cron.d", "cron would read the script as a crontab"),
    ("/proc", "it is a kernel filesystem"),
    ("/sys", "it is a kernel filesystem"),
    ("/dev", "it holds device files"),
];

/// `install_path`: absolute, normalized, one line, a safe character set, outside forbidden dirs.
pub(crate) fn check_install_path(s: &str) -> Result<(), Bad> {
    let example = "like \"/usr/local/sbin/raid-health\"";
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Bad::new(
            format!(
                "install_path {} contains the control character {c:?}",
                shown(s)
            ),
            "write the path on one line, without control characters",
        ));
    }
    if !s.starts_with('/') {
        return Err(Bad::new(
            format!("install_path {} is not absolute", shown(s)),
            format!("write the full path of the script on the host, {example}"),
        ));
    }
    if s.ends_with('/') {
        return Err(Bad::new(
            format!("install_path {} ends with '/'", shown(s)),
            format!("name the file itself, {example}"),
        ));
    }
    let parts: Vec<&str> = s[1..].split('/').collect();
    if parts.contains(&"..") {
        return Err(Bad::new(
            format!("install_path {} contains a '..' component", shown(s)),
            format!("write the path without '..', {example}"),
        ));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(Bad::new(
            format!("install_path {} is not normalized", shown(s)),
            "remove the '//' and '/./' from the path",
        ));
    }
    for (dir, why) in FORBIDDEN_DIRS {
        if s == *dir
            || s.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        {
            return Err(Bad::new(
                format!("install_path {} is inside {dir}", shown(s)),
                format!("{why}; install the script elsewhere, like /usr/local/sbin"),
            ));
        }
    }
    Ok(())
}

/// `mode`: an octal string of 3 or 4 digits, owner-executable, not world-writable.
pub(crate) fn parse_mode(v: &IntOrStr) -> Result<u32, Bad> {
    let help = "write 3 or 4 octal digits in quotes, like \"0755\"";
    let s = match v {
        IntOrStr::Int(n) => {
            return Err(Bad::new(
                format!("mode is the integer {n}, not an octal string"),
                help,
            ))
        }
        IntOrStr::Str(s) => s,
    };
    let octal = (3..=4).contains(&s.len()) && s.chars().all(|c| ('0'..='7').contains(&c));
    let mode = match u32::from_str_radix(s, 8) {
        Ok(m) if octal => m,
        _ => {
            return Err(Bad::new(
                format!("mode {} is not an octal file mode", shown(s)),
                help,
            ))
        }
    };
    if mode & 0o100 == 0 {
        return Err(Bad::new(
            format!(
                "mode {} does not let the owner execute the script",
                shown(s)
            ),
            "cron and systemd run the script directly, so its owner needs execute \
             permission; use \"0755\" or \"0700\"",
        ));
    }
    if mode & 0o002 != 0 {
        return Err(Bad::new(
            format!("mode {} lets every user change the script", shown(s)),
            "the script runs as root, so a world-writable file hands root to any \
             local user; use \"0755\"",
        ));
    }
    Ok(mode)
}

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
    fn names() {
        assert!(ROLLOUT_NAME.check("raid-health-2").is_ok());
        assert_eq!(
            msg(ROLLOUT_NAME.check("Raid")),
            "rollout name `Raid` must not start with 'R'"
        );
        assert_eq!(
            msg(ROLLOUT_NAME.check("raid_health")),
            "rollout name `raid_health` contains '_'"
        );
        assert_eq!(
            msg(ROLLOUT_NAME.check(&"a".repeat(64))),
            "rollout name is 64 characters long, at most 63 are allowed"
        );
        assert!(CHECK_NAME.check("pg.ready_1-a").is_ok());
        assert_eq!(
            msg(CHECK_NAME.check("_x")),
            "check name `_x` must not start with '_'"
        );
    }

    #[test]
    fn install_paths() {
        assert!(check_install_path("/usr/local/sbin/raid-health").is_ok());
        assert!(check_install_path("/var/lib/wavectlx/a").is_ok());
        // Any printable character is fine: every value is quoted on its way to the host.
        assert!(check_install_path("/opt/my tools/it's \"x\" $(id)").is_ok());
        let cases = [
            ("usr/bin/x", "install_path `usr/bin/x` is not absolute"),
            ("/usr/bin/", "install_path `/usr/bin/` ends with '/'"),
            (
                "/usr/../etc/x",
                "install_path `/usr/../etc/x` contains a '..' component",
            ),
            ("/usr//x", "install_path `/usr//x` is not normalized"),
            (
                "/usr/x\ny",
                "install_path `/usr/x\\ny` contains the control character '\\n'",
            ),
            (
                "/var/lib/wavectl/x",
                "install_path `/var/lib/wavectl/x` is inside /var/lib/wavectl",
            ),
            (
                "/etc/cron.d/x",
                "install_path `/etc/cron.d/x` is inside /etc/cron.d",
            ),
            ("/proc/x", "install_path `/proc/x` is inside /proc"),
            ("/sys", "install_path `/sys` is inside /sys"),
            ("/dev/sda", "install_path `/dev/sda` is inside /dev"),
        ];
        for (path, want) in cases {
            assert_eq!(msg(check_install_path(path)), want, "{path:?}");
        }
    }

    #[test]
    fn modes() {
        let s = |x: &str| IntOrStr::Str(x.to_string());
        assert_eq!(parse_mode(&s("0755")), Ok(0o755));
        assert_eq!(parse_mode(&s("700")), Ok(0o700));
        assert_eq!(parse_mode(&s("4755")), Ok(0o4755));
        assert_eq!(
            msg(parse_mode(&s("0644"))),
            "mode `0644` does not let the owner execute the script"
        );
        assert_eq!(
            msg(parse_mode(&s("0777"))),
            "mode `0777` lets every user change the script"
        );
        assert_eq!(
            msg(parse_mode(&s("0855"))),
            "mode `0855` is not an octal file mode"
        );
        assert_eq!(
            msg(parse_mode(&s("17777"))),
            "mode `17777` is not an octal file mode"
        );
        assert_eq!(
            msg(parse_mode(&s("+755"))),
            "mode `+755` is not an octal file mode"
        );
        assert_eq!(
            msg(parse_mode(&IntOrStr::Int(493))),
            "mode is the integer 493, not an octal string"
        );
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
