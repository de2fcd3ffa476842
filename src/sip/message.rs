//! SIP message framing and parsing (sans-IO).
//!
//! Bytes from the wire go through three steps: [`normalise`](super::normalise) splits
//! them and rewrites the header section into the canonical shape rsip 0.4 reads;
//! [`syntax`](super::syntax) checks what RFC 3261 requires and rsip does not check; then
//! the rsip message is built and its mandatory typed headers are read once, so the layers
//! above can use rsip's typed accessors. Nothing here panics on any input, and every size
//! and count is bounded by [`Limits`].
//!
//! Where rsip 0.4 cannot represent a valid message, we answer instead of guessing:
//! - extension methods (rsip's `Method` is a closed enum): [`MessageError::MethodNotImplemented`],
//!   answered 501 by [`error_response`];
//! - Request-URIs with a scheme other than sip/sips (`tel:`, unknown schemes) and SIP URIs
//!   with IPv6 references or quoted parameter values are built field by field (rsip's own
//!   URI parser splits hosts at the first colon and knows only `sip:`, `sips:` and
//!   `scheme://`);
//! - quoted-string parameter values (RFC 3261 §25.1 gen-value: Linphone's
//!   `;+sip.instance="<urn:uuid:...>"`, RFC 3840 feature tags) and quoted display names
//!   holding `<`: rsip's typed parsers read tokens only. Our own grammar check reads them;
//!   rsip's typed check then reads a stand-in where every quoted string is replaced by a
//!   token ([`rsip_stand_in`]). The message keeps the original text, which the layers above
//!   read with [`header_text`](super::header_text), never with rsip's `typed()`.

use std::fmt;
use std::net::IpAddr;

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::prelude::HeadersExt;

use super::header_text::{self, Angles, Lexer, Region};
use super::normalise::{self, RawHeader, RawMessage};
use super::syntax::{self, StartLine};

pub use super::framer::{Framed, StreamFramer};

/// The transport a message arrived on or leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TCP with TLS (RFC 3261 §26.2): Via `SIP/2.0/TLS`, URIs with `;transport=tls`.
    Tls,
}

impl Transport {
    /// Reliable transports need no retransmission timers (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// Bounds on what one message may cost us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole message, start line to end of body. Default 65 535: the largest UDP payload,
    /// and far above any INVITE with SDP (a few kB).
    pub max_message_bytes: usize,
    /// Header fields after splitting comma-joined Via/Contact. Default 256: real calls
    /// through several proxies carry fewer than 60.
    pub max_headers: usize,
    /// One line, and one header after unfolding. Default 8 192, as common HTTP servers use.
    pub max_line_len: usize,
    /// Via header fields (after splitting). Default 70: each hop adds one and
    /// Max-Forwards starts at 70 (RFC 3261 §8.1.1.6), so a longer path is a loop or a forgery.
    pub max_vias: usize,
    /// Body bytes (answered 413, RFC 3261 §21.4.11). Default 16 384: an SDP offer with
    /// every codec and ICE candidates is a few kB, and no request we take carries more.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 65_535,
            max_headers: 256,
            max_line_len: 8_192,
            max_vias: 70,
            max_body_bytes: 16_384,
        }
    }
}

/// Why a message was refused. [`MessageError::status`] gives the SIP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message larger than the configured limit")]
    TooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("line longer than the configured limit")]
    LineTooLong,
    #[error("too many Via header fields")]
    TooManyVias,
    #[error("body larger than the limit")]
    BodyTooLarge,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
    #[error("bad Content-Length")]
    BadContentLength,
    #[error("SIP version not supported")]
    VersionNotSupported,
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("method {0} not implemented")]
    MethodNotImplemented(String),
}

impl MessageError {
    /// The status code a request with this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            MessageError::TooLarge => 513,
            MessageError::BodyTooLarge => 413,
            MessageError::VersionNotSupported => 505,
            MessageError::MethodNotImplemented(_) => 501,
            _ => 400,
        }
    }
}

