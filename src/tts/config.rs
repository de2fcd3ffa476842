//! `[tts]`: which engine speaks, its bounds, its caches and the voice per language.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Which engine renders sentences.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// espeak-ng, run as a process: offline, fast, robotic.
    #[default]
    Espeak,
    /// An OpenAI-compatible `POST {url}/v1/audio/speech` (cloud or self-hosted).
    Http,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TtsConfig {
    pub engine: Engine,
    /// The call path waits this long for a sentence, then plays its fallback.
    pub timeout_ms: u64,
    /// Renders running at once, across all calls.
    pub max_concurrent: usize,
    /// Rendered WAVs kept on disk, named by their key. `None` or empty: no disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Rendered WAVs kept in memory.
    pub cache_entries: usize,
    /// The engine's voice for each language (`en`, `nb`, ...).
    pub voices: BTreeMap<String, String>,
    /// The espeak-ng program.
    pub espeak_path: PathBuf,
    pub http: TtsHttpConfig,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            engine: Engine::Espeak,
            timeout_ms: 1500,
            max_concurrent: 4,
            cache_dir: Some(PathBuf::from("tts-cache")),
            cache_entries: 512,
            voices: BTreeMap::from([("en".into(), "en-us".into()), ("nb".into(), "nb".into())]),
            espeak_path: PathBuf::from("espeak-ng"),
            http: TtsHttpConfig::default(),
        }
    }
}

/// `[tts.http]`: an OpenAI-compatible speech endpoint.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TtsHttpConfig {
    /// Base URL; the request goes to `{url}/v1/audio/speech`.
    pub url: String,
    pub model: String,
    /// The header that carries the key. `Authorization` gets `Bearer {key}`; any other
    /// header gets the key as it is.
    pub auth_header: String,
    /// The key (prefer `api_key_file` or `ZENDESK_IVR_TTS__HTTP__API_KEY`).
    pub api_key: Option<String>,
    /// A file holding the key (trailing white space is trimmed).
    pub api_key_file: Option<PathBuf>,
}

impl Default for TtsHttpConfig {
    fn default() -> Self {
        TtsHttpConfig {
            url: "http://127.0.0.1:8880".into(),
            model: "tts-1".into(),
            auth_header: "Authorization".into(),
            api_key: None,
            api_key_file: None,
        }
    }
}

impl std::fmt::Debug for TtsHttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsHttpConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("auth_header", &self.auth_header)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("api_key_file", &self.api_key_file)
            .finish()
    }
}

/// Whether `name` is safe to hand to an engine as a language or voice name.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
}

impl TtsConfig {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }

    /// The disk cache folder, if one is configured.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref().filter(|dir| !dir.as_os_str().is_empty())
    }

    /// Checks the ranges and names of the `[tts]` keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key_error = |key, reason: String| Err(ConfigError::Key { key, reason });
        if self.timeout_ms == 0 {
            return key_error("tts.timeout_ms", "must be above zero".into());
        }
        if self.max_concurrent == 0 {
            return key_error("tts.max_concurrent", "must be at least 1".into());
        }
        if self.voices.is_empty() {
            return key_error("tts.voices", "at least one language needs a voice".into());
        }
        for (lang, voice) in &self.voices {
            // espeak-ng gets the voice as an argument; an HTTP engine in a JSON string.
            let voice_ok = match self.engine {
                Engine::Espeak => is_plain_name(voice),
                Engine::Http => {
                    !voice.trim().is_empty()
                        && voice.len() <= 128
                        && !voice.chars().any(char::is_control)
                }
            };
            if !is_plain_name(lang) || !voice_ok {
                return key_error(
                    "tts.voices",
                    format!("{lang:?} = {voice:?}: use letters, digits, '-', '_', '+', '.'"),
                );
            }
        }
        if self.engine == Engine::Espeak && self.espeak_path.as_os_str().is_empty() {
            return key_error("tts.espeak_path", "must name the espeak-ng program".into());
        }
        if self.engine == Engine::Http {
            self.http.validate()?;
        }
        Ok(())
    }
}

impl TtsHttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let key_error = |key, reason: String| Err(ConfigError::Key { key, reason });
        match reqwest::Url::parse(self.url.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => return key_error("tts.http.url", format!("{:?} is not an http(s) URL", self.url)),
        }
        if self.model.trim().is_empty() {
            return key_error("tts.http.model", "must name the engine's model".into());
        }
        if reqwest::header::HeaderName::from_bytes(self.auth_header.as_bytes()).is_err() {
            return key_error(
                "tts.http.auth_header",
                format!("{:?} is not an HTTP header name", self.auth_header),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_key() {
        TtsConfig::default().validate().unwrap();
        type Change = fn(&mut TtsConfig);
        let cases: [(Change, &str); 5] = [
            (|c| c.timeout_ms = 0, "tts.timeout_ms"),
            (|c| c.max_concurrent = 0, "tts.max_concurrent"),
            (|c| drop(c.voices.insert("en".into(), "-w/tmp/x".into())), "tts.voices"),
            (|c| (c.engine, c.http.url) = (Engine::Http, "ftp://x".into()), "tts.http.url"),
            (
                |c| (c.engine, c.http.auth_header) = (Engine::Http, "a b".into()),
                "tts.http.auth_header",
            ),
        ];
        for (change, key) in cases {
            let mut config = TtsConfig::default();
            change(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn http_voices_may_be_any_printable_name() {
        let mut config = TtsConfig { engine: Engine::Http, ..TtsConfig::default() };
        config.voices.insert("en".into(), "en/en_US-lessac medium".into());
        config.validate().unwrap();
        config.voices.insert("en".into(), "a\nb".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn debug_redacts_the_key() {
        let mut config = TtsConfig::default();
        config.http.api_key = Some("sk-very-secret".into());
        let text = format!("{config:?}");
        assert!(!text.contains("sk-very-secret"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn empty_cache_dir_disables_the_disk_cache() {
        let mut config = TtsConfig::default();
        assert_eq!(config.cache_dir(), Some(std::path::Path::new("tts-cache")));
        config.cache_dir = Some(PathBuf::new());
        assert_eq!(config.cache_dir(), None);
        config.cache_dir = None;
        assert_eq!(config.cache_dir(), None);
    }
}
