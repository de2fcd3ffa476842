//! The normalising pass in front of rsip.
//!
//! rsip 0.4 reads only well-formed, canonical messages. This pass splits raw bytes into a
//! start line, header fields and a body, and rewrites the header section into the one
//! shape rsip reads: CRLF line ends, folded lines joined, compact names expanded, one
//! Via/Contact value per header line, and no linear whitespace around `/ ; = :`
//! separators outside quoted strings and `<...>`. It never panics and bounds every size and
//! count by [`Limits`].

use std::borrow::Cow;

use super::header_text::{Angles, Lexer, Region, quoted_string_end, split_outside};
use super::message::{Limits, MessageError};

/// One header field after unfolding: canonical name and trimmed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub name: String,
    pub value: String,
}

/// A message split into its parts, before any interpretation of the start line.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub start_line: String,
    pub headers: Vec<RawHeader>,
    /// Every byte after the empty line that ends the header section (may be empty).
    pub body: Vec<u8>,
}

impl RawMessage {
    /// All values of one header (canonical name, compared case-insensitively).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn first<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }
}

/// Compact header forms (RFC 3261 §7.3.3 and the extensions that define one).
const COMPACT: &[(char, &str)] = &[
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('n', "Identity-Info"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Header names we write in one canonical spelling so that callers can compare exactly.
const KNOWN_NAMES: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Remote-Party-ID",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// Headers whose comma-joined values are split into one header line each. rsip's typed
/// Via and Contact read one value only. (Route and Record-Route are lists in rsip.)
const SPLIT_LISTS: &[&str] = &["Via", "Contact"];

/// Headers that carry name-addr / addr-spec values with parameters.
pub const ADDRESS_HEADERS: &[&str] = &[
    "From",
    "To",
    "Contact",
    "Route",
    "Record-Route",
    "Reply-To",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Refer-To",
    "Referred-By",
];

/// The canonical name of a header: compact forms expanded, known names in one spelling.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let lower = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(k, _)| *k == lower) {
            return Cow::Borrowed(full);
        }
    }
    match KNOWN_NAMES.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Borrowed(name),
    }
}

/// RFC 3261 `token` characters.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Split raw bytes into start line, unfolded headers and body.
///
/// Accepts CRLF or bare-LF line ends, skips empty lines before the start line
/// (RFC 3261 §7.5), joins folded lines and expands compact names. A header section that
/// runs to the end of the bytes without an empty line is accepted with an empty body
/// (datagrams are whole); stream framing demands the empty line before it gets here.
pub fn split_message(bytes: &[u8], limits: &Limits) -> Result<RawMessage, MessageError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(MessageError::TooLarge);
    }
    let mut pos = 0;
    // Leading CRLFs (keep-alives, stray line ends) are ignored.
    while pos < bytes.len() && (bytes[pos] == b'\r' || bytes[pos] == b'\n') {
        pos += 1;
    }
    if pos >= bytes.len() {
        return Err(MessageError::Malformed("empty message".into()));
    }

    let mut start_line: Option<String> = None;
    let mut logical: Vec<String> = Vec::new();
    let mut body_start = bytes.len();
    loop {
        if pos >= bytes.len() {
            break;
        }
        let (line, next) = next_line(bytes, pos);
        pos = next;
        if line.len() > limits.max_line_len {
            return Err(MessageError::LineTooLong);
        }
        if line.is_empty() {
            body_start = pos;
            break;
        }
        // A bare CR inside a line could smuggle a line break past us. (NUL and other
        // controls are legal in quoted-pairs, RFC 3261 §25.1.)
        if line.contains(&b'\r') {
            return Err(MessageError::Malformed("bare CR in header section".into()));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| MessageError::Malformed("header section is not UTF-8".into()))?;
        if start_line.is_none() {
            start_line = Some(text.to_owned());
            continue;
        }
        if line.first().copied().is_some_and(is_wsp) {
            // Continuation of the previous header (LWS folding).
            let Some(prev) = logical.last_mut() else {
                return Err(MessageError::Malformed("continuation line before any header".into()));
            };
            prev.push(' ');
            prev.push_str(text.trim_matches(|c| c == ' ' || c == '\t'));
            if prev.len() > limits.max_line_len {
                return Err(MessageError::LineTooLong);
            }
        } else {
            if logical.len() >= limits.max_headers {
                return Err(MessageError::TooManyHeaders);
            }
            logical.push(text.to_owned());
        }
    }
    let start_line = start_line.ok_or_else(|| MessageError::Malformed("no start line".into()))?;

    // An ACK's Contact means nothing to us (RFC 3261 §17.2.3 matches ACKs without it):
    // one we cannot read is left out rather than refusing the ACK.
    let ack = start_line.starts_with("ACK ");
    let mut headers = Vec::with_capacity(logical.len());
    for line in &logical {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            MessageError::Malformed(format!("header line without colon: {line:.40}"))
        })?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(MessageError::Malformed(format!("bad header name: {name:.40}")));
        }
        let name = canonical_name(name).into_owned();
        let value = value.trim_matches([' ', '\t']);
        if ack && name == "Contact" {
            let parts = split_list(value).unwrap_or_default();
            for part in parts {
                match push_header(&mut headers, limits, &name, part) {
                    Err(MessageError::Malformed(why)) => {
                        tracing::debug!(%why, "ignoring an unreadable Contact in an ACK");
                    }
                    other => other?,
                }
            }
        } else if SPLIT_LISTS.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            for part in split_list(value)? {
                push_header(&mut headers, limits, &name, part)?;
            }
        } else {
            push_header(&mut headers, limits, &name, value.to_owned())?;
        }
    }
    let body = bytes.get(body_start..).unwrap_or_default().to_vec();
    Ok(RawMessage { start_line, headers, body })
}

