//! The outbox's scheduling decisions as pure functions of `now`: which entries to send
//! next, when to wake up, how long to back off, and what to do with an attempt's outcome.
//!
//! Time here is wall-clock milliseconds since the Unix epoch, because it is stored in the
//! database and must keep its meaning across restarts. Nothing here reads the clock.

use std::collections::HashSet;
use std::time::Duration;

use super::PostError;
use crate::config::OutboxConfig;

/// Milliseconds since the Unix epoch (what the database stores).
pub type UnixMillis = i64;

/// How the sender paces and gives up.
#[derive(Debug, Clone, PartialEq)]
pub struct SendPolicy {
    /// Attempts (each a possible check plus a post) before an entry is dead-lettered.
    pub max_attempts: u32,
    /// First backoff after a failure; doubles per failed attempt.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured; a longer one from the server is cut to this.
    pub retry_after_max: Duration,
    /// Entries being sent at once (never two of one ticket).
    pub max_in_flight: usize,
    /// One attempt (check plus post) taking longer than this counts as ambiguous.
    pub attempt_timeout: Duration,
    /// How long delivered entries are kept, so that a late duplicate enqueue is a no-op.
    pub keep_done: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy::from_config(&OutboxConfig::default())
    }
}

impl SendPolicy {
    pub fn from_config(config: &OutboxConfig) -> SendPolicy {
        let base_ms = config.backoff_base_ms.max(1);
        SendPolicy {
            max_attempts: config.max_attempts.max(1),
            backoff_base: Duration::from_millis(base_ms),
            backoff_cap: Duration::from_millis(config.backoff_cap_ms.max(base_ms)),
            retry_after_max: Duration::from_secs(config.retry_after_max_s),
            max_in_flight: config.max_in_flight.max(1),
            attempt_timeout: Duration::from_secs(config.attempt_timeout_s.max(1)),
            keep_done: Duration::from_secs(config.keep_done_s),
        }
    }

    /// The wait after `failed_attempts` failures (1 for the first), with "equal jitter":
    /// the exponential delay `base · 2^(n-1)`, capped, of which the upper half is scaled
    /// by `jitter` (a random number in `[0, 1)`). The result lies in `[d/2, d]`.
    pub fn backoff(&self, failed_attempts: u32, jitter: f64) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(40);
        let full = self
            .backoff_base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap);
        let half = full / 2;
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        half + (full - half).mul_f64(jitter)
    }

    /// The wait honoured for a `Retry-After`: at most `retry_after_max`, at least the
    /// backoff base (a zero or missing value must not make the sender spin).
    pub fn retry_after(&self, requested: Duration) -> Duration {
        requested.min(self.retry_after_max).max(self.backoff_base)
    }
}

/// The first pending entry of one queue, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    /// Entries of one queue go one at a time, in order: the comments of one ticket share
    /// the ticket's id as their queue; an entry that opens a ticket is a queue of its own.
    pub queue: i64,
    pub next_attempt_at: UnixMillis,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Entries to start now (by sequence number), at most one per ticket.
    pub start: Vec<i64>,
    /// When something becomes due, if anything is waiting.
    pub wake_at: Option<UnixMillis>,
}

/// Picks the entries to send now. `heads` holds the oldest pending entry of each ticket;
/// queues in `busy_queues` have an attempt in flight and wait for it. While
/// `paused_until` is in the future (a rate limit), nothing starts.
pub fn plan(
    now: UnixMillis,
    heads: &[Head],
    busy_queues: &HashSet<i64>,
    paused_until: Option<UnixMillis>,
    free_slots: usize,
) -> Plan {
    if let Some(until) = paused_until.filter(|until| *until > now) {
        return Plan { start: Vec::new(), wake_at: Some(until) };
    }
    let mut due: Vec<&Head> = Vec::new();
    let mut wake_at: Option<UnixMillis> = None;
    let mut seen: HashSet<i64> = HashSet::new();
    for head in heads {
        if busy_queues.contains(&head.queue) || !seen.insert(head.queue) {
            continue;
        }
        if head.next_attempt_at <= now {
            due.push(head);
        } else {
            wake_at = Some(wake_at.map_or(head.next_attempt_at, |w| w.min(head.next_attempt_at)));
        }
    }
    due.sort_by_key(|head| (head.next_attempt_at, head.seq));
    let start: Vec<i64> = due.iter().take(free_slots).map(|head| head.seq).collect();
    // Due entries left over for want of a slot start when an attempt finishes.
    Plan { start, wake_at }
}

