//! A SIPp UAS as the far end of an outgoing call (an agent's phone), on free ports,
//! echoing the RTP it gets (`-rtp_echo`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::{free_port_pair, free_sip_port, manifest_dir};

pub struct SippAgent {
    child: tokio::process::Child,
    pub sip: SocketAddr,
    pub media_port: u16,
    errors: PathBuf,
    messages: PathBuf,
    _dir: tempfile::TempDir,
}

impl SippAgent {
    /// Starts `tests/sipp/<scenario>` as a UAS for one call.
    pub fn start(scenario: &str) -> SippAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        let errors = dir.path().join("errors.log");
        let messages = dir.path().join("messages.log");
        let sip_port = free_sip_port();
        let media_port = free_port_pair();
        let scenario = manifest_dir().join("tests/sipp").join(scenario);
        let child = tokio::process::Command::new("sipp")
            .args(["-sf", scenario.to_str().expect("utf-8 path")])
            .args(["-p", &sip_port.to_string(), "-i", "127.0.0.1", "-t", "u1"])
            .args(["-mp", &media_port.to_string(), "-rtp_echo", "-m", "1"])
            .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-error_file", errors.to_str().expect("utf-8 path")])
            .args(["-trace_msg", "-message_file", messages.to_str().expect("utf-8 path")])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp runs (is sip-tester installed? scripts/setup.sh installs it)");
        let sip = SocketAddr::from(([127, 0, 0, 1], sip_port));
        SippAgent { child, sip, media_port, errors, messages, _dir: dir }
    }

    /// The URI to call it on.
    pub fn target(&self) -> String {
        format!("sip:agent@{}", self.sip)
    }

    /// Waits (bounded) for its scenario to end and checks it passed; returns every SIP
    /// message it sent and received.
    pub async fn assert_passed(self) -> String {
        let output = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .expect("the agent's sipp finished")
            .expect("sipp exit status");
        assert!(
            output.status.success(),
            "agent sipp failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&self.errors).unwrap_or_default()
        );
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }
}
