//! The background sender: a thin loop around [`plan`](super::plan) and
//! [`dispose`](super::dispose) that touches the store, the clock and the sink.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use super::schedule::{Delivered, Disposition, dispose, plan};
use super::store::{Attempt, millis};
use super::{
    CallersTicket, CommentSink, Deferred, Outbox, OutboxError, PostError, Stats, TicketToOpen,
    now_millis,
};

/// How many ticket heads are looked at per round.
const HEADS_PER_ROUND: usize = 1000;
/// The sender looks at the database at least this often (another process may have
/// replayed dead letters), and waits this long after a database error.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How long shutdown waits for attempts in flight to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the gauges are refreshed from the database.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
/// How often delivered entries past `keep_done` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub const METRIC_DEPTH: &str = "zendesk_ivr_outbox_depth";
pub const METRIC_OLDEST_AGE: &str = "zendesk_ivr_outbox_oldest_pending_age_seconds";
pub const METRIC_DEAD_LETTERS: &str = "zendesk_ivr_outbox_dead_letters";
pub const METRIC_POSTED: &str = "zendesk_ivr_outbox_posted_total";
pub const METRIC_FAILED: &str = "zendesk_ivr_outbox_failed_total";
pub const METRIC_DEAD_LETTERED: &str = "zendesk_ivr_outbox_dead_lettered_total";

/// Sets the outbox gauges from `stats`.
pub fn publish_gauges(stats: &Stats) {
    metrics::gauge!(METRIC_DEPTH).set(stats.pending as f64);
    metrics::gauge!(METRIC_OLDEST_AGE)
        .set(stats.oldest_pending_age.map_or(0.0, |age| age.as_secs_f64()));
    metrics::gauge!(METRIC_DEAD_LETTERS).set(stats.dead_letters as f64);
}

fn failure_kind(error: &PostError) -> &'static str {
    match error {
        PostError::RetryAfter(_) => "rate_limited",
        PostError::Transient(_) => "transient",
        PostError::Ambiguous(_) => "ambiguous",
        PostError::Permanent(_) => "permanent",
    }
}

/// What an attempt achieved when it did not fail.
#[derive(Debug)]
enum Step {
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
async fn deliver<S: CommentSink>(sink: &S, attempt: &Attempt) -> Result<Step, PostError> {
    let delivered = match &attempt.deferred {
        None => comment_on(sink, attempt, attempt.ticket_id).await?,
        Some(Deferred::OpenTicket(open)) => open_with(sink, attempt, open).await?,
        Some(Deferred::CallersTicket { phone, open_if_none }) => {
            let resolution = match sink.find_callers_ticket(phone).await? {
                CallersTicket::Ticket(ticket_id) => Resolution::Ticket(ticket_id),
                CallersTicket::UserWithoutTicket(user) if *open_if_none => {
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

struct InFlight {
    attempt: Attempt,
}

/// Posts the outbox's entries through `sink` until `shutdown` completes.
///
/// One sender runs per outbox file: a second one returns [`OutboxError::SenderRunning`]
/// (an advisory lock on `<path>.sender-lock`, released by the OS if the process dies).
/// On shutdown it waits briefly for attempts in flight;
/// an attempt cut short is checked for (and not blindly re-sent) by the next sender.
/// Returns an error only if the database cannot be read when starting.
pub async fn run_sender<S>(
    outbox: Outbox,
    sink: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), OutboxError>
where
    S: CommentSink + Send + Sync + 'static,
{
    let _lock = lock_for_sending(outbox.path())?;
    let sink = Arc::new(sink);
    let mut tasks: JoinSet<Result<Step, PostError>> = JoinSet::new();
    let mut in_flight: HashMap<Id, InFlight> = HashMap::new();
    let mut paused_until: Option<i64> = None;
    let mut next_prune = Instant::now();
    let mut next_gauges = Instant::now();
    publish_gauges(&outbox.stats().await?);
    tokio::pin!(shutdown);

    loop {
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            prune(&outbox).await;
        }
        let wait = match start_due(&outbox, &sink, &mut tasks, &mut in_flight, paused_until).await {
            Ok(wait) => wait,
            Err(err) => {
                tracing::error!(error = %err, "outbox sender cannot read the database");
                IDLE_POLL
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                if let Some(pause) = finish(&outbox, &mut in_flight, joined).await {
                    paused_until = Some(paused_until.map_or(pause, |p| p.max(pause)));
                }
            }
            () = outbox.sender_woken() => {}
            () = tokio::time::sleep(wait) => {}
        }
        if paused_until.is_some_and(|until| until <= now_millis()) {
            paused_until = None;
        }
        if Instant::now() >= next_gauges {
            next_gauges = Instant::now() + GAUGES_EVERY;
            if let Ok(stats) = outbox.stats().await {
                publish_gauges(&stats);
            }
        }
    }

    let grace = Instant::now() + SHUTDOWN_GRACE;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(grace, tasks.join_next_with_id()).await {
            Ok(Some(joined)) => {
                finish(&outbox, &mut in_flight, joined).await;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    in_flight = tasks.len(),
                    "outbox shutdown: abandoning attempts in flight; they are checked on restart"
                );
                tasks.abort_all();
                break;
            }
        }
    }
    Ok(())
}

/// Takes the sender's advisory lock, held until the returned file is dropped.
fn lock_for_sending(path: &Path) -> Result<File, OutboxError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".sender-lock");
    let lock_path = PathBuf::from(lock_path);
    let lock_error = |source| OutboxError::Lock { path: lock_path.clone(), source };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(OutboxError::SenderRunning(path.to_path_buf())),
        Err(TryLockError::Error(err)) => Err(lock_error(err)),
    }
}

