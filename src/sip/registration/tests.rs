use std::time::{Duration, Instant};

use super::*;
use crate::sip::digest::{Algorithm, RequestLine, Verdict, Verifier, VerifierConfig};

fn settings() -> RegistrationSettings {
    RegistrationSettings {
        name: "trunk".into(),
        registrar: "sip:127.0.0.1:5070".into(),
        user: "ivr".into(),
        auth_user: "ivr-auth".into(),
        password: Secret::new("trunk-secret"),
        expires: 120,
        transport: Transport::Udp,
        local_host: "127.0.0.1".into(),
        local_port: 5080,
        user_agent: "zendesk-ivr/test".into(),
        backoff_min: Duration::from_secs(2),
        backoff_max: Duration::from_secs(60),
    }
}

fn header(request: &rsip::Request, name: &str) -> Option<String> {
    ht::first(&request.headers, name, None)
}

/// A response to `request` with `status` and extra header lines.
fn answer(request: &rsip::Request, status: u16, extra: &[(&str, String)]) -> rsip::Response {
    let extra = extra.iter().map(|(n, v)| crate::sip::response::other(n, v.clone())).collect();
    crate::sip::response::build(request, status, Some("reg"), extra, Vec::new(), "registrar")
}

/// A registrar that challenges with digest and checks the answer with our verifier.
struct Registrar {
    verifier: Verifier,
}

impl Registrar {
    fn new(now: Instant, algorithms: Vec<Algorithm>) -> Registrar {
        let config = VerifierConfig {
            realm: "trunk.example".into(),
            algorithms,
            nonce_lifetime: Duration::from_secs(3600),
            max_tracked_nonces: 64,
        };
        let users = [crate::sip::digest::AuthUser {
            name: "ivr-auth".into(),
            password: "trunk-secret".into(),
        }];
        Registrar { verifier: Verifier::new(now, config, &users, [1; 32], "decoy") }
    }

    fn handle(&mut self, now: Instant, request: &rsip::Request, granted: u32) -> rsip::Response {
        let values = ht::values(&request.headers, "Authorization", None);
        let uri = request.uri.to_string();
        let line = RequestLine { method: "REGISTER", uri: &uri };
        match self.verifier.verify(now, line, values.iter().map(String::as_str)) {
            Verdict::Authenticated(_) => answer(request, 200, &[("Expires", granted.to_string())]),
            verdict => {
                let stale = matches!(verdict, Verdict::Stale { .. });
                let challenges: Vec<(&str, String)> = self
                    .verifier
                    .challenges(now, stale)
                    .iter()
                    .map(|c| ("WWW-Authenticate", c.to_header_value()))
                    .collect();
                answer(request, 401, &challenges)
            }
        }
    }
}

#[test]
fn registers_through_a_sha256_challenge_and_refreshes_before_expiry() {
    let start = Instant::now();
    let mut registrar = Registrar::new(start, vec![Algorithm::Sha256, Algorithm::Md5]);
    let mut reg = Registration::new(start, settings(), 7);
    let first = reg.poll_request().expect("REGISTER at once");
    assert_eq!(header(&first, "Expires").as_deref(), Some("120"));
    assert!(header(&first, "Authorization").is_none());
    reg.handle_response(start, &registrar.handle(start, &first, 120));
    assert_eq!(reg.state(), RegistrationState::Registering);
    let second = reg.poll_request().expect("REGISTER with credentials");
    let auth = header(&second, "Authorization").unwrap();
    assert!(auth.contains("algorithm=SHA-256") && auth.contains("username=\"ivr-auth\""), "{auth}");
    assert_eq!(header(&second, "Call-ID"), header(&first, "Call-ID"));
    assert!(header(&second, "CSeq").unwrap().starts_with("2 "));
    reg.handle_response(start, &registrar.handle(start, &second, 120));
    let expires = start + Duration::from_secs(120);
    assert_eq!(reg.state(), RegistrationState::Registered { expires });
    let refresh_at = reg.poll_timeout().unwrap();
    assert_eq!(refresh_at, start + Duration::from_secs(90));
    reg.handle_timeout(refresh_at - Duration::from_millis(1));
    assert!(reg.poll_request().is_none(), "nothing before the refresh time");
    reg.handle_timeout(refresh_at);
    let refresh = reg.poll_request().expect("refresh");
    assert!(header(&refresh, "Authorization").unwrap().contains("nc=00000002"));
    reg.handle_response(refresh_at, &registrar.handle(refresh_at, &refresh, 120));
    assert!(reg.state().is_up());
}

#[test]
fn md5_only_registrar_gets_md5() {
    let now = Instant::now();
    let mut registrar = Registrar::new(now, vec![Algorithm::Md5]);
    let mut reg = Registration::new(now, settings(), 1);
    let first = reg.poll_request().unwrap();
    reg.handle_response(now, &registrar.handle(now, &first, 60));
    let second = reg.poll_request().unwrap();
    assert!(header(&second, "Authorization").unwrap().contains("algorithm=MD5"));
    reg.handle_response(now, &registrar.handle(now, &second, 60));
    assert!(reg.state().is_up());
}

