use std::time::Duration;

use super::harness::*;
use crate::config::CodecName;
use crate::sdp::Direction;
use crate::sip::dialog::{CallEvent, EndReason, UaError};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::transaction::{Peer, TransactionEvent};

const RR: &str = "Record-Route: <sip:10.0.0.7:5070;lr>, <sip:proxy.example.com;lr>\n";

#[test]
fn basic_call_with_remote_bye() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("basic-1@192.0.2.9");
    let out = b.send("inv1", c.make("INVITE", "inv1", RR, OFFER));
    assert_eq!(statuses(&out), vec![180]);
    let ringing = only_response(&out, 180);
    let ring_tag = ht::tag(&header(&ringing.headers, "To").unwrap()).unwrap().to_string();
    let call = incoming(&out).unwrap();
    assert_eq!(b.ua.call_count(), 1);

    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    let to = header(&ok.headers, "To").unwrap();
    assert_eq!(ht::tag(&to), Some(ring_tag.as_str()), "same tag as the 180");
    assert_eq!(header(&ok.headers, "Contact").as_deref(), Some("<sip:ivr@192.0.2.1:5060>"));
    assert_eq!(
        headers_all(&ok.headers, "Record-Route"),
        vec!["<sip:10.0.0.7:5070;lr>, <sip:proxy.example.com;lr>"]
    );
    assert!(header(&ok.headers, "Allow").unwrap().contains("UPDATE"));
    assert!(header(&ok.headers, "Supported").unwrap().contains("timer"));
    assert_eq!(header(&ok.headers, "CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(header(&ok.headers, "Content-Type").as_deref(), Some("application/sdp"));
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{body}");

    c.to_tag = Some(ring_tag);
    let out =
        b.event(TransactionEvent::Ack { request: c.make("ACK", "ack1", "", ""), source: caller() });
    match events(&out).as_slice() {
        [CallEvent::Established { call: got, media }] => {
            assert_eq!(*got, call);
            assert_eq!(media.codec.name, CodecName::Pcmu);
            assert_eq!(media.remote_rtp, Some("192.0.2.9:6000".parse().unwrap()));
            assert_eq!(media.telephone_event, Some(101));
            assert_eq!(media.direction, Direction::SendRecv);
        }
        other => panic!("{other:?}"),
    }

    c.cseq = 2;
    let out = b.send("bye1", c.make("BYE", "bye1", "", ""));
    assert_eq!(statuses(&out), vec![200]);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::RemoteBye, .. }]
    ));
    assert_eq!(b.ua.call_count(), 0);
    assert_eq!(b.ua.poll_timeout(), Some(b.now + Duration::from_secs(32)), "only merge memory");
}

#[test]
fn local_bye_follows_the_route_set() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("bye-2@192.0.2.9");
    let (call, ok) = b.establish(&mut c, RR);
    let our_tag = ht::tag(&header(&ok.headers, "To").unwrap()).unwrap().to_string();
    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    let [(bye, dest)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.9:5062");
    assert_eq!(
        headers_all(&bye.headers, "Route"),
        vec!["<sip:10.0.0.7:5070;lr>", "<sip:proxy.example.com;lr>"]
    );
    assert_eq!(dest, Peer { addr: "10.0.0.7:5070".parse().unwrap(), transport: Transport::Udp });
    assert_eq!(ht::tag(&header(&bye.headers, "From").unwrap()), Some(our_tag.as_str()));
    assert_eq!(ht::tag(&header(&bye.headers, "To").unwrap()), Some("caller1"));
    assert_eq!(header(&bye.headers, "CSeq").as_deref(), Some("1 BYE"));
    assert_eq!(header(&bye.headers, "Call-ID").as_deref(), Some("bye-2@192.0.2.9"));
    let via = header(&bye.headers, "Via").unwrap();
    assert!(via.starts_with("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"), "{via}");
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::LocalBye, .. }]
    ));
    assert_eq!(b.ua.hangup(b.now, call), Err(UaError::UnknownCall));
}

#[test]
fn without_route_set_the_bye_goes_to_the_contact() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("bye-3@192.0.2.9");
    c.extra = String::new();
    let (call, _) = b.establish(&mut c, "");
    b.ua.hangup(b.now, call).unwrap();
    let [(bye, dest)] = sent(&b.drain()).try_into().unwrap();
    assert!(header(&bye.headers, "Route").is_none());
    assert_eq!(dest.addr, "192.0.2.9:5062".parse().unwrap());
}

