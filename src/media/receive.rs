//! One call's receive side (sans-IO apart from the RTCP clock and random report
//! intervals): what the media worker feeds with the datagrams it reads from the call's
//! RTP and RTCP sockets, and whose timers it runs.
//!
//! Packets must be well-formed RTP with a negotiated payload type, from the source the
//! [`Latch`] accepts (symmetric RTP; the rule is documented there). The audio payload type
//! feeds the RTCP statistics and, when telephone-event was not negotiated and the codec is
//! G.711, the in-band DTMF detector; the telephone-event payload type feeds the RFC 4733
//! receiver. Timers: RFC 4733 end timeouts, the RTP timeout, and an RTCP report every ~5 s.
//!
//! `Receiver::rtp` and `Receiver::rtcp` take the time the datagram arrived, not the
//! time it was read (the worker reads up to a frame later): interarrival jitter and the
//! DLSR of our reports are measured from it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::info;

use crate::config::CodecName;
use crate::media::codec::Decoder;
use crate::media::dtmf::{DigitEvent, InbandDetector, Rfc4733Receiver};
use crate::media::latch::{Latch, LatchDecision};
use crate::media::liveness::{RtpLiveness, on_hold};
use crate::media::rtcp::{self, ReceptionStats, SenderInfo};
use crate::media::session::{MediaError, SessionSettings};
use crate::media::worker::SendCounters;
use crate::sdp::Negotiated;

/// Largest RTP datagram read; longer ones are cut (and then fail to parse or are noise).
pub const MAX_RTP_BYTES: usize = 2048;

#[doc(hidden)]
pub mod fuzzing;

/// The receive side's state (everything but the sockets).
pub(crate) struct Receiver {
    t_ref: Instant,
    media: Negotiated,
    latch: Latch,
    liveness: RtpLiveness,
    timed_out: bool,
    rfc4733: Option<Rfc4733Receiver>,
    inband: Option<(Decoder, InbandDetector)>,
    pcm: Vec<i16>,
    digits: Vec<DigitEvent>,
    stats: ReceptionStats,
    ssrc: u32,
    cname: String,
    next_report: Instant,
    packets_at_last_report: u32,
    rtcp_source: Option<SocketAddr>,
}

impl Receiver {
    pub(crate) fn new(
        now: Instant,
        media: &Negotiated,
        settings: &SessionSettings,
        ssrc: u32,
        codec: CodecName,
    ) -> Result<Receiver, MediaError> {
        let rfc4733 =
            media.telephone_event.map(|pt| Rfc4733Receiver::new(pt, media.codec.clock_rate));
        let inband = match (rfc4733.is_none(), codec) {
            (true, CodecName::Pcmu | CodecName::Pcma) => {
                Some((Decoder::new(codec)?, InbandDetector::new()))
            }
            _ => None,
        };
        Ok(Receiver {
            t_ref: now,
            media: media.clone(),
            latch: Latch::new(media.remote_rtp),
            liveness: RtpLiveness::new(now, settings.rtp_timeout, on_hold(media)),
            timed_out: false,
            rfc4733,
            inband,
            pcm: Vec::with_capacity(512),
            digits: Vec::new(),
            stats: ReceptionStats::default(),
            ssrc,
            cname: settings.cname.clone(),
            next_report: now + rtcp::report_interval(rand::random()),
            packets_at_last_report: 0,
            rtcp_source: None,
        })
    }

    /// Where the worker should send, given the latch and our direction.
    pub(crate) fn send_target(&self) -> Option<SocketAddr> {
        if self.media.direction.sends() { self.latch.target() } else { None }
    }

    pub(crate) fn renegotiated(&mut self, now: Instant, media: Negotiated) {
        self.latch.signal(media.remote_rtp);
        self.liveness.set_on_hold(now, on_hold(&media));
        if media.telephone_event != self.media.telephone_event {
            self.rfc4733 =
                media.telephone_event.map(|pt| Rfc4733Receiver::new(pt, media.codec.clock_rate));
        }
        self.media = media;
    }

