//! Registrations to trunks at run time: the [`Registration`] machines of every
//! `[[sip.register]]` entry, driven by the endpoint task through its client transactions.
//!
//! [`start`] resolves each registrar, reads its password and hands the machines to the
//! endpoint; the endpoint routes the responses and timeouts of their transactions here.
//! State goes to the `sip_registration_up{registration}` gauge and to a
//! [`RegistrationsView`] that the status page reads. [`unregister_all`] sends every
//! un-REGISTER and waits (bounded) for them to end, at shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::config::{ConfigError, SipConfig};
use crate::sip::endpoint::{Command, EndpointHandle};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::registration::{Registration, RegistrationSettings, RegistrationSnapshot};
use crate::sip::transaction::{Peer, TransactionEvent, TransactionId, TransactionLayer};

/// First retry delay after a failed registration, and the cap it doubles up to.
const BACKOFF_MIN: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Every registration's latest state; cheap to clone and read.
#[derive(Debug, Clone)]
pub struct RegistrationsView(watch::Receiver<Vec<RegistrationSnapshot>>);

impl RegistrationsView {
    /// Each registration's name, registrar and state.
    pub fn snapshot(&self) -> Vec<RegistrationSnapshot> {
        self.0.borrow().clone()
    }

    /// Waits until `ready` holds for the snapshot (for tests and readiness).
    pub async fn wait_for(&mut self, ready: impl FnMut(&Vec<RegistrationSnapshot>) -> bool) {
        let _ = self.0.wait_for(ready).await;
    }
}

/// Why registrations could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationSetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sip.register {name}: {reason}")]
    Registrar { name: String, reason: String },
}

/// A registration and where its requests go.
struct Entry {
    machine: Registration,
    dest: Peer,
}

/// The registrations the endpoint drives.
#[derive(Default)]
pub struct Registrations {
    entries: Vec<Entry>,
    /// Client transactions in flight → entry.
    by_transaction: HashMap<TransactionId, usize>,
    view: Option<watch::Sender<Vec<RegistrationSnapshot>>>,
    /// Told once every registration has un-registered.
    unregistered: Option<oneshot::Sender<()>>,
}

/// What the endpoint hands over to start the registrations.
pub struct RegistrationStart {
    machines: Vec<(Registration, Peer)>,
    view: watch::Sender<Vec<RegistrationSnapshot>>,
}

impl std::fmt::Debug for RegistrationStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationStart").field("count", &self.machines.len()).finish()
    }
}

impl Registrations {
    /// Takes over new registrations (their first REGISTERs go out on the next drive).
    pub fn add(&mut self, start: RegistrationStart) {
        for (machine, dest) in start.machines {
            self.entries.push(Entry { machine, dest });
        }
        self.view = Some(start.view);
        self.publish();
    }

    /// Sends every un-REGISTER; `done` is told when they have all ended.
    pub fn unregister_all(&mut self, now: Instant, done: oneshot::Sender<()>) {
        for entry in &mut self.entries {
            entry.machine.unregister(now);
        }
        self.unregistered = Some(done);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.machine.poll_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for entry in &mut self.entries {
            entry.machine.handle_timeout(now);
        }
    }

    /// Takes the transaction events that belong to a registration; others come back.
    pub fn take_event(
        &mut self,
        now: Instant,
        event: TransactionEvent,
    ) -> Option<TransactionEvent> {
        match &event {
            TransactionEvent::Response { id, response } => {
                let Some(&index) = self.by_transaction.get(id) else { return Some(event) };
                if response.status_code.code() >= 200 {
                    self.by_transaction.remove(id);
                }
                if let Some(entry) = self.entries.get_mut(index) {
                    entry.machine.handle_response(now, response);
                }
                None
            }
            TransactionEvent::Timeout { id } => {
                let index = self.by_transaction.remove(id)?;
                if let Some(entry) = self.entries.get_mut(index) {
                    entry.machine.handle_failure(now, "no answer from the registrar");
                }
                None
            }
            _ => Some(event),
        }
    }

