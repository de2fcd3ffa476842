//! Group commit of enqueues, and the sender's one transaction per round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::test_sink::FakeSink;
use super::tests::{entry, fast_policy, start_sender, temp_outbox};
use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// The outbox's store, held by another thread as a commit in progress holds it.
struct StoreHeld {
    release: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn hold_store(outbox: &Outbox) -> StoreHeld {
    let inner = Arc::clone(&outbox.inner);
    let (held, is_held) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _store = inner.store.blocking_lock();
        held.send(()).unwrap();
        let _ = released.recv_timeout(WAIT);
    });
    is_held.recv_timeout(WAIT).expect("the store was taken");
    StoreHeld { release, thread }
}

impl StoreHeld {
    fn release(self) {
        self.release.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

async fn commits(outbox: &Outbox) -> u64 {
    outbox.with_store(|store| Ok(store.commits())).await.unwrap()
}

/// Yields to the spawned tasks until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
    }
}

fn call_ids(entries: &[EntryInfo]) -> Vec<String> {
    entries.iter().map(|e| e.call_id.clone()).collect()
}

/// Enqueues call `i`'s comment (ticket 7) in a task of its own.
fn spawn_enqueue(outbox: &Outbox, i: usize) -> tokio::task::JoinHandle<Result<bool, OutboxError>> {
    let outbox = outbox.clone();
    let entry = entry(&format!("call-{i:03}"), 7);
    tokio::spawn(async move { outbox.enqueue(entry).await })
}

