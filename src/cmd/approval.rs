//! Change approval: `plan` (and `plan -o PLAN`, sealed with a fresh id, an expiry and
//! the digests of the files its trust rests on), `approve PLAN` (ssh-keygen -Y sign over
//! the plan's hash, checked against the plan's allowed signers where they can be read)
//! and `apply PLAN` (refuse an edited, expired, applied or stale plan; count distinct
//! valid signers, checked against the spec's trust anchor only). Reads and writes plan
//! files.

use std::path::Path;
use std::time::Duration;

use crate::cli::{Global, SpecArgs};
use crate::diag::InputError;
use crate::exec::wall_ms;
use crate::exit;
use crate::plan::file::{self, Approval, PlanContent, PlanFile, Trust};
use crate::report::count;
use crate::rollout::step::{utc, MIN_RUNS_GRACE};
use crate::rollout::Approved;
use crate::spec::{self, Loaded};
use crate::store::{local_user, write_durably, Access, AuditEntry, Store};

use super::apply::{ask_to_apply, content_of, run_apply, FromPlan, HowToRun};
use super::load;
use super::session::{store, CmdError, CmdResult, Failure};
use super::trust::{self, Anchor, Checked};

/// How to go on from a plan that can no longer be signed or applied.
pub const PLAN_AGAIN: &str =
    "plan again with `wavectl plan SPEC -o PLAN` and have the new plan approved";

/// A readable duration ("10m", "1h 30m").
fn dur(d: Duration) -> String {
    crate::units::duration(Duration::from_secs(d.as_secs()))
}

/// `plan`: the waves, each wave's bake and interval, an estimate of the whole run; with
/// `-o`, the plan file, valid for `valid_for`.
pub async fn plan(
    g: &Global,
    args: &SpecArgs,
    output: Option<&Path>,
    valid_for: Duration,
    allowed_signers: Option<&Path>,
) -> CmdResult {
    let (l, waves) = load(g, args).await?;
    let content = content_of(&l, &waves, args.force);
    let sealed = match output {
        Some(_) => Some(seal(g, &l, content.clone(), valid_for, allowed_signers)?),
        None => {
            check_flag(&l, allowed_signers)?;
            None
        }
    };
    if g.json {
        let value = match &sealed {
            Some(pf) => serde_json::to_value(pf),
            None => serde_json::to_value(&content),
        };
        crate::outln!("{}", value.unwrap_or_default());
    } else {
        crate::outln!("rollout {}: {}", l.rollout.name, l.rollout.description);
        crate::out!(
            "{}",
            crate::plan::render(&waves, &l.targets, l.rollout.waves.spread_by.as_deref())
        );
        crate::outln!("{}", timing(&content, l.concurrency_given));
        if content.approvals > 0 {
            crate::outln!(
                "needs {} before `apply` (policy.approvals)",
                count(content.approvals as usize, "approval")
            );
        }
    }
    if let (Some(out), Some(pf)) = (output, sealed) {
        let text = serde_json::to_string_pretty(&pf).unwrap_or_default() + "\n";
        write_durably(out, text.as_bytes())?;
        if !g.json {
            crate::outln!(
                "plan written to {} ({}), valid until {}",
                out.display(),
                pf.hash,
                pf.expires
            );
            if pf.content.approvals > 0 {
                crate::outln!(
                    "  next: `wavectl approve {} --key KEY` by {}, then `wavectl apply {}`",
                    out.display(),
                    count(pf.content.approvals as usize, "approver"),
                    out.display()
                );
            }
        }
    }
    Ok(exit::OK)
}

