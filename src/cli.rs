//! Command-line definitions (clap) only.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

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
    /// A PostgreSQL database shared by every controller (postgres://USER@HOST/DB, or a
    /// libpq conninfo; the password from PGPASSWORD or ~/.pgpass) instead of --state-dir.
    #[arg(
        long,
        global = true,
        env = "WAVECTL_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
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
    /// Print the waves, the durations and an estimate of the run; `-o` writes a plan file.
    Plan {
        #[command(flatten)]
        spec: SpecArgs,
        /// Write the plan (everything the run will do, and its hash) to this file.
        #[arg(short = 'o', long, value_name = "PLAN")]
        output: Option<PathBuf>,
        /// How long the written plan can be applied (1m to 30d).
        #[arg(long, default_value = "24h", value_parser = parse_valid_for, value_name = "DURATION")]
        valid_for: std::time::Duration,
        /// The allowed-signers file the plan's approvals are checked against, for a spec
        /// that names none in policy.allowed_signers (the plan's hash covers it).
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Also log in to every target and report what each holds at install_path, and
        /// whether an install would be refused there; changes nothing on any host.
        #[arg(long)]
        probe: bool,
    },
    /// Sign a plan's hash (`ssh-keygen -Y sign`): one approval.
    Approve {
        /// The plan file (written by `wavectl plan -o`).
        plan: PathBuf,
        /// The SSH private key to sign with.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Who approves (the principal of the allowed-signers file) [default: the local user].
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Run a rollout (a spec, or an approved plan file), wave by wave.
    Apply {
        #[command(flatten)]
        spec: SpecArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Leave out the targets that do not answer the preflight (offline before the
        /// run): plan the waves without them and report them as skipped [default: such a
        /// target refuses the run, exit 4].
        #[arg(long)]
        skip_unreachable: bool,
        /// The allowed-signers file to check a plan's approvals against, for a spec that
        /// names none (its bytes must be those the plan was made with) [default: the
        /// spec's policy.allowed_signers, else the plan's].
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Write the run's metrics to this file (node_exporter's textfile format), rewritten at every event.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// A Markdown account of a run, for a change ticket.
    Report {
        /// A run id or a unique prefix of one.
        run: String,
    },
    /// List runs, or show each host of one run.
    Status {
        /// A run id (see `wavectl status`), or a unique prefix of one.
        run: Option<String>,
        /// Show it again every 2 seconds (until the run ends, with RUN; else until Ctrl-C).
        #[arg(long)]
        watch: bool,
    },
    /// Continue a run whose controller died, or a paused one (or finish its rollback).
    Resume {
        /// A run id (see `wavectl status`), or a unique prefix of one.
        run: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// Write the run's metrics to this file (node_exporter's textfile format), rewritten at every event.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Remove the script from every host of a finished, paused or crashed run.
    Rollback {
        /// A run id (see `wavectl status`), or a unique prefix of one.
        run: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// Write the run's metrics to this file (node_exporter's textfile format), rewritten at every event.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Ask a running apply to stop and roll back (what the first Ctrl-C does).
    Abort {
        /// A run id (see `wavectl status`).
        run: String,
    },
    /// Let a run waiting at a gate (`[gates]`) go on to its next wave.
    Promote {
        /// A run id (see `wavectl status`), or a unique prefix of one.
        run: String,
    },
    /// Refuse applies of a rollout (or of every rollout) until unfrozen (exit 5); a
    /// running apply waits at its next wave boundary. Never blocks purge, rollback or
    /// reconcile.
    Freeze(FreezeArgs),
    /// Lift the freeze of a rollout, or (--all) every freeze.
    Unfreeze {
        /// The rollout name.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every freeze.
        #[arg(long)]
        all: bool,
    },
    /// Emergency removal from every selected host: no waves, no bake, high fan-out.
    Purge(PurgeArgs),
    /// Retry every pending removal, of one run or of all.
    Reconcile {
        /// A run id; all runs when omitted.
        run: Option<String>,
        /// Keep retrying, with backoff, until every host is clean.
        #[arg(long)]
        until_done: bool,
        /// Stand by: take over any unfinished run whose controller has held no lock for
        /// --grace, finish it as reconcile would, and go on watching (until Ctrl-C).
        #[arg(long, conflicts_with = "run")]
        watch: bool,
        /// With --watch: how long a run's controller must have held no lock.
        #[arg(long, default_value = "30s", value_parser = parse_grace, value_name = "DURATION", requires = "watch")]
        grace: std::time::Duration,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// Write each reconciled run's metrics to this file (node_exporter's textfile format), rewritten at every event.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// The shared store (--store): create or upgrade its schema; copy a state directory in.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The audit log: who did what to which rollout, and how it ended.
    Audit {
        /// Only entries since then: a duration back from now (24h, 7d) or a UTC time.
        #[arg(long, value_name = "DUR|TIME")]
        since: Option<String>,
    },
    /// A local fleet of real sshd hosts to try rollouts on (`up` runs until `down` or Ctrl-C).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Shell completions, generated from the command line's definition.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The man page (roff), generated from the command line's definition.
    Manpage,
    /// A local lab fleet and a rollout in which one host goes bad.
    Demo {
        /// Hosts in the lab fleet.
        #[arg(long, default_value_t = 8)]
        hosts: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or upgrade the shared store's schema (versioned migrations).
    Init,
    /// Copy the runs and audit log of a state directory (--state-dir, or the default)
    /// into the store named by --store; what is there already is not copied again.
    Import,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start N lab hosts, write an inventory, an ssh_config and an example rollout into
    /// DIR, and keep the hosts running until `wavectl lab down DIR` (or Ctrl-C).
    Up {
        /// How many hosts.
        #[arg(default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=500))]
        hosts: u16,
        /// Where the inventory, ssh_config and example go.
        #[arg(long, default_value = "wavectl-lab")]
        dir: PathBuf,
        /// Host kind: sshd (fast), cron (runs Debian's cron) or systemd (boots systemd).
        #[arg(long, default_value = "sshd")]
        kind: String,
        /// The only key exchange the fleet's ssh_config offers (e.g. curve25519-sha256,
        /// cheaper); without it, OpenSSH's defaults, as real fleets negotiate.
        #[arg(long, value_name = "ALG")]
        kex: Option<String>,
    },
    /// Stop the lab fleet `lab up` started in DIR.
    Down {
        #[arg(long, default_value = "wavectl-lab")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The rollout spec, e.g. rollouts/raid-health.toml (for `apply`, also a plan file).
    pub rollout: PathBuf,
    /// Use this inventory instead of the spec's.
    #[arg(long, value_name = "INV")]
    pub inventory: Option<PathBuf>,
    /// Allow an install_path over a file the host side needs or a package owns.
    #[arg(long)]
    pub force: bool,
    /// Narrow the targets (Ansible patterns: names, groups, globs, key=value; ',' or ':'
    /// between terms; !exclude, &intersect).
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// The rollout name to freeze.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Freeze every rollout.
    #[arg(long)]
    pub all: bool,
    /// Why (shown to whoever is refused).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Lift it by itself after this long ("2h") or at this time ("2026-12-08T06:00:00Z");
    /// without it, the freeze holds until `wavectl unfreeze`.
    #[arg(long, value_name = "DUR|TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["name", "path"])))]
pub struct PurgeArgs {
    /// The rollout name whose script to remove (as its hosts' manifests record it).
    pub name: Option<String>,
    /// Instead: a script wavectl never installed, by its absolute path on the hosts.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// The inventory of the hosts to purge [default: the inventory of rollouts/NAME.toml]
    #[arg(long, value_name = "INV")]
    pub inventory: Option<PathBuf>,
    /// Only hosts with this label (`key=value`); repeat to require several.
    #[arg(long, value_name = "KEY=VALUE")]
    pub select: Vec<String>,
    /// Leave out this host; repeatable.
    #[arg(long, value_name = "HOST")]
    pub exclude: Vec<String>,
    /// Narrow the hosts (Ansible patterns, as for plan and apply).
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Retry the hosts left pending, with backoff, until all are clean (or Ctrl-C).
    #[arg(long)]
    pub until_done: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub concurrency: u32,
    /// Deadline for each host's login (1s to 10m).
    #[arg(long, default_value = "10s", value_parser = parse_login_timeout)]
    pub login_timeout: std::time::Duration,
    /// Allow a PATH the host side needs or a package owns.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Write the purge's metrics to this file (node_exporter's textfile format), rewritten at every event.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

fn parse_login_timeout(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_flag(
        "--login-timeout",
        s,
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(600),
        "the deadline of each host's login",
    )
}

fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_flag(
        "--grace",
        s,
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(24 * 3600),
        "how long a run's controller must have held no lock before a standby takes it over",
    )
}

fn parse_valid_for(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration_flag(
        "--valid-for",
        s,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(30 * 24 * 3600),
        "how long the plan can be applied after it is written",
    )
}
