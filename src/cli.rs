//! Command-line definitions (clap) only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wavectl",
    version,
    about = "Staged script rollout: canary waves over SSH, health after each wave, automatic rollback"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where run journals and locks live.
    #[arg(long, global = true, env = "WAVECTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// An ssh_config file, passed to ssh as -F.
    #[arg(long, global = true, env = "WAVECTL_SSH_CONFIG", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// One JSON event per line on stdout instead of the human display.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show every host step and every verdict, not only the bad ones.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the spec, its inventory and its script; no network.
    Check(SpecArgs),
    /// Print the waves.
    Plan(SpecArgs),
    /// Run a rollout, wave by wave.
    Apply {
        #[command(flatten)]
        spec: SpecArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List runs, or show each host of one run.
    Status {
        /// A run id (see `wavectl status`).
        run: Option<String>,
    },
    /// Remove the script from every host of a finished, paused or crashed run.
    Rollback {
        /// A run id (see `wavectl status`).
        run: String,
    },
    /// A local lab fleet and a rollout in which one host goes bad.
    Demo {
        /// Hosts in the lab fleet.
        #[arg(long, default_value_t = 8)]
        hosts: usize,
    },
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The rollout spec, e.g. rollouts/raid-health.toml.
    pub rollout: PathBuf,
    /// Use this inventory instead of the spec's.
    #[arg(long, value_name = "INV")]
    pub inventory: Option<PathBuf>,
}
