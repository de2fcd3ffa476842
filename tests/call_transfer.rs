//! Transferring a live call (`RunningServer::transfer`) against real SIPp peers: by REFER
//! (the caller's phone follows it), and by bridging to an agent we call.

mod common;

use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use common::sipp_agent::SippAgent;
use common::{next_summary, sipp, start, test_config};
use zendesk_ivr::call::CallSummary;
use zendesk_ivr::config::TransferMode;
use zendesk_ivr::post_call;
use zendesk_ivr::server::RunningServer;
use zendesk_ivr::transfer::{TransferRecord, TransferResult};
use zendesk_ivr::zendesk::comment::CallOutcome;

const WAIT: Duration = Duration::from_secs(15);

/// Waits until the call is established, then asks for the transfer.
async fn transfer_when_up(server: &RunningServer, call_id: &str, target: &str) {
    tokio::time::timeout(WAIT, server.wait_for_call(call_id))
        .await
        .expect("the call is established in time");
    server.transfer(call_id, target).await.expect("the transfer starts");
}

#[tokio::test(flavor = "multi_thread")]
async fn refer_accepted_and_completed_hangs_up_and_records_the_transfer() {
    let mut config = test_config();
    config.transfer.mode = TransferMode::Refer;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let target = "sip:queue@127.0.0.1:5999";
    let call_id = "xfer-refer-1@test";
    let caller =
        sipp("uac_refer.xml", server.sip_addr(), "u1", &["-cid_str", "xfer-refer-%u@test"]);
    let (run, ()) = tokio::join!(caller, transfer_when_up(&server, call_id, target));
    run.assert_ok();
    assert_eq!(run.count_received("REFER", &format!("Refer-To: <{target}>")), 1);
    assert_eq!(run.count_received("BYE", call_id), 1, "we hang up after the 200 sipfrag");

    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.call_id, call_id);
    assert_eq!(
        summary.transfer,
        Some(TransferRecord {
            target: target.into(),
            mode: TransferMode::Refer,
            result: TransferResult::Transferred,
        })
    );
    assert!(summary.end.contains("LocalBye"), "{summary:?}");
    assert_eq!(post_call::outcome(&summary), CallOutcome::Transferred { queue: target.into() });
    // The call is gone from the registry: no second transfer.
    assert!(server.transfer(call_id, target).await.is_err());
}

fn agent(scenario: &str) -> SippAgent {
    SippAgent::start(scenario)
}

/// What the caller's phone heard: one entry per RTP packet from the endpoint.
#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    ssrc: u32,
    seq: u16,
    /// Our own audio, come back through the agent's echo.
    echo: bool,
}

/// The payload the caller's phone sends (PCMU), recognisable when it comes back.
const CALLER_AUDIO: [u8; 160] = [0x55; 160];

/// The caller's RTP: sends [`CALLER_AUDIO`] every 20 ms to wherever the endpoint's RTP
/// comes from (symmetric RTP), and records every packet it receives, until `stop`.
async fn caller_phone(socket: UdpSocket, mut stop: oneshot::Receiver<()>) -> Vec<Heard> {
    let mut heard = Vec::new();
    let mut remote = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut seq, mut ts) = (1000u16, 0u32);
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = &mut stop => return heard,
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let Some(packet) = buf.get(..n) else { continue };
                let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { continue };
                remote = Some(from);
                heard.push(Heard {
                    at: Instant::now(),
                    ssrc: rtp.ssrc(),
                    seq: rtp.sequence_number().into(),
                    echo: rtp.payload() == CALLER_AUDIO,
                });
            }
            _ = tick.tick() => {
                let Some(to) = remote else { continue };
                let packet = rtp_rs::RtpPacketBuilder::new()
                    .payload_type(0)
                    .ssrc(0xCA11_E500)
                    .sequence(seq.into())
                    .timestamp(ts)
                    .payload(&CALLER_AUDIO)
                    .build()
                    .expect("RTP packet");
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                let _ = socket.send_to(&packet, to).await;
            }
        }
    }
}

