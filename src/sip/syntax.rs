//! RFC 3261 grammar checks that rsip 0.4 does not make (or makes wrongly): start lines,
//! SIP URIs with IPv6 references, name-addr values, CSeq, Date. Pure functions over
//! already-split text; never panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::header_text::{
    Angles, Lexer, Region, addr_parts, find_outside, quoted_string_end, rfind_outside,
    split_outside,
};
use super::message::MessageError;
use super::normalise::is_token_char;

fn bad(why: impl Into<String>) -> MessageError {
    MessageError::Malformed(why.into())
}

/// A start line, split and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// Check `SIP/2.0`; other well-formed versions are "not supported" (505).
fn check_version(v: &str) -> Result<(), MessageError> {
    let Some((proto, num)) = v.split_once('/') else {
        return Err(bad("bad SIP version"));
    };
    if !proto.eq_ignore_ascii_case("SIP") {
        return Err(bad("bad SIP version"));
    }
    if num == "2.0" {
        return Ok(());
    }
    let well_formed = num.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if well_formed { Err(MessageError::VersionNotSupported) } else { Err(bad("bad SIP version")) }
}

/// Parse the start line. Single spaces only (RFC 3261 §7.1: SP, not LWS).
pub fn start_line(line: &str) -> Result<StartLine, MessageError> {
    if line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        let (version, rest) =
            line.split_once(' ').ok_or_else(|| bad("status line without code"))?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("bad status code"));
        }
        let code: u16 = code.parse().map_err(|_| bad("bad status code"))?;
        if !(100..=699).contains(&code) {
            return Err(bad("status code out of range"));
        }
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("control character in reason phrase"));
        }
        return Ok(StartLine::Response { code, reason: reason.to_owned() });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(bad("request line must be METHOD SP URI SP VERSION"));
    };
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(bad("bad method"));
    }
    check_version(version)?;
    request_uri(uri)?;
    Ok(StartLine::Request { method: (*method).to_owned(), uri: (*uri).to_owned() })
}

/// The scheme of a URI (`scheme ":" ...`), if it has a well-formed one.
pub fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.'))
    .then_some(scheme)
}

pub fn is_sip_scheme(s: &str) -> bool {
    s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips")
}

/// Whitespace, controls, `<`, `>` and `"` may not appear in a URI, except that a parameter
/// value may be a quoted string (RFC 3261 §25.1 gen-value, as RFC 3840 feature tags and
/// RFC 5626 `+sip.instance` are written); inside one, anything but controls goes.
fn check_uri_chars(uri: &str) -> Result<(), MessageError> {
    if uri.is_empty() {
        return Err(bad("empty URI"));
    }
    let illegal = || bad("illegal character in URI");
    let mut lexer = Lexer::new(Angles::Ordinary);
    let mut in_params = false;
    let mut previous = None;
    let mut just_closed = false;
    for c in uri.chars() {
        let was_quoted = lexer.unclosed().is_some();
        let region = lexer.feed(c);
        if c.is_control() && c != '\t' {
            return Err(illegal());
        }
        if just_closed && !matches!(c, ';' | '?') {
            return Err(bad("junk after a quoted URI parameter value"));
        }
        just_closed = false;
        match region {
            Region::Plain if c.is_whitespace() || matches!(c, '<' | '>') => return Err(illegal()),
            Region::Plain if c == ';' => in_params = true,
            // A quoted string opens only as a whole parameter value.
            Region::Quoted if c == '"' && !was_quoted && !(in_params && previous == Some('=')) => {
                return Err(illegal());
            }
            Region::Quoted if c == '"' && !was_quoted => {}
            Region::Quoted if c == '"' && lexer.unclosed().is_none() => just_closed = true,
            _ => {}
        }
        previous = Some(c);
    }
    if lexer.unclosed().is_some() {
        return Err(bad("unterminated quoted string in URI"));
    }
    Ok(())
}

/// Request-URI: any absolute URI; SIP URIs are checked fully and may not carry headers
/// (RFC 3261 §19.1.1 table).
pub fn request_uri(uri: &str) -> Result<(), MessageError> {
    check_uri_chars(uri)?;
    let s = scheme(uri).ok_or_else(|| bad("Request-URI without scheme"))?;
    if is_sip_scheme(s) {
        sip_uri(uri, false)?;
    }
    Ok(())
}

