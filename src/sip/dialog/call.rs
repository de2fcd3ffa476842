//! Per-call state kept by the UA.

use std::net::SocketAddr;
use std::time::Instant;

use super::CallHandle;
use super::refresh_rate::RefreshRate;
use super::state::Dialog;
use crate::config::CodecName;
use crate::sdp::{LocalSession, Negotiated, SessionDescription};
use crate::sip::session_timer::SessionTimer;
use crate::sip::transaction::{Peer, TransactionId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// INVITE received and screened; waiting for `accept` or `reject`.
    Incoming,
    /// 2xx sent; waiting for the ACK.
    Answered,
    Confirmed,
    /// Hung up locally before the ACK came: BYE goes out on the ACK or on timeout.
    /// `Terminated` was already reported.
    ByeOnAck,
    /// Our INVITE is out (an outgoing call) and has no final response yet.
    Calling,
    /// Hung up locally before the final response to our INVITE: CANCEL is out, or
    /// waits for a provisional response. `Terminated` was already reported; a 2xx that
    /// still arrives gets ACK and BYE.
    Cancelling,
}

impl Phase {
    /// `Terminated` was reported already; the call only lingers to finish the protocol.
    pub fn reported_ended(self) -> bool {
        matches!(self, Phase::ByeOnAck | Phase::Cancelling)
    }
}

/// CANCEL of our INVITE (RFC 3261 §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelState {
    NotAsked,
    /// Asked for before any provisional response: it goes out when one arrives.
    Deferred,
    Sent,
}

/// The UAC side of an outgoing call's INVITE.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Branch of our INVITE (its CANCEL shares it).
    pub branch: String,
    /// Where the INVITE went (its CANCEL goes there too).
    pub dest: Peer,
    /// Some provisional response (100 included) arrived: a CANCEL may be sent.
    pub provisional: bool,
    pub cancel: CancelState,
    /// Give up waiting for the final response: Timer B's guard before a provisional,
    /// the ringing limit after one, Timer B's guard again after CANCEL.
    pub deadline: Option<Instant>,
}

/// The ACK we sent for a 2xx to one of our INVITEs, sent again on a 2xx retransmission.
#[derive(Debug, Clone)]
pub(crate) struct SentAck {
    /// Branch of the INVITE it acknowledges.
    pub invite_branch: String,
    pub request: rsip::Request,
    pub dest: Peer,
}

/// A re-INVITE we answered 2xx and whose ACK has not come yet.
#[derive(Debug, Clone)]
pub(crate) struct ServerReinvite {
    pub txn: TransactionId,
    pub cseq: u32,
    /// Our 2xx carried an offer (the re-INVITE had no SDP); the answer comes in the ACK.
    pub awaiting_answer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A session refresh (UPDATE or re-INVITE) we sent as the refresher.
    Refresh,
    Refer,
    /// An INFO carrying a digit on to this leg.
    Info,
}

/// A request we sent and whose final response we wait for.
#[derive(Debug, Clone)]
pub(crate) struct ClientRequest {
    pub branch: String,
    pub method: rsip::Method,
    pub cseq: u32,
    pub purpose: Purpose,
    /// Guard in case the transaction layer's timeout does not reach us.
    pub deadline: Instant,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub handle: CallHandle,
    pub dialog: Dialog,
    pub phase: Phase,
    /// The dialog-creating INVITE: received (incoming call) or sent (outgoing call).
    pub invite: rsip::Request,
    /// The server transaction of a received INVITE; `None` for an outgoing call.
    pub invite_txn: Option<TransactionId>,
    pub invite_cseq: u32,
    /// The offer in the INVITE; `None` for an INVITE without SDP.
    pub offer: Option<SessionDescription>,
    pub sdp: LocalSession,
    pub local_rtp: Option<SocketAddr>,
    pub media: Option<Negotiated>,
    /// Our 2xx to the INVITE carried an offer; the answer comes in the ACK.
    pub awaiting_ack_answer: bool,
    /// When to give up on the ACK for our 2xx (INVITE or re-INVITE).
    pub ack_guard: Option<Instant>,
    pub server_reinvite: Option<ServerReinvite>,
    /// Negotiated from the INVITE; applied when the 2xx goes out.
    pub timer: Option<SessionTimer>,
    pub expires_at: Option<Instant>,
    pub refresh_at: Option<Instant>,
    pub client: Vec<ClientRequest>,
    /// A REFER was accepted (2xx); progress NOTIFYs may come.
    pub refer_subscribed: bool,
    /// The far end may transfer us with REFER (opt-in for calls we place; see
    /// [`super::Ua::allow_refer`]). Calls we answer always refuse REFER.
    pub accepts_refer: bool,
    /// Set for an outgoing call (we are the UAC of the dialog-creating INVITE).
    pub outgoing: Option<Outgoing>,
    /// The last ACK we sent for a 2xx to our INVITE or re-INVITE.
    pub last_ack: Option<SentAck>,
    /// The peer's re-INVITEs and UPDATEs, held to a rate.
    pub refresh_rate: RefreshRate,
}

impl Call {
    /// The earliest instant at which this call needs `handle_timeout`.
    pub fn next_deadline(&self) -> Option<Instant> {
        let outgoing = self.outgoing.as_ref().and_then(|o| o.deadline);
        [self.ack_guard, self.expires_at, self.refresh_at, outgoing]
            .into_iter()
            .flatten()
            .chain(self.client.iter().map(|c| c.deadline))
            .min()
    }

    /// Restart the session timer after a successful refresh (or the first 2xx).
    pub fn restart_timer(&mut self, now: Instant) {
        match self.timer {
            Some(t) => {
                self.expires_at = Some(t.expires_at(now));
                self.refresh_at = t.refresh_at(now);
            }
            None => {
                self.expires_at = None;
                self.refresh_at = None;
            }
        }
    }

    pub fn has_refresh_pending(&self) -> bool {
        self.client.iter().any(|c| c.purpose == Purpose::Refresh)
    }

    pub fn has_refer_pending(&self) -> bool {
        self.refer_subscribed || self.client.iter().any(|c| c.purpose == Purpose::Refer)
    }

    /// The codecs a new offer or answer in this call may use: the one in use once media
    /// is negotiated (the media path cannot switch codec mid-call), else `configured`.
    pub fn codecs_in_use(&self, configured: &[CodecName]) -> Vec<CodecName> {
        self.media.as_ref().map_or_else(|| configured.to_vec(), |m| vec![m.codec.name])
    }

    /// An offer/answer exchange is open (RFC 3264 §4: one at a time → 491).
    pub fn offer_pending(&self) -> bool {
        self.phase != Phase::Confirmed
            || self.server_reinvite.is_some()
            || self
                .client
                .iter()
                .any(|c| c.purpose == Purpose::Refresh && c.method == rsip::Method::Invite)
    }
}