/// How an attempt ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The comment was posted now.
    Posted,
    /// A check found the comment already on the ticket (an earlier attempt landed).
    AlreadyPresent,
}

/// What the store should do with an entry after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Done,
    Retry {
        at: UnixMillis,
        /// Check the ticket for the comment before the next post.
        check_first: bool,
        error: String,
        /// A rate limit does not use up one of the entry's attempts.
        refund_attempt: bool,
        /// Hold every send until then (Zendesk rate limits are per account).
        pause_all_until: Option<UnixMillis>,
    },
    Dead {
        error: String,
        check_first: bool,
    },
}

/// Decides an entry's fate after attempt number `attempts` (counting this one).
/// `check_first` is whether this attempt had to check the ticket first; `jitter` is a
/// random number in `[0, 1)`.
pub fn dispose(
    policy: &SendPolicy,
    now: UnixMillis,
    attempts: u32,
    check_first: bool,
    outcome: &Result<Delivered, PostError>,
    jitter: f64,
) -> Disposition {
    let error = match outcome {
        Ok(_) => return Disposition::Done,
        Err(error) => error,
    };
    let text = error.to_string();
    let after =
        |wait: Duration| now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    match error {
        PostError::Permanent(_) => Disposition::Dead { error: text, check_first },
        PostError::RetryAfter(requested) => {
            let at = after(policy.retry_after(*requested));
            Disposition::Retry {
                at,
                check_first,
                error: text,
                refund_attempt: true,
                pause_all_until: Some(at),
            }
        }
        PostError::Transient(_) | PostError::Ambiguous(_) => {
            let check_first = check_first || matches!(error, PostError::Ambiguous(_));
            if attempts >= policy.max_attempts {
                return Disposition::Dead { error: text, check_first };
            }
            Disposition::Retry {
                at: after(policy.backoff(attempts, jitter)),
                check_first,
                error: text,
                refund_attempt: false,
                pause_all_until: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SendPolicy {
        SendPolicy {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            retry_after_max: Duration::from_secs(600),
            max_in_flight: 4,
            attempt_timeout: Duration::from_secs(30),
            keep_done: Duration::from_secs(3600),
        }
    }

    fn head(seq: i64, queue: i64, next_attempt_at: UnixMillis) -> Head {
        Head { seq, queue, next_attempt_at }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let policy = policy();
        for attempt in 1..=12u32 {
            let full = Duration::from_secs(1 << (attempt - 1).min(20)).min(Duration::from_secs(60));
            let low = policy.backoff(attempt, 0.0);
            let high = policy.backoff(attempt, 0.999_999);
            assert_eq!(low, full / 2, "attempt {attempt}");
            assert!(high <= full && high > full * 99 / 100, "attempt {attempt}: {high:?}");
            let mid = policy.backoff(attempt, 0.5);
            assert!(low <= mid && mid <= high);
        }
        assert_eq!(policy.backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(200, 1.0), Duration::from_secs(60));
        // Nonsense jitter never leaves the bounds.
        assert_eq!(policy.backoff(1, f64::NAN), Duration::from_millis(500));
        assert_eq!(policy.backoff(1, 7.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(1, -3.0), Duration::from_millis(500));
    }

    #[test]
    fn plan_takes_one_due_head_per_ticket_oldest_first() {
        let heads = [head(5, 2, 900), head(3, 1, 1000), head(7, 3, 1500), head(9, 1, 100)];
        let plan = plan(1000, &heads, &HashSet::new(), None, 10);
        // Ticket 1 appears twice (a stale head); only the first listed counts.
        assert_eq!(plan.start, vec![5, 3]);
        assert_eq!(plan.wake_at, Some(1500));
    }

    #[test]
    fn plan_skips_busy_tickets_and_respects_slots() {
        let heads = [head(1, 10, 0), head(2, 20, 0), head(3, 30, 0)];
        let busy: HashSet<i64> = [10].into();
        let plan = plan(50, &heads, &busy, None, 1);
        assert_eq!(plan.start, vec![2]);
        let none = super::plan(50, &heads, &busy, None, 0);
        assert!(none.start.is_empty());
    }

    #[test]
    fn plan_waits_out_a_pause() {
        let heads = [head(1, 10, 0)];
        let plan = plan(50, &heads, &HashSet::new(), Some(80), 4);
        assert!(plan.start.is_empty());
        assert_eq!(plan.wake_at, Some(80));
        let later = super::plan(80, &heads, &HashSet::new(), Some(80), 4);
        assert_eq!(later.start, vec![1]);
    }

    #[test]
    fn plan_with_nothing_due_only_sets_a_wake_up() {
        let plan = plan(0, &[head(1, 1, 30), head(2, 2, 20)], &HashSet::new(), None, 4);
        assert!(plan.start.is_empty());
        assert_eq!(plan.wake_at, Some(20));
        assert_eq!(super::plan(0, &[], &HashSet::new(), None, 4), Plan::default());
    }

    #[test]
    fn success_is_done() {
        for delivered in [Delivered::Posted, Delivered::AlreadyPresent] {
            assert_eq!(dispose(&policy(), 0, 1, true, &Ok(delivered), 0.5), Disposition::Done);
        }
    }

    #[test]
    fn retry_after_is_honoured_capped_and_refunded() {
        let policy = policy();
        let outcome = Err(PostError::RetryAfter(Duration::from_secs(30)));
        let Disposition::Retry { at, refund_attempt, pause_all_until, check_first, .. } =
            dispose(&policy, 1_000, 5, false, &outcome, 0.0)
        else {
            panic!("a rate limit is retried, even on the last attempt");
        };
        assert_eq!(at, 31_000);
        assert!(refund_attempt && !check_first);
        assert_eq!(pause_all_until, Some(31_000));

        let huge = Err(PostError::RetryAfter(Duration::from_secs(1 << 40)));
        let Disposition::Retry { at, .. } = dispose(&policy, 0, 1, false, &huge, 0.0) else {
            panic!("retried");
        };
        assert_eq!(at, 600_000);
        let zero = Err(PostError::RetryAfter(Duration::ZERO));
        let Disposition::Retry { at, .. } = dispose(&policy, 0, 1, false, &zero, 0.0) else {
            panic!("retried");
        };
        assert_eq!(at, 1_000, "a zero Retry-After waits the backoff base");
    }

    #[test]
    fn transient_backs_off_and_ambiguous_asks_for_a_check() {
        let policy = policy();
        let transient = Err(PostError::Transient("503".into()));
        let Disposition::Retry { at, check_first, refund_attempt, pause_all_until, .. } =
            dispose(&policy, 10_000, 3, false, &transient, 0.0)
        else {
            panic!("retried");
        };
        assert_eq!(at, 12_000);
        assert!(!check_first && !refund_attempt && pause_all_until.is_none());

        let ambiguous = Err(PostError::Ambiguous("timeout".into()));
        let Disposition::Retry { check_first, .. } = dispose(&policy, 0, 1, false, &ambiguous, 0.0)
        else {
            panic!("retried");
        };
        assert!(check_first);
        // A check that failed transiently still has to be done next time.
        let Disposition::Retry { check_first, .. } = dispose(&policy, 0, 1, true, &transient, 0.0)
        else {
            panic!("retried");
        };
        assert!(check_first);
    }

    #[test]
    fn permanent_and_exhausted_entries_are_dead() {
        let policy = policy();
        let permanent = Err(PostError::Permanent("404 ticket not found".into()));
        assert_eq!(
            dispose(&policy, 0, 1, false, &permanent, 0.0),
            Disposition::Dead {
                error: "permanent failure: 404 ticket not found".into(),
                check_first: false
            }
        );
        let ambiguous = Err(PostError::Ambiguous("reset".into()));
        assert!(matches!(
            dispose(&policy, 0, 4, false, &ambiguous, 0.0),
            Disposition::Retry { .. }
        ));
        assert_eq!(
            dispose(&policy, 0, 5, false, &ambiguous, 0.0),
            Disposition::Dead { error: "ambiguous failure: reset".into(), check_first: true }
        );
    }

    #[test]
    fn policy_from_config_is_sane_even_for_zeros() {
        let config = OutboxConfig {
            max_attempts: 0,
            backoff_base_ms: 0,
            backoff_cap_ms: 0,
            max_in_flight: 0,
            attempt_timeout_s: 0,
            ..OutboxConfig::default()
        };
        let policy = SendPolicy::from_config(&config);
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(policy.max_in_flight, 1);
        assert!(policy.backoff_base > Duration::ZERO && policy.backoff_cap >= policy.backoff_base);
        assert!(policy.attempt_timeout > Duration::ZERO);
    }
}
