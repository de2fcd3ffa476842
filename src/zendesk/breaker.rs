//! A circuit breaker for the Zendesk API (sans-IO: every call takes `now`).
//!
//! Closed: requests flow; `failures_to_open` consecutive failures open it. Open: requests are
//! refused at once until `open_for` has passed. Half-open: one probe is let through; its
//! success closes the breaker, its failure opens it again.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    failures_to_open: u32,
    open_for: Duration,
    consecutive_failures: u32,
    state: BreakerState,
}

impl CircuitBreaker {
    /// `failures_to_open` of 0 disables the breaker.
    pub fn new(failures_to_open: u32, open_for: Duration) -> Self {
        CircuitBreaker {
            failures_to_open,
            open_for,
            consecutive_failures: 0,
            state: BreakerState::Closed,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a request may go out now. In half-open state only one probe at a time.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen { probe_in_flight: true };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probe_in_flight: true } => false,
            BreakerState::HalfOpen { probe_in_flight: false } => {
                self.state = BreakerState::HalfOpen { probe_in_flight: true };
                true
            }
        }
    }

    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.state = BreakerState::Closed;
    }

    pub fn on_failure(&mut self, now: Instant) {
        if self.failures_to_open == 0 {
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let reopen = matches!(self.state, BreakerState::HalfOpen { .. });
        if reopen || self.consecutive_failures >= self.failures_to_open {
            self.state = BreakerState::Open { until: now + self.open_for };
        }
    }

    /// A request that was let through ended with neither success nor failure of Zendesk
    /// (e.g. the caller hung up): free the half-open probe slot.
    pub fn on_abandoned(&mut self) {
        if let BreakerState::HalfOpen { .. } = self.state {
            self.state = BreakerState::HalfOpen { probe_in_flight: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_pause() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert!(b.allow(t0));
            b.on_failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(t0));
        b.on_failure(t0);
        assert!(!b.allow(t0 + Duration::from_secs(29)));
        // One probe after the pause; a second concurrent request is refused.
        assert!(b.allow(t0 + Duration::from_secs(30)));
        assert!(!b.allow(t0 + Duration::from_secs(30)));
        // The probe fails: open again for a full pause.
        b.on_failure(t0 + Duration::from_secs(31));
        assert!(!b.allow(t0 + Duration::from_secs(60)));
        assert!(b.allow(t0 + Duration::from_secs(61)));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(t0 + Duration::from_secs(61)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(2, Duration::from_secs(1));
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert!(b.allow(t0));
        b.on_failure(t0);
        assert!(!b.allow(t0));
    }

    #[test]
    fn zero_disables_it() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            b.on_failure(t0);
        }
        assert!(b.allow(t0));
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(1, Duration::from_secs(1));
        b.on_failure(t0);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.allow(t1));
        b.on_abandoned();
        assert!(b.allow(t1));
    }
}
