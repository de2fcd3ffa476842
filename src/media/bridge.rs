//! Bridging (sans-IO): relays RTP from one call leg to another, e.g. the caller and an
//! agent, one [`BridgeDirection`] per direction.
//!
//! - Same codec on both legs: the payload is relayed untouched; only the payload type is
//!   mapped (the legs may have numbered it differently) and the header re-originated.
//! - No shared codec: decode, convert the rate (8 kHz ↔ 48 kHz by an exact factor of 6:
//!   linear interpolation up, a box filter down — adequate for speech, not hi-fi), and
//!   re-encode in 20 ms frames.
//! - DTMF: telephone-event packets are passed through with the payload type mapped and the
//!   timestamp scaled to the other leg's clock. When the other leg negotiated no
//!   telephone-event, they are dropped (counted) — in-band regeneration is not done.
//!
//! The output stream has our own SSRC. Sequence numbers and timestamps keep the input's
//! spacing (so the far end still sees loss and gaps), from a random origin; when the input
//! SSRC changes (the leg restarted its stream), the output continues where it was.

use crate::media::codec::{CodecError, CodecInfo, Decoder, Encoder};
use crate::sdp::Negotiated;

/// Most PCM buffered while re-framing for the encoder (1 s at 48 kHz); older audio is
/// dropped rather than letting a flood of input grow memory.
const MAX_PENDING_PCM: usize = 48_000;

/// What one direction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeMode {
    Relay,
    Transcode,
}

/// The outcome of one input packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Complete RTP packets to send to the other leg, in order.
    pub packets: Vec<Vec<u8>>,
    /// The input was telephone-event the other leg cannot take.
    pub dropped_dtmf: bool,
}

#[derive(Debug, Clone, Copy)]
struct Origin {
    in_ssrc: u32,
    in_seq: u16,
    in_ts: u32,
    out_seq: u16,
    out_ts: u32,
}

/// One direction of a bridge: packets from leg `from`, rewritten for leg `to`.
pub struct BridgeDirection {
    from: Negotiated,
    to: Negotiated,
    mode: BridgeMode,
    ssrc: u32,
    origin: Option<Origin>,
    /// The last output (sequence, timestamp), to continue across an input SSRC change.
    last_out: Option<(u16, u32)>,
    first_seq: u16,
    first_ts: u32,
    /// The next sequence number when transcoding.
    next_seq: u16,
    transcoder: Option<(Decoder, Encoder)>,
    pcm_in: Vec<i16>,
    pending: Vec<i16>,
    /// Output timestamp of the first sample in `pending`.
    pending_ts: u32,
}

impl BridgeDirection {
    /// A direction with our output `ssrc` and random origins `first_seq`/`first_ts`.
    pub fn new(
        from: &Negotiated,
        to: &Negotiated,
        ssrc: u32,
        first_seq: u16,
        first_ts: u32,
    ) -> Result<Self, CodecError> {
        let mode = if from.codec.name == to.codec.name {
            BridgeMode::Relay
        } else {
            BridgeMode::Transcode
        };
        let transcoder = match mode {
            BridgeMode::Relay => None,
            BridgeMode::Transcode => {
                Some((Decoder::new(from.codec.name)?, Encoder::new(to.codec.name)?))
            }
        };
        Ok(BridgeDirection {
            from: *from,
            to: *to,
            mode,
            ssrc,
            origin: None,
            last_out: None,
            first_seq,
            first_ts,
            next_seq: first_seq,
            transcoder,
            pcm_in: Vec::new(),
            pending: Vec::new(),
            pending_ts: first_ts,
        })
    }

    pub fn mode(&self) -> BridgeMode {
        self.mode
    }

