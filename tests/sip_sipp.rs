//! The endpoint against real SIPp scenarios (tests/sipp/*.xml), over UDP and TCP.

mod common;

use std::time::Duration;
use zendesk_ivr::sip::dialog::EndReason;

use common::{next_summary, sipp, start, test_config};

async fn basic_call_caller_hangs_up(transport: &str) {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_bye.xml", server.sip_addr(), transport, &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 200", "m=audio"), 1, "one 200 with an SDP answer");
    assert_eq!(run.count_received("SIP/2.0 200", "a=rtpmap:0 PCMU/8000"), 1, "PCMU chosen");
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered);
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_basic_call_caller_hangs_up() {
    basic_call_caller_hangs_up("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_basic_call_caller_hangs_up() {
    basic_call_caller_hangs_up("t1").await;
}

async fn basic_call_endpoint_hangs_up(transport: &str) {
    let mut config = test_config();
    config.sip.max_call_s = 1;
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_remote_bye.xml", server.sip_addr(), transport, &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::LocalBye), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_endpoint_hangs_up() {
    basic_call_endpoint_hangs_up("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_endpoint_hangs_up() {
    basic_call_endpoint_hangs_up("t1").await;
}

async fn cancel_before_answer(transport: &str) {
    let mut config = test_config();
    config.sip.answer_delay_ms = 5_000;
    let server = start(config).await;
    let mut ended = server.subscribe();
    sipp("uac_cancel.xml", server.sip_addr(), transport, &[]).await.assert_ok();
    let summary = next_summary(&mut ended).await;
    assert!(!summary.answered);
    assert_eq!(summary.end, Some(EndReason::Cancelled), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_cancel_before_answer() {
    cancel_before_answer("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_cancel_before_answer() {
    cancel_before_answer("t1").await;
}

async fn invite_without_sdp(transport: &str) {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_no_sdp.xml", server.sip_addr(), transport, &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 200", "m=audio"), 1, "our offer is in the 200");
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "the answer in the ACK established the call: {summary:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_invite_without_sdp() {
    invite_without_sdp("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_invite_without_sdp() {
    invite_without_sdp("t1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_2xx_is_retransmitted_until_the_ack() {
    let mut config = test_config();
    config.sip.t1_ms = 250; // retransmissions at 250 ms, 750 ms, 1750 ms after the first
    let server = start(config).await;
    let run = sipp("uac_ack_late.xml", server.sip_addr(), "u1", &[]).await;
    run.assert_ok();
    let oks = run.count_received("SIP/2.0 200", "INVITE");
    assert!(oks >= 3, "expected the 200 and at least two retransmissions, got {oks}");
}

async fn options(transport: &str) {
    let server = start(test_config()).await;
    let run = sipp("uac_options.xml", server.sip_addr(), transport, &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 200", "Accept: application/sdp"), 1);
    assert_eq!(run.count_received("SIP/2.0 200", "INVITE"), 1, "Allow lists INVITE");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_options() {
    options("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_options() {
    options("t1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn options_while_draining_is_503() {
    let server = start(test_config()).await;
    assert_eq!(server.drain(Duration::from_millis(10)).await, 0);
    let run = sipp("uac_options.xml", server.sip_addr(), "u1", &[]).await;
    assert!(!run.success, "OPTIONS must not get 200 while draining");
    assert_eq!(run.count_received("SIP/2.0 503", "OPTIONS"), 1, "{}", run.messages);
}

async fn unsupported_codec(transport: &str) {
    let server = start(test_config()).await;
    let run = sipp("uac_488.xml", server.sip_addr(), transport, &[]).await;
    run.assert_ok();
    assert_eq!(server.active_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_unsupported_codec_is_488() {
    unsupported_codec("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_unsupported_codec_is_488() {
    unsupported_codec("t1").await;
}
