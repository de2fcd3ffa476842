//! The outbox against a scriptable in-memory comment sink.

use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::test_sink::{CallKind, FakeSink, Step};
use super::*;

const WAIT: Duration = Duration::from_secs(10);

pub(super) fn entry(call_id: &str, ticket_id: u64) -> Entry {
    Entry {
        call_id: call_id.into(),
        ticket_id,
        deferred: None,
        body: format!("Phone call from +4798765432, 2m 3s, transferred.\n[call-id: {call_id}]"),
        public: false,
        created_at: SystemTime::now(),
    }
}

/// An entry that opens a ticket for an unknown caller.
fn opening(call_id: &str) -> Entry {
    let open = TicketToOpen::for_caller(None, Some("+4798765432".into()));
    Entry { ticket_id: 0, deferred: Some(Deferred::OpenTicket(open)), ..entry(call_id, 0) }
}

/// An entry from a call that could not ask Zendesk: the caller's ticket is found later.
pub(super) fn for_caller(call_id: &str, phone: &str, open_if_none: bool) -> Entry {
    Entry {
        ticket_id: 0,
        deferred: Some(Deferred::CallersTicket { phone: phone.into(), open_if_none }),
        ..entry(call_id, 0)
    }
}

pub(super) fn fast_policy() -> SendPolicy {
    SendPolicy {
        max_attempts: 5,
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        retry_after_max: Duration::from_secs(10),
        max_in_flight: 4,
        attempt_timeout: Duration::from_secs(10),
        keep_done: Duration::from_secs(3600),
    }
}

pub(super) fn temp_outbox(policy: SendPolicy) -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open_with_policy(dir.path().join("outbox.sqlite"), policy).unwrap();
    (dir, outbox)
}

pub(super) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), OutboxError>>,
}

pub(super) fn start_sender(outbox: &Outbox, sink: &FakeSink) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_sender(outbox.clone(), sink.clone(), async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    /// Stops the sender; every finished attempt is recorded when this returns.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let joined = tokio::time::timeout(WAIT, self.task).await;
        assert!(matches!(joined, Ok(Ok(Ok(())))), "sender did not stop cleanly: {joined:?}");
    }
}

async fn state_of(outbox: &Outbox, call_id: &str) -> EntryState {
    outbox.find(call_id).await.unwrap().expect("entry exists").state
}

#[tokio::test]
async fn enqueue_is_idempotent_per_call_id() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    assert!(outbox.enqueue(entry("call-1", 7)).await.unwrap());
    let mut again = entry("call-1", 7);
    again.body = "another body [call-1]".into();
    assert!(!outbox.enqueue(again).await.unwrap());
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 0));
    let pending = outbox.list(EntryState::Pending, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, entry("call-1", 7).body, "the first body is kept");
}

#[tokio::test]
async fn invalid_entries_are_refused() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let mut no_marker = entry("call-1", 7);
    no_marker.body = "no marker here".into();
    let mut huge = entry("call-2", 7);
    huge.body.push_str(&"x".repeat(MAX_BODY_BYTES));
    let mut control = entry("call-3", 7);
    control.call_id = "call\r\n3".into();
    control.body = format!("[{}]", control.call_id);
    let zero_ticket = entry("call-4", 0);
    let mut huge_ticket = entry("call-5", 0);
    huge_ticket.ticket_id = u64::MAX;
    let empty_id = Entry { call_id: String::new(), ..entry("x", 7) };
    for bad in [no_marker, huge, control, zero_ticket, huge_ticket, empty_id] {
        let err = outbox.enqueue(bad.clone()).await.unwrap_err();
        assert!(matches!(err, OutboxError::InvalidEntry(_)), "{bad:?}: {err}");
    }
    assert_eq!(outbox.stats().await.unwrap().pending, 0);
}

