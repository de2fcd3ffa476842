//! Caller ID (ANI) from an INVITE (sans-IO).
//!
//! P-Asserted-Identity is believed only when the request comes from a trusted source (the
//! SBC or trunk named in `sip.trusted_sources`); anyone else can write any PAI they like.
//! Otherwise the From header is used. `sip:` and `tel:` URIs are read, and the number is
//! normalised to E.164 with the configured default region.

use std::net::IpAddr;

use crate::phone::{self, PhoneNumber};
use crate::sip::admission::SourceNet;
use crate::sip::header_text as ht;

/// Where the caller ID came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AniSource {
    PAssertedIdentity,
    From,
}

/// What we know of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerId {
    /// A number, normalised to E.164.
    Number(PhoneNumber),
    /// Withheld: anonymous URIs, `Privacy: id` without a trusted PAI, and the like.
    Anonymous,
    /// Something that is not a phone number (e.g. `sip:alice@example.com`), kept for logs.
    NotANumber(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ani {
    pub caller: CallerId,
    pub source: AniSource,
}

/// User parts that mean "withheld" (RFC 3323 §4.1.1.3 and common practice).
const WITHHELD: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "private",
    "withheld",
    "anonymous.invalid",
];

/// Reads the caller ID of `invite`, received from `source`.
pub fn caller_id(
    invite: &rsip::Request,
    source: IpAddr,
    trusted: &[SourceNet],
    default_region: &str,
) -> Ani {
    if crate::sip::admission::any_contains(trusted, source)
        && let Some(uri) = asserted_uri(invite)
    {
        return Ani {
            caller: classify(&uri, default_region),
            source: AniSource::PAssertedIdentity,
        };
    }
    let from = ht::first(&invite.headers, "From", Some("f")).unwrap_or_default();
    let withheld_by_privacy = ht::values(&invite.headers, "Privacy", None)
        .iter()
        .any(|v| v.split(';').any(|p| p.trim().eq_ignore_ascii_case("id")));
    let uri = ht::uri_part(&from);
    let caller = if withheld_by_privacy || uri.is_empty() {
        CallerId::Anonymous
    } else {
        classify(uri, default_region)
    };
    Ani { caller, source: AniSource::From }
}

/// The PAI URI to use: a `tel:` one if there is one, else the first.
fn asserted_uri(invite: &rsip::Request) -> Option<String> {
    let uris: Vec<String> = ht::list_entries(&invite.headers, "P-Asserted-Identity", None)
        .iter()
        .map(|entry| ht::uri_part(entry).to_string())
        .filter(|uri| !uri.is_empty())
        .collect();
    uris.iter().find(|u| ht::scheme(u).as_deref() == Some("tel")).or(uris.first()).cloned()
}

/// Turns a URI into a caller ID.
fn classify(uri: &str, default_region: &str) -> CallerId {
    let lower = uri.to_ascii_lowercase();
    let user = if let Some(rest) = lower.strip_prefix("tel:") {
        rest.split(';').next().unwrap_or("").to_string()
    } else if let Some(rest) = lower.strip_prefix("sip:").or_else(|| lower.strip_prefix("sips:")) {
        let (user, host) = match rest.split_once('@') {
            Some((user, host)) => (user, host),
            None => ("", rest),
        };
        if host.starts_with("anonymous.invalid") && user.is_empty() {
            return CallerId::Anonymous;
        }
        user.split(';').next().unwrap_or("").to_string()
    } else {
        return CallerId::NotANumber(uri.to_string());
    };
    let user = percent_decode(&user);
    if user.is_empty() || WITHHELD.contains(&user.as_str()) {
        return CallerId::Anonymous;
    }
    let looks_numeric =
        user.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' '))
            && user.chars().any(|c| c.is_ascii_digit());
    if !looks_numeric {
        return CallerId::NotANumber(user);
    }
    match phone::normalise(&user, default_region) {
        Ok(number) => CallerId::Number(number),
        Err(_) => CallerId::NotANumber(user),
    }
}

