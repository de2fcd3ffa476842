//! Prompts: WAV audio decoded, resampled and encoded once per codec, then shared by every
//! call as an `Arc<[Frame]>`.
//!
//! Any WAV hound reads is accepted (8/16/24/32-bit integer or 32-bit float PCM, any rate,
//! any channel count, mixed down to mono), within [`Limits`]. Streaming WAVs whose header
//! claims an unknown length (espeak-ng `--stdout` writes 0x7FFFF000) are read up to the end
//! of the bytes. The audio is resampled with rubato to 8 kHz for G.711 and 48 kHz for Opus.
//!
//! [`PromptCache`] keys prompts by file path or by SHA-256 of the WAV bytes (for TTS output),
//! plus the codec, so each distinct audio is encoded at most once per codec.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rubato::VecResampler;

use crate::config::CodecName;
use crate::media::codec::{CodecError, CodecInfo, Encoder, Frame};

/// Encoded frames of one prompt, shared by all calls.
pub type Prompt = Arc<[Frame]>;

/// Bounds on accepted audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest WAV accepted, in bytes.
    pub max_bytes: u64,
    /// Longest audio accepted.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 * 1024 * 1024, max_duration: Duration::from_secs(600) }
    }
}

const MIN_RATE: u32 = 4000;
const MAX_RATE: u32 = 384_000;
const MAX_CHANNELS: u16 = 16;

/// Why audio could not be turned into a prompt.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("WAV is {size} bytes, more than the {max} allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("audio is longer than the {max:?} allowed")]
    TooLong { max: Duration },
    #[error("unsupported WAV: {0}")]
    Unsupported(String),
    #[error("invalid WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("resampling: {0}")]
    Resample(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A file that failed to load before is not read again (until the process restarts).
    #[error("{0} (failed before; not retried)")]
    FailedBefore(String),
}

/// Mono audio as floats in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<f32>,
}

impl Pcm {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }

    /// 16-bit samples, clipped.
    pub fn to_i16(&self) -> Vec<i16> {
        to_i16(&self.samples)
    }
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16).collect()
}

/// Reads a WAV file (the only I/O in the media cores), within `limits`.
pub fn read_wav_file(path: &Path, limits: Limits) -> Result<Pcm, PromptError> {
    let file_err = |source| PromptError::File { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(file_err)?.len();
    if size > limits.max_bytes {
        return Err(PromptError::TooLarge { size, max: limits.max_bytes });
    }
    let bytes = std::fs::read(path).map_err(file_err)?;
    decode_wav(&bytes, limits)
}

/// Decodes WAV bytes (e.g. TTS output) to mono, within `limits`.
pub fn decode_wav(bytes: &[u8], limits: Limits) -> Result<Pcm, PromptError> {
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(PromptError::TooLarge { size, max: limits.max_bytes });
    }
    let mut reader = hound::WavReader::new(Cursor::new(bytes))?;
    let spec = reader.spec();
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(PromptError::Unsupported(format!("sample rate {}", spec.sample_rate)));
    }
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(PromptError::Unsupported(format!("{} channels", spec.channels)));
    }
    let channels = usize::from(spec.channels);
    let max_frames = (limits.max_duration.as_secs_f64() * f64::from(spec.sample_rate)) as usize;
    let max_values = max_frames.saturating_mul(channels);
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            collect_samples(reader.samples::<f32>(), max_values, limits, |v| v)?
        }
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            collect_samples(reader.samples::<i32>(), max_values, limits, |v| v as f32 * scale)?
        }
        (format, bits) => {
            return Err(PromptError::Unsupported(format!("{format:?} {bits}-bit samples")));
        }
    };
    let samples = interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok(Pcm { rate: spec.sample_rate, samples })
}