#[tokio::test]
async fn database_is_in_wal_mode_and_entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite");
    {
        let outbox = Outbox::open_with_policy(&path, fast_policy()).unwrap();
        for n in 0..3 {
            assert!(outbox.enqueue(entry(&format!("call-{n}"), 40 + n)).await.unwrap());
        }
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    drop(conn);

    let reopened = Outbox::open_with_policy(&path, fast_policy()).unwrap();
    let pending = reopened.list(EntryState::Pending, 10).await.unwrap();
    let ids: Vec<(&str, u64)> = pending.iter().map(|e| (e.call_id.as_str(), e.ticket_id)).collect();
    assert_eq!(ids, [("call-0", 40), ("call-1", 41), ("call-2", 42)]);
    assert_eq!(pending[2].body, entry("call-2", 42).body);

    let sink = FakeSink::new();
    let sender = start_sender(&reopened, &sink);
    sink.wait_until("three comments", |s| s.comments.values().map(Vec::len).sum::<usize>() == 3)
        .await;
    sender.stop().await;
    let stats = reopened.stats().await.unwrap();
    assert_eq!((stats.pending, stats.delivered), (0, 3));
    assert!(sink.calls().iter().all(|c| c.kind == CallKind::Post), "no check was needed");
}

#[tokio::test]
async fn entries_of_one_ticket_go_in_order_while_other_tickets_proceed() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    // The first post (ticket 1's first entry) fails twice before it goes through.
    sink.script(
        1,
        [
            Step::Fail(PostError::Transient("503".into())),
            Step::Fail(PostError::Transient("503".into())),
        ],
    );
    for call_id in ["a1", "a2", "a3"] {
        outbox.enqueue(entry(call_id, 1)).await.unwrap();
    }
    let sender = start_sender(&outbox, &sink);
    outbox.enqueue(entry("b1", 2)).await.unwrap();
    sink.wait_until("all four", |s| s.comments.values().map(Vec::len).sum::<usize>() == 4).await;
    sender.stop().await;

    let order: Vec<String> = sink.comments(1);
    assert_eq!(order, ["a1", "a2", "a3"].map(|id| entry(id, 1).body));
    let posts = sink.posts();
    let first_a2 = posts.iter().position(|c| c.text.contains("a2")).unwrap();
    let a1_posts = posts.iter().enumerate().filter(|(_, c)| c.text.contains("a1")).count();
    assert_eq!(a1_posts, 3);
    assert!(
        posts[..first_a2].iter().filter(|c| c.text.contains("a1")).count() == 3,
        "a2 waited for a1 to be done: {posts:#?}"
    );
    let b1 = posts.iter().position(|c| c.text.contains("b1")).unwrap();
    let last_a1 = posts.iter().rposition(|c| c.text.contains("a1")).unwrap();
    assert!(b1 < last_a1, "ticket 2 did not wait for ticket 1's retries: {posts:#?}");
}

#[tokio::test]
async fn a_hanging_ticket_does_not_hold_up_others() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.with(|s| s.gated_tickets.push(1));
    outbox.enqueue(entry("slow-1", 1)).await.unwrap();
    outbox.enqueue(entry("slow-2", 1)).await.unwrap();
    outbox.enqueue(entry("fast-1", 2)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("ticket 2 delivered", |s| s.comments.contains_key(&2)).await;
    assert_eq!(
        sink.posts().iter().filter(|c| c.ticket_id == 1).count(),
        1,
        "one post per ticket at a time"
    );
    sink.open_gate();
    sink.wait_until("ticket 1 delivered", |s| s.comments.get(&1).is_some_and(|c| c.len() == 2))
        .await;
    sender.stop().await;
    assert_eq!(sink.comments(1), [entry("slow-1", 1).body, entry("slow-2", 1).body]);
}

