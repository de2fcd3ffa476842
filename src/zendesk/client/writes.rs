//! Post-call writes: comments (for the outbox) and tickets for unknown callers. One attempt
//! each; the outbox owns retries and duplicate checks.

use reqwest::Method;

use super::{MAX_COMMENT_PAGES, WRITE_TIMEOUT, ZendeskClient};
use tokio::time::Instant as TokioInstant;

use super::DipOutcome;
use crate::outbox::{CallersTicket, CommentSink, PostError, TicketToOpen};
use crate::phone;
use crate::zendesk::model::{
    CommentsResponse, NewComment, NewTicket, Ticket, TicketCreateRequest, TicketResponse,
    TicketUpdate, TicketUpdateRequest, TicketsResponse, User,
};

impl ZendeskClient {
    /// Adds a comment to a ticket (`PUT /api/v2/tickets/{id}.json`); private unless `public`.
    /// One attempt: the outbox owns retries.
    pub async fn add_comment(
        &self,
        ticket_id: u64,
        body: &str,
        public: bool,
    ) -> Result<(), PostError> {
        let request = TicketUpdateRequest {
            ticket: TicketUpdate { comment: NewComment { body: body.to_string(), public } },
        };
        let path = format!("/api/v2/tickets/{ticket_id}.json");
        self.send(Method::PUT, &path, &[], Some(&request), Some(WRITE_TIMEOUT)).await?;
        Ok(())
    }

    /// Creates a ticket (`POST /api/v2/tickets.json`), e.g. for a caller with no user or no
    /// open ticket (`zendesk.create_ticket_for_unknown`). One attempt.
    pub async fn create_ticket(&self, ticket: NewTicket) -> Result<Ticket, PostError> {
        let request = TicketCreateRequest { ticket };
        let body = self
            .send(Method::POST, "/api/v2/tickets.json", &[], Some(&request), Some(WRITE_TIMEOUT))
            .await?;
        let created: TicketResponse = serde_json::from_slice(&body)
            .map_err(|e| PostError::Ambiguous(format!("malformed JSON from Zendesk: {e}")))?;
        Ok(created.ticket)
    }

    /// Who the credentials belong to (`GET /api/v2/users/me.json`), for
    /// `zendesk-ivr check`. Zendesk answers an unauthenticated request with an anonymous
    /// user (no id), which is reported as refused credentials.
    pub async fn current_user(&self) -> Result<User, PostError> {
        let body = self
            .send(Method::GET, "/api/v2/users/me.json", &[], None::<&()>, Some(WRITE_TIMEOUT))
            .await?;
        let me: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| PostError::Transient(format!("malformed JSON from Zendesk: {e}")))?;
        match me.get("user").filter(|u| u.get("id").is_some_and(|id| !id.is_null())) {
            Some(user) => serde_json::from_value(user.clone())
                .map_err(|e| PostError::Transient(format!("unexpected user JSON: {e}"))),
            None => Err(PostError::Permanent("Zendesk did not accept the credentials".into())),
        }
    }

    /// Whether a ticket with this `external_id` exists (`GET /api/v2/tickets.json
    /// ?external_id=`): how a retried ticket creation finds that it already happened.
    pub async fn has_ticket_with_external_id(&self, external_id: &str) -> Result<bool, PostError> {
        let query = [("external_id", external_id)];
        let body = self
            .send(Method::GET, "/api/v2/tickets.json", &query, None::<&()>, Some(WRITE_TIMEOUT))
            .await?;
        let page: TicketsResponse = serde_json::from_slice(&body)
            .map_err(|e| PostError::Transient(format!("malformed JSON from Zendesk: {e}")))?;
        Ok(page.tickets.iter().any(|t| t.external_id.as_deref() == Some(external_id)))
    }

    /// Whether any comment of the ticket contains `marker`, newest pages first.
    pub async fn ticket_has_comment_containing(
        &self,
        ticket_id: u64,
        marker: &str,
    ) -> Result<bool, PostError> {
        let mut url = format!("{}/api/v2/tickets/{ticket_id}/comments.json", self.inner.base);
        let mut query: &[(&str, &str)] = &[("sort_order", "desc"), ("per_page", "100")];
        for _ in 0..MAX_COMMENT_PAGES {
            let body =
                self.send_url(Method::GET, &url, query, None::<&()>, Some(WRITE_TIMEOUT)).await?;
            let page: CommentsResponse = serde_json::from_slice(&body)
                .map_err(|e| PostError::Transient(format!("malformed JSON from Zendesk: {e}")))?;
            if page.comments.iter().any(|c| c.body.contains(marker)) {
                return Ok(true);
            }
            // Follow next_page only on our own Zendesk: the credentials go with it.
            match page.next_page {
                Some(next) if next.starts_with(&format!("{}/", self.inner.base)) => {
                    url = next;
                    query = &[];
                }
                _ => return Ok(false),
            }
        }
        Err(PostError::Transient(format!(
            "ticket {ticket_id} has more than {MAX_COMMENT_PAGES} pages of comments"
        )))
    }
}

impl CommentSink for ZendeskClient {
    async fn post_comment(
        &self,
        ticket_id: u64,
        body: &str,
        public: bool,
    ) -> Result<(), PostError> {
        self.add_comment(ticket_id, body, public).await
    }

    async fn has_comment_containing(
        &self,
        ticket_id: u64,
        marker: &str,
    ) -> Result<bool, PostError> {
        self.ticket_has_comment_containing(ticket_id, marker).await
    }

    async fn open_ticket(
        &self,
        ticket: &TicketToOpen,
        body: &str,
        public: bool,
        external_id: &str,
    ) -> Result<(), PostError> {
        let new = NewTicket {
            subject: ticket.subject.clone(),
            comment: NewComment { body: body.to_string(), public },
            requester_id: ticket.requester_id,
            requester: ticket.requester.clone(),
            tags: ticket.tags.clone(),
            priority: None,
            external_id: Some(external_id.to_string()),
        };
        self.create_ticket(new).await.map(drop)
    }

    async fn has_ticket_with_external_id(&self, external_id: &str) -> Result<bool, PostError> {
        ZendeskClient::has_ticket_with_external_id(self, external_id).await
    }

    /// The data dip's searches, for the outbox: no cache and no breaker (the outbox has its
    /// own backoff), bounded by the write timeout; read-only, so every failure is safe to
    /// retry.
    async fn find_callers_ticket(&self, phone: &str) -> Result<CallersTicket, PostError> {
        let number = phone::normalise(phone, "US")
            .map_err(|e| PostError::Permanent(format!("caller number {phone:?}: {e}")))?;
        let deadline = TokioInstant::now() + WRITE_TIMEOUT;
        let outcome = tokio::time::timeout_at(deadline, self.lookup(&number, deadline))
            .await
            .map_err(|_| PostError::Transient(format!("no answer within {WRITE_TIMEOUT:?}")))??;
        Ok(match outcome {
            DipOutcome::Found { ticket: Some(ticket), .. } => CallersTicket::Ticket(ticket.id),
            DipOutcome::Found { user, ticket: None, .. } => {
                CallersTicket::UserWithoutTicket(user.id)
            }
            _ => CallersTicket::Unknown,
        })
    }
}
