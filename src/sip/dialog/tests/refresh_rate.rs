//! The per-dialog rate of re-INVITEs and UPDATEs from the peer, in virtual time.

use std::time::Duration;

use super::harness::*;
use crate::sip::dialog::{CallEvent, EndReason, REFRESH_BURST, REFRESH_PER_SECOND, UaAction};
use crate::sip::transaction::TransactionEvent;

fn reinvite(b: &mut Bench, c: &mut Caller, id: &str, body: &str) -> Vec<UaAction> {
    c.cseq += 1;
    b.send(id, c.make("INVITE", id, "", body))
}

fn ack(b: &mut Bench, c: &Caller, branch: &str) {
    b.event(TransactionEvent::Ack { request: c.make("ACK", branch, "", ""), source: caller() });
}

/// A re-INVITE answered 200 and acknowledged.
fn taken(b: &mut Bench, c: &mut Caller, id: &str, body: &str) -> Vec<UaAction> {
    let out = reinvite(b, c, id, body);
    assert_eq!(statuses(&out), vec![200], "{id}: {out:?}");
    ack(b, c, &format!("ack-{id}"));
    out
}

/// A re-INVITE refused for its rate: 500 with Retry-After of `seconds`, and no event.
fn refused(b: &mut Bench, c: &mut Caller, id: &str, body: &str, seconds: &str) {
    let out = reinvite(b, c, id, body);
    let answer = only_response(&out, 500);
    assert_eq!(header(&answer.headers, "Retry-After").as_deref(), Some(seconds), "{id}");
    assert!(events(&out).is_empty(), "{id}: {out:?}");
}

#[test]
fn a_reinvite_flood_gets_the_burst_then_500_with_retry_after() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refresh-flood-1");
    let (call, _) = b.establish(&mut c, "");
    for i in 0..REFRESH_BURST {
        taken(&mut b, &mut c, &format!("r{i}"), OFFER);
    }
    // Past the burst, at the same instant: refused, whatever the offer says.
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    for i in 0..50 {
        refused(&mut b, &mut c, &format!("x{i}"), &hold, "1");
    }
    // UPDATE shares the budget.
    c.cseq += 1;
    let out = b.send("u1", c.make("UPDATE", "u1", "", ""));
    assert_eq!(header(&only_response(&out, 500).headers, "Retry-After").as_deref(), Some("1"));

    // Half a token later, still refused, still told to wait a second (rounded up).
    b.advance(Duration::from_millis(500));
    refused(&mut b, &mut c, "y1", &hold, "1");
    // At the sustained rate, one a second is taken: the hold now applies.
    b.advance(Duration::from_secs(1) / REFRESH_PER_SECOND);
    let out = taken(&mut b, &mut c, "hold", &hold);
    assert!(
        matches!(events(&out).as_slice(), [CallEvent::MediaChanged { call: c2, .. }] if *c2 == call),
        "{out:?}"
    );
    refused(&mut b, &mut c, "y2", OFFER, "1");

    // A quiet minute gives the burst back, no more.
    b.advance(Duration::from_secs(60));
    for i in 0..REFRESH_BURST {
        taken(&mut b, &mut c, &format!("s{i}"), OFFER);
    }
    refused(&mut b, &mut c, "z1", OFFER, "1");

    // Other requests in the dialog are not held to this rate, and the call ends cleanly.
    c.cseq += 1;
    let out = b.send("bye", c.make("BYE", "bye", "", ""));
    assert_eq!(statuses(&out), vec![200]);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, CallEvent::Terminated { reason: EndReason::RemoteBye, .. })),
        "{out:?}"
    );
}

#[test]
fn glare_within_the_rate_is_still_491() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refresh-flood-2");
    b.establish(&mut c, "");
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r1", OFFER)), vec![200]);
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r2", OFFER)), vec![491]);
}

#[test]
fn each_call_has_its_own_budget() {
    let mut b = Bench::new(config());
    let mut first = Caller::new("refresh-flood-3a");
    b.establish(&mut first, "");
    for i in 0..REFRESH_BURST {
        taken(&mut b, &mut first, &format!("a{i}"), OFFER);
    }
    refused(&mut b, &mut first, "a-over", OFFER, "1");
    let mut second = Caller::new("refresh-flood-3b");
    second.from_tag = "caller2".into();
    let out = b.send("inv2", second.make("INVITE", "inv2", "", OFFER));
    let call = incoming(&out).expect("Incoming");
    b.ua.accept(b.now, call, rtp()).expect("accepted");
    let ok = only_response(&b.drain(), 200);
    let to = header(&ok.headers, "To").expect("To");
    second.to_tag = crate::sip::header_text::tag(&to).map(str::to_string);
    ack(&mut b, &second, "ack-inv2");
    taken(&mut b, &mut second, "b0", OFFER);
}
