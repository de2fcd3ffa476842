//! The `zendesk-ivr` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zendesk_ivr::config::Config;
use zendesk_ivr::outbox::cli::OutboxCommand;

#[derive(Parser)]
#[command(name = "zendesk-ivr", version, about = "A caller-aware SIP/RTP IVR backed by Zendesk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the endpoint.
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How long to let calls finish on SIGTERM/SIGINT before exiting.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        drain: std::time::Duration,
    },
    /// Validate the configuration file (and the environment overrides).
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Inspect the outbox of post-call comments and replay its dead letters.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
        /// Configuration file (TOML); `outbox.path` names the database.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZENDESK_IVR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, drain } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            runtime()?.block_on(zendesk_ivr::server::run(config, drain))?;
            Ok(())
        }
        Command::Check { config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            println!(
                "configuration OK: SIP on {}, Zendesk at {}",
                config.sip.listen, config.zendesk.url
            );
            Ok(())
        }
        Command::Outbox { command, config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            zendesk_ivr::outbox::cli::run(&config.outbox, command, &mut std::io::stdout().lock())?;
            Ok(())
        }
    }
}
