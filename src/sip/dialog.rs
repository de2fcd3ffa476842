//! The user agent core: dialogs, incoming (UAS) and outgoing (UAC) calls, session timers
//! and REFER (sans-IO).
//!
//! Feed it what the transaction layer reports with [`Ua::handle_event`], the local
//! decisions with [`Ua::accept`], [`Ua::reject`], [`Ua::dial`], [`Ua::hangup`] and
//! [`Ua::refer`], and
//! the clock with [`Ua::handle_timeout`] at [`Ua::poll_timeout`]. Drain
//! [`Ua::poll_action`] after each call: responses to send on server transactions, new
//! requests to send, and call events.
//!
//! Requests we send carry a complete top Via with a fresh `z9hG4bK` branch. Responses to
//! them are matched by that branch; a client `Timeout` is matched by an id that contains
//! the branch, and a guard of 64·T1 covers the case where none arrives. Client
//! transaction ids also carry the method (`c12:INVITE z9hG4bK...`), which tells the
//! Timeout of a CANCEL from that of the INVITE it shares a branch with.
//!
//! Once established, an outgoing call is the same dialog as an incoming one: requests
//! from the far side (BYE, re-INVITE, UPDATE, INFO, NOTIFY, OPTIONS) and the ones we send
//! (BYE, refreshes, REFER) take the same paths.
//!
//! Routing inside a dialog is loose routing only (`;lr`): Route headers from the
//! Record-Route set, Request-URI = remote target. Strict routing is not supported.

mod call;
mod inbound;
mod invite_auth;
mod outbound;
mod outgoing_call;
mod probe;
mod refresh_rate;
mod state;
mod transferee;
mod types;

pub use invite_auth::InviteAuth;
pub use outgoing_call::DialRoute;
pub use probe::ProbeId;
pub use refresh_rate::{REFRESH_BURST, REFRESH_PER_SECOND};
pub use types::{CallEvent, CallHandle, EndReason, UaAction, UaConfig, UaError};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::sdp;
use crate::sip::header_text;
use crate::sip::message::Transport;
use crate::sip::response;
use crate::sip::transaction::{TransactionEvent, TransactionId};
use crate::srtp::MasterKey;

use call::{Call, Phase};
use state::Local;

/// How long a request's (Call-ID, From tag, CSeq) is remembered to spot merged requests.
const MERGE_MEMORY: Duration = Duration::from_secs(32);
/// Most remembered requests for merge detection.
const MERGE_CAPACITY: usize = 8192;
/// Largest INFO body accepted.
pub(crate) const MAX_INFO_BODY: usize = 1024;
/// Retry-After for 503 (seconds).
const RETRY_AFTER_S: u32 = 5;

/// The user agent: every call's dialog state.
pub struct Ua {
    config: UaConfig,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    by_dialog: HashMap<(String, String), CallHandle>,
    /// Server INVITE transactions (initial and re-INVITE) → call.
    by_txn: HashMap<TransactionId, CallHandle>,
    /// Branches of our client requests → call.
    by_branch: HashMap<String, CallHandle>,
    /// (Call-ID, From tag, CSeq) of recent out-of-dialog requests → (branch, expiry).
    merged: HashMap<(String, String, u32), (String, Instant)>,
    merged_order: VecDeque<((String, String, u32), Instant)>,
    /// Branches of our OPTIONS probes → probe.
    probes: HashMap<String, ProbeId>,
    next_probe: u64,
    actions: VecDeque<UaAction>,
    next_handle: u64,
    draining: bool,
    rng: StdRng,
    /// SRTP master keys only (a CSPRNG seeded by the OS, kept apart from `rng`, whose
    /// output appears on the wire as tags and branches).
    key_rng: StdRng,
    /// Digest authentication of new INVITEs, when configured.
    invite_auth: Option<InviteAuth>,
}

impl Ua {
    pub fn new(config: UaConfig) -> Self {
        Ua {
            config,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            by_txn: HashMap::new(),
            by_branch: HashMap::new(),
            merged: HashMap::new(),
            merged_order: VecDeque::new(),
            probes: HashMap::new(),
            next_probe: 0,
            actions: VecDeque::new(),
            next_handle: 1,
            draining: false,
            rng: StdRng::from_os_rng(),
            key_rng: StdRng::from_os_rng(),
            invite_auth: None,
        }
    }

