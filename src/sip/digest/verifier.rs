//! The server side of digest authentication (sans-IO): challenges with stateless nonces,
//! and verification of credentials.
//!
//! A nonce is `hex(issued ms ‖ sequence) ‖ hex(HMAC-SHA-256(key, issued ‖ sequence))[..32]`:
//! the verifier can tell its own nonces and their age without storing them. Replay
//! protection keeps the highest nonce count seen per nonce, for at most
//! `max_tracked_nonces` nonces. When that table is full the oldest entry goes, and every
//! nonce issued up to the evicted one's time is answered as stale from then on, so an
//! evicted nonce can never be replayed.
//!
//! Unknown users are checked against a decoy HA1, with the same hashing and the same
//! constant-time comparison, so that the answer and its timing do not tell them apart
//! from a wrong password.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ring::hmac;
use subtle::ConstantTimeEq;

use super::{Algorithm, Challenge, Credentials, RequestLine, ha1, response_hash};

/// A user who may authenticate, with the password (never printed by `Debug`).
#[derive(Clone)]
pub struct AuthUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for AuthUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthUser").field("name", &self.name).finish_non_exhaustive()
    }
}

/// How the verifier challenges.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub realm: String,
    /// Algorithms offered, one challenge each, in preference order.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce may be used.
    pub nonce_lifetime: Duration,
    /// Most nonces whose count is remembered.
    pub max_tracked_nonces: usize,
}

/// What a request's credentials are worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials verify: the user name.
    Authenticated(String),
    /// No credentials for our realm: challenge.
    Missing,
    /// Right password, but the nonce is too old, or its count was seen before (`replay`):
    /// challenge again with `stale=true`.
    Stale { replay: bool },
    /// The credentials do not verify (a wrong password, an unknown user, a forged nonce or
    /// an algorithm we did not offer): challenge again, and report.
    Rejected { user: String, reason: &'static str },
}

/// Bytes of the HMAC kept in a nonce.
const MAC_BYTES: usize = 16;

/// Checks digest credentials and issues challenges.
pub struct Verifier {
    config: VerifierConfig,
    epoch: Instant,
    key: hmac::Key,
    next_sequence: u32,
    /// User → (algorithm → HA1).
    users: HashMap<String, Vec<(Algorithm, String)>>,
    /// HA1s of a user nobody knows the password of.
    decoy: Vec<(Algorithm, String)>,
    /// Nonce → highest nonce count accepted.
    counts: HashMap<String, u32>,
    /// Tracked nonces with their issue time (ms since `epoch`), oldest first.
    order: VecDeque<(String, u64)>,
    /// Nonces issued up to this time (ms since `epoch`) are no longer tracked.
    forgotten_up_to: Option<u64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("users", &self.users.len())
            .field("tracked_nonces", &self.counts.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// `key` signs the nonces (random, from the caller); `decoy_password` is a random
    /// string used for unknown users.
    pub fn new(
        now: Instant,
        config: VerifierConfig,
        users: &[AuthUser],
        key: [u8; 32],
        decoy_password: &str,
    ) -> Verifier {
        let ha1s = |name: &str, password: &str| -> Vec<(Algorithm, String)> {
            [Algorithm::Sha256, Algorithm::Md5]
                .into_iter()
                .map(|a| (a, ha1(a, name, &config.realm, password)))
                .collect()
        };
        let users = users.iter().map(|u| (u.name.clone(), ha1s(&u.name, &u.password))).collect();
        let decoy = ha1s("", decoy_password);
        Verifier {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            config,
            epoch: now,
            next_sequence: 0,
            users,
            decoy,
            counts: HashMap::new(),
            order: VecDeque::new(),
            forgotten_up_to: None,
        }
    }

    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// One challenge per configured algorithm, with a fresh nonce each.
    pub fn challenges(&mut self, now: Instant, stale: bool) -> Vec<Challenge> {
        let algorithms = self.config.algorithms.clone();
        algorithms
            .into_iter()
            .map(|algorithm| Challenge {
                realm: self.config.realm.clone(),
                nonce: self.new_nonce(now),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            })
            .collect()
    }

    /// Checks the `Authorization` values of a request. Values for another realm are
    /// ignored; none left is [`Verdict::Missing`].
    pub fn verify<'a>(
        &mut self,
        now: Instant,
        request: RequestLine<'_>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Verdict {
        self.forget_expired(now);
        let mut unreadable = false;
        let mut found = None;
        for value in values {
            match Credentials::parse(value) {
                Ok(c) if c.realm == self.config.realm => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(_) => unreadable = true,
            }
        }
        let Some(credentials) = found else {
            return if unreadable {
                Verdict::Rejected { user: String::new(), reason: "unreadable credentials" }
            } else {
                Verdict::Missing
            };
        };
        self.check(now, request, &credentials)
    }

