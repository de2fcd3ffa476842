//! Messages the transaction layer writes itself: 100 Trying, answers to CANCEL, the
//! stateless 503, and the ACK to a non-2xx final response (RFC 3261 §17.1.1.3).

use rand::Rng;
use rand::distr::Alphanumeric;
use rsip::Header;
use rsip::headers::UntypedHeader;

/// A fresh random tag for a To header.
pub(super) fn new_tag() -> String {
    rand::rng().sample_iter(Alphanumeric).take(16).map(char::from).collect()
}

/// A response to `request` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied;
/// `to_tag` added to To when the request's To has none (never on 100 Trying). A 100 Trying
/// also copies Timestamp (§8.2.6.1).
pub(super) fn response_to(
    request: &rsip::Request,
    status: u16,
    to_tag: Option<&str>,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::Timestamp(_) if status == 100 => headers.push(header.clone()),
            Header::To(to) => {
                let has_tag = super::fields::to_tag(&request.headers).is_some();
                match to_tag {
                    Some(tag) if status != 100 && !has_tag => headers.push(Header::To(
                        rsip::headers::To::new(format!("{};tag={tag}", to.value().trim_end())),
                    )),
                    _ => headers.push(header.clone()),
                }
            }
            _ => {}
        }
    }
    headers.push(Header::ContentLength(0u32.into()));
    rsip::Response {
        status_code: crate::sip::response::status(status),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The ACK for a non-2xx final `response` to the INVITE `request` (RFC 3261 §17.1.1.3):
/// same Request-URI, Call-ID, From, top Via and Route set as the INVITE; To from the response;
/// CSeq number of the INVITE with method ACK.
pub(super) fn ack_for(
    request: &rsip::Request,
    response: &rsip::Response,
    cseq: u32,
) -> rsip::Request {
    let mut headers = rsip::Headers::default();
    if let Some(via) = request.headers.iter().find(|h| matches!(h, Header::Via(_))) {
        headers.push(via.clone());
    }
    headers.push(Header::MaxForwards(70u32.into()));
    for header in request.headers.iter() {
        if matches!(header, Header::From(_) | Header::CallId(_)) {
            headers.push(header.clone());
        }
    }
    if let Some(to) = response.headers.iter().find(|h| matches!(h, Header::To(_))) {
        headers.push(to.clone());
    }
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{cseq} ACK"))));
    for header in request.headers.iter() {
        if matches!(header, Header::Route(_)) {
            headers.push(header.clone());
        }
    }
    headers.push(Header::ContentLength(0u32.into()));
    rsip::Request {
        method: rsip::Method::Ack,
        uri: request.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_written_here_carry_rfc_reason_phrases() {
        let text = "INVITE sip:ivr@192.0.2.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1\r\n\
            From: <sip:a@192.0.2.2>;tag=1\r\nTo: <sip:ivr@192.0.2.1>\r\n\
            Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let Ok(rsip::SipMessage::Request(request)) =
            crate::sip::message::parse(text.as_bytes(), &Default::default())
        else {
            panic!("test INVITE does not parse");
        };
        for (code, line) in [
            (100, "SIP/2.0 100 Trying"),
            (200, "SIP/2.0 200 OK"),
            (481, "SIP/2.0 481 Call/Transaction Does Not Exist"),
            (487, "SIP/2.0 487 Request Terminated"),
            (503, "SIP/2.0 503 Service Unavailable"),
        ] {
            let text = response_to(&request, code, Some("t")).to_string();
            assert_eq!(text.lines().next(), Some(line));
        }
    }
}
