//! The SIP endpoint task (runtime layer): one task owns the sans-IO transaction layer and
//! UA core, feeds them parsed messages, commands from calls and timer expiries, and carries
//! out what they ask for (transmit, deliver call events).
//!
//! SIP signalling is light next to media, so one task serves every call; parsing happens
//! on the transport tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use tokio::sync::oneshot;

use crate::sip::call_events::{CallEventSender, CallEvents, Delivery};
use crate::sip::dialog::{CallEvent, CallHandle, DialRoute, ProbeId, Ua, UaAction, UaError};
use crate::sip::gate::Gate;
use crate::sip::header_text;
use crate::sip::message::Transport;
use crate::sip::registrations::{RegistrationStart, Registrations};
use crate::sip::transaction::{Peer, TransactionLayer};
use crate::sip::transport::{Inbound, SendFailure, SendReport, Transports};

/// An outgoing call placed through the endpoint: its handle and its events (`Progress`,
/// then `Established` or `Terminated`, and every later event of the call).
pub type DialedCall = (CallHandle, CallEvents);

/// What a call (or the server) asks the endpoint to do.
#[derive(Debug)]
pub enum Command {
    Accept {
        call: CallHandle,
        local_rtp: SocketAddr,
    },
    /// Places an outgoing call (see [`Ua::dial`]); the reply carries its handle and event
    /// stream, or why it could not be placed. If the reply cannot be delivered (the asker
    /// is gone), the call is hung up at once.
    Dial {
        target: String,
        /// Where a target with a host name resolved to.
        resolved: Option<SocketAddr>,
        from_user: String,
        transport: Transport,
        local_rtp: SocketAddr,
        /// Extra headers for the INVITE (checked: token names, no control characters).
        headers: Vec<(String, String)>,
        /// The far end may transfer the call with REFER (see [`Ua::allow_refer`]).
        accept_refer: bool,
        reply: oneshot::Sender<Result<DialedCall, UaError>>,
    },
    Reject {
        call: CallHandle,
        status: u16,
    },
    Hangup {
        call: CallHandle,
    },
    Refer {
        call: CallHandle,
        target: String,
    },
    /// Reports how the call a REFER asked for goes (see [`Ua::notify_refer`]).
    NotifyRefer {
        call: CallHandle,
        status: u16,
    },
    /// Sends an INFO in the call (see [`Ua::send_info`]).
    Info {
        call: CallHandle,
        content_type: String,
        body: Vec<u8>,
    },
    Drain(bool),
    /// Sends OPTIONS to `target` (see [`Ua::probe`]); the reply carries the final status
    /// (408 on timeout).
    Probe {
        target: String,
        resolved: Option<SocketAddr>,
        reply: oneshot::Sender<Result<u16, UaError>>,
    },
    /// Starts registrations to trunks (see [`crate::sip::registrations::start`]).
    Register(RegistrationStart),
    /// Un-registers every registration; the sender is told when all have ended.
    Unregister(oneshot::Sender<()>),
    /// The addresses the peers named by host name resolve to now (see
    /// [`crate::sip::admission::Admission::set_resolved_peers`]).
    SetResolvedPeers(Vec<std::net::IpAddr>),
}

/// A new call for the server to take on: its first event and the stream of later ones.
pub struct IncomingCall {
    pub call: CallHandle,
    pub call_id: String,
    pub invite: rsip::Request,
    pub source: Peer,
    pub events: CallEvents,
}

/// Why [`EndpointHandle::dial`] placed no call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Ua(#[from] UaError),
    #[error("the SIP endpoint has stopped")]
    EndpointStopped,
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
}

/// How long looking up an agent's or queue's host name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The address a target's host name resolves to (an IPv4 one first, as the endpoint's
/// sockets are), or `None` when the host is an IP literal (the UA reads it itself).
/// Plain A/AAAA lookup through the system resolver; no SRV or NAPTR (RFC 3263).
pub(crate) async fn resolve_target(target: &str) -> Result<Option<SocketAddr>, DialError> {
    let Some(all) = lookup_target(target).await? else { return Ok(None) };
    Ok(all.iter().find(|a| a.is_ipv4()).or(all.first()).copied())
}

