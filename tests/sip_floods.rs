//! Floods and overload with SIPp on loopback: a flood comes from 127.0.0.2, legitimate
//! callers from 127.0.0.1. Per-source limits hold the flood to its share, the flooder is
//! logged once in the security-event form, and the legitimate traffic is served.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::ivr_process::IvrProcess;
use common::phone::{Heard, Phone};
use common::{SippRun, free_port_pair, free_sip_port, manifest_dir, sipp, start, test_config};

const FLOODER: &str = "127.0.0.2";

/// Runs `scenario` from 127.0.0.2: `calls` requests at `rate` per second, with no
/// retransmissions and none of SIPp's default reactions (no BYE on an unexpected
/// answer), each waiting at most 1.5 s for its answer.
async fn flood(scenario: &str, target: SocketAddr, calls: u32, rate: u32) -> SippRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = dir.path().join("messages.log");
    let errors = dir.path().join("errors.log");
    let scenario = manifest_dir().join("tests/sipp").join(scenario);
    let output = tokio::process::Command::new("sipp")
        .arg(target.to_string())
        .args(["-sf", scenario.to_str().expect("utf-8 path")])
        .args(["-i", FLOODER, "-p", &free_sip_port().to_string(), "-t", "u1"])
        .args(["-mp", &free_port_pair().to_string(), "-nr", "-nd"])
        .args(["-m", &calls.to_string(), "-r", &rate.to_string(), "-l", &calls.to_string()])
        .args(["-timeout", "30s", "-nostdin"])
        .args(["-trace_msg", "-message_file", messages.to_str().expect("utf-8 path")])
        .args(["-trace_err", "-error_file", errors.to_str().expect("utf-8 path")])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(40), output)
        .await
        .expect("the flood ends within 40 s")
        .expect("sipp runs (is sip-tester installed? scripts/setup.sh installs it)");
    SippRun::from_output(&output, &messages, &errors)
}

fn sent(run: &SippRun, method: &str) -> usize {
    run.messages
        .split("----------------------------------------------- ")
        .filter(|block| block.contains("message sent"))
        .filter_map(|block| block.split_once("):\n").map(|(_, msg)| msg))
        .filter(|msg| msg.trim_start().starts_with(method))
        .count()
}

/// 100 INVITEs at 50/s from one source whose limit is 5 new INVITEs a second: about
/// 5 + 5/s get in, the rest are dropped without a word; the source is logged once as
/// rate-limited; a caller from another address meanwhile completes a whole call.
#[tokio::test(flavor = "multi_thread")]
async fn an_invite_flood_at_ten_times_the_limit_leaves_a_legitimate_caller_unharmed() {
    let mut ivr = IvrProcess::start(&[
        ("ZENDESK_IVR_SIP__RATE_LIMIT_INVITES_PER_S", "5"),
        ("ZENDESK_IVR_SIP__RATE_LIMIT_REQUESTS_PER_S", "100"),
    ])
    .await;
    let target = ivr.sip;
    let flooding = tokio::spawn(flood("flood_invite.xml", target, 100, 50));
    ivr.wait_for(
        &format!("SECURITY rate-limited src={FLOODER} detail=\"INVITE: over 5 new INVITEs/s\""),
        Duration::from_secs(20),
    )
    .await;
    // During the flood.
    let call = sipp("uac_bye.xml", target, "u1", &[]).await;
    let flood_run = flooding.await.expect("flood task");
    call.assert_ok();
    assert_eq!(sent(&flood_run, "INVITE"), 100, "{}", flood_run.stderr);
    let admitted = flood_run.count_received("SIP/2.0 488", "");
    // 2 s of flood (and up to 1.5 s of answers after): a burst of 5, then 5 a second.
    assert!((5..=25).contains(&admitted), "{admitted} of the flood's INVITEs got in");
    let dropped = ivr.counter("sip_requests_rejected_total{reason=\"source_invite_rate\"}").await;
    assert_eq!(dropped as usize, 100 - admitted, "every other INVITE was counted as dropped");
    let log = ivr.drain_log();
    let flagged: Vec<&String> =
        log.iter().filter(|l| l.contains("SECURITY rate-limited")).collect();
    assert_eq!(flagged.len(), 1, "one line per source and minute: {flagged:#?}");
    assert!(!log.iter().any(|l| l.contains("SECURITY") && l.contains("src=127.0.0.1 ")));
    ivr.stop().await;
}

