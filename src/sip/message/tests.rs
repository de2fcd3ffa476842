//! Unit tests of the message layer.
use super::*;

fn parse_ok(text: &str) -> rsip::SipMessage {
    match parse(text.as_bytes(), &Limits::default()) {
        Ok(m) => m,
        Err(e) => panic!("{e:?} for {text:?}"),
    }
}

#[test]
fn lf_only_compact_folded_message_reads_typed() {
    let m = parse_ok(
        "INVITE sip:bob@example.com SIP/2.0\n\
         v: SIP/2.0/UDP 192.0.2.1:5060\n ;branch=z9hG4bKa, SIP/2.0/TCP proxy.example.com;branch=z9hG4bKb\n\
         f: \"Alice\" <sip:alice@example.com>;tag=a1\n\
         t: <sip:bob@example.com>\n\
         i: call-1@192.0.2.1\n\
         CSEQ: 1 INVITE\n\
         m: <sip:alice@192.0.2.1>, <sip:alice@198.51.100.1>\n\
         l: 3\n\nabc",
    );
    let via = m.via_header().unwrap().typed().unwrap();
    assert_eq!(via.branch().unwrap().to_string(), "z9hG4bKa");
    assert_eq!(m.from_header().unwrap().typed().unwrap().tag().unwrap().to_string(), "a1");
    assert_eq!(m.call_id_header().unwrap().value(), "call-1@192.0.2.1");
    assert_eq!(m.contact_headers().len(), 2);
    let vias = rsip::message::HasHeaders::headers(&m)
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .count();
    assert_eq!(vias, 2);
    assert_eq!(m.body(), b"abc");
}

#[test]
fn tel_and_ipv6_addresses_are_accepted() {
    let m = parse_ok(
        "OPTIONS sip:ivr@[2001:db8::1]:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP [2001:db8::2]:5070;branch=z9hG4bKx\r\n\
         From: <tel:+4722334455>;tag=t\r\nTo: <sip:ivr@example.com>\r\n\
         Call-ID: c\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    let rsip::SipMessage::Request(r) = m else { panic!("not a request") };
    assert_eq!(r.uri.host_with_port.host, rsip::Host::IpAddr("2001:db8::1".parse().unwrap()));
    assert_eq!(r.from_header().unwrap().value(), "<tel:+4722334455>;tag=t");
}

#[test]
fn refusals_carry_the_right_status() {
    let base = |start: &str, cseq: &str, extra: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
             To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: {cseq}\r\n{extra}\r\n"
        )
    };
    let cases = [
        (base("invite sip:b@h SIP/2.0", "1 invite", ""), 501),
        (base("INVITE sip:b@h SIP/2.0", "1 INVITE", "Content-Length: 10\r\n"), 400),
        (base("INVITE sip:b@h SIP/3.0", "1 INVITE", ""), 505),
        (base("INVITE sip:b@h SIP/2.0", "1 BYE", ""), 400),
        (base("INVITE sip:b@h SIP/2.0", "1 INVITE", "Max-Forwards: 256\r\n"), 400),
        (base("INVITE sip:b@h SIP/2.0", "1 INVITE", "Via: SIP/2.0/UDP a b\r\n"), 400),
    ];
    for (text, status) in cases {
        let err = parse(text.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(err.status(), status, "{err:?} for {text:?}");
        let resp = error_response(text.as_bytes(), &err).unwrap();
        assert_eq!(u16::from(resp.status_code), status);
    }
    let bad_status = base("SIP/2.0 700 Weird", "1 INVITE", "");
    let err = parse(bad_status.as_bytes(), &Limits::default()).unwrap_err();
    assert!(matches!(err, MessageError::Malformed(_)));
    assert!(error_response(bad_status.as_bytes(), &err).is_none());
}
