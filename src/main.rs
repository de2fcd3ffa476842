//! The `zendesk-ivr` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zendesk_ivr::config::Config;
use zendesk_ivr::log_format::{self, LogFormat};
use zendesk_ivr::outbox::cli::OutboxCommand;
use zendesk_ivr::zendesk::{lookup, phone, sim};

#[derive(Parser)]
#[command(name = "zendesk-ivr", version, about = "A caller-aware SIP/RTP IVR backed by Zendesk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (for people) or JSON objects, one a line (for collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    /// Run the endpoint with the embedded Zendesk simulator and its sample customers.
    Demo {
        /// Base configuration (optional); SIP, Zendesk and the outbox are set by the demo.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// SIP address (UDP and TCP).
        #[arg(long, default_value = "127.0.0.1:5080")]
        sip: SocketAddr,
        /// Address of the embedded Zendesk simulator.
        #[arg(long, default_value = "127.0.0.1:8089")]
        simulator: SocketAddr,
        /// Outbox database of the demo.
        #[arg(long, default_value = "demo-outbox.sqlite")]
        outbox: PathBuf,
    },
    /// Check the configuration (file and environment overrides), the audio files, the
    /// outbox database and the Zendesk credentials; exits non-zero if anything fails.
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
    /// Run the Zendesk simulator alone.
    ZendeskSim {
        /// Address to listen on, e.g. 127.0.0.1:8089.
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: SocketAddr,
        /// Seed data (JSON with "users", "tickets", "comments"); built-in sample data without.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Latency added to every API request, in milliseconds.
        #[arg(long)]
        latency_ms: Option<u64>,
        /// A fault, ENDPOINT:KIND[:ARG][@COUNT] (e.g. search:429:5@1, tickets:500, any:drop@2).
        /// Repeatable. Faults can also be set at run time: POST /__sim/faults.
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Email to demand in Basic auth (with --token).
        #[arg(long)]
        email: Option<String>,
        /// API token to demand; without it any request is accepted.
        #[arg(long, env = "ZENDESK_SIM_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Render a sentence with the configured TTS engine (through its caches) to a WAV file.
    Say {
        /// The sentence.
        text: String,
        /// Its language; `tts.voices` picks the voice.
        #[arg(long, default_value = "en")]
        lang: String,
        #[arg(long, default_value = "say.wav")]
        out: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Dry run of the data dip for a number: the user and the ticket a call would find.
    Lookup {
        /// The caller's number, in any usual form (+47 987 65 432, 98765432, tel:...).
        number: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn init_tracing(format: LogFormat) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = log_format::subscriber(format, log_format::filter_from_env(), std::io::stderr, ansi);
    // Also routes `log` records from dependencies; fails only if a subscriber is set already.
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(logs);
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Run { config, drain } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            runtime()?.block_on(zendesk_ivr::server::run(config, drain))?;
            Ok(())
        }
        Command::Demo { config, sip, simulator, outbox } => {
            let base = Config::load(config.as_deref()).context("loading the configuration")?;
            let options = zendesk_ivr::demo::DemoOptions { sip, simulator, outbox };
            runtime()?.block_on(zendesk_ivr::demo::run(base, options, Duration::from_secs(5)))?;
            Ok(())
        }
        Command::Check { config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            let report = runtime()?.block_on(zendesk_ivr::check::check(&config));
            print!("{}", report.to_text());
            if !report.ok() {
                anyhow::bail!("the check failed");
            }
            Ok(())
        }
        Command::Outbox { command, config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            zendesk_ivr::outbox::cli::run(&config.outbox, command, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::ZendeskSim { listen, data, latency_ms, faults, email, token } => {
            let options = sim::SimOptions { data, latency_ms, faults, email, token };
            let state = options.build().context("setting up the simulator")?;
            let summary = state.data().summary();
            runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                let addr = listener.local_addr()?;
                tracing::info!(%addr, ?summary, auth = options.token.is_some(), "Zendesk simulator listening");
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                sim::serve_until(listener, state, shutdown).await.context("serving")
            })
        }
        Command::Say { text, lang, out, config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            let said =
                runtime()?.block_on(zendesk_ivr::tts::say(&config.tts, &text, &lang, &out))?;
            print!("{}", said.to_text());
            Ok(())
        }
        Command::Lookup { number, json, config } => {
            let config = Config::load(config.as_deref()).context("loading the configuration")?;
            phone::warm_up();
            let report = runtime()?.block_on(lookup::lookup(&config, &number))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}
