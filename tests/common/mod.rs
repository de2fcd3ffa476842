//! Helpers for the integration tests: an in-process endpoint on free ports, and real
//! peers (SIPp, baresip) run as child processes with bounded time.
#![allow(dead_code)]

pub mod baresip;
pub mod ivr_process;
pub mod kamailio;
pub mod linphone;
pub mod phone;
pub mod rtp;
pub mod sip_phone;
pub mod sipp_agent;
pub mod tls;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use zendesk_ivr::config::Config;
use zendesk_ivr::server::{self, RunningServer};

/// The team's shared folder (`../shared`, or `$ZENDESK_IVR_SHARED`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("ZENDESK_IVR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Prometheus text of an admin listener's `/metrics`.
pub async fn scrape_metrics(admin: SocketAddr) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response =
        reqwest::get(format!("http://{admin}/metrics")).await.expect("the admin listener answers");
    response.text().await.expect("metrics text")
}

/// The value of one sample (`name{labels}` exactly as exposed) in Prometheus text.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(sample)?.trim().parse::<f64>().ok())
}

/// A UDP port that was free a moment ago (even, with the next one free too).
pub fn free_port_pair() -> u16 {
    free_port_range(2)
}

/// An even UDP port that was free a moment ago, with the `count - 1` after it free too.
pub fn free_port_range(count: u16) -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port() & !1;
        drop(probe);
        if port > 1024
            && port.checked_add(count).is_some()
            && (0..count).all(|i| UdpSocket::bind(("127.0.0.1", port + i)).is_ok())
        {
            return port;
        }
    }
    panic!("no {count} free UDP ports in a row");
}

/// A port free for both UDP and TCP a moment ago, for a SIP peer's local socket.
/// Peers must always be given one: SIPp without `-p` tries 5060 upwards, and two SIPp
/// runs in parallel then race for the same port.
pub fn free_sip_port() -> u16 {
    for _ in 0..200 {
        let port = free_port_pair();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// A config for a loopback endpoint on a free port, with its own RTP range.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().expect("address");
    let base = free_port_range(40);
    config.media.rtp_ports = format!("{}-{}", base, base + 39);
    // 20 pairs: ten calls, bridged or not.
    config.sip.max_calls = 10;
    config.admin.listen = None;
    config.zendesk.enabled = false;
    config.sip.default_region = "NO".into();
    // SIPp agents used as transfer targets answer only their scenario: no OPTIONS.
    config.routing.probe_interval_s = 0;
    // Rendered sentences are shared by every test run, outside the work tree.
    config.tts.cache_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tts-cache"));
    config
}

/// Short sentences for tests that go through the IVR, in both built-in languages.
const QUICK_PROMPTS: [(&str, &str); 16] = [
    ("comfort", "One moment."),
    ("greeting", "Hi {first_name}."),
    ("status_ticket", "Ticket {id} is {status}."),
    ("status_ticket_no_subject", "Ticket {id} is {status}."),
    ("status_no_ticket", "No tickets."),
    ("status_unknown", "Unknown caller."),
    ("status_anonymous", "Hidden number."),
    ("status_fallback", "No lookup."),
    ("menu", "Menu."),
    ("sorry", "Sorry."),
    ("goodbye", "Goodbye."),
    ("connecting", "Connecting."),
    ("transfer_failed", "Transfer failed."),
    ("agents_busy", "All busy."),
    ("callback_requested", "Callback."),
    ("busy_goodbye", "Busy, goodbye."),
];

/// [`test_config`] with an IVR that is quick to go through: no welcome prompt, short
/// sentences, and one second to press a key. The status starts within about a second of
/// the answer (after "One moment." while the lookup runs): press keys after that.
pub fn quick_ivr_config() -> Config {
    let mut config = test_config();
    config.media.welcome_prompt = PathBuf::new();
    config.ivr.no_input_s = 1;
    config.routing.retry_interval_s = 1;
    for lang in ["en", "nb"] {
        let table = QUICK_PROMPTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        config.ivr.prompts.insert(lang.to_string(), table);
    }
    config
}

/// Every line a child process prints on stdout and stderr, as it prints them.
pub fn output_lines(
    child: &mut tokio::process::Child,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let streams = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ];
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    lines
}

/// Waits until `lines` (from [`output_lines`]) brings one containing `needle`; every line
/// read goes to `log`, which the panic prints when none comes `within`.
pub async fn wait_for_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    log: &mut Vec<String>,
    who: &str,
    needle: &str,
    within: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => {
                log.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            _ => panic!("{who} never printed {needle:?}; log:\n{}", log.join("\n")),
        }
    }
}

