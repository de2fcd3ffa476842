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
        /// Place the demo calls, print what they did, and exit (0 when all did).
        #[arg(long)]
        once: bool,
        /// Folder for the recordings of the demo calls.
        #[arg(long, default_value = "demo-recordings")]
        recordings: PathBuf,
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
    /// Place one test call: press keys, record what is heard, follow a REFER; prints a
    /// summary and exits non-zero when the call failed.
    Call {
        /// The SIP URI to call, e.g. sip:ivr@127.0.0.1:5080.
        target: String,
        /// The caller's number (the From user).
        #[arg(long)]
        from: String,
        /// Keys to press, in order (repeatable: --dtmf 1 --dtmf 2, or --dtmf 12).
        #[arg(long)]
        dtmf: Vec<String>,
        /// Seconds after the answer to press the first key.
        #[arg(long, default_value_t = 1.0)]
        dtmf_at: f64,
        #[arg(long, value_enum, default_value = "rfc4733")]
        dtmf_mode: zendesk_ivr::caller::DtmfMode,
        /// Write what was heard to this WAV file (8 kHz mono).
        #[arg(long)]
        record: Option<PathBuf>,
        /// Hang up after this many seconds (from the INVITE).
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Call the target of a REFER from the far end.
        #[arg(long)]
        follow_refer: bool,
        #[arg(long, value_enum, default_value = "udp")]
        transport: zendesk_ivr::caller::CallTransport,
        /// Machine-readable summary.
        #[arg(long)]
        json: bool,
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
        Command::Run { config: file, drain } => {
            let config = Config::load(file.as_deref()).context("loading the configuration")?;
            for warning in zendesk_ivr::secret_files::warnings(file.as_deref(), &config) {
                tracing::warn!("{warning}");
            }
            runtime()?.block_on(zendesk_ivr::server::run(config, drain))?;
            Ok(())
        }
        Command::Demo { config, sip, simulator, outbox, once, recordings } => {
            let base = Config::load(config.as_deref()).context("loading the configuration")?;
            let options =
                zendesk_ivr::demo::DemoOptions { sip, simulator, outbox, once, recordings };
            let grace = Duration::from_secs(5);
            let all_ok = runtime()?.block_on(zendesk_ivr::demo::run(base, options, grace))?;
            if !all_ok {
                anyhow::bail!("a demo call did not do what it should");
            }
            Ok(())
        }
        Command::Check { config: file } => {
            let config = Config::load(file.as_deref()).context("loading the configuration")?;
            let mut report = runtime()?.block_on(zendesk_ivr::check::check(&config));
            let warnings = zendesk_ivr::secret_files::warnings(file.as_deref(), &config);
            report.warn_each("secrets", warnings);
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
        Command::Call {
            target,
            from,
            dtmf,
            dtmf_at,
            dtmf_mode,
            record,
            duration,
            follow_refer,
            transport,
            json,
        } => {
            let seconds = |s: f64, what: &str| {
                Duration::try_from_secs_f64(s).with_context(|| format!("{what}: {s} seconds"))
            };
            let options = zendesk_ivr::caller::CallOptions {
                target,
                from,
                digits: dtmf.concat(),
                dtmf_at: seconds(dtmf_at, "--dtmf-at")?,
                dtmf_mode,
                record,
                duration: seconds(duration, "--duration")?,
                follow_refer,
                transport,
            };
            let report = runtime()?.block_on(zendesk_ivr::caller::place_call(options))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            if !report.ok {
                std::process::exit(1);
            }
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
