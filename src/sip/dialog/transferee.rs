//! Being transferred (RFC 3515, the transferee's side): a REFER from the far end of a call
//! we placed, answered 202, and the NOTIFYs (`message/sipfrag`) that report how the call
//! to the target went.
//!
//! Only calls that opted in with [`Ua::allow_refer`] take a REFER, and only calls we
//! placed can opt in: a call the endpoint answered refuses every REFER with 603, so no
//! caller can make the endpoint call anywhere.

use std::time::Instant;

use super::call::Phase;
use super::outgoing_call::check_target;
use super::{CallEvent, CallHandle, Ua, UaError};
use crate::sip::header_text as ht;
use crate::sip::response;

/// How long the implicit subscription of a REFER lasts while the call to the target is
/// under way (RFC 3515 §2.4.4 leaves it to the notifier).
const SUBSCRIPTION_EXPIRES_S: u32 = 60;

impl Ua {
    /// Lets the far end of `call`, a call we placed, transfer us with REFER: each REFER
    /// is then answered 202 and reported as [`CallEvent::Referred`]. A call we answered
    /// cannot opt in.
    pub fn allow_refer(&mut self, call: CallHandle) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::UnknownCall)?;
        if c.invite_txn.is_some() {
            return Err(UaError::InvalidState("only a call we placed may accept REFER"));
        }
        c.accepts_refer = true;
        Ok(())
    }

    /// A REFER in a call that accepts one: 202 for one usable `sip:` Refer-To (its
    /// embedded headers dropped), 400 for none, several or an unusable one, 603 before
    /// the call is confirmed.
    pub(super) fn refer_received(
        &mut self,
        call: CallHandle,
        id: crate::sip::transaction::TransactionId,
        request: &rsip::Request,
    ) {
        let confirmed = self.calls.get(&call).is_some_and(|c| c.phase == Phase::Confirmed);
        if !confirmed {
            return self.respond_in_call(call, id, request, 603, Vec::new(), Vec::new());
        }
        let values = ht::list_entries(&request.headers, "Refer-To", Some("r"));
        let target = match values.as_slice() {
            // Headers embedded in the URI (`?X-Ticket=1`) are not copied to our INVITE.
            [one] => {
                let uri = ht::uri_part(one);
                let uri = uri.split_once('?').map_or(uri, |(uri, _headers)| uri);
                check_target(uri).map(str::to_string).ok()
            }
            _ => None,
        };
        let Some(target) = target else {
            return self.respond_in_call(call, id, request, 400, Vec::new(), Vec::new());
        };
        self.respond_in_call(call, id, request, 202, Vec::new(), Vec::new());
        self.push_event(CallEvent::Referred { call, target });
    }

    /// Tells the far end how the call it referred us to goes: a NOTIFY with `status` as a
    /// `message/sipfrag`. A provisional status keeps the subscription active; a final
    /// one ends it.
    pub fn notify_refer(
        &mut self,
        _now: Instant,
        call: CallHandle,
        status: u16,
    ) -> Result<(), UaError> {
        if !(100..700).contains(&status) {
            return Err(UaError::InvalidStatus(status));
        }
        let c = self.calls.get(&call).ok_or(UaError::UnknownCall)?;
        if !c.accepts_refer || c.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("no REFER to report on"));
        }
        let state = if status < 200 {
            format!("active;expires={SUBSCRIPTION_EXPIRES_S}")
        } else {
            "terminated;reason=noresource".to_string()
        };
        let extra =
            vec![response::other("Event", "refer"), response::other("Subscription-State", state)];
        let body = format!("SIP/2.0 {status} {}\r\n", response::reason_phrase(status));
        let body = Some(("message/sipfrag;version=2.0", body.into_bytes()));
        self.send_request(call, rsip::Method::Notify, extra, body)?;
        Ok(())
    }
}
