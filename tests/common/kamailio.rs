//! Kamailio as the dispatcher in front of endpoint replicas (config/kamailio/kamailio.cfg),
//! or as a registrar with digest authentication (tests/kamailio/registrar.cfg).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{free_port_pair, manifest_dir, output_lines, wait_for_line};

pub struct Kamailio {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    /// Kamailio's log (it logs to stderr), line by line.
    lines: UnboundedReceiver<String>,
    /// Every line read so far.
    log: Vec<String>,
}

impl Kamailio {
    /// Starts Kamailio on a free port, dispatching to `replicas`; returns once it answers
    /// OPTIONS.
    pub async fn start(replicas: &[SocketAddr]) -> Kamailio {
        Kamailio::start_with(replicas, &[]).await
    }

    /// [`Kamailio::start`] with the config's `#!define`s overridden (`FR_TIMER`,
    /// `PING_INTERVAL`).
    pub async fn start_with(replicas: &[SocketAddr], defines: &[(&str, &str)]) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("dispatcher.list");
        let lines: String = replicas.iter().map(|r| format!("1 sip:{r}\n")).collect();
        std::fs::write(&list, lines).expect("dispatcher list");
        let mut all = vec![format!("DSLIST=\"{}\"", list.display())];
        all.extend(defines.iter().map(|(k, v)| format!("{k}={v}")));
        Self::spawn("config/kamailio/kamailio.cfg", &all, dir).await
    }

    /// Starts Kamailio on a free port as a registrar that challenges with SHA-256 digest
    /// (user `ivr`, password `trunk-secret`, at most 2 s per registration).
    pub async fn start_registrar() -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::spawn("tests/kamailio/registrar.cfg", &[], dir).await
    }

    /// Runs `config` (relative to the crate) with `-A` `defines`, on a free port.
    async fn spawn(config: &str, defines: &[String], dir: tempfile::TempDir) -> Kamailio {
        let port = free_port_pair();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new("kamailio");
        command
            .arg("-f")
            .arg(manifest_dir().join(config))
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-A")
            .arg(format!("LISTEN=udp:{addr}"));
        for define in defines {
            command.arg("-A").arg(define);
        }
        let child = command
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kamailio runs (scripts/setup.sh installs it)");
        let mut child = child;
        let lines = output_lines(&mut child);
        let kamailio = Kamailio { child, addr, _dir: dir, lines, log: Vec::new() };
        kamailio.wait_ready().await;
        kamailio
    }

    async fn wait_ready(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("local addr");
        let mut buf = [0u8; 4096];
        for attempt in 0..50 {
            let ping = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKready{attempt}\r\n\
                 From: <sip:test@{local}>;tag=t\r\nTo: <sip:{addr}>\r\nCall-ID: ready{attempt}@test\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                addr = self.addr
            );
            let _ = socket.send_to(ping.as_bytes(), self.addr).await;
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await
                && buf[..n].starts_with(b"SIP/2.0 200")
            {
                return;
            }
        }
        panic!("kamailio did not answer OPTIONS within 10 s");
    }

    /// Waits until Kamailio logs a line containing `needle` (the config's `xlog` lines:
    /// "replica down: sip:…", "replica failed: sip:… for CALL-ID").
    pub async fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        wait_for_line(&mut self.lines, &mut self.log, "kamailio", needle, within).await
    }

    /// Every log line read so far, and those waiting, that contain `needle`.
    pub fn log_lines(&mut self, needle: &str) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// SIGTERM, so that Kamailio's main process ends its worker processes too (SIGKILL
    /// would leave them running); SIGKILL only if it has not exited within 5 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}
