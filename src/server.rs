//! Wires the endpoint together (runtime layer): transports, the SIP core task, the RTP
//! port pool and one task per call; graceful draining on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tracing::info;

use crate::admin;
use crate::call::{self, CallContext, CallSummary};
use crate::config::{Config, ConfigError};
use crate::ivr::flow::FlowSettings;
use crate::media::engine::MediaEngine;
use crate::media::rtp_ports::RtpPorts;
use crate::outbox::{self, Outbox, OutboxError};
use crate::sip::admission::{AdmissionSettings, PeerAddresses};
use crate::sip::dialog::{Ua, UaConfig};
use crate::sip::endpoint::{self, Command, EndpointHandle};
use crate::sip::gate::Gate;
use crate::sip::message::Limits;
use crate::sip::peer_resolver;
use crate::sip::tcp_guard::TcpLimits;
use crate::sip::transaction::{TimerConfig, TransactionLayer, TransactionLimits};
use crate::sip::transport::{self, SipTls, TlsError, Transports};
use crate::status::StatusSources;
use crate::transfer::CallRegistry;
use crate::transfer::probe::{self, TargetStates};
use crate::tts::{Tts, TtsError};
use crate::zendesk::client::{ClientError, ZendeskClient};

/// The longest a target's OPTIONS probe may take to be answered.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long un-REGISTERs at shutdown may wait for the registrars' answers.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);
/// How long calls hung up at the end of a drain get to finish (BYE, outbox).
const HANG_UP_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Registration(#[from] crate::sip::registrations::RegistrationSetupError),
    #[error("cannot listen for SIP on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the media engine: {0}")]
    Media(io::Error),
    #[error("cannot listen for admin (admin.listen) on {addr}: {source}")]
    Admin { addr: SocketAddr, source: io::Error },
    #[error("Zendesk client: {0}")]
    Zendesk(#[from] ClientError),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("text-to-speech: {0}")]
    Tts(#[from] TtsError),
    #[error("SIP over TLS: {0}")]
    Tls(#[from] TlsError),
}

/// A running endpoint.
pub struct RunningServer {
    sip_addr: SocketAddr,
    endpoint: EndpointHandle,
    /// Calls in progress.
    active: watch::Receiver<usize>,
    summaries: broadcast::Sender<CallSummary>,
    /// Stops the outbox sender.
    stop: watch::Sender<bool>,
    sender: Option<tokio::task::JoinHandle<()>>,
    outbox: Option<Outbox>,
    draining: Arc<AtomicBool>,
    admin_addr: Option<SocketAddr>,
    calls: CallRegistry,
    targets: TargetStates,
    status: Arc<StatusSources>,
    registrations: crate::sip::registrations::RegistrationsView,
}

impl RunningServer {
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Where SIP (UDP and TCP) listens; with port 0 in the config, the port chosen.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// Each `[[sip.register]]` registration's state.
    pub fn registrations(&self) -> &crate::sip::registrations::RegistrationsView {
        &self.registrations
    }

    /// The SIP endpoint's command channel (outgoing calls, commands to calls).
    pub fn endpoint(&self) -> &EndpointHandle {
        &self.endpoint
    }

    /// Waits until a call with this Call-ID is in progress (bound it with a timeout).
    pub async fn wait_for_call(&self, call_id: &str) {
        self.calls.wait_for(call_id).await
    }

    /// The transfer targets' probed states.
    pub fn target_states(&self) -> &TargetStates {
        &self.targets
    }

    /// What the status page shows; trunk registration sets its provider here.
    pub fn status(&self) -> &Arc<StatusSources> {
        &self.status
    }

    /// Call-IDs of the calls in progress (from the INVITE on).
    pub fn call_ids(&self) -> Vec<String> {
        self.calls.call_ids()
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        *self.active.borrow()
    }

    /// A summary of every call as it ends (for the post-call comment, and for tests).
    pub fn subscribe(&self) -> broadcast::Receiver<CallSummary> {
        self.summaries.subscribe()
    }

    /// Stops taking calls (INVITE and OPTIONS get 503) and waits up to `grace` for the
    /// calls in progress to end. Returns the number still up when the wait ended.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.drain_until(tokio::time::sleep(grace)).await
    }

    /// [`RunningServer::drain`] until `stop` (a timer, or a second signal) resolves.
    pub async fn drain_until(&self, stop: impl std::future::Future<Output = ()>) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        self.endpoint.send(Command::Drain(true));
        let mut active = self.active.clone();
        tokio::select! {
            _ = active.wait_for(|n| *n == 0) => {}
            () = stop => {}
        }
        self.active_calls()
    }

    /// The outbox of post-call comments, when Zendesk is enabled.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Drains (see [`RunningServer::drain`]); calls still up then are hung up (BYE) and
    /// their comments written to the outbox. Then stops the outbox sender. Comments not
    /// yet posted stay in the outbox for the next start. Returns the calls that were
    /// still up when the drain ended.
    pub async fn shutdown(self, grace: Duration) -> usize {
        self.shutdown_until(tokio::time::sleep(grace)).await
    }

    /// [`RunningServer::shutdown`] with the drain ended by `stop` (the grace time, or a
    /// second SIGTERM/SIGINT): the hang-up step always runs.
    pub async fn shutdown_until(mut self, stop: impl std::future::Future<Output = ()>) -> usize {
        let left = self.drain_until(stop).await;
        if left > 0 {
            let asked = self.calls.hang_up_all();
            info!(left, asked, "drain over: hanging up the calls still up");
            let mut active = self.active.clone();
            let _ = tokio::time::timeout(HANG_UP_WAIT, active.wait_for(|n| *n == 0)).await;
        }
        crate::sip::registrations::unregister_all(&self.endpoint, UNREGISTER_WAIT).await;
        let _ = self.stop.send(true);
        if let Some(sender) = self.sender.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), sender).await;
        }
        left
    }
}