/// Every address a target's host name resolves to (at least one), or `None` when the
/// host is an IP literal or the target is no URI.
pub(crate) async fn lookup_target(target: &str) -> Result<Option<Vec<SocketAddr>>, DialError> {
    let Some((host, port)) = header_text::host_port(target) else { return Ok(None) };
    if header_text::ip_host(target).is_some() {
        return Ok(None);
    }
    let port = port.unwrap_or(header_text::default_port(target));
    let failed = |reason: String| DialError::Resolve { host: host.clone(), reason };
    let found =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| failed(format!("no answer within {RESOLVE_TIMEOUT:?}")))?
            .map_err(|err| failed(err.to_string()))?;
    let all: Vec<SocketAddr> = found.collect();
    if all.is_empty() {
        return Err(failed("no address".into()));
    }
    Ok(Some(all))
}

/// The endpoint's command channel, cloned into every call.
#[derive(Clone)]
pub struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl EndpointHandle {
    /// The endpoint has stopped.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    /// Sends a command; false if the endpoint has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Sends OPTIONS to `target` and waits for the final status (408 when the request
    /// timed out).
    pub async fn probe(&self, target: &str) -> Result<u16, DialError> {
        let resolved = resolve_target(target).await?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Probe { target: target.to_string(), resolved, reply };
        if !self.send(command) {
            return Err(DialError::EndpointStopped);
        }
        Ok(answer.await.map_err(|_| DialError::EndpointStopped)??)
    }

    /// Places an outgoing call to `target` (a `sip:` URI with an IP host) from
    /// `from_user`, offering RTP at `local_rtp`. Returns once the INVITE is on its way;
    /// the call's progress arrives on the returned receiver.
    pub async fn dial(
        &self,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
    ) -> Result<DialedCall, DialError> {
        self.dial_with_headers(target, from_user, transport, local_rtp, Vec::new()).await
    }

    /// [`EndpointHandle::dial`] with extra headers on the INVITE.
    pub async fn dial_with_headers(
        &self,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
        headers: Vec<(String, String)>,
    ) -> Result<DialedCall, DialError> {
        self.place(target, from_user, transport, local_rtp, headers, false).await
    }

    /// [`EndpointHandle::dial`] for a call whose far end may transfer it with REFER
    /// (a test caller's call; calls the endpoint answers never accept REFER).
    pub async fn dial_accepting_refer(
        &self,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
    ) -> Result<DialedCall, DialError> {
        self.place(target, from_user, transport, local_rtp, Vec::new(), true).await
    }

    async fn place(
        &self,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
        headers: Vec<(String, String)>,
        accept_refer: bool,
    ) -> Result<DialedCall, DialError> {
        let resolved = resolve_target(target).await?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Dial {
            target: target.to_string(),
            resolved,
            from_user: from_user.to_string(),
            transport,
            local_rtp,
            headers,
            accept_refer,
            reply,
        };
        if !self.send(command) {
            return Err(DialError::EndpointStopped);
        }
        Ok(answer.await.map_err(|_| DialError::EndpointStopped)??)
    }
}

/// Starts the endpoint task, admitting every message. New calls arrive on the returned
/// receiver.
pub fn spawn(
    transports: Transports,
    inbound: mpsc::Receiver<Inbound>,
    transactions: TransactionLayer,
    ua: Ua,
) -> (EndpointHandle, mpsc::Receiver<IncomingCall>) {
    spawn_with_gate(transports, inbound, transactions, ua, Gate::open())
}

/// [`spawn`] with `gate` screening every incoming message (access lists, rate limits).
pub fn spawn_with_gate(
    transports: Transports,
    inbound: mpsc::Receiver<Inbound>,
    transactions: TransactionLayer,
    ua: Ua,
    gate: Gate,
) -> (EndpointHandle, mpsc::Receiver<IncomingCall>) {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (calls_tx, calls_rx) = mpsc::channel(1024);
    // At most one report per request sent, read as they come.
    let (failures_tx, failures_rx) = mpsc::unbounded_channel();
    let endpoint = Endpoint {
        transports,
        send_failures: failures_tx,
        gate,
        transactions,
        ua,
        calls: HashMap::new(),
        new_calls: calls_tx,
        probes: HashMap::new(),
        registrations: Registrations::default(),
    };
    tokio::spawn(endpoint.run(inbound, commands_rx, failures_rx));
    (EndpointHandle { commands: commands_tx }, calls_rx)
}

