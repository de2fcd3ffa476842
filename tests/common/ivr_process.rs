//! The real `zendesk-ivr run` as a child process on free ports, configured through
//! `ZENDESK_IVR_*` variables, with its log lines to wait on (what fail2ban would read).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::{free_sip_port, output_lines, run_command, test_config, wait_for_line};

pub struct IvrProcess {
    child: tokio::process::Child,
    lines: UnboundedReceiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
    pub sip: SocketAddr,
    pub admin: SocketAddr,
}

impl IvrProcess {
    /// Starts the endpoint with the test defaults (Zendesk off, no welcome prompt) and
    /// `env` on top, and waits until it listens.
    pub async fn start(env: &[(&str, &str)]) -> IvrProcess {
        let config = test_config();
        let sip = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
        let mut command = run_command(&config, sip.port());
        command
            .args(["--drain", "1s"])
            .env("ZENDESK_IVR_MEDIA__WELCOME_PROMPT", "")
            .env("ZENDESK_IVR_ADMIN__LISTEN", admin.to_string());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("zendesk-ivr runs");
        let lines = output_lines(&mut child);
        let mut ivr = IvrProcess { child, lines, log: Vec::new(), sip, admin };
        ivr.wait_for("SIP endpoint listening", Duration::from_secs(60)).await;
        ivr
    }

    /// Waits for a log line holding `needle`.
    pub async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        wait_for_line(&mut self.lines, &mut self.log, "zendesk-ivr", needle, within).await
    }

    /// Every line logged so far (reading what is waiting).
    pub fn drain_log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        super::scrape_metrics(self.admin).await
    }

    /// The value of one counter sample (`name{labels}`), 0 when absent.
    pub async fn counter(&self, sample: &str) -> u64 {
        super::metric_value(&self.metrics().await, sample).map_or(0, |v| v as u64)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
