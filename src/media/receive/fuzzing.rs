//! One call's receive side (RTP with RFC 4733 events, RTCP, renegotiation, timers) driven
//! in virtual time, without sockets: what the `rtp_receive` fuzz target runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Receiver;
use crate::config::CodecName;
use crate::media::dtmf::{DIGITS, DigitEvent};
use crate::media::session::SessionSettings;
use crate::media::worker::SendCounters;
use crate::sdp::{Codec, Direction, Negotiated};

/// The sources a fuzz input may send from: the address in the SDP, and two others.
pub const SOURCES: [&str; 3] = ["127.0.0.1:4000", "127.0.0.2:4000", "127.0.0.1:4002"];

/// Longest RTP datagram the receive loop reads.
pub const MAX_DATAGRAM: usize = super::MAX_RTP_BYTES;

/// What the fuzz input chooses about the negotiated media.
#[derive(Debug, Clone, Copy)]
pub struct MediaChoice {
    /// 0: PCMU, 1: PCMA, anything else: Opus.
    pub codec: u8,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// Index into [`SOURCES`], or none (hold, `c=0.0.0.0`).
    pub remote: Option<u8>,
    /// 0: sendrecv, 1: sendonly, 2: recvonly, else inactive.
    pub direction: u8,
}

impl MediaChoice {
    fn negotiated(self) -> Negotiated {
        let (name, clock_rate) = match self.codec {
            0 => (CodecName::Pcmu, 8000),
            1 => (CodecName::Pcma, 8000),
            _ => (CodecName::Opus, 48000),
        };
        let direction = match self.direction {
            0 => Direction::SendRecv,
            1 => Direction::SendOnly,
            2 => Direction::RecvOnly,
            _ => Direction::Inactive,
        };
        Negotiated {
            codec: Codec { name, payload_type: self.payload_type & 0x7f, clock_rate, channels: 1 },
            telephone_event: self.telephone_event.map(|pt| pt & 0x7f),
            remote_rtp: self.remote.map(source),
            direction,
            ptime_ms: 20,
            srtp: None,
        }
    }
}

fn source(index: u8) -> SocketAddr {
    let text = SOURCES[usize::from(index) % SOURCES.len()];
    text.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4000)))
}

/// The receive side with a virtual clock. Every call checks the invariants and panics
/// when one breaks (that is the fuzz target's finding).
pub struct ReceiveHarness {
    rx: Receiver,
    now: Instant,
    counters: SendCounters,
    digits: usize,
}

impl ReceiveHarness {
    pub fn new(choice: MediaChoice) -> Option<ReceiveHarness> {
        let now = Instant::now();
        let settings =
            SessionSettings { rtp_timeout: Duration::from_secs(2), cname: "ivr@fuzz".into() };
        let media = choice.negotiated();
        let rx = Receiver::new(now, &media, &settings, 0x1234_5678, media.codec.name).ok()?;
        Some(ReceiveHarness { rx, now, counters: SendCounters::default(), digits: 0 })
    }

    /// One RTP datagram from `SOURCES[from]`.
    pub fn rtp(&mut self, from: u8, packet: &[u8]) {
        let packet = packet.get(..MAX_DATAGRAM).unwrap_or(packet);
        let moved = self.rx.rtp(self.now, source(from), packet);
        if let Some(to) = moved {
            assert_eq!(self.rx.send_target(), Some(to), "a latch move must become the target");
        }
        self.take_digits();
    }

    /// One RTCP datagram.
    pub fn rtcp(&mut self, packet: &[u8]) {
        self.rx.rtcp(self.now, source(0), packet);
    }

    /// A re-INVITE or UPDATE changed the media.
    pub fn renegotiate(&mut self, choice: MediaChoice) {
        self.rx.renegotiated(self.now, choice.negotiated());
    }

    /// Lets virtual time pass, firing each timer as the receive loop would.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        // A timer that never moves past `now` would spin the receive loop: bound the
        // wake-ups a span of time may take.
        let mut wakes = 0u32;
        loop {
            let wake = self.rx.next_wake();
            if wake > until {
                break;
            }
            self.now = self.now.max(wake);
            let _ = self.rx.timers(self.now, &self.counters);
            assert!(self.rx.next_wake() > self.now, "a timer fired but stays due");
            wakes += 1;
            assert!(wakes < 100_000, "timers wake too often");
            self.take_digits();
        }
        self.now = until;
    }

    /// The RTCP BYE sent when the call ends.
    pub fn end(mut self) {
        let bye = self.rx.bye(self.now, &self.counters);
        assert!(bye.len() <= 1500, "an RTCP report must fit a datagram");
    }

    fn take_digits(&mut self) {
        for DigitEvent { digit, duration_ms, .. } in self.rx.take_digits() {
            assert!(DIGITS.contains(&digit), "not a DTMF digit: {digit:?}");
            assert!(duration_ms <= 10_000, "a u16 duration is under 10 s at 8 kHz");
            self.digits += 1;
        }
    }

    /// Digits reported so far.
    pub fn digits(&self) -> usize {
        self.digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u8, end: bool) -> Vec<u8> {
        let mut packet = vec![0x80, 101, 0, seq, 0, 0, 0, 160, 0, 0, 0, 9];
        packet.extend_from_slice(&[5, u8::from(end) << 7 | 10, 0, 160]);
        packet
    }

    #[test]
    fn a_press_from_the_signalled_source_is_one_digit_and_timers_move_on() {
        let choice = MediaChoice {
            codec: 0,
            payload_type: 0,
            telephone_event: Some(101),
            remote: Some(0),
            direction: 0,
        };
        let mut call = ReceiveHarness::new(choice).expect("receiver");
        call.rtp(0, &event(1, false));
        call.rtp(0, &event(2, true));
        call.rtp(1, &event(3, false));
        call.advance(Duration::from_secs(30));
        assert_eq!(call.digits(), 1);
        call.end();
    }
}
