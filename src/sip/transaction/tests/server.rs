//! Server INVITE transactions, CANCEL, ACK, RFC 2543 matching and the transaction cap.

use super::*;
use crate::sip::transaction::{TransactionError, TransactionId};

const B1: &str = "z9hG4bKinvite1";

/// Feeds a new INVITE and returns its transaction id (checking the 100 and the event).
fn open_invite(h: &mut Harness, req: Req) -> TransactionId {
    let source = caller(req.transport);
    h.layer.handle_request(h.now, req.build(), source);
    let sent = h.transmits();
    assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
    assert_eq!(sent[0].peer, source);
    let mut events = h.events();
    assert_eq!(events.len(), 1);
    match events.remove(0) {
        TransactionEvent::Request { id, .. } => id,
        other => panic!("expected Request, got {other:?}"),
    }
}

fn timeouts(events: &[TransactionEvent]) -> Vec<TransactionId> {
    events
        .iter()
        .filter_map(|e| match e {
            TransactionEvent::Timeout { id } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn new_invite_gets_100_trying_and_a_request_event_with_received_and_rport() {
    let mut h = Harness::new();
    h.layer.handle_request(h.now, Req::new("INVITE", B1).build(), caller(Transport::Udp));
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].peer, caller(Transport::Udp));
    let rsip::SipMessage::Response(trying) = &sent[0].message else {
        panic!("not a response");
    };
    assert_eq!(trying.status_code.code(), 100);
    assert_eq!(header(&trying.headers, "To"), Some("<sip:ivr@192.0.2.10>"), "no tag on 100");
    let stamped =
        "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKinvite1;rport=40000;received=203.0.113.5";
    assert_eq!(header(&trying.headers, "Via"), Some(stamped));
    match h.events().as_slice() {
        [TransactionEvent::Request { request, source, .. }] => {
            assert_eq!(header(&request.headers, "Via"), Some(stamped));
            assert_eq!(*source, caller(Transport::Udp));
        }
        other => panic!("expected one Request, got {other:?}"),
    }
    assert_eq!(h.layer.len(), 1);
    assert_eq!(h.layer.poll_timeout(), None, "Proceeding runs no timer");
}

#[test]
fn invite_retransmission_in_proceeding_gets_the_latest_provisional() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
    h.layer.respond(h.now, &id, answer(&req.build(), 180)).expect("180");
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(180)]);
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(180)]);
    assert!(h.events().is_empty(), "retransmissions are absorbed");
    assert_eq!(h.layer.len(), 1);
}

#[test]
fn timer_g_retransmits_2xx_until_timer_h_reports_the_missing_ack() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    assert_eq!(h.transmits().len(), 1);
    let sent = h.run_until(ms(64 * 500));
    let expected: Vec<Duration> = [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(times(&sent, |t| status(t) == Some(200)), expected);
    assert!(sent.iter().all(|(_, t)| t.peer == caller(Transport::Udp)));
    // Timer H: the dialog layer learns the call has no ACK and tears it down.
    assert_eq!(timeouts(&h.events()), vec![id]);
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn ack_to_2xx_with_new_branch_stops_timer_g_and_timer_l_absorbs_invites() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    h.transmits();
    let sent = h.run_until(ms(2000));
    assert_eq!(times(&sent, |t| status(t) == Some(200)), vec![ms(500), ms(1500)]);

    let ack = Req::new("ACK", "z9hG4bKack-new").with_to_tag("uas1").build();
    h.layer.handle_request(h.now, ack, caller(Transport::Udp));
    match h.events().as_slice() {
        [TransactionEvent::Ack { request, source }] => {
            assert_eq!(request.method, rsip::Method::Ack);
            assert_eq!(*source, caller(Transport::Udp));
        }
        other => panic!("expected Ack, got {other:?}"),
    }
    assert!(h.transmits().is_empty(), "an ACK is never answered");

    // An INVITE retransmission in Accepted is answered with the 2xx.
    h.now = h.t0 + ms(5000);
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);

    let sent = h.run_until(ms(64 * 500 - 1));
    assert!(sent.is_empty(), "Timer G stopped: {sent:?}");
    assert_eq!(h.layer.len(), 1, "kept until Timer L");
    h.run_until(ms(64 * 500));
    assert!(h.layer.is_empty(), "Timer L ended the transaction");
    assert!(h.events().is_empty(), "no Timeout once the ACK came");

    // After Timer L, an ACK retransmission is a stray ACK: still passed up.
    let ack = Req::new("ACK", "z9hG4bKack-new").with_to_tag("uas1").build();
    h.layer.handle_request(h.now, ack, caller(Transport::Udp));
    assert!(matches!(h.events().as_slice(), [TransactionEvent::Ack { .. }]));
}

#[test]
fn over_tcp_the_2xx_is_not_retransmitted_but_timers_h_and_l_run() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1).tcp();
    let id = open_invite(&mut h, Req::new("INVITE", B1).tcp());
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    h.transmits();
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(64 * 500)));
    let sent = h.run_until(ms(64 * 500));
    assert!(sent.is_empty());
    assert_eq!(timeouts(&h.events()), vec![id]);
    assert!(h.layer.is_empty());
}

