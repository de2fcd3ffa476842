//! The IVR under a slow Zendesk and hostile ticket text: the caller hears us at once and
//! reaches the menu within the lookup's deadline; a subject carrying header breaks, SSML
//! and control characters reaches neither a SIP header nor TTS as such.

mod common;

use std::time::Duration;

use common::phone::Phone;
use common::sipp_agent::SippAgent;
use common::{next_summary, quick_ivr_config, sipp, start};
use zendesk_ivr::config::{Config, TransferMode};
use zendesk_ivr::ivr::outcome::{CallOutcome, PathStep};
use zendesk_ivr::zendesk::lookup;
use zendesk_ivr::zendesk::model::{DipOutcome, FallbackReason};
use zendesk_ivr::zendesk::sim::{SimData, SimState};

async fn with_simulator(state: SimState, dir: &tempfile::TempDir) -> Config {
    common::with_simulator(quick_ivr_config(), dir, state).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_zendesk_gets_audio_at_once_and_the_menu_within_the_deadline() {
    let state = SimState::sample();
    state.add_fault("any:latency:5000".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = with_simulator(state, &dir).await;
    assert_eq!(config.zendesk.deadline_ms, 1500);
    let server = start(config).await;
    let mut ended = server.subscribe();
    // "One moment." while the lookup runs; at 1.5 s it falls back and the status and the
    // menu play: a 2 pressed at 2.5 s is a menu choice.
    let phone = Phone::start(&[(Duration::from_millis(2500), '2')]).await;
    let port = phone.port.to_string();
    let args = ["-key", "caller_rtp", &port];
    let caller = sipp("uac_phone_wait_bye.xml", server.sip_addr(), "u1", &args);
    let established = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while server.call_ids().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the call was never established");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        std::time::Instant::now()
    };
    let (run, established_at) = tokio::join!(caller, established);
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    let heard = phone.stop().await;
    let first = heard.first().expect("RTP reached the caller").at;
    let after = first.saturating_duration_since(established_at);
    assert!(after <= Duration::from_millis(200), "first RTP {after:?} after the call was up");
    assert!(
        matches!(summary.dip, Some(DipOutcome::Fallback { reason: FallbackReason::Deadline })),
        "{:?}",
        summary.dip
    );
    let report = summary.report.expect("the flow reported");
    assert_eq!(report.outcome, CallOutcome::EndedByCaller);
    assert_eq!(report.path, vec![PathStep::StatusHeard, PathStep::Pressed { key: '2' }]);
    server.shutdown(Duration::from_secs(1)).await;
}

const HOSTILE: &str = r#"{
  "users": [{"id": 7001, "name": "Eve\r\nVia: SIP/2.0/UDP evil.example", "phone": "+4798765432", "role": "end-user", "locale": "en-US"}],
  "tickets": [{"id": 9001, "requester_id": 7001, "status": "open", "priority": "urgent",
               "subject": "Printer\r\nVia: SIP/2.0/UDP evil.example\r\n<speak><break time=\"9s\"/>evil</speak>\u0007\u001b[2J",
               "updated_at": "2024-05-10T08:00:00Z"}]
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn hostile_ticket_text_reaches_neither_sip_headers_nor_tts() {
    let data = SimData::from_json(HOSTILE).expect("seed data");
    let dir = tempfile::tempdir().unwrap();
    let mut config = with_simulator(SimState::new(data, None), &dir).await;
    // What TTS is given is the sentence `lookup` prints: the same code builds both. With
    // the default sentences, the subject is spoken: as plain words.
    let mut defaults = config.clone();
    defaults.ivr.prompts.clear();
    let report = lookup::lookup(&defaults, "+4798765432").await.expect("lookup");
    assert_eq!(
        report.sentence.text,
        "Hello Eve. Your ticket 9 0 0 1, about Printer Via: SIP/2.0/UDP evil.example evil 2J, \
         is being worked on."
    );

    // The agent's INVITE carries ids and the number, never the ticket's text.
    let agent = SippAgent::start("uas_answer.xml");
    config.transfer.mode = TransferMode::Bridge;
    config.routing.priority_queue = agent.target();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let phone = Phone::start(&[(Duration::from_millis(1500), '1')]).await;
    let port = phone.port.to_string();
    sipp("uac_phone_stays.xml", server.sip_addr(), "u1", &["-key", "caller_rtp", &port])
        .await
        .assert_ok();
    let summary = next_summary(&mut ended).await;
    phone.stop().await;
    let messages = agent.assert_passed().await;
    assert!(messages.contains("X-Zendesk-Ticket-Id: 9001"), "{messages}");
    assert!(!messages.contains("evil"), "ticket text reached the agent's INVITE:\n{messages}");
    assert!(
        matches!(summary.report.expect("report").outcome, CallOutcome::Transferred { .. }),
        "the call was bridged"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
