//! Rollout spec: TOML → raw spec (serde, spans for errors) → resolved spec (defaults
//! applied once, no Options left). Reads the spec, its script and its inventory; no network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::{InputError, Pos};
use crate::inventory::{self, Host, Inventory};

mod activation;
mod duration;
mod gates;
mod health;
mod limits;
mod notify;
mod pattern;
mod protected;
mod raw;
mod resolve;
mod select;
pub(crate) mod source;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_operator;
mod values;
mod waves;

pub use activation::ActivationKind;
pub use gates::Gates;
pub use notify::{EventKind, Notify};
pub(crate) use pattern::Limit;
pub use pattern::{RunHosts, RunSet, RunSets};
pub(crate) use protected::host_list as protected_host_list;
pub use select::select_hosts;

/// A value from the spec with the place it came from, for errors found later
/// (a selector that matches nothing, a canary not among the targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Option<Pos>,
}

/// A validated rollout spec.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// `[a-z0-9][a-z0-9-]*`, at most 63 chars.
    pub name: String,
    pub description: String,
    /// The spec file itself (plan hashes it), absolute: canonicalized once at load, so
    /// a journal recording it means the same file from any working directory.
    pub spec_path: PathBuf,
    /// The spec path as the user gave it: messages name the file this way.
    pub spec_given: PathBuf,
    /// Resolved against the spec's directory, or the `--inventory` override; absolute
    /// like `spec_path`. (`Inventory::path` is the same file as the user gave it.)
    pub inventory_path: PathBuf,
    pub script: Script,
    pub activation: Activation,
    pub targets: Targets,
    pub waves: WaveSpec,
    pub health: Health,
    pub policy: Policy,
    /// `[notify]`: the hook run on the controller for events of the listed kinds.
    pub notify: Option<Notify>,
    /// `[gates]`: the waves after whose bake the run waits for `wavectl promote`.
    pub gates: Option<Gates>,
}

#[derive(Debug, Clone)]
pub struct Script {
    /// The source path on the controller, resolved against the spec's directory and
    /// absolute.
    pub source: PathBuf,
    /// The script's bytes, read once at load.
    pub body: Vec<u8>,
    /// Lowercase hex sha256 of `body`.
    pub sha256: String,
    /// Absolute path on the host, no `..`, no control characters.
    pub install_path: String,
    /// File mode, e.g. 0o755.
    pub mode: u32,
    /// Every run of the script on a host is killed after this.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Activation {
    pub kind: ActivationKind,
    /// Cron schedule (five fields or an @keyword); for systemd-timer, an OnCalendar value.
    /// Empty when kind is None.
    pub schedule: String,
    pub run_on_install: bool,
}

/// A label selector `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct Targets {
    pub select: Vec<Located<Selector>>,
    pub exclude: Vec<Located<String>>,
}

/// One entry of `waves.sizes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveSize {
    Count(usize),
    /// 1..=100
    Percent(u32),
}

#[derive(Debug, Clone)]
pub struct WaveSpec {
    /// Default `[1, "10%", "100%"]`; never empty.
    pub sizes: Vec<WaveSize>,
    pub canaries: Vec<Located<String>>,
    pub spread_by: Option<String>,
    /// 1 when `spread_by` is set without it; `usize::MAX` without `spread_by`.
    pub max_per_group: usize,
    /// Hosts worked on at once: `waves.concurrency` resolved against the run's targets
    /// (after `--limit`) by `load_with` (`Loaded::concurrency_given` keeps it as written).
    pub concurrency: usize,
    pub bake: Duration,
    pub min_runs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    Reachable,
    Script,
    Kernel,
    Units,
    Oom,
    Blocked,
    Load,
    Pressure,
}

impl Builtin {
    /// Every built-in signal (`rollout/signals.rs` has an entry for each: a test checks).
    pub const ALL: [Builtin; 8] = [
        Builtin::Reachable,
        Builtin::Script,
        Builtin::Kernel,
        Builtin::Units,
        Builtin::Oom,
        Builtin::Blocked,
        Builtin::Load,
        Builtin::Pressure,
    ];

