//! RFC 4733 telephone-event packets: the receiver that turns them into digits, and the
//! packet series that sends one digit.
//!
//! The receiver reports each key press once, keyed by (SSRC, RTP timestamp, event): the
//! updates of one event share its timestamp, and the end packet is sent three times (SIPp
//! even sends all three with one sequence number). A press whose end packets are all lost
//! is closed after [`DEFAULT_END_TIMEOUT`] without packets, through `handle_timeout(now)`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{DigitEvent, DigitSource, digit_of_event, event_code};

/// Close a digit after this long without one of its packets (updates come every 50 ms or
/// faster, so this is several lost packets in a row).
pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_millis(300);

/// How many finished presses are remembered to recognise late or repeated packets.
const RECENT_KEYS: usize = 16;

/// The 4-byte payload of an RFC 4733 event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 are the DTMF digits).
    pub event: u8,
    /// The E bit: this is (a repetition of) the last packet of the event.
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload; `None` if shorter than 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ssrc: u32,
    timestamp: u32,
    event: u8,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    key: Key,
    last_packet: Instant,
    /// Latest duration seen, in clock units.
    duration: u16,
}

/// Turns telephone-event packets of one call into [`DigitEvent`]s (sans-IO).
#[derive(Debug)]
pub struct Rfc4733Receiver {
    payload_type: u8,
    clock_rate: u32,
    end_timeout: Duration,
    active: Option<Active>,
    recent: VecDeque<Key>,
}

impl Rfc4733Receiver {
    /// `payload_type` and `clock_rate` as negotiated for telephone-event in SDP.
    pub fn new(payload_type: u8, clock_rate: u32) -> Self {
        Rfc4733Receiver {
            payload_type,
            clock_rate: clock_rate.max(1),
            end_timeout: DEFAULT_END_TIMEOUT,
            active: None,
            recent: VecDeque::with_capacity(RECENT_KEYS),
        }
    }

    pub fn with_end_timeout(mut self, timeout: Duration) -> Self {
        self.end_timeout = timeout;
        self
    }

    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// The digit currently held down, if any.
    pub fn active_digit(&self) -> Option<char> {
        self.active.and_then(|a| digit_of_event(a.key.event))
    }

    /// Feeds one whole RTP packet. Packets of other payload types and malformed packets
    /// are ignored. Returns a digit when a new press starts.
    pub fn handle_rtp(&mut self, now: Instant, packet: &[u8]) -> Option<DigitEvent> {
        let rtp = rtp_rs::RtpReader::new(packet).ok()?;
        if rtp.payload_type() != self.payload_type {
            return None;
        }
        self.handle_event(now, rtp.ssrc(), rtp.timestamp(), rtp.payload())
    }

    /// Feeds the payload of a telephone-event packet already matched by payload type.
    pub fn handle_event(
        &mut self,
        now: Instant,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Option<DigitEvent> {
        let ev = TelephoneEvent::parse(payload)?;
        let digit = digit_of_event(ev.event)?;
        let key = Key { ssrc, timestamp, event: ev.event };
        if self.recent.contains(&key) {
            return None; // a late or repeated packet of a finished press
        }
        if let Some(active) = self.active.as_mut() {
            if active.key == key {
                active.last_packet = now;
                active.duration = active.duration.max(ev.duration);
                if ev.end {
                    self.close();
                }
                return None;
            }
            if is_next_segment(active, key) {
                // A long press continues in a new segment with a new timestamp.
                let old = active.key;
                active.key = key;
                active.last_packet = now;
                active.duration = ev.duration;
                self.remember(old);
                if ev.end {
                    self.close();
                }
                return None;
            }
            // A different press (or an SSRC change) ends the current one.
            self.close();
        }
        self.active = Some(Active { key, last_packet: now, duration: ev.duration });
        if ev.end {
            self.close();
        }
        Some(DigitEvent {
            digit,
            duration_ms: (u64::from(ev.duration) * 1000 / u64::from(self.clock_rate)) as u32,
            source: DigitSource::Rfc4733,
        })
    }

    /// When the current press will be closed for lack of packets.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.last_packet + self.end_timeout)
    }

    /// Closes the current press if its end packets never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some(a) = self.active.take() {
            self.remember(a.key);
        }
    }

    fn remember(&mut self, key: Key) {
        if self.recent.len() >= RECENT_KEYS {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
    }
}

/// RFC 4733 §2.5.1.3: an event longer than the 16-bit duration field continues in a new
/// segment whose timestamp is the previous one plus its duration.
fn is_next_segment(active: &Active, key: Key) -> bool {
    let prev = active.key;
    let step = key.timestamp.wrapping_sub(prev.timestamp);
    key.ssrc == prev.ssrc
        && key.event == prev.event
        && active.duration >= u16::MAX / 2
        && step > 0
        && step <= u32::from(active.duration) + 1000
}

/// One packet of a digit being sent. All packets of a digit carry the same RTP timestamp
/// (the start of the event); the first has the marker bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: [u8; 4],
    pub marker: bool,
    /// When to send it, relative to the start of the digit.
    pub offset: Duration,
    /// A repetition of the final packet (RFC 4733 §2.5.1.4 sends it three times).
    pub retransmission: bool,
}