/// Binds the sockets and starts the endpoint.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let config = Arc::new(config);
    let draining = Arc::new(AtomicBool::new(false));
    let status = Arc::new(StatusSources::default());
    let admin_addr = match config.admin.listen {
        Some(addr) => Some(
            admin::spawn(addr, draining.clone(), status.clone())
                .await
                .map_err(|source| ServerError::Admin { addr, source })?,
        ),
        None => None,
    };
    let sip = &config.sip;
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let limits = Limits { max_message_bytes: sip.max_message_bytes, ..Limits::default() };
    let tls = SipTls::from_config(sip).await?;
    let tcp_limits = TcpLimits::from(sip);
    let transports = Transports::bind_with(sip.listen, tls, limits, tcp_limits, inbound_tx)
        .await
        .map_err(|source| ServerError::Bind { addr: sip.listen, source })?;
    transport::reload_on_sighup(&transports);
    if let Some(addr) = transports.tls_local_addr() {
        info!(%addr, "SIP endpoint listening on TLS");
    }
    let sip_addr = transports.local_addr();
    let timers = TimerConfig { t1: sip.t1(), t2: sip.t2(), t4: sip.t4() };
    let transaction_limits = TransactionLimits {
        max_stored_bytes: sip.max_transaction_bytes,
        ..TransactionLimits::default()
    };
    let mut ua = Ua::new(UaConfig {
        contact_user: "ivr".into(),
        local_host: sip.advertised_ip().to_string(),
        local_port: sip_addr.port(),
        tls_port: transports.tls_local_addr().map(|addr| addr.port()),
        user_agent: sip.user_agent().to_string(),
        server: sip.server().to_string(),
        codecs: config.media.codecs.clone(),
        offer_telephone_event: true,
        srtp: config.media.srtp,
        session_expires: sip.session_expires_s,
        min_se: sip.min_se_s,
        send_ringing: sip.rings_before_answer(),
        max_calls: sip.max_calls,
        timers,
    });
    // Reads the users' passwords (files, environment): off the async workers.
    let auth_config = sip.auth.clone();
    let invite_auth =
        tokio::task::spawn_blocking(move || auth_config.invite_auth(std::time::Instant::now()))
            .await
            .map_err(|e| ConfigError::Invalid(format!("sip.auth: {e}")))??;
    if let Some(auth) = invite_auth {
        ua.set_invite_auth(auth);
    }
    let mut gate = Gate::new(AdmissionSettings::from_config(&config), sip.server().to_string());
    // Peers named by host name: looked up before the endpoint serves, then kept current.
    let named_peers = peer_resolver::named_peers(&config);
    let mut peer_addresses = PeerAddresses::default();
    peer_resolver::resolve_all(&named_peers, &mut peer_addresses).await;
    gate.set_resolved_peers(peer_addresses.addresses());
    let transactions = TransactionLayer::with_limits(timers, transaction_limits);
    let (endpoint, mut calls) =
        endpoint::spawn_with_gate(transports, inbound_rx, transactions, ua, gate);
    if !named_peers.is_empty() {
        let interval = match config.routing.probe_interval_s {
            0 => peer_resolver::DEFAULT_INTERVAL,
            s => Duration::from_secs(s),
        };
        let resolver = peer_resolver::run(endpoint.clone(), named_peers, peer_addresses, interval);
        tokio::spawn(resolver);
    }
    let registrations = crate::sip::registrations::start(&endpoint, sip, sip_addr).await?;
    status.set_registrations(Arc::new(registrations.clone()));
    let (low, high) = config.media.rtp_port_range()?;
    let rtp_ports = RtpPorts::new(sip.listen.ip(), sip.advertised_ip(), low, high);
    let (active_tx, active) = watch::channel(0usize);
    let active_tx = Arc::new(active_tx);
    let (stop, stop_rx) = watch::channel(false);
    let (zendesk, outbox, sender) = if config.zendesk.enabled {
        let client = ZendeskClient::from_config(&config.zendesk)?;
        let outbox_config = config.outbox.clone();
        let outbox = tokio::task::spawn_blocking(move || Outbox::open_config(&outbox_config))
            .await
            .map_err(|e| OutboxError::Worker(e.to_string()))??;
        let mut stop_rx = stop_rx.clone();
        let shutdown = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        let (sending, sink) = (outbox.clone(), client.clone());
        let sender = tokio::spawn(async move {
            if let Err(err) = outbox::run_sender(sending, sink, shutdown).await {
                tracing::error!(%err, "the outbox sender stopped");
            }
        });
        (Some(client), Some(outbox), Some(sender))
    } else {
        info!("Zendesk is disabled (zendesk.enabled = false): no data dip, no comments");
        (None, None, None)
    };
    let media = MediaEngine::start(&config.media).await.map_err(ServerError::Media)?;
    let tts = Tts::from_config(&config.tts)?;
    let flow = FlowSettings::from_config(&config, tts.timeout())?;
    prerender(&tts, &flow).await;
    let registry = CallRegistry::default();
    let targets = status.targets.clone();
    if let Some(outbox) = &outbox {
        status.set_outbox(outbox.clone());
    }
    if config.routing.probe_interval_s > 0 {
        let interval = Duration::from_secs(config.routing.probe_interval_s);
        let all: Vec<String> = flow.router.targets().cloned().collect();
        // An answer later than the interval, or than 5 s, counts as none.
        let timeout = interval.min(PROBE_TIMEOUT);
        tokio::spawn(probe::run_prober(endpoint.clone(), all, targets.clone(), interval, timeout));
    }
    let ctx = CallContext {
        calls: registry.clone(),
        config: config.clone(),
        endpoint: endpoint.clone(),
        rtp_ports,
        zendesk,
        outbox: outbox.clone(),
        media,
        flow: Arc::new(flow),
        tts,
        targets: targets.clone(),
        board: status.calls.clone(),
    };
    let (summaries, _) = broadcast::channel(1024);
    let summaries_tx = summaries.clone();
    tokio::spawn(async move {
        while let Some(incoming) = calls.recv().await {
            active_tx.send_modify(|n| *n += 1);
            metrics::gauge!("calls_active").increment(1.0);
            let (ctx, active_tx, summaries) =
                (ctx.clone(), active_tx.clone(), summaries_tx.clone());
            tokio::spawn(async move {
                let summary = call::run(ctx, incoming).await;
                let _ = summaries.send(summary);
                active_tx.send_modify(|n| *n -= 1);
                metrics::gauge!("calls_active").decrement(1.0);
            });
        }
    });
    info!(%sip_addr, "SIP endpoint listening on UDP and TCP");
    Ok(RunningServer {
        sip_addr,
        endpoint,
        active,
        summaries,
        stop,
        sender,
        outbox,
        draining,
        admin_addr,
        calls: registry,
        targets,
        status,
        registrations,
    })
}

