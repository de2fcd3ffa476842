//! Outgoing calls: we are the UAC of the dialog-creating INVITE (RFC 3261 §13.2), with
//! CANCEL before the final response (§9.1) and the ACK of the 2xx (§13.2.2.4).
//!
//! Once the 2xx is ACKed the call is an ordinary confirmed dialog; everything after that
//! is shared with incoming calls.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rsip::{Header, Method};

use super::call::{Call, CancelState, Outgoing, Phase};
use super::inbound::{peer_allows_update, sdp_in};
use super::state::{Dialog, Local};
use super::{CallEvent, CallHandle, EndReason, Ua, UaAction, UaError};
use crate::sdp::{self, Direction, LocalSession};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::refer::MAX_TARGET_LEN;
use crate::sip::session_timer;
use crate::sip::transaction::{Peer, TransactionId};

/// Where an outgoing call goes besides its target, and what its INVITE carries extra.
#[derive(Debug, Clone, Copy, Default)]
pub struct DialRoute<'a> {
    /// Where a target with a host name resolved to (an IP literal in the target wins).
    pub resolved: Option<SocketAddr>,
    /// Extra headers: token names, values without control characters.
    pub headers: &'a [(String, String)],
}

/// Longest user part of our From.
pub const MAX_FROM_USER: usize = 64;
/// How long the far end may ring after a provisional response before we cancel the
/// call: the 3 minutes of a proxy's Timer C (RFC 3261 §16.6 step 11).
pub const MAX_RINGING: Duration = Duration::from_secs(180);

/// `target` if it is a `sip:` URI we can put in a Request-URI and a To header as is.
pub(super) fn check_target(target: &str) -> Result<&str, UaError> {
    let target = target.trim();
    if target.is_empty() || target.len() > MAX_TARGET_LEN {
        return Err(UaError::Dial("the target is empty or too long"));
    }
    if ht::scheme(target).as_deref() != Some("sip") {
        return Err(UaError::Dial("the target must be a sip: URI"));
    }
    // Nothing that could leave the <...> of the To header or split a header line.
    if !target.bytes().all(|b| b.is_ascii_graphic() && !b"<>\"".contains(&b)) {
        return Err(UaError::Dial("the target contains characters a URI may not"));
    }
    if rsip::Uri::try_from(target).is_err() {
        return Err(UaError::Dial("the target is not a valid SIP URI"));
    }
    Ok(target)
}

/// The user part of our From: unreserved characters and `+` as they are, everything
/// else percent-encoded (RFC 3261 §25.1 `user`).
fn from_user_text(user: &str) -> Result<String, UaError> {
    if user.is_empty() || user.len() > MAX_FROM_USER {
        return Err(UaError::Dial("the from user is empty or too long"));
    }
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()+".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// The method of a client transaction id that carries `branch` (`c12:CANCEL z9hG4bK..`
/// → `CANCEL`); empty when the id does not name one.
fn method_in_id<'a>(id: &'a TransactionId, branch: &str) -> &'a str {
    let before = id.as_str().split(branch).next().unwrap_or("").trim_end();
    before.rsplit([':', ' ']).next().unwrap_or("")
}

/// The CANCEL of `invite` (RFC 3261 §9.1): same Request-URI, top Via (so the same
/// branch), Route, From, To, Call-ID and CSeq number.
fn cancel_for(invite: &rsip::Request, user_agent: &str) -> rsip::Request {
    let mut headers = rsip::Headers::default();
    if let Some(via) = invite.headers.iter().find(|h| matches!(h, Header::Via(_))) {
        headers.push(via.clone());
    }
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::from("70".to_string())));
    for header in invite.headers.iter() {
        if matches!(header, Header::Route(_) | Header::From(_) | Header::To(_) | Header::CallId(_))
        {
            headers.push(header.clone());
        }
    }
    let cseq = ht::first(&invite.headers, "CSeq", None)
        .and_then(|v| v.split_ascii_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "1".into());
    headers.push(Header::CSeq(rsip::headers::CSeq::from(format!("{cseq} CANCEL"))));
    if !user_agent.is_empty() {
        headers.push(Header::UserAgent(rsip::headers::UserAgent::from(user_agent.to_string())));
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::from("0".to_string())));
    rsip::Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Take the far end's side of the dialog from a 2xx to our INVITE (RFC 3261 §12.1.2):