/// `zendesk-ivr run` as a child process with `config`'s test settings passed as
/// environment overrides, SIP on `127.0.0.1:sip_port`, its output piped (read it with
/// [`output_lines`]) and killed when dropped. Add arguments and overrides before spawning.
pub fn run_command(config: &Config, sip_port: u16) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
    command
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ZENDESK_IVR_SIP__LISTEN", format!("127.0.0.1:{sip_port}"))
        .env("ZENDESK_IVR_SIP__DEFAULT_REGION", &config.sip.default_region)
        .env("ZENDESK_IVR_MEDIA__RTP_PORTS", &config.media.rtp_ports)
        .env("ZENDESK_IVR_SIP__MAX_CALLS", config.sip.max_calls.to_string())
        .env("ZENDESK_IVR_MEDIA__WELCOME_PROMPT", &config.media.welcome_prompt)
        .env("ZENDESK_IVR_ZENDESK__ENABLED", config.zendesk.enabled.to_string())
        .env("ZENDESK_IVR_ZENDESK__URL", &config.zendesk.url)
        .env("ZENDESK_IVR_OUTBOX__PATH", &config.outbox.path)
        .env("ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S", config.routing.probe_interval_s.to_string())
        .env("ZENDESK_IVR_IVR__NO_INPUT_S", config.ivr.no_input_s.to_string())
        .env("ZENDESK_IVR_TTS__CACHE_DIR", config.tts.cache_dir.clone().unwrap_or_default())
        .env("ZENDESK_IVR_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `config` pointed at a Zendesk simulator serving `state` (on a free port), with its
/// outbox in `dir` and quick retries.
pub async fn with_simulator(
    mut config: Config,
    dir: &tempfile::TempDir,
    state: zendesk_ivr::zendesk::sim::SimState,
) -> Config {
    let (addr, _) = zendesk_ivr::zendesk::sim::spawn("127.0.0.1:0".parse().expect("addr"), state)
        .await
        .expect("the simulator starts");
    config.zendesk.enabled = true;
    config.zendesk.url = format!("http://{addr}");
    config.outbox.path = dir.path().join("outbox.sqlite");
    config.outbox.backoff_base_ms = 20;
    config.outbox.backoff_cap_ms = 200;
    config
}

pub async fn start(config: Config) -> RunningServer {
    server::start(config).await.expect("endpoint starts")
}

/// What a SIPp run left behind.
pub struct SippRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// Every SIP message sent and received (`-trace_msg`).
    pub messages: String,
    pub errors: String,
}

impl SippRun {
    pub fn assert_ok(&self) {
        assert!(
            self.success,
            "sipp failed\n--- stderr\n{}\n--- errors\n{}\n--- messages\n{}",
            self.stderr, self.errors, self.messages
        );
    }

    /// SIPp exited before sending anything because its local port was taken.
    fn lost_its_port(&self) -> bool {
        self.messages.is_empty() && self.stderr.contains("errno = 98")
    }

    /// Received messages whose first line starts with `start_line` and which contain `needle`.
    pub fn count_received(&self, start_line: &str, needle: &str) -> usize {
        self.messages
            .split("----------------------------------------------- ")
            .filter(|block| block.contains("message received"))
            .filter_map(|block| block.split_once(" :\n").map(|(_, msg)| msg))
            .filter(|msg| msg.trim_start().starts_with(start_line) && msg.contains(needle))
            .count()
    }
}

/// Runs one SIPp scenario from `tests/sipp/` against `target` and waits for it to end.
/// SIPp gets its own free local port; if another process takes it between the probe and
/// SIPp's bind (SIPp then exits at once, "Address already in use"), it runs again on
/// another port, at most three times.
pub async fn sipp(scenario: &str, target: SocketAddr, transport: &str, extra: &[&str]) -> SippRun {
    let mut run = sipp_once(scenario, target, transport, extra).await;
    for _ in 0..2 {
        if run.success || !run.lost_its_port() {
            break;
        }
        run = sipp_once(scenario, target, transport, extra).await;
    }
    run
}

async fn sipp_once(scenario: &str, target: SocketAddr, transport: &str, extra: &[&str]) -> SippRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = dir.path().join("messages.log");
    let errors = dir.path().join("errors.log");
    let scenario_path = manifest_dir().join("tests/sipp").join(scenario);
    let sip_port = free_sip_port().to_string();
    let media_port = free_port_pair().to_string();
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg(target.to_string())
        .args(["-sf", scenario_path.to_str().expect("utf-8 path")])
        .args(["-m", "1", "-t", transport, "-i", "127.0.0.1", "-p", &sip_port])
        .args(["-mp", &media_port])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
        .args(["-trace_msg", "-message_file", messages.to_str().expect("utf-8 path")])
        .args(["-trace_err", "-error_file", errors.to_str().expect("utf-8 path")])
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("sipp finished within 60 s")
        .expect("sipp runs (is sip-tester installed? scripts/setup.sh installs it)");
    SippRun::from_output(&output, &messages, &errors)
}

impl SippRun {
    /// What a finished SIPp left: its output, and its `-message_file` and `-error_file`.
    pub fn from_output(
        output: &std::process::Output,
        messages: &std::path::Path,
        errors: &std::path::Path,
    ) -> SippRun {
        SippRun {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            messages: std::fs::read_to_string(messages).unwrap_or_default(),
            errors: std::fs::read_to_string(errors).unwrap_or_default(),
        }
    }
}

/// Waits for the next call summary, with a bound.
pub async fn next_summary(
    rx: &mut tokio::sync::broadcast::Receiver<zendesk_ivr::call::CallSummary>,
) -> zendesk_ivr::call::CallSummary {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a call ended within 30 s")
        .expect("summary channel open")
}