/// Renders every sentence without placeholders in every language, so no caller waits for
/// one; a failure is logged (calls then render on demand, within the TTS deadline).
async fn prerender(tts: &Tts, flow: &FlowSettings) {
    let sentences: Vec<(String, String)> = flow
        .prompts
        .static_sentences()
        .into_iter()
        .map(|(lang, text)| (text, lang.as_str().to_string()))
        .collect();
    let count = sentences.len();
    let started = std::time::Instant::now();
    let report = tts.prerender(sentences).await;
    match &report.first_error {
        None => info!(count, ms = started.elapsed().as_millis() as u64, "prompts rendered"),
        Some(err) => tracing::warn!(
            ok = report.ok,
            failed = report.failed,
            %err,
            "some prompts could not be rendered at startup"
        ),
    }
}

/// Runs until SIGINT or SIGTERM, then drains for up to `grace`.
pub async fn run(config: Config, grace: Duration) -> Result<(), ServerError> {
    let server = start(config).await?;
    let admin = server.admin_addr().map_or("off".to_string(), |a| a.to_string());
    crate::systemd_notify::ready(&format!("taking calls: SIP {} admin {admin}", server.sip_addr()));
    shutdown_signal().await;
    crate::systemd_notify::stopping("draining calls");
    info!(
        calls = server.active_calls(),
        "shutting down: draining calls (a second signal ends them now)"
    );
    let stop = async {
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            () = shutdown_signal() => info!("second signal: ending the calls now"),
        }
    };
    let left = server.shutdown_until(stop).await;
    info!(left, "stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
