//! A caller that floods its call with INFO: every INFO is answered, the call's event
//! queue stays bounded (the excess is dropped, see `sip::call_events`), and the call lives
//! on until the caller hangs up.

mod common;

use std::time::Duration;

use zendesk_ivr::sip::call_events::{CALL_EVENT_QUEUE, INFO_BURST, INFO_PER_SECOND};
use zendesk_ivr::sip::dialog::EndReason;

use common::sip_phone::{Phone, header, rand_u64};
use common::{manifest_dir, next_summary, start, test_config};

/// INFOs sent, in bursts of [`BATCH`] each sent back to back.
const FLOOD: u32 = 400;
const BATCH: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn an_info_flood_is_answered_and_the_call_survives() {
    assert!(FLOOD as usize > 4 * CALL_EVENT_QUEUE && FLOOD > 10 * INFO_BURST);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = test_config();
    config.admin.listen = Some("127.0.0.1:0".parse().expect("address"));
    let server = start(config).await;
    let mut ended = server.subscribe();
    let template = std::fs::read_to_string(manifest_dir().join("tests/corpus/phones/microsip.sip"))
        .expect("phone template");
    let mut phone = Phone::new(server.sip_addr(), &format!("flood-{:016x}", rand_u64())).await;
    let invite = phone.fill(&template);
    phone.send(&invite).await;
    let ok = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let cseq: u32 = header(&invite, &["CSeq"])
        .and_then(|c| c.split_whitespace().next().and_then(|n| n.parse().ok()))
        .expect("INVITE CSeq");
    let ack = phone.in_dialog(&invite, &ok, "ACK", cseq);
    phone.send(&ack).await;

    // Keys pressed during the welcome prompt (the flood is over long before it ends) are
    // not menu choices, so the digits that pass the rate limit change nothing.
    let body = "Signal=5\r\nDuration=100\r\n";
    let started = tokio::time::Instant::now();
    let mut answered = 0;
    for batch in 0..FLOOD / BATCH {
        for i in 0..BATCH {
            let n = cseq + 1 + batch * BATCH + i;
            let info = phone.in_dialog(&invite, &ok, "INFO", n).replace(
                "Content-Length: 0\r\n\r\n",
                &format!(
                    "Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            );
            phone.send(&info).await;
        }
        for _ in 0..BATCH {
            let reply = phone.final_reply("INFO", Duration::from_secs(10)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            answered += 1;
        }
    }
    assert_eq!(answered, FLOOD);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(u64::from(FLOOD / 20)),
        "the flood ran above the per-call INFO rate ({took:?} for {FLOOD})"
    );

    // The call is still up and hangs up normally.
    let bye = phone.in_dialog(&invite, &ok, "BYE", cseq + FLOOD + 1);
    phone.send(&bye).await;
    let bye_ok = phone.final_reply("BYE", Duration::from_secs(10)).await;
    assert_eq!(bye_ok.status, 200, "{}", bye_ok.text);
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");

    // Past the burst and rate, the INFOs were answered but their content dropped.
    let admin = server.admin_addr().expect("admin enabled");
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("admin answers")
        .text()
        .await
        .expect("metrics text");
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sip_call_events_dropped_total{reason=\"info_rate\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no INFO drops counted:\n{metrics}"));
    let passed = f64::from(FLOOD) - dropped;
    let most = f64::from(INFO_BURST) + took.as_secs_f64() * f64::from(INFO_PER_SECOND) + 1.0;
    assert!(
        passed >= f64::from(INFO_BURST) && passed <= most,
        "{passed} INFOs passed, at most {most}"
    );
    assert!(!metrics.contains("sip_call_event_overflows_total"), "no call ended by overflow");
}
