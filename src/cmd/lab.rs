//! `lab up N` / `lab down`: the demo's fleet of real sshd hosts, kept running for a
//! newcomer's own rollouts, with an inventory, an ssh_config and an example rollout in a
//! directory. Starts processes (the fleet), writes that directory, signals `lab up`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::exit;
use crate::lab::{Fleet, FleetOptions, HostKind};

use super::session::{CmdError, CmdResult};
use super::Failure;

const EXAMPLE_SCRIPT: &str = "#!/bin/sh\n# An example maintenance script: say hello to the host's log.\nlogger -t example \"hello from $(hostname)\" 2>/dev/null\necho \"hello from $(hostname)\"\n";

const EXAMPLE_SPEC: &str = r#"name = "example"
description = "An example rollout on the lab fleet"
inventory = "inventory.toml"

[script]
source = "example.sh"
install_path = "/usr/local/sbin/example"
timeout = "30s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
sizes = [1, "50%", "100%"]
bake = "5s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]
"#;

fn pid_file(dir: &Path) -> std::path::PathBuf {
    dir.join("lab.pid")
}

pub async fn up(hosts: u16, dir: &Path, kind: &str, kex: Option<&str>) -> CmdResult {
    let kind = match kind {
        "sshd" => HostKind::Sshd,
        "cron" => HostKind::Cron,
        "systemd" => HostKind::Systemd,
        other => {
            return Err(CmdError::Input(
                crate::diag::InputError::new(format!("unknown host kind `{other}`"))
                    .help("use --kind sshd, cron or systemd"),
            ))
        }
    };
    if let Ok(pid) = std::fs::read_to_string(pid_file(dir)) {
        if pid.trim().parse().is_ok_and(alive) {
            return Err(CmdError::Setup(Failure::new(format!(
                "a lab fleet already runs from {} (pid {}); `wavectl lab down --dir {}` first",
                dir.display(),
                pid.trim(),
                dir.display()
            ))));
        }
    }
    let io = |e: std::io::Error| CmdError::Setup(Failure::new(format!("{}: {e}", dir.display())));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut fleet = Fleet::start_kind(FleetOptions::numbered(usize::from(hosts)), kind)
        .map_err(|e| CmdError::Setup(Failure::new(format!("cannot start the lab fleet: {e}"))))?;
    if let Some(kex) = kex {
        fleet.set_kex(kex).map_err(|e| {
            CmdError::Input(
                crate::diag::InputError::new(format!("--kex: {e}"))
                    .help("e.g. --kex curve25519-sha256; `ssh -Q kex` lists what this ssh knows"),
            )
        })?;
    }
    let run = || -> std::io::Result<()> {
        fleet.write_inventory(&dir.join("inventory.toml"))?;
        std::fs::copy(fleet.ssh_config(), dir.join("ssh_config"))?;
        std::fs::write(dir.join("example.sh"), EXAMPLE_SCRIPT)?;
        std::fs::write(dir.join("example.toml"), EXAMPLE_SPEC)?;
        std::fs::write(pid_file(dir), format!("{}\n", std::process::id()))
    };
    run().map_err(io)?;
    let d = dir.display();
    crate::outln!(
        "lab fleet up: {hosts} {} hosts (h01..h{hosts:02}) in {}\n\
         try:\n  export WAVECTL_SSH_CONFIG={d}/ssh_config WAVECTL_STATE_DIR={d}/state\n  \
         wavectl plan {d}/example.toml\n  wavectl apply {d}/example.toml --yes\n  \
         ssh -F {d}/ssh_config h01\n\
         key exchange: {}\n\
         stop it with `wavectl lab down --dir {d}` or Ctrl-C",
        kind.as_str(),
        fleet.dir().display(),
        kex.unwrap_or("OpenSSH's default"),
    );
    // Run until asked to stop.
    let waited = match crate::exec::Signals::listen() {
        Ok(mut signals) => {
            signals.next().await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = waited {
        eprintln!("warning: cannot wait for a signal ({e}); stopping the fleet");
    }
    let _ = std::fs::remove_file(pid_file(dir));
    fleet
        .stop()
        .map_err(|e| CmdError::System(Failure::new(format!("lab clean-up: {e}"))))?;
    crate::outln!("lab fleet down");
    Ok(exit::OK)
}

/// The process runs (a zombie waiting for its parent does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub fn down(dir: &Path) -> CmdResult {
    let text = std::fs::read_to_string(pid_file(dir)).map_err(|_| {
        CmdError::Setup(Failure::new(format!(
            "no lab fleet runs from {} (no lab.pid)",
            dir.display()
        )))
    })?;
    let pid: i32 = text.trim().parse().map_err(|_| {
        CmdError::Setup(Failure::new(format!(
            "{}: not a pid",
            pid_file(dir).display()
        )))
    })?;
    // SAFETY: kill(2) on the pid `lab up` recorded; no memory involved.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let _ = std::fs::remove_file(pid_file(dir));
        return Err(CmdError::Setup(Failure::new(format!(
            "the lab fleet's process {pid} is gone; removed its lab.pid"
        ))));
    }
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(CmdError::System(Failure::new(format!(
                "the lab fleet (pid {pid}) did not stop within 60s"
            ))));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::outln!("lab fleet from {} stopped", dir.display());
    Ok(exit::OK)
}
