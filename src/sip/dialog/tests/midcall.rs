//! re-INVITE, UPDATE, session timers, INFO, REFER and NOTIFY.

use std::time::Duration;

use super::harness::*;
use crate::sdp::{self, Direction};
use crate::sip::dialog::{CallEvent, EndReason, UaError};
use crate::sip::transaction::TransactionEvent;

fn origin_version(body: &[u8]) -> u64 {
    let sdp = sdp::parse(std::str::from_utf8(body).unwrap()).unwrap();
    sdp.origin.unwrap().version
}

fn reinvite(
    b: &mut Bench,
    c: &mut Caller,
    id: &str,
    body: &str,
) -> Vec<crate::sip::dialog::UaAction> {
    c.cseq += 1;
    b.send(id, c.make("INVITE", id, "", body))
}

fn ack(b: &mut Bench, c: &Caller, branch: &str) -> Vec<crate::sip::dialog::UaAction> {
    b.event(TransactionEvent::Ack { request: c.make("ACK", branch, "", ""), source: caller() })
}

#[test]
fn hold_unhold_and_refresh_versioning() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("hold-1");
    let (_, ok) = b.establish(&mut c, "");
    let v0 = origin_version(&ok.body);

    // Refresh with the same offer: same answer, same version, no event.
    let out = reinvite(&mut b, &mut c, "r1", OFFER);
    let ok1 = only_response(&out, 200);
    assert_eq!(origin_version(&ok1.body), v0);
    assert!(events(&out).is_empty());
    ack(&mut b, &c, "a1");

    // Hold.
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    let out = reinvite(&mut b, &mut c, "r2", &hold);
    let ok2 = only_response(&out, 200);
    assert_eq!(origin_version(&ok2.body), v0 + 1);
    assert!(String::from_utf8_lossy(&ok2.body).contains("a=recvonly"));
    match events(&out).as_slice() {
        [CallEvent::MediaChanged { media, .. }] => assert_eq!(media.direction, Direction::RecvOnly),
        other => panic!("{other:?}"),
    }
    ack(&mut b, &c, "a2");

    // Old-style hold by UPDATE: c=0.0.0.0.
    c.cseq += 1;
    let zero = OFFER.replace("c=IN IP4 192.0.2.9", "c=IN IP4 0.0.0.0");
    let out = b.send("u1", c.make("UPDATE", "u1", "", &zero));
    let ok3 = only_response(&out, 200);
    assert_eq!(origin_version(&ok3.body), v0 + 2);
    match events(&out).as_slice() {
        [CallEvent::MediaChanged { media, .. }] => assert_eq!(media.remote_rtp, None),
        other => panic!("{other:?}"),
    }

    // Unhold.
    let out = reinvite(&mut b, &mut c, "r3", OFFER);
    let ok4 = only_response(&out, 200);
    assert_eq!(origin_version(&ok4.body), v0 + 2, "same SDP as the UPDATE answer");
    match events(&out).as_slice() {
        [CallEvent::MediaChanged { media, .. }] => {
            assert_eq!(media.direction, Direction::SendRecv);
            assert_eq!(media.remote_rtp, Some("192.0.2.9:6000".parse().unwrap()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reinvite_while_one_is_pending_is_491() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("491-1");
    b.establish(&mut c, "");
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r1", OFFER)), vec![200]);
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r2", OFFER)), vec![491]);
    ack(&mut b, &c, "a1");
    // The ACK was for CSeq 3 (r2's), not r1's (2): still pending.
    c.cseq = 2;
    ack(&mut b, &c, "a1b");
    c.cseq = 3;
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r3", OFFER)), vec![200]);
}

#[test]
fn reinvite_without_sdp_takes_answer_from_ack() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("reinv-nosdp");
    b.establish(&mut c, "");
    let out = reinvite(&mut b, &mut c, "r1", "");
    let ok = only_response(&out, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 30000 RTP/AVP"));
    let hold = OFFER.replace("a=sendrecv", "a=recvonly");
    let out = b
        .event(TransactionEvent::Ack { request: c.make("ACK", "a1", "", &hold), source: caller() });
    match events(&out).as_slice() {
        [CallEvent::MediaChanged { media, .. }] => assert_eq!(media.direction, Direction::SendOnly),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reinvite_with_no_common_codec_is_488_and_call_lives() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("reinv-488");
    let (call, _) = b.establish(&mut c, "");
    let bad = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18");
    assert_eq!(statuses(&reinvite(&mut b, &mut c, "r1", &bad)), vec![488]);
    assert_eq!(b.ua.call_count(), 1);
    b.ua.hangup(b.now, call).unwrap();
}

#[test]
fn session_expires_without_refresh_sends_bye() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("se-1");
    let (_, ok) = b.establish(&mut c, "Supported: timer\nSession-Expires: 90\n");
    assert_eq!(header(&ok.headers, "Session-Expires").as_deref(), Some("90;refresher=uac"));
    assert_eq!(header(&ok.headers, "Require").as_deref(), Some("timer"));
    // A refresh at 45 s restarts the timer.
    b.advance(Duration::from_secs(45));
    c.cseq += 1;
    let out = b.send(
        "u1",
        c.make("UPDATE", "u1", "Supported: timer\nSession-Expires: 90;refresher=uac\n", ""),
    );
    assert_eq!(statuses(&out), vec![200]);
    b.advance(Duration::from_secs(59));
    assert!(b.drain().is_empty(), "90 - 30 s after the refresh, not yet");
    b.advance(Duration::from_secs(2));
    let out = b.drain();
    let [(bye, _)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::SessionExpired, .. }]
    ));
}

