//! SDP offer/answer for audio (RFC 3264, RFC 4566), sans-IO.
//!
//! Codecs: PCMU (0), PCMA (8), opus/48000/2 (dynamic) and telephone-event (dynamic; the
//! offerer's number is kept). Our preference order comes from config. Only the first usable
//! audio stream is answered; every other `m=` line is refused with port 0, as RFC 3264 §6
//! asks. `RTP/SAVP` with SDES keys (`a=crypto`, RFC 4568) is answered for calls over
//! TLS when `media.srtp` allows it ([`SrtpAnswer`]); our own offers are `RTP/AVP`.

mod crypto;
mod negotiate;
mod parse;

pub use crypto::{CryptoLine, MAX_CRYPTO_LINES, parse_crypto};
pub use negotiate::{accept_answer, answer, offer};
pub use parse::{
    Connection, Fmtp, MAX_SDP_BYTES, MediaDescription, Origin, RtpMap, SessionDescription, parse,
};

use std::net::SocketAddr;

use crate::config::{CodecName, SrtpPolicy};
use crate::srtp::{MasterKey, SrtpKeys};

/// Why an SDP could not be read or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP too large: {0}")]
    TooLarge(&'static str),
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    #[error("no audio stream in the SDP")]
    NoAudio,
    /// The offer and our preferences share no codec: answer 488.
    #[error("no codec in common")]
    NoCommonCodec,
    /// The media profile (RTP/AVP or RTP/SAVP) or its keys do not meet `media.srtp`:
    /// answer 488.
    #[error("SRTP: {0}")]
    Srtp(&'static str),
}

/// What an answer may do about SRTP.
pub struct SrtpAnswer<'a> {
    pub policy: SrtpPolicy,
    /// The offer came over TLS: only then do keys in SDP stay secret.
    pub secure_signalling: bool,
    /// The call's keys, when it already uses SRTP (a re-offer keeps our key).
    pub current: Option<&'a SrtpKeys>,
    /// Our key when a new one is needed; from a cryptographically secure generator.
    pub fresh_key: MasterKey,
}

impl SrtpAnswer<'_> {
    /// Plain RTP only (SRTP off).
    pub fn plain() -> SrtpAnswer<'static> {
        SrtpAnswer {
            policy: SrtpPolicy::Off,
            secure_signalling: false,
            current: None,
            fresh_key: MasterKey::new([0; crate::srtp::MASTER_LEN]),
        }
    }
}

/// A stream's direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Reads `sendrecv`, `sendonly`, `recvonly`, `inactive` (the attribute, without `a=`).
    pub fn from_attribute(value: &str) -> Option<Direction> {
        match value.trim().to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction seen from the other end: sendonly ↔ recvonly.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// The audio codec chosen for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub name: CodecName,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub channels: u8,
}

/// The outcome of offer/answer for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// RFC 4733 payload type, when both sides support telephone-event.
    pub telephone_event: Option<u8>,
    /// Where to send RTP. `None` when the peer gave `c=0.0.0.0` (hold) or port 0.
    pub remote_rtp: Option<SocketAddr>,
    /// OUR direction: whether we may send and expect to receive.
    pub direction: Direction,
    /// Packet duration to send, in milliseconds.
    pub ptime_ms: u32,
    /// SRTP keys, when the stream is `RTP/SAVP` (their `Debug` shows the suite only).
    pub srtp: Option<SrtpKeys>,
}

/// Our `o=` line for one call. The version goes up only when our SDP changes
/// (RFC 3264 §8); a session refresh with an unchanged answer keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSession {
    pub id: u64,
    pub version: u64,
    /// Our last SDP without its `o=` line, to tell whether a new one differs.
    last_body: Option<String>,
}

impl LocalSession {
    /// A new session; `id` should be random (it also seeds the first version).
    pub fn new(id: u64) -> Self {
        // Keep both within 63 bits so every peer reads them as numbers.
        let id = id & 0x7fff_ffff_ffff_ffff;
        LocalSession { id, version: id % 1_000_000_000, last_body: None }
    }

    /// Puts the `o=` line on `body` (the SDP without its `v=`/`o=` lines), stepping the
    /// version when `body` differs from the last one we sent.
    pub(crate) fn render(&mut self, local: SocketAddr, body: &str) -> String {
        match &self.last_body {
            Some(last) if last == body => {}
            Some(_) => {
                self.version = self.version.saturating_add(1);
                self.last_body = Some(body.to_string());
            }
            None => self.last_body = Some(body.to_string()),
        }
        format!(
            "v=0\r\no=zendesk-ivr {} {} IN {} {}\r\n{}",
            self.id,
            self.version,
            ip_kind(local),
            local.ip(),
            body
        )
    }
}

pub(crate) fn ip_kind(addr: SocketAddr) -> &'static str {
    if addr.is_ipv4() { "IP4" } else { "IP6" }
}

/// Parse and answer arbitrary bytes: the body of a fuzz target. Never panics.
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(sdp) = parse(&text) {
        let prefs = [CodecName::Opus, CodecName::Pcmu, CodecName::Pcma];
        let local = SocketAddr::from(([127, 0, 0, 1], 30000));
        let mut session = LocalSession::new(1);
        let srtp = SrtpAnswer {
            policy: SrtpPolicy::Optional,
            secure_signalling: true,
            current: None,
            fresh_key: MasterKey::new([1; crate::srtp::MASTER_LEN]),
        };
        if let Ok((answer_text, _)) = answer(&sdp, &prefs, local, &mut session, &srtp) {
            // Our own answer must read back.
            let _ = parse(&answer_text);
        }
        let _ = accept_answer(&prefs, &sdp, None);
    }
}

#[cfg(test)]
mod srtp_tests;
#[cfg(test)]
mod tests;