/// The parts of a SIP URI that the layers above read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUriParts<'a> {
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// Check a `sip:`/`sips:` URI and return its parts.
pub fn sip_uri(uri: &str, allow_headers: bool) -> Result<SipUriParts<'_>, MessageError> {
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| bad("URI without scheme"))?;
    // The user part may itself contain '?', ';' and '@' only escaped, except that
    // user-unreserved allows '?' and ';': take the last '@'.
    // An `@` inside a quoted parameter value is not the user part's end.
    let (user, after_user) = match rfind_outside(rest, '@', Angles::Ordinary) {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    if user.is_some_and(|u| u.is_empty() || u.contains('"')) {
        return Err(bad("bad user part"));
    }
    let (hostport_params, headers) = match find_outside(after_user, '?', Angles::Ordinary) {
        Some(i) => (&after_user[..i], Some(&after_user[i + 1..])),
        None => (after_user, None),
    };
    if headers.is_some() && !allow_headers {
        return Err(bad("headers not allowed in this URI"));
    }
    let (hostport, params) = match hostport_params.find(';') {
        Some(i) => (&hostport_params[..i], &hostport_params[i..]),
        None => (hostport_params, ""),
    };
    let (host, port) = host_port(hostport)?;
    for p in split_outside(params, ';', Angles::Ordinary).skip(1) {
        if p.is_empty() {
            return Err(bad("empty URI parameter"));
        }
        if let Some((_, value)) = p.split_once('=')
            && value.starts_with('"')
            && quoted_string_end(value) != Some(value.len())
        {
            return Err(bad("bad quoted URI parameter value"));
        }
    }
    Ok(SipUriParts { scheme, user, host, port, params })
}

/// `host [":" port]` with host a hostname, an IPv4 address or an IPv6 reference.
pub fn host_port(s: &str) -> Result<(Host, Option<u16>), MessageError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) =
            inner.split_once(']').ok_or_else(|| bad("unterminated IPv6 reference"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after IPv6 reference"))?),
        };
        (Host::V6(ipv6(addr)?), port)
    } else {
        let (h, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        (hostname_or_v4(h)?, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad("bad port"));
            }
            Some(p.parse::<u16>().map_err(|_| bad("port out of range"))?)
        }
    };
    Ok((host, port))
}

/// An IPv6 address. RFC 5118 §4.10 asks to tolerate the three-colon form that RFC 3261's
/// ABNF admitted (`2001:db8:::192.0.2.1`); it is read as its two-colon equivalent.
pub fn ipv6(s: &str) -> Result<Ipv6Addr, MessageError> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok(a);
    }
    if s.matches(":::").count() == 1
        && !s.contains("::::")
        && let Ok(a) = s.replacen(":::", "::", 1).parse::<Ipv6Addr>()
    {
        return Ok(a);
    }
    Err(bad("bad IPv6 address"))
}

fn hostname_or_v4(h: &str) -> Result<Host, MessageError> {
    if h.is_empty() {
        return Err(bad("empty host"));
    }
    if let Ok(v4) = h.parse::<Ipv4Addr>() {
        return Ok(Host::V4(v4));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let trimmed = h.strip_suffix('.').unwrap_or(h);
    if trimmed.split('.').all(label_ok) {
        Ok(Host::Name(h.to_ascii_lowercase()))
    } else {
        Err(bad("bad host name"))
    }
}

/// Check a generic parameter list `*(";" name ["=" value])` (already tidied, so no LWS
/// around separators). Values may be tokens, quoted strings or IPv6 references.
fn header_params(params: &str) -> Result<(), MessageError> {
    if params.is_empty() {
        return Ok(());
    }
    let rest = params.strip_prefix(';').ok_or_else(|| bad("junk after address"))?;
    let mut parts = split_outside(rest, ';', Angles::Ordinary);
    for p in parts.by_ref() {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(bad("bad parameter name"));
        }
        if let Some(v) = value {
            let ok = if v.starts_with('"') {
                quoted_string_end(v) == Some(v.len())
            } else {
                !v.is_empty() && !v.contains([' ', '\t', '"', '<', '>'])
            };
            if !ok {
                return Err(bad("bad parameter value"));
            }
        }
    }
    match parts.unclosed() {
        Some(open) => Err(bad(open.to_string())),
        None => Ok(()),
    }
}

