//! `sip.allow` and a queue target named by host name: the endpoint resolves the name
//! (`localhost`) and admits its addresses, so the agent's phone (a SIPp UAS on 127.0.0.1,
//! which `sip.allow` does not list) can hang up a bridged call, while a source that is
//! neither listed nor a peer is still dropped.

mod common;

use std::time::Duration;

use common::phone::Phone;
use common::sipp_agent::SippAgent;
use common::{next_summary, quick_ivr_config, sipp, start};
use zendesk_ivr::config::TransferMode;
use zendesk_ivr::ivr::outcome::CallOutcome;
use zendesk_ivr::sip::dialog::EndReason;

const CALLER: &str = "127.0.0.2";
const STRANGER: &str = "127.0.0.3";

#[tokio::test(flavor = "multi_thread")]
async fn a_bridged_agent_named_by_host_name_is_admitted_and_a_stranger_is_not() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let agent = SippAgent::start("uas_hangs_up.xml");
    let mut config = quick_ivr_config();
    config.admin.listen = Some("127.0.0.1:0".parse().expect("address"));
    config.sip.allow = vec![CALLER.parse().expect("address")];
    config.transfer.mode = TransferMode::Bridge;
    // Both queues by name: no target written as 127.0.0.1 lets the agent in by address.
    let named = format!("sip:agent@localhost:{}", agent.sip.port());
    config.routing.default_queue = named.clone();
    config.routing.priority_queue = named;
    config.routing.probe_interval_s = 0;
    let server = start(config).await;
    let mut ended = server.subscribe();

    // The caller (listed) presses 1 and is bridged to the agent, who hangs up: its BYE
    // comes from 127.0.0.1, admitted only because `localhost` resolved to it.
    let phone = Phone::start(&[(Duration::from_millis(1200), '1')]).await;
    let port = phone.port.to_string();
    let run = sipp(
        "uac_phone_wait_bye.xml",
        server.sip_addr(),
        "u1",
        &["-key", "caller_rtp", &port, "-i", CALLER],
    )
    .await;
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    phone.stop().await;
    let agent_messages = agent.assert_passed().await;
    assert!(agent_messages.contains("SIP/2.0 200"), "the agent's BYE was answered");
    let outcome = &summary.report.as_ref().expect("the flow reported").outcome;
    assert!(matches!(outcome, CallOutcome::Transferred { .. }), "{outcome:?}");
    assert_eq!(summary.end, Some(EndReason::LocalBye), "the agent's BYE ended the bridge");

    // A source neither listed nor a peer is still dropped without a word.
    let stranger =
        sipp("uac_options.xml", server.sip_addr(), "u1", &["-i", STRANGER, "-timeout", "3s"]).await;
    assert!(!stranger.success, "the stranger got an answer: {}", stranger.messages);
    assert_eq!(stranger.count_received("SIP/2.0", ""), 0, "{}", stranger.messages);
    let admin = server.admin_addr().expect("admin enabled");
    let metrics = common::scrape_metrics(admin).await;
    let not_allowed = r#"sip_requests_rejected_total{reason="not_allowed"}"#;
    assert!(common::metric_value(&metrics, not_allowed).is_some_and(|n| n >= 1.0), "{metrics}");
    server.shutdown(Duration::from_secs(1)).await;
}
