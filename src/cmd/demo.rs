//! `demo`: a local lab fleet and a rollout in which one host goes bad — the rollout is
//! caught in its last wave and rolled back everywhere, old files restored.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::Global;
use crate::exit;
use crate::lab::{Fleet, FleetOptions};
use crate::store::Access;
use crate::{plan, spec};

use super::session::{store, CmdResult};
use super::Failure;

/// The host on which the demo script breaks the app.
const BAD_HOST: &str = "web-05";
const INSTALL_PATH: &str = "/usr/local/sbin/raid-health";

const SCRIPT: &str = r#"#!/bin/sh
# Demo maintenance script: harmless everywhere but on one host, where it breaks the app.
if [ "$(hostname)" = "web-05" ]; then
    rm -f /var/lib/demo-app/healthy   # the failure the health check will catch
fi
echo "raid ok"
"#;

const SPEC: &str = r#"name = "raid-health"
description = "Demo: vendor RAID-card health check, every 5 minutes"
inventory = "inventory.toml"

[script]
source = "raid-health.sh"
install_path = "/usr/local/sbin/raid-health"
mode = "0755"
timeout = "30s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = true

[waves]
sizes = [1, 2, "100%"]
canaries = ["web-01"]
spread_by = "rack"
max_per_group = 3
concurrency = 10
bake = "3s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable", "script"]

[[health.check]]
name = "app"
command = "test -e /var/lib/demo-app/healthy"

[policy]
max_unhealthy = 0
on_failure = "rollback"
"#;

pub async fn demo(g: &Global, hosts: usize) -> CmdResult {
    if g.state_dir.is_some() {
        store(g, Access::Write).await?;
    }
    let n = hosts.clamp(6, 40);
    let names: Vec<String> = (1..=n).map(|i| format!("web-{i:02}")).collect();
    let labels = (0..n)
        .map(|i| {
            BTreeMap::from([
                ("role".to_string(), "web".to_string()),
                ("rack".to_string(), format!("r{}", i % 3 + 1)),
            ])
        })
        .collect();
    crate::outln!(
        "starting a lab fleet of {n} real sshd hosts (namespaces, overlays, freezer cgroups)..."
    );
    let mut fleet = match Fleet::start(FleetOptions { names, labels }) {
        Ok(f) => f,
        Err(e) => {
            return Err(super::CmdError::Setup(Failure::new(format!(
                "cannot start the lab fleet: {e}"
            ))))
        }
    };
    let code = run_demo(g, &fleet).await;
    if let Err(e) = fleet.stop() {
        eprintln!("warning: lab clean-up: {e}");
    }
    code
}

async fn run_demo(g: &Global, fleet: &Fleet) -> CmdResult {
    let dir = fleet.dir();
    prepare(fleet, dir).map_err(|e| {
        super::CmdError::System(Failure::new(format!("cannot prepare the demo: {e}")))
    })?;
    let spec_path = dir.join("raid-health.toml");
    let loaded = spec::load(&spec_path, None)?;
    let waves = plan::waves(&loaded.targets, &loaded.rollout.waves)?;
    crate::outln!("the spec ({}):\n", spec_path.display());
    crate::outln!("{SPEC}");
    crate::outln!("the script, which breaks the app on {BAD_HOST}:\n\n{SCRIPT}");
    crate::out!(
        "{}",
        plan::render(
            &waves,
            &loaded.targets,
            loaded.rollout.waves.spread_by.as_deref()
        )
    );
    crate::outln!();
    let g = Global {
        store: None,
        ssh_config: Some(fleet.ssh_config().to_path_buf()),
        state_dir: Some(g.state_dir.clone().unwrap_or_else(|| dir.join("state"))),
        json: g.json,
        verbose: g.verbose,
    };
    let state = store(&g, Access::Write).await?;
    let code = super::apply::run_apply(
        &g,
        &state,
        &loaded,
        &waves,
        super::apply::HowToRun::default(),
        None,
        None,
    )
    .await?;
    crate::outln!("\nwhat the hosts hold now (read from each host's own filesystem):");
    let mut all_clean = true;
    for h in fleet.hosts() {
        let script = std::fs::read_to_string(h.path(INSTALL_PATH)).ok();
        let leftovers: Vec<&str> = [
            "/var/lib/wavectl/raid-health",
            "/etc/cron.d/wavectl-raid-health",
        ]
        .into_iter()
        .filter(|p| h.path(p).exists())
        .collect();
        let script = match script.as_deref() {
            Some(s) if s.contains("old vendor version") => "old version restored",
            Some(_) => "NEW SCRIPT STILL THERE",
            None => "no script (as before)",
        };
        all_clean &= leftovers.is_empty() && script != "NEW SCRIPT STILL THERE";
        let rest = if leftovers.is_empty() {
            "no wavectl files".to_string()
        } else {
            format!("LEFT: {}", leftovers.join(", "))
        };
        crate::outln!("  {:<8} {:<24} {rest}", h.name(), script);
    }
    if code == exit::ROLLED_BACK && all_clean {
        crate::outln!(
            "\nexit 0: demo done: {BAD_HOST} went bad, the run rolled back (its exit {code}, as it should), and every host is back as it was."
        );
        Ok(exit::OK)
    } else {
        crate::outln!("\nexit 4: the demo did not end as expected (the run's exit {code}, every host clean: {all_clean})");
        Ok(exit::INCOMPLETE)
    }
}

/// Write the inventory, script and spec into the fleet dir; give every host the app's
/// health file, and some hosts an old version of the script (to show it restored).
fn prepare(fleet: &Fleet, dir: &Path) -> std::io::Result<()> {
    fleet.write_inventory(&dir.join("inventory.toml"))?;
    std::fs::write(dir.join("raid-health.sh"), SCRIPT)?;
    std::fs::write(dir.join("raid-health.toml"), SPEC)?;
    for (i, h) in fleet.hosts().iter().enumerate() {
        let mut cmd = "mkdir -p /var/lib/demo-app && touch /var/lib/demo-app/healthy".to_string();
        if i % 2 == 0 {
            cmd.push_str(" && mkdir -p /usr/local/sbin && printf '#!/bin/sh\\n# old vendor version\\n' > /usr/local/sbin/raid-health && chmod 755 /usr/local/sbin/raid-health");
        }
        let out = h.exec(&cmd)?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{}: {}",
                h.name(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}
