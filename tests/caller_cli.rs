//! `zendesk-ivr call` run as a binary against the IVR (with the Zendesk simulator): its
//! JSON summary is checked against what the IVR reports for the same call.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::baresip::sox_rms;
use common::{next_summary, quick_ivr_config, start, with_simulator};
use serde_json::Value;
use zendesk_ivr::demo::agent::DemoAgent;
use zendesk_ivr::ivr::outcome::CallOutcome;
use zendesk_ivr::zendesk::sim::SimState;

/// Runs `zendesk-ivr call` with `args` (bounded); returns its exit status and JSON.
async fn call(target: SocketAddr, args: &[&str]) -> (std::process::ExitStatus, Value) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
    cmd.arg("call").arg(format!("sip:ivr@{target}")).args(args).arg("--json");
    cmd.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the call ended within 60 s")
        .expect("zendesk-ivr runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "no JSON ({err}):\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status, json)
}

/// A WAV of a tone, for the agent's greeting.
fn tone_wav(dir: &Path) -> Vec<u8> {
    let path = dir.join("greeting.wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&path)
        .args(["synth", "1.5", "sine", "440", "vol", "0.3"])
        .status()
        .expect("sox runs");
    assert!(status.success());
    std::fs::read(path).expect("the greeting")
}

#[tokio::test(flavor = "multi_thread")]
async fn press_2_by_rfc4733_ends_the_call_and_the_recording_holds_the_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    let server = start(config).await;
    let mut summaries = server.subscribe();
    let wav = dir.path().join("heard.wav");
    let wav_arg = wav.to_str().expect("utf-8 path");
    let args = ["--from", "+4798765433", "--dtmf", "2", "--dtmf-at", "2", "--record", wav_arg];
    let (status, json) = call(server.sip_addr(), &args).await;

    assert!(status.success(), "{json:#}");
    assert_eq!(json["answered"], true, "{json:#}");
    assert_eq!(json["final_status"], 200);
    assert_eq!(json["digits_sent"], "2");
    assert_eq!(json["dtmf_mode"], "rfc4733");
    assert_eq!(json["digits_as_tones"], 0, "the IVR offers telephone-event");
    assert_eq!(json["hung_up_by"], "far_end", "{json:#}");
    assert_eq!(json["hangup_cause"], "bye");
    assert_eq!(json["refer"], Value::Null);
    assert_eq!(json["codec"], "PCMU");
    assert!(json["time_to_answer_ms"].as_u64().expect("time to answer") < 5000);
    assert!(json["answer_to_first_rtp_ms"].as_u64().expect("first RTP") < 2000, "{json:#}");
    assert!(json["packets_received"].as_u64().expect("packets") > 50, "{json:#}");
    assert!(json["pacing"]["max_deviation_ms"].as_f64().is_some());
    assert_eq!(json["ok"], true);

    let summary = next_summary(&mut summaries).await;
    assert_eq!(summary.digits, "2");
    let report = summary.report.expect("the IVR's report");
    assert_eq!(report.outcome, CallOutcome::EndedByCaller);
    assert_eq!(report.language.as_str(), "nb");
    assert_eq!(json["recording"], wav_arg);
    let speech = sox_rms(&wav, 0.0, 2.0);
    assert!(speech > 0.02, "nothing voiced in the recording (RMS {speech})");
}

#[tokio::test(flavor = "multi_thread")]
async fn press_2_by_sip_info_over_tcp_reaches_the_menu() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    let server = start(config).await;
    let mut summaries = server.subscribe();
    let args = [
        "--from",
        "+4798765433",
        "--dtmf",
        "2",
        "--dtmf-at",
        "2",
        "--dtmf-mode",
        "info",
        "--transport",
        "tcp",
    ];
    let (status, json) = call(server.sip_addr(), &args).await;

    assert!(status.success(), "{json:#}");
    assert_eq!(json["dtmf_mode"], "info");
    assert_eq!(json["digits_sent"], "2");
    assert_eq!(json["hung_up_by"], "far_end", "{json:#}");
    let summary = next_summary(&mut summaries).await;
    assert_eq!(summary.digits, "2");
    assert_eq!(summary.report.expect("the IVR's report").outcome, CallOutcome::EndedByCaller);
}

