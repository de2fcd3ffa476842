//! Building responses to requests (RFC 3261 §8.2.6).

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers};

use crate::sip::header_text;

/// Methods we accept (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER";
/// Extensions we support (the Supported header).
pub const SUPPORTED: &str = "timer";
/// Extensions we understand when a peer requires them.
pub const UNDERSTOOD_OPTIONS: &[&str] = &["timer"];

/// A response to `request`: Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6.2),
/// a To tag added when the request had none and `to_tag` is given, then `extra` headers,
/// Server (none when `server` is empty), and Content-Length for `body`.
pub fn build(
    request: &rsip::Request,
    status: u16,
    to_tag: Option<&str>,
    extra: Vec<Header>,
    body: Vec<u8>,
    server: &str,
) -> rsip::Response {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::To(to) => {
                let value = to.value().trim().to_string();
                let value = match to_tag {
                    Some(tag) if header_text::tag(&value).is_none() && status != 100 => {
                        format!("{value};tag={tag}")
                    }
                    _ => value,
                };
                headers.push(Header::To(rsip::headers::To::from(value)));
            }
            _ => {}
        }
    }
    for header in extra {
        headers.push(header);
    }
    if !server.is_empty() {
        headers.push(Header::Server(rsip::headers::Server::from(server.to_string())));
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::from(body.len().to_string())));
    rsip::Response { status_code: self::status(status), version: rsip::Version::V2, headers, body }
}

/// The reason phrase we write for a status code: RFC 3261 §21's, or that of the RFC that
/// defines the code; for a code no RFC we know defines, its class's x00 phrase (a peer
/// treats an unknown code as x00 of its class, RFC 3261 §8.1.3.2).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated", // RFC 6228
        200 => "OK",
        202 => "Accepted",        // RFC 6665
        204 => "No Notification", // RFC 5839
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed", // RFC 3903
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority", // RFC 4412
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small", // RFC 4028
        423 => "Interval Too Brief",
        428 => "Use Identity Header",              // RFC 8224
        429 => "Provide Referrer Identity",        // RFC 3892
        433 => "Anonymity Disallowed",             // RFC 5079
        436 => "Bad Identity Info",                // RFC 8224
        437 => "Unsupported Credential",           // RFC 8224
        438 => "Invalid Identity Header",          // RFC 8224
        439 => "First Hop Lacks Outbound Support", // RFC 5626
        469 => "Bad Info Package",                 // RFC 6086
        470 => "Consent Needed",                   // RFC 5360
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event", // RFC 6665
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required", // RFC 3329
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure", // RFC 3312
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted", // RFC 8197
        _ => match code / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Multiple Choices",
            4 => "Bad Request",
            5 => "Server Internal Error",
            _ => "Busy Everywhere",
        },
    }
}

/// The status line's code and reason phrase for a response we send. rsip 0.4 writes the
/// codes it knows with its enum names ("400 BadRequest"), so every response we build
/// carries its phrase explicitly.
pub fn status(code: u16) -> rsip::StatusCode {
    rsip::StatusCode::Other(code, reason_phrase(code).to_owned())
}

/// A header rsip has no variant for.
pub fn other(name: &str, value: impl Into<String>) -> Header {
    Header::Other(name.to_string(), value.into())
}

pub fn allow() -> Header {
    Header::Allow(rsip::headers::Allow::from(ALLOW.to_string()))
}

pub fn supported() -> Header {
    Header::Supported(rsip::headers::Supported::from(SUPPORTED.to_string()))
}

pub fn accept_sdp() -> Header {
    Header::Accept(rsip::headers::Accept::from("application/sdp".to_string()))
}

pub fn content_type(value: &str) -> Header {
    Header::ContentType(rsip::headers::ContentType::from(value.to_string()))
}

pub fn retry_after(seconds: u32) -> Header {
    Header::RetryAfter(rsip::headers::RetryAfter::from(seconds.to_string()))
}

/// A Warning (RFC 3261 §20.43) with our own host and fixed text only.
pub fn warning(code: u16, host: &str, text: &'static str) -> Header {
    Header::Warning(rsip::headers::Warning::from(format!("{code} {host} \"{text}\"")))
}

/// The numeric status of a response.
pub fn status_of(response: &rsip::Response) -> u16 {
    response.status_code.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status code this endpoint sends, with the reason phrase RFC 3261 §21 (or the
    /// RFC defining the code, noted) gives it, written out here independently of
    /// [`reason_phrase`]. Sources: the dialog layer (`reply`, `respond_in_call`,
    /// `respond_invite`, `reject`), the transaction layer (100 Trying, 481/200 to CANCEL,
    /// the stateless 503) and the message layer's refusals (400, 501, 505, 513).
    const SENT: &[(u16, &str)] = &[
        (100, "Trying"),
        (180, "Ringing"),
        (200, "OK"),
        (400, "Bad Request"),
        (405, "Method Not Allowed"),
        (413, "Request Entity Too Large"),
        (415, "Unsupported Media Type"),
        (416, "Unsupported URI Scheme"),
        (420, "Bad Extension"),
        (422, "Session Interval Too Small"), // RFC 4028
        (480, "Temporarily Unavailable"),
        (481, "Call/Transaction Does Not Exist"),
        (482, "Loop Detected"),
        (483, "Too Many Hops"),
        (486, "Busy Here"),
        (487, "Request Terminated"),
        (488, "Not Acceptable Here"),
        (489, "Bad Event"), // RFC 6665
        (491, "Request Pending"),
        (500, "Server Internal Error"),
        (501, "Not Implemented"),
        (503, "Service Unavailable"),
        (505, "Version Not Supported"),
        (513, "Message Too Large"),
        (603, "Decline"),
    ];

    fn invite() -> rsip::Request {
        let text = "INVITE sip:ivr@192.0.2.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1\r\n\
            From: <sip:a@192.0.2.2>;tag=1\r\nTo: <sip:ivr@192.0.2.1>\r\n\
            Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        match crate::sip::message::parse(text.as_bytes(), &Default::default()) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("test INVITE does not parse: {other:?}"),
        }
    }

    #[test]
    fn every_status_we_send_carries_its_rfc_reason_phrase() {
        let request = invite();
        for &(code, phrase) in SENT {
            assert_eq!(reason_phrase(code), phrase, "{code}");
            let response = build(&request, code, Some("t"), Vec::new(), Vec::new(), "ivr");
            let text = response.to_string();
            let status_line = text.lines().next().unwrap_or_default();
            assert_eq!(status_line, format!("SIP/2.0 {code} {phrase}"));
            assert_eq!(status_of(&response), code);
        }
    }

    #[test]
    fn codes_nobody_defined_get_their_class_phrase() {
        assert_eq!(reason_phrase(499), "Bad Request");
        assert_eq!(reason_phrase(299), "OK");
        assert_eq!(reason_phrase(699), "Busy Everywhere");
        assert_eq!(reason_phrase(700), "Busy Everywhere");
    }
}
