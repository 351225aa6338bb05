//! Test harness: a throwaway mount + pid namespace (overlays over /etc, /var, /opt,
//! /usr; tmpfs /run) in which the generated commands run for real without touching this
//! machine, with `sh` being dash or bash ([`Shell`]: every sandbox test runs under both,
//! see [`both_shells`]), and cgroups of its own ([`Cgroups`]). Needs root, `unshare` and
//! `nsenter`; a test that cannot have its sandbox fails, saying why.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::*;
use crate::spec::ActivationKind;

/// What `sh` (and `/bin/sh`, so every `#!/bin/sh`) is in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shell {
    /// Debian's /bin/sh.
    Dash,
    /// bash, as `sh` (POSIX mode), as on hosts whose /bin/sh is bash.
    Bash,
}

/// `both_shells!(test_fn)`: `test_fn(Shell)` as two tests, `test_fn::dash` and
/// `test_fn::bash`.
macro_rules! both_shells {
    ($name:ident) => {
        mod $name {
            #[test]
            fn dash() {
                super::$name(super::Shell::Dash);
            }
            #[test]
            fn bash() {
                super::$name(super::Shell::Bash);
            }
        }
    };
}
pub(super) use both_shells;

/// Which cgroup hierarchies the sandbox sees (the wrapper gives each run a cgroup of its
/// own under pid 1's cgroup in the first one it finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cgroups {
    /// This machine's: the freezer hierarchy (cgroup v1) first.
    V1,
    /// The freezer hierarchy unmounted: the unified one (cgroup v2).
    V2,
    /// No cgroup hierarchy mounted: runs are known by pid + start time + boot id.
    None,
}

/// Where the sandboxes' own cgroups go, in each hierarchy that exists here.
const CGROUP_PARENTS: [&str; 2] = [
    "/sys/fs/cgroup/freezer/wavectl-sandbox",
    "/sys/fs/cgroup/unified/wavectl-sandbox",
];

/// One namespace: its pid 1 (as seen from here), a scratch dir visible both sides, and
/// the cgroups its pid 1 was put in.
pub(super) struct Sandbox {
    dir: tempfile::TempDir,
    child: Child,
    pid1: u32,
    cgroups: Vec<PathBuf>,
}

impl Sandbox {
    /// A sandbox with this machine's cgroups.
    pub(super) fn new(shell: Shell) -> Sandbox {
        Sandbox::with(shell, Cgroups::V1)
    }

