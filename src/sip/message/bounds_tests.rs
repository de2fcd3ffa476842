//! Each bound of [`Limits`] on its own: what it refuses, and how the refusal is answered.
use super::*;

fn request(vias: usize, headers: usize, line: usize, body: usize) -> Vec<u8> {
    let mut m = String::from("MESSAGE sip:ivr@192.0.2.1 SIP/2.0\r\n");
    for i in 0..vias {
        m.push_str(&format!("Via: SIP/2.0/UDP 192.0.2.{}:5060;branch=z9hG4bK{i}\r\n", i % 250));
    }
    m.push_str("From: <sip:a@192.0.2.9>;tag=1\r\nTo: <sip:ivr@192.0.2.1>\r\n");
    m.push_str("Call-ID: bounds@192.0.2.9\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n");
    for i in 0..headers {
        m.push_str(&format!("X-Extra-{i}: 1\r\n"));
    }
    m.push_str(&format!("Subject: {}\r\n", "s".repeat(line)));
    m.push_str(&format!("Content-Length: {body}\r\n\r\n{}", "b".repeat(body)));
    m.into_bytes()
}

fn refused(bytes: &[u8]) -> (MessageError, Option<u16>) {
    let err = parse(bytes, &Limits::default()).expect_err("must be refused");
    let answer = error_response(bytes, &err).map(|r| r.status_code.code());
    (err, answer)
}

#[test]
fn messages_just_inside_every_bound_are_accepted() {
    let limits = Limits::default();
    let ok = request(limits.max_vias, 100, 8_000, limits.max_body_bytes);
    assert!(parse(&ok, &limits).is_ok());
}

#[test]
fn too_many_vias_are_dropped_unanswered() {
    let (err, answer) = refused(&request(71, 0, 10, 0));
    assert_eq!(err, MessageError::TooManyVias);
    assert_eq!(answer, None, "an answer would echo every Via");
}

#[test]
fn a_body_over_its_bound_gets_413() {
    let (err, answer) = refused(&request(1, 0, 10, 16_385));
    assert_eq!(err, MessageError::BodyTooLarge);
    assert_eq!(answer, Some(413));
}

#[test]
fn header_count_and_line_length_get_400_and_size_513() {
    let (err, answer) = refused(&request(1, 300, 10, 0));
    assert_eq!((err, answer), (MessageError::TooManyHeaders, Some(400)));
    let (err, answer) = refused(&request(1, 0, 9_000, 0));
    assert_eq!((err, answer), (MessageError::LineTooLong, Some(400)));
    let limits = Limits { max_message_bytes: 2_000, ..Limits::default() };
    let big = request(1, 0, 10, 1_900);
    let err = parse(&big, &limits).expect_err("over the size");
    assert_eq!(err, MessageError::TooLarge);
    assert_eq!(error_response(&big, &err).map(|r| r.status_code.code()), Some(513));
}