/// its To tag, its Contact as remote target, the Record-Route set reversed.
fn adopt_answer(dialog: &mut Dialog, response: &rsip::Response) {
    let headers = &response.headers;
    if let Some(to) = ht::first(headers, "To", Some("t")) {
        dialog.remote_tag = ht::tag(&to).unwrap_or("").to_string();
        dialog.remote_party = to;
    }
    let contact = ht::first(headers, "Contact", Some("m")).unwrap_or_default();
    let target = ht::uri_part(&contact);
    if matches!(ht::scheme(target).as_deref(), Some("sip" | "sips"))
        && !target.contains('[')
        && crate::sip::message::uri_from_text(target).is_some()
    {
        dialog.remote_target = target.to_string();
    } else {
        tracing::debug!(call_id = %dialog.call_id, "2xx without a usable Contact; keeping the Request-URI");
    }
    dialog.route_set = ht::list_entries(headers, "Record-Route", None).into_iter().rev().collect();
    dialog.peer_allows_update = peer_allows_update(headers);
}

impl Ua {
    /// Starts an outgoing call: INVITE with our SDP offer (codecs in the order of
    /// `UaConfig::codecs`, RTP at `local_rtp`) to `target`, a `sip:` URI whose host must
    /// be an IP literal (the next hop is its host:port, 5060 by default; no DNS here: see
    /// [`Ua::dial_via`]). A `;transport=` parameter in `target` wins over `transport`.
    ///
    /// From is `<sip:{from_user}@{local_host}:{local_port}>;tag=...` (`from_user` is
    /// percent-encoded where needed), the Call-ID is fresh. Progress comes back as
    /// `Progress`, then `Established` or `Terminated`.
    pub fn dial(
        &mut self,
        now: Instant,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
    ) -> Result<CallHandle, UaError> {
        self.dial_via(now, target, from_user, transport, local_rtp, DialRoute::default())
    }

    /// [`Ua::dial`] to a target whose host is a name, sent to `resolved` (the address
    /// the runtime looked the name up to). An IP literal in `target` wins over it.
    pub fn dial_via(
        &mut self,
        now: Instant,
        target: &str,
        from_user: &str,
        transport: Transport,
        local_rtp: SocketAddr,
        route: DialRoute<'_>,
    ) -> Result<CallHandle, UaError> {
        let DialRoute { resolved, headers } = route;
        let target = check_target(target)?;
        if headers
            .iter()
            .any(|(name, value)| !is_token(name) || value.chars().any(char::is_control))
        {
            return Err(UaError::Dial("an extra header has a bad name or a control character"));
        }
        let user = from_user_text(from_user)?;
        let mut dialog = self.new_uac_dialog(&user, target, resolved, transport)?;
        let (call_id, local_tag) = (dialog.call_id.clone(), dialog.local_tag.clone());
        let dest = dialog.next_hop();
        dialog.source.transport = dest.transport;

        let mut session = LocalSession::new(self.rng.random());
        let offer = sdp::offer(
            &self.config.codecs,
            local_rtp,
            &mut session,
            Direction::SendRecv,
            self.config.offer_telephone_event,
            None,
        );
        let branch = self.new_branch();
        let contact = self.contact(dest.transport);
        let (local_host, user_agent) = self.local();
        let local = Local {
            host: &local_host,
            port: self.config.port_for(dest.transport),
            contact: &contact,
            user_agent: &user_agent,
        };
        let invite_cseq = dialog.local_cseq;
        let mut extra = vec![crate::sip::response::allow(), crate::sip::response::supported()];
        extra.extend(headers.iter().map(|(n, v)| rsip::Header::Other(n.clone(), v.clone())));
        let invite = dialog
            .request(
                Method::Invite,
                &local,
                &branch,
                extra,
                Some(("application/sdp", offer.into_bytes())),
            )
            .map_err(|e| UaError::Build(e.to_string()))?;

        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let call = Call {
            handle,
            dialog,
            phase: Phase::Calling,
            invite: invite.clone(),
            invite_txn: None,
            invite_cseq,
            offer: None,
            sdp: session,
            local_rtp: Some(local_rtp),
            media: None,
            awaiting_ack_answer: false,
            ack_guard: None,
            server_reinvite: None,
            timer: None,
            expires_at: None,
            refresh_at: None,
            client: Vec::new(),
            refer_subscribed: false,
            accepts_refer: false,
            outgoing: Some(Outgoing {
                branch: branch.clone(),
                dest,
                provisional: false,
                cancel: CancelState::NotAsked,
                deadline: Some(now + self.config.timers.t1 * 65),
            }),
            last_ack: None,
            refresh_rate: Default::default(),
        };
        self.calls.insert(handle, call);
        self.by_dialog.insert((call_id, local_tag), handle);
        self.by_branch.insert(branch, handle);
        self.actions.push_back(UaAction::Send { request: invite, dest });
        Ok(handle)
    }

