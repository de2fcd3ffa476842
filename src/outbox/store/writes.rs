//! Every write to the outbox's tables, made inside one transaction ([`Store::write`]).
//!
//! A caller puts into one transaction all the writes it has at hand (the enqueues that
//! arrived during the previous commit, or one round of the sender: the outcomes of the
//! attempts that finished and the starts of the next ones), so that they share one synced
//! commit. Nothing written here is durable before [`Store::write`] returns `Ok`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Attempt, Store, bounded, count_of, deferred_json, deferred_of, millis, ticket_of};
use crate::outbox::schedule::{Disposition, Head, UnixMillis};
use crate::outbox::sender::Resolution;
use crate::outbox::{DeadLetterFilter, Deferred, Entry, OutboxError};

/// The writes of one transaction. Reads inside it see its own writes.
pub(crate) struct Writes<'t> {
    conn: &'t Connection,
}

impl Store {
    /// Runs `writes` in one write transaction and commits it (synced to disk, see the
    /// module's header). On an error nothing of it is kept.
    pub fn write<T>(
        &mut self,
        writes: impl FnOnce(&Writes<'_>) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let written = write_once(&mut self.conn, writes);
        #[cfg(test)]
        match written {
            Ok(_) => self.commits += 1,
            Err(_) => self.failed_writes += 1,
        }
        written
    }

    /// Forgets delivered entries finished before `before`. Returns how many.
    pub fn prune_delivered(&mut self, before: UnixMillis) -> Result<usize, OutboxError> {
        self.write(|w| w.prune_delivered(before))
    }

    /// Moves matching dead letters back to pending, due now, with a fresh attempt count.
    pub fn replay(
        &mut self,
        filter: &DeadLetterFilter,
        now: UnixMillis,
    ) -> Result<usize, OutboxError> {
        self.write(|w| w.replay(filter, now))
    }
}

fn write_once<T>(
    conn: &mut Connection,
    writes: impl FnOnce(&Writes<'_>) -> Result<T, OutboxError>,
) -> Result<T, OutboxError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = writes(&Writes { conn: &tx })?;
    tx.commit()?;
    Ok(value)
}

impl Writes<'_> {
    /// Adds an entry unless its call id is already known (pending, delivered or dead).
    /// Returns whether it was added. Entries added in one transaction keep the order in
    /// which they were added (their sequence numbers).
    pub fn enqueue(&self, entry: &Entry, now: UnixMillis) -> Result<bool, OutboxError> {
        let dead: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox_dead_letters WHERE call_id = ?1)")?
            .query_row([&entry.call_id], |row| row.get(0))?;
        if dead {
            return Ok(false);
        }
        let added = self
            .conn
            .prepare_cached(
                "INSERT INTO outbox_entries
                 (call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms,
                  next_attempt_at_ms, deferred)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
             ON CONFLICT (call_id) DO NOTHING",
            )?
            .execute(params![
                entry.call_id,
                i64::try_from(entry.ticket_id)
                    .map_err(|_| OutboxError::InvalidEntry("ticket id out of range".into()))?,
                entry.body,
                entry.public,
                millis(entry.created_at),
                now,
                deferred_json(entry.deferred.as_ref())?,
            ])?;
        Ok(added == 1)
    }

    /// The oldest pending entry of each queue (a ticket's comments, or one entry whose
    /// ticket is decided when it is sent: queue `-seq`), soonest due first.
    pub fn heads(&self, limit: usize) -> Result<Vec<Head>, OutboxError> {
        // SQLite takes the bare columns of a MIN() aggregate from the row holding the minimum.
        let mut statement = self.conn.prepare_cached(
            "SELECT MIN(seq), CASE WHEN deferred IS NULL THEN ticket_id ELSE -seq END AS queue,
                    next_attempt_at_ms
             FROM outbox_entries
             WHERE done_at_ms IS NULL GROUP BY queue
             ORDER BY next_attempt_at_ms, seq LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let heads = statement
            .query_map([limit], |row| {
                Ok(Head { seq: row.get(0)?, queue: row.get(1)?, next_attempt_at: row.get(2)? })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(heads)
    }

    /// Records that an attempt on `seq` starts now, and returns what to send. `None` if
    /// the entry is no longer pending (delivered or dead-lettered meanwhile). The attempt
    /// must not start before the transaction is committed.
    pub fn start_attempt(&self, seq: i64, now: UnixMillis) -> Result<Option<Attempt>, OutboxError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT call_id, ticket_id, body, public, attempts, check_first,
                        attempt_started_at_ms, deferred
                 FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
            )?
            .query_row([seq], |row| {
                let started: Option<i64> = row.get(6)?;
                Ok(Attempt {
                    seq,
                    call_id: row.get(0)?,
                    ticket_id: ticket_of(row, 1)?,
                    deferred: deferred_of(row, 7)?,
                    body: row.get(2)?,
                    public: row.get(3)?,
                    attempts: count_of(row, 4)?,
                    check_first: row.get(5)?,
                    interrupted: started.is_some(),
                })
            })
            .optional()?;
        let Some(mut attempt) = found else {
            return Ok(None);
        };
        // An attempt that started and never finished may have landed: check before posting.
        attempt.check_first |= attempt.interrupted;
        attempt.attempts = attempt.attempts.saturating_add(1);
        self.conn
            .prepare_cached(
                "UPDATE outbox_entries
                 SET attempts = ?2, check_first = ?3, attempt_started_at_ms = ?4 WHERE seq = ?1",
            )?
            .execute(params![seq, attempt.attempts, attempt.check_first, now])?;
        Ok(Some(attempt))
    }

    /// Records an attempt's outcome.
    pub fn finish(
        &self,
        seq: i64,
        disposition: &Disposition,
        now: UnixMillis,
    ) -> Result<(), OutboxError> {
        match disposition {
            Disposition::Done => {
                self.conn
                    .prepare_cached(
                        "UPDATE outbox_entries
                         SET done_at_ms = ?2, attempt_started_at_ms = NULL WHERE seq = ?1",
                    )?
                    .execute(params![seq, now])?;
            }
            Disposition::Retry { at, check_first, error, refund_attempt, .. } => {
                self.conn
                    .prepare_cached(
                        "UPDATE outbox_entries
                         SET attempt_started_at_ms = NULL, next_attempt_at_ms = ?2,
                             check_first = ?3, last_error = ?4,
                             attempts = MAX(0, attempts - ?5)
                         WHERE seq = ?1",
                    )?
                    .execute(params![
                        seq,
                        at,
                        check_first,
                        bounded(error),
                        i64::from(*refund_attempt)
                    ])?;
            }
            Disposition::Dead { error, check_first } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO outbox_dead_letters
                             (seq, call_id, ticket_id, body, public, created_at_ms,
                              enqueued_at_ms, attempts, check_first, last_error, dead_at_ms,
                              deferred)
                         SELECT seq, call_id, ticket_id, body, public, created_at_ms,
                                enqueued_at_ms, attempts, ?2, ?3, ?4, deferred
                         FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
                    )?
                    .execute(params![seq, check_first, bounded(error), now])?;
                self.conn
                    .prepare_cached(
                        "DELETE FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
                    )?
                    .execute([seq])?;
            }
        }
        Ok(())
    }

    /// Pins a looked-up entry to where its comment goes (a ticket, or a ticket to open),
    /// due now; the lookup does not count as an attempt.
    pub fn resolve(
        &self,
        seq: i64,
        resolution: &Resolution,
        now: UnixMillis,
    ) -> Result<(), OutboxError> {
        let (ticket_id, deferred) = match resolution {
            Resolution::Ticket(id) => (
                i64::try_from(*id)
                    .map_err(|_| OutboxError::Corrupt(format!("ticket id {id} out of range")))?,
                None,
            ),
            Resolution::Open(open) => (0, Some(Deferred::OpenTicket(open.clone()))),
        };
        self.conn
            .prepare_cached(
                "UPDATE outbox_entries
                 SET ticket_id = ?2, deferred = ?3, attempt_started_at_ms = NULL,
                     next_attempt_at_ms = ?4, attempts = MAX(0, attempts - 1)
                 WHERE seq = ?1 AND done_at_ms IS NULL",
            )?
            .execute(params![seq, ticket_id, deferred_json(deferred.as_ref())?, now])?;
        Ok(())
    }

    /// Moves matching dead letters back to pending, due now, with a fresh attempt count.
    pub fn replay(&self, filter: &DeadLetterFilter, now: UnixMillis) -> Result<usize, OutboxError> {
        let ticket = filter.ticket_id.map(|id| i64::try_from(id).unwrap_or(-1));
        let moved = self.conn.execute(
            "INSERT INTO outbox_entries
                 (seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                  next_attempt_at_ms, check_first, last_error, deferred)
             SELECT seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, 0,
                    ?3, check_first, last_error, deferred
             FROM outbox_dead_letters
             WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR call_id = ?2)",
            params![ticket, filter.call_id, now],
        )?;
        let deleted = self.conn.execute(
            "DELETE FROM outbox_dead_letters
             WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR call_id = ?2)",
            params![ticket, filter.call_id],
        )?;
        if moved != deleted {
            return Err(OutboxError::Corrupt(format!(
                "replay moved {moved} rows but removed {deleted}"
            )));
        }
        Ok(moved)
    }

    /// Forgets delivered entries finished before `before`. Returns how many.
    pub fn prune_delivered(&self, before: UnixMillis) -> Result<usize, OutboxError> {
        Ok(self.conn.execute(
            "DELETE FROM outbox_entries WHERE done_at_ms IS NOT NULL AND done_at_ms < ?1",
            [before],
        )?)
    }
}
