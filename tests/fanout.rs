//! wavectl at fan-out against a real sshd fleet with OpenSSH's default key exchange (the
//! lab's: `sntrup761x25519-sha512`, ~135 ms of client CPU per login, as real fleets
//! negotiate): healthy hosts are never condemned for the controller's own load
//! (deadlines start at admission, logins are admitted as the CPU carries them), an
//! apply logs in exactly twice per host (the deploy's login, one fresh login after the
//! install; every other action rides those), a purge once. Logins are counted in each
//! host's own sshd log, so nothing here depends on timing. The 200-host checks are in the
//! benchmark: `cargo bench --bench fanout -- --concurrency 200 --probe-timeout 2s --skip
//! purge,ansible --hogs 2` fails on any bad verdict, `-- --hosts 1000 --concurrency 200
//! --skip floor,apply,ansible` on any host left pending.

mod common;

use std::collections::BTreeMap;

use common::*;

const NAME: &str = "fan";
const INSTALL: &str = "/usr/local/sbin/fan";

fn spec(concurrency: usize) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"

[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
sizes = [1, "25%", "100%"]
concurrency = {concurrency}
bake = "0s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script", "kernel", "units", "blocked", "load"]
[[health.check]]
name = "hostname"
command = "test -s /etc/hostname"

[policy]
max_unhealthy = 0
on_failure = "rollback"
"#
    )
}

/// How many logins each host's sshd has accepted so far.
fn logins(w: &Workdir) -> BTreeMap<String, usize> {
    w.fleet
        .hosts()
        .iter()
        .map(|h| {
            let log = std::fs::read_to_string(h.dir().join("sshd.log")).unwrap_or_default();
            (
                h.name().to_string(),
                log.matches("Accepted publickey for").count(),
            )
        })
        .collect()
}

fn diff(
    after: &BTreeMap<String, usize>,
    before: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .map(|(h, n)| (h.clone(), n - before.get(h).copied().unwrap_or(0)))
        .collect()
}

/// The `--json` events that tell of a host not doing well.
fn bad_events(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v.get("ok") == Some(&serde_json::Value::Bool(false))
                || v.get("verdict")
                    .and_then(|x| x.get("health"))
                    .is_some_and(|h| h != "healthy")
        })
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn every_host_at_once_is_judged_healthy_and_logs_in_twice_then_purge_once() {
    // As many hosts as the concurrency: every login and probe of a wave is asked for at
    // once, on two cores, with a 2 s probe timeout (run this next to a CPU hog too).
    let n = 40;
    let w = Workdir::new(fleet(n), "#!/bin/sh\necho ok\n", &spec(n));
    let before = logins(&w);
    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes"]);
    let bad = bad_events(&r.stdout);
    assert!(
        r.code == Some(0) && bad.is_empty(),
        "apply exit {:?}; bad: {bad:#?}\n{}",
        r.code,
        r.stderr
    );
    let applied = diff(&logins(&w), &before);
    for (host, n) in &applied {
        assert_eq!(
            *n, 2,
            "{host}: {n} logins during apply (the deploy's, one fresh after the install): {applied:?}"
        );
    }
    w.assert_no_ssh_left();

    let before = logins(&w);
    let r = w.wavectl(&[
        "--json",
        "purge",
        NAME,
        "--inventory",
        "inventory.toml",
        "--yes",
    ]);
    let bad = bad_events(&r.stdout);
    assert!(
        r.code == Some(0) && bad.is_empty(),
        "purge exit {:?}; bad: {bad:#?}\n{}",
        r.code,
        r.stderr
    );
    let purged = diff(&logins(&w), &before);
    assert!(
        purged.values().all(|n| *n == 1),
        "purge logs in once per host: {purged:?}"
    );
    for h in w.fleet.hosts() {
        assert!(!h.path(INSTALL).exists(), "{}: still installed", h.name());
    }
    w.assert_no_ssh_left();
}
