//! After every call: the comment that summarises it on the caller's ticket.
//!
//! The comment is rendered from the call summary and written to the durable outbox before
//! the call counts as finished; the outbox's sender posts it when Zendesk is reachable.
//! Nothing here waits on Zendesk.

use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::call::CallSummary;
use crate::config::ZendeskConfig;
use crate::outbox::{Entry, Outbox};
use crate::sip::ani::CallerId;
use crate::sip::dialog::EndReason;
use crate::zendesk::client::{DipOutcome, ZendeskClient};
use crate::zendesk::comment::{self, CallOutcome};
use crate::zendesk::model::{NewComment, NewRequester, NewTicket};

/// How long creating a ticket for an unknown caller may take, after the call.
const CREATE_TICKET_TIMEOUT: Duration = Duration::from_secs(15);

/// What the comment says happened.
pub fn outcome(summary: &CallSummary) -> CallOutcome {
    match &summary.transfer {
        Some(t) if t.succeeded() => return CallOutcome::Transferred { queue: t.target.clone() },
        // The agent or queue could not take the call: say so, whatever ended it after.
        Some(t) => {
            return CallOutcome::Error {
                reason: format!("transfer to {} failed ({:?})", t.target, t.result),
            };
        }
        None => {}
    }
    match summary.end_reason {
        _ if !summary.answered => CallOutcome::Abandoned,
        Some(EndReason::RemoteBye | EndReason::Cancelled) => CallOutcome::Abandoned,
        Some(EndReason::LocalBye) => CallOutcome::DisconnectedByChoice,
        Some(other) => CallOutcome::Error { reason: format!("{other:?}") },
        None => CallOutcome::Error { reason: "the call ended unexpectedly".into() },
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
    comment::CallSummary {
        call_id: summary.call_id.clone(),
        caller,
        started_at,
        path: summary.digits.chars().map(String::from).collect(),
        outcome: outcome(summary),
        duration: summary.duration,
        ivr_duration: summary.duration,
    }
}

/// The ticket the comment belongs on: the caller's latest unsolved ticket.
pub fn ticket_id(summary: &CallSummary) -> Option<u64> {
    match &summary.dip {
        Some(DipOutcome::Found { ticket: Some(ticket), .. }) => Some(ticket.id),
        _ => None,
    }
}

/// The outbox entry for a call, if it has a ticket to go on.
pub fn entry(summary: &CallSummary, template: &str) -> Option<Entry> {
    let ticket_id = ticket_id(summary)?;
    let body = comment::render(template, &comment_summary(summary));
    Some(Entry {
        // The marker is what the body carries verbatim and what the duplicate check
        // searches for.
        call_id: comment::call_id_marker(&summary.call_id),
        ticket_id,
        body,
        public: false,
        created_at: SystemTime::now(),
    })
}

/// Writes the call's comment to the outbox (durably, before returning), or, for a caller
/// with no ticket and `zendesk.create_ticket_for_unknown`, opens a ticket in the background.
pub async fn record(
    summary: &CallSummary,
    config: &ZendeskConfig,
    outbox: Option<&Outbox>,
    client: Option<&ZendeskClient>,
) {
    if let Some(entry) = entry(summary, &config.comment_template) {
        let Some(outbox) = outbox else { return };
        let ticket = entry.ticket_id;
        match outbox.enqueue(entry).await {
            Ok(_) => info!(ticket, "post-call comment queued"),
            Err(err) => warn!(%err, ticket, "post-call comment could not be queued"),
        }
        return;
    }
    let unknown = matches!(
        summary.dip,
        Some(DipOutcome::UnknownCaller | DipOutcome::Found { ticket: None, .. })
    );
    if !(config.create_ticket_for_unknown && unknown) {
        return;
    }
    let Some(client) = client.cloned() else { return };
    let body = comment::render(&config.comment_template, &comment_summary(summary));
    let (requester_id, requester) = match &summary.dip {
        Some(DipOutcome::Found { user, .. }) => (Some(user.id), None),
        _ => {
            let phone = match &summary.ani.caller {
                CallerId::Number(n) => Some(n.e164.clone()),
                _ => None,
            };
            let name = phone.clone().unwrap_or_else(|| "Unknown caller".into());
            (None, Some(NewRequester { name, phone }))
        }
    };
    let ticket = NewTicket {
        subject: "Phone call".into(),
        comment: NewComment { body, public: false },
        requester_id,
        requester,
        tags: vec!["zendesk-ivr".into(), "phone-call".into()],
        priority: None,
    };
    // Best effort, after the call: a ticket create is not retried through the outbox,
    // because a retry after an ambiguous failure could open a second ticket.
    tokio::spawn(async move {
        match tokio::time::timeout(CREATE_TICKET_TIMEOUT, client.create_ticket(ticket)).await {
            Ok(Ok(ticket)) => info!(ticket = ticket.id, "ticket opened for an unknown caller"),
            Ok(Err(err)) => warn!(%err, "could not open a ticket for an unknown caller"),
            Err(_) => warn!("opening a ticket for an unknown caller timed out"),
        }
    });
}