/// Headers that must appear exactly once in every request and response.
const SINGLE_MANDATORY: [&str; 4] = ["From", "To", "Call-ID", "CSeq"];
/// Headers that may appear at most once.
const AT_MOST_ONCE: [&str; 5] =
    ["Content-Length", "Max-Forwards", "Content-Type", "Date", "Expires"];

/// Normalise, then parse with rsip, then validate what RFC 3261 requires of a message.
///
/// On `Ok` the message has one From, To, Call-ID and CSeq and at least one Via; the CSeq
/// number is below 2^31 and (for requests) its method equals the request method; the
/// version is SIP/2.0; the body is exactly Content-Length bytes long (a datagram with more
/// bytes is truncated, one with fewer is an error); and rsip's typed forms of the top Via,
/// From, To, CSeq and first Contact parse, except where rsip 0.4 cannot read a valid value
/// at all (IPv6 references, non-SIP URI schemes such as `tel:`): then our own grammar check
/// has passed and `typed()` on that header returns `Err`, never panics.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<rsip::SipMessage, MessageError> {
    let mut raw = normalise::split_message(bytes, limits)?;
    let start = syntax::start_line(&raw.start_line)?;
    if matches!(&start, StartLine::Request { method, .. } if method == "ACK") {
        drop_unreadable_contacts(&mut raw);
    }
    check_headers(&mut raw, &start, limits)?;
    let body = body_by_content_length(&raw)?;
    if body.len() > limits.max_body_bytes {
        return Err(MessageError::BodyTooLarge);
    }
    let headers = to_rsip_headers(&raw.headers)?;
    let message = match start {
        StartLine::Request { method, uri } => {
            let method = known_method(&method)?;
            rsip::SipMessage::Request(rsip::Request {
                method,
                uri: to_rsip_uri(&uri),
                version: rsip::Version::V2,
                headers,
                body,
            })
        }
        StartLine::Response { code, reason } => {
            let status_code = match rsip::StatusCode::from(code) {
                rsip::StatusCode::Other(c, _) => rsip::StatusCode::Other(c, reason),
                known => known,
            };
            rsip::SipMessage::Response(rsip::Response {
                status_code,
                version: rsip::Version::V2,
                headers,
                body,
            })
        }
    };
    check_typed(&message)?;
    Ok(message)
}

/// rsip's method for an exact (case-sensitive, RFC 3261 §7.1) method name.
fn known_method(method: &str) -> Result<rsip::Method, MessageError> {
    rsip::Method::all()
        .into_iter()
        .find(|m| m.to_string() == method)
        .ok_or_else(|| MessageError::MethodNotImplemented(method.to_owned()))
}

/// An ACK is matched by its Via, Call-ID, CSeq and tags alone (RFC 3261 §17.2.3, §12.2.2)
/// and its Contact means nothing to us: a Contact we cannot read is dropped, so that the
/// ACK still stops the retransmissions of our final response.
fn drop_unreadable_contacts(raw: &mut RawMessage) {
    raw.headers.retain(|h| {
        let keep = h.name != "Contact" || syntax::address(&h.value, true).is_ok();
        if !keep {
            tracing::debug!(contact = %h.value, "ignoring an unreadable Contact in an ACK");
        }
        keep
    });
}

fn count(raw: &RawMessage, name: &str) -> usize {
    raw.values(name).count()
}

