use std::time::{Duration, Instant};

use super::*;

/// RFC 7616 §3.9.1.
const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

fn rfc_challenge(algorithm: &str) -> Challenge {
    Challenge::parse(&format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
         nonce=\"{RFC_NONCE}\", opaque=\"{RFC_OPAQUE}\""
    ))
    .unwrap()
}

fn rfc_answer(algorithm: &str) -> Credentials {
    let request = RequestLine { method: "GET", uri: "/dir/index.html" };
    Credentials::answer(
        &rfc_challenge(algorithm),
        "Mufasa",
        "Circle of Life",
        request,
        RFC_CNONCE,
        1,
    )
}

#[test]
fn rfc7616_md5_vector() {
    let c = rfc_answer("MD5");
    assert_eq!(c.response, "8ca523f5e9506fed4657c9700eebdbec");
    assert_eq!(c.opaque.as_deref(), Some(RFC_OPAQUE));
}

#[test]
fn rfc7616_sha256_vector() {
    assert_eq!(
        rfc_answer("SHA-256").response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

/// RFC 2617 §3.5 (no qop in RFC 2069 form is computed the same way as there, minus qop):
/// the classic qop=auth example, which RFC 8760's MD5 keeps.
#[test]
fn rfc2617_md5_vector() {
    let challenge = Challenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    let request = RequestLine { method: "GET", uri: "/dir/index.html" };
    let c = Credentials::answer(&challenge, "Mufasa", "Circle Of Life", request, "0a4f113b", 1);
    assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn credentials_round_trip_through_header_text() {
    let c = rfc_answer("SHA-256");
    let text = c.to_header_value();
    assert!(text.contains("nc=00000001"), "{text}");
    assert_eq!(Credentials::parse(&text).unwrap(), c);
}

#[test]
fn challenge_round_trip_and_quoted_pairs() {
    let challenge = Challenge {
        realm: "a \"quoted\" \\ realm".into(),
        nonce: "n,1".into(),
        opaque: Some("o".into()),
        algorithm: Algorithm::Sha256,
        qop_auth: true,
        stale: true,
    };
    assert_eq!(Challenge::parse(&challenge.to_header_value()).unwrap(), challenge);
}

#[test]
fn strongest_supported_challenge_is_chosen() {
    let values = [
        "Digest realm=\"r\", nonce=\"1\", algorithm=MD5, qop=\"auth\"",
        "Digest realm=\"r\", nonce=\"2\", algorithm=SHA-512-256, qop=\"auth\"",
        "Digest realm=\"r\", nonce=\"3\", algorithm=SHA-256, qop=\"auth\"",
    ];
    let chosen = Challenge::choose(values).unwrap();
    assert_eq!((chosen.algorithm, chosen.nonce.as_str()), (Algorithm::Sha256, "3"));
}

#[test]
fn malformed_values_are_errors_not_panics() {
    for bad in [
        "",
        "Basic abc",
        "Digest",
        "Digest realm=\"unclosed",
        "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
        "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth, nc=1, cnonce=\"c\"",
    ] {
        assert!(Challenge::parse(bad).is_err() || Credentials::parse(bad).is_err(), "{bad}");
        let _ = Credentials::parse(bad);
    }
    assert_eq!(Credentials::parse("Digest realm=\"r\""), Err(DigestError::Missing("username")));
}

// ----- the verifier ---------------------------------------------------------------------

const LIFETIME: Duration = Duration::from_secs(300);
const INVITE: RequestLine<'static> = RequestLine { method: "INVITE", uri: "sip:ivr@127.0.0.1" };

fn verifier(now: Instant, max_tracked: usize) -> Verifier {
    let config = VerifierConfig {
        realm: "ivr".into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        nonce_lifetime: LIFETIME,
        max_tracked_nonces: max_tracked,
    };
    let users = [AuthUser { name: "alice".into(), password: "secret".into() }];
    Verifier::new(now, config, &users, [7; 32], "decoy")
}

fn authorization(challenge: &Challenge, user: &str, password: &str, nc: u32) -> String {
    Credentials::answer(challenge, user, password, INVITE, "cn", nc).to_header_value()
}

#[test]
fn challenges_offer_sha256_then_md5_with_qop_auth() {
    let now = Instant::now();
    let challenges = verifier(now, 16).challenges(now, false);
    let algorithms: Vec<_> = challenges.iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5]);
    assert!(challenges.iter().all(|c| c.qop_auth && !c.stale && c.realm == "ivr"));
    assert_ne!(challenges[0].nonce, challenges[1].nonce);
}

#[test]
fn right_password_verifies_with_either_algorithm() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    for challenge in v.challenges(now, false) {
        let value = authorization(&challenge, "alice", "secret", 1);
        assert_eq!(v.verify(now, INVITE, [value.as_str()]), Verdict::Authenticated("alice".into()));
    }
}

