//! Reading header values as text: lists, name-addr URIs, parameters, option tags.
//!
//! rsip keeps most headers as text; these helpers read the few things the dialog layer
//! needs without failing on forms rsip's typed parsers reject. They never panic.
//!
//! The lexical core under them (quote-, escape- and angle-aware splitting and finding, in
//! `header_text/scan.rs`) is shared by every SIP layer that reads header text.

use std::net::IpAddr;

use rsip::Header;

mod scan;

pub use scan::{
    AddrParts, Angles, Lexer, Region, Split, Unclosed, addr_parts, angle_close, find_outside,
    param, params, quoted_string_end, rfind_outside, split_outside, unquote,
};

/// Most entries read from one list-valued header (Record-Route, Require, ...).
pub const MAX_LIST_ENTRIES: usize = 32;

/// A header's name and value as text (rsip writes every header as `Name: value`).
fn name_value(header: &Header) -> (String, String) {
    let text = header.to_string();
    match text.split_once(':') {
        Some((name, value)) => (name.trim().to_string(), value.trim().to_string()),
        None => (String::new(), text),
    }
}

/// Every value of the headers called `name` (or its compact form), in message order.
pub fn values(headers: &rsip::Headers, name: &str, compact: Option<&str>) -> Vec<String> {
    headers
        .iter()
        .map(name_value)
        .filter(|(n, _)| {
            n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c))
        })
        .map(|(_, v)| v)
        .collect()
}

/// The first value of a header, if any.
pub fn first(headers: &rsip::Headers, name: &str, compact: Option<&str>) -> Option<String> {
    values(headers, name, compact).into_iter().next()
}

/// Split a comma-separated list, ignoring commas inside `<...>` and quoted strings.
/// Entries are trimmed, empty ones dropped; at most [`MAX_LIST_ENTRIES`] are returned.
pub fn split_list(value: &str) -> Vec<&str> {
    split_outside(value, ',', Angles::Enclose)
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .take(MAX_LIST_ENTRIES)
        .collect()
}

/// All entries of list-valued headers (e.g. every Record-Route), in order.
pub fn list_entries(headers: &rsip::Headers, name: &str, compact: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for value in values(headers, name, compact) {
        for entry in split_list(&value) {
            if out.len() >= MAX_LIST_ENTRIES {
                return out;
            }
            out.push(entry.to_string());
        }
    }
    out
}

/// Option tags (Require, Supported, Unsupported), lower-cased.
pub fn option_tags(headers: &rsip::Headers, name: &str, compact: Option<&str>) -> Vec<String> {
    list_entries(headers, name, compact).into_iter().map(|t| t.to_ascii_lowercase()).collect()
}

/// The URI of a name-addr or addr-spec (`"Bob" <sip:bob@h;lr>;tag=1` → `sip:bob@h;lr`).
/// Quoted strings (display name, quoted parameter values) split nothing; an unclosed
/// value gives what can be read.
pub fn uri_part(value: &str) -> &str {
    let value = value.trim();
    if let Ok(parts) = addr_parts(value) {
        return parts.uri.trim();
    }
    // Unclosed: read leniently. A `<` inside a quoted display name does not open the URI.
    if let Some(open) = find_outside(value, '<', Angles::Ordinary) {
        let rest = value.get(open + 1..).unwrap_or("");
        return rest.split('>').next().unwrap_or("").trim();
    }
    value.split(';').next().unwrap_or("").trim()
}

/// The header parameters of a name-addr (after `>`), or of an addr-spec (after the URI).
fn header_params(value: &str) -> &str {
    match addr_parts(value.trim()) {
        Ok(parts) => parts.params,
        Err(_) => "",
    }
}

/// A parameter value from `;name=value;...` text; `Some("")` for a flag parameter. Quoted
/// values come with their quotes.
fn param_in<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    params(text).find_map(|(n, v)| n.eq_ignore_ascii_case(name).then(|| v.unwrap_or_default()))
}

/// A header parameter (e.g. `tag` of From/To, `refresher` of Session-Expires).
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    param_in(header_params(value), name)
}

/// The `tag` parameter of a From or To value.
pub fn tag(value: &str) -> Option<&str> {
    header_param(value, "tag").filter(|t| !t.is_empty())
}

/// The host part of a URI text onwards (`host[:port][;params][?headers]`): after the last
/// `@` that is not inside a quoted parameter value, else after the scheme.
fn after_user(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    match rfind_outside(rest, '@', Angles::Ordinary) {
        Some(at) => &rest[at + 1..],
        None => rest,
    }
}

/// A URI parameter (e.g. `transport`, `lr`) of a URI text.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let hostport_params = after_user(uri);
    let no_headers = match find_outside(hostport_params, '?', Angles::Ordinary) {
        Some(q) => &hostport_params[..q],
        None => hostport_params,
    };
    no_headers.split_once(';').and_then(|(_, p)| param_in(p, name))
}

/// The scheme of a URI text, lower-cased (`sip`, `sips`, `tel`, ...).
pub fn scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let ok = !scheme.is_empty()
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    ok.then(|| scheme.to_ascii_lowercase())
}

/// Host and port of a sip/sips URI text. IPv6 hosts come without brackets.
pub fn host_port(uri: &str) -> Option<(String, Option<u16>)> {
    uri.split_once(':')?;
    let hostport = after_user(uri).split([';', '?']).next().unwrap_or("");
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host.to_string(), port));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (hostport, None),
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// The IP literal host of a URI, with its port (default 5060, or 5061 for sips).
pub fn ip_host(uri: &str) -> Option<std::net::SocketAddr> {
    let (host, port) = host_port(uri)?;
    let ip: IpAddr = host.parse().ok()?;
    Some(std::net::SocketAddr::new(ip, port.unwrap_or(default_port(uri))))
}

