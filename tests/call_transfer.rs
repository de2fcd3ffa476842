//! The IVR's agent branch against real SIPp peers: a caller presses 1 and is sent to the
//! queue its ticket's priority picks, by REFER (the caller's phone follows it) or by
//! bridging to an agent we call, with failover, the all-busy menu and the comment.

mod common;

use std::time::Duration;

use common::phone::{Heard, Phone};
use common::sipp_agent::SippAgent;
use common::{next_summary, quick_ivr_config, sipp, start};
use zendesk_ivr::call::CallSummary;
use zendesk_ivr::config::{Config, QueueConfig, TransferMode};
use zendesk_ivr::ivr::outcome::{CallOutcome, PathStep, TransferFailure};
use zendesk_ivr::server::RunningServer;
use zendesk_ivr::sip::dialog::EndReason;
use zendesk_ivr::transfer::probe::TargetState;
use zendesk_ivr::zendesk::sim::{SimData, SimState};

/// Kari Nordmann (the scenarios' caller ID) has urgent ticket 102 in the sample data.
const KARI_URGENT_TICKET: u64 = 102;

/// The quick IVR with the Zendesk simulator.
async fn with_zendesk(dir: &tempfile::TempDir, state: SimState) -> (Config, SimState) {
    (common::with_simulator(quick_ivr_config(), dir, state.clone()).await, state)
}