    /// Its one spelling, in the spec and in messages (serde's kebab-case is the same
    /// words: a test checks).
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Reachable => "reachable",
            Builtin::Script => "script",
            Builtin::Kernel => "kernel",
            Builtin::Units => "units",
            Builtin::Oom => "oom",
            Builtin::Blocked => "blocked",
            Builtin::Load => "load",
            Builtin::Pressure => "pressure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// `[A-Za-z0-9][A-Za-z0-9_.-]*`
    pub name: String,
    /// Run by `sh -c` on the host; exit 0 = healthy.
    pub command: String,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub interval: Duration,
    pub probe_timeout: Duration,
    pub builtin: Vec<Builtin>,
    pub checks: Vec<Check>,
    pub thresholds: Thresholds,
}

/// How the built-in signals are judged: `[health]`'s threshold keys, with their defaults
/// (`Thresholds::default()`, which also fills a journal written before a key existed).
/// The ranges are in `limits.rs`, and where each default comes from is documented there
/// and in the spec table (docs/SPEC.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Probes of each host (and control) before a wave, `min(interval, 5s)` apart.
    pub baseline_samples: u32,
    /// A continuous signal must be out of line this many probes in a row.
    pub strikes: u32,
    /// 1-minute load per CPU: the floor (and half of it the rise) for `load`.
    pub load_per_core: f64,
    /// `procs_blocked`: the floor (and half of it the rise) for `blocked`.
    pub blocked: u32,
    /// Percent of wall time some task stalled on the resource (PSI `some`), per probe
    /// interval: the floors (and half of each the rise) for `pressure.*`.
    pub pressure_cpu: u32,
    pub pressure_memory: u32,
    pub pressure_io: u32,
    /// Restarts of one unit (`NRestarts`) since the baseline that make a restart storm.
    pub restarts: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            baseline_samples: 3,
            strikes: 3,
            load_per_core: 1.0,
            blocked: 4,
            pressure_cpu: 50,
            pressure_memory: 10,
            pressure_io: 20,
            restarts: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    Rollback,
    Pause,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub max_unhealthy: usize,
    pub on_failure: OnFailure,
    pub approvals: u32,
    /// A host on probation reverts itself when its lease has not been renewed for this
    /// long: `policy.lease`, default 15m (or 3 × `health.interval` when that is longer),
    /// always at least 3 × the interval.
    pub lease: Duration,
    /// `policy.allowed_signers` (an ssh-keygen allowed-signers file), resolved against
    /// the spec's directory and absolute. Checked to exist only when `approvals > 0`.
    pub allowed_signers: Option<PathBuf>,
}

/// How to load a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--force`: allow an `install_path` on the protected list (the tools wavectl's
    /// host side runs, what keeps a host reachable and bootable). Every other rule holds.
    pub force: bool,
    /// `--limit PATTERN` (Ansible host patterns, see `spec::pattern`): narrows the targets the spec selects; waves are
    /// planned over what is left, and canaries it leaves out are dropped.
    pub limit: Option<String>,
    /// The hosts of the runs its `@failed:RUN`, `@pending:RUN` and `@untouched:RUN` terms
    /// name, read by the caller from their journals ([`limit_runs`] lists them).
    pub runs: RunSets,
}

/// A spec with its inventory and the hosts it selects, all validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub rollout: Rollout,
    pub inventory: Inventory,
    /// Hosts selected by `[targets]` (and `--limit`), in inventory order.
    pub targets: Vec<Host>,
    /// The `--limit` pattern the targets were narrowed by, if any.
    pub limit: Option<String>,
    /// `waves.concurrency` as written: a count, or a percentage of the targets (which
    /// `rollout.waves.concurrency` resolves).
    pub concurrency_given: WaveSize,
}

/// Read and validate a spec, its script and its inventory (`inventory` overrides the
/// spec's), with the default options.
pub fn load(spec_path: &Path, inventory: Option<&Path>) -> Result<Loaded, InputError> {
    load_with(spec_path, inventory, &LoadOptions::default())
}