/// The packets that send `digit` for `duration_ms` (clamped to what 16 bits of duration
/// hold at `clock_rate`), one every `interval`. Returns `None` for a non-digit.
pub fn encode_digit(
    digit: char,
    duration_ms: u32,
    clock_rate: u32,
    interval: Duration,
) -> Option<Vec<EventPacket>> {
    let event = event_code(digit)?;
    let interval_ms = u32::try_from(interval.as_millis()).ok()?.clamp(5, 100);
    let interval = Duration::from_millis(u64::from(interval_ms));
    let per_packet = u64::from(clock_rate) * u64::from(interval_ms) / 1000;
    let total = (u64::from(clock_rate) * u64::from(duration_ms.max(interval_ms)) / 1000)
        .min(u64::from(u16::MAX));
    let updates = total.div_ceil(per_packet.max(1)).max(1);
    let volume = 10; // -10 dBm0
    let mut packets = Vec::with_capacity(updates as usize + 2);
    for i in 0..updates {
        let end = i + 1 == updates;
        let duration = if end { total } else { (i + 1) * per_packet } as u16;
        let ev = TelephoneEvent { event, end, volume, duration };
        packets.push(EventPacket {
            payload: ev.to_bytes(),
            marker: i == 0,
            offset: interval * i as u32,
            retransmission: false,
        });
    }
    let last = packets.last().copied()?;
    for r in 1..=2u32 {
        packets.push(EventPacket {
            marker: false,
            offset: last.offset + interval * r,
            retransmission: true,
            ..last
        });
    }
    Some(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
    }

    #[test]
    fn event_payload_round_trip() {
        let ev = TelephoneEvent { event: 11, end: true, volume: 63, duration: 0xABCD };
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Some(ev));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn one_press_is_reported_once() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        let mut digits = Vec::new();
        for i in 0..5u16 {
            digits.extend(rx.handle_event(t, 1, 500, &payload(3, false, 160 * (i + 1))));
        }
        for _ in 0..3 {
            digits.extend(rx.handle_event(t, 1, 500, &payload(3, true, 800)));
        }
        assert_eq!(digits.len(), 1);
        assert_eq!(digits[0].digit, '3');
        assert_eq!(digits[0].duration_ms, 20);
        assert_eq!(rx.active_digit(), None);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn same_digit_twice_is_two_presses() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        let a = rx.handle_event(t, 1, 500, &payload(7, true, 800));
        let b = rx.handle_event(t, 1, 2500, &payload(7, true, 800));
        assert!(a.is_some() && b.is_some());
    }

    #[test]
    fn lost_end_closes_on_timeout() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        assert!(rx.handle_event(t, 1, 500, &payload(1, false, 160)).is_some());
        assert_eq!(rx.poll_timeout(), Some(t + DEFAULT_END_TIMEOUT));
        rx.handle_timeout(t + Duration::from_millis(100));
        assert_eq!(rx.active_digit(), Some('1'));
        rx.handle_timeout(t + DEFAULT_END_TIMEOUT);
        assert_eq!(rx.active_digit(), None);
        // A straggler of the closed press is not a new digit.
        assert!(rx.handle_event(t, 1, 500, &payload(1, false, 320)).is_none());
    }

    #[test]
    fn new_press_ends_the_previous_one() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        assert!(rx.handle_event(t, 1, 500, &payload(1, false, 160)).is_some());
        let d = rx.handle_event(t, 1, 1500, &payload(2, false, 160)).unwrap();
        assert_eq!(d.digit, '2');
        assert!(rx.handle_event(t, 1, 500, &payload(1, true, 400)).is_none());
    }

    #[test]
    fn long_press_segments_are_one_digit() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        assert!(rx.handle_event(t, 1, 0, &payload(5, false, 65535)).is_some());
        assert!(rx.handle_event(t, 1, 65535, &payload(5, false, 800)).is_none());
        assert!(rx.handle_event(t, 1, 65535, &payload(5, true, 1600)).is_none());
    }

    #[test]
    fn ignores_other_events_and_payload_types() {
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(96, 8000);
        assert!(rx.handle_event(t, 1, 0, &payload(16, false, 160)).is_none()); // flash
        assert!(rx.handle_event(t, 1, 0, &[5, 0]).is_none());
        let mut pkt = vec![0x80, 101, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        pkt.extend_from_slice(&payload(5, false, 160));
        assert!(rx.handle_rtp(t, &pkt).is_none(), "PT 101 is not the negotiated 96");
        pkt[1] = 96;
        assert_eq!(rx.handle_rtp(t, &pkt).map(|d| d.digit), Some('5'));
        assert!(rx.handle_rtp(t, &[0x80, 96]).is_none());
    }

    #[test]
    fn encoded_digit_decodes_once() {
        let packets = encode_digit('#', 100, 8000, Duration::from_millis(20)).unwrap();
        assert_eq!(packets.len(), 5 + 2);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        let last = TelephoneEvent::parse(&packets[6].payload).unwrap();
        assert!(last.end);
        assert_eq!(last.duration, 800);
        assert_eq!(packets[6].offset, Duration::from_millis(120));
        assert_eq!(packets.iter().filter(|p| p.retransmission).count(), 2);
        let t = Instant::now();
        let mut rx = Rfc4733Receiver::new(101, 8000);
        let digits: Vec<_> = packets
            .iter()
            .filter_map(|p| rx.handle_event(t + p.offset, 9, 1234, &p.payload))
            .collect();
        assert_eq!(digits.len(), 1);
        assert_eq!(digits[0].digit, '#');
        assert!(encode_digit('x', 100, 8000, Duration::from_millis(20)).is_none());
        // 10 s at 48 kHz does not fit 16 bits: clamped, not wrapped.
        let long = encode_digit('1', 10_000, 48000, Duration::from_millis(20)).unwrap();
        let end = TelephoneEvent::parse(&long.last().unwrap().payload).unwrap();
        assert_eq!(end.duration, u16::MAX);
    }
}
