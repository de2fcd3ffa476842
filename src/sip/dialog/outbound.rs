//! Our side of the dialog: responses to our requests, timeouts, session refreshes.

use std::time::{Duration, Instant};

use rsip::Method;

use super::call::{ClientRequest, Phase, Purpose, SentAck};
use super::inbound::sdp_in;
use super::state::Local;
use super::{CallEvent, CallHandle, EndReason, Ua, UaAction};
use crate::sdp;
use crate::sip::header_text as ht;
use crate::sip::response;
use crate::sip::transaction::TransactionId;

/// Wait before retrying a refresh that met 491 (RFC 3261 §14.1 asks for 2.1-4 s as owner
/// of the Call-ID; the UAS side waits 0-2 s; a fixed value inside both is fine).
const RETRY_AFTER_491: Duration = Duration::from_millis(2100);

impl Ua {
    pub(super) fn on_response(&mut self, now: Instant, response: rsip::Response) {
        let status = response::status_of(&response);
        let Some(via) = ht::first(&response.headers, "Via", Some("v")) else {
            return;
        };
        let Some(branch) = ht::header_param(&via, "branch").map(str::to_string) else {
            return;
        };
        if self.on_probe_response(&branch, status) {
            return;
        }
        let Some(&call) = self.by_branch.get(&branch) else {
            return;
        };
        if self.on_invite_branch_response(now, call, &branch, &response) {
            return;
        }
        if status < 200 {
            return;
        }
        self.by_branch.remove(&branch);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(pos) = c.client.iter().position(|r| r.branch == branch) else {
            return;
        };
        let request = c.client.remove(pos);
        self.client_final(now, call, request, status, Some(&response));
    }