#[tokio::test]
async fn retry_after_is_waited_for_and_does_not_use_up_attempts() {
    let policy = SendPolicy { max_attempts: 1, ..fast_policy() };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.script(9, [Step::Fail(PostError::RetryAfter(Duration::from_millis(300)))]);
    outbox.enqueue(entry("call-1", 9)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("delivered", |s| s.comments.contains_key(&9)).await;
    sender.stop().await;
    let posts = sink.posts();
    assert_eq!(posts.len(), 2);
    let waited = posts[1].at - posts[0].at;
    assert!(waited >= Duration::from_millis(295), "waited only {waited:?}");
    assert_eq!(state_of(&outbox, "call-1").await, EntryState::Delivered);
}

#[tokio::test]
async fn transient_failures_back_off_with_growing_waits() {
    let policy = SendPolicy {
        max_attempts: 10,
        backoff_base: Duration::from_millis(40),
        backoff_cap: Duration::from_secs(1),
        ..fast_policy()
    };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.script(3, (0..3).map(|_| Step::Fail(PostError::Transient("502".into()))));
    outbox.enqueue(entry("call-1", 3)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("delivered", |s| s.comments.contains_key(&3)).await;
    sender.stop().await;
    let times: Vec<Instant> = sink.posts().iter().map(|c| c.at).collect();
    assert_eq!(times.len(), 4);
    // Backoffs 40, 80, 160 ms with equal jitter: at least half of each.
    for (n, least_ms) in [(1, 20), (2, 40), (3, 80)] {
        let gap = times[n] - times[n - 1];
        assert!(gap >= Duration::from_millis(least_ms - 2), "gap {n} was {gap:?}");
    }
}

#[tokio::test]
async fn ambiguous_failure_that_landed_is_checked_not_resent() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.script(5, [Step::LandThenFail(PostError::Ambiguous("timeout after send".into()))]);
    outbox.enqueue(entry("call-1", 5)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("the check", |s| s.calls.iter().any(|c| c.kind == CallKind::Check)).await;
    sender.stop().await;
    let kinds: Vec<CallKind> = sink.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CallKind::Post, CallKind::Check]);
    assert_eq!(sink.calls()[1].text, "call-1", "the check searches for the call id");
    assert_eq!(sink.comments(5).len(), 1);
    assert_eq!(state_of(&outbox, "call-1").await, EntryState::Delivered);
}

#[tokio::test]
async fn ambiguous_failure_that_did_not_land_is_resent_once() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.script(5, [Step::Fail(PostError::Ambiguous("connection reset".into()))]);
    outbox.enqueue(entry("call-1", 5)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("delivered", |s| s.comments.contains_key(&5)).await;
    sender.stop().await;
    let kinds: Vec<CallKind> = sink.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CallKind::Post, CallKind::Check, CallKind::Post]);
    assert_eq!(sink.comments(5).len(), 1);
}

#[tokio::test]
async fn an_attempt_that_times_out_counts_as_ambiguous() {
    let policy = SendPolicy { attempt_timeout: Duration::from_millis(100), ..fast_policy() };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.script(5, [Step::Hang]);
    outbox.enqueue(entry("call-1", 5)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("delivered", |s| s.comments.contains_key(&5)).await;
    sender.stop().await;
    let kinds: Vec<CallKind> = sink.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CallKind::Post, CallKind::Check, CallKind::Post]);
}

#[tokio::test]
async fn permanent_failure_goes_straight_to_the_dead_letters() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.script(404, [Step::Fail(PostError::Permanent("404 RecordNotFound".into()))]);
    outbox.enqueue(entry("call-1", 404)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("one post", |s| !s.calls.is_empty()).await;
    sender.stop().await;
    assert_eq!(sink.calls().len(), 1);
    let dead = outbox.list(EntryState::DeadLetter, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0].last_error.as_deref().unwrap_or("").contains("404 RecordNotFound"));
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 1));
    assert!(!outbox.enqueue(entry("call-1", 404)).await.unwrap(), "a dead call id stays known");
}