    /// Maps an input (sequence, timestamp) to the output stream, re-anchoring on a new
    /// input SSRC.
    fn map(&mut self, ssrc: u32, seq: u16, ts: u32) -> (u16, u32) {
        let origin = match self.origin {
            Some(o) if o.in_ssrc == ssrc => o,
            _ => {
                let (out_seq, out_ts) = match self.last_out {
                    Some((s, t)) => (
                        s.wrapping_add(1),
                        t.wrapping_add(self.to.codec.name.timestamp_increment()),
                    ),
                    None => (self.first_seq, self.first_ts),
                };
                let o = Origin { in_ssrc: ssrc, in_seq: seq, in_ts: ts, out_seq, out_ts };
                self.origin = Some(o);
                self.pending.clear();
                self.pending_ts = out_ts;
                o
            }
        };
        let out_seq = origin.out_seq.wrapping_add(seq.wrapping_sub(origin.in_seq));
        let delta = i64::from(ts.wrapping_sub(origin.in_ts) as i32);
        let scaled = delta * i64::from(self.to.codec.clock_rate)
            / i64::from(self.from.codec.clock_rate.max(1));
        let out_ts = origin.out_ts.wrapping_add(scaled as i32 as u32);
        self.last_out = Some((out_seq, out_ts));
        (out_seq, out_ts)
    }

    /// Rewrites one packet from `from` for `to`. Malformed packets and payload types that
    /// were not negotiated yield nothing.
    pub fn packet(&mut self, packet: &[u8]) -> Relayed {
        let mut out = Relayed::default();
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { return out };
        let pt = rtp.payload_type();
        let (ssrc, seq, ts) = (rtp.ssrc(), u16::from(rtp.sequence_number()), rtp.timestamp());
        if Some(pt) == self.from.telephone_event {
            let Some(to_pt) = self.to.telephone_event else {
                out.dropped_dtmf = true;
                return out;
            };
            let (seq, ts) = self.map(ssrc, seq, ts);
            let seq = self.out_seq(seq);
            out.packets.extend(self.build(to_pt, seq, ts, rtp.mark(), rtp.payload()));
            return out;
        }
        if pt != self.from.codec.payload_type {
            return out;
        }
        match self.mode {
            BridgeMode::Relay => {
                let (seq, ts) = self.map(ssrc, seq, ts);
                out.packets.extend(self.build(
                    self.to.codec.payload_type,
                    seq,
                    ts,
                    rtp.mark(),
                    rtp.payload(),
                ));
            }
            BridgeMode::Transcode => {
                self.transcode(ssrc, seq, ts, rtp.mark(), rtp.payload(), &mut out)
            }
        }
        out
    }

    fn transcode(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
        out: &mut Relayed,
    ) {
        let fresh = self.origin.is_none_or(|o| o.in_ssrc != ssrc);
        let (_, out_ts) = self.map(ssrc, seq, ts);
        let Some((decoder, encoder)) = self.transcoder.as_mut() else { return };
        self.pcm_in.clear();
        if decoder.decode_into(payload, &mut self.pcm_in).is_err() {
            return;
        }
        if fresh || marker || self.pending.is_empty() {
            // Re-anchor the output clock on this packet (start, talk-spurt, or after a gap).
            self.pending.clear();
            self.pending_ts = out_ts;
        }
        convert_rate(
            &self.pcm_in,
            self.from.codec.name.pcm_rate(),
            self.to.codec.name.pcm_rate(),
            &mut self.pending,
        );
        if self.pending.len() > MAX_PENDING_PCM {
            let excess = self.pending.len() - MAX_PENDING_PCM;
            self.pending.drain(..excess);
        }
        let per_frame = self.to.codec.name.samples_per_frame();
        let step = self.to.codec.name.timestamp_increment();
        let mut first = marker;
        let mut frames = Vec::new();
        while self.pending.len() >= per_frame {
            let mut payload = Vec::with_capacity(per_frame);
            let chunk: Vec<i16> = self.pending.drain(..per_frame).collect();
            if encoder.encode_into(&chunk, &mut payload).is_ok() {
                frames.push((self.pending_ts, payload, first));
            }
            first = false;
            self.pending_ts = self.pending_ts.wrapping_add(step);
        }
        for (ts, payload, mark) in frames {
            let seq = self.out_seq(0);
            out.packets.extend(self.build(self.to.codec.payload_type, seq, ts, mark, &payload));
        }
    }

