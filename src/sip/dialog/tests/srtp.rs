//! SRTP with SDES in the dialog layer: answered only over TLS, our own key per call, kept
//! across a refresh, our own offers on SRTP, and no change of profile mid-call.

use std::time::Duration;

use super::harness::*;
use crate::config::SrtpPolicy;
use crate::sdp;
use crate::sip::dialog::{CallEvent, EndReason, UaAction, UaConfig};
use crate::sip::header_text as ht;
use crate::sip::message::Transport;
use crate::sip::transaction::{Peer, TransactionEvent};

const THEIR_KEY: &str = "ERERERERERERERERERERERERERERERERERERERER";

fn savp_offer() -> String {
    OFFER.replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\r\n")
}

fn tls() -> Peer {
    Peer { addr: "192.0.2.9:40000".parse().unwrap(), transport: Transport::Tls }
}

fn invite(b: &mut Bench, c: &Caller, source: Peer, id: &str, body: &str) -> Vec<UaAction> {
    b.event(TransactionEvent::Request {
        id: tid(id),
        request: c.make("INVITE", id, "", body),
        source,
    })
}

/// Our a=crypto line in an SDP body.
fn our_crypto(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    text.lines().find(|l| l.starts_with("a=crypto:")).unwrap_or_default().to_string()
}

fn answered(b: &mut Bench, c: &mut Caller) -> (crate::sip::dialog::CallHandle, rsip::Response) {
    answered_with(b, c, "")
}

/// An SRTP call over TLS, the INVITE carrying the `extra` headers.
fn answered_with(
    b: &mut Bench,
    c: &mut Caller,
    extra: &str,
) -> (crate::sip::dialog::CallHandle, rsip::Response) {
    let out = b.event(TransactionEvent::Request {
        id: tid("inv1"),
        request: c.make("INVITE", "inv1", extra, &savp_offer()),
        source: tls(),
    });
    let call = incoming(&out).expect("Incoming");
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    c.to_tag = ht::tag(&header(&ok.headers, "To").unwrap()).map(str::to_string);
    let out =
        b.event(TransactionEvent::Ack { request: c.make("ACK", "ack1", "", ""), source: tls() });
    let media = events(&out).into_iter().find_map(|e| match e {
        CallEvent::Established { media, .. } => Some(media),
        _ => None,
    });
    let keys = media.and_then(|m| m.srtp).expect("established with SRTP keys");
    assert_eq!(keys.receive.expose(), &[0x11; 30]);
    (call, ok)
}

#[test]
fn a_savp_offer_over_tls_is_answered_with_a_fresh_key_per_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("srtp-1");
    let (call, ok) = answered(&mut b, &mut c);
    let body = std::str::from_utf8(&ok.body).unwrap();
    assert!(body.contains("RTP/SAVP 0 101"), "{body}");
    let line = our_crypto(&ok.body);
    assert!(line.starts_with("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"), "{line}");
    assert!(!line.contains(THEIR_KEY), "{line}");
    b.ua.hangup(b.now, call).unwrap();
    // Another call: another key.
    let mut c2 = Caller::new("srtp-2");
    let (_, ok2) = answered(&mut b, &mut c2);
    assert_ne!(our_crypto(&ok2.body), line);
}

#[test]
fn a_refresh_keeps_our_key_and_the_profile_cannot_change_mid_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("srtp-3");
    let (_, ok) = answered(&mut b, &mut c);
    let ours = our_crypto(&ok.body);
    c.cseq += 1;
    let out = invite(&mut b, &c, tls(), "r1", &savp_offer());
    assert_eq!(our_crypto(&only_response(&out, 200).body), ours, "no rekey on a refresh");
    b.event(TransactionEvent::Ack { request: c.make("ACK", "ack2", "", ""), source: tls() });
    // A plain RTP re-offer would drop encryption: 488, and the call goes on.
    c.cseq += 1;
    assert_eq!(statuses(&invite(&mut b, &c, tls(), "r2", OFFER)), vec![488]);
    assert_eq!(b.ua.call_count(), 1);
}

/// An answer to one of our SRTP offers: `RTP/SAVP`, tag 7, the peer's key `key`.
fn savp_answer(key: &str) -> String {
    OFFER.replace("RTP/AVP 0 8 101", "RTP/SAVP 0 101")
        + &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n")
}

const THEIR_NEW_KEY: &str = "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV";

fn sdp_of(body: &[u8]) -> sdp::SessionDescription {
    sdp::parse(std::str::from_utf8(body).unwrap()).unwrap()
}

