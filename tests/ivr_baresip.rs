//! The IVR with a real softphone: baresip calls in, hears the status sentence and the
//! menu (checked with sox), presses 1, and follows our REFER to a second baresip that
//! answers as the agent.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::baresip::{Baresip, recording_path, sox_rms, tone_wav};
use common::{next_summary, start, test_config};
use zendesk_ivr::config::TransferMode;
use zendesk_ivr::ivr::outcome::{CallOutcome, PathStep};

#[tokio::test(flavor = "multi_thread")]
async fn baresip_hears_its_status_presses_1_and_follows_the_refer_to_an_agent() {
    let source = tone_wav(0.05);
    let mut agent = Baresip::start(source.path(), None).await;
    let mut config = test_config();
    // No welcome: what the caller hears first is the lookup's comfort line, then the
    // status (Zendesk is off in this test: the fallback sentence) and the menu.
    config.media.welcome_prompt = PathBuf::new();
    config.transfer.mode = TransferMode::Refer;
    config.routing.default_queue = format!("sip:tester@{}", agent.sip);
    let server = start(config).await;
    let mut ended = server.subscribe();

    let uri = format!("sip:ivr@{}", server.sip_addr());
    let mut caller = Baresip::start(source.path(), Some(&uri)).await;
    caller.wait_for("Call established", Duration::from_secs(20)).await;
    // Listen to the status sentence, then press 1 while the menu plays (barge-in).
    tokio::time::sleep(Duration::from_secs(5)).await;
    caller.command("/sndcode 1").await;
    // baresip follows the REFER: the agent's phone rings and answers by itself.
    agent.wait_for("Call established", Duration::from_secs(20)).await;
    let summary = next_summary(&mut ended).await;
    let report = summary.report.as_ref().expect("the flow reported");
    assert!(
        matches!(&report.outcome, CallOutcome::Transferred { mode: TransferMode::Refer, .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.path[..2], [PathStep::StatusHeard, PathStep::Pressed { key: '1' }]);

    // What the caller heard from us: the recording of its first call (it ends when we
    // hang up after the transfer) holds voiced speech where the sentences are.
    caller.wait_for("terminated", Duration::from_secs(10)).await;
    let heard = recording_path(&caller.recordings());
    let speech = sox_rms(&heard, 0.2, 4.0);
    assert!(speech > 0.02, "the status sentence is not in the recording (RMS {speech})");
    agent.command("/hangup").await;
    caller.stop().await;
    agent.stop().await;
}