/// Starts what is due; returns how long to sleep before looking again.
async fn start_due<S>(
    outbox: &Outbox,
    sink: &Arc<S>,
    tasks: &mut JoinSet<Result<Step, PostError>>,
    in_flight: &mut HashMap<Id, InFlight>,
    paused_until: Option<i64>,
) -> Result<Duration, OutboxError>
where
    S: CommentSink + Send + Sync + 'static,
{
    let policy = outbox.policy();
    let heads = outbox.with_store(|store| store.heads(HEADS_PER_ROUND)).await?;
    let busy: HashSet<i64> = in_flight.values().map(|f| f.attempt.queue()).collect();
    let now = now_millis();
    let free = policy.max_in_flight.saturating_sub(in_flight.len());
    let plan = plan(now, &heads, &busy, paused_until, free);
    for seq in plan.start {
        let started = outbox.with_store(move |store| store.start_attempt(seq, now)).await?;
        let Some(attempt) = started else { continue };
        if attempt.interrupted {
            tracing::info!(
                call_id = %attempt.call_id,
                ticket_id = attempt.ticket_id,
                "outbox entry was in flight when the process stopped; checking the ticket first"
            );
        }
        let sink = Arc::clone(sink);
        let timeout = policy.attempt_timeout;
        let task_attempt = attempt.clone();
        let handle = tasks.spawn(async move {
            match tokio::time::timeout(timeout, deliver(sink.as_ref(), &task_attempt)).await {
                Ok(result) => result,
                Err(_) => Err(PostError::Ambiguous(format!("no answer within {timeout:?}"))),
            }
        });
        in_flight.insert(handle.id(), InFlight { attempt });
    }
    let wait = plan
        .wake_at
        .map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(now_millis())).unwrap_or(0))
        })
        .unwrap_or(IDLE_POLL);
    Ok(wait.min(IDLE_POLL))
}

/// Records a finished attempt. Returns a time until which all sending pauses, if any.
async fn finish(
    outbox: &Outbox,
    in_flight: &mut HashMap<Id, InFlight>,
    joined: Result<(Id, Result<Step, PostError>), tokio::task::JoinError>,
) -> Option<i64> {
    let (id, outcome) = match joined {
        Ok((id, outcome)) => (id, outcome),
        Err(err) => {
            let id = err.id();
            (id, Err(PostError::Ambiguous(format!("delivery task failed: {err}"))))
        }
    };
    let Some(InFlight { attempt }) = in_flight.remove(&id) else {
        tracing::error!("outbox: result of an unknown attempt");
        return None;
    };
    let now = now_millis();
    let outcome = match outcome {
        Ok(Step::Resolved(resolution)) => {
            tracing::info!(call_id = %attempt.call_id, ?resolution, "outbox found where the comment goes");
            let seq = attempt.seq;
            let stored = outbox.with_store(move |store| store.resolve(seq, &resolution, now)).await;
            if let Err(err) = stored {
                tracing::error!(call_id = %attempt.call_id, error = %err, "outbox cannot record a lookup");
            }
            return None;
        }
        Ok(Step::Delivered(delivered)) => Ok(delivered),
        Err(error) => Err(error),
    };
    let disposition = dispose(
        outbox.policy(),
        now,
        attempt.attempts,
        attempt.check_first,
        &outcome,
        rand::random::<f64>(),
    );
    let kind = outcome.as_ref().err().map(failure_kind);
    match (&outcome, &disposition) {
        (Ok(delivered), _) => {
            metrics::counter!(METRIC_POSTED).increment(1);
            tracing::info!(
                call_id = %attempt.call_id,
                ticket_id = attempt.ticket_id,
                attempts = attempt.attempts,
                already_present = *delivered == Delivered::AlreadyPresent,
                "outbox comment delivered"
            );
        }
        (Err(error), Disposition::Dead { .. }) => {
            metrics::counter!(METRIC_FAILED, "kind" => kind.unwrap_or("unknown")).increment(1);
            metrics::counter!(METRIC_DEAD_LETTERED).increment(1);
            tracing::error!(
                call_id = %attempt.call_id,
                ticket_id = attempt.ticket_id,
                attempts = attempt.attempts,
                error = %error,
                "outbox comment moved to the dead letters"
            );
        }
        (Err(error), _) => {
            metrics::counter!(METRIC_FAILED, "kind" => kind.unwrap_or("unknown")).increment(1);
            tracing::warn!(
                call_id = %attempt.call_id,
                ticket_id = attempt.ticket_id,
                attempts = attempt.attempts,
                error = %error,
                "outbox comment not delivered yet; will retry"
            );
        }
    }
    let pause = match &disposition {
        Disposition::Retry { pause_all_until, .. } => *pause_all_until,
        _ => None,
    };
    let seq = attempt.seq;
    if let Err(err) = outbox.with_store(move |store| store.finish(seq, &disposition, now)).await {
        // The row still says "attempt started": the next attempt checks the ticket first.
        tracing::error!(call_id = %attempt.call_id, error = %err, "outbox cannot record an attempt");
    }
    pause
}

async fn prune(outbox: &Outbox) {
    let keep = outbox.policy().keep_done;
    let before = millis(SystemTime::now().checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH));
    match outbox.with_store(move |store| store.prune_delivered(before)).await {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "outbox forgot old delivered entries"),
        Err(err) => tracing::warn!(error = %err, "outbox cannot prune delivered entries"),
    }
}
