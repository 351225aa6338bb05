//! The command line as a tool: completions, the man page, `--version`, `--json` of
//! `check` and `plan`, a command that changes hosts refusing to go on without `--yes`
//! when nobody can be asked, and `lab up` / `lab down`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn out(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

#[test]
fn completions_man_page_and_version_come_from_the_cli_definition() {
    let bash = out(&["completions", "bash"]);
    assert!(bash.status.success());
    let text = String::from_utf8_lossy(&bash.stdout);
    assert!(
        text.contains("wavectl") && text.contains("reconcile") && text.contains("--until-done")
    );
    let zsh = out(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).contains("#compdef wavectl"));
    let man = out(&["manpage"]);
    let man = String::from_utf8_lossy(&man.stdout).into_owned();
    assert!(
        man.starts_with(".ie") || man.contains(".TH wavectl"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("approve"), "the man page lists the commands");
    let v = out(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("wavectl {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = out(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

const SPEC: &str = r#"name = "cli"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "/usr/local/sbin/cli-test"
[activation]
kind = "none"
[waves]
sizes = [1, "100%"]
bake = "1s"
"#;

#[test]
fn check_and_plan_json_give_the_resolved_plan_and_errors_are_json_too() {
    let w = Workdir::new(fleet(3), "#!/bin/sh\necho ok\n", SPEC);
    for cmd in ["check", "plan"] {
        let r = w.wavectl(&["--json", cmd, "rollout.toml"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(v["rollout"], "cli", "{v}");
        assert_eq!(v["hosts"].as_array().unwrap().len(), 3);
        assert_eq!(v["waves"], serde_json::json!([["h01"], ["h02", "h03"]]));
        assert_eq!(v["deployment"]["install_path"], "/usr/local/sbin/cli-test");
    }
    let r = w.wavectl(&["--json", "check", "missing.toml"]);
    assert_eq!(r.code, Some(2));
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["event"], "error");
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["message"].as_str().unwrap().contains("missing.toml"),
        "{v}"
    );
    // Without a terminal and without --yes, nothing that changes hosts goes on.
    for args in [
        vec!["apply", "rollout.toml"],
        vec!["purge", "cli", "--inventory", "inventory.toml"],
        vec!["reconcile"],
    ] {
        let r = w.wavectl(&args);
        if args[0] == "reconcile" {
            // Nothing to reconcile: nothing to ask.
            assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
            continue;
        }
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("pass --yes"), "{args:?}: {}", r.stderr);
    }
    assert!(
        !w.state().join("runs").exists()
            || std::fs::read_dir(w.state().join("runs")).unwrap().count() == 0
    );
}

#[test]
fn lab_up_keeps_a_fleet_until_lab_down() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let mut up = Command::new(bin())
        .args(["lab", "up", "2", "--dir", lab.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || lab.join("lab.pid").exists()),
        "lab up wrote no lab.pid"
    );
    for f in ["inventory.toml", "ssh_config", "example.toml", "example.sh"] {
        assert!(lab.join(f).exists(), "{f}");
    }
    let ssh = Command::new("ssh")
        .args([
            "-F",
            lab.join("ssh_config").to_str().unwrap(),
            "h02",
            "hostname",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ssh.stdout).trim(), "h02");
    // A second `lab up` in the same directory is refused.
    let again = out(&["lab", "up", "1", "--dir", lab.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    let down = out(&["lab", "down", "--dir", lab.to_str().unwrap()]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let status = up.wait().unwrap();
    assert!(status.success());
    assert!(!lab.join("lab.pid").exists());
    // What `lab up` said: where the hosts are and which key exchange they use.
    let mut said = String::new();
    std::io::Read::read_to_string(&mut up.stdout.take().unwrap(), &mut said).unwrap();
    assert!(
        said.contains("lab fleet up: 2 sshd hosts (h01..h02) in /"),
        "{said}"
    );
    assert!(said.contains("key exchange: OpenSSH's default"), "{said}");
    let ssh = Command::new("ssh")
        .args([
            "-F",
            lab.join("ssh_config").to_str().unwrap(),
            "-o",
            "ConnectTimeout=2",
            "h02",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!ssh.status.success(), "the hosts are gone");
}

/// Output into a pipe whose reader went away (`wavectl status | head`) is dropped, not a
/// panic (exit 101): the command ends as it would have.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(bin())
        .args(["check", "rollouts/raid-health.toml"])
        .current_dir(repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
