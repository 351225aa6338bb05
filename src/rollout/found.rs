//! PURE: what a host's own answer says of this run's install — gone, by a probe report
//! (its guard reverted it when its lease ran out, or another run's install replaced it:
//! [`Lost`]), or what a settle report finds there ([`Finding`]) — and the verdict of a
//! host whose install is gone. exec/ hands over the host's raw reports; these decide.

use super::event::{Finding, Lost};
use super::probe_report::ProbeReport;
use super::step::lease_verdict;
use super::verdict::{Evidence, Health, Verdict};
use crate::remote::{ManifestState, SettleReport};

/// What a probe report says of run `run`'s install: gone (reverted, or replaced), or
/// `None`: still there.
pub fn lost(r: &ProbeReport, run: &str) -> Option<Lost> {
    if let Some(rv) = r.reverted.as_ref().filter(|rv| rv.run_id == run) {
        return Some(Lost::Reverted {
            lease_until: rv.lease_until,
            at: rv.at,
            clean: rv.clean,
        });
    }
    match &r.owner {
        Some(o) if o == run => None,
        other => Some(Lost::Replaced {
            owner: other.clone(),
        }),
    }
}

/// The verdict of a host whose install of the run is gone.
pub fn lost_verdict(lost: &Lost) -> Verdict {
    match lost {
        Lost::Reverted {
            lease_until, at, ..
        } => lease_verdict(*lease_until, *at),
        Lost::Replaced { owner } => Verdict::bad(
            Health::Degraded,
            Evidence::new("install").raw(match owner {
                Some(o) => format!("this run's install is gone: the host holds run {o}'s"),
                None => "this run's install is gone from the host".to_string(),
            }),
        ),
    }
}

/// What a settle report says the host holds of run `run`.
pub fn finding(f: &SettleReport, run: &str) -> Finding {
    if let Some(r) = f.reverted.as_ref().filter(|r| r.run_id == run) {
        return Finding::Reverted {
            lease_until: r.lease_until,
            at: r.at,
            clean: r.clean,
        };
    }
    match &f.manifest {
        Some(m) if m.run_id == run && m.state != ManifestState::Revoked => Finding::Ours {
            confirmed: m.state == ManifestState::Confirmed,
            runs: f.runs,
            running: f.running,
        },
        Some(m) if m.run_id == run => Finding::Partial,
        _ if f.txn.as_deref() == Some(run) => Finding::Partial,
        m => Finding::Absent {
            other: m.as_ref().map(|m| m.run_id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::probe_report::Reverted;

    const RUN: &str = "r1";

    fn reverted(run: &str) -> Reverted {
        Reverted {
            run_id: run.into(),
            lease_until: 1_800_000_000,
            at: 1_800_000_060,
            clean: true,
        }
    }

    #[test]
    fn a_probe_report_says_whether_the_install_is_gone_and_the_verdict_names_why() {
        let ours = ProbeReport {
            owner: Some(RUN.into()),
            ..ProbeReport::default()
        };
        assert_eq!(lost(&ours, RUN), None);
        // Reverted by its guard: the lease's evidence.
        let r = ProbeReport {
            reverted: Some(reverted(RUN)),
            ..ProbeReport::default()
        };
        let l = lost(&r, RUN).expect("gone");
        assert!(matches!(l, Lost::Reverted { clean: true, .. }), "{l:?}");
        let v = lost_verdict(&l);
        assert_eq!(v.health, Health::Degraded);
        assert!(
            v.evidence[0].to_string().contains("lease expired at"),
            "{v:?}"
        );
        // Another run's revert says nothing of ours; its manifest names another run.
        let other = ProbeReport {
            reverted: Some(reverted("r0")),
            owner: Some("r2".into()),
            ..ProbeReport::default()
        };
        let l = lost(&other, RUN).expect("gone");
        assert_eq!(
            l,
            Lost::Replaced {
                owner: Some("r2".into())
            }
        );
        assert!(lost_verdict(&l).evidence[0]
            .to_string()
            .contains("install is gone: the host holds run r2's"));
        let none = lost(&ProbeReport::default(), RUN).expect("gone");
        assert!(lost_verdict(&none).evidence[0]
            .to_string()
            .contains("install is gone from the host"));
    }

    #[test]
    fn a_settle_report_finds_reverted_ours_partial_or_absent() {
        let f = SettleReport {
            reverted: Some(reverted(RUN)),
            ..SettleReport::default()
        };
        assert!(matches!(
            finding(&f, RUN),
            Finding::Reverted { clean: true, .. }
        ));
        let f = SettleReport {
            txn: Some(RUN.into()),
            ..SettleReport::default()
        };
        assert_eq!(finding(&f, RUN), Finding::Partial);
        assert_eq!(
            finding(&SettleReport::default(), RUN),
            Finding::Absent { other: None }
        );
    }
}
