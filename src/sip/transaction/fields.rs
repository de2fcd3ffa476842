//! The header fields transactions match on (RFC 3261 §17.1.3, §17.2.3), read without
//! panicking, and the `received`/`rport` stamp on the top Via (RFC 3261 §18.2.1, RFC 3581).
//!
//! Via, From and To are read with small quote-aware scanners instead of rsip's typed headers:
//! matching needs only the sent-by, the branch and the tags, and the scanners keep working on
//! values (IPv6 sent-by, odd display names) that rsip's typed parsers reject.

use std::net::{IpAddr, SocketAddr};

use rsip::Header;
use rsip::headers::UntypedHeader;

use crate::sip::header_text::{Angles, angle_close, find_outside, param, split_outside};

/// The RFC 3261 branch prefix; branches without it are matched the RFC 2543 way.
pub(super) const MAGIC_COOKIE: &str = "z9hG4bK";

/// At most this many `;` or `,` separated parts are looked at in one header value.
const MAX_PARTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FieldError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
}

/// The top Via entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopVia {
    /// The entry as it arrived, trimmed (used by RFC 2543 matching).
    pub raw: String,
    /// `host[:port]`, lower-cased, whitespace removed.
    pub sent_by: String,
    pub branch: Option<String>,
}

impl TopVia {
    /// The branch when it carries the RFC 3261 magic cookie.
    pub fn rfc3261_branch(&self) -> Option<&str> {
        self.branch.as_deref().filter(|branch| branch.starts_with(MAGIC_COOKIE))
    }
}

/// What a transaction needs from a request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fields {
    pub via: TopVia,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
}

impl Fields {
    pub fn read(headers: &rsip::Headers) -> Result<Fields, FieldError> {
        let mut via = None;
        let mut call_id = None;
        let mut cseq = None;
        let mut from = None;
        let mut to = None;
        for header in headers.iter() {
            match header {
                Header::Via(h) if via.is_none() => via = Some(h.value()),
                Header::CallId(h) if call_id.is_none() => call_id = Some(h.value()),
                Header::CSeq(h) if cseq.is_none() => cseq = Some(h.value()),
                Header::From(h) if from.is_none() => from = Some(h.value()),
                Header::To(h) if to.is_none() => to = Some(h.value()),
                _ => {}
            }
        }
        let via = parse_top_via(via.ok_or(FieldError::Missing("Via"))?)?;
        let call_id = call_id.ok_or(FieldError::Missing("Call-ID"))?.trim();
        if call_id.is_empty() {
            return Err(FieldError::Malformed("Call-ID"));
        }
        let (cseq, cseq_method) = parse_cseq(cseq.ok_or(FieldError::Missing("CSeq"))?)?;
        let from_tag = tag_param(from.ok_or(FieldError::Missing("From"))?)
            .map_err(|()| FieldError::Malformed("From"))?;
        let to_tag = tag_param(to.ok_or(FieldError::Missing("To"))?)
            .map_err(|()| FieldError::Malformed("To"))?;
        Ok(Fields { via, call_id: call_id.to_owned(), cseq, cseq_method, from_tag, to_tag })
    }
}

/// The To tag of a message, if it has one and the To header reads.
pub(super) fn to_tag(headers: &rsip::Headers) -> Option<String> {
    headers.iter().find_map(|header| match header {
        Header::To(h) => tag_param(h.value()).ok().flatten(),
        _ => None,
    })
}

/// Splits `value` at `sep` outside double-quoted strings. `None` past [`MAX_PARTS`] parts.
fn split_unquoted(value: &str, sep: char) -> Option<Vec<&str>> {
    let parts: Vec<&str> =
        split_outside(value, sep, Angles::Ordinary).take(MAX_PARTS + 1).collect();
    (parts.len() <= MAX_PARTS).then_some(parts)
}

/// The first entry of a Via value, split off any comma-joined entries after it.
fn first_via_entry(value: &str) -> Result<(&str, &str), FieldError> {
    let entries = split_unquoted(value, ',').ok_or(FieldError::Malformed("Via"))?;
    let first = entries.first().copied().unwrap_or_default();
    Ok((first, &value[first.len()..]))
}

