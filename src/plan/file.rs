//! PURE: the plan file — everything a run will do (the normalised spec, the script's
//! sha256, the resolved targets with address, port, user and labels, the waves and the
//! durations), sealed with what makes it this one approval: a unique id, its creation
//! and expiry, and the files its trust rests on (the allowed-signers file, the
//! ssh_config); a hash over all of it, the approvals signed over that hash, and what
//! differs between a plan and what the spec resolves to now.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::inventory::Host;
use crate::rollout::{Deployment, Policy};

/// The plan file's format version (2: the id, expiry and trust joined the hash).
pub const FORMAT: u32 = 2;
/// The `ssh-keygen -Y` namespace of approvals: a signature made for anything else
/// (a git commit, a file) never counts as an approval.
pub const NAMESPACE: &str = "wavectl-plan";

/// What a run of the plan will do; the hash covers exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanContent {
    pub rollout: String,
    pub description: String,
    /// The spec and inventory it was resolved from (absolute).
    pub spec: PathBuf,
    pub inventory: PathBuf,
    /// The `--limit` it was planned with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// What is installed and how it is watched (script sha256, durations, checks).
    pub deployment: Deployment,
    /// The run's decisions (budget, bake, concurrency...).
    pub policy: Policy,
    /// Distinct approvals `apply` needs.
    pub approvals: u32,
    pub hosts: Vec<Host>,
    pub waves: Vec<Vec<String>>,
}

/// One approval: who says they signed, and the `ssh-keygen -Y sign` signature over the
/// plan's hash (who really signed is what the allowed-signers file says of the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    /// When it was signed (UTC).
    pub at: String,
    /// The armored SSH signature.
    pub signature: String,
}

/// A file, by its path and the sha256 of its bytes when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: PathBuf,
    /// Hex.
    pub sha256: String,
}

/// The files a plan's approval rests on, as they were when it was made: the hash
/// covers them, so a changed file makes the plan stale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    /// The allowed-signers file the approvals are checked against (the spec's
    /// `policy.allowed_signers`, or `plan --allowed-signers` for a spec naming none);
    /// `None` when the plan needs no approval.
    pub allowed_signers: Option<FileDigest>,
    /// The ssh_config ssh reads for the run (`--ssh-config`, else the user's
    /// `~/.ssh/config`), where an alias can be pointed at another host; `None`: none.
    pub ssh_config: Option<FileDigest>,
}

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: u32,
    /// `sha256:<hex>` over the id, created, expires, trust and content.
    pub hash: String,
    /// Unique to this plan (32 hex digits): a plan applies once.
    pub id: String,
    /// When it was written (UTC, RFC 3339).
    pub created: String,
    /// After this (UTC, RFC 3339) it is not applied (`plan --valid-for`).
    pub expires: String,
    pub trust: Trust,
    pub content: PlanContent,
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

/// What the hash covers, in this order.
#[derive(Serialize)]
struct Sealed<'a> {
    id: &'a str,
    created: &'a str,
    expires: &'a str,
    trust: &'a Trust,
    content: &'a PlanContent,
}

/// `sha256:<hex>` of the sealed part's canonical JSON (fields in a fixed order, labels
/// sorted).
pub fn hash(pf: &PlanFile) -> String {
    let sealed = Sealed {
        id: &pf.id,
        created: &pf.created,
        expires: &pf.expires,
        trust: &pf.trust,
        content: &pf.content,
    };
    let bytes = serde_json::to_vec(&sealed).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The text an approver signs: the hash, in a line that says what it is.
pub fn signed_text(hash: &str) -> String {
    format!("wavectl plan {hash}\n")
}

/// A plan id is 32 lowercase hex digits (it names a file in the state directory).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PlanFile {
    /// A new plan: `id` fresh (see [`valid_id`]), the times in UTC RFC 3339.
    pub fn new(
        content: PlanContent,
        id: String,
        created: String,
        expires: String,
        trust: Trust,
    ) -> PlanFile {
        let mut pf = PlanFile {
            format: FORMAT,
            hash: String::new(),
            id,
            created,
            expires,
            trust,
            content,
            approvals: Vec::new(),
        };
        pf.hash = hash(&pf);
        pf
    }

    /// The sealed part still matches the recorded hash (nobody edited it).
    pub fn intact(&self) -> bool {
        hash(self) == self.hash
    }
}

