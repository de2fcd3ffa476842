//! Digest authentication of new INVITEs (RFC 8760, `[sip.auth]`).
//!
//! A dialog-creating INVITE from a source that is not exempt must carry credentials that
//! verify; otherwise it gets 401 with one challenge per configured algorithm. Wrong
//! credentials and an unknown user get the same 401 (the verifier does the same work for
//! both), and each failure is a `bad-auth` security event. Requests inside a dialog (ACK,
//! BYE, re-INVITE) and CANCEL are not challenged: the dialog was authenticated.

use std::net::IpAddr;
use std::time::Instant;

use rsip::Header;

use super::Ua;
use crate::security_event::{self, SecurityEvent};
use crate::sip::admission::{SourceNet, any_contains};
use crate::sip::digest::{RequestLine, Verdict, Verifier};
use crate::sip::header_text as ht;
use crate::sip::response;
use crate::sip::transaction::{Peer, TransactionId};

/// The INVITE authentication a [`Ua`] applies.
#[derive(Debug)]
pub struct InviteAuth {
    pub verifier: Verifier,
    /// Sources never challenged (trusted trunks).
    pub exempt: Vec<SourceNet>,
}

impl InviteAuth {
    fn exempts(&self, ip: IpAddr) -> bool {
        any_contains(&self.exempt, ip)
    }
}

impl Ua {
    /// Turns on digest authentication of new INVITEs.
    pub fn set_invite_auth(&mut self, auth: InviteAuth) {
        self.invite_auth = Some(auth);
    }

    /// Whether a new INVITE may go on. When it may not, it has been answered 401.
    pub(super) fn authorize_invite(
        &mut self,
        now: Instant,
        id: &TransactionId,
        request: &rsip::Request,
        source: Peer,
    ) -> bool {
        let Some(auth) = self.invite_auth.as_mut() else {
            return true;
        };
        if auth.exempts(source.addr.ip()) {
            return true;
        }
        let values = ht::values(&request.headers, "Authorization", None);
        let uri = request.uri.to_string();
        let line = RequestLine { method: "INVITE", uri: &uri };
        let verdict = auth.verifier.verify(now, line, values.iter().map(String::as_str));
        let stale = match verdict {
            Verdict::Authenticated(_) => return true,
            Verdict::Missing => false,
            Verdict::Stale { replay: false } => true,
            Verdict::Stale { replay: true } => {
                let detail = "replayed nonce count";
                security_event::report(SecurityEvent::BadAuth, source.addr.ip(), detail);
                true
            }
            Verdict::Rejected { user, reason } => {
                let detail = format!("user={user} {reason}");
                security_event::report(SecurityEvent::BadAuth, source.addr.ip(), &detail);
                false
            }
        };
        let challenges: Vec<Header> = auth
            .verifier
            .challenges(now, stale)
            .iter()
            .map(|c| response::other("WWW-Authenticate", c.to_header_value()))
            .collect();
        self.reply(id.clone(), request, 401, challenges);
        false
    }
}
