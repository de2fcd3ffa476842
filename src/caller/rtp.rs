//! The test caller's RTP (sans-IO): the stream it sends (silence, and digits as RFC 4733
//! events or in-band tones, from the project's DTMF code) and what it makes of the
//! stream it receives (decoded audio, packet count, pacing).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::CodecName;
use crate::media::codec::{CodecInfo, Decoder, Encoder};
use crate::media::dtmf::{encode_digit, inband};
use crate::sdp::Negotiated;

/// How long a key is held.
pub const DIGIT_MS: u32 = 160;
/// One packet every 20 ms.
pub const PTIME: Duration = Duration::from_millis(20);
/// Level of in-band tones (dBm0) and their twist (dB).
const TONE_LEVEL_DBM0: f32 = -7.0;
const TONE_TWIST_DB: f32 = 2.0;
/// The most audio kept for the recording: 30 minutes at 8 kHz.
const MAX_RECORDED_SAMPLES: usize = 30 * 60 * 8000;
/// Pacing samples kept: one per packet, for an hour.
const MAX_PACING_SAMPLES: usize = 180_000;

/// How a digit goes out in the RTP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpDigit {
    /// RFC 4733 telephone-event packets (needs the payload type negotiated).
    Event,
    /// Tones mixed into the audio.
    Tone,
}

/// Why a digit could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigitError {
    #[error("{0:?} is not a DTMF key")]
    NotADigit(char),
    #[error("the far end did not negotiate telephone-event")]
    NoTelephoneEvent,
}

/// The next packets' content beyond silence.
enum Queued {
    /// One 20 ms frame of linear audio at 8 kHz.
    Audio(Vec<i16>),
    /// A telephone-event payload, sent with the event's start timestamp.
    Event { payload: [u8; 4], marker: bool, timestamp: u32 },
}

/// The outgoing stream: one packet per 20 ms tick.
pub struct RtpSender {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    codec: CodecName,
    payload_type: u8,
    telephone_event: Option<u8>,
    encoder: Encoder,
    queued: VecDeque<Queued>,
    marker: bool,
}

impl RtpSender {
    /// A stream for `media` (G.711 only), starting at the given random values.
    pub fn new(media: &Negotiated, ssrc: u32, seq: u16, timestamp: u32) -> Option<RtpSender> {
        let codec = media.codec.name;
        if !matches!(codec, CodecName::Pcmu | CodecName::Pcma) {
            return None;
        }
        Some(RtpSender {
            ssrc,
            seq,
            timestamp,
            codec,
            payload_type: media.codec.payload_type,
            telephone_event: media.telephone_event,
            encoder: Encoder::new(codec).ok()?,
            queued: VecDeque::new(),
            marker: true,
        })
    }

    /// Takes the payload types of new media (a REFER's target answered); the stream
    /// (SSRC, sequence, timestamps) goes on, marked as a new talk spurt.
    pub fn update(&mut self, media: &Negotiated) {
        if matches!(media.codec.name, CodecName::Pcmu | CodecName::Pcma) {
            if media.codec.name != self.codec {
                if let Ok(encoder) = Encoder::new(media.codec.name) {
                    self.encoder = encoder;
                }
                self.codec = media.codec.name;
            }
            self.payload_type = media.codec.payload_type;
        }
        self.telephone_event = media.telephone_event;
        self.marker = true;
    }

    /// Queues `digit` after anything queued before.
    pub fn press(&mut self, digit: char, how: RtpDigit) -> Result<(), DigitError> {
        match how {
            RtpDigit::Event => {
                if self.telephone_event.is_none() {
                    return Err(DigitError::NoTelephoneEvent);
                }
                let packets = encode_digit(digit, DIGIT_MS, 8000, PTIME)
                    .ok_or(DigitError::NotADigit(digit))?;
                // The event starts where the queue ends.
                let start = self
                    .timestamp
                    .wrapping_add(self.codec.timestamp_increment() * self.queued.len() as u32);
                for p in packets {
                    self.queued.push_back(Queued::Event {
                        payload: p.payload,
                        marker: p.marker,
                        timestamp: start,
                    });
                }
            }
            RtpDigit::Tone => {
                let frame = self.codec.samples_per_frame();
                let samples = (DIGIT_MS as usize * 8000 / 1000).div_ceil(frame) * frame;
                let tone = inband::synthesize(digit, TONE_LEVEL_DBM0, TONE_TWIST_DB, samples)
                    .ok_or(DigitError::NotADigit(digit))?;
                for chunk in tone.chunks(frame) {
                    self.queued.push_back(Queued::Audio(chunk.to_vec()));
                }
            }
        }
        // A pause after the key, so that the next one counts as a new press.
        for _ in 0..4 {
            self.queued.push_back(Queued::Audio(vec![0; self.codec.samples_per_frame()]));
        }
        Ok(())
    }

