//! `[health]`: probe timing, the built-in signals and the custom checks. Pure.

use super::duration::show;
use super::limits;
use super::raw::RawHealth;
use super::raw::S;
use super::resolve::{at, default, duration, int};
use super::source::SourceFile;
use super::values::CHECK_NAME;
use super::{Builtin, Check, Health, Thresholds};
use crate::diag::InputError;

/// The default `health.builtin`.
pub(crate) const DEFAULT_BUILTIN: [Builtin; 2] = [Builtin::Reachable, Builtin::Script];

pub(crate) fn resolve_health(src: &SourceFile, raw: &RawHealth) -> Result<Health, InputError> {
    let interval = duration(
        src,
        raw.interval.as_ref(),
        &limits::INTERVAL,
        default::INTERVAL,
    )?;
    let probe_timeout = duration(
        src,
        raw.probe_timeout.as_ref(),
        &limits::PROBE_TIMEOUT,
        default::PROBE_TIMEOUT.min(interval),
    )?;
    if let Some(v) = raw
        .probe_timeout
        .as_ref()
        .filter(|_| probe_timeout > interval)
    {
        return Err(src.err(
            v.span(),
            format!(
                "`health.probe_timeout` ({}) is longer than `health.interval` ({})",
                show(probe_timeout),
                show(interval)
            ),
            "a probe must end before the next one starts; make probe_timeout at most the interval",
        ));
    }

    let mut builtin: Vec<Builtin> = Vec::new();
    match &raw.builtin {
        None => builtin.extend(DEFAULT_BUILTIN),
        Some(list) => {
            for b in list.get_ref() {
                if builtin.contains(b.get_ref()) {
                    return Err(src.err(
                        b.span(),
                        format!("builtin `{}` is listed twice", b.get_ref().as_str()),
                        "remove the duplicate",
                    ));
                }
                builtin.push(*b.get_ref());
            }
        }
    }

    let mut checks: Vec<(Check, usize)> = Vec::new();
    for c in &raw.check {
        let name = c.name.get_ref();
        CHECK_NAME.check(name).map_err(at(src, c.name.span()))?;
        if let Some((_, first)) = checks.iter().find(|(k, _)| &k.name == name) {
            return Err(src.err(
                c.name.span(),
                format!(
                    "check `{name}` is defined twice (first at line {})",
                    src.pos(*first..*first).line
                ),
                "give each [[health.check]] a unique name",
            ));
        }
        let command = c.command.get_ref();
        if command.trim().is_empty() {
            return Err(src.err(
                c.command.span(),
                format!("check `{name}` has an empty command"),
                "write a shell command that exits 0 when the host is healthy, like \"pg_isready -q\"",
            ));
        }
        if command.contains('\0') {
            return Err(src.err(
                c.command.span(),
                format!("check `{name}` has a command with a NUL character"),
                "remove the NUL character from the command",
            ));
        }
        checks.push((
            Check {
                name: name.clone(),
                command: command.clone(),
            },
            c.name.span().start,
        ));
    }
    if builtin.is_empty() && checks.is_empty() {
        let e = InputError::in_file(&src.path, "the spec has no health checks at all")
            .help("list built-in signals like builtin = [\"reachable\", \"script\"], or add a [[health.check]]");
        return Err(match &raw.builtin {
            Some(list) => e.at(src.pos(list.span())),
            None => e,
        });
    }
    Ok(Health {
        interval,
        probe_timeout,
        builtin,
        checks: checks.into_iter().map(|(c, _)| c).collect(),
        thresholds: resolve_thresholds(src, raw)?,
    })
}

/// The threshold keys, each in its range (`limits.rs`), or its default.
fn resolve_thresholds(src: &SourceFile, raw: &RawHealth) -> Result<Thresholds, InputError> {
    let d = Thresholds::default();
    let count = |v: &Option<S<i64>>, rule: &limits::IntKey, def: u32| -> Result<u32, InputError> {
        let n = int(src, v.as_ref(), rule, i64::from(def))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    Ok(Thresholds {
        baseline_samples: count(
            &raw.baseline_samples,
            &limits::BASELINE_SAMPLES,
            d.baseline_samples,
        )?,
        strikes: count(&raw.strikes, &limits::STRIKES, d.strikes)?,
        load_per_core: float(
            src,
            raw.load_per_core.as_ref(),
            &limits::LOAD_PER_CORE,
            d.load_per_core,
        )?,
        blocked: count(&raw.blocked, &limits::BLOCKED, d.blocked)?,
        pressure_cpu: count(&raw.pressure_cpu, &limits::PRESSURE_CPU, d.pressure_cpu)?,
        pressure_memory: count(
            &raw.pressure_memory,
            &limits::PRESSURE_MEMORY,
            d.pressure_memory,
        )?,
        pressure_io: count(&raw.pressure_io, &limits::PRESSURE_IO, d.pressure_io)?,
        restarts: count(&raw.restarts, &limits::RESTARTS, d.restarts)?,
    })
}

/// A number key in its range, or its default.
fn float(
    src: &SourceFile,
    v: Option<&S<f64>>,
    rule: &limits::FloatKey,
    default: f64,
) -> Result<f64, InputError> {
    let Some(v) = v else { return Ok(default) };
    let n = *v.get_ref();
    let limits::FloatKey {
        key,
        min,
        max,
        what,
    } = *rule;
    let help = format!("{what}; write a number from {min} to {max}");
    if !n.is_finite() || n < min {
        return Err(src.err(
            v.span(),
            format!("`{key}` must be at least {min}, not {n}"),
            help,
        ));
    }
    if n > max {
        return Err(src.err(
            v.span(),
            format!("`{key}` must be at most {max}, not {n}"),
            help,
        ));
    }
    Ok(n)
}
