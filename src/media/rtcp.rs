//! Basic RTCP (RFC 3550 §6): sender and receiver reports with a CNAME, reception
//! statistics (loss, extended sequence, interarrival jitter), the randomised report
//! interval and the BYE sent when a call's stream ends (sans-IO: the caller passes the monotonic time, the wall clock as NTP and the arrival
//! time in RTP clock units).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a report goes out on average (RFC 3550's 5 s minimum for a two-party
/// session); each interval is randomised, see [`report_interval`].
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The time to the next report: [`REPORT_INTERVAL`] scaled by `0.5 + unit` (RFC 3550
/// §6.3.1), so that sessions started together do not report in step. `unit` is a
/// uniform random number in `[0, 1)`; values outside are clamped.
pub fn report_interval(unit: f64) -> Duration {
    REPORT_INTERVAL.mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

/// Largest RTCP packet read; bigger datagrams are cut and ignored past this.
pub const MAX_RTCP_BYTES: usize = 1500;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The wall clock as a 64-bit NTP timestamp (runtime helper, not for cores).
pub fn ntp_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// What we have sent, for a sender report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub packets: u32,
    pub octets: u32,
    /// The RTP timestamp that corresponds to the report's NTP time.
    pub rtp_timestamp: u32,
}

/// Reception statistics of the peer's stream (RFC 3550 appendix A.1, A.3, A.8).
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    ssrc: Option<u32>,
    base_seq: u16,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in RTP units, scaled by 16 as in A.8.
    jitter_q4: u32,
    last_transit: Option<i64>,
    /// Middle 32 bits of the NTP time of the last SR from the peer, and when it came.
    last_sr: Option<(u32, Instant)>,
}

impl ReceptionStats {
    /// One accepted media packet: its SSRC, sequence, RTP timestamp, and the arrival time
    /// in the same RTP clock units. A new SSRC restarts the statistics.
    pub fn packet(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival: u32) {
        if self.ssrc != Some(ssrc) {
            let last_sr = self.last_sr;
            *self = ReceptionStats {
                ssrc: Some(ssrc),
                base_seq: seq,
                max_seq: seq,
                last_sr,
                ..Default::default()
            };
            self.received = 1;
            self.last_transit = Some(i64::from(arrival) - i64::from(timestamp));
            return;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump: a restarted sender. Follow it (simplified from A.1's probation).
            self.base_seq = seq;
            self.max_seq = seq;
            self.cycles = 0;
            self.received = 0;
            self.expected_prior = 0;
            self.received_prior = 0;
        }
        self.received = self.received.saturating_add(1);
        let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs().min(u64::from(u32::MAX)) as i64;
            let j = i64::from(self.jitter_q4);
            self.jitter_q4 = (j + d - ((j + 8) >> 4)).clamp(0, i64::from(u32::MAX)) as u32;
        }
        self.last_transit = Some(transit);
    }

    /// Packets received from the current source.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Interarrival jitter in RTP clock units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u32 {
        self.extended_max().wrapping_sub(u32::from(self.base_seq)).wrapping_add(1)
    }

    /// Cumulative packets lost (may be negative with duplicates; clamped to 24 bits).
    pub fn lost(&self) -> i32 {
        let lost = i64::from(self.expected()) - i64::from(self.received);
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// A report block for the current source, closing the interval (A.3).
    fn report_block(&mut self, now: Instant) -> Option<[u8; 24]> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0u8
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                let units = (d.as_secs_f64() * 65536.0).min(f64::from(u32::MAX)) as u32;
                (lsr, units)
            }
            None => (0, 0),
        };
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4] = fraction;
        b[5..8].copy_from_slice(&(self.lost() as u32).to_be_bytes()[1..4]);
        b[8..12].copy_from_slice(&self.extended_max().to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter().to_be_bytes());
        b[16..20].copy_from_slice(&lsr.to_be_bytes());
        b[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(b)
    }

    /// Reads a received RTCP compound packet; remembers the peer's last SR. Malformed
    /// input is ignored. Returns the number of sub-packets read.
    pub fn handle_rtcp(&mut self, now: Instant, packet: &[u8]) -> usize {
        let mut rest = &packet[..packet.len().min(MAX_RTCP_BYTES)];
        let mut count = 0;
        while rest.len() >= 4 {
            if rest[0] >> 6 != 2 {
                break;
            }
            let words = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let len = (words + 1) * 4;
            let Some(sub) = rest.get(..len) else { break };
            if sub[1] == PT_SR && sub.len() >= 28 {
                let ntp_mid = u32::from_be_bytes([sub[10], sub[11], sub[12], sub[13]]);
                self.last_sr = Some((ntp_mid, now));
            }
            count += 1;
            rest = &rest[len..];
        }
        count
    }
}

/// Builds one compound report: an SR when `sent` is given (we sent since the last
/// report), else an RR, then an SDES with our CNAME (at most 255 bytes are used).
pub fn build_report(
    now: Instant,
    ntp: u64,
    our_ssrc: u32,
    sent: Option<SenderInfo>,
    stats: &mut ReceptionStats,
    cname: &str,
) -> Vec<u8> {
    let block = stats.report_block(now);
    let rc = u8::from(block.is_some());
    let mut out = Vec::with_capacity(96);
    let header_len = if sent.is_some() { 28 } else { 8 };
    let words = (header_len + 24 * usize::from(rc)) / 4 - 1;
    out.push(0x80 | rc);
    out.push(if sent.is_some() { PT_SR } else { PT_RR });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&our_ssrc.to_be_bytes());
    if let Some(info) = sent {
        out.extend_from_slice(&ntp.to_be_bytes());
        out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&info.packets.to_be_bytes());
        out.extend_from_slice(&info.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b);
    }
    // SDES: one chunk, CNAME item, null terminator, padded to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk_len = 4 + 2 + name.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    out.push(0x81);
    out.push(PT_SDES);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&our_ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + (padded - chunk_len) + 1, 0);
    out
}

