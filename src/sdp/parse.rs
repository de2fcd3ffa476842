//! A lenient, bounded SDP reader (RFC 4566) for what real SIP peers send.
//!
//! Only what audio offer/answer needs is kept; unknown lines and attributes are skipped.
//! Sizes and counts are bounded so that hostile input costs little and never panics.

use std::net::IpAddr;

use super::crypto::{CryptoLine, MAX_CRYPTO_LINES, parse_crypto};
use super::{Direction, SdpError};

/// Largest SDP body accepted, in bytes.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most lines in one SDP body.
pub const MAX_LINES: usize = 512;
/// Most `m=` sections.
pub const MAX_MEDIA: usize = 16;
/// Most formats (payload types) on one `m=` line.
pub const MAX_FORMATS: usize = 64;
/// Most `rtpmap`/`fmtp` attributes kept per `m=` section.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest single token (format, media type, proto) kept as text.
const MAX_TOKEN: usize = 64;

/// A parsed session description (only the parts audio offer/answer uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// `o=` session id and version, when present and numeric.
    pub origin: Option<Origin>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

/// The parts of `o=` that matter: a peer changes `version` when its SDP changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub session_id: u64,
    pub version: u64,
}

/// A `c=` line. `address` is `None` when it is not an IP literal (a host name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub address: Option<IpAddr>,
}

impl Connection {
    /// `c=IN IP4 0.0.0.0`: the RFC 2543 way of putting a call on hold.
    pub fn is_hold(&self) -> bool {
        self.address.is_some_and(|a| a.is_unspecified())
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, ... (token characters only).
    pub media: String,
    pub port: u16,
    /// Transport protocol, e.g. `RTP/AVP` (token characters only).
    pub proto: String,
    /// Formats in the offerer's order (payload type numbers for RTP).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<Fmtp>,
    pub direction: Option<Direction>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// Usable `a=crypto` lines (SDES), in the offerer's order.
    pub crypto: Vec<CryptoLine>,
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `a=fmtp:<pt> <params>`; `params` holds token-safe characters only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub payload_type: u8,
    pub params: String,
}

impl MediaDescription {
    /// Payload types on the `m=` line that are valid RTP numbers, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok()).filter(|pt| *pt < 128)
    }

    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|r| r.payload_type == payload_type)
    }

    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.fmtps.iter().find(|f| f.payload_type == payload_type).map(|f| f.params.as_str())
    }

    /// RTP over UDP without SRTP: `RTP/AVP` or `RTP/AVPF`.
    pub fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// SRTP over UDP with keys in SDP: `RTP/SAVP` or `RTP/SAVPF` (RFC 3711 §12).
    pub fn is_srtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }
}

impl SessionDescription {
    /// The connection that applies to a media section (media level wins).
    pub fn connection_for(&self, media: &MediaDescription) -> Option<Connection> {
        media.connection.or(self.connection)
    }

    /// The direction that applies to a media section (media level wins; default sendrecv).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        media.direction.or(self.direction).unwrap_or(Direction::SendRecv)
    }
}

/// Parse an SDP body. Lenient about what real peers send (LF-only line ends, missing
/// `rtpmap` for static payload types, unknown lines), strict about sizes.
pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge("body"));
    }
    let mut sdp = SessionDescription::default();
    let mut saw_version = false;
    for (count, raw) in text.split('\n').enumerate() {
        if count >= MAX_LINES {
            return Err(SdpError::TooLarge("lines"));
        }
        let line = raw.trim_end_matches('\r').trim_start();
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            return Err(SdpError::Malformed("line is not <type>=<value>"));
        }
        let value = line.get(2..).unwrap_or("").trim();
        match bytes[0] {
            b'v' => {
                if value != "0" {
                    return Err(SdpError::Malformed("v= is not 0"));
                }
                saw_version = true;
            }
            b'o' => sdp.origin = parse_origin(value),
            b'c' => {
                let conn = parse_connection(value)?;
                match sdp.media.last_mut() {
                    Some(m) => m.connection = Some(conn),
                    None => sdp.connection = Some(conn),
                }
            }
            b'm' => {
                if sdp.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooLarge("m= sections"));
                }
                sdp.media.push(parse_media(value)?);
            }
            b'a' => match sdp.media.last_mut() {
                Some(m) => parse_media_attribute(m, value)?,
                None => {
                    if let Some(d) = Direction::from_attribute(value) {
                        sdp.direction = Some(d);
                    }
                }
            },
            _ => {}
        }
    }
    if !saw_version && sdp.media.is_empty() {
        return Err(SdpError::Malformed("no v= and no m= line"));
    }
    Ok(sdp)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut it = value.split_ascii_whitespace();
    let _user = it.next()?;
    let session_id = it.next()?.parse().ok()?;
    let version = it.next()?.parse().ok()?;
    Some(Origin { session_id, version })
}

