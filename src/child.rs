//! Programs wavectl runs on the controller itself (a dynamic inventory, a notification
//! hook): each in a process group of its own, its output captured up to a bound, and
//! the whole group killed when its deadline passes. Blocking: call it from a thread.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the readers of a killed group's output are waited for (a process that left
/// the group may hold its pipes open; its output is then given up).
const READERS_GRACE: Duration = Duration::from_secs(2);

/// How often the program is looked at.
const POLL: Duration = Duration::from_millis(10);

/// Bounds on one run of a program.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole process group is killed (SIGKILL) when this has passed.
    pub deadline: Duration,
    /// Standard output kept, at most (the first bytes).
    pub max_stdout: usize,
    /// More standard output than `max_stdout` kills the group (else the rest is read and
    /// dropped).
    pub kill_on_overflow: bool,
    /// Standard error kept, at most (the last bytes).
    pub stderr_tail: usize,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited (or a signal ended it) and its output was closed.
    Exited(ExitStatus),
    /// The deadline passed: the group was killed.
    TimedOut,
    /// It printed more than `max_stdout` (with `kill_on_overflow`): the group was killed.
    TooMuchOutput,
}

/// What one run gave.
#[derive(Debug)]
pub struct Outcome {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    /// The last `stderr_tail` bytes of standard error.
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// The end of standard error as text: its last `lines` lines, trimmed.
    pub fn stderr_lines(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let all: Vec<&str> = text.trim_end().lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Run `cmd` (its program and arguments, environment and directory set by the caller)
/// in a process group of its own, `stdin` written to it (else it reads nothing), within
/// `limits`. An error: it could not be started.
pub fn run(cmd: &mut Command, stdin: Option<Vec<u8>>, limits: Limits) -> std::io::Result<Outcome> {
    cmd.process_group(0)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that does not read its input must not hold us: the write runs on
        // its own, and a closed pipe is no error of ours.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let overflow = Arc::new(AtomicBool::new(false));
    let out = Reader::start(child.stdout.take(), limits.max_stdout, Keep::Head, {
        let o = overflow.clone();
        move || o.store(true, Ordering::Relaxed)
    });
    let err = Reader::start(child.stderr.take(), limits.stderr_tail, Keep::Tail, || {});
    let start = Instant::now();
    let ended = loop {
        if limits.kill_on_overflow && overflow.load(Ordering::Relaxed) {
            kill_group(pid);
            break Ended::TooMuchOutput;
        }
        if exited(pid) && out.done() && err.done() {
            // Reaped below: until then the group's id cannot be taken by anyone else.
            break Ended::Exited(child.wait()?);
        }
        if start.elapsed() >= limits.deadline {
            kill_group(pid);
            break Ended::TimedOut;
        }
        thread::sleep(POLL);
    };
    if !matches!(ended, Ended::Exited(_)) {
        let grace = Instant::now();
        while !(out.done() && err.done()) && grace.elapsed() < READERS_GRACE {
            thread::sleep(POLL);
        }
        let _ = child.wait();
    }
    Ok(Outcome {
        ended,
        stdout: out.take(),
        stderr: err.take(),
    })
}

/// The program has exited (it is not reaped: its pid, the group's id, stays ours).
fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid(2).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid(2) on our own unreaped child, writing only to `info`.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set by waitid (0 when no child has changed state).
    r == 0 && unsafe { info.si_pid() } != 0
}

/// SIGKILL to the program's whole process group. Called only before the program is
/// reaped, so the group's id is still its own.
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) on the process group our unreaped child leads; no memory involved.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[derive(Clone, Copy)]
enum Keep {
    Head,
    Tail,
}

/// One output pipe, read to its end on a thread into a bounded buffer.
struct Reader {
    buf: Arc<Mutex<Vec<u8>>>,
    handle: Option<JoinHandle<()>>,
}

impl Reader {
    fn start(
        pipe: Option<impl Read + Send + 'static>,
        max: usize,
        keep: Keep,
        on_overflow: impl Fn() + Send + 'static,
    ) -> Reader {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let handle = pipe.map(|mut pipe| {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                    match keep {
                        Keep::Head => {
                            let room = max.saturating_sub(b.len());
                            b.extend_from_slice(&chunk[..n.min(room)]);
                            if n > room {
                                on_overflow();
                            }
                        }
                        Keep::Tail => {
                            b.extend_from_slice(&chunk[..n]);
                            if b.len() > max {
                                let cut = b.len() - max;
                                b.drain(..cut);
                            }
                        }
                    }
                }
            })
        });
        Reader { buf, handle }
    }

    fn done(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// What was read (a reader still blocked, on a pipe held by a process that left the
    /// group, is left behind).
    fn take(self) -> Vec<u8> {
        if self.done() {
            if let Some(h) = self.handle {
                let _ = h.join();
            }
        }
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(deadline: Duration) -> Limits {
        Limits {
            deadline,
            max_stdout: 1024,
            kill_on_overflow: true,
            stderr_tail: 64,
        }
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    /// Whether a process whose command line contains `needle` is alive.
    fn alive(needle: &str) -> bool {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
    }

    #[test]
    fn output_input_and_exit_status() {
        let o = run(
            &mut sh("cat; echo err >&2; echo ERR2 >&2; exit 3"),
            Some(b"hello".to_vec()),
            limits(Duration::from_secs(60)),
        )
        .unwrap();
        assert!(matches!(o.ended, Ended::Exited(s) if s.code() == Some(3)));
        assert_eq!(o.stdout, b"hello");
        assert_eq!(o.stderr_lines(1), "ERR2");
        assert_eq!(o.stderr_lines(5), "err\nERR2");
    }

    #[test]
    fn stderr_keeps_its_tail() {
        let o = run(
            &mut sh("i=0; while [ $i -lt 100 ]; do echo line$i >&2; i=$((i+1)); done"),
            None,
            limits(Duration::from_secs(60)),
        )
        .unwrap();
        assert!(o.stderr.len() <= 64);
        assert_eq!(o.stderr_lines(1), "line99");
    }

    #[test]
    fn a_program_past_its_deadline_is_killed_with_its_whole_group() {
        let marker = format!("wavectl-child-test-{}", std::process::id());
        // A child of the program that keeps the group (and its output) alive.
        let o = run(
            &mut sh(&format!(
                "sh -c 'sleep 600; :' {marker} & echo started; exec sh -c 'sleep 601; :' {marker}"
            )),
            None,
            limits(Duration::from_millis(300)),
        )
        .unwrap();
        assert_eq!(o.ended, Ended::TimedOut);
        assert_eq!(o.stdout, b"started\n");
        assert!(!alive(&marker), "a process of the group survived");
    }

    #[test]
    fn too_much_output_kills_the_group() {
        let o = run(&mut sh("yes"), None, limits(Duration::from_secs(60))).unwrap();
        assert_eq!(o.ended, Ended::TooMuchOutput);
        assert_eq!(o.stdout.len(), 1024);
        // Without the kill the rest is read and dropped.
        let o = run(
            &mut sh("head -c 100000 /dev/zero; exit 0"),
            None,
            Limits {
                kill_on_overflow: false,
                ..limits(Duration::from_secs(60))
            },
        )
        .unwrap();
        assert!(matches!(o.ended, Ended::Exited(s) if s.success()));
        assert_eq!(o.stdout.len(), 1024);
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error() {
        let e = run(
            &mut Command::new("/nonexistent/program"),
            None,
            limits(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
