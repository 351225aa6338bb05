//! Durations for people: the one formatter of every duration a message, a report or a
//! listing shows (the host protocol's seconds are `remote`'s, not this).

use std::time::Duration;

/// `0s`; `300ms` under a second; `5s`, `2.5s` under a minute (tenths only when there
/// are any); from a minute on, whole seconds in units: `1m 30s`, `2h`, `1day 3h 5m`.
pub fn duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d < Duration::from_millis(950) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        let tenths = (d.as_millis() + 50) / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// [`duration`] of a span in milliseconds.
pub fn duration_ms(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_tenths_under_a_minute_then_units() {
        let ms = |n: u64| duration(Duration::from_millis(n));
        assert_eq!(ms(0), "0s");
        assert_eq!(ms(300), "300ms");
        assert_eq!(ms(960), "1s");
        assert_eq!(ms(5000), "5s");
        assert_eq!(ms(2500), "2.5s");
        // A deadline cut a hair short reads as its round figure.
        assert_eq!(ms(1999), "2s");
        assert_eq!(ms(59_960), "60s");
        assert_eq!(ms(90_000), "1m 30s");
        assert_eq!(ms(90_700), "1m 30s");
        assert_eq!(ms(7_200_000), "2h");
        assert_eq!(duration_ms(93_900_000), "1day 2h 5m");
    }
}
