//! RTCP for one leg of a bridge (sans-IO): while bridged we are still an RTP sender and
//! receiver on each leg (the relay rewrites SSRC, sequence and timestamps), so each leg
//! gets its own reports, as a call's media session sends them: an SR when we sent since
//! the last report (else an RR) with a reception block for what the phone sent us, every
//! 2.5–7.5 s (RFC 3550 §6.3.1), and a BYE when the bridge ends.

use std::net::SocketAddr;
use std::time::Instant;

use crate::media::rtcp::{self, ReceptionStats, SenderInfo};
use crate::media::session::SentCounts;

/// One leg's RTCP state.
#[derive(Debug)]
pub struct LegRtcp {
    /// Our SSRC on this leg (the stream the relay sends).
    ssrc: u32,
    cname: String,
    clock_rate: u32,
    t_ref: Instant,
    stats: ReceptionStats,
    next_report: Instant,
    sent: SenderInfo,
    packets_at_last_report: u32,
    /// Where the phone's RTCP comes from (its RTCP port, or its RTP port with rtcp-mux).
    rtcp_source: Option<SocketAddr>,
}

impl LegRtcp {
    /// `jitter` in [0, 1) spreads the first report (a seeded random in production).
    pub fn new(now: Instant, ssrc: u32, cname: &str, clock_rate: u32, jitter: f64) -> LegRtcp {
        LegRtcp {
            ssrc,
            cname: cname.to_string(),
            clock_rate: clock_rate.max(1),
            t_ref: now,
            stats: ReceptionStats::default(),
            next_report: now + rtcp::report_interval(jitter),
            sent: SenderInfo { packets: 0, octets: 0, rtp_timestamp: 0 },
            packets_at_last_report: 0,
            rtcp_source: None,
        }
    }

    /// Our stream on this leg sent `sent` before (a call's stream the bridge continues):
    /// the sender counts go on from there.
    pub fn sent_before(mut self, sent: SentCounts) -> LegRtcp {
        self.sent.packets = sent.packets;
        self.sent.octets = sent.octets;
        self.packets_at_last_report = sent.packets;
        self
    }

    /// An RTP packet from the phone on this leg.
    pub fn received_rtp(&mut self, now: Instant, packet: &[u8]) {
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { return };
        let arrival =
            now.saturating_duration_since(self.t_ref).as_secs_f64() * f64::from(self.clock_rate);
        self.stats.packet(
            rtp.ssrc(),
            rtp.sequence_number().into(),
            rtp.timestamp(),
            arrival as u64 as u32,
        );
    }

    /// An RTP packet the relay sent to the phone on this leg.
    pub fn sent_rtp(&mut self, packet: &[u8]) {
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { return };
        self.sent.packets = self.sent.packets.wrapping_add(1);
        self.sent.octets = self.sent.octets.wrapping_add(rtp.payload().len() as u32);
        self.sent.rtp_timestamp = rtp.timestamp();
    }

    /// An RTCP packet from the phone (for round-trip time); false if it was not RTCP.
    pub fn received_rtcp(&mut self, now: Instant, source: SocketAddr, packet: &[u8]) -> bool {
        let read = self.stats.handle_rtcp(now, packet) > 0;
        if read {
            self.rtcp_source = Some(source);
        }
        read
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// The report due at `now`, if one is, with where to send it: where the phone's RTCP
    /// comes from, else its RTP address's port + 1. `jitter` in [0, 1) spreads the next.
    pub fn poll_report(
        &mut self,
        now: Instant,
        remote_rtp: Option<SocketAddr>,
        jitter: f64,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + rtcp::report_interval(jitter);
        let to = self.target(remote_rtp)?;
        Some((self.report(now), to))
    }

    /// The last report, closed by a BYE: our stream on this leg ends.
    pub fn bye(
        &mut self,
        now: Instant,
        remote_rtp: Option<SocketAddr>,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let to = self.target(remote_rtp)?;
        let mut packet = self.report(now);
        rtcp::append_bye(&mut packet, self.ssrc);
        Some((packet, to))
    }

    fn report(&mut self, now: Instant) -> Vec<u8> {
        let sent = (self.sent.packets != self.packets_at_last_report).then_some(self.sent);
        self.packets_at_last_report = self.sent.packets;
        rtcp::build_report(now, rtcp::ntp_now(), self.ssrc, sent, &mut self.stats, &self.cname)
    }

    fn target(&self, remote_rtp: Option<SocketAddr>) -> Option<SocketAddr> {
        match (self.rtcp_source, remote_rtp) {
            (Some(src), Some(rtp)) if src.ip() == rtp.ip() => Some(src),
            (_, Some(rtp)) => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
            (source, None) => source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(ssrc)
            .sequence(seq.into())
            .timestamp(ts)
            .payload(&[0x55; 160])
            .build()
            .unwrap()
    }

    #[test]
    fn reports_come_due_and_say_what_we_sent_and_heard() {
        let t0 = Instant::now();
        let mut leg = LegRtcp::new(t0, 0xABC, "zendesk-ivr@test", 8000, 0.5);
        let phone: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert!(leg.poll_report(t0, Some(phone), 0.5).is_none(), "not due yet");
        for i in 0..50u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            leg.received_rtp(now, &rtp(0x1, i, 160 * u32::from(i)));
            leg.sent_rtp(&rtp(0xABC, 100 + i, 8000 + 160 * u32::from(i)));
        }
        let due = leg.poll_timeout();
        assert!(due >= t0 + Duration::from_millis(2500) && due <= t0 + Duration::from_millis(7500));
        let (report, to) = leg.poll_report(due, Some(phone), 0.5).expect("due");
        assert_eq!(to, "127.0.0.1:4001".parse().unwrap(), "RTP port + 1");
        assert_eq!(report[1], 200, "an SR: we sent");
        assert_eq!(u32::from_be_bytes(report[4..8].try_into().unwrap()), 0xABC);
        assert_eq!(u32::from_be_bytes(report[20..24].try_into().unwrap()), 50, "packets sent");
        assert_eq!(report[0] & 0x1F, 1, "one reception block, for the phone's stream");
        assert_eq!(u32::from_be_bytes(report[28..32].try_into().unwrap()), 0x1);
        // Nothing sent since: the next one is an RR.
        let next = leg.poll_timeout();
        let (report, _) = leg.poll_report(next, Some(phone), 0.5).expect("due");
        assert_eq!(report[1], 201);
        // The BYE ends the compound packet.
        let (bye, _) = leg.bye(next, Some(phone)).expect("a target");
        assert_eq!(&bye[bye.len() - 8..bye.len() - 4], &[0x81, 203, 0, 1]);
        // A stream the bridge continues keeps counting from where it was.
        let mut continued = LegRtcp::new(t0, 7, "x", 8000, 0.0)
            .sent_before(SentCounts { packets: 500, octets: 80_000 });
        continued.sent_rtp(&rtp(7, 1, 160));
        let (sr, _) = continued.bye(t0, Some(phone)).expect("a target");
        assert_eq!(sr[1], 200);
        assert_eq!(u32::from_be_bytes(sr[20..24].try_into().unwrap()), 501, "packets go on");
        assert_eq!(u32::from_be_bytes(sr[24..28].try_into().unwrap()), 80_160, "octets go on");
        // No address, no report.
        assert!(LegRtcp::new(t0, 1, "x", 8000, 0.0).bye(t0, None).is_none());
    }
}
