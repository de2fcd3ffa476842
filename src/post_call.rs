//! After every call: the comment that summarises it on the caller's ticket.
//!
//! The comment is rendered from the call summary and written to the durable outbox before
//! the call counts as finished; the outbox's sender posts it when Zendesk is reachable.
//! For a caller with no ticket (and `zendesk.create_ticket_for_unknown`), the entry opens
//! one, with the comment as its first; when Zendesk could not be asked during the call,
//! the entry finds the caller's ticket when it is sent. Either way the call is on record
//! even if Zendesk was down.
//! Nothing here waits on Zendesk.

use std::time::SystemTime;

use tracing::{info, warn};

use crate::call::CallSummary;
use crate::config::ZendeskConfig;
use crate::ivr::outcome::{CallOutcome, DropReason, path_text};
use crate::outbox::{Deferred, Entry, Outbox, TicketToOpen};
use crate::sip::ani::CallerId;
use crate::zendesk::comment;
use crate::zendesk::model::DipOutcome;

/// What the comment says happened: the flow's outcome. A call that never got as far as
/// the flow (no RTP port) is recorded as failed.
pub fn outcome(summary: &CallSummary) -> CallOutcome {
    match &summary.report {
        Some(report) => report.outcome.clone(),
        None => CallOutcome::Dropped { reason: DropReason::Error },
    }
}

/// The summary in the shape the comment template reads.
pub fn comment_summary(summary: &CallSummary) -> comment::CallSummary {
    let caller = match &summary.ani.caller {
        CallerId::Number(n) => Some(n.e164.clone()),
        CallerId::NotANumber(user) => Some(user.clone()),
        CallerId::Anonymous => None,
    };
    let started_at = time::OffsetDateTime::from(summary.started_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown time".into());
    let report = summary.report.as_ref();
    comment::CallSummary {
        call_id: summary.call_id.clone(),
        caller,
        started_at,
        path: report.map(|r| path_text(&r.path)).unwrap_or_default(),
        outcome: outcome(summary),
        queue: report.and_then(|r| r.route.as_ref()).map(|r| r.queue.clone()),
        duration: summary.duration,
        ivr_duration: report.map(|r| r.ivr_duration).unwrap_or(summary.duration),
    }
}

/// The outbox entry for a call: its comment on the caller's ticket; for a caller with no
/// ticket and `zendesk.create_ticket_for_unknown`, a ticket to open with the comment (so
/// the call is on record); and when Zendesk could not be asked during the call, an entry
/// that looks the caller's ticket up when it is sent. `None` when the comment has nowhere
/// to go (anonymous callers, Zendesk off).
pub fn entry(summary: &CallSummary, config: &ZendeskConfig) -> Option<Entry> {
    let create = config.create_ticket_for_unknown;
    let phone = match &summary.ani.caller {
        CallerId::Number(n) => Some(n.e164.clone()),
        _ => None,
    };
    let (ticket_id, deferred) = match summary.dip.as_ref()? {
        DipOutcome::Found { ticket: Some(ticket), .. } => (ticket.id, None),
        DipOutcome::Found { user, ticket: None, .. } if create => {
            (0, Some(Deferred::OpenTicket(TicketToOpen::for_caller(Some(user.id), None))))
        }
        DipOutcome::UnknownCaller if create => {
            (0, Some(Deferred::OpenTicket(TicketToOpen::for_caller(None, phone))))
        }
        DipOutcome::Fallback { .. } => {
            (0, Some(Deferred::CallersTicket { phone: phone?, open_if_none: create }))
        }
        _ => return None,
    };
    let body = comment::render(&config.comment_template, &comment_summary(summary));
    Some(Entry {
        // The marker is what the body carries verbatim and what the duplicate check
        // searches for (as a comment, or as the external id of the ticket opened).
        call_id: comment::call_id_marker(&summary.call_id),
        ticket_id,
        deferred,
        body,
        public: false,
        created_at: SystemTime::now(),
    })
}

/// Writes the call's outbox entry (durably, before returning), if it has one.
pub async fn record(summary: &CallSummary, config: &ZendeskConfig, outbox: Option<&Outbox>) {
    let Some(entry) = entry(summary, config) else { return };
    let Some(outbox) = outbox else { return };
    let ticket = entry.ticket_id;
    let deferred = entry.deferred.as_ref().map(|d| match d {
        Deferred::OpenTicket(_) => "open a ticket",
        Deferred::CallersTicket { .. } => "find the caller's ticket",
    });
    match outbox.enqueue(entry).await {
        Ok(_) => info!(ticket, deferred, "post-call comment queued"),
        Err(err) => warn!(%err, ticket, "post-call comment could not be queued"),
    }
}
