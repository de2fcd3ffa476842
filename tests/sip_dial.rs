//! Outgoing calls through the endpoint task (`EndpointHandle::dial`) against a real SIPp
//! UAS: answered with media then hung up by us, and refused with 486.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use common::sipp_agent::SippAgent;
use zendesk_ivr::config::CodecName;
use zendesk_ivr::sip::dialog::{CallEvent, CallHandle, EndReason, Ua, UaConfig, UaError};
use zendesk_ivr::sip::endpoint::{self, Command, DialError, EndpointHandle};
use zendesk_ivr::sip::message::{Limits, Transport};
use zendesk_ivr::sip::transaction::{TimerConfig, TransactionLayer};
use zendesk_ivr::sip::transport::Transports;

const WAIT: Duration = Duration::from_secs(15);

/// An endpoint on a free loopback port, built from its parts.
async fn endpoint() -> EndpointHandle {
    let (inbound_tx, inbound_rx) = mpsc::channel(256);
    let transports =
        Transports::bind("127.0.0.1:0".parse().expect("address"), Limits::default(), inbound_tx)
            .await
            .expect("bind SIP");
    let timers = TimerConfig::default();
    let ua = Ua::new(UaConfig {
        contact_user: "ivr".into(),
        local_host: "127.0.0.1".into(),
        local_port: transports.local_addr().port(),
        tls_port: None,
        user_agent: "zendesk-ivr-test".into(),
        server: "zendesk-ivr-test".into(),
        codecs: vec![CodecName::Pcmu, CodecName::Pcma],
        offer_telephone_event: true,
        srtp: zendesk_ivr::config::SrtpPolicy::Off,
        session_expires: 1800,
        min_se: 90,
        send_ringing: true,
        max_calls: 10,
        timers,
    });
    let (handle, _incoming) =
        endpoint::spawn(transports, inbound_rx, TransactionLayer::new(timers), ua);
    handle
}

fn uas(scenario: &str) -> SippAgent {
    SippAgent::start(scenario)
}

async fn next_event(events: &mut mpsc::Receiver<CallEvent>) -> CallEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a call event in time")
        .expect("the call's event stream is open")
}

/// Waits through progress for how `call` ended.
async fn end_reason(call: CallHandle, events: &mut mpsc::Receiver<CallEvent>) -> EndReason {
    loop {
        match next_event(events).await {
            CallEvent::Progress { .. } => {}
            CallEvent::Terminated { call: c, reason } => {
                assert_eq!(c, call);
                return reason;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_answered_with_media_then_hang_up() {
    let endpoint = endpoint().await;
    let uas = uas("uas_answer.xml");
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("bind RTP");
    let (call, mut events) = endpoint
        .dial(&uas.target(), "+4712345678", Transport::Udp, rtp.local_addr().expect("addr"))
        .await
        .expect("call placed");

    let mut progress = Vec::new();
    let media = loop {
        match next_event(&mut events).await {
            CallEvent::Progress { call: c, status } => {
                assert_eq!(c, call);
                progress.push(status);
            }
            CallEvent::Established { call: c, media } => {
                assert_eq!(c, call);
                break media;
            }
            other => panic!("unexpected event {other:?}"),
        }
    };
    assert!(progress.contains(&180), "ringing reported: {progress:?}");
    assert_eq!(media.codec.name, CodecName::Pcmu);
    assert_eq!(media.telephone_event, Some(101));
    let remote = media.remote_rtp.expect("the answer has a media address");
    assert_eq!(remote, SocketAddr::from(([127, 0, 0, 1], uas.media_port)));

    // Media flows: SIPp echoes our RTP back.
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
    packet.extend_from_slice(&[0xFF; 160]);
    rtp.send_to(&packet, remote).await.expect("send RTP");
    let mut buf = [0u8; 512];
    let (n, from) = tokio::time::timeout(WAIT, rtp.recv_from(&mut buf))
        .await
        .expect("echo in time")
        .expect("receive RTP");
    assert_eq!((from, &buf[..n]), (remote, &packet[..]));

    assert!(endpoint.send(Command::Hangup { call }));
    match next_event(&mut events).await {
        CallEvent::Terminated { call: c, reason } => {
            assert_eq!((c, reason), (call, EndReason::LocalBye));
        }
        other => panic!("unexpected event {other:?}"),
    }
    uas.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_refused_busy() {
    let endpoint = endpoint().await;
    let uas = uas("uas_busy.xml");
    let (call, mut events) = endpoint
        .dial(&uas.target(), "ivr", Transport::Udp, "127.0.0.1:40000".parse().expect("addr"))
        .await
        .expect("call placed");
    let reason = end_reason(call, &mut events).await;
    assert_eq!(reason, EndReason::Failed(486));
    assert!(events.recv().await.is_none(), "the stream ends with the call");
    uas.assert_passed().await;
}

#[tokio::test]
async fn dial_refuses_a_target_it_cannot_reach() {
    let endpoint = endpoint().await;
    let local_rtp = "127.0.0.1:40000".parse().expect("addr");
    let err = endpoint
        .dial("sip:agent@[::1", "ivr", Transport::Udp, local_rtp)
        .await
        .expect_err("not a URI");
    assert!(matches!(err, DialError::Ua(UaError::Dial(_))), "{err:?}");
    let err = endpoint
        .dial("mailto:agent@127.0.0.1", "ivr", Transport::Udp, local_rtp)
        .await
        .expect_err("not a SIP URI");
    assert!(matches!(err, DialError::Ua(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_a_host_name_resolves_it() {
    let endpoint = endpoint().await;
    let uas = uas("uas_busy.xml");
    // The queue or agent is usually named, not numbered.
    let target = format!("sip:agent@localhost:{}", uas.sip.port());
    let (call, mut events) = endpoint
        .dial(&target, "ivr", Transport::Udp, "127.0.0.1:40000".parse().expect("addr"))
        .await
        .expect("call placed");
    let reason = end_reason(call, &mut events).await;
    assert_eq!(reason, EndReason::Failed(486), "the INVITE reached the agent by name");
    uas.assert_passed().await;

    // A name that does not resolve (RFC 2606 reserves .invalid) is an error at once.
    let unknown = endpoint
        .dial("sip:agent@queue.invalid", "ivr", Transport::Udp, "127.0.0.1:40000".parse().unwrap())
        .await;
    assert!(
        matches!(&unknown, Err(DialError::Resolve { host, .. }) if host == "queue.invalid"),
        "{:?}",
        unknown.map(|(call, _)| call)
    );
}
