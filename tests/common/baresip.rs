//! baresip, headless, as a real softphone for the tests (recipe: PEERS.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use zendesk_ivr::media::prompt::{Limits, read_wav_file, resample};

use super::{free_port_pair, free_port_range, free_sip_port};

pub struct Baresip {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything it printed so far.
    pub log: Vec<String>,
    cons: SocketAddr,
    /// Where it takes SIP (UDP and TCP).
    pub sip: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip sending `source_wav` (padded so it never runs out) and recording what
    /// it hears into `self.recordings()`. With `dial`, it calls that URI at once.
    pub async fn start(source_wav: &Path, dial: Option<&str>) -> Baresip {
        Self::start_with(source_wav, dial, "").await
    }

    /// [`Baresip::start`] with `extra` lines appended to its config (e.g. `sip_cafile`).
    pub async fn start_with(source_wav: &Path, dial: Option<&str>, extra: &str) -> Baresip {
        Self::start_account(source_wav, dial, extra, "").await
    }

    /// [`Baresip::start_with`] with `account_params` added to its account line (e.g.
    /// `;mediaenc=srtp-mand`).
    pub async fn start_account(
        source_wav: &Path,
        dial: Option<&str>,
        extra: &str,
        account_params: &str,
    ) -> Baresip {
        let dir = tempfile::tempdir().expect("temp dir");
        let sip_port = free_sip_port();
        let cons_port = free_port_pair();
        // Two RTP/RTCP pairs: a second call (following a REFER) needs its own.
        let rtp = free_port_range(4);
        let recordings = dir.path().join("recordings");
        std::fs::create_dir_all(&recordings).expect("recordings dir");
        let padded = dir.path().join("source.wav");
        let status = std::process::Command::new("sox")
            .arg(source_wav)
            .args(["-r", "8000", "-c", "1", "-b", "16"])
            .arg(&padded)
            .args(["pad", "0", "60"])
            .status()
            .expect("sox runs");
        assert!(status.success(), "sox padded the source");
        std::fs::write(
            dir.path().join("accounts"),
            format!("<sip:tester@127.0.0.1>;regint=0;answermode=auto{account_params}\n"),
        )
        .expect("accounts");
        std::fs::write(
            dir.path().join("config"),
            format!(
                "sip_listen 127.0.0.1:{sip_port}\n\
                 audio_player nonexistent,default\n\
                 audio_source aufile,{source}\n\
                 audio_alert nonexistent,default\n\
                 rtp_ports {rtp}-{rtp_end}\n\
                 module_path /usr/lib/baresip/modules\n\
                 module g711.so\n\
                 module aufile.so\n\
                 module sndfile.so\n\
                 module cons.so\n\
                 module_app account.so\n\
                 module_app menu.so\n\
                 snd_path {snd}\n\
                 cons_listen 127.0.0.1:{cons_port}\n\
                 {extra}",
                source = padded.display(),
                rtp_end = rtp + 3,
                snd = recordings.display(),
            ),
        )
        .expect("config");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir.path()).args(["-n", "127.0.0.1"]);
        if let Some(uri) = dial {
            cmd.args(["-e", &format!("/dial {uri}")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("baresip runs (scripts/setup.sh installs baresip-core)");
        let lines = super::output_lines(&mut child);
        Baresip {
            child,
            lines,
            log: Vec::new(),
            cons: SocketAddr::from(([127, 0, 0, 1], cons_port)),
            sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
            dir,
        }
    }

    /// Waits until a line containing `needle` is printed.
    pub async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        super::wait_for_line(&mut self.lines, &mut self.log, "baresip", needle, within).await
    }

    /// Sends a console command such as "/hangup" or "/sndcode 12#".
    pub async fn command(&self, command: &str) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.send_to(format!("{command}\n").as_bytes(), self.cons).await.expect("send");
    }

    pub fn recordings(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What a baresip heard: its `dump-*-dec.wav` recording, at 8 kHz.
pub fn recording(dir: &Path) -> Vec<f32> {
    let path = recording_path(dir);
    let pcm = read_wav_file(&path, Limits::default()).expect("recording");
    resample(&pcm, 8000).expect("resample")
}

/// The path of baresip's recording of what it heard in its first call (the files are
/// named by the time the call started).
pub fn recording_path(dir: &Path) -> PathBuf {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("recordings dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("-dec.wav")))
        .collect();
    all.sort();
    all.into_iter().next().unwrap_or_else(|| panic!("no dump-*-dec.wav in {}", dir.display()))
}

pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

/// sox's RMS amplitude of `seconds` of `wav` from `start` (`sox FILE -n trim S D stat`).
pub fn sox_rms(wav: &Path, start: f32, seconds: f32) -> f32 {
    let output = std::process::Command::new("sox")
        .arg(wav)
        .args(["-n", "trim", &start.to_string(), &seconds.to_string(), "stat"])
        .output()
        .expect("sox runs");
    let report = String::from_utf8_lossy(&output.stderr);
    report
        .lines()
        .find(|l| l.starts_with("RMS     amplitude:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RMS from sox stat:\n{report}"))
}

/// A second of a quiet 300 Hz tone (8 kHz, 16-bit) for a phone to send as its voice,
/// at `volume` (0–1).
pub fn tone_wav(volume: f32) -> tempfile::NamedTempFile {
    let source = tempfile::NamedTempFile::with_suffix(".wav").expect("temp wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(source.path())
        .args(["synth", "1", "sine", "300", "vol", &volume.to_string()])
        .status()
        .expect("sox runs");
    assert!(status.success(), "sox made the tone");
    source
}