/// Mandatory headers, single-valued headers, and the values the layers above rely on.
/// Rewrites numeric values into canonical form (`CSeq: 0009 INVITE` → `9 INVITE`).
fn check_headers(
    raw: &mut RawMessage,
    start: &StartLine,
    limits: &Limits,
) -> Result<(), MessageError> {
    match count(raw, "Via") {
        0 => return Err(MessageError::MissingHeader("Via")),
        n if n > limits.max_vias => return Err(MessageError::TooManyVias),
        _ => {}
    }
    for name in SINGLE_MANDATORY {
        match count(raw, name) {
            0 => return Err(MessageError::MissingHeader(name)),
            1 => {}
            _ => return Err(MessageError::DuplicateHeader(name)),
        }
    }
    for name in AT_MOST_ONCE {
        if count(raw, name) > 1 {
            return Err(MessageError::DuplicateHeader(name));
        }
    }
    for h in raw.headers.iter_mut() {
        match h.name.as_str() {
            "Via" => {
                syntax::via(&h.value)?;
            }
            "From" | "To" => {
                syntax::address(&h.value, false)?;
            }
            "Contact" => {
                syntax::address(&h.value, true)?;
            }
            "Call-ID" if h.value.is_empty() || h.value.contains([' ', '\t']) => {
                return Err(MessageError::Malformed("bad Call-ID".into()));
            }
            "CSeq" => {
                let (n, method) = syntax::cseq(&h.value)?;
                if let StartLine::Request { method: m, .. } = start
                    && m != method
                {
                    return Err(MessageError::CSeqMismatch);
                }
                h.value = format!("{n} {method}");
            }
            "Max-Forwards" => {
                let n = syntax::bounded_number(&h.value, 255)
                    .ok_or_else(|| MessageError::Malformed("bad Max-Forwards".into()))?;
                h.value = n.to_string();
            }
            "Content-Length" => {
                let n = syntax::bounded_number(&h.value, u32::MAX.into())
                    .ok_or(MessageError::BadContentLength)?;
                h.value = n.to_string();
            }
            "Date" => syntax::date(&h.value)?,
            _ => {}
        }
    }
    Ok(())
}

/// The body as Content-Length says: a longer datagram is truncated, a shorter one is an
/// error. Without Content-Length (allowed on UDP) the body is the rest of the datagram.
fn body_by_content_length(raw: &RawMessage) -> Result<Vec<u8>, MessageError> {
    let Some(cl) = raw.first("Content-Length") else {
        return Ok(raw.body.clone());
    };
    let n: usize = cl.parse().map_err(|_| MessageError::BadContentLength)?;
    raw.body.get(..n).map(<[u8]>::to_vec).ok_or(MessageError::BadContentLength)
}

fn to_rsip_headers(headers: &[RawHeader]) -> Result<rsip::Headers, MessageError> {
    let mut out = rsip::Headers::default();
    for h in headers {
        let tokenizer =
            rsip::headers::header::Tokenizer { name: h.name.as_bytes(), value: h.value.as_bytes() };
        let header: rsip::Header = tokenizer
            .try_into()
            .map_err(|e: rsip::Error| MessageError::Malformed(format!("{}: {e}", h.name)))?;
        out.push(header);
    }
    Ok(out)
}

/// Build an rsip URI. rsip parses ordinary SIP URIs; IPv6 references and other schemes
/// are built field by field (see the module documentation).
fn to_rsip_uri(uri: &str) -> rsip::Uri {
    let scheme = syntax::scheme(uri).unwrap_or("sip");
    if syntax::is_sip_scheme(scheme) {
        if !uri.contains(['[', '"'])
            && let Ok(parsed) = rsip::Uri::try_from(uri)
        {
            return parsed;
        }
        if let Ok(parts) = syntax::sip_uri(uri, false) {
            return sip_uri_from_parts(&parts);
        }
    }
    let opaque = uri.get(scheme.len() + 1..).unwrap_or_default();
    rsip::Uri {
        scheme: Some(rsip::Scheme::Other(scheme.to_owned())),
        auth: None,
        host_with_port: rsip::HostWithPort {
            host: rsip::Host::Domain(opaque.to_owned().into()),
            port: None,
        },
        params: Vec::new(),
        headers: Vec::new(),
    }
}

