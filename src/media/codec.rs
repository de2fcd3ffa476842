//! Audio codecs: G.711 µ-law (PCMU) and A-law (PCMA), and Opus through audiopus.
//!
//! Every codec here works on 20 ms frames of mono 16-bit PCM. G.711 runs at 8 kHz (160
//! samples a frame, RTP clock 8 kHz); Opus is fed 48 kHz PCM (960 samples a frame, RTP clock
//! 48 kHz as RFC 7587 requires). A [`Frame`] is the encoded payload of one RTP packet plus the
//! RTP timestamp increment it stands for.
//!
//! The G.711 conversions follow the ITU-T G.711 reference algorithms (as in the classic Sun
//! `g711.c`): decoding uses a 256-entry table built at compile time, encoding is a few shifts.

use bytes::Bytes;

use crate::config::CodecName;

/// Length of one packet's audio.
pub const FRAME_MS: u32 = 20;

/// Largest Opus packet we produce (RFC 6716 caps a frame at 1275 bytes).
const OPUS_MAX_PACKET: usize = 1275;

/// Opus encoder complexity: good quality at a fraction of the CPU of the default (10).
pub const OPUS_COMPLEXITY: u8 = 5;

/// Why audio could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{codec:?} frame needs {expected} PCM samples, got {got}")]
    FrameLength { codec: CodecName, expected: usize, got: usize },
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
}

/// One 20 ms packet's encoded payload and the RTP timestamp increment it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Encoded payload bytes (the RTP payload, no header).
    pub payload: Bytes,
    /// RTP timestamp increment of this frame (160 for G.711, 960 for Opus).
    pub samples: u32,
}

/// Fixed per-codec facts used by RTP, SDP and the prompt encoder.
pub trait CodecInfo {
    /// RTP clock rate in Hz (8000 for G.711, 48000 for Opus).
    fn clock_rate(self) -> u32;
    /// Sample rate of the PCM the encoder takes and the decoder returns.
    fn pcm_rate(self) -> u32;
    /// PCM samples in one 20 ms frame at [`CodecInfo::pcm_rate`].
    fn samples_per_frame(self) -> usize;
    /// RTP timestamp increment per 20 ms frame.
    fn timestamp_increment(self) -> u32;
    /// The static RTP payload type, if the codec has one (0 PCMU, 8 PCMA).
    fn static_payload_type(self) -> Option<u8>;
}

impl CodecInfo for CodecName {
    fn clock_rate(self) -> u32 {
        match self {
            CodecName::Pcmu | CodecName::Pcma => 8000,
            CodecName::Opus => 48000,
        }
    }
    fn pcm_rate(self) -> u32 {
        self.clock_rate()
    }
    fn samples_per_frame(self) -> usize {
        (self.pcm_rate() * FRAME_MS / 1000) as usize
    }
    fn timestamp_increment(self) -> u32 {
        self.clock_rate() * FRAME_MS / 1000
    }
    fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecName::Pcmu => Some(0),
            CodecName::Pcma => Some(8),
            CodecName::Opus => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// G.711
// ---------------------------------------------------------------------------------------

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear 16-bit sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7, 0..=7.
    let seg = (31 - (pcm as u32 | 0x80).leading_zeros() as i32 - 7).clamp(0, 7);
    let uval = ((seg << 4) | ((pcm >> (seg + 3)) & 0x0F)) as u8;
    uval ^ mask
}

const fn ulaw_to_linear_const(code: u8) -> i16 {
    let u = !code;
    let mut t: i32 = (((u & 0x0F) as i32) << 3) + ULAW_BIAS;
    t <<= ((u & 0x70) >> 4) as i32;
    if u & 0x80 != 0 { (ULAW_BIAS - t) as i16 } else { (t - ULAW_BIAS) as i16 }
}

/// Encodes one linear 16-bit sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment ends (13-bit): 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF.
    let seg = (32 - (pcm as u32 >> 5).leading_zeros() as i32).max(0);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mant = if seg < 2 { (pcm >> 1) & 0x0F } else { (pcm >> seg) & 0x0F };
    (((seg << 4) | mant) as u8) ^ mask
}

