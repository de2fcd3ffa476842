//! Linphone (`linphone-cli`), headless, as a second real softphone for the tests.
//!
//! `linphonecsh` forwards each command to one `linphonec --pipe` daemon per user (its socket
//! is `/tmp/linphonec-<uid>`, whatever HOME says), so two tests using it at once would
//! share one phone. Each test here runs its own `linphonec` instead and writes the same
//! commands to its standard input (`soundcard use files`, `play FILE`, `record FILE`,
//! `call URI`, a digit, `param sip use_info 1`, `terminate`, `quit`).
//! Its HOME is a temporary folder with `.local/share/linphone/`, its config binds RTP to
//! 127.0.0.1 and leaves `[misc] uuid` to Linphone, which then sends its
//! `+sip.instance="<urn:uuid:…>"` Contact parameter as it does by default.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{free_port_pair, free_sip_port};

/// How digits are sent (RFC 4733 events in RTP, or SIP INFO `application/dtmf-relay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtmf {
    Rfc4733,
    Info,
}

pub struct Linphone {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything it printed so far.
    pub log: Vec<String>,
    pub dir: tempfile::TempDir,
    /// Its RTP port (bound to 127.0.0.1).
    pub rtp_port: u16,
}

impl Linphone {
    /// Starts linphonec with default settings, plus loopback binding and file audio. The
    /// DTMF keys are written with Linphone's defaults (RFC 4733, no INFO) because `param`
    /// only changes keys that exist.
    pub async fn start() -> Linphone {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join(".local/share/linphone")).expect("data dir");
        let sip_port = free_sip_port();
        let rtp_port = free_port_pair();
        let config = dir.path().join("linphonerc");
        std::fs::write(
            &config,
            format!(
                "[sip]\nsip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n\
                 use_info=0\nuse_rfc2833=1\n\
                 [rtp]\naudio_rtp_port={rtp_port}\nbind_address=127.0.0.1\n\
                 [sound]\necho_cancellation=0\n"
            ),
        )
        .expect("linphonerc");
        let mut child = Command::new("linphonec")
            .arg("-c")
            .arg(&config)
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("linphonec runs (scripts/setup.sh installs linphone-cli)");
        let stdin = child.stdin.take().expect("stdin");
        let lines = super::output_lines(&mut child);
        let mut phone = Linphone { child, stdin, lines, log: Vec::new(), dir, rtp_port };
        phone.command("soundcard use files").await;
        phone.wait_for("Using wav files", Duration::from_secs(20)).await;
        phone
    }

    /// Writes one command line.
    pub async fn command(&mut self, command: &str) {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("write to linphonec");
        self.stdin.flush().await.expect("flush");
    }

    /// Waits until a line containing `needle` is printed.
    pub async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        super::wait_for_line(&mut self.lines, &mut self.log, "linphonec", needle, within).await
    }

    /// Chooses how the next digits are sent.
    pub async fn dtmf(&mut self, form: Dtmf) {
        let (info, rfc4733) = match form {
            Dtmf::Rfc4733 => (0, 1),
            Dtmf::Info => (1, 0),
        };
        self.command(&format!("param sip use_info {info}")).await;
        self.wait_for("updated value", Duration::from_secs(5)).await;
        self.command(&format!("param sip use_rfc2833 {rfc4733}")).await;
        self.wait_for("updated value", Duration::from_secs(5)).await;
    }

    /// Leaves Opus as the only enabled audio codec.
    pub async fn opus_only(&mut self) {
        self.command("codec list").await;
        // A sentinel: its answer comes after the whole list.
        self.command("status hook").await;
        let mut others = Vec::new();
        let mut saw_opus = false;
        loop {
            let line = self.wait_for("", Duration::from_secs(5)).await;
            if line.contains("hook=") {
                break;
            }
            // " 3: PCMU (8000) enabled"
            let Some((index, rest)) = line.trim().split_once(": ") else { continue };
            let Ok(index) = index.trim().parse::<u32>() else { continue };
            if rest.starts_with("opus ") {
                saw_opus = true;
            } else if rest.ends_with(" enabled") {
                others.push(index);
            }
        }
        assert!(saw_opus, "linphonec lists no Opus codec:\n{}", self.log.join("\n"));
        for index in others {
            self.command(&format!("codec disable {index}")).await;
        }
    }

    /// Plays `source` into calls and records what it hears into the returned file.
    pub async fn audio_files(&mut self, source: &Path) -> PathBuf {
        let heard = self.dir.path().join("heard.wav");
        self.command(&format!("play {}", source.display())).await;
        self.command(&format!("record {}", heard.display())).await;
        heard
    }

    /// Quits, or kills it if it does not quit within 10 s.
    pub async fn stop(mut self) {
        self.command("quit").await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