    pub(super) fn with(shell: Shell, cg: Cgroups) -> Sandbox {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the sandbox tests need root (they mount overlays in a namespace of their own)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        // Its pid 1's cgroups: one per hierarchy here, inside this process's own.
        let id = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let cgroups: Vec<PathBuf> = CGROUP_PARENTS
            .iter()
            .filter(|p| {
                std::path::Path::new(p)
                    .parent()
                    .unwrap()
                    .join("cgroup.procs")
                    .exists()
            })
            .map(|p| PathBuf::from(p).join(&id))
            .collect();
        for cg in &cgroups {
            std::fs::create_dir_all(cg).unwrap_or_else(|e| panic!("{}: {e}", cg.display()));
        }
        let setup = r#"set -e
d=$1 shell=$2 cg=$3
mkdir -p "$d/t"
mount -t tmpfs none "$d/t"
for x in etc var opt usr; do
  mkdir -p "$d/t/u-$x" "$d/t/w-$x"
  mount -t overlay overlay -o "lowerdir=/$x,upperdir=$d/t/u-$x,workdir=$d/t/w-$x" "/$x"
done
mount -t tmpfs none /run
mkdir -p /opt/wv /etc/cron.d /var/log
[ "$shell" = dash ] || ln -sfn "$shell" /usr/bin/sh
case $cg in
  v2) umount /sys/fs/cgroup/freezer ;;
  none) for m in /sys/fs/cgroup/*; do ! mountpoint -q "$m" || umount "$m"; done ;;
esac
echo ready
exec sleep 3600"#;
        // The launcher joins the sandbox's cgroups, then makes the namespaces.
        let join = r#"for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f/cgroup.procs" || exit; done
while [ "$1" != -- ]; do shift; done; shift; exec "$@""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(join)
            .arg("join")
            .args(&cgroups)
            .arg("--")
            .args([
                "unshare",
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
            .arg(match shell {
                Shell::Dash => "dash",
                Shell::Bash => "bash",
            })
            .arg(match cg {
                Cgroups::V1 => "v1",
                Cgroups::V2 => "v2",
                Cgroups::None => "none",
            })
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare for the sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cannot set up the sandbox's mount namespace (see its stderr above)");
        }
        let id = child.id();
        let kids = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap();
        let pid1 = kids.split_whitespace().next().unwrap().parse().unwrap();
        let sb = Sandbox {
            dir,
            child,
            pid1,
            cgroups,
        };
        let want = match shell {
            Shell::Dash => "dash",
            Shell::Bash => "bash",
        };
        assert_eq!(
            sb.ok("readlink -f /bin/sh", &[]).trim(),
            format!("/usr/bin/{want}")
        );
        sb
    }

    /// A path in the scratch dir, visible inside and outside the namespace.
    pub(super) fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The sandbox's own cgroup in the freezer hierarchy (v1), if this machine has one.
    pub(super) fn freezer_cgroup(&self) -> Option<&PathBuf> {
        self.cgroups
            .iter()
            .find(|c| c.starts_with("/sys/fs/cgroup/freezer"))
    }

    /// The sandbox's own cgroup in the unified hierarchy (v2), if this machine has one.
    pub(super) fn unified_cgroup(&self) -> Option<&PathBuf> {
        self.cgroups
            .iter()
            .find(|c| c.starts_with("/sys/fs/cgroup/unified"))
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

    /// Runs a command whose stdin gets `partial` and then stays open until the command
    /// ends (an install cut short while it reads the script: its remote `timeout` ends it).
    pub(super) fn run_held(&self, cmd: &RemoteCommand, partial: &[u8]) -> Output {
        let mut c = self.nsenter("sh");
        c.arg("-c").arg(&cmd.line);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut w = child.stdin.take().unwrap();
        w.write_all(partial).unwrap();
        w.flush().unwrap();
        let out = child.wait_with_output().unwrap();
        drop(w);
        out
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
        for cg in &self.cgroups {
            if let Err(e) = crate::lab::remove_cgroup(cg, Duration::from_secs(5)) {
                eprintln!("sandbox: {e}");
            }
        }
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
        lease: Duration::ZERO,
        force: false,
        start: false,
    }
}

/// Installs; panics unless it succeeded. Returns (backup kept, previous version).
pub(super) fn install_ok(sb: &Sandbox, p: &InstallParams) -> (bool, Option<String>) {
    match install_result(sb, p) {
        InstallResult::Installed { backup, prev, .. } => (backup, prev),
        other => panic!("install of {} at {:?}: {other:?}", p.run_id, p.install_path),
    }
}

pub(super) fn install_result(sb: &Sandbox, p: &InstallParams) -> InstallResult {
    let o = sb.run(&install(p));
    let r = parse_install(o.status.code(), &text(&o.stdout));
    if !matches!(r, InstallResult::Installed { .. }) {
        eprintln!("install stderr: {}", text(&o.stderr));
    }
    r
}

/// A removal of `scope`, parsed.
pub(super) fn remove_on(
    sb: &Sandbox,
    name: &str,
    path: Option<&str>,
    scope: RemoveScope,
) -> RemovalReport {
    let o = sb.run(&remove(name, path, scope, Duration::from_secs(5)));
    let r = parse_remove(&text(&o.stdout));
    if !r.clean {
        eprintln!("remove stderr: {}", text(&o.stderr));
    }
    r
}

pub(super) fn state_of(sb: &Sandbox, name: &str, run: &str) -> SettleReport {
    let o = sb.run(&settle(name, run));
    parse_settle(&text(&o.stdout))
        .unwrap_or_else(|e| panic!("{e}: {} {}", text(&o.stdout), text(&o.stderr)))
}

/// Ask `f` every 100 ms until it holds, at most 50 times (5 s); false if it never did.
pub(super) fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..50 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub(super) fn confirm_on(sb: &Sandbox, name: &str, run: &str) -> ConfirmResult {
    let o = sb.run(&confirm(name, run));
    parse_confirm(o.status.code(), &text(&o.stdout))
}

/// Everything a restore must keep of a file: bytes (sha256), type, size, mode, owner, mtime,
/// extended attributes (file capabilities included), a symlink's target.
pub(super) fn file_facts(sb: &Sandbox, path: &str) -> String {
    sb.ok(
        r#"p=$1
if [ -L "$p" ]; then printf 'link %s\n' "$(readlink "$p")"; exit 0; fi
[ -e "$p" ] || { echo absent; exit 0; }
sha256sum < "$p" | cut -c1-64
stat -c '%F %s %a %u %g %Y' "$p"
if command -v getfattr >/dev/null; then getfattr -h -d -m - -e hex --absolute-names "$p" 2>/dev/null | sed 1d; fi"#,
        &[path],
    )
}

/// Checks that the filesystems of the sandbox keep a user xattr (at /opt and under
/// /var/lib/wavectl) and a file capability, which the exact-restore tests set: a test
/// that cannot check them fails, saying what is missing.
pub(super) fn assert_xattrs_work(sb: &Sandbox) {
    let user = sb
        .sh(
            "command -v setfattr >/dev/null && mkdir -p /var/lib/wavectl &&              for d in /opt /var/lib/wavectl; do touch $d/.xa && setfattr -n user.t -v 1 $d/.xa || exit 1; rm -f $d/.xa; done",
            &[],
        )
        .status
        .success();
    let cap = sb
        .sh(
            "command -v setcap >/dev/null && touch /opt/.xc && setcap cap_net_raw+ep /opt/.xc && rm -f /opt/.xc",
            &[],
        )
        .status
        .success();
    assert!(
        user,
        "user xattrs do not work in the sandbox: apt-get install -y attr (setfattr), on a \
         kernel whose tmpfs and overlayfs keep user xattrs"
    );
    assert!(
        cap,
        "file capabilities do not work in the sandbox: apt-get install -y libcap2-bin (setcap)"
    );
}

pub(super) fn state_files(sb: &Sandbox, name: &str) -> String {
    sb.ok(
        "ls -a /var/lib/wavectl /etc/cron.d /etc/systemd/system 2>/dev/null | grep -e \"$1\" || true",
        &[name],
    )
}