/// Waits (bounded) until `ticket` has a comment containing `needle`; returns its body.
/// The outbox delivers after the call, each post after a synced SQLite commit that
/// records its start: on a loaded machine (the suite runs tests side by side, and other
/// builds share the cores) that can take a while.
async fn comment_with(state: &SimState, ticket: u64, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let found = state.comments(ticket).into_iter().find(|c| c.body.contains(needle));
        if let Some(comment) = found {
            assert!(!comment.public, "post-call comments are private notes");
            return comment.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "no comment with {needle:?} on {ticket}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn outcome(summary: &CallSummary) -> &CallOutcome {
    &summary.report.as_ref().expect("the flow reported").outcome
}

fn path(summary: &CallSummary) -> &[PathStep] {
    &summary.report.as_ref().expect("the flow reported").path
}

fn queue(targets: &[String]) -> QueueConfig {
    QueueConfig { targets: targets.to_vec(), priority: None }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_urgent_ticket_pressing_1_is_referred_to_the_priority_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, state) = with_zendesk(&dir, SimState::sample()).await;
    config.transfer.mode = TransferMode::Refer;
    config.routing.priority_queue = "sip:priority@127.0.0.1:5999".into();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_press1_refer.xml", server.sip_addr(), "u1", &[]).await;
    run.assert_ok();
    let refer_to = format!(
        "Refer-To: <sip:priority@127.0.0.1:5999?X-Zendesk-Ticket-Id={KARI_URGENT_TICKET}&X-Zendesk-User-Id=1001>"
    );
    assert_eq!(run.count_received("REFER", &refer_to), 1, "{}", run.messages);
    let summary = next_summary(&mut ended).await;
    assert_eq!(run.count_received("BYE", &summary.call_id), 1, "we hang up after the 200 sipfrag");
    assert_eq!(summary.end, Some(EndReason::LocalBye));
    assert_eq!(
        outcome(&summary),
        &CallOutcome::Transferred {
            queue: "priority".into(),
            target: "sip:priority@127.0.0.1:5999".into(),
            mode: TransferMode::Refer
        }
    );
    assert_eq!(path(&summary)[..2], [PathStep::StatusHeard, PathStep::Pressed { key: '1' }]);
    let marker = format!("[call-id: {}]", summary.call_id);
    let body = comment_with(&state, KARI_URGENT_TICKET, &marker).await;
    assert!(body.contains("Outcome: transferred to the priority queue"), "{body}");
    assert!(body.contains("urgent ticket → priority queue"), "{body}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_does_not_answer_its_probes_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _state) = with_zendesk(&dir, SimState::sample()).await;
    // A live SIP element (another endpoint answers OPTIONS) behind a dead one.
    let live = start(quick_ivr_config()).await;
    let live_target = format!("sip:agent@{}", live.sip_addr());
    let dead_target = format!("sip:agent@127.0.0.1:{}", common::free_sip_port());
    config.routing.probe_interval_s = 1;
    config
        .routing
        .queues
        .insert("priority".into(), queue(&[dead_target.clone(), live_target.clone()]));
    let server = start(config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.target_states().state(&dead_target) != Some(TargetState::Down)
        || server.target_states().state(&live_target) != Some(TargetState::Up)
    {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", server.target_states().snapshot());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ended = server.subscribe();
    let run = sipp("uac_press1_refer.xml", server.sip_addr(), "u1", &[]).await;
    run.assert_ok();
    let refer_to = format!("Refer-To: <{live_target}?X-Zendesk-Ticket-Id=");
    assert_eq!(run.count_received("REFER", &refer_to), 1, "{}", run.messages);
    let summary = next_summary(&mut ended).await;
    assert!(path(&summary).iter().any(|s| matches!(
        s,
        PathStep::TargetFailed { target, failure: TransferFailure::Unavailable } if *target == dead_target
    )), "{:?}", path(&summary));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_who_presses_nothing_hears_the_menu_three_times_then_goes_to_an_agent() {
    let mut config = quick_ivr_config();
    config.routing.default_queue = "sip:support@127.0.0.1:5999".into();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_refer.xml", server.sip_addr(), "u1", &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("REFER", "Refer-To: <sip:support@127.0.0.1:5999>"), 1);
    let summary = next_summary(&mut ended).await;
    let no_inputs = path(&summary).iter().filter(|s| **s == PathStep::NoInput).count();
    assert_eq!(no_inputs, 3, "{:?}", path(&summary));
    assert!(
        matches!(outcome(&summary), CallOutcome::Transferred { .. }),
        "{:?}",
        outcome(&summary)
    );
}

/// A SIPp caller whose RTP is `phone`, staying on the line for `scenario`. The endpoint
/// is returned still running: shutting it down stops the outbox sender, which leaves a
/// comment not yet posted for the next start, so a test that waits for the post-call
/// comment shuts it down only once the comment is there.
async fn phone_call(
    config: Config,
    scenario: &str,
    phone: &Phone,
) -> (RunningServer, CallSummary, String) {
    let server = start(config).await;
    let mut ended = server.subscribe();
    let port = phone.port.to_string();
    let run = sipp(scenario, server.sip_addr(), "u1", &["-key", "caller_rtp", &port]).await;
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    (server, summary, run.messages)
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_fails_over_from_a_busy_agent_and_relays_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, state) = with_zendesk(&dir, SimState::sample()).await;
    let busy = SippAgent::start("uas_busy.xml");
    let answering = SippAgent::start("uas_answer_late.xml");
    config.transfer.mode = TransferMode::Bridge;
    config.routing.queues.insert("priority".into(), queue(&[busy.target(), answering.target()]));
    let zendesk_url = config.zendesk.url.clone();
    let phone = Phone::start(&[(Duration::from_millis(1200), '1')]).await;
    let (server, summary, _) = phone_call(config, "uac_phone_stays.xml", &phone).await;
    let heard = phone.stop().await;
    let busy_messages = busy.assert_passed().await;
    // The caller hung up: the agent got a BYE (its scenario waits for one).
    let agent_messages = answering.assert_passed().await;
    assert!(busy_messages.contains("SIP/2.0 486"), "{busy_messages}");
    for header in [
        format!("X-Zendesk-Ticket-Id: {KARI_URGENT_TICKET}"),
        "X-Zendesk-User-Id: 1001".to_string(),
        format!("Call-Info: <{zendesk_url}/agent/tickets/{KARI_URGENT_TICKET}>;purpose=info"),
        "P-Asserted-Identity: <sip:+4798765432@".to_string(),
    ] {
        assert!(agent_messages.contains(&header), "{header} missing:\n{agent_messages}");
    }
    assert_eq!(
        outcome(&summary),
        &CallOutcome::Transferred {
            queue: "priority".into(),
            target: answering_target(&agent_messages),
            mode: TransferMode::Bridge
        }
    );
    assert!(path(&summary).iter().any(|s| matches!(
        s,
        PathStep::TargetFailed { failure: TransferFailure::Refused { status: 486 }, .. }
    )));
    assert_eq!(summary.end, Some(EndReason::RemoteBye));
    assert_bridged(&heard);
    let marker = format!("[call-id: {}]", summary.call_id);
    let body = comment_with(&state, KARI_URGENT_TICKET, &marker).await;
    assert!(body.contains("refused (486)"), "{body}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// The answering agent's URI, as it was called (from its received INVITE).
fn answering_target(messages: &str) -> String {
    let line = messages.lines().find(|l| l.starts_with("INVITE ")).expect("an INVITE");
    line.split_whitespace().nth(1).expect("a Request-URI").to_string()
}

/// The caller heard sound while the agent rang, then its own audio through the agent's
/// echo, on one stream (same SSRC, no sequence jump at the handover).
fn assert_bridged(heard: &[Heard]) {
    let first_echo =
        heard.iter().position(|h| h.echo).expect("the agent's echo reached the caller");
    let echoes = heard.iter().filter(|h| h.echo).count();
    assert!(echoes >= 50, "only {echoes} echoed packets");
    let (before, after) = (heard[first_echo - 1], heard[first_echo]);
    assert!(heard.iter().all(|h| h.ssrc == before.ssrc), "one SSRC for the whole call");
    assert_eq!(after.seq, before.seq.wrapping_add(1), "no sequence jump at the bridge");
    // The agent answers 1.5 s after it is called: hold music fills that time.
    let ringing: Vec<&Heard> = heard[..first_echo]
        .iter()
        .filter(|h| h.at + Duration::from_millis(1200) > after.at)
        .collect();
    let audible = ringing.iter().filter(|h| h.audible).count();
    assert!(audible >= 40, "{audible} of {} packets audible while the agent rang", ringing.len());
    assert!(heard[first_echo..].iter().all(|h| h.echo), "hold music stopped once bridged");
}

#[tokio::test(flavor = "multi_thread")]
async fn all_agents_busy_then_a_callback_request_is_in_the_comment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, state) = with_zendesk(&dir, SimState::sample()).await;
    let busy = SippAgent::start("uas_busy.xml");
    config.transfer.mode = TransferMode::Bridge;
    config.ivr.no_input_s = 3;
    config.routing.queues.insert("priority".into(), queue(&[busy.target()]));
    // 1 at once; 2 once the busy menu is on (it follows "Connecting." and the 486).
    let phone =
        Phone::start(&[(Duration::from_millis(1200), '1'), (Duration::from_millis(4500), '2')])
            .await;
    let (server, summary, _) = phone_call(config, "uac_phone_wait_bye.xml", &phone).await;
    phone.stop().await;
    busy.assert_passed().await;
    assert_eq!(
        outcome(&summary),
        &CallOutcome::CallbackRequested { number: Some("+4798765432".into()) }
    );
    assert!(path(&summary).contains(&PathStep::AgentsBusy), "{:?}", path(&summary));
    assert_eq!(summary.end, Some(EndReason::LocalBye));
    let marker = format!("[call-id: {}]", summary.call_id);
    let body = comment_with(&state, KARI_URGENT_TICKET, &marker).await;
    assert!(body.contains("callback requested to +4798765432"), "{body}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pressing_2_says_goodbye_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = with_zendesk(&dir, SimState::sample()).await;
    let phone = Phone::start(&[(Duration::from_millis(1200), '2')]).await;
    let (server, summary, messages) = phone_call(config, "uac_phone_wait_bye.xml", &phone).await;
    let heard = phone.stop().await;
    assert!(messages.contains("BYE sip:"), "we sent the BYE:\n{messages}");
    assert_eq!(outcome(&summary), &CallOutcome::EndedByCaller);
    assert_eq!(summary.end, Some(EndReason::LocalBye));
    assert!(heard.iter().filter(|h| h.audible).count() > 25, "the caller heard the goodbye");
    let marker = format!("[call-id: {}]", summary.call_id);
    let body = comment_with(&state, KARI_URGENT_TICKET, &marker).await;
    assert!(body.contains("the caller ended the call from the menu"), "{body}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_caller_hears_the_neutral_sentence_and_reaches_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _state) = with_zendesk(&dir, SimState::new(SimData::default(), None)).await;
    config.routing.default_queue = "sip:support@127.0.0.1:5999".into();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let run = sipp("uac_press1_refer.xml", server.sip_addr(), "u1", &[]).await;
    run.assert_ok();
    assert_eq!(run.count_received("REFER", "Refer-To: <sip:support@127.0.0.1:5999>"), 1);
    let summary = next_summary(&mut ended).await;
    assert!(matches!(summary.dip, Some(zendesk_ivr::zendesk::model::DipOutcome::UnknownCaller)));
    assert!(
        matches!(outcome(&summary), CallOutcome::Transferred { queue, .. } if queue == "default")
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bridged_caller_can_hold_and_send_info_digits_to_the_agent() {
    // The agent's scenario fails unless it gets an INFO with "Signal=5".
    let agent = SippAgent::start("uas_answer_info.xml");
    let mut config = quick_ivr_config();
    config.transfer.mode = TransferMode::Bridge;
    config.routing.default_queue = agent.target();
    let phone = Phone::start(&[(Duration::from_millis(1200), '1')]).await;
    let (server, summary, _) = phone_call(config, "uac_bridged_info_hold.xml", &phone).await;
    let heard = phone.stop().await;
    agent.assert_passed().await;
    assert!(
        matches!(outcome(&summary), CallOutcome::Transferred { .. }),
        "{:?}",
        outcome(&summary)
    );
    // The caller held the call (sendonly) for 1.5 s while still sending audio: the relay
    // sent nothing back in that time, and the echo came back after the unhold.
    let echoes: Vec<_> = heard.iter().filter(|h| h.echo).map(|h| h.at).collect();
    assert!(echoes.len() >= 50, "only {} echoed packets", echoes.len());
    let (gap, resumed_after) =
        echoes.windows(2).map(|w| (w[1] - w[0], w[1])).max_by_key(|(gap, _)| *gap).expect("echoes");
    assert!(gap >= Duration::from_millis(1000), "longest pause in the echo: {gap:?}");
    let after = echoes.iter().filter(|at| **at >= resumed_after).count();
    assert!(after >= 25, "only {after} echoed packets after the unhold");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_hanging_up_ends_the_bridged_call() {
    let agent = SippAgent::start("uas_hangs_up.xml");
    let mut config = quick_ivr_config();
    config.transfer.mode = TransferMode::Bridge;
    config.routing.default_queue = agent.target();
    let phone = Phone::start(&[(Duration::from_millis(1200), '1')]).await;
    let (server, summary, _) = phone_call(config, "uac_phone_wait_bye.xml", &phone).await;
    phone.stop().await;
    agent.assert_passed().await;
    assert!(
        matches!(outcome(&summary), CallOutcome::Transferred { .. }),
        "{:?}",
        outcome(&summary)
    );
    assert_eq!(summary.end, Some(EndReason::LocalBye));
    server.shutdown(Duration::from_secs(1)).await;
}
