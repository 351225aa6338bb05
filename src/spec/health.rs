//! `[health]`: probe timing, the built-in signals and the custom checks. Pure.

use super::duration::show;
use super::limits;
use super::raw::RawHealth;
use super::resolve::{at, default, duration};
use super::source::SourceFile;
use super::values::CHECK_NAME;
use super::{Builtin, Check, Health};
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
                        format!("builtin `{}` is listed twice", builtin_name(*b.get_ref())),
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
    })
}

pub(crate) fn builtin_name(b: Builtin) -> &'static str {
    match b {
        Builtin::Reachable => "reachable",
        Builtin::Script => "script",
        Builtin::Kernel => "kernel",
        Builtin::Units => "units",
        Builtin::Blocked => "blocked",
        Builtin::Load => "load",
    }
}
