//! The outbox's SQLite tables and every query on them (blocking; called off the runtime).
//!
//! `outbox_entries` holds pending entries and, for `keep_done`, delivered ones (so that a
//! repeated call id stays a no-op). `outbox_dead_letters` holds entries that gave up, with
//! their last error, until they are replayed. Both keep the entry's sequence number, so a
//! replayed entry keeps its place in its ticket's order.
//!
//! Durability: WAL with `synchronous=FULL`, so every committed write transaction (a group
//! of enqueues, the record that attempts started) is on disk before the call returns.
//! Writes go through [`Store::write`] (in `writes`), one transaction for as many as the
//! caller has at hand.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};

use super::schedule::UnixMillis;
use super::{Deferred, EntryInfo, EntryState, OutboxError, Stats};

mod writes;

pub(crate) use writes::Writes;

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
    /// Write transactions committed, for tests.
    #[cfg(test)]
    commits: u64,
    /// Write transactions that failed (nothing of them kept), for tests.
    #[cfg(test)]
    failed_writes: u64,
}

/// Whether `error` comes from the entry or record being written (a constraint or trigger
/// refused it, a value does not fit), so that the same write without it would succeed;
/// rather than from the database as a whole (another process holds the write lock, the
/// disk is full, an I/O error), which every other write would meet as well.
pub(crate) fn concerns_one_entry(error: &OutboxError) -> bool {
    match error {
        OutboxError::InvalidEntry(_) | OutboxError::Corrupt(_) => true,
        OutboxError::Database(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig
        ),
        OutboxError::Database(
            rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::ToSqlConversionFailure(_),
        ) => true,
        _ => false,
    }
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
        Ok(Store {
            conn,
            #[cfg(test)]
            commits: 0,
            #[cfg(test)]
            failed_writes: 0,
        })
    }

    /// Write transactions committed so far.
    #[cfg(test)]
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Write transactions that failed so far.
    #[cfg(test)]
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes
    }

    /// How long a write waits for another process's write lock (5 s unless changed here).
    #[cfg(test)]
    pub fn set_busy_timeout(&mut self, timeout: Duration) -> Result<(), OutboxError> {
        Ok(self.conn.busy_timeout(timeout)?)
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
        let heads = store.write(|w| w.heads(10)).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].queue, 7);
        let seq = heads[0].seq;
        let attempt = store.write(|w| w.start_attempt(seq, 2)).unwrap().expect("pending");
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
