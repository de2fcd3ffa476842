//! Typed configuration: a TOML file, then `ZENDESK_IVR_<SECTION>__<KEY>` environment
//! overrides (e.g. `ZENDESK_IVR_SIP__LISTEN=127.0.0.1:5080`).
//!
//! Every key has a sane default, so an empty file is a valid configuration for a lab.
//! `config/zendesk-ivr.example.toml` documents every key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::ivr::config::{IvrConfig, MenuDefault, QueueConfig, RoutingConfig, RuleConfig};
pub use crate::sip::admission::{DenyResponse, KNOWN_SCANNERS, SourceNet};

/// The environment prefix for overrides. Sections and keys are split by `__`.
pub const ENV_PREFIX: &str = "ZENDESK_IVR_";

/// Why a configuration could not be loaded. The message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("configuration key `{key}`: {reason}")]
    Key { key: &'static str, reason: String },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // figment's own message names the key path ("for key `sip.listen`"); keep every
        // error of a multi-error report.
        let all: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(all.join("; "))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub zendesk: ZendeskConfig,
    pub ivr: IvrConfig,
    pub transfer: TransferConfig,
    pub routing: RoutingConfig,
    pub tts: crate::tts::TtsConfig,
    pub outbox: OutboxConfig,
    pub admin: AdminConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    /// IP written into Via/Contact/SDP; needed when `listen` is a wildcard address.
    pub public_ip: Option<IpAddr>,
    /// SIP over TLS: the address to listen on (usually port 5061); no TLS when unset.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain and private key for TLS, read again on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that TLS peers we connect to are verified against (the system
    /// roots when unset).
    pub tls_ca_file: Option<PathBuf>,
    /// Sources whose P-Asserted-Identity is trusted for the caller ID, and that get 503
    /// rather than silence over a rate limit: addresses or CIDRs.
    pub trusted_sources: Vec<SourceNet>,
    /// Region used to read national numbers as E.164 (ISO 3166 code, e.g. "NO").
    pub default_region: String,
    /// RFC 3261 timer base values, in milliseconds.
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// RFC 4028 session timer: interval we ask for, and the least we accept.
    pub session_expires_s: u32,
    pub min_se_s: u32,
    /// Send 180 Ringing while the answer is delayed by `answer_delay_ms` (see
    /// [`SipConfig::rings_before_answer`]).
    pub send_ringing: bool,
    /// Ring this long before answering (0 answers at once, with no 180).
    pub answer_delay_ms: u64,
    /// Hang up calls that last longer than this (0: no limit).
    pub max_call_s: u64,
    /// Largest SIP message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most concurrent calls; past it, new INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// Inbound TCP connections held at once, in total and from one IP; past them a new
    /// connection is closed at once (see `sip::tcp_guard`).
    pub tcp_max_connections: usize,
    pub tcp_max_connections_per_ip: usize,
    /// Close a TCP connection after this long without receiving a byte.
    pub tcp_idle_timeout_s: u64,
    /// Cut off a TCP sender whose message is not complete this long after its first byte.
    pub tcp_message_timeout_ms: u64,
    /// Bytes of messages the live SIP transactions may keep (requests, last responses);
    /// past it new requests get a stateless 503.
    pub max_transaction_bytes: usize,
    pub user_agent: String,
    /// The Server header of our responses; `None`: `user_agent`; empty: no header.
    pub server_header: Option<String>,
    /// The User-Agent header of our requests; `None`: `user_agent`; empty: no header.
    pub user_agent_header: Option<String>,
    /// Sources allowed to send SIP (addresses or CIDRs); empty: any source.
    pub allow: Vec<SourceNet>,
    /// What a source outside `allow` gets: "drop" (nothing) or "403".
    pub deny_response: DenyResponse,
    /// Per source IP: requests per second, and new INVITEs per second (0: no limit). Over
    /// a limit, requests are dropped (a trusted source gets 503 with Retry-After).
    pub rate_limit_requests_per_s: u32,
    pub rate_limit_invites_per_s: u32,
    /// Most source addresses the rate limits track at once (bounds their memory).
    pub rate_limit_sources: usize,
    /// New calls per second overall; past it, 503 with Retry-After (0: no limit).
    pub max_cps: u32,
    /// Requests whose User-Agent contains one of these (any case) are dropped and logged
    /// as scanners; empty turns the check off.
    pub scanner_user_agents: Vec<String>,
    /// Digest authentication of inbound INVITEs (`[sip.auth]`).
    pub auth: crate::sip::auth_config::SipAuthConfig,
    /// Registrations to trunks (`[[sip.register]]`).
    pub register: Vec<crate::sip::auth_config::RegisterConfig>,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            public_ip: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_ca_file: None,
            trusted_sources: Vec::new(),
            default_region: "US".into(),
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            session_expires_s: 1800,
            min_se_s: 90,
            send_ringing: true,
            answer_delay_ms: 0,
            max_call_s: 3600,
            max_message_bytes: 65_535,
            max_calls: 2000,
            tcp_max_connections: 1024,
            tcp_max_connections_per_ip: 32,
            tcp_idle_timeout_s: 300,
            tcp_message_timeout_ms: 10_000,
            max_transaction_bytes: crate::sip::transaction::DEFAULT_MAX_STORED_BYTES,
            user_agent: concat!("zendesk-ivr/", env!("CARGO_PKG_VERSION")).into(),
            server_header: None,
            user_agent_header: None,
            allow: Vec::new(),
            deny_response: DenyResponse::Drop,
            rate_limit_requests_per_s: 200,
            rate_limit_invites_per_s: 50,
            rate_limit_sources: 100_000,
            max_cps: 200,
            scanner_user_agents: KNOWN_SCANNERS.iter().map(|s| s.to_string()).collect(),
            auth: Default::default(),
            register: Vec::new(),
        }
    }
}

