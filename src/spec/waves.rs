//! `[targets]` and `[waves]`: selectors, wave sizes, canaries, spread_by — checked on
//! their own, then against the chosen targets. Pure.

use std::collections::HashSet;

use super::limits::{self, WAVE_SIZE_MAX};
use super::raw::{IntOrStr, RawTargets, RawWaves, S};
use super::resolve::{at, default, duration, int};
use super::source::SourceFile;
use super::{Located, Selector, Targets, WaveSize, WaveSpec};
use crate::diag::{InputError, Pos};
use crate::inventory::{shown, Bad, Host, Inventory, LABEL_KEY};

/// The default `waves.sizes`: one canary host, then 10%, then the rest.
pub(crate) fn default_sizes() -> Vec<WaveSize> {
    vec![
        WaveSize::Count(1),
        WaveSize::Percent(10),
        WaveSize::Percent(100),
    ]
}

fn located<T>(src: &SourceFile, v: &S<T>, value: impl Into<T>) -> Located<T> {
    Located {
        value: value.into(),
        pos: Some(src.pos(v.span())),
    }
}

pub(crate) fn resolve_targets(
    src: &SourceFile,
    raw: &RawTargets,
) -> Result<(Targets, Option<Pos>), InputError> {
    let mut select = Vec::new();
    if let Some(list) = &raw.select {
        for s in list.get_ref() {
            let sel = Selector::parse_rule(s.get_ref()).map_err(at(src, s.span()))?;
            select.push(Located {
                value: sel,
                pos: Some(src.pos(s.span())),
            });
        }
    }
    let exclude = raw
        .exclude
        .iter()
        .map(|e| located(src, e, e.get_ref().clone()))
        .collect();
    let select_pos = raw.select.as_ref().map(|s| src.pos(s.span()));
    Ok((Targets { select, exclude }, select_pos))
}

pub(crate) fn resolve_waves(
    src: &SourceFile,
    raw: &RawWaves,
) -> Result<(WaveSpec, Option<Pos>), InputError> {
    let sizes =
        match &raw.sizes {
            None => default_sizes(),
            Some(list) if list.get_ref().is_empty() => return Err(src.err(
                list.span(),
                "`waves.sizes` is empty",
                "list wave sizes like [1, \"10%\", \"100%\"], or remove the key for that default",
            )),
            Some(list) => list
                .get_ref()
                .iter()
                .map(|s| wave_size(s.get_ref()).map_err(at(src, s.span())))
                .collect::<Result<_, _>>()?,
        };

    let mut canaries: Vec<Located<String>> = Vec::new();
    for c in &raw.canaries {
        if let Some(first) = canaries.iter().find(|f| &f.value == c.get_ref()) {
            let line = first.pos.map_or(0, |p| p.line);
            return Err(src.err(
                c.span(),
                format!(
                    "canary `{}` is listed twice (first at line {line})",
                    c.get_ref()
                ),
                "remove the duplicate",
            ));
        }
        canaries.push(located(src, c, c.get_ref().clone()));
    }

    let spread_by = match &raw.spread_by {
        Some(s) => {
            LABEL_KEY.check(s.get_ref()).map_err(at(src, s.span()))?;
            Some(s.get_ref().clone())
        }
        None => None,
    };
    let max_per_group = match (&spread_by, &raw.max_per_group) {
        (None, Some(m)) => {
            return Err(src.err(
                m.span(),
                "`waves.max_per_group` is set but `waves.spread_by` is not",
                "set spread_by to the label that names a host's redundancy group, like \
                 spread_by = \"cluster\", or remove max_per_group",
            ))
        }
        (None, None) => usize::MAX,
        (Some(_), m) => {
            let n = int(
                src,
                m.as_ref(),
                &limits::MAX_PER_GROUP,
                default::MAX_PER_GROUP_SPREAD,
            )?;
            usize::try_from(n).unwrap_or(usize::MAX)
        }
    };
    let bake = duration(src, raw.bake.as_ref(), &limits::BAKE, default::BAKE)?;
    let min_runs = int(
        src,
        raw.min_runs.as_ref(),
        &limits::MIN_RUNS,
        default::MIN_RUNS,
    )?;
    let spec = WaveSpec {
        sizes,
        canaries,
        spread_by,
        max_per_group,
        // `waves.concurrency` may be a percentage of the targets: `resolve` reads it
        // (`concurrency`), `load_with` resolves it once the targets are known.
        concurrency: 0,
        bake,
        min_runs: u32::try_from(min_runs).unwrap_or(u32::MAX),
    };
    Ok((spec, raw.spread_by.as_ref().map(|s| src.pos(s.span()))))
}

