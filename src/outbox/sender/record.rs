//! What a round writes about the attempts that finished, and how one record the database
//! refuses is kept from taking the rest of its round with it.

use super::{METRIC_DEAD_LETTERED, Resolution};
use crate::outbox::OutboxError;
use crate::outbox::schedule::{Disposition, UnixMillis};
use crate::outbox::store::{Store, Writes, concerns_one_entry};

/// What a round writes about an attempt that finished.
pub(super) enum Record {
    /// Its outcome.
    Finish { seq: i64, disposition: Disposition },
    /// Where the looked-up entry goes.
    Resolve { seq: i64, resolution: Resolution },
}

impl Record {
    fn seq(&self) -> i64 {
        match self {
            Record::Finish { seq, .. } | Record::Resolve { seq, .. } => *seq,
        }
    }

    fn write(&self, writes: &Writes<'_>, now: UnixMillis) -> Result<(), OutboxError> {
        match self {
            Record::Finish { seq, disposition } => writes.finish(*seq, disposition, now),
            Record::Resolve { seq, resolution } => writes.resolve(*seq, resolution, now),
        }
    }
}

/// Writes `records` in the transaction of `writes`.
pub(super) fn apply(
    writes: &Writes<'_>,
    records: &[Record],
    now: UnixMillis,
) -> Result<(), OutboxError> {
    records.iter().try_for_each(|record| record.write(writes, now))
}

/// Writes `records` in one transaction, or, if that fails because of one of them, one per
/// transaction (see [`apply_each`]). On an error of the database as a whole, returns it
/// with the records still to write.
pub(super) fn write_records(
    store: &mut Store,
    records: Vec<Record>,
    now: UnixMillis,
) -> Result<(), (OutboxError, Vec<Record>)> {
    match store.write(|w| apply(w, &records, now)) {
        Ok(()) => Ok(()),
        Err(err) if concerns_one_entry(&err) => apply_each(store, records, now),
        Err(err) => Err((err, records)),
    }
}

/// Writes `records` one per transaction, after a transaction holding them all failed
/// because of one of them.
///
/// A record the database refuses for its own sake is not tried again: its entry moves to
/// the dead letters with the error, marked to be checked for on the ticket first if it is
/// replayed (its attempt may have landed). If even that fails, the record is dropped; its
/// entry still reads "started", so its next attempt checks the ticket before posting.
/// An error of the database as a whole stops the writing: it is returned with the records
/// not yet written, for the next round.
pub(super) fn apply_each(
    store: &mut Store,
    records: Vec<Record>,
    now: UnixMillis,
) -> Result<(), (OutboxError, Vec<Record>)> {
    let mut records = records.into_iter();
    while let Some(record) = records.next() {
        match store.write(|w| record.write(w, now)) {
            Ok(()) => {}
            Err(err) if concerns_one_entry(&err) => dead_letter(store, record.seq(), &err, now),
            Err(err) => return Err((err, std::iter::once(record).chain(records).collect())),
        }
    }
    Ok(())
}

/// Moves the entry whose record the database refused with `refused` to the dead letters.
fn dead_letter(store: &mut Store, seq: i64, refused: &OutboxError, now: UnixMillis) {
    let dead = Disposition::Dead {
        error: format!("the outcome of its attempt could not be recorded: {refused}"),
        check_first: true,
    };
    match store.write(|w| w.finish(seq, &dead, now)) {
        Ok(()) => {
            metrics::counter!(METRIC_DEAD_LETTERED).increment(1);
            tracing::error!(
                seq,
                error = %refused,
                "outbox cannot record an attempt; its entry moved to the dead letters"
            );
        }
        Err(err) => tracing::error!(
            seq,
            error = %refused,
            dead_letter_error = %err,
            "outbox cannot record an attempt, nor move its entry to the dead letters; \
             the entry is checked for on its ticket before it is sent again"
        ),
    }
}