fn parse_connection(value: &str) -> Result<Connection, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some(net), Some(kind), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::Malformed("c= needs <nettype> <addrtype> <address>"));
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err(SdpError::Malformed("c= nettype is not IN"));
    }
    // Multicast addresses may carry "/ttl[/count]"; keep the address part.
    let addr = addr.split('/').next().unwrap_or(addr);
    let address = match kind.to_ascii_uppercase().as_str() {
        "IP4" => addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        "IP6" => addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        _ => return Err(SdpError::Malformed("c= addrtype is not IP4 or IP6")),
    };
    Ok(Connection { address })
}

fn parse_media(value: &str) -> Result<MediaDescription, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::Malformed("m= needs <media> <port> <proto> <fmt>"));
    };
    // "49170/2" announces a port count; only the first port matters for one stream.
    let port = port
        .split('/')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or(SdpError::Malformed("m= port is not a number"))?;
    let mut formats = Vec::new();
    for f in it {
        if formats.len() >= MAX_FORMATS {
            return Err(SdpError::TooLarge("formats on one m= line"));
        }
        formats.push(safe_token(f)?);
    }
    Ok(MediaDescription {
        media: safe_token(media)?,
        port,
        proto: safe_token(proto)?,
        formats,
        ..MediaDescription::default()
    })
}

fn parse_media_attribute(m: &mut MediaDescription, value: &str) -> Result<(), SdpError> {
    if let Some(d) = Direction::from_attribute(value) {
        m.direction = Some(d);
        return Ok(());
    }
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    match name.trim().to_ascii_lowercase().as_str() {
        "rtpmap" => {
            if m.rtpmaps.len() >= MAX_ATTRIBUTES {
                return Err(SdpError::TooLarge("rtpmap attributes"));
            }
            if let Some(map) = parse_rtpmap(rest) {
                m.rtpmaps.push(map);
            }
        }
        "fmtp" => {
            if m.fmtps.len() >= MAX_ATTRIBUTES {
                return Err(SdpError::TooLarge("fmtp attributes"));
            }
            let (pt, params) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            if let Ok(payload_type) = pt.parse::<u8>() {
                let params: String = params
                    .trim()
                    .chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(256)
                    .collect();
                m.fmtps.push(Fmtp { payload_type, params });
            }
        }
        "crypto" => {
            if m.crypto.len() >= MAX_CRYPTO_LINES {
                return Err(SdpError::TooLarge("crypto attributes"));
            }
            if let Some(line) = parse_crypto(rest) {
                m.crypto.push(line);
            }
        }
        "ptime" => m.ptime = parse_millis(rest),
        "maxptime" => m.maxptime = parse_millis(rest),
        _ => {}
    }
    Ok(())
}

/// `20`, `20.0` or `20.5` → 20 (some gateways write fractions).
fn parse_millis(value: &str) -> Option<u32> {
    let whole = value.trim().split('.').next()?;
    whole.parse::<u32>().ok().filter(|v| *v > 0 && *v <= 1000)
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim().split_once(' ')?;
    let payload_type = pt.trim().parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim();
    if encoding.is_empty() || encoding.len() > MAX_TOKEN {
        return None;
    }
    let clock_rate = parts.next()?.trim().parse::<u32>().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse::<u8>().ok()?),
        None => None,
    };
    Some(RtpMap { payload_type, encoding: safe_token(encoding).ok()?, clock_rate, channels })
}

/// Tokens copied from a peer's SDP into ours must hold only harmless characters.
fn safe_token(s: &str) -> Result<String, SdpError> {
    if s.is_empty() || s.len() > MAX_TOKEN {
        return Err(SdpError::Malformed("token empty or too long"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+*".contains(&b)) {
        return Err(SdpError::Malformed("token holds characters outside the token set"));
    }
    Ok(s.to_string())
}
