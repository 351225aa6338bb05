//! Test harness: a throwaway mount + pid namespace (overlays over /etc, /var, /opt;
//! tmpfs /run) in which the generated commands run for real without touching this
//! machine. Needs root and `unshare`/`nsenter`; tests skip (with a message) otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::*;
use crate::spec::ActivationKind;

/// One namespace: its pid 1 (as seen from here) and a scratch dir visible both sides.
pub(super) struct Sandbox {
    dir: tempfile::TempDir,
    child: Child,
    pid1: u32,
}

impl Sandbox {
    pub(super) fn new() -> Option<Sandbox> {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: sandbox tests need root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let setup = r#"set -e
d=$1
mkdir -p "$d/t"
mount -t tmpfs none "$d/t"
for x in etc var opt; do
  mkdir -p "$d/t/u-$x" "$d/t/w-$x"
  mount -t overlay overlay -o "lowerdir=/$x,upperdir=$d/t/u-$x,workdir=$d/t/w-$x" "/$x"
done
mount -t tmpfs none /run
mkdir -p /opt/wv /etc/cron.d /var/log
echo ready
exec sleep 3600"#;
        let mut child = Command::new("unshare")
            .args([
                "-m",
                "-p",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                setup,
                "sb",
            ])
            .arg(&d)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("skipped: cannot set up a mount namespace");
            return None;
        }
        let id = child.id();
        let kids = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap();
        let pid1 = kids.split_whitespace().next().unwrap().parse().unwrap();
        Some(Sandbox { dir, child, pid1 })
    }

    /// A path in the scratch dir, visible inside and outside the namespace.
    pub(super) fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn nsenter(&self, shell: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid1.to_string(), "-m", "-p", "--", shell]);
        c
    }

    fn output(mut c: Command, stdin: Option<&[u8]>) -> Output {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut w = child.stdin.take().unwrap();
        if let Some(b) = stdin {
            w.write_all(b).unwrap();
        }
        drop(w);
        child.wait_with_output().unwrap()
    }

    /// Runs a RemoteCommand's line as a login shell would (`SHELL -c line`).
    pub(super) fn run_with(&self, shell: &str, cmd: &RemoteCommand) -> Output {
        let mut c = self.nsenter(shell);
        c.arg("-c").arg(&cmd.line);
        Self::output(c, cmd.stdin.as_deref())
    }

    pub(super) fn run(&self, cmd: &RemoteCommand) -> Output {
        self.run_with("sh", cmd)
    }

    /// A test-side shell snippet inside the namespace, values as arguments.
    pub(super) fn sh(&self, script: &str, args: &[&str]) -> Output {
        let mut c = self.nsenter("sh");
        c.arg("-c").arg(script).arg("t").args(args);
        Self::output(c, None)
    }

    pub(super) fn ok(&self, script: &str, args: &[&str]) -> String {
        let o = self.sh(script, args);
        assert!(o.status.success(), "{script}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    pub(super) fn exists(&self, path: &str) -> bool {
        self.sh("[ -e \"$1\" ] || [ -L \"$1\" ]", &[path])
            .status
            .success()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Killing pid 1 of the namespace kills every process in it.
        unsafe { libc::kill(self.pid1 as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn sha(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

pub(super) fn params<'a>(
    name: &'a str,
    path: &'a str,
    body: &'a [u8],
    sha: &'a str,
    timeout: Duration,
) -> InstallParams<'a> {
    InstallParams {
        name,
        run_id: "run-1",
        install_path: path,
        mode: 0o755,
        script_timeout: timeout,
        activation: ActivationKind::Cron,
        schedule: "*/5 * * * *",
        body,
        sha256: sha,
        installed_at: 1_700_000_000,
    }
}

pub(super) fn install_ok(sb: &Sandbox, p: &InstallParams) -> bool {
    let o = sb.run(&install(p));
    let out = text(&o.stdout);
    assert!(o.status.success(), "install: {out} {}", text(&o.stderr));
    install::parse_install(&out).unwrap()
}

pub(super) fn state_files(sb: &Sandbox, name: &str) -> String {
    sb.ok(
        "ls -a /var/lib/wavectl /etc/cron.d /etc/systemd/system 2>/dev/null | grep -e \"$1\" || true",
        &[name],
    )
}