    /// One datagram on the RTP socket. Returns a new send target when the latch moved.
    pub(crate) fn rtp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        packet: &[u8],
    ) -> Option<SocketAddr> {
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else {
            metrics::counter!("rtp_invalid_packets_total").increment(1);
            return None;
        };
        let pt = rtp.payload_type();
        let is_audio = pt == self.media.codec.payload_type;
        let is_event = self.rfc4733.as_ref().is_some_and(|r| r.payload_type() == pt);
        if !is_audio && !is_event {
            metrics::counter!("rtp_invalid_packets_total").increment(1);
            return None;
        }
        let moved = match self.latch.packet(source) {
            LatchDecision::Drop => {
                metrics::counter!("rtp_unlatched_packets_total").increment(1);
                return None;
            }
            LatchDecision::Accept => None,
            LatchDecision::Latched(to) => {
                info!(%to, "RTP source latched");
                Some(to)
            }
        };
        self.liveness.packet(now);
        if is_event {
            if let Some(r) = self.rfc4733.as_mut()
                && let Some(d) = r.handle_event(now, rtp.ssrc(), rtp.timestamp(), rtp.payload())
            {
                self.digits.push(d);
            }
        } else {
            let arrival = now.saturating_duration_since(self.t_ref).as_secs_f64()
                * f64::from(self.media.codec.clock_rate);
            self.stats.packet(
                rtp.ssrc(),
                rtp.sequence_number().into(),
                rtp.timestamp(),
                arrival as u64 as u32,
            );
            if let Some((decoder, detector)) = self.inband.as_mut() {
                self.pcm.clear();
                if decoder.decode_into(rtp.payload(), &mut self.pcm).is_ok() {
                    detector.process(&self.pcm, &mut self.digits);
                }
            }
        }
        moved.filter(|_| self.media.direction.sends())
    }

    pub(crate) fn next_wake(&self) -> Instant {
        let mut at = self.next_report;
        if let Some(t) = self.rfc4733.as_ref().and_then(|r| r.poll_timeout()) {
            at = at.min(t);
        }
        if !self.timed_out
            && let Some(t) = self.liveness.poll_timeout()
        {
            at = at.min(t);
        }
        at
    }

    /// Timers: DTMF end timeouts, the RTP timeout, and an RTCP report when one is due.
    pub(crate) fn timers(
        &mut self,
        now: Instant,
        counters: &SendCounters,
    ) -> (bool, Option<Vec<u8>>) {
        if let Some(r) = self.rfc4733.as_mut() {
            r.handle_timeout(now);
        }
        let mut dead = false;
        if !self.timed_out && self.liveness.expired(now) {
            self.timed_out = true;
            dead = true;
        }
        let mut report = None;
        if now >= self.next_report {
            self.next_report = now + rtcp::report_interval(rand::random());
            report = Some(self.report(now, counters));
        }
        (dead, report)
    }

    /// One datagram on the RTCP socket: the peer's reports (their last SR dates our
    /// reports' DLSR), and where its RTCP comes from.
    pub(crate) fn rtcp(&mut self, now: Instant, source: SocketAddr, packet: &[u8]) {
        if self.stats.handle_rtcp(now, packet) > 0 {
            self.rtcp_source = Some(source);
        }
    }

    /// The digits detected since the last call.
    pub(crate) fn take_digits(&mut self) -> std::vec::Drain<'_, DigitEvent> {
        self.digits.drain(..)
    }

    /// A compound report now: an SR if we sent since the last one, else an RR.
    fn report(&mut self, now: Instant, counters: &SendCounters) -> Vec<u8> {
        let packets = counters.packets.load(Ordering::Relaxed);
        let sent = (packets != self.packets_at_last_report).then(|| SenderInfo {
            packets,
            octets: counters.octets.load(Ordering::Relaxed),
            rtp_timestamp: counters.last_timestamp.load(Ordering::Relaxed),
        });
        self.packets_at_last_report = packets;
        rtcp::build_report(now, rtcp::ntp_now(), self.ssrc, sent, &mut self.stats, &self.cname)
    }

    /// The last report, closed by a BYE: our stream ends.
    pub(crate) fn bye(&mut self, now: Instant, counters: &SendCounters) -> Vec<u8> {
        let mut packet = self.report(now, counters);
        rtcp::append_bye(&mut packet, self.ssrc);
        packet
    }

    /// Where RTCP goes: where the peer's RTCP comes from, else the RTP target's port + 1.
    pub(crate) fn rtcp_target(&self) -> Option<SocketAddr> {
        let rtp = self.latch.target()?;
        match self.rtcp_source {
            Some(src) if src.ip() == rtp.ip() => Some(src),
            _ => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::codec::Encoder;
    use crate::media::dtmf::{self, DigitSource};
    use crate::sdp::{Codec, Direction};

    fn negotiated(te: Option<u8>) -> Negotiated {
        Negotiated {
            codec: Codec { name: CodecName::Pcmu, payload_type: 0, clock_rate: 8000, channels: 1 },
            telephone_event: te,
            remote_rtp: Some("127.0.0.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            ptime_ms: 20,
            srtp: None,
        }
    }

    fn settings() -> SessionSettings {
        SessionSettings { rtp_timeout: Duration::from_secs(2), cname: "ivr@test".into() }
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8], marker: bool) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(seq.into())
            .timestamp(ts)
            .ssrc(ssrc)
            .marked(marker)
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn telephone_events_become_digits_and_foreign_payload_types_are_dropped() {
        let t0 = Instant::now();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(rx.rtp(t0, src, &packet(96, 1, 0, 9, &[5, 10, 0, 160], true)), None);
        assert!(rx.digits.is_empty(), "PT 96 was not negotiated");
        assert_eq!(rx.rtp(t0, src, &packet(101, 2, 0, 9, &[5, 10, 0, 160], true)), Some(src));
        assert_eq!(rx.digits.len(), 1);
        assert_eq!(rx.digits[0].digit, '5');
        assert_eq!(rx.digits[0].source, DigitSource::Rfc4733);
        assert!(rx.inband.is_none(), "no in-band detection with telephone-event");
    }

    #[test]
    fn inband_detection_without_telephone_event() {
        let t0 = Instant::now();
        let mut rx = Receiver::new(t0, &negotiated(None), &settings(), 1, CodecName::Pcmu).unwrap();
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let tone = dtmf::inband::synthesize('7', -10.0, 0.0, 160 * 10).unwrap();
        let silence = vec![0i16; 160 * 10];
        for (i, chunk) in tone.chunks(160).chain(silence.chunks(160)).enumerate() {
            let mut enc = Encoder::new(CodecName::Pcmu).unwrap();
            let frame = enc.encode(chunk).unwrap();
            let now = t0 + Duration::from_millis(20 * i as u64);
            rx.rtp(now, src, &packet(0, i as u16, 160 * i as u32, 3, &frame.payload, i == 0));
        }
        let digits: Vec<char> = rx.digits.iter().map(|d| d.digit).collect();
        assert_eq!(digits, vec!['7']);
        assert_eq!(rx.stats.received(), 20);
    }

    #[test]
    fn rtp_timeout_fires_once_and_not_on_hold() {
        let t0 = Instant::now();
        let counters = SendCounters::default();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        assert_eq!(rx.next_wake(), t0 + Duration::from_secs(2));
        assert!(!rx.timers(t0 + Duration::from_millis(1999), &counters).0);
        assert!(rx.timers(t0 + Duration::from_secs(2), &counters).0);
        assert!(!rx.timers(t0 + Duration::from_secs(3), &counters).0, "reported once");

        let mut held =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 1, CodecName::Pcmu).unwrap();
        let mut m = negotiated(Some(101));
        m.direction = Direction::RecvOnly;
        held.renegotiated(t0, m);
        assert!(!held.timers(t0 + Duration::from_secs(60), &counters).0);
        assert_eq!(held.send_target(), None, "on hold by sendonly we do not send");
    }

    #[test]
    fn rtcp_report_every_interval_sr_only_after_sending() {
        let t0 = Instant::now();
        let counters = SendCounters::default();
        let mut rx =
            Receiver::new(t0, &negotiated(Some(101)), &settings(), 7, CodecName::Pcmu).unwrap();
        // Intervals are randomised within 2.5-7.5 s.
        assert!(rx.timers(t0 + Duration::from_millis(2499), &counters).1.is_none());
        let first = t0 + rtcp::report_interval(1.0);
        let rr = rx.timers(first, &counters).1.unwrap();
        assert_eq!(rr[1], 201, "nothing sent yet: RR");
        assert!(rx.timers(first + Duration::from_millis(2499), &counters).1.is_none());
        counters.packets.store(250, Ordering::Relaxed);
        let sr = rx.timers(first + rtcp::report_interval(1.0), &counters).1.unwrap();
        assert_eq!(sr[1], 200, "SR after sending");
        assert_eq!(rx.rtcp_target(), Some("127.0.0.1:4001".parse().unwrap()));
        // The last packet: a report closed by a BYE for our SSRC.
        counters.packets.store(300, Ordering::Relaxed);
        let bye = rx.bye(first, &counters);
        assert_eq!(bye[1], 200, "still a compound packet led by a report");
        assert_eq!(bye[bye.len() - 7], 203, "BYE");
        assert_eq!(bye[bye.len() - 4..], 7u32.to_be_bytes());
    }
}