/// Read and validate a spec, its script and its inventory (`inventory` overrides the spec's).
///
/// Errors name the file they come from (the spec, or the inventory) as the user gave it,
/// with line:col where the value comes from a file. Nothing is contacted over the network.
pub fn load_with(
    spec_path: &Path,
    inventory: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Loaded, InputError> {
    let src = source::SourceFile::read(spec_path, "rollout spec")?;
    let raw: raw::RawSpec = src.parse()?;
    let resolved = resolve::resolve(&src, raw, inventory, opts)?;
    let mut rollout = resolved.rollout;
    let inventory_given = &resolved.inventory_given;
    let inventory = inventory::load(inventory_given).map_err(|e| {
        // A missing inventory named by the spec is a bad value in the spec: point at it.
        match resolved.inventory_pos {
            Some(pos) if !inventory_given.exists() => InputError::in_file(
                &src.path,
                format!("inventory `{}` not found", inventory_given.display()),
            )
            .at(pos)
            .help(format!(
                "`inventory` is relative to the spec's directory ({}); fix the path, create the \
                 file, or pass --inventory FILE",
                match spec_path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
                    _ => ".".to_string(),
                }
            )),
            _ => e,
        }
    })?;
    let err = |pos: Option<Pos>, b: inventory::Bad| {
        let e = InputError::in_file(&src.path, b.message).help(b.help);
        match pos {
            Some(p) => e.at(p),
            None => e,
        }
    };
    let mut targets = select::choose(
        &inventory,
        &rollout.targets.select,
        &rollout.targets.exclude,
        resolved.select_pos,
        &err,
    )?;
    waves::check_against_targets(
        &src,
        &rollout.waves,
        resolved.spread_by_pos,
        &inventory,
        &targets,
    )?;
    if opts.limit.is_some() {
        targets = limit_hosts(
            &inventory,
            targets,
            opts.limit.as_deref(),
            &opts.runs,
            "targets of the rollout",
        )?;
        rollout
            .waves
            .canaries
            .retain(|c| targets.iter().any(|t| t.name == c.value));
    }
    rollout.waves.concurrency = waves::concurrency_of(resolved.concurrency_given, targets.len());
    Ok(Loaded {
        rollout,
        inventory,
        targets,
        limit: opts.limit.clone(),
        concurrency_given: resolved.concurrency_given,
    })
}

/// Narrow `hosts` (some of `inv`'s, in order) by a `--limit` pattern, if there is one,
/// its `@STATE:RUN` terms filled from `runs`; `what` names them in the error for a limit
/// that leaves none ("targets of the rollout").
pub fn limit_hosts(
    inv: &Inventory,
    hosts: Vec<Host>,
    limit: Option<&str>,
    runs: &RunSets,
    what: &str,
) -> Result<Vec<Host>, InputError> {
    let Some(pattern) = limit else {
        return Ok(hosts);
    };
    Limit::parse(pattern)
        .and_then(|l| l.with_runs(runs).apply(inv, hosts, what))
        .map_err(|b| InputError::new(b.message).help(b.help))
}

/// The `@STATE:RUN` terms of a `--limit` pattern (none without one), whose hosts the
/// caller reads from the runs' journals into [`LoadOptions::runs`]. A pattern that does
/// not parse is an error here already.
pub fn limit_runs(limit: Option<&str>) -> Result<Vec<(RunHosts, String)>, InputError> {
    match limit {
        None => Ok(Vec::new()),
        Some(p) => Limit::parse(p)
            .map(|l| l.runs())
            .map_err(|b| InputError::new(b.message).help(b.help)),
    }
}

/// Check a rollout name given on the command line (`purge NAME`).
pub fn check_name_arg(name: &str) -> Result<(), InputError> {
    values::ROLLOUT_NAME
        .check(name)
        .map_err(|b| InputError::new(format!("bad NAME: {}", b.message)).help(b.help))
}

/// Check a script path given on the command line (`purge --path PATH`): the rules of
/// `install_path`, and (unless `force`, the operator's `--force`) not a protected path.
pub fn check_path_arg(path: &str, force: bool) -> Result<(), InputError> {
    values::check_install_path(path).map_err(|b| {
        InputError::new(format!(
            "bad --path: {}",
            b.message.replacen("install_path ", "", 1)
        ))
        .help(b.help)
    })?;
    match protected::check(path).filter(|_| !force) {
        Some(p) => Err(InputError::new(format!(
            "bad --path: {} is {}",
            inventory::shown(path),
            p.what
        ))
        .help(p.help("removing"))),
        None => Ok(()),
    }
}

/// A duration given on the command line (`--login-timeout`): the spec's units, a range.
pub fn parse_duration_flag(
    key: &'static str,
    s: &str,
    min: Duration,
    max: Duration,
    what: &'static str,
) -> Result<Duration, String> {
    let rule = limits::DurationKey {
        key,
        min,
        max,
        what,
    };
    duration::parse(&rule, s).map_err(|b| format!("{} ({})", b.message, b.help))
}