/// The plan file of `content`: a fresh id, valid from now for `valid_for`, with the
/// digests of the allowed-signers file (when it needs approvals: exit 2 without one)
/// and of the ssh_config.
fn seal(
    g: &Global,
    l: &Loaded,
    content: PlanContent,
    valid_for: Duration,
    flag: Option<&Path>,
) -> Result<PlanFile, CmdError> {
    check_flag(l, flag)?;
    let allowed_signers = if content.approvals > 0 {
        let anchor = anchor(l, flag, None)?.ok_or_else(|| {
            InputError::in_file(
                &l.rollout.spec_given,
                format!(
                    "rollout {} needs {} and names no allowed-signers file to check them against",
                    content.rollout,
                    count(content.approvals as usize, "approval")
                ),
            )
            .help("set policy.allowed_signers in the spec, or pass --allowed-signers FILE to `plan` (the plan's hash covers the file)")
        })?;
        Some(anchor.digest)
    } else {
        None
    };
    let trust = Trust {
        allowed_signers,
        ssh_config: trust::ssh_config(g)?,
    };
    let now = wall_ms() / 1000;
    let id = hex::encode(rand::random::<[u8; 16]>());
    Ok(PlanFile::new(
        content,
        id,
        utc(now),
        utc(now.saturating_add(valid_for.as_secs())),
        trust,
    ))
}

/// `--allowed-signers` is only for a spec that names none: the spec's trust anchor is
/// the one approvals are checked against, never one the applier brings (exit 2).
fn check_flag(l: &Loaded, flag: Option<&Path>) -> Result<(), InputError> {
    match (&l.rollout.policy.allowed_signers, flag) {
        (Some(named), Some(given)) => Err(InputError::new(format!(
            "--allowed-signers {} is given, but the spec names its own allowed signers ({})",
            given.display(),
            named.display()
        ))
        .help(
            "approvals are checked against the spec's policy.allowed_signers: leave out \
             --allowed-signers (it is only for specs that name none)",
        )),
        _ => Ok(()),
    }
}

/// The allowed-signers file, read: the spec's `policy.allowed_signers`, else the flag
/// (see [`check_flag`]), else `recorded` (the plan's own). `None`: there is none.
fn anchor(
    l: &Loaded,
    flag: Option<&Path>,
    recorded: Option<&Path>,
) -> Result<Option<Anchor>, InputError> {
    let Some(path) = l
        .rollout
        .policy
        .allowed_signers
        .as_deref()
        .or(flag)
        .or(recorded)
    else {
        return Ok(None);
    };
    Anchor::read(
        path,
        "the allowed-signers file",
        "approvals are checked against it: make it readable, or plan again with the file \
         the approvers are in",
    )
    .map(Some)
}

/// Each wave's bake and interval, and how long the run takes at least. `concurrency`:
/// `waves.concurrency` as written (a percentage is shown with what it resolves to).
fn timing(c: &PlanContent, concurrency: spec::WaveSize) -> String {
    let d = &c.deployment;
    let p = &c.policy;
    let per_wave = p.bake
        + if p.min_runs > 0 {
            d.interval
        } else {
            Duration::ZERO
        };
    let least = per_wave * c.waves.len() as u32;
    let limit = (p.bake * 3).max(p.bake + MIN_RUNS_GRACE);
    let mut out = format!(
        "each wave: deploy (at most {} at once{}), then a bake of {} probing every {} (probe timeout {}){}\n",
        count(p.concurrency, "host"),
        match concurrency {
            spec::WaveSize::Percent(pct) => format!(
                ": waves.concurrency = \"{pct}%\" of {}",
                count(c.hosts.len(), "target")
            ),
            spec::WaveSize::Count(_) => String::new(),
        },
        dur(p.bake),
        dur(d.interval),
        dur(d.probe_timeout),
        if p.min_runs > 0 {
            format!(
                ", until every host of the wave ran the script {} (at most {} per wave)",
                count(p.min_runs as usize, "time"),
                dur(limit)
            )
        } else {
            String::new()
        }
    );
    if let Some(g) = &p.gates {
        out.push_str(&super::hold::gates_line(g, c.waves.len()));
        out.push('\n');
    }
    out.push_str(&format!(
        "estimate: at least {} for {} (deploys and confirmation on top); hosts in probation revert themselves if no controller renews their {} lease",
        dur(least),
        count(c.waves.len(), "wave"),
        dur(d.lease)
    ));
    out
}