impl SipConfig {
    /// Whether a new call gets 180 Ringing: only when `send_ringing` and the answer waits
    /// for `answer_delay_ms`. An answer at once goes out as 100 then 200, as Asterisk's
    /// `Answer()` and FreeSWITCH's `answer` do: a 180 just before the 200 tells a caller
    /// nothing, and a scanner that CANCELs on 180 (SIPVicious `svwar`) would race the
    /// answer and read 487 or 200 by timing. With a delay, a CANCEL that arrives while the
    /// call rings always wins (487), whatever the user.
    pub fn rings_before_answer(&self) -> bool {
        self.send_ringing && self.answer_delay_ms > 0
    }
    /// The IP that peers reach us on: `public_ip`, else the listen address.
    pub fn advertised_ip(&self) -> IpAddr {
        self.public_ip.unwrap_or(self.listen.ip())
    }
    /// The Server header value (empty: none).
    pub fn server(&self) -> &str {
        self.server_header.as_deref().unwrap_or(&self.user_agent)
    }
    /// The User-Agent header value (empty: none).
    pub fn user_agent(&self) -> &str {
        self.user_agent_header.as_deref().unwrap_or(&self.user_agent)
    }
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

/// A codec name as written in config, in preference order.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CodecName {
    Pcmu,
    Pcma,
    Opus,
}

