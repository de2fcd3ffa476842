//! SRTP with SDES in the dialog layer: answered only over TLS, our own key per call, kept
//! across a refresh, and no change of profile mid-call.

use super::harness::*;
use crate::config::SrtpPolicy;
use crate::sdp;
use crate::sip::dialog::{CallEvent, UaAction, UaConfig};
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
    let call = incoming(&invite(b, c, tls(), "inv1", &savp_offer())).expect("Incoming");
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
    // A re-INVITE without SDP would need our offer, which is plain: 488 too.
    c.cseq += 1;
    assert_eq!(statuses(&invite(&mut b, &c, tls(), "r3", "")), vec![488]);
    assert_eq!(b.ua.call_count(), 1);
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
