//! Group commit of enqueues: the entries that arrive while the store is busy (committing
//! the previous group, or a round of the sender) wait, and all go into the next single
//! transaction. Each caller is told its entry is durable only once that transaction is
//! committed and synced, so the point of durability is the same as with one transaction
//! per entry, at one sync per group instead of one per entry.
//!
//! At most one committer runs at a time, on tokio's blocking pool. It takes the store
//! first and the waiting entries second (so that entries arriving while the store is busy
//! join the group), commits them in the order they arrived, answers each caller, and goes
//! again until nobody waits.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::schedule::UnixMillis;
use super::store::Store;
use super::{Entry, OutboxError};

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
    pub fn run(mut self, store: &Mutex<Store>) {
        loop {
            let mut store = lock(store);
            let group = {
                let mut queue = lock(&self.group.queue);
                if queue.waiting.is_empty() {
                    queue.committer = false;
                    self.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            commit(&mut store, group);
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

/// Commits `group` in one transaction and answers each caller. If that transaction fails,
/// each entry is tried in its own, so that every caller gets its own entry's answer.
fn commit(store: &mut Store, group: Vec<Waiting>) {
    let added: Result<Vec<bool>, OutboxError> = store
        .write(|w| group.iter().map(|waiting| w.enqueue(&waiting.entry, waiting.now)).collect());
    let answers: Vec<Result<bool, OutboxError>> = match added {
        Ok(added) => added.into_iter().map(Ok).collect(),
        Err(err) if group.len() == 1 => vec![Err(err)],
        Err(err) => {
            tracing::warn!(
                entries = group.len(),
                error = %err,
                "outbox group commit failed; committing its entries one at a time"
            );
            group
                .iter()
                .map(|waiting| store.write(|w| w.enqueue(&waiting.entry, waiting.now)))
                .collect()
        }
    };
    for (waiting, answer) in group.into_iter().zip(answers) {
        // A caller that stopped waiting (its call task ended) is not an error: the entry
        // is durable all the same.
        let _ = waiting.reply.send(answer);
    }
}
