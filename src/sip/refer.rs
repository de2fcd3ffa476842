//! REFER (RFC 3515): the Refer-To value we send and the progress NOTIFYs we read.

use crate::sip::header_text;

/// Longest transfer target accepted.
pub const MAX_TARGET_LEN: usize = 512;

/// Why a transfer target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("transfer target is empty or longer than {MAX_TARGET_LEN} bytes")]
    Length,
    #[error("transfer target must be a sip:, sips: or tel: URI")]
    Scheme,
}

/// The Refer-To value for `target`: `<uri>` with every character that could break out
/// of the brackets (or the header) percent-encoded.
pub fn refer_to(target: &str) -> Result<String, TargetError> {
    let target = target.trim();
    if target.is_empty() || target.len() > MAX_TARGET_LEN {
        return Err(TargetError::Length);
    }
    match header_text::scheme(target).as_deref() {
        Some("sip" | "sips" | "tel") => Ok(format!("<{}>", header_text::escape_uri(target))),
        _ => Err(TargetError::Scheme),
    }
}

/// The status code in a `message/sipfrag` body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let head = body.get(..body.len().min(256))?;
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts.next()?.parse::<u16>().ok().filter(|c| (100..700).contains(c))
}

/// Whether a Subscription-State value ends the implicit subscription.
pub fn is_terminated(subscription_state: &str) -> bool {
    subscription_state
        .split(';')
        .next()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_is_escaped() {
        assert_eq!(refer_to("sip:agent@10.0.0.1").unwrap(), "<sip:agent@10.0.0.1>");
        assert_eq!(refer_to("sip:a@b>\r\nEvil: 1").unwrap(), "<sip:a@b%3E%0D%0AEvil:%201>");
        assert_eq!(refer_to("http://x"), Err(TargetError::Scheme));
        assert_eq!(refer_to(""), Err(TargetError::Length));
    }

    #[test]
    fn sipfrag() {
        assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing\r\n"), Some(180));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99999 x"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert!(is_terminated("terminated;reason=noresource"));
        assert!(!is_terminated("active;expires=60"));
    }
}
