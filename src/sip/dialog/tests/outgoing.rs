//! Outgoing calls (`dial`), driven in virtual time.

use std::time::Duration;

use super::harness::*;
use crate::config::CodecName;
use crate::sdp::Direction;
use crate::sip::dialog::{CallEvent, CallHandle, DialRoute, EndReason, UaAction, UaError};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::transaction::{Peer, TransactionEvent};

const TARGET: &str = "sip:agent@192.0.2.20:5080";

const ANSWER: &str = "v=0\r\n\
o=agent 7 7 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 7000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

/// Record-Route as the far end's 2xx carries it (proxy nearest to it first).
const RR: &str = "Record-Route: <sip:10.0.0.7:5070;lr>, <sip:10.0.0.8;lr>\n";
const CONTACT: &str = "Contact: <sip:agent@192.0.2.21:5090>\n";

fn branch_of(request: &rsip::Request) -> String {
    let via = header(&request.headers, "Via").unwrap();
    ht::header_param(&via, "branch").unwrap().to_string()
}

/// The far end of one outgoing call: our INVITE and the To tag it answers with.
struct Callee {
    invite: rsip::Request,
    tag: String,
}

impl Callee {
    /// A response to our INVITE (`tag` on To except for 100).
    fn reply(&self, status: u16, extra: &str, body: &str) -> rsip::Response {
        self.reply_as(&self.tag, status, extra, body)
    }

    fn reply_as(&self, tag: &str, status: u16, extra: &str, body: &str) -> rsip::Response {
        let mut extra = extra.to_string();
        if !body.is_empty() {
            extra.push_str("Content-Type: application/sdp\n");
        }
        let mut response = response_to(&self.invite, status, &extra, body);
        if status > 100 {
            let to = header(&self.invite.headers, "To").unwrap();
            let tagged = rsip::headers::To::from(format!("{to};tag={tag}"));
            response.headers.retain(|h| !matches!(h, rsip::Header::To(_)));
            response.headers.push(rsip::Header::To(tagged));
        }
        response
    }

    /// The response to a CANCEL on the same branch.
    fn reply_to_cancel(&self, cancel: &rsip::Request, status: u16) -> rsip::Response {
        response_to(cancel, status, "", "")
    }

    /// A request from the far end inside the dialog.
    fn request(&self, method: &str, cseq: u32, extra: &str, body: &str) -> rsip::Request {
        let from = header(&self.invite.headers, "From").unwrap();
        let to = header(&self.invite.headers, "To").unwrap();
        let call_id = header(&self.invite.headers, "Call-ID").unwrap();
        let mut extra = extra.to_string();
        if !body.is_empty() {
            extra.push_str("Content-Type: application/sdp\n");
        }
        let head = format!(
            "{method} sip:ivr@192.0.2.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.21:5090;branch=z9hG4bKfar{cseq}\n\
             Max-Forwards: 70\n\
             From: {to};tag={}\n\
             To: {from}\n\
             Call-ID: {call_id}\n\
             CSeq: {cseq} {method}\n\
             {CONTACT}{extra}",
            self.tag
        );
        request(&head, body)
    }
}

/// The INVITE's client transaction id as the transaction layer writes it.
fn invite_id(callee: &Callee) -> crate::sip::transaction::TransactionId {
    tid(&format!("c1:INVITE {}", branch_of(&callee.invite)))
}

fn respond(b: &mut Bench, callee: &Callee, response: rsip::Response) -> Vec<UaAction> {
    b.event(TransactionEvent::Response { id: invite_id(callee), response })
}

fn dial(b: &mut Bench) -> (CallHandle, Callee, Peer) {
    let call = b.ua.dial(b.now, TARGET, "+4712345678", Transport::Udp, rtp()).unwrap();
    let [(invite, dest)] = sent(&b.drain()).try_into().unwrap();
    (call, Callee { invite, tag: "agent1".into() }, dest)
}

/// dial → 180 → 200 (with Record-Route) → ACK → Established.
fn establish(b: &mut Bench) -> (CallHandle, Callee) {
    let (call, callee, _) = dial(b);
    respond(b, &callee, callee.reply(180, "", ""));
    let out = respond(b, &callee, callee.reply(200, &format!("{RR}{CONTACT}"), ANSWER));
    assert!(matches!(events(&out).as_slice(), [CallEvent::Established { .. }]), "{out:?}");
    (call, callee)
}

