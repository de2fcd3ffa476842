//! The `zendesk-ivr` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zendesk_ivr::config::Config;

#[derive(Parser)]
#[command(name = "zendesk-ivr", version, about = "A caller-aware SIP/RTP IVR backed by Zendesk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file (and the environment overrides).
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZENDESK_IVR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            println!("configuration OK: SIP on {}, Zendesk at {}", config.sip.listen, config.zendesk.url);
            Ok(())
        }
    }
}