#[test]
fn we_refresh_when_asked() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("se-2");
    let extra =
        "Supported: timer\nSession-Expires: 120;refresher=uas\nAllow: INVITE, ACK, BYE, UPDATE\n";
    let (_, ok) = b.establish(&mut c, extra);
    assert_eq!(header(&ok.headers, "Session-Expires").as_deref(), Some("120;refresher=uas"));
    b.advance(Duration::from_secs(59));
    assert!(b.drain().is_empty());
    b.advance(Duration::from_secs(1));
    let [(update, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(update.method, rsip::Method::Update);
    assert_eq!(header(&update.headers, "Session-Expires").as_deref(), Some("120;refresher=uac"));
    assert_eq!(header(&update.headers, "CSeq").as_deref(), Some("1 UPDATE"));
    let out = b.event(TransactionEvent::Response {
        id: tid("c1"),
        response: response_to(&update, 200, "", ""),
    });
    assert!(out.is_empty());
    // The next refresh comes 60 s after the 200, and the session does not expire.
    b.advance(Duration::from_secs(60));
    let [(update2, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(header(&update2.headers, "CSeq").as_deref(), Some("2 UPDATE"));
    // A 481 to the refresh ends the call.
    let out = b.event(TransactionEvent::Response {
        id: tid("c2"),
        response: response_to(&update2, 481, "", ""),
    });
    assert_eq!(sent(&out)[0].0.method, rsip::Method::Bye);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::SessionExpired, .. }]
    ));
}

#[test]
fn refresh_by_reinvite_when_update_is_not_allowed() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("se-3");
    let extra = "Supported: timer\nSession-Expires: 120;refresher=uas\nAllow: INVITE, ACK, BYE\n";
    let (_, ok) = b.establish(&mut c, extra);
    let v0 = origin_version(&ok.body);
    b.advance(Duration::from_secs(60));
    let [(invite, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(invite.method, rsip::Method::Invite);
    assert_eq!(origin_version(&invite.body), v0, "the refresh offer changes nothing");
    let answer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 0 101");
    let ok = response_to(&invite, 200, "Content-Type: application/sdp\n", &answer);
    let out = b.event(TransactionEvent::Response { id: tid("c1"), response: ok.clone() });
    let [(ack, _)] = sent(&out).try_into().unwrap();
    assert_eq!(ack.method, rsip::Method::Ack);
    assert_eq!(header(&ack.headers, "CSeq").as_deref(), Some("1 ACK"));
    assert!(events(&out).is_empty(), "same media");
    // The 2xx retransmitted: the same ACK again.
    let out = b.event(TransactionEvent::Response { id: tid("c1"), response: ok });
    let [(again, _)] = sent(&out).try_into().unwrap();
    assert_eq!(again.to_string(), ack.to_string());
    assert!(events(&out).is_empty());
}

#[test]
fn ack_timeout_of_a_reinvite_ends_the_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("reinv-h");
    b.establish(&mut c, "");
    reinvite(&mut b, &mut c, "r1", OFFER);
    let out = b.event(TransactionEvent::Timeout { id: tid("r1") });
    assert_eq!(sent(&out)[0].0.method, rsip::Method::Bye);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::AckTimeout, .. }]
    ));
}

