//! Prompt loading: WAV formats and rates, resampling lengths, limits, and the shared cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::codec::{CodecInfo, Decoder};
use zendesk_ivr::media::prompt::{
    Limits, PromptCache, PromptError, decode_wav, encode, read_wav_file, resample,
};

const TONE_HZ: f64 = 440.0;
const AMPLITUDE: f64 = 0.5;

fn tone(rate: u32, seconds: f64) -> Vec<f64> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * i as f64 / f64::from(rate)).sin()
        })
        .collect()
}

/// Writes a 440 Hz tone in the given format; stereo files carry it on both channels.
fn write_wav(path: &Path, rate: u32, channels: u16, bits: u16, float: bool, seconds: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for v in tone(rate, seconds) {
        for _ in 0..channels {
            if float {
                w.write_sample(v as f32).unwrap();
            } else {
                let scaled = (v * ((1i64 << (bits - 1)) - 1) as f64).round() as i32;
                match bits {
                    8 => w.write_sample(scaled as i8).unwrap(),
                    16 => w.write_sample(scaled as i16).unwrap(),
                    _ => w.write_sample(scaled).unwrap(),
                }
            }
        }
    }
    w.finalize().unwrap();
}

fn decode_all(codec: CodecName, frames: &[zendesk_ivr::media::codec::Frame]) -> Vec<i16> {
    let mut dec = Decoder::new(codec).unwrap();
    let mut out = Vec::new();
    for f in frames {
        dec.decode_into(&f.payload, &mut out).unwrap();
    }
    out
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

fn zero_crossings(samples: &[i16]) -> usize {
    samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

#[test]
fn formats_and_rates_load_and_encode_to_the_right_length() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (8000, 1, 16, false),
        (16000, 1, 16, false),
        (22050, 1, 8, false),
        (44100, 2, 24, false),
        (48000, 2, 32, true),
        (11025, 1, 32, false),
        (44101, 1, 16, false), // an odd rate: the sinc resampler
    ];
    for (rate, channels, bits, float) in cases {
        let name = format!("{rate}-{channels}ch-{bits}{}.wav", if float { "f" } else { "" });
        let path = dir.path().join(&name);
        write_wav(&path, rate, channels, bits, float, 1.0);
        let pcm = read_wav_file(&path, Limits::default()).unwrap();
        assert_eq!(pcm.rate, rate, "{name}");
        let expected_rms = AMPLITUDE / 2f64.sqrt();
        let got_rms = (pcm.samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / pcm.samples.len() as f64)
            .sqrt();
        assert!((got_rms - expected_rms).abs() < 0.02, "{name}: rms {got_rms}");
        for codec in [CodecName::Pcmu, CodecName::Pcma, CodecName::Opus] {
            let frames = encode(&pcm, codec).unwrap();
            assert!((49..=51).contains(&frames.len()), "{name} {codec:?}: {} frames", frames.len());
            assert!(frames.iter().all(|f| f.samples == codec.timestamp_increment()));
            let out = decode_all(codec, &frames);
            // Skip the edges (resampler and Opus ramps); the middle is the tone.
            let rate_out = codec.pcm_rate() as usize;
            let mid = &out[rate_out / 10..rate_out * 9 / 10];
            let want = expected_rms * 32767.0;
            assert!((rms(mid) - want).abs() < want * 0.1, "{name} {codec:?}: rms {}", rms(mid));
            let crossings = zero_crossings(mid) as f64 / 0.8; // per second
            assert!((crossings - 2.0 * TONE_HZ).abs() < 20.0, "{name} {codec:?}: {crossings}");
        }
    }
}

#[test]
fn resampling_keeps_duration() {
    let pcm = zendesk_ivr::media::prompt::Pcm {
        rate: 22050,
        samples: tone(22050, 2.5).into_iter().map(|v| v as f32).collect(),
    };
    for (rate, want) in [(8000, 20_000), (48000, 120_000), (16000, 40_000)] {
        let out = resample(&pcm, rate).unwrap();
        assert!(out.len().abs_diff(want) <= 1, "{rate}: {}", out.len());
    }
}

/// Streaming WAVs (espeak-ng --stdout) claim 0x7FFFF000 data bytes.
#[test]
fn streaming_wav_with_overstated_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.wav");
    write_wav(&path, 22050, 1, 16, false, 0.5);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4..8].copy_from_slice(&0x7FFF_F024u32.to_le_bytes());
    bytes[40..44].copy_from_slice(&0x7FFF_F000u32.to_le_bytes());
    let pcm = decode_wav(&bytes, Limits::default()).unwrap();
    assert_eq!(pcm.samples.len(), 11025);
}

