use std::net::SocketAddr;

use super::*;
use crate::config::CodecName::{Opus, Pcma, Pcmu};

const SIPP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const BARESIP: &str = "v=0\r\n\
o=- 1683371327 2894529385 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 31010 RTP/AVP 96 0 8 101\r\n\
b=AS:128\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1;useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:1234 cname:abc\r\n\
a=rtcp-mux\r\n\
a=ptime:20\r\n";

// Asterisk: no rtpmap for nothing unusual, ptime and maxptime, LF-only line ends.
const ASTERISK: &str = "v=0\n\
o=- 1947380736 1947380737 IN IP4 10.0.0.5\n\
s=Asterisk\n\
c=IN IP4 10.0.0.5\n\
t=0 0\n\
m=audio 14290 RTP/AVP 8 0 3 97 101\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:3 GSM/8000\n\
a=rtpmap:97 speex/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n\
a=ptime:30\n\
a=maxptime:150\n\
a=sendrecv\n";

// Cisco CUBE: media-level c=, no rtpmap for static types, a different DTMF number.
const CISCO: &str = "v=0\r\n\
o=CiscoSystemsSIP-GW-UserAgent 1497 9418 IN IP4 192.0.2.10\r\n\
s=SIP Call\r\n\
t=0 0\r\n\
m=audio 17328 RTP/AVP 0 18 100\r\n\
c=IN IP4 192.0.2.11\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:100 X-NSE/8000\r\n\
a=fmtp:100 192-194\r\n\
a=rtpmap:0 PCMU/8000\r\n";

// FreeSWITCH-like: audio plus video, IPv6.
const WITH_VIDEO_V6: &str = "v=0\r\n\
o=FreeSWITCH 1700000000 1700000001 IN IP6 2001:db8::1\r\n\
s=FreeSWITCH\r\n\
c=IN IP6 2001:db8::1\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 102 8 103\r\n\
a=rtpmap:102 opus/48000/2\r\n\
a=fmtp:102 useinbandfec=1; maxplaybackrate=16000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:103 telephone-event/8000\r\n\
m=video 20002 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n";

fn local() -> SocketAddr {
    "192.0.2.50:30000".parse().unwrap()
}

fn answer_of(text: &str, prefs: &[crate::config::CodecName]) -> (String, Negotiated) {
    let offer = parse(text).unwrap();
    answer(&offer, prefs, local(), &mut LocalSession::new(42), &SrtpAnswer::plain()).unwrap()
}

#[test]
fn sipp_pcmu_offer() {
    let (sdp, neg) = answer_of(SIPP, &[Pcma, Pcmu]);
    assert_eq!(neg.codec.name, Pcmu);
    assert_eq!(neg.codec.payload_type, 0);
    assert_eq!(neg.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
    assert_eq!(neg.direction, Direction::SendRecv);
    assert_eq!(neg.telephone_event, None);
    assert_eq!(neg.ptime_ms, 20);
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0\r\n"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 192.0.2.50\r\n"));
    assert!(sdp.contains("a=sendrecv\r\n"));
    assert!(sdp.starts_with("v=0\r\no=zendesk-ivr 42 42 IN IP4 192.0.2.50\r\n"));
}

#[test]
fn baresip_opus_preferred_and_telephone_event_echoed() {
    let (sdp, neg) = answer_of(BARESIP, &[Opus, Pcmu]);
    assert_eq!(neg.codec.name, Opus);
    assert_eq!(neg.codec.payload_type, 96);
    assert_eq!((neg.codec.clock_rate, neg.codec.channels), (48000, 2));
    assert_eq!(neg.telephone_event, Some(101));
    assert!(sdp.contains("m=audio 30000 RTP/AVP 96 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:96 opus/48000/2\r\n"));
    assert!(sdp.contains("a=fmtp:96 minptime=10;useinbandfec=1\r\n"));
    assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    let offer = parse(BARESIP).unwrap();
    assert_eq!(offer.media[0].fmtp(96), Some("stereo=1;sprop-stereo=1;useinbandfec=1"));
}

#[test]
fn our_preference_order_decides() {
    let (_, neg) = answer_of(BARESIP, &[Pcma, Opus]);
    assert_eq!(neg.codec.name, Pcma);
    assert_eq!(neg.codec.payload_type, 8);
}

#[test]
fn asterisk_lf_only_ptime_kept() {
    let (sdp, neg) = answer_of(ASTERISK, &[Pcmu, Pcma]);
    assert_eq!(neg.codec.name, Pcmu);
    assert_eq!(neg.ptime_ms, 30);
    assert_eq!(neg.telephone_event, Some(101));
    assert_eq!(neg.remote_rtp, Some("10.0.0.5:14290".parse().unwrap()));
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
}