#[test]
fn info_dtmf_and_other_types() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("info-1");
    let (call, _) = b.establish(&mut c, "");
    c.cseq += 1;
    let body = "Signal=5\r\nDuration=160\r\n";
    let out = b.send("i1", c.make("INFO", "i1", "Content-Type: application/dtmf-relay\n", body));
    assert_eq!(statuses(&out), vec![200]);
    match events(&out).as_slice() {
        [CallEvent::Info { call: got, content_type, body: got_body }] => {
            assert_eq!(*got, call);
            assert_eq!(content_type, "application/dtmf-relay");
            assert_eq!(got_body, body.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    c.cseq += 1;
    let out =
        b.send("i2", c.make("INFO", "i2", "Content-Type: application/media_control+xml\n", "<x/>"));
    assert_eq!(statuses(&out), vec![415]);
    let r = only_response(&out, 415);
    assert!(header(&r.headers, "Accept").unwrap().contains("application/dtmf"));
    assert!(events(&out).is_empty());
}

#[test]
fn refer_and_notify_progress() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refer-1");
    let (call, _) = b.establish(&mut c, "");
    assert!(matches!(b.ua.refer(b.now, call, "mailto:x"), Err(UaError::Target(_))));
    b.ua.refer(b.now, call, "sip:agent@10.0.0.5:5070").unwrap();
    let [(refer, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(refer.method, rsip::Method::Refer);
    assert_eq!(header(&refer.headers, "Refer-To").as_deref(), Some("<sip:agent@10.0.0.5:5070>"));
    assert_eq!(header(&refer.headers, "Referred-By").as_deref(), Some("<sip:ivr@192.0.2.1:5060>"));
    assert!(matches!(b.ua.refer(b.now, call, "sip:x@y"), Err(UaError::InvalidState(_))));
    let out = b.event(TransactionEvent::Response {
        id: tid("c1"),
        response: response_to(&refer, 202, "", ""),
    });
    assert!(out.is_empty());
    // Accepted, no final NOTIFY yet: no second REFER, whose NOTIFYs could be confused
    // with this one's.
    assert!(matches!(b.ua.refer(b.now, call, "sip:x@y"), Err(UaError::InvalidState(_))));
    for (n, (frag, state)) in [
        ("SIP/2.0 100 Trying\r\n", "active;expires=60"),
        ("SIP/2.0 200 OK\r\n", "terminated;reason=noresource"),
    ]
    .into_iter()
    .enumerate()
    {
        c.cseq += 1;
        let extra = format!(
            "Event: refer\nSubscription-State: {state}\nContent-Type: message/sipfrag;version=2.0\n"
        );
        let out = b.send(&format!("n{n}"), c.make("NOTIFY", &format!("n{n}"), &extra, frag));
        assert_eq!(statuses(&out), vec![200]);
        let want = if n == 0 { 100 } else { 200 };
        assert!(
            matches!(events(&out).as_slice(), [CallEvent::ReferProgress { status, .. }] if *status == want),
            "{out:?}"
        );
    }
    // The subscription is over: another NOTIFY has nothing to match.
    c.cseq += 1;
    let out = b.send(
        "n9",
        c.make(
            "NOTIFY",
            "n9",
            "Event: refer\nContent-Type: message/sipfrag\n",
            "SIP/2.0 200 OK\r\n",
        ),
    );
    assert_eq!(statuses(&out), vec![481]);
}

#[test]
fn refer_failure_and_timeout_are_reported() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refer-2");
    let (call, _) = b.establish(&mut c, "");
    b.ua.refer(b.now, call, "tel:+4722000000").unwrap();
    let [(refer, _)] = sent(&b.drain()).try_into().unwrap();
    let out = b.event(TransactionEvent::Response {
        id: tid("c1"),
        response: response_to(&refer, 403, "", ""),
    });
    assert!(matches!(events(&out).as_slice(), [CallEvent::ReferProgress { status: 403, .. }]));
    b.ua.refer(b.now, call, "sip:agent@10.0.0.5").unwrap();
    let [(refer, _)] = sent(&b.drain()).try_into().unwrap();
    let via = header(&refer.headers, "Via").unwrap();
    let branch = crate::sip::header_text::header_param(&via, "branch").unwrap().to_string();
    let out = b.event(TransactionEvent::Timeout { id: tid(&format!("{branch}:REFER")) });
    assert!(matches!(events(&out).as_slice(), [CallEvent::ReferProgress { status: 408, .. }]));
}

#[test]
fn incoming_refer_is_declined() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refer-in");
    b.establish(&mut c, "");
    c.cseq += 1;
    let out = b.send("rf", c.make("REFER", "rf", "Refer-To: <sip:evil@203.0.113.1>\n", ""));
    assert_eq!(statuses(&out), vec![603]);
}

#[test]
fn a_reoffer_keeps_the_codec_in_use_or_is_refused() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("codec-1");
    b.establish(&mut c, "");

    // PCMA now listed first: the answer stays on PCMU, which the call uses.
    let both = OFFER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000");
    let out = reinvite(&mut b, &mut c, "r1", &both);
    let ok = only_response(&out, 200);
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(answer.contains("m=audio 30000 RTP/AVP 0 101"), "{answer}");
    assert!(events(&out).is_empty(), "nothing changed: {:?}", events(&out));
    ack(&mut b, &c, "a1");

    // Only PCMA, which we support but do not use: refused, the call goes on unchanged.
    let pcma_only = OFFER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    let out = reinvite(&mut b, &mut c, "r2", &pcma_only);
    only_response(&out, 488);
    assert!(events(&out).is_empty());

    // telephone-event moved to another payload type: the media path cannot follow.
    let te_moved = OFFER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 0 8 96")
        .replace("a=rtpmap:101 telephone-event", "a=rtpmap:96 telephone-event");
    let out = reinvite(&mut b, &mut c, "r2b", &te_moved);
    only_response(&out, 488);
    assert!(events(&out).is_empty());

    // A later refresh with the original offer is still answered normally, with the
    // version unchanged: the refused offers changed nothing.
    let out = reinvite(&mut b, &mut c, "r3", OFFER);
    let again = only_response(&out, 200);
    assert_eq!(origin_version(&again.body), origin_version(&ok.body));
}

