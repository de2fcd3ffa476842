//! Requests from the peer: screening, new calls, and requests inside a dialog.

use std::time::Instant;

use rsip::{Header, Method};

use super::call::{Call, Phase, ServerReinvite};
use super::state::Dialog;
use super::{
    CallEvent, CallHandle, EndReason, MAX_INFO_BODY, MERGE_CAPACITY, MERGE_MEMORY, RETRY_AFTER_S,
    Ua,
};
use crate::config::SrtpPolicy;
use crate::metric_catalog::{RejectReason, record_rejected};
use crate::sdp::{self, LocalSession, SdpError, SessionDescription, SrtpAnswer};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::refer;
use crate::sip::response;
use crate::sip::session_timer::{self, Negotiation};
use crate::sip::transaction::{Peer, TransactionId};
use crate::srtp::{MASTER_LEN, MasterKey};

/// Media types we take in INFO as DTMF.
const DTMF_INFO_TYPES: [&str; 2] = ["application/dtmf-relay", "application/dtmf"];

/// The parts of a request every check needs.
struct Basics {
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
}

fn basics(request: &rsip::Request) -> Option<Basics> {
    let h = &request.headers;
    let call_id = ht::first(h, "Call-ID", Some("i"))?;
    let from = ht::first(h, "From", Some("f"))?;
    let to = ht::first(h, "To", Some("t"))?;
    let cseq = ht::first(h, "CSeq", None)?.split_ascii_whitespace().next()?.parse().ok()?;
    Some(Basics {
        call_id,
        from_tag: ht::tag(&from).unwrap_or("").to_string(),
        to_tag: ht::tag(&to).map(str::to_string),
        cseq,
    })
}

/// Why a body cannot be taken as an SDP offer/answer.
pub(super) enum BodyProblem {
    /// 415: not application/sdp.
    Type,
    /// 413: too large.
    Size,
    /// 400: not readable.
    Malformed,
}

/// The SDP in a request, if any.
fn sdp_body(request: &rsip::Request) -> Result<Option<SessionDescription>, BodyProblem> {
    sdp_in(&request.headers, &request.body)
}

/// The SDP in a message (request or response), if any.
pub(super) fn sdp_in(
    headers: &rsip::Headers,
    body: &[u8],
) -> Result<Option<SessionDescription>, BodyProblem> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = ht::first(headers, "Content-Type", Some("c")).unwrap_or_default();
    if ht::media_type(&content_type) != "application/sdp" {
        return Err(BodyProblem::Type);
    }
    if body.len() > sdp::MAX_SDP_BYTES {
        return Err(BodyProblem::Size);
    }
    let text = std::str::from_utf8(body).map_err(|_| BodyProblem::Malformed)?;
    sdp::parse(text).map(Some).map_err(|_| BodyProblem::Malformed)
}

/// A remote target we can put in a Request-URI: a sip/sips URI that parses.
/// A Contact URI we can send in-dialog requests to: sip/sips, no IPv6 reference (this
/// endpoint speaks IPv4), and readable (quoted parameter values included).
fn usable_target(uri: &str) -> bool {
    matches!(ht::scheme(uri).as_deref(), Some("sip" | "sips"))
        && !uri.contains('[')
        && crate::sip::message::uri_from_text(uri).is_some()
}

fn body_status(problem: BodyProblem) -> u16 {
    match problem {
        BodyProblem::Type => 415,
        BodyProblem::Size => 413,
        BodyProblem::Malformed => 400,
    }
}

impl Ua {
    /// Answer a request outside any call (no To tag added unless `tag`).
    pub(super) fn reply(
        &mut self,
        id: TransactionId,
        request: &rsip::Request,
        status: u16,
        extra: Vec<Header>,
    ) {
        let tag = (status >= 200).then(|| self.random_token());
        let response = response::build(
            request,
            status,
            tag.as_deref(),
            extra,
            Vec::new(),
            &self.config.server,
        );
        self.actions.push_back(super::UaAction::Respond { id, response });
    }

