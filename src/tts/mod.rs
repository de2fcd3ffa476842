//! Text to speech (runtime layer): a [`Synthesizer`] turns a sentence into WAV bytes, and
//! [`Tts`] is the service calls use. It picks the voice for a language, bounds every render
//! in time and in concurrency, checks the WAV decodes, and caches the result in memory and
//! on disk, keyed by SHA-256 of (backend, voice, text).
//!
//! Engines: [`EspeakSynthesizer`] (espeak-ng, offline, the default), [`HttpSynthesizer`]
//! (an OpenAI-compatible `/v1/audio/speech`) and [`FakeSynthesizer`] (tests). Text is
//! untrusted: it goes to espeak-ng on stdin with markup off, and to HTTP engines as a JSON
//! string, so it is always spoken literally.
//!
//! Metrics: `tts_renders_total{result="ok|timeout|error"}` per render asked for (cache hits
//! included), `tts_cache_hits_total{layer="memory|disk"}`, and `tts_render_seconds`, the
//! engine's time per synthesis.

use std::future::Future;

mod cache;
mod checks;
pub mod config;
mod espeak;
pub mod fake;
mod http;
mod say;
mod service;
#[cfg(test)]
mod tests;

pub use cache::{CacheKey, cache_key};
pub use config::{Engine, TtsConfig, TtsHttpConfig};
pub use espeak::EspeakSynthesizer;
pub use fake::FakeSynthesizer;
pub use http::HttpSynthesizer;
pub use say::{CHECK_SENTENCE, SayReport, check_voices, say, wav_duration};
pub use service::{BACKGROUND_FACTOR, PrerenderReport, RenderSource, Rendered, Tts};

/// The longest text rendered, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The largest WAV accepted from an engine, in bytes (about three minutes of 22 kHz audio).
pub const MAX_WAV_BYTES: usize = 8 * 1024 * 1024;

/// Why a sentence could not be rendered. Cloneable: one render may answer several callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtsError {
    #[error("no TTS voice is configured for language {0:?} (tts.voices)")]
    NoVoice(String),
    #[error("nothing to say: the text is empty")]
    EmptyText,
    #[error("text of {chars} characters is longer than the {max} allowed")]
    TextTooLong { chars: usize, max: usize },
    #[error("TTS took longer than {0:?}")]
    Timeout(std::time::Duration),
    #[error("TTS engine output is larger than {max} bytes")]
    OutputTooLarge { max: usize },
    #[error("TTS engine failed: {0}")]
    Engine(String),
    #[error("TTS engine returned an invalid WAV: {0}")]
    InvalidWav(String),
    #[error("TTS set-up: {0}")]
    Setup(String),
    #[error("TTS file: {0}")]
    Io(String),
}

/// A speech engine: renders `text` in `voice` to the bytes of a WAV file.
///
/// The future is `Send` so renders can run on any runtime thread; an implementation may
/// still be written with `async fn`.
pub trait Synthesizer {
    fn synthesize(
        &self,
        text: &str,
        voice: &str,
    ) -> impl Future<Output = Result<Vec<u8>, TtsError>> + Send;
    /// The engine's name in cache keys: output differs when the name does.
    fn backend(&self) -> &str;
}

/// One of the engines, chosen by config (an enum, so [`Tts`] needs no boxed futures).
#[derive(Debug, Clone)]
pub enum Backend {
    Espeak(EspeakSynthesizer),
    Http(HttpSynthesizer),
    Fake(FakeSynthesizer),
}

impl Synthesizer for Backend {
    async fn synthesize(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        match self {
            Backend::Espeak(engine) => engine.synthesize(text, voice).await,
            Backend::Http(engine) => engine.synthesize(text, voice).await,
            Backend::Fake(engine) => engine.synthesize(text, voice).await,
        }
    }

    fn backend(&self) -> &str {
        match self {
            Backend::Espeak(engine) => engine.backend(),
            Backend::Http(engine) => engine.backend(),
            Backend::Fake(engine) => engine.backend(),
        }
    }
}