/// Whether calls we answer use SRTP with keys from SDP (SDES, RFC 4568): `media.srtp`.
/// Keys travel in the SDP, so SRTP is only ever negotiated over SIP on TLS.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an `RTP/SAVP` offer gets 488.
    Off,
    /// SRTP when the caller offers it over TLS, plain RTP when it offers that.
    #[default]
    Optional,
    /// SRTP only: plain RTP, and any offer not over TLS, gets 488.
    Required,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// RTP port range "LOW-HIGH" (even ports are used for RTP, the next odd for RTCP).
    pub rtp_ports: String,
    /// Codecs offered and accepted, most preferred first.
    pub codecs: Vec<CodecName>,
    /// Hang up after this long with no RTP while not on hold (0 disables).
    pub rtp_timeout_s: u64,
    /// Music played while a caller waits for an agent in bridge mode.
    pub hold_music: PathBuf,
    /// Folder of static WAV prompts.
    pub prompts_dir: PathBuf,
    /// Played when a call is answered (a digit stops it), before hold music.
    pub welcome_prompt: PathBuf,
    /// Media worker threads sending RTP (0: one per core).
    pub workers: usize,
    /// Send each tick's RTP in one io_uring submission per worker (Linux); off, or where
    /// io_uring is not allowed, each packet is one `sendto`.
    pub batched_send: bool,
    /// SRTP (SDES) for calls we answer: off, optional or required.
    pub srtp: SrtpPolicy,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            // 5,000 pairs: room for sip.max_calls (2,000) even when every call is bridged.
            rtp_ports: "20000-29999".into(),
            codecs: vec![CodecName::Pcmu, CodecName::Pcma, CodecName::Opus],
            rtp_timeout_s: 30,
            hold_music: PathBuf::from("audio/defaultmusic_on_hold.wav"),
            prompts_dir: PathBuf::from("audio"),
            welcome_prompt: PathBuf::from("audio/welcome.wav"),
            workers: 0,
            batched_send: true,
            srtp: SrtpPolicy::Optional,
        }
    }
}

impl MediaConfig {
    /// The RTP port range as numbers, checked.
    pub fn rtp_port_range(&self) -> Result<(u16, u16), ConfigError> {
        let err = |reason: &str| ConfigError::Key {
            key: "media.rtp_ports",
            reason: format!("{reason} (got {:?}, want e.g. \"30000-30999\")", self.rtp_ports),
        };
        let (lo, hi) = self.rtp_ports.split_once('-').ok_or_else(|| err("expected LOW-HIGH"))?;
        let lo: u16 = lo.trim().parse().map_err(|_| err("LOW is not a port"))?;
        let hi: u16 = hi.trim().parse().map_err(|_| err("HIGH is not a port"))?;
        if lo == 0 || lo >= hi {
            return Err(err("LOW must be non-zero and below HIGH"));
        }
        Ok((lo, hi))
    }
}

/// `Debug` redacts the tokens (see the impl below).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskConfig {
    /// Look callers up and post comments. Off runs the IVR without Zendesk (a lab).
    pub enabled: bool,
    /// `https://<subdomain>.zendesk.com`, or any base URL (the simulator in labs).
    pub url: String,
    /// Agent email for API-token auth (`{email}/token:{api_token}`).
    pub email: Option<String>,
    /// The API token. Prefer `api_token_file` or the environment over the file.
    pub api_token: Option<String>,
    /// A file holding the API token (trailing white space is trimmed).
    pub api_token_file: Option<PathBuf>,
    /// The name of a systemd credential holding the API token (`LoadCredential=NAME:…`),
    /// read from `$CREDENTIALS_DIRECTORY/NAME`.
    pub api_token_credential: Option<String>,
    /// An OAuth bearer token, used instead of email/token when set.
    pub oauth_token: Option<String>,
    /// PEM CA certificates trusted for the Zendesk URL instead of the system roots: for a
    /// private CA or tests. Certificates are always verified.
    pub ca_file: Option<PathBuf>,
    /// One deadline for the whole data dip (user search + ticket search).
    pub deadline_ms: u64,
    /// Ticket search sort field (`updated_at`, `created_at`, `priority`, ...).
    pub sort_by: String,
    /// Repeat-caller cache.
    pub cache_ttl_s: u64,
    pub cache_size: usize,
    /// Open a ticket for callers with no user or no unsolved ticket.
    pub create_ticket_for_unknown: bool,
    /// Circuit breaker: consecutive failures that open it, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open_s: u64,
    /// Post-call comment body; placeholders `{caller}`, `{time}`, `{path}`, `{outcome}`,
    /// `{queue}`, `{duration}`, `{ivr_duration}`, `{call_id}`. The call-id marker is always
    /// added if missing.
    pub comment_template: String,
}

