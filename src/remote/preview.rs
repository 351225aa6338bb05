//! `plan --probe`: what one host holds at `install_path`, and whether an install would be
//! refused there — by the install's own checks (`scripts/checks.sh`, the same function
//! the install runs first). Pure builder and parser; no I/O.
//!
//! The host script (`scripts/preview.sh`) only reads: it takes no lock (a running
//! install is never held up by it; what it reads may be a moment old) and creates
//! nothing, not even NAME's state directory or a lock file. Output lines (free-form
//! values hex): `path absent|file|link|other`; `sha256 <digest>` (a file); `link <hex
//! target>`; `owner <hex user:group>`; `mode <octal>`; `package <hex names>` (dpkg or
//! rpm, asked where the file is not NAME's); `manifest <hex>` (in
//! whichever release's form: [`Manifest::read`]) or `manifest none`; `txn <run>` (an install under way or cut
//! short); `refused <hex reason>`; then `wavectl-preview done`.

use std::time::Duration;

use super::install::SMALL_TIMEOUT;
use super::{command, unhex, with_lib, Manifest, ManifestState, RemoteCommand, CHECKS_SH, PKG_SH};

const PREVIEW_SH: &str = include_str!("scripts/preview.sh");
/// The script after the library: the install's checks, read-only.
const PARTS: &[&str] = &[PKG_SH, CHECKS_SH, PREVIEW_SH];

/// What a preview asks.
#[derive(Debug, Clone)]
pub struct PreviewParams<'a> {
    pub name: &'a str,
    pub install_path: &'a str,
    /// Lowercase hex sha256 of the spec's script.
    pub sha256: &'a str,
    /// The run an apply started now would be (a purge fence newer than it refuses).
    pub run_id: &'a str,
    /// `--force`: as the install, skip the package, protected-path and parent checks.
    pub force: bool,
}

/// One host's preview; see the module docs. Read it with [`parse_preview`].
pub fn preview(p: &PreviewParams) -> RemoteCommand {
    let protected = crate::spec::protected_host_list();
    command(
        "preview",
        &with_lib(PARTS),
        &[
            p.name,
            p.install_path,
            p.sha256,
            p.run_id,
            if p.force { "1" } else { "0" },
            &protected,
        ],
        SMALL_TIMEOUT,
        Duration::from_secs(2),
        None,
    )
}

/// What is at `install_path` itself (a link is never followed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AtPath {
    #[default]
    Absent,
    /// A regular file, with its sha256 (None: unreadable).
    File(Option<String>),
    /// A symlink, with its target.
    Link(String),
    /// A device, a fifo, a directory, ...
    Other,
}

/// What a preview read on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviewReport {
    pub at_path: AtPath,
    /// `user:group` of what is at the path.
    pub owner: Option<String>,
    /// Its permission bits, octal as `stat` prints them.
    pub mode: Option<String>,
    /// The installed packages that own it (dpkg, or rpm), if any.
    pub package: Option<String>,
    /// NAME's manifest, if the host holds one (any run's).
    pub manifest: Option<Manifest>,
    /// The run id in NAME's `txn`: an install under way or cut short.
    pub txn: Option<String>,
    /// Why an install would be refused (the install's first refusal), if it would.
    pub refused: Option<String>,
}

/// What a host holds at `install_path`, decided from a [`PreviewReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// Nothing there, and no install of this rollout.
    Nothing,
    /// A version of this rollout; `same`: the spec's script.
    Version {
        run: String,
        state: ManifestState,
        sha256: String,
        same: bool,
    },
    /// A file wavectl did not install, with the spec's very bytes.
    SameScript,
    /// A file (or link, or other thing) wavectl did not install.
    Foreign,
    /// An install would be refused.
    Refused(String),
}

impl Holds {
    /// The word for it in `--json` (`holds`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Holds::Nothing => "nothing",
            Holds::Version { .. } => "version",
            Holds::SameScript => "same-script",
            Holds::Foreign => "foreign",
            Holds::Refused(_) => "refused",
        }
    }
}

impl PreviewReport {
    /// What the host holds, for a spec whose script has `sha256`. A refusal comes first
    /// (it is what an apply would meet); then this rollout's version; then what is at
    /// the path.
    pub fn holds(&self, sha256: &str) -> Holds {
        if let Some(r) = &self.refused {
            return Holds::Refused(r.clone());
        }
        if let Some(m) = &self.manifest {
            return Holds::Version {
                run: m.run_id.clone(),
                state: m.state,
                sha256: m.sha256.clone(),
                same: m.sha256 == sha256,
            };
        }
        match &self.at_path {
            AtPath::Absent => Holds::Nothing,
            AtPath::File(Some(h)) if h == sha256 => Holds::SameScript,
            _ => Holds::Foreign,
        }
    }
}

