//! One registration to a trunk or registrar (RFC 3261 §10; sans-IO).
//!
//! [`Registration`] sends REGISTER, answers 401/407 digest challenges (MD5 and SHA-256,
//! `qop=auth`), follows 423 Min-Expires, refreshes before the binding expires, retries
//! with capped exponential backoff after a failure, and un-registers (`Expires: 0`) when
//! asked. It takes `now` and responses, and hands back requests to send
//! ([`Registration::poll_request`]) and its next deadline ([`Registration::poll_timeout`]).
//! The runtime opens a client transaction for each request and reports the final
//! response, or a failure (timeout, transport error), back.

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::secret::Secret;
use crate::sip::digest::{Challenge, Credentials, RequestLine};
use crate::sip::header_text as ht;
use crate::sip::message::{self, Limits, Transport};

/// Longest interval accepted from a 423's Min-Expires.
const MAX_EXPIRES: u32 = 86_400;
/// Challenges answered within one attempt before it counts as failed (one for a nonce we
/// reused that went stale, one for the fresh challenge).
const MAX_CHALLENGES_PER_ATTEMPT: u8 = 2;

/// What one registration needs to know.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    pub name: String,
    /// The registrar's URI (the Request-URI).
    pub registrar: String,
    /// The address of record's user part.
    pub user: String,
    pub auth_user: String,
    pub password: Secret,
    pub expires: u32,
    pub transport: Transport,
    /// Our address as written in Via and Contact.
    pub local_host: String,
    pub local_port: u16,
    pub user_agent: String,
    /// First retry delay after a failure; it doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// A REGISTER is out (first one, or a retry).
    Registering,
    /// Bound until `expires`; a refresh goes out before then.
    Registered { expires: Instant },
    /// The last attempt failed; the next goes out at `retry_at`.
    Failed { retry_at: Instant },
    /// The un-REGISTER is out.
    Unregistering,
    /// Not registered, and not trying (after un-registering).
    Unregistered,
}

impl RegistrationState {
    pub fn is_up(self) -> bool {
        matches!(self, RegistrationState::Registered { .. })
    }
}

/// A cheap copy of a registration's state, for the status page and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSnapshot {
    pub name: String,
    pub registrar: String,
    pub state: RegistrationState,
}

