//! Relaying RTP between two call legs (sans-IO): the caller and an agent, or any two.
//!
//! A [`Bridge`] is built from each leg's negotiated media ([`sdp::Negotiated`]) and the
//! state of the stream we already send on that leg ([`StreamState`]: a leg may have carried
//! prompts or hold music before the bridge, so the bridge continues its SSRC, sequence and
//! timestamp and sets the marker on its first packet). Each received packet goes through
//! [`Bridge::handle_packet`], which returns the packets to send.
//!
//! Per direction:
//! - **same codec** on both legs: the payload passes through untouched; the header is
//!   rewritten (our SSRC and sequence, the source timestamp shifted onto our timeline,
//!   the far leg's payload type);
//! - **different codecs**: decoded, resampled (G.711 8 kHz ↔ Opus 48 kHz, rubato) and
//!   encoded for the far leg ([`transcode`]). SDP negotiation decides when this happens;
//!   the bridge only sees two different codecs;
//! - **RFC 4733 telephone-events**: passed through with payload-type mapping when both legs
//!   negotiated telephone-event; else turned into in-band tones on a G.711 far leg, or
//!   dropped (logged at debug) on an Opus one.
//!
//! Symmetric RTP: each leg's destination is the SDP address until a valid packet arrives
//! on that leg, then the address that packet came from (following the latest source).
//!
//! Untrusted input: packets larger than [`MAX_RTP_PACKET`], malformed RTP, unknown payload
//! types and undecodable payloads are dropped and counted, never a panic.
//!
//! The RFC 4733 clock is taken to be the leg's codec clock (what our SDP negotiation picks
//! when the peer offers it).

mod events;
mod transcode;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Instant;

use tracing::debug;

use crate::config::CodecName;
use crate::media::codec::CodecError;
use crate::sdp::Negotiated;

use events::{EventAction, EventPath};
use transcode::{SourceStep, Transcoder};

/// Largest RTP packet accepted (an Ethernet MTU); larger datagrams are dropped.
pub const MAX_RTP_PACKET: usize = 1500;

/// RTP fixed header length; the bridge writes no CSRCs or extensions.
const RTP_HEADER: usize = 12;

/// A timestamp jump larger than this (in seconds of audio) re-anchors the stream, as if a
/// new source had started.
const MAX_TIMESTAMP_JUMP_S: u32 = 30;

/// One side of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }
}

/// The RTP stream we send on a leg: continue with these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub next_seq: u16,
    /// Timestamp of the next packet, just after the last audio sent.
    pub next_ts: u32,
}

/// What the bridge needs to know about one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSetup {
    pub negotiated: Negotiated,
    /// Our outgoing stream on this leg.
    pub outgoing: StreamState,
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The leg (socket) to send it on.
    pub leg: Leg,
    pub dest: SocketAddr,
    pub packet: Vec<u8>,
}

/// Counters for one direction (packets received on one leg, sent on the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub received_packets: u64,
    pub received_bytes: u64,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Received packets discarded: junk, unknown payload types, no destination, a
    /// direction that does not send, undecodable audio, audio replaced by tones, events
    /// the far leg cannot carry. (Audio held in the transcoder's buffer is not dropped.)
    pub dropped_packets: u64,
}

/// Counters for both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    pub a_to_b: DirectionStats,
    pub b_to_a: DirectionStats,
}

impl BridgeStats {
    /// The counters of packets received on `from`.
    pub fn received_on(&self, from: Leg) -> &DirectionStats {
        match from {
            Leg::A => &self.a_to_b,
            Leg::B => &self.b_to_a,
        }
    }

    fn received_on_mut(&mut self, from: Leg) -> &mut DirectionStats {
        match from {
            Leg::A => &mut self.a_to_b,
            Leg::B => &mut self.b_to_a,
        }
    }
}

/// Why a bridge could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("resampler: {0}")]
    Resample(String),
}

/// Our outgoing stream on a leg.
#[derive(Debug, Clone, Copy)]
struct OutStream {
    state: StreamState,
    /// The next packet starts a talk-spurt (first packet, new source).
    marker: bool,
}

impl OutStream {
    /// Writes one packet and steps the sequence; `end_ts` (the end of the audio it
    /// carries) moves `next_ts` forward, never back.
    fn packet(&mut self, pt: u8, marker: bool, ts: u32, end_ts: u32, payload: &[u8]) -> Vec<u8> {
        let marker = marker || std::mem::take(&mut self.marker);
        let seq = self.state.next_seq;
        self.state.next_seq = seq.wrapping_add(1);
        if is_after(end_ts, self.state.next_ts) {
            self.state.next_ts = end_ts;
        }
        let mut out = Vec::with_capacity(RTP_HEADER + payload.len());
        out.push(0x80);
        out.push((u8::from(marker) << 7) | (pt & 0x7F));
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.state.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
}

/// Whether RTP timestamp `a` is later than `b` (serial arithmetic).
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

struct LegState {
    negotiated: Negotiated,
    /// Where to send: the SDP address, then the latched source.
    remote: Option<SocketAddr>,
    out: OutStream,
}

/// How a source stream's timestamps map onto our outgoing timeline (same codec):
/// `out = src + offset`.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    src_ssrc: u32,
    offset: u32,
    last_src_ts: u32,
}

