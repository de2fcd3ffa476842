//! Durable queue of post-call comments (SQLite).
//!
//! At hang-up the call enqueues its comment ([`Outbox::enqueue`]); once that returns `Ok`
//! the entry is on disk and survives a crash of the process. A background sender
//! ([`run_sender`]) posts entries through a [`CommentSink`] (the Zendesk client), in order
//! per ticket, honouring rate limits and backing off with jitter. An entry is done only
//! when the sink said `Ok`. After an ambiguous failure, or when the process died while an
//! attempt was in flight, the sender first asks the sink whether the ticket already has a
//! comment containing the entry's call id, so a comment is never posted twice. When the
//! call did not know the ticket ([`Deferred`]), the sender looks up the caller's latest
//! unsolved ticket itself (Zendesk was down during the call), or opens a ticket with the
//! call id as its external id, checked for the same way. Entries
//! that fail for good, or too often, move to a dead-letter table, from which
//! [`Outbox::replay_dead_letters`] (or `zendesk-ivr outbox replay`) brings them back.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub mod cli;
mod group_commit;
mod schedule;
mod sender;
mod store;

pub use schedule::{Delivered, Disposition, Head, Plan, SendPolicy, UnixMillis, dispose, plan};
pub use sender::{
    METRIC_DEAD_LETTERED, METRIC_DEAD_LETTERS, METRIC_DEPTH, METRIC_FAILED, METRIC_OLDEST_AGE,
    METRIC_POSTED, publish_gauges, run_sender,
};

use serde::{Deserialize, Serialize};

use crate::config::OutboxConfig;
use crate::zendesk::model::NewRequester;
use group_commit::EnqueueGroup;
use store::Store;

/// The largest comment body accepted (Zendesk caps a comment at 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest call id accepted.
pub const MAX_CALL_ID_BYTES: usize = 256;

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
///
/// The futures are `Send` so that the sender can run on any runtime thread; an
/// implementation may still be written with `async fn`.
pub trait CommentSink {
    /// Adds a private (or public) comment to a ticket. `Ok` only on a 2xx.
    fn post_comment(
        &self,
        ticket_id: u64,
        body: &str,
        public: bool,
    ) -> impl Future<Output = Result<(), PostError>> + Send;
    /// Whether any comment of the ticket contains `marker` (used to avoid duplicates
    /// after an ambiguous failure).
    fn has_comment_containing(
        &self,
        ticket_id: u64,
        marker: &str,
    ) -> impl Future<Output = Result<bool, PostError>> + Send;
    /// Opens `ticket` with `body` as its first comment and `external_id` to find it by.
    /// `Ok` only on a 2xx.
    fn open_ticket(
        &self,
        ticket: &TicketToOpen,
        body: &str,
        public: bool,
        external_id: &str,
    ) -> impl Future<Output = Result<(), PostError>> + Send;
    /// Whether a ticket with this external id exists (the duplicate check for opening).
    fn has_ticket_with_external_id(
        &self,
        external_id: &str,
    ) -> impl Future<Output = Result<bool, PostError>> + Send;
    /// The latest unsolved ticket of the caller at `phone` (E.164), as the data dip finds
    /// it, for a comment whose call could not ask Zendesk.
    fn find_callers_ticket(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<CallersTicket, PostError>> + Send;
}

/// Why the outbox could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot open the outbox database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("outbox database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("outbox database has schema version {found}; this build knows up to {supported}")]
    NewerSchema { found: i64, supported: i64 },
    #[error("invalid outbox entry: {0}")]
    InvalidEntry(String),
    #[error("outbox database content is inconsistent: {0}")]
    Corrupt(String),
    #[error("outbox worker failed: {0}")]
    Worker(String),
    #[error("another sender is already running on the outbox {0}")]
    SenderRunning(PathBuf),
    #[error("cannot lock the outbox {path} for sending: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
}

/// Where an entry's comment goes when the call did not know the caller's ticket, decided
/// when it is sent. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deferred {
    /// Open this ticket, with the comment as its first (a caller with no ticket, and
    /// `zendesk.create_ticket_for_unknown`).
    OpenTicket(TicketToOpen),
    /// Zendesk could not be asked during the call: look up the latest unsolved ticket of
    /// the caller at `phone` (E.164) when sending, and comment there. With no such ticket,
    /// open one if `open_if_none`, else the entry fails for good (a dead letter). What the
    /// lookup finds is stored before anything is posted: retries, and their duplicate
    /// checks, aim at the same ticket, in that ticket's queue.
    CallersTicket { phone: String, open_if_none: bool },
}

