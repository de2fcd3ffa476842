//! RFC 4733 telephone-events across a bridge: forwarded with payload-type mapping when the
//! far leg negotiated telephone-event, turned into in-band tones on a G.711 far leg that
//! did not, or dropped.
//!
//! An event is keyed by the source's (SSRC, RTP timestamp): its updates and the repeated
//! end packets share both. Its start is pinned on our timeline when its first packet
//! arrives; every later packet of it keeps that timestamp (forwarded) or continues the
//! tone from there (in-band).

use std::time::Instant;

use tracing::debug;

use crate::config::CodecName;
use crate::media::codec::{linear_to_alaw, linear_to_ulaw};
use crate::media::dtmf::digit_of_event;
use crate::media::dtmf::inband::{self, synthesize};
use crate::media::dtmf::rfc4733::{DEFAULT_END_TIMEOUT, TelephoneEvent};
use crate::sdp::Negotiated;

/// Longest in-band tone made for one event (8 kHz samples, 4 s); a longer press is cut.
const MAX_TONE_SAMPLES: usize = 4 * inband::SAMPLE_RATE as usize;

/// The least and most attenuation of a synthesised tone (dB below 0 dBm0); the event's
/// volume field is kept within these.
const TONE_ATTENUATION_DB: (f32, f32) = (3.0, 30.0);

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The far leg takes telephone-events with payload type `pt`; durations are scaled
    /// from the source clock to the far clock.
    Forward { pt: u8, from_clock: u32, to_clock: u32 },
    /// The far leg is G.711 without telephone-event: synthesise the tones.
    Inband { pt: u8, codec: CodecName, frame: usize, from_clock: u32 },
    /// Nowhere to put the event.
    Drop,
}

struct Event {
    ssrc: u32,
    src_ts: u32,
    /// The event's start on our timeline.
    out_ts: u32,
    last_packet: Instant,
    ended: bool,
    /// In-band only: the whole tone, and how much of it was sent.
    tone: Option<Vec<i16>>,
    tone_sent: usize,
}

/// One in-band tone packet.
pub(super) struct ToneFrame {
    pub ts: u32,
    pub samples: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// What to send for one telephone-event packet.
pub(super) enum EventAction {
    /// The packet was discarded (malformed, or the far leg cannot carry events).
    Dropped,
    Forward {
        pt: u8,
        marker: bool,
        ts: u32,
        end_ts: u32,
        payload: [u8; 4],
    },
    Tones {
        pt: u8,
        frames: Vec<ToneFrame>,
    },
}

/// Telephone-event handling for one bridge direction.
pub(super) struct EventPath {
    mode: Mode,
    current: Option<Event>,
}

impl EventPath {
    pub(super) fn new(from: &Negotiated, to: &Negotiated) -> Self {
        let from_clock = from.codec.clock_rate.max(1);
        let mode = match (to.telephone_event, to.codec.name) {
            (Some(pt), _) => Mode::Forward { pt, from_clock, to_clock: to.codec.clock_rate },
            (None, codec @ (CodecName::Pcmu | CodecName::Pcma)) => Mode::Inband {
                pt: to.codec.payload_type,
                codec,
                frame: (inband::SAMPLE_RATE * to.ptime_ms.clamp(10, 60) / 1000) as usize,
                from_clock,
            },
            (None, CodecName::Opus) => Mode::Drop,
        };
        EventPath { mode, current: None }
    }

    /// Whether the source's audio is being replaced by tones right now.
    pub(super) fn suppresses_audio(&self, now: Instant) -> bool {
        matches!(self.mode, Mode::Inband { .. })
            && self.current.as_ref().is_some_and(|e| {
                !e.ended && now.saturating_duration_since(e.last_packet) < DEFAULT_END_TIMEOUT
            })
    }

    /// One telephone-event packet from the source; `start_ts` is where a new event would
    /// start on our timeline.
    pub(super) fn handle(
        &mut self,
        now: Instant,
        ssrc: u32,
        src_ts: u32,
        payload: &[u8],
        start_ts: u32,
    ) -> EventAction {
        let Some(te) = TelephoneEvent::parse(payload) else {
            debug!(len = payload.len(), "short telephone-event payload dropped");
            return EventAction::Dropped;
        };
        let is_new = self.current.as_ref().is_none_or(|e| e.ssrc != ssrc || e.src_ts != src_ts);
        if is_new {
            self.current = Some(Event {
                ssrc,
                src_ts,
                out_ts: start_ts,
                last_packet: now,
                ended: false,
                tone: None,
                tone_sent: 0,
            });
        }
        let Some(event) = self.current.as_mut() else {
            return EventAction::Dropped;
        };
        event.last_packet = now;
        event.ended |= te.end;
        match self.mode {
            Mode::Forward { pt, from_clock, to_clock } => {
                let duration = (u64::from(te.duration) * u64::from(to_clock)
                    / u64::from(from_clock))
                .min(u64::from(u16::MAX)) as u16;
                let payload = TelephoneEvent { duration, ..te }.to_bytes();
                EventAction::Forward {
                    pt,
                    marker: is_new,
                    ts: event.out_ts,
                    end_ts: event.out_ts.wrapping_add(u32::from(duration)),
                    payload,
                }
            }
            Mode::Inband { pt, codec, frame, from_clock } => {
                let Some(digit) = digit_of_event(te.event) else {
                    return EventAction::Dropped;
                };
                let level =
                    -f32::from(te.volume).clamp(TONE_ATTENUATION_DB.0, TONE_ATTENUATION_DB.1);
                if event.tone.is_none() {
                    event.tone = synthesize(digit, level, 0.0, MAX_TONE_SAMPLES);
                }
                let target = ((u64::from(te.duration) * u64::from(inband::SAMPLE_RATE)
                    / u64::from(from_clock)) as usize)
                    .min(MAX_TONE_SAMPLES);
                EventAction::Tones { pt, frames: tone_frames(event, codec, frame, target) }
            }
            Mode::Drop => {
                if is_new {
                    debug!(
                        event = te.event,
                        "telephone-event dropped: the far leg has no way to carry it"
                    );
                }
                EventAction::Dropped
            }
        }
    }
}

/// The tone packets that bring the sent tone up to `target` samples: whole packets while
/// the key is down, the rest (padded) once it ended.
fn tone_frames(event: &mut Event, codec: CodecName, frame: usize, target: usize) -> Vec<ToneFrame> {
    let mut frames = Vec::new();
    let Some(tone) = event.tone.as_deref() else {
        return frames;
    };
    while event.tone_sent < target
        && (event.tone_sent + frame <= target || event.ended)
        && event.tone_sent < MAX_TONE_SAMPLES
    {
        let start = event.tone_sent;
        let end = (start + frame).min(tone.len());
        let mut pcm = tone.get(start..end).unwrap_or(&[]).to_vec();
        // The last packet of a press is cut at its end and padded with silence.
        if event.ended && start + frame > target {
            pcm.truncate(target - start);
        }
        pcm.resize(frame, 0);
        let payload = match codec {
            CodecName::Pcma => pcm.iter().map(|&s| linear_to_alaw(s)).collect(),
            _ => pcm.iter().map(|&s| linear_to_ulaw(s)).collect(),
        };
        frames.push(ToneFrame {
            ts: event.out_ts.wrapping_add(start as u32),
            samples: frame as u32,
            marker: start == 0,
            payload,
        });
        event.tone_sent += frame;
    }
    frames
}
