//! Requests we refuse, and how.

use super::harness::*;
use crate::sip::dialog::UaConfig;
use crate::sip::header_text as ht;

fn status_of(b: &mut Bench, req: rsip::Request) -> (u16, rsip::Response) {
    let out = b.send("x", req);
    let [(_, r)] = responses(&out).try_into().expect("one response");
    (r.status_code.code(), r)
}

#[test]
fn options_and_draining() {
    let mut b = Bench::new(config());
    let c = Caller::new("opt-1");
    let (status, r) = status_of(&mut b, c.make("OPTIONS", "o1", "", ""));
    assert_eq!(status, 200);
    assert!(header(&r.headers, "Allow").unwrap().contains("INVITE"));
    assert_eq!(header(&r.headers, "Accept").as_deref(), Some("application/sdp"));
    assert_eq!(header(&r.headers, "Supported").as_deref(), Some("timer"));
    b.ua.set_draining(true);
    let (status, r) = status_of(&mut b, Caller::new("opt-2").make("OPTIONS", "o2", "", ""));
    assert_eq!(status, 503);
    assert!(header(&r.headers, "Retry-After").is_some());
    let (status, _) = status_of(&mut b, Caller::new("inv-d").make("INVITE", "i1", "", OFFER));
    assert_eq!(status, 503);
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn over_capacity_is_503() {
    let mut b = Bench::new(UaConfig { max_calls: 1, ..config() });
    assert!(incoming(&b.send("a", Caller::new("cap-1").make("INVITE", "a", "", OFFER))).is_some());
    let (status, r) = status_of(&mut b, Caller::new("cap-2").make("INVITE", "b", "", OFFER));
    assert_eq!(status, 503);
    assert_eq!(header(&r.headers, "Retry-After").as_deref(), Some("5"));
}

#[test]
fn methods_we_do_not_take() {
    let mut b = Bench::new(config());
    let (status, r) =
        status_of(&mut b, Caller::new("m-1").make("PRACK", "p", "RAck: 1 1 INVITE\n", ""));
    assert_eq!(status, 501);
    assert!(header(&r.headers, "Allow").is_some());
    for method in ["REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"] {
        let (status, r) = status_of(&mut b, Caller::new(method).make(method, method, "", ""));
        assert_eq!(status, 405, "{method}");
        assert!(header(&r.headers, "Allow").unwrap().contains("REFER"));
    }
}

#[test]
fn require_what_we_lack_is_420() {
    let mut b = Bench::new(config());
    let c = Caller::new("req-1");
    let (status, r) =
        status_of(&mut b, c.make("INVITE", "r", "Require: 100rel, timer, foo\n", OFFER));
    assert_eq!(status, 420);
    assert_eq!(header(&r.headers, "Unsupported").as_deref(), Some("100rel, foo"));
    let out = b.send(
        "r2",
        Caller::new("req-2").make("INVITE", "r2", "Require: timer\nSupported: timer\n", OFFER),
    );
    assert!(incoming(&out).is_some(), "timer is understood");
}

#[test]
fn request_uri_scheme_is_416() {
    let mut b = Bench::new(config());
    let c = Caller::new("uri-1");
    let head =
        c.head("INVITE", "u", "").replacen("sip:ivr@192.0.2.1:5060", "http://ivr.example", 1);
    let (status, _) = status_of(&mut b, request(&head, ""));
    assert_eq!(status, 416);
}

#[test]
fn body_type_and_accept() {
    let mut b = Bench::new(config());
    let (status, r) = status_of(
        &mut b,
        Caller::new("b-1").make("INVITE", "b1", "Content-Type: text/plain\n", "hello"),
    );
    assert_eq!(status, 415);
    assert_eq!(header(&r.headers, "Accept").as_deref(), Some("application/sdp"));
    let (status, _) =
        status_of(&mut b, Caller::new("b-2").make("INVITE", "b2", "Accept: text/html\n", OFFER));
    assert_eq!(status, 406);
    let out = b.send(
        "b3",
        Caller::new("b-3").make(
            "INVITE",
            "b3",
            "Accept: application/sdp, application/dtmf-relay\n",
            OFFER,
        ),
    );
    assert!(incoming(&out).is_some());
    let (status, _) = status_of(
        &mut b,
        Caller::new("b-4").make("INVITE", "b4", "", "v=0\r\nm=audio x RTP/AVP 0\r\n"),
    );
    assert_eq!(status, 400);
}

#[test]
fn no_common_codec_is_488_with_warning() {
    let mut b = Bench::new(config());
    let offer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18 101");
    let (status, r) = status_of(&mut b, Caller::new("c-1").make("INVITE", "c", "", &offer));
    assert_eq!(status, 488);
    let warning = header(&r.headers, "Warning").unwrap();
    assert!(warning.starts_with("304 192.0.2.1 "), "{warning}");
    assert_eq!(b.ua.call_count(), 0);
}

#[test]
fn max_forwards_zero_is_483_but_options_answered() {
    let mut b = Bench::new(config());
    let c = Caller::new("mf-1");
    let invite = c.head("INVITE", "mf", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(status_of(&mut b, request(&invite, "")).0, 483);
    let options = c.head("OPTIONS", "mf2", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(status_of(&mut b, request(&options, "")).0, 200);
}

#[test]
fn unknown_dialog_is_481() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("nd-1");
    c.to_tag = Some("nosuchtag".into());
    c.cseq = 2;
    for method in ["BYE", "INVITE", "INFO"] {
        assert_eq!(status_of(&mut b, c.make(method, method, "", "")).0, 481, "{method}");
    }
    // BYE with no To tag at all.
    assert_eq!(status_of(&mut b, Caller::new("nd-2").make("BYE", "b", "", "")).0, 481);
}

#[test]
fn merged_request_is_482() {
    let mut b = Bench::new(config());
    let c = Caller::new("merge-1");
    assert!(incoming(&b.send("m1", c.make("INVITE", "m1", "", OFFER))).is_some());
    let (status, r) = status_of(&mut b, c.make("INVITE", "m2", "", OFFER));
    assert_eq!(status, 482);
    assert!(ht::tag(&header(&r.headers, "To").unwrap()).is_some());
    assert_eq!(b.ua.call_count(), 1);
}

#[test]
fn session_interval_too_small_is_422() {
    let mut b = Bench::new(UaConfig { min_se: 120, ..config() });
    let c = Caller::new("se-1");
    let (status, r) =
        status_of(&mut b, c.make("INVITE", "s", "Supported: timer\nSession-Expires: 100\n", OFFER));
    assert_eq!(status, 422);
    assert_eq!(header(&r.headers, "Min-SE").as_deref(), Some("120"));
}

#[test]
fn out_of_order_cseq_is_500() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("cseq-1");
    c.cseq = 5;
    b.establish(&mut c, "");
    c.cseq = 3;
    assert_eq!(status_of(&mut b, c.make("INFO", "i", "", "")).0, 500);
    c.cseq = 6;
    assert_eq!(status_of(&mut b, c.make("INFO", "i2", "", "")).0, 200);
}
