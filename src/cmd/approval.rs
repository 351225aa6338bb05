//! Change approval: `plan` (and `plan -o PLAN`), `approve PLAN` (ssh-keygen -Y sign over
//! the plan's hash) and `apply PLAN` (re-resolve, refuse a stale plan, count distinct
//! valid signers against `policy.approvals`). Runs `ssh-keygen`; reads and writes plan files.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::{Global, SpecArgs};
use crate::diag::InputError;
use crate::exit;
use crate::journal::{write_durably, AuditEntry};
use crate::plan::file::{self, Approval, PlanContent, PlanFile};
use crate::report::count;
use crate::rollout::step::{utc, MIN_RUNS_GRACE};
use crate::rollout::Approved;
use crate::spec;

use super::apply::{ask_to_apply, content_of, local_user, run_apply};
use super::load;
use super::session::{state_dir, CmdError, CmdResult};

/// A readable duration ("10m", "1h 30m").
fn dur(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// `plan`: the waves, each wave's bake and interval, an estimate of the whole run; with
/// `-o`, the plan file.
pub fn plan(g: &Global, args: &SpecArgs, output: Option<&Path>) -> CmdResult {
    let (l, waves) = load(g, args)?;
    let content = content_of(&l, &waves, args.force);
    if g.json {
        let value = match output {
            Some(_) => serde_json::to_value(PlanFile::new(content.clone(), now_utc())),
            None => serde_json::to_value(&content),
        };
        println!("{}", value.unwrap_or_default());
    } else {
        println!("rollout {}: {}", l.rollout.name, l.rollout.description);
        print!(
            "{}",
            crate::plan::render(&waves, &l.targets, l.rollout.waves.spread_by.as_deref())
        );
        println!("{}", timing(&content, l.concurrency_given));
        if content.approvals > 0 {
            println!(
                "needs {} before `apply` (policy.approvals)",
                count(content.approvals as usize, "approval")
            );
        }
    }
    if let Some(out) = output {
        let pf = PlanFile::new(content, now_utc());
        let text = serde_json::to_string_pretty(&pf).unwrap_or_default() + "\n";
        write_durably(out, text.as_bytes())?;
        if !g.json {
            println!("plan written to {} ({})", out.display(), pf.hash);
            if pf.content.approvals > 0 {
                println!(
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
    out.push_str(&format!(
        "estimate: at least {} for {} (deploys and confirmation on top); hosts in probation revert themselves if no controller renews their {} lease",
        dur(least),
        count(c.waves.len(), "wave"),
        dur(d.lease)
    ));
    out
}

fn now_utc() -> String {
    utc(crate::exec::now_ms() / 1000)
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
    Ok(Some(pf))
}

/// `approve PLAN --key KEY [--by NAME]`: sign the plan's hash and add the approval.
pub fn approve(g: &Global, plan: &Path, key: &Path, by: Option<&str>) -> CmdResult {
    let mut pf = read_plan(plan)?.ok_or_else(|| {
        InputError::in_file(plan, "not a plan file")
            .help("write one with `wavectl plan SPEC -o PLAN`")
    })?;
    if !pf.intact() {
        return Err(CmdError::Refused(format!(
            "{}: the plan was edited after it was written (its content no longer matches {}); nothing was signed\n  help: plan again with `wavectl plan SPEC -o PLAN`",
            plan.display(),
            pf.hash
        )));
    }
    let by = by.map_or_else(local_user, String::from);
    let signature = ssh_keygen_sign(key, &file::signed_text(&pf.hash))?;
    pf.approvals.push(Approval {
        by: by.clone(),
        at: now_utc(),
        signature,
    });
    let text = serde_json::to_string_pretty(&pf).unwrap_or_default() + "\n";
    write_durably(plan, text.as_bytes())?;
    let _ = state_dir(g).audit(&AuditEntry {
        at: now_utc(),
        user: local_user(),
        action: "approve".into(),
        outcome: "signed".into(),
        rollout: pf.content.rollout.clone(),
        plan_hash: Some(pf.hash.clone()),
        script_sha256: Some(pf.content.deployment.sha256.clone()),
        signers: vec![by.clone()],
        command: std::env::args().collect(),
        ..AuditEntry::default()
    });
    if g.json {
        let line = serde_json::json!({
            "event": "approved",
            "at": now_utc(),
            "by": by,
            "plan": plan.display().to_string(),
            "hash": pf.hash,
            "signatures": pf.approvals.len(),
            "needed": pf.content.approvals,
        });
        println!("{line}");
    } else {
        println!(
            "{} approved {} ({}); it holds {} of the {} needed",
            by,
            plan.display(),
            pf.hash,
            count(pf.approvals.len(), "signature"),
            pf.content.approvals
        );
    }
    Ok(exit::OK)
}

fn ssh_keygen_sign(key: &Path, text: &str) -> Result<String, CmdError> {
    let out = run_keygen(
        &[
            "-Y".as_ref(),
            "sign".as_ref(),
            "-f".as_ref(),
            key.as_os_str(),
            "-n".as_ref(),
            file::NAMESPACE.as_ref(),
        ],
        text,
    )?;
    if !out.status.success() {
        return Err(CmdError::Input(
            InputError::new(format!(
                "ssh-keygen could not sign with {}: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .help("give the private key of an approver (`--key ~/.ssh/id_ed25519`); an agent-held key needs its public key file"),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_keygen(args: &[&std::ffi::OsStr], stdin: &str) -> Result<std::process::Output, CmdError> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CmdError::Other(format!("cannot run ssh-keygen: {e}"), exit::BAD_INPUT))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child
        .wait_with_output()
        .map_err(|e| CmdError::Other(format!("ssh-keygen: {e}"), exit::BAD_INPUT))
}

/// The distinct principals whose valid signatures over the plan's hash it holds, and
/// what was wrong with the others.
fn verify(pf: &PlanFile, allowed: &Path) -> Result<(BTreeSet<String>, Vec<String>), CmdError> {
    let mut signers = BTreeSet::new();
    let mut problems = Vec::new();
    let text = file::signed_text(&pf.hash);
    for a in &pf.approvals {
        let mut sig = tempfile::NamedTempFile::new().map_err(|e| {
            CmdError::Other(
                format!("cannot make a temporary file: {e}"),
                exit::INCOMPLETE,
            )
        })?;
        let _ = sig.write_all(a.signature.as_bytes());
        let sig_path = sig.path().as_os_str().to_owned();
        let found = run_keygen(
            &[
                "-Y".as_ref(),
                "find-principals".as_ref(),
                "-s".as_ref(),
                &sig_path,
                "-f".as_ref(),
                allowed.as_os_str(),
            ],
            "",
        )?;
        let principals: Vec<String> = String::from_utf8_lossy(&found.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if !found.status.success() || principals.is_empty() {
            problems.push(format!(
                "the signature by {} is not from a key the allowed signers list",
                a.by
            ));
            continue;
        }
        let mut ok = false;
        for p in &principals {
            let v = run_keygen(
                &[
                    "-Y".as_ref(),
                    "verify".as_ref(),
                    "-f".as_ref(),
                    allowed.as_os_str(),
                    "-I".as_ref(),
                    p.as_ref(),
                    "-n".as_ref(),
                    file::NAMESPACE.as_ref(),
                    "-s".as_ref(),
                    &sig_path,
                ],
                &text,
            )?;
            if v.status.success() {
                if !signers.insert(p.clone()) {
                    problems.push(format!("{p} signed more than once (counted once)"));
                }
                ok = true;
                break;
            }
        }
        if !ok {
            problems.push(format!(
                "the signature by {} ({}) does not sign this plan's hash {}",
                a.by,
                principals.join(", "),
                pf.hash
            ));
        }
    }
    Ok((signers, problems))
}

/// `apply PLAN`: the plan must be intact, still what the spec resolves to, and carry
/// enough distinct valid approvals; then it runs like `apply SPEC`.
pub fn apply_plan(
    g: &Global,
    args: &SpecArgs,
    pf: PlanFile,
    yes: bool,
    allowed_signers: Option<&Path>,
    metrics: Option<&Path>,
) -> CmdResult {
    let metrics = super::session::metrics_file(metrics)?;
    let path = &args.rollout;
    let dir = state_dir(g);
    let refuse = |why: String| -> CmdResult {
        let _ = dir.audit(&AuditEntry {
            at: now_utc(),
            user: local_user(),
            action: "apply".into(),
            outcome: "refused".into(),
            exit_code: Some(exit::REFUSED),
            rollout: pf.content.rollout.clone(),
            plan_hash: Some(pf.hash.clone()),
            script_sha256: Some(pf.content.deployment.sha256.clone()),
            detail: why.clone(),
            command: std::env::args().collect(),
            ..AuditEntry::default()
        });
        Err(CmdError::Refused(why))
    };
    if !pf.intact() {
        return refuse(format!(
            "{}: the plan was edited after it was written (its content no longer matches {})\n  help: plan again with `wavectl plan SPEC -o PLAN` and have it approved",
            path.display(),
            pf.hash
        ));
    }
    let c = &pf.content;
    let opts = super::load_options(g, c.deployment.force, c.limit.clone())?;
    let inventory = args
        .inventory
        .clone()
        .unwrap_or_else(|| c.inventory.clone());
    let loaded = spec::load_with(&c.spec, Some(&inventory), &opts)?;
    let waves = crate::plan::waves(&loaded.targets, &loaded.rollout.waves)?;
    let now = content_of(&loaded, &waves, c.deployment.force);
    let changes = file::differences(c, &now);
    if !changes.is_empty() {
        return refuse(format!(
            "{} is stale: what it would do differs from what {} resolves to now:\n{}\n  help: plan again with `wavectl plan {} -o PLAN` and have the new plan approved",
            path.display(),
            c.spec.display(),
            changes.iter().map(|l| format!("  - {l}")).collect::<Vec<_>>().join("\n"),
            c.spec.display()
        ));
    }
    let needed = c.approvals as usize;
    let mut signers = BTreeSet::new();
    if needed > 0 {
        let allowed: PathBuf = match allowed_signers
            .map(Path::to_path_buf)
            .or(loaded.rollout.policy.allowed_signers.clone())
        {
            Some(a) => a,
            None => {
                return refuse(format!(
                    "{} needs {} but there is no allowed-signers file to check them against\n  help: set policy.allowed_signers in the spec, or pass --allowed-signers FILE",
                    path.display(),
                    count(needed, "approval")
                ))
            }
        };
        let (valid, problems) = verify(&pf, &allowed)?;
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
            why.push_str(&format!(
                "\n  help: `wavectl approve {} --key KEY` by distinct approvers in {}",
                path.display(),
                allowed.display()
            ));
            return refuse(why);
        }
        signers = valid;
    }
    let what = format!("plan {} ({})", path.display(), pf.hash);
    if !ask_to_apply(yes, &loaded, &waves, &what)? {
        eprintln!("not applied");
        return Ok(exit::ABORTED);
    }
    let approval = Approved {
        plan: std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()),
        hash: pf.hash.clone(),
        signers: signers.into_iter().collect(),
    };
    run_apply(
        g,
        &dir,
        &loaded,
        &waves,
        c.deployment.force,
        Some(approval),
        metrics,
    )
}
