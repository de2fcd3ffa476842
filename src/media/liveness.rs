//! The RTP timeout decision (sans-IO): a call that is not on hold and has received no RTP
//! for `timeout` is dead (the caller's phone lost power or its network), and is hung up.
//!
//! On hold means the caller does not intend to send to us: our negotiated direction is not
//! `sendrecv` (they sent `sendonly`/`inactive`/`recvonly`), or their SDP had no address
//! (`c=0.0.0.0` or port 0). Leaving hold restarts the clock, so a caller who unholds gets
//! the full timeout to start sending again.

use std::time::{Duration, Instant};

use crate::sdp::{Direction, Negotiated};

/// Whether a negotiated stream counts as on hold for the RTP timeout.
pub fn on_hold(media: &Negotiated) -> bool {
    media.direction != Direction::SendRecv || media.remote_rtp.is_none()
}

/// Tracks the last packet and decides when the call is dead.
#[derive(Debug, Clone)]
pub struct RtpLiveness {
    /// `None` disables the timeout.
    timeout: Option<Duration>,
    last_activity: Instant,
    on_hold: bool,
}

impl RtpLiveness {
    /// Starts the clock at `now`; a zero `timeout` disables it.
    pub fn new(now: Instant, timeout: Duration, on_hold: bool) -> Self {
        let timeout = (!timeout.is_zero()).then_some(timeout);
        RtpLiveness { timeout, last_activity: now, on_hold }
    }

    /// An accepted RTP packet arrived.
    pub fn packet(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
    }

    /// The stream was put on hold or taken off it.
    pub fn set_on_hold(&mut self, now: Instant, on_hold: bool) {
        if self.on_hold && !on_hold {
            self.last_activity = self.last_activity.max(now);
        }
        self.on_hold = on_hold;
    }

    /// When the call will be dead if nothing arrives; `None` while on hold or disabled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.on_hold {
            return None;
        }
        self.timeout.map(|t| self.last_activity + t)
    }

    /// Whether the call is dead at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CodecName;
    use crate::sdp::Codec;

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn silence_past_the_timeout_expires() {
        let t0 = Instant::now();
        let mut l = RtpLiveness::new(t0, T, false);
        l.packet(t0 + Duration::from_secs(10));
        assert!(!l.expired(t0 + Duration::from_secs(39)));
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(40)));
        assert!(l.expired(t0 + Duration::from_secs(40)));
    }

    #[test]
    fn hold_suspends_and_unhold_restarts_the_clock() {
        let t0 = Instant::now();
        let mut l = RtpLiveness::new(t0, T, false);
        l.set_on_hold(t0 + Duration::from_secs(5), true);
        assert_eq!(l.poll_timeout(), None);
        assert!(!l.expired(t0 + Duration::from_secs(3600)));
        l.set_on_hold(t0 + Duration::from_secs(3600), false);
        assert!(!l.expired(t0 + Duration::from_secs(3629)));
        assert!(l.expired(t0 + Duration::from_secs(3630)));
    }

    #[test]
    fn zero_disables() {
        let t0 = Instant::now();
        let l = RtpLiveness::new(t0, Duration::ZERO, false);
        assert_eq!(l.poll_timeout(), None);
        assert!(!l.expired(t0 + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn hold_is_read_from_direction_and_address() {
        let codec = Codec { name: CodecName::Pcmu, payload_type: 0, clock_rate: 8000, channels: 1 };
        let mut m = Negotiated {
            codec,
            telephone_event: Some(101),
            remote_rtp: Some("192.0.2.1:4000".parse().unwrap()),
            direction: Direction::SendRecv,
            ptime_ms: 20,
            srtp: None,
        };
        assert!(!on_hold(&m));
        m.direction = Direction::RecvOnly; // they sent sendonly
        assert!(on_hold(&m));
        m.direction = Direction::Inactive;
        assert!(on_hold(&m));
        m.direction = Direction::SendRecv;
        m.remote_rtp = None; // c=0.0.0.0
        assert!(on_hold(&m));
    }
}
