//! The outbox's SQLite tables and every query on them (blocking; called off the runtime).
//!
//! `outbox_entries` holds pending entries and, for `keep_done`, delivered ones (so that a
//! repeated call id stays a no-op). `outbox_dead_letters` holds entries that gave up, with
//! their last error, until they are replayed. Both keep the entry's sequence number, so a
//! replayed entry keeps its place in its ticket's order.
//!
//! Durability: WAL with `synchronous=FULL`, so every committed write (an enqueue, the
//! record that an attempt started) is on disk before the call returns.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::schedule::{Disposition, Head, UnixMillis};
use super::sender::Resolution;
use super::{DeadLetterFilter, Deferred, Entry, EntryInfo, EntryState, OutboxError, Stats};

/// 2 added `deferred` (entries whose ticket is found or opened when sent) to both tables.
const SCHEMA_VERSION: i64 = 2;
/// Stored error texts are cut to this many bytes (they may quote a server's reply).
const MAX_ERROR_BYTES: usize = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox_entries (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id               TEXT    NOT NULL UNIQUE,
    ticket_id             INTEGER NOT NULL,
    body                  TEXT    NOT NULL,
    public                INTEGER NOT NULL,
    created_at_ms         INTEGER NOT NULL,
    enqueued_at_ms        INTEGER NOT NULL,
    attempts              INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms    INTEGER NOT NULL,
    attempt_started_at_ms INTEGER,
    check_first           INTEGER NOT NULL DEFAULT 0,
    last_error            TEXT,
    done_at_ms            INTEGER,
    deferred           TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending_by_ticket
    ON outbox_entries (ticket_id, seq) WHERE done_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_done_by_time
    ON outbox_entries (done_at_ms) WHERE done_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS outbox_dead_letters (
    seq            INTEGER PRIMARY KEY,
    call_id        TEXT    NOT NULL UNIQUE,
    ticket_id      INTEGER NOT NULL,
    body           TEXT    NOT NULL,
    public         INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    enqueued_at_ms INTEGER NOT NULL,
    attempts       INTEGER NOT NULL,
    check_first    INTEGER NOT NULL,
    last_error     TEXT    NOT NULL,
    dead_at_ms     INTEGER NOT NULL,
    deferred    TEXT
);
";

/// From schema 1: the tables exist without `deferred`.
const MIGRATE_FROM_1: &str = "
ALTER TABLE outbox_entries ADD COLUMN deferred TEXT;
ALTER TABLE outbox_dead_letters ADD COLUMN deferred TEXT;
";

/// One attempt's view of an entry, taken when the attempt starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub seq: i64,
    pub call_id: String,
    pub ticket_id: u64,
    pub deferred: Option<Deferred>,
    pub body: String,
    pub public: bool,
    /// Attempts made, counting this one.
    pub attempts: u32,
    /// Check the ticket for the comment before posting.
    pub check_first: bool,
    /// An earlier attempt started and never recorded its result (the process died).
    pub interrupted: bool,
}

impl Attempt {
    /// The scheduler's queue of the entry (see [`Head::queue`]).
    pub fn queue(&self) -> i64 {
        match self.deferred {
            Some(_) => -self.seq,
            None => i64::try_from(self.ticket_id).unwrap_or(i64::MAX),
        }
    }
}

pub(crate) struct Store {
    conn: Connection,
}