#[tokio::test]
async fn max_attempts_then_dead_letter_then_replay_delivers() {
    let policy = SendPolicy { max_attempts: 3, ..fast_policy() };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.with(|s| s.down = true);
    outbox.enqueue(entry("call-1", 11)).await.unwrap();
    outbox.enqueue(entry("call-2", 12)).await.unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("six posts", |s| s.calls.len() >= 6).await;
    sender.stop().await;
    assert_eq!(sink.calls().len(), 6, "exactly max_attempts per entry");
    assert_eq!(outbox.stats().await.unwrap().dead_letters, 2);
    assert_eq!(state_of(&outbox, "call-1").await, EntryState::DeadLetter);

    sink.with(|s| s.down = false);
    let none = DeadLetterFilter { ticket_id: Some(999), call_id: None };
    assert_eq!(outbox.replay_dead_letters(none).await.unwrap(), 0);
    let one = DeadLetterFilter { ticket_id: Some(11), call_id: None };
    assert_eq!(outbox.replay_dead_letters(one).await.unwrap(), 1);
    let replayed = outbox.find("call-1").await.unwrap().unwrap();
    assert_eq!((replayed.state, replayed.attempts), (EntryState::Pending, 0));

    let sender = start_sender(&outbox, &sink);
    sink.wait_until("replayed entry delivered", |s| s.comments.contains_key(&11)).await;
    sender.stop().await;
    assert_eq!(sink.comments(11), [entry("call-1", 11).body]);
    assert!(sink.comments(12).is_empty(), "the other dead letter stays dead");
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.delivered, stats.dead_letters), (0, 1, 1));
    let all = DeadLetterFilter::default();
    assert_eq!(outbox.replay_dead_letters(all).await.unwrap(), 1);
}

#[tokio::test]
async fn sink_down_at_enqueue_then_delivered_once_it_is_back() {
    let policy = SendPolicy { max_attempts: 1000, ..fast_policy() };
    let (_dir, outbox) = temp_outbox(policy);
    let sink = FakeSink::new();
    sink.with(|s| s.down = true);
    let sender = start_sender(&outbox, &sink);
    outbox.enqueue(entry("call-1", 21)).await.unwrap();
    sink.wait_until("a few failed posts", |s| s.calls.len() >= 3).await;
    assert_eq!(state_of(&outbox, "call-1").await, EntryState::Pending);
    sink.with(|s| s.down = false);
    sink.wait_until("delivered", |s| s.comments.contains_key(&21)).await;
    sender.stop().await;
    assert_eq!(sink.comments(21).len(), 1);
    assert_eq!(state_of(&outbox, "call-1").await, EntryState::Delivered);
    assert_eq!(outbox.stats().await.unwrap().oldest_pending_age, None);
}

#[tokio::test]
async fn an_attempt_interrupted_by_a_crash_is_checked_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite");
    {
        let outbox = Outbox::open_with_policy(&path, fast_policy()).unwrap();
        outbox.enqueue(entry("landed", 31)).await.unwrap();
        outbox.enqueue(entry("lost", 32)).await.unwrap();
        // Both attempts start; the process dies before any result is recorded.
        let heads = outbox.with_store(|s| s.write(|w| w.heads(10))).await.unwrap();
        for head in heads {
            let started = outbox
                .with_store(move |s| s.write(|w| w.start_attempt(head.seq, 1)))
                .await
                .unwrap();
            assert!(started.is_some_and(|a| !a.interrupted && !a.check_first));
        }
        assert_eq!(outbox.stats().await.unwrap().in_flight, 2);
    }
    let sink = FakeSink::new();
    // The first one reached Zendesk before the crash; the second did not.
    sink.with(|s| s.comments.insert(31, vec![entry("landed", 31).body]));
    let outbox = Outbox::open_with_policy(&path, fast_policy()).unwrap();
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("ticket 32 delivered", |s| s.comments.contains_key(&32)).await;
    sink.wait_until("ticket 31 checked", |s| s.calls.iter().any(|c| c.ticket_id == 31)).await;
    sender.stop().await;
    let for_31: Vec<CallKind> =
        sink.calls().iter().filter(|c| c.ticket_id == 31).map(|c| c.kind).collect();
    let for_32: Vec<CallKind> =
        sink.calls().iter().filter(|c| c.ticket_id == 32).map(|c| c.kind).collect();
    assert_eq!(for_31, [CallKind::Check]);
    assert_eq!(for_32, [CallKind::Check, CallKind::Post]);
    assert_eq!(sink.comments(31).len(), 1);
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.delivered), (0, 0, 2));
}

