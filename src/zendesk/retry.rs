//! Retry policy for Zendesk requests: jittered exponential backoff and `Retry-After`.
//! Pure functions; the client decides whether a wait fits in the time left.

use std::time::{Duration, SystemTime};

/// Longest `Retry-After` taken at its word; longer values are capped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Assumed when a 429 carries no usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Backoff settings: attempt `n` (0-based) waits between half and all of
/// `min(cap, base * 2^n)` ("equal jitter"), so waits never collapse to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Most attempts of one request, the first included.
    pub max_attempts: u32,
}

impl Backoff {
    /// For the call path: quick retries that fit in a 1.5 s deadline.
    pub const CALL_PATH: Backoff = Backoff {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(400),
        max_attempts: 3,
    };

    /// The wait before attempt `attempt + 1`, with `unit` in `[0, 1)` as the random draw.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// [`Backoff::delay`] with a fresh random draw.
    pub fn jittered(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

/// Reads `Retry-After`: delta-seconds, or an HTTP date relative to `now`. Capped at
/// [`MAX_RETRY_AFTER`]; `None` if the value is unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else if let Ok(seconds) = value.parse::<f64>() {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return None;
        }
        Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let b = Backoff::CALL_PATH;
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(25));
        assert_eq!(b.delay(0, 0.999_999).as_millis(), 49);
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(10, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_millis(400));
        for attempt in 0..5 {
            let d = b.jittered(attempt);
            assert!(d >= b.delay(attempt, 0.0) && d <= b.delay(attempt, 1.0), "{d:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }
}
