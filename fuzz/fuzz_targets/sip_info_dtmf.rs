//! DTMF in SIP INFO bodies (`application/dtmf-relay`, `application/dtmf`), reached the way
//! a call reaches them: a whole INFO request parsed, its Content-Type media type and body
//! handed to the parser. Inputs that are not a SIP message are read as
//! `content-type NUL body` (no NUL: a dtmf-relay body). Never panics; a digit it reports
//! is one of the sixteen, with a bounded duration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zendesk_ivr::media::dtmf::{DIGITS, info};
use zendesk_ivr::sip::{header_text, message};

fn check(content_type: &str, body: &[u8]) {
    if let Some(event) = info::parse_info(content_type, body) {
        assert!(DIGITS.contains(&event.digit), "not a digit: {:?}", event.digit);
        assert!(event.duration_ms <= 60_000, "duration not clamped: {}", event.duration_ms);
        assert!(body.len() <= info::MAX_INFO_BODY, "an oversized body gave a digit");
    }
}

fuzz_target!(|data: &[u8]| {
    match message::parse(data, &message::Limits::default()) {
        Ok(rsip::SipMessage::Request(request)) => {
            let content_type =
                header_text::first(&request.headers, "Content-Type", Some("c")).unwrap_or_default();
            check(&header_text::media_type(&content_type), &request.body);
            check(&content_type, &request.body);
        }
        Ok(rsip::SipMessage::Response(_)) => {}
        Err(_) => match data.iter().position(|&b| b == 0) {
            Some(nul) => check(&String::from_utf8_lossy(&data[..nul]), &data[nul + 1..]),
            None => {
                check("application/dtmf-relay", data);
                check("application/dtmf", data);
            }
        },
    }
});