    /// The UAC side of a new dialog (or of a request outside any dialog) to `target`:
    /// fresh Call-ID and tag, From `<sip:{user}@us>`, sent to the target's IP host or to
    /// `resolved`.
    pub(super) fn new_uac_dialog(
        &mut self,
        user: &str,
        target: &str,
        resolved: Option<SocketAddr>,
        transport: Transport,
    ) -> Result<Dialog, UaError> {
        let addr = ht::ip_host(target)
            .or(resolved)
            .ok_or(UaError::Dial("the target host must be an IP address or be resolved"))?;
        let local_tag = self.random_token();
        let call_id = format!("{}{}", self.random_token(), self.random_token());
        let host = self.local_host_text();
        Ok(Dialog {
            call_id,
            local_party: format!("<sip:{user}@{host}:{}>;tag={local_tag}", self.config.local_port),
            local_tag,
            remote_tag: String::new(),
            remote_party: format!("<{target}>"),
            remote_target: target.to_string(),
            route_set: Vec::new(),
            local_cseq: 1,
            // Nothing seen from the far end yet: any CSeq of its own is higher.
            remote_cseq: 0,
            source: Peer { addr, transport },
            peer_allows_update: false,
        })
    }

    /// A response that carries the branch of an outgoing call's INVITE (so also the
    /// responses to its CANCEL). Returns false when it is not one.
    pub(super) fn on_invite_branch_response(
        &mut self,
        now: Instant,
        call: CallHandle,
        branch: &str,
        response: &rsip::Response,
    ) -> bool {
        let Some(c) = self.calls.get(&call) else { return false };
        let method = ht::first(&response.headers, "CSeq", None)
            .and_then(|v| v.split_ascii_whitespace().nth(1).map(str::to_ascii_uppercase))
            .unwrap_or_default();
        let status = response.status_code.code();
        let ours = c.outgoing.as_ref().is_some_and(|o| o.branch == branch);
        let acked = c.last_ack.as_ref().is_some_and(|a| a.invite_branch == branch);
        if method == "CANCEL" && ours {
            tracing::debug!(call = call.0, status, "response to our CANCEL");
            return true;
        }
        if method != "INVITE" || !(ours || acked) {
            return false;
        }
        match c.phase {
            Phase::Calling | Phase::Cancelling if ours => match status {
                100..=199 => self.outgoing_provisional(now, call, status),
                200..=299 => self.outgoing_success(now, call, branch, response),
                _ => self.end_call(call, Some(EndReason::Failed(status))),
            },
            _ if (200..300).contains(&status) => self.repeat_ack(call, branch, response),
            // Anything else after the final response (a late provisional, say).
            _ => {}
        }
        true
    }

    fn outgoing_provisional(&mut self, now: Instant, call: CallHandle, status: u16) {
        let cancel_guard = now + self.config.timers.t1 * 65;
        let Some(c) = self.calls.get_mut(&call) else { return };
        let phase = c.phase;
        let Some(o) = c.outgoing.as_mut() else { return };
        o.provisional = true;
        match phase {
            Phase::Calling => {
                // The transaction's Timer B stops with a provisional; our limit starts.
                o.deadline = Some(now + MAX_RINGING);
                if status > 100 {
                    self.push_event(CallEvent::Progress { call, status });
                }
            }
            Phase::Cancelling if o.cancel == CancelState::Deferred => {
                o.cancel = CancelState::Sent;
                o.deadline = Some(cancel_guard);
                self.send_cancel(call);
            }
            _ => {}
        }
    }

