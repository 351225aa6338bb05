//! Raw spec → resolved `Rollout`: every default applied here, once, and every value
//! checked at its position. Reads the script file; nothing else.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::activation::{one_of, resolve_activation};
use super::duration::{self, show};
use super::limits::{self, DurationKey, IntKey};
use super::raw::{RawPolicy, RawScript, RawSpec, S};
use super::source::{lower_io, SourceFile};
use super::values::{check_install_path, parse_mode, ROLLOUT_NAME};
use super::{ActivationKind, Health, LoadOptions, OnFailure, Policy, Rollout, Script};
use crate::diag::{InputError, Pos};
use crate::inventory::{shown, Bad};

/// Defaults, in one place.
pub(crate) mod default {
    use std::time::Duration;

    pub const SCRIPT_MODE: u32 = 0o755;
    pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const RUN_ON_INSTALL: bool = true;
    pub const CONCURRENCY: i64 = 50;
    pub const BAKE: Duration = Duration::from_secs(10 * 60);
    pub const MIN_RUNS: i64 = 1;
    /// `max_per_group` when `spread_by` is set without it.
    pub const MAX_PER_GROUP_SPREAD: i64 = 1;
    pub const INTERVAL: Duration = Duration::from_secs(15);
    /// Capped at the interval.
    pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_UNHEALTHY: i64 = 0;
    pub const APPROVALS: i64 = 0;
    /// Raised to `LEASE_INTERVALS` × the interval when that is longer.
    pub const LEASE: Duration = Duration::from_secs(15 * 60);
}

/// A resolved rollout, with the positions that checks against the targets still need.
pub(crate) struct Resolved {
    pub rollout: Rollout,
    /// `targets.select`, for "no host matches all the selectors".
    pub select_pos: Option<Pos>,
    /// `waves.spread_by`, for hosts lacking that label.
    pub spread_by_pos: Option<Pos>,
    /// `inventory`, when the spec names the inventory (no --inventory), for a missing file.
    pub inventory_pos: Option<Pos>,
    /// The inventory path as the user gave it (or the spec's directory joined with it),
    /// to read it and name it in messages; the rollout holds it absolute.
    pub inventory_given: PathBuf,
    /// `waves.concurrency` as written, resolved against the targets by `load_with`.
    pub concurrency_given: super::WaveSize,
}

/// `path` made absolute once, so it means the same file from any working directory:
/// canonical when it exists, else joined to the working directory.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A directory as messages show it: "." for the working directory.
pub(crate) fn shown_dir(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// An error at `span` from a rule's complaint.
pub(crate) fn at(src: &SourceFile, span: Range<usize>) -> impl Fn(Bad) -> InputError + '_ {
    move |b| src.err(span.clone(), b.message, b.help)
}

/// A duration key in its range, or its default.
pub(crate) fn duration(
    src: &SourceFile,
    v: Option<&S<String>>,
    rule: &DurationKey,
    default: Duration,
) -> Result<Duration, InputError> {
    match v {
        None => Ok(default),
        Some(v) => duration::parse(rule, v.get_ref()).map_err(at(src, v.span())),
    }
}

