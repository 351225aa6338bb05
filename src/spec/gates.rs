//! `[gates]`: the waves after whose bake a run waits for `wavectl promote`, and how long
//! it waits before it rolls back. The checks at load; pure.

use std::time::Duration;

use super::limits::DurationKey;
use super::raw::{RawGates, S};
use super::resolve::duration;
use super::source::SourceFile;
use crate::diag::InputError;

/// `[gates]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gates {
    /// Wave numbers (1-based), ascending, each once.
    pub after: Vec<usize>,
    /// No promote within this: the run rolls back.
    pub timeout: Duration,
}

/// 1s..=7d, default 4h: the run keeps probing (so leases are renewed) while it waits.
pub(crate) const TIMEOUT: DurationKey = DurationKey {
    key: "gates.timeout",
    min: Duration::from_secs(1),
    max: Duration::from_secs(7 * 24 * 60 * 60),
    what: "how long a run waits at a gate for `wavectl promote` before it rolls back",
};
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// The highest wave number a gate may name (a typo beyond it is caught here).
const MAX_WAVE: i64 = 10_000;

pub(crate) fn resolve_gates(src: &SourceFile, raw: &S<RawGates>) -> Result<Gates, InputError> {
    let g = raw.get_ref();
    let list = g.after.as_ref().ok_or_else(|| {
        src.err(
            raw.span(),
            "missing `gates.after`",
            "add a line like after = [1] (the waves after whose bake the run waits for \
             `wavectl promote RUN`), or remove [gates]",
        )
    })?;
    if list.get_ref().is_empty() {
        return Err(src.err(
            list.span(),
            "`gates.after` is empty",
            "list at least one wave number, like after = [1], or remove [gates]",
        ));
    }
    let mut after: Vec<usize> = Vec::new();
    for w in list.get_ref() {
        let n = *w.get_ref();
        if !(1..=MAX_WAVE).contains(&n) {
            return Err(src.err(
                w.span(),
                format!("`gates.after` holds wave {n}, which is not a wave number"),
                format!("waves are numbered from 1 (the first wave) to at most {MAX_WAVE}"),
            ));
        }
        let n = n as usize;
        if after.contains(&n) {
            return Err(src.err(
                w.span(),
                format!("wave {n} is listed twice in `gates.after`"),
                "remove the duplicate",
            ));
        }
        after.push(n);
    }
    after.sort_unstable();
    Ok(Gates {
        after,
        timeout: duration(src, g.timeout.as_ref(), &TIMEOUT, DEFAULT_TIMEOUT)?,
    })
}