    /// The 2xx to our INVITE: ACK it, then take the answer (or BYE at once).
    fn outgoing_success(
        &mut self,
        now: Instant,
        call: CallHandle,
        branch: &str,
        response: &rsip::Response,
    ) {
        let prefs = self.config.codecs.clone();
        let Some(c) = self.calls.get_mut(&call) else { return };
        adopt_answer(&mut c.dialog, response);
        c.outgoing = None;
        let cancelled = c.phase == Phase::Cancelling;
        let cseq = c.invite_cseq;
        self.send_ack(call, cseq, branch);
        if cancelled {
            // Answered while our CANCEL was on its way: the call must still end.
            self.send_bye(now, call);
            return self.end_call(call, None);
        }
        let answer = sdp_in(&response.headers, &response.body).ok().flatten();
        let media = answer.and_then(|a| sdp::accept_answer(&prefs, &a, None).ok());
        let Some(media) = media else {
            tracing::info!(call = call.0, "2xx without a usable SDP answer; hanging up");
            self.send_bye(now, call);
            return self.end_call(call, Some(EndReason::Error));
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.media = Some(media.clone());
        c.timer = session_timer::from_answer(&response.headers);
        c.restart_timer(now);
        c.phase = Phase::Confirmed;
        self.push_event(CallEvent::Established { call, media });
    }

    /// A 2xx again on an INVITE branch we ACKed: a retransmission gets the same ACK; a
    /// 2xx from another fork (another To tag) gets its own ACK and a BYE (RFC 3261
    /// §13.2.2.4).
    fn repeat_ack(&mut self, call: CallHandle, branch: &str, response: &rsip::Response) {
        let Some(c) = self.calls.get(&call) else { return };
        let to_tag = ht::first(&response.headers, "To", Some("t"))
            .and_then(|t| ht::tag(&t).map(str::to_string))
            .unwrap_or_default();
        if to_tag == c.dialog.remote_tag {
            if let Some(ack) = c.last_ack.as_ref().filter(|a| a.invite_branch == branch) {
                let (request, dest) = (ack.request.clone(), ack.dest);
                self.actions.push_back(UaAction::Send { request, dest });
            }
            return;
        }
        tracing::info!(call = call.0, "2xx from a second fork; ACK and BYE it");
        let mut fork = c.dialog.clone();
        adopt_answer(&mut fork, response);
        let cseq = c.invite_cseq;
        let ack_branch = self.new_branch();
        let bye_branch = self.new_branch();
        let (host, user_agent) = self.local();
        let contact = self.contact(fork.source.transport);
        let local = Local {
            host: &host,
            port: self.config.port_for(fork.source.transport),
            contact: &contact,
            user_agent: &user_agent,
        };
        let dest = fork.next_hop();
        let built = fork.ack(cseq, &local, &ack_branch).and_then(|ack| {
            let bye = fork.request(Method::Bye, &local, &bye_branch, Vec::new(), None)?;
            Ok((ack, bye))
        });
        match built {
            Ok((ack, bye)) => {
                self.actions.push_back(UaAction::Send { request: ack, dest });
                self.actions.push_back(UaAction::Send { request: bye, dest });
            }
            Err(err) => tracing::warn!(call = call.0, %err, "could not end a second fork"),
        }
    }

    /// Hang up an outgoing call that has no final response yet: CANCEL if a
    /// provisional response came (else once one comes), and report it ended.
    pub(super) fn cancel_outgoing(&mut self, now: Instant, call: CallHandle, reason: EndReason) {
        let cancel_guard = now + self.config.timers.t1 * 65;
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(o) = c.outgoing.as_mut() else { return };
        c.phase = Phase::Cancelling;
        if o.provisional {
            o.cancel = CancelState::Sent;
            o.deadline = Some(cancel_guard);
            self.send_cancel(call);
        } else {
            // RFC 3261 §9.1: no CANCEL before a provisional response. Timer B's guard
            // stays in force if none ever comes.
            o.cancel = CancelState::Deferred;
        }
        self.push_event(CallEvent::Terminated { call, reason });
    }

    fn send_cancel(&mut self, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else { return };
        let Some(dest) = c.outgoing.as_ref().map(|o| o.dest) else { return };
        let request = cancel_for(&c.invite, &self.config.user_agent);
        self.actions.push_back(UaAction::Send { request, dest });
    }

    /// A Timeout whose id carries the branch of an outgoing call's INVITE. Returns
    /// false when no outgoing call has that branch.
    pub(super) fn on_invite_branch_timeout(&mut self, now: Instant, id: &TransactionId) -> bool {
        let found = self.calls.values().find_map(|c| {
            let o = c.outgoing.as_ref()?;
            id.as_str().contains(o.branch.as_str()).then(|| (c.handle, o.branch.clone()))
        });
        let Some((call, branch)) = found else { return false };
        if method_in_id(id, &branch).eq_ignore_ascii_case("CANCEL") {
            // The INVITE's own Timer B (re-armed by the CANCEL) settles the call.
            return true;
        }
        self.outgoing_timeout(now, call);
        true
    }

    /// Timer B of our INVITE: give up.
    fn outgoing_timeout(&mut self, _now: Instant, call: CallHandle) {
        tracing::info!(call = call.0, "no final response to our INVITE");
        self.end_call(call, Some(EndReason::Timeout));
    }

    /// Our own deadline for the INVITE's final response passed.
    pub(super) fn outgoing_deadline(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else { return };
        let ringing = c.outgoing.as_ref().is_some_and(|o| o.provisional);
        match c.phase {
            Phase::Calling if ringing => {
                tracing::info!(call = call.0, "rang too long; cancelling");
                self.cancel_outgoing(now, call, EndReason::Timeout);
            }
            Phase::Calling => self.outgoing_timeout(now, call),
            _ => self.end_call(call, None),
        }
    }
}

/// An RFC 3261 token (a header name we may send).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}
