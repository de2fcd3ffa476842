//! A queue target the transport cannot reach (a closed TCP port, a TLS server whose
//! certificate fails verification) fails at once, as a 503 (RFC 3261 §8.1.3.1), not at
//! Timer B: a bridge moves on to the next target while the caller is still on the line,
//! and a registration over TCP to a closed registrar goes to its backoff.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::phone::Phone;
use common::sipp_agent::SippAgent;
use common::tls::{TestCa, tls_front};
use common::{free_sip_port, next_summary, quick_ivr_config, sipp, start};
use zendesk_ivr::config::{Config, QueueConfig, TransferMode};
use zendesk_ivr::ivr::outcome::{CallOutcome, PathStep, TransferFailure};
use zendesk_ivr::sip::auth_config::RegisterConfig;
use zendesk_ivr::sip::registration::RegistrationState;

/// With the default T1 (500 ms), Timer B and F fire 32 s after the request.
const TIMER_B: Duration = Duration::from_secs(32);

/// A caller (IVR without Zendesk: the default queue) presses 1 and is bridged to the
/// queue `[unreachable, agent]`. The caller stays 8 s on the line, far less than Timer B
/// or the agent ring timeout (30 s): the agent is reached only if the first target
/// failed at once, as a 503.
async fn bridge_skips(mut config: Config, unreachable: String) {
    let agent = SippAgent::start("uas_answer_late.xml");
    config.transfer.mode = TransferMode::Bridge;
    let agent_target = agent.target();
    let targets = vec![unreachable.clone(), agent_target.clone()];
    config.routing.queues.insert("default".into(), QueueConfig { targets, priority: None });
    let server = start(config).await;
    let mut ended = server.subscribe();
    let phone = Phone::start(&[(Duration::from_millis(1200), '1')]).await;
    let port = phone.port.to_string();
    let run =
        sipp("uac_phone_stays.xml", server.sip_addr(), "u1", &["-key", "caller_rtp", &port]).await;
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    phone.stop().await;
    let agent_messages = agent.assert_passed().await;
    assert!(agent_messages.contains("INVITE sip:agent@"), "the agent was called");
    let report = summary.report.as_ref().expect("the flow reported");
    assert!(
        matches!(&report.outcome, CallOutcome::Transferred { target, mode: TransferMode::Bridge, .. }
            if *target == agent_target),
        "{:?}",
        report.outcome
    );
    let failed = report.path.iter().any(|step| {
        matches!(step, PathStep::TargetFailed { target, failure: TransferFailure::Refused { status: 503 } }
            if *target == unreachable)
    });
    assert!(failed, "the unreachable target failed as 503: {:?}", report.path);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_skips_a_closed_tcp_target_at_once() {
    let closed = format!("sip:agent@127.0.0.1:{};transport=tcp", free_sip_port());
    bridge_skips(quick_ivr_config(), closed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_skips_a_tls_target_whose_certificate_fails_at_once() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let other_ca = TestCa::new("some other CA");
    let stranger = other_ca.issue("stranger", 4201);
    let mut config = quick_ivr_config();
    config.sip.tls_listen = Some(SocketAddr::from(([127, 0, 0, 1], free_sip_port())));
    let issued = ca.issue("ivr", 4202);
    config.sip.tls_cert = Some(issued.cert);
    config.sip.tls_key = Some(issued.key);
    config.sip.tls_ca_file = Some(ca.cert());
    // A TLS server whose certificate our CA did not sign: the handshake fails.
    let backend = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
    let server = tls_front(&stranger, backend).await;
    bridge_skips(config, format!("sip:agent@{server};transport=tls")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registration_to_a_closed_tcp_registrar_backs_off_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("trunk-password");
    std::fs::write(&password, "secret").unwrap();
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();
    let mut config = quick_ivr_config();
    config.sip.register = vec![RegisterConfig {
        name: "trunk".into(),
        registrar: format!("sip:127.0.0.1:{}", free_sip_port()),
        user: "ivr".into(),
        auth_user: None,
        password_env: None,
        password_file: Some(password),
        expires_s: 600,
        transport: "tcp".into(),
    }];
    let started = tokio::time::Instant::now();
    let server = start(config).await;
    let mut view = server.registrations().clone();
    let failed = |s: &Vec<zendesk_ivr::sip::registration::RegistrationSnapshot>| {
        s.iter().any(|r| matches!(r.state, RegistrationState::Failed { .. }))
    };
    tokio::time::timeout(TIMER_B / 2, view.wait_for(failed))
        .await
        .expect("the REGISTER failed before Timer F would have fired");
    let snapshot = view.snapshot();
    assert!(failed(&snapshot), "{snapshot:?}");
    eprintln!("the registration failed {:?} after the start", started.elapsed());
    server.shutdown(Duration::from_secs(1)).await;
}
