//! Group commit of enqueues: the entries that arrive while the store is busy (committing
//! the previous group, or a round of the sender) wait, and go into the next single
//! transaction, at most [`MAX_GROUP`] of them. Each caller is told its entry is durable
//! only once that transaction is committed and synced, so the point of durability is the
//! same as with one transaction per entry, at one sync per group instead of one per entry.
//!
//! At most one committer runs at a time, on tokio's blocking pool. It takes the store
//! first and the waiting entries second (so that entries arriving while the store is busy
//! join the group), commits them in the order they arrived, answers each caller, and goes
//! again until nobody waits. The store's lock is fair (tokio's mutex, taken with
//! `blocking_lock`, serves in the order asked): whoever asked for the store while a group
//! was being committed (the sender) goes before the next group.
//!
//! A group that fails because of one of its entries (a constraint or trigger refused it)
//! is committed again one entry at a time, so that each caller gets its own entry's
//! answer. A group that fails because of the database as a whole (another process holds
//! the write lock past the busy timeout, the disk is full, an I/O error) is answered with
//! that error at once: trying each entry would only wait that long again per entry.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::schedule::UnixMillis;
use super::store::{Store, concerns_one_entry};
use super::{Entry, OutboxError};

/// The most entries committed in one transaction.
pub(crate) const MAX_GROUP: usize = 256;

/// What an enqueue is told once its group is committed: whether its entry was added.
pub(crate) type Durable = oneshot::Receiver<Result<bool, OutboxError>>;

struct Waiting {
    entry: Entry,
    now: UnixMillis,
    reply: oneshot::Sender<Result<bool, OutboxError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// A committer is running (or about to), and will take what is waiting.
    committer: bool,
    /// Groups committed (or failed) so far, for tests.
    #[cfg(test)]
    groups: u64,
}

/// The enqueues waiting for the next group. Cheap to clone; clones share the queue.
#[derive(Clone, Default)]
pub(crate) struct EnqueueGroup {
    queue: Arc<Mutex<Queue>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EnqueueGroup {
    /// Adds `entry` to the next group. The caller awaits the answer, and runs the
    /// returned committer (on the blocking pool) when there is one: none was running.
    pub fn join(&self, entry: Entry, now: UnixMillis) -> (Durable, Option<Committer>) {
        let (reply, durable) = oneshot::channel();
        let mut queue = lock(&self.queue);
        queue.waiting.push(Waiting { entry, now, reply });
        let start = !queue.committer;
        queue.committer = true;
        drop(queue);
        let committer = start.then(|| Committer { group: self.clone(), running: true });
        (durable, committer)
    }

    /// Entries waiting for a committer.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        lock(&self.queue).waiting.len()
    }

    /// Groups committed (or failed) so far.
    #[cfg(test)]
    pub fn groups(&self) -> u64 {
        lock(&self.queue).groups
    }
}

/// The one committer of an [`EnqueueGroup`]. Dropped without having finished (it
/// panicked, or the runtime shut down before it ran), it answers the entries still
/// waiting with an error, so that no caller waits for ever, and lets the next enqueue
/// start another.
pub(crate) struct Committer {
    group: EnqueueGroup,
    /// Until it saw the queue empty.
    running: bool,
}

impl Committer {
    /// Commits groups until nobody waits. Blocking.
    pub fn run(mut self, store: &tokio::sync::Mutex<Store>) {
        loop {
            let mut held = store.blocking_lock();
            let group = {
                let mut queue = lock(&self.group.queue);
                if queue.waiting.is_empty() {
                    queue.committer = false;
                    self.running = false;
                    return;
                }
                let taken = queue.waiting.len().min(MAX_GROUP);
                queue.waiting.drain(..taken).collect()
            };
            commit(&mut held, group);
            // Whoever asked meanwhile (the sender) goes before this loop's next group.
            drop(held);
            #[cfg(test)]
            {
                lock(&self.group.queue).groups += 1;
            }
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let stranded = {
            let mut queue = lock(&self.group.queue);
            queue.committer = false;
            std::mem::take(&mut queue.waiting)
        };
        for waiting in stranded {
            let stopped = OutboxError::Worker("the outbox's committer stopped".into());
            let _ = waiting.reply.send(Err(stopped));
        }
    }
}

/// Commits `group` in one transaction and answers each caller (see the module's header for
/// what happens when that transaction fails).
fn commit(store: &mut Store, group: Vec<Waiting>) {
    let added: Result<Vec<bool>, OutboxError> = store
        .write(|w| group.iter().map(|waiting| w.enqueue(&waiting.entry, waiting.now)).collect());
    let answers: Vec<Result<bool, OutboxError>> = match added {
        Ok(added) => added.into_iter().map(Ok).collect(),
        Err(err) if group.len() == 1 => vec![Err(err)],
        Err(err) if concerns_one_entry(&err) => {
            tracing::warn!(
                entries = group.len(),
                error = %err,
                "outbox group commit refused an entry; committing its entries one at a time"
            );
            group
                .iter()
                .map(|waiting| store.write(|w| w.enqueue(&waiting.entry, waiting.now)))
                .collect()
        }
        Err(err) => {
            tracing::error!(entries = group.len(), error = %err, "outbox group commit failed");
            let mut answers: Vec<_> = (1..group.len()).map(|_| Err(same_error(&err))).collect();
            answers.push(Err(err));
            answers
        }
    };
    for (waiting, answer) in group.into_iter().zip(answers) {
        // A caller that stopped waiting (its call task ended) is not an error: the entry
        // is durable all the same.
        let _ = waiting.reply.send(answer);
    }
}

/// `error` again, for another caller of the group it failed.
fn same_error(error: &OutboxError) -> OutboxError {
    match error {
        OutboxError::Database(rusqlite::Error::SqliteFailure(failure, message)) => {
            OutboxError::Database(rusqlite::Error::SqliteFailure(*failure, message.clone()))
        }
        other => OutboxError::Worker(format!("the group commit failed: {other}")),
    }
}