    /// The output sequence number: the input's, mapped, when relaying; a counter of our
    /// own when transcoding (packets may be split or merged).
    fn out_seq(&mut self, mapped: u16) -> u16 {
        match self.mode {
            BridgeMode::Relay => mapped,
            BridgeMode::Transcode => {
                let seq = self.next_seq;
                self.next_seq = seq.wrapping_add(1);
                seq
            }
        }
    }

    fn build(&self, pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Option<Vec<u8>> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(self.ssrc)
            .sequence(seq.into())
            .timestamp(ts)
            .marked(marker)
            .payload(payload)
            .build()
            .ok()
    }
}

/// Appends `pcm` at rate `from` converted to rate `to` (equal, or 8 kHz ↔ 48 kHz).
fn convert_rate(pcm: &[i16], from: u32, to: u32, out: &mut Vec<i16>) {
    if from == to || from == 0 || to == 0 {
        out.extend_from_slice(pcm);
    } else if to > from {
        let factor = (to / from).max(1) as usize;
        for (i, &s) in pcm.iter().enumerate() {
            let next = pcm.get(i + 1).copied().unwrap_or(s);
            for k in 0..factor {
                let v = i32::from(s) + (i32::from(next) - i32::from(s)) * k as i32 / factor as i32;
                out.push(v as i16);
            }
        }
    } else {
        let factor = (from / to).max(1) as usize;
        out.extend(
            pcm.chunks(factor)
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodecName;
    use crate::media::codec::linear_to_ulaw;
    use crate::sdp::{Codec, Direction};

    fn leg(name: CodecName, pt: u8, te: Option<u8>) -> Negotiated {
        Negotiated {
            codec: Codec { name, payload_type: pt, clock_rate: name.clock_rate(), channels: 1 },
            telephone_event: te,
            remote_rtp: Some("127.0.0.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            ptime_ms: 20,
        }
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(seq.into())
            .timestamp(ts)
            .ssrc(ssrc)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn read(p: &[u8]) -> (u8, u16, u32, u32, Vec<u8>) {
        let r = rtp_rs::RtpReader::new(p).unwrap();
        (
            r.payload_type(),
            r.sequence_number().into(),
            r.timestamp(),
            r.ssrc(),
            r.payload().to_vec(),
        )
    }

    #[test]
    fn same_codec_relays_the_payload_and_maps_payload_types() {
        let a = leg(CodecName::Opus, 111, Some(101));
        let b = leg(CodecName::Opus, 96, Some(97));
        let mut d = BridgeDirection::new(&a, &b, 0xabc, 1000, 50_000).unwrap();
        assert_eq!(d.mode(), BridgeMode::Relay);
        let out = d.packet(&rtp(111, 7, 960, 1, &[1, 2, 3]));
        assert_eq!(read(&out.packets[0]), (96, 1000, 50_000, 0xabc, vec![1, 2, 3]));
        // A lost packet (seq 8) stays visible as a gap.
        let out = d.packet(&rtp(111, 9, 960 * 3, 1, &[4]));
        assert_eq!(read(&out.packets[0]).1, 1002);
        assert_eq!(read(&out.packets[0]).2, 50_000 + 960 * 2);
        // DTMF passes through with its payload type mapped.
        let out = d.packet(&rtp(101, 10, 960 * 4, 1, &[5, 10, 0, 160]));
        assert_eq!(read(&out.packets[0]).0, 97);
        assert_eq!(read(&out.packets[0]).4, vec![5, 10, 0, 160]);
        // Unknown payload types and garbage yield nothing.
        assert!(d.packet(&rtp(0, 11, 0, 1, &[0])).packets.is_empty());
        assert!(d.packet(&[1, 2, 3]).packets.is_empty());
    }

    #[test]
    fn a_new_input_ssrc_continues_the_output() {
        let a = leg(CodecName::Pcmu, 0, None);
        let mut d = BridgeDirection::new(&a, &a, 5, 100, 1000).unwrap();
        d.packet(&rtp(0, 40_000, 77, 1, &[0xff; 160]));
        let out = d.packet(&rtp(0, 3, 999_999, 2, &[0xff; 160]));
        let (_, seq, ts, ssrc, _) = read(&out.packets[0]);
        assert_eq!((seq, ts, ssrc), (101, 1160, 5));
    }

    #[test]
    fn dtmf_to_a_leg_without_telephone_event_is_dropped_and_counted() {
        let a = leg(CodecName::Pcmu, 0, Some(101));
        let b = leg(CodecName::Pcmu, 0, None);
        let mut d = BridgeDirection::new(&a, &b, 5, 0, 0).unwrap();
        let out = d.packet(&rtp(101, 1, 0, 1, &[1, 0x80, 0, 160]));
        assert!(out.packets.is_empty());
        assert!(out.dropped_dtmf);
    }

    #[test]
    fn pcmu_to_opus_transcodes_into_20ms_frames_at_48k() {
        let a = leg(CodecName::Pcmu, 0, Some(101));
        let b = leg(CodecName::Opus, 111, Some(101));
        let mut d = BridgeDirection::new(&a, &b, 9, 10, 0).unwrap();
        assert_eq!(d.mode(), BridgeMode::Transcode);
        let tone: Vec<u8> =
            (0..160).map(|i| linear_to_ulaw((8000.0 * (i as f32 * 0.3).sin()) as i16)).collect();
        let mut seqs = Vec::new();
        let mut stamps = Vec::new();
        for n in 0..10u16 {
            for p in d.packet(&rtp(0, n, u32::from(n) * 160, 3, &tone)).packets {
                let (pt, seq, ts, ssrc, payload) = read(&p);
                assert_eq!((pt, ssrc), (111, 9));
                assert!(!payload.is_empty());
                seqs.push(seq);
                stamps.push(ts);
            }
        }
        assert_eq!(seqs, (10..20).collect::<Vec<u16>>());
        assert_eq!(stamps, (0..10).map(|n| n * 960).collect::<Vec<u32>>());
        // DTMF timestamps are scaled to the 48 kHz clock.
        let out = d.packet(&rtp(101, 10, 1600, 3, &[1, 0, 0, 160]));
        assert_eq!(read(&out.packets[0]).2, 9600);
    }

    #[test]
    fn opus_to_pcma_and_rate_conversion_sizes() {
        let mut up = Vec::new();
        convert_rate(&[0, 600], 8000, 48000, &mut up);
        assert_eq!(up, vec![0, 100, 200, 300, 400, 500, 600, 600, 600, 600, 600, 600]);
        let mut down = Vec::new();
        convert_rate(&[6; 960], 48000, 8000, &mut down);
        assert_eq!(down.len(), 160);
        let a = leg(CodecName::Opus, 111, None);
        let b = leg(CodecName::Pcma, 8, None);
        let mut enc = Encoder::new(CodecName::Opus).unwrap();
        let frame = enc.encode(&[0i16; 960]).unwrap();
        let mut d = BridgeDirection::new(&a, &b, 1, 0, 0).unwrap();
        let out = d.packet(&rtp(111, 0, 0, 4, &frame.payload));
        assert_eq!(out.packets.len(), 1);
        assert_eq!(read(&out.packets[0]).4.len(), 160);
        assert!(
            d.packet(&rtp(111, 1, 960, 4, &[0xff, 0xff, 0xff])).packets.len() <= 1,
            "garbage Opus is not a panic"
        );
    }
}