fn parse_top_via(value: &str) -> Result<TopVia, FieldError> {
    let (entry, _) = first_via_entry(value)?;
    let parts = split_unquoted(entry, ';').ok_or(FieldError::Malformed("Via"))?;
    let head = parts.first().copied().unwrap_or_default();
    let sent_by = sent_by(head).ok_or(FieldError::Malformed("Via"))?;
    let branch = parts.iter().skip(1).map(|part| param(part)).find_map(|(name, value)| {
        name.eq_ignore_ascii_case("branch").then(|| value.map(str::to_owned)).flatten()
    });
    Ok(TopVia { raw: entry.trim().to_owned(), sent_by, branch: branch.filter(|b| !b.is_empty()) })
}

/// `SIP / 2.0 / UDP host : port` → `host:port` (lower-cased, whitespace removed).
fn sent_by(head: &str) -> Option<String> {
    let mut slashes = head.match_indices('/');
    let (second_slash, _) = slashes.nth(1)?;
    let after = head[second_slash + 1..].trim_start();
    let transport_end = after.find(char::is_whitespace)?;
    let sent_by: String = after[transport_end..]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    (!sent_by.is_empty() && !after[..transport_end].is_empty()).then_some(sent_by)
}

/// The host of a sent-by, when it is an IP address.
fn sent_by_ip(sent_by: &str) -> Option<IpAddr> {
    if let Some(rest) = sent_by.strip_prefix('[') {
        let (host, _) = rest.split_once(']')?;
        return host.parse().ok();
    }
    match sent_by.matches(':').count() {
        0 => sent_by.parse().ok(),
        1 => sent_by.split_once(':')?.0.parse().ok(),
        _ => sent_by.parse().ok(),
    }
}

fn parse_cseq(value: &str) -> Result<(u32, String), FieldError> {
    let mut tokens = value.split_whitespace();
    let (Some(number), Some(method), None) = (tokens.next(), tokens.next(), tokens.next()) else {
        return Err(FieldError::Malformed("CSeq"));
    };
    let number = number.parse().map_err(|_| FieldError::Malformed("CSeq"))?;
    Ok((number, method.to_owned()))
}

/// The `tag` parameter of a From or To value. `Err` on an unclosed `<`. Quoted strings
/// (display name, quoted URI or header parameter values) split nothing.
fn tag_param(value: &str) -> Result<Option<String>, ()> {
    let params = match find_outside(value, '<', Angles::Ordinary) {
        Some(open) => {
            let close = angle_close(&value[open..]).ok_or(())?;
            &value[open + close + 1..]
        }
        None => value,
    };
    let parts = split_unquoted(params, ';').ok_or(())?;
    Ok(parts
        .iter()
        .skip(1)
        .map(|part| param(part))
        .find(|(name, _)| name.eq_ignore_ascii_case("tag"))
        .and_then(|(_, value)| value)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned))
}

/// Adds `received=` to the top Via when its sent-by is not the source address, and fills an
/// empty `rport` with the source port (which also forces `received=`), per RFC 3261 §18.2.1
/// and RFC 3581 §4. Other parameters are kept as they came.
pub(super) fn stamp_top_via(
    headers: &mut rsip::Headers,
    source: SocketAddr,
) -> Result<(), FieldError> {
    let via = headers
        .iter_mut()
        .find_map(|header| match header {
            Header::Via(via) => Some(via),
            _ => None,
        })
        .ok_or(FieldError::Missing("Via"))?;
    let value = via.value().to_owned();
    let (entry, rest) = first_via_entry(&value)?;
    let parts = split_unquoted(entry, ';').ok_or(FieldError::Malformed("Via"))?;
    let head = parts.first().copied().unwrap_or_default();
    let sent_by = sent_by(head).ok_or(FieldError::Malformed("Via"))?;
    let source_ip = source.ip().to_canonical();

    let mut stamped = head.trim_end().to_owned();
    let mut has_rport = false;
    for part in parts.iter().skip(1) {
        let (name, _) = param(part);
        if name.eq_ignore_ascii_case("received") {
            continue;
        }
        if name.eq_ignore_ascii_case("rport") {
            has_rport = true;
            stamped.push_str(&format!(";rport={}", source.port()));
            continue;
        }
        stamped.push(';');
        stamped.push_str(part.trim());
    }
    if has_rport || sent_by_ip(&sent_by).map(|ip| ip.to_canonical()) != Some(source_ip) {
        stamped.push_str(&format!(";received={source_ip}"));
    }
    stamped.push_str(rest);
    // An unterminated quoted string would swallow the added parameters: refuse the Via.
    let matched = |v: &str| parse_top_via(v).ok().map(|t| (t.branch, t.sent_by));
    if matched(&stamped) != matched(&value) {
        return Err(FieldError::Malformed("Via"));
    }
    via.replace(stamped);
    Ok(())
}

