//! An OpenAI-compatible speech engine: `POST {url}/v1/audio/speech` with
//! `{"model", "voice", "input", "response_format": "wav"}`, answered by a WAV file.
//! The key goes in one header, marked sensitive; it never appears in `Debug` or logs.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::{MAX_WAV_BYTES, Synthesizer, TtsError, TtsHttpConfig};

/// Largest key file read, in bytes.
const MAX_KEY_FILE: u64 = 4096;
/// The most of an error response quoted in the error.
const MAX_ERROR_QUOTE: usize = 200;

/// A speech endpoint over HTTP. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct HttpSynthesizer {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    auth: Option<(HeaderName, HeaderValue)>,
    limit: Duration,
    /// `http:{url}#{model}`: another endpoint or model renders other audio.
    name: String,
}

impl std::fmt::Debug for HttpSynthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSynthesizer")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("auth", &self.auth.as_ref().map(|(name, _)| (name, "[redacted]")))
            .finish()
    }
}

impl HttpSynthesizer {
    /// From `[tts.http]`; the key is `api_key` (or its environment override), else the
    /// contents of `api_key_file`. Each request is bounded by `limit`. Reads the key file:
    /// call it at start-up or off the runtime's workers.
    pub fn from_config(config: &TtsHttpConfig, limit: Duration) -> Result<Self, TtsError> {
        let base = config.url.trim().trim_end_matches('/');
        let endpoint = format!("{base}/v1/audio/speech");
        reqwest::Url::parse(&endpoint)
            .map_err(|err| TtsError::Setup(format!("tts.http.url {:?}: {err}", config.url)))?;
        let key = match (&config.api_key, &config.api_key_file) {
            (Some(key), _) if !key.trim().is_empty() => Some(key.trim().to_string()),
            (_, Some(path)) => Some(read_key_file(path)?),
            _ => None,
        };
        let auth = match key {
            Some(key) => Some(auth_header(&config.auth_header, &key)?),
            None => None,
        };
        // reqwest is built without a default crypto provider; ring is ours. An error only
        // means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("zendesk-ivr/", env!("CARGO_PKG_VERSION")))
            .timeout(limit)
            .connect_timeout(limit.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| TtsError::Setup(format!("HTTP client: {err}")))?;
        let name = format!("http:{endpoint}#{}", config.model);
        Ok(HttpSynthesizer { http, endpoint, model: config.model.clone(), auth, limit, name })
    }

    async fn request(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        let body = serde_json::json!({
            "model": self.model,
            "voice": voice,
            "input": text,
            "response_format": "wav",
        });
        let mut request = self.http.post(&self.endpoint).json(&body);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let engine_err = |err: reqwest::Error| match err.is_timeout() {
            true => TtsError::Timeout(self.limit),
            false => TtsError::Engine(err.to_string()),
        };
        let mut response = request.send().await.map_err(engine_err)?;
        let status = response.status();
        if response.content_length().is_some_and(|len| len > MAX_WAV_BYTES as u64) {
            return Err(TtsError::OutputTooLarge { max: MAX_WAV_BYTES });
        }
        let limit = if status.is_success() { MAX_WAV_BYTES } else { MAX_ERROR_QUOTE };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(engine_err)? {
            if body.len() + chunk.len() > limit {
                if status.is_success() {
                    return Err(TtsError::OutputTooLarge { max: MAX_WAV_BYTES });
                }
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let quote: String = String::from_utf8_lossy(&body)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Err(TtsError::Engine(format!(
                "{} answered {status}: {}",
                self.endpoint,
                quote.trim()
            )));
        }
        Ok(body)
    }
}

fn auth_header(name: &str, key: &str) -> Result<(HeaderName, HeaderValue), TtsError> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        TtsError::Setup(format!("tts.http.auth_header {name:?} is not a header name"))
    })?;
    let text = if name == reqwest::header::AUTHORIZATION {
        format!("Bearer {key}")
    } else {
        key.to_string()
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        TtsError::Setup("the TTS key has characters not allowed in an HTTP header".into())
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn read_key_file(path: &Path) -> Result<String, TtsError> {
    let err = |reason: String| {
        TtsError::Setup(format!("tts.http.api_key_file {}: {reason}", path.display()))
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(err(format!("larger than {MAX_KEY_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    match text.trim() {
        "" => Err(err("empty".into())),
        key => Ok(key.to_string()),
    }
}

impl Synthesizer for HttpSynthesizer {
    async fn synthesize(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        self.request(text, voice).await
    }

    fn backend(&self) -> &str {
        &self.name
    }
}
