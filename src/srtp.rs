//! SRTP and SRTCP (RFC 3711) with the AES-CM / HMAC-SHA1 suites of SDES (RFC 4568), sans-IO.
//!
//! Keys come from SDP (`a=crypto`, [`crate::sdp`]); this module turns a master key into
//! session keys (RFC 3711 §4.3, key derivation rate 0) and protects or unprotects one
//! packet at a time, in place, in the caller's buffer: the media worker writes a packet's
//! header and the shared frame into its send buffer, then [`SrtpSender::protect_rtp`]
//! encrypts that buffer and appends the tag. Nothing allocates per packet.
//!
//! Per SSRC, a receiver keeps the rollover counter and a 64-packet replay window
//! (RFC 3711 §3.3.1, §3.3.2, Appendix A). A packet whose tag does not verify changes no
//! state, so a forged packet cannot move the window or the rollover counter.
//!
//! Master keys are secrets: [`MasterKey`]'s `Debug` prints `[redacted]`, it has no
//! `Display`, and it is zeroed when dropped. So are the session keys derived from it (the
//! AES key schedule through the `aes` crate's `zeroize` feature).

mod context;
mod kdf;
mod replay;

pub use context::{SrtpReceiver, SrtpSender};

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Bytes of a master key (AES-128).
pub const MASTER_KEY_LEN: usize = 16;
/// Bytes of a master salt.
pub const MASTER_SALT_LEN: usize = 14;
/// Bytes of key and salt together, as `inline:` carries them (RFC 4568 §6.1).
pub const MASTER_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Most bytes SRTP adds to an RTP packet (the 80-bit tag).
pub const MAX_RTP_OVERHEAD: usize = 10;
/// Bytes SRTCP adds to an RTCP packet: E flag and index (4), tag (10).
pub const RTCP_OVERHEAD: usize = 4 + 10;

/// A crypto suite we support (RFC 4568 §6.2), in our order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (mandatory in RFC 4568).
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag on SRTP; SRTCP keeps the 80-bit tag (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// Every suite we take, best first.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Reads a suite name (case-sensitive, as RFC 4568 registers them).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes of the tag on an SRTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes of the tag on an SRTCP packet (80 bits for both suites).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }
}

/// A master key and salt (30 bytes). Never printed; zeroed on drop.
#[derive(Clone)]
pub struct MasterKey([u8; MASTER_LEN]);

impl MasterKey {
    pub fn new(bytes: [u8; MASTER_LEN]) -> MasterKey {
        MasterKey(bytes)
    }

    /// A fresh key from a cryptographically secure generator.
    pub fn random(rng: &mut impl rand::CryptoRng) -> MasterKey {
        let mut bytes = [0u8; MASTER_LEN];
        rng.fill_bytes(&mut bytes);
        MasterKey(bytes)
    }

    /// Key and salt, for `inline:` or for key derivation only.
    pub fn expose(&self) -> &[u8; MASTER_LEN] {
        &self.0
    }

    fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LEN..]
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Compared in constant time.
impl PartialEq for MasterKey {
    fn eq(&self, other: &MasterKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MasterKey {}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The keys of one SRTP call: the suite, the key we send with (ours, from our SDP) and the
/// key we receive with (the peer's, from its SDP). `Debug` shows tag and suite only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The `a=crypto` tag both sides' lines carry (RFC 4568 §9.1).
    pub tag: u32,
    pub suite: Suite,
    pub send: MasterKey,
    pub receive: MasterKey,
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet too short or malformed")]
    Malformed,
    #[error("no room in the buffer for the tag")]
    NoRoom,
    #[error("authentication tag does not verify")]
    AuthFailed,
    #[error("packet replayed or too old")]
    Replayed,
}

impl SrtpError {
    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            SrtpError::Malformed => "malformed",
            SrtpError::NoRoom => "no_room",
            SrtpError::AuthFailed => "auth",
            SrtpError::Replayed => "replay",
        }
    }
}

#[cfg(test)]
mod tests;
