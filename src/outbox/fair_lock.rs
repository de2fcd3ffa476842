//! A mutex that serves its users in the order they asked (a ticket lock).
//!
//! The outbox's store has two kinds of users: the enqueue committer, which during a
//! burst wants the store again the moment it lets go, and everything else (the sender's
//! rounds, stats, listings). `std::sync::Mutex` is not fair: a thread that unlocks and
//! locks again at once nearly always wins over one woken from its wait, so the committer
//! could starve the sender for as long as calls keep ending. Here every `lock` takes a
//! ticket and waits for its turn, so a user that locks again queues behind whoever waited.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Turns handed out, and the turn being served.
#[derive(Default)]
struct Turns {
    next: u64,
    serving: u64,
}

pub(crate) struct FairMutex<T> {
    turns: Mutex<Turns>,
    turn_changed: Condvar,
    /// Locked only by the user whose turn it is, so never contended.
    value: Mutex<T>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> FairMutex<T> {
    pub fn new(value: T) -> FairMutex<T> {
        FairMutex {
            turns: Mutex::default(),
            turn_changed: Condvar::new(),
            value: Mutex::new(value),
        }
    }

    /// Waits for the turns taken before this one, then holds the value until the guard is
    /// dropped. Blocking. A user that panicked while holding it does not poison it.
    pub fn lock(&self) -> FairGuard<'_, T> {
        let mut turns = lock(&self.turns);
        let mine = turns.next;
        turns.next += 1;
        while turns.serving != mine {
            turns = self.turn_changed.wait(turns).unwrap_or_else(PoisonError::into_inner);
        }
        drop(turns);
        FairGuard { owner: self, value: Some(lock(&self.value)) }
    }

    /// Users waiting for their turn (not counting the one holding it).
    #[cfg(test)]
    pub fn waiting(&self) -> u64 {
        let turns = lock(&self.turns);
        (turns.next - turns.serving).saturating_sub(1)
    }
}

pub(crate) struct FairGuard<'a, T> {
    owner: &'a FairMutex<T>,
    /// Taken out on drop, so that the value is let go before the next turn starts.
    value: Option<MutexGuard<'a, T>>,
}

impl<T> Deref for FairGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_deref().unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl<T> DerefMut for FairGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_deref_mut().unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl<T> Drop for FairGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.value.take());
        lock(&self.owner.turns).serving += 1;
        self.owner.turn_changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_holder_that_locks_again_at_once_queues_behind_the_one_waiting() {
        let fair = Arc::new(FairMutex::new(Vec::new()));
        let mut first = fair.lock();
        first.push("holder");
        let waiter = {
            let fair = Arc::clone(&fair);
            std::thread::spawn(move || fair.lock().push("waiter"))
        };
        until("the waiter to queue", || fair.waiting() == 1);
        drop(first);
        fair.lock().push("holder again");
        waiter.join().unwrap();
        assert_eq!(*fair.lock(), ["holder", "waiter", "holder again"]);
    }

    #[test]
    fn a_holder_that_panicked_lets_the_next_in() {
        let fair = Arc::new(FairMutex::new(0));
        let panicking = Arc::clone(&fair);
        let (held, is_held) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _guard = panicking.lock();
            held.send(()).unwrap();
            panic!("while holding the lock");
        });
        is_held.recv_timeout(WAIT).unwrap();
        assert!(thread.join().is_err());
        *fair.lock() += 1;
        assert_eq!(*fair.lock(), 1);
    }
}
