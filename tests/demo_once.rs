//! `zendesk-ivr demo --once`: the whole flow on loopback (the IVR, the Zendesk simulator
//! with its sample customers, the built-in agent, one test call per customer). It must
//! exit 0, say per call what was heard, pressed, routed, transferred and commented, and
//! leave voiced recordings.

mod common;

use std::time::Duration;

use common::baresip::sox_rms;
use common::manifest_dir;

#[tokio::test(flavor = "multi_thread")]
async fn demo_once_runs_every_sample_call_and_leaves_voiced_recordings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recordings = dir.path().join("recordings");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
    cmd.args(["demo", "--once", "--sip", "127.0.0.1:0", "--simulator", "127.0.0.1:0"])
        .arg("--outbox")
        .arg(dir.path().join("outbox.sqlite"))
        .arg("--recordings")
        .arg(&recordings)
        // The welcome prompt and hold music are found from the project folder.
        .current_dir(manifest_dir())
        .env("ZENDESK_IVR_ADMIN__LISTEN", "127.0.0.1:0")
        .env("ZENDESK_IVR_TTS__CACHE_DIR", env!("CARGO_TARGET_TMPDIR").to_string() + "/tts-cache")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the demo ended within 120 s")
        .expect("zendesk-ivr runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("Every call did what it should."), "{stdout}");

    let block = |number: &str| -> String {
        let start = stdout.find(&format!("({number})")).unwrap_or_else(|| panic!("{stdout}"));
        let rest = &stdout[start..];
        rest[..rest.find("=> ").map_or(rest.len(), |i| i + 10)].to_string()
    };
    // The urgent ticket: Norwegian sentence, 1, the priority queue, the agent answered.
    let kari = block("+4798765432");
    assert!(kari.contains("heard:     [nb] Hei Kari."), "{kari}");
    assert!(kari.contains("digits:    1"), "{kari}");
    assert!(kari.contains("route:     priority ->"), "{kari}");
    assert!(kari.contains("transferred to priority"), "{kari}");
    assert!(kari.contains("the agent answered: true"), "{kari}");
    assert!(kari.contains("comment:   ticket 102: Phone call from +4798765432"), "{kari}");
    assert!(kari.contains("=> ok"), "{kari}");
    // The normal ticket: 2 ends the call.
    let ola = block("+4798765433");
    assert!(ola.contains("heard:     [nb] Hei Ola."), "{ola}");
    assert!(ola.contains("digits:    2"), "{ola}");
    assert!(ola.contains("ended_by_caller"), "{ola}");
    assert!(ola.contains("comment:   ticket 104:"), "{ola}");
    // The unknown caller: English, 1, the default queue; the comment opened a ticket.
    let unknown = block("+4722334455");
    assert!(unknown.contains("heard:     [en] "), "{unknown}");
    assert!(unknown.contains("transferred to default"), "{unknown}");
    assert!(unknown.contains("Phone call from +4722334455"), "{unknown}");

    assert!(stdout.contains(&recordings.display().to_string()), "{stdout}");
    for name in ["urgent-kari", "normal-ola", "unknown"] {
        let wav = recordings.join(format!("{name}.wav"));
        assert!(wav.exists(), "no recording {}", wav.display());
        // The status sentence plays within the first seconds after the welcome.
        let speech = sox_rms(&wav, 0.5, 8.0);
        assert!(speech > 0.02, "{name}: the recording is not voiced (RMS {speech})");
    }
}