#[test]
fn wrong_password_backs_off_exponentially_with_a_cap() {
    let now = Instant::now();
    let mut registrar = Registrar::new(now, vec![Algorithm::Sha256]);
    let mut s = settings();
    s.password = Secret::new("wrong");
    let mut reg = Registration::new(now, s, 3);
    let mut t = now;
    let mut delays = Vec::new();
    for _ in 0..8 {
        // Each attempt answers up to two challenges, then gives up until the retry.
        while let Some(request) = reg.poll_request() {
            reg.handle_response(t, &registrar.handle(t, &request, 60));
        }
        let RegistrationState::Failed { retry_at } = reg.state() else {
            panic!("not failed: {:?}", reg.state());
        };
        delays.push((retry_at - t).as_secs());
        t = retry_at;
        reg.handle_timeout(t);
    }
    // 2, 4, 8, 16, 32, then capped at 60 (plus under 10 % jitter).
    let floors = [2, 4, 8, 16, 32, 60, 60, 60];
    for (delay, floor) in delays.iter().zip(floors) {
        assert!(*delay >= floor && *delay <= floor + floor / 10, "{delays:?}");
    }
}

#[test]
fn a_timeout_backs_off_and_a_success_resets_it() {
    let now = Instant::now();
    let mut reg = Registration::new(now, settings(), 5);
    let _ = reg.poll_request().unwrap();
    reg.handle_failure(now, "timeout");
    let retry_at = reg.poll_timeout().unwrap();
    assert!(retry_at >= now + Duration::from_secs(2));
    reg.handle_timeout(retry_at);
    let retry = reg.poll_request().expect("retry");
    reg.handle_response(retry_at, &answer(&retry, 200, &[("Expires", "60".into())]));
    assert!(reg.state().is_up());
    assert_eq!(reg.last_error(), None);
}

#[test]
fn interval_too_brief_follows_min_expires() {
    let now = Instant::now();
    let mut reg = Registration::new(now, settings(), 9);
    let first = reg.poll_request().unwrap();
    reg.handle_response(now, &answer(&first, 423, &[("Min-Expires", "600".into())]));
    let second = reg.poll_request().expect("REGISTER again");
    assert_eq!(header(&second, "Expires").as_deref(), Some("600"));
    // The granted interval in our Contact wins over the Expires header.
    let contact = format!("<{}>;expires=500", reg.contact_uri());
    let ok = answer(&second, 200, &[("Contact", contact), ("Expires", "600".into())]);
    reg.handle_response(now, &ok);
    assert_eq!(
        reg.state(),
        RegistrationState::Registered { expires: now + Duration::from_secs(500) }
    );
}

#[test]
fn unregister_sends_expires_zero_with_credentials_and_ends() {
    let now = Instant::now();
    let mut registrar = Registrar::new(now, vec![Algorithm::Sha256]);
    let mut reg = Registration::new(now, settings(), 11);
    while let Some(request) = reg.poll_request() {
        reg.handle_response(now, &registrar.handle(now, &request, 60));
    }
    assert!(reg.state().is_up());
    reg.unregister(now);
    assert_eq!(reg.state(), RegistrationState::Unregistering);
    let bye = reg.poll_request().expect("un-REGISTER");
    assert_eq!(header(&bye, "Expires").as_deref(), Some("0"));
    assert!(header(&bye, "Authorization").is_some());
    assert!(!reg.is_finished());
    reg.handle_response(now, &registrar.handle(now, &bye, 0));
    assert!(reg.is_finished());
    assert_eq!(reg.poll_timeout(), None);
}

#[test]
fn stale_or_foreign_responses_are_ignored() {
    let now = Instant::now();
    let mut reg = Registration::new(now, settings(), 13);
    let first = reg.poll_request().unwrap();
    let mut other = answer(&first, 200, &[]);
    other.headers.retain(|h| !matches!(h, rsip::Header::CSeq(_)));
    other.headers.push(rsip::Header::CSeq(rsip::headers::CSeq::from("99 REGISTER")));
    reg.handle_response(now, &other);
    reg.handle_response(now, &answer(&first, 100, &[]));
    assert_eq!(reg.state(), RegistrationState::Registering);
}

#[test]
fn debug_does_not_show_the_password() {
    let reg = Registration::new(Instant::now(), settings(), 1);
    let text = format!("{reg:?} {:?}", settings());
    assert!(!text.contains("trunk-secret"), "{text}");
}

#[test]
fn a_proxy_challenge_is_answered_with_proxy_authorization() {
    let now = Instant::now();
    let mut reg = Registration::new(now, settings(), 17);
    let first = reg.poll_request().unwrap();
    let challenge = "Digest realm=\"proxy\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"";
    reg.handle_response(now, &answer(&first, 407, &[("Proxy-Authenticate", challenge.into())]));
    let second = reg.poll_request().expect("REGISTER with proxy credentials");
    assert!(header(&second, "Authorization").is_none());
    let credentials = header(&second, "Proxy-Authorization").unwrap();
    assert!(credentials.contains("realm=\"proxy\"") && credentials.contains("algorithm=MD5"));
}

#[test]
fn a_challenge_we_cannot_answer_is_a_failure() {
    let now = Instant::now();
    let mut reg = Registration::new(now, settings(), 19);
    let first = reg.poll_request().unwrap();
    let challenge = "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256, qop=\"auth\"";
    reg.handle_response(now, &answer(&first, 401, &[("WWW-Authenticate", challenge.into())]));
    assert!(matches!(reg.state(), RegistrationState::Failed { .. }), "{:?}", reg.state());
    assert!(reg.poll_request().is_none());
}