#[test]
fn cisco_media_level_connection_and_static_pt_without_rtpmap() {
    let mut text = CISCO.replace("a=rtpmap:0 PCMU/8000\r\n", "");
    text.push_str("a=ptime:20\r\n");
    let (_, neg) = answer_of(&text, &[Pcmu]);
    assert_eq!(neg.codec.payload_type, 0);
    assert_eq!(neg.remote_rtp, Some("192.0.2.11:17328".parse().unwrap()));
    assert_eq!(neg.telephone_event, None, "X-NSE is not telephone-event");
}

#[test]
fn video_stream_refused_with_port_zero_and_ipv6() {
    let (sdp, neg) = answer_of(WITH_VIDEO_V6, &[Opus]);
    assert_eq!(neg.codec.payload_type, 102);
    assert_eq!(neg.telephone_event, Some(103));
    assert_eq!(neg.remote_rtp, Some("[2001:db8::1]:20000".parse().unwrap()));
    assert!(sdp.contains("m=video 0 RTP/AVP 96\r\n"), "{sdp}");
    let parsed = parse(&sdp).unwrap();
    assert_eq!(parsed.media.len(), 2);
    assert_eq!(parsed.media[1].port, 0);
}

#[test]
fn second_audio_stream_refused() {
    let text = format!("{SIPP}m=audio 6002 RTP/AVP 8\r\n");
    let (sdp, _) = answer_of(&text, &[Pcmu, Pcma]);
    let parsed = parse(&sdp).unwrap();
    assert_eq!(parsed.media.len(), 2);
    assert_eq!(parsed.media[0].port, 30000);
    assert_eq!(parsed.media[1].port, 0);
    assert_eq!(parsed.media[1].formats, vec!["8"]);
}

#[test]
fn directions_are_mirrored() {
    for (offered, ours) in [
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
        ("sendrecv", Direction::SendRecv),
    ] {
        let text = format!("{SIPP}a={offered}\r\n");
        let (sdp, neg) = answer_of(&text, &[Pcmu]);
        assert_eq!(neg.direction, ours, "{offered}");
        assert!(sdp.contains(&format!("a={}\r\n", ours.as_attribute())));
    }
}

#[test]
fn session_level_direction_applies_and_media_level_wins() {
    let text = SIPP.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    assert_eq!(answer_of(&text, &[Pcmu]).1.direction, Direction::RecvOnly);
    let text = format!("{text}a=inactive\r\n");
    assert_eq!(answer_of(&text, &[Pcmu]).1.direction, Direction::Inactive);
}

#[test]
fn zero_address_is_hold() {
    let text = SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let offer = parse(&text).unwrap();
    assert!(offer.connection.unwrap().is_hold());
    let (_, neg) = answer_of(&text, &[Pcmu]);
    assert_eq!(neg.remote_rtp, None);
}