/// `waves.concurrency`: a count in `limits::CONCURRENCY`'s range, or "N%" of the run's
/// targets with 1 ≤ N ≤ 100.
pub(crate) fn concurrency(
    src: &SourceFile,
    v: Option<&S<IntOrStr>>,
) -> Result<WaveSize, InputError> {
    let Some(v) = v else {
        return Ok(WaveSize::Count(default::CONCURRENCY as usize));
    };
    match v.get_ref() {
        IntOrStr::Int(n) => {
            let n = int(
                src,
                Some(&S::new(v.span(), *n)),
                &limits::CONCURRENCY,
                default::CONCURRENCY,
            )?;
            Ok(WaveSize::Count(usize::try_from(n).unwrap_or(usize::MAX)))
        }
        IntOrStr::Str(s) => match wave_size(v.get_ref()) {
            Ok(WaveSize::Percent(p)) => Ok(WaveSize::Percent(p)),
            _ => Err(src.err(
                v.span(),
                format!(
                    "`waves.concurrency` {} is not a count or a percentage from \"1%\" to \"100%\"",
                    shown(s)
                ),
                format!(
                    "{}; write a number from {} to {}, or a percentage of the run's targets like \"25%\"",
                    limits::CONCURRENCY.what,
                    limits::CONCURRENCY.min,
                    limits::CONCURRENCY.max
                ),
            )),
        },
    }
}

/// The hosts worked on at once for `targets` targets: a percentage is rounded down but at
/// least 1 (as a wave size is), and at most `limits::CONCURRENCY`'s maximum.
pub(crate) fn concurrency_of(given: WaveSize, targets: usize) -> usize {
    let max = usize::try_from(limits::CONCURRENCY.max).unwrap_or(usize::MAX);
    match given {
        WaveSize::Count(n) => n,
        WaveSize::Percent(p) => (u128::from(p) * targets as u128 / 100)
            .min(max as u128)
            .max(1) as usize,
    }
}

/// One entry of `waves.sizes`: an integer in 1..=WAVE_SIZE_MAX, or "N%" with 1 ≤ N ≤ 100.
fn wave_size(v: &IntOrStr) -> Result<WaveSize, Bad> {
    let help = format!(
        "a wave size is a host count from 1 to {WAVE_SIZE_MAX} (like 5), or a percentage of \
         the targets from \"1%\" to \"100%\""
    );
    let help = help.as_str();
    match v {
        IntOrStr::Int(n) if *n < 1 => Err(Bad::new(format!("wave size {n} is less than 1"), help)),
        IntOrStr::Int(n) if *n > WAVE_SIZE_MAX => Err(Bad::new(
            format!("wave size {n} is more than {WAVE_SIZE_MAX}"),
            help,
        )),
        IntOrStr::Int(n) => Ok(WaveSize::Count(usize::try_from(*n).unwrap_or(usize::MAX))),
        IntOrStr::Str(s) => {
            let digits = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            let Some(digits) = digits else {
                return Err(Bad::new(
                    format!("wave size {} is not a count or a percentage", shown(s)),
                    help,
                ));
            };
            match digits.parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(WaveSize::Percent(p)),
                _ => Err(Bad::new(
                    format!("wave size {} is out of range", shown(s)),
                    help,
                )),
            }
        }
    }
}

/// Checks that need the targets: canaries among them, every target carries `spread_by`.
pub(crate) fn check_against_targets(
    src: &SourceFile,
    waves: &WaveSpec,
    spread_by_pos: Option<Pos>,
    inv: &Inventory,
    targets: &[Host],
) -> Result<(), InputError> {
    let err = |pos: Option<Pos>, message: String, help: &str| {
        let e = InputError::in_file(&src.path, message).help(help);
        match pos {
            Some(p) => e.at(p),
            None => e,
        }
    };
    let is_target: HashSet<&str> = targets.iter().map(|h| h.name.as_str()).collect();
    for c in &waves.canaries {
        if inv.get(&c.value).is_none() {
            return Err(err(
                c.pos,
                format!("canary `{}` is not in {}", c.value, inv.path.display()),
                "name a host of the inventory, or fix the spelling",
            ));
        }
        if !is_target.contains(c.value.as_str()) {
            return Err(err(
                c.pos,
                format!("canary `{}` is not a target", c.value),
                "it is excluded or does not match targets.select; pick a canary among the targets",
            ));
        }
    }
    if let Some(key) = &waves.spread_by {
        let missing: Vec<&str> = targets
            .iter()
            .filter(|h| !h.labels.contains_key(key))
            .map(|h| h.name.as_str())
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(10).copied().collect();
            let more = if missing.len() > 10 {
                format!(", ... ({} in all)", missing.len())
            } else {
                String::new()
            };
            return Err(err(
                spread_by_pos,
                format!(
                    "{} target{} lack{} the spread_by label `{key}`: {}{more}",
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" },
                    if missing.len() == 1 { "s" } else { "" },
                    shown.join(", "),
                ),
                &format!(
                    "give every target a `{key}` label in {} (its redundancy group), or exclude them",
                    inv.path.display()
                ),
            ));
        }
    }
    Ok(())
}
