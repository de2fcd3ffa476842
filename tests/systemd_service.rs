//! Running under systemd: `run` sends READY=1 to `$NOTIFY_SOCKET` once its SIP and
//! admin listeners are bound and STOPPING=1 when SIGTERM starts the drain (logging JSON
//! lines with `--log-format json`, for the journal's collectors); the unit file
//! in `config/systemd/` passes `systemd-analyze verify`; and the Zendesk token can come
//! from a systemd credential (`$CREDENTIALS_DIRECTORY`).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UnixDatagram;
use zendesk_ivr::zendesk::sim::{SimAuth, SimData, SimState};

const BIN: &str = env!("CARGO_BIN_EXE_zendesk-ivr");

/// The next notification on `socket`, as `KEY=value` lines.
async fn notification(socket: &UnixDatagram, within: Duration) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(within, socket.recv(&mut buf))
        .await
        .expect("a notification in time")
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The address after `word ` in the STATUS line.
fn address_after(status: &str, word: &str) -> std::net::SocketAddr {
    let rest = status.split(&format!("{word} ")).nth(1).expect("the word in STATUS");
    rest.split_whitespace().next().and_then(|a| a.parse().ok()).expect("an address")
}

#[tokio::test(flavor = "multi_thread")]
async fn run_notifies_ready_when_bound_and_stopping_when_the_drain_starts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let base = common::free_port_range(40);
    let rtp_ports = format!("{}-{}", base, base + 39);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tts-cache");
    let mut child = tokio::process::Command::new(BIN)
        .args(["--log-format", "json", "run", "--drain", "5s"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("ZENDESK_IVR_SIP__LISTEN", "127.0.0.1:0")
        .env("ZENDESK_IVR_ADMIN__LISTEN", "127.0.0.1:0")
        .env("ZENDESK_IVR_ZENDESK__ENABLED", "false")
        .env("ZENDESK_IVR_SIP__MAX_CALLS", "10")
        .env("ZENDESK_IVR_MEDIA__RTP_PORTS", &rtp_ports)
        .env("ZENDESK_IVR_ROUTING__PROBE_INTERVAL_S", "0")
        .env("ZENDESK_IVR_TTS__CACHE_DIR", &cache)
        .env("ZENDESK_IVR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut logs = common::output_lines(&mut child);

    // Prompts are rendered before the listeners count as ready: allow for a cold cache.
    let ready = notification(&socket, Duration::from_secs(120)).await;
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let status = ready.lines().find_map(|l| l.strip_prefix("STATUS=")).expect("a STATUS");
    let sip = address_after(status, "SIP");
    let admin = address_after(status, "admin");
    // Both listeners take connections already.
    tokio::net::TcpStream::connect(sip).await.expect("SIP over TCP is bound");
    let health = reqwest::get(format!("http://{admin}/healthz")).await.expect("admin answers");
    assert_eq!(health.status().as_u16(), 200);

    let pid = child.id().expect("a pid") as libc::pid_t;
    // SAFETY: signals our own child, by the pid just read.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopping = notification(&socket, Duration::from_secs(10)).await;
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("it exits after the drain")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");

    // Every log line was one JSON object (read to the end of the closed pipe).
    let mut messages = Vec::new();
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(10), logs.recv()).await.expect("the log ends")
    {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        messages.push(json["fields"]["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(messages.iter().any(|m| m.contains("SIP endpoint listening")), "{messages:#?}");
}

#[test]
fn the_unit_file_verifies_and_is_hardened() {
    let unit = common::manifest_dir().join("config/systemd/zendesk-ivr.service");
    let text = std::fs::read_to_string(&unit).expect("the unit file");
    for line in [
        "Type=notify",
        "User=zendesk-ivr",
        "StateDirectory=zendesk-ivr",
        "LoadCredential=zendesk-token:",
        "Environment=ZENDESK_IVR_ZENDESK__API_TOKEN_CREDENTIAL=zendesk-token",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(text.contains(line), "the unit has {line:?}");
    }
    // Verified as installed, with the binary at the path ExecStart names.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("zendesk-ivr.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/zendesk-ivr", BIN)).unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (scripts/setup.sh installs systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("zendesk-ivr.service"), "no warning about the unit: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_can_come_from_a_systemd_credential() {
    let auth = SimAuth { email: "ivr@example.com".into(), token: "cred-token-42".into() };
    let state = SimState::new(SimData::sample(), Some(auth));
    let (addr, _) = zendesk_ivr::zendesk::sim::spawn("127.0.0.1:0".parse().unwrap(), state)
        .await
        .expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("zendesk-token"), "cred-token-42\n").unwrap();
    let check = |credentials_dir: Option<&Path>| {
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("check")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("ZENDESK_IVR_ZENDESK__URL", format!("http://{addr}"))
            .env("ZENDESK_IVR_ZENDESK__EMAIL", "ivr@example.com")
            .env("ZENDESK_IVR_ZENDESK__API_TOKEN_CREDENTIAL", "zendesk-token")
            .env("ZENDESK_IVR_OUTBOX__PATH", dir.path().join("outbox.sqlite"))
            .env("ZENDESK_IVR_LOG", "error")
            .env_remove("CREDENTIALS_DIRECTORY");
        if let Some(path) = credentials_dir {
            command.env("CREDENTIALS_DIRECTORY", path);
        }
        command.output()
    };

    let good = check(Some(&credentials)).await.unwrap();
    let text = String::from_utf8_lossy(&good.stdout).into_owned();
    assert!(text.contains("zendesk credentials: accepted"), "{text}");
    assert!(!text.contains("cred-token-42"), "the token is never printed: {text}");

    let missing = check(None).await.unwrap();
    let text = String::from_utf8_lossy(&missing.stdout).into_owned()
        + &String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(text.contains("CREDENTIALS_DIRECTORY"), "says what is missing: {text}");
}