/// What differs between the files a plan's trust rests on and those of now, one line
/// each ("the ssh_config changed: ..."). Empty: the same bytes (paths may differ).
pub fn trust_differences(planned: &Trust, now: &Trust) -> Vec<String> {
    let mut out = Vec::new();
    for (what, a, b) in [
        (
            "the allowed-signers file",
            &planned.allowed_signers,
            &now.allowed_signers,
        ),
        ("the ssh_config", &planned.ssh_config, &now.ssh_config),
    ] {
        match (a, b) {
            (Some(a), Some(b)) if a.sha256 == b.sha256 => {}
            (Some(a), Some(b)) if a.path == b.path => out.push(format!(
                "{what} {} changed: sha256 {} → {}",
                a.path.display(),
                short(&a.sha256),
                short(&b.sha256)
            )),
            (Some(a), Some(b)) => out.push(format!(
                "{what}: {} (sha256 {}) → {} (sha256 {})",
                a.path.display(),
                short(&a.sha256),
                b.path.display(),
                short(&b.sha256)
            )),
            (Some(a), None) => out.push(format!(
                "{what}: {} (sha256 {}) → none",
                a.path.display(),
                short(&a.sha256)
            )),
            (None, Some(b)) => out.push(format!(
                "{what}: none → {} (sha256 {})",
                b.path.display(),
                short(&b.sha256)
            )),
            (None, None) => {}
        }
    }
    out
}

