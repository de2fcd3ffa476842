//! HTTP digest authentication for SIP (RFC 7616 with RFC 8760's algorithms; sans-IO).
//!
//! - [`Challenge`] is a `WWW-Authenticate` / `Proxy-Authenticate` value, [`Credentials`] an
//!   `Authorization` / `Proxy-Authorization` value: both parse from and write to header text.
//! - [`Credentials::answer`] is the client side: it answers a challenge with `qop=auth`
//!   (or the RFC 2069 form when the challenge offers no qop), given the cnonce and nonce
//!   count.
//! - [`Verifier`] is the server side: stateless nonces that expire, replay protection by
//!   nonce count with bounded state, and the same work for unknown users as for known ones.
//!
//! Algorithms: `MD5` and `SHA-256`. The `-sess` variants and `qop=auth-int` are not
//! supported (SIP peers do not need them; RFC 8760 §2.3 allows `auth` alone).

mod verifier;

#[cfg(test)]
mod tests;

pub use verifier::{AuthUser, Verdict, Verifier, VerifierConfig};

use std::fmt::Write as _;

use md5::Digest as _;

use crate::sip::header_text::{self, Angles};

/// Most parameters read from one challenge or credentials value.
const MAX_PARAMS: usize = 24;

/// A digest hash algorithm (RFC 7616 §3.2, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The `algorithm=` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Reads an `algorithm=` token (case-insensitive).
    pub fn parse(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data)),
            Algorithm::Sha256 => hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref()),
        }
    }

    /// Preference when a peer offers several: stronger first.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha256 => 1,
        }
    }
}

/// Why a header value could not be read or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest value")]
    NotDigest,
    #[error("unbalanced quotes")]
    Unclosed,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("unsupported qop")]
    UnsupportedQop,
    #[error("bad nonce count")]
    BadNonceCount,
}

/// A digest challenge (`WWW-Authenticate` / `Proxy-Authenticate`).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether `qop="auth"` is offered (the only qop we use).
    pub qop_auth: bool,
    pub stale: bool,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl Challenge {
    /// Reads a challenge value. An absent algorithm means MD5 (RFC 7616 §3.3).
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = digest_params(value)?;
        let get = |name: &str| lookup(&params, name);
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm)?,
            None => Algorithm::Md5,
        };
        let qop = get("qop");
        let qop_auth = qop.as_deref().is_some_and(|q| q.split(',').any(|o| o.trim() == "auth"));
        if qop.is_some() && !qop_auth {
            return Err(DigestError::UnsupportedQop);
        }
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The header value: `Digest realm="…", nonce="…", algorithm=…, qop="auth"`.
    pub fn to_header_value(&self) -> String {
        let mut out = format!("Digest realm={}, nonce={}", quote(&self.realm), quote(&self.nonce));
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(opaque));
        }
        let _ = write!(out, ", algorithm={}", self.algorithm.as_str());
        if self.qop_auth {
            out.push_str(", qop=\"auth\"");
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        out
    }

    /// The challenge to answer among several values (each header of a 401/407): the
    /// strongest algorithm we support; values we cannot read are skipped.
    pub fn choose<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .max_by_key(|c| (c.algorithm.strength(), c.qop_auth))
    }
}

/// Digest credentials (`Authorization` / `Proxy-Authorization`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// The hex response hash.
    pub response: String,
    pub algorithm: Algorithm,
    pub opaque: Option<String>,
    /// `Some((cnonce, nc))` with `qop=auth`; `None` in the RFC 2069 form.
    pub qop_auth: Option<(String, u32)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What goes into a response hash besides the challenge and the credentials.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub uri: &'a str,
}

impl Credentials {
    /// Answers `challenge` for `request` as `username` with `password`. With `qop=auth`
    /// offered, `cnonce` and `nc` (the count of requests sent with this nonce, from 1) go
    /// in; without it, the RFC 2069 form is sent.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        password: &str,
        request: RequestLine<'_>,
        cnonce: &str,
        nc: u32,
    ) -> Credentials {
        let ha1 = ha1(challenge.algorithm, username, &challenge.realm, password);
        let qop_auth = challenge.qop_auth.then(|| (cnonce.to_string(), nc));
        let response = response_hash(
            challenge.algorithm,
            &ha1,
            &challenge.nonce,
            qop_auth.as_ref().map(|(c, n)| (c.as_str(), *n)),
            request,
        );
        Credentials {
            username: username.to_string(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: request.uri.to_string(),
            response,
            algorithm: challenge.algorithm,
            opaque: challenge.opaque.clone(),
            qop_auth,
        }
    }

    /// Reads a credentials value.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let params = digest_params(value)?;
        let get = |name: &str| lookup(&params, name);
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm)?,
            None => Algorithm::Md5,
        };
        let qop_auth = match get("qop") {
            None => None,
            Some(q) if q == "auth" => {
                let cnonce = get("cnonce").ok_or(DigestError::Missing("cnonce"))?;
                let nc = get("nc").ok_or(DigestError::Missing("nc"))?;
                let nc = (nc.len() == 8)
                    .then(|| u32::from_str_radix(&nc, 16).ok())
                    .flatten()
                    .ok_or(DigestError::BadNonceCount)?;
                Some((cnonce, nc))
            }
            Some(_) => return Err(DigestError::UnsupportedQop),
        };
        Ok(Credentials {
            username: get("username").ok_or(DigestError::Missing("username"))?,
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            uri: get("uri").ok_or(DigestError::Missing("uri"))?,
            response: get("response").ok_or(DigestError::Missing("response"))?,
            algorithm,
            opaque: get("opaque"),
            qop_auth,
        })
    }

    /// The header value.
    pub fn to_header_value(&self) -> String {
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm.as_str()
        );
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(opaque));
        }
        if let Some((cnonce, nc)) = &self.qop_auth {
            let _ = write!(out, ", qop=auth, cnonce={}, nc={nc:08x}", quote(cnonce));
        }
        out
    }
}

/// H(username:realm:password) in hex (RFC 7616 §3.4.2).
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The response hash (RFC 7616 §3.4.1) from HA1: with `qop=auth`,
/// KD(HA1, nonce:nc:cnonce:auth:HA2); without qop (RFC 2069), KD(HA1, nonce:HA2).
pub fn response_hash(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    qop_auth: Option<(&str, u32)>,
    request: RequestLine<'_>,
) -> String {
    let ha2 = algorithm.hash_hex(format!("{}:{}", request.method, request.uri).as_bytes());
    let data = match qop_auth {
        Some((cnonce, nc)) => format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    algorithm.hash_hex(data.as_bytes())
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A quoted string (RFC 3261 §25.1): `"` and `\` escaped, control characters dropped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A parameter value: unquoted, with quoted-pairs resolved.
fn unquoted(value: &str) -> String {
    let inner = header_text::unquote(value);
    if inner.len() == value.len() {
        return inner.to_string();
    }
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The `name=value` parameters after `Digest`, names lower-cased, values unquoted.
fn digest_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let mut split = header_text::split_outside(rest, ',', Angles::Ordinary);
    let params = split
        .by_ref()
        .filter(|p| !p.trim().is_empty())
        .take(MAX_PARAMS)
        .map(header_text::param)
        .map(|(name, v)| (name.to_ascii_lowercase(), unquoted(v.unwrap_or_default())))
        .collect();
    if split.unclosed().is_some() {
        return Err(DigestError::Unclosed);
    }
    Ok(params)
}

fn lookup(params: &[(String, String)], name: &str) -> Option<String> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}