const fn alaw_to_linear_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t: i32 = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw { alaw_to_linear_const(i as u8) } else { ulaw_to_linear_const(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TO_LINEAR: [i16; 256] = build_table(false);
static ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// Decodes one µ-law byte to linear 16-bit.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one A-law byte to linear 16-bit.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

// ---------------------------------------------------------------------------------------
// Encoder / decoder per codec
// ---------------------------------------------------------------------------------------

/// Encodes 20 ms PCM frames for one codec. Opus keeps state between frames, so use one
/// encoder per continuous stream of audio.
pub enum Encoder {
    Pcmu,
    Pcma,
    Opus(Box<audiopus::coder::Encoder>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Encoder").field(&self.codec()).finish()
    }
}

impl Encoder {
    /// A new encoder. Opus is mono, VoIP mode, complexity [`OPUS_COMPLEXITY`].
    pub fn new(codec: CodecName) -> Result<Self, CodecError> {
        Ok(match codec {
            CodecName::Pcmu => Encoder::Pcmu,
            CodecName::Pcma => Encoder::Pcma,
            CodecName::Opus => {
                let mut enc = audiopus::coder::Encoder::new(
                    audiopus::SampleRate::Hz48000,
                    audiopus::Channels::Mono,
                    audiopus::Application::Voip,
                )?;
                enc.set_complexity(OPUS_COMPLEXITY)?;
                Encoder::Opus(Box::new(enc))
            }
        })
    }

    pub fn codec(&self) -> CodecName {
        match self {
            Encoder::Pcmu => CodecName::Pcmu,
            Encoder::Pcma => CodecName::Pcma,
            Encoder::Opus(_) => CodecName::Opus,
        }
    }

    /// Encodes exactly one frame (`samples_per_frame()` samples at `pcm_rate()`), appending
    /// the payload to `out`. Returns the payload length.
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let codec = self.codec();
        let expected = codec.samples_per_frame();
        if pcm.len() != expected {
            return Err(CodecError::FrameLength { codec, expected, got: pcm.len() });
        }
        let start = out.len();
        match self {
            Encoder::Pcmu => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            Encoder::Pcma => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
            Encoder::Opus(enc) => {
                out.resize(start + OPUS_MAX_PACKET, 0);
                let written = enc.encode(pcm, &mut out[start..])?;
                out.truncate(start + written);
            }
        }
        Ok(out.len() - start)
    }

    /// Encodes exactly one frame into a new [`Frame`].
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Frame, CodecError> {
        let mut buf = Vec::with_capacity(self.codec().samples_per_frame());
        self.encode_into(pcm, &mut buf)?;
        Ok(Frame { payload: Bytes::from(buf), samples: self.codec().timestamp_increment() })
    }
}

/// Decodes received payloads to PCM at the codec's `pcm_rate()`.
pub enum Decoder {
    Pcmu,
    Pcma,
    Opus(Box<audiopus::coder::Decoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Decoder").field(&self.codec()).finish()
    }
}

/// Most PCM samples one Opus packet may decode to (120 ms at 48 kHz).
const OPUS_MAX_DECODED: usize = 5760;

/// Most G.711 bytes decoded from one packet; larger payloads are cut (no legitimate packet
/// carries more than a fraction of a second).
const G711_MAX_PAYLOAD: usize = 8000;

impl Decoder {
    pub fn new(codec: CodecName) -> Result<Self, CodecError> {
        Ok(match codec {
            CodecName::Pcmu => Decoder::Pcmu,
            CodecName::Pcma => Decoder::Pcma,
            CodecName::Opus => Decoder::Opus(Box::new(audiopus::coder::Decoder::new(
                audiopus::SampleRate::Hz48000,
                audiopus::Channels::Mono,
            )?)),
        })
    }

    pub fn codec(&self) -> CodecName {
        match self {
            Decoder::Pcmu => CodecName::Pcmu,
            Decoder::Pcma => CodecName::Pcma,
            Decoder::Opus(_) => CodecName::Opus,
        }
    }

    /// Decodes one payload, appending PCM to `out`. Returns the number of samples appended.
    /// Any bytes are accepted: garbage yields an error (Opus) or noise (G.711), never a panic.
    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        match self {
            Decoder::Pcmu => {
                let p = &payload[..payload.len().min(G711_MAX_PAYLOAD)];
                out.extend(p.iter().map(|&b| ulaw_to_linear(b)));
                Ok(p.len())
            }
            Decoder::Pcma => {
                let p = &payload[..payload.len().min(G711_MAX_PAYLOAD)];
                out.extend(p.iter().map(|&b| alaw_to_linear(b)));
                Ok(p.len())
            }
            Decoder::Opus(dec) => {
                let start = out.len();
                out.resize(start + OPUS_MAX_DECODED, 0);
                let result = (|| {
                    let packet = audiopus::packet::Packet::try_from(payload)?;
                    let signals = audiopus::MutSignals::try_from(&mut out[start..])?;
                    dec.decode(Some(packet), signals, false)
                })();
                match result {
                    Ok(n) => {
                        out.truncate(start + n);
                        Ok(n)
                    }
                    Err(e) => {
                        out.truncate(start);
                        Err(e.into())
                    }
                }
            }
        }
    }
}