    /// Whether digits are still going out.
    pub fn busy(&self) -> bool {
        !self.queued.is_empty()
    }

    /// The packet of the next 20 ms tick.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let frame = self.codec.samples_per_frame();
        let (pt, marker, timestamp, payload) = match self.queued.pop_front() {
            Some(Queued::Event { payload, marker, timestamp }) => {
                let pt = self.telephone_event.unwrap_or(self.payload_type);
                (pt, marker, timestamp, payload.to_vec())
            }
            Some(Queued::Audio(pcm)) => {
                (self.payload_type, false, self.timestamp, self.encode(&pcm))
            }
            None => (self.payload_type, false, self.timestamp, self.encode(&vec![0; frame])),
        };
        let marker = marker || std::mem::take(&mut self.marker);
        let packet = rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(self.ssrc)
            .sequence(rtp_rs::Seq::from(self.seq))
            .timestamp(timestamp)
            .marked(marker)
            .payload(&payload)
            .build()
            .unwrap_or_default();
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.codec.timestamp_increment());
        packet
    }

    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(pcm.len());
        match self.encoder.encode_into(pcm, &mut out) {
            Ok(_) => out,
            Err(_) => vec![0; pcm.len()],
        }
    }
}

/// Pacing of the received stream: for each packet, how far its arrival strayed from
/// where its RTP timestamp puts it after the packet before (the transit-time difference
/// of RFC 3550 §6.4.1), per SSRC. Pauses in the stream (a timestamp jump) are not
/// counted as late packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Pacing {
    pub mean_deviation_ms: f64,
    pub p99_deviation_ms: f64,
    pub max_deviation_ms: f64,
}