    /// Opens a client transaction for every REGISTER due, publishes state changes, and
    /// says whether anything was sent.
    pub fn drive(&mut self, now: Instant, transactions: &mut TransactionLayer) -> bool {
        let mut sent = false;
        for index in 0..self.entries.len() {
            let Some(entry) = self.entries.get_mut(index) else { continue };
            while let Some(request) = entry.machine.poll_request() {
                sent = true;
                match transactions.send_request(now, request, entry.dest) {
                    Ok(id) => {
                        self.by_transaction.insert(id, index);
                    }
                    Err(err) => entry.machine.handle_failure(now, &err.to_string()),
                }
            }
        }
        self.publish();
        if self.entries.iter().all(|e| e.machine.is_finished())
            && let Some(done) = self.unregistered.take()
        {
            let _ = done.send(());
        }
        sent
    }

    /// Updates the view and the gauge when a state changed.
    fn publish(&mut self) {
        let Some(view) = &self.view else { return };
        let now: Vec<RegistrationSnapshot> =
            self.entries.iter().map(|e| e.machine.snapshot()).collect();
        if *view.borrow() == now {
            return;
        }
        for (snapshot, entry) in now.iter().zip(&self.entries) {
            let up = if snapshot.state.is_up() { 1.0 } else { 0.0 };
            metrics::gauge!("sip_registration_up", "registration" => snapshot.name.clone()).set(up);
            match entry.machine.last_error() {
                Some(err) => {
                    warn!(registration = %snapshot.name, state = ?snapshot.state, %err, "registration")
                }
                None => {
                    info!(registration = %snapshot.name, state = ?snapshot.state, "registration")
                }
            }
        }
        view.send_replace(now);
    }
}

/// Starts every `[[sip.register]]` entry on the endpoint. `local` is the endpoint's SIP
/// address (Via and Contact carry `advertised_ip` and its port).
pub async fn start(
    endpoint: &EndpointHandle,
    sip: &SipConfig,
    local: SocketAddr,
) -> Result<RegistrationsView, RegistrationSetupError> {
    let now = Instant::now();
    let mut machines = Vec::new();
    for entry in &sip.register {
        let failed =
            |reason: String| RegistrationSetupError::Registrar { name: entry.name.clone(), reason };
        let transport = match entry.transport.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => return Err(failed(format!("transport {other:?} is not udp or tcp"))),
        };
        let resolved = crate::sip::endpoint::resolve_target(&entry.registrar)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let addr = resolved
            .or_else(|| ht::ip_host(&entry.registrar))
            .ok_or_else(|| failed(format!("registrar {:?} is not a SIP URI", entry.registrar)))?;
        let settings = RegistrationSettings {
            name: entry.name.clone(),
            registrar: entry.registrar.clone(),
            user: entry.user.clone(),
            auth_user: entry.auth_user.clone().unwrap_or_else(|| entry.user.clone()),
            password: {
                let entry = entry.clone();
                tokio::task::spawn_blocking(move || entry.password())
                    .await
                    .map_err(|e| failed(e.to_string()))??
            },
            expires: entry.expires_s,
            transport,
            local_host: sip.advertised_ip().to_string(),
            local_port: local.port(),
            user_agent: sip.user_agent.clone(),
            backoff_min: BACKOFF_MIN,
            backoff_max: BACKOFF_MAX,
        };
        let seed = rand::rng().random();
        machines.push((Registration::new(now, settings, seed), Peer { addr, transport }));
    }
    let (view_tx, view_rx) = watch::channel(Vec::new());
    if !machines.is_empty() {
        endpoint.send(Command::Register(RegistrationStart { machines, view: view_tx }));
    }
    Ok(RegistrationsView(view_rx))
}

/// Un-registers everything and waits for the registrars' answers, for at most `within`.
pub async fn unregister_all(endpoint: &EndpointHandle, within: Duration) {
    let (done, finished) = oneshot::channel();
    if endpoint.send(Command::Unregister(done)) {
        let _ = tokio::time::timeout(within, finished).await;
    }
}
