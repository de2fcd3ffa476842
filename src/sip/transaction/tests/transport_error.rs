//! A transport error on a client transaction's request ends it at once with a 503 made
//! by the layer (RFC 3261 §8.1.3.1, §17.1.1.2, §17.1.2.2), not at Timer B or F.

use super::*;
use crate::sip::transaction::TransactionId;

fn agent() -> Peer {
    peer("192.0.2.20:5061", Transport::Tcp)
}

/// Sends `req` to the agent over TCP; returns its id, checking that the transmit names it.
fn start(h: &mut Harness, req: &rsip::Request) -> TransactionId {
    let id = h.layer.send_request(h.now, req.clone(), agent()).expect("send");
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transaction.as_ref(), Some(&id), "the runtime can report on it");
    id
}

/// The one event: a 503 for `id`, with the request's Via, Call-ID and CSeq.
fn failed_as_503(h: &mut Harness, id: &TransactionId, req: &rsip::Request) {
    let events = h.events();
    let [TransactionEvent::Response { id: got, response }] = events.as_slice() else {
        panic!("one response expected: {events:?}");
    };
    assert_eq!(got, id);
    assert_eq!(response.status_code.code(), 503);
    for name in ["Via", "Call-ID", "CSeq", "From", "To"] {
        assert_eq!(header(&response.headers, name), header(&req.headers, name), "{name}");
    }
}

#[test]
fn an_invite_that_cannot_be_sent_fails_as_503_at_once() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKt1").tcp().build();
    let id = start(&mut h, &req);
    h.now += ms(3);
    h.layer.handle_transport_error(&id);
    failed_as_503(&mut h, &id, &req);
    assert!(h.transmits().is_empty(), "no ACK: nothing came from the far end");
    assert!(h.layer.is_empty(), "the transaction ended");
    assert_eq!(h.layer.poll_timeout(), None, "Timer B disarmed");
    assert!(h.run_until(ms(64 * 500)).is_empty());
    assert!(h.events().is_empty(), "no Timeout later");
}

#[test]
fn a_non_invite_that_cannot_be_sent_fails_as_503_at_once() {
    for method in ["REGISTER", "OPTIONS", "BYE"] {
        let mut h = Harness::new();
        let req = Req::new(method, "z9hG4bKt2").tcp().build();
        let id = start(&mut h, &req);
        h.layer.handle_transport_error(&id);
        failed_as_503(&mut h, &id, &req);
        assert!(h.layer.is_empty(), "{method}: Timer F disarmed");
    }
}

#[test]
fn an_invite_that_got_a_provisional_ignores_a_late_transport_error() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKt3").tcp().build();
    let id = start(&mut h, &req);
    h.layer.handle_response(h.now, answer(&req, 180), agent());
    assert_eq!(h.events().len(), 1, "the 180");
    h.now += ms(10_000);
    h.layer.handle_transport_error(&id);
    assert!(h.events().is_empty(), "the far end has the INVITE: no 503");
    assert_eq!(h.layer.len(), 1, "the transaction still waits for its final response");
    h.layer.handle_response(h.now, answer(&req, 200), agent());
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [TransactionEvent::Response { response, .. }] if response.status_code.code() == 200),
        "the 2xx reaches the user, who ACKs it: {events:?}"
    );
}

#[test]
fn only_the_first_send_of_a_request_carries_its_transaction() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKt5").build();
    let to = peer("192.0.2.20:5060", Transport::Udp);
    let id = h.layer.send_request(h.now, req, to).expect("send");
    let first = h.transmits();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].transaction.as_ref(), Some(&id));
    let retransmitted = h.run_until(ms(2_000));
    assert!(retransmitted.len() >= 2, "Timer A retransmitted the INVITE over UDP");
    assert!(
        retransmitted.iter().all(|(_, t)| t.transaction.is_none()),
        "a retransmission's failure is left to Timer B: {retransmitted:?}"
    );
}

#[test]
fn an_error_after_the_final_response_or_for_no_transaction_changes_nothing() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKt4").tcp().build();
    let id = start(&mut h, &req);
    h.layer.handle_response(h.now, answer(&req, 200), agent());
    assert_eq!(h.events().len(), 1, "the 200");
    h.layer.handle_transport_error(&id);
    assert!(h.events().is_empty(), "the 200 stands");
    assert_eq!(h.layer.len(), 1, "Timer M still absorbs 2xx retransmissions");

    h.layer.handle_transport_error(&TransactionId("c99:INVITE z9hG4bKnone".into()));
    assert!(h.events().is_empty());
}

#[test]
fn server_transactions_and_acks_carry_no_transaction_to_report() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", "z9hG4bKs1").tcp().build();
    h.layer.handle_request(h.now, invite, caller(Transport::Tcp));
    let sent = h.transmits();
    assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
    assert_eq!(sent[0].transaction, None, "a response is no client request");
    let events = h.events();
    let [TransactionEvent::Request { id, .. }] = events.as_slice() else {
        panic!("the INVITE is passed up");
    };
    h.layer.handle_transport_error(id);
    assert_eq!(h.layer.len(), 1, "a server transaction is left to its timers");

    // The layer's own ACK to a non-2xx is not reported either.
    let req = Req::new("INVITE", "z9hG4bKt5").tcp().build();
    start(&mut h, &req);
    h.layer.handle_response(h.now, answer(&req, 486), agent());
    let sent = h.transmits();
    assert_eq!(sent.iter().map(method).collect::<Vec<_>>(), vec![Some(rsip::Method::Ack)]);
    assert_eq!(sent[0].transaction, None);
}