#[test]
fn no_common_codec() {
    let offer = parse(&SIPP.replace("RTP/AVP 0", "RTP/AVP 18")).unwrap();
    let err =
        answer(&offer, &[Pcmu, Pcma], local(), &mut LocalSession::new(1), &SrtpAnswer::plain())
            .unwrap_err();
    assert_eq!(err, SdpError::NoCommonCodec);
    let offer = parse(BARESIP).unwrap();
    let err = answer(&offer, &[Pcma], local(), &mut LocalSession::new(1), &SrtpAnswer::plain());
    assert!(err.is_ok(), "PCMA is offered by baresip");
    let offer = parse(WITH_VIDEO_V6).unwrap();
    assert_eq!(
        answer(&offer, &[Pcmu], local(), &mut LocalSession::new(1), &SrtpAnswer::plain())
            .unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn srtp_only_offer_is_refused() {
    let offer = parse(&SIPP.replace("RTP/AVP", "RTP/SAVP")).unwrap();
    let err = answer(&offer, &[Pcmu], local(), &mut LocalSession::new(1), &SrtpAnswer::plain())
        .unwrap_err();
    assert!(matches!(err, SdpError::Srtp(_)), "{err:?}");
}

#[test]
fn version_steps_only_when_answer_changes() {
    let mut session = LocalSession::new(7);
    let offer = parse(SIPP).unwrap();
    let (a1, _) = answer(&offer, &[Pcmu], local(), &mut session, &SrtpAnswer::plain()).unwrap();
    let (a2, _) = answer(&offer, &[Pcmu], local(), &mut session, &SrtpAnswer::plain()).unwrap();
    assert_eq!(a1, a2);
    assert_eq!(session.version, 7);
    let hold = parse(&format!("{SIPP}a=sendonly\r\n")).unwrap();
    let (a3, _) = answer(&hold, &[Pcmu], local(), &mut session, &SrtpAnswer::plain()).unwrap();
    assert!(a3.contains("o=zendesk-ivr 7 8 IN IP4"), "{a3}");
    let (a4, _) = answer(&offer, &[Pcmu], local(), &mut session, &SrtpAnswer::plain()).unwrap();
    assert!(a4.contains("o=zendesk-ivr 7 9 IN IP4"), "{a4}");
}

#[test]
fn offer_and_accept_answer() {
    let mut session = LocalSession::new(3);
    let ours = offer(&[Pcma, Opus, Pcmu], local(), &mut session, Direction::SendRecv, true, None);
    assert!(ours.contains("m=audio 30000 RTP/AVP 8 111 0 101\r\n"), "{ours}");
    assert!(ours.contains("a=rtpmap:111 opus/48000/2\r\n"));
    assert!(ours.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    let parsed = parse(&ours).unwrap();
    // The far end answers our offer: mirror it through `answer` as a peer would.
    let (their_answer, _) = answer(
        &parsed,
        &[Pcmu],
        "198.51.100.7:4000".parse().unwrap(),
        &mut LocalSession::new(9),
        &SrtpAnswer::plain(),
    )
    .unwrap();
    let neg = accept_answer(&[Pcma, Opus, Pcmu], &parse(&their_answer).unwrap(), None).unwrap();
    assert_eq!(neg.codec.name, Pcmu);
    assert_eq!(neg.telephone_event, Some(101));
    assert_eq!(neg.remote_rtp, Some("198.51.100.7:4000".parse().unwrap()));
    assert_eq!(neg.direction, Direction::SendRecv);
    let recvonly = their_answer.replace("a=sendrecv", "a=recvonly");
    let neg = accept_answer(&[Pcmu], &parse(&recvonly).unwrap(), None).unwrap();
    assert_eq!(neg.direction, Direction::SendOnly);
}

#[test]
fn hostile_input_is_bounded() {
    assert!(matches!(parse(&"a".repeat(MAX_SDP_BYTES + 1)), Err(SdpError::TooLarge(_))));
    let many = format!("v=0\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(40));
    assert_eq!(parse(&many), Err(SdpError::TooLarge("m= sections")));
    let fmts = format!("v=0\r\nm=audio 1 RTP/AVP {}\r\n", "0 ".repeat(100));
    assert!(matches!(parse(&fmts), Err(SdpError::TooLarge(_))));
    assert!(parse("m=audio 99999 RTP/AVP 0").is_err());
    assert!(parse("v=0\r\nm=audio 1 RTP/AVP 0\r\nDROP\r\n").is_err());
    assert!(parse("v=0\r\nm=audio 1 RTP/AVP 0\r\n\r\n").is_ok());
    // CRLF smuggling through a format token.
    assert!(parse("v=0\r\nm=video 1 RTP/AVP 0\ra=x\r\n").is_err());
    assert!(parse("v=0\r\nc=IN IP4 not-an-ip\r\nm=audio 1 RTP/AVP 0\r\n").is_ok());
}

#[test]
fn fuzz_one_survives_odd_bytes() {
    for input in [
        &b""[..],
        b"v=0",
        b"\xff\xfe=\x00",
        b"v=0\nm=audio 0/0 RTP/AVP 300 -1\na=rtpmap:300 x/y/z\na=rtpmap:96 opus/\na=ptime:\n",
        b"v=0\nc=IN IP6 [::\nm=audio 5 RTP/AVP 96\na=rtpmap:96 opus/48000/999\n",
        b"m=audio 1 RTP/AVP 0\na=maxptime:5\n",
    ] {
        fuzz_one(input);
    }
    let (_, neg) = answer_of("m=audio 1 RTP/AVP 0\na=maxptime:5\n", &[Pcmu]);
    assert_eq!(neg.ptime_ms, 20, "maxptime below every size we send");
}

#[test]
fn an_offer_can_leave_out_telephone_event() {
    let mut session = LocalSession::new(4);
    let ours = offer(&[Pcmu], local(), &mut session, Direction::SendRecv, false, None);
    assert!(ours.contains("m=audio 30000 RTP/AVP 0\r\n"), "{ours}");
    assert!(!ours.contains("telephone-event"), "{ours}");
    let (their_answer, _) = answer(
        &parse(&ours).unwrap(),
        &[Pcmu],
        "198.51.100.7:4000".parse().unwrap(),
        &mut session,
        &SrtpAnswer::plain(),
    )
    .unwrap();
    let neg = accept_answer(&[Pcmu], &parse(&their_answer).unwrap(), None).unwrap();
    assert_eq!(neg.telephone_event, None, "nothing to negotiate: tones it is");
}