/// Reads samples until the data ends. A streaming WAV's header overstates its length, so
/// running out of bytes is the end of the audio, not an error.
fn collect_samples<T, I>(
    iter: I,
    max_values: usize,
    limits: Limits,
    convert: impl Fn(T) -> f32,
) -> Result<Vec<f32>, PromptError>
where
    I: Iterator<Item = hound::Result<T>>,
{
    let mut out = Vec::new();
    for sample in iter {
        match sample {
            Ok(v) => {
                if out.len() >= max_values {
                    return Err(PromptError::TooLong { max: limits.max_duration });
                }
                out.push(convert(v));
            }
            // The bytes are in memory, so an I/O error can only mean they ran out.
            Err(hound::Error::IoError(_)) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Resamples to `rate`. The output has `round(len · rate / pcm.rate)` samples, aligned with
/// the input (the resampler's delay is removed).
pub fn resample(pcm: &Pcm, rate: u32) -> Result<Vec<f32>, PromptError> {
    if pcm.rate == rate || pcm.samples.is_empty() {
        return Ok(pcm.samples.clone());
    }
    let err = |e: &dyn std::fmt::Display| PromptError::Resample(e.to_string());
    let expected =
        (pcm.samples.len() as u64 * u64::from(rate)).div_ceil(u64::from(pcm.rate)) as usize;
    let mut resampler = make_resampler(pcm.rate, rate).map_err(|e| err(&e))?;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(expected + delay + 4096);
    let mut input = &pcm.samples[..];
    loop {
        let need = resampler.input_frames_next();
        if input.len() >= need {
            let chunk = resampler.process(&[input[..need].to_vec()], None).map_err(|e| err(&e))?;
            out.extend_from_slice(chunk.first().map(Vec::as_slice).unwrap_or(&[]));
            input = &input[need..];
        } else {
            let rest = (!input.is_empty()).then(|| vec![input.to_vec()]);
            let chunk = resampler.process_partial(rest.as_deref(), None).map_err(|e| err(&e))?;
            out.extend_from_slice(chunk.first().map(Vec::as_slice).unwrap_or(&[]));
            input = &[];
            if out.len() >= expected + delay {
                break;
            }
        }
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

/// FFT resampling for rate pairs with a small ratio (every common rate); a sinc resampler
/// for odd pairs, where the FFT sizes would explode.
fn make_resampler(
    from: u32,
    to: u32,
) -> Result<Box<dyn VecResampler<f32>>, rubato::ResamplerConstructionError> {
    let (a, b) = (from as usize, to as usize);
    let g = gcd(a, b);
    if a / g <= 2048 && b / g <= 2048 {
        return Ok(Box::new(rubato::FftFixedIn::<f32>::new(a, b, 1024, 2, 1)?));
    }
    let params = rubato::SincInterpolationParameters {
        sinc_len: 128,
        f_cutoff: 0.95,
        interpolation: rubato::SincInterpolationType::Linear,
        oversampling_factor: 256,
        window: rubato::WindowFunction::BlackmanHarris2,
    };
    Ok(Box::new(rubato::SincFixedIn::<f32>::new(to as f64 / from as f64, 1.0, params, 1024, 1)?))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resamples and encodes audio for `codec` into 20 ms frames; the last frame is padded
/// with silence. All payloads share one buffer.
pub fn encode(pcm: &Pcm, codec: CodecName) -> Result<Prompt, PromptError> {
    let samples = to_i16(&resample(pcm, codec.pcm_rate())?);
    encode_pcm(&samples, codec)
}

/// Encodes PCM already at the codec's `pcm_rate()` into 20 ms frames.
pub fn encode_pcm(samples: &[i16], codec: CodecName) -> Result<Prompt, PromptError> {
    let per_frame = codec.samples_per_frame();
    let mut encoder = Encoder::new(codec)?;
    let mut buf = Vec::with_capacity(samples.len());
    let mut lengths = Vec::with_capacity(samples.len() / per_frame + 1);
    let mut padded = vec![0i16; per_frame];
    for chunk in samples.chunks(per_frame) {
        let frame = if chunk.len() == per_frame {
            chunk
        } else {
            padded[..chunk.len()].copy_from_slice(chunk);
            padded[chunk.len()..].fill(0);
            &padded[..]
        };
        lengths.push(encoder.encode_into(frame, &mut buf)?);
    }
    let mut all = BytesMut::from(&buf[..]).freeze();
    let frames: Vec<Frame> = lengths
        .into_iter()
        .map(|len| Frame { payload: all.split_to(len), samples: codec.timestamp_increment() })
        .collect();
    Ok(frames.into())
}

/// What a cached prompt was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PromptSource {
    Path(PathBuf),
    /// SHA-256 of the WAV bytes.
    Content([u8; 32]),
    /// A rendering's own key (the TTS cache key: engine, voice and text), which names the
    /// same audio every time.
    Rendered([u8; 32]),
}

/// A cached prompt, or (for files) why it could not be made.
type Slot = Arc<Mutex<Option<Result<Prompt, String>>>>;

/// Prompts encoded once per (source, codec) and shared. Holds at most `capacity` entries,
/// dropping the oldest first (calls still playing a dropped prompt keep their `Arc`).
#[derive(Debug)]
pub struct PromptCache {
    limits: Limits,
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    slots: HashMap<(PromptSource, CodecName), Slot>,
    order: VecDeque<(PromptSource, CodecName)>,
}

impl PromptCache {
    pub fn new(limits: Limits, capacity: usize) -> Self {
        PromptCache { limits, capacity: capacity.max(1), inner: Mutex::new(CacheInner::default()) }
    }

    /// The prompt of a WAV file, encoded for `codec`, loaded on first use.
    pub fn file(&self, path: &Path, codec: CodecName) -> Result<Prompt, PromptError> {
        let limits = self.limits;
        self.get_or_make(PromptSource::Path(path.to_path_buf()), codec, || {
            encode(&read_wav_file(path, limits)?, codec)
        })
    }

    /// The prompt of in-memory WAV bytes (TTS output), encoded for `codec` at most once per
    /// distinct content.
    pub fn wav_bytes(&self, wav: &[u8], codec: CodecName) -> Result<Prompt, PromptError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, wav);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let limits = self.limits;
        self.get_or_make(PromptSource::Content(key), codec, || {
            encode(&decode_wav(wav, limits)?, codec)
        })
    }

    /// The prompt of a rendering known by `key` (the TTS cache key), encoded for `codec`
    /// at most once per key: a hit neither hashes nor decodes `wav` again.
    pub fn rendered(
        &self,
        key: [u8; 32],
        wav: &[u8],
        codec: CodecName,
    ) -> Result<Prompt, PromptError> {
        let limits = self.limits;
        self.get_or_make(PromptSource::Rendered(key), codec, || {
            encode(&decode_wav(wav, limits)?, codec)
        })
    }

    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or_make(
        &self,
        source: PromptSource,
        codec: CodecName,
        make: impl FnOnce() -> Result<Prompt, PromptError>,
    ) -> Result<Prompt, PromptError> {
        let key = (source, codec);
        let slot = {
            let mut inner = self.lock();
            match inner.slots.get(&key) {
                Some(slot) => slot.clone(),
                None => {
                    while inner.slots.len() >= self.capacity {
                        let Some(old) = inner.order.pop_front() else {
                            break;
                        };
                        inner.slots.remove(&old);
                    }
                    let slot = Slot::default();
                    inner.slots.insert(key.clone(), slot.clone());
                    inner.order.push_back(key.clone());
                    slot
                }
            }
        };
        // One caller encodes; concurrent callers for the same key wait for it.
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(Ok(prompt)) => return Ok(prompt.clone()),
            Some(Err(reason)) => return Err(PromptError::FailedBefore(reason.clone())),
            None => {}
        }
        match make() {
            Ok(prompt) => {
                *guard = Some(Ok(prompt.clone()));
                Ok(prompt)
            }
            // A file that cannot be loaded stays failed: calls do not read it again.
            Err(e) if matches!(key.0, PromptSource::Path(_)) => {
                *guard = Some(Err(e.to_string()));
                Err(e)
            }
            Err(e) => {
                drop(guard);
                let mut inner = self.lock();
                if inner.slots.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    inner.slots.remove(&key);
                    inner.order.retain(|k| k != &key);
                }
                Err(e)
            }
        }
    }
}
