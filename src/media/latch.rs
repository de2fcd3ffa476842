//! Symmetric RTP (RFC 4961 practice, "comedia"): which source address a call's media is
//! accepted from and sent to (sans-IO).
//!
//! A caller behind NAT announces one address in SDP and sends from another. We learn the
//! real one from the packets, but must not let anyone who guesses our port steal the
//! stream. The rule:
//!
//! 1. Until anything is latched, a packet from the SDP address's IP latches at once. A
//!    packet from any other source is ignored until that source has sent
//!    [`RELATCH_PACKETS`] valid packets in a row (the SDP address may be a private one that
//!    can never reach us, so a caller behind NAT is still learned, about 100 ms later);
//!    a single packet from someone who guessed our port latches nothing.
//! 2. Once latched, packets from the latched source are accepted.
//! 3. A different source is accepted only after it has sent [`RELATCH_PACKETS`] valid
//!    packets in a row with nothing from the latched source in between. Until then its
//!    packets are dropped. A packet from the latched source resets the count.
//! 4. A new SDP address (re-INVITE) starts over at rule 1.
//!
//! "Valid" is decided by the caller of [`Latch::packet`]: a well-formed RTP packet with a
//! negotiated payload type.

use std::net::SocketAddr;

/// Packets in a row a new source must send before we move to it.
pub const RELATCH_PACKETS: u32 = 5;

/// The outcome of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchDecision {
    /// From the source we send to: use it.
    Accept,
    /// The stream moved (or was first learned): send to `0` from now on, and use the packet.
    Latched(SocketAddr),
    /// From an unproven source: drop it.
    Drop,
}

/// One call's source latch.
#[derive(Debug, Clone)]
pub struct Latch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    candidate: Option<(SocketAddr, u32)>,
}

impl Latch {
    /// A latch for a stream whose SDP says `signalled` (None for `c=0.0.0.0` or port 0).
    pub fn new(signalled: Option<SocketAddr>) -> Self {
        Latch { signalled, latched: None, candidate: None }
    }