#[test]
fn no_credentials_is_missing() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    assert_eq!(v.verify(now, INVITE, []), Verdict::Missing);
    let other_realm =
        "Digest username=\"a\", realm=\"elsewhere\", nonce=\"n\", uri=\"u\", response=\"r\"";
    assert_eq!(v.verify(now, INVITE, [other_realm]), Verdict::Missing);
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_verdict() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    let challenge = v.challenges(now, false).remove(0);
    let wrong = authorization(&challenge, "alice", "guess", 1);
    let unknown = authorization(&challenge, "mallory", "secret", 1);
    let reason = |verdict| match verdict {
        Verdict::Rejected { reason, .. } => reason,
        other => panic!("not rejected: {other:?}"),
    };
    assert_eq!(reason(v.verify(now, INVITE, [wrong.as_str()])), "credentials do not verify");
    assert_eq!(reason(v.verify(now, INVITE, [unknown.as_str()])), "credentials do not verify");
}

#[test]
fn expired_nonce_is_stale() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    let challenge = v.challenges(now, false).remove(0);
    let value = authorization(&challenge, "alice", "secret", 1);
    let later = now + LIFETIME + Duration::from_secs(1);
    assert_eq!(v.verify(later, INVITE, [value.as_str()]), Verdict::Stale { replay: false });
}

#[test]
fn replayed_nonce_count_is_refused_and_a_higher_one_accepted() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    let challenge = v.challenges(now, false).remove(0);
    let first = authorization(&challenge, "alice", "secret", 1);
    let ok = Verdict::Authenticated("alice".into());
    assert_eq!(v.verify(now, INVITE, [first.as_str()]), ok);
    assert_eq!(v.verify(now, INVITE, [first.as_str()]), Verdict::Stale { replay: true });
    let second = authorization(&challenge, "alice", "secret", 2);
    assert_eq!(v.verify(now, INVITE, [second.as_str()]), ok);
}

#[test]
fn an_evicted_nonce_cannot_be_replayed() {
    let now = Instant::now();
    let mut v = verifier(now, 2);
    let first = v.challenges(now, false).remove(0);
    let first_value = authorization(&first, "alice", "secret", 1);
    let ok = Verdict::Authenticated("alice".into());
    assert_eq!(v.verify(now, INVITE, [first_value.as_str()]), ok);
    for step in 1..=3 {
        let t = now + Duration::from_millis(step);
        let c = v.challenges(t, false).remove(0);
        assert_eq!(v.verify(t, INVITE, [authorization(&c, "alice", "secret", 1).as_str()]), ok);
    }
    let t = now + Duration::from_millis(10);
    assert_eq!(v.verify(t, INVITE, [first_value.as_str()]), Verdict::Stale { replay: true });
}

#[test]
fn forged_nonce_and_other_uri_are_rejected() {
    let now = Instant::now();
    let mut v = verifier(now, 16);
    let mut forged = v.challenges(now, false).remove(0);
    forged.nonce = "00".repeat(28);
    let value = authorization(&forged, "alice", "secret", 1);
    assert!(matches!(v.verify(now, INVITE, [value.as_str()]), Verdict::Rejected { .. }));
    let challenge = v.challenges(now, false).remove(0);
    let elsewhere = RequestLine { method: "INVITE", uri: "sip:other@127.0.0.1" };
    let value = Credentials::answer(&challenge, "alice", "secret", elsewhere, "c", 1);
    let verdict = v.verify(now, INVITE, [value.to_header_value().as_str()]);
    assert!(matches!(verdict, Verdict::Rejected { .. }), "{verdict:?}");
}

#[test]
fn debug_never_shows_a_password() {
    let user = AuthUser { name: "alice".into(), password: "hunter2-secret".into() };
    let now = Instant::now();
    let v = verifier(now, 4);
    let text = format!("{user:?} {v:?} {:?}", rfc_answer("MD5"));
    assert!(!text.contains("hunter2") && !text.contains("secret"), "{text}");
}
