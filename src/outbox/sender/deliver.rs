//! One attempt at an entry: the duplicate check when asked, then the post (or the ticket
//! opened), or the lookup of an entry whose ticket is decided when it is sent.

use crate::outbox::schedule::Delivered;
use crate::outbox::store::Attempt;
use crate::outbox::{CallersTicket, CommentSink, Deferred, PostError, TicketToOpen};

/// What an attempt achieved when it did not fail.
#[derive(Debug)]
pub(super) enum Step {
    /// The comment is on Zendesk (posted now, or found there).
    Delivered(Delivered),
    /// The caller's ticket was looked up: the entry now goes there (see [`Resolution`]).
    Resolved(Resolution),
}

/// Where a [`Deferred::CallersTicket`] entry's comment goes, once looked up. It is stored
/// before anything is posted, so that every later attempt (and its duplicate check) aims
/// at the same place, and the post waits in that ticket's queue like any comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolution {
    Ticket(u64),
    Open(TicketToOpen),
}

/// One attempt: check Zendesk first if asked (for the comment on the ticket, or for a
/// ticket opened with the call id as external id), then post or open. An entry whose
/// call could not ask Zendesk is first only looked up.
pub(super) async fn deliver<S: CommentSink>(
    sink: &S,
    attempt: &Attempt,
) -> Result<Step, PostError> {
    let delivered = match &attempt.deferred {
        None => comment_on(sink, attempt, attempt.ticket_id).await?,
        Some(Deferred::OpenTicket(open)) => open_with(sink, attempt, open).await?,
        Some(Deferred::CallersTicket { phone, open_if_none }) => {
            let resolution = match sink.find_callers_ticket(phone).await? {
                CallersTicket::Ticket(ticket_id) => {
                    Resolution::Ticket(valid_id("the caller's ticket", ticket_id)?)
                }
                CallersTicket::UserWithoutTicket(user) if *open_if_none => {
                    let user = valid_id("the caller's user", user)?;
                    Resolution::Open(TicketToOpen::for_caller(Some(user), None))
                }
                CallersTicket::Unknown if *open_if_none => {
                    Resolution::Open(TicketToOpen::for_caller(None, Some(phone.clone())))
                }
                _ => {
                    return Err(PostError::Permanent(
                        "the caller has no unsolved ticket to comment on".into(),
                    ));
                }
            };
            return Ok(Step::Resolved(resolution));
        }
    };
    Ok(Step::Delivered(delivered))
}

/// `id` if it is one Zendesk can have given (positive, and within a signed 64-bit
/// integer, as the outbox stores it). An id out of that range came from a broken answer:
/// looking again would not help, so the entry fails for good (a dead letter that says
/// why) before the id is stored.
fn valid_id(what: &str, id: u64) -> Result<u64, PostError> {
    if id == 0 || i64::try_from(id).is_err() {
        return Err(PostError::Permanent(format!("Zendesk named {what} {id}, not a valid id")));
    }
    Ok(id)
}

async fn comment_on<S: CommentSink>(
    sink: &S,
    attempt: &Attempt,
    ticket_id: u64,
) -> Result<Delivered, PostError> {
    if attempt.check_first && sink.has_comment_containing(ticket_id, &attempt.call_id).await? {
        return Ok(Delivered::AlreadyPresent);
    }
    sink.post_comment(ticket_id, &attempt.body, attempt.public).await?;
    Ok(Delivered::Posted)
}

async fn open_with<S: CommentSink>(
    sink: &S,
    attempt: &Attempt,
    open: &TicketToOpen,
) -> Result<Delivered, PostError> {
    let marker = &attempt.call_id;
    if attempt.check_first && sink.has_ticket_with_external_id(marker).await? {
        return Ok(Delivered::AlreadyPresent);
    }
    sink.open_ticket(open, &attempt.body, attempt.public, marker).await?;
    Ok(Delivered::Posted)
}