#[test]
fn tcp_contact_carries_transport() {
    let mut b = Bench::new(config());
    let c = Caller::new("tcp-1@192.0.2.9");
    let source = Peer { addr: "192.0.2.9:40000".parse().unwrap(), transport: Transport::Tcp };
    b.ua.handle_event(
        b.now,
        TransactionEvent::Request {
            id: tid("t1"),
            request: c.make("INVITE", "t1", "", OFFER),
            source,
        },
    );
    let call = incoming(&b.drain()).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    assert_eq!(
        header(&ok.headers, "Contact").as_deref(),
        Some("<sip:ivr@192.0.2.1:5060;transport=tcp>")
    );
}

#[test]
fn cancel_answers_487() {
    let mut b = Bench::new(config());
    let c = Caller::new("cancel-1@192.0.2.9");
    let out = b.send("inv1", c.make("INVITE", "inv1", "", OFFER));
    let call = incoming(&out).unwrap();
    let out = b.event(TransactionEvent::Cancelled {
        invite: tid("inv1"),
        request: c.make("CANCEL", "inv1", "", ""),
    });
    let [(id, resp)] = responses(&out).try_into().unwrap();
    assert_eq!((id, resp.status_code.code()), (tid("inv1"), 487));
    assert!(ht::tag(&header(&resp.headers, "To").unwrap()).is_some());
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Cancelled, .. }]
    ));
    assert_eq!(b.ua.accept(b.now, call, rtp()), Err(UaError::UnknownCall));
}

#[test]
fn invite_without_sdp_gets_offer_and_answer_from_ack() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("nosdp-1@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", ""))).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    let offer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{offer}");
    c.to_tag = ht::tag(&header(&ok.headers, "To").unwrap()).map(str::to_string);
    let answer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    let out = b.event(TransactionEvent::Ack {
        request: c.make("ACK", "ack1", "", &answer),
        source: caller(),
    });
    match events(&out).as_slice() {
        [CallEvent::Established { media, .. }] => {
            assert_eq!(media.codec.name, CodecName::Pcma);
            assert_eq!(media.telephone_event, Some(101));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ack_without_usable_answer_ends_the_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("nosdp-2@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", ""))).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    c.to_tag = ht::tag(&header(&ok.headers, "To").unwrap()).map(str::to_string);
    let out =
        b.event(TransactionEvent::Ack { request: c.make("ACK", "ack1", "", ""), source: caller() });
    let [(bye, _)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Error, .. }]
    ));
}

#[test]
fn timer_h_without_ack_sends_bye() {
    let mut b = Bench::new(config());
    let c = Caller::new("timerh-1@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", OFFER))).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    b.drain();
    b.now += Duration::from_secs(32);
    let out = b.event(TransactionEvent::Timeout { id: tid("inv1") });
    let [(bye, _)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::AckTimeout, .. }]
    ));
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn ack_guard_fires_when_no_timeout_comes() {
    let mut b = Bench::new(config());
    let c = Caller::new("timerh-2@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", OFFER))).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    b.drain();
    b.advance(Duration::from_secs(31));
    assert!(b.drain().is_empty());
    b.advance(Duration::from_secs(2));
    let out = b.drain();
    assert_eq!(sent(&out).len(), 1);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::AckTimeout, .. }]
    ));
}

#[test]
fn hangup_before_ack_waits_for_the_ack() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("early-hangup@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", OFFER))).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    assert!(sent(&out).is_empty(), "no BYE before the ACK");
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::LocalBye, .. }]
    ));
    assert_eq!(b.ua.call_count(), 0);
    c.to_tag = ht::tag(&header(&ok.headers, "To").unwrap()).map(str::to_string);
    let out =
        b.event(TransactionEvent::Ack { request: c.make("ACK", "ack1", "", ""), source: caller() });
    let [(bye, _)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert!(events(&out).is_empty(), "Terminated is reported once");
}

#[test]
fn reject_and_hangup_while_ringing() {
    let mut b = Bench::new(config());
    let c = Caller::new("reject-1@192.0.2.9");
    let call = incoming(&b.send("inv1", c.make("INVITE", "inv1", "", OFFER))).unwrap();
    assert_eq!(b.ua.reject(b.now, call, 200), Err(UaError::InvalidStatus(200)));
    b.ua.reject(b.now, call, 486).unwrap();
    let out = b.drain();
    assert_eq!(statuses(&out), vec![486]);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Rejected, .. }]
    ));
    let c2 = Caller::new("reject-2@192.0.2.9");
    let call = incoming(&b.send("inv2", c2.make("INVITE", "inv2", "", OFFER))).unwrap();
    b.ua.hangup(b.now, call).unwrap();
    assert_eq!(statuses(&b.drain()), vec![480]);
}
