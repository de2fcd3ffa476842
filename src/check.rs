//! `zendesk-ivr check`: what an operator wants to know before starting the endpoint.
//! The configuration loaded (the caller did that), the audio files decode, the outbox
//! database opens, the TLS certificate and key load, each TTS voice speaks, and Zendesk
//! accepts the credentials. Each check
//! is one line of the report; the report fails if any line does.

use std::path::Path;

use crate::config::Config;
use crate::media::prompt::{self, Limits};
use crate::outbox::{Outbox, PostError};
use crate::sip::transport::SipTls;
use crate::zendesk::ZendeskClient;

/// One checked thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// What was checked, named by its config key where it has one.
    pub what: String,
    pub ok: bool,
    /// Not a failure, but something the operator should fix (a secret others can read).
    pub warning: bool,
    pub detail: String,
}

/// Every line of a check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.lines.iter().all(|line| line.ok)
    }

    /// `ok   what: detail` / `FAIL what: detail`, one line each.
    pub fn to_text(&self) -> String {
        self.lines
            .iter()
            .map(|l| {
                let status = match (l.ok, l.warning) {
                    (false, _) => "FAIL",
                    (true, true) => "WARN",
                    (true, false) => "ok  ",
                };
                format!("{status} {}: {}\n", l.what, l.detail)
            })
            .collect()
    }

    /// Adds one warning line per entry under `what` (warnings do not fail the check).
    pub fn warn_each(&mut self, what: &str, warnings: Vec<String>) {
        for detail in warnings {
            self.lines.push(CheckLine { what: what.to_string(), ok: true, warning: true, detail });
        }
    }

    fn push(&mut self, what: &str, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.lines.push(CheckLine { what: what.to_string(), ok, warning: false, detail });
    }
}

/// Runs every check for `config`.
pub async fn check(config: &Config) -> CheckReport {
    let mut report = CheckReport::default();
    report.push(
        "configuration",
        Ok(format!("SIP on {}, Zendesk at {}", config.sip.listen, config.zendesk.url)),
    );
    for (key, path) in [
        ("media.welcome_prompt", &config.media.welcome_prompt),
        ("media.hold_music", &config.media.hold_music),
    ] {
        report.push(key, audio(path).await);
    }
    report.push("outbox.path", outbox(config).await);
    if config.sip.tls_listen.is_some() {
        report.push("sip.tls_cert", tls(config).await);
    }
    for (what, result) in crate::tts::check_voices(&config.tts).await {
        report.push(&what, result);
    }
    let sip = config.sip.clone();
    let sip_lines = tokio::task::spawn_blocking(move || crate::sip::auth_config::check(&sip))
        .await
        .unwrap_or_else(|e| vec![("sip.auth".into(), Err(e.to_string()))]);
    for (what, result) in sip_lines {
        report.push(&what, result);
    }
    if config.zendesk.enabled {
        report.push("zendesk credentials", zendesk(config).await);
    } else {
        report.push("zendesk credentials", Ok("not checked: zendesk.enabled is false".into()));
    }
    report
}

async fn audio(path: &Path) -> Result<String, String> {
    let owned = path.to_path_buf();
    let read =
        tokio::task::spawn_blocking(move || prompt::read_wav_file(&owned, Limits::default()))
            .await
            .map_err(|err| format!("reading {}: {err}", path.display()))?;
    match read {
        Ok(pcm) => Ok(format!(
            "{} ({:.1} s at {} Hz)",
            path.display(),
            pcm.duration().as_secs_f64(),
            pcm.rate
        )),
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

async fn outbox(config: &Config) -> Result<String, String> {
    let outbox_config = config.outbox.clone();
    let path = outbox_config.path.display().to_string();
    // A check creates nothing: a missing database is made by `run`, in a folder that must
    // exist.
    if !outbox_config.path.exists() {
        let parent = match outbox_config.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        return if parent.is_dir() {
            Ok(format!("{path}: not created yet; `run` creates it in {}", parent.display()))
        } else {
            Err(format!("{path}: the folder {} does not exist", parent.display()))
        };
    }
    let opened = tokio::task::spawn_blocking(move || Outbox::open_config(&outbox_config))
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    let stats = opened.stats().await.map_err(|err| err.to_string())?;
    Ok(format!("{path}: {} pending, {} dead letters", stats.pending, stats.dead_letters))
}

/// The TLS certificate, key and CA file load and fit together.
async fn tls(config: &Config) -> Result<String, String> {
    let loaded = SipTls::from_config(&config.sip).await.map_err(|err| err.to_string())?;
    let cert = config.sip.tls_cert.as_deref().unwrap_or(Path::new("")).display();
    match loaded {
        Some(_) => Ok(format!("{cert} and its key load and fit")),
        None => Err("sip.tls_listen needs sip.tls_cert and sip.tls_key".into()),
    }
}

async fn zendesk(config: &Config) -> Result<String, String> {
    let client = ZendeskClient::from_config(&config.zendesk).map_err(|err| err.to_string())?;
    match client.current_user().await {
        Ok(user) => Ok(format!(
            "accepted at {} as user {} ({})",
            config.zendesk.url,
            user.id,
            user.role.as_deref().unwrap_or("no role")
        )),
        Err(PostError::Permanent(reason)) => Err(format!("refused: {reason}")),
        Err(err) => Err(format!("{} did not answer as expected: {err}", config.zendesk.url)),
    }
}