/// What [`CommentSink::find_callers_ticket`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallersTicket {
    /// The caller's latest unsolved ticket.
    Ticket(u64),
    /// The caller is this user, with no unsolved ticket.
    UserWithoutTicket(u64),
    /// No user has the number.
    Unknown,
}

/// A ticket to open for a caller who has none, with the entry's body as its first
/// comment (`zendesk.create_ticket_for_unknown`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketToOpen {
    pub subject: String,
    /// The caller's user, when Zendesk knows them...
    #[serde(default)]
    pub requester_id: Option<u64>,
    /// ...else the requester Zendesk creates (or matches) from these details.
    #[serde(default)]
    pub requester: Option<NewRequester>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl TicketToOpen {
    /// The ticket that puts a call on record: for `requester_id` when Zendesk knows the
    /// caller, else for a requester Zendesk creates from `phone`.
    pub fn for_caller(requester_id: Option<u64>, phone: Option<String>) -> TicketToOpen {
        let requester = match requester_id {
            Some(_) => None,
            None => {
                let name = phone.clone().unwrap_or_else(|| "Unknown caller".into());
                Some(NewRequester { name, phone })
            }
        };
        TicketToOpen {
            subject: "Phone call".into(),
            requester_id,
            requester,
            tags: vec!["zendesk-ivr".into(), "phone-call".into()],
        }
    }
}

/// A comment to post after a call, on a known ticket or on one found or opened later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unique per call; also the marker searched for in the ticket's comments (and the
    /// external id of a ticket it opens), so the body must contain it verbatim.
    pub call_id: String,
    /// The ticket to comment on; 0 when `deferred` decides it.
    pub ticket_id: u64,
    /// Where the comment goes when the call did not know the ticket.
    pub deferred: Option<Deferred>,
    /// The rendered comment.
    pub body: String,
    /// Public reply or (the default in Zendesk terms here) internal note.
    pub public: bool,
    /// When the call ended.
    pub created_at: SystemTime,
}

impl Entry {
    /// Checks the bounds and that the body carries the call-id marker.
    pub fn validate(&self) -> Result<(), OutboxError> {
        let invalid = |reason: String| Err(OutboxError::InvalidEntry(reason));
        if self.call_id.is_empty() || self.call_id.len() > MAX_CALL_ID_BYTES {
            return invalid(format!("call id must be 1 to {MAX_CALL_ID_BYTES} bytes"));
        }
        if self.call_id.chars().any(char::is_control) {
            return invalid("call id contains control characters".into());
        }
        match &self.deferred {
            Some(_) if self.ticket_id != 0 => {
                return invalid("an entry whose ticket is decided later has no ticket id".into());
            }
            Some(Deferred::OpenTicket(open))
                if open.requester_id.is_none() && open.requester.is_none() =>
            {
                return invalid("a ticket to open needs a requester".into());
            }
            Some(Deferred::CallersTicket { phone, .. })
                if phone.is_empty() || phone.len() > 32 || phone.chars().any(char::is_control) =>
            {
                return invalid("the caller's number must be 1 to 32 printable bytes".into());
            }
            Some(_) => {}
            None if self.ticket_id == 0 || i64::try_from(self.ticket_id).is_err() => {
                return invalid(format!("ticket id {} is out of range", self.ticket_id));
            }
            None => {}
        }
        if self.body.len() > MAX_BODY_BYTES {
            return invalid(format!("body is {} bytes, over {MAX_BODY_BYTES}", self.body.len()));
        }
        if !self.body.contains(&self.call_id) {
            return invalid("body does not contain the call id marker".into());
        }
        Ok(())
    }
}

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    Pending,
    Delivered,
    DeadLetter,
}

/// An entry as stored, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub call_id: String,
    /// 0 for an entry whose ticket is decided when it is sent.
    pub ticket_id: u64,
    pub deferred: Option<Deferred>,
    pub body: String,
    pub public: bool,
    pub created_at: SystemTime,
    pub enqueued_at: SystemTime,
    /// Attempts made (reset to zero by a replay).
    pub attempts: u32,
    /// The next attempt checks the ticket for the comment first.
    pub check_first: bool,
    pub last_error: Option<String>,
    /// When a pending entry is due.
    pub next_attempt_at: Option<SystemTime>,
    pub state: EntryState,
}

