//! Client INVITE and non-INVITE transactions.

use super::*;
use crate::sip::transaction::{TransactionError, TransactionId, new_branch};

fn agent(transport: Transport) -> Peer {
    peer("192.0.2.20:5060", transport)
}

fn start(h: &mut Harness, req: &rsip::Request, transport: Transport) -> TransactionId {
    let id = h.layer.send_request(h.now, req.clone(), agent(transport)).expect("send");
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].peer, agent(transport));
    assert_eq!(method(&sent[0]), Some(req.method));
    id
}

fn responses(events: &[TransactionEvent]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            TransactionEvent::Response { response, .. } => Some(response.status_code.code()),
            _ => None,
        })
        .collect()
}

fn timed_out(events: &[TransactionEvent], id: &TransactionId) -> bool {
    matches!(events, [TransactionEvent::Timeout { id: got }] if got == id)
}

#[test]
fn timer_a_doubles_until_timer_b_times_out() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").build();
    let id = start(&mut h, &req, Transport::Udp);
    let sent = h.run_until(ms(64 * 500));
    let expected: Vec<Duration> =
        [500, 1500, 3500, 7500, 15500, 31500].into_iter().map(ms).collect();
    assert_eq!(times(&sent, |t| method(t) == Some(rsip::Method::Invite)), expected);
    assert_eq!(sent.len(), expected.len());
    assert!(timed_out(&h.events(), &id), "Timer B at 64·T1");
    assert!(h.layer.is_empty());
}

#[test]
fn over_tcp_no_timer_a_but_timer_b() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").tcp().build();
    let id = start(&mut h, &req, Transport::Tcp);
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(64 * 500)));
    assert!(h.run_until(ms(64 * 500)).is_empty());
    assert!(timed_out(&h.events(), &id));
}

#[test]
fn provisionals_stop_retransmission_and_each_new_one_is_passed_up() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").build();
    let id = start(&mut h, &req, Transport::Udp);
    h.run_until(ms(600));
    h.transmits();
    for code in [100, 180, 180, 183] {
        h.layer.handle_response(h.now, answer(&req, code), agent(Transport::Udp));
    }
    assert_eq!(responses(&h.events()), vec![100, 180, 183]);
    assert_eq!(h.layer.poll_timeout(), None, "Timers A and B stop in Proceeding");
    assert_eq!(h.layer.len(), 1);

    // A CANCEL bounds the ringing INVITE: no final response in 64·T1 → Timeout.
    let cancel = Req::new("CANCEL", "z9hG4bKc1").build();
    h.layer.send_request(h.now, cancel, agent(Transport::Udp)).expect("cancel");
    h.transmits();
    h.run_until(ms(600) + ms(64 * 500));
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(e, TransactionEvent::Timeout { id: got } if *got == id))
    );
    assert!(h.layer.is_empty());
}

#[test]
fn a_2xx_is_passed_up_with_its_retransmissions_until_timer_m() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").build();
    let id = start(&mut h, &req, Transport::Udp);
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Udp));
    assert!(h.transmits().is_empty(), "the dialog layer ACKs a 2xx, not the transaction");
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Udp));
    let events = h.events();
    assert_eq!(responses(&events), vec![200, 200]);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, TransactionEvent::Response { id: got, .. } if *got == id))
    );
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(64 * 500)), "Timer M only");
    h.run_until(ms(64 * 500));
    assert!(h.layer.is_empty());
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Udp));
    assert!(h.events().is_empty(), "unmatched after Timer M");
}

#[test]
fn a_non_2xx_is_acked_by_the_layer_and_timer_d_absorbs_retransmissions() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").cseq(7).build();
    let id = start(&mut h, &req, Transport::Udp);
    h.layer.handle_response(h.now, answer(&req, 180), agent(Transport::Udp));
    h.layer.handle_response(h.now, answer(&req, 486), agent(Transport::Udp));
    assert_eq!(responses(&h.events()), vec![180, 486]);
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].peer, agent(Transport::Udp));
    let rsip::SipMessage::Request(ack) = &sent[0].message else {
        panic!("expected the ACK");
    };
    assert_eq!(ack.method, rsip::Method::Ack);
    assert_eq!(ack.uri, req.uri, "same Request-URI");
    assert_eq!(header(&ack.headers, "Via"), header(&req.headers, "Via"), "same branch");
    assert_eq!(header(&ack.headers, "To"), Some("<sip:ivr@192.0.2.10>;tag=uas1"));
    assert_eq!(header(&ack.headers, "From"), header(&req.headers, "From"));
    assert_eq!(header(&ack.headers, "Call-ID"), header(&req.headers, "Call-ID"));
    assert_eq!(header(&ack.headers, "CSeq"), Some("7 ACK"));
    assert_eq!(header(&ack.headers, "Route"), header(&req.headers, "Route"));

    // A retransmitted final is ACKed again, not passed up.
    h.now += ms(1000);
    h.layer.handle_response(h.now, answer(&req, 486), agent(Transport::Udp));
    assert_eq!(h.transmits().iter().map(method).collect::<Vec<_>>(), vec![Some(rsip::Method::Ack)]);
    assert!(h.events().is_empty());
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + Duration::from_secs(32)), "Timer D = 32 s");
    h.run_until(Duration::from_secs(32));
    assert!(h.layer.is_empty());
    let _ = id;
}