/// An integer key in its range, or its default.
pub(crate) fn int(
    src: &SourceFile,
    v: Option<&S<i64>>,
    rule: &IntKey,
    default: i64,
) -> Result<i64, InputError> {
    let Some(v) = v else { return Ok(default) };
    let n = *v.get_ref();
    let IntKey { key, min, max, .. } = *rule;
    let help = int_help(rule);
    if n < min {
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

/// The hint for an integer outside its key's range.
pub(crate) fn int_help(rule: &IntKey) -> String {
    format!(
        "{}; write a number from {} to {}",
        rule.what, rule.min, rule.max
    )
}

/// Check the spec on its own (no inventory yet): names, paths, script, schedule, numbers.
pub(crate) fn resolve(
    src: &SourceFile,
    raw: RawSpec,
    inventory_override: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Resolved, InputError> {
    let dir = src.path.parent().unwrap_or(Path::new(""));
    let name = raw.name.as_ref().ok_or_else(|| {
        src.err_file(
            "missing `name`",
            "add a line like name = \"raid-health\" at the top",
        )
    })?;
    ROLLOUT_NAME
        .check(name.get_ref())
        .map_err(at(src, name.span()))?;

    let inventory_path =
        match (inventory_override, &raw.inventory) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(v)) if v.get_ref().is_empty() => {
                return Err(src.err(
                    v.span(),
                    "`inventory` is empty",
                    "name the inventory file, relative to the spec's directory",
                ))
            }
            (None, Some(v)) => dir.join(v.get_ref()),
            (None, None) => return Err(src.err_file(
                "no inventory: the spec has no `inventory` key and none was given with --inventory",
                "add a line like inventory = \"../inventory.toml\", or pass --inventory FILE",
            )),
        };

    let script = raw.script.as_ref().ok_or_else(|| {
        src.err_file(
            "missing [script] table",
            "add a [script] table with `source` and `install_path`",
        )
    })?;
    let script = resolve_script(src, dir, script, opts)?;

    let activation = raw.activation.as_ref().ok_or_else(|| {
        src.err_file(
            "missing [activation] table",
            format!(
                "add an [activation] table with kind = {}",
                one_of(ActivationKind::ALL)
            ),
        )
    })?;
    let activation = resolve_activation(src, activation)?;

    let (targets, select_pos) = super::waves::resolve_targets(src, &raw.targets)?;
    let (waves, spread_by_pos) = super::waves::resolve_waves(src, &raw.waves)?;
    let concurrency_given = super::waves::concurrency(src, raw.waves.concurrency.as_ref())?;
    if waves.min_runs > 0 && activation.kind == ActivationKind::None && !activation.run_on_install {
        let e = InputError::in_file(
            &src.path,
            format!(
                "`waves.min_runs` is {} but nothing runs the script: activation kind is \
                 `none` and run_on_install is false",
                waves.min_runs
            ),
        )
        .help("set run_on_install = true, or min_runs = 0");
        return Err(match &raw.waves.min_runs {
            Some(v) => e.at(src.pos(v.span())),
            None => e,
        });
    }
    let health = super::health::resolve_health(src, &raw.health)?;
    let policy = resolve_policy(src, dir, &raw.policy, &health)?;
    let notify = match &raw.notify {
        Some(n) => Some(super::notify::resolve_notify(src, dir, n)?),
        None => None,
    };
    let gates = match &raw.gates {
        Some(g) => Some(super::gates::resolve_gates(src, g)?),
        None => None,
    };

    Ok(Resolved {
        rollout: Rollout {
            name: name.get_ref().clone(),
            description: raw.description.unwrap_or_default(),
            spec_path: absolute(&src.path),
            spec_given: src.path.clone(),
            inventory_path: absolute(&inventory_path),
            script,
            activation,
            targets,
            waves,
            health,
            policy,
            notify,
            gates,
        },
        select_pos,
        spread_by_pos,
        inventory_pos: match (inventory_override, &raw.inventory) {
            (None, Some(v)) => Some(src.pos(v.span())),
            _ => None,
        },
        inventory_given: inventory_path,
        concurrency_given,
    })
}

fn resolve_script(
    src: &SourceFile,
    dir: &Path,
    raw: &S<RawScript>,
    opts: &LoadOptions,
) -> Result<Script, InputError> {
    let missing = |key: &str, example: &str| {
        src.err(
            raw.span(),
            format!("missing `script.{key}`"),
            format!("add a line like {example}"),
        )
    };
    let s = raw.get_ref();
    let source = s
        .source
        .as_ref()
        .ok_or_else(|| missing("source", "source = \"scripts/raid-health.sh\""))?;
    let install_path = s.install_path.as_ref().ok_or_else(|| {
        missing(
            "install_path",
            "install_path = \"/usr/local/sbin/raid-health\"",
        )
    })?;
    check_install_path(install_path.get_ref()).map_err(at(src, install_path.span()))?;
    if let Some(p) = super::protected::check(install_path.get_ref()).filter(|_| !opts.force) {
        return Err(src.err(
            install_path.span(),
            format!(
                "install_path {} is {}",
                shown(install_path.get_ref()),
                p.what
            ),
            p.help("replacing"),
        ));
    }
    let mode = match &s.mode {
        Some(m) => parse_mode(m.get_ref()).map_err(at(src, m.span()))?,
        None => default::SCRIPT_MODE,
    };
    let timeout = duration(
        src,
        s.timeout.as_ref(),
        &limits::SCRIPT_TIMEOUT,
        default::SCRIPT_TIMEOUT,
    )?;

    let path = dir.join(source.get_ref());
    let body = read_script(&path).map_err(|message| {
        src.err(
            source.span(),
            message,
            format!(
                "`source` is relative to the spec's directory ({}); fix the path or create the file",
                shown_dir(dir).display()
            ),
        )
    })?;
    let sha256 = hex::encode(Sha256::digest(&body));
    Ok(Script {
        source: absolute(&path),
        body,
        sha256,
        install_path: install_path.get_ref().clone(),
        mode,
        timeout,
    })
}

/// The script's bytes, or what went wrong as a message fragment.
fn read_script(path: &Path) -> Result<Vec<u8>, String> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(format!(
            "script `{}` is a directory, not a file",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("script `{}` not found", path.display()),
        _ => format!("cannot read script `{}`: {}", path.display(), lower_io(&e)),
    })
}