fn push_header(
    headers: &mut Vec<RawHeader>,
    limits: &Limits,
    name: &str,
    value: String,
) -> Result<(), MessageError> {
    if headers.len() >= limits.max_headers {
        return Err(MessageError::TooManyHeaders);
    }
    let value = if name.eq_ignore_ascii_case("Via") {
        canonical_via(&value)?
    } else if ADDRESS_HEADERS.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        tidy_params(&value)?
    } else {
        value
    };
    headers.push(RawHeader { name: name.to_owned(), value });
    Ok(())
}

/// The line starting at `pos` (without its CRLF or LF) and the position after it.
fn next_line(bytes: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = bytes.get(pos..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let line = &rest[..lf];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line, pos + lf + 1)
        }
        None => (rest, bytes.len()),
    }
}

/// Split a comma-joined header value, honouring quoted strings and `<...>`.
/// Empty elements are an error (RFC 3261 list syntax has none).
pub fn split_list(value: &str) -> Result<Vec<String>, MessageError> {
    let mut split = split_outside(value, ',', Angles::Enclose);
    let parts: Vec<&str> = split.by_ref().collect();
    if let Some(open) = split.unclosed() {
        return Err(MessageError::Malformed(open.to_string()));
    }
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim_matches([' ', '\t']);
            if p.is_empty() {
                Err(MessageError::Malformed("empty element in header list".into()))
            } else {
                Ok(p.to_owned())
            }
        })
        .collect()
}

/// Remove linear whitespace around `;` and `=` outside quoted strings and `<...>`, and
/// check quotes and brackets balance. Display names keep their inner spaces, and quoted
/// strings inside `<...>` (quoted URI parameter values) are honoured: a `>` inside one
/// does not close the brackets.
pub fn tidy_params(value: &str) -> Result<String, MessageError> {
    let mut out = String::with_capacity(value.len());
    let mut lexer = Lexer::new(Angles::Enclose);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if lexer.feed(c) != Region::Plain || !matches!(c, ';' | '=') {
            out.push(c);
            continue;
        }
        while out.ends_with([' ', '\t']) {
            out.pop();
        }
        out.push(c);
        while chars.peek().is_some_and(|n| *n == ' ' || *n == '\t') {
            chars.next();
        }
    }
    if let Some(open) = lexer.unclosed() {
        return Err(MessageError::Malformed(open.to_string()));
    }
    Ok(out.trim_matches([' ', '\t']).to_owned())
}

