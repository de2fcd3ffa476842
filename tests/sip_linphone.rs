//! Linphone (`linphone-cli` 5.1, default settings, headless) calls the endpoint: its INVITE
//! carries `+sip.instance="<urn:uuid:…>"` in Contact. The call is answered; a digit sent
//! as RFC 4733 and one sent as SIP INFO each reach the call once; what Linphone heard holds
//! voiced audio; an Opus-only offer is answered with Opus and carries RTP both ways; and
//! the BYE ends the call cleanly.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::linphone::{Dtmf, Linphone};
use common::{next_summary, start, test_config};
use pcap_file::pcap::PcapReader;
use tokio::io::{AsyncBufReadExt, BufReader};
use zendesk_ivr::sip::dialog::EndReason;

/// A silent source for Linphone to send: any voice in what it heard came from us.
fn silent_source(dir: &Path) -> PathBuf {
    let path = dir.join("silence.wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&path)
        .args(["trim", "0", "60"])
        .status()
        .expect("sox runs");
    assert!(status.success(), "sox made the source");
    path
}

/// `sox FILE -n stat` values by name (e.g. "RMS     amplitude", "Length (seconds)").
fn sox_stat(path: &Path) -> Option<(f64, f64)> {
    let out = std::process::Command::new("sox").arg(path).args(["-n", "stat"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((value("Length (seconds)")?, value("RMS     amplitude")?))
}

/// Seconds of audio in a WAV file Linphone is still writing. Its header is written only
/// when the recording ends, so the size is read as 16-bit mono at `rate` Hz.
fn recorded_seconds(path: &Path, rate: u32) -> f64 {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    size.saturating_sub(44) as f64 / f64::from(rate * 2)
}

/// Polls (every 100 ms, at most `within`) until Linphone has recorded `seconds` of the call.
async fn heard_for(heard: &Path, rate: u32, seconds: f64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let recorded = recorded_seconds(heard, rate);
        if recorded >= seconds {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Linphone recorded {recorded} s, less than {seconds} s, within {within:?}"
        );
    }
}

/// Voiced audio: at least `seconds` long, and far above silence.
fn assert_voiced(heard: &Path, seconds: f64) {
    let (length, rms) = sox_stat(heard).expect("sox reads what Linphone heard");
    assert!(length >= seconds, "heard {length} s");
    assert!(rms > 0.01, "what Linphone heard is silent (RMS {rms})");
}

#[tokio::test(flavor = "multi_thread")]
async fn linphone_default_call_rfc4733_and_info_digits_and_audio() {
    let server = start(test_config()).await;
    let mut ended = server.subscribe();
    let mut phone = Linphone::start().await;
    let source = silent_source(phone.dir.path());
    let heard = phone.audio_files(&source).await;
    phone.command(&format!("call sip:ivr@{}", server.sip_addr())).await;
    phone.wait_for(" connected.", Duration::from_secs(20)).await;

    phone.dtmf(Dtmf::Rfc4733).await;
    phone.command("4").await;
    heard_for(&heard, 8000, 2.0, Duration::from_secs(15)).await;
    phone.dtmf(Dtmf::Info).await;
    phone.command("7").await;
    heard_for(&heard, 8000, 4.0, Duration::from_secs(15)).await;
    phone.command("terminate").await;
    phone.wait_for("ended (No error)", Duration::from_secs(10)).await;

    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    let mut digits: Vec<char> = summary.digits.chars().collect();
    digits.sort_unstable();
    assert_eq!(digits, vec!['4', '7'], "each digit once: {:?}", summary.digits);
    assert_voiced(&heard, 4.0);
    // Linphone generated its instance id (sent as `+sip.instance` in Contact).
    let config = std::fs::read_to_string(phone.dir.path().join("linphonerc")).expect("linphonerc");
    assert!(config.lines().any(|l| l.starts_with("uuid=")), "{config}");
    phone.stop().await;
}

/// A packet capture on loopback (tshark), for seeing RTP between two processes.
struct Capture {
    child: tokio::process::Child,
    file: PathBuf,
}

impl Capture {
    async fn start(dir: &Path, filter: &str) -> Capture {
        let file = dir.join("rtp.pcap");
        let mut child = tokio::process::Command::new("tshark")
            .args(["-i", "lo", "-F", "pcap", "-f", filter, "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("tshark runs (scripts/setup.sh installs it)");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Capturing on") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "tshark started capturing on lo (capturing needs root)");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Capture { child, file }
    }

    /// Stops the capture (SIGINT, so the file is complete) and returns (source port,
    /// destination port, UDP payload) of every IPv4 UDP datagram.
    async fn stop(mut self) -> Vec<(u16, u16, Vec<u8>)> {
        let pid = self.child.id().expect("tshark pid").to_string();
        let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let mut reader = PcapReader::new(File::open(&self.file).expect("capture")).expect("pcap");
        let mut datagrams = Vec::new();
        while let Some(Ok(pkt)) = reader.next_packet() {
            let frame = &pkt.data;
            // Ethernet (loopback), IPv4, UDP.
            let Some(ip) = frame.get(14..) else { continue };
            if frame.get(12..14) != Some(&[0x08, 0x00]) || ip.get(9) != Some(&17) {
                continue;
            }
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            let Some(udp) = ip.get(ihl..) else { continue };
            let (Some(payload), Some(ports)) = (udp.get(8..), udp.get(0..4)) else { continue };
            let src = u16::from_be_bytes([ports[0], ports[1]]);
            let dst = u16::from_be_bytes([ports[2], ports[3]]);
            datagrams.push((src, dst, payload.to_vec()));
        }
        datagrams
    }
}

/// The payload type of an RTP packet (version 2, not RTCP).
fn rtp_payload_type(datagram: &[u8]) -> Option<u8> {
    let is_rtp =
        datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(200..=204).contains(&datagram[1]);
    is_rtp.then(|| datagram[1] & 0x7F)
}

#[tokio::test(flavor = "multi_thread")]
async fn linphone_opus_only_call_carries_audio_both_ways() {
    let config = test_config();
    let range = config.media.rtp_ports.clone();
    let server = start(config).await;
    let mut ended = server.subscribe();
    let mut phone = Linphone::start().await;
    phone.opus_only().await;
    let source = silent_source(phone.dir.path());
    let heard = phone.audio_files(&source).await;
    let linphone_rtp = phone.rtp_port;
    let capture = Capture::start(
        phone.dir.path(),
        &format!("udp and (portrange {range} or port {linphone_rtp})"),
    )
    .await;
    phone.command(&format!("call sip:ivr@{}", server.sip_addr())).await;
    phone.wait_for(" connected.", Duration::from_secs(20)).await;
    heard_for(&heard, 48000, 3.0, Duration::from_secs(15)).await;
    phone.command("terminate").await;
    phone.wait_for("ended (No error)", Duration::from_secs(10)).await;
    let summary = next_summary(&mut ended).await;
    assert!(summary.answered, "{summary:?}");
    assert_eq!(summary.end, Some(EndReason::RemoteBye), "{summary:?}");
    assert_voiced(&heard, 3.0);

    let datagrams = capture.stop().await;
    let sent: Vec<u8> = datagrams
        .iter()
        .filter(|d| d.0 == linphone_rtp)
        .filter_map(|d| rtp_payload_type(&d.2))
        .collect();
    let received: Vec<u8> = datagrams
        .iter()
        .filter(|d| d.1 == linphone_rtp)
        .filter_map(|d| rtp_payload_type(&d.2))
        .collect();
    // 3 s of 20 ms packets each way, all of one dynamic payload type: Opus, the only codec
    // Linphone offered.
    assert!(sent.len() >= 100, "Linphone sent {} RTP packets", sent.len());
    assert!(received.len() >= 100, "we sent Linphone {} RTP packets", received.len());
    let pt = sent[0];
    assert!(pt >= 96, "dynamic payload type, got {pt}");
    assert!(sent.iter().chain(&received).all(|&p| p == pt), "one payload type both ways");
    let config = std::fs::read_to_string(phone.dir.path().join("linphonerc")).expect("linphonerc");
    assert!(config.lines().any(|l| l.starts_with("uuid=")), "{config}");
    phone.stop().await;
}
