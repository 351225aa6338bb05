//! The `wavectl` binary: parse the command line, run, map the result to an exit code.

use clap::Parser;

fn main() {
    let cli = wavectl::cli::Cli::parse();
    std::process::exit(wavectl::cmd::run(cli));
}
