//! `zendesk-ivr demo`: the endpoint and the Zendesk simulator with its sample customers,
//! together on loopback, so that a softphone or SIPp can call straight away.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tracing::info;

use crate::config::Config;
use crate::server::{self, ServerError};
use crate::zendesk::sim::{self, SimState};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the Zendesk simulator on {addr}: {source}")]
    Simulator { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Where the demo listens and keeps its outbox.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub sip: SocketAddr,
    pub simulator: SocketAddr,
    pub outbox: PathBuf,
}

/// The demo's configuration: `base` with SIP, Zendesk and the outbox pointed at the demo.
pub fn demo_config(mut base: Config, options: &DemoOptions, simulator: SocketAddr) -> Config {
    base.sip.listen = options.sip;
    base.zendesk.enabled = true;
    base.zendesk.url = format!("http://{simulator}");
    base.outbox.path = options.outbox.clone();
    // The demo's queues are placeholders that nothing answers: probing them would mark
    // them down and send every caller to the busy menu.
    base.routing.probe_interval_s = 0;
    base
}

/// Runs until SIGINT/SIGTERM.
pub async fn run(base: Config, options: DemoOptions, grace: Duration) -> Result<(), DemoError> {
    let state = SimState::sample();
    let (simulator, _task) = sim::spawn(options.simulator, state)
        .await
        .map_err(|source| DemoError::Simulator { addr: options.simulator, source })?;
    info!(%simulator, "Zendesk simulator with sample customers is up");
    let config = demo_config(base, &options, simulator);
    info!(
        sip = %options.sip,
        "call sip:ivr@{} from +4798765432 (a customer with an urgent ticket) or any number",
        options.sip
    );
    server::run(config, grace).await?;
    Ok(())
}