#[test]
fn dial_ring_answer_ack_and_local_bye() {
    let mut b = Bench::new(config());
    let (call, callee, dest) = dial(&mut b);
    let invite = &callee.invite;
    assert_eq!(invite.method, rsip::Method::Invite);
    assert_eq!(invite.uri.to_string(), TARGET);
    assert_eq!(dest, Peer { addr: "192.0.2.20:5080".parse().unwrap(), transport: Transport::Udp });
    let from = header(&invite.headers, "From").unwrap();
    assert!(from.starts_with("<sip:+4712345678@192.0.2.1:5060>;tag="), "{from}");
    let our_tag = ht::tag(&from).unwrap().to_string();
    assert_eq!(header(&invite.headers, "To").as_deref(), Some("<sip:agent@192.0.2.20:5080>"));
    assert_eq!(header(&invite.headers, "CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(header(&invite.headers, "Contact").as_deref(), Some("<sip:ivr@192.0.2.1:5060>"));
    assert_eq!(header(&invite.headers, "Content-Type").as_deref(), Some("application/sdp"));
    let call_id = header(&invite.headers, "Call-ID").unwrap();
    assert!(call_id.len() >= 16, "{call_id}");
    let branch = branch_of(invite);
    assert!(branch.starts_with("z9hG4bK"));
    let offer = String::from_utf8(invite.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert_eq!(b.ua.call_count(), 1);

    let out = respond(&mut b, &callee, callee.reply(100, "", ""));
    assert!(out.is_empty(), "100 is not reported: {out:?}");
    let out = respond(&mut b, &callee, callee.reply(180, "", ""));
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Progress { call: c, status: 180 }] if *c == call
    ));
    let out = respond(&mut b, &callee, callee.reply(183, "", ANSWER));
    assert!(matches!(events(&out).as_slice(), [CallEvent::Progress { status: 183, .. }]));
    assert!(sent(&out).is_empty(), "early media SDP is ignored");

    let ok = callee.reply(200, &format!("{RR}{CONTACT}Allow: INVITE, ACK, BYE\n"), ANSWER);
    let out = respond(&mut b, &callee, ok.clone());
    let [(ack, ack_dest)] = sent(&out).try_into().unwrap();
    assert_eq!(ack.method, rsip::Method::Ack);
    assert_eq!(ack.uri.to_string(), "sip:agent@192.0.2.21:5090", "Contact of the 200");
    assert_eq!(
        headers_all(&ack.headers, "Route"),
        vec!["<sip:10.0.0.8;lr>", "<sip:10.0.0.7:5070;lr>"],
        "Record-Route reversed"
    );
    assert_eq!(ack_dest.addr, "10.0.0.8:5060".parse().unwrap(), "first Route");
    assert_eq!(header(&ack.headers, "CSeq").as_deref(), Some("1 ACK"));
    assert_eq!(header(&ack.headers, "Call-ID"), Some(call_id.clone()));
    assert_eq!(ht::tag(&header(&ack.headers, "From").unwrap()), Some(our_tag.as_str()));
    assert_eq!(ht::tag(&header(&ack.headers, "To").unwrap()), Some("agent1"));
    let ack_branch = branch_of(&ack);
    assert!(ack_branch.starts_with("z9hG4bK") && ack_branch != branch, "new branch");
    assert!(ack.body.is_empty());
    match events(&out).as_slice() {
        [CallEvent::Established { call: c, media }] => {
            assert_eq!(*c, call);
            assert_eq!(media.codec.name, CodecName::Pcma);
            assert_eq!(media.remote_rtp, Some("192.0.2.20:7000".parse().unwrap()));
            assert_eq!(media.telephone_event, Some(101));
            assert_eq!(media.direction, Direction::SendRecv);
        }
        other => panic!("{other:?}"),
    }

    // The 2xx again (our ACK was lost): the same ACK again, nothing else.
    let out = respond(&mut b, &callee, ok);
    let [(again, again_dest)] = sent(&out).try_into().unwrap();
    assert_eq!(again.to_string(), ack.to_string());
    assert_eq!(again_dest, ack_dest);
    assert!(events(&out).is_empty());

    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    let [(bye, bye_dest)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:agent@192.0.2.21:5090");
    assert_eq!(headers_all(&bye.headers, "Route").len(), 2);
    assert_eq!(bye_dest, ack_dest);
    assert_eq!(header(&bye.headers, "CSeq").as_deref(), Some("2 BYE"));
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::LocalBye, .. }]
    ));
    assert_eq!(b.ua.call_count(), 0);
    assert_eq!(b.ua.poll_timeout(), None, "nothing left behind");
}