struct Endpoint {
    transports: Transports,
    /// Where the transport reports requests it could not deliver.
    send_failures: mpsc::UnboundedSender<SendFailure>,
    gate: Gate,
    transactions: TransactionLayer,
    ua: Ua,
    calls: HashMap<CallHandle, CallEventSender>,
    new_calls: mpsc::Sender<IncomingCall>,
    probes: HashMap<ProbeId, oneshot::Sender<Result<u16, UaError>>>,
    registrations: Registrations,
}

impl Endpoint {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut send_failures: mpsc::UnboundedReceiver<SendFailure>,
    ) {
        loop {
            self.flush().await;
            let deadline = [
                self.transactions.poll_timeout(),
                self.ua.poll_timeout(),
                self.registrations.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = inbound.recv() => match message {
                    Some(Inbound { message, peer }) => {
                        if self.gate.admit(&self.transports, &message, peer).await {
                            self.handle_message(message, peer);
                        }
                    }
                    None => return,
                },
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => return,
                },
                Some(failure) = send_failures.recv() => {
                    // RFC 3261 §8.1.3.1: the transaction fails at once, as a 503.
                    self.transactions.handle_transport_error(&failure.transaction);
                }
                () = sleep => {
                    let now = Instant::now();
                    self.transactions.handle_timeout(now);
                    self.ua.handle_timeout(now);
                    self.registrations.handle_timeout(now);
                }
            }
        }
    }

    fn handle_message(&mut self, message: rsip::SipMessage, peer: Peer) {
        let now = Instant::now();
        match message {
            rsip::SipMessage::Request(request) => {
                self.transactions.handle_request(now, request, peer)
            }
            rsip::SipMessage::Response(response) => {
                self.transactions.handle_response(now, response, peer)
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        let result = match command {
            Command::Accept { call, local_rtp } => self.ua.accept(now, call, local_rtp),
            Command::Reject { call, status } => self.ua.reject(now, call, status),
            Command::Hangup { call } => self.ua.hangup(now, call),
            Command::Dial {
                target,
                resolved,
                from_user,
                transport,
                local_rtp,
                headers,
                accept_refer,
                reply,
            } => {
                if let Some(addr) = resolved {
                    self.transports.name_tls_target(&target, addr);
                }
                let route = DialRoute { resolved, headers: &headers };
                let mut placed =
                    self.ua.dial_via(now, &target, &from_user, transport, local_rtp, route);
                if let (true, Ok(call)) = (accept_refer, &placed) {
                    placed = self.ua.allow_refer(*call).map(|()| *call);
                }
                self.dialled(now, placed, reply);
                Ok(())
            }
            Command::Refer { call, target } => {
                let sent = self.ua.refer(now, call, &target);
                if let Err(err) = &sent {
                    self.route(now, CallEvent::ReferNotSent { call, reason: err.to_string() });
                }
                sent
            }
            Command::NotifyRefer { call, status } => self.ua.notify_refer(now, call, status),
            Command::Info { call, content_type, body } => {
                self.ua.send_info(now, call, &content_type, body)
            }
            Command::Drain(draining) => {
                self.ua.set_draining(draining);
                Ok(())
            }
            Command::Register(start) => {
                self.registrations.add(start);
                Ok(())
            }
            Command::Unregister(done) => {
                self.registrations.unregister_all(now, done);
                Ok(())
            }
            Command::SetResolvedPeers(addresses) => {
                self.gate.set_resolved_peers(addresses);
                Ok(())
            }
            Command::Probe { target, resolved, reply } => {
                if let Some(addr) = resolved {
                    self.transports.name_tls_target(&target, addr);
                }
                match self.ua.probe(now, &target, resolved) {
                    Ok(id) => {
                        self.probes.insert(id, reply);
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
                Ok(())
            }
        };
        if let Err(err) = result {
            debug!(%err, "call command not carried out");
        }
    }

    /// Routes an outgoing call's events to whoever asked for it, or hangs it up when
    /// nobody waits for it any more.
    fn dialled(
        &mut self,
        now: Instant,
        placed: Result<CallHandle, UaError>,
        reply: oneshot::Sender<Result<DialedCall, UaError>>,
    ) {
        let call = match placed {
            Ok(call) => call,
            Err(err) => {
                debug!(%err, "outgoing call not placed");
                let _ = reply.send(Err(err));
                return;
            }
        };
        // Routed like an incoming call's events from now on; the INVITE goes out on the
        // next flush.
        let (tx, rx) = CallEventSender::channel(now);
        self.calls.insert(call, tx);
        if reply.send(Ok((call, rx))).is_err() {
            debug!(?call, "nobody waits for the outgoing call; hanging up");
            self.calls.remove(&call);
            if let Err(err) = self.ua.hangup(now, call) {
                debug!(%err, "abandoned outgoing call not hung up");
            }
        }
    }

    /// Runs the cores until they have nothing more to say.
    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.transactions.poll_transmit() {
                progressed = true;
                let report =
                    transmit.transaction.map(|id| SendReport::new(id, self.send_failures.clone()));
                let bytes: Vec<u8> = transmit.message.into();
                self.transports.send_reporting(transmit.peer, Bytes::from(bytes), report).await;
            }
            while let Some(event) = self.transactions.poll_event() {
                progressed = true;
                if let Some(event) = self.registrations.take_event(Instant::now(), event) {
                    self.ua.handle_event(Instant::now(), event);
                }
            }
            progressed |= self.registrations.drive(Instant::now(), &mut self.transactions);
            while let Some(action) = self.ua.poll_action() {
                progressed = true;
                self.carry_out(action).await;
            }
            if !progressed {
                return;
            }
        }
    }

    async fn carry_out(&mut self, action: UaAction) {
        let now = Instant::now();
        match action {
            UaAction::Respond { id, response } => {
                if let Err(err) = self.transactions.respond(now, &id, response) {
                    debug!(%err, "response not sent");
                }
            }
            UaAction::Send { request, dest } => {
                if request.method == rsip::Method::Ack {
                    let bytes: Vec<u8> = rsip::SipMessage::Request(request).into();
                    self.transports.send(dest, Bytes::from(bytes)).await;
                } else {
                    let probe = (request.method == rsip::Method::Options)
                        .then(|| header_text::first(&request.headers, "Via", Some("v")))
                        .flatten()
                        .and_then(|via| {
                            header_text::header_param(&via, "branch").map(str::to_string)
                        });
                    if let Err(err) = self.transactions.send_request(now, request, dest) {
                        warn!(%err, "request not sent");
                        if let Some(branch) = probe {
                            self.ua.probe_not_sent(&branch);
                        }
                    }
                }
            }
            UaAction::Event(event) => self.deliver(event).await,
            UaAction::Probed { id, status } => {
                if let Some(reply) = self.probes.remove(&id) {
                    let _ = reply.send(Ok(status));
                }
            }
        }
    }

    async fn deliver(&mut self, event: CallEvent) {
        match event {
            CallEvent::Incoming { call, call_id, invite, source } => {
                let (tx, rx) = CallEventSender::channel(Instant::now());
                self.calls.insert(call, tx);
                let incoming = IncomingCall { call, call_id, invite, source, events: rx };
                if self.new_calls.try_send(incoming).is_err() {
                    self.calls.remove(&call);
                    let _ = self.ua.reject(Instant::now(), call, 503);
                }
            }
            CallEvent::Terminated { call, reason } => {
                // A full queue is closed by dropping the sender: the driver reads that as
                // the end too.
                if let Some(mut tx) = self.calls.remove(&call) {
                    tx.deliver(Instant::now(), CallEvent::Terminated { call, reason });
                }
            }
            other => self.route(Instant::now(), other),
        }
    }

    /// Queues an event for its call (see `sip::call_events` for the policy); a call whose
    /// driver cannot keep up is hung up and its queue closed.
    fn route(&mut self, now: Instant, event: CallEvent) {
        let call = event.call();
        let Some(tx) = self.calls.get_mut(&call) else {
            return;
        };
        match tx.deliver(now, event) {
            Delivery::Queued | Delivery::Dropped => {}
            Delivery::Closed => {
                self.calls.remove(&call);
            }
            Delivery::Overflow => {
                warn!(?call, "the call's event queue is full; hanging up");
                self.calls.remove(&call);
                if let Err(err) = self.ua.hangup(now, call) {
                    debug!(%err, "overflowing call not hung up");
                }
            }
        }
    }
}
