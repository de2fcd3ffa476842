//! A token bucket for one peer's requests of one kind (sans-IO: time comes in as `now`):
//! `burst` at once from a quiet start, then `per_second` sustained. Used per call for
//! INFO ([`crate::sip::call_events`]) and for target refreshes (re-INVITE, UPDATE).

use std::time::{Duration, Instant};

/// A token bucket. Its state is two numbers, whatever the flood.
#[derive(Debug, Clone)]
pub struct RateBudget {
    burst: u32,
    per_token: Duration,
    tokens: u32,
    refilled: Instant,
}

impl RateBudget {
    /// A full bucket of `burst` tokens (at least 1), refilled at `per_second` (at least 1).
    pub fn new(now: Instant, burst: u32, per_second: u32) -> Self {
        let burst = burst.max(1);
        RateBudget {
            burst,
            per_token: Duration::from_secs(1) / per_second.max(1),
            tokens: burst,
            refilled: now,
        }
    }

    /// Takes one token; false when the peer is over its rate (nothing is taken then).
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// How long from `now` until a token is there (zero when one is).
    pub fn wait(&self, now: Instant) -> Duration {
        if self.tokens > 0 {
            return Duration::ZERO;
        }
        (self.refilled + self.per_token).saturating_duration_since(now)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = (elapsed.as_nanos() / self.per_token.as_nanos()).min(u128::from(self.burst));
        let earned = earned as u32;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(self.burst);
            self.refilled = if self.tokens == self.burst {
                now
            } else {
                self.refilled + self.per_token * earned
            };
        }
    }
}

/// Whole seconds for a Retry-After of `wait`: rounded up, at least 1, at most an hour.
pub fn retry_after_seconds(wait: Duration) -> u32 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.clamp(1, 3600) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut budget = RateBudget::new(t0, 5, 2);
        assert_eq!((0..50).filter(|_| budget.take(t0)).count(), 5);
        assert_eq!(budget.wait(t0), Duration::from_millis(500));
        let almost = t0 + Duration::from_millis(499);
        assert!(!budget.take(almost));
        assert_eq!(budget.wait(almost), Duration::from_millis(1));
        assert!(budget.take(t0 + Duration::from_millis(500)));
        assert!(!budget.take(t0 + Duration::from_millis(500)));
        // A quiet minute gives the burst back, no more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(budget.wait(later), Duration::ZERO);
        assert_eq!((0..50).filter(|_| budget.take(later)).count(), 5);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(1 << 40)), 3600);
    }

    #[test]
    fn zero_settings_still_make_a_working_bucket() {
        let t0 = Instant::now();
        let mut budget = RateBudget::new(t0, 0, 0);
        assert!(budget.take(t0));
        assert!(!budget.take(t0));
        assert!(budget.take(t0 + Duration::from_secs(1)));
    }
}