#[test]
fn non_2xx_final_timer_g_then_ack_confirms_and_timer_i_ends() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 486)).expect("486");
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(486)]);
    let sent = h.run_until(ms(8000));
    assert_eq!(
        times(&sent, |t| status(t) == Some(486)),
        vec![ms(500), ms(1500), ms(3500), ms(7500)]
    );
    // INVITE retransmission in Completed: the final response again.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(486)]);
    assert!(matches!(
        h.layer.respond(h.now, &id, answer(&req.build(), 200)),
        Err(TransactionError::AlreadyFinal(_))
    ));

    // The ACK to a non-2xx has the INVITE's branch; it is absorbed (no event).
    let ack = Req::new("ACK", B1).with_to_tag("uas1").build();
    h.layer.handle_request(h.now, ack.clone(), caller(Transport::Udp));
    assert!(h.events().is_empty());
    // Confirmed: INVITE and ACK retransmissions are absorbed silently.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    h.layer.handle_request(h.now, ack, caller(Transport::Udp));
    assert!(h.transmits().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.layer.poll_timeout(), Some(h.now + T4), "Timer I = T4");
    let sent = h.run_until(ms(8000) + T4);
    assert!(sent.is_empty(), "Timer G stopped");
    assert!(h.layer.is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn non_2xx_final_without_ack_times_out_on_timer_h() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 603)).expect("603");
    h.transmits();
    h.run_until(ms(64 * 500 - 1));
    assert!(h.events().is_empty());
    h.run_until(ms(64 * 500));
    assert_eq!(timeouts(&h.events()), vec![id]);
    assert!(h.layer.is_empty());
}

#[test]
fn over_tcp_the_ack_to_a_non_2xx_ends_the_transaction_at_once() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1).tcp();
    let id = open_invite(&mut h, Req::new("INVITE", B1).tcp());
    h.layer.respond(h.now, &id, answer(&req.build(), 404)).expect("404");
    h.transmits();
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + ms(64 * 500)), "only Timer H");
    h.layer.handle_request(
        h.now,
        Req::new("ACK", B1).tcp().with_to_tag("uas1").build(),
        caller(Transport::Tcp),
    );
    assert!(h.layer.is_empty(), "Timer I is zero over TCP");
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn cancel_before_the_final_response_is_answered_and_reported() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 180)).expect("180");
    h.transmits();
    h.layer.handle_request(h.now, Req::new("CANCEL", B1).build(), caller(Transport::Udp));
    let sent = h.transmits();
    assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
    let rsip::SipMessage::Response(ok) = &sent[0].message else { panic!() };
    assert_eq!(header(&ok.headers, "CSeq"), Some("1 CANCEL"));
    assert_eq!(
        header(&ok.headers, "To"),
        Some("<sip:ivr@192.0.2.10>;tag=uas1"),
        "same To tag as the INVITE's responses"
    );
    match h.events().as_slice() {
        [TransactionEvent::Cancelled { invite, request }] => {
            assert_eq!(invite, &id);
            assert_eq!(request.method, rsip::Method::Cancel);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    // A CANCEL retransmission gets the 200 again, without a second event.
    h.layer.handle_request(h.now, Req::new("CANCEL", B1).build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
    assert!(h.events().is_empty());
    h.layer.respond(h.now, &id, answer(&req.build(), 487)).expect("487");
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(487)]);
}

#[test]
fn cancel_after_the_final_response_gets_200_and_no_event() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 200)).expect("200");
    h.transmits();
    h.layer.handle_request(h.now, Req::new("CANCEL", B1).build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
    assert!(h.events().is_empty());
}

#[test]
fn unmatched_cancel_gets_481_with_a_to_tag() {
    let mut h = Harness::new();
    h.layer.handle_request(
        h.now,
        Req::new("CANCEL", "z9hG4bKnothing").build(),
        caller(Transport::Udp),
    );
    let sent = h.transmits();
    assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![Some(481)]);
    let rsip::SipMessage::Response(r) = &sent[0].message else { panic!() };
    assert!(crate::sip::transaction::fields::to_tag(&r.headers).is_some());
    assert!(h.events().is_empty());
}

#[test]
fn stray_ack_is_passed_up() {
    let mut h = Harness::new();
    let ack = Req::new("ACK", "z9hG4bKstray").with_to_tag("x").build();
    h.layer.handle_request(h.now, ack, caller(Transport::Udp));
    assert!(matches!(h.events().as_slice(), [TransactionEvent::Ack { .. }]));
    assert!(h.transmits().is_empty());
    assert!(h.layer.is_empty());
}