/// Normalised cross-correlation at zero lag of two PCM signals (tests compare audio).
#[cfg(test)]
pub(crate) fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        // Segment boundaries from the G.711 tables.
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(ulaw_to_linear(0xDF), 396);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    /// Every code decodes to a value that encodes back to the same code (except µ-law's
    /// negative zero, which becomes positive zero).
    #[test]
    fn g711_tables_are_consistent() {
        for code in 0..=255u8 {
            let u = ulaw_to_linear(code);
            if code != 0x7F {
                assert_eq!(linear_to_ulaw(u), code, "ulaw code {code:#x} -> {u}");
            }
            let a = alaw_to_linear(code);
            assert_eq!(linear_to_alaw(a), code, "alaw code {code:#x} -> {a}");
        }
    }

    /// Quantisation error stays within half a step of the segment (≈ 3 % of magnitude,
    /// plus a small floor near zero).
    #[test]
    fn g711_round_trip_error_bound() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let mag = f64::from(s).abs();
            let bound = mag / 16.0 + 16.0;
            let u = f64::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = f64::from(alaw_to_linear(linear_to_alaw(s)));
            let bound_u = bound.max(if mag > 32124.0 { mag - 32124.0 + 1.0 } else { 0.0 });
            let bound_a = bound.max(if mag > 32256.0 { mag - 32256.0 + 1.0 } else { 0.0 });
            assert!((u - f64::from(s)).abs() <= bound_u, "ulaw {s} -> {u}");
            assert!((a - f64::from(s)).abs() <= bound_a, "alaw {s} -> {a}");
        }
    }

    #[test]
    fn encoders_check_frame_length() {
        let mut enc = Encoder::new(CodecName::Pcmu).unwrap();
        assert!(matches!(
            enc.encode(&[0; 100]),
            Err(CodecError::FrameLength { expected: 160, got: 100, .. })
        ));
        let f = enc.encode(&[0; 160]).unwrap();
        assert_eq!(f.payload.len(), 160);
        assert_eq!(f.samples, 160);
    }

    fn sine(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn g711_codec_round_trip() {
        for codec in [CodecName::Pcmu, CodecName::Pcma] {
            let pcm = sine(8000, 440.0, 8000.0, 1600);
            let mut enc = Encoder::new(codec).unwrap();
            let mut dec = Decoder::new(codec).unwrap();
            let mut out = Vec::new();
            for chunk in pcm.chunks(160) {
                let f = enc.encode(chunk).unwrap();
                assert_eq!(dec.decode_into(&f.payload, &mut out).unwrap(), 160);
            }
            assert!(correlation(&pcm, &out) > 0.999, "{codec:?}");
        }
    }

    #[test]
    fn opus_round_trip_and_frame_sizes() {
        let pcm = sine(48000, 440.0, 8000.0, 48000);
        let mut enc = Encoder::new(CodecName::Opus).unwrap();
        let mut dec = Decoder::new(CodecName::Opus).unwrap();
        let mut out = Vec::new();
        for chunk in pcm.chunks(960) {
            let f = enc.encode(chunk).unwrap();
            assert_eq!(f.samples, 960);
            assert!(!f.payload.is_empty() && f.payload.len() <= OPUS_MAX_PACKET);
            assert_eq!(dec.decode_into(&f.payload, &mut out).unwrap(), 960);
        }
        assert_eq!(out.len(), pcm.len());
        // Opus delays the signal; find the best lag in the first 10 ms.
        let best = (0..480)
            .map(|lag| correlation(&pcm[..pcm.len() - lag], &out[lag..]))
            .fold(f64::MIN, f64::max);
        assert!(best > 0.95, "opus correlation {best}");
    }

    #[test]
    fn opus_decoder_rejects_garbage_without_panic() {
        let mut dec = Decoder::new(CodecName::Opus).unwrap();
        let mut out = Vec::new();
        // An empty packet and a packet claiming an invalid frame count.
        assert!(dec.decode_into(&[], &mut out).is_err());
        let _ = dec.decode_into(&[0xFF, 0xFF, 0xFF], &mut out);
        assert!(out.len() <= OPUS_MAX_DECODED);
    }

    #[test]
    fn opus_encoder_settings() {
        let Encoder::Opus(enc) = Encoder::new(CodecName::Opus).unwrap() else {
            panic!("not an opus encoder");
        };
        assert!(enc.complexity().unwrap() <= 5);
    }

    #[test]
    fn codec_facts() {
        assert_eq!(CodecName::Pcmu.timestamp_increment(), 160);
        assert_eq!(CodecName::Pcma.samples_per_frame(), 160);
        assert_eq!(CodecName::Opus.timestamp_increment(), 960);
        assert_eq!(CodecName::Opus.samples_per_frame(), 960);
        assert_eq!(CodecName::Pcma.static_payload_type(), Some(8));
    }
}