fn sip_uri_from_parts(p: &syntax::SipUriParts<'_>) -> rsip::Uri {
    let scheme =
        if p.scheme.eq_ignore_ascii_case("sips") { rsip::Scheme::Sips } else { rsip::Scheme::Sip };
    let auth = p.user.map(|u| match u.split_once(':') {
        Some((user, password)) => {
            rsip::Auth { user: user.to_owned(), password: Some(password.to_owned()) }
        }
        None => rsip::Auth { user: u.to_owned(), password: None },
    });
    let host = match &p.host {
        syntax::Host::Name(n) => rsip::Host::Domain(n.clone().into()),
        syntax::Host::V4(a) => rsip::Host::IpAddr(IpAddr::V4(*a)),
        syntax::Host::V6(a) => rsip::Host::IpAddr(IpAddr::V6(*a)),
    };
    // Parameters are read by rsip from a stand-in URI that carries only them; quoted
    // values, which rsip cannot read, are kept as written.
    let params = header_text::params(p.params)
        .filter_map(|(name, value)| match value {
            Some(v) if v.starts_with('"') => Some(rsip::Param::Other(
                rsip::param::OtherParam::new(name),
                Some(rsip::param::OtherParamValue::new(v)),
            )),
            _ => {
                let text = match value {
                    Some(v) => format!("sip:example.invalid;{name}={v}"),
                    None => format!("sip:example.invalid;{name}"),
                };
                rsip::Uri::try_from(text.as_str()).ok()?.params.into_iter().next()
            }
        })
        .collect();
    rsip::Uri {
        scheme: Some(scheme),
        auth,
        host_with_port: rsip::HostWithPort { host, port: p.port.map(rsip::Port::from) },
        params,
        headers: Vec::new(),
    }
}

/// A URI from header text (a Contact's, a Record-Route's) as an rsip URI, read the way a
/// Request-URI is: rsip's parser where it can, else field by field (IPv6 references,
/// quoted parameter values, other schemes). `None` when our grammar check refuses it.
pub fn uri_from_text(uri: &str) -> Option<rsip::Uri> {
    syntax::request_uri(uri).ok()?;
    Some(to_rsip_uri(uri))
}

