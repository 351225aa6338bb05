//! PURE: targets → waves (Ansible `serial` sizes, canaries first, `spread_by` /
//! `max_per_group`), and the text `wavectl plan` prints. No network, files or clock.
//!
//! The rules, in the order they apply (see [`waves`]):
//!
//! - **sizes** follow Ansible's `serial`: entry N is wave N's size, a count or a
//!   percentage of *all* targets (rounded down, at least 1); the last entry repeats
//!   until every target is in a wave; a size larger than what remains takes what
//!   remains. A count of 0 means "all remaining" (Ansible's `serial: 0`), and empty
//!   `sizes` mean `["100%"]`.
//! - **canaries** are pinned into wave 1, in the order `waves.canaries` lists them.
//!   If there are more canaries than wave 1's size, wave 1 grows to hold exactly the
//!   canaries. Every other slot is filled in target order.
//! - **spread_by / max_per_group**: no wave holds more than `max_per_group` hosts with
//!   the same value of the `spread_by` label. A host without that label is a group of
//!   its own. A wave that cannot be filled without breaking this holds fewer hosts,
//!   and waves are added (each added wave takes the next `sizes` entry, the last one
//!   repeating) until every target is placed. Canaries that alone break it are an error.
//! - **at most [`MAX_WAVES`] waves**: a plan that would need more is an error, found at
//!   once (a group too big for `max_per_group` before planning; small sizes as the
//!   planner passes the bound). Planning is O(n log n) in the targets.

pub mod file;
mod render;
mod waves;

pub use waves::MAX_WAVES;

use crate::diag::InputError;
use crate::inventory::Host;
use crate::spec::WaveSpec;

/// One wave: the hosts deployed together, then baked and judged together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Wave {
    /// 1-based.
    pub index: usize,
    /// Host names, canaries first, then in target order.
    pub hosts: Vec<String>,
}

/// Split the targets into waves. Errors (as `InputError`, exit 2) only when the
/// constraints cannot be met, e.g. canaries that alone break `max_per_group`, or when
/// the plan would pass [`MAX_WAVES`].
///
/// Deterministic: the same targets (in the same order) and spec give the same waves.
/// Every target is in exactly one wave, no wave is empty, and indices run 1, 2, ….
/// No targets give no waves.
pub fn waves(targets: &[Host], spec: &WaveSpec) -> Result<Vec<Wave>, InputError> {
    waves::split(targets, spec)
}

/// The human display of a plan: hosts per wave, and each group's count where
/// `spread_by` is set.
pub fn render(waves: &[Wave], targets: &[Host], spread_by: Option<&str>) -> String {
    render::render(waves, targets, spread_by)
}
