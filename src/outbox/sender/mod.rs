//! The background sender: a thin loop around [`plan`](super::plan) and
//! [`dispose`](super::dispose) that touches the store, the clock and the sink.
//!
//! It works in rounds. A round writes, in one transaction, the outcomes of the attempts
//! that finished since the last round and the starts of the attempts that plan picks
//! next, then starts those (up to `max_in_flight` at once, one per queue). So an entry
//! costs one synced commit, shared with whatever else the round records, before its
//! post (the record that the attempt started, which a restart checks for) and none of
//! its own after it.
//!
//! A round whose transaction fails because of one record (the database refuses it) is
//! written again one record per transaction, and that record's entry alone goes to the
//! dead letters; the starts follow in a transaction of their own. A round that fails
//! because of the database as a whole writes nothing, and keeps its records for the next.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use super::schedule::{Delivered, Disposition, UnixMillis, dispose, plan};
use super::store::{Attempt, Store, Writes, concerns_one_entry, millis};
use super::{CommentSink, Outbox, OutboxError, PostError, Stats, now_millis};

mod deliver;
mod record;

pub(crate) use deliver::Resolution;
use deliver::{Step, deliver};
use record::{Record, apply, apply_each, write_records};

/// How many ticket heads are looked at per round.
const HEADS_PER_ROUND: usize = 1000;
/// The sender looks at the database at least this often (another process may have
/// replayed dead letters), and waits this long after a database error.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How long the sender goes on after shutdown is asked, while entries are due or in
/// flight.
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

struct InFlight {
    attempt: Attempt,
}

