//! Server non-INVITE transactions: Trying, Proceeding, Completed, Timer J.

use super::*;
use crate::sip::transaction::TransactionId;

fn open(h: &mut Harness, req: &Req) -> TransactionId {
    h.layer.handle_request(h.now, req.build(), caller(req.transport));
    assert!(h.transmits().is_empty(), "no automatic 100 for non-INVITE");
    match h.events().as_slice() {
        [TransactionEvent::Request { id, request, .. }] => {
            assert_eq!(request.method, rsip::Method::Bye);
            id.clone()
        }
        other => panic!("expected Request, got {other:?}"),
    }
}

#[test]
fn retransmissions_get_the_last_response_and_timer_j_ends_it() {
    let mut h = Harness::new();
    let req = Req::new("BYE", "z9hG4bKbye1").with_to_tag("uas1").cseq(2);
    let id = open(&mut h, &req);
    // Trying: absorbed without an answer.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert!(h.transmits().is_empty());
    h.layer.respond(h.now, &id, answer(&req.build(), 100)).expect("100");
    h.transmits();
    // Proceeding: the provisional again.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
    // Completed: the final again, nothing passed up.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
    assert!(h.events().is_empty());
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(64 * 500)), "Timer J = 64·T1");
    let sent = h.run_until(ms(64 * 500 - 1));
    assert!(sent.is_empty(), "no retransmission of non-INVITE responses");
    assert_eq!(h.layer.len(), 1);
    h.run_until(ms(64 * 500));
    assert!(h.layer.is_empty());
}

#[test]
fn over_tcp_timer_j_is_zero() {
    let mut h = Harness::new();
    let req = Req::new("BYE", "z9hG4bKbye1").with_to_tag("uas1").tcp();
    let id = open(&mut h, &req);
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    assert_eq!(h.transmits()[0].peer, caller(Transport::Tcp));
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}