fn now_utc() -> String {
    utc(wall_ms() / 1000)
}

/// Read a plan file; `None` if the file is not one (a spec, say).
pub fn read_plan(path: &Path) -> Result<Option<PlanFile>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::in_file(path, format!("cannot read: {e}"))
            .help("give the path of a spec or of a plan file")
    })?;
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let pf: PlanFile = serde_json::from_str(&text).map_err(|e| {
        InputError::in_file(path, format!("not a readable plan file: {e}"))
            .help("write it again with `wavectl plan SPEC -o PLAN`")
    })?;
    if pf.format != file::FORMAT {
        return Err(InputError::in_file(
            path,
            format!(
                "plan file format {}, this wavectl reads {}",
                pf.format,
                file::FORMAT
            ),
        )
        .help("plan again with this wavectl"));
    }
    if !file::valid_id(&pf.id) {
        return Err(InputError::in_file(
            path,
            format!("plan id `{}` is not 32 hex digits", pf.id.escape_debug()),
        )
        .help("write it again with `wavectl plan SPEC -o PLAN`"));
    }
    Ok(Some(pf))
}

/// Whether an approval's signer was checked against the plan's allowed signers here.
enum Signer {
    /// The principal the allowed signers name for the key.
    Verified(String),
    /// Not checked here (why): `apply` checks it.
    Unverified(String),
}

/// `approve PLAN --key KEY [--by NAME]`: sign the plan's hash and add the approval.
/// Where the plan's allowed-signers file can be read (unchanged), the signature is
/// checked at once: a key it does not list signs nothing, and the approval is recorded
/// under the principal it names. The audit log names only a verified signer.
pub async fn approve(g: &Global, plan: &Path, key: &Path, by: Option<&str>) -> CmdResult {
    let mut pf = read_plan(plan)?.ok_or_else(|| {
        InputError::in_file(plan, "not a plan file")
            .help("write one with `wavectl plan SPEC -o PLAN`")
    })?;
    let store = store(g, Access::Write).await?;
    if let Some(why) = unusable(&*store, &pf, plan).await? {
        return Err(CmdError::Refused(
            Failure::new(format!("{why}; nothing was signed")).help(PLAN_AGAIN),
        ));
    }
    let signature = trust::sign(key, &file::signed_text(&pf.hash))?;
    let signer = match &pf.trust.allowed_signers {
        None => Signer::Unverified("the plan needs no approval".into()),
        Some(d) => match Anchor::read(&d.path, "the allowed-signers file", "") {
            Err(_) => Signer::Unverified(format!("{} cannot be read here", d.path.display())),
            Ok(a) if a.digest.sha256 != d.sha256 => {
                return Err(CmdError::Refused(
                    Failure::new(format!(
                        "{}: the plan is stale: {}; nothing was signed",
                        plan.display(),
                        file::trust_differences(&pf.trust, &Trust { allowed_signers: Some(a.digest), ..pf.trust.clone() }).join("; ")
                    ))
                    .help(PLAN_AGAIN),
                ))
            }
            Ok(a) => match trust::check(&a, &signature, &pf.hash)? {
                Checked::Valid(p) => Signer::Verified(p),
                Checked::NotListed | Checked::Invalid(_) => {
                    return Err(InputError::new(format!(
                        "{} is not a key of the plan's allowed signers ({}): its approval would not count; nothing was signed",
                        key.display(),
                        d.path.display()
                    ))
                    .help("sign with your own key, the one the allowed-signers file lists for you")
                    .into())
                }
            },
        },
    };
    let by = match (&signer, by) {
        (Signer::Verified(p), Some(b)) if b != p => return Err(InputError::new(format!(
            "{} signs as {p} in the plan's allowed signers, not as {b}; nothing was signed",
            key.display()
        ))
        .help("leave out --by (the allowed signers say whose key it is), or sign with your own key")
        .into()),
        (Signer::Verified(p), _) => p.clone(),
        (Signer::Unverified(_), Some(b)) => b.to_string(),
        (Signer::Unverified(_), None) => local_user(),
    };
    pf.approvals.push(Approval {
        by: by.clone(),
        at: now_utc(),
        signature,
    });
    let text = serde_json::to_string_pretty(&pf).unwrap_or_default() + "\n";
    write_durably(plan, text.as_bytes())?;
    let (signers, detail, verified) = match &signer {
        Signer::Verified(p) => (vec![p.clone()], String::new(), Some(p.clone())),
        Signer::Unverified(why) => (
            Vec::new(),
            format!("claimed by {by}; not verified here: {why}"),
            None,
        ),
    };
    let entry = AuditEntry {
        at: now_utc(),
        user: local_user(),
        action: "approve".into(),
        outcome: "signed".into(),
        rollout: pf.content.rollout.clone(),
        plan_hash: Some(pf.hash.clone()),
        script_sha256: Some(pf.content.deployment.sha256.clone()),
        signers,
        detail,
        command: crate::store::command_line(),
        ..AuditEntry::default()
    };
    let _ = store.audit(&entry).await;
    super::session::reporter(g).emit(crate::report::Event::Approved {
        by,
        verified,
        plan: plan.display().to_string(),
        hash: pf.hash.clone(),
        signatures: pf.approvals.len(),
        needed: pf.content.approvals,
        unverified: match signer {
            Signer::Unverified(why) => Some(why),
            Signer::Verified(_) => None,
        },
    });
    Ok(exit::OK)
}