/// An OPTIONS and a REGISTER flood from one source get no more answers than its request
/// limit allows, while OPTIONS from another source are answered at once.
async fn request_flood(scenario: &str, answer: &str) {
    let mut config = test_config();
    config.sip.rate_limit_requests_per_s = 20;
    let server = start(config).await;
    let target = server.sip_addr();
    let flooding = tokio::spawn({
        let scenario = scenario.to_string();
        async move { flood(&scenario, target, 300, 200).await }
    });
    // During the flood (it lasts 1.5 s, plus 1.5 s for the last answers).
    let ping = sipp("uac_options.xml", target, "u1", &[]).await;
    let flood_run = flooding.await.expect("flood task");
    ping.assert_ok();
    let method = scenario.trim_start_matches("flood_").trim_end_matches(".xml").to_uppercase();
    assert_eq!(sent(&flood_run, &method), 300, "{}", flood_run.stderr);
    let answered = flood_run.count_received(answer, "");
    // 1.5 s at 20/s with a burst of 20 is 50; allow for a slow start of SIPp.
    assert!((20..=70).contains(&answered), "{answered} of 300 {method}s answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_options_flood_is_held_to_the_source_limit() {
    request_flood("flood_options.xml", "SIP/2.0 200").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_register_flood_is_held_to_the_source_limit() {
    request_flood("flood_register.xml", "SIP/2.0 405").await;
}

/// No packet lost, and sound in it: the IVR's prompt, paced.
fn clean(heard: &[Heard]) -> Result<(), String> {
    let ours: Vec<&Heard> = heard.iter().filter(|h| !h.echo).collect();
    if ours.len() < 100 {
        return Err(format!("only {} packets in 3 s", ours.len()));
    }
    if ours.iter().any(|h| h.ssrc != ours[0].ssrc) {
        return Err("more than one SSRC".into());
    }
    let lost: usize = ours
        .windows(2)
        .map(|w| usize::from(w[1].seq.wrapping_sub(w[0].seq)).saturating_sub(1))
        .sum();
    if lost > 0 {
        return Err(format!("{lost} packets lost or reordered"));
    }
    if !ours.iter().any(|h| h.audible) {
        return Err("silence only".into());
    }
    Ok(())
}

/// Twice `sip.max_calls` callers at once: the excess gets 503 with Retry-After, and every
/// admitted call completes and hears its prompt without a lost packet.
#[tokio::test(flavor = "multi_thread")]
async fn at_twice_max_calls_the_excess_gets_503_and_the_calls_stay_clean() {
    const MAX_CALLS: usize = 4;
    let mut config = test_config();
    config.sip.max_calls = MAX_CALLS;
    let server = start(config).await;
    let target = server.sip_addr();
    let mut callers = Vec::new();
    for _ in 0..2 * MAX_CALLS {
        let phone = Phone::start(&[]).await;
        let port = phone.port.to_string();
        callers.push(tokio::spawn(async move {
            let run = sipp("uac_overload.xml", target, "u1", &["-key", "caller_rtp", &port]).await;
            (run, phone.stop().await)
        }));
    }
    let (mut answered, mut refused) = (0, 0);
    for caller in callers {
        let (run, heard) = caller.await.expect("caller task");
        run.assert_ok();
        if run.count_received("SIP/2.0 503", "Retry-After:") == 1 {
            refused += 1;
            continue;
        }
        assert_eq!(run.count_received("SIP/2.0 200", "application/sdp"), 1, "{}", run.messages);
        answered += 1;
        if let Err(why) = clean(&heard) {
            panic!("an admitted call's audio is not clean: {why}");
        }
    }
    assert_eq!((answered, refused), (MAX_CALLS, MAX_CALLS));
}

/// The answers admission gives instead of silence, from 127.0.0.2: 403 outside
/// `sip.allow` with `deny_response = "403"`; 503 with Retry-After to a trusted source
/// over its limit; 503 with Retry-After past `sip.max_cps`.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_that_are_answered_carry_their_status() {
    use zendesk_ivr::config::DenyResponse;

    let mut config = test_config();
    config.sip.allow = vec!["127.0.0.1".parse().unwrap()];
    config.sip.deny_response = DenyResponse::Forbidden;
    let server = start(config).await;
    let run = flood("flood_options.xml", server.sip_addr(), 3, 10).await;
    assert_eq!(run.count_received("SIP/2.0 403", ""), 3, "{}", run.messages);
    sipp("uac_options.xml", server.sip_addr(), "u1", &[]).await.assert_ok();

    let mut config = test_config();
    config.sip.trusted_sources = vec!["127.0.0.0/30".parse().unwrap()];
    config.sip.rate_limit_requests_per_s = 5;
    let server = start(config).await;
    let run = flood("flood_options.xml", server.sip_addr(), 30, 100).await;
    let (ok, busy) =
        (run.count_received("SIP/2.0 200", ""), run.count_received("SIP/2.0 503", "Retry-After:"));
    assert_eq!(ok + busy, 30, "every request of a trusted source is answered");
    assert!((5..=10).contains(&ok), "{ok} within the limit, {busy} over it");

    let mut config = test_config();
    config.sip.max_cps = 2;
    let server = start(config).await;
    let run = flood("flood_invite.xml", server.sip_addr(), 20, 50).await;
    let (taken, busy) =
        (run.count_received("SIP/2.0 488", ""), run.count_received("SIP/2.0 503", "Retry-After:"));
    assert_eq!(taken + busy, 20, "every new call is answered");
    assert!((2..=4).contains(&taken), "{taken} new calls within max_cps, {busy} over it");
}
