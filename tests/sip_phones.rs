//! Real-world INVITE shapes (softphones, desk phones, PBX trunks, carriers, a WebRTC
//! gateway; `tests/corpus/phones/`) sent to the running endpoint over UDP. Each is answered
//! 200 with a sensible SDP answer (never 400), its ACK is absorbed (the 200 is not sent
//! again), and its BYE ends the call cleanly.
//!
//! Also: an offer with an IPv6 connection address on this IPv4 endpoint (Linphone on a
//! dual-stack host) is answered 200, and media latches to the RTP source address.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use common::sip_phone::{Phone, Reply, rand_u64};
use common::{start, test_config};
use zendesk_ivr::sdp::{self, MediaDescription, SessionDescription};
use zendesk_ivr::sip::dialog::EndReason;

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/phones");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("phone corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

/// The encoding of a payload type: its rtpmap, or the static assignment (RFC 3551).
fn encoding(media: &MediaDescription, pt: u8) -> Option<(String, u32)> {
    if let Some(map) = media.rtpmap(pt) {
        return Some((map.encoding.to_ascii_lowercase(), map.clock_rate));
    }
    match pt {
        0 => Some(("pcmu".into(), 8000)),
        8 => Some(("pcma".into(), 8000)),
        9 => Some(("g722".into(), 8000)),
        18 => Some(("g729".into(), 8000)),
        _ => None,
    }
}

/// The answer accepts exactly one audio stream of the offer, with one codec we speak that
/// the offer has under the same number, the offer's telephone-event at that codec's clock
/// when it has one, our IPv4 address, and refuses every other stream with port 0.
fn check_answer(name: &str, offer: &SessionDescription, answer: &SessionDescription) {
    assert_eq!(answer.media.len(), offer.media.len(), "{name}: one answer line per offer line");
    let accepted: Vec<usize> =
        (0..answer.media.len()).filter(|&i| answer.media[i].port != 0).collect();
    assert_eq!(accepted.len(), 1, "{name}: exactly one stream accepted: {answer:?}");
    let i = accepted[0];
    let (ours, theirs) = (&answer.media[i], &offer.media[i]);
    assert_eq!(theirs.media, "audio", "{name}");
    assert_eq!(
        answer.connection_for(ours).and_then(|c| c.address),
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "{name}: answer's c= address"
    );
    let pts: Vec<u8> = ours.payload_types().collect();
    assert!(!pts.is_empty() && pts.len() <= 2, "{name}: {pts:?}");
    let codec = encoding(ours, pts[0]).expect("answer's codec has a name");
    assert!(["pcmu", "pcma", "opus"].contains(&codec.0.as_str()), "{name}: codec {codec:?}");
    assert!(theirs.payload_types().any(|pt| pt == pts[0]), "{name}: codec number from the offer");
    assert_eq!(encoding(theirs, pts[0]), Some(codec.clone()), "{name}: same codec as offered");
    let offered_te = theirs.payload_types().find(|&pt| {
        encoding(theirs, pt).is_some_and(|(e, clock)| e == "telephone-event" && clock == codec.1)
    });
    match (offered_te, pts.get(1)) {
        (Some(te), Some(&answered)) => {
            assert_eq!(answered, te, "{name}: telephone-event number from the offer");
            assert_eq!(
                encoding(ours, answered),
                Some(("telephone-event".into(), codec.1)),
                "{name}: telephone-event at the codec's clock"
            );
        }
        (None, None) => {}
        other => panic!("{name}: telephone-event offered/answered: {other:?}"),
    }
}