/// Why a plan can no longer be signed or applied whatever its approvals: edited,
/// expired, or applied already by a run of this state directory.
async fn unusable(
    store: &dyn Store,
    pf: &PlanFile,
    path: &Path,
) -> Result<Option<String>, CmdError> {
    if !pf.intact() {
        return Ok(Some(format!(
            "{}: the plan was edited after it was written (its content no longer matches {})",
            path.display(),
            pf.hash
        )));
    }
    let expires = humantime::parse_rfc3339(&pf.expires).ok();
    if expires.is_none_or(|t| std::time::SystemTime::now() > t) {
        return Ok(Some(format!(
            "{} expired at {} (it was written at {})",
            path.display(),
            pf.expires,
            pf.created
        )));
    }
    if let Some(a) = store.applied_plan(&pf.id).await? {
        return Ok(Some(format!(
            "{} was applied already, by run {} at {} ({}): a plan applies once",
            path.display(),
            a.run,
            a.at,
            a.user
        )));
    }
    Ok(None)
}

/// `apply PLAN`: the plan must be intact, unexpired, not applied before, still what the
/// spec resolves to (its allowed signers and ssh_config the same bytes), and carry
/// enough distinct valid approvals; then it runs like `apply SPEC`.
pub async fn apply_plan(
    g: &Global,
    args: &SpecArgs,
    pf: PlanFile,
    yes: bool,
    skip_unreachable: bool,
    allowed_signers: Option<&Path>,
    metrics: Option<&Path>,
) -> CmdResult {
    let metrics = super::session::metrics_file(metrics)?;
    let path = &args.rollout;
    let store = store(g, Access::Write).await?;
    let refuse = async |e: CmdError| -> CmdResult {
        let entry = AuditEntry {
            at: now_utc(),
            user: local_user(),
            action: "apply".into(),
            outcome: "refused".into(),
            exit_code: Some(e.code()),
            rollout: pf.content.rollout.clone(),
            plan_hash: Some(pf.hash.clone()),
            script_sha256: Some(pf.content.deployment.sha256.clone()),
            detail: e.to_string(),
            command: crate::store::command_line(),
            ..AuditEntry::default()
        };
        let _ = store.audit(&entry).await;
        Err(e)
    };
    if let Some(why) = unusable(&*store, &pf, path).await? {
        return refuse(CmdError::Refused(Failure::new(why).help(PLAN_AGAIN))).await;
    }
    let c = &pf.content;
    let opts = super::load_options(g, c.deployment.force, c.limit.clone()).await?;
    let inventory = args
        .inventory
        .clone()
        .unwrap_or_else(|| c.inventory.clone());
    let loaded = spec::load_with(&c.spec, Some(&inventory), &opts)?;
    if let Err(e) = check_flag(&loaded, allowed_signers) {
        return refuse(e.into()).await;
    }
    let needed = c.approvals as usize;
    let recorded = pf.trust.allowed_signers.as_ref().map(|d| d.path.as_path());
    let anchor = if needed > 0 {
        anchor(&loaded, allowed_signers, recorded)?
    } else {
        None
    };
    let waves = crate::plan::waves(&loaded.targets, &loaded.rollout.waves)?;
    let now = content_of(&loaded, &waves, c.deployment.force);
    let mut changes = file::differences(c, &now);
    let trust_now = Trust {
        allowed_signers: anchor.as_ref().map(|a| a.digest.clone()),
        ssh_config: trust::ssh_config(g)?,
    };
    changes.extend(file::trust_differences(&pf.trust, &trust_now));
    if !changes.is_empty() {
        return refuse(CmdError::Refused(
            Failure::new(format!(
                "{} is stale: what it would do differs from what {} resolves to now:\n{}",
                path.display(),
                c.spec.display(),
                changes
                    .iter()
                    .map(|l| format!("  - {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ))
            .help(format!(
                "plan again with `wavectl plan {} -o PLAN` and have the new plan approved",
                c.spec.display()
            )),
        ))
        .await;
    }
    let mut signers = std::collections::BTreeSet::new();
    if needed > 0 {
        // The plan records an anchor whenever it needs approvals, and its bytes are
        // those of now (or it is stale above).
        let Some(anchor) = anchor else {
            return refuse(CmdError::Refused(
                Failure::new(format!(
                    "{} needs {} but names no allowed-signers file to check them against",
                    path.display(),
                    count(needed, "approval")
                ))
                .help(PLAN_AGAIN),
            ))
            .await;
        };
        let (valid, problems) = trust::verify(&pf, &anchor)?;
        if valid.len() < needed {
            let mut why = format!(
                "{} has {} of the {} it needs (policy.approvals){}",
                path.display(),
                count(valid.len(), "valid approval"),
                count(needed, "approval"),
                if valid.is_empty() {
                    String::new()
                } else {
                    format!(": {}", valid.iter().cloned().collect::<Vec<_>>().join(", "))
                }
            );
            for p in &problems {
                why.push_str(&format!("\n  - {p}"));
            }
            let help = format!(
                "`wavectl approve {} --key KEY` by distinct approvers in {}",
                path.display(),
                anchor.digest.path.display()
            );
            return refuse(CmdError::Refused(Failure::new(why).help(help))).await;
        }
        signers = valid;
    }
    let what = format!("plan {} ({})", path.display(), pf.hash);
    if !ask_to_apply(yes, &loaded, &waves, &what)? {
        eprintln!("not applied");
        return Ok(exit::ABORTED);
    }
    let from = FromPlan {
        id: pf.id.clone(),
        approved: Approved {
            plan: std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()),
            hash: pf.hash.clone(),
            signers: signers.into_iter().collect(),
        },
    };
    run_apply(
        g,
        &store,
        &loaded,
        &waves,
        HowToRun {
            force: c.deployment.force,
            skip_unreachable,
        },
        Some(from),
        metrics,
    )
    .await
}
