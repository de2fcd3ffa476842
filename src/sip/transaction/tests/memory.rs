//! The byte budget for stored messages: what it admits, what it refuses, and that it is
//! given back when transactions end.

use super::*;
use crate::sip::transaction::{PER_TRANSACTION_BYTES, TransactionError, TransactionLimits};

fn config() -> TimerConfig {
    TimerConfig { t1: T1, t2: T2, t4: T4 }
}

fn request_charge() -> usize {
    // The layer stamps received= on the top Via before storing: allow for it.
    PER_TRANSACTION_BYTES + Req::new("BYE", "z9hG4bKm0").text().len() + 64
}

#[test]
fn new_requests_past_the_byte_budget_get_503_and_the_budget_returns() {
    let budget = 2 * request_charge() + request_charge() / 2;
    let limits = TransactionLimits { max_transactions: 1000, max_stored_bytes: budget };
    let mut h = Harness::with_layer(TransactionLayer::with_limits(config(), limits));
    for branch in ["z9hG4bKm1", "z9hG4bKm2"] {
        h.layer.handle_request(h.now, Req::new("BYE", branch).build(), caller(Transport::Udp));
    }
    assert_eq!(h.events().len(), 2, "two fit the budget");
    assert!(h.transmits().is_empty());
    assert!(h.layer.stored_bytes() > 2 * PER_TRANSACTION_BYTES);
    assert!(h.layer.stored_bytes() <= budget);

    h.layer.handle_request(h.now, Req::new("BYE", "z9hG4bKm3").build(), caller(Transport::Udp));
    assert!(h.events().is_empty(), "the third is not passed up");
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(503)]);
    assert_eq!(h.layer.overload_rejections(), 1);
    assert_eq!(h.layer.len(), 2, "no state kept for the refused request");
    // Our own requests are refused too, not only the peer's.
    let out =
        h.layer.send_request(h.now, Req::new("OPTIONS", "z9hG4bKo").build(), ivr(Transport::Udp));
    assert_eq!(out, Err(TransactionError::OverBudget(budget)));

    // Live transactions still answer, past the budget: the response is charged too.
    let before = h.layer.stored_bytes();
    let ids: Vec<_> = h.layer_server_ids();
    for (id, branch) in ids.iter().zip(["z9hG4bKm1", "z9hG4bKm2"]) {
        let req = Req::new("BYE", branch).build();
        h.layer.respond(h.now, id, answer(&req, 200)).expect("answer");
    }
    assert!(h.layer.stored_bytes() > before);
    h.transmits();

    // Timer J ends both; the budget is whole again and a new request is taken.
    h.run_until(ms(64 * 500));
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.stored_bytes(), 0);
    h.layer.handle_request(h.now, Req::new("BYE", "z9hG4bKm4").build(), caller(Transport::Udp));
    assert_eq!(h.events().len(), 1);
}

#[test]
fn a_large_request_flood_is_held_to_the_budget_not_the_count() {
    // 10 000 transactions would be allowed by count; 64 kB of budget admits a few dozen.
    let limits = TransactionLimits { max_transactions: 10_000, max_stored_bytes: 64 * 1024 };
    let mut h = Harness::with_layer(TransactionLayer::with_limits(config(), limits));
    let padding = "p".repeat(1000);
    for i in 0..10_000 {
        let text = Req::new("BYE", &format!("z9hG4bKf{i}")).text().replace(
            "Content-Length: 0\r\n",
            &format!("Subject: {padding}\r\nContent-Length: 0\r\n"),
        );
        h.layer.handle_request(h.now, parse_request(&text), caller(Transport::Udp));
    }
    let admitted = h.events().len();
    assert!(admitted > 10 && admitted < 64, "{admitted} admitted");
    assert_eq!(h.layer.overload_rejections() as usize, 10_000 - admitted);
    assert!(h.layer.stored_bytes() <= 64 * 1024);
}

impl Harness {
    /// Ids of the live server transactions, in the order their requests came.
    fn layer_server_ids(&self) -> Vec<crate::sip::transaction::TransactionId> {
        let mut ids: Vec<_> = self
            .layer
            .transactions
            .keys()
            .filter(|id| id.as_str().starts_with('s'))
            .cloned()
            .collect();
        ids.sort();
        ids
    }
}
