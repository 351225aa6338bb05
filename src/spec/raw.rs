//! The spec file as written: serde structs with spans, unknown keys refused.
//! No defaults and no checks beyond TOML types here; `resolve` does both, once.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::{ActivationKind, Builtin, OnFailure};

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpec {
    pub name: Option<S<String>>,
    pub description: Option<String>,
    pub inventory: Option<S<String>>,
    pub script: Option<S<RawScript>>,
    pub activation: Option<S<RawActivation>>,
    #[serde(default)]
    pub targets: RawTargets,
    #[serde(default)]
    pub waves: RawWaves,
    #[serde(default)]
    pub health: RawHealth,
    #[serde(default)]
    pub policy: RawPolicy,
    pub gates: Option<S<RawGates>>,
    pub notify: Option<S<RawNotify>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScript {
    pub source: Option<S<String>>,
    pub install_path: Option<S<String>>,
    pub mode: Option<S<IntOrStr>>,
    pub timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActivation {
    pub kind: Option<ActivationKind>,
    pub schedule: Option<S<String>>,
    pub run_on_install: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTargets {
    pub select: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub exclude: Vec<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaves {
    pub sizes: Option<S<Vec<S<IntOrStr>>>>,
    #[serde(default)]
    pub canaries: Vec<S<String>>,
    pub spread_by: Option<S<String>>,
    pub max_per_group: Option<S<i64>>,
    pub concurrency: Option<S<IntOrStr>>,
    pub bake: Option<S<String>>,
    pub min_runs: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub interval: Option<S<String>>,
    pub probe_timeout: Option<S<String>>,
    pub builtin: Option<S<Vec<S<Builtin>>>>,
    pub baseline_samples: Option<S<i64>>,
    pub strikes: Option<S<i64>>,
    pub load_per_core: Option<S<f64>>,
    pub blocked: Option<S<i64>>,
    pub pressure_cpu: Option<S<i64>>,
    pub pressure_memory: Option<S<i64>>,
    pub pressure_io: Option<S<i64>>,
    pub restarts: Option<S<i64>>,
    #[serde(default)]
    pub check: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub name: S<String>,
    pub command: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub max_unhealthy: Option<S<i64>>,
    pub on_failure: Option<OnFailure>,
    pub approvals: Option<S<i64>>,
    pub allowed_signers: Option<S<String>>,
    pub lease: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub command: Option<S<String>>,
    pub events: Option<S<Vec<S<String>>>>,
    pub timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGates {
    pub after: Option<S<Vec<S<i64>>>>,
    pub timeout: Option<S<String>>,
}

/// A value that may be written as an integer or a string (`waves.sizes`, `mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