    /// Headers that explain a 4xx: Allow on 405/501, Accept on 415, and so on.
    fn explain(&self, status: u16) -> Vec<Header> {
        match status {
            405 | 501 => vec![response::allow()],
            415 | 406 => vec![response::accept_sdp()],
            503 => vec![response::retry_after(RETRY_AFTER_S)],
            488 => {
                vec![response::warning(304, &self.config.local_host, "Media type not available")]
            }
            _ => Vec::new(),
        }
    }

    fn reply_explained(&mut self, id: TransactionId, request: &rsip::Request, status: u16) {
        let extra = self.explain(status);
        self.reply(id, request, status, extra);
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        id: TransactionId,
        request: rsip::Request,
        source: Peer,
    ) {
        let method = request.method;
        let Some(b) = basics(&request) else {
            self.reply(id, &request, 400, Vec::new());
            return;
        };
        let uri = request.uri.to_string();
        if !matches!(ht::scheme(&uri).as_deref(), Some("sip" | "sips" | "tel")) {
            self.reply(id, &request, 416, Vec::new());
            return;
        }
        let max_forwards = ht::first(&request.headers, "Max-Forwards", None)
            .and_then(|v| v.trim().parse::<u32>().ok());
        if max_forwards == Some(0) && method != Method::Options {
            self.reply(id, &request, 483, Vec::new());
            return;
        }
        if b.to_tag.is_none() && self.is_merged(now, &request, &b) {
            self.reply(id, &request, 482, Vec::new());
            return;
        }
        let unsupported: Vec<String> = ht::option_tags(&request.headers, "Require", None)
            .into_iter()
            .filter(|t| !response::UNDERSTOOD_OPTIONS.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() {
            let value = unsupported.join(", ");
            let extra = vec![Header::Unsupported(rsip::headers::Unsupported::from(value))];
            self.reply(id, &request, 420, extra);
            return;
        }
        match b.to_tag.clone() {
            Some(to_tag) => self.in_dialog(now, id, request, source, b, &to_tag),
            None => match method {
                Method::Invite => {
                    if self.authorize_invite(now, &id, &request, source) {
                        self.new_invite(id, request, source, b)
                    }
                }
                Method::Options => self.options(id, &request, None),
                Method::Register | Method::Subscribe | Method::Publish | Method::Message => {
                    self.reply_explained(id, &request, 405)
                }
                Method::PRack => self.reply_explained(id, &request, 501),
                _ => self.reply(id, &request, 481, Vec::new()),
            },
        }
    }

    /// Same Call-ID, From tag and CSeq as a recent request, but another branch: a copy
    /// that forked upstream and came back by another path (RFC 3261 §8.2.2.2).
    fn is_merged(&mut self, now: Instant, request: &rsip::Request, b: &Basics) -> bool {
        let Some(via) = ht::first(&request.headers, "Via", Some("v")) else {
            return false;
        };
        let branch = ht::header_param(&via, "branch").unwrap_or("").to_string();
        let key = (b.call_id.clone(), b.from_tag.clone(), b.cseq);
        match self.merged.get(&key) {
            Some((seen, expiry)) if *expiry > now => return *seen != branch,
            _ => {}
        }
        if self.merged.len() < MERGE_CAPACITY {
            let expiry = now + MERGE_MEMORY;
            self.merged.insert(key.clone(), (branch, expiry));
            self.merged_order.push_back((key, expiry));
        }
        false
    }

    fn options(&mut self, id: TransactionId, request: &rsip::Request, call: Option<CallHandle>) {
        if self.draining && call.is_none() {
            self.reply_explained(id, request, 503);
            return;
        }
        let extra = vec![response::allow(), response::accept_sdp(), response::supported()];
        match call {
            Some(call) => self.respond_in_call(call, id, request, 200, extra, Vec::new()),
            None => self.reply(id, request, 200, extra),
        }
    }

    fn new_invite(&mut self, id: TransactionId, request: rsip::Request, source: Peer, b: Basics) {
        if self.draining || self.call_count() >= self.config.max_calls {
            record_rejected(if self.draining {
                RejectReason::Draining
            } else {
                RejectReason::Overload
            });
            self.reply_explained(id, &request, 503);
            return;
        }
        let accept = ht::values(&request.headers, "Accept", None);
        if !accept.is_empty() && !ht::accepts(&accept, "application/sdp") {
            self.reply_explained(id, &request, 406);
            return;
        }
        let offer = match sdp_body(&request) {
            Ok(offer) => offer,
            Err(problem) => return self.reply_explained(id, &request, body_status(problem)),
        };
        let secure_signalling = source.transport == Transport::Tls;
        match &offer {
            Some(offer) => {
                let probe = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
                // The probe's answer is thrown away: its key is never used.
                let srtp = SrtpAnswer {
                    policy: self.config.srtp,
                    secure_signalling,
                    current: None,
                    fresh_key: MasterKey::new([0; MASTER_LEN]),
                };
                let mut session = LocalSession::new(0);
                match sdp::answer(offer, &self.config.codecs, probe, &mut session, &srtp) {
                    Ok(_) => {}
                    Err(SdpError::NoCommonCodec | SdpError::NoAudio | SdpError::Srtp(_)) => {
                        return self.reply_explained(id, &request, 488);
                    }
                    Err(_) => return self.reply(id, &request, 400, Vec::new()),
                }
            }
            // Our offers are plain RTP/AVP: with SRTP required, a call must bring its offer.
            None if self.config.srtp == SrtpPolicy::Required => {
                return self.reply_explained(id, &request, 488);
            }
            None => {}
        }
        let timer = match session_timer::negotiate(
            &request.headers,
            self.config.session_expires,
            self.config.min_se,
        ) {
            Negotiation::TooSmall { min_se } => {
                return self.reply(id, &request, 422, session_timer::too_small_headers(min_se));
            }
            Negotiation::Off => None,
            Negotiation::On(t) => Some(t),
        };
        let contact = ht::first(&request.headers, "Contact", Some("m"));
        let target = match contact.as_deref().map(ht::uri_part) {
            Some(uri) if usable_target(uri) => uri.to_string(),
            // An RFC 2543 peer may send no Contact, and a Contact we cannot route to (an
            // IPv6 literal on this IPv4 endpoint) is no use either: in both cases requests
            // in the dialog go back to where the INVITE came from (RFC 3261 §12.1.1
            // leaves the target to the UAS when the Contact is unusable).
            Some(uri) if matches!(ht::scheme(uri).as_deref(), Some("sip" | "sips")) => {
                format!("sip:{}", source.addr)
            }
            None => format!("sip:{}", source.addr),
            Some(_) => return self.reply(id, &request, 400, Vec::new()),
        };
        let (Some(from), Some(to)) = (
            ht::first(&request.headers, "From", Some("f")),
            ht::first(&request.headers, "To", Some("t")),
        ) else {
            return self.reply(id, &request, 400, Vec::new());
        };
        let local_tag = self.random_token();
        let handle = super::CallHandle(self.next_handle);
        self.next_handle += 1;
        let session_id = self.rng_u64();
        let dialog = Dialog {
            call_id: b.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: b.from_tag.clone(),
            local_party: format!("{to};tag={local_tag}"),
            remote_party: from,
            remote_target: target,
            route_set: ht::list_entries(&request.headers, "Record-Route", None),
            local_cseq: 1,
            remote_cseq: b.cseq,
            source,
            peer_allows_update: peer_allows_update(&request.headers),
        };
        let call = Call {
            handle,
            dialog,
            phase: Phase::Incoming,
            invite: request.clone(),
            invite_txn: Some(id.clone()),
            invite_cseq: b.cseq,
            offer,
            sdp: LocalSession::new(session_id),
            local_rtp: None,
            media: None,
            awaiting_ack_answer: false,
            ack_guard: None,
            server_reinvite: None,
            timer,
            expires_at: None,
            refresh_at: None,
            client: Vec::new(),
            refer_subscribed: false,
            accepts_refer: false,
            outgoing: None,
            last_ack: None,
            refresh_rate: Default::default(),
        };
        self.calls.insert(handle, call);
        self.by_dialog.insert((b.call_id.clone(), local_tag), handle);
        self.by_txn.insert(id, handle);
        if self.config.send_ringing {
            let contact = self.contact(source.transport);
            let extra = vec![Header::Contact(rsip::headers::Contact::from(contact))];
            self.respond_invite(handle, 180, extra, Vec::new());
        }
        self.push_event(CallEvent::Incoming {
            call: handle,
            call_id: b.call_id,
            invite: request,
            source,
        });
    }

    fn rng_u64(&mut self) -> u64 {
        use rand::Rng;
        self.rng.random()
    }

    pub(super) fn on_cancelled(&mut self, invite: TransactionId) {
        let Some(&call) = self.by_txn.get(&invite) else {
            return;
        };
        if self.calls.get(&call).is_some_and(|c| c.phase == Phase::Incoming) {
            self.respond_invite(call, 487, Vec::new(), Vec::new());
            self.end_call(call, Some(EndReason::Cancelled));
        }
    }

    fn find_call(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> Option<CallHandle> {
        let handle = *self.by_dialog.get(&(call_id.to_string(), local_tag.to_string()))?;
        let c = self.calls.get(&handle)?;
        (c.dialog.remote_tag == remote_tag).then_some(handle)
    }

    pub(super) fn on_ack(&mut self, now: Instant, request: rsip::Request) {
        let Some(b) = basics(&request) else { return };
        let Some(to_tag) = &b.to_tag else { return };
        let Some(call) = self.find_call(&b.call_id, to_tag, &b.from_tag) else {
            tracing::debug!(call_id = %b.call_id, "ACK for no dialog dropped");
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        match c.phase {
            Phase::Answered if b.cseq == c.invite_cseq => {
                c.ack_guard = None;
                c.phase = Phase::Confirmed;
                if c.awaiting_ack_answer {
                    c.awaiting_ack_answer = false;
                    match self.answer_from_ack(call, &request) {
                        Some(media) => {
                            if let Some(c) = self.calls.get_mut(&call) {
                                c.media = Some(media);
                            }
                        }
                        None => {
                            self.send_bye(now, call);
                            self.end_call(call, Some(EndReason::Error));
                            return;
                        }
                    }
                }
                if let Some(media) = self.calls.get(&call).and_then(|c| c.media.clone()) {
                    self.push_event(CallEvent::Established { call, media });
                }
            }
            Phase::ByeOnAck if b.cseq == c.invite_cseq => {
                self.send_bye(now, call);
                self.end_call(call, None);
            }
            Phase::Confirmed => {
                let Some(pending) = c.server_reinvite.clone() else { return };
                if pending.cseq != b.cseq {
                    return;
                }
                c.server_reinvite = None;
                c.ack_guard = None;
                self.by_txn.remove(&pending.txn);
                if pending.awaiting_answer {
                    match self.answer_from_ack(call, &request) {
                        Some(media) => self.media_update(call, media),
                        None => {
                            self.send_bye(now, call);
                            self.end_call(call, Some(EndReason::Error));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The SDP answer carried by an ACK to our offer (`RTP/SAVP` with the call's keys when
    /// the call is on SRTP).
    fn answer_from_ack(&self, call: CallHandle, ack: &rsip::Request) -> Option<sdp::Negotiated> {
        let answer = sdp_body(ack).ok()??;
        let offered = self.calls.get(&call)?.media.as_ref().and_then(|m| m.srtp.as_ref());
        sdp::accept_answer(&self.config.codecs, &answer, offered).ok()
    }

    /// Record new media and report it if it changed.
    pub(super) fn media_update(&mut self, call: CallHandle, media: sdp::Negotiated) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.media.as_ref() != Some(&media) {
            c.media = Some(media.clone());
            self.push_event(CallEvent::MediaChanged { call, media });
        }
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        id: TransactionId,
        request: rsip::Request,
        source: Peer,
        b: Basics,
        to_tag: &str,
    ) {
        let Some(call) = self.find_call(&b.call_id, to_tag, &b.from_tag) else {
            return self.reply(id, &request, 481, Vec::new());
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        if b.cseq <= c.dialog.remote_cseq {
            return self.respond_in_call(call, id, &request, 500, Vec::new(), Vec::new());
        }
        c.dialog.remote_cseq = b.cseq;
        match request.method {
            Method::Bye => {
                let phase = c.phase;
                self.respond_in_call(call, id, &request, 200, Vec::new(), Vec::new());
                if phase == Phase::Incoming {
                    self.respond_invite(call, 487, Vec::new(), Vec::new());
                }
                self.end_call(call, Some(EndReason::RemoteBye));
            }
            Method::Invite | Method::Update => {
                if self.refresh_admitted(now, call, &id, &request, source) {
                    self.offer_in_dialog(now, call, id, request)
                }
            }
            Method::Info => self.info(call, id, request),
            Method::Notify => self.notify(call, id, request),
            Method::Refer if c.accepts_refer => self.refer_received(call, id, &request),
            // A caller must never redirect the endpoint (no toll-fraud relay).
            Method::Refer => self.respond_in_call(call, id, &request, 603, Vec::new(), Vec::new()),
            Method::Options => self.options(id, &request, Some(call)),
            Method::PRack => {
                let extra = self.explain(501);
                self.respond_in_call(call, id, &request, 501, extra, Vec::new());
            }
            _ => {
                let extra = self.explain(405);
                self.respond_in_call(call, id, &request, 405, extra, Vec::new());
            }
        }
    }

    /// re-INVITE or UPDATE: maybe a new offer, maybe only a session refresh.
    fn offer_in_dialog(
        &mut self,
        now: Instant,
        call: CallHandle,
        id: TransactionId,
        request: rsip::Request,
    ) {
        let is_invite = request.method == Method::Invite;
        let (interval, min_se) = (self.config.session_expires, self.config.min_se);
        let Some(c) = self.calls.get_mut(&call) else { return };
        // The media path keeps the codec (and payload types) it started with: a re-offer
        // must still carry them (it is then answered with them, RFC 3264 §8.3.2), else it
        // gets a 488 and the session goes on unchanged (RFC 3261 §14.2).
        let prefs = c.codecs_in_use(&self.config.codecs);
        let offer = match sdp_body(&request) {
            Ok(offer) => offer,
            Err(problem) => {
                let status = body_status(problem);
                let extra = self.explain(status);
                return self.respond_in_call(call, id, &request, status, extra, Vec::new());
            }
        };
        let wants_exchange = is_invite || offer.is_some();
        let busy = if is_invite {
            c.offer_pending() || c.phase != Phase::Confirmed
        } else {
            offer.is_some() && (c.offer_pending() || c.awaiting_ack_answer)
        };
        if busy || c.local_rtp.is_none() && wants_exchange {
            return self.respond_in_call(call, id, &request, 491, Vec::new(), Vec::new());
        }
        let timer = match session_timer::negotiate(&request.headers, interval, min_se) {
            Negotiation::TooSmall { min_se } => {
                let extra = session_timer::too_small_headers(min_se);
                return self.respond_in_call(call, id, &request, 422, extra, Vec::new());
            }
            Negotiation::Off => None,
            Negotiation::On(t) => Some(t),
        };
        let mut body = Vec::new();
        let mut new_media = None;
        let fresh_key = MasterKey::random(&mut self.key_rng);
        let Some(c) = self.calls.get_mut(&call) else { return };
        if let Some(local_rtp) = c.local_rtp.filter(|_| wants_exchange) {
            match &offer {
                Some(offer) => {
                    // Answered on a copy: a refused offer leaves our SDP and its version.
                    let mut session = c.sdp.clone();
                    let srtp = SrtpAnswer {
                        policy: self.config.srtp,
                        secure_signalling: c.dialog.source.transport == Transport::Tls,
                        current: c.media.as_ref().and_then(|m| m.srtp.as_ref()),
                        fresh_key,
                    };
                    match sdp::answer(offer, &prefs, local_rtp, &mut session, &srtp) {
                        // The codec and whether the stream is SRTP stay as they started.
                        Ok((text, media))
                            if c.media.as_ref().is_none_or(|m| {
                                same_payload_types(m, &media)
                                    && m.srtp.is_some() == media.srtp.is_some()
                            }) =>
                        {
                            c.sdp = session;
                            body = text.into_bytes();
                            new_media = Some(media);
                        }
                        _ => {
                            let extra = self.explain(488);
                            return self.respond_in_call(
                                call,
                                id,
                                &request,
                                488,
                                extra,
                                Vec::new(),
                            );
                        }
                    }
                }
                None => {
                    // A re-INVITE without SDP: our offer in the 200, on SRTP with the
                    // call's keys when the call is on SRTP.
                    let direction =
                        c.media.as_ref().map_or(sdp::Direction::SendRecv, |m| m.direction);
                    body = sdp::offer(
                        &prefs,
                        local_rtp,
                        &mut c.sdp,
                        direction,
                        self.config.offer_telephone_event,
                        c.media.as_ref().and_then(|m| m.srtp.as_ref()),
                    )
                    .into_bytes();
                }
            }
        }
        // Target refresh (RFC 3261 §12.2.2).
        if let Some(contact) = ht::first(&request.headers, "Contact", Some("m")) {
            let target = ht::uri_part(&contact);
            if usable_target(target) {
                c.dialog.remote_target = target.to_string();
            }
        }
        c.timer = timer;
        c.restart_timer(now);
        if is_invite {
            c.server_reinvite = Some(ServerReinvite {
                txn: id.clone(),
                cseq: c.dialog.remote_cseq,
                awaiting_answer: offer.is_none(),
            });
            c.ack_guard = Some(now + self.config.timers.t1 * 64);
            self.by_txn.insert(id.clone(), call);
        }
        let mut extra = self.success_headers(call);
        if !body.is_empty() {
            extra.push(response::content_type("application/sdp"));
        }
        self.respond_in_call(call, id, &request, 200, extra, body);
        if let Some(media) = new_media {
            self.media_update(call, media);
        }
    }

    fn info(&mut self, call: CallHandle, id: TransactionId, request: rsip::Request) {
        if request.body.is_empty() {
            return self.respond_in_call(call, id, &request, 200, Vec::new(), Vec::new());
        }
        let content_type =
            ht::first(&request.headers, "Content-Type", Some("c")).unwrap_or_default();
        let media_type = ht::media_type(&content_type);
        if !DTMF_INFO_TYPES.contains(&media_type.as_str()) {
            let extra =
                vec![Header::Accept(rsip::headers::Accept::from(DTMF_INFO_TYPES.join(", ")))];
            return self.respond_in_call(call, id, &request, 415, extra, Vec::new());
        }
        if request.body.len() > MAX_INFO_BODY {
            return self.respond_in_call(call, id, &request, 413, Vec::new(), Vec::new());
        }
        self.respond_in_call(call, id, &request, 200, Vec::new(), Vec::new());
        self.push_event(CallEvent::Info { call, content_type: media_type, body: request.body });
    }

    fn notify(&mut self, call: CallHandle, id: TransactionId, request: rsip::Request) {
        let event = ht::first(&request.headers, "Event", Some("o")).unwrap_or_default();
        let package = event.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if package != "refer" {
            return self.respond_in_call(call, id, &request, 489, Vec::new(), Vec::new());
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !c.has_refer_pending() {
            return self.respond_in_call(call, id, &request, 481, Vec::new(), Vec::new());
        }
        // A NOTIFY may overtake the 202: the subscription exists from then on.
        c.refer_subscribed = true;
        let state = ht::first(&request.headers, "Subscription-State", None).unwrap_or_default();
        if refer::is_terminated(&state) {
            c.refer_subscribed = false;
            c.client.retain(|r| r.purpose != super::call::Purpose::Refer);
        }
        self.respond_in_call(call, id, &request, 200, Vec::new(), Vec::new());
        if let Some(status) = refer::sipfrag_status(&request.body) {
            self.push_event(CallEvent::ReferProgress { call, status });
        }
    }
}

/// Whether new media keeps the payload types in use: the media path cannot change the
/// codec's or telephone-event's payload type mid-call, so a re-offer that does is refused.
fn same_payload_types(current: &sdp::Negotiated, new: &sdp::Negotiated) -> bool {
    current.codec.payload_type == new.codec.payload_type
        && current.telephone_event == new.telephone_event
}

/// The peer's Allow header (of a request or a response) lists UPDATE.
pub(super) fn peer_allows_update(headers: &rsip::Headers) -> bool {
    ht::list_entries(headers, "Allow", None).iter().any(|m| m.eq_ignore_ascii_case("UPDATE"))
}
