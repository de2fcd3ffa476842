//! Contacts written the way real phones write them: quoted parameter values (RFC 5626
//! `+sip.instance`, RFC 3840 feature tags), in the URI and after it.

use super::harness::*;
use crate::sip::dialog::{CallEvent, UaAction};
use crate::sip::header_text as ht;
use crate::sip::message::{Limits, Transport, parse};
use crate::sip::transaction::{Peer, TransactionEvent};

const CONTACT: &str = "<sip:alice@192.0.2.9:5062;transport=udp;x=\"a;b,c>\">;\
    +sip.instance=\"<urn:uuid:f5a51a91-4c2d-00b5-9a6f-2c1f1b4e5f60>\";reg-id=1";

fn message(method: &str, cseq: u32, to_tag: Option<&str>, body: &str) -> rsip::Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    let text = format!(
        "{method} sip:ivr@192.0.2.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bK{method}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@192.0.2.9>;tag=caller1\r\n\
         To: <sip:ivr@192.0.2.1>{to_tag}\r\n\
         Call-ID: quoted-contact@192.0.2.9\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: {CONTACT}\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match parse(text.as_bytes(), &Limits::default()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

#[test]
fn a_contact_with_quoted_parameters_is_the_remote_target() {
    let mut b = Bench::new(config());
    let out = b.send("inv1", message("INVITE", 20, None, OFFER));
    let call = incoming(&out).expect("Incoming");
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    let to = header(&ok.headers, "To").unwrap();
    let tag = ht::tag(&to).unwrap().to_string();
    let ack = message("ACK", 20, Some(&tag), "");
    let out = b.event(TransactionEvent::Ack { request: ack, source: caller() });
    assert!(out.iter().any(|a| matches!(a, UaAction::Event(CallEvent::Established { .. }))));

    b.ua.hangup(b.now, call).unwrap();
    let out = b.drain();
    let [(bye, dest)] = sent(&out).try_into().unwrap();
    assert_eq!(bye.method, rsip::Method::Bye);
    // rsip writes the transport parameter's value in capitals (it is case-insensitive).
    assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.9:5062;transport=UDP;x=\"a;b,c>\"");
    assert_eq!(dest, Peer { addr: "192.0.2.9:5062".parse().unwrap(), transport: Transport::Udp });
}
