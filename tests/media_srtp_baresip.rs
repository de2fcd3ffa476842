//! SRTP with SDES against a real softphone: baresip with `;mediaenc=srtp-mand` calls over
//! TLS; the call is answered `RTP/SAVP` with our own key, baresip decrypts and records the
//! status sentence we play, and its DTMF digit (RFC 4733 inside SRTP) reaches the IVR. The
//! same phone calling over UDP is refused with 488: keys in clear SDP protect nothing. A
//! transfer by bridge of an SRTP call is refused before any agent is called.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::baresip::{Baresip, recording_path, sox_rms, tone_wav};
use common::tls::{Issued, TestCa};
use common::{free_sip_port, next_summary, start, test_config};
use zendesk_ivr::config::{Config, SrtpPolicy, TransferMode};
use zendesk_ivr::ivr::outcome::{CallOutcome, PathStep, TransferFailure};
use zendesk_ivr::media::dtmf::DigitSource;

const WAIT: Duration = Duration::from_secs(20);

/// `test_config` with TLS on a free port and SRTP required.
fn srtp_config(issued: &Issued) -> (Config, SocketAddr) {
    let mut config = test_config();
    let tls: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
    config.sip.tls_listen = Some(tls);
    config.sip.tls_cert = Some(issued.cert.clone());
    config.sip.tls_key = Some(issued.key.clone());
    config.media.srtp = SrtpPolicy::Required;
    config.media.welcome_prompt = PathBuf::new();
    (config, tls)
}

/// baresip's config lines for SRTP over TLS with the test CA.
fn srtp_extra(ca: &TestCa) -> String {
    format!("sip_cafile {}\nmodule srtp.so\n", ca.cert().display())
}

/// baresip, trusting `ca`, calls the IVR at `tls` with SRTP mandatory and sends a quiet
/// tone; returns once the call is up (the tone file lives as long as the phone needs it).
async fn call_with_mandatory_srtp(
    ca: &TestCa,
    tls: SocketAddr,
) -> (Baresip, tempfile::NamedTempFile) {
    let source = tone_wav(0.05);
    let uri = format!("sip:ivr@{tls};transport=tls");
    let mut phone =
        Baresip::start_account(source.path(), Some(&uri), &srtp_extra(ca), ";mediaenc=srtp-mand")
            .await;
    phone.wait_for("Call established", WAIT).await;
    (phone, source)
}

#[tokio::test(flavor = "multi_thread")]
async fn baresip_with_mandatory_srtp_hears_its_status_and_its_digit_reaches_the_ivr() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (config, tls) = srtp_config(&ca.issue("server", 4200));
    let server = start(config).await;
    let mut ended = server.subscribe();
    let (mut phone, _source) = call_with_mandatory_srtp(&ca, tls).await;
    // (Plain RTP from us would fail baresip's authentication and play as silence; a
    // plain digit from it would fail ours.)
    // Listen to the status sentence and the menu, then press 2 (end the call).
    tokio::time::sleep(Duration::from_secs(5)).await;
    phone.command("/sndcode 2").await;
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    let report = summary.report.as_ref().expect("the flow reported");
    assert!(report.path.contains(&PathStep::Pressed { key: '2' }), "{:?}", report.path);
    assert!(matches!(report.outcome, CallOutcome::EndedByCaller), "{:?}", report.outcome);
    // The digit came in RTP (RFC 4733), so it was decrypted and authenticated, not sent
    // as SIP INFO.
    assert_eq!(summary.digits, "2", "{summary:?}");
    assert_eq!(summary.digit_sources, vec![DigitSource::Rfc4733], "{summary:?}");
    // What baresip decrypted and decoded holds the spoken status sentence.
    phone.wait_for("terminated", WAIT).await;
    let heard = recording_path(&phone.recordings());
    let speech = sox_rms(&heard, 0.2, 4.0);
    assert!(speech > 0.02, "no speech in what baresip decrypted (RMS {speech})");
    // baresip's own word that the stream was SRTP with the suite we answered.
    let log = phone.log.join("\n");
    assert!(log.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"), "{log}");
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mandatory_srtp_over_udp_is_refused_with_488() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (config, _) = srtp_config(&ca.issue("server", 4201));
    let server = start(config).await;
    let source = tone_wav(0.05);
    let uri = format!("sip:ivr@{}", server.sip_addr());
    let mut phone =
        Baresip::start_account(source.path(), Some(&uri), &srtp_extra(&ca), ";mediaenc=srtp-mand")
            .await;
    phone.wait_for("488", WAIT).await;
    phone.stop().await;
}

/// Transfer by bridge would relay plain RTP to a caller on SRTP: it is refused before any
/// agent is called, the flow records the failed target, and the call goes on.
#[tokio::test(flavor = "multi_thread")]
async fn an_srtp_call_is_not_transferred_by_bridge() {
    let ca = TestCa::new("zendesk-ivr test CA");
    let (mut config, tls) = srtp_config(&ca.issue("server", 4202));
    config.transfer.mode = TransferMode::Bridge;
    // Never dialled: nothing listens there.
    config.routing.default_queue = format!("sip:agent@127.0.0.1:{}", free_sip_port());
    let server = start(config).await;
    let mut ended = server.subscribe();
    let (phone, _source) = call_with_mandatory_srtp(&ca, tls).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    phone.command("/sndcode 1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    phone.command("/hangup").await;
    let summary = next_summary(&mut ended).await;
    let report = summary.report.as_ref().expect("the flow reported");
    assert!(report.path.contains(&PathStep::Pressed { key: '1' }), "{:?}", report.path);
    let refused = report.path.iter().any(|step| {
        matches!(step, PathStep::TargetFailed { failure: TransferFailure::Error { message }, .. }
            if message.contains("SRTP"))
    });
    assert!(refused, "{:?}", report.path);
    assert!(!matches!(report.outcome, CallOutcome::Transferred { .. }), "{:?}", report.outcome);
    phone.stop().await;
}