/// Check one name-addr / addr-spec value (From, To, one Contact) and return its URI.
/// `allow_star` admits the `Contact: *` form.
pub fn address(value: &str, allow_star: bool) -> Result<&str, MessageError> {
    if allow_star && value == "*" {
        return Ok(value);
    }
    let parts = addr_parts(value).map_err(|open| match open {
        super::header_text::Unclosed::Angle => bad("unterminated <URI>"),
        super::header_text::Unclosed::Quote => bad("unbalanced quotes"),
    })?;
    let (display, uri, params) = (parts.display, parts.uri, parts.params);
    if display.is_none() && uri.contains(['?', ',', '"']) {
        return Err(bad("addr-spec with '?', ',' or '\"' must be in <>"));
    }
    if let Some(d) = display {
        display_name(d.trim_end_matches([' ', '\t']))?;
    }
    check_uri_chars(uri)?;
    let s = scheme(uri).ok_or_else(|| bad("URI without scheme"))?;
    if is_sip_scheme(s) {
        sip_uri(uri, display.is_some())?;
    }
    header_params(params.trim_start_matches([' ', '\t']))?;
    Ok(uri)
}

/// display-name = *(token LWS) / quoted-string
fn display_name(d: &str) -> Result<(), MessageError> {
    if d.is_empty() {
        return Ok(());
    }
    if d.starts_with('"') {
        // One quoted string, closed at the end.
        return match quoted_string_end(d) {
            Some(end) if end == d.len() => Ok(()),
            Some(_) => Err(bad("junk after quoted display name")),
            None => Err(bad("unterminated display name")),
        };
    }
    if d.split([' ', '\t']).filter(|t| !t.is_empty()).all(|t| t.bytes().all(is_token_char)) {
        Ok(())
    } else {
        Err(bad("display name with separators must be quoted"))
    }
}

/// `CSeq: number method`; number < 2^31 (RFC 3261 §8.1.1.5). Returns (number, method).
pub fn cseq(value: &str) -> Result<(u32, &str), MessageError> {
    let mut it = value.split([' ', '\t']).filter(|s| !s.is_empty());
    let (Some(num), Some(method), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad("CSeq must be 'number method'"));
    };
    if num.len() > 10 || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("bad CSeq number"));
    }
    let n: u64 = num.parse().map_err(|_| bad("bad CSeq number"))?;
    if n >= 1 << 31 {
        return Err(bad("CSeq number out of range"));
    }
    if !method.bytes().all(is_token_char) {
        return Err(bad("bad CSeq method"));
    }
    Ok((n as u32, method))
}

/// A decimal value of at most `max`.
pub fn bounded_number(value: &str, max: u64) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().filter(|n| *n <= max)
}

