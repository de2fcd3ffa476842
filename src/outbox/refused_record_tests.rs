//! The sender when the database refuses what a round writes about one entry: that entry
//! alone gives up, and the rest of its round is kept.

use std::time::Duration;

use tokio::time::Instant;

use super::test_sink::{Call, CallKind, FakeSink};
use super::tests::{entry, fast_policy, for_caller, start_sender, temp_outbox};
use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// Waits until the entry has left the pending entries, and returns it.
async fn settled(outbox: &Outbox, call_id: &str) -> EntryInfo {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = outbox.find(call_id).await.unwrap().expect("entry exists");
        if found.state != EntryState::Pending {
            return found;
        }
        assert!(Instant::now() < deadline, "{call_id} still pending: {found:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The good entries were each delivered by their first attempt, without a duplicate check.
async fn delivered_once_unchecked(outbox: &Outbox, sink: &FakeSink, tickets: &[u64]) {
    for ticket in tickets {
        let good = settled(outbox, &format!("good-{ticket}")).await;
        assert_eq!((good.state, good.attempts), (EntryState::Delivered, 1), "{good:?}");
        assert_eq!(sink.comments(*ticket).len(), 1);
    }
    let checks: Vec<Call> =
        sink.calls().into_iter().filter(|c| c.kind == CallKind::Check).collect();
    assert!(checks.is_empty(), "outcomes were lost and re-checked: {checks:?}");
}

#[tokio::test]
async fn a_looked_up_ticket_id_out_of_range_is_a_dead_letter_and_spares_its_round() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    let sink = FakeSink::new();
    // Zendesk's JSON names a ticket no database row can hold.
    sink.with(|s| {
        s.callers.insert("+4798765432".into(), CallersTicket::Ticket(u64::MAX));
        s.gated_tickets = vec![7, 8];
    });
    assert!(outbox.enqueue(for_caller("poison", "+4798765432", true)).await.unwrap());
    assert!(outbox.enqueue(entry("good-7", 7)).await.unwrap());
    assert!(outbox.enqueue(entry("good-8", 8)).await.unwrap());
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("both posts under way", |s| {
        s.calls.iter().filter(|c| c.kind == CallKind::Post).count() == 2
    })
    .await;
    sink.open_gate();
    let poison = settled(&outbox, "poison").await;
    delivered_once_unchecked(&outbox, &sink, &[7, 8]).await;
    sender.stop().await;
    assert_eq!(poison.state, EntryState::DeadLetter);
    let error = poison.last_error.unwrap_or_default();
    assert!(error.contains(&u64::MAX.to_string()), "{error}");
    let lookups = sink.calls().iter().filter(|c| c.kind == CallKind::FindCaller).count();
    assert_eq!(lookups, 1, "looked up once, then given up");
}

#[tokio::test]
async fn an_outcome_the_database_refuses_is_dead_lettered_alone_and_its_round_is_kept() {
    let (_dir, outbox) = temp_outbox(fast_policy());
    // The database refuses to mark one entry done, as a broken row might.
    rusqlite::Connection::open(outbox.path())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_bad BEFORE UPDATE OF done_at_ms ON outbox_entries
             WHEN NEW.call_id = 'bad' AND NEW.done_at_ms IS NOT NULL
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let sink = FakeSink::new();
    sink.with(|s| s.gated_tickets = vec![6, 7, 8]);
    assert!(outbox.enqueue(entry("bad", 6)).await.unwrap());
    assert!(outbox.enqueue(entry("good-7", 7)).await.unwrap());
    assert!(outbox.enqueue(entry("good-8", 8)).await.unwrap());
    let sender = start_sender(&outbox, &sink);
    sink.wait_until("three posts under way", |s| {
        s.calls.iter().filter(|c| c.kind == CallKind::Post).count() == 3
    })
    .await;
    // All three finish together, so their outcomes share a round.
    sink.open_gate();
    let bad = settled(&outbox, "bad").await;
    delivered_once_unchecked(&outbox, &sink, &[7, 8]).await;
    sender.stop().await;
    assert_eq!(bad.state, EntryState::DeadLetter, "{bad:?}");
    let error = bad.last_error.unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    assert!(bad.check_first, "a replay checks the ticket before posting again");
    assert_eq!(sink.comments(6).len(), 1, "posted once");
}