#[test]
fn rfc2543_requests_match_without_the_magic_cookie() {
    for branch in ["", "oldbranch1"] {
        let mut h = Harness::new();
        let req = Req::new("INVITE", branch);
        let id = open_invite(&mut h, Req::new("INVITE", branch));
        h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
        assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
        assert!(h.events().is_empty(), "retransmission matched (branch {branch:?})");
        // Another INVITE with a different CSeq is a new transaction.
        h.layer.handle_request(
            h.now,
            Req::new("INVITE", branch).cseq(2).build(),
            caller(Transport::Udp),
        );
        assert!(matches!(h.events().as_slice(), [TransactionEvent::Request { .. }]));
        h.transmits();

        // CANCEL matches by Request-URI, From tag, Call-ID, CSeq number and top Via.
        h.layer.handle_request(h.now, Req::new("CANCEL", branch).build(), caller(Transport::Udp));
        assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(200)]);
        assert!(
            matches!(h.events().as_slice(), [TransactionEvent::Cancelled { invite, .. }] if *invite == id)
        );
        h.layer.respond(h.now, &id, answer(&req.build(), 487)).expect("487");
        h.transmits();

        // An ACK with another To tag does not match; the right one confirms.
        h.layer.handle_request(
            h.now,
            Req::new("ACK", branch).with_to_tag("other").build(),
            caller(Transport::Udp),
        );
        assert_eq!(h.layer.len(), 3);
        h.layer.handle_request(
            h.now,
            Req::new("ACK", branch).with_to_tag("uas1").build(),
            caller(Transport::Udp),
        );
        let sent = h.run_until(ms(700));
        assert!(sent.is_empty(), "Timer G stopped by the ACK: {sent:?}");
    }
}

#[test]
fn past_the_cap_new_requests_get_a_stateless_503() {
    let config = TimerConfig { t1: T1, t2: T2, t4: T4 };
    let mut h = Harness::with_layer(TransactionLayer::with_max_transactions(config, 1));
    let req = Req::new("INVITE", B1);
    open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.handle_request(
        h.now,
        Req::new("INVITE", "z9hG4bKsecond").build(),
        caller(Transport::Udp),
    );
    let sent = h.transmits();
    assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![Some(503)]);
    assert_eq!(sent[0].peer, caller(Transport::Udp));
    assert!(h.events().is_empty());
    assert_eq!(h.layer.overload_rejections(), 1);
    assert_eq!(h.layer.len(), 1);
    // Retransmissions of live transactions are still absorbed and re-answered.
    h.layer.handle_request(h.now, req.build(), caller(Transport::Udp));
    assert_eq!(h.transmits().iter().map(status).collect::<Vec<_>>(), vec![Some(100)]);
    assert_eq!(h.layer.overload_rejections(), 1);
    // Client side too.
    let err =
        h.layer.send_request(h.now, Req::new("OPTIONS", "z9hG4bKout").build(), ivr(Transport::Udp));
    assert_eq!(err, Err(TransactionError::Overloaded(1)));
}

#[test]
fn respond_refuses_unknown_client_and_invalid() {
    let mut h = Harness::new();
    let req = Req::new("INVITE", B1).build();
    let unknown = TransactionId("s999".into());
    assert_eq!(
        h.layer.respond(h.now, &unknown, answer(&req, 200)),
        Err(TransactionError::Unknown(unknown))
    );
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    let mut odd = answer(&req, 200);
    odd.status_code = 700.into();
    assert_eq!(h.layer.respond(h.now, &id, odd), Err(TransactionError::InvalidStatus(700)));
    let client = h
        .layer
        .send_request(h.now, Req::new("OPTIONS", "z9hG4bKout").build(), ivr(Transport::Udp))
        .expect("client");
    assert_eq!(
        h.layer.respond(h.now, &client, answer(&req, 200)),
        Err(TransactionError::NotServer(client))
    );
}

#[test]
fn odd_requests_are_dropped_without_panic() {
    let mut h = Harness::new();
    let text = Req::new("INVITE", B1).text();
    for broken in [
        text.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        text.replace("CSeq: 1 INVITE", "CSeq: abc INVITE"),
        text.replace("Via: SIP/2.0/UDP 198.51.100.7:5060", "Via: nonsense"),
        text.replace("Call-ID: call-1@198.51.100.7\r\n", ""),
    ] {
        h.layer.handle_request(h.now, parse_request(&broken), caller(Transport::Udp));
    }
    assert!(h.transmits().is_empty());
    assert!(h.events().is_empty());
    assert!(h.layer.is_empty());
}

#[test]
fn timers_come_from_sip_config_and_absurd_values_do_not_panic() {
    let sip =
        crate::config::SipConfig { t1_ms: 250, t2_ms: 2000, t4_ms: 3000, ..Default::default() };
    let config = TimerConfig::from(&sip);
    assert_eq!((config.t1, config.t2, config.t4), (ms(250), ms(2000), ms(3000)));

    let huge = TimerConfig { t1: Duration::MAX, t2: Duration::MAX, t4: Duration::MAX };
    let mut h = Harness::with_layer(TransactionLayer::new(huge));
    let req = Req::new("INVITE", B1);
    let id = open_invite(&mut h, Req::new("INVITE", B1));
    h.layer.respond(h.now, &id, answer(&req.build(), 486)).expect("486");
    assert!(h.layer.poll_timeout().is_some_and(|t| t > h.now));
}