/// Runs a bridge-mode transfer of a SIPp caller (RTP on a test socket) to `agent`;
/// returns what the caller heard, when the transfer was asked for, and the summary.
async fn bridged_call(agent: &SippAgent, call_id: &str) -> (Vec<Heard>, Instant, CallSummary) {
    bridged_caller("uac_wait_transfer.xml", agent, call_id).await
}

/// [`bridged_call`] with the caller's scenario `scenario`.
async fn bridged_caller(
    scenario: &str,
    agent: &SippAgent,
    call_id: &str,
) -> (Vec<Heard>, Instant, CallSummary) {
    let mut config = test_config();
    config.transfer.mode = TransferMode::Bridge;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let phone = UdpSocket::bind("127.0.0.1:0").await.expect("bind the caller's RTP");
    let phone_port = phone.local_addr().expect("address").port().to_string();
    let (stop, stopped) = oneshot::channel();
    let phone = tokio::spawn(caller_phone(phone, stopped));
    let cid = call_id.replace("-1@", "-%u@");
    let args = ["-cid_str", &cid, "-key", "caller_rtp", &phone_port];
    let caller = sipp(scenario, server.sip_addr(), "u1", &args);
    let asked = async {
        transfer_when_up(&server, call_id, &agent.target()).await;
        Instant::now()
    };
    let (run, asked_at) = tokio::join!(caller, asked);
    run.assert_ok();
    let summary = next_summary(&mut ended).await;
    let _ = stop.send(());
    let heard = phone.await.expect("the caller's phone task");
    (heard, asked_at, summary)
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_plays_hold_music_while_the_agent_rings_then_relays_both_ways() {
    let agent = agent("uas_answer_late.xml");
    let call_id = "xfer-bridge-1@test";
    let target = agent.target();
    let (heard, asked_at, summary) = bridged_call(&agent, call_id).await;
    // The caller hung up: the agent got a BYE (its scenario waits for one).
    agent.assert_passed().await;

    // Hold music while the agent rang (it answers after 1.5 s).
    let ringing = heard
        .iter()
        .filter(|h| !h.echo && h.at > asked_at && h.at < asked_at + Duration::from_millis(1200))
        .count();
    assert!(ringing >= 30, "{ringing} packets of hold music in the first 1.2 s of ringing");

    // Then our audio came back through the agent's echo: the relay carried it both ways.
    let first_echo =
        heard.iter().position(|h| h.echo).expect("the agent's echo reached the caller");
    let echoes = heard.iter().filter(|h| h.echo).count();
    assert!(echoes >= 50, "only {echoes} echoed packets");
    // The caller's stream continued across the handover: same SSRC, next sequence.
    let (before, after) = (heard[first_echo - 1], heard[first_echo]);
    assert!(heard.iter().all(|h| h.ssrc == before.ssrc), "one SSRC for the whole call");
    assert_eq!(after.seq, before.seq.wrapping_add(1), "no sequence jump at the bridge");
    assert!(heard[first_echo..].iter().all(|h| h.echo), "hold music stopped once bridged");

    assert_eq!(summary.call_id, call_id);
    assert_eq!(
        summary.transfer,
        Some(TransferRecord {
            target,
            mode: TransferMode::Bridge,
            result: TransferResult::Transferred,
        })
    );
    assert!(summary.end.contains("RemoteBye"), "{summary:?}");
    assert!(matches!(post_call::outcome(&summary), CallOutcome::Transferred { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn bridged_caller_can_hold_and_send_info_digits_to_the_agent() {
    // The agent's scenario fails unless it gets an INFO with "Signal=5".
    let agent = agent("uas_answer_info.xml");
    let call_id = "xfer-hold-1@test";
    let (heard, _, summary) = bridged_caller("uac_bridged_info_hold.xml", &agent, call_id).await;
    agent.assert_passed().await;
    assert_eq!(summary.transfer.map(|t| t.result), Some(TransferResult::Transferred));

    // The caller held the call (sendonly) for 1.5 s while still sending audio: the relay
    // sent nothing back in that time, and the echo came back after the unhold.
    let echoes: Vec<Instant> = heard.iter().filter(|h| h.echo).map(|h| h.at).collect();
    assert!(echoes.len() >= 50, "only {} echoed packets", echoes.len());
    let (gap, resumed_after) =
        echoes.windows(2).map(|w| (w[1] - w[0], w[1])).max_by_key(|(gap, _)| *gap).expect("echoes");
    assert!(gap >= Duration::from_millis(1000), "longest pause in the echo: {gap:?}");
    let after = echoes.iter().filter(|at| **at >= resumed_after).count();
    assert!(after >= 25, "only {after} echoed packets after the unhold");
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_agent_keeps_the_caller_on_hold_music_and_records_the_failure() {
    let agent = agent("uas_busy.xml");
    let call_id = "xfer-busy-1@test";
    let target = agent.target();
    let (heard, asked_at, summary) = bridged_call(&agent, call_id).await;
    agent.assert_passed().await;

    assert_eq!(
        summary.transfer,
        Some(TransferRecord {
            target,
            mode: TransferMode::Bridge,
            result: TransferResult::Refused(486),
        })
    );
    // The caller stayed with us to the end (it hung up), hearing hold music after the 486.
    assert!(summary.end.contains("RemoteBye"), "{summary:?}");
    assert!(
        matches!(post_call::outcome(&summary), CallOutcome::Error { reason } if reason.contains("486")),
        "the comment says the transfer failed"
    );
    assert!(heard.iter().all(|h| !h.echo), "no bridge");
    let later = heard.iter().filter(|h| h.at > asked_at + Duration::from_secs(1)).count();
    assert!(later >= 50, "only {later} packets after the failed transfer");
}

#[tokio::test(flavor = "multi_thread")]
async fn refer_declined_keeps_the_caller_and_records_the_failure() {
    let mut config = test_config();
    config.transfer.mode = TransferMode::Refer;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let target = "sip:queue@127.0.0.1:5999";
    let call_id = "xfer-declined-1@test";
    let args = ["-cid_str", "xfer-declined-%u@test"];
    let caller = sipp("uac_refer_declined.xml", server.sip_addr(), "u1", &args);
    let (run, ()) = tokio::join!(caller, transfer_when_up(&server, call_id, target));
    // The caller's scenario ends with its own BYE answered: we did not hang up on it.
    run.assert_ok();
    assert_eq!(run.count_received("BYE", call_id), 0, "we keep the caller");

    let summary = next_summary(&mut ended).await;
    assert_eq!(
        summary.transfer,
        Some(TransferRecord {
            target: target.into(),
            mode: TransferMode::Refer,
            result: TransferResult::Refused(603),
        })
    );
    assert!(summary.end.contains("RemoteBye"), "{summary:?}");
    assert!(
        matches!(post_call::outcome(&summary), CallOutcome::Error { reason } if reason.contains("603")),
        "the comment says the transfer failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_hanging_up_ends_the_bridged_call() {
    let mut config = test_config();
    config.transfer.mode = TransferMode::Bridge;
    let server = start(config).await;
    let mut ended = server.subscribe();
    let agent = agent("uas_hangs_up.xml");
    let call_id = "xfer-agent-bye-1@test";
    let args = ["-cid_str", "xfer-agent-bye-%u@test"];
    // The caller's scenario waits for our BYE.
    let caller = sipp("uac_remote_bye.xml", server.sip_addr(), "u1", &args);
    let target = agent.target();
    let (run, ()) = tokio::join!(caller, transfer_when_up(&server, call_id, &target));
    run.assert_ok();
    agent.assert_passed().await;
    let summary = next_summary(&mut ended).await;
    assert_eq!(summary.transfer.as_ref().map(|t| &t.result), Some(&TransferResult::Transferred));
    assert!(summary.end.contains("LocalBye"), "{summary:?}");
}