/// One call: INVITE → 200 with SDP, ACK (then the 200 must not come again), BYE → 200.
async fn call(ivr: std::net::SocketAddr, name: String, template: String) -> (String, String) {
    let call_id = format!("{name}-{:016x}", rand_u64());
    let mut phone = Phone::new(ivr, &call_id).await;
    let invite = phone.fill(&template);
    phone.send(&invite).await;
    let ok = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(ok.status, 200, "{name}: answered\n{}", ok.text);
    assert!(ok.text.starts_with("SIP/2.0 200 OK\r\n"), "{name}: {}", ok.text);
    let offer_text = invite.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let offer = sdp::parse(offer_text).unwrap_or_else(|e| panic!("{name}: offer: {e}"));
    let answer_text = String::from_utf8_lossy(&ok.response.body).into_owned();
    let answer = sdp::parse(&answer_text).unwrap_or_else(|e| panic!("{name}: answer: {e}"));
    check_answer(&name, &offer, &answer);

    let cseq: u32 = common::sip_phone::header(&invite, &["CSeq"])
        .and_then(|c| c.split_whitespace().next().and_then(|n| n.parse().ok()))
        .expect("INVITE CSeq");
    let ack = phone.in_dialog(&invite, &ok, "ACK", cseq);
    phone.send(&ack).await;
    // The 200 is retransmitted after T1 (500 ms) until an ACK matches it: a window past
    // the first retransmission shows the ACK was absorbed.
    let window = tokio::time::Instant::now() + Duration::from_millis(1_200);
    while let Some(reply) = phone.next_reply(window - tokio::time::Instant::now()).await {
        assert!(
            !(reply.status == 200 && reply.cseq_method() == "INVITE"),
            "{name}: the 200 came again: the ACK was not matched\n{ack}"
        );
    }
    let bye = phone.in_dialog(&invite, &ok, "BYE", cseq + 1);
    phone.send(&bye).await;
    let bye_ok: Reply = phone.final_reply("BYE", Duration::from_secs(10)).await;
    assert_eq!(bye_ok.status, 200, "{name}: BYE answered\n{}", bye_ok.text);
    for text in &phone.received {
        assert!(!text.starts_with("SIP/2.0 400"), "{name}: got 400\n{text}");
    }
    (name, call_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn real_world_invites_are_answered_and_end_cleanly() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let corpus = corpus();
    assert!(corpus.len() >= 12, "phone corpus has {} files", corpus.len());
    let ivr = server.sip_addr();
    // Eight at a time (each call waits 1.2 s for a retransmission that must not come);
    // the test config's RTP range holds ten calls.
    let mut expected: HashMap<String, String> = HashMap::new();
    for batch in corpus.chunks(8) {
        let calls: Vec<_> = batch
            .iter()
            .map(|(name, template)| tokio::spawn(call(ivr, name.clone(), template.clone())))
            .collect();
        for handle in calls {
            let (name, call_id) = handle.await.expect("call task");
            expected.insert(call_id, name);
        }
    }
    let mut seen = HashSet::new();
    while seen.len() < expected.len() {
        let summary = common::next_summary(&mut ended).await;
        let Some(name) = expected.get(&summary.call_id) else { continue };
        assert!(summary.answered, "{name}: {summary:?}");
        assert_eq!(summary.end, Some(EndReason::RemoteBye), "{name}");
        seen.insert(summary.call_id.clone());
    }
}

/// An ACK for a non-2xx final response (here 488, no codec in common) is matched by the
/// INVITE's transaction and absorbed, whatever its Contact looks like: the 488 is not
/// sent again.
#[tokio::test(flavor = "multi_thread")]
async fn acks_for_refusals_are_absorbed_whatever_their_contact() {
    let server = start(test_config()).await;
    let ivr = server.sip_addr();
    let template = corpus().into_iter().find(|(n, _)| n == "linphone").expect("linphone").1;
    // Only codecs we do not speak.
    let template = template.replace(
        "m=audio {rtp} RTP/AVP 96 97 98 0 8 18 101 99 100",
        "m=audio {rtp} RTP/AVP 97 98 18 101 99 100",
    );
    for contact in [
        r#"<sip:tester@{ip}:{port};transport=udp>;+sip.instance="<urn:uuid:f5a51a91-4c2d-00b5-9a6f-2c1f1b4e5f60>""#,
        r#"<sip:tester@{ip}:{port};x=">"#,
        r#"<sip:tester@{ip}:{port}>;+sip.instance="<urn:uuid:open"#,
        "garbage <<",
    ] {
        let mut phone = Phone::new(ivr, &format!("ack-{:016x}", rand_u64())).await;
        let invite = phone.fill(&template);
        phone.send(&invite).await;
        let refusal = phone.final_reply("INVITE", Duration::from_secs(10)).await;
        assert!(
            refusal.text.starts_with("SIP/2.0 488 Not Acceptable Here\r\n"),
            "{}",
            refusal.text
        );
        // The ACK for a non-2xx response: same branch as the INVITE (RFC 3261 §17.1.1.3).
        let via = common::sip_phone::header(&invite, &["Via"]).expect("Via");
        let to = common::sip_phone::header(&refusal.text, &["To"]).expect("To");
        let from = common::sip_phone::header(&invite, &["From"]).expect("From");
        let call_id = common::sip_phone::header(&invite, &["Call-ID"]).expect("Call-ID");
        let ack = common::sip_phone::fill(
            &format!(
                "ACK sip:ivr@{{ivr}} SIP/2.0\nVia: {via}\nFrom: {from}\nTo: {to}\n\
                 Call-ID: {call_id}\nCSeq: 20 ACK\nContact: {contact}\nMax-Forwards: 70\n\
                 Content-Length: {{len}}\n\n"
            ),
            &phone.vars,
        );
        phone.send(&ack).await;
        // The 488 is retransmitted after T1 (500 ms) until an ACK matches it.
        let window = tokio::time::Instant::now() + Duration::from_millis(1_200);
        while let Some(reply) = phone.next_reply(window - tokio::time::Instant::now()).await {
            assert_ne!(reply.status, 488, "the 488 came again: the ACK was not absorbed\n{ack}");
        }
    }
}

/// Linphone on a dual-stack host may offer an IPv6 connection address (`fd00::...`) on a
/// call that came over IPv4. This endpoint speaks IPv4 only: it answers 200 with its IPv4
/// address, and media latches to the address the caller's RTP comes from (symmetric RTP),
/// so the caller hears us as soon as it sends.
#[tokio::test(flavor = "multi_thread")]
async fn ipv6_media_offer_over_ipv4_latches_to_the_rtp_source() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let ivr = server.sip_addr();
    let template = corpus().into_iter().find(|(n, _)| n == "linphone").expect("linphone").1;
    let template = template
        .replace("o=tester 2771 1139 IN IP4 {ip}", "o=tester 2771 1139 IN IP6 fd00::5:1")
        .replace("c=IN IP4 {ip}", "c=IN IP6 fd00::5:1")
        .replace("RTP/AVP 96 97 98 0 8 18 101 99 100", "RTP/AVP 0 100");
    let call_id = format!("ipv6-{:016x}", rand_u64());
    let mut phone = Phone::new(ivr, &call_id).await;
    let invite = phone.fill(&template);
    phone.send(&invite).await;
    let ok = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let answer = sdp::parse(&String::from_utf8_lossy(&ok.response.body)).expect("answer");
    let audio = &answer.media[0];
    assert_eq!(
        answer.connection_for(audio).and_then(|c| c.address),
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    assert_eq!(audio.payload_types().next(), Some(0));
    let ack = phone.in_dialog(&invite, &ok, "ACK", 20);
    phone.send(&ack).await;

    // Our RTP, paced at 20 ms, from the IPv4 address the offer did not name.
    let target = std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), audio.port);
    let rtp = phone.rtp.clone();
    let pacer = {
        let rtp = rtp.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for seq in 0u16..250 {
                tick.tick().await;
                let packet =
                    common::rtp::packet(0, seq, u32::from(seq) * 160, 0x1234_5678, &[0xff; 160]);
                let _ = rtp.send_to(&packet, target).await;
            }
        })
    };
    let (heard, from) = common::rtp::receive(&rtp).await;
    assert_eq!(heard.pt, 0, "PCMU from the endpoint");
    assert_eq!(from, target, "from the port in the answer");
    pacer.abort();

    let bye = phone.in_dialog(&invite, &ok, "BYE", 21);
    phone.send(&bye).await;
    let bye_ok = phone.final_reply("BYE", Duration::from_secs(10)).await;
    assert_eq!(bye_ok.status, 200);
    loop {
        let summary = common::next_summary(&mut ended).await;
        if summary.call_id == call_id {
            assert!(summary.answered);
            assert_eq!(summary.end, Some(EndReason::RemoteBye));
            break;
        }
    }
}
