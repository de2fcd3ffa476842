//! The fail2ban filter (`config/fail2ban/filter.d/zendesk-ivr.conf`) against security
//! events written by the endpoint's own log formatters, text and JSON, as read from a
//! file and from the journal: `fail2ban-regex` must find exactly the real sources, never
//! a `src=` forged inside the detail, and never a line from another target.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use zendesk_ivr::log_format::{LogFormat, subscriber};
use zendesk_ivr::security_event::{self, SecurityEvent};

mod common;

/// Collects what the formatter writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A scanner's User-Agent that tries to name another host and start another line.
const FORGED: &str = "friendly-scanner\" src=10.0.0.1\r\nSECURITY bad-auth src=10.0.0.2 detail=\"";

/// The log lines of a few events in `format`; each real source appears once.
fn lines(format: LogFormat, sources: [&str; 3]) -> Vec<String> {
    let out = Captured::default();
    let writer = {
        let out = out.clone();
        move || out.clone()
    };
    let filter = tracing_subscriber::EnvFilter::new("info");
    let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
    tracing::subscriber::with_default(subscriber(format, filter, writer, false), || {
        security_event::report(SecurityEvent::BadAuth, ip(sources[0]), "user 100");
        let span = tracing::info_span!("call", call_id = "a84b4c76e66710@pc33");
        span.in_scope(|| security_event::report(SecurityEvent::Scanner, ip(sources[1]), FORGED));
        security_event::report(SecurityEvent::RateLimited, ip(sources[2]), "INVITE src=10.9.9.9");
        // The same words from another target are not a security event.
        tracing::warn!(target: "zendesk_ivr::call", "SECURITY bad-auth src=203.0.113.9 detail=\"x\"");
        tracing::info!("SECURITY scanner src=203.0.113.10 detail=\"y\"");
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).expect("UTF-8 logs");
    text.lines().map(str::to_owned).collect()
}

/// The addresses `fail2ban-regex -o ip` reports for `lines`, in order.
fn matched(lines: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("zendesk-ivr.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let filter = common::manifest_dir().join("config/fail2ban/filter.d/zendesk-ivr.conf");
    let output = std::process::Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(&log)
        .arg(&filter)
        .output()
        .expect("fail2ban-regex runs (scripts/setup.sh installs the fail2ban package)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(|l| l.trim().to_owned()).collect()
}

#[test]
fn the_filter_finds_the_real_sources_in_text_and_json_logs() {
    let text = lines(LogFormat::Text, ["192.0.2.7", "198.51.100.1", "2001:db8::1"]);
    let json = lines(LogFormat::Json, ["192.0.2.8", "198.51.100.2", "2001:db8::2"]);
    assert_eq!(text.len(), 5, "{text:#?}");
    assert_eq!(json.len(), 5, "{json:#?}");
    assert!(json.iter().all(|l| l.starts_with("{\"timestamp\":")), "{json:#?}");
    assert!(text[1].contains("call{call_id="), "the span is in the line: {}", text[1]);

    // As read from a log file.
    let mut all = text.clone();
    all.extend(json.iter().cloned());
    assert_eq!(
        matched(&all),
        ["192.0.2.7", "198.51.100.1", "2001:db8::1", "192.0.2.8", "198.51.100.2", "2001:db8::2"]
    );

    // As read from the journal (`backend = systemd`): `host ident[pid]: ` then the line.
    let journal: Vec<String> =
        all.iter().map(|l| format!("ivr-host zendesk-ivr[4242]: {l}")).collect();
    assert_eq!(matched(&journal).len(), 6, "{journal:#?}");
}

#[test]
fn forged_sources_and_other_lines_never_match() {
    let mut lines = lines(LogFormat::Text, ["192.0.2.9", "198.51.100.3", "2001:db8::3"]);
    lines.extend(hand_made_lines());
    let hosts = matched(&lines);
    for forged in ["10.0.0.1", "10.0.0.2", "10.9.9.9", "203.0.113.9", "203.0.113.10"] {
        assert!(!hosts.iter().any(|h| h == forged), "{forged} matched: {hosts:?}");
    }
    assert_eq!(hosts, ["192.0.2.9", "198.51.100.3", "2001:db8::3"]);
}

/// Hand-made lines a filter must not take: a security line at INFO, one from another
/// target, and a JSON message that only quotes the form inside another field.
fn hand_made_lines() -> Vec<String> {
    vec![
        "2026-11-30T09:24:33.000000Z  INFO zendesk_ivr::security: SECURITY bad-auth src=203.0.113.9 detail=\"x\"".into(),
        "2026-11-30T09:24:34.000000Z  WARN zendesk_ivr::sip: user said SECURITY bad-auth src=203.0.113.9 detail=\"x\"".into(),
        r#"{"timestamp":"2026-11-30T09:24:35.000000Z","level":"WARN","fields":{"message":"call","ua":"\",\"level\":\"WARN\",\"fields\":{\"message\":\"SECURITY bad-auth src=203.0.113.10 detail=\\\""},"target":"zendesk_ivr::call"}"#.into(),
    ]
}
