//! Calls over TLS: Contact and Via name TLS and the TLS port, and requests in a call that
//! came over TLS go back on its connection.

use super::harness::*;
use crate::sip::dialog::UaConfig;
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::transaction::{Peer, TransactionEvent};

fn tls_config() -> UaConfig {
    UaConfig { tls_port: Some(5061), ..config() }
}

#[test]
fn an_incoming_tls_call_names_tls_and_goes_back_on_its_connection() {
    let mut b = Bench::new(tls_config());
    let mut c = Caller::new("tls-1@192.0.2.9");
    let source = Peer { addr: "192.0.2.9:40000".parse().unwrap(), transport: Transport::Tls };
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
        Some("<sip:ivr@192.0.2.1:5061;transport=tls>")
    );
    c.to_tag = ht::tag(&header(&ok.headers, "To").unwrap()).map(str::to_string);
    b.event(TransactionEvent::Ack { request: c.make("ACK", "ack1", "", ""), source });
    b.ua.hangup(b.now, call).unwrap();
    let [(bye, dest)] = sent(&b.drain()).try_into().unwrap();
    // The Contact names 192.0.2.9:5062; the BYE takes the caller's connection.
    assert_eq!(dest, source);
    let via = header(&bye.headers, "Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 192.0.2.1:5061;"), "{via}");
}

#[test]
fn a_tls_target_is_dialled_on_5061_over_tls() {
    let mut b = Bench::new(tls_config());
    b.ua.dial(b.now, "sip:agent@192.0.2.20;transport=tls", "100", Transport::Udp, rtp()).unwrap();
    let [(invite, dest)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(dest, Peer { addr: "192.0.2.20:5061".parse().unwrap(), transport: Transport::Tls });
    let via = header(&invite.headers, "Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 192.0.2.1:5061;"), "{via}");
    assert_eq!(
        header(&invite.headers, "Contact").as_deref(),
        Some("<sip:ivr@192.0.2.1:5061;transport=tls>")
    );
}
