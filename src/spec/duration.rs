//! Durations written as strings: whole numbers, each followed by one of the units
//! `ms`, `s`, `m`, `h`, `d` ("500ms", "90s", "10m", "1h 30m", "90 s"). Nothing else:
//! a general parser reads "10M" as ten months, and weeks, months and years have no
//! place in a rollout. No overflow: a number too large for any duration is out of the
//! key's range like any other. Pure.

use std::time::Duration;

use super::limits::DurationKey;
use crate::inventory::{shown, Bad};

/// The hint for a duration that does not parse.
pub(crate) const HELP: &str =
    "write whole numbers with the units ms, s, m, h or d, like \"500ms\", \"90s\", \"10m\" or \"1h 30m\"";

/// The units, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1000),
    ("m", 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("d", 24 * 60 * 60 * 1000),
];

/// Why a duration does not parse.
#[derive(Debug, PartialEq, Eq)]
enum Syntax {
    /// Where a number was expected: the text found there.
    NotANumber(String),
    Negative,
    /// A number with a decimal point or comma.
    Fraction(String),
    /// A number without a unit.
    NoUnit(String),
    UnknownUnit {
        number: String,
        unit: String,
    },
}

/// Parse the duration of `rule.key`, in `rule.min..=rule.max`.
pub(crate) fn parse(rule: &DurationKey, s: &str) -> Result<Duration, Bad> {
    let key = rule.key;
    if s.trim().is_empty() {
        return Err(Bad::new(format!("`{key}` is empty"), HELP));
    }
    let millis = millis(s).map_err(|e| syntax_error(key, s, e))?;
    let out_of_range = |bound: &str, limit: Duration| {
        Bad::new(
            format!(
                "`{key}` must be {bound} {}, not {}",
                show(limit),
                shown(s.trim())
            ),
            range_help(rule),
        )
    };
    // `None`: more milliseconds than a u64 holds, far above any maximum.
    let d = match millis {
        Some(ms) => Duration::from_millis(ms),
        None => return Err(out_of_range("at most", rule.max)),
    };
    if d < rule.min {
        return Err(out_of_range("at least", rule.min));
    }
    if d > rule.max {
        return Err(out_of_range("at most", rule.max));
    }
    Ok(d)
}

/// The hint for a value outside a key's range.
pub(crate) fn range_help(rule: &DurationKey) -> String {
    format!(
        "{}; write a duration from {} to {}",
        rule.what,
        show(rule.min),
        show(rule.max)
    )
}

/// The total in milliseconds (`None` when it overflows a u64), or why `s` is not a duration.
fn millis(s: &str) -> Result<Option<u64>, Syntax> {
    let mut total = Some(0u64);
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            if rest.starts_with('-') {
                return Err(Syntax::Negative);
            }
            let word = rest
                .split(|c: char| c.is_whitespace() || c.is_ascii_digit())
                .next()
                .unwrap_or(rest);
            return Err(Syntax::NotANumber(word.to_string()));
        }
        let (number, after) = rest.split_at(digits);
        if let Some(frac) = after.strip_prefix(['.', ',']) {
            let frac_len = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            return Err(Syntax::Fraction(rest[..digits + 1 + frac_len].to_string()));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_whitespace() || c.is_ascii_digit())
            .unwrap_or(after.len());
        if unit_len == 0 {
            return Err(Syntax::NoUnit(number.to_string()));
        }
        let (unit, after) = after.split_at(unit_len);
        let Some(&(_, per)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(Syntax::UnknownUnit {
                number: number.to_string(),
                unit: unit.to_string(),
            });
        };
        // A number too long for a u64 overflows like a product too large.
        total = match (total, number.parse::<u64>()) {
            (Some(t), Ok(n)) => n.checked_mul(per).and_then(|v| v.checked_add(t)),
            _ => None,
        };
        rest = after.trim_start();
    }
    Ok(total)
}

fn syntax_error(key: &str, s: &str, e: Syntax) -> Bad {
    let bad = |what: String, help: String| {
        Bad::new(
            format!("bad duration {} for `{key}`: {what}", shown(s)),
            help,
        )
    };
    match e {
        Syntax::NotANumber(word) => bad(format!("{} is not a number", shown(&word)), HELP.into()),
        Syntax::Negative => bad("a duration cannot be negative".into(), HELP.into()),
        Syntax::Fraction(n) => bad(
            format!("{} is not a whole number", shown(&n)),
            "write whole numbers of a smaller unit, like \"90s\" or \"1h 30m\"".into(),
        ),
        Syntax::NoUnit(n) => bad(format!("{} has no unit", shown(&n)), HELP.into()),
        Syntax::UnknownUnit { number, unit } => {
            let help = unit_help(&number, &unit);
            bad(format!("unknown unit {}", shown(&unit)), help)
        }
    }
}