#[test]
fn over_tcp_timer_d_is_zero() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", "z9hG4bKc1").tcp().build();
    start(&mut h, &req, Transport::Tcp);
    h.layer.handle_response(h.now, answer(&req, 503), agent(Transport::Tcp));
    assert_eq!(h.transmits().iter().map(method).collect::<Vec<_>>(), vec![Some(rsip::Method::Ack)]);
    assert_eq!(responses(&h.events()), vec![503]);
    assert!(h.layer.is_empty());
}

#[test]
fn timer_e_doubles_to_t2_until_timer_f_times_out() {
    let mut h = Harness::new();
    let req = Req::new("OPTIONS", "z9hG4bKo1").build();
    let id = start(&mut h, &req, Transport::Udp);
    let sent = h.run_until(ms(64 * 500));
    let expected: Vec<Duration> = [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(times(&sent, |t| method(t) == Some(rsip::Method::Options)), expected);
    assert!(timed_out(&h.events(), &id), "Timer F at 64·T1");
    assert!(h.layer.is_empty());
}

#[test]
fn timer_e_uses_t2_once_a_provisional_arrived() {
    let mut h = Harness::new();
    let req = Req::new("BYE", "z9hG4bKo1").build();
    start(&mut h, &req, Transport::Udp);
    h.run_until(ms(700));
    h.layer.handle_response(h.now, answer(&req, 100), agent(Transport::Udp));
    assert_eq!(responses(&h.events()), vec![100]);
    let sent = h.run_until(ms(14000));
    assert_eq!(
        times(&sent, |t| method(t) == Some(rsip::Method::Bye)),
        vec![ms(1500), ms(5500), ms(9500), ms(13500)]
    );
}

#[test]
fn non_invite_final_is_passed_up_once_and_timer_k_ends_it() {
    let mut h = Harness::new();
    let req = Req::new("BYE", "z9hG4bKo1").build();
    let id = start(&mut h, &req, Transport::Udp);
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Udp));
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Udp));
    let events = h.events();
    assert_eq!(responses(&events), vec![200]);
    assert!(matches!(&events[0], TransactionEvent::Response { id: got, .. } if *got == id));
    assert_eq!(h.layer.poll_timeout(), Some(h.now + T4), "Timer K = T4");
    assert!(h.run_until(T4).is_empty(), "no retransmission after the final");
    assert!(h.layer.is_empty());

    // TCP: K is zero.
    let req = Req::new("BYE", "z9hG4bKo2").tcp().build();
    start(&mut h, &req, Transport::Tcp);
    h.layer.handle_response(h.now, answer(&req, 200), agent(Transport::Tcp));
    assert!(h.layer.is_empty());
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", "z9hG4bKc1").build();
    let invite_id = start(&mut h, &invite, Transport::Udp);
    let cancel = Req::new("CANCEL", "z9hG4bKc1").build();
    let cancel_id = start(&mut h, &cancel, Transport::Udp);
    h.layer.handle_response(h.now, answer(&cancel, 200), agent(Transport::Udp));
    h.layer.handle_response(h.now, answer(&invite, 487), agent(Transport::Udp));
    let other = Req::new("INVITE", "z9hG4bKother").build();
    h.layer.handle_response(h.now, answer(&other, 200), agent(Transport::Udp));
    let got: Vec<(TransactionId, u16)> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            TransactionEvent::Response { id, response } => Some((id, response.status_code.code())),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(cancel_id, 200), (invite_id, 487)]);
}

#[test]
fn send_request_refuses_ack_missing_and_duplicate_branches() {
    let mut h = Harness::new();
    let ack = Req::new("ACK", "z9hG4bKa").build();
    assert_eq!(
        h.layer.send_request(h.now, ack, agent(Transport::Udp)),
        Err(TransactionError::AckNotAllowed)
    );
    let no_branch = Req::new("OPTIONS", "").build();
    assert_eq!(
        h.layer.send_request(h.now, no_branch, agent(Transport::Udp)),
        Err(TransactionError::MissingBranch)
    );
    let branch = new_branch();
    assert!(branch.starts_with("z9hG4bK") && branch.len() > 20);
    assert_ne!(branch, new_branch());
    let req = Req::new("OPTIONS", &branch).build();
    h.layer.send_request(h.now, req.clone(), agent(Transport::Udp)).expect("first");
    assert_eq!(
        h.layer.send_request(h.now, req, agent(Transport::Udp)),
        Err(TransactionError::DuplicateBranch(branch.clone()))
    );
}
