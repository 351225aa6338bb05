//! Exit codes, as DESIGN.md's contract gives them.

/// Done and healthy.
pub const OK: i32 = 0;
/// Rolled back, or paused, on a health failure.
pub const ROLLED_BACK: i32 = 1;
/// Bad input: spec, inventory, flags.
pub const BAD_INPUT: i32 = 2;
/// Aborted by the operator.
pub const ABORTED: i32 = 3;
/// Incomplete: some hosts still pending (unreachable during rollback or purge).
pub const INCOMPLETE: i32 = 4;
/// Refused: missing approvals or a stale plan.
pub const REFUSED: i32 = 5;

/// One sentence on what an exit code means, for the closing summary.
pub fn meaning(code: i32) -> &'static str {
    match code {
        OK => "done: every host healthy and confirmed",
        ROLLED_BACK => "rolled back (or paused) on a health failure",
        BAD_INPUT => "bad input: nothing was touched on any host",
        ABORTED => "aborted by the operator",
        INCOMPLETE => {
            "incomplete: some hosts are still pending; run `wavectl reconcile` once they answer"
        }
        REFUSED => "refused: missing approvals or a stale plan",
        _ => "internal error",
    }
}