/// Rewrite one Via value as `SIP/2.0/TRANSPORT host[:port];param[=value]...` with no
/// linear whitespace (RFC 3261 allows LWS around `/`, `;`, `=`, `:`).
pub fn canonical_via(value: &str) -> Result<String, MessageError> {
    let bad = |why: &str| MessageError::Malformed(format!("Via: {why}"));
    // sent-protocol: name SLASH version SLASH transport, with SWS around the slashes.
    let mut rest = value;
    let mut protocol = Vec::with_capacity(3);
    for i in 0..3 {
        rest = rest.trim_start_matches([' ', '\t']);
        let end =
            rest.find(|c: char| !(c.is_ascii() && is_token_char(c as u8))).unwrap_or(rest.len());
        let (tok, after) = rest.split_at(end);
        if tok.is_empty() {
            return Err(bad("bad sent-protocol"));
        }
        protocol.push(tok);
        rest = after.trim_start_matches([' ', '\t']);
        if i < 2 {
            rest = rest.strip_prefix('/').ok_or_else(|| bad("bad sent-protocol"))?;
        }
    }
    // sent-by, then params.
    rest = rest.trim_start_matches([' ', '\t']);
    let (sent_by, params) = match rest.find([';', '"']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // sent-by = host [ COLON port ], where COLON may carry whitespace.
    let sent_by = match sent_by.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(':') && !host.contains('[') || host.ends_with(']') =>
        {
            format!("{}:{}", host.trim_matches([' ', '\t']), port.trim_matches([' ', '\t']))
        }
        _ => sent_by.trim_matches([' ', '\t']).to_owned(),
    };
    if sent_by.is_empty() || sent_by.contains([' ', '\t']) {
        return Err(bad("bad sent-by"));
    }
    let mut out = format!("{}/{}/{} {}", protocol[0], protocol[1], protocol[2], sent_by);
    if !params.is_empty() {
        // A quoted parameter value (gen-value) may hold `;`, `,` and spaces.
        let mut split = split_outside(params, ';', Angles::Ordinary);
        if split.next().is_some_and(|junk| !junk.is_empty()) {
            return Err(bad("junk after sent-by"));
        }
        for param in split.by_ref() {
            let param = param.trim_matches([' ', '\t']);
            if param.is_empty() {
                return Err(bad("empty parameter"));
            }
            let (name, val) = match param.split_once('=') {
                Some((n, v)) => (n.trim_matches([' ', '\t']), Some(v.trim_matches([' ', '\t']))),
                None => (param, None),
            };
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(bad("bad parameter name"));
            }
            out.push(';');
            out.push_str(name);
            if let Some(v) = val {
                let quoted = v.starts_with('"') && quoted_string_end(v) == Some(v.len());
                if v.is_empty() || !quoted && v.contains([' ', '\t', '"']) {
                    return Err(bad("bad parameter value"));
                }
                out.push('=');
                out.push_str(v);
            }
        }
        if let Some(open) = split.unclosed() {
            return Err(bad(&open.to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_are_canonical() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert_eq!(canonical_name("MaX-fOrWaRdS"), "Max-Forwards");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
    }

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let parts = split_list(r#""Doe, J" <sip:a@b;x=1,2>, <sip:c@d>"#).unwrap();
        assert_eq!(parts, vec![r#""Doe, J" <sip:a@b;x=1,2>"#, "<sip:c@d>"]);
        assert!(split_list("a,,b").is_err());
        assert!(split_list("\"open").is_err());
    }

    #[test]
    fn via_whitespace_is_removed() {
        let v = canonical_via("SIP  /   2.0 /UDP    192.0.2.2 ; branch = z9hG4bK1 ;rport").unwrap();
        assert_eq!(v, "SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1;rport");
        assert!(canonical_via("SIP/2.0/UDP 192.0.2.15;;").is_err());
    }

    #[test]
    fn params_are_tidied_outside_quotes() {
        let v = tidy_params(r#""A ; B" <sip:x@y> ; tag = 12"#).unwrap();
        assert_eq!(v, r#""A ; B" <sip:x@y>;tag=12"#);
        // Quoted values, in the URI and after it, are left alone and split nothing.
        let v = tidy_params(r#"<sip:x@y;p="a >; b"> ; +sip.instance = "<urn:uuid:1 ; 2>" ; q=1"#)
            .unwrap();
        assert_eq!(v, r#"<sip:x@y;p="a >; b">;+sip.instance="<urn:uuid:1 ; 2>";q=1"#);
        assert!(tidy_params(r#"<sip:x@y;p=">"#).is_err());
    }

    #[test]
    fn quoted_values_survive_list_splitting_and_via() {
        let raw = "INVITE sip:a@b SIP/2.0\r\n\
                   Via: SIP/2.0/UDP h:5060 ; branch=z9hG4bK1;x=\"a; b, c\", SIP/2.0/UDP g;branch=z9hG4bK2\r\n\
                   m: <sip:u@h;p=\"1,2\">;+sip.instance=\"<urn:uuid:a,b>\", <sip:v@h>;y=\"3;4\"\r\n\r\n";
        let m = split_message(raw.as_bytes(), &Limits::default()).unwrap();
        let vias: Vec<&str> = m.values("Via").collect();
        assert_eq!(
            vias,
            vec![
                r#"SIP/2.0/UDP h:5060;branch=z9hG4bK1;x="a; b, c""#,
                "SIP/2.0/UDP g;branch=z9hG4bK2"
            ]
        );
        let contacts: Vec<&str> = m.values("Contact").collect();
        assert_eq!(
            contacts,
            vec![r#"<sip:u@h;p="1,2">;+sip.instance="<urn:uuid:a,b>""#, r#"<sip:v@h>;y="3;4""#]
        );
        assert!(canonical_via(r#"SIP/2.0/UDP h;x="open"#).is_err());
        assert!(canonical_via(r#"SIP/2.0/UDP h;x=a"b""#).is_err());
    }

    #[test]
    fn folded_lf_only_message_splits() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\nv: SIP/2.0/UDP h\n ;branch=z9hG4bK1\nl: 0\n\n";
        let m = split_message(raw, &Limits::default()).unwrap();
        assert_eq!(m.start_line, "OPTIONS sip:a@b SIP/2.0");
        assert_eq!(m.first("Via"), Some("SIP/2.0/UDP h;branch=z9hG4bK1"));
        assert_eq!(m.first("Content-Length"), Some("0"));
    }
}
