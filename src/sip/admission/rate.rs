//! Rate limits driven by the caller's `now` (sans-IO). The overall limit is governor's
//! GCRA limiter on a clock that only moves when told; the per-source limits are the same
//! GCRA over tables of our own, because their bound on memory needs to know which keys
//! are held and to choose which to give up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

type Direct = RateLimiter<NotKeyed, InMemoryState, FakeRelativeClock, NoOpMiddleware<Nanos>>;

/// How often the per-source tables drop the buckets that are full again.
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

/// A GCRA bucket's quota: `per_second` sustained and a burst of as many (as governor's
/// `Quota::per_second`). A bucket's state is its theoretical arrival time (TAT); a bucket
/// whose TAT is not after `now` is full and need not be kept.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    emission: Duration,
    tolerance: Duration,
}

impl Gcra {
    fn per_second(per_second: NonZeroU32) -> Self {
        let emission = Duration::from_secs(1) / per_second.get();
        Gcra { emission, tolerance: emission * per_second.get() }
    }

    /// Takes one cell from the bucket at `tat` (`None`: full); the new TAT, or how long
    /// until a cell would pass.
    fn take(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, Limited> {
        let next = tat.map_or(now, |tat| tat.max(now)) + self.emission;
        let ahead = next - now;
        if ahead > self.tolerance {
            Err(Limited { wait: ahead - self.tolerance })
        } else {
            Ok(next)
        }
    }
}

/// What a [`BucketTable`] does with a new key when it is full of busy buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Leaves the key out: the caller falls back to a coarser bucket.
    Refuse,
    /// Drops some other key's bucket (which starts full when that key comes back).
    Evict,
}

/// Buckets by address (or address prefix), at most `cap` of them.
#[derive(Debug)]
struct BucketTable {
    tats: HashMap<IpAddr, Instant>,
    cap: usize,
    when_full: WhenFull,
    swept_at: Instant,
}

impl BucketTable {
    fn new(cap: usize, when_full: WhenFull, now: Instant) -> Self {
        BucketTable { tats: HashMap::new(), cap: cap.max(1), when_full, swept_at: now }
    }

    /// Takes a cell from `key`'s bucket; `None` when the table is full and refuses it.
    fn take(&mut self, gcra: &Gcra, now: Instant, key: IpAddr) -> Option<Result<(), Limited>> {
        if !self.tats.contains_key(&key) && self.tats.len() >= self.cap {
            match self.when_full {
                WhenFull::Refuse => return None,
                WhenFull::Evict => {
                    let victim = self.tats.keys().next().copied();
                    if let Some(victim) = victim {
                        self.tats.remove(&victim);
                    }
                }
            }
        }
        let tat = self.tats.get(&key).copied();
        Some(gcra.take(tat, now).map(|next| {
            self.tats.insert(key, next);
        }))
    }

    /// Drops the full buckets: every [`SWEEP_INTERVAL`], or every second while the table
    /// is full (a sweep costs one pass over the table, so a flood cannot make it run per
    /// packet).
    fn sweep(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.swept_at);
        let full = self.tats.len() >= self.cap;
        if since >= SWEEP_INTERVAL || (full && since >= Duration::from_secs(1)) {
            self.swept_at = now;
            self.tats.retain(|_, tat| *tat > now);
            self.tats.shrink_to(self.cap.min(self.tats.len() * 2));
        }
    }

    fn len(&self) -> usize {
        self.tats.len()
    }
}

/// Whose request a [`PerSourceRate`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SourceClass {
    /// A peer the endpoint itself talks to (a queue target, a registrar) or a configured
    /// trusted source: never shares a bucket with anyone.
    Privileged,
    Other,
}

/// The network a source is lumped in with once the per-address table is full.
fn prefix(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(v4) => Ipv4Addr::from(u32::from(v4) & (u32::MAX << (32 - IPV4_PREFIX))).into(),
        IpAddr::V6(v6) => {
            Ipv6Addr::from(u128::from(v6) & (u128::MAX << (128 - IPV6_PREFIX))).into()
        }
    }
}