    fn check(&mut self, now: Instant, request: RequestLine<'_>, c: &Credentials) -> Verdict {
        let rejected = |reason| Verdict::Rejected { user: c.username.clone(), reason };
        let algorithm = c.algorithm;
        // The same work whether or not the user exists.
        let known = self.users.get(&c.username);
        let ha1 = known
            .unwrap_or(&self.decoy)
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, h)| h.as_str())
            .unwrap_or_default();
        let qop = c.qop_auth.as_ref().map(|(cnonce, nc)| (cnonce.as_str(), *nc));
        let expected = response_hash(algorithm, ha1, &c.nonce, qop, request);
        let matches: bool = expected.as_bytes().ct_eq(c.response.as_bytes()).into();
        if !(matches && known.is_some()) {
            return rejected("credentials do not verify");
        }
        if !self.config.algorithms.contains(&algorithm) {
            return rejected("algorithm not offered");
        }
        if c.uri != request.uri {
            return rejected("uri differs from the Request-URI");
        }
        let Some((_, nc)) = qop else {
            return rejected("qop=auth required");
        };
        let Some(issued) = self.nonce_issued(&c.nonce) else {
            return rejected("nonce not ours");
        };
        let age = now.saturating_duration_since(self.epoch).as_millis() as u64;
        if age.saturating_sub(issued) > self.config.nonce_lifetime.as_millis() as u64 {
            return Verdict::Stale { replay: false };
        }
        match self.counts.get_mut(&c.nonce) {
            Some(seen) if *seen >= nc => Verdict::Stale { replay: true },
            Some(seen) => {
                *seen = nc;
                Verdict::Authenticated(c.username.clone())
            }
            None if self.forgotten_up_to.is_some_and(|f| issued <= f) => {
                Verdict::Stale { replay: true }
            }
            None if nc == 0 => rejected("nonce count 0"),
            None => {
                self.track(c.nonce.clone(), issued, nc);
                Verdict::Authenticated(c.username.clone())
            }
        }
    }

    fn track(&mut self, nonce: String, issued: u64, nc: u32) {
        while self.order.len() >= self.config.max_tracked_nonces.max(1) {
            let Some((old, old_issued)) = self.order.pop_front() else { break };
            self.counts.remove(&old);
            self.forgotten_up_to = Some(self.forgotten_up_to.unwrap_or(0).max(old_issued));
        }
        self.counts.insert(nonce.clone(), nc);
        self.order.push_back((nonce, issued));
    }

    /// Drops tracked nonces that have expired (they are answered as stale anyway).
    fn forget_expired(&mut self, now: Instant) {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let lifetime = self.config.nonce_lifetime.as_millis() as u64;
        while let Some((nonce, issued)) = self.order.front() {
            if now_ms.saturating_sub(*issued) <= lifetime {
                break;
            }
            self.counts.remove(nonce);
            self.order.pop_front();
        }
    }

    fn new_nonce(&mut self, now: Instant) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let mut body = [0u8; 12];
        body[..8].copy_from_slice(&issued.to_be_bytes());
        body[8..].copy_from_slice(&self.next_sequence.to_be_bytes());
        let tag = hmac::sign(&self.key, &body);
        let mut nonce = super::hex(&body);
        nonce.push_str(&super::hex(&tag.as_ref()[..MAC_BYTES]));
        nonce
    }

    /// The issue time of one of our nonces; `None` for anything else.
    fn nonce_issued(&self, nonce: &str) -> Option<u64> {
        let bytes = unhex(nonce)?;
        if bytes.len() != 12 + MAC_BYTES {
            return None;
        }
        let (body, mac) = bytes.split_at(12);
        let tag = hmac::sign(&self.key, body);
        let valid: bool = tag.as_ref()[..MAC_BYTES].ct_eq(mac).into();
        let issued: [u8; 8] = body[..8].try_into().ok()?;
        valid.then_some(u64::from_be_bytes(issued))
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
