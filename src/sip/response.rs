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
/// Server, and Content-Length for `body`.
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
    headers.push(Header::Server(rsip::headers::Server::from(server.to_string())));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::from(body.len().to_string())));
    rsip::Response {
        status_code: rsip::StatusCode::from(status),
        version: rsip::Version::V2,
        headers,
        body,
    }
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
