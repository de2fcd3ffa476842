//! Tools around the service: `zendesk-ivr say` (one sentence to a WAV file) and the TTS
//! lines of `zendesk-ivr check` (each configured voice speaks).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::prompt::{Limits, decode_wav};

use super::{RenderSource, Tts, TtsConfig, TtsError};

/// What `check` asks every voice to say: numbers read in any language.
pub const CHECK_SENTENCE: &str = "1, 2, 3.";

/// What `say` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SayReport {
    pub path: PathBuf,
    pub voice: String,
    pub duration: Duration,
    pub source: RenderSource,
    pub elapsed: Duration,
}

impl SayReport {
    /// One line: the file, the audio's length, the voice and where it came from.
    pub fn to_text(&self) -> String {
        let source = match self.source {
            RenderSource::Memory => "from the memory cache",
            RenderSource::Disk => "from the disk cache",
            RenderSource::Engine => "rendered",
        };
        format!(
            "{}: {:.2} s of audio, voice {}, {source} in {} ms\n",
            self.path.display(),
            self.duration.as_secs_f64(),
            self.voice,
            self.elapsed.as_millis()
        )
    }
}

/// The service for `config`, built on the blocking pool (it may read a key file).
async fn service(config: &TtsConfig) -> Result<Tts, TtsError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || Tts::from_config(&config))
        .await
        .map_err(|err| TtsError::Setup(err.to_string()))?
}

/// The length of a WAV's audio (decoded on the blocking pool).
pub async fn wav_duration(wav: Arc<[u8]>) -> Result<Duration, TtsError> {
    tokio::task::spawn_blocking(move || decode_wav(&wav, Limits::default()))
        .await
        .map_err(|err| TtsError::Engine(err.to_string()))?
        .map(|pcm| pcm.duration())
        .map_err(|err| TtsError::InvalidWav(err.to_string()))
}

/// Renders `text` in `lang` with the configured engine (through the caches) to `out`.
pub async fn say(
    config: &TtsConfig,
    text: &str,
    lang: &str,
    out: &Path,
) -> Result<SayReport, TtsError> {
    let tts = service(config).await?;
    let started = Instant::now();
    let rendered = tts.render_unhurried(text, lang).await?;
    let elapsed = started.elapsed();
    let duration = wav_duration(rendered.wav.clone()).await?;
    let (path, wav) = (out.to_path_buf(), rendered.wav.clone());
    tokio::task::spawn_blocking(move || std::fs::write(&path, &wav))
        .await
        .map_err(|err| TtsError::Io(err.to_string()))?
        .map_err(|err| TtsError::Io(format!("writing {}: {err}", out.display())))?;
    Ok(SayReport {
        path: out.to_path_buf(),
        voice: rendered.voice,
        duration,
        source: rendered.source,
        elapsed,
    })
}

/// One line per configured language for `check`: (`tts.voices.LANG`, what it said or why
/// not). Uses no disk cache, so a check writes nothing, and the call path's time bound.
pub async fn check_voices(config: &TtsConfig) -> Vec<(String, Result<String, String>)> {
    let config = TtsConfig { cache_dir: None, ..config.clone() };
    let tts = match service(&config).await {
        Ok(tts) => tts,
        Err(err) => return vec![("tts.engine".into(), Err(err.to_string()))],
    };
    let mut lines = Vec::new();
    for lang in tts.languages() {
        let started = Instant::now();
        let result = match tts.render_detailed(CHECK_SENTENCE, lang).await {
            Ok(rendered) => wav_duration(rendered.wav).await.map(|duration| {
                format!(
                    "voice {} by {}: {:.1} s of audio in {} ms",
                    rendered.voice,
                    tts.backend(),
                    duration.as_secs_f64(),
                    started.elapsed().as_millis()
                )
            }),
            Err(err) => Err(err),
        };
        lines.push((format!("tts.voices.{lang}"), result.map_err(|err| err.to_string())));
    }
    lines
}
