//! A caller that floods its call with INFO: every INFO is answered, the call's event
//! queue stays bounded (the excess is dropped, see `sip::call_events`), and the call lives
//! on until the caller hangs up. And re-INVITEs that overlap get 491 (a re-INVITE flood
//! is in `sip_reinvite_flood.rs`).

mod common;

use std::time::Duration;

use zendesk_ivr::sip::call_events::{CALL_EVENT_QUEUE, INFO_BURST, INFO_PER_SECOND};
use zendesk_ivr::sip::dialog::{EndReason, REFRESH_BURST};

use common::sip_phone::{Phone, header, rand_u64};
use common::{manifest_dir, next_summary, start, test_config};

/// INFOs sent, in bursts of [`BATCH`] each sent back to back.
const FLOOD: u32 = 400;
const BATCH: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn an_info_flood_is_answered_and_the_call_survives() {
    assert!(FLOOD as usize > 4 * CALL_EVENT_QUEUE && FLOOD > 10 * INFO_BURST);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = without_source_limits();
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
    let metrics = common::scrape_metrics(admin).await;
    let dropped =
        common::metric_value(&metrics, r#"sip_call_events_dropped_total{reason="info_rate"}"#)
            .unwrap_or_else(|| panic!("no INFO drops counted:\n{metrics}"));
    let passed = f64::from(FLOOD) - dropped;
    let most = f64::from(INFO_BURST) + took.as_secs_f64() * f64::from(INFO_PER_SECOND) + 1.0;
    assert!(
        passed >= f64::from(INFO_BURST) && passed <= most,
        "{passed} INFOs passed, at most {most}"
    );
    assert!(!metrics.contains("sip_call_event_overflows_total"), "no call ended by overflow");
}

/// A re-INVITE from the phone, in the dialog `ok` set up, offering RTP on `rtp_port`.
fn reinvite(
    phone: &mut Phone,
    invite: &str,
    ok: &common::sip_phone::Reply,
    cseq: u32,
    rtp_port: u16,
) -> String {
    let offer = invite.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    let first_port = phone.vars["rtp"].clone();
    let offer = offer.replace(&format!("m=audio {first_port} "), &format!("m=audio {rtp_port} "));
    phone.in_dialog(invite, ok, "INVITE", cseq).replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_reinvites_are_refused_and_the_call_survives() {
    let server = start(without_source_limits()).await;
    let mut ended = server.subscribe();
    let template = std::fs::read_to_string(manifest_dir().join("tests/corpus/phones/microsip.sip"))
        .expect("phone template");
    let mut phone = Phone::new(server.sip_addr(), &format!("reinvite-{:016x}", rand_u64())).await;
    let invite = phone.fill(&template);
    phone.send(&invite).await;
    let ok = phone.final_reply("INVITE", Duration::from_secs(10)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let mut cseq: u32 = header(&invite, &["CSeq"])
        .and_then(|c| c.split_whitespace().next().and_then(|n| n.parse().ok()))
        .expect("INVITE CSeq");
    let ack = phone.in_dialog(&invite, &ok, "ACK", cseq);
    phone.send(&ack).await;
    let base: u16 = phone.vars["rtp"].parse().expect("port");

    // Media changes taken in turn, up to the call's re-INVITE burst less the two below
    // (past it, see `sip_reinvite_flood.rs`).
    for i in 0..(REFRESH_BURST as u16 - 2) {
        cseq += 1;
        let text = reinvite(&mut phone, &invite, &ok, cseq, base + 2 * (i % 2));
        phone.send(&text).await;
        let reply = phone.final_reply("INVITE", Duration::from_secs(10)).await;
        assert_eq!(reply.status, 200, "re-INVITE {i}: {}", reply.text);
        let ack = phone.in_dialog(&invite, &ok, "ACK", cseq);
        phone.send(&ack).await;
    }

    // One overlapping another (no ACK yet for the first) is refused, not queued.
    let (first, second) = (cseq + 1, cseq + 2);
    let a = reinvite(&mut phone, &invite, &ok, first, base + 2);
    let b = reinvite(&mut phone, &invite, &ok, second, base);
    phone.send(&a).await;
    phone.send(&b).await;
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        let reply = phone.final_reply("INVITE", Duration::from_secs(10)).await;
        statuses.push(reply.status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 491], "glare is 491, not the rate's 500");
    let ack = phone.in_dialog(&invite, &ok, "ACK", first);
    phone.send(&ack).await;

    let bye = phone.in_dialog(&invite, &ok, "BYE", second + 1);
    phone.send(&bye).await;
    let bye_ok = phone.final_reply("BYE", Duration::from_secs(10)).await;
    assert_eq!(bye_ok.status, 200, "{}", bye_ok.text);
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
}

/// These floods come from one source on purpose: the per-call policy is under test, so the
/// per-source rate limits (tested in `sip_floods.rs`) are off.
fn without_source_limits() -> zendesk_ivr::config::Config {
    let mut config = test_config();
    config.sip.rate_limit_requests_per_s = 0;
    config.sip.rate_limit_invites_per_s = 0;
    config
}