/// Counts for `/metrics` and `zendesk-ivr outbox stats`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Entries waiting to be delivered (including those in flight).
    pub pending: u64,
    /// Pending entries with an attempt started and no result recorded yet.
    pub in_flight: u64,
    /// Delivered entries still remembered.
    pub delivered: u64,
    pub dead_letters: u64,
    /// How long the oldest pending entry has waited since it was enqueued.
    pub oldest_pending_age: Option<Duration>,
}

/// Which dead letters to replay: every field set must match; all `None` means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub ticket_id: Option<u64>,
    pub call_id: Option<String>,
}

/// The durable outbox. Cheap to clone; clones share one database connection.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    /// Fair (tokio's mutex serves lockers in the order they asked, here from blocking
    /// threads), so that a burst of enqueues cannot keep the sender out (see
    /// `group_commit`).
    store: tokio::sync::Mutex<Store>,
    /// Enqueues waiting for the next group commit.
    enqueues: EnqueueGroup,
    policy: SendPolicy,
    path: PathBuf,
    /// Wakes the sender when an entry is enqueued or replayed.
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn now_millis() -> UnixMillis {
    store::millis(SystemTime::now())
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path` with the default send policy.
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Outbox, OutboxError> {
        Outbox::open_with_policy(path, SendPolicy::default())
    }

    /// Opens the outbox at `config.path` with the policy from the config.
    pub fn open_config(config: &OutboxConfig) -> Result<Outbox, OutboxError> {
        Outbox::open_with_policy(&config.path, SendPolicy::from_config(config))
    }

    pub fn open_with_policy(
        path: impl AsRef<Path>,
        policy: SendPolicy,
    ) -> Result<Outbox, OutboxError> {
        let path = path.as_ref();
        let store = Store::open(path)?;
        Ok(Outbox {
            inner: Arc::new(Inner {
                store: tokio::sync::Mutex::new(store),
                enqueues: EnqueueGroup::default(),
                policy,
                path: path.to_path_buf(),
                wake: tokio::sync::Notify::new(),
            }),
        })
    }

    pub fn policy(&self) -> &SendPolicy {
        &self.inner.policy
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a blocking store operation on tokio's blocking pool.
    async fn with_store<T, F>(&self, operation: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, OutboxError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut store = inner.store.blocking_lock();
            operation(&mut store)
        })
        .await
        .map_err(|err| OutboxError::Worker(err.to_string()))?
    }

    fn wake_sender(&self) {
        self.inner.wake.notify_one();
    }

    async fn sender_woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Stores a comment durably (on disk when this returns `Ok`). Enqueueing a call id
    /// already known (pending, delivered or dead-lettered) changes nothing and returns
    /// `Ok(false)`. Entries enqueued while the store is busy are committed together, in
    /// the order they arrived, in one transaction (see `group_commit`).
    pub async fn enqueue(&self, entry: Entry) -> Result<bool, OutboxError> {
        entry.validate()?;
        let (durable, committer) = self.inner.enqueues.join(entry, now_millis());
        if let Some(committer) = committer {
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || committer.run(&inner.store));
        }
        let added = durable.await.map_err(|_| {
            OutboxError::Worker("the enqueue was dropped before it was committed".into())
        })??;
        if added {
            self.wake_sender();
        }
        Ok(added)
    }

    /// Moves matching dead letters back to pending, due now; returns how many.
    pub async fn replay_dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<usize, OutboxError> {
        let now = now_millis();
        let moved = self.with_store(move |store| store.replay(&filter, now)).await?;
        if moved > 0 {
            self.wake_sender();
        }
        Ok(moved)
    }

    pub async fn stats(&self) -> Result<Stats, OutboxError> {
        let now = now_millis();
        self.with_store(move |store| store.stats(now)).await
    }

    /// Up to `limit` entries in `state`, oldest first.
    pub async fn list(
        &self,
        state: EntryState,
        limit: usize,
    ) -> Result<Vec<EntryInfo>, OutboxError> {
        self.with_store(move |store| store.list(state, limit)).await
    }

    /// The entry with this call id, wherever it is.
    pub async fn find(&self, call_id: &str) -> Result<Option<EntryInfo>, OutboxError> {
        let call_id = call_id.to_owned();
        self.with_store(move |store| store.find(&call_id)).await
    }
}

#[cfg(test)]
mod batching_tests;
#[cfg(test)]
mod refused_record_tests;
#[cfg(test)]
mod shutdown_tests;
#[cfg(test)]
mod test_sink;
#[cfg(test)]
mod tests;
