//! SDES (`a=crypto`, RFC 4568) in offer/answer: which stream and line are taken, our own
//! key in the answer, and the `media.srtp` policy with the TLS rule.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::config::CodecName::Pcmu;
use crate::srtp::{MASTER_LEN, Suite};

const THEIR_KEY: [u8; MASTER_LEN] = [0x11; MASTER_LEN];
const OUR_KEY: [u8; MASTER_LEN] = [0x22; MASTER_LEN];

fn b64(key: &[u8]) -> String {
    STANDARD.encode(key)
}

fn offer_with(m_lines: &str) -> SessionDescription {
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m_lines}"
    );
    parse(&text).unwrap()
}

fn savp(port: u16, crypto: &str) -> String {
    format!(
        "m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n{crypto}"
    )
}

fn avp(port: u16) -> String {
    format!("m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

fn line(tag: u32, suite: &str) -> String {
    format!("a=crypto:{tag} {suite} inline:{}\r\n", b64(&THEIR_KEY))
}

fn rules(policy: SrtpPolicy, tls: bool) -> SrtpAnswer<'static> {
    SrtpAnswer { policy, secure_signalling: tls, current: None, fresh_key: MasterKey::new(OUR_KEY) }
}

fn local() -> SocketAddr {
    "192.0.2.50:30000".parse().unwrap()
}

fn run(
    offer: &SessionDescription,
    srtp: &SrtpAnswer<'_>,
) -> Result<(String, Negotiated), SdpError> {
    answer(offer, &[Pcmu], local(), &mut LocalSession::new(7), srtp)
}

#[test]
fn crypto_lines_are_read_with_bounds() {
    let key = b64(&THEIR_KEY);
    let ok = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}")).unwrap();
    assert_eq!((ok.tag, ok.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_eq!(ok.key.expose(), &THEIR_KEY);
    let with_lifetime = parse_crypto(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{key}|2^31"));
    assert_eq!(with_lifetime.map(|l| l.suite), Some(Suite::AesCm128HmacSha1_32));
    for bad in [
        format!("1 AES_CM_256_HMAC_SHA1_80 inline:{key}"), // a suite we lack
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"), // MKI
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} KDR=1"), // session parameter
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key};inline:{key}"), // two keys
        format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{key}"), // tag of 10 digits
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", b64(&[1; 29])), // short key
        "1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!".to_string(),
        "1 AES_CM_128_HMAC_SHA1_80 key:abc".to_string(),
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^99"),
    ] {
        assert!(parse_crypto(&bad).is_none(), "{bad}");
    }
    // Too many lines in one m= section is an error, not a long loop.
    let many: String = (1..=9).map(|t| line(t, "AES_CM_128_HMAC_SHA1_80")).collect();
    let text = format!("v=0\r\nc=IN IP4 127.0.0.1\r\n{}", savp(4000, &many));
    assert_eq!(parse(&text), Err(SdpError::TooLarge("crypto attributes")));
}

#[test]
fn a_savp_offer_over_tls_is_answered_with_our_own_key_and_their_tag() {
    let crypto = format!(
        "a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:{}\r\n{}{}",
        b64(&[5; 46]),
        line(2, "AES_CM_128_HMAC_SHA1_32"),
        line(3, "AES_CM_128_HMAC_SHA1_80")
    );
    let offer = offer_with(&savp(4000, &crypto));
    let (text, neg) = run(&offer, &rules(SrtpPolicy::Optional, true)).unwrap();
    assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{text}");
    // The first line with a suite we have: tag 2, the 32-bit suite.
    let ours = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n", b64(&OUR_KEY));
    assert!(text.contains(&ours), "{text}");
    assert_eq!(text.matches("a=crypto:").count(), 1, "{text}");
    assert!(!text.contains(&b64(&THEIR_KEY)), "their key is not echoed");
    let keys = neg.srtp.clone().unwrap();
    assert_eq!(keys.suite, Suite::AesCm128HmacSha1_32);
    assert_eq!(keys.send.expose(), &OUR_KEY);
    assert_eq!(keys.receive.expose(), &THEIR_KEY);
    // Keys never reach Debug text (logs).
    let debug = format!("{neg:?}");
    assert!(!debug.contains(&b64(&OUR_KEY)) && !debug.contains("34, 34"), "{debug}");
    // Our answer reads back, with our line.
    let back = parse(&text).unwrap();
    assert_eq!(back.media[0].crypto[0].key.expose(), &OUR_KEY);
}

#[test]
fn savp_is_preferred_to_avp_when_both_are_offered_over_tls() {
    let offer =
        offer_with(&format!("{}{}", avp(4000), savp(4002, &line(1, "AES_CM_128_HMAC_SHA1_80"))));
    let (text, neg) = run(&offer, &rules(SrtpPolicy::Optional, true)).unwrap();
    assert!(neg.srtp.is_some());
    assert!(text.contains("m=audio 0 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("m=audio 30000 RTP/SAVP"), "{text}");
    // Over UDP the keys would be in clear: the plain stream is taken instead.
    let (text, neg) = run(&offer, &rules(SrtpPolicy::Optional, false)).unwrap();
    assert!(neg.srtp.is_none());
    assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("m=audio 0 RTP/SAVP"), "{text}");
    assert!(!text.contains("a=crypto"), "{text}");
}

#[test]
fn the_policy_and_the_tls_rule_refuse_with_an_srtp_error() {
    let secure = offer_with(&savp(4000, &line(1, "AES_CM_128_HMAC_SHA1_80")));
    let plain = offer_with(&avp(4000));
    let no_crypto = offer_with(&savp(4000, ""));
    let unusable = offer_with(&savp(4000, "a=crypto:1 F8_128_HMAC_SHA1_80 inline:abcd\r\n"));
    let refused = |offer: &SessionDescription, policy, tls| {
        matches!(run(offer, &rules(policy, tls)), Err(SdpError::Srtp(_)))
    };
    assert!(refused(&secure, SrtpPolicy::Optional, false), "SAVP over UDP");
    assert!(refused(&secure, SrtpPolicy::Required, false), "SAVP over UDP, required");
    assert!(refused(&secure, SrtpPolicy::Off, true), "SAVP with SRTP off");
    assert!(refused(&plain, SrtpPolicy::Required, true), "AVP with SRTP required");
    assert!(refused(&no_crypto, SrtpPolicy::Optional, true), "SAVP without a=crypto");
    assert!(refused(&unusable, SrtpPolicy::Required, true), "no suite we have");
    assert!(run(&plain, &rules(SrtpPolicy::Off, false)).is_ok());
    assert!(run(&plain, &rules(SrtpPolicy::Optional, true)).is_ok());
    assert!(run(&secure, &rules(SrtpPolicy::Required, true)).is_ok());
}

#[test]
fn a_re_offer_keeps_our_key_unless_the_suite_changes() {
    let offer = offer_with(&savp(4000, &line(1, "AES_CM_128_HMAC_SHA1_80")));
    let current = SrtpKeys {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        send: MasterKey::new([0x33; MASTER_LEN]),
        receive: MasterKey::new(THEIR_KEY),
    };
    let mut srtp = rules(SrtpPolicy::Optional, true);
    srtp.current = Some(&current);
    let (text, neg) = run(&offer, &srtp).unwrap();
    assert_eq!(neg.srtp.unwrap().send.expose(), &[0x33; MASTER_LEN]);
    assert!(text.contains(&b64(&[0x33; MASTER_LEN])), "{text}");
    // Another suite: a new key.
    let other = offer_with(&savp(4000, &line(4, "AES_CM_128_HMAC_SHA1_32")));
    let (_, neg) = run(&other, &srtp).unwrap();
    assert_eq!(neg.srtp.unwrap().send.expose(), &OUR_KEY);
}

fn call_keys() -> SrtpKeys {
    SrtpKeys {
        tag: 7,
        suite: Suite::AesCm128HmacSha1_80,
        send: MasterKey::new(OUR_KEY),
        receive: MasterKey::new(THEIR_KEY),
    }
}

#[test]
fn our_offer_on_an_srtp_call_is_savp_with_the_call_tag_suite_and_key() {
    let keys = call_keys();
    let mut session = LocalSession::new(7);
    let text = offer(&[Pcmu], local(), &mut session, Direction::SendRecv, true, Some(&keys));
    let parsed = parse(&text).unwrap();
    assert!(parsed.media[0].is_srtp(), "{text}");
    let crypto = &parsed.media[0].crypto;
    assert_eq!(crypto.len(), 1, "{text}");
    assert_eq!((crypto[0].tag, crypto[0].suite), (7, Suite::AesCm128HmacSha1_80));
    assert_eq!(crypto[0].key.expose(), &OUR_KEY);
    // The same offer again keeps the o= version; a plain one is another body.
    let version = session.version;
    offer(&[Pcmu], local(), &mut session, Direction::SendRecv, true, Some(&keys));
    assert_eq!(session.version, version);
    let plain = offer(&[Pcmu], local(), &mut session, Direction::SendRecv, true, None);
    assert_eq!(session.version, version + 1);
    assert!(!plain.contains("a=crypto") && plain.contains("RTP/AVP"), "{plain}");
}

#[test]
fn an_answer_to_our_srtp_offer_must_echo_tag_and_suite() {
    let keys = call_keys();
    let new_key = [0x44; MASTER_LEN];
    let answer_with = |m: String| offer_with(&m);
    let crypto =
        |tag: u32, suite: &str| format!("a=crypto:{tag} {suite} inline:{}\r\n", b64(&new_key));
    // Echoed: their (possibly new) key is what we receive with; ours is unchanged.
    let good = answer_with(savp(4000, &crypto(7, "AES_CM_128_HMAC_SHA1_80")));
    let neg = accept_answer(&[Pcmu], &good, Some(&keys)).unwrap();
    let got = neg.srtp.unwrap();
    assert_eq!((got.tag, got.suite), (7, Suite::AesCm128HmacSha1_80));
    assert_eq!(got.send.expose(), &OUR_KEY);
    assert_eq!(got.receive.expose(), &new_key);
    // Another tag, another suite, no line, or plain RTP: refused.
    let refused = [
        answer_with(savp(4000, &crypto(8, "AES_CM_128_HMAC_SHA1_80"))),
        answer_with(savp(4000, &crypto(7, "AES_CM_128_HMAC_SHA1_32"))),
        answer_with(savp(4000, "")),
        answer_with(avp(4000)),
    ];
    for answer in &refused {
        assert!(
            matches!(accept_answer(&[Pcmu], answer, Some(&keys)), Err(SdpError::Srtp(_))),
            "{answer:?}"
        );
    }
    // And an SRTP answer to a plain offer.
    assert!(matches!(accept_answer(&[Pcmu], &good, None), Err(SdpError::Srtp(_))));
}