/// Posts the outbox's entries through `sink` until `shutdown` completes.
///
/// One sender runs per outbox file: a second one returns [`OutboxError::SenderRunning`]
/// (an advisory lock on `<path>.sender-lock`, released by the OS if the process dies).
/// On shutdown it goes on for a short grace ([`SHUTDOWN_GRACE`]) while entries are due or
/// in flight, so the comments of calls that the drain ended still go out when Zendesk
/// answers; what is left then stays for the next start. An attempt cut short is checked
/// for (and not blindly re-sent) by the next sender.
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
    let mut records: Vec<Record> = Vec::new();
    let mut paused_until: Option<i64> = None;
    let mut next_prune = Instant::now();
    let mut next_gauges = Instant::now();
    publish_gauges(&outbox.stats().await?);
    tokio::pin!(shutdown);
    // Set once shutdown is asked: until when the sender may still start attempts.
    let mut stopping: Option<Instant> = None;

    loop {
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            prune(&outbox).await;
        }
        let wait =
            match round(&outbox, &sink, &mut tasks, &mut in_flight, &mut records, paused_until)
                .await
            {
                Ok(wait) => wait,
                Err(err) => {
                    // The outcomes not recorded wait in `records` for the next round; until
                    // then their attempts read "started", and should the process stop, the
                    // next attempt at each checks Zendesk for it before posting.
                    tracing::error!(error = %err, "outbox sender cannot use the database");
                    IDLE_POLL
                }
            };
        if let Some(deadline) = stopping
            && (tasks.is_empty() || Instant::now() >= deadline)
        {
            // Nothing due and nothing in flight, or the grace is over.
            break;
        }
        let wait = stopping
            .map_or(wait, |deadline| wait.min(deadline.saturating_duration_since(Instant::now())));
        tokio::select! {
            biased;
            () = &mut shutdown, if stopping.is_none() => {
                stopping = Some(Instant::now() + SHUTDOWN_GRACE);
                continue;
            }
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                // This one, and every other attempt that has finished meanwhile.
                let mut next = Some(joined);
                while let Some(joined) = next.take().or_else(|| tasks.try_join_next_with_id()) {
                    let Some((record, pause)) = outcome(&outbox, &mut in_flight, joined) else {
                        continue;
                    };
                    records.push(record);
                    if let Some(pause) = pause {
                        paused_until = Some(paused_until.map_or(pause, |p| p.max(pause)));
                    }
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

    let grace = stopping.unwrap_or_else(|| Instant::now() + SHUTDOWN_GRACE);
    while !tasks.is_empty() {
        match tokio::time::timeout_at(grace, tasks.join_next_with_id()).await {
            Ok(Some(joined)) => {
                records.extend(outcome(&outbox, &mut in_flight, joined).map(|(record, _)| record));
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
    if !records.is_empty() {
        let now = now_millis();
        let written = outbox.with_store(move |store| {
            write_records(store, records, now).map_err(|(err, _not_written)| err)
        });
        if let Err(err) = written.await {
            tracing::error!(error = %err, "outbox shutdown: cannot record the last attempts");
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

/// One round: records `records`, then starts what is due, in one transaction; returns
/// how long to sleep before looking again. `records` keeps what could not be written
/// because of an error of the database as a whole, for the next round.
async fn round<S>(
    outbox: &Outbox,
    sink: &Arc<S>,
    tasks: &mut JoinSet<Result<Step, PostError>>,
    in_flight: &mut HashMap<Id, InFlight>,
    records: &mut Vec<Record>,
    paused_until: Option<i64>,
) -> Result<Duration, OutboxError>
where
    S: CommentSink + Send + Sync + 'static,
{
    let policy = outbox.policy();
    let due = Due {
        busy: in_flight.values().map(|f| f.attempt.queue()).collect(),
        paused_until,
        free: policy.max_in_flight.saturating_sub(in_flight.len()),
        now: now_millis(),
    };
    let batch = std::mem::take(records);
    let (kept, written) =
        outbox.with_store(move |store| Ok(write_round(store, batch, &due))).await?;
    *records = kept;
    let (started, wake_at) = written?;
    // Started only now that their starts are on disk.
    for attempt in started {
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
    let wait = wake_at
        .map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(now_millis())).unwrap_or(0))
        })
        .unwrap_or(IDLE_POLL);
    Ok(wait.min(IDLE_POLL))
}

/// What a round may start.
struct Due {
    /// Queues with an attempt in flight.
    busy: HashSet<i64>,
    paused_until: Option<i64>,
    /// Attempts that may start.
    free: usize,
    now: UnixMillis,
}

/// Attempts started, and when something else becomes due.
type Started = (Vec<Attempt>, Option<UnixMillis>);

/// Picks what is due and records that it starts (in the transaction of `writes`).
fn start_due(writes: &Writes<'_>, due: &Due) -> Result<Started, OutboxError> {
    let heads = writes.heads(HEADS_PER_ROUND)?;
    let plan = plan(due.now, &heads, &due.busy, due.paused_until, due.free);
    let mut started = Vec::with_capacity(plan.start.len());
    for seq in plan.start {
        started.extend(writes.start_attempt(seq, due.now)?);
    }
    Ok((started, plan.wake_at))
}

/// A round's writes (blocking): `batch` and the starts in one transaction. If that fails
/// because of one record, the records are written one per transaction (the one refused
/// goes to the dead letters) and the starts in a transaction of their own. If it fails
/// because of the database as a whole, nothing is written, and the records are returned
/// to be written with the next round.
fn write_round(
    store: &mut Store,
    batch: Vec<Record>,
    due: &Due,
) -> (Vec<Record>, Result<Started, OutboxError>) {
    let together = store.write(|w| {
        apply(w, &batch, due.now)?;
        start_due(w, due)
    });
    match together {
        Ok(started) => (Vec::new(), Ok(started)),
        Err(err) if batch.is_empty() || !concerns_one_entry(&err) => (batch, Err(err)),
        Err(err) => {
            tracing::warn!(
                records = batch.len(),
                error = %err,
                "outbox round failed; recording its attempts one at a time"
            );
            match apply_each(store, batch, due.now) {
                Ok(()) => (Vec::new(), store.write(|w| start_due(w, due))),
                Err((err, kept)) => (kept, Err(err)),
            }
        }
    }
}

/// Decides what a finished attempt leaves to record (logged and counted here), and a time
/// until which all sending pauses, if any.
fn outcome(
    outbox: &Outbox,
    in_flight: &mut HashMap<Id, InFlight>,
    joined: Result<(Id, Result<Step, PostError>), tokio::task::JoinError>,
) -> Option<(Record, Option<i64>)> {
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
            return Some((Record::Resolve { seq: attempt.seq, resolution }, None));
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
    Some((Record::Finish { seq: attempt.seq, disposition }, pause))
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
