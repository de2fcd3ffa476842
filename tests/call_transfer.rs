//! Transferring a live call (`RunningServer::transfer`) against real SIPp peers: by REFER
//! (the caller's phone follows it), and by bridging to an agent we call.

mod common;

use std::time::Duration;

use common::{next_summary, sipp, start, test_config};
use zendesk_ivr::config::TransferMode;
use zendesk_ivr::post_call;
use zendesk_ivr::server::RunningServer;
use zendesk_ivr::transfer::{TransferRecord, TransferResult};
use zendesk_ivr::zendesk::comment::CallOutcome;

const WAIT: Duration = Duration::from_secs(15);

/// Waits until the call is established, then asks for the transfer.
async fn transfer_when_up(server: &RunningServer, call_id: &str, target: &str) {
    tokio::time::timeout(WAIT, server.wait_for_call(call_id))
        .await
        .expect("the call is established in time");
    server.transfer(call_id, target).await.expect("the transfer starts");
}

#[tokio::test(flavor = "multi_thread")]
async fn refer_accepted_and_completed_hangs_up_and_records_the_transfer() {
    let mut config = test_config();
    config.transfer.mode = TransferMode::Refer;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let target = "sip:queue@127.0.0.1:5999";
    let call_id = "xfer-refer-1@test";
    let caller = sipp(
        "uac_refer.xml",
        server.sip_addr(),
        "u1",
        &["-cid_str", "xfer-refer-%u@test"],
    );
    let (run, ()) = tokio::join!(caller, transfer_when_up(&server, call_id, target));
    run.assert_ok();
    assert_eq!(run.count_received("REFER", &format!("Refer-To: <{target}>")), 1);
    assert_eq!(run.count_received("BYE", call_id), 1, "we hang up after the 200 sipfrag");

    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.call_id, call_id);
    assert_eq!(
        summary.transfer,
        Some(TransferRecord {
            target: target.into(),
            mode: TransferMode::Refer,
            result: TransferResult::Transferred,
        })
    );
    assert!(summary.end.contains("LocalBye"), "{summary:?}");
    assert_eq!(post_call::outcome(&summary), CallOutcome::Transferred { queue: target.into() });
    // The call is gone from the registry: no second transfer.
    assert!(server.transfer(call_id, target).await.is_err());
}
