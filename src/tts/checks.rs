//! What goes into an engine and what comes out: the text cleaned and bounded, the voice
//! chosen for a language, and the WAV checked to decode.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::media::prompt::{Limits, decode_wav};

use super::{MAX_TEXT_CHARS, MAX_WAV_BYTES, TtsError};

/// The voice for `lang`: its own (`nb`), else its primary language's (`nb-NO` -> `nb`).
/// Languages match without regard to case.
pub(super) fn select_voice<'a>(
    voices: &'a BTreeMap<String, String>,
    lang: &str,
) -> Result<&'a str, TtsError> {
    let find = |wanted: &str| {
        voices.iter().find(|(l, _)| l.eq_ignore_ascii_case(wanted)).map(|(_, v)| v.as_str())
    };
    let lang = lang.trim();
    find(lang)
        .or_else(|| lang.split(['-', '_']).next().and_then(find))
        .ok_or_else(|| TtsError::NoVoice(lang.chars().take(32).collect()))
}

/// Control characters become spaces; the text is trimmed and bounded.
pub(super) fn clean_text(text: &str) -> Result<String, TtsError> {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let cleaned = cleaned.trim();
    let chars = cleaned.chars().count();
    match chars {
        0 => Err(TtsError::EmptyText),
        _ if chars > MAX_TEXT_CHARS => Err(TtsError::TextTooLong { chars, max: MAX_TEXT_CHARS }),
        _ => Ok(cleaned.to_string()),
    }
}

/// Whether `bytes` is a WAV that decodes to some audio (CPU work: blocking pool only).
pub(super) fn check_wav_blocking(bytes: &[u8]) -> Result<(), TtsError> {
    if bytes.len() > MAX_WAV_BYTES {
        return Err(TtsError::OutputTooLarge { max: MAX_WAV_BYTES });
    }
    let pcm = decode_wav(bytes, Limits::default())
        .map_err(|err| TtsError::InvalidWav(err.to_string()))?;
    if pcm.samples.is_empty() {
        return Err(TtsError::InvalidWav("no audio".into()));
    }
    Ok(())
}

/// An engine's output, checked on the blocking pool, ready to share.
pub(super) async fn checked_wav(bytes: Vec<u8>) -> Result<Arc<[u8]>, TtsError> {
    tokio::task::spawn_blocking(move || check_wav_blocking(&bytes).map(|()| Arc::from(bytes)))
        .await
        .map_err(|err| TtsError::Engine(format!("checking the WAV: {err}")))?
}
