//! Rules for single spec values: names, the install path, the file mode (schedules:
//! `activation.rs`).
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
}