    /// Feed one event from the transaction layer.
    pub fn handle_event(&mut self, now: Instant, event: TransactionEvent) {
        match event {
            TransactionEvent::Request { id, request, source } => {
                self.on_request(now, id, request, source)
            }
            TransactionEvent::Cancelled { invite, .. } => self.on_cancelled(invite),
            TransactionEvent::Ack { request, .. } => self.on_ack(now, request),
            TransactionEvent::Response { response, .. } => self.on_response(now, response),
            TransactionEvent::Timeout { id } => self.on_timeout(now, id),
        }
    }

    /// Answer an incoming call: 200 with our SDP answer (or our offer, for an INVITE
    /// without SDP) and RTP at `local_rtp`.
    pub fn accept(
        &mut self,
        now: Instant,
        call: CallHandle,
        local_rtp: SocketAddr,
    ) -> Result<(), UaError> {
        let prefs = self.config.codecs.clone();
        let fresh_key = MasterKey::random(&mut self.key_rng);
        let policy = self.config.srtp;
        let c = self.calls.get_mut(&call).ok_or(UaError::UnknownCall)?;
        if c.phase != Phase::Incoming {
            return Err(UaError::InvalidState("only a ringing call can be accepted"));
        }
        let srtp = sdp::SrtpAnswer {
            policy,
            secure_signalling: c.dialog.source.transport == Transport::Tls,
            current: None,
            fresh_key,
        };
        let (body, media, awaiting) = match &c.offer {
            Some(offer) => match sdp::answer(offer, &prefs, local_rtp, &mut c.sdp, &srtp) {
                Ok((body, media)) => (body, Some(media), false),
                Err(err) => {
                    self.fail_incoming(call, 488);
                    return Err(err.into());
                }
            },
            None => (
                sdp::offer(
                    &prefs,
                    local_rtp,
                    &mut c.sdp,
                    sdp::Direction::SendRecv,
                    self.config.offer_telephone_event,
                    None,
                ),
                None,
                true,
            ),
        };
        c.local_rtp = Some(local_rtp);
        c.media = media;
        c.awaiting_ack_answer = awaiting;
        c.phase = Phase::Answered;
        c.ack_guard = Some(now + self.config.timers.t1 * 64);
        c.restart_timer(now);
        let mut extra: Vec<rsip::Header> = c
            .invite
            .headers
            .iter()
            .filter(|h| matches!(h, rsip::Header::RecordRoute(_)))
            .cloned()
            .collect();
        extra.extend(self.success_headers(call));
        extra.push(response::content_type("application/sdp"));
        self.respond_invite(call, 200, extra, body.into_bytes());
        Ok(())
    }

    /// Refuse an incoming call with a final status (300-699).
    pub fn reject(&mut self, _now: Instant, call: CallHandle, status: u16) -> Result<(), UaError> {
        if !(300..700).contains(&status) {
            return Err(UaError::InvalidStatus(status));
        }
        let c = self.calls.get(&call).ok_or(UaError::UnknownCall)?;
        if c.phase != Phase::Incoming {
            return Err(UaError::InvalidState("only a ringing call can be rejected"));
        }
        self.respond_invite(call, status, Vec::new(), Vec::new());
        self.end_call(call, Some(EndReason::Rejected));
        Ok(())
    }

