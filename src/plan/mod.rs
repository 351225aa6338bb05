//! PURE: targets → waves (Ansible `serial` sizes, canaries first, `spread_by` /
//! `max_per_group`). No network, files or clock.

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
/// constraints cannot be met, e.g. canaries that alone break `max_per_group`.
pub fn waves(targets: &[Host], spec: &WaveSpec) -> Result<Vec<Wave>, InputError> {
    let _ = (targets, spec);
    todo!("plan::waves")
}

/// The human display of a plan: hosts per wave, and each group's count where
/// `spread_by` is set.
pub fn render(waves: &[Wave], targets: &[Host], spread_by: Option<&str>) -> String {
    let _ = (waves, targets, spread_by);
    todo!("plan::render")
}