#[test]
fn info_is_sent_in_the_dialog_and_a_refusal_keeps_the_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("info-out-1");
    let (call, _) = b.establish(&mut c, "");
    let body = b"Signal=5\r\nDuration=160\r\n".to_vec();
    b.ua.send_info(b.now, call, "application/dtmf-relay", body.clone()).unwrap();
    let [(info, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(info.method, rsip::Method::Info);
    assert_eq!(header(&info.headers, "Content-Type").as_deref(), Some("application/dtmf-relay"));
    assert_eq!(info.body, body);
    assert_eq!(header(&info.headers, "Call-ID").as_deref(), Some("info-out-1"));
    // Refused: logged, and the call is still up (no event, another INFO goes out).
    let out = b.event(TransactionEvent::Response {
        id: tid("c1"),
        response: response_to(&info, 415, "", ""),
    });
    assert!(events(&out).is_empty(), "{out:?}");
    b.ua.send_info(b.now, call, "application/dtmf", b"7".to_vec()).unwrap();
    let [(again, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(again.body, b"7");
    let cseq = |r: &rsip::Request| header(&r.headers, "CSeq").unwrap();
    assert_ne!(cseq(&info), cseq(&again), "a new CSeq for each request");

    b.ua.hangup(b.now, call).unwrap();
    b.drain();
    assert!(b.ua.send_info(b.now, call, "application/dtmf", b"1".to_vec()).is_err());
}
