//! `zendesk-ivr demo`: the endpoint, the Zendesk simulator with its sample customers and
//! a built-in agent behind the queues, together on loopback. It places one call per
//! sample customer with the test caller and shows what each did; then (without `--once`)
//! it keeps running so that a softphone can call.

pub mod agent;
pub mod calls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tracing::info;

use crate::config::Config;
use crate::server::{self, ServerError};
use crate::tts::{Tts, TtsError};
use crate::zendesk::sim::{self, SimState};

use agent::DemoAgent;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the Zendesk simulator on {addr}: {source}")]
    Simulator { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot render the agent's greeting: {0}")]
    Tts(#[from] TtsError),
    #[error("cannot start the demo agent: {0}")]
    Agent(std::io::Error),
    #[error("cannot create the recordings folder {path}: {source}")]
    Recordings { path: PathBuf, source: std::io::Error },
}

/// Where the demo listens and keeps its outbox.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub sip: SocketAddr,
    pub simulator: SocketAddr,
    pub outbox: PathBuf,
    /// Place the demo calls, print what they did, and exit.
    pub once: bool,
    /// Where the demo calls' recordings go.
    pub recordings: PathBuf,
}

/// What the agent says when it answers.
const AGENT_GREETING: &str =
    "You are connected to an agent. Say something and you will hear it back.";

/// The demo's configuration: `base` with SIP, Zendesk and the outbox pointed at the demo.
pub fn demo_config(mut base: Config, options: &DemoOptions, simulator: SocketAddr) -> Config {
    base.sip.listen = options.sip;
    base.zendesk.enabled = true;
    base.zendesk.url = format!("http://{simulator}");
    // The unknown sample caller's comment opens a ticket, so the simulator holds it too.
    base.zendesk.create_ticket_for_unknown = true;
    base.outbox.path = options.outbox.clone();
    base
}

/// Points the queues at the built-in agent.
pub fn with_agent(mut config: Config, agent: &DemoAgent) -> Config {
    config.routing.default_queue = agent.uri("support");
    config.routing.priority_queue = agent.uri("priority");
    config.routing.queues.clear();
    config.routing.rules.clear();
    config
}

/// Runs the demo calls, then (without `once`) until SIGINT/SIGTERM. Returns whether
/// every demo call did what it should.
pub async fn run(base: Config, options: DemoOptions, grace: Duration) -> Result<bool, DemoError> {
    let state = SimState::sample();
    let (simulator, _task) = sim::spawn(options.simulator, state.clone())
        .await
        .map_err(|source| DemoError::Simulator { addr: options.simulator, source })?;
    info!(%simulator, "Zendesk simulator with sample customers is up");
    let greeting = Tts::from_config(&base.tts)?.render(AGENT_GREETING, "en").await?;
    let agent = DemoAgent::start(options.sip.ip(), greeting).await.map_err(DemoError::Agent)?;
    // The agent answers the targets' OPTIONS probes: probing stays as configured.
    let config = with_agent(demo_config(base, &options, simulator), &agent);
    let recordings = options.recordings.clone();
    std::fs::create_dir_all(&recordings)
        .map_err(|source| DemoError::Recordings { path: recordings.clone(), source })?;
    let server = server::start(config.clone()).await?;
    let sip = server.sip_addr();
    println!(
        "IVR at sip:ivr@{sip}, Zendesk simulator at http://{simulator}, agent at {}",
        agent.uri("agent")
    );
    println!("Calling each sample customer's line at once (about 20 s) ...\n");
    let results = calls::run_all(&config, sip, server.subscribe(), &state, &recordings).await;
    for result in &results {
        println!("{}", calls::describe(result));
    }
    let all_ok = results.iter().all(|r| r.problems.is_empty());
    println!("Recordings of what each caller heard: {}", recordings.display());
    println!("{}", if all_ok { "Every call did what it should." } else { "Some calls FAILED." });
    if !options.once {
        println!("\nThe IVR keeps running: call sip:ivr@{sip} from a softphone (Ctrl-C to stop).");
        server::shutdown_signal().await;
    }
    server.shutdown(grace).await;
    Ok(all_ok)
}