#[test]
fn limits_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    write_wav(&path, 8000, 1, 16, false, 3.0);
    let short = Limits { max_bytes: 1 << 20, max_duration: Duration::from_secs(2) };
    assert!(matches!(read_wav_file(&path, short), Err(PromptError::TooLong { .. })));
    let tiny = Limits { max_bytes: 1000, max_duration: Duration::from_secs(60) };
    assert!(matches!(read_wav_file(&path, tiny), Err(PromptError::TooLarge { .. })));
    assert!(matches!(
        read_wav_file(&dir.path().join("missing.wav"), Limits::default()),
        Err(PromptError::File { .. })
    ));
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 4, 12, 30, 44] {
        let _ = decode_wav(&bytes[..cut], Limits::default()); // must not panic
    }
    assert!(decode_wav(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", Limits::default()).is_err());
    let mut zero_channels = bytes.clone();
    zero_channels[22] = 0;
    assert!(decode_wav(&zero_channels, Limits::default()).is_err());
}

#[test]
fn cache_shares_one_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.wav");
    write_wav(&path, 16000, 1, 16, false, 0.4);
    let cache = PromptCache::new(Limits::default(), 8);
    let a = cache.file(&path, CodecName::Pcmu).unwrap();
    let b = cache.file(&path, CodecName::Pcmu).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "a hit shares the same frames");
    let c = cache.file(&path, CodecName::Opus).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(cache.len(), 2);

    let wav = std::fs::read(&path).unwrap();
    let d = cache.wav_bytes(&wav, CodecName::Pcma).unwrap();
    let e = cache.wav_bytes(&wav.clone(), CodecName::Pcma).unwrap();
    assert!(Arc::ptr_eq(&d, &e), "same content, same frames");
    assert_eq!(cache.len(), 3);

    // A rendering known by its key is encoded once; a hit does not even decode the bytes.
    let f = cache.rendered([7; 32], &wav, CodecName::Pcma).unwrap();
    let g = cache.rendered([7; 32], b"never decoded on a hit", CodecName::Pcma).unwrap();
    assert!(Arc::ptr_eq(&f, &g), "same key, same frames");
    assert_eq!(cache.len(), 4);
    assert!(cache.rendered([8; 32], b"not a wav", CodecName::Pcma).is_err());
    assert_eq!(cache.len(), 4);

    // Errors are not cached; the bad entry does not linger.
    assert!(cache.wav_bytes(b"not a wav", CodecName::Pcmu).is_err());
    assert_eq!(cache.len(), 4);

    // Capacity bounds the cache; the oldest entry goes first.
    let small = PromptCache::new(Limits::default(), 2);
    let first = small.file(&path, CodecName::Pcmu).unwrap();
    small.file(&path, CodecName::Pcma).unwrap();
    small.file(&path, CodecName::Opus).unwrap();
    assert_eq!(small.len(), 2);
    let again = small.file(&path, CodecName::Pcmu).unwrap();
    assert!(!Arc::ptr_eq(&first, &again), "evicted and encoded afresh");
    assert_eq!(first, again, "to the same frames");
}

#[test]
fn a_file_that_failed_to_load_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.wav");
    let cache = PromptCache::new(Limits::default(), 8);
    let first = cache.file(&path, CodecName::Pcmu).unwrap_err();
    assert!(matches!(first, PromptError::File { .. }), "{first}");
    // The file appears later: calls still do not touch the disk for it.
    write_wav(&path, 8000, 1, 16, false, 0.2);
    let again = cache.file(&path, CodecName::Pcmu).unwrap_err();
    assert!(matches!(again, PromptError::FailedBefore(_)), "{again}");
    // Another codec is another entry, read afresh.
    assert!(cache.file(&path, CodecName::Pcma).is_ok());
}

#[test]
fn concurrent_requests_share_one_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tts.wav");
    write_wav(&path, 22050, 1, 16, false, 1.0);
    let wav = std::fs::read(&path).unwrap();
    let cache = PromptCache::new(Limits::default(), 8);
    let prompts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..8).map(|_| s.spawn(|| cache.wav_bytes(&wav, CodecName::Opus).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(prompts.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    assert_eq!(cache.len(), 1);
}

fn shared_or_crate(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn hold_music_ships_as_a_long_loop() {
    let path = shared_or_crate("audio/defaultmusic_on_hold.wav");
    let pcm = read_wav_file(&path, Limits::default()).unwrap();
    assert!(pcm.duration() >= Duration::from_secs(30), "{:?}", pcm.duration());
    assert!(std::fs::metadata(&path).unwrap().len() <= 1_100_000);
    let frames = encode(&pcm, CodecName::Pcmu).unwrap();
    let out = decode_all(CodecName::Pcmu, &frames);
    let level = rms(&out);
    assert!((1000.0..12000.0).contains(&level), "audible but calm: rms {level}");
    // Seamless loop: the end leads into the start without a jump.
    let jump = (f64::from(out[out.len() - 1]) - f64::from(out[0])).abs();
    assert!(jump < 2000.0, "loop seam jump {jump}");
}