/// One registration's state machine.
pub struct Registration {
    settings: RegistrationSettings,
    state: RegistrationState,
    rng: StdRng,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The CSeq of the REGISTER awaiting its final response.
    pending: Option<u32>,
    /// Interval asked for (raised by 423).
    expires: u32,
    /// The last challenge, reused on later REGISTERs with a rising nonce count; whether it
    /// came in a 407 (Proxy-Authorization) rather than a 401.
    challenge: Option<(Challenge, bool)>,
    nc: u32,
    challenges_this_attempt: u8,
    failures: u32,
    /// When the next REGISTER (refresh or retry) is due.
    next_at: Option<Instant>,
    outgoing: Option<rsip::Request>,
    /// Why the last attempt failed, for logs.
    last_error: Option<String>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.settings.name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// A registration whose first REGISTER goes out at once. `seed` drives the Call-ID,
    /// tags, branches and cnonces.
    pub fn new(now: Instant, settings: RegistrationSettings, seed: u64) -> Registration {
        let mut rng = StdRng::seed_from_u64(seed);
        let call_id = format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>());
        let from_tag = format!("{:016x}", rng.random::<u64>());
        let expires = settings.expires;
        let mut registration = Registration {
            settings,
            state: RegistrationState::Registering,
            rng,
            call_id,
            from_tag,
            cseq: 0,
            pending: None,
            expires,
            challenge: None,
            nc: 0,
            challenges_this_attempt: 0,
            failures: 0,
            next_at: None,
            outgoing: None,
            last_error: None,
        };
        registration.send(now, expires);
        registration
    }

    pub fn state(&self) -> RegistrationState {
        self.state
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn snapshot(&self) -> RegistrationSnapshot {
        RegistrationSnapshot {
            name: self.settings.name.clone(),
            registrar: self.settings.registrar.clone(),
            state: self.state,
        }
    }

    /// The next REGISTER to send, if any.
    pub fn poll_request(&mut self) -> Option<rsip::Request> {
        self.outgoing.take()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.pending.is_some() { None } else { self.next_at }
    }

    /// Sends the refresh or retry that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending.is_some() || self.next_at.is_none_or(|at| at > now) {
            return;
        }
        self.next_at = None;
        self.challenges_this_attempt = 0;
        if let RegistrationState::Failed { .. } = self.state {
            self.state = RegistrationState::Registering;
        }
        self.send(now, self.expires);
    }

    /// Un-registers: `Expires: 0` when a binding may exist, else stops at once.
    pub fn unregister(&mut self, now: Instant) {
        self.next_at = None;
        match self.state {
            RegistrationState::Unregistering | RegistrationState::Unregistered => {}
            RegistrationState::Failed { .. } => self.state = RegistrationState::Unregistered,
            RegistrationState::Registered { .. } | RegistrationState::Registering => {
                self.state = RegistrationState::Unregistering;
                self.challenges_this_attempt = 0;
                self.send(now, 0);
            }
        }
    }

    /// Whether nothing more will be sent (un-registered).
    pub fn is_finished(&self) -> bool {
        self.state == RegistrationState::Unregistered && self.pending.is_none()
    }

    /// The REGISTER could not be sent, or its transaction timed out.
    pub fn handle_failure(&mut self, now: Instant, reason: &str) {
        if self.pending.take().is_none() {
            return;
        }
        self.fail(now, reason.to_string());
    }

    /// A response to one of our REGISTERs (provisional ones and stale CSeqs are ignored).
    pub fn handle_response(&mut self, now: Instant, response: &rsip::Response) {
        let status = response.status_code.code();
        let cseq = ht::first(&response.headers, "CSeq", None)
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
        if status < 200 || cseq.is_none() || cseq != self.pending {
            return;
        }
        self.pending = None;
        let unregistering = self.state == RegistrationState::Unregistering;
        let expires_asked = if unregistering { 0 } else { self.expires };
        match status {
            200..=299 if unregistering => self.state = RegistrationState::Unregistered,
            200..=299 => self.registered(now, response),
            401 | 407 => self.challenged(now, response, status == 407, expires_asked),
            423 if !unregistering => {
                let min = ht::first(&response.headers, "Min-Expires", None)
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > self.expires && min <= MAX_EXPIRES => {
                        self.expires = min;
                        self.send(now, min);
                    }
                    _ => self.fail(now, "423 without a usable Min-Expires".into()),
                }
            }
            _ if unregistering => {
                self.last_error = Some(format!("un-REGISTER answered {status}"));
                self.state = RegistrationState::Unregistered;
            }
            _ => self.fail(now, format!("registrar answered {status}")),
        }
    }

    fn registered(&mut self, now: Instant, response: &rsip::Response) {
        let granted = granted_expires(response, &self.contact_uri()).unwrap_or(self.expires);
        if granted == 0 {
            self.fail(now, "registrar granted no binding".into());
            return;
        }
        let granted = Duration::from_secs(u64::from(granted));
        self.failures = 0;
        self.last_error = None;
        self.state = RegistrationState::Registered { expires: now + granted };
        // Refresh half-way for short intervals, 30 s early for long ones.
        self.next_at = Some(now + granted - (granted / 2).min(Duration::from_secs(30)));
    }

    fn challenged(&mut self, now: Instant, response: &rsip::Response, proxy: bool, expires: u32) {
        let name = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        let values = ht::values(&response.headers, name, None);
        let challenge = Challenge::choose(values.iter().map(String::as_str));
        self.challenges_this_attempt += 1;
        match challenge {
            Some(c) if self.challenges_this_attempt <= MAX_CHALLENGES_PER_ATTEMPT => {
                self.challenge = Some((c, proxy));
                self.nc = 0;
                self.send(now, expires);
            }
            Some(_) => {
                self.challenge = None;
                self.fail_or_stop(now, "credentials refused".into());
            }
            None => self.fail_or_stop(now, "no digest challenge we support".into()),
        }
    }

    fn fail_or_stop(&mut self, now: Instant, reason: String) {
        if self.state == RegistrationState::Unregistering {
            self.state = RegistrationState::Unregistered;
        } else {
            self.fail(now, reason);
        }
    }

    fn fail(&mut self, now: Instant, reason: String) {
        if self.state == RegistrationState::Unregistering {
            self.state = RegistrationState::Unregistered;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(&self.settings, self.failures, self.rng.random_range(0.0..0.1));
        self.state = RegistrationState::Failed { retry_at: now + delay };
        self.next_at = Some(now + delay);
        self.last_error = Some(reason);
    }

    /// Our host as written in Via and a URI (an IPv6 address in brackets).
    fn host_text(&self) -> String {
        let host = &self.settings.local_host;
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        }
    }

    fn contact_uri(&self) -> String {
        let s = &self.settings;
        let host = self.host_text();
        let transport = if s.transport == Transport::Tcp { ";transport=tcp" } else { "" };
        format!("sip:{}@{host}:{}{transport}", ht::escape_uri(&s.user), s.local_port)
    }

    /// Builds the next REGISTER asking for `expires` seconds.
    fn send(&mut self, now: Instant, expires: u32) {
        self.cseq += 1;
        self.pending = Some(self.cseq);
        let s = &self.settings;
        let branch = format!("z9hG4bK{:016x}", self.rng.random::<u64>());
        let aor = match ht::host_port(&s.registrar) {
            Some((host, _)) => format!("sip:{}@{host}", ht::escape_uri(&s.user)),
            None => s.registrar.clone(),
        };
        let contact = self.contact_uri();
        let mut text = format!(
            "REGISTER {registrar} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {host}:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{aor}>;tag={tag}\r\n\
             To: <{aor}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <{contact}>\r\n\
             Expires: {expires}\r\n\
             User-Agent: {agent}\r\n",
            registrar = s.registrar,
            transport = s.transport,
            host = self.host_text(),
            port = s.local_port,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            agent = s.user_agent,
        );
        if let Some((challenge, proxy)) = &self.challenge {
            self.nc += 1;
            let cnonce = format!("{:016x}", self.rng.random::<u64>());
            let line = RequestLine { method: "REGISTER", uri: &s.registrar };
            let credentials = Credentials::answer(
                challenge,
                &s.auth_user,
                s.password.expose(),
                line,
                &cnonce,
                self.nc,
            );
            let name = if *proxy { "Proxy-Authorization" } else { "Authorization" };
            text.push_str(&format!("{name}: {}\r\n", credentials.to_header_value()));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match message::parse(text.as_bytes(), &Limits::default()) {
            Ok(rsip::SipMessage::Request(request)) => self.outgoing = Some(request),
            Ok(_) | Err(_) => {
                self.pending = None;
                let reason = "could not build REGISTER (check registrar and user)".to_string();
                if self.state == RegistrationState::Unregistering {
                    self.state = RegistrationState::Unregistered;
                } else {
                    // A settings problem: retrying soon will not help, but keep trying.
                    self.fail(now, reason);
                }
            }
        }
    }
}

/// The retry delay after `failures` failures in a row: `backoff_min · 2^(failures-1)`,
/// capped at `backoff_max`, plus `jitter` (a fraction) of it.
fn backoff(s: &RegistrationSettings, failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let base = s.backoff_min.saturating_mul(1 << doublings).min(s.backoff_max);
    base + base.mul_f64(jitter)
}

/// The interval the registrar granted: our Contact's `expires` parameter in the 200, else
/// its Expires header.
fn granted_expires(response: &rsip::Response, contact_uri: &str) -> Option<u32> {
    let ours =
        ht::list_entries(&response.headers, "Contact", Some("m")).into_iter().find_map(|c| {
            let same = ht::uri_part(&c).eq_ignore_ascii_case(contact_uri);
            same.then(|| ht::header_param(&c, "expires").and_then(|v| v.trim().parse().ok()))
        });
    ours.flatten().or_else(|| {
        ht::first(&response.headers, "Expires", None).and_then(|v| v.trim().parse().ok())
    })
}