/// What the caller heard.
pub struct Receiver {
    first_at: Option<Instant>,
    /// SSRC, arrival and RTP timestamp of the last packet.
    last: Option<(u32, Instant, u32)>,
    clock_rate: u32,
    packets: u64,
    deviations_us: Vec<u32>,
    decoder: Option<(u8, Decoder)>,
    audio: Vec<i16>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver::new()
    }
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver {
            first_at: None,
            last: None,
            clock_rate: 8000,
            packets: 0,
            deviations_us: Vec::new(),
            decoder: None,
            audio: Vec::new(),
        }
    }

    /// Decodes audio of `media`'s codec from now on.
    pub fn expect(&mut self, media: &Negotiated) {
        self.decoder = Decoder::new(media.codec.name).ok().map(|d| (media.codec.payload_type, d));
        self.clock_rate = media.codec.clock_rate.max(1);
    }

    /// One datagram arrived at `now`. Returns false when it is not RTP.
    pub fn packet(&mut self, now: Instant, bytes: &[u8]) -> bool {
        let Ok(rtp) = rtp_rs::RtpReader::new(bytes) else { return false };
        self.packets += 1;
        self.first_at.get_or_insert(now);
        let (ssrc, timestamp) = (rtp.ssrc(), rtp.timestamp());
        if let Some((last_ssrc, at, last_ts)) = self.last
            && last_ssrc == ssrc
            && self.deviations_us.len() < MAX_PACING_SAMPLES
        {
            let arrival_us = now.saturating_duration_since(at).as_micros() as i64;
            let step = i64::from(timestamp.wrapping_sub(last_ts) as i32);
            let media_us = step * 1_000_000 / i64::from(self.clock_rate);
            let deviation = (arrival_us - media_us).unsigned_abs();
            self.deviations_us.push(u32::try_from(deviation).unwrap_or(u32::MAX));
        }
        self.last = Some((ssrc, now, timestamp));
        if let Some((pt, decoder)) = self.decoder.as_mut()
            && rtp.payload_type() == *pt
            && self.audio.len() < MAX_RECORDED_SAMPLES
        {
            let _ = decoder.decode_into(rtp.payload(), &mut self.audio);
        }
        true
    }

    pub fn first_packet_at(&self) -> Option<Instant> {
        self.first_at
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn pacing(&self) -> Pacing {
        let mut sorted = self.deviations_us.clone();
        if sorted.is_empty() {
            return Pacing::default();
        }
        sorted.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let sum: u64 = sorted.iter().map(|&d| u64::from(d)).sum();
        let p99 = sorted[((sorted.len() * 99).div_ceil(100)).saturating_sub(1)];
        Pacing {
            mean_deviation_ms: sum as f64 / sorted.len() as f64 / 1000.0,
            p99_deviation_ms: ms(p99),
            max_deviation_ms: ms(sorted[sorted.len() - 1]),
        }
    }

    /// The decoded audio (8 kHz mono).
    pub fn take_audio(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::{InbandDetector, Rfc4733Receiver};
    use crate::sdp::{Codec, Direction};

    fn media(te: Option<u8>) -> Negotiated {
        Negotiated {
            codec: Codec { name: CodecName::Pcmu, payload_type: 0, clock_rate: 8000, channels: 1 },
            telephone_event: te,
            remote_rtp: None,
            direction: Direction::SendRecv,
            ptime_ms: 20,
            srtp: None,
        }
    }

    #[test]
    fn a_digit_as_rfc4733_events_is_read_back_by_the_receiver() {
        let mut tx = RtpSender::new(&media(Some(101)), 7, 1, 1000).unwrap();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        let silence = tx.next_packet();
        assert_eq!(rtp_rs::RtpReader::new(&silence).unwrap().payload_type(), 0);
        tx.press('5', RtpDigit::Event).unwrap();
        let now = Instant::now();
        let mut digits = Vec::new();
        while tx.busy() {
            let packet = tx.next_packet();
            digits.extend(rx.handle_rtp(now, &packet).map(|d| d.digit));
        }
        assert_eq!(digits, vec!['5']);
        assert_eq!(tx.press('x', RtpDigit::Event), Err(DigitError::NotADigit('x')));
        let mut plain = RtpSender::new(&media(None), 7, 1, 1000).unwrap();
        assert_eq!(plain.press('1', RtpDigit::Event), Err(DigitError::NoTelephoneEvent));
    }

    #[test]
    fn a_digit_as_tones_is_detected_in_the_decoded_audio() {
        let mut tx = RtpSender::new(&media(None), 7, 1, 1000).unwrap();
        let mut rx = Receiver::new();
        rx.expect(&media(None));
        tx.press('#', RtpDigit::Tone).unwrap();
        let mut now = Instant::now();
        for _ in 0..20 {
            assert!(rx.packet(now, &tx.next_packet()));
            now += PTIME;
        }
        let mut detector = InbandDetector::new();
        let mut found = Vec::new();
        detector.process(&rx.take_audio(), &mut found);
        assert_eq!(found.iter().map(|d| d.digit).collect::<String>(), "#");
    }

    #[test]
    fn pacing_measures_the_arrival_deviation() {
        let mut tx = RtpSender::new(&media(None), 9, 1, 0).unwrap();
        let mut rx = Receiver::new();
        let start = Instant::now();
        let gaps_ms = [20u64, 20, 25, 15, 20, 30];
        let mut at = start;
        assert!(rx.packet(at, &tx.next_packet()));
        for gap in gaps_ms {
            at += Duration::from_millis(gap);
            rx.packet(at, &tx.next_packet());
        }
        // A pause of a second, with the timestamps saying so: not a late packet.
        for _ in 0..50 {
            tx.next_packet();
        }
        at += Duration::from_millis(1020);
        rx.packet(at, &tx.next_packet());
        assert!(!rx.packet(at, b"no"));
        assert_eq!(rx.packets(), 8);
        assert_eq!(rx.first_packet_at(), Some(start));
        let pacing = rx.pacing();
        assert_eq!(pacing.max_deviation_ms, 10.0);
        assert_eq!(pacing.p99_deviation_ms, 10.0);
        assert!((pacing.mean_deviation_ms - 20.0 / 7.0).abs() < 1e-9, "{pacing:?}");
    }
}