#[tokio::test]
async fn a_second_sender_on_the_same_file_is_refused() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    let first = start_sender(&outbox, &sink);
    outbox.enqueue(entry("call-1", 1)).await.unwrap();
    sink.wait_until("the first sender at work", |s| !s.calls.is_empty()).await;
    let second = Outbox::open_with_policy(outbox.path(), fast_policy()).unwrap();
    let refused =
        tokio::time::timeout(WAIT, run_sender(second.clone(), FakeSink::new(), async {})).await;
    assert!(matches!(refused, Ok(Err(OutboxError::SenderRunning(_)))), "{refused:?}");
    first.stop().await;
    // Once the first has stopped, the lock is free again.
    let again = tokio::time::timeout(WAIT, run_sender(second, FakeSink::new(), async {})).await;
    assert!(matches!(again, Ok(Ok(()))), "{again:?}");
}

#[tokio::test]
async fn idle_sender_stops_promptly() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let started = Instant::now();
    let sender = start_sender(&outbox, &FakeSink::new());
    sender.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn delivered_entries_are_pruned_after_keep_done() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    outbox.enqueue(entry("call-1", 1)).await.unwrap();
    let seq = outbox.with_store(|s| s.write(|w| w.heads(1))).await.unwrap()[0].seq;
    outbox
        .with_store(move |s| s.write(|w| w.finish(seq, &Disposition::Done, 1_000)))
        .await
        .unwrap();
    assert_eq!(outbox.with_store(|s| s.prune_delivered(1_000)).await.unwrap(), 0);
    assert_eq!(outbox.with_store(|s| s.prune_delivered(1_001)).await.unwrap(), 1);
    assert!(outbox.find("call-1").await.unwrap().is_none());
}

#[test]
fn outbox_config_keys_are_checked_and_named() {
    use crate::config::Config;
    let config =
        Config::load_with_env(None, [("ZENDESK_IVR_OUTBOX__BACKOFF_CAP_MS", "2000")]).unwrap();
    assert_eq!(SendPolicy::from_config(&config.outbox).backoff_cap, Duration::from_secs(2));
    for (key, value, named) in [
        ("ZENDESK_IVR_OUTBOX__MAX_ATTEMPTS", "0", "outbox.max_attempts"),
        ("ZENDESK_IVR_OUTBOX__MAX_IN_FLIGHT", "0", "outbox.max_in_flight"),
        ("ZENDESK_IVR_OUTBOX__BACKOFF_CAP_MS", "10", "outbox.backoff_cap_ms"),
        ("ZENDESK_IVR_OUTBOX__ATTEMPT_TIMEOUT_S", "0", "outbox.attempt_timeout_s"),
    ] {
        let err = Config::load_with_env(None, [(key, value)]).unwrap_err().to_string();
        assert!(err.contains(named), "{key}={value}: {err}");
    }
}

#[test]
fn gauges_are_published() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let stats = Stats {
        pending: 7,
        in_flight: 1,
        delivered: 3,
        dead_letters: 2,
        oldest_pending_age: Some(Duration::from_secs(42)),
    };
    metrics::with_local_recorder(&recorder, || publish_gauges(&stats));
    let text = recorder.handle().render();
    assert!(text.contains("zendesk_ivr_outbox_depth 7"), "{text}");
    assert!(text.contains("zendesk_ivr_outbox_oldest_pending_age_seconds 42"), "{text}");
    assert!(text.contains("zendesk_ivr_outbox_dead_letters 2"), "{text}");
}