    /// End a call: BYE once confirmed (after the ACK, if it has not come yet), or 480
    /// to the INVITE while it is still ringing. An outgoing call without a final response
    /// is cancelled: CANCEL now if a provisional response came, else as soon as one
    /// comes; `Terminated { reason: Cancelled }` is reported at once.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::UnknownCall)?;
        match c.phase {
            Phase::Incoming => {
                self.respond_invite(call, 480, Vec::new(), Vec::new());
                self.end_call(call, Some(EndReason::LocalBye));
            }
            Phase::Answered => {
                // RFC 3261 §15: no BYE before the ACK (or the transaction's timeout).
                c.phase = Phase::ByeOnAck;
                self.push_event(CallEvent::Terminated { call, reason: EndReason::LocalBye });
            }
            Phase::Confirmed => {
                self.send_bye(now, call);
                self.end_call(call, Some(EndReason::LocalBye));
            }
            Phase::Calling => self.cancel_outgoing(now, call, EndReason::Cancelled),
            Phase::ByeOnAck | Phase::Cancelling => {
                return Err(UaError::InvalidState("already hanging up"));
            }
        }
        Ok(())
    }

    /// Transfer the caller to `target` (a sip:, sips: or tel: URI) with REFER. Progress
    /// comes back as `ReferProgress`. One REFER at a time: while an earlier one's
    /// subscription is open (no final NOTIFY came), a new one is refused, so that no
    /// NOTIFY can be taken for the wrong transfer.
    pub fn refer(&mut self, now: Instant, call: CallHandle, target: &str) -> Result<(), UaError> {
        let refer_to = crate::sip::refer::refer_to(target)?;
        let c = self.calls.get(&call).ok_or(UaError::UnknownCall)?;
        if c.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("only an established call can be transferred"));
        }
        if c.has_refer_pending() {
            return Err(UaError::InvalidState("a transfer is already under way"));
        }
        let contact_uri =
            header_text::uri_part(&self.contact(c.dialog.source.transport)).to_string();
        let extra = vec![
            response::other("Refer-To", refer_to),
            response::other("Referred-By", format!("<{contact_uri}>")),
        ];
        self.send_tracked(now, call, rsip::Method::Refer, extra, None, call::Purpose::Refer)
    }

    /// Sends an INFO with `body` of `content_type` in an established call (how a digit
    /// heard on one leg of a bridge reaches the other in the form it came in). A failure
    /// response is logged; the call goes on.
    pub fn send_info(
        &mut self,
        now: Instant,
        call: CallHandle,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::UnknownCall)?;
        if c.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("INFO needs an established call"));
        }
        let body = Some((content_type, body));
        self.send_tracked(now, call, rsip::Method::Info, Vec::new(), body, call::Purpose::Info)
    }

    /// While draining, new calls and OPTIONS get 503; calls under way go on.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Calls not yet reported as terminated.
    pub fn call_count(&self) -> usize {
        self.calls.values().filter(|c| !c.phase.reported_ended()).count()
    }

    /// Run whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<CallHandle> = self
            .calls
            .values()
            .filter(|c| c.next_deadline().is_some_and(|d| d <= now))
            .map(|c| c.handle)
            .collect();
        for handle in due {
            self.call_timeout(now, handle);
        }
        while let Some((key, expiry)) = self.merged_order.front() {
            if *expiry > now {
                break;
            }
            if self.merged.get(key).is_some_and(|(_, e)| e == expiry) {
                self.merged.remove(key);
            }
            self.merged_order.pop_front();
        }
    }

    /// The next instant `handle_timeout` must run, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(Call::next_deadline)
            .chain(self.merged_order.front().map(|(_, e)| *e))
            .min()
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<UaAction> {
        self.actions.pop_front()
    }

    // ----- shared helpers -------------------------------------------------------------

    fn push_event(&mut self, event: CallEvent) {
        self.actions.push_back(UaAction::Event(event));
    }

    fn random_token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}{:08x}", self.random_token(), self.rng.random::<u32>())
    }

    /// Our Contact: `<sip:{user}@{host}:{port}>`, plus `;transport=tcp` on TCP and
    /// `;transport=tls` (with the TLS port) on TLS.
    fn contact(&self, transport: Transport) -> String {
        let host = self.local_host_text();
        let suffix = match transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!(
            "<sip:{}@{host}:{}{suffix}>",
            header_text::escape_uri(&self.config.contact_user),
            self.config.port_for(transport)
        )
    }

    /// Our host as written in a URI (an IPv6 address in brackets).
    fn local_host_text(&self) -> String {
        let host = &self.config.local_host;
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        }
    }

    /// Contact, Allow, Supported and the session timer headers of a 2xx in a call.
    fn success_headers(&self, call: CallHandle) -> Vec<rsip::Header> {
        let Some(c) = self.calls.get(&call) else {
            return Vec::new();
        };
        let mut extra = vec![
            rsip::Header::Contact(rsip::headers::Contact::from(
                self.contact(c.dialog.source.transport),
            )),
            response::allow(),
            response::supported(),
        ];
        if let Some(timer) = c.timer {
            extra.extend(timer.response_headers());
        }
        extra
    }

    /// Respond to a request in a call (our tag on To).
    fn respond_in_call(
        &mut self,
        call: CallHandle,
        id: TransactionId,
        request: &rsip::Request,
        status: u16,
        extra: Vec<rsip::Header>,
        body: Vec<u8>,
    ) {
        let tag = self.calls.get(&call).map(|c| c.dialog.local_tag.clone());
        let response =
            response::build(request, status, tag.as_deref(), extra, body, &self.config.server);
        self.actions.push_back(UaAction::Respond { id, response });
    }

    /// Respond to the dialog-creating INVITE of a call.
    fn respond_invite(
        &mut self,
        call: CallHandle,
        status: u16,
        extra: Vec<rsip::Header>,
        body: Vec<u8>,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(id) = c.invite_txn.clone() else {
            return;
        };
        let invite = c.invite.clone();
        self.respond_in_call(call, id, &invite, status, extra, body);
    }

    /// Refuse the INVITE of a ringing call and forget the call.
    fn fail_incoming(&mut self, call: CallHandle, status: u16) {
        let mut extra = Vec::new();
        if status == 488 {
            extra.push(response::warning(304, &self.config.local_host, "Media type not available"));
        }
        self.respond_invite(call, status, extra, Vec::new());
        self.end_call(call, Some(EndReason::Error));
    }

    /// Forget a call and, with a reason, report it ended.
    fn end_call(&mut self, call: CallHandle, reason: Option<EndReason>) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.by_dialog.remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
        self.by_txn.retain(|_, h| *h != call);
        for req in &c.client {
            self.by_branch.remove(&req.branch);
        }
        let invite_branches = c.outgoing.iter().map(|o| &o.branch);
        for branch in invite_branches.chain(c.last_ack.iter().map(|a| &a.invite_branch)) {
            self.by_branch.remove(branch);
        }
        if let Some(reason) = reason
            && !c.phase.reported_ended()
        {
            self.push_event(CallEvent::Terminated { call, reason });
        }
    }

    fn local(&self) -> (String, String) {
        (self.config.local_host.clone(), self.config.user_agent.clone())
    }

    /// Build and queue a request in a call's dialog. Returns its branch and CSeq.
    fn send_request(
        &mut self,
        call: CallHandle,
        method: rsip::Method,
        extra: Vec<rsip::Header>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(String, u32), UaError> {
        let branch = self.new_branch();
        let (host, user_agent) = self.local();
        let transport = self.calls.get(&call).ok_or(UaError::UnknownCall)?.dialog.source.transport;
        let port = self.config.port_for(transport);
        let contact = self.contact(transport);
        let c = self.calls.get_mut(&call).ok_or(UaError::UnknownCall)?;
        let local = Local { host: &host, port, contact: &contact, user_agent: &user_agent };
        let cseq = c.dialog.local_cseq;
        let request = c
            .dialog
            .request(method, &local, &branch, extra, body)
            .map_err(|e| UaError::Build(e.to_string()))?;
        let dest = c.dialog.next_hop();
        self.actions.push_back(UaAction::Send { request, dest });
        Ok((branch, cseq))
    }

    /// Send a request whose final response we act on.
    fn send_tracked(
        &mut self,
        now: Instant,
        call: CallHandle,
        method: rsip::Method,
        extra: Vec<rsip::Header>,
        body: Option<(&str, Vec<u8>)>,
        purpose: call::Purpose,
    ) -> Result<(), UaError> {
        let (branch, cseq) = self.send_request(call, method, extra, body)?;
        let deadline = now + self.config.timers.t1 * 65;
        if let Some(c) = self.calls.get_mut(&call) {
            c.client.push(call::ClientRequest {
                branch: branch.clone(),
                method,
                cseq,
                purpose,
                deadline,
            });
            self.by_branch.insert(branch, call);
        }
        Ok(())
    }

    /// Send BYE (failures to build are logged: the call ends anyway).
    fn send_bye(&mut self, _now: Instant, call: CallHandle) {
        if let Err(err) = self.send_request(call, rsip::Method::Bye, Vec::new(), None) {
            tracing::warn!(call = call.0, %err, "could not build BYE");
        }
    }
}

#[cfg(test)]
mod tests;
