//! What the sender does when shutdown is asked: it goes on while entries are due, within
//! its grace, so the comments of calls a drain ended still go out.

use std::time::{Duration, Instant};

use super::test_sink::{FakeSink, Step};
use super::tests::{entry, fast_policy, temp_outbox};
use super::*;

#[tokio::test]
async fn entries_enqueued_just_before_shutdown_are_still_sent() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    for n in 0..12 {
        outbox.enqueue(entry(&format!("call-{n}"), 1 + n % 3)).await.unwrap();
    }
    // Shutdown is asked before the sender has run a single round.
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        run_sender(outbox.clone(), sink.clone(), async {}),
    )
    .await;
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    assert_eq!(sink.posts().len(), 12, "every due comment went out");
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.delivered), (0, 12));
}

#[tokio::test]
async fn with_zendesk_failing_shutdown_is_prompt_and_the_entries_stay() {
    // A real back-off: after the first failure nothing is due within the grace.
    let policy = SendPolicy { backoff_base: Duration::from_secs(30), ..fast_policy() };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.script(1, [Step::Fail(PostError::Transient("503".into()))]);
    outbox.enqueue(entry("call-1", 1)).await.unwrap();
    let started = Instant::now();
    let stopped = run_sender(outbox.clone(), sink.clone(), async {}).await;
    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "stopped after {:?}", started.elapsed());
    assert_eq!(sink.calls().len(), 1, "one attempt, then nothing was due");
    let stats = outbox.stats().await.unwrap();
    assert_eq!(stats.pending, 1, "kept for the next start");
}