#[tokio::test]
async fn enqueues_that_wait_for_a_commit_share_the_next_transaction_in_arrival_order() {
    const N: usize = 50;
    let (_dir, outbox) = temp_outbox(fast_policy());
    let before = commits(&outbox).await;
    let held = hold_store(&outbox);
    let mut tasks = Vec::new();
    for i in 0..N {
        tasks.push(spawn_enqueue(&outbox, i));
        until("the enqueue to wait", || outbox.inner.enqueues.waiting() == i + 1).await;
    }
    assert!(
        tasks.iter().all(|task| !task.is_finished()),
        "no enqueue returns before its transaction is committed"
    );
    held.release();
    for task in tasks {
        assert!(task.await.unwrap().unwrap(), "added");
    }
    assert_eq!(commits(&outbox).await - before, 1, "one transaction for the {N} entries");
    let expected: Vec<String> = (0..N).map(|i| format!("call-{i:03}")).collect();
    let pending = outbox.list(EntryState::Pending, 100).await.unwrap();
    assert_eq!(call_ids(&pending), expected, "in the order they arrived");
    // On disk: another connection to the file sees them.
    let reopened = Outbox::open(outbox.path()).unwrap();
    assert_eq!(call_ids(&reopened.list(EntryState::Pending, 100).await.unwrap()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_enqueues_takes_far_fewer_commits_than_entries() {
    const N: u64 = 200;
    let (_dir, outbox) = temp_outbox(fast_policy());
    let before = commits(&outbox).await;
    let mut tasks = JoinSet::new();
    for i in 0..N {
        let outbox = outbox.clone();
        tasks.spawn(async move { outbox.enqueue(entry(&format!("call-{i:03}"), 7 + i % 3)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.unwrap().unwrap(), "added");
    }
    let used = commits(&outbox).await - before;
    assert!(used < N / 2, "{used} commits for {N} entries");
    let reopened = Outbox::open(outbox.path()).unwrap();
    assert_eq!(reopened.stats().await.unwrap().pending, N);
    // A repeated call id in a later group is still a no-op.
    assert!(!outbox.enqueue(entry("call-000", 7)).await.unwrap());
}

#[tokio::test]
async fn a_group_that_fails_is_committed_one_entry_at_a_time() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    // The database refuses one call id, as a full disk or a broken row might fail one write.
    rusqlite::Connection::open(outbox.path())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON outbox_entries
             WHEN NEW.call_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let held = hold_store(&outbox);
    let mut tasks = Vec::new();
    for (i, call_id) in ["good-1", "bad", "good-2"].into_iter().enumerate() {
        let enqueuing = outbox.clone();
        let entry = entry(call_id, 7);
        tasks.push(tokio::spawn(async move { enqueuing.enqueue(entry).await }));
        until("the enqueue to wait", || outbox.inner.enqueues.waiting() == i + 1).await;
    }
    held.release();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(matches!(answers[0], Ok(true)), "{:?}", answers[0]);
    assert!(matches!(answers[1], Err(OutboxError::Database(_))), "{:?}", answers[1]);
    assert!(matches!(answers[2], Ok(true)), "{:?}", answers[2]);
    let pending = outbox.list(EntryState::Pending, 10).await.unwrap();
    assert_eq!(call_ids(&pending), ["good-1", "good-2"]);
}

#[tokio::test]
async fn the_sender_records_an_outcome_and_the_next_start_in_one_commit() {
    const N: u64 = 40;
    let (_dir, outbox) = temp_outbox(fast_policy());
    for i in 0..N {
        assert!(outbox.enqueue(entry(&format!("call-{i:03}"), 7)).await.unwrap());
    }
    let sink = FakeSink::new();
    let before = commits(&outbox).await;
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("every comment posted", |s| s.comments.get(&7).is_some_and(|c| c.len() == 40))
        .await;
    sender.stop().await;
    // One per entry (its start, with the previous entry's outcome), the last outcome, the
    // prune at start-up, and a round or two woken with nothing to record. One transaction
    // per start and per outcome would be 2N.
    let used = commits(&outbox).await - before;
    assert!(used <= N + 8, "{used} commits for {N} entries");
    let delivered = outbox.list(EntryState::Delivered, 100).await.unwrap();
    assert_eq!(delivered.len() as u64, N, "every outcome recorded");
    let posted: Vec<String> = sink.comments(7);
    for (i, body) in posted.iter().enumerate() {
        assert!(body.contains(&format!("[call-id: call-{i:03}]")), "in order: {i}: {body}");
    }
}

#[tokio::test]
async fn a_committer_that_never_runs_answers_its_waiting_enqueues_with_an_error() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let group = group_commit::EnqueueGroup::default();
    let (durable, committer) = group.join(entry("call-1", 7), 1);
    let committer = committer.expect("the first to wait starts the committer");
    let (second, none) = group.join(entry("call-2", 7), 1);
    assert!(none.is_none(), "one committer at a time");
    // As when the runtime shuts down before the blocking task runs.
    drop(committer);
    for answer in [durable.await, second.await] {
        assert!(matches!(answer, Ok(Err(OutboxError::Worker(_)))), "{answer:?}");
    }
    // The next enqueue starts a committer again.
    let (third, committer) = group.join(entry("call-3", 7), 1);
    let inner = Arc::clone(&outbox.inner);
    let committer = committer.expect("a new committer");
    tokio::task::spawn_blocking(move || committer.run(&inner.store));
    assert!(matches!(third.await, Ok(Ok(true))));
}

#[tokio::test]
async fn a_group_that_finds_the_database_locked_fails_once_not_once_per_entry() {
    const N: usize = 5;
    let (_dir, outbox) = temp_outbox(fast_policy());
    outbox.with_store(|store| store.set_busy_timeout(Duration::from_millis(100))).await.unwrap();
    // Another process (`outbox replay`, say) holds the write lock.
    let other = rusqlite::Connection::open(outbox.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let failed_before = outbox.with_store(|store| Ok(store.failed_writes())).await.unwrap();
    let held = hold_store(&outbox);
    let mut tasks = Vec::new();
    for i in 0..N {
        let enqueuing = outbox.clone();
        let entry = entry(&format!("call-{i}"), 7);
        tasks.push(tokio::spawn(async move { enqueuing.enqueue(entry).await }));
        until("the enqueue to wait", || outbox.inner.enqueues.waiting() == i + 1).await;
    }
    held.release();
    for task in tasks {
        let answer = task.await.unwrap();
        let busy = matches!(
            &answer,
            Err(OutboxError::Database(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
        );
        assert!(busy, "every caller hears the database was busy: {answer:?}");
    }
    let failed = outbox.with_store(|store| Ok(store.failed_writes())).await.unwrap();
    assert_eq!(failed - failed_before, 1, "one wait for the lock, not one per entry");
    other.execute_batch("ROLLBACK").unwrap();
    assert!(outbox.enqueue(entry("call-0", 7)).await.unwrap(), "added once the lock is free");
}

#[tokio::test]
async fn a_group_holds_at_most_max_group_entries() {
    const N: usize = group_commit::MAX_GROUP + 44;
    let (_dir, outbox) = temp_outbox(fast_policy());
    let before = commits(&outbox).await;
    let held = hold_store(&outbox);
    let mut tasks = Vec::new();
    for i in 0..N {
        tasks.push(spawn_enqueue(&outbox, i));
    }
    until("every enqueue to wait", || outbox.inner.enqueues.waiting() == N).await;
    held.release();
    for task in tasks {
        assert!(task.await.unwrap().unwrap(), "added");
    }
    assert_eq!(commits(&outbox).await - before, 2, "{N} entries in two groups");
    let pending = outbox.list(EntryState::Pending, N + 1).await.unwrap();
    let expected: Vec<String> = (0..N).map(|i| format!("call-{i:03}")).collect();
    assert_eq!(call_ids(&pending), expected, "in the order they arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_senders_store_access_gets_its_turn_during_a_sustained_burst_of_enqueues() {
    const BURST: u64 = 20_000;
    let (_dir, outbox) = temp_outbox(fast_policy());
    // Calls end independently of the outbox's commits: one enqueue every ~50 µs, so that
    // entries are always waiting when a group is done (a sustained burst).
    let spawned = Arc::new(AtomicU64::new(0));
    let producer = {
        let (outbox, spawned) = (outbox.clone(), Arc::clone(&spawned));
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let mut enqueues = Vec::new();
            for i in 0..BURST {
                let outbox = outbox.clone();
                let entry = entry(&format!("call-{i}"), 7 + i % 50);
                enqueues.push(runtime.spawn(async move { outbox.enqueue(entry).await }));
                spawned.fetch_add(1, Ordering::SeqCst);
                if i % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            enqueues
        })
    };
    until("the burst to be under way", || spawned.load(Ordering::SeqCst) >= 1000).await;
    // What the sender does at the start of each round (and for its gauges): take the
    // store on the blocking pool.
    let inner = Arc::clone(&outbox.inner);
    let groups_meanwhile = std::thread::spawn(move || {
        let before = inner.enqueues.groups();
        let _store = inner.store.blocking_lock();
        inner.enqueues.groups() - before
    })
    .join()
    .unwrap();
    let still_spawning = spawned.load(Ordering::SeqCst) < BURST;
    assert!(still_spawning, "the burst went on while the sender waited");
    // The group being committed when it asked, and perhaps the next if that one took its
    // turn just before.
    assert!(groups_meanwhile <= 2, "the sender waited for {groups_meanwhile} groups");
    for enqueue in producer.join().unwrap() {
        assert!(enqueue.await.unwrap().unwrap(), "added");
    }
    assert_eq!(outbox.stats().await.unwrap().pending, BURST);
}
