//! Shutdown loses nothing: calls still up when the drain time ends are hung up with BYE,
//! and each one's comment is in the outbox before the server stops.

mod common;

use std::time::Duration;

use common::{next_summary, quick_ivr_config, sipp, start, with_simulator};
use zendesk_ivr::ivr::outcome::{CallOutcome, DropReason};
use zendesk_ivr::sip::dialog::EndReason;
use zendesk_ivr::zendesk::comment::call_id_marker;
use zendesk_ivr::zendesk::sim::SimState;

#[tokio::test(flavor = "multi_thread")]
async fn calls_left_at_the_end_of_the_drain_get_bye_and_their_comments_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    // The callers stay in the menu: nothing ends their calls but the shutdown.
    config.ivr.no_input_s = 3600;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let outbox = server.outbox().expect("an outbox").clone();
    let addr = server.sip_addr();
    let callers = tokio::spawn(async move {
        // Each caller's scenario ends only when it has received our BYE.
        let first = sipp("uac_remote_bye.xml", addr, "u1", &[]);
        let second = sipp("uac_remote_bye.xml", addr, "u1", &[]);
        tokio::join!(first, second)
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.call_ids().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both calls come up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = server.shutdown(Duration::from_millis(300)).await;
    assert_eq!(left, 2, "both calls were still up when the drain ended");
    let (first, second) = callers.await.expect("callers");
    first.assert_ok();
    second.assert_ok();
    for _ in 0..2 {
        let summary = next_summary(&mut ended).await;
        assert_eq!(summary.end, Some(EndReason::LocalBye));
        let report = summary.report.expect("the flow reported");
        assert_eq!(report.outcome, CallOutcome::Dropped { reason: DropReason::Shutdown });
        let entry = outbox.find(&call_id_marker(&summary.call_id)).await.expect("outbox");
        assert!(entry.is_some(), "the comment of {} is in the outbox", summary.call_id);
    }
    let stats = outbox.stats().await.expect("stats");
    assert_eq!(stats.pending + stats.delivered, 2, "exactly one entry per call: {stats:?}");
}

/// The real binary: SIGTERM starts a drain of up to `--drain`; a second SIGTERM ends it
/// at once, and the calls still up still get BYE and their comments.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_ends_the_drain_but_not_the_hang_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    config.ivr.no_input_s = 3600;
    let sip_port = common::free_sip_port();
    let outbox_path = config.outbox.path.clone();
    let mut child = common::run_command(&config, sip_port)
        .args(["--drain", "60s"])
        .env("ZENDESK_IVR_ADMIN__LISTEN", format!("127.0.0.1:{}", common::free_sip_port()))
        .spawn()
        .expect("zendesk-ivr runs");
    let pid = child.id().expect("pid") as i32;
    let mut lines = common::output_lines(&mut child);
    let mut log = Vec::new();
    let mut wait_for = async |needle: &str| {
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.recv().await {
                let hit = line.contains(needle);
                log.push(line);
                if hit {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(matches!(found, Ok(true)), "never logged {needle:?}:\n{}", log.join("\n"));
    };
    wait_for("SIP endpoint listening").await;
    let addr = format!("127.0.0.1:{sip_port}").parse().unwrap();
    let caller = tokio::spawn(async move { sipp("uac_remote_bye.xml", addr, "u1", &[]).await });
    wait_for("call established").await;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("draining calls").await;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("second signal").await;
    caller.await.expect("caller").assert_ok();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the process exits after the hang-up step")
        .expect("exit status");
    assert!(status.success(), "{status:?}");
    let outbox = zendesk_ivr::outbox::Outbox::open(&outbox_path).expect("outbox");
    let stats = outbox.stats().await.expect("stats");
    assert_eq!(stats.pending + stats.delivered, 1, "the call's comment: {stats:?}");
}