impl Default for ZendeskConfig {
    fn default() -> Self {
        ZendeskConfig {
            enabled: true,
            url: "http://127.0.0.1:8089".into(),
            email: None,
            api_token: None,
            api_token_file: None,
            api_token_credential: None,
            oauth_token: None,
            ca_file: None,
            deadline_ms: 1500,
            sort_by: "updated_at".into(),
            cache_ttl_s: 30,
            cache_size: 10_000,
            create_ticket_for_unknown: false,
            breaker_failures: 5,
            breaker_open_s: 30,
            comment_template: crate::zendesk::comment::DEFAULT_TEMPLATE.into(),
        }
    }
}

impl std::fmt::Debug for ZendeskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("ZendeskConfig")
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("email", &self.email)
            .field("api_token", &redacted(&self.api_token))
            .field("api_token_file", &self.api_token_file)
            .field("oauth_token", &redacted(&self.oauth_token))
            .field("deadline_ms", &self.deadline_ms)
            .field("sort_by", &self.sort_by)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .field("cache_size", &self.cache_size)
            .field("create_ticket_for_unknown", &self.create_ticket_for_unknown)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open_s", &self.breaker_open_s)
            .field("comment_template", &self.comment_template)
            .finish()
    }
}

impl ZendeskConfig {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    #[default]
    Refer,
    Bridge,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    pub mode: TransferMode,
    /// REFER: seconds to wait for the final NOTIFY before the transfer counts as failed.
    pub refer_wait_s: u64,
    /// REFER refused with 405 or 501: call the target ourselves (bridge) instead.
    pub refer_fallback_bridge: bool,
    /// Bridge: seconds a target may ring before the next one is tried.
    pub ring_timeout_s: u64,
    /// The longest a caller who chose to keep waiting for a busy queue waits, in seconds.
    pub max_wait_s: u64,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            mode: TransferMode::Refer,
            refer_wait_s: 32,
            refer_fallback_bridge: false,
            ring_timeout_s: 30,
            max_wait_s: 120,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// SQLite database of post-call comments waiting to be posted.
    pub path: PathBuf,
    /// Attempts before an entry goes to the dead-letter table.
    pub max_attempts: u32,
    /// Backoff after the first failed attempt; it doubles per failure, with jitter.
    pub backoff_base_ms: u64,
    /// The longest backoff between attempts.
    pub backoff_cap_ms: u64,
    /// The longest `Retry-After` honoured from Zendesk (a longer one is cut to this).
    pub retry_after_max_s: u64,
    /// Comments being posted at once (never two of one ticket).
    pub max_in_flight: usize,
    /// One attempt taking longer than this counts as ambiguous (the comment may have landed).
    pub attempt_timeout_s: u64,
    /// How long delivered entries are remembered, so that a repeated call id is a no-op.
    pub keep_done_s: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: PathBuf::from("zendesk-ivr-outbox.sqlite"),
            max_attempts: 20,
            backoff_base_ms: 1000,
            backoff_cap_ms: 300_000,
            retry_after_max_s: 3600,
            max_in_flight: 4,
            attempt_timeout_s: 60,
            keep_done_s: 7 * 24 * 3600,
        }
    }
}