/// The port a URI with none means (RFC 3263 §4.2): 5061 for `sips:` and
/// `;transport=tls`, else 5060.
pub fn default_port(uri: &str) -> u16 {
    let tls = scheme(uri).as_deref() == Some("sips")
        || uri_param(uri, "transport").is_some_and(|t| t.eq_ignore_ascii_case("tls"));
    if tls { 5061 } else { 5060 }
}

/// Whether a media type list (an Accept value) admits `wanted` (`type/subtype`).
pub fn accepts(accept_values: &[String], wanted: &str) -> bool {
    let (want_type, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    accept_values.iter().flat_map(|v| split_list(v)).any(|entry| {
        let media = entry.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case(wanted)
            || media == "*/*"
            || media.strip_suffix("/*").is_some_and(|t| t.eq_ignore_ascii_case(want_type))
    })
}

/// The media type of a Content-Type value without parameters, lower-cased.
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Percent-encode everything that may not appear inside `<...>` in a header, so that
/// text from outside can never break out of a URI (RFC 3986 unreserved and the SIP URI
/// punctuation stay as they are).
pub fn escape_uri(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()%:@&=+$,;?/#[]".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_outside_brackets_and_quotes() {
        assert_eq!(
            split_list(r#"<sip:a;lr>, "x,y" <sip:b>,<sip:c,d>"#),
            vec!["<sip:a;lr>", r#""x,y" <sip:b>"#, "<sip:c,d>"]
        );
        assert_eq!(split_list(&",".repeat(100)), Vec::<&str>::new());
        assert_eq!(split_list(&"a,".repeat(100)).len(), MAX_LIST_ENTRIES);
    }

    #[test]
    fn name_addr_parts() {
        let v = r#""Bob; the man" <sip:bob@h.example;transport=tcp>;tag=a1b2;x"#;
        assert_eq!(uri_part(v), "sip:bob@h.example;transport=tcp");
        assert_eq!(tag(v), Some("a1b2"));
        assert_eq!(tag("sip:alice@h;tag=77"), Some("77"));
        assert_eq!(tag("<sip:alice@h;tag=1>"), None);
        assert_eq!(uri_param("sip:bob@h.example;transport=tcp", "transport"), Some("tcp"));
        assert_eq!(uri_param("sip:p;lr", "lr"), Some(""));
    }

    #[test]
    fn quoted_parameter_values_split_nothing() {
        // Linphone's Contact: a quoted +sip.instance holding `<`, `>` and `:`.
        let contact = r#"<sip:u@127.0.0.1:26070;transport=udp>;+sip.instance="<urn:uuid:f5a51a91-0000>";expires=60"#;
        assert_eq!(uri_part(contact), "sip:u@127.0.0.1:26070;transport=udp");
        assert_eq!(header_param(contact, "+sip.instance"), Some(r#""<urn:uuid:f5a51a91-0000>""#));
        assert_eq!(header_param(contact, "expires"), Some("60"));
        // `;` and `,` inside quotes, in header parameters and in URI parameters.
        let to = r#""x" <sip:b@h;p="a;tag=no,>";transport=tcp>;q="1;tag=2,3";tag=real"#;
        assert_eq!(tag(to), Some("real"));
        assert_eq!(uri_part(to), r#"sip:b@h;p="a;tag=no,>";transport=tcp"#);
        assert_eq!(uri_param(uri_part(to), "transport"), Some("tcp"));
        assert_eq!(uri_param(uri_part(to), "p"), Some(r#""a;tag=no,>""#));
        assert_eq!(tag(r#"sip:a@h;x="y;tag=z";tag=w"#), Some("w"));
        assert_eq!(
            split_list(r#"<sip:a;x="1,2">;y="3,4", <sip:b>"#),
            vec![r#"<sip:a;x="1,2">;y="3,4""#, "<sip:b>"]
        );
        assert_eq!(
            host_port(r#"sip:u@h.example:5070;x="a@b:9""#),
            Some(("h.example".into(), Some(5070)))
        );
        assert_eq!(host_port("sip:alice;day=tuesday@h.example"), Some(("h.example".into(), None)));
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(ip_host("sip:u@192.0.2.1:5080;lr"), Some("192.0.2.1:5080".parse().unwrap()));
        assert_eq!(ip_host("sips:[2001:db8::1]"), Some("[2001:db8::1]:5061".parse().unwrap()));
        assert_eq!(ip_host("sip:proxy.example.com"), None);
        assert_eq!(host_port("sip:a@b:notaport"), None);
        assert_eq!(scheme("tel:+4712345678"), Some("tel".into()));
        assert_eq!(scheme("http://x"), Some("http".into()));
        assert_eq!(scheme("nocolon"), None);
    }

    #[test]
    fn accept_matching_and_escaping() {
        assert!(accepts(&["application/sdp".into()], "application/sdp"));
        assert!(accepts(&["text/plain, application/*".into()], "application/sdp"));
        assert!(!accepts(&["text/plain".into()], "application/sdp"));
        assert_eq!(escape_uri("sip:a@b>\r\nX: y"), "sip:a@b%3E%0D%0AX%3A%20y".replace("%3A", ":"));
    }
}