#[test]
fn busy_is_reported_with_its_status() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    respond(&mut b, &callee, callee.reply(180, "", ""));
    let out = respond(&mut b, &callee, callee.reply(486, "", ""));
    assert!(sent(&out).is_empty(), "the transaction layer ACKs non-2xx finals");
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Failed(486) }] if *c == call
    ));
    assert_eq!(b.ua.call_count(), 0);
    assert_eq!(b.ua.hangup(b.now, call), Err(UaError::UnknownCall));
}

#[test]
fn timer_b_ends_the_call_with_a_timeout() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    b.advance(Duration::from_secs(32));
    assert!(b.drain().is_empty());
    let out = b.event(TransactionEvent::Timeout { id: invite_id(&callee) });
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Timeout }] if *c == call
    ));
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn our_guard_ends_the_call_when_no_timeout_comes() {
    let mut b = Bench::new(config());
    let (call, _, _) = dial(&mut b);
    b.advance(Duration::from_millis(32_400));
    assert!(b.drain().is_empty(), "the guard waits past Timer B");
    b.advance(Duration::from_secs(1));
    assert!(matches!(
        events(&b.drain()).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Timeout }] if *c == call
    ));
    assert_eq!(b.ua.poll_timeout(), None);
}

#[test]
fn cancel_after_ringing() {
    let mut b = Bench::new(config());
    let (call, callee, dest) = dial(&mut b);
    respond(&mut b, &callee, callee.reply(180, "", ""));
    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    let [(cancel, cancel_dest)] = sent(&out).try_into().unwrap();
    assert_eq!(cancel.method, rsip::Method::Cancel);
    assert_eq!(cancel_dest, dest);
    let invite = &callee.invite;
    assert_eq!(cancel.uri, invite.uri);
    for name in ["Via", "From", "To", "Call-ID"] {
        assert_eq!(header(&cancel.headers, name), header(&invite.headers, name), "{name}");
    }
    assert_eq!(header(&cancel.headers, "CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(headers_all(&cancel.headers, "Via").len(), 1);
    assert!(cancel.body.is_empty());
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Cancelled }] if *c == call
    ));
    assert_eq!(b.ua.call_count(), 0, "reported ended at once");
    assert_eq!(b.ua.hangup(b.now, call), Err(UaError::InvalidState("already hanging up")));

    // 200 to the CANCEL shares the INVITE's branch: it must not look like an answer.
    let out = b.event(TransactionEvent::Response {
        id: tid(&format!("c2:CANCEL {}", branch_of(invite))),
        response: callee.reply_to_cancel(&cancel, 200),
    });
    assert!(out.is_empty(), "{out:?}");
    // The CANCEL's own timeout does not settle the call either.
    let out =
        b.event(TransactionEvent::Timeout { id: tid(&format!("c2:CANCEL {}", branch_of(invite))) });
    assert!(out.is_empty(), "{out:?}");
    let out = respond(&mut b, &callee, callee.reply(487, "", ""));
    assert!(out.is_empty(), "Terminated was reported once: {out:?}");
    assert_eq!(b.ua.hangup(b.now, call), Err(UaError::UnknownCall));
    assert_eq!(b.ua.poll_timeout(), None);
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    assert!(sent(&out).is_empty(), "no CANCEL before a provisional response");
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Cancelled, .. }]
    ));
    let out = respond(&mut b, &callee, callee.reply(100, "", ""));
    let [(cancel, _)] = sent(&out).try_into().unwrap();
    assert_eq!(cancel.method, rsip::Method::Cancel);
    assert_eq!(branch_of(&cancel), branch_of(&callee.invite));
    assert!(events(&out).is_empty());
    // A second provisional sends no second CANCEL.
    assert!(respond(&mut b, &callee, callee.reply(180, "", "")).is_empty());

    // The 200 crossed our CANCEL: ACK it and BYE, and report nothing more.
    let out = respond(&mut b, &callee, callee.reply(200, CONTACT, ANSWER));
    let methods: Vec<_> = sent(&out).iter().map(|(r, _)| r.method).collect();
    assert_eq!(methods, vec![rsip::Method::Ack, rsip::Method::Bye]);
    assert!(events(&out).is_empty(), "{out:?}");
    assert_eq!(b.ua.poll_timeout(), None);
}