/// The hint for an unknown unit: the units there are, and what was probably meant.
fn unit_help(number: &str, unit: &str) -> String {
    let units = "the units are ms, s, m, h and d";
    if unit == "M" {
        return format!(
            "{units}; `M` could mean months or minutes, so it is refused: write minutes as \"{number}m\""
        );
    }
    let lower = unit.to_lowercase();
    if UNITS.iter().any(|(u, _)| *u == lower) {
        return format!("{units}, in lowercase: write \"{number}{lower}\"");
    }
    let meant = match lower.as_str() {
        "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => Some("ms"),
        "sec" | "secs" | "second" | "seconds" => Some("s"),
        "min" | "mins" | "minute" | "minutes" => Some("m"),
        "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "day" | "days" => Some("d"),
        _ => None,
    };
    if let Some(u) = meant {
        return format!("{units}: write \"{number}{u}\"");
    }
    let weeks = matches!(lower.as_str(), "w" | "wk" | "wks" | "week" | "weeks");
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(7)) {
        Some(days) if weeks => format!("{units}: write weeks as days, like \"{days}d\""),
        _ => format!("{units} (lowercase), like \"90s\", \"10m\" or \"1h 30m\""),
    }
}

/// A duration written the way a spec writes it: "7d", "1h 30m", "500ms", "0s".
pub(crate) fn show(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, per) in UNITS.iter().rev() {
        let per = u128::from(*per);
        if ms >= per {
            parts.push(format!("{}{unit}", ms / per));
            ms %= per;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::limits::{BAKE, SCRIPT_TIMEOUT};

    /// A key accepting anything from 0 to u64::MAX milliseconds, to test the syntax alone.
    const ANY: DurationKey = DurationKey {
        key: "t",
        min: Duration::ZERO,
        max: Duration::from_millis(u64::MAX),
        what: "a test",
    };

    fn ok(s: &str) -> Duration {
        parse(&ANY, s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
    }

    fn err(rule: &DurationKey, s: &str) -> (String, String) {
        let e = parse(rule, s).unwrap_err();
        (e.message, e.help)
    }

    fn message(s: &str) -> String {
        err(&ANY, s).0
    }

    #[test]
    fn good_durations() {
        let secs = Duration::from_secs;
        assert_eq!(ok("90s"), secs(90));
        assert_eq!(ok("10m"), secs(600));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h 30m"), secs(5400));
        assert_eq!(ok("1h30m"), secs(5400));
        assert_eq!(ok("2d"), secs(2 * 86400));
        assert_eq!(ok("0s"), Duration::ZERO);
        // A number and its unit may stand apart; so may the parts.
        assert_eq!(ok("90 s"), secs(90));
        assert_eq!(ok(" 1h  30 m "), secs(5400));
        // Parts add up, in any order.
        assert_eq!(ok("30m 1h 1s 5ms"), Duration::from_millis(5_401_005));
        assert_eq!(ok("007s"), secs(7));
        // The largest total there is.
        assert_eq!(
            ok(&format!("{}ms", u64::MAX)),
            Duration::from_millis(u64::MAX)
        );
    }

    #[test]
    fn units_other_than_ms_s_m_h_d_are_refused() {
        let cases = [
            (
                "10M",
                "bad duration `10M` for `t`: unknown unit `M`",
                "the units are ms, s, m, h and d; `M` could mean months or minutes, so it is \
                 refused: write minutes as \"10m\"",
            ),
            (
                "5w",
                "bad duration `5w` for `t`: unknown unit `w`",
                "the units are ms, s, m, h and d: write weeks as days, like \"35d\"",
            ),
            (
                "1y",
                "bad duration `1y` for `t`: unknown unit `y`",
                "the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"",
            ),
            (
                "1h 10M",
                "bad duration `1h 10M` for `t`: unknown unit `M`",
                "the units are ms, s, m, h and d; `M` could mean months or minutes, so it is \
                 refused: write minutes as \"10m\"",
            ),
            (
                "90S",
                "bad duration `90S` for `t`: unknown unit `S`",
                "the units are ms, s, m, h and d, in lowercase: write \"90s\"",
            ),
            (
                "5MS",
                "bad duration `5MS` for `t`: unknown unit `MS`",
                "the units are ms, s, m, h and d, in lowercase: write \"5ms\"",
            ),
            (
                "2 minutes",
                "bad duration `2 minutes` for `t`: unknown unit `minutes`",
                "the units are ms, s, m, h and d: write \"2m\"",
            ),
            (
                "3sec",
                "bad duration `3sec` for `t`: unknown unit `sec`",
                "the units are ms, s, m, h and d: write \"3s\"",
            ),
            (
                "1us",
                "bad duration `1us` for `t`: unknown unit `us`",
                "the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"",
            ),
            (
                "10 parsecs",
                "bad duration `10 parsecs` for `t`: unknown unit `parsecs`",
                "the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"",
            ),
            (
                "5x",
                "bad duration `5x` for `t`: unknown unit `x`",
                "the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"",
            ),
            (
                "99999999999999999999w",
                "bad duration `99999999999999999999w` for `t`: unknown unit `w`",
                "the units are ms, s, m, h and d (lowercase), like \"90s\", \"10m\" or \"1h 30m\"",
            ),
        ];
        for (s, message, help) in cases {
            assert_eq!(
                err(&ANY, s),
                (message.to_string(), help.to_string()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn other_syntax_errors() {
        let cases = [
            ("10", "bad duration `10` for `t`: `10` has no unit"),
            ("1h 30", "bad duration `1h 30` for `t`: `30` has no unit"),
            ("1 30m", "bad duration `1 30m` for `t`: `1` has no unit"),
            (
                "ten minutes",
                "bad duration `ten minutes` for `t`: `ten` is not a number",
            ),
            ("s", "bad duration `s` for `t`: `s` is not a number"),
            ("+5s", "bad duration `+5s` for `t`: `+` is not a number"),
            (
                "-5s",
                "bad duration `-5s` for `t`: a duration cannot be negative",
            ),
            (
                "1h -5m",
                "bad duration `1h -5m` for `t`: a duration cannot be negative",
            ),
            (
                "1.5h",
                "bad duration `1.5h` for `t`: `1.5` is not a whole number",
            ),
            (
                "2,5s",
                "bad duration `2,5s` for `t`: `2,5` is not a whole number",
            ),
            (
                "1.h",
                "bad duration `1.h` for `t`: `1.` is not a whole number",
            ),
            (
                "5 \u{1}s",
                "bad duration `5 \\u{1}s` for `t`: unknown unit `\\u{1}s`",
            ),
            ("", "`t` is empty"),
            ("  ", "`t` is empty"),
        ];
        for (s, want) in cases {
            assert_eq!(message(s), want, "{s:?}");
        }
        assert_eq!(err(&ANY, "10").1, HELP);
        assert_eq!(
            err(&ANY, "1.5h").1,
            "write whole numbers of a smaller unit, like \"90s\" or \"1h 30m\""
        );
    }

    #[test]
    fn huge_numbers_are_out_of_range_not_overflows() {
        let help = "every run of the script on a host is killed after this; write a duration \
                    from 1s to 1d";
        for s in [
            "99999999999999999999d",
            "18446744073709551615d",
            &format!("{}ms 1ms", u64::MAX),
            &format!("{}s", u64::MAX / 1000 + 1),
            &format!("{}d", "9".repeat(1000)),
        ] {
            assert_eq!(
                err(&SCRIPT_TIMEOUT, s),
                (
                    format!("`script.timeout` must be at most 1d, not `{s}`"),
                    help.to_string()
                ),
                "{s:?}"
            );
        }
        // Without a maximum below it, an overflowing total is refused all the same.
        assert_eq!(
            message(&format!("{}ms 1ms", u64::MAX)),
            format!(
                "`t` must be at most {}, not `{}ms 1ms`",
                show(ANY.max),
                u64::MAX
            )
        );
    }

    #[test]
    fn ranges_at_both_edges() {
        assert_eq!(parse(&SCRIPT_TIMEOUT, "1s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse(&SCRIPT_TIMEOUT, "24h"),
            Ok(Duration::from_secs(86400))
        );
        assert_eq!(
            err(&SCRIPT_TIMEOUT, "999ms").0,
            "`script.timeout` must be at least 1s, not `999ms`"
        );
        assert_eq!(
            err(&SCRIPT_TIMEOUT, "24h 1ms").0,
            "`script.timeout` must be at most 1d, not `24h 1ms`"
        );
        assert_eq!(parse(&BAKE, "0s"), Ok(Duration::ZERO));
        assert_eq!(parse(&BAKE, "7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(
            err(&BAKE, "7d 1ms"),
            (
                "`waves.bake` must be at most 7d, not `7d 1ms`".to_string(),
                "how long each wave is watched before the next one starts; \"0s\" does not \
                 wait; write a duration from 0s to 7d"
                    .to_string()
            )
        );
    }

    #[test]
    fn shown_the_way_a_spec_writes_it() {
        let ms = Duration::from_millis;
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(ms(500)), "500ms");
        assert_eq!(show(ms(90_000)), "1m 30s");
        assert_eq!(show(ms(5_401_005)), "1h 30m 1s 5ms");
        assert_eq!(show(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(show(Duration::from_secs(86400)), "1d");
        // Below a millisecond does not show.
        assert_eq!(show(Duration::from_nanos(1_500_000)), "1ms");
    }
}