/// `Date` must be an RFC 1123 date in GMT (RFC 3261 §20.17).
pub fn date(value: &str) -> Result<(), MessageError> {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let parts: Vec<&str> = value.split(' ').collect();
    let ok = match parts.as_slice() {
        [day, dd, mon, yyyy, time, zone] => {
            DAYS.contains(day)
                && dd.len() == 2
                && dd.bytes().all(|c| c.is_ascii_digit())
                && MONTHS.contains(mon)
                && yyyy.len() == 4
                && yyyy.bytes().all(|c| c.is_ascii_digit())
                && time.len() == 8
                && time
                    .bytes()
                    .enumerate()
                    .all(|(i, c)| if i == 2 || i == 5 { c == b':' } else { c.is_ascii_digit() })
                && *zone == "GMT"
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(bad("Date must be an RFC 1123 date in GMT")) }
}

/// Check a canonical Via (`SIP/2.0/T sent-by;params`, as `canonical_via` writes it).
pub fn via(value: &str) -> Result<(Host, Option<u16>), MessageError> {
    let (protocol, rest) = value.split_once(' ').ok_or_else(|| bad("Via: no sent-by"))?;
    let mut p = protocol.split('/');
    let (Some(name), Some(ver), Some(_transport)) = (p.next(), p.next(), p.next()) else {
        return Err(bad("Via: bad sent-protocol"));
    };
    if !name.eq_ignore_ascii_case("SIP") {
        return Err(bad("Via: protocol is not SIP"));
    }
    if ver != "2.0" {
        return Err(MessageError::VersionNotSupported);
    }
    let (sent_by, params) = match rest.find(';') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let hp = host_port(sent_by)?;
    header_params(params)?;
    Ok(hp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert!(matches!(
            start_line("INVITE sip:a@b.example SIP/2.0"),
            Ok(StartLine::Request { .. })
        ));
        assert!(matches!(
            start_line("OPTIONS sip:a@b SIP/7.0"),
            Err(MessageError::VersionNotSupported)
        ));
        assert!(start_line("INVITE  sip:a@b SIP/2.0").is_err());
        assert!(start_line("OPTIONS sip:a@b SIP/2.0  ").is_err());
        assert!(start_line("SIP/2.0 4294967301 x").is_err());
        assert!(start_line("SIP/2.0 099 x").is_err());
        assert_eq!(
            start_line("SIP/2.0 100 "),
            Ok(StartLine::Response { code: 100, reason: String::new() })
        );
    }

    #[test]
    fn ipv6_references() {
        let p = sip_uri("sip:[2001:db8::10]:5070", false).unwrap();
        assert_eq!(p.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(p.port, Some(5070));
        assert!(sip_uri("sip:2001:db8::10", false).is_err());
        assert!(ipv6("2001:db8:::192.0.2.1").is_ok());
        assert!(ipv6("2001:db8::::1").is_err());
    }

    #[test]
    fn addresses() {
        assert!(address(r#""A, B" <sip:a@b>;tag=1"#, false).is_ok());
        assert!(address("A, B <sip:a@b>;tag=1", false).is_err());
        assert!(address("< sip:a@b >", false).is_err());
        assert!(address("sip:a@b?Route=x", false).is_err());
        assert_eq!(address("tel:+4712345678;tag=9", false).unwrap(), "tel:+4712345678");
        assert!(address("*", true).is_ok());
    }

    #[test]
    fn quoted_parameter_values_in_every_address_header() {
        // Linphone's Contact (RFC 5626 +sip.instance), feature tags (RFC 3840).
        let contact =
            r#"<sip:u@127.0.0.1:26070;transport=udp>;+sip.instance="<urn:uuid:f5a51a91-1>""#;
        assert_eq!(address(contact, true).unwrap(), "sip:u@127.0.0.1:26070;transport=udp");
        let tags = r#"<sip:u@h>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";video;audio;+sip.instance="<urn:uuid:1>";reg-id=1"#;
        assert!(address(tags, true).is_ok());
        // `;`, `,`, `<`, `>` and `:` inside quotes, in From/To/Route-shaped values.
        for value in [
            r#""Bob" <sip:b@h>;tag=1;x="a;b,c<d>e:f""#,
            r#"<sip:b@h;x="a;b,c<d>e:f">;tag=1"#,
            r#"<sip:b@h;lr;x="a@b?c">"#,
            r#"sip:b@h;tag=1;x="a;b,c<d>e:f""#,
        ] {
            assert!(address(value, false).is_ok(), "{value}");
        }
        for bad_value in [
            r#"<sip:b@h>;x="open"#,
            r#"<sip:b@h;x=">"#,
            r#"<sip:"b"@h>"#,
            r#"<sip:b@h;x=a"b">"#,
            r#"<sip:b@h>;x=a"b""#,
        ] {
            assert!(address(bad_value, false).is_err(), "{bad_value}");
        }
        let p = sip_uri(r#"sip:u@h.example:5070;x="a@b;c";transport=tcp"#, false).unwrap();
        assert_eq!(
            (p.user, p.port, p.params),
            (Some("u"), Some(5070), r#";x="a@b;c";transport=tcp"#)
        );
        assert!(request_uri(r#"sip:u@h;x="a;b""#).is_ok());
        assert!(request_uri(r#"sip:u@h;x="a b""#).is_ok());
        assert!(via(r#"SIP/2.0/UDP h:5060;branch=z9hG4bK1;x="a;b,c""#).is_ok());
        assert!(via(r#"SIP/2.0/UDP h:5060;branch=z9hG4bK1;x="open"#).is_err());
    }

    #[test]
    fn cseq_and_date() {
        assert_eq!(cseq("0009 INVITE").unwrap(), (9, "INVITE"));
        assert!(cseq("36893488147419103232 REGISTER").is_err());
        assert!(cseq("2147483648 INVITE").is_err());
        assert!(date("Sat, 15 Oct 2005 04:44:56 GMT").is_ok());
        assert!(date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }
}