/// Decodes `%XX` escapes (e.g. `%2B` for `+`); bad escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes.get(i),
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (Some(&b), _, _) => {
                out.push(b);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUNK: &str = "10.0.0.1";

    fn invite(extra: &str, from: &str) -> rsip::Request {
        let text = format!(
            "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n\
             From: {from};tag=a\r\n\
             To: <sip:ivr@127.0.0.1>\r\n\
             Call-ID: 1@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        rsip::Request::try_from(text.as_str()).expect("test INVITE parses")
    }

    fn number(ani: &Ani) -> &str {
        match &ani.caller {
            CallerId::Number(n) => &n.e164,
            other => panic!("expected a number, got {other:?}"),
        }
    }

    fn trusted() -> Vec<SourceNet> {
        vec![TRUNK.parse().unwrap()]
    }

    #[test]
    fn from_header_national_number_gets_default_region() {
        let req = invite("", "<sip:98765432@192.0.2.1>");
        let ani = caller_id(&req, "192.0.2.1".parse().unwrap(), &trusted(), "NO");
        assert_eq!(number(&ani), "+4798765432");
        assert_eq!(ani.source, AniSource::From);
    }

    #[test]
    fn pai_is_used_only_from_trusted_sources() {
        let req = invite(
            "P-Asserted-Identity: \"Kari\" <sip:+4791234567@trunk.example.com;user=phone>\r\n",
            "<sip:98765432@192.0.2.1>",
        );
        let ani = caller_id(&req, TRUNK.parse().unwrap(), &trusted(), "NO");
        assert_eq!(number(&ani), "+4791234567");
        assert_eq!(ani.source, AniSource::PAssertedIdentity);
        let spoofed = caller_id(&req, "192.0.2.99".parse().unwrap(), &trusted(), "NO");
        assert_eq!(number(&spoofed), "+4798765432");
        assert_eq!(spoofed.source, AniSource::From);
    }

    #[test]
    fn pai_prefers_tel_uri_among_several() {
        let req = invite(
            "P-Asserted-Identity: <sip:alice@example.com>, <tel:+1-212-555-0199>\r\n",
            "<sip:anonymous@anonymous.invalid>",
        );
        let ani = caller_id(&req, TRUNK.parse().unwrap(), &trusted(), "US");
        assert_eq!(number(&ani), "+12125550199");
    }

    #[test]
    fn tel_and_escaped_plus_in_from() {
        let req = invite("", "<tel:+47-987-65-432>");
        assert_eq!(
            number(&caller_id(&req, "192.0.2.1".parse().unwrap(), &[], "US")),
            "+4798765432"
        );
        let req = invite("", "<sip:%2B4798765432@192.0.2.1>");
        assert_eq!(
            number(&caller_id(&req, "192.0.2.1".parse().unwrap(), &[], "US")),
            "+4798765432"
        );
    }

    #[test]
    fn withheld_callers_are_anonymous() {
        for from in [
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "<sip:restricted@192.0.2.1>",
            "<sip:unknown@192.0.2.1>",
            "<sip:anonymous.invalid>",
        ] {
            let ani = caller_id(&invite("", from), "192.0.2.1".parse().unwrap(), &[], "NO");
            assert_eq!(ani.caller, CallerId::Anonymous, "{from}");
        }
        let ani = caller_id(
            &invite("Privacy: id\r\n", "<sip:98765432@192.0.2.1>"),
            "192.0.2.1".parse().unwrap(),
            &[],
            "NO",
        );
        assert_eq!(ani.caller, CallerId::Anonymous);
    }

    #[test]
    fn angle_bracket_in_a_quoted_display_name_does_not_hide_the_number() {
        let req = invite("", "\"Kari <Nordmann>\" <sip:98765432@192.0.2.1>");
        let ani = caller_id(&req, "192.0.2.1".parse().unwrap(), &[], "NO");
        assert_eq!(number(&ani), "+4798765432");
    }

    #[test]
    fn names_are_not_numbers() {
        let ani = caller_id(
            &invite("", "<sip:alice@example.com>"),
            "192.0.2.1".parse().unwrap(),
            &[],
            "NO",
        );
        assert_eq!(ani.caller, CallerId::NotANumber("alice".into()));
    }

    #[test]
    fn odd_input_never_panics() {
        for s in ["%", "%4", "%zz", "<>", "<sip:@>", "\"<\"", ",,,", "sip:", "tel:;", "<sip:+>"] {
            let _ = classify(s, "NO");
            let _ = percent_decode(s);
        }
    }
}