    /// A final outcome for one of our requests; `response` is `None` on timeout (408).
    fn client_final(
        &mut self,
        now: Instant,
        call: CallHandle,
        request: ClientRequest,
        status: u16,
        response: Option<&rsip::Response>,
    ) {
        match request.purpose {
            Purpose::Refer => {
                if (200..300).contains(&status) {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.refer_subscribed = true;
                    }
                } else {
                    self.push_event(CallEvent::ReferProgress { call, status });
                }
            }
            Purpose::Refresh => self.refresh_final(now, call, request, status, response),
            Purpose::Info if !(200..300).contains(&status) => {
                tracing::info!(call = call.0, status, "the peer did not take our INFO");
            }
            Purpose::Info => {}
        }
    }

    fn refresh_final(
        &mut self,
        now: Instant,
        call: CallHandle,
        request: ClientRequest,
        status: u16,
        response: Option<&rsip::Response>,
    ) {
        if request.method == Method::Invite && (200..300).contains(&status) {
            self.send_ack(call, request.cseq, &request.branch);
            let offered = self.calls.get(&call).and_then(|c| c.media.as_ref()?.srtp.clone());
            let answer = response.and_then(|r| sdp_in(&r.headers, &r.body).ok().flatten());
            match answer.map(|a| sdp::accept_answer(&self.config.codecs, &a, offered.as_ref())) {
                Some(Ok(media)) => self.media_update(call, media),
                Some(Err(err)) => {
                    // The media we have cannot go on as the peer answered (another
                    // profile, another key line, no codec of ours): end the call rather
                    // than send what it cannot read.
                    tracing::warn!(call = call.0, %err, "unusable answer to our re-INVITE");
                    self.send_bye(now, call);
                    return self.end_call(call, Some(EndReason::Error));
                }
                None => {}
            }
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        match status {
            200..=299 => c.restart_timer(now),
            408 | 481 => {
                // RFC 4028 §10: the session is gone.
                self.send_bye(now, call);
                self.end_call(call, Some(EndReason::SessionExpired));
            }
            491 => c.refresh_at = Some(now + RETRY_AFTER_491),
            405 | 501 if request.method == Method::Update => {
                c.dialog.peer_allows_update = false;
                c.refresh_at = Some(now);
            }
            // Other failures: the session lives on until it expires.
            _ => {}
        }
    }

    /// ACK a 2xx to our INVITE (or re-INVITE) with CSeq `cseq`, sent on `invite_branch`;
    /// the ACK is kept for retransmissions of that 2xx.
    pub(super) fn send_ack(&mut self, call: CallHandle, cseq: u32, invite_branch: &str) {
        let branch = self.new_branch();
        let (host, user_agent) = self.local();
        let Some(c) = self.calls.get(&call) else { return };
        let contact = self.contact(c.dialog.source.transport);
        let local = Local {
            host: &host,
            port: self.config.port_for(c.dialog.source.transport),
            contact: &contact,
            user_agent: &user_agent,
        };
        match c.dialog.ack(cseq, &local, &branch) {
            Ok(request) => {
                let dest = c.dialog.next_hop();
                self.actions.push_back(UaAction::Send { request: request.clone(), dest });
                let ack = SentAck { invite_branch: invite_branch.to_string(), request, dest };
                if let Some(c) = self.calls.get_mut(&call)
                    && let Some(old) = c.last_ack.replace(ack)
                    && old.invite_branch != invite_branch
                {
                    self.by_branch.remove(&old.invite_branch);
                }
                self.by_branch.insert(invite_branch.to_string(), call);
            }
            Err(err) => tracing::warn!(call = call.0, %err, "could not build ACK"),
        }
    }

    pub(super) fn on_timeout(&mut self, now: Instant, id: TransactionId) {
        if let Some(&call) = self.by_txn.get(&id) {
            let Some(c) = self.calls.get(&call) else { return };
            let invite_unacked = Some(&id) == c.invite_txn.as_ref()
                && matches!(c.phase, Phase::Answered | Phase::ByeOnAck);
            let reinvite_unacked = c.server_reinvite.as_ref().is_some_and(|r| r.txn == id);
            if invite_unacked || reinvite_unacked {
                self.ack_timeout(now, call);
            }
            return;
        }
        // A client transaction: its id carries the branch we chose.
        if self.on_invite_branch_timeout(now, &id) || self.on_probe_timeout(&id) {
            return;
        }
        let found = self.calls.values().find_map(|c| {
            c.client
                .iter()
                .position(|r| id.as_str().contains(r.branch.as_str()))
                .map(|pos| (c.handle, pos))
        });
        if let Some((call, pos)) = found
            && let Some(c) = self.calls.get_mut(&call)
        {
            let request = c.client.remove(pos);
            self.by_branch.remove(&request.branch);
            self.client_final(now, call, request, 408, None);
        }
    }

    /// No ACK for our 2xx: BYE and end the call (RFC 3261 §13.3.1.4).
    fn ack_timeout(&mut self, now: Instant, call: CallHandle) {
        self.send_bye(now, call);
        self.end_call(call, Some(EndReason::AckTimeout));
    }

    pub(super) fn call_timeout(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.outgoing.as_ref().and_then(|o| o.deadline).is_some_and(|d| d <= now) {
            return self.outgoing_deadline(now, call);
        }
        if c.ack_guard.is_some_and(|d| d <= now) {
            c.ack_guard = None;
            return self.ack_timeout(now, call);
        }
        if c.expires_at.is_some_and(|d| d <= now) {
            tracing::info!(call = call.0, "session timer expired without a refresh");
            self.send_bye(now, call);
            return self.end_call(call, Some(EndReason::SessionExpired));
        }
        let overdue: Vec<ClientRequest> = {
            let (late, keep): (Vec<_>, Vec<_>) =
                c.client.drain(..).partition(|r| r.deadline <= now);
            c.client = keep;
            late
        };
        for request in overdue {
            self.by_branch.remove(&request.branch);
            self.client_final(now, call, request, 408, None);
        }
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.refresh_at.is_some_and(|d| d <= now) {
            c.refresh_at = None;
            self.send_refresh(now, call);
        }
    }

    /// Refresh the session as its refresher: UPDATE without a body when the peer allows
    /// it, else a re-INVITE offering what is in use (on SRTP: `RTP/SAVP` with the call's
    /// tag, suite and our key). The o= version steps only if that body differs from the
    /// last SDP we sent (RFC 3264 §8).
    fn send_refresh(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Confirmed || c.has_refresh_pending() {
            return;
        }
        let Some(timer) = c.timer else { return };
        let extra = timer.refresh_headers();
        let result = if c.dialog.peer_allows_update {
            self.send_tracked(now, call, Method::Update, extra, None, Purpose::Refresh)
        } else if c.server_reinvite.is_some() {
            c.refresh_at = Some(now + RETRY_AFTER_491);
            return;
        } else {
            let Some(local_rtp) = c.local_rtp else { return };
            let direction = c.media.as_ref().map_or(sdp::Direction::SendRecv, |m| m.direction);
            // Offer what is in use, so that the refresh changes nothing.
            let codecs = c.codecs_in_use(&self.config.codecs);
            let body = sdp::offer(
                &codecs,
                local_rtp,
                &mut c.sdp,
                direction,
                self.config.offer_telephone_event,
                c.media.as_ref().and_then(|m| m.srtp.as_ref()),
            )
            .into_bytes();
            self.send_tracked(
                now,
                call,
                Method::Invite,
                extra,
                Some(("application/sdp", body)),
                Purpose::Refresh,
            )
        };
        if let Err(err) = result {
            tracing::warn!(call = call.0, %err, "could not send a session refresh");
        }
    }
}
