//! Rate limits driven by the caller's `now` (sans-IO): governor's GCRA limiters on a
//! clock that only moves when told, so the same code runs on the wall clock and in
//! virtual time.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

type Keyed =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, FakeRelativeClock, NoOpMiddleware<Nanos>>;
type Direct = RateLimiter<NotKeyed, InMemoryState, FakeRelativeClock, NoOpMiddleware<Nanos>>;

/// How often the per-source table drops the sources that are back to a full bucket.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// A governor clock set from the `now` each call is given; it never runs backwards.
#[derive(Debug, Clone)]
pub(super) struct SteppedClock {
    clock: FakeRelativeClock,
    last: Instant,
}

impl SteppedClock {
    pub(super) fn new(now: Instant) -> Self {
        SteppedClock { clock: FakeRelativeClock::default(), last: now }
    }

    pub(super) fn set(&mut self, now: Instant) {
        if now > self.last {
            self.clock.advance(now - self.last);
            self.last = now;
        }
    }

    fn governor_clock(&self) -> FakeRelativeClock {
        self.clock.clone()
    }
}

/// Over a limit: the least time until the next request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limited {
    pub wait: Duration,
}

fn limited(not_until: NotUntil<Nanos>, clock: &FakeRelativeClock) -> Limited {
    Limited { wait: not_until.wait_time_from(clock.now()) }
}

/// One limit over everything (`sip.max_cps`).
pub(super) struct GlobalRate {
    limiter: Direct,
    clock: FakeRelativeClock,
}

impl GlobalRate {
    pub(super) fn new(per_second: NonZeroU32, clock: &SteppedClock) -> Self {
        let clock = clock.governor_clock();
        GlobalRate {
            limiter: RateLimiter::direct_with_clock(Quota::per_second(per_second), clock.clone()),
            clock,
        }
    }

    pub(super) fn check(&self) -> Result<(), Limited> {
        self.limiter.check().map_err(|n| limited(n, &self.clock))
    }
}

/// One limit per source address, in a table of at most `max_sources` sources. When the
/// table is full of sources still over or near their limit (a flood from many
/// addresses), further sources share one overflow bucket with the same quota, so
/// memory stays bounded and the flood still gets no more than one source's share.
pub(super) struct PerSourceRate {
    limiter: Keyed,
    overflow: Direct,
    clock: FakeRelativeClock,
    max_sources: usize,
    swept_at: Instant,
}

impl PerSourceRate {
    pub(super) fn new(
        per_second: NonZeroU32,
        max_sources: usize,
        clock: &SteppedClock,
        now: Instant,
    ) -> Self {
        let quota = Quota::per_second(per_second);
        let clock = clock.governor_clock();
        PerSourceRate {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            overflow: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            max_sources: max_sources.max(1),
            swept_at: now,
        }
    }

    pub(super) fn check(&mut self, now: Instant, source: IpAddr) -> Result<(), Limited> {
        let full = self.limiter.len() >= self.max_sources;
        if now.saturating_duration_since(self.swept_at) >= SWEEP_INTERVAL
            || (full && now.saturating_duration_since(self.swept_at) >= Duration::from_secs(1))
        {
            self.swept_at = now;
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let outcome = if self.limiter.len() >= self.max_sources {
            self.overflow.check()
        } else {
            self.limiter.check_key(&source)
        };
        outcome.map_err(|n| limited(n, &self.clock))
    }

    /// Sources in the table.
    pub(super) fn len(&self) -> usize {
        self.limiter.len()
    }
}