fn resolve_policy(
    src: &SourceFile,
    dir: &Path,
    raw: &RawPolicy,
    health: &Health,
) -> Result<Policy, InputError> {
    let max_unhealthy = int(
        src,
        raw.max_unhealthy.as_ref(),
        &limits::MAX_UNHEALTHY,
        default::MAX_UNHEALTHY,
    )?;
    let approvals = int(
        src,
        raw.approvals.as_ref(),
        &limits::APPROVALS,
        default::APPROVALS,
    )?;
    // The controller renews the lease with every probe: it must outlast a few of them.
    let min_lease = health.interval * limits::LEASE_INTERVALS;
    let lease = duration(
        src,
        raw.lease.as_ref(),
        &limits::LEASE,
        default::LEASE.max(min_lease),
    )?;
    if let Some(v) = raw.lease.as_ref().filter(|_| lease < min_lease) {
        return Err(src.err(
            v.span(),
            format!(
                "`policy.lease` ({}) is shorter than {n} × `health.interval` ({n} × {} = {})",
                show(lease),
                show(health.interval),
                show(min_lease),
                n = limits::LEASE_INTERVALS,
            ),
            format!(
                "the controller renews the lease with every probe, so a lease of fewer than \
                 {n} intervals can run out on a healthy host that missed a probe or two, and \
                 the host then reverts itself; make lease at least {}, or shorten the interval",
                show(min_lease),
                n = limits::LEASE_INTERVALS,
            ),
        ));
    }
    let allowed_signers = match &raw.allowed_signers {
        None => None,
        Some(v) => Some(allowed_signers(src, dir, v, approvals > 0)?),
    };
    Ok(Policy {
        max_unhealthy: usize::try_from(max_unhealthy).unwrap_or(usize::MAX),
        on_failure: raw.on_failure.unwrap_or(OnFailure::Rollback),
        approvals: u32::try_from(approvals).unwrap_or(u32::MAX),
        lease,
        allowed_signers,
    })
}

/// `policy.allowed_signers`: a path relative to the spec's directory, made absolute;
/// it must name a file when approvals are needed (`must_exist`).
fn allowed_signers(
    src: &SourceFile,
    dir: &Path,
    v: &S<String>,
    must_exist: bool,
) -> Result<PathBuf, InputError> {
    if v.get_ref().is_empty() {
        return Err(src.err(
            v.span(),
            "`policy.allowed_signers` is empty",
            "name the ssh-keygen allowed-signers file, relative to the spec's directory, or \
             remove the key",
        ));
    }
    let path = dir.join(v.get_ref());
    if must_exist {
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Some(format!(
                "allowed_signers `{}` is a directory, not a file",
                path.display()
            )),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "allowed_signers file `{}` not found",
                path.display()
            )),
            Err(e) => Some(format!(
                "cannot read allowed_signers `{}`: {}",
                path.display(),
                lower_io(&e)
            )),
        };
        if let Some(message) = problem {
            return Err(src.err(
                v.span(),
                message,
                format!(
                    "`policy.approvals` needs the signers' keys: `allowed_signers` is relative to \
                     the spec's directory ({}); fix the path or create the file (one \
                     \"NAME ssh-ed25519 KEY\" line per approver, see ssh-keygen(1))",
                    shown_dir(dir).display()
                ),
            ));
        }
    }
    Ok(absolute(&path))
}
