//! The per-dialog rate of target-refresh requests from the peer (re-INVITE and UPDATE).
//!
//! Policy: a call takes [`REFRESH_BURST`] re-INVITEs or UPDATEs at once, then
//! [`REFRESH_PER_SECOND`] sustained. Legitimate use is far below that (hold and unhold,
//! a session refresh every 45 s or more). Past it, the request gets
//! `500 Server Internal Error` with `Retry-After` set to when the next one would be taken
//! (RFC 3261 §14.2: the answer to a re-INVITE that cannot be handled now); the session
//! goes on unchanged. Glare with a pending exchange is still 491, after this check.
//! Each refusal counts in `sip_requests_rejected_total{reason="refresh_rate"}`, and the
//! first in a call is logged as a `rate-limited` security event (one line per call at
//! most, so a flood cannot flood the log).

use std::time::Instant;

use super::{CallHandle, Ua};
use crate::metric_catalog::{RejectReason, record_rejected};
use crate::security_event::{self, SecurityEvent};
use crate::sip::rate_budget::{RateBudget, retry_after_seconds};
use crate::sip::response;
use crate::sip::transaction::{Peer, TransactionId};

/// re-INVITEs and UPDATEs a quiet call takes at once.
pub const REFRESH_BURST: u32 = 10;
/// re-INVITEs and UPDATEs a call takes per second, sustained.
pub const REFRESH_PER_SECOND: u32 = 1;

/// One call's refresh budget (made full at its first refresh) and whether its flood was
/// logged.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefreshRate {
    budget: Option<RateBudget>,
    logged: bool,
}

impl Ua {
    /// Whether a re-INVITE or UPDATE in `call` may go on. When it may not, it has been
    /// answered 500 with Retry-After, counted and (once per call) logged.
    pub(super) fn refresh_admitted(
        &mut self,
        now: Instant,
        call: CallHandle,
        id: &TransactionId,
        request: &rsip::Request,
        source: Peer,
    ) -> bool {
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let rate = &mut c.refresh_rate;
        let budget = rate
            .budget
            .get_or_insert_with(|| RateBudget::new(now, REFRESH_BURST, REFRESH_PER_SECOND));
        if budget.take(now) {
            return true;
        }
        let retry_after = retry_after_seconds(budget.wait(now));
        record_rejected(RejectReason::RefreshRate);
        if !rate.logged {
            rate.logged = true;
            let detail = format!(
                "{} in a call: over {REFRESH_BURST} at once or {REFRESH_PER_SECOND}/s",
                request.method
            );
            security_event::report(SecurityEvent::RateLimited, source.addr.ip(), &detail);
        }
        let extra = vec![response::retry_after(retry_after)];
        self.respond_in_call(call, id.clone(), request, 500, extra, Vec::new());
        false
    }
}