/// Parses a preview's stdout. Output cut short (no final marker) or a malformed known
/// line is an error; unknown lines are ignored (a newer host script).
pub fn parse_preview(stdout: &str) -> Result<PreviewReport, String> {
    let mut r = PreviewReport::default();
    let (mut done, mut seen_path, mut seen_manifest) = (false, false, false);
    for (i, line) in stdout.lines().enumerate() {
        let bad = |what: &str| format!("preview output line {}: {what}: {line:?}", i + 1);
        let text = |h: &str| {
            if h == "-" {
                Ok(String::new())
            } else {
                unhex(h)
            }
        };
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["path", kind] => {
                seen_path = true;
                r.at_path = match *kind {
                    "absent" => AtPath::Absent,
                    "file" => AtPath::File(None),
                    "link" => AtPath::Link(String::new()),
                    "other" => AtPath::Other,
                    _ => return Err(bad("unknown kind")),
                };
            }
            ["sha256", h] => match &mut r.at_path {
                AtPath::File(s) => *s = Some(h.to_string()),
                _ => return Err(bad("a digest of no file")),
            },
            ["link", h] => match &mut r.at_path {
                AtPath::Link(t) => *t = text(h).map_err(|e| bad(&e))?,
                _ => return Err(bad("a target of no link")),
            },
            ["owner", h] => r.owner = Some(text(h).map_err(|e| bad(&e))?),
            ["mode", m] => r.mode = Some(m.to_string()),
            ["package", h] => r.package = Some(text(h).map_err(|e| bad(&e))?.trim().to_string()),
            ["manifest", "none"] => seen_manifest = true,
            ["manifest", h] => {
                seen_manifest = true;
                let t = unhex(h).map_err(|e| bad(&e))?;
                let m = Manifest::read(&t);
                r.manifest = Some(m.map_err(|e| bad(&format!("unreadable manifest ({e})")))?);
            }
            ["txn", t] => r.txn = Some(t.to_string()),
            ["refused", h] => r.refused = Some(text(h).map_err(|e| bad(&e))?),
            ["wavectl-preview", "done"] => done = true,
            ["path" | "sha256" | "link" | "owner" | "mode" | "package" | "manifest" | "txn"
            | "refused", ..] => return Err(bad("malformed")),
            _ => {}
        }
    }
    if !done || !seen_path || !seen_manifest {
        return Err("preview output incomplete".into());
    }
    Ok(r)
}

#[cfg(test)]
pub(super) fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![("preview", PARTS.to_vec())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PreviewParams<'static> {
        PreviewParams {
            name: "raid-health",
            install_path: "/usr/local/sbin/it's",
            sha256: "ab",
            run_id: "20260101T000000Z-raid-health-0000",
            force: false,
        }
    }

    #[test]
    fn values_are_arguments() {
        let c = preview(&params());
        let tail = format!(
            " wavectl 'raid-health' '/usr/local/sbin/it'\\''s' 'ab' '20260101T000000Z-raid-health-0000' '0' {}",
            super::super::sh_quote(&crate::spec::protected_host_list())
        );
        assert!(c.line.ends_with(&tail), "{}", &c.line[c.line.len() - 200..]);
        assert!(c.stdin.is_none());
    }

    #[test]
    fn what_a_host_holds() {
        let file = |h: &str| {
            format!(
                "path file\nsha256 {h}\nowner {}\nmode 755\n",
                hex::encode("root:root")
            )
        };
        let r = parse_preview("path absent\nmanifest none\nwavectl-preview done\n").unwrap();
        assert_eq!(r.holds("ab"), Holds::Nothing);
        let r = parse_preview(&(file("ab") + "manifest none\nwavectl-preview done\n")).unwrap();
        assert_eq!(r.holds("ab"), Holds::SameScript);
        assert_eq!(
            (r.owner.as_deref(), r.mode.as_deref()),
            (Some("root:root"), Some("755"))
        );
        let out = file("cd")
            + &format!(
                "package {}\nmanifest none\nwavectl-preview done\n",
                hex::encode("coreutils\n")
            );
        let r = parse_preview(&out).unwrap();
        assert_eq!(r.holds("ab"), Holds::Foreign);
        assert_eq!(r.package.as_deref(), Some("coreutils"));
        let m = "name=raid-health\nrun_id=R\nstate=confirmed\nsha256=ab\n";
        let out = file("ab") + &format!("manifest {}\nwavectl-preview done\n", hex::encode(m));
        assert_eq!(
            parse_preview(&out).unwrap().holds("ab"),
            Holds::Version {
                run: "R".into(),
                state: ManifestState::Confirmed,
                sha256: "ab".into(),
                same: true
            }
        );
        let out = format!(
            "path link\nlink {}\nmanifest none\ntxn R2\nrefused {}\nwavectl-preview done\n",
            hex::encode("/etc/passwd"),
            hex::encode("run R2's install was cut short here")
        );
        let r = parse_preview(&out).unwrap();
        assert_eq!(r.at_path, AtPath::Link("/etc/passwd".into()));
        assert_eq!(r.txn.as_deref(), Some("R2"));
        assert_eq!(
            r.holds("ab"),
            Holds::Refused("run R2's install was cut short here".into())
        );
    }

    #[test]
    fn broken_outputs() {
        assert!(parse_preview("path absent\nmanifest none\n").is_err());
        assert!(parse_preview("manifest none\nwavectl-preview done\n").is_err());
        assert!(parse_preview("path odd\nmanifest none\nwavectl-preview done\n").is_err());
        assert!(
            parse_preview("path absent\nsha256 ab\nmanifest none\nwavectl-preview done\n").is_err()
        );
        assert!(parse_preview("path absent\nmanifest zz\nwavectl-preview done\n").is_err());
        assert!(
            parse_preview("path absent\nmanifest none\nrefused\nwavectl-preview done\n").is_err()
        );
        assert!(
            parse_preview("path absent\nmanifest none\nnew-tag x\nwavectl-preview done\n").is_ok()
        );
    }
}
