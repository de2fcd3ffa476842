//! A real softphone (baresip) calls the endpoint and hangs up cleanly.

mod common;

use std::time::Duration;
use zendesk_ivr::sip::dialog::EndReason;

use common::baresip::Baresip;
use common::{next_summary, start, test_config};

#[tokio::test(flavor = "multi_thread")]
async fn baresip_calls_and_hangs_up() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let source = tempfile::NamedTempFile::with_suffix(".wav").expect("temp wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(source.path())
        .args(["synth", "1", "sine", "440"])
        .status()
        .expect("sox runs");
    assert!(status.success());
    let uri = format!("sip:ivr@{}", server.sip_addr());
    let mut phone = Baresip::start(source.path(), Some(&uri)).await;
    phone.wait_for("Call established", Duration::from_secs(20)).await;
    assert_eq!(server.active_calls(), 1);
    phone.command("/hangup").await;
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered);
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    phone.stop().await;
}