    /// Where to send: the latched source, else the SDP address.
    pub fn target(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// The source latched so far, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// A new SDP address from a re-INVITE or UPDATE: start over (rule 4). An unchanged
    /// address keeps the latch.
    pub fn signal(&mut self, signalled: Option<SocketAddr>) {
        if signalled != self.signalled {
            *self = Latch::new(signalled);
        }
    }

    /// Decides on one valid packet from `source`.
    pub fn packet(&mut self, source: SocketAddr) -> LatchDecision {
        match self.latched {
            Some(current) if current == source => {
                self.candidate = None;
                LatchDecision::Accept
            }
            None if self.signalled.is_some_and(|s| s.ip() == source.ip()) => {
                self.latched = Some(source);
                self.candidate = None;
                LatchDecision::Latched(source)
            }
            _ => {
                let count = match self.candidate {
                    Some((addr, n)) if addr == source => n.saturating_add(1),
                    _ => 1,
                };
                if count >= RELATCH_PACKETS {
                    self.latched = Some(source);
                    self.candidate = None;
                    LatchDecision::Latched(source)
                } else {
                    self.candidate = Some((source, count));
                    LatchDecision::Drop
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sdp_address_latches_at_once() {
        let mut l = Latch::new(Some(addr("192.0.2.1:4000")));
        assert_eq!(l.target(), Some(addr("192.0.2.1:4000")));
        assert_eq!(
            l.packet(addr("192.0.2.1:4000")),
            LatchDecision::Latched(addr("192.0.2.1:4000"))
        );
        assert_eq!(l.packet(addr("192.0.2.1:4000")), LatchDecision::Accept);
    }

    #[test]
    fn nat_source_latches_when_the_sdp_address_never_sent() {
        let mut l = Latch::new(Some(addr("10.0.0.5:4000")));
        let nat = addr("198.51.100.7:61000");
        for _ in 1..RELATCH_PACKETS {
            assert_eq!(l.packet(nat), LatchDecision::Drop);
            assert_eq!(l.target(), Some(addr("10.0.0.5:4000")));
        }
        assert_eq!(l.packet(nat), LatchDecision::Latched(nat));
        assert_eq!(l.target(), Some(nat));
        assert_eq!(l.packet(nat), LatchDecision::Accept);
    }

    #[test]
    fn another_port_on_the_sdp_address_ip_latches_at_once() {
        let mut l = Latch::new(Some(addr("192.0.2.1:4000")));
        let moved = addr("192.0.2.1:4002");
        assert_eq!(l.packet(moved), LatchDecision::Latched(moved));
    }

    #[test]
    fn unexpected_sources_before_latching_are_ignored() {
        let real = addr("192.0.2.1:4000");
        let mut l = Latch::new(Some(real));
        // A spray of single packets from guessed-port scanners latches nothing.
        for i in 0..1000u16 {
            let scanner = SocketAddr::from(([203, 0, 113, (i % 200) as u8], 1000 + i));
            assert_eq!(l.packet(scanner), LatchDecision::Drop);
            assert_eq!(l.latched(), None);
        }
        // Two sources taking turns never prove themselves.
        for _ in 0..100 {
            assert_eq!(l.packet(addr("203.0.113.1:1")), LatchDecision::Drop);
            assert_eq!(l.packet(addr("203.0.113.2:2")), LatchDecision::Drop);
        }
        assert_eq!(l.target(), Some(real));
        // The real caller is taken at its first packet.
        assert_eq!(l.packet(real), LatchDecision::Latched(real));
    }

    #[test]
    fn hold_without_address_still_learns_a_source() {
        let mut l = Latch::new(None);
        assert_eq!(l.target(), None);
        let src = addr("192.0.2.9:5000");
        for _ in 1..RELATCH_PACKETS {
            assert_eq!(l.packet(src), LatchDecision::Drop);
        }
        assert_eq!(l.packet(src), LatchDecision::Latched(src));
        assert_eq!(l.target(), Some(src));
    }

    #[test]
    fn an_intruder_needs_packets_in_a_row() {
        let real = addr("192.0.2.1:4000");
        let other = addr("203.0.113.66:9999");
        let mut l = Latch::new(Some(real));
        l.packet(real);
        for _ in 1..RELATCH_PACKETS {
            assert_eq!(l.packet(other), LatchDecision::Drop);
        }
        // The real source speaks again: the intruder starts from zero.
        assert_eq!(l.packet(real), LatchDecision::Accept);
        for _ in 1..RELATCH_PACKETS {
            assert_eq!(l.packet(other), LatchDecision::Drop);
            assert_eq!(l.target(), Some(real));
        }
        // A source that really moved (the real one went quiet) is followed.
        assert_eq!(l.packet(other), LatchDecision::Latched(other));
        assert_eq!(l.target(), Some(other));
    }

    #[test]
    fn two_intruders_alternating_never_latch() {
        let real = addr("192.0.2.1:4000");
        let mut l = Latch::new(Some(real));
        l.packet(real);
        for _ in 0..100 {
            assert_eq!(l.packet(addr("203.0.113.1:1")), LatchDecision::Drop);
            assert_eq!(l.packet(addr("203.0.113.2:2")), LatchDecision::Drop);
        }
        assert_eq!(l.target(), Some(real));
    }

    #[test]
    fn new_sdp_address_starts_over_and_same_address_keeps_the_latch() {
        let nat = addr("198.51.100.7:61000");
        let mut l = Latch::new(Some(addr("10.0.0.5:4000")));
        for _ in 0..RELATCH_PACKETS {
            l.packet(nat);
        }
        l.signal(Some(addr("10.0.0.5:4000")));
        assert_eq!(l.latched(), Some(nat), "a session refresh keeps the latch");
        l.signal(Some(addr("192.0.2.44:7000")));
        assert_eq!(l.latched(), None);
        assert_eq!(l.target(), Some(addr("192.0.2.44:7000")));
    }
}