#[test]
fn deferred_cancel_gives_up_on_timer_b() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    b.ua.hangup(b.now, call).unwrap();
    b.drain();
    b.now += Duration::from_secs(32);
    let out = b.event(TransactionEvent::Timeout { id: invite_id(&callee) });
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(b.ua.poll_timeout(), None);
}

#[test]
fn ringing_too_long_is_cancelled() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    respond(&mut b, &callee, callee.reply(180, "", ""));
    b.advance(Duration::from_secs(179));
    assert!(b.drain().is_empty());
    b.advance(Duration::from_secs(1));
    let out = b.drain();
    let [(cancel, _)] = sent(&out).try_into().unwrap();
    assert_eq!(cancel.method, rsip::Method::Cancel);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Timeout }] if *c == call
    ));
    // No 487 ever comes: the call state is dropped after Timer B's guard.
    b.advance(Duration::from_secs(33));
    assert!(b.drain().is_empty());
    assert_eq!(b.ua.poll_timeout(), None);
}

#[test]
fn bye_from_the_far_end() {
    let mut b = Bench::new(config());
    let (call, callee) = establish(&mut b);
    let out = b.send("far-bye", callee.request("BYE", 1, "", ""));
    let ok = only_response(&out, 200);
    let ours = header(&callee.invite.headers, "From").unwrap();
    assert_eq!(header(&ok.headers, "To"), Some(ours), "our own party, tag unchanged");
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::RemoteBye }] if *c == call
    ));
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn request_with_a_wrong_tag_is_481() {
    let mut b = Bench::new(config());
    let (_, mut callee) = establish(&mut b);
    callee.tag = "someone-else".into();
    let out = b.send("far-bye", callee.request("BYE", 1, "", ""));
    assert_eq!(statuses(&out), vec![481]);
    assert_eq!(b.ua.call_count(), 1);
}

#[test]
fn reinvite_from_the_far_end_holds_and_refreshes_the_target() {
    let mut b = Bench::new(config());
    let (call, callee) = establish(&mut b);
    let hold = ANSWER.replace("a=sendrecv", "a=sendonly");
    let mut reinvite = callee.request("INVITE", 1, "", &hold);
    reinvite.headers.retain(|h| !matches!(h, rsip::Header::Contact(_)));
    let moved = rsip::headers::Contact::from("<sip:agent@192.0.2.22:5090>".to_string());
    reinvite.headers.push(rsip::Header::Contact(moved));
    let out = b.send("far-reinvite", reinvite);
    let ok = only_response(&out, 200);
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{body}");
    assert!(body.contains("a=recvonly"), "{body}");
    match events(&out).as_slice() {
        [CallEvent::MediaChanged { call: c, media }] => {
            assert_eq!(*c, call);
            assert_eq!(media.direction, Direction::RecvOnly);
        }
        other => panic!("{other:?}"),
    }
    let ack = callee.request("ACK", 1, "", "");
    assert!(b.event(TransactionEvent::Ack { request: ack, source: caller() }).is_empty());
    b.ua.hangup(b.now, call).unwrap();
    let [(bye, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(bye.uri.to_string(), "sip:agent@192.0.2.22:5090", "target refreshed");
}

#[test]
fn answer_without_a_common_codec_is_acked_then_ended() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    let g722 = ANSWER.replace("RTP/AVP 8 101", "RTP/AVP 9").replace("a=rtpmap:8 PCMA/8000", "");
    let out = respond(&mut b, &callee, callee.reply(200, CONTACT, &g722));
    let methods: Vec<_> = sent(&out).iter().map(|(r, _)| r.method).collect();
    assert_eq!(methods, vec![rsip::Method::Ack, rsip::Method::Bye]);
    let bye = &sent(&out)[1].0;
    assert_eq!(bye.uri.to_string(), "sip:agent@192.0.2.21:5090");
    assert_eq!(ht::tag(&header(&bye.headers, "To").unwrap()), Some("agent1"));
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { call: c, reason: EndReason::Error }] if *c == call
    ));
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn answer_without_sdp_is_acked_then_ended() {
    let mut b = Bench::new(config());
    let (_, callee, _) = dial(&mut b);
    let out = respond(&mut b, &callee, callee.reply(200, CONTACT, ""));
    let methods: Vec<_> = sent(&out).iter().map(|(r, _)| r.method).collect();
    assert_eq!(methods, vec![rsip::Method::Ack, rsip::Method::Bye]);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Error, .. }]
    ));
}