#[test]
fn a_reinvite_without_sdp_gets_our_savp_offer_and_the_ack_must_answer_it() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("srtp-4");
    let (_, ok) = answered(&mut b, &mut c);
    let ours = our_crypto(&ok.body);
    c.cseq += 1;
    let offer = only_response(&invite(&mut b, &c, tls(), "r1", ""), 200);
    assert!(sdp_of(&offer.body).media[0].is_srtp());
    assert_eq!(our_crypto(&offer.body), ours, "our tag, suite and key");
    // The ACK answers with tag 7 and a new key of theirs: we receive with it.
    let ack = c.make("ACK", "ack2", "Content-Type: application/sdp\n", &savp_answer(THEIR_NEW_KEY));
    let out = b.event(TransactionEvent::Ack { request: ack, source: tls() });
    let keys = events(&out)
        .into_iter()
        .find_map(|e| match e {
            CallEvent::MediaChanged { media, .. } => media.srtp,
            _ => None,
        })
        .expect("new SRTP keys");
    assert_eq!(keys.receive.expose(), &[0x55; 30]);
    assert_eq!(b.ua.call_count(), 1);
    // An answer in plain RTP cannot be taken: BYE.
    c.cseq += 1;
    only_response(&invite(&mut b, &c, tls(), "r2", ""), 200);
    let ack = c.make("ACK", "ack3", "Content-Type: application/sdp\n", OFFER);
    let out = b.event(TransactionEvent::Ack { request: ack, source: tls() });
    assert_eq!(sent(&out)[0].0.method, rsip::Method::Bye);
    assert_eq!(b.ua.call_count(), 0);
}

/// An SRTP call where we refresh the session by re-INVITE (the peer has no UPDATE).
fn refreshing(b: &mut Bench, c: &mut Caller) -> (rsip::Response, rsip::Request) {
    let extra = "Supported: timer\nSession-Expires: 120;refresher=uas\nAllow: INVITE, ACK, BYE\n";
    let (_, ok) = answered_with(b, c, extra);
    b.advance(Duration::from_secs(60));
    let [(refresh, _)] = sent(&b.drain()).try_into().unwrap();
    assert_eq!(refresh.method, rsip::Method::Invite);
    (ok, refresh)
}

#[test]
fn our_session_refresh_on_srtp_offers_savp_with_the_call_keys() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("srtp-5");
    let (ok, refresh) = refreshing(&mut b, &mut c);
    let offer = sdp_of(&refresh.body);
    assert!(offer.media[0].is_srtp(), "{}", String::from_utf8_lossy(&refresh.body));
    assert_eq!(our_crypto(&refresh.body), our_crypto(&ok.body));
    let version = |s: &sdp::SessionDescription| s.origin.as_ref().unwrap().version;
    assert_eq!(version(&offer), version(&sdp_of(&ok.body)), "the refresh changes nothing");
    let answer =
        response_to(&refresh, 200, "Content-Type: application/sdp\n", &savp_answer(THEIR_KEY));
    let out = b.event(TransactionEvent::Response { id: tid("c1"), response: answer });
    let [(ack, _)] = sent(&out).try_into().unwrap();
    assert_eq!(ack.method, rsip::Method::Ack);
    assert!(events(&out).is_empty(), "same media");
    assert_eq!(b.ua.call_count(), 1);
}

#[test]
fn a_plain_answer_to_our_srtp_refresh_ends_the_call() {
    let mut b = Bench::new(config());
    let mut c = Caller::new("srtp-6");
    let (_, refresh) = refreshing(&mut b, &mut c);
    let answer = response_to(&refresh, 200, "Content-Type: application/sdp\n", OFFER);
    let out = b.event(TransactionEvent::Response { id: tid("c1"), response: answer });
    let methods: Vec<_> = sent(&out).into_iter().map(|(r, _)| r.method).collect();
    assert_eq!(methods, vec![rsip::Method::Ack, rsip::Method::Bye]);
    assert!(matches!(
        events(&out).as_slice(),
        [CallEvent::Terminated { reason: EndReason::Error, .. }]
    ));
}

#[test]
fn savp_over_udp_and_the_policy_refuse_with_488() {
    // SAVP only, over UDP: the keys would travel in clear.
    let mut b = Bench::new(config());
    let c = Caller::new("srtp-udp");
    // (Each INVITE comes from its own call: the same one again would be a merged request.)
    assert_eq!(statuses(&invite(&mut b, &c, caller(), "i1", &savp_offer())), vec![488]);
    // SRTP off: SAVP is refused even over TLS.
    let mut b = Bench::new(UaConfig { srtp: SrtpPolicy::Off, ..config() });
    assert_eq!(
        statuses(&invite(&mut b, &Caller::new("srtp-i2"), tls(), "i2", &savp_offer())),
        vec![488]
    );
    // SRTP required: plain RTP over TLS, and an INVITE without SDP, are refused.
    let mut b = Bench::new(UaConfig { srtp: SrtpPolicy::Required, ..config() });
    assert_eq!(statuses(&invite(&mut b, &Caller::new("srtp-i3"), tls(), "i3", OFFER)), vec![488]);
    assert_eq!(statuses(&invite(&mut b, &Caller::new("srtp-i4"), tls(), "i4", "")), vec![488]);
    let out = invite(&mut b, &Caller::new("srtp-i5"), tls(), "i5", &savp_offer());
    assert!(incoming(&out).is_some(), "{out:?}");
    // The answer reads as SRTP.
    let call = incoming(&out).unwrap();
    b.ua.accept(b.now, call, rtp()).unwrap();
    let ok = only_response(&b.drain(), 200);
    let parsed = sdp::parse(std::str::from_utf8(&ok.body).unwrap()).unwrap();
    assert!(parsed.media[0].is_srtp());
}
