//! Media against a real softphone (baresip): it calls the endpoint, records what it hears
//! (sndfile), and presses keys (/sndcode).
//!
//! Checked: the recording is not silent and is the welcome prompt (normalised
//! cross-correlation ≥ 0.8 with what we encoded, over 2 s, after aligning on the 10 ms RMS
//! envelope, whose own correlation must be ≥ 0.8); our RTP, captured on loopback with
//! dumpcap (needs capture rights, as root in CI), leaves every 20 ms (mean interval within
//! 0.2 ms of 20 ms, and 95 % of intervals within 5 ms of it even in a debug build on a
//! shared 2-core machine); and the keys pressed reach the call in order.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use common::baresip::{Baresip, recording, rms};
use common::{manifest_dir, next_summary, start, test_config};
use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::codec::Decoder;
use zendesk_ivr::media::prompt::{Limits, encode, read_wav_file};

/// What the far end should hear of the welcome prompt: our PCMU frames, decoded.
fn welcome_as_sent() -> Vec<f32> {
    let pcm = read_wav_file(&manifest_dir().join("audio/welcome.wav"), Limits::default())
        .expect("welcome.wav");
    let frames = encode(&pcm, CodecName::Pcmu).expect("encode");
    let mut dec = Decoder::new(CodecName::Pcmu).expect("decoder");
    let mut out = Vec::new();
    for f in frames.iter() {
        dec.decode_into(&f.payload, &mut out).expect("decode");
    }
    out.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(80).map(rms).collect()
}

fn ncc(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().sum::<f32>() / n as f32;
    let mb = b.iter().sum::<f32>() / n as f32;
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x - ma), f64::from(y - mb));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 { 0.0 } else { (ab / (aa * bb).sqrt()) as f32 }
}

/// Best (lag, correlation) of `reference[..len]` inside `heard`, for lags in `lags`.
fn best_lag(
    heard: &[f32],
    reference: &[f32],
    len: usize,
    lags: impl Iterator<Item = usize>,
) -> (usize, f32) {
    let reference = &reference[..len.min(reference.len())];
    lags.filter(|&lag| lag + reference.len() <= heard.len())
        .map(|lag| (lag, ncc(&heard[lag..lag + reference.len()], reference)))
        .fold((0, f32::MIN), |best, c| if c.1 > best.1 { c } else { best })
}

/// Starts dumpcap on loopback for `seconds`, capturing UDP from `ports`; returns once it
/// is capturing, with the file it writes and the process to wait for.
async fn capture(ports: &str, seconds: u32, out: &Path) -> tokio::process::Child {
    let (low, high) = ports.split_once('-').expect("LOW-HIGH");
    let mut child = tokio::process::Command::new("dumpcap")
        .args(["-i", "lo", "-q", "-P", "-f", &format!("udp src portrange {low}-{high}")])
        .args(["-a", &format!("duration:{seconds}"), "-w"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("dumpcap runs (package tshark)");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Capturing on") {
                return;
            }
        }
        panic!("dumpcap stopped before capturing (capture rights?)");
    })
    .await
    .expect("dumpcap started capturing within 10 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Arrival times (seconds) of the RTP packets of the most common SSRC in a pcap.
fn rtp_arrivals(pcap: &Path) -> Vec<f64> {
    let file = std::fs::File::open(pcap).expect("pcap");
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap header");
    let mut by_ssrc: std::collections::HashMap<u32, Vec<f64>> = Default::default();
    while let Some(Ok(packet)) = reader.next_packet() {
        // Loopback frames: 14-byte Ethernet header, IPv4, UDP.
        let data = &packet.data;
        let Some(ip) = data.get(14..) else { continue };
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        let Some(rtp) = ip.get(ihl + 8..) else { continue };
        let Ok(r) = rtp_rs::RtpReader::new(rtp) else { continue };
        by_ssrc.entry(r.ssrc()).or_default().push(packet.timestamp.as_secs_f64());
    }
    by_ssrc.into_values().max_by_key(|v| v.len()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn baresip_hears_the_welcome_prompt_at_20ms_and_its_keys_reach_the_call() {
    let config = test_config();
    let ports = config.media.rtp_ports.clone();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let source = common::baresip::tone_wav(0.1);

    let pcap_dir = tempfile::tempdir().expect("temp dir");
    let pcap = pcap_dir.path().join("rtp.pcap");
    let dumpcap = capture(&ports, 4, &pcap).await;

    let uri = format!("sip:ivr@{}", server.sip_addr());
    let mut phone = Baresip::start(source.path(), Some(&uri)).await;
    phone.wait_for("Call established", Duration::from_secs(20)).await;
    // Record the first seconds of the welcome prompt: the capture runs 4 s.
    let status = tokio::time::timeout(Duration::from_secs(20), dumpcap.wait_with_output())
        .await
        .expect("dumpcap stops after its duration")
        .expect("dumpcap");
    assert!(status.status.success(), "dumpcap: {status:?}");
    phone.command("/sndcode 12#").await;
    // Let the phone play the three key presses out before hanging up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phone.command("/hangup").await;
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered);
    assert_eq!(summary.digits, "12#", "{summary:?}");

    // Pacing of what we sent.
    let arrivals = rtp_arrivals(&pcap);
    assert!(arrivals.len() >= 100, "captured {} packets of our stream", arrivals.len());
    let intervals: Vec<f64> = arrivals.windows(2).map(|w| (w[1] - w[0]) * 1000.0).collect();
    let mean = (arrivals[arrivals.len() - 1] - arrivals[0]) * 1000.0 / intervals.len() as f64;
    assert!((mean - 20.0).abs() < 0.2, "mean interval {mean:.3} ms");
    let near = intervals.iter().filter(|&&i| (i - 20.0).abs() <= 5.0).count();
    assert!(
        near * 100 >= intervals.len() * 95,
        "{near} of {} intervals within 20±5 ms",
        intervals.len()
    );

    // What the phone heard (sndfile closes the file when the call ends).
    phone.wait_for("terminated", Duration::from_secs(10)).await;
    let heard = recording(&phone.recordings());
    phone.stop().await;
    let reference = welcome_as_sent();
    assert!(heard.len() >= 8000 * 3, "recorded {} samples", heard.len());
    let level = rms(&heard[..8000 * 4]);
    assert!(level > 0.01, "the recording is silent (RMS {level})");
    // Coarse alignment on the 10 ms envelope (a 2 s window of the prompt from its first
    // 0.5 s, found within the first 2.5 s heard), then sample-exact around it.
    let (heard_env, ref_env) = (envelope(&heard), envelope(&reference));
    let ((env_lag, env_corr), ref_start) = (0..50)
        .map(|start| (best_lag(&heard_env, &ref_env[start..], 200, 0..250), start))
        .fold(((0, f32::MIN), 0), |best, c| if c.0.1 > best.0.1 { c } else { best });
    assert!(
        env_corr >= 0.8,
        "envelope correlation {env_corr} at lag {env_lag}, prompt from {ref_start}"
    );
    let coarse = env_lag * 80;
    let (lag, corr) = best_lag(
        &heard,
        &reference[ref_start * 80..],
        16_000,
        coarse.saturating_sub(160)..coarse + 160,
    );
    assert!(corr >= 0.8, "waveform correlation {corr} at lag {lag} samples");
}