#[test]
fn a_second_fork_is_acked_and_released() {
    let mut b = Bench::new(config());
    let (call, callee) = establish(&mut b);
    let other = callee.reply_as("fork2", 200, "Contact: <sip:desk@192.0.2.30>\n", ANSWER);
    let out = respond(&mut b, &callee, other);
    let sent = sent(&out);
    let methods: Vec<_> = sent.iter().map(|(r, _)| r.method).collect();
    assert_eq!(methods, vec![rsip::Method::Ack, rsip::Method::Bye]);
    for (request, dest) in &sent {
        assert_eq!(request.uri.to_string(), "sip:desk@192.0.2.30");
        assert_eq!(ht::tag(&header(&request.headers, "To").unwrap()), Some("fork2"));
        assert_eq!(dest.addr, "192.0.2.30:5060".parse().unwrap());
    }
    assert!(events(&out).is_empty());
    assert_eq!(b.ua.call_count(), 1, "the first fork's call goes on");
    b.ua.hangup(b.now, call).unwrap();
    let [(bye, _)] = super::harness::sent(&b.drain()).try_into().unwrap();
    assert_eq!(ht::tag(&header(&bye.headers, "To").unwrap()), Some("agent1"));
}

#[test]
fn session_timer_from_the_answer_makes_us_refresh() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    let extra = format!(
        "{CONTACT}Allow: INVITE, ACK, BYE, UPDATE\nRequire: timer\nSession-Expires: 120;refresher=uac\n"
    );
    respond(&mut b, &callee, callee.reply(200, &extra, ANSWER));
    b.advance(Duration::from_secs(59));
    assert!(b.drain().is_empty());
    b.advance(Duration::from_secs(1));
    let [(update, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(update.method, rsip::Method::Update);
    assert_eq!(header(&update.headers, "CSeq").as_deref(), Some("2 UPDATE"));
    assert_eq!(ht::tag(&header(&update.headers, "To").unwrap()), Some("agent1"));
    let branch = branch_of(&update);
    let out = b.event(TransactionEvent::Response {
        id: tid(&format!("c3:UPDATE {branch}")),
        response: response_to(&update, 200, "Session-Expires: 120;refresher=uac\n", ""),
    });
    assert!(out.is_empty(), "{out:?}");
    assert!(b.ua.call_count() == 1 && b.ua.hangup(b.now, call).is_ok());
}

#[test]
fn tcp_and_transport_parameter() {
    let mut b = Bench::new(config());
    b.ua.dial(b.now, "sip:agent@192.0.2.20;transport=tcp", "100", Transport::Udp, rtp()).unwrap();
    let [(invite, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(dest, Peer { addr: "192.0.2.20:5060".parse().unwrap(), transport: Transport::Tcp });
    let via = header(&invite.headers, "Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TCP 192.0.2.1:5060;"), "{via}");
    assert_eq!(
        header(&invite.headers, "Contact").as_deref(),
        Some("<sip:ivr@192.0.2.1:5060;transport=tcp>")
    );
}

#[test]
fn a_named_target_goes_to_the_address_it_resolved_to() {
    let mut b = Bench::new(config());
    let resolved: std::net::SocketAddr = "192.0.2.30:5070".parse().unwrap();
    let target = "sip:queue@agents.example.com:5070";
    b.ua.dial_via(
        b.now,
        target,
        "100",
        Transport::Udp,
        rtp(),
        DialRoute { resolved: Some(resolved), headers: &[] },
    )
    .unwrap();
    let [(invite, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(dest, Peer { addr: resolved, transport: Transport::Udp });
    assert_eq!(invite.uri.to_string(), target, "the Request-URI keeps the name");
    // An IP literal in the target wins over a resolved address.
    b.ua.dial_via(
        b.now,
        "sip:agent@192.0.2.20",
        "100",
        Transport::Udp,
        rtp(),
        DialRoute { resolved: Some(resolved), headers: &[] },
    )
    .unwrap();
    let [(_, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(dest.addr, "192.0.2.20:5060".parse().unwrap());
}

#[test]
fn bad_targets_and_users_are_refused() {
    let mut b = Bench::new(config());
    let dial = |b: &mut Bench, target: &str, user: &str| {
        b.ua.dial(b.now, target, user, Transport::Udp, rtp())
    };
    for target in [
        "",
        "tel:+4712345678",
        "sips:agent@192.0.2.20",
        "sip:agent@agents.example.com",
        "sip:agent@192.0.2.20>;x=<y",
        "sip:agent@192.0.2.20\r\nX-Evil: 1",
        "sip:a b@192.0.2.20",
    ] {
        assert!(matches!(dial(&mut b, target, "100"), Err(UaError::Dial(_))), "{target:?}");
    }
    let long = format!("sip:{}@192.0.2.20", "a".repeat(600));
    assert!(matches!(dial(&mut b, &long, "100"), Err(UaError::Dial(_))));
    assert!(matches!(dial(&mut b, TARGET, ""), Err(UaError::Dial(_))));
    assert!(matches!(dial(&mut b, TARGET, &"1".repeat(65)), Err(UaError::Dial(_))));
    assert!(b.drain().is_empty());
    assert_eq!(b.ua.call_count(), 0);

    dial(&mut b, TARGET, "a@b>;c\r\n").unwrap();
    let [(invite, _)] = sent(&b.drain()).try_into().unwrap();
    let from = header(&invite.headers, "From").unwrap();
    assert!(from.starts_with("<sip:a%40b%3E%3Bc%0D%0A@192.0.2.1:5060>;tag="), "{from}");
}

#[test]
fn outgoing_calls_cannot_be_accepted_or_rejected() {
    let mut b = Bench::new(config());
    let (call, _, _) = dial(&mut b);
    assert!(matches!(b.ua.accept(b.now, call, rtp()), Err(UaError::InvalidState(_))));
    assert!(matches!(b.ua.reject(b.now, call, 486), Err(UaError::InvalidState(_))));
    assert!(b.drain().is_empty());
}

#[test]
fn extra_headers_ride_on_the_invite_and_bad_ones_are_refused() {
    let mut b = Bench::new(config());
    let headers = vec![
        ("X-Zendesk-Ticket-Id".to_string(), "102".to_string()),
        (
            "Call-Info".to_string(),
            "<https://acme.zendesk.com/agent/tickets/102>;purpose=info".to_string(),
        ),
    ];
    let route = DialRoute { resolved: None, headers: &headers };
    b.ua.dial_via(b.now, TARGET, "+4712345678", Transport::Udp, rtp(), route).unwrap();
    let [(invite, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(header(&invite.headers, "X-Zendesk-Ticket-Id").as_deref(), Some("102"));
    assert_eq!(
        header(&invite.headers, "Call-Info").as_deref(),
        Some("<https://acme.zendesk.com/agent/tickets/102>;purpose=info")
    );
    for bad in [("X-Evil", "1\r\nVia: x"), ("Bad Name", "1"), ("", "1")] {
        let headers = vec![(bad.0.to_string(), bad.1.to_string())];
        let route = DialRoute { resolved: None, headers: &headers };
        let refused = b.ua.dial_via(b.now, TARGET, "100", Transport::Udp, rtp(), route);
        assert!(matches!(refused, Err(UaError::Dial(_))), "{bad:?}");
    }
    assert_eq!(b.ua.call_count(), 1);
}

// ----- being transferred (REFER from the far end, opt-in) ------------------------------

fn refer_from(callee: &Callee, cseq: u32, refer_to: &str) -> rsip::Request {
    callee.request("REFER", cseq, &format!("Refer-To: {refer_to}\nEvent: refer\n"), "")
}

#[test]
fn a_refer_is_refused_unless_the_call_allows_it() {
    let mut b = Bench::new(config());
    let (_call, callee) = establish(&mut b);
    let out = b.send("rf1", refer_from(&callee, 5, "<sip:agent@192.0.2.30>"));
    assert_eq!(statuses(&out), vec![603]);
    assert!(events(&out).is_empty());
    assert!(sent(&out).is_empty(), "nothing dialled, nothing notified");
}

#[test]
fn a_call_we_answered_cannot_allow_refer() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("refer-optin");
    let (call, _) = b.establish(&mut c, "");
    assert!(matches!(b.ua.allow_refer(call), Err(UaError::InvalidState(_))));
    c.cseq += 1;
    let out = b.send("rf", c.make("REFER", "rf", "Refer-To: <sip:evil@203.0.113.1>\n", ""));
    assert_eq!(statuses(&out), vec![603]);
    assert!(events(&out).is_empty());
}

#[test]
fn an_allowed_refer_is_accepted_and_notified() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    b.ua.allow_refer(call).unwrap();
    respond(&mut b, &callee, callee.reply(200, CONTACT, ANSWER));
    let refer_to = "<sip:priority@192.0.2.30:5070?X-Zendesk-Ticket-Id=102&X-Zendesk-User-Id=1>";
    let out = b.send("rf1", refer_from(&callee, 5, refer_to));
    assert_eq!(statuses(&out), vec![202]);
    match events(&out).as_slice() {
        [CallEvent::Referred { call: c, target }] => {
            assert_eq!(*c, call);
            assert_eq!(target, "sip:priority@192.0.2.30:5070", "embedded headers dropped");
        }
        other => panic!("{other:?}"),
    }

    b.ua.notify_refer(b.now, call, 100).unwrap();
    let [(notify, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(notify.method, rsip::Method::Notify);
    assert_eq!(notify.uri.to_string(), "sip:agent@192.0.2.21:5090", "to the far end's Contact");
    assert_eq!(dest.addr, "192.0.2.21:5090".parse().unwrap());
    assert_eq!(header(&notify.headers, "Event").as_deref(), Some("refer"));
    let state = header(&notify.headers, "Subscription-State").unwrap();
    assert!(state.starts_with("active"), "{state}");
    assert!(header(&notify.headers, "Content-Type").unwrap().starts_with("message/sipfrag"));
    assert_eq!(notify.body, b"SIP/2.0 100 Trying\r\n");

    b.ua.notify_refer(b.now, call, 200).unwrap();
    let [(last, _)] = sent(&b.drain()).try_into().unwrap();
    let state = header(&last.headers, "Subscription-State").unwrap();
    assert!(state.starts_with("terminated"), "{state}");
    assert_eq!(last.body, b"SIP/2.0 200 OK\r\n");
    assert!(matches!(b.ua.notify_refer(b.now, call, 99), Err(UaError::InvalidStatus(99))));
}

#[test]
fn an_allowed_refer_needs_one_usable_sip_target() {
    let mut b = Bench::new(config());
    let (call, callee, _) = dial(&mut b);
    b.ua.allow_refer(call).unwrap();
    respond(&mut b, &callee, callee.reply(200, CONTACT, ANSWER));
    let bad = [
        (5, "<tel:+4712345678>"),
        (6, "<http://example.com/>"),
        (7, "<sip:a@192.0.2.1>, <sip:b@192.0.2.2>"),
    ];
    for (cseq, refer_to) in bad {
        let out = b.send(&format!("rf{cseq}"), refer_from(&callee, cseq, refer_to));
        assert_eq!(statuses(&out), vec![400], "{refer_to}");
        assert!(events(&out).is_empty(), "{refer_to}");
    }
    let no_refer_to = callee.request("REFER", 9, "Event: refer\n", "");
    assert_eq!(statuses(&b.send("rf9", no_refer_to)), vec![400]);
}