#[test]
fn cli_reports_stats_lists_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::OutboxConfig {
        path: dir.path().join("outbox.sqlite"),
        ..Default::default()
    };
    let missing = cli::run(&config, cli::OutboxCommand::Stats, &mut Vec::new());
    assert!(matches!(missing, Err(cli::CommandError::Missing(_))), "no database is created");
    assert!(!config.path.exists());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let outbox = Outbox::open_config(&config).unwrap();
        outbox.enqueue(entry("call-1", 1)).await.unwrap();
        outbox.enqueue(entry("call-2", 2)).await.unwrap();
        let seq = outbox.with_store(|s| s.write(|w| w.heads(10))).await.unwrap()[0].seq;
        let dead = Disposition::Dead {
            error: "401 \"Couldn't authenticate you\"".into(),
            check_first: false,
        };
        outbox.with_store(move |s| s.write(|w| w.finish(seq, &dead, 5))).await.unwrap();
    });
    let run = |command: cli::OutboxCommand| {
        let mut out = Vec::new();
        cli::run(&config, command, &mut out).map(|()| String::from_utf8(out).unwrap())
    };
    let stats = run(cli::OutboxCommand::Stats).unwrap();
    assert!(stats.contains("pending 1\n") && stats.contains("dead_letters 1\n"), "{stats}");
    let dead = run(cli::OutboxCommand::List { dead: true, limit: 10 }).unwrap();
    assert!(dead.contains("call_id=\"call-1\" ticket=1"), "{dead}");
    assert!(dead.contains("Couldn't authenticate"), "{dead}");
    assert!(!dead.contains("+4798765432"), "bodies are not printed: {dead}");
    let pending = run(cli::OutboxCommand::List { dead: false, limit: 10 }).unwrap();
    assert!(pending.contains("call-2") && pending.contains("1 pending entries shown"), "{pending}");
    let refused = run(cli::OutboxCommand::Replay { all: false, ticket: None, call_id: None });
    assert!(matches!(refused, Err(cli::CommandError::ReplayWithoutFilter)));
    let replay = run(cli::OutboxCommand::Replay {
        all: false,
        ticket: None,
        call_id: Some("call-1".into()),
    });
    assert_eq!(replay.unwrap(), "1 dead letters moved back to pending\n");
    assert!(run(cli::OutboxCommand::Stats).unwrap().contains("pending 2\n"));
}

#[tokio::test]
async fn entries_that_open_tickets_are_delivered_side_by_side_and_checked_after_ambiguity() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    // The first open lands but its answer is lost; the second is held at a gate; neither
    // holds up the other, nor a comment on a ticket.
    sink.script(0, [Step::LandThenFail(PostError::Ambiguous("timeout".into())), Step::Hang]);
    for e in [opening("open-1"), opening("open-2"), entry("comment-1", 7)] {
        assert!(outbox.enqueue(e).await.unwrap());
    }
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("comment-1 posted", |s| s.comments.get(&7).is_some_and(|c| c.len() == 1)).await;
    sink.wait_until("open-1 checked", |s| {
        s.calls.iter().any(|c| c.kind == CallKind::CheckOpened && c.text == "open-1")
    })
    .await;
    let opens: Vec<String> =
        sink.calls().into_iter().filter(|c| c.kind == CallKind::Open).map(|c| c.text).collect();
    assert_eq!(opens.iter().filter(|b| b.contains("open-1")).count(), 1, "opened once: {opens:?}");
    assert!(opens.iter().any(|b| b.contains("open-2")), "open-2 ran alongside: {opens:?}");
    sender.stop().await;
    // Read after the stop: every finished attempt is recorded by then.
    assert_eq!(state_of(&outbox, "open-1").await, EntryState::Delivered);
    let opened = sink.with(|s| s.opened.clone());
    assert_eq!(opened.iter().filter(|(id, _)| id == "open-1").count(), 1);
    assert!(opened[0].1.contains("[call-id: open-1]"), "the body is the first comment");
    let listed = outbox.find("open-1").await.unwrap().unwrap();
    assert_eq!(listed.ticket_id, 0);
    assert_eq!(listed.deferred, opening("open-1").deferred);
}

