//! Durable queue of post-call comments (SQLite).

use std::time::Duration;

/// Why posting a comment failed, as the outbox needs to know it.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// 429: wait this long before the next attempt.
    #[error("rate limited, retry after {0:?}")]
    RetryAfter(Duration),
    /// The request surely did not take effect (connect error, 5xx before send completed).
    #[error("transient failure: {0}")]
    Transient(String),
    /// The request may have taken effect (timeout after the body was sent, connection
    /// dropped before the response). Check the ticket before sending again.
    #[error("ambiguous failure: {0}")]
    Ambiguous(String),
    /// Retrying will not help (401, 403, 404, 422): dead-letter at once.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Where comments go: implemented by the Zendesk client, and by fakes in tests.
#[allow(async_fn_in_trait)]
pub trait CommentSink {
    /// Adds a private (or public) comment to a ticket. `Ok` only on a 2xx.
    async fn post_comment(&self, ticket_id: u64, body: &str, public: bool)
    -> Result<(), PostError>;
    /// Whether any comment of the ticket contains `marker` (used to avoid duplicates
    /// after an ambiguous failure).
    async fn has_comment_containing(&self, ticket_id: u64, marker: &str)
    -> Result<bool, PostError>;
}
