//! Benchmark: how long an emergency `purge` of 30 hosts and a one-wave `apply` take,
//! as ratios against a floor measured in the same run on the same lab fleet: one plain
//! `ssh HOST true` login and 30 of them one after another. Prints a table; asserts
//! nothing (timings on a shared machine are not pass/fail).
//!
//! Run: `cargo bench --bench fanout` (needs root and openssh-server, like the tests).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wavectl::lab::{Fleet, FleetOptions};

const HOSTS: usize = 30;
const ROUNDS: usize = 3;

fn wavectl(dir: &Path, fleet: &Fleet, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_wavectl"))
        .arg("--ssh-config")
        .arg(fleet.ssh_config())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wavectl");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "wavectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn login(fleet: &Fleet, host: &str) -> Duration {
    let start = Instant::now();
    let out = fleet.ssh(host).arg("true").output().expect("ssh");
    assert!(out.status.success());
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let fleet = Fleet::start(FleetOptions::numbered(HOSTS)).expect("lab fleet");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fleet.write_inventory(&d.join("inventory.toml")).unwrap();
    std::fs::write(d.join("s.sh"), "#!/bin/sh\necho ok\n").unwrap();
    std::fs::write(
        d.join("r.toml"),
        r#"name = "bench"
inventory = "inventory.toml"
[script]
source = "s.sh"
install_path = "/usr/local/sbin/bench"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = false
[waves]
sizes = ["100%"]
bake = "0s"
min_runs = 0
[health]
interval = "5s"
probe_timeout = "5s"
"#,
    )
    .unwrap();
    let names: Vec<String> = fleet.hosts().iter().map(|h| h.name().to_string()).collect();
    let mut one = Vec::new();
    let mut serial = Vec::new();
    let mut apply = Vec::new();
    let mut purge = Vec::new();
    for _ in 0..ROUNDS {
        one.push(login(&fleet, &names[0]));
        let s = Instant::now();
        for n in &names {
            login(&fleet, n);
        }
        serial.push(s.elapsed());
        apply.push(wavectl(d, &fleet, &["apply", "r.toml", "--yes"]));
        purge.push(wavectl(
            d,
            &fleet,
            &["purge", "bench", "--inventory", "inventory.toml"],
        ));
    }
    let (one, serial, apply, purge) = (median(one), median(serial), median(apply), median(purge));
    let ratio = |x: Duration, floor: Duration| x.as_secs_f64() / floor.as_secs_f64();
    println!("{HOSTS} lab hosts, median of {ROUNDS} rounds");
    println!(
        "{:<44} {:>9} {:>12} {:>14}",
        "what", "time", "x one login", "x 30 serial"
    );
    for (what, t) in [
        ("floor: one `ssh host true`", one),
        ("floor: 30 `ssh host true`, one after another", serial),
        ("apply, one wave of 30 (install + confirm)", apply),
        ("purge of 30 (fan-out 200)", purge),
    ] {
        println!(
            "{what:<44} {:>8.3}s {:>12.1} {:>14.2}",
            t.as_secs_f64(),
            ratio(t, one),
            ratio(t, serial)
        );
    }
}