#[tokio::test]
async fn an_opening_entry_needs_a_requester_and_no_ticket_id() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let mut with_ticket = opening("open-1");
    with_ticket.ticket_id = 7;
    let mut nobody = opening("open-2");
    if let Some(Deferred::OpenTicket(open)) = nobody.deferred.as_mut() {
        open.requester = None;
    }
    let no_number = for_caller("open-3", "", true);
    for bad in [with_ticket, nobody, no_number] {
        assert!(matches!(outbox.enqueue(bad).await, Err(OutboxError::InvalidEntry(_))));
    }
}

#[tokio::test]
async fn a_call_that_could_not_ask_zendesk_finds_the_callers_ticket_when_sent() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.with(|s| {
        s.callers.insert("+4798765432".into(), CallersTicket::Ticket(7));
        s.callers.insert("+4741234567".into(), CallersTicket::UserWithoutTicket(55));
        s.down = true;
    });
    let entries = [
        for_caller("known", "+4798765432", false),
        for_caller("no-ticket", "+4741234567", true),
        for_caller("stranger", "+4722222222", false),
    ];
    for e in entries {
        assert!(outbox.enqueue(e).await.unwrap());
    }
    let sender = start_sender(&outbox, &sink);
    // Zendesk is still down: lookups fail and are retried.
    sink.wait_until("lookups while down", |s| {
        s.calls.iter().filter(|c| c.kind == CallKind::FindCaller).count() >= 3
    })
    .await;
    sink.with(|s| s.down = false);
    sink.wait_until("known posted", |s| s.comments.get(&7).is_some_and(|c| c.len() == 1)).await;
    sink.wait_until("no-ticket opened", |s| s.opened.len() == 1).await;
    let stranger = loop {
        let found = outbox.find("stranger").await.unwrap().unwrap();
        if found.state != EntryState::Pending {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    sender.stop().await;
    assert!(sink.comments(7)[0].contains("[call-id: known]"));
    assert_eq!(sink.with(|s| s.opened[0].0.clone()), "no-ticket");
    // Nobody to comment on and no ticket to open: a dead letter that says why.
    assert_eq!(stranger.state, EntryState::DeadLetter);
    assert!(stranger.last_error.unwrap_or_default().contains("no unsolved ticket"));
    assert_eq!(state_of(&outbox, "known").await, EntryState::Delivered);
}

#[tokio::test]
async fn a_looked_up_ticket_is_kept_for_retries_so_a_lost_answer_makes_no_duplicate() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    sink.with(|s| s.callers.insert("+4798765432".into(), CallersTicket::Ticket(7)));
    // The post to 7 lands but its answer is lost; meanwhile the caller's latest unsolved
    // ticket becomes 8 (7 was solved).
    sink.script(7, [Step::LandThenFail(PostError::Ambiguous("timeout".into()))]);
    assert!(outbox.enqueue(for_caller("moved", "+4798765432", true)).await.unwrap());
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("the first post", |s| s.calls.iter().any(|c| c.kind == CallKind::Post)).await;
    sink.with(|s| s.callers.insert("+4798765432".into(), CallersTicket::Ticket(8)));
    sink.wait_until("the retry's check of 7", |s| {
        s.calls.iter().any(|c| c.kind == CallKind::Check && c.ticket_id == 7)
    })
    .await;
    sender.stop().await;
    assert_eq!(state_of(&outbox, "moved").await, EntryState::Delivered);
    assert_eq!(sink.comments(7).len(), 1, "one comment, on the ticket first found");
    assert!(sink.comments(8).is_empty());
    let lookups = sink.calls().iter().filter(|c| c.kind == CallKind::FindCaller).count();
    assert_eq!(lookups, 1, "looked up once, then pinned");
    let stored = outbox.find("moved").await.unwrap().unwrap();
    assert_eq!((stored.ticket_id, stored.deferred), (7, None));
}
