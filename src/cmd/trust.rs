//! What a plan's approval rests on, read on this machine: the allowed-signers file and
//! the ssh_config (path and sha256), and `ssh-keygen -Y` to sign a plan's hash and to
//! check signatures against the allowed signers. Reads files, runs `ssh-keygen`.

use std::collections::BTreeSet;
use std::ffi::{CStr, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::cli::Global;
use crate::diag::InputError;
use crate::plan::file::{self, FileDigest, PlanFile};

use super::session::CmdError;
use super::Failure;

/// A file a plan's trust rests on, read once: its digest and the very bytes digested
/// (signatures are checked against a private copy of these, never the file again).
pub struct Anchor {
    pub digest: FileDigest,
    bytes: Vec<u8>,
}

impl Anchor {
    /// Read `path` (made absolute) whole; `what` names it in errors.
    pub fn read(path: &Path, what: &str, help: &str) -> Result<Anchor, InputError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let bytes = std::fs::read(&path).map_err(|e| {
            InputError::new(format!("cannot read {what} {}: {e}", path.display())).help(help)
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Ok(Anchor {
            digest: FileDigest { path, sha256 },
            bytes,
        })
    }
}

/// The ssh_config ssh reads for a run of this command: `--ssh-config` (or
/// `WAVECTL_SSH_CONFIG`), else the user's own `~/.ssh/config` if there is one (the home
/// of the passwd entry, as ssh finds it, not `$HOME`). Neither the files it `Include`s
/// nor `/etc/ssh/ssh_config` are covered.
pub fn ssh_config(g: &Global) -> Result<Option<FileDigest>, InputError> {
    let help = "give --ssh-config (or WAVECTL_SSH_CONFIG) a file this user can read";
    if let Some(p) = &g.ssh_config {
        return Anchor::read(p, "the ssh_config", help).map(|a| Some(a.digest));
    }
    let Some(path) = user_home().map(|h| h.join(".ssh/config")) else {
        return Ok(None);
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => Anchor::read(&path, "the ssh_config", help).map(|a| Some(a.digest)),
    }
}

/// The home directory of the real user's passwd entry (where ssh looks for its config).
fn user_home() -> Option<PathBuf> {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd (integers and null pointers) is a valid value to be filled.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the size given; getpwuid_r fills `pw`
    // with pointers into `buf`, which outlives their use below.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if r != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points to a NUL-terminated string inside `buf`.
    let dir = unsafe { CStr::from_ptr(pw.pw_dir) };
    Some(PathBuf::from(OsStr::from_bytes(dir.to_bytes())))
}

/// Sign `text` with `key` in the approvals' namespace: the armored signature.
pub fn sign(key: &Path, text: &str) -> Result<String, CmdError> {
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

fn run_keygen(args: &[&OsStr], stdin: &str) -> Result<std::process::Output, CmdError> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CmdError::Setup(Failure::new(format!("cannot run ssh-keygen: {e}"))))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child
        .wait_with_output()
        .map_err(|e| CmdError::Setup(Failure::new(format!("ssh-keygen: {e}"))))
}

/// What the allowed signers say of one signature over a plan's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A valid signature by this principal.
    Valid(String),
    /// Not from a key the allowed signers list.
    NotListed,
    /// From a listed key (these principals), but not over this hash.
    Invalid(Vec<String>),
}

/// The allowed signers of `anchor`, in a private temporary file for `ssh-keygen`.
struct Signers(tempfile::NamedTempFile);

impl Signers {
    fn of(anchor: &Anchor) -> Result<Signers, CmdError> {
        Ok(Signers(temp_with(&anchor.bytes)?))
    }

    /// Check one armored signature over `hash`.
    fn check(&self, signature: &str, hash: &str) -> Result<Checked, CmdError> {
        let sig = temp_with(signature.as_bytes())?;
        let sig_path = sig.path().as_os_str();
        let allowed = self.0.path().as_os_str();
        let found = run_keygen(
            &[
                "-Y".as_ref(),
                "find-principals".as_ref(),
                "-s".as_ref(),
                sig_path,
                "-f".as_ref(),
                allowed,
            ],
            "",
        )?;
        let principals: Vec<String> = String::from_utf8_lossy(&found.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if !found.status.success() || principals.is_empty() {
            return Ok(Checked::NotListed);
        }
        let text = file::signed_text(hash);
        for p in &principals {
            let v = run_keygen(
                &[
                    "-Y".as_ref(),
                    "verify".as_ref(),
                    "-f".as_ref(),
                    allowed,
                    "-I".as_ref(),
                    p.as_ref(),
                    "-n".as_ref(),
                    file::NAMESPACE.as_ref(),
                    "-s".as_ref(),
                    sig_path,
                ],
                &text,
            )?;
            if v.status.success() {
                return Ok(Checked::Valid(p.clone()));
            }
        }
        Ok(Checked::Invalid(principals))
    }
}

fn temp_with(bytes: &[u8]) -> Result<tempfile::NamedTempFile, CmdError> {
    let mut f = tempfile::NamedTempFile::new().map_err(|e| {
        CmdError::System(Failure::new(format!("cannot make a temporary file: {e}")))
    })?;
    f.write_all(bytes).map_err(|e| {
        CmdError::System(Failure::new(format!("cannot write a temporary file: {e}")))
    })?;
    Ok(f)
}

/// Check one signature over `hash` against `anchor`.
pub fn check(anchor: &Anchor, signature: &str, hash: &str) -> Result<Checked, CmdError> {
    Signers::of(anchor)?.check(signature, hash)
}

/// The distinct principals whose valid signatures over the plan's hash it holds,
/// checked against `anchor` alone, and what was wrong with the others.
pub fn verify(pf: &PlanFile, anchor: &Anchor) -> Result<(BTreeSet<String>, Vec<String>), CmdError> {
    let signers = Signers::of(anchor)?;
    let mut valid = BTreeSet::new();
    let mut problems = Vec::new();
    for a in &pf.approvals {
        match signers.check(&a.signature, &pf.hash)? {
            Checked::Valid(p) => {
                if !valid.insert(p.clone()) {
                    problems.push(format!("{p} signed more than once (counted once)"));
                }
            }
            Checked::NotListed => problems.push(format!(
                "the signature by {} is not from a key the allowed signers list",
                a.by
            )),
            Checked::Invalid(principals) => problems.push(format!(
                "the signature by {} ({}) does not sign this plan's hash {}",
                a.by,
                principals.join(", "),
                pf.hash
            )),
        }
    }
    Ok((valid, problems))
}
