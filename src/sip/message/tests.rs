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
        assert_eq!(u16::from(resp.status_code.clone()), status);
        let phrase = crate::sip::response::reason_phrase(status);
        assert!(resp.to_string().starts_with(&format!("SIP/2.0 {status} {phrase}\r\n")));
    }
    let bad_status = base("SIP/2.0 700 Weird", "1 INVITE", "");
    let err = parse(bad_status.as_bytes(), &Limits::default()).unwrap_err();
    assert!(matches!(err, MessageError::Malformed(_)));
    assert!(error_response(bad_status.as_bytes(), &err).is_none());
}

/// An INVITE shaped as Linphone 5 (Debian `linphone-cli`, default settings) sends it.
const LINPHONE_INVITE: &str = "INVITE sip:ivr@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:26070;branch=z9hG4bK.Wq3~ab1Yx;rport\r\n\
From: <sip:tester@127.0.0.1>;tag=S3lbEyO~l\r\n\
To: sip:ivr@127.0.0.1:5080\r\n\
CSeq: 20 INVITE\r\n\
Call-ID: 9bKp3G0aXQ\r\n\
Max-Forwards: 70\r\n\
Supported: replaces, outbound, gruu, path\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, PRACK, UPDATE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\
Contact: <sip:tester@127.0.0.1:26070;transport=udp>;+sip.instance=\"<urn:uuid:f5a51a91-4c2d-00b5-9a6f-2c1f1b4e5f60>\"\r\n\
User-Agent: Linphone-Desktop/5.1.2 (debian) Debian GNU/Linux 12, Qt 5.15.8 LinphoneCore/5.1.2\r\n\r\n";

#[test]
fn linphone_contact_with_quoted_instance_parses() {
    let m = parse_ok(LINPHONE_INVITE);
    let contact = m.contact_header().unwrap().value().to_owned();
    assert_eq!(
        contact,
        "<sip:tester@127.0.0.1:26070;transport=udp>;+sip.instance=\"<urn:uuid:f5a51a91-4c2d-00b5-9a6f-2c1f1b4e5f60>\""
    );
    assert_eq!(
        crate::sip::header_text::uri_part(&contact),
        "sip:tester@127.0.0.1:26070;transport=udp"
    );
}

#[test]
fn quoted_parameter_values_in_every_header_kind() {
    // `;`, `,`, `<`, `>` and `:` inside quotes in Via, From, To, Contact, Route,
    // Record-Route, in URI parameters and in the Request-URI.
    let text = "INVITE sip:ivr@h.example;x=\"a;b,c<d>e:f\" SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq;x=\"a;b, c<d>:e\";rport\r\n\
        Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKr, SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKs;y=\"1,2\"\r\n\
        From: \"A; <B>, C\" <sip:a@h.example;p=\"q;r,s<t>\">;tag=f1;z=\"tag=no;x,<y>:\"\r\n\
        To: <sip:ivr@h.example>;w=\"1;2,3\"\r\n\
        Route: <sip:p1.example;lr;v=\"1;2,3>\">, <sip:p2.example;lr>;x=\"a,b\"\r\n\
        Record-Route: <sip:p3.example;lr;v=\"<x>\">\r\n\
        Call-ID: q1\r\nCSeq: 1 INVITE\r\n\
        Contact: <sip:a@192.0.2.1;ob>;+sip.instance=\"<urn:uuid:1;2,3>\";reg-id=1, <sip:a@192.0.2.4>;+g.oma.sip-im;q=\"0.5\"\r\n\
        Content-Length: 0\r\n\r\n";
    let m = parse_ok(text);
    let rsip::SipMessage::Request(r) = &m else { panic!("not a request") };
    assert_eq!(r.uri.to_string(), "sip:ivr@h.example;x=\"a;b,c<d>e:f\"");
    let vias: Vec<String> = rsip::message::HasHeaders::headers(&m)
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Via(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0], "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq;x=\"a;b, c<d>:e\";rport");
    let from = m.from_header().unwrap().value().to_owned();
    assert_eq!(crate::sip::header_text::tag(&from), Some("f1"));
    assert_eq!(crate::sip::header_text::uri_part(&from), "sip:a@h.example;p=\"q;r,s<t>\"");
    assert_eq!(m.contact_headers().len(), 2);
    let routes = crate::sip::header_text::list_entries(&r.headers, "Route", None);
    assert_eq!(routes, vec!["<sip:p1.example;lr;v=\"1;2,3>\">", "<sip:p2.example;lr>;x=\"a,b\""]);
    assert_eq!(crate::sip::header_text::uri_part(&routes[0]), "sip:p1.example;lr;v=\"1;2,3>\"");
    // The stand-in rsip's typed parsers read.
    assert_eq!(rsip_stand_in(&from), "\"d\" <sip:a@h.example;p=q>;tag=f1;z=q");
    assert!(m.from_header().unwrap().value().contains("z=\"tag=no;x,<y>:\""));
}

#[test]
fn acks_are_read_whatever_their_contact() {
    let ack = |contact: &str| {
        format!(
            "ACK sip:ivr@127.0.0.1:5080 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:26070;branch=z9hG4bK.1;rport\r\n\
             From: <sip:t@127.0.0.1>;tag=a\r\nTo: <sip:ivr@127.0.0.1>;tag=b\r\n\
             Call-ID: c\r\nCSeq: 20 ACK\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    for contact in [
        "<sip:t@127.0.0.1:26070;transport=udp>;+sip.instance=\"<urn:uuid:f5a51a91>\"",
        "<sip:t@127.0.0.1;x=\">",
        "<sip:t@127.0.0.1>;x=\"open",
        "not an address <<",
        "<sip:t@[::1>",
    ] {
        let m = parse_ok(&ack(contact));
        assert!(matches!(&m, rsip::SipMessage::Request(r) if r.method == rsip::Method::Ack));
    }
    // An INVITE with such a Contact is refused with 400.
    let invite = ack("<sip:t@127.0.0.1>;x=\"open").replace("ACK", "INVITE");
    let err = parse(invite.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(err.status(), 400);
    let resp = error_response(invite.as_bytes(), &err).unwrap();
    assert!(resp.to_string().starts_with("SIP/2.0 400 Bad Request\r\n"), "{resp}");
}