/// IPv4 sources share a bucket per /24 once the per-address table is full; IPv6 per /56
/// (a typical end site's allocation).
const IPV4_PREFIX: u32 = 24;
const IPV6_PREFIX: u32 = 56;

/// One limit per source address. Tiers, so that a flood from many (spoofed) addresses
/// neither grows memory without bound nor starves a source that matters:
///
/// 1. Privileged sources (queue targets, registrars, `sip.trusted_sources`) have a table
///    of their own, so other sources never push them out. When it is full (only a flood
///    spoofing many addresses inside a wide trusted range can fill it), a new one evicts
///    another; an evicted source starts again with a full bucket, so nobody privileged is
///    ever starved. Keep trusted ranges narrow: a flood spoofing addresses inside one is
///    held by no per-source limit.
/// 2. Other sources get a bucket per address while the table has room;
/// 3. past that, one per network (IPv4 /24, IPv6 /56), in a table of the same size, so a
///    flood from many addresses of a few networks is held to those networks' share and a
///    new caller from elsewhere still gets a bucket of its own;
/// 4. past that, one shared bucket (the flood then spans more networks than the tables
///    hold).
///
/// Buckets that are full again are swept (at most once a second while a table is full,
/// else every 10 s). Memory: at most `3 × max_sources` buckets plus one, each an address
/// key and a TAT (40 bytes, some 48 with the map's overhead): about 14 MB per limit at
/// the default `sip.rate_limit_sources` of 100,000, and there are two limits (requests
/// and new INVITEs). The privileged table is capped like the others.
pub(super) struct PerSourceRate {
    gcra: Gcra,
    privileged: BucketTable,
    sources: BucketTable,
    prefixes: BucketTable,
    shared: Option<Instant>,
}

impl PerSourceRate {
    pub(super) fn new(per_second: NonZeroU32, max_sources: usize, now: Instant) -> Self {
        PerSourceRate {
            gcra: Gcra::per_second(per_second),
            privileged: BucketTable::new(max_sources, WhenFull::Evict, now),
            sources: BucketTable::new(max_sources, WhenFull::Refuse, now),
            prefixes: BucketTable::new(max_sources, WhenFull::Refuse, now),
            shared: None,
        }
    }

    pub(super) fn check(
        &mut self,
        now: Instant,
        source: IpAddr,
        class: SourceClass,
    ) -> Result<(), Limited> {
        let gcra = self.gcra;
        for table in [&mut self.privileged, &mut self.sources, &mut self.prefixes] {
            table.sweep(now);
        }
        if class == SourceClass::Privileged {
            return self.privileged.take(&gcra, now, source).unwrap_or(Ok(()));
        }
        if let Some(outcome) = self.sources.take(&gcra, now, source) {
            return outcome;
        }
        if let Some(outcome) = self.prefixes.take(&gcra, now, prefix(source)) {
            return outcome;
        }
        let next = gcra.take(self.shared, now)?;
        self.shared = Some(next);
        Ok(())
    }

    /// Buckets held, in every table.
    pub(super) fn len(&self) -> usize {
        self.privileged.len() + self.sources.len() + self.prefixes.len()
    }

    /// Which tier holds `source`'s bucket.
    #[cfg(test)]
    fn tier_of(&self, source: IpAddr) -> Tier {
        if self.privileged.tats.contains_key(&source) {
            Tier::Privileged
        } else if self.sources.tats.contains_key(&source) {
            Tier::Address
        } else if self.prefixes.tats.contains_key(&prefix(source)) {
            Tier::Network
        } else {
            Tier::Shared
        }
    }
}

#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Privileged,
    Address,
    Network,
    Shared,
}

#[cfg(test)]
mod tests;