/// The body of the `sip_fields` fuzz target: reads the fields of a message's headers (as
/// parsed, or built raw from its `Name: value` lines so that values the parser refuses
/// reach the scanners too), stamps the top Via, and checks that the stamp keeps what
/// matching reads. Panics only when that check fails.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let limits = crate::sip::message::Limits::default();
    let mut headers = match crate::sip::message::parse(data, &limits) {
        Ok(message) => rsip::message::HasHeaders::headers(&message).clone(),
        Err(_) => raw_headers(&String::from_utf8_lossy(data)),
    };
    let before = Fields::read(&headers);
    let _ = to_tag(&headers);
    let source = SocketAddr::from(([192, 0, 2, 1], 5062));
    if stamp_top_via(&mut headers, source).is_ok()
        && let Ok(before) = before
    {
        let after = Fields::read(&headers).expect("a stamped Via still reads");
        assert_eq!(after.via.branch, before.via.branch, "the stamp changed the branch");
        assert_eq!(after.via.sent_by, before.via.sent_by, "the stamp changed the sent-by");
        assert_eq!((after.cseq, after.from_tag), (before.cseq, before.from_tag));
    }
}

/// Via, From, To, Call-ID and CSeq headers from `Name: value` lines, unchecked.
fn raw_headers(text: &str) -> rsip::Headers {
    use rsip::headers::{CSeq, CallId, From, To, Via};
    let mut headers = Vec::new();
    for line in text.split('\n').skip(1).take(100) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim_end_matches('\r');
        headers.push(match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => Header::Via(Via::new(value)),
            "from" | "f" => Header::From(From::new(value)),
            "to" | "t" => Header::To(To::new(value)),
            "call-id" | "i" => Header::CallId(CallId::new(value)),
            "cseq" => Header::CSeq(CSeq::new(value)),
            _ => continue,
        });
    }
    headers.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(via: &str, from: &str, to: &str, cseq: &str) -> rsip::Headers {
        vec![
            Header::Via(rsip::headers::Via::new(via)),
            Header::From(rsip::headers::From::new(from)),
            Header::To(rsip::headers::To::new(to)),
            Header::CallId(rsip::headers::CallId::new("abc@host")),
            Header::CSeq(rsip::headers::CSeq::new(cseq)),
        ]
        .into()
    }

    #[test]
    fn reads_fields_with_quoted_display_names_and_lws() {
        let h = headers(
            "SIP / 2.0 / UDP  Host.Example.COM : 5060 ;branch=z9hG4bKx;rport",
            "\"a;tag=no <x>\" <sip:a@b;tag=uri>;tag=from1",
            "sip:c@d;tag=to1",
            " 42  INVITE ",
        );
        let fields = Fields::read(&h).expect("fields");
        assert_eq!(fields.via.sent_by, "host.example.com:5060");
        assert_eq!(fields.via.rfc3261_branch(), Some("z9hG4bKx"));
        assert_eq!(fields.from_tag.as_deref(), Some("from1"));
        assert_eq!(fields.to_tag.as_deref(), Some("to1"));
        assert_eq!((fields.cseq, fields.cseq_method.as_str()), (42, "INVITE"));
    }

    #[test]
    fn quoted_parameter_values_hide_no_tags() {
        let h = headers(
            r#"SIP/2.0/UDP h:5060;x="a;branch=no,b";branch=z9hG4bKreal"#,
            r#"<sip:a@b;p="x>;tag=no">;q="1;tag=no,2";tag=from1"#,
            r#"sip:c@d;x="y;tag=no";tag=to1"#,
            "1 INVITE",
        );
        let fields = Fields::read(&h).expect("fields");
        assert_eq!(fields.via.branch.as_deref(), Some("z9hG4bKreal"));
        assert_eq!(fields.from_tag.as_deref(), Some("from1"));
        assert_eq!(fields.to_tag.as_deref(), Some("to1"));
    }

    #[test]
    fn rejects_odd_cseq_and_missing_headers() {
        let h = headers("SIP/2.0/UDP h;branch=z9hG4bK1", "<sip:a@b>", "<sip:c@d>", "x INVITE");
        assert_eq!(Fields::read(&h), Err(FieldError::Malformed("CSeq")));
        let h =
            headers("SIP/2.0/UDP h;branch=z9hG4bK1", "<sip:a@b>", "<sip:c@d>", "1 INVITE extra");
        assert_eq!(Fields::read(&h), Err(FieldError::Malformed("CSeq")));
        let h = headers("garbage", "<sip:a@b>", "<sip:c@d>", "1 INVITE");
        assert_eq!(Fields::read(&h), Err(FieldError::Malformed("Via")));
        assert_eq!(Fields::read(&rsip::Headers::default()), Err(FieldError::Missing("Via")));
    }

    #[test]
    fn via_parts_are_bounded() {
        let within = format!("SIP/2.0/UDP h;branch=z9hG4bK1{}", ";x".repeat(MAX_PARTS - 2));
        let h = headers(&within, "<sip:a@b>", "<sip:c@d>", "1 INVITE");
        assert_eq!(Fields::read(&h).expect("fields").via.sent_by, "h");
        let past = format!("{within};x");
        let h = headers(&past, "<sip:a@b>", "<sip:c@d>", "1 INVITE");
        assert_eq!(Fields::read(&h), Err(FieldError::Malformed("Via")));
    }

    fn stamp(via: &str, source: &str) -> String {
        let mut h = headers(via, "<sip:a@b>", "<sip:c@d>", "1 INVITE");
        stamp_top_via(&mut h, source.parse().expect("addr")).expect("stamp");
        Fields::read(&h).expect("fields").via.raw
    }

    #[test]
    fn stamps_received_and_rport() {
        // Same address, no rport: untouched.
        assert_eq!(
            stamp("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", "10.0.0.1:5060"),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"
        );
        // Host name or other address: received added.
        assert_eq!(
            stamp("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1", "10.0.0.9:4000"),
            "SIP/2.0/UDP pc.example.com;branch=z9hG4bK1;received=10.0.0.9"
        );
        // rport forces received and gets the source port.
        assert_eq!(
            stamp("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1", "10.0.0.1:6000"),
            "SIP/2.0/UDP 10.0.0.1:5060;rport=6000;branch=z9hG4bK1;received=10.0.0.1"
        );
        // IPv6 sent-by, IPv4-mapped source.
        assert_eq!(
            stamp("SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1", "[::1]:5060"),
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1"
        );
        assert_eq!(
            stamp("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "[::ffff:192.0.2.1]:5060"),
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"
        );
    }

    #[test]
    fn stamps_only_the_first_of_comma_joined_entries() {
        let mut h = headers(
            "SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2",
            "<sip:a@b>",
            "<sip:c@d>",
            "1 INVITE",
        );
        stamp_top_via(&mut h, "10.0.0.1:5060".parse().expect("addr")).expect("stamp");
        let value = h
            .iter()
            .find_map(|h| match h {
                Header::Via(v) => Some(v.value().to_owned()),
                _ => None,
            })
            .expect("via");
        assert_eq!(
            value,
            "SIP/2.0/UDP a.example;branch=z9hG4bK1;received=10.0.0.1, SIP/2.0/UDP b.example;branch=z9hG4bK2"
        );
    }

    /// Found by the `sip_fields` fuzz target: a branch with an unterminated quote took
    /// the added `received=` into itself.
    #[test]
    fn a_via_with_an_unterminated_quote_is_not_stamped() {
        let mut h = headers(
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3\"",
            "<sip:a@b>;tag=1",
            "<sip:c@d>",
            "1 OPTIONS",
        );
        assert_eq!(
            stamp_top_via(&mut h, "192.0.2.1:5060".parse().expect("addr")),
            Err(FieldError::Malformed("Via"))
        );
    }

    #[test]
    fn fuzz_body_keeps_matching_fields_when_stamping() {
        for input in [
            &b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport\r\n"[..],
            b"X\nv: SIP/2.0/UDP h;received=\"a;b\";branch=z9hG4bKq\nf: <sip:a>;tag=1\nt: x\ni: c\ncseq: 1 A",
            b"X\nVia: SIP/2.0/UDP [::1]:5060;rport=;branch=\nFrom: \"<\" <sip:a;tag=2>;tag=3\n",
            b"",
        ] {
            fuzz_one(input);
        }
    }
}