/// `--dtmf-mode inband`: the caller offers no telephone-event, so the IVR listens for tones
/// and hears the 2 in the audio.
#[tokio::test(flavor = "multi_thread")]
async fn press_2_as_tones_reaches_the_menu() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    let server = start(config).await;
    let mut summaries = server.subscribe();
    let args = ["--from", "+4798765433", "--dtmf", "2", "--dtmf-at", "2", "--dtmf-mode", "inband"];
    let (status, json) = call(server.sip_addr(), &args).await;

    assert!(status.success(), "{json:#}");
    assert_eq!(json["dtmf_mode"], "inband");
    assert_eq!(json["digits_sent"], "2");
    assert_eq!(json["hung_up_by"], "far_end", "{json:#}");
    let summary = next_summary(&mut summaries).await;
    assert_eq!(summary.digits, "2");
    assert_eq!(summary.report.expect("the IVR's report").outcome, CallOutcome::EndedByCaller);
}

#[tokio::test(flavor = "multi_thread")]
async fn press_1_and_follow_the_refer_to_the_agent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let greeting = tone_wav(dir.path());
    let agent = DemoAgent::start("127.0.0.1".parse().expect("ip"), greeting.into())
        .await
        .expect("the agent starts");
    let mut config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    config.routing.priority_queue = agent.uri("priority");
    config.routing.default_queue = agent.uri("support");
    let server = start(config).await;
    let mut summaries = server.subscribe();
    let wav = dir.path().join("heard.wav");
    let wav_arg = wav.to_str().expect("utf-8 path");
    let args = [
        "--from",
        "+4798765432",
        "--dtmf",
        "1",
        "--dtmf-at",
        "2",
        "--follow-refer",
        "--duration",
        "8",
        "--record",
        wav_arg,
    ];
    let (status, json) = call(server.sip_addr(), &args).await;

    assert!(status.success(), "{json:#}");
    let target = json["refer"]["target"].as_str().expect("a REFER target");
    assert_eq!(target, agent.uri("priority"), "{json:#}");
    assert_eq!(json["refer"]["followed"], true);
    assert_eq!(json["refer"]["status"], 200, "{json:#}");
    assert_eq!(json["hung_up_by"], "caller");
    assert_eq!(json["hangup_cause"], "duration_reached");
    assert_eq!(json["ok"], true);
    assert_eq!(agent.answered(), 1);

    let summary = next_summary(&mut summaries).await;
    match summary.report.expect("the IVR's report").outcome {
        CallOutcome::Transferred { queue, target, .. } => {
            assert_eq!(queue, "priority");
            assert_eq!(target, agent.uri("priority"));
        }
        other => panic!("not transferred: {other:?}"),
    }
    // The last seconds are the agent's greeting tone (then its echo of our silence).
    let duration: f32 = hound::WavReader::open(&wav).expect("the recording").duration() as f32;
    let seconds = duration / 8000.0;
    assert!(seconds > 5.0, "recording of {seconds} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_call_exits_non_zero_with_the_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = with_simulator(quick_ivr_config(), &dir, SimState::sample()).await;
    let server = start(config).await;
    // Draining: new calls get 503.
    assert_eq!(server.drain(Duration::ZERO).await, 0);
    let (status, json) = call(server.sip_addr(), &["--from", "+4798765432"]).await;

    assert_eq!(status.code(), Some(1), "{json:#}");
    assert_eq!(json["answered"], false);
    assert_eq!(json["final_status"], 503);
    assert_eq!(json["hung_up_by"], "far_end");
    assert_eq!(json["hangup_cause"], "refused");
    assert_eq!(json["ok"], false);
}
