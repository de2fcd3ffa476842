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
    Angles, Lexer, Region, Split, Unclosed, find_outside, param, quoted_string_end, split_outside,
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
pub fn uri_part(value: &str) -> &str {
    let value = value.trim();
    // A `<` inside a quoted display name ("a<b" <sip:x>) does not open the URI.
    if let Some(open) = find_outside(value, '<', Angles::Ordinary) {
        let rest = value.get(open + 1..).unwrap_or("");
        return rest.split('>').next().unwrap_or("").trim();
    }
    // addr-spec: header parameters start at the first ';'.
    value.split(';').next().unwrap_or("").trim()
}

/// The header parameters of a name-addr (after `>`), or of an addr-spec (after the URI).
fn header_params(value: &str) -> &str {
    match value.rfind('>') {
        Some(close) => value.get(close + 1..).unwrap_or(""),
        None => value.split_once(';').map_or("", |(_, p)| p),
    }
}

/// A parameter value from `;name=value;...` text; `Some("")` for a flag parameter.
fn param_in<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(param)
        .find_map(|(n, v)| n.eq_ignore_ascii_case(name).then(|| v.unwrap_or_default()))
}

/// A header parameter (e.g. `tag` of From/To, `refresher` of Session-Expires).
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    param_in(header_params(value), name)
}

/// The `tag` parameter of a From or To value.
pub fn tag(value: &str) -> Option<&str> {
    header_param(value, "tag").filter(|t| !t.is_empty())
}

/// A URI parameter (e.g. `transport`, `lr`) of a URI text.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let no_headers = uri.split('?').next().unwrap_or(uri);
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
    let (_, rest) = uri.split_once(':')?;
    let rest = rest.split([';', '?']).next().unwrap_or("");
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
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
    let default = if scheme(uri).as_deref() == Some("sips") { 5061 } else { 5060 };
    Some(std::net::SocketAddr::new(ip, port.unwrap_or(default)))
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