pub(crate) fn millis(time: SystemTime) -> UnixMillis {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn system_time(ms: UnixMillis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn bounded(text: &str) -> &str {
    if text.len() <= MAX_ERROR_BYTES {
        return text;
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn ticket_of(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let raw: i64 = row.get(index)?;
    u64::try_from(raw).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, raw))
}

fn deferred_of(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Deferred>> {
    let Some(json) = row.get::<_, Option<String>>(index)? else { return Ok(None) };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

fn deferred_json(open: Option<&Deferred>) -> Result<Option<String>, OutboxError> {
    open.map(serde_json::to_string)
        .transpose()
        .map_err(|e| OutboxError::InvalidEntry(format!("deferred target: {e}")))
}

fn count_of(row: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let raw: i64 = row.get(index)?;
    Ok(u32::try_from(raw.max(0)).unwrap_or(u32::MAX))
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, OutboxError> {
        let open_error =
            |source: rusqlite::Error| OutboxError::Open { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "outbox database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
        // One write transaction: two processes opening an old file at once (the server
        // and `outbox list`), or a crash half-way, can never migrate twice or half.
        let tx =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_error)?;
        let version: i64 =
            tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_error)?;
        if version > SCHEMA_VERSION {
            return Err(OutboxError::NewerSchema { found: version, supported: SCHEMA_VERSION });
        }
        if version == 1 {
            tx.execute_batch(MIGRATE_FROM_1).map_err(open_error)?;
        }
        tx.execute_batch(SCHEMA).map_err(open_error)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(open_error)?;
        tx.commit().map_err(open_error)?;
        Ok(Store { conn })
    }

    /// Adds an entry unless its call id is already known (pending, delivered or dead).
    /// Returns whether it was added.
    pub fn enqueue(&mut self, entry: &Entry, now: UnixMillis) -> Result<bool, OutboxError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dead: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox_dead_letters WHERE call_id = ?1)",
            [&entry.call_id],
            |row| row.get(0),
        )?;
        if dead {
            return Ok(false);
        }
        let added = tx.execute(
            "INSERT INTO outbox_entries
                 (call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms,
                  next_attempt_at_ms, deferred)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
             ON CONFLICT (call_id) DO NOTHING",
            params![
                entry.call_id,
                i64::try_from(entry.ticket_id)
                    .map_err(|_| OutboxError::InvalidEntry("ticket id out of range".into()))?,
                entry.body,
                entry.public,
                millis(entry.created_at),
                now,
                deferred_json(entry.deferred.as_ref())?,
            ],
        )?;
        tx.commit()?;
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

    /// Records, durably, that an attempt on `seq` starts now, and returns what to send.
    /// `None` if the entry is no longer pending (delivered or dead-lettered meanwhile).
    pub fn start_attempt(
        &mut self,
        seq: i64,
        now: UnixMillis,
    ) -> Result<Option<Attempt>, OutboxError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = tx
            .query_row(
                "SELECT call_id, ticket_id, body, public, attempts, check_first,
                        attempt_started_at_ms, deferred
                 FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
                [seq],
                |row| {
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
                },
            )
            .optional()?;
        let Some(mut attempt) = found else {
            return Ok(None);
        };
        // An attempt that started and never finished may have landed: check before posting.
        attempt.check_first |= attempt.interrupted;
        attempt.attempts = attempt.attempts.saturating_add(1);
        tx.execute(
            "UPDATE outbox_entries
             SET attempts = ?2, check_first = ?3, attempt_started_at_ms = ?4 WHERE seq = ?1",
            params![seq, attempt.attempts, attempt.check_first, now],
        )?;
        tx.commit()?;
        Ok(Some(attempt))
    }

    /// Records an attempt's outcome.
    pub fn finish(
        &mut self,
        seq: i64,
        disposition: &Disposition,
        now: UnixMillis,
    ) -> Result<(), OutboxError> {
        match disposition {
            Disposition::Done => {
                self.conn.execute(
                    "UPDATE outbox_entries
                     SET done_at_ms = ?2, attempt_started_at_ms = NULL WHERE seq = ?1",
                    params![seq, now],
                )?;
            }
            Disposition::Retry { at, check_first, error, refund_attempt, .. } => {
                self.conn.execute(
                    "UPDATE outbox_entries
                     SET attempt_started_at_ms = NULL, next_attempt_at_ms = ?2, check_first = ?3,
                         last_error = ?4, attempts = MAX(0, attempts - ?5)
                     WHERE seq = ?1",
                    params![seq, at, check_first, bounded(error), i64::from(*refund_attempt)],
                )?;
            }
            Disposition::Dead { error, check_first } => {
                let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "INSERT INTO outbox_dead_letters
                         (seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms,
                          attempts, check_first, last_error, dead_at_ms, deferred)
                     SELECT seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms,
                            attempts, ?2, ?3, ?4, deferred
                     FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
                    params![seq, check_first, bounded(error), now],
                )?;
                tx.execute(
                    "DELETE FROM outbox_entries WHERE seq = ?1 AND done_at_ms IS NULL",
                    [seq],
                )?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// Pins a looked-up entry to where its comment goes (a ticket, or a ticket to open),
    /// due now; the lookup does not count as an attempt.
    pub fn resolve(
        &mut self,
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
        self.conn.execute(
            "UPDATE outbox_entries
             SET ticket_id = ?2, deferred = ?3, attempt_started_at_ms = NULL,
                 next_attempt_at_ms = ?4, attempts = MAX(0, attempts - 1)
             WHERE seq = ?1 AND done_at_ms IS NULL",
            params![seq, ticket_id, deferred_json(deferred.as_ref())?, now],
        )?;
        Ok(())
    }

    /// Moves matching dead letters back to pending, due now, with a fresh attempt count.
    pub fn replay(
        &mut self,
        filter: &DeadLetterFilter,
        now: UnixMillis,
    ) -> Result<usize, OutboxError> {
        let ticket = filter.ticket_id.map(|id| i64::try_from(id).unwrap_or(-1));
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let moved = tx.execute(
            "INSERT INTO outbox_entries
                 (seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                  next_attempt_at_ms, check_first, last_error, deferred)
             SELECT seq, call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, 0,
                    ?3, check_first, last_error, deferred
             FROM outbox_dead_letters
             WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR call_id = ?2)",
            params![ticket, filter.call_id, now],
        )?;
        let deleted = tx.execute(
            "DELETE FROM outbox_dead_letters
             WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR call_id = ?2)",
            params![ticket, filter.call_id],
        )?;
        if moved != deleted {
            return Err(OutboxError::Corrupt(format!(
                "replay moved {moved} rows but removed {deleted}"
            )));
        }
        tx.commit()?;
        Ok(moved)
    }

    pub fn stats(&self, now: UnixMillis) -> Result<Stats, OutboxError> {
        let (pending, in_flight, oldest): (i64, i64, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(attempt_started_at_ms IS NOT NULL), 0),
                    MIN(enqueued_at_ms)
             FROM outbox_entries WHERE done_at_ms IS NULL",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        let delivered: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox_entries WHERE done_at_ms IS NOT NULL",
            [],
            |row| row.get(0),
        )?;
        let dead: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM outbox_dead_letters", [], |row| row.get(0))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Stats {
            pending: count(pending),
            in_flight: count(in_flight),
            delivered: count(delivered),
            dead_letters: count(dead),
            oldest_pending_age: oldest.map(|at| {
                Duration::from_millis(u64::try_from(now.saturating_sub(at)).unwrap_or(0))
            }),
        })
    }

    /// Entries in one state, oldest first.
    pub fn list(&self, state: EntryState, limit: usize) -> Result<Vec<EntryInfo>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = match state {
            EntryState::Pending => {
                "SELECT call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                        check_first, last_error, next_attempt_at_ms, deferred
                 FROM outbox_entries WHERE done_at_ms IS NULL ORDER BY seq LIMIT ?1"
            }
            EntryState::Delivered => {
                "SELECT call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                        check_first, last_error, NULL, deferred
                 FROM outbox_entries WHERE done_at_ms IS NOT NULL ORDER BY seq LIMIT ?1"
            }
            EntryState::DeadLetter => {
                "SELECT call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                        check_first, last_error, NULL, deferred
                 FROM outbox_dead_letters ORDER BY seq LIMIT ?1"
            }
        };
        let mut statement = self.conn.prepare_cached(sql)?;
        let entries = statement
            .query_map([limit], |row| entry_info(row, state))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }

    /// One entry by call id, wherever it is.
    pub fn find(&self, call_id: &str) -> Result<Option<EntryInfo>, OutboxError> {
        let live = self
            .conn
            .query_row(
                "SELECT call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                        check_first, last_error, next_attempt_at_ms, deferred, done_at_ms IS NOT NULL
                 FROM outbox_entries WHERE call_id = ?1",
                [call_id],
                |row| {
                    let done: bool = row.get(11)?;
                    entry_info(row, if done { EntryState::Delivered } else { EntryState::Pending })
                },
            )
            .optional()?;
        if live.is_some() {
            return Ok(live);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT call_id, ticket_id, body, public, created_at_ms, enqueued_at_ms, attempts,
                        check_first, last_error, NULL, deferred
                 FROM outbox_dead_letters WHERE call_id = ?1",
                [call_id],
                |row| entry_info(row, EntryState::DeadLetter),
            )
            .optional()?)
    }

    /// Forgets delivered entries finished before `before`. Returns how many.
    pub fn prune_delivered(&mut self, before: UnixMillis) -> Result<usize, OutboxError> {
        Ok(self.conn.execute(
            "DELETE FROM outbox_entries WHERE done_at_ms IS NOT NULL AND done_at_ms < ?1",
            [before],
        )?)
    }
}