impl OutboxConfig {
    /// Checks the ranges of the outbox keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key_error = |key, reason: &str| Err(ConfigError::Key { key, reason: reason.into() });
        if self.max_attempts == 0 {
            return key_error("outbox.max_attempts", "must be at least 1");
        }
        if self.backoff_base_ms == 0 || self.backoff_cap_ms < self.backoff_base_ms {
            return key_error(
                "outbox.backoff_cap_ms",
                "backoff_base_ms must be non-zero and backoff_cap_ms at least backoff_base_ms",
            );
        }
        if self.max_in_flight == 0 {
            return key_error("outbox.max_in_flight", "must be at least 1");
        }
        if self.attempt_timeout_s == 0 {
            return key_error("outbox.attempt_timeout_s", "must be above zero");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The status page, `/calls.json`, `/metrics`, `/healthz`, `/readyz`. Empty disables
    /// the admin listener.
    pub listen: Option<SocketAddr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))) }
    }
}

impl Config {
    /// Defaults, then the TOML file (if any), then `ZENDESK_IVR_*` from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        // Only SECTION__KEY names are config: ZENDESK_IVR_LOG (the log filter) is not.
        let env = Env::prefixed(ENV_PREFIX).filter(|k| k.as_str().contains("__")).split("__");
        Self::from_figment(Self::figment(file).merge(env))
    }

    /// Like [`Config::load`] with an explicit environment (for tests and tools).
    pub fn load_with_env<'a>(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Self::figment(file);
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix(ENV_PREFIX).filter(|rest| rest.contains("__")) {
                let key = rest.to_ascii_lowercase().replace("__", ".");
                let value: figment::value::Value = value
                    .parse()
                    .unwrap_or_else(|_| figment::value::Value::from(value.to_string()));
                figment = figment.merge((key, value));
            }
        }
        Self::from_figment(figment)
    }

    fn figment(file: Option<&Path>) -> Figment {
        let figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => figment.merge(Toml::file_exact(path)),
            None => figment,
        }
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// `media.rtp_ports` must hold a pair for each of `sip.max_calls` calls, two when calls
    /// may be bridged (the agent leg takes a pair of its own).
    fn check_rtp_capacity(&self) -> Result<(), ConfigError> {
        let (low, high) = self.media.rtp_port_range()?;
        let pairs = crate::media::rtp_ports::pair_count(low + (low % 2), high);
        let bridged =
            self.transfer.mode == TransferMode::Bridge || self.transfer.refer_fallback_bridge;
        let per_call = if bridged { 2 } else { 1 };
        let needed = self.sip.max_calls.saturating_mul(per_call);
        if pairs < needed {
            return Err(ConfigError::Invalid(format!(
                "media.rtp_ports ({:?}) holds {pairs} RTP/RTCP port pairs, but sip.max_calls = {} \
                 needs {needed} ({per_call} per call{}): widen media.rtp_ports or lower \
                 sip.max_calls",
                self.media.rtp_ports,
                self.sip.max_calls,
                if bridged { ", as calls may be bridged" } else { "" }
            )));
        }
        Ok(())
    }

    /// Checks that go beyond types: ranges, regions, URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_rtp_capacity()?;
        if self.sip.listen.ip().is_unspecified() && self.sip.public_ip.is_none() {
            return Err(ConfigError::Key {
                key: "sip.public_ip",
                reason: format!(
                    "needed when sip.listen ({}) is a wildcard address, so that Contact and SDP \
                     carry an address callers can reach",
                    self.sip.listen
                ),
            });
        }
        if self.sip.tls_listen.is_some()
            && (self.sip.tls_cert.is_none() || self.sip.tls_key.is_none())
        {
            return Err(ConfigError::Key {
                key: "sip.tls_cert",
                reason: "sip.tls_listen needs sip.tls_cert and sip.tls_key".into(),
            });
        }
        if self.sip.rate_limit_sources == 0 {
            return Err(ConfigError::Key {
                key: "sip.rate_limit_sources",
                reason: "must be at least 1".into(),
            });
        }
        self.outbox.validate()?;
        self.tts.validate()?;
        if self.media.codecs.is_empty() {
            return Err(ConfigError::Key {
                key: "media.codecs",
                reason: "at least one codec is needed".into(),
            });
        }
        if self.sip.default_region.parse::<phonenumber::country::Id>().is_err() {
            return Err(ConfigError::Key {
                key: "sip.default_region",
                reason: format!("{:?} is not an ISO 3166 region code", self.sip.default_region),
            });
        }
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            return Err(ConfigError::Key {
                key: "sip.t2_ms",
                reason: "T1 must be non-zero and T2 at least T1".into(),
            });
        }
        if !(self.zendesk.url.starts_with("http://") || self.zendesk.url.starts_with("https://")) {
            return Err(ConfigError::Key {
                key: "zendesk.url",
                reason: format!("{:?} is not an http(s) URL", self.zendesk.url),
            });
        }
        if self.zendesk.deadline_ms == 0 {
            return Err(ConfigError::Key {
                key: "zendesk.deadline_ms",
                reason: "must be above zero".into(),
            });
        }
        self.routing.validate()?;
        self.ivr.validate()?;
        if self.transfer.refer_wait_s == 0 || self.transfer.ring_timeout_s == 0 {
            return Err(ConfigError::Key {
                key: "transfer.ring_timeout_s",
                reason: "refer_wait_s and ring_timeout_s must be above zero".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load_with_env(None, []).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.zendesk.deadline_ms, 1500);
    }

    #[test]
    fn only_a_delayed_answer_rings() {
        let mut sip = SipConfig::default();
        assert!(!sip.rings_before_answer(), "an answer at once sends no 180");
        sip.answer_delay_ms = 2000;
        assert!(sip.rings_before_answer());
        sip.send_ringing = false;
        assert!(!sip.rings_before_answer());
    }

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/zendesk-ivr.example.toml");
        let config = Config::load_with_env(Some(&path), []).unwrap();
        assert_eq!(config.sip.default_region, "NO");
        assert_eq!(config.transfer.mode, TransferMode::Refer);
        assert_eq!(config.media.srtp, SrtpPolicy::Optional);
    }

    #[test]
    fn the_srtp_policy_is_read_from_the_environment() {
        let config =
            Config::load_with_env(None, [("ZENDESK_IVR_MEDIA__SRTP", "required")]).unwrap();
        assert_eq!(config.media.srtp, SrtpPolicy::Required);
        assert!(Config::load_with_env(None, [("ZENDESK_IVR_MEDIA__SRTP", "maybe")]).is_err());
    }

    #[test]
    fn environment_overrides_file() {
        let file = write("[sip]\nlisten = \"127.0.0.1:5070\"\n[zendesk]\ndeadline_ms = 900\n");
        let config = Config::load_with_env(
            Some(file.path()),
            [
                ("ZENDESK_IVR_SIP__LISTEN", "127.0.0.1:5080"),
                ("ZENDESK_IVR_TRANSFER__MODE", "bridge"),
                ("UNRELATED", "x"),
                ("ZENDESK_IVR_LOG", "debug"),
            ],
        )
        .unwrap();
        assert_eq!(config.sip.listen, "127.0.0.1:5080".parse().unwrap());
        assert_eq!(config.zendesk.deadline_ms, 900);
        assert_eq!(config.transfer.mode, TransferMode::Bridge);
    }

    #[test]
    fn environment_sets_lists_and_booleans() {
        let config = Config::load_with_env(
            None,
            [
                ("ZENDESK_IVR_SIP__TRUSTED_SOURCES", "[\"172.28.0.2\", \"10.0.0.1\"]"),
                ("ZENDESK_IVR_MEDIA__CODECS", "[\"pcma\"]"),
                ("ZENDESK_IVR_ZENDESK__ENABLED", "false"),
            ],
        )
        .unwrap();
        let expected: Vec<SourceNet> =
            vec!["172.28.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        assert_eq!(config.sip.trusted_sources, expected);
        assert_eq!(config.media.codecs, vec![CodecName::Pcma]);
        assert!(!config.zendesk.enabled);
    }

    #[test]
    fn access_lists_take_addresses_and_cidrs() {
        let file = write(
            "[sip]\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\ndeny_response = \"403\"\n\
             trusted_sources = [\"172.28.0.0/16\", \"10.0.0.1\"]\nserver_header = \"\"\n",
        );
        let config = Config::load_with_env(Some(file.path()), []).unwrap();
        let inside = |nets: &[SourceNet], ip: &str| {
            crate::sip::admission::any_contains(nets, ip.parse().unwrap())
        };
        assert!(inside(&config.sip.allow, "10.2.3.4") && inside(&config.sip.allow, "192.0.2.7"));
        assert!(!inside(&config.sip.allow, "192.0.2.8"));
        assert!(inside(&config.sip.trusted_sources, "172.28.9.9"));
        assert_eq!(config.sip.deny_response, DenyResponse::Forbidden);
        assert_eq!(config.sip.server(), "");
        assert_eq!(config.sip.user_agent(), config.sip.user_agent);
        let config = Config::load_with_env(
            None,
            [
                ("ZENDESK_IVR_SIP__USER_AGENT_HEADER", ""),
                ("ZENDESK_IVR_SIP__SCANNER_USER_AGENTS", "[]"),
                ("ZENDESK_IVR_SIP__ALLOW", "[\"192.0.2.0/24\"]"),
            ],
        )
        .unwrap();
        assert_eq!(config.sip.user_agent(), "");
        assert!(config.sip.scanner_user_agents.is_empty());
        assert_eq!(config.sip.allow, vec!["192.0.2.0/24".parse::<SourceNet>().unwrap()]);
        let file = write("[sip]\nallow = [\"10.0.0.0/40\"]\n");
        let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
        assert!(err.contains("sip.allow"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let file = write("[sip]\nlisten = \"not an address\"\n");
        let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
        assert!(err.contains("sip.listen"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let file = write("[zendesk]\ndeadline = 5\n");
        let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
        assert!(err.contains("deadline"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        for (text, key) in [
            ("[media]\nrtp_ports = \"40000-30000\"\n", "media.rtp_ports"),
            ("[sip]\ndefault_region = \"XX\"\n", "sip.default_region"),
            ("[zendesk]\nurl = \"ftp://x\"\n", "zendesk.url"),
            ("[routing]\ndefault_queue = \"queue\"\n", "routing.default_queue"),
            ("[sip]\nlisten = \"0.0.0.0:5060\"\n", "sip.public_ip"),
        ] {
            let file = write(text);
            let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn rtp_ports_must_serve_max_calls_naming_both_keys() {
        let file = write("[media]\nrtp_ports = \"30000-30999\"\n");
        let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
        assert!(err.contains("media.rtp_ports") && err.contains("sip.max_calls"), "{err}");
        assert!(err.contains("500 RTP/RTCP port pairs"), "{err}");
        // Enough pairs for one per call, but not for bridged calls.
        let file = write("[media]\nrtp_ports = \"30000-33999\"\n[transfer]\nmode = \"bridge\"\n");
        let err = Config::load_with_env(Some(file.path()), []).unwrap_err().to_string();
        assert!(err.contains("as calls may be bridged"), "{err}");
        let file = write("[media]\nrtp_ports = \"30000-33999\"\n");
        assert!(Config::load_with_env(Some(file.path()), []).is_ok());
    }

    #[test]
    fn debug_redacts_every_secret() {
        let mut config = Config::default();
        config.zendesk.api_token = Some("zd-t0k3n-1".into());
        config.zendesk.oauth_token = Some("zd-oauth-2".into());
        config.tts.http.api_key = Some("sk-tts-3".into());
        let text = format!("{config:?}");
        for secret in ["zd-t0k3n-1", "zd-oauth-2", "sk-tts-3"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("api_token: Some(\"[redacted]\")"), "{text}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load_with_env(Some(Path::new("/nonexistent/zendesk-ivr.toml")), []);
        assert!(err.is_err());
    }
}
