//! Media against SIPp: DTMF from the bundled RFC 4733 pcaps (played during a call) and a
//! SIP INFO digit reach the call in order.

mod common;

use common::{next_summary, sipp, start, test_config};
use zendesk_ivr::sip::dialog::EndReason;

async fn dtmf_digits_in_order(transport: &str) {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_dtmf_pcap.xml", server.sip_addr(), transport, &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 200", "telephone-event/8000"), 1, "PT 101 negotiated");
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    assert_eq!(summary.digits, "19#*05", "pcaps 1 9 # * 0, then INFO 5");
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_rfc4733_pcaps_and_info_digits_in_order() {
    dtmf_digits_in_order("u1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_rfc4733_pcaps_and_info_digits_in_order() {
    dtmf_digits_in_order("t1").await;
}
