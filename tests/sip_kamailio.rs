//! Calls through Kamailio (dispatcher, Record-Route): in-dialog requests from both sides
//! follow the route set.

mod common;

use common::kamailio::Kamailio;
use common::{next_summary, sipp, start, test_config};
use zendesk_ivr::sip::dialog::EndReason;

#[tokio::test(flavor = "multi_thread")]
async fn call_through_kamailio_caller_hangs_up() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let proxy = Kamailio::start(&[server.sip_addr()]).await;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &[]).await;
    run.assert_ok();
    assert!(
        run.count_received("SIP/2.0 200", "Record-Route:") >= 1,
        "the 200 echoes Kamailio's Record-Route:\n{}",
        run.messages
    );
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_bye_follows_the_route_set() {
    let mut config = test_config();
    config.sip.max_call_s = 1;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let proxy = Kamailio::start(&[server.sip_addr()]).await;
    let run = sipp("uac_remote_bye.xml", proxy.addr, "u1", &[]).await;
    run.assert_ok();
    let via_proxy = format!("Via: SIP/2.0/UDP {}", proxy.addr);
    assert_eq!(
        run.count_received("BYE ", &via_proxy),
        1,
        "our BYE reached the caller through Kamailio:\n{}",
        run.messages
    );
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::LocalBye), "{summary:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_replica_is_skipped() {
    let draining = start(test_config()).await;
    let serving = start(test_config()).await;
    let mut served = serving.subscribe();
    let mut drained = draining.subscribe();
    let proxy = Kamailio::start(&[draining.sip_addr(), serving.sip_addr()]).await;
    assert_eq!(draining.drain(std::time::Duration::from_millis(10)).await, 0);
    // Calls hash over both replicas by Call-ID; the draining one answers 503 and Kamailio
    // moves each such call to the other.
    let calls = 4;
    let run = sipp("uac_bye.xml", proxy.addr, "u1", &["-m", &calls.to_string()]).await;
    run.assert_ok();
    for _ in 0..calls {
        let summary = next_summary(&mut served).await;
        assert!(summary.answered, "{summary:?}");
    }
    assert!(drained.try_recv().is_err(), "the draining replica took no call");
    proxy.stop().await;
}