/// Appends a BYE for `ssrc` to a compound report (RFC 3550 §6.6): the stream ends.
pub fn append_bye(report: &mut Vec<u8>, ssrc: u32) {
    report.extend_from_slice(&[0x81, PT_BYE, 0, 1]);
    report.extend_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_and_wraps_sequence() {
        let mut s = ReceptionStats::default();
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 10 {
                s.packet(7, seq, i * 160, i * 160);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(s.received(), 19);
        assert_eq!(s.lost(), 1);
        assert_eq!(s.extended_max(), (1 << 16) + 13);
        assert_eq!(s.jitter(), 0, "perfectly paced arrivals have no jitter");
        let block = s.report_block(Instant::now()).unwrap();
        assert_eq!(&block[0..4], &7u32.to_be_bytes());
        assert_eq!(block[4], (256 / 20) as u8, "1 of 20 lost");
        // The next interval with no loss reports fraction 0.
        s.packet(7, seq, 20 * 160, 20 * 160);
        assert_eq!(s.report_block(Instant::now()).unwrap()[4], 0);
    }

    #[test]
    fn jitter_follows_late_arrivals() {
        let mut s = ReceptionStats::default();
        for i in 0..200u32 {
            let late = if i % 2 == 0 { 0 } else { 80 }; // every other packet 10 ms late
            s.packet(1, i as u16, i * 160, i * 160 + late);
        }
        // A.8 converges to the mean |D| = 80 units.
        assert!((70..=80).contains(&s.jitter()), "{}", s.jitter());
    }

    #[test]
    fn sender_report_layout_and_lsr_round_trip() {
        let t0 = Instant::now();
        let mut theirs = ReceptionStats::default();
        theirs.packet(99, 1, 0, 0);
        let sent = SenderInfo { packets: 250, octets: 250 * 160, rtp_timestamp: 40_000 };
        let ntp = 0x0123_4567_89ab_cdef;
        let sr = build_report(t0, ntp, 0xdead_beef, Some(sent), &mut theirs, "ivr@example");
        assert_eq!(sr.len() % 4, 0);
        assert_eq!(sr[0], 0x81);
        assert_eq!(sr[1], PT_SR);
        assert_eq!(u16::from_be_bytes([sr[2], sr[3]]), (28 + 24) / 4 - 1);
        assert_eq!(&sr[8..16], &ntp.to_be_bytes());
        assert_eq!(&sr[20..24], &250u32.to_be_bytes());
        // The peer reads our SR; its next RR carries LSR = middle 32 bits and a DLSR.
        let mut ours = ReceptionStats::default();
        ours.packet(0xdead_beef, 5, 0, 0);
        assert_eq!(ours.handle_rtcp(t0, &sr), 2, "SR and SDES");
        let rr = build_report(t0 + Duration::from_secs(1), 0, 42, None, &mut ours, "x");
        assert_eq!(rr[1], PT_RR);
        let block = &rr[8..32];
        assert_eq!(&block[16..20], &0x4567_89abu32.to_be_bytes());
        assert_eq!(u32::from_be_bytes([block[20], block[21], block[22], block[23]]), 65536);
    }

    #[test]
    fn receiver_report_without_media_has_no_block() {
        let mut s = ReceptionStats::default();
        let rr = build_report(Instant::now(), 0, 1, None, &mut s, "ivr");
        assert_eq!(rr[0], 0x80);
        assert_eq!(u16::from_be_bytes([rr[2], rr[3]]), 1);
        assert_eq!(rr.len() % 4, 0);
    }

    #[test]
    fn intervals_are_randomised_around_five_seconds() {
        assert_eq!(report_interval(0.0), Duration::from_millis(2500));
        assert_eq!(report_interval(0.5), REPORT_INTERVAL);
        assert_eq!(report_interval(7.0), Duration::from_millis(7500), "clamped");
    }

    #[test]
    fn bye_closes_a_compound_report() {
        let mut stats = ReceptionStats::default();
        let mut out = build_report(Instant::now(), 0, 0xABCD_0001, None, &mut stats, "ivr@x");
        let report_len = out.len();
        append_bye(&mut out, 0xABCD_0001);
        assert_eq!(out.len(), report_len + 8);
        let bye = &out[report_len..];
        assert_eq!(bye[0] >> 6, 2, "version 2");
        assert_eq!(bye[0] & 0x1f, 1, "one SSRC");
        assert_eq!(bye[1], PT_BYE);
        assert_eq!(u16::from_be_bytes([bye[2], bye[3]]), 1, "length in words minus one");
        assert_eq!(&bye[4..], &0xABCD_0001u32.to_be_bytes());
        assert_eq!(out[1], PT_RR, "a compound packet starts with a report");
    }

    #[test]
    fn garbage_rtcp_is_ignored() {
        let mut s = ReceptionStats::default();
        let now = Instant::now();
        assert_eq!(s.handle_rtcp(now, &[]), 0);
        assert_eq!(s.handle_rtcp(now, &[0x80, 200, 0xff, 0xff, 1, 2]), 0, "length past the end");
        assert_eq!(s.handle_rtcp(now, &[0x00, 200, 0, 0]), 0, "version 0");
        let mut big = vec![0x80, 201, 0, 0];
        big.extend(std::iter::repeat_n(0u8, 100_000));
        assert!(s.handle_rtcp(now, &big) <= MAX_RTCP_BYTES / 4);
    }
}
