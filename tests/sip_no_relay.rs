//! No relay: a caller's re-INVITE cannot point the endpoint anywhere outside its dialog.
//! One sent outside the dialog (a To tag or Call-ID the endpoint never gave out) is
//! refused with 481 and changes nothing; one inside the dialog may move the call's media
//! (RFC 3261 target refresh, RFC 3264 new offer), but never makes the endpoint place a
//! call or send a request to the new Contact's host on its own.

mod common;

use std::time::Duration;

use common::sip_phone::{Phone, Reply, fill, header, rand_u64};
use common::{quick_ivr_config, start};
use tokio::net::UdpSocket;

const INVITE: &str = "INVITE sip:ivr@{ivr} SIP/2.0
Via: SIP/2.0/UDP {ip}:{port};branch={branch};rport
From: <sip:+4798765432@{ip}>;tag=caller1
To: <sip:ivr@{ivr}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:caller@{ip}:{port}>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: {len}

v=0
o=- 1 1 IN IP4 {ip}
s=-
c=IN IP4 {ip}
t=0 0
m=audio {rtp} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
";

/// A re-INVITE to `target` with `to`, whose Contact and SDP point at 127.0.0.3.
fn reinvite(target: &str, to: &str, call_id: &str, cseq: u32, sip: u16, rtp: u16) -> String {
    format!(
        "INVITE {target} SIP/2.0
Via: SIP/2.0/UDP {{ip}}:{{port}};branch={{branch}};rport
From: <sip:+4798765432@{{ip}}>;tag=caller1
To: {to}
Call-ID: {call_id}
CSeq: {cseq} INVITE
Contact: <sip:evil@127.0.0.3:{sip}>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: {{len}}

v=0
o=- 1 2 IN IP4 127.0.0.3
s=-
c=IN IP4 127.0.0.3
t=0 0
m=audio {rtp} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
"
    )
}

async fn rtp_arrives(socket: &UdpSocket, within: Duration) -> bool {
    let mut buf = [0u8; 2048];
    tokio::time::timeout(within, socket.recv_from(&mut buf)).await.is_ok()
}

fn contact_uri(reply: &Reply) -> String {
    let contact = header(&reply.text, &["Contact", "m"]).expect("200 has a Contact");
    zendesk_ivr::sip::header_text::uri_part(&contact).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reinvite_cannot_redirect_the_endpoint_outside_its_dialog() {
    let mut config = quick_ivr_config();
    // The IVR must not hang up on its own during the test.
    config.ivr.no_input_s = 3600;
    let server = start(config).await;
    let ivr = server.sip_addr();
    let foreign_sip = UdpSocket::bind("127.0.0.3:0").await.expect("bind 127.0.0.3");
    let foreign_rtp = UdpSocket::bind("127.0.0.3:0").await.expect("bind 127.0.0.3");
    let (fsip, frtp) =
        (foreign_sip.local_addr().unwrap().port(), foreign_rtp.local_addr().unwrap().port());
    let call_id = format!("relay-{:016x}", rand_u64());
    let mut phone = Phone::new(ivr, &call_id).await;
    let invite = phone.fill(INVITE);
    phone.send(&invite).await;
    let ok = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ack = phone.in_dialog(&invite, &ok, "ACK", 1);
    phone.send(&ack).await;
    assert!(rtp_arrives(&phone.rtp, Duration::from_secs(5)).await, "the IVR speaks to the caller");
    let target = contact_uri(&ok);
    let to = header(&ok.text, &["To", "t"]).expect("To");

    // Outside the dialog: a To tag never given out, and a Call-ID never seen.
    let stranger_to = format!("<sip:ivr@{ivr}>;tag=not-yours");
    for (call, to) in [(call_id.as_str(), stranger_to.as_str()), ("other-call", to.as_str())] {
        let text = reinvite(&target, to, call, 2, fsip, frtp);
        let request = phone.fill(&text);
        phone.send(&request).await;
        let refused = phone.final_reply("INVITE", Duration::from_secs(10)).await;
        assert_eq!(refused.status, 481, "{}", refused.text);
        let ack = fill(
            &format!(
                "ACK {target} SIP/2.0\nVia: {via}\nFrom: <sip:+4798765432@{{ip}}>;tag=caller1\n\
                 To: {refused_to}\nCall-ID: {call}\nCSeq: 2 ACK\nMax-Forwards: 70\n\
                 Content-Length: 0\n\n",
                via = header(&request, &["Via", "v"]).expect("Via"),
                refused_to = header(&refused.text, &["To", "t"]).expect("To"),
            ),
            &phone.vars,
        );
        phone.send(&ack).await;
    }
    // The media still goes to the caller, and none to the address the strangers named.
    assert!(rtp_arrives(&phone.rtp, Duration::from_secs(2)).await);
    let mut buf = [0u8; 2048];
    assert!(foreign_rtp.try_recv_from(&mut buf).is_err(), "media went where a stranger said");

    // Inside the dialog: the media may move (that is what a re-INVITE is for).
    let text = reinvite(&target, &to, &call_id, 3, fsip, frtp);
    let request = phone.fill(&text);
    phone.send(&request).await;
    let moved = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let ack = phone.in_dialog(&invite, &moved, "ACK", 3);
    phone.send(&ack).await;
    // OPTIONS in the dialog, answered: the re-INVITE has been dealt with.
    let options = phone.in_dialog(&invite, &moved, "OPTIONS", 4);
    phone.send(&options).await;
    assert_eq!(phone.final_reply("OPTIONS", Duration::from_secs(10)).await.status, 200);
    let bye = phone.in_dialog(&invite, &moved, "BYE", 5);
    phone.send(&bye).await;
    assert_eq!(phone.final_reply("BYE", Duration::from_secs(10)).await.status, 200);

    // Whatever the new Contact said, the endpoint sent its host no request of its own:
    // no INVITE, no REFER (only a BYE of this dialog would be its due, and the caller hung
    // up first).
    let mut buf = [0u8; 65_536];
    if let Ok((n, _)) = foreign_sip.try_recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        panic!("the endpoint sent the Contact's host a request:\n{text}");
    }
}
