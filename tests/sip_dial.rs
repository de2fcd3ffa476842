//! Outgoing calls through the endpoint task (`EndpointHandle::dial`) against a real SIPp
//! UAS: answered with media then hung up by us, and refused with 486.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use common::{free_port_pair, manifest_dir};
use zendesk_ivr::config::CodecName;
use zendesk_ivr::sip::dialog::{CallEvent, EndReason, Ua, UaConfig, UaError};
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
        user_agent: "zendesk-ivr-test".into(),
        codecs: vec![CodecName::Pcmu, CodecName::Pcma],
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

/// A SIPp UAS on a free port, echoing RTP on its media port.
struct Uas {
    child: tokio::process::Child,
    sip: SocketAddr,
    media_port: u16,
    _dir: tempfile::TempDir,
    errors: std::path::PathBuf,
}

fn uas(scenario: &str) -> Uas {
    let dir = tempfile::tempdir().expect("temp dir");
    let errors = dir.path().join("errors.log");
    let sip_port = free_port_pair();
    let media_port = free_port_pair();
    let scenario = manifest_dir().join("tests/sipp").join(scenario);
    let child = tokio::process::Command::new("sipp")
        .args(["-sf", scenario.to_str().expect("utf-8 path")])
        .args(["-p", &sip_port.to_string(), "-i", "127.0.0.1", "-t", "u1"])
        .args(["-mp", &media_port.to_string(), "-rtp_echo", "-m", "1"])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file", errors.to_str().expect("utf-8 path")])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp runs (is sip-tester installed? scripts/setup.sh installs it)");
    Uas { child, sip: SocketAddr::from(([127, 0, 0, 1], sip_port)), media_port, _dir: dir, errors }
}

impl Uas {
    fn target(&self) -> String {
        format!("sip:agent@{}", self.sip)
    }

    /// Waits for SIPp to finish its scenario and checks it passed.
    async fn assert_passed(self) {
        let errors = self.errors.clone();
        let output = tokio::time::timeout(WAIT, self.child.wait_with_output())
            .await
            .expect("sipp finished")
            .expect("sipp exit status");
        assert!(
            output.status.success(),
            "sipp failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(errors).unwrap_or_default()
        );
    }
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<CallEvent>) -> CallEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a call event in time")
        .expect("the call's event stream is open")
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
    let reason = loop {
        match next_event(&mut events).await {
            CallEvent::Progress { .. } => {}
            CallEvent::Terminated { call: c, reason } => {
                assert_eq!(c, call);
                break reason;
            }
            other => panic!("unexpected event {other:?}"),
        }
    };
    assert_eq!(reason, EndReason::Failed(486));
    assert!(events.recv().await.is_none(), "the stream ends with the call");
    uas.assert_passed().await;
}

#[tokio::test]
async fn dial_refuses_a_target_it_cannot_reach() {
    let endpoint = endpoint().await;
    let local_rtp = "127.0.0.1:40000".parse().expect("addr");
    let err = endpoint
        .dial("sip:agent@pbx.example.com", "ivr", Transport::Udp, local_rtp)
        .await
        .expect_err("no DNS in the dialer");
    assert!(matches!(err, DialError::Ua(UaError::Dial(_))), "{err:?}");
    let err = endpoint
        .dial("mailto:agent@127.0.0.1", "ivr", Transport::Udp, local_rtp)
        .await
        .expect_err("not a SIP URI");
    assert!(matches!(err, DialError::Ua(_)), "{err:?}");
}
