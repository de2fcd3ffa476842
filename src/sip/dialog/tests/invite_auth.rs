//! Digest authentication of new INVITEs (`Ua::set_invite_auth`).

use std::time::Duration;

use super::harness::*;
use crate::sip::dialog::{CallEvent, EndReason, InviteAuth, UaAction};
use crate::sip::digest::{
    Algorithm, AuthUser, Challenge, Credentials, RequestLine, Verifier, VerifierConfig,
};

const URI: &str = "sip:ivr@192.0.2.1:5060";

fn bench(exempt: &[&str]) -> Bench {
    let mut b = Bench::new(config());
    let config = VerifierConfig {
        realm: "ivr.test".into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        nonce_lifetime: Duration::from_secs(300),
        max_tracked_nonces: 64,
    };
    let users = [AuthUser { name: "alice".into(), password: "secret".into() }];
    let verifier = Verifier::new(b.now, config, &users, [3; 32], "decoy");
    let exempt = exempt.iter().map(|n| n.parse().unwrap()).collect();
    b.ua.set_invite_auth(InviteAuth { verifier, exempt });
    b
}

fn challenges(response: &rsip::Response) -> Vec<Challenge> {
    headers_all(&response.headers, "WWW-Authenticate")
        .iter()
        .map(|v| Challenge::parse(v).unwrap())
        .collect()
}

fn authorization(challenge: &Challenge, user: &str, password: &str, nc: u32) -> String {
    let line = RequestLine { method: "INVITE", uri: URI };
    let credentials = Credentials::answer(challenge, user, password, line, "c0ffee", nc);
    format!("Authorization: {}\n", credentials.to_header_value())
}

/// INVITE without credentials: the 401's challenges.
fn first_challenge(b: &mut Bench, who: &Caller) -> Vec<Challenge> {
    let out = b.send("inv0", who.make("INVITE", "inv0", "", OFFER));
    assert!(incoming(&out).is_none());
    challenges(&only_response(&out, 401))
}

#[test]
fn an_invite_without_credentials_gets_sha256_and_md5_challenges() {
    let mut b = bench(&[]);
    let offered = first_challenge(&mut b, &Caller::new("a1"));
    let algorithms: Vec<_> = offered.iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5]);
    assert!(offered.iter().all(|c| c.qop_auth && c.realm == "ivr.test" && !c.stale));
}

#[test]
fn right_credentials_make_a_call_whose_bye_is_not_challenged() {
    let mut b = bench(&[]);
    let mut who = Caller::new("a2");
    let offered = first_challenge(&mut b, &who);
    who.cseq = 2;
    let (call, _) = b.establish(&mut who, &authorization(&offered[0], "alice", "secret", 1));
    who.cseq = 3;
    let out = b.send("bye1", who.make("BYE", "bye1", "", ""));
    assert_eq!(statuses(&out), [200]);
    assert!(out.iter().any(|a| matches!(
        a,
        UaAction::Event(CallEvent::Terminated { call: c, reason: EndReason::RemoteBye }) if *c == call
    )));
}

/// The 401's headers in order, without the nonces and the headers that echo the request
/// (Via, CSeq) or carry a fresh tag (To).
fn shape(out: &[UaAction]) -> Vec<String> {
    let response = only_response(out, 401);
    response
        .headers
        .iter()
        .map(|h| h.to_string())
        .filter(|h| !["To:", "Via:", "CSeq:"].iter().any(|n| h.starts_with(n)))
        .map(|h| match h.find("nonce=\"") {
            Some(i) => format!("{}{}", &h[..i + 7], &h[i + 7 + 56..]),
            None => h,
        })
        .collect()
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let mut b = bench(&[]);
    let mut who = Caller::new("a3");
    let offered = first_challenge(&mut b, &who);
    who.cseq = 2;
    let wrong =
        b.send("w", who.make("INVITE", "w", &authorization(&offered[0], "alice", "x", 1), OFFER));
    who.cseq = 3;
    let unknown = b
        .send("u", who.make("INVITE", "u", &authorization(&offered[1], "bob", "secret", 1), OFFER));
    assert!(incoming(&wrong).is_none() && incoming(&unknown).is_none());
    let (wrong, unknown) = (shape(&wrong), shape(&unknown));
    assert_eq!(wrong, unknown);
    assert!(wrong.iter().any(|h| h.starts_with("WWW-Authenticate:")), "{wrong:?}");
}

#[test]
fn replayed_credentials_get_a_stale_challenge() {
    let mut b = bench(&[]);
    let mut who = Caller::new("a4");
    let offered = first_challenge(&mut b, &who);
    let credentials = authorization(&offered[0], "alice", "secret", 1);
    who.cseq = 2;
    let out = b.send("ok", who.make("INVITE", "ok", &credentials, OFFER));
    assert!(incoming(&out).is_some());
    let mut again = Caller::new("a5");
    again.cseq = 2;
    let out = b.send("replay", again.make("INVITE", "replay", &credentials, OFFER));
    assert!(incoming(&out).is_none());
    assert!(challenges(&only_response(&out, 401)).iter().all(|c| c.stale));
}

#[test]
fn an_exempt_source_is_not_challenged() {
    let mut b = bench(&["192.0.2.0/24"]);
    let out = b.send("inv", Caller::new("a6").make("INVITE", "inv", "", OFFER));
    assert!(incoming(&out).is_some(), "{out:?}");
}
