//! `a=crypto` (SDES, RFC 4568 §9.1): reading the peer's lines and writing ours.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>]
//! [<session params>]`. A line is usable when its suite is one we have, it carries exactly
//! one key of the suite's length, no MKI and no session parameter (we implement none:
//! `UNENCRYPTED_SRTP`, `KDR`, ... would change the transform). Unusable lines are skipped,
//! as RFC 4568 §7.1.1 lets an answerer do. The key never goes into an error or a log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::srtp::{MASTER_LEN, MasterKey, Suite};

/// Most `a=crypto` lines kept per `m=` section.
pub const MAX_CRYPTO_LINES: usize = 8;
/// Longest `a=crypto` value read.
const MAX_CRYPTO_LEN: usize = 256;

/// One usable `a=crypto` line of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoLine {
    /// 1 to 9 digits (RFC 4568 §9.1).
    pub tag: u32,
    pub suite: Suite,
    /// The offerer's key: what it sends with, so what we receive with.
    pub key: MasterKey,
}

/// Reads the value of an `a=crypto:` attribute (after the colon). `None`: not usable.
pub fn parse_crypto(value: &str) -> Option<CryptoLine> {
    if value.len() > MAX_CRYPTO_LEN {
        return None;
    }
    let mut fields = value.split_ascii_whitespace();
    let tag = fields.next()?;
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tag = tag.parse().ok()?;
    let suite = Suite::from_name(fields.next()?)?;
    let key_params = fields.next()?;
    if fields.next().is_some() {
        return None; // session parameters
    }
    // One key only: several keys (`;`-separated) come with MKIs, which we do not use.
    let inline = key_params.strip_prefix("inline:")?;
    if inline.contains(';') {
        return None;
    }
    let mut parts = inline.split('|');
    let key = parts.next()?;
    for extra in parts {
        if extra.contains(':') {
            return None; // MKI:length
        }
        if !valid_lifetime(extra) {
            return None;
        }
    }
    let bytes = STANDARD.decode(key).ok()?;
    let bytes: [u8; MASTER_LEN] = bytes.as_slice().try_into().ok()?;
    Some(CryptoLine { tag, suite, key: MasterKey::new(bytes) })
}

/// `2^31` or a decimal count of packets; the suites allow at most 2^48 (RFC 4568 §6.2).
fn valid_lifetime(text: &str) -> bool {
    match text.strip_prefix("2^") {
        Some(power) => power.parse::<u32>().is_ok_and(|p| (1..=48).contains(&p)),
        None => text.parse::<u64>().is_ok_and(|n| n > 0 && n <= 1 << 48),
    }
}

/// Our line for an answer or offer: `a=crypto:<tag> <suite> inline:<base64>`.
pub fn write_crypto(out: &mut String, tag: u32, suite: Suite, key: &MasterKey) {
    out.push_str("a=crypto:");
    out.push_str(&tag.to_string());
    out.push(' ');
    out.push_str(suite.name());
    out.push_str(" inline:");
    out.push_str(&STANDARD.encode(key.expose()));
    out.push_str("\r\n");
}