/// What rsip 0.4's typed parsers read in place of `value`: every quoted string (a quoted
/// parameter value, a quoted display name) replaced by a token, `q` or `"d"`. rsip's
/// parameter tokenizer takes tokens only and its name-addr tokenizer ends the display name
/// at the first `<`, quoted or not; the stand-in keeps everything else (URI, host, port,
/// parameter names) for rsip to check. Borrowed when there is nothing to replace.
pub fn rsip_stand_in(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains('"') {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut lexer = Lexer::new(Angles::Ordinary);
    let mut last_plain = None;
    let mut in_quote = false;
    for c in value.chars() {
        match lexer.feed(c) {
            Region::Quoted if !in_quote => {
                in_quote = true;
                out.push_str(if last_plain == Some('=') { "q" } else { "\"d\"" });
            }
            Region::Quoted => {}
            _ => {
                in_quote = false;
                last_plain = Some(c);
                out.push(c);
            }
        }
        if in_quote && lexer.unclosed().is_none() {
            in_quote = false;
            last_plain = Some('"');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether an address value holds something rsip 0.4 cannot read although it is valid:
/// an IPv6 reference, URI headers (`?Route=...`) or a URI scheme other than sip/sips.
fn address_beyond_rsip(value: &str) -> bool {
    if value.contains(['[', '?']) {
        return true;
    }
    let uri = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value,
    };
    !syntax::scheme(uri).is_some_and(syntax::is_sip_scheme)
}

/// Read the typed forms the layers above use, so that they find them readable.
fn check_typed(message: &rsip::SipMessage) -> Result<(), MessageError> {
    fn typed<'a, T: ToTypedHeader<'a> + UntypedHeader<'a>>(
        name: &str,
        header: &T,
        tolerated: fn(&str) -> bool,
    ) -> Result<(), MessageError> {
        let stand_in = T::new(rsip_stand_in(header.value()).into_owned());
        match stand_in.typed() {
            Ok(_) => Ok(()),
            Err(_) if tolerated(header.value()) => Ok(()),
            Err(e) => Err(MessageError::Malformed(format!("{name}: {e}"))),
        }
    }
    let missing = |name| move |_| MessageError::MissingHeader(name);
    let ipv6_sent_by: fn(&str) -> bool = |v| v.contains('[');
    typed("Via", message.via_header().map_err(missing("Via"))?, ipv6_sent_by)?;
    let from = message.from_header().map_err(missing("From"))?;
    typed("From", from, address_beyond_rsip)?;
    let to = message.to_header().map_err(missing("To"))?;
    typed("To", to, address_beyond_rsip)?;
    let cseq = message.cseq_header().map_err(missing("CSeq"))?;
    typed("CSeq", cseq, |_| false)?;
    message.call_id_header().map_err(missing("Call-ID"))?;
    if let Ok(contact) = message.contact_header()
        && contact.value() != "*"
    {
        typed("Contact", contact, address_beyond_rsip)?;
    }
    Ok(())
}

/// What the header section of a refused request still tells us.
#[derive(Debug, Default)]
struct Salvage {
    method: String,
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

/// Most header lines read when salvaging; the rest are ignored.
const SALVAGE_MAX_LINES: usize = 512;

/// Read the start line and the headers a response needs, tolerating whatever else is
/// wrong. None for responses (nothing is ever sent back for those).
fn salvage(bytes: &[u8]) -> Option<Salvage> {
    let limit = bytes.len().min(Limits::default().max_message_bytes);
    let text = String::from_utf8_lossy(bytes.get(..limit)?);
    let mut lines =
        text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).skip_while(|l| l.is_empty());
    let start = lines.next()?;
    if start.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        return None;
    }
    let method = start.split(' ').next().filter(|m| !m.is_empty())?;
    let mut found = Salvage { method: method.to_owned(), ..Salvage::default() };
    // Unfold, stopping at the empty line.
    let mut logical: Vec<String> = Vec::new();
    for line in lines.take(SALVAGE_MAX_LINES) {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(prev) = logical.last_mut() {
                prev.push(' ');
                prev.push_str(line.trim());
            }
        } else {
            logical.push(line.to_owned());
        }
    }
    for line in &logical {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim_matches([' ', '\t']).replace(|c: char| c.is_control(), "");
        if value.is_empty() || value.len() > Limits::default().max_line_len {
            continue;
        }
        let slot = match &*normalise::canonical_name(name.trim_end_matches([' ', '\t'])) {
            "Via" => {
                match normalise::split_list(&value) {
                    Ok(parts) => found.vias.extend(parts),
                    Err(_) => found.vias.push(value),
                }
                continue;
            }
            "From" => &mut found.from,
            "To" => &mut found.to,
            "Call-ID" => &mut found.call_id,
            "CSeq" => &mut found.cseq,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    Some(found)
}

/// A Via we can send a response back on: canonical, with a readable sent-by. The
/// protocol version is not checked, so that a 505 can go back to a SIP/7.0 sender.
fn usable_via(value: &str) -> Option<String> {
    let via = normalise::canonical_via(value).ok().or_else(|| {
        // Leniently: the first value only, without empty parameters.
        let first = value.split(',').next()?;
        let cleaned: Vec<&str> = first.split(';').filter(|p| !p.trim().is_empty()).collect();
        normalise::canonical_via(&cleaned.join(";")).ok()
    })?;
    let (_, rest) = via.split_once(' ')?;
    let sent_by = rest.split(';').next()?;
    syntax::host_port(sent_by).ok()?;
    Some(via)
}

/// A To tag for a stateless answer: the same request (and its retransmissions) always
/// gets the same tag. FNV-1a over Call-ID, top Via and CSeq.
fn stateless_tag(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Text for a Warning header: printable ASCII, no quotes or backslashes, bounded.
fn warning_text(err: &MessageError) -> String {
    err.to_string()
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '?' })
        .take(120)
        .collect()
}

/// For a request that failed to parse: the error response (400/505/...), with a Reason
/// phrase/Warning saying what was wrong, built from the headers that can be salvaged from
/// the raw text (Via(s), From, To, Call-ID, CSeq). None for responses, or when there is no
/// usable Via to send it back on (then the message is dropped and logged).
///
/// Never answers an ACK. The To header gets a tag derived from the request when it has
/// none, so retransmissions get identical answers.
pub fn error_response(bytes: &[u8], err: &MessageError) -> Option<rsip::Response> {
    if *err == MessageError::TooManyVias {
        // The answer would copy every Via back: a looped or forged path is dropped.
        tracing::debug!(error = %err, "dropping a request with too many Vias");
        return None;
    }
    let Some(found) = salvage(bytes) else {
        tracing::debug!(error = %err, "dropping unparsable response");
        return None;
    };
    if found.method == "ACK" {
        tracing::debug!(error = %err, "dropping unparsable ACK");
        return None;
    }
    let Some(top) = found.vias.first().and_then(|v| usable_via(v)) else {
        tracing::info!(error = %err, "dropping unparsable request without a usable Via");
        return None;
    };
    let mut headers = rsip::Headers::default();
    headers.push(rsip::headers::Via::new(top.clone()).into());
    for via in found.vias.iter().skip(1) {
        let via = usable_via(via).unwrap_or_else(|| via.clone());
        headers.push(rsip::headers::Via::new(via).into());
    }
    if let Some(from) = &found.from {
        headers.push(rsip::headers::From::new(from.clone()).into());
    }
    if let Some(to) = &found.to {
        let has_tag = header_text::tag(to).is_some();
        let to = if has_tag {
            to.clone()
        } else {
            let call_id = found.call_id.as_deref().unwrap_or_default();
            let cseq = found.cseq.as_deref().unwrap_or_default();
            format!("{to};tag={}", stateless_tag(&[call_id, &top, cseq]))
        };
        headers.push(rsip::headers::To::new(to).into());
    }
    if let Some(call_id) = &found.call_id {
        headers.push(rsip::headers::CallId::new(call_id.clone()).into());
    }
    if let Some(cseq) = &found.cseq {
        headers.push(rsip::headers::CSeq::new(cseq.clone()).into());
    }
    headers.push(
        rsip::headers::Warning::new(format!("399 zendesk-ivr \"{}\"", warning_text(err))).into(),
    );
    headers.push(rsip::headers::ContentLength::new("0").into());
    Some(rsip::Response {
        status_code: super::response::status(err.status()),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    })
}

/// The body the `sip_message` fuzz target runs, kept here so that a stable test can run
/// it too: parse, read every typed header the layers above read, build the error answer,
/// serialise, and frame the same bytes as a stream in two pieces.
pub fn fuzz_one(data: &[u8]) {
    let limits = Limits::default();
    match parse(data, &limits) {
        Ok(message) => {
            let _ = message.via_header().map(|v| v.typed());
            let _ = message.from_header().map(|v| v.typed());
            let _ = message.to_header().map(|v| v.typed());
            let _ = message.cseq_header().map(|v| v.typed());
            let _ = message.contact_header().map(|v| v.typed());
            let _ = message.max_forwards_header().map(|v| v.num());
            let _ = message.call_id_header().map(|v| v.value().len());
            if let rsip::SipMessage::Request(request) = &message {
                let _ = request.uri.to_string();
            }
            let _ = message.to_string();
        }
        Err(err) => {
            let _ = err.status();
            if let Some(response) = error_response(data, &err) {
                let _ = response.to_string();
            }
        }
    }
    let mut framer = StreamFramer::new(limits);
    let (a, b) = data.split_at(data.len() / 2);
    framer.push(a);
    let mut budget = data.len() + 2;
    while let Some(Ok(_)) = framer.next_message() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            break;
        }
    }
    framer.push(b);
    while let Some(next) = framer.next_message() {
        if let Ok(Framed::Message(bytes)) = &next {
            let _ = parse(bytes, &limits);
        }
        budget = budget.saturating_sub(1);
        if next.is_err() || budget == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod tests;