/// What differs between the planned content and what resolves now, one line each
/// ("the script changed: sha256 A → B", "host web-3 added", ...). Empty: the same.
pub fn differences(planned: &PlanContent, now: &PlanContent) -> Vec<String> {
    let mut out = Vec::new();
    if planned.deployment.sha256 != now.deployment.sha256 {
        out.push(format!(
            "the script changed: sha256 {} → {}",
            short(&planned.deployment.sha256),
            short(&now.deployment.sha256)
        ));
    }
    let before: BTreeMap<&str, &Host> =
        planned.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let after: BTreeMap<&str, &Host> = now.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    for (name, h) in &before {
        match after.get(name) {
            None => out.push(format!("host {name} is no longer a target")),
            Some(n) => {
                if h.address != n.address {
                    out.push(format!(
                        "host {name}: address {} → {}",
                        h.address, n.address
                    ));
                }
                if h.port != n.port {
                    out.push(format!(
                        "host {name}: port {} → {}",
                        opt(&h.port),
                        opt(&n.port)
                    ));
                }
                if h.user != n.user {
                    out.push(format!(
                        "host {name}: user {} → {}",
                        opt(&h.user),
                        opt(&n.user)
                    ));
                }
                if h.labels != n.labels {
                    out.push(format!(
                        "host {name}: labels {:?} → {:?}",
                        h.labels, n.labels
                    ));
                }
                if h.host_key_check != n.host_key_check {
                    out.push(format!("host {name}: host_key_check changed"));
                }
                if h.become_root != n.become_root {
                    out.push(format!(
                        "host {name}: become {} → {}",
                        h.become_root, n.become_root
                    ));
                }
            }
        }
    }
    for name in after.keys().filter(|n| !before.contains_key(*n)) {
        out.push(format!("host {name} is a new target"));
    }
    if out.iter().all(|l| !l.starts_with("host ")) && planned.waves != now.waves {
        out.push("the waves changed".into());
    }
    // Every other value, by its place in the content.
    let mut a = serde_json::to_value(planned).unwrap_or_default();
    let mut b = serde_json::to_value(now).unwrap_or_default();
    for v in [&mut a, &mut b] {
        if let Some(o) = v.as_object_mut() {
            o.remove("hosts");
            o.remove("waves");
            if let Some(d) = o.get_mut("deployment").and_then(|d| d.as_object_mut()) {
                d.remove("sha256");
            }
        }
    }
    diff_values("", &a, &b, &mut out);
    out
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_values(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or("(default)".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::HostKeyCheck;
    use crate::spec::{ActivationKind, OnFailure};
    use std::time::Duration;

    fn content() -> PlanContent {
        let host = |n: &str| Host {
            name: n.into(),
            address: format!("10.0.0.{}", n.len()),
            port: Some(22),
            user: Some("root".into()),
            labels: [("role".to_string(), "db".to_string())].into(),
            host_key_check: HostKeyCheck::Strict,
            become_root: false,
        };
        PlanContent {
            rollout: "x".into(),
            description: String::new(),
            spec: "/r/x.toml".into(),
            inventory: "/r/inv.toml".into(),
            limit: None,
            deployment: Deployment {
                install_path: "/usr/local/sbin/x".into(),
                mode: 0o755,
                sha256: "ab".repeat(32),
                script_timeout: Duration::from_secs(60),
                activation: ActivationKind::Cron,
                schedule: "*/5 * * * *".into(),
                run_on_install: true,
                interval: Duration::from_secs(15),
                probe_timeout: Duration::from_secs(10),
                builtins: vec![],
                thresholds: Default::default(),
                checks: vec![],
                lease: Duration::from_secs(900),
                force: false,
            },
            policy: Policy {
                max_unhealthy: 0,
                on_failure: OnFailure::Rollback,
                bake: Duration::from_secs(600),
                min_runs: 1,
                concurrency: 50,
                fanout: 200,
                login_timeout: Duration::from_secs(10),
                baseline: false,
                controls: false,
                gates: None,
            },
            approvals: 2,
            hosts: vec![host("a"), host("bb")],
            waves: vec![vec!["a".into()], vec!["bb".into()]],
        }
    }

    fn digest(path: &str, sha: &str) -> Option<FileDigest> {
        Some(FileDigest {
            path: path.into(),
            sha256: sha.repeat(32),
        })
    }

    fn plan_file() -> PlanFile {
        PlanFile::new(
            content(),
            "0123456789abcdef0123456789abcdef".into(),
            "2026-01-01T00:00:00Z".into(),
            "2026-01-02T00:00:00Z".into(),
            Trust {
                allowed_signers: digest("/r/approvers", "aa"),
                ssh_config: digest("/home/ann/.ssh/config", "bb"),
            },
        )
    }

    /// Issue 13, case 4: the hash left out the plan's creation (an approved plan applied
    /// again after its rollback) and the files its trust rests on. It covers the id, the
    /// creation, the expiry, both files' digests and the content — not the approvals.
    #[test]
    fn the_hash_covers_id_times_trust_and_content_and_not_the_approvals() {
        let f = plan_file();
        assert!(f.intact());
        assert!(f.hash.starts_with("sha256:") && f.hash.len() == 7 + 64);
        let mut g = f.clone();
        g.approvals.push(Approval {
            by: "ann".into(),
            at: "t".into(),
            signature: "sig".into(),
        });
        assert!(g.intact(), "approvals are outside the hash");
        type Edit = Box<dyn Fn(&mut PlanFile)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("id", Box::new(|f| f.id = "f".repeat(32))),
            (
                "created",
                Box::new(|f| f.created = "2026-01-01T00:00:01Z".into()),
            ),
            (
                "expires",
                Box::new(|f| f.expires = "2027-01-02T00:00:00Z".into()),
            ),
            (
                "allowed signers",
                Box::new(|f| f.trust.allowed_signers = digest("/r/approvers", "cc")),
            ),
            (
                "allowed signers' path",
                Box::new(|f| f.trust.allowed_signers = digest("/tmp/mine", "aa")),
            ),
            ("no ssh_config", Box::new(|f| f.trust.ssh_config = None)),
            (
                "content",
                Box::new(|f| f.content.policy.bake = Duration::from_secs(1)),
            ),
        ];
        for (what, edit) in edits {
            let mut g = f.clone();
            edit(&mut g);
            assert!(!g.intact(), "{what} is not covered");
        }
        // Two plans of the same content differ by their ids.
        let mut h = f.clone();
        h.id = "1".repeat(32);
        assert_ne!(hash(&h), f.hash);
    }

    #[test]
    fn plan_ids_are_32_hex_digits() {
        assert!(valid_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "../../etc/passwd",
            &"A".repeat(32),
            &"a".repeat(31),
            &"g".repeat(32),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn trust_differences_name_the_file_that_changed() {
        let a = plan_file().trust;
        assert!(trust_differences(&a, &a).is_empty());
        let mut b = a.clone();
        b.ssh_config = digest("/home/ann/.ssh/config", "cc");
        b.allowed_signers = digest("/tmp/mine", "aa");
        // The same bytes at another path: the same trust.
        assert_eq!(
            trust_differences(&a, &b),
            vec![
                "the ssh_config /home/ann/.ssh/config changed: sha256 bbbbbbbbbbbb → cccccccccccc"
            ]
        );
        b.allowed_signers = digest("/tmp/mine", "dd");
        b.ssh_config = None;
        assert_eq!(
            trust_differences(&a, &b),
            vec![
                "the allowed-signers file: /r/approvers (sha256 aaaaaaaaaaaa) → /tmp/mine (sha256 dddddddddddd)",
                "the ssh_config: /home/ann/.ssh/config (sha256 bbbbbbbbbbbb) → none",
            ]
        );
        assert_eq!(
            trust_differences(&b, &a)[1],
            "the ssh_config: none → /home/ann/.ssh/config (sha256 bbbbbbbbbbbb)"
        );
    }

    #[test]
    fn differences_name_what_changed() {
        let a = content();
        assert!(differences(&a, &a).is_empty());
        let mut b = a.clone();
        b.deployment.sha256 = "cd".repeat(32);
        b.hosts[1].address = "10.9.9.9".into();
        b.hosts[0].user = Some("deploy".into());
        b.hosts[0].become_root = true;
        b.hosts.push(Host {
            name: "ccc".into(),
            ..a.hosts[0].clone()
        });
        b.policy.bake = Duration::from_secs(300);
        let d = differences(&a, &b);
        assert_eq!(
            d,
            vec![
                "the script changed: sha256 abababababab → cdcdcdcdcdcd".to_string(),
                "host a: user root → deploy".into(),
                "host a: become false → true".into(),
                "host bb: address 10.0.0.2 → 10.9.9.9".into(),
                "host ccc is a new target".into(),
                "policy.bake: 600000 → 300000".into(),
            ]
        );
        let mut c = a.clone();
        c.hosts.pop();
        c.waves.pop();
        assert_eq!(differences(&a, &c), vec!["host bb is no longer a target"]);
    }
}