enum Media {
    Passthrough,
    Transcode(Box<Transcoder>),
}

/// One direction: packets received on `from`, sent on the other leg.
struct Path {
    media: Media,
    anchor: Option<Anchor>,
    events: EventPath,
}

/// The bridge between two legs. See the module docs.
pub struct Bridge {
    legs: [LegState; 2],
    /// Indexed by the leg packets come from.
    paths: [Path; 2],
    stats: BridgeStats,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("a", &self.legs[0].negotiated.codec.name)
            .field("b", &self.legs[1].negotiated.codec.name)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Bridge {
    /// A bridge between legs `a` and `b`.
    pub fn new(a: LegSetup, b: LegSetup) -> Result<Bridge, BridgeError> {
        let leg = |s: LegSetup| LegState {
            remote: s.negotiated.remote_rtp,
            negotiated: s.negotiated,
            out: OutStream { state: s.outgoing, marker: true },
        };
        let path = |from: &LegSetup, to: &LegSetup| -> Result<Path, BridgeError> {
            let (src, dst) = (&from.negotiated, &to.negotiated);
            let media = if src.codec.name == dst.codec.name {
                Media::Passthrough
            } else {
                Media::Transcode(Box::new(Transcoder::new(
                    src.codec.name,
                    dst.codec.name,
                    dst.ptime_ms,
                )?))
            };
            Ok(Path { media, anchor: None, events: EventPath::new(src, dst) })
        };
        let paths = [path(&a, &b)?, path(&b, &a)?];
        Ok(Bridge { legs: [leg(a), leg(b)], paths, stats: BridgeStats::default() })
    }

    /// Where packets for `leg` go now (the latched source, else the SDP address).
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.index()].remote
    }

    /// The state of our outgoing stream on `leg`, to continue it after the bridge.
    pub fn stream_state(&self, leg: Leg) -> StreamState {
        self.legs[leg.index()].out.state
    }

    /// Whether packets from `from` are transcoded (rather than passed through).
    pub fn is_transcoding(&self, from: Leg) -> bool {
        matches!(self.paths[from.index()].media, Media::Transcode(_))
    }

    pub fn stats(&self) -> BridgeStats {
        self.stats
    }

    /// Updates a leg's media after a re-INVITE or UPDATE (new address, hold). The codec
    /// is not renegotiated here: build a new bridge for that.
    pub fn update_leg(&mut self, leg: Leg, negotiated: Negotiated) {
        let state = &mut self.legs[leg.index()];
        if negotiated.remote_rtp != state.negotiated.remote_rtp {
            state.remote = negotiated.remote_rtp;
        }
        state.negotiated.direction = negotiated.direction;
        state.negotiated.remote_rtp = negotiated.remote_rtp;
    }

    /// Handles one datagram received on leg `from` from `source`; returns what to send.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: Leg,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Transmit> {
        let stats = self.stats.received_on_mut(from);
        stats.received_packets += 1;
        stats.received_bytes += bytes.len() as u64;
        let routed = self.route(now, from, source, bytes);
        let stats = self.stats.received_on_mut(from);
        let Some(out) = routed else {
            stats.dropped_packets += 1;
            return Vec::new();
        };
        for t in &out {
            stats.sent_packets += 1;
            stats.sent_bytes += t.packet.len() as u64;
        }
        out
    }

    fn route(
        &mut self,
        now: Instant,
        from: Leg,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Option<Vec<Transmit>> {
        if bytes.len() > MAX_RTP_PACKET {
            debug!(len = bytes.len(), "oversized RTP packet dropped");
            return None;
        }
        let Ok(rtp) = rtp_rs::RtpReader::new(bytes) else {
            debug!(len = bytes.len(), "malformed RTP packet dropped");
            return None;
        };
        let src = self.legs[from.index()].negotiated.clone();
        let pt = rtp.payload_type();
        let is_event = src.telephone_event == Some(pt);
        if pt != src.codec.payload_type && !is_event {
            debug!(pt, "RTP with an unnegotiated payload type dropped");
            return None;
        }
        self.latch(from, source);
        let to = from.other();
        let dst = &self.legs[to.index()];
        if !src.direction.receives() || !dst.negotiated.direction.sends() {
            return None;
        }
        let dest = dst.remote?;
        let packet = Incoming {
            ssrc: rtp.ssrc(),
            ts: rtp.timestamp(),
            marker: rtp.mark(),
            payload: rtp.payload(),
        };
        let payloads = if is_event {
            self.event_packet(now, from, &packet)
        } else {
            self.audio_packet(now, from, &packet)
        };
        Some(payloads?.into_iter().map(|packet| Transmit { leg: to, dest, packet }).collect())
    }

    /// Symmetric RTP: send to where the leg's packets come from.
    fn latch(&mut self, leg: Leg, source: SocketAddr) {
        let state = &mut self.legs[leg.index()];
        if state.remote != Some(source) {
            debug!(?leg, %source, previous = ?state.remote, "RTP source latched");
            state.remote = Some(source);
        }
    }

    /// The timestamp mapping for a same-codec source stream, re-anchored (with a marker)
    /// on a new SSRC or a jump.
    fn anchor(&mut self, from: Leg, p: &Incoming) -> Anchor {
        let max_jump = self.legs[from.index()]
            .negotiated
            .codec
            .clock_rate
            .saturating_mul(MAX_TIMESTAMP_JUMP_S);
        let out = &mut self.legs[from.other().index()].out;
        match &mut self.paths[from.index()].anchor {
            Some(a)
                if a.src_ssrc == p.ssrc
                    && p.ts.wrapping_sub(a.last_src_ts).min(a.last_src_ts.wrapping_sub(p.ts))
                        <= max_jump =>
            {
                if is_after(p.ts, a.last_src_ts) {
                    a.last_src_ts = p.ts;
                }
                *a
            }
            slot => {
                out.marker = true;
                let a = Anchor {
                    src_ssrc: p.ssrc,
                    offset: out.state.next_ts.wrapping_sub(p.ts),
                    last_src_ts: p.ts,
                };
                *slot = Some(a);
                a
            }
        }
    }

    fn audio_packet(&mut self, now: Instant, from: Leg, p: &Incoming) -> Option<Vec<Vec<u8>>> {
        let (src, dst) = (
            self.legs[from.index()].negotiated.clone(),
            self.legs[from.other().index()].negotiated.clone(),
        );
        let path = &mut self.paths[from.index()];
        if path.events.suppresses_audio(now) {
            if let Media::Transcode(transcoder) = &mut path.media {
                // The tones took this time on our timeline; no gap to add afterwards.
                transcoder.forget_source();
            }
            return None;
        }
        if matches!(self.paths[from.index()].media, Media::Passthrough) {
            let anchor = self.anchor(from, p);
            let ts = p.ts.wrapping_add(anchor.offset);
            let duration = match src.codec.name {
                CodecName::Pcmu | CodecName::Pcma => p.payload.len() as u32,
                CodecName::Opus => src.ptime_ms * src.codec.clock_rate / 1000,
            };
            let out = &mut self.legs[from.other().index()].out;
            let packet = out.packet(
                dst.codec.payload_type,
                p.marker,
                ts,
                ts.wrapping_add(duration),
                p.payload,
            );
            return Some(vec![packet]);
        }
        let to = from.other();
        let Media::Transcode(transcoder) = &mut self.paths[from.index()].media else {
            return None;
        };
        let out = &mut self.legs[to.index()].out;
        if let SourceStep::Restart { gap } =
            transcoder.note_source(p.ssrc, p.ts, src.codec.clock_rate)
        {
            // Silence or a new source: keep our timeline in step, mark the restart.
            let gap_out = (u64::from(gap) * u64::from(dst.codec.clock_rate)
                / u64::from(src.codec.clock_rate.max(1))) as u32;
            out.state.next_ts = out.state.next_ts.wrapping_add(gap_out);
            out.marker = true;
        }
        if let Err(err) = transcoder.push(p.ssrc, p.ts, p.payload) {
            debug!(%err, "undecodable audio dropped");
            return None;
        }
        let mut packets = Vec::new();
        while let Some(frame) = transcoder.pop_frame() {
            match frame {
                Ok((payload, samples)) => {
                    let ts = out.state.next_ts;
                    packets.push(out.packet(
                        dst.codec.payload_type,
                        false,
                        ts,
                        ts.wrapping_add(samples),
                        &payload,
                    ));
                }
                Err(err) => debug!(%err, "audio not encoded"),
            }
        }
        Some(packets)
    }

    fn event_packet(&mut self, now: Instant, from: Leg, p: &Incoming) -> Option<Vec<Vec<u8>>> {
        let to = from.other();
        // The event's start on our timeline: the source mapping when passing through,
        // else where our stream is now.
        let start_ts = if matches!(self.paths[from.index()].media, Media::Passthrough) {
            p.ts.wrapping_add(self.anchor(from, p).offset)
        } else {
            self.legs[to.index()].out.state.next_ts
        };
        let action = self.paths[from.index()].events.handle(now, p.ssrc, p.ts, p.payload, start_ts);
        let out = &mut self.legs[to.index()].out;
        match action {
            EventAction::Dropped => None,
            EventAction::Forward { pt, marker, ts, end_ts, payload } => {
                Some(vec![out.packet(pt, marker, ts, end_ts, &payload)])
            }
            EventAction::Tones { pt, frames } => Some(
                frames
                    .into_iter()
                    .map(|f| {
                        out.packet(pt, f.marker, f.ts, f.ts.wrapping_add(f.samples), &f.payload)
                    })
                    .collect(),
            ),
        }
    }
}

/// The parts of a received packet the bridge uses.
struct Incoming<'a> {
    ssrc: u32,
    ts: u32,
    marker: bool,
    payload: &'a [u8],
}
