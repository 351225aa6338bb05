//! Durations written as strings ("500ms", "90s", "10m", "1h 30m"), via humantime. Pure.

use std::time::Duration;

use crate::inventory::{shown, Bad};

/// Whether zero is a meaningful value for this duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    Allowed,
    Refused,
}

const HELP: &str = "write a number with a unit, like \"500ms\", \"90s\", \"10m\" or \"1h\"";

/// Parse the duration of the key `key` (named in messages, e.g. "health.interval").
pub(crate) fn parse(key: &str, s: &str, zero: Zero) -> Result<Duration, Bad> {
    if s.trim().is_empty() {
        return Err(Bad::new(format!("`{key}` is empty"), HELP));
    }
    let d = humantime::parse_duration(s)
        .map_err(|_| Bad::new(format!("bad duration {} for `{key}`", shown(s)), HELP))?;
    if d.is_zero() && zero == Zero::Refused {
        return Err(Bad::new(
            format!("`{key}` must be greater than zero"),
            "use a positive duration, like \"90s\" or \"10m\"",
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_durations() {
        assert_eq!(
            parse("t", "90s", Zero::Refused),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            parse("t", "10m", Zero::Refused),
            Ok(Duration::from_secs(600))
        );
        assert_eq!(
            parse("t", "500ms", Zero::Refused),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            parse("t", "1h 30m", Zero::Refused),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(parse("bake", "0s", Zero::Allowed), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations() {
        let e = parse("script.timeout", "5x", Zero::Refused).unwrap_err();
        assert_eq!(e.message, "bad duration `5x` for `script.timeout`");
        assert_eq!(e.help, HELP);
        let e = parse("script.timeout", "10", Zero::Refused).unwrap_err();
        assert_eq!(e.message, "bad duration `10` for `script.timeout`");
        let e = parse("health.interval", "", Zero::Refused).unwrap_err();
        assert_eq!(e.message, "`health.interval` is empty");
        let e = parse("health.interval", "0s", Zero::Refused).unwrap_err();
        assert_eq!(e.message, "`health.interval` must be greater than zero");
        assert_eq!(e.help, "use a positive duration, like \"90s\" or \"10m\"");
    }
}
