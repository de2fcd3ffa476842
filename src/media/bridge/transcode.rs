//! Streaming transcoding for one bridge direction: decode, resample, re-frame, encode.
//!
//! Decoded audio goes through a rubato FFT resampler (fixed in and out chunks, so it runs
//! on a stream of 20 ms packets) when the rates differ, then into a FIFO cut into the far
//! leg's packets: `8 · ptime` samples for G.711, 20 ms for Opus (one Opus frame a packet).
//! The FIFO holds at most [`MAX_BUFFERED_MS`] of audio; past that the oldest is dropped,
//! so a burst cannot grow memory or latency without bound.

use std::collections::VecDeque;

use rubato::{FftFixedInOut, Resampler};

use super::BridgeError;
use crate::config::CodecName;
use crate::media::codec::{CodecInfo, Decoder, Encoder, linear_to_alaw, linear_to_ulaw};

/// Most audio held between decoding and encoding, per direction.
pub(super) const MAX_BUFFERED_MS: usize = 500;

/// A gap in the source larger than this (seconds) is a jump, not silence to keep.
const MAX_GAP_S: u32 = 10;

/// What a source packet means for our timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SourceStep {
    /// The packet follows the previous one.
    Continues,
    /// The source went quiet for this many of its clock units (or started anew, 0).
    Restart { gap: u32 },
}

pub(super) struct Transcoder {
    decoder: Decoder,
    encoder: Encoder,
    to: CodecName,
    resampler: Option<FftFixedInOut<f32>>,
    /// Source-rate samples waiting for a full resampler chunk.
    pending: Vec<f32>,
    /// Destination-rate samples waiting to be encoded.
    fifo: VecDeque<i16>,
    /// Destination samples per packet.
    frame: usize,
    max_pending: usize,
    max_fifo: usize,
    decoded: Vec<i16>,
    /// The source's SSRC and the timestamp just after its last decoded packet.
    expected: Option<(u32, u32)>,
    /// The next packet restarts the stream (after the source was replaced by tones).
    restart: bool,
}

impl Transcoder {
    /// From `from` to `to`, with the far leg's packet time (used for G.711).
    pub(super) fn new(from: CodecName, to: CodecName, ptime_ms: u32) -> Result<Self, BridgeError> {
        let (in_rate, out_rate) = (from.pcm_rate() as usize, to.pcm_rate() as usize);
        let resampler = if in_rate == out_rate {
            None
        } else {
            let chunk = in_rate / 50;
            Some(
                FftFixedInOut::<f32>::new(in_rate, out_rate, chunk, 1)
                    .map_err(|e| BridgeError::Resample(e.to_string()))?,
            )
        };
        let frame = match to {
            CodecName::Opus => to.samples_per_frame(),
            CodecName::Pcmu | CodecName::Pcma => out_rate * ptime_ms.clamp(10, 60) as usize / 1000,
        };
        Ok(Transcoder {
            decoder: Decoder::new(from)?,
            encoder: Encoder::new(to)?,
            to,
            resampler,
            pending: Vec::new(),
            fifo: VecDeque::new(),
            frame,
            max_pending: in_rate * MAX_BUFFERED_MS / 1000,
            max_fifo: (out_rate * MAX_BUFFERED_MS / 1000).max(frame),
            decoded: Vec::new(),
            expected: None,
            restart: false,
        })
    }

    /// Where a source packet with this SSRC and timestamp stands against the last one.
    pub(super) fn note_source(&mut self, ssrc: u32, ts: u32, clock: u32) -> SourceStep {
        if std::mem::take(&mut self.restart) {
            return SourceStep::Restart { gap: 0 };
        }
        match self.expected {
            Some((s, _)) if s != ssrc => SourceStep::Restart { gap: 0 },
            Some((_, expected)) => {
                let gap = ts.wrapping_sub(expected);
                if gap == 0 || (gap as i32) < 0 {
                    // In step, or late (reordered): nothing to bridge.
                    SourceStep::Continues
                } else if gap <= clock.saturating_mul(MAX_GAP_S) {
                    SourceStep::Restart { gap }
                } else {
                    // A jump, not silence: carry on right after our last packet.
                    SourceStep::Restart { gap: 0 }
                }
            }
            None => SourceStep::Continues,
        }
    }

    /// Forgets the source position: the next packet restarts the stream without a gap
    /// (used while the source's audio is replaced by tones, which took that time).
    pub(super) fn forget_source(&mut self) {
        self.expected = None;
        self.restart = true;
    }

    /// Decodes one source payload (with its SSRC and timestamp) into the buffers.
    pub(super) fn push(&mut self, ssrc: u32, ts: u32, payload: &[u8]) -> Result<(), BridgeError> {
        self.decoded.clear();
        let n = self.decoder.decode_into(payload, &mut self.decoded)?;
        self.expected = Some((ssrc, ts.wrapping_add(n as u32)));
        match &mut self.resampler {
            None => self.fifo.extend(self.decoded.iter().copied()),
            Some(resampler) => {
                self.pending.extend(self.decoded.iter().map(|&s| f32::from(s) / 32768.0));
                if self.pending.len() > self.max_pending {
                    let excess = self.pending.len() - self.max_pending;
                    self.pending.drain(..excess);
                }
                loop {
                    let need = resampler.input_frames_next();
                    if need == 0 || self.pending.len() < need {
                        break;
                    }
                    let out = resampler
                        .process(&[&self.pending[..need]], None)
                        .map_err(|e| BridgeError::Resample(e.to_string()))?;
                    self.pending.drain(..need);
                    if let Some(channel) = out.first() {
                        self.fifo.extend(
                            channel.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16),
                        );
                    }
                }
            }
        }
        if self.fifo.len() > self.max_fifo {
            let excess = self.fifo.len() - self.max_fifo;
            self.fifo.drain(..excess);
        }
        Ok(())
    }

    /// The next encoded packet payload and its duration in destination clock units, once
    /// a whole packet of audio is buffered.
    pub(super) fn pop_frame(&mut self) -> Option<Result<(Vec<u8>, u32), BridgeError>> {
        if self.fifo.len() < self.frame {
            return None;
        }
        let pcm: Vec<i16> = self.fifo.drain(..self.frame).collect();
        let payload = match self.to {
            CodecName::Pcmu => pcm.iter().map(|&s| linear_to_ulaw(s)).collect(),
            CodecName::Pcma => pcm.iter().map(|&s| linear_to_alaw(s)).collect(),
            CodecName::Opus => {
                let mut out = Vec::new();
                if let Err(err) = self.encoder.encode_into(&pcm, &mut out) {
                    return Some(Err(err.into()));
                }
                out
            }
        };
        Some(Ok((payload, self.frame as u32)))
    }
}