fn entry_info(row: &Row<'_>, state: EntryState) -> rusqlite::Result<EntryInfo> {
    let next: Option<i64> = row.get(9)?;
    Ok(EntryInfo {
        call_id: row.get(0)?,
        ticket_id: ticket_of(row, 1)?,
        deferred: deferred_of(row, 10)?,
        body: row.get(2)?,
        public: row.get(3)?,
        created_at: system_time(row.get(4)?),
        enqueued_at: system_time(row.get(5)?),
        attempts: count_of(row, 6)?,
        check_first: row.get(7)?,
        last_error: row.get(8)?,
        next_attempt_at: next.map(system_time),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_durable_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("outbox.sqlite")).unwrap();
        let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(conn);
        assert!(matches!(Store::open(&path), Err(OutboxError::NewerSchema { .. })));
    }

    #[test]
    fn a_schema_1_database_is_migrated_and_keeps_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite");
        let v1 = SCHEMA
            .replace(",\n    deferred           TEXT", "")
            .replace(",\n    deferred    TEXT", "");
        assert!(!v1.contains("deferred"));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&v1).unwrap();
        conn.execute(
            "INSERT INTO outbox_entries (call_id, ticket_id, body, public, created_at_ms,
                                         enqueued_at_ms, next_attempt_at_ms)
             VALUES ('[call-id: old]', 7, 'old [call-id: old]', 0, 1, 1, 1)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);

        let mut store = Store::open(&path).unwrap();
        let version: i64 = store.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let old = store.find("[call-id: old]").unwrap().expect("kept");
        assert_eq!((old.ticket_id, old.deferred), (7, None));
        let heads = store.heads(10).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].queue, 7);
        let attempt = store.start_attempt(heads[0].seq, 2).unwrap().expect("pending");
        assert_eq!(attempt.queue(), 7);
        // And opened again, nothing changes.
        drop(store);
        assert!(Store::open(&path).is_ok());
    }

    #[test]
    fn millis_round_trip_and_pre_epoch() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(millis(time), 1_700_000_000_123);
        assert_eq!(system_time(millis(time)), time);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), -1000);
        assert_eq!(system_time(-5), UNIX_EPOCH);
    }

    #[test]
    fn long_errors_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_ERROR_BYTES);
        let cut = bounded(&text);
        assert!(cut.len() <= MAX_ERROR_BYTES && cut.len() >= MAX_ERROR_BYTES - 1);
        assert_eq!(bounded("short"), "short");
    }
}
